#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// The gRPC-over-HTTP/2 pieces the OTLP/gRPC exporter needs (PROTOCOL-HTTP2.md in the gRPC
// repository), without libgrpc.
namespace tracecar::exporter {

inline constexpr std::string_view kOtlpGrpcTraceExportPath =
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

// gRPC status codes (only those the exporter names).
enum class GrpcCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};
std::string_view grpcCodeName(int code) noexcept;  // "UNAVAILABLE", or "CODE_<n>"

// Length-Prefixed-Message: compressed flag, 4-byte big-endian length, message.
void appendGrpcMessage(std::string_view message, bool compressed, std::string& out);
// Splits one Length-Prefixed-Message off the front of body. False when body is not exactly one
// complete message.
bool readGrpcMessage(std::string_view body, bool& compressed, std::string_view& message) noexcept;

// grpc-timeout: at most 8 digits and a unit; milliseconds while they fit, then seconds.
std::string grpcTimeout(std::chrono::milliseconds timeout);

// grpc-message is percent-encoded (any %XX); a malformed escape is kept as is.
std::string grpcMessageDecode(std::string_view value);

// What grpc-status-details-bin (a base64 google.rpc.Status, padding optional) says.
struct GrpcStatusDetails {
  int code = 0;
  std::string message;
  // A google.rpc.RetryInfo among the details: its retry_delay.
  std::optional<std::chrono::milliseconds> retry_delay;
};
std::optional<GrpcStatusDetails> parseGrpcStatusDetails(std::string_view base64_value);

// The gRPC status an HTTP status other than 200 stands for (gRPC's HTTP-to-gRPC mapping).
int grpcCodeFromHttpStatus(int http_status) noexcept;

// What the OTLP spec says to do with a gRPC status. RESOURCE_EXHAUSTED is retryable only when
// the server sent RetryInfo.
enum class GrpcDisposition : uint8_t { kSuccess, kRetryable, kNonRetryable };
GrpcDisposition classifyOtlpGrpcStatus(int code, bool has_retry_info) noexcept;

}  // namespace tracecar::exporter
