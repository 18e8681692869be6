#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "exporter/deadline.h"
#include "exporter/span.h"

namespace tracecar::exporter {

// What became of one exported batch, after every retry.
struct ExportOutcome {
  enum class Status : uint8_t {
    kSuccess,         // the collector accepted it (maybe partially: see rejected_spans)
    kRetryExhausted,  // retryable failures until the deadline
    kNonRetryable,    // an answer that must not be retried (400, 401, grpc INVALID_ARGUMENT...)
  };
  Status status = Status::kSuccess;
  uint64_t rejected_spans = 0;  // partial success: spans the collector refused
  std::string message;          // partial success or error message, for the log
  // kRetryExhausted: the deadline the caller gave ran out (it was the batch's, earlier than the
  // exporter's own timeout); false when the exporter's own timeout ended the batch first.
  bool caller_deadline = false;
};

// The swap point between the batch processor and a wire format: OTLP/HTTP, OTLP/gRPC, the
// console. An exporter lives on the exporter thread's libuv loop; the batch processor calls
// exportBatch one batch at a time (never two at once) on that loop.
class SpanExporter {
 public:
  using DoneCallback = std::function<void(ExportOutcome)>;

  virtual ~SpanExporter() = default;

  // Exports batch (valid until done runs). Calls done exactly once, on the loop, no later than
  // deadline_ms (uv_now of the loop), retries included; kNoDeadline (deadline.h): whenever the
  // export ends, however long it retries. Never throws.
  virtual void exportBatch(std::span<const SpanRecord* const> batch, uint64_t deadline_ms,
                           DoneCallback done) noexcept = 0;

  // Closes connections and handles; done is called once all handles are closed.
  virtual void shutdown(std::function<void()> done) noexcept = 0;

  // True when batches go out as OTLP protobuf: the batch processor then has each span encoded
  // by the thread that ends it (SpanRecord::encoded), which spreads the encoding over the
  // requests instead of running it a batch at a time beside them. Any thread; constant.
  virtual bool sendsProtobuf() const noexcept { return false; }
};

}  // namespace tracecar::exporter
