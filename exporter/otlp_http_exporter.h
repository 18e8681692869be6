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
struct OtlpHttpExporterOptions {
  Backoff::Params backoff;  // between retries, when the collector gives no Retry-After
  uint64_t seed = 0;        // of the backoff's jitter; 0: a fresh one per exporter
  size_t max_response_bytes = 64 * 1024;  // of a response body kept (and once gunzipped)
};

// OTLP/HTTP (http/protobuf or http/json) to one collector endpoint, over one keep-alive
// HTTP/1.1 connection on the exporter thread's loop, plain or TLS (memory BIOs).
//
// Per batch: encode once (gzip when configured), then POST, retrying 429/502/503/504 and
// connection failures with backoff and jitter or the server's Retry-After, until the batch's
// deadline: the earlier of the batch processor's and OTEL_EXPORTER_OTLP_TIMEOUT. Each attempt is
// counted in counters.requests; a partial success's rejected spans are reported in the outcome
// and its message logged.
class OtlpHttpExporter : public SpanExporter {
 public:
  using Options = OtlpHttpExporterOptions;

  // Fails when the TLS files cannot be loaded, naming the file. counters must outlive the
  // exporter.
  static absl::StatusOr<std::unique_ptr<OtlpHttpExporter>> create(
      uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
      ExporterCounters& counters, const Options& options = {});
  // After shutdown's done ran. Destroyed earlier (the loop abandoned with handles still
  // open), it leaves its handles' memory to the loop rather than free it under libuv's feet.
  ~OtlpHttpExporter() override;

  void exportBatch(std::span<const SpanRecord* const> batch, uint64_t deadline_ms,
                   DoneCallback done) noexcept override;
  void shutdown(std::function<void()> done) noexcept override;
  bool sendsProtobuf() const noexcept override;

  class Impl;

 private:
  explicit OtlpHttpExporter(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracecar::exporter
