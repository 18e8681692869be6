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
#include "exporter/export_attempt_loop.h"
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

class OtlpGrpcExporter::Impl final
    : public ExportAttemptLoop<OtlpGrpcExporter::Impl, OtlpGrpcConnection>,
      public OtlpGrpcConnectionCallbacks {
 public:
  Impl(uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
       ExporterCounters& counters, const Options& options, OtlpHttpTarget target);

  void exportBatch(std::span<const SpanRecord* const> batch, uint64_t deadline_ms,
                   DoneCallback done) noexcept;

 private:
  friend class ExportAttemptLoop<Impl, OtlpGrpcConnection>;

  bool encode(std::span<const SpanRecord* const> batch) noexcept;
  void startAttempt() noexcept;
  void succeeded(const OtlpGrpcResponse& response) noexcept;

  // OtlpGrpcConnectionCallbacks.
  void onResponse(const OtlpGrpcResponse& response) override;
  void onConnectionFailure(std::string_view reason) override;
  void onConnectionReleased() override;

  const Resource resource_;
  const InstrumentationScope scope_;
  const OtlpHttpTarget target_;
  const std::chrono::milliseconds timeout_;  // per batch; kNoTimeout: none
  const size_t max_response_bytes_;
  const http::H2Head head_;  // what every call carries but grpc-timeout

  OtlpProtoEncoder proto_encoder_;
  std::unique_ptr<GzipCompressor> gzip_;  // when compression is gzip

  // Reused across batches.
  std::string body_;
  std::string compressed_;
  std::string framed_;  // the Length-Prefixed-Message sent
  http::H2Head request_head_;
  std::string decoded_;  // a gzip-encoded response body

  uint64_t connections_opened_ = 0;
};

OtlpGrpcExporter::Impl::Impl(uv_loop_t* loop, const OtlpConfig& config, Resource resource,
                             InstrumentationScope scope, ExporterCounters& counters,
                             const Options& options, OtlpHttpTarget target)
    : ExportAttemptLoop(loop, counters, options.backoff,
                        options.seed != 0 ? options.seed : freshSeed(this)),
      resource_(std::move(resource)),
      scope_(std::move(scope)),
      target_(std::move(target)),
      timeout_(config.timeout),
      max_response_bytes_(options.max_response_bytes),
      head_(grpcHead(config, scope_.version)),
      gzip_(config.compression == Compression::kGzip ? std::make_unique<GzipCompressor>()
                                                     : nullptr) {}

// ---- one batch ----

void OtlpGrpcExporter::Impl::exportBatch(std::span<const SpanRecord* const> batch,
                                         uint64_t deadline_ms, DoneCallback done) noexcept {
  if (!beginBatch(batch.size(), deadline_ms, timeout_, done)) return;
  if (!encode(batch)) return;
  if (!startDeadline()) return;
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
    // Without a deadline the call has no timeout: gRPC reads a missing grpc-timeout as infinite.
    if (deadline_ != kNoDeadline) {
      request_head_.headers.add("grpc-timeout", grpcTimeout(timeLeft(now, deadline_)));
    }
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
      refused_log_.log(LogLevel::kError, kComponent, text);
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
      answer_log_.log(LogLevel::kWarn, kComponent,
          "the collector accepted the spans but its answer could not be read (" +
              std::to_string(response.body.size()) + " bytes)");
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

void OtlpGrpcExporter::Impl::onConnectionFailure(std::string_view reason) { connectionFailed(reason); }

void OtlpGrpcExporter::Impl::onConnectionReleased() { handleClosed(); }

// ---- the public face ----

absl::StatusOr<std::unique_ptr<OtlpGrpcExporter>> OtlpGrpcExporter::create(
    uv_loop_t* loop, const OtlpConfig& config, Resource resource, InstrumentationScope scope,
    ExporterCounters& counters, const Options& options) {
  if (config.protocol != OtlpProtocol::kGrpc) {
    return absl::InvalidArgumentError("OTLP/gRPC exporter: the protocol is not grpc");
  }
  absl::StatusOr<OtlpHttpTarget> target =
      otlpTarget(config, options.max_response_bytes, "h2", "OTLP/gRPC exporter");
  if (!target.ok()) return target.status();

  try {
    auto impl = std::make_unique<Impl>(loop, config, std::move(resource), std::move(scope),
                                       counters, options, *std::move(target));
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

bool OtlpGrpcExporter::sendsProtobuf() const noexcept { return true; }

}  // namespace tracecar::exporter
