#include "exporter/otlp_http_exporter.h"

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
#include "exporter/otlp_http_connection.h"
#include "exporter/otlp_json_encoder.h"
#include "exporter/otlp_proto_encoder.h"
#include "http/header_map.h"
#include "http/tls.h"

namespace tracecar::exporter {
namespace {

using std::chrono::milliseconds;
using Status = ExportOutcome::Status;

constexpr std::string_view kComponent = "exporter";

constexpr auto& equalsIgnoreCase = http::HeaderMap::nameEquals;

// "application/json; charset=utf-8" -> "application/json".
std::string_view mediaType(std::string_view content_type) noexcept {
  return ascii::trimOws(content_type.substr(0, content_type.find(';')));
}

bool readVarint(std::string_view& in, uint64_t& value) noexcept {
  value = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// google.rpc.Status.message (field 2), which an OTLP collector puts in a protobuf error body;
// nullopt when body is not such a message.
std::optional<std::string_view> rpcStatusMessage(std::string_view body) noexcept {
  std::optional<std::string_view> message;
  while (!body.empty()) {
    uint64_t key = 0;
    uint64_t value = 0;
    if (!readVarint(body, key)) return std::nullopt;
    switch (key & 7) {
      case 0:
        if (!readVarint(body, value)) return std::nullopt;
        break;
      case 1:
      case 5: {
        const size_t n = (key & 7) == 1 ? 8 : 4;
        if (body.size() < n) return std::nullopt;
        body.remove_prefix(n);
        break;
      }
      case 2:
        if (!readVarint(body, value) || value > body.size()) return std::nullopt;
        if ((key >> 3) == 2) message = body.substr(0, value);
        body.remove_prefix(value);
        break;
      default:
        return std::nullopt;
    }
  }
  return message;
}

// A 2xx answer's partial success, read per its Content-Type (protobuf or JSON; as sent when it
// has none) and Content-Encoding (gzip decoded into scratch, at most max_bytes). False when the
// body could not be read: the spans were accepted all the same.
bool readPartialSuccess(const OtlpHttpResponse& response, bool sent_json, size_t max_bytes,
                        std::string& scratch, uint64_t& rejected, std::string& message) noexcept {
  rejected = 0;
  message.clear();
  if (response.body_truncated) return false;
  std::string_view body = response.body;
  const std::string_view encoding = ascii::trimOws(response.content_encoding);
  if (equalsIgnoreCase(encoding, "gzip")) {
    if (!gzipDecompress(body, scratch, max_bytes).ok()) return false;
    body = scratch;
  } else if (!encoding.empty() && !equalsIgnoreCase(encoding, "identity")) {
    return false;
  }
  const std::string_view type = mediaType(response.content_type);
  if (type.empty() ? sent_json : equalsIgnoreCase(type, "application/json")) {
    return parseJsonPartialSuccess(body, rejected, message);
  }
  if (type.empty() || equalsIgnoreCase(type, "application/x-protobuf") ||
      equalsIgnoreCase(type, "application/protobuf")) {
    return parseExportTraceServiceResponse(body, rejected, message);
  }
  return true;  // not an OTLP answer (a proxy's page): nothing in it for us
}

// "401 Unauthorized: <message>", the message being a protobuf error body's google.rpc.Status
// message, or the start of the body: safe for one log line.
std::string describeErrorResponse(const OtlpHttpResponse& response) {
  std::string out = std::to_string(response.status) + " " + logExcerpt(response.reason);
  std::optional<std::string_view> detail;
  if (!response.body_truncated &&
      equalsIgnoreCase(mediaType(response.content_type), "application/x-protobuf")) {
    detail = rpcStatusMessage(response.body);
  }
  if (!detail && !response.body.empty()) detail = response.body;
  if (detail) out += ": " + logExcerpt(*detail);
  return out;
}

bool isPathChar(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

uint64_t freshSeed(const void* salt) noexcept {
  uint64_t x = uv_hrtime() ^ (reinterpret_cast<uintptr_t>(salt) * 0x9E3779B97F4A7C15ULL);
  return x == 0 ? 1 : x;
}

}  // namespace

class OtlpHttpExporter::Impl final : public OtlpHttpConnectionCallbacks {
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
  void succeeded(const OtlpHttpResponse& response) noexcept;
  void onDeadline() noexcept;
  void complete(Status status, std::string message, uint64_t rejected = 0) noexcept;
  void deliver() noexcept;
  void releaseConnection() noexcept;
  void handleClosed() noexcept;

  // OtlpHttpConnectionCallbacks.
  void onResponse(const OtlpHttpResponse& response) override;
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
  const bool json_;
  const uint64_t timeout_ms_;
  const size_t max_response_bytes_;
  const std::string head_prefix_;  // request line and the headers every request carries

  OtlpProtoEncoder proto_encoder_;
  OtlpJsonEncoder json_encoder_;
  std::unique_ptr<GzipCompressor> gzip_;  // when compression is gzip
  Backoff backoff_;

  // Reused across batches.
  std::string body_;
  std::string compressed_;
  std::string request_head_;
  std::string decoded_;  // a gzip-encoded response body
  const std::string* payload_ = &body_;

  uv_timer_t deadline_timer_{};  // the batch's deadline
  uv_timer_t retry_timer_{};     // the wait before the next attempt
  uv_timer_t done_timer_{};      // answers on a loop turn of its own, never inside a call
  int open_handles_ = 0;  // timers and connections not yet closed

  OtlpHttpConnection* connection_ = nullptr;
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

OtlpHttpExporter::Impl::Impl(uv_loop_t* loop, const OtlpConfig& config, Resource resource,
                             InstrumentationScope scope, ExporterCounters& counters,
                             const Options& options, OtlpHttpTarget target)
    : loop_(loop),
      resource_(std::move(resource)),
      scope_(std::move(scope)),
      counters_(counters),
      target_(std::move(target)),
      json_(config.protocol == OtlpProtocol::kHttpJson),
      timeout_ms_(static_cast<uint64_t>(std::max<int64_t>(0, config.timeout.count()))),
      max_response_bytes_(options.max_response_bytes),
      head_prefix_(otlpRequestHeadPrefix(config, scope_.version)),
      gzip_(config.compression == Compression::kGzip ? std::make_unique<GzipCompressor>()
                                                     : nullptr),
      backoff_(options.backoff, options.seed != 0 ? options.seed : freshSeed(this)) {}

void OtlpHttpExporter::Impl::init() noexcept {
  // Initialising a timer cannot fail on a running loop.
  for (uv_timer_t* timer : {&deadline_timer_, &retry_timer_, &done_timer_}) {
    uv_timer_init(loop_, timer);
    timer->data = this;
    ++open_handles_;
  }
}

// ---- one batch ----

void OtlpHttpExporter::Impl::exportBatch(std::span<const SpanRecord* const> batch,
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

bool OtlpHttpExporter::Impl::encode(std::span<const SpanRecord* const> batch) noexcept {
  try {
    if (json_) {
      json_encoder_.encode(resource_, scope_, batch, body_);
    } else {
      proto_encoder_.encode(resource_, scope_, batch, body_);
    }
    payload_ = &body_;
    if (gzip_) {
      if (absl::Status status = gzip_->compress(body_, compressed_); !status.ok()) {
        complete(Status::kNonRetryable, "compressing the batch: " + std::string(status.message()));
        return false;
      }
      payload_ = &compressed_;
    }
    request_head_.assign(head_prefix_);
    request_head_ += "Content-Length: ";
    request_head_ += std::to_string(payload_->size());
    request_head_ += "\r\n\r\n";
  } catch (const std::exception& e) {
    complete(Status::kNonRetryable, std::string("encoding the batch: ") + e.what());
    return false;
  }
  return true;
}

void OtlpHttpExporter::Impl::startAttempt() noexcept {
  ++attempts_;
  if (connection_ != nullptr && !connection_->reusable()) releaseConnection();
  if (connection_ == nullptr) {
    auto opened = OtlpHttpConnection::open(loop_, target_, *this, ++connections_opened_);
    if (!opened.ok()) {
      attemptFailed(std::string(opened.status().message()));
      return;
    }
    connection_ = *opened;
    ++open_handles_;
  }
  attempt_in_flight_ = true;
  connection_->send(request_head_, *payload_);
}

void OtlpHttpExporter::Impl::onResponse(const OtlpHttpResponse& response) {
  if (!attempt_in_flight_) return;
  attempt_in_flight_ = false;
  switch (classifyOtlpHttpStatus(response.status)) {
    case HttpDisposition::kSuccess:
      succeeded(response);
      return;
    case HttpDisposition::kRetryable: {
      counters_.request(ExportRequestResult::kRetryableFailure);
      std::optional<milliseconds> retry_after;
      if (response.retry_after) {
        retry_after = parseRetryAfter(*response.retry_after, std::chrono::system_clock::now());
      }
      last_error_ = "the collector answered " + std::to_string(response.status) + " " +
                    logExcerpt(response.reason);
      scheduleRetry(retry_after);
      return;
    }
    case HttpDisposition::kNonRetryable: {
      counters_.request(ExportRequestResult::kNonRetryableFailure);
      std::string message = "the collector refused " + std::to_string(batch_size_) + " spans: ";
      message += describeErrorResponse(response);
      log(LogLevel::kError, kComponent, message);
      complete(Status::kNonRetryable, std::move(message));
      return;
    }
  }
}

void OtlpHttpExporter::Impl::succeeded(const OtlpHttpResponse& response) noexcept {
  uint64_t rejected = 0;
  std::string message;
  const bool readable =
      readPartialSuccess(response, json_, max_response_bytes_, decoded_, rejected, message);
  try {
    if (!readable) {
      log(LogLevel::kWarn, kComponent,
          "the collector accepted the spans but its answer could not be read (" +
              logExcerpt(response.content_type) + ", " + std::to_string(response.body.size()) +
              " bytes)");
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

void OtlpHttpExporter::Impl::onConnectionFailure(std::string_view reason) {
  if (!attempt_in_flight_) return;
  attempt_in_flight_ = false;
  releaseConnection();
  attemptFailed(std::string(reason));
}

void OtlpHttpExporter::Impl::attemptFailed(std::string reason) noexcept {
  counters_.request(ExportRequestResult::kRetryableFailure);
  last_error_ = std::move(reason);
  scheduleRetry(std::nullopt);
}

void OtlpHttpExporter::Impl::scheduleRetry(std::optional<milliseconds> retry_after) noexcept {
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

void OtlpHttpExporter::Impl::onDeadline() noexcept {
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

void OtlpHttpExporter::Impl::complete(Status status, std::string message,
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

void OtlpHttpExporter::Impl::deliver() noexcept {
  if (!completing_ || !done_) return;
  completing_ = false;
  DoneCallback done = std::move(done_);
  done_ = nullptr;
  ExportOutcome outcome = std::move(outcome_);
  outcome_ = ExportOutcome();
  done(std::move(outcome));  // may start the next batch, or shut down: nothing after this
}

void OtlpHttpExporter::Impl::releaseConnection() noexcept {
  OtlpHttpConnection* connection = connection_;
  connection_ = nullptr;
  if (connection != nullptr) connection->release();
}

// ---- timers ----

void OtlpHttpExporter::Impl::onDeadlineTimer(uv_timer_t* timer) noexcept {
  static_cast<Impl*>(timer->data)->onDeadline();
}

void OtlpHttpExporter::Impl::onRetryTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Impl*>(timer->data);
  if (self->done_ && !self->completing_) self->startAttempt();
}

void OtlpHttpExporter::Impl::onDoneTimer(uv_timer_t* timer) noexcept {
  static_cast<Impl*>(timer->data)->deliver();
}

// ---- shutdown ----

void OtlpHttpExporter::Impl::shutdown(std::function<void()> done) noexcept {
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

void OtlpHttpExporter::Impl::onTimerClosed(uv_handle_t* handle) noexcept {
  static_cast<Impl*>(handle->data)->handleClosed();
}

void OtlpHttpExporter::Impl::onConnectionReleased() { handleClosed(); }

void OtlpHttpExporter::Impl::handleClosed() noexcept {
  --open_handles_;
  if (!shutting_down_ || open_handles_ != 0) return;
  std::function<void()> finished = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  if (finished) finished();  // may destroy the exporter: nothing after this
}

// ---- the public face ----

absl::StatusOr<std::unique_ptr<OtlpHttpExporter>> OtlpHttpExporter::create(
    uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
    ExporterCounters& counters, const Options& options) {
  if (config.protocol == OtlpProtocol::kGrpc) {
    return absl::InvalidArgumentError("OTLP/HTTP exporter: the protocol is grpc, not http");
  }
  const Endpoint& endpoint = config.endpoint;
  if (endpoint.scheme != "http" && endpoint.scheme != "https") {
    return absl::InvalidArgumentError("OTLP/HTTP exporter: unsupported scheme \"" +
                                      logExcerpt(endpoint.scheme) + "\"");
  }
  if (endpoint.host.empty() || endpoint.port == 0) {
    return absl::InvalidArgumentError("OTLP/HTTP exporter: the endpoint has no host or port");
  }
  if (endpoint.path.empty() || endpoint.path.front() != '/' ||
      !std::all_of(endpoint.path.begin(), endpoint.path.end(), isPathChar)) {
    return absl::InvalidArgumentError("OTLP/HTTP exporter: invalid endpoint path \"" +
                                      logExcerpt(endpoint.path) + "\"");
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
    tls.alpn = {"http/1.1"};
    auto context = http::TlsContext::client(tls);
    if (!context.ok()) {
      return absl::Status(context.status().code(),
                          "OTLP/HTTP exporter: " + std::string(context.status().message()));
    }
    target.tls = *std::move(context);
  }

  try {
    auto impl = std::make_unique<Impl>(loop, config, std::move(resource), std::move(scope),
                                       counters, options, std::move(target));
    std::unique_ptr<OtlpHttpExporter> exporter(new OtlpHttpExporter(std::move(impl)));
    exporter->impl_->init();
    return exporter;
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(std::string("OTLP/HTTP exporter: ") + e.what());
  }
}

OtlpHttpExporter::OtlpHttpExporter(std::unique_ptr<Impl> impl) noexcept
    : impl_(std::move(impl)) {}

OtlpHttpExporter::~OtlpHttpExporter() {
  if (impl_ && !impl_->deletable()) {
    // The loop still holds our handles (shutdown never finished): leave it their memory.
    static_cast<void>(impl_.release());
  }
}

void OtlpHttpExporter::exportBatch(std::span<const SpanRecord* const> batch,
                                   uint64_t deadline_ms, DoneCallback done) noexcept {
  impl_->exportBatch(batch, deadline_ms, std::move(done));
}

void OtlpHttpExporter::shutdown(std::function<void()> done) noexcept {
  impl_->shutdown(std::move(done));
}

}  // namespace tracecar::exporter
