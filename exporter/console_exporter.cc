#include "exporter/console_exporter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "exporter/otlp_json_encoder.h"

namespace tracecar::exporter {

ConsoleExporter::EncodeFunction ConsoleExporter::otlpJson(Resource resource,
                                                          InstrumentationScope scope) {
  // The encoder lives in the function, which lives on the exporter thread only.
  return [encoder = std::make_shared<OtlpJsonEncoder>(), resource = std::move(resource),
          scope = std::move(scope)](std::span<const SpanRecord* const> batch, std::string& out) {
    encoder->encode(resource, scope, batch, out);
  };
}

ConsoleExporter::ConsoleExporter(EncodeFunction encode)
    : ConsoleExporter(STDOUT_FILENO, false, std::move(encode)) {}

ConsoleExporter::ConsoleExporter(int fd, bool owns_fd, EncodeFunction encode)
    : fd_(fd), owns_fd_(owns_fd), encode_(std::move(encode)) {}

std::unique_ptr<ConsoleExporter> ConsoleExporter::toFile(const std::string& path,
                                                         EncodeFunction encode,
                                                         std::string& error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot open " + path + ": " + std::generic_category().message(errno);
    return nullptr;
  }
  return std::make_unique<ConsoleExporter>(fd, true, std::move(encode));
}

ConsoleExporter::~ConsoleExporter() { closeFd(); }

void ConsoleExporter::exportBatch(std::span<const SpanRecord* const> batch,
                                  uint64_t /*deadline_ms*/, DoneCallback done) noexcept {
  ExportOutcome outcome;
  try {
    line_.clear();
    encode_(batch, line_);
    line_.push_back('\n');
  } catch (const std::exception& e) {
    outcome.status = ExportOutcome::Status::kNonRetryable;
    outcome.message = std::string("console exporter: encoding failed: ") + e.what();
    done(std::move(outcome));
    return;
  } catch (...) {
    outcome.status = ExportOutcome::Status::kNonRetryable;
    outcome.message = "console exporter: encoding failed";
    done(std::move(outcome));
    return;
  }
  // A plain blocking write: it runs on the exporter thread, never on a worker, and stdout (the
  // container's log pipe) or a local file is fast; if it stalls, the queue absorbs or drops.
  // The deadline is therefore not enforced here.
  const char* data = line_.data();
  size_t left = line_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      outcome.status = ExportOutcome::Status::kNonRetryable;
      outcome.message = "console exporter: write failed: " + std::generic_category().message(errno);
      break;
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  done(std::move(outcome));
}

void ConsoleExporter::shutdown(std::function<void()> done) noexcept {
  closeFd();
  if (done) done();
}

void ConsoleExporter::closeFd() noexcept {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
  owns_fd_ = false;
  fd_ = -1;
}

}  // namespace tracecar::exporter
