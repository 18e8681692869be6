#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "exporter/resource.h"
#include "exporter/span.h"
#include "exporter/span_exporter.h"

namespace tracecar::exporter {

// The exporter used when no OTLP endpoint is configured: each batch becomes one line (one
// OTLP/JSON ExportTraceServiceRequest) on stdout or appended to a file.
class ConsoleExporter : public SpanExporter {
 public:
  // Appends the batch's encoding to out (out is cleared by the caller). It must not write a
  // newline: one line is one batch.
  using EncodeFunction =
      std::function<void(std::span<const SpanRecord* const> batch, std::string& out)>;

  // The OTLP/JSON encoding of a batch under resource and scope.
  static EncodeFunction otlpJson(Resource resource, InstrumentationScope scope);

  // Writes to standard output.
  explicit ConsoleExporter(EncodeFunction encode);
  // Writes to fd; closes it at shutdown when owns_fd.
  ConsoleExporter(int fd, bool owns_fd, EncodeFunction encode);
  // Appends to path (created 0644 if missing); nullptr and error set when it cannot be opened.
  // Opening never blocks: a FIFO with no reader yet (a log shipper that starts after the
  // sidecar) gives an exporter that waits for one, logging that it does (waitingForReader());
  // the data path does not wait for it.
  static std::unique_ptr<ConsoleExporter> toFile(const std::string& path, EncodeFunction encode,
                                                 std::string& error);
  ~ConsoleExporter() override;

  // Success once the whole line is written; a write error is non-retryable, with its message.
  // Waiting for a FIFO's reader, each batch first opens the FIFO again, and is dropped
  // (non-retryable) while it still has none; a reader that goes away (EPIPE) is waited for again.
  void exportBatch(std::span<const SpanRecord* const> batch, uint64_t deadline_ms,
                   DoneCallback done) noexcept override;
  void shutdown(std::function<void()> done) noexcept override;

  bool waitingForReader() const noexcept { return fd_ < 0 && !fifo_.empty(); }

 private:
  // Opens fifo_ for writing without blocking; false while it has no reader.
  bool openFifo(std::string& error) noexcept;
  void closeFd() noexcept;

  int fd_;
  bool owns_fd_;
  EncodeFunction encode_;
  std::string fifo_;  // the path, when it is a FIFO opened (or waited for) by toFile
  std::string line_;  // reused across batches
};

}  // namespace tracecar::exporter
