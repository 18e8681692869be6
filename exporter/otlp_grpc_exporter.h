#pragma once

#include <uv.h>

#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "exporter/exporter_counters.h"
#include "exporter/otlp_config.h"
#include "exporter/resource.h"
#include "exporter/retry_policy.h"
#include "exporter/span.h"
#include "exporter/span_exporter.h"

namespace tracecar::exporter {

// Transport settings that have no OTEL_* variable (tests shorten the backoff).
struct OtlpGrpcExporterOptions {
  Backoff::Params backoff;  // between retries, when the collector gives no RetryInfo
  uint64_t seed = 0;        // of the backoff's jitter; 0: a fresh one per exporter
  size_t max_response_bytes = 64 * 1024;  // of a response message kept (and once gunzipped)
};

// OTLP/gRPC: unary TraceService/Export calls to one collector endpoint, over one HTTP/2
// connection (http::H2Session; h2c with prior knowledge for http://, TLS with ALPN h2 for
// https://) on the exporter thread's loop, reused across batches and reopened after a GOAWAY or
// a failure. No libgrpc.
//
// Per batch: encode once (gzip with grpc-encoding: gzip when configured), then call, retrying
// CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS and connection
// failures with backoff and jitter, and RESOURCE_EXHAUSTED only when the status carries
// RetryInfo (whose delay is then honoured), until the batch's deadline: the earlier of the batch
// processor's and OTEL_EXPORTER_OTLP_TIMEOUT, also sent as grpc-timeout. Each attempt is counted
// in counters.requests as the HTTP transport counts them.
class OtlpGrpcExporter : public SpanExporter {
 public:
  using Options = OtlpGrpcExporterOptions;

  // Fails when the TLS files cannot be loaded, naming the file. counters must outlive the
  // exporter.
  static absl::StatusOr<std::unique_ptr<OtlpGrpcExporter>> create(
      uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
      ExporterCounters& counters, const Options& options = {});
  // After shutdown's done ran. Destroyed earlier (the loop abandoned with handles still
  // open), it leaves its handles' memory to the loop rather than free it under libuv's feet.
  ~OtlpGrpcExporter() override;

  void exportBatch(std::span<const SpanRecord* const> batch, uint64_t deadline_ms,
                   DoneCallback done) noexcept override;
  void shutdown(std::function<void()> done) noexcept override;
  bool sendsProtobuf() const noexcept override;

  class Impl;

 private:
  explicit OtlpGrpcExporter(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracecar::exporter
