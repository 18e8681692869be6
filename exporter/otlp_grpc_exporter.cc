#include "exporter/otlp_grpc_exporter.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/ascii.h"
#include "exporter/gzip.h"
#include "exporter/log.h"
#include "exporter/otlp_grpc_connection.h"
#include "exporter/otlp_grpc_wire.h"
#include "exporter/otlp_proto_encoder.h"
#include "http/header_map.h"
#include "http/tls.h"

namespace tracecar::exporter {
namespace {

using std::chrono::milliseconds;
using Status = ExportOutcome::Status;

constexpr std::string_view kComponent = "exporter";
constexpr std::string_view kGrpcContentType = "application/grpc";

uint64_t freshSeed(const void* salt) noexcept {
  uint64_t x = uv_hrtime() ^ (reinterpret_cast<uintptr_t>(salt) * 0x9E3779B97F4A7C15ULL);
  return x == 0 ? 1 : x;
}

bool isMetadataKey(std::string_view key) noexcept {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
  });
}

bool isMetadataValue(std::string_view value) noexcept {
  return std::all_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u < 0x7f);
  });
}

// Names the transport writes itself, and gRPC's own (grpc-*).
bool isReservedMetadata(std::string_view key) noexcept {
  for (std::string_view reserved : {"host", "content-length", "content-type", "te", "connection",
                                    "keep-alive", "transfer-encoding", "upgrade",
                                    "proxy-connection", "content-encoding"}) {
    if (http::HeaderMap::nameEquals(key, reserved)) return true;
  }
  return key.size() >= 5 && http::HeaderMap::nameEquals(key.substr(0, 5), "grpc-");
}

// Everything of the call's head but grpc-timeout, which depends on the time left.
http::H2Head grpcHead(const OtlpConfig& config, std::string_view version) {
  http::H2Head head;
  head.method = "POST";
  head.scheme = config.endpoint.scheme;
  head.authority = config.endpoint.hostHeader();
  head.path = std::string(kOtlpGrpcTraceExportPath);
  head.headers.add("content-type", kGrpcContentType);
  head.headers.add("te", "trailers");
  if (config.compression == Compression::kGzip) head.headers.add("grpc-encoding", "gzip");
  bool user_agent_configured = false;
  http::HeaderMap extra;
  for (const auto& [name, value] : config.headers) {
    if (!isMetadataKey(name) || !isMetadataValue(value)) {
      log(LogLevel::kWarn, kComponent,
          "OTLP header \"" + logExcerpt(name) + "\" is not valid gRPC metadata; not sent");
      continue;
    }
    if (isReservedMetadata(name)) {
      log(LogLevel::kWarn, kComponent,
          "OTLP header \"" + name + "\" is set by the exporter or gRPC itself; not sent");
      continue;
    }
    if (http::HeaderMap::nameEquals(name, "user-agent")) user_agent_configured = true;
    extra.add(name, value);
  }
  if (!user_agent_configured) {
    head.headers.add("user-agent",
                     version.empty() ? std::string("tracecar") : "tracecar/" + std::string(version));
  }
  for (size_t i = 0; i < extra.size(); ++i) head.headers.add(extra.name(i), extra.value(i));
  return head;
}

}  // namespace

class OtlpGrpcExporter::Impl final : public OtlpGrpcConnectionCallbacks {
 public:
  Impl(uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
       ExporterCounters& counters, const Options& options, OtlpHttpTarget target);

  void init() noexcept;
  // No handle of ours is open: the memory may go.
  bool deletable() const noexcept { return open_handles_ == 0; }

  void exportBatch(std::span<const SpanRecord* const> batch, uint64_t deadline_ms,
                   DoneCallback done) noexcept;
  void shutdown(std::function<void()> done) noexcept;

 private:
  bool encode(std::span<const SpanRecord* const> batch) noexcept;
  void startAttempt() noexcept;
  void attemptFailed(std::string reason) noexcept;
  void scheduleRetry(std::optional<milliseconds> retry_after) noexcept;
  void succeeded(const OtlpGrpcResponse& response) noexcept;
  void onDeadline() noexcept;
  void complete(Status status, std::string message, uint64_t rejected = 0) noexcept;
  void deliver() noexcept;
  void releaseConnection() noexcept;
  void handleClosed() noexcept;

  // OtlpGrpcConnectionCallbacks.
  void onResponse(const OtlpGrpcResponse& response) override;
  void onConnectionFailure(std::string_view reason) override;
  void onConnectionReleased() override;

  static void onDeadlineTimer(uv_timer_t* timer) noexcept;
  static void onRetryTimer(uv_timer_t* timer) noexcept;
  static void onDoneTimer(uv_timer_t* timer) noexcept;
  static void onTimerClosed(uv_handle_t* handle) noexcept;

  uv_loop_t* const loop_;
  const Resource resource_;
  const InstrumentationScope scope_;
  ExporterCounters& counters_;
  const OtlpHttpTarget target_;
  const uint64_t timeout_ms_;
  const size_t max_response_bytes_;
  const http::H2Head head_;  // what every call carries but grpc-timeout

  OtlpProtoEncoder proto_encoder_;
  std::unique_ptr<GzipCompressor> gzip_;  // when compression is gzip
  Backoff backoff_;

  // Reused across batches.
  std::string body_;
  std::string compressed_;
  std::string framed_;  // the Length-Prefixed-Message sent
  http::H2Head request_head_;
  std::string decoded_;  // a gzip-encoded response body

  uv_timer_t deadline_timer_{};  // the batch's deadline
  uv_timer_t retry_timer_{};     // the wait before the next attempt
  uv_timer_t done_timer_{};      // answers on a loop turn of its own, never inside a call
  int open_handles_ = 0;  // timers and connections not yet closed

  OtlpGrpcConnection* connection_ = nullptr;
  uint64_t connections_opened_ = 0;

  // The batch in flight.
  DoneCallback done_;
  size_t batch_size_ = 0;
  uint64_t deadline_ = 0;  // uv_now terms
  uint64_t started_ = 0;
  uint32_t attempts_ = 0;
  bool attempt_in_flight_ = false;
  bool completing_ = false;  // outcome_ waits for done_timer_
  ExportOutcome outcome_;
  std::string last_error_;

  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
};

OtlpGrpcExporter::Impl::Impl(uv_loop_t* loop, const OtlpConfig& config, Resource resource,
                             InstrumentationScope scope, ExporterCounters& counters,
                             const Options& options, OtlpHttpTarget target)
    : loop_(loop),
      resource_(std::move(resource)),
      scope_(std::move(scope)),
      counters_(counters),
      target_(std::move(target)),
      timeout_ms_(static_cast<uint64_t>(std::max<int64_t>(0, config.timeout.count()))),
      max_response_bytes_(options.max_response_bytes),
      head_(grpcHead(config, scope_.version)),
      gzip_(config.compression == Compression::kGzip ? std::make_unique<GzipCompressor>()
                                                     : nullptr),
      backoff_(options.backoff, options.seed != 0 ? options.seed : freshSeed(this)) {}

void OtlpGrpcExporter::Impl::init() noexcept {
  // Initialising a timer cannot fail on a running loop.
  for (uv_timer_t* timer : {&deadline_timer_, &retry_timer_, &done_timer_}) {
    uv_timer_init(loop_, timer);
    timer->data = this;
    ++open_handles_;
  }
}

// ---- one batch ----

void OtlpGrpcExporter::Impl::exportBatch(std::span<const SpanRecord* const> batch,
                                         uint64_t deadline_ms, DoneCallback done) noexcept {
  if (shutting_down_ || done_) {
    // Misuse (after shutdown, or two batches at once): answered at once rather than lost.
    ExportOutcome outcome;
    outcome.status = Status::kRetryExhausted;
    done(std::move(outcome));
    return;
  }
  done_ = std::move(done);
  batch_size_ = batch.size();
  uv_update_time(loop_);
  const uint64_t now = uv_now(loop_);
  started_ = now;
  deadline_ = std::min(deadline_ms, now + timeout_ms_);
  attempts_ = 0;
  last_error_.clear();
  backoff_.reset();
  if (!encode(batch)) return;
  if (deadline_ <= now) {
    complete(Status::kRetryExhausted, "the export deadline had passed before the first attempt");
    return;
  }
  uv_timer_start(&deadline_timer_, &Impl::onDeadlineTimer, deadline_ - now, 0);
  startAttempt();
}

bool OtlpGrpcExporter::Impl::encode(std::span<const SpanRecord* const> batch) noexcept {
  try {
    proto_encoder_.encode(resource_, scope_, batch, body_);
    const std::string* message = &body_;
    if (gzip_) {
      if (absl::Status status = gzip_->compress(body_, compressed_); !status.ok()) {
        complete(Status::kNonRetryable, "compressing the batch: " + std::string(status.message()));
        return false;
      }
      message = &compressed_;
    }
    framed_.clear();
    appendGrpcMessage(*message, gzip_ != nullptr, framed_);
  } catch (const std::exception& e) {
    complete(Status::kNonRetryable, std::string("encoding the batch: ") + e.what());
    return false;
  }
  return true;
}

void OtlpGrpcExporter::Impl::startAttempt() noexcept {
  ++attempts_;
  if (connection_ != nullptr && !connection_->reusable()) releaseConnection();
  if (connection_ == nullptr) {
    auto opened = OtlpGrpcConnection::open(loop_, target_, *this, ++connections_opened_);
    if (!opened.ok()) {
      attemptFailed(std::string(opened.status().message()));
      return;
    }
    connection_ = *opened;
    ++open_handles_;
  }
  uv_update_time(loop_);
  const uint64_t now = uv_now(loop_);
  try {
    request_head_ = head_;
    request_head_.headers.add("grpc-timeout",
                              grpcTimeout(milliseconds(deadline_ > now ? deadline_ - now : 0)));
  } catch (const std::bad_alloc&) {
    attemptFailed("out of memory");
    return;
  }
  attempt_in_flight_ = true;
  connection_->send(request_head_, framed_);
}

void OtlpGrpcExporter::Impl::onResponse(const OtlpGrpcResponse& response) {
  if (!attempt_in_flight_) return;
  attempt_in_flight_ = false;
  int code = static_cast<int>(GrpcCode::kUnknown);
  std::string message;
  if (response.grpc_status) {
    code = *response.grpc_status;
    message = grpcMessageDecode(response.grpc_message);
  } else if (response.http_status != 200) {
    code = grpcCodeFromHttpStatus(response.http_status);
    message = "HTTP status " + std::to_string(response.http_status);
  } else {
    code = static_cast<int>(GrpcCode::kInternal);
    message = "the answer has no grpc-status";
  }
  std::optional<milliseconds> retry_delay;
  if (!response.status_details.empty()) {
    if (std::optional<GrpcStatusDetails> details = parseGrpcStatusDetails(response.status_details)) {
      retry_delay = details->retry_delay;
      if (message.empty()) message = details->message;
    }
  }
  const std::string described = std::string(grpcCodeName(code)) +
                                (message.empty() ? "" : ": " + logExcerpt(message));
  switch (classifyOtlpGrpcStatus(code, retry_delay.has_value())) {
    case GrpcDisposition::kSuccess:
      succeeded(response);
      return;
    case GrpcDisposition::kRetryable:
      counters_.request(ExportRequestResult::kRetryableFailure);
      last_error_ = "the collector answered " + described;
      scheduleRetry(retry_delay);
      return;
    case GrpcDisposition::kNonRetryable: {
      counters_.request(ExportRequestResult::kNonRetryableFailure);
      std::string text = "the collector refused " + std::to_string(batch_size_) + " spans: " +
                         described;
      log(LogLevel::kError, kComponent, text);
      complete(Status::kNonRetryable, std::move(text));
      return;
    }
  }
}

void OtlpGrpcExporter::Impl::succeeded(const OtlpGrpcResponse& response) noexcept {
  uint64_t rejected = 0;
  std::string message;
  bool readable = !response.body_truncated;
  bool compressed = false;
  std::string_view payload;
  if (readable && !response.body.empty()) {
    readable = readGrpcMessage(response.body, compressed, payload);
    if (readable && compressed) {
      readable = http::HeaderMap::nameEquals(response.grpc_encoding, "gzip") &&
                 gzipDecompress(payload, decoded_, max_response_bytes_).ok();
      payload = decoded_;
    }
    if (readable) readable = parseExportTraceServiceResponse(payload, rejected, message);
    if (!readable) rejected = 0;
  }
  try {
    if (!readable) {
      log(LogLevel::kWarn, kComponent,
          "the collector accepted the spans but its answer could not be read (" +
              std::to_string(response.body.size()) + " bytes)");
    }
    if (rejected > 0) {
      counters_.request(ExportRequestResult::kPartialSuccess);
      log(LogLevel::kWarn, kComponent,
          "the collector rejected " + std::to_string(rejected) + " of " +
              std::to_string(batch_size_) + " spans: " + logExcerpt(message));
    } else {
      counters_.request(ExportRequestResult::kSuccess);
      if (!message.empty()) {
        log(LogLevel::kWarn, kComponent,
            "the collector accepted the spans with a warning: " + logExcerpt(message));
      }
    }
  } catch (const std::bad_alloc&) {
    // The log lines are lost; the outcome is not.
  }
  complete(Status::kSuccess, std::move(message), rejected);
}

void OtlpGrpcExporter::Impl::onConnectionFailure(std::string_view reason) {
  if (!attempt_in_flight_) return;
  attempt_in_flight_ = false;
  releaseConnection();
  attemptFailed(std::string(reason));
}

void OtlpGrpcExporter::Impl::attemptFailed(std::string reason) noexcept {
  counters_.request(ExportRequestResult::kRetryableFailure);
  last_error_ = std::move(reason);
  scheduleRetry(std::nullopt);
}

void OtlpGrpcExporter::Impl::scheduleRetry(std::optional<milliseconds> retry_after) noexcept {
  uv_update_time(loop_);
  const uint64_t now = uv_now(loop_);
  const milliseconds left(deadline_ > now ? deadline_ - now : 0);
  const std::optional<milliseconds> delay = retryDelay(retry_after, backoff_, left);
  if (!delay) {
    std::string message = "export of " + std::to_string(batch_size_) + " spans failed after " +
                          std::to_string(attempts_) +
                          (attempts_ == 1 ? " attempt" : " attempts") +
                          ", no time left to retry: " + last_error_;
    log(LogLevel::kError, kComponent, message);
    complete(Status::kRetryExhausted, std::move(message));
    return;
  }
  if (logEnabled(LogLevel::kDebug)) {
    log(LogLevel::kDebug, kComponent,
        "export attempt " + std::to_string(attempts_) + " failed (" + last_error_ +
            "); retrying in " + std::to_string(delay->count()) + " ms");
  }
  uv_timer_start(&retry_timer_, &Impl::onRetryTimer, static_cast<uint64_t>(delay->count()), 0);
}

void OtlpGrpcExporter::Impl::onDeadline() noexcept {
  if (!done_ || completing_) return;
  uv_timer_stop(&retry_timer_);
  uv_update_time(loop_);
  std::string message;
  if (attempt_in_flight_) {
    attempt_in_flight_ = false;
    releaseConnection();
    counters_.request(ExportRequestResult::kTimeout);
    message = "export of " + std::to_string(batch_size_) + " spans timed out after " +
              std::to_string(uv_now(loop_) - started_) + " ms (attempt " +
              std::to_string(attempts_) + ")";
    if (!last_error_.empty()) message += "; earlier: " + last_error_;
  } else {
    message = "export deadline passed while waiting to retry: " + last_error_;
  }
  log(LogLevel::kError, kComponent, message);
  complete(Status::kRetryExhausted, std::move(message));
}

void OtlpGrpcExporter::Impl::complete(Status status, std::string message,
                                      uint64_t rejected) noexcept {
  uv_timer_stop(&deadline_timer_);
  uv_timer_stop(&retry_timer_);
  attempt_in_flight_ = false;
  outcome_.status = status;
  outcome_.rejected_spans = rejected;
  outcome_.message = std::move(message);
  completing_ = true;
  uv_timer_start(&done_timer_, &Impl::onDoneTimer, 0, 0);
}

void OtlpGrpcExporter::Impl::deliver() noexcept {
  if (!completing_ || !done_) return;
  completing_ = false;
  DoneCallback done = std::move(done_);
  done_ = nullptr;
  ExportOutcome outcome = std::move(outcome_);
  outcome_ = ExportOutcome();
  done(std::move(outcome));  // may start the next batch, or shut down: nothing after this
}

void OtlpGrpcExporter::Impl::releaseConnection() noexcept {
  OtlpGrpcConnection* connection = connection_;
  connection_ = nullptr;
  if (connection != nullptr) connection->release();
}

// ---- timers ----

void OtlpGrpcExporter::Impl::onDeadlineTimer(uv_timer_t* timer) noexcept {
  static_cast<Impl*>(timer->data)->onDeadline();
}

void OtlpGrpcExporter::Impl::onRetryTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Impl*>(timer->data);
  if (self->done_ && !self->completing_) self->startAttempt();
}

void OtlpGrpcExporter::Impl::onDoneTimer(uv_timer_t* timer) noexcept {
  static_cast<Impl*>(timer->data)->deliver();
}

// ---- shutdown ----

void OtlpGrpcExporter::Impl::shutdown(std::function<void()> done) noexcept {
  if (shutting_down_) {
    if (open_handles_ == 0) {
      if (done) done();
      return;
    }
    if (done) {
      try {
        shutdown_done_ = [first = std::move(shutdown_done_), second = std::move(done)] {
          if (first) first();
          second();
        };
      } catch (const std::bad_alloc&) {
        // The second caller is not told; the first still is.
      }
    }
    return;
  }
  shutting_down_ = true;
  shutdown_done_ = std::move(done);

  if (done_) {
    // The batch in flight is answered first: with its outcome if it has one already.
    ExportOutcome outcome;
    if (completing_) {
      outcome = std::move(outcome_);
    } else {
      outcome.status = Status::kRetryExhausted;
      outcome.message = "the exporter shut down during the export";
    }
    completing_ = false;
    attempt_in_flight_ = false;
    DoneCallback batch_done = std::move(done_);
    done_ = nullptr;
    batch_done(std::move(outcome));
  }

  for (uv_timer_t* timer : {&deadline_timer_, &retry_timer_, &done_timer_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer), &Impl::onTimerClosed);
  }
  releaseConnection();  // the timers are still closing: done comes from a close callback
}

void OtlpGrpcExporter::Impl::onTimerClosed(uv_handle_t* handle) noexcept {
  static_cast<Impl*>(handle->data)->handleClosed();
}

void OtlpGrpcExporter::Impl::onConnectionReleased() { handleClosed(); }

void OtlpGrpcExporter::Impl::handleClosed() noexcept {
  --open_handles_;
  if (!shutting_down_ || open_handles_ != 0) return;
  std::function<void()> finished = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  if (finished) finished();  // may destroy the exporter: nothing after this
}

// ---- the public face ----

absl::StatusOr<std::unique_ptr<OtlpGrpcExporter>> OtlpGrpcExporter::create(
    uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
    ExporterCounters& counters, const Options& options) {
  if (config.protocol != OtlpProtocol::kGrpc) {
    return absl::InvalidArgumentError("OTLP/gRPC exporter: the protocol is not grpc");
  }
  const Endpoint& endpoint = config.endpoint;
  if (endpoint.scheme != "http" && endpoint.scheme != "https") {
    return absl::InvalidArgumentError("OTLP/gRPC exporter: unsupported scheme \"" +
                                      logExcerpt(endpoint.scheme) + "\"");
  }
  if (endpoint.host.empty() || endpoint.port == 0) {
    return absl::InvalidArgumentError("OTLP/gRPC exporter: the endpoint has no host or port");
  }

  OtlpHttpTarget target;
  target.host = endpoint.host;
  target.port = endpoint.port;
  target.max_body_bytes = options.max_response_bytes;
  if (endpoint.tls()) {
    http::TlsClientConfig tls;
    tls.ca_file = config.certificate;
    tls.cert_file = config.client_certificate;
    tls.key_file = config.client_key;
    tls.alpn = {"h2"};
    auto context = http::TlsContext::client(tls);
    if (!context.ok()) {
      return absl::Status(context.status().code(),
                          "OTLP/gRPC exporter: " + std::string(context.status().message()));
    }
    target.tls = *std::move(context);
  }

  try {
    auto impl = std::make_unique<Impl>(loop, config, std::move(resource), std::move(scope),
                                       counters, options, std::move(target));
    std::unique_ptr<OtlpGrpcExporter> exporter(new OtlpGrpcExporter(std::move(impl)));
    exporter->impl_->init();
    return exporter;
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(std::string("OTLP/gRPC exporter: ") + e.what());
  }
}

OtlpGrpcExporter::OtlpGrpcExporter(std::unique_ptr<Impl> impl) noexcept
    : impl_(std::move(impl)) {}

OtlpGrpcExporter::~OtlpGrpcExporter() {
  if (impl_ && !impl_->deletable()) {
    // The loop still holds our handles (shutdown never finished): leave it their memory.
    static_cast<void>(impl_.release());
  }
}

void OtlpGrpcExporter::exportBatch(std::span<const SpanRecord* const> batch,
                                   uint64_t deadline_ms, DoneCallback done) noexcept {
  impl_->exportBatch(batch, deadline_ms, std::move(done));
}

void OtlpGrpcExporter::shutdown(std::function<void()> done) noexcept {
  impl_->shutdown(std::move(done));
}

}  // namespace tracecar::exporter
