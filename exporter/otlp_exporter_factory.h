#pragma once

#include <uv.h>

#include <absl/status/statusor.h>

#include <memory>

#include "exporter/exporter_counters.h"
#include "exporter/otlp_config.h"
#include "exporter/resource.h"
#include "exporter/retry_policy.h"
#include "exporter/span.h"
#include "exporter/span_exporter.h"

namespace tracecar::exporter {

// Transport settings without an OTEL_* variable, shared by both OTLP transports.
struct OtlpExporterOptions {
  Backoff::Params backoff;
  uint64_t seed = 0;  // of the backoff's jitter; 0: a fresh one per exporter
  size_t max_response_bytes = 64 * 1024;
};

// The OTLP exporter config.protocol names: OtlpGrpcExporter for grpc, OtlpHttpExporter for
// http/protobuf and http/json. Errors are those of the chosen exporter's create().
absl::StatusOr<std::unique_ptr<SpanExporter>> makeOtlpExporter(
    uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
    ExporterCounters& counters, const OtlpExporterOptions& options = {});

}  // namespace tracecar::exporter
