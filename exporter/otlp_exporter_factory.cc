#include "exporter/otlp_exporter_factory.h"

#include <utility>

#include "exporter/otlp_grpc_exporter.h"
#include "exporter/otlp_http_exporter.h"

namespace tracecar::exporter {

absl::StatusOr<std::unique_ptr<SpanExporter>> makeOtlpExporter(
    uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
    ExporterCounters& counters, const OtlpExporterOptions& options) {
  if (config.protocol == OtlpProtocol::kGrpc) {
    OtlpGrpcExporter::Options grpc;
    grpc.backoff = options.backoff;
    grpc.seed = options.seed;
    grpc.max_response_bytes = options.max_response_bytes;
    auto created = OtlpGrpcExporter::create(loop, config, std::move(resource), std::move(scope),
                                            counters, grpc);
    if (!created.ok()) return created.status();
    return std::unique_ptr<SpanExporter>(*std::move(created));
  }
  OtlpHttpExporter::Options http;
  http.backoff = options.backoff;
  http.seed = options.seed;
  http.max_response_bytes = options.max_response_bytes;
  auto created = OtlpHttpExporter::create(loop, config, std::move(resource), std::move(scope),
                                          counters, http);
  if (!created.ok()) return created.status();
  return std::unique_ptr<SpanExporter>(*std::move(created));
}

}  // namespace tracecar::exporter
