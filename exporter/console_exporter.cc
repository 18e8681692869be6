#include "exporter/console_exporter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "exporter/log.h"
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

namespace {

// O_NONBLOCK: a FIFO's write end otherwise blocks in open() until a reader comes, before the
// sidecar has even started listening; without a reader it gives ENXIO instead.
int openForAppending(const std::string& path) noexcept {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0) return -1;
  // Writes block as before (the export thread's, never a worker's).
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

bool isFifo(int fd) noexcept {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

constexpr std::string_view kComponent = "exporter";

}  // namespace

std::unique_ptr<ConsoleExporter> ConsoleExporter::toFile(const std::string& path,
                                                         EncodeFunction encode,
                                                         std::string& error) {
  const int fd = openForAppending(path);
  if (fd < 0 && errno != ENXIO) {
    error = "cannot open " + path + ": " + std::generic_category().message(errno);
    return nullptr;
  }
  auto exporter = std::make_unique<ConsoleExporter>(fd, fd >= 0, std::move(encode));
  if (fd >= 0 && !isFifo(fd)) return exporter;
  exporter->fifo_ = path;
  if (fd < 0) {
    log(LogLevel::kWarn, kComponent,
        "console exporter: " + path +
            " is a FIFO with no reader yet; waiting for one (spans exported until a reader opens "
            "it are dropped, counted as non_retryable)");
  }
  return exporter;
}

bool ConsoleExporter::openFifo(std::string& error) noexcept {
  const int fd = openForAppending(fifo_);
  if (fd < 0) {
    error = errno == ENXIO ? "no reader has opened the FIFO " + fifo_ + " yet"
                           : "cannot open " + fifo_ + ": " +
                                 std::generic_category().message(errno);
    return false;
  }
  fd_ = fd;
  owns_fd_ = true;
  log(LogLevel::kInfo, kComponent, "console exporter: a reader opened " + fifo_ + "; writing to it");
  return true;
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
  if (waitingForReader()) {
    std::string error;
    if (!openFifo(error)) {
      outcome.status = ExportOutcome::Status::kNonRetryable;
      outcome.message = "console exporter: " + error;
      done(std::move(outcome));
      return;
    }
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
      const int error = errno;
      outcome.status = ExportOutcome::Status::kNonRetryable;
      outcome.message = "console exporter: write failed: " + std::generic_category().message(error);
      if (error == EPIPE && !fifo_.empty()) {
        // The FIFO's reader went away (SIGPIPE is ignored): wait for the next one.
        closeFd();
        log(LogLevel::kWarn, kComponent,
            "console exporter: the reader of " + fifo_ + " went away; waiting for another");
      }
      break;
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  done(std::move(outcome));
}

void ConsoleExporter::shutdown(std::function<void()> done) noexcept {
  closeFd();
  fifo_.clear();  // no longer waited for
  if (done) done();
}

void ConsoleExporter::closeFd() noexcept {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
  owns_fd_ = false;
  fd_ = -1;
}

}  // namespace tracecar::exporter
