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
#include "exporter/export_attempt_loop.h"
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

class OtlpHttpExporter::Impl final
    : public ExportAttemptLoop<OtlpHttpExporter::Impl, OtlpHttpConnection>,
      public OtlpHttpConnectionCallbacks {
 public:
  Impl(uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
       ExporterCounters& counters, const Options& options, OtlpHttpTarget target);

  void exportBatch(std::span<const SpanRecord* const> batch, uint64_t deadline_ms,
                   DoneCallback done) noexcept;
  bool sendsProtobuf() const noexcept { return !json_; }

 private:
  friend class ExportAttemptLoop<Impl, OtlpHttpConnection>;

  bool encode(std::span<const SpanRecord* const> batch) noexcept;
  void startAttempt() noexcept;
  void succeeded(const OtlpHttpResponse& response) noexcept;

  // OtlpHttpConnectionCallbacks.
  void onResponse(const OtlpHttpResponse& response) override;
  void onConnectionFailure(std::string_view reason) override;
  void onConnectionReleased() override;

  const Resource resource_;
  const InstrumentationScope scope_;
  const OtlpHttpTarget target_;
  const bool json_;
  const std::chrono::milliseconds timeout_;  // per batch; kNoTimeout: none
  const size_t max_response_bytes_;
  const std::string head_prefix_;  // request line and the headers every request carries

  OtlpProtoEncoder proto_encoder_;
  OtlpJsonEncoder json_encoder_;
  std::unique_ptr<GzipCompressor> gzip_;  // when compression is gzip

  // Reused across batches.
  std::string body_;
  std::string compressed_;
  std::string request_head_;
  std::string decoded_;  // a gzip-encoded response body
  const std::string* payload_ = &body_;

  uint64_t connections_opened_ = 0;
};

OtlpHttpExporter::Impl::Impl(uv_loop_t* loop, const OtlpConfig& config, Resource resource,
                             InstrumentationScope scope, ExporterCounters& counters,
                             const Options& options, OtlpHttpTarget target)
    : ExportAttemptLoop(loop, counters, options.backoff,
                        options.seed != 0 ? options.seed : freshSeed(this)),
      resource_(std::move(resource)),
      scope_(std::move(scope)),
      target_(std::move(target)),
      json_(config.protocol == OtlpProtocol::kHttpJson),
      timeout_(config.timeout),
      max_response_bytes_(options.max_response_bytes),
      head_prefix_(otlpRequestHeadPrefix(config, scope_.version)),
      gzip_(config.compression == Compression::kGzip ? std::make_unique<GzipCompressor>()
                                                     : nullptr) {}

// ---- one batch ----

void OtlpHttpExporter::Impl::exportBatch(std::span<const SpanRecord* const> batch,
                                         uint64_t deadline_ms, DoneCallback done) noexcept {
  if (!beginBatch(batch.size(), deadline_ms, timeout_, done)) return;
  if (!encode(batch)) return;
  if (!startDeadline()) return;
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
      refused_log_.log(LogLevel::kError, kComponent, message);
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
  if (!readable) {
    // What the parser read before it failed proves nothing: the 2xx stands, every span counts
    // as exported (as over gRPC).
    rejected = 0;
    message.clear();
  }
  try {
    if (!readable) {
      answer_log_.log(LogLevel::kWarn, kComponent,
          "the collector accepted the spans but its answer could not be read (" +
              logExcerpt(response.content_type) + ", " + std::to_string(response.body.size()) +
              " bytes)");
    }
    if (rejected > 0) {
      counters_.request(ExportRequestResult::kPartialSuccess);
      rejected_log_.log(LogLevel::kWarn, kComponent,
          "the collector rejected " + std::to_string(rejected) + " of " +
              std::to_string(batch_size_) + " spans" +
              (rejected > batch_size_ ? " (more than it was sent: counted as " +
                                            std::to_string(batch_size_) + ")"
                                      : std::string()) +
              ": " + logExcerpt(message));
    } else {
      counters_.request(ExportRequestResult::kSuccess);
      if (!message.empty()) {
        answer_log_.log(LogLevel::kWarn, kComponent,
            "the collector accepted the spans with a warning: " + logExcerpt(message));
      }
    }
  } catch (const std::bad_alloc&) {
    // The log lines are lost; the outcome is not.
  }
  complete(Status::kSuccess, std::move(message), rejected);
}

void OtlpHttpExporter::Impl::onConnectionFailure(std::string_view reason) { connectionFailed(reason); }

void OtlpHttpExporter::Impl::onConnectionReleased() { handleClosed(); }

// ---- the public face ----

absl::StatusOr<std::unique_ptr<OtlpHttpExporter>> OtlpHttpExporter::create(
    uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
    ExporterCounters& counters, const Options& options) {
  if (config.protocol == OtlpProtocol::kGrpc) {
    return absl::InvalidArgumentError("OTLP/HTTP exporter: the protocol is grpc, not http");
  }
  absl::StatusOr<OtlpHttpTarget> target =
      otlpTarget(config, options.max_response_bytes, "http/1.1", "OTLP/HTTP exporter");
  if (!target.ok()) return target.status();
  const Endpoint& endpoint = config.endpoint;
  if (endpoint.path.empty() || endpoint.path.front() != '/' ||
      !std::all_of(endpoint.path.begin(), endpoint.path.end(), isPathChar)) {
    return absl::InvalidArgumentError("OTLP/HTTP exporter: invalid endpoint path \"" +
                                      logExcerpt(endpoint.path) + "\"");
  }

  try {
    auto impl = std::make_unique<Impl>(loop, config, std::move(resource), std::move(scope),
                                       counters, options, *std::move(target));
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

bool OtlpHttpExporter::sendsProtobuf() const noexcept { return impl_->sendsProtobuf(); }

}  // namespace tracecar::exporter
