#include "exporter/otlp_grpc_wire.h"

#include <array>

namespace tracecar::exporter {
namespace {

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

// Calls field(number, wire_type, varint, bytes) for each field of a protobuf message; false
// when the message is malformed.
template <class Field>
bool forEachField(std::string_view in, Field&& field) {
  while (!in.empty()) {
    uint64_t key = 0;
    uint64_t value = 0;
    std::string_view bytes;
    if (!readVarint(in, key)) return false;
    switch (key & 7) {
      case 0:
        if (!readVarint(in, value)) return false;
        break;
      case 1:
      case 5: {
        const size_t n = (key & 7) == 1 ? 8 : 4;
        if (in.size() < n) return false;
        in.remove_prefix(n);
        break;
      }
      case 2:
        if (!readVarint(in, value) || value > in.size()) return false;
        bytes = in.substr(0, value);
        in.remove_prefix(value);
        break;
      default:
        return false;
    }
    field(key >> 3, key & 7, value, bytes);
  }
  return true;
}

int base64Value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64, padding optional (gRPC sends -bin values unpadded).
std::optional<std::string> base64Decode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t bits = 0;
  int count = 0;
  for (char c : in) {
    const int v = base64Value(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  if (count >= 6) return std::nullopt;  // one lone character cannot end a group
  return out;
}

int hexValue(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view grpcCodeName(int code) noexcept {
  static constexpr std::array<std::string_view, 17> kNames = {
      "OK",           "CANCELLED",         "UNKNOWN",           "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS",    "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",   "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",       "DATA_LOSS",
      "UNAUTHENTICATED"};
  if (code >= 0 && static_cast<size_t>(code) < kNames.size()) return kNames[static_cast<size_t>(code)];
  return "UNKNOWN_CODE";
}

void appendGrpcMessage(std::string_view message, bool compressed, std::string& out) {
  const auto n = static_cast<uint32_t>(message.size());
  const char prefix[5] = {static_cast<char>(compressed ? 1 : 0), static_cast<char>(n >> 24),
                          static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                          static_cast<char>(n)};
  out.append(prefix, sizeof prefix);
  out.append(message);
}

bool readGrpcMessage(std::string_view body, bool& compressed,
                     std::string_view& message) noexcept {
  if (body.size() < 5) return false;
  const auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(body[i])); };
  if (u(0) > 1) return false;
  const uint32_t n = (u(1) << 24) | (u(2) << 16) | (u(3) << 8) | u(4);
  if (body.size() - 5 != n) return false;
  compressed = u(0) == 1;
  message = body.substr(5);
  return true;
}

std::string grpcTimeout(std::chrono::milliseconds timeout) {
  const int64_t ms = timeout.count() < 0 ? 0 : timeout.count();
  if (ms <= 99999999) return std::to_string(ms) + "m";
  const int64_t seconds = ms / 1000;
  return std::to_string(seconds <= 99999999 ? seconds : 99999999) + "S";
}

std::string grpcMessageDecode(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size()) {
      const int hi = hexValue(value[i + 1]);
      const int lo = hexValue(value[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(value[i]);
  }
  return out;
}

std::optional<GrpcStatusDetails> parseGrpcStatusDetails(std::string_view base64_value) {
  const std::optional<std::string> raw = base64Decode(base64_value);
  if (!raw) return std::nullopt;
  GrpcStatusDetails details;
  // google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  const bool ok = forEachField(*raw, [&](uint64_t number, uint64_t type, uint64_t value,
                                         std::string_view bytes) {
    if (number == 1 && type == 0) details.code = static_cast<int>(value);
    if (number == 2 && type == 2) details.message = std::string(bytes);
    if (number != 3 || type != 2) return;
    // google.protobuf.Any { string type_url = 1; bytes value = 2; }
    std::string_view type_url;
    std::string_view any_value;
    forEachField(bytes, [&](uint64_t n, uint64_t t, uint64_t, std::string_view b) {
      if (n == 1 && t == 2) type_url = b;
      if (n == 2 && t == 2) any_value = b;
    });
    if (type_url != "type.googleapis.com/google.rpc.RetryInfo") return;
    // google.rpc.RetryInfo { Duration retry_delay = 1; }
    // google.protobuf.Duration { int64 seconds = 1; int32 nanos = 2; }
    int64_t seconds = 0;
    int64_t nanos = 0;
    forEachField(any_value, [&](uint64_t n, uint64_t t, uint64_t, std::string_view b) {
      if (n != 1 || t != 2) return;
      forEachField(b, [&](uint64_t dn, uint64_t dt, uint64_t v, std::string_view) {
        if (dn == 1 && dt == 0) seconds = static_cast<int64_t>(v);
        if (dn == 2 && dt == 0) nanos = static_cast<int32_t>(v);
      });
    });
    if (seconds < 0 || nanos < 0) {
      seconds = 0;
      nanos = 0;
    }
    constexpr int64_t kMaxSeconds = 24 * 3600;  // as Retry-After: at most a day
    if (seconds > kMaxSeconds) seconds = kMaxSeconds;
    // Rounded up: a server asking for 1.000000002 s does not get 1 s.
    details.retry_delay = std::chrono::milliseconds(seconds * 1000 + (nanos + 999999) / 1000000);
  });
  if (!ok) return std::nullopt;
  return details;
}

int grpcCodeFromHttpStatus(int http_status) noexcept {
  switch (http_status) {
    case 400: return static_cast<int>(GrpcCode::kInternal);
    case 401: return static_cast<int>(GrpcCode::kUnauthenticated);
    case 403: return static_cast<int>(GrpcCode::kPermissionDenied);
    case 404: return static_cast<int>(GrpcCode::kUnimplemented);
    case 429:
    case 502:
    case 503:
    case 504: return static_cast<int>(GrpcCode::kUnavailable);
    default: return static_cast<int>(GrpcCode::kUnknown);
  }
}

GrpcDisposition classifyOtlpGrpcStatus(int code, bool has_retry_info) noexcept {
  switch (static_cast<GrpcCode>(code)) {
    case GrpcCode::kOk:
      return GrpcDisposition::kSuccess;
    case GrpcCode::kCancelled:
    case GrpcCode::kDeadlineExceeded:
    case GrpcCode::kAborted:
    case GrpcCode::kOutOfRange:
    case GrpcCode::kUnavailable:
    case GrpcCode::kDataLoss:
      return GrpcDisposition::kRetryable;
    case GrpcCode::kResourceExhausted:
      return has_retry_info ? GrpcDisposition::kRetryable : GrpcDisposition::kNonRetryable;
    default:
      return GrpcDisposition::kNonRetryable;
  }
}

}  // namespace tracecar::exporter
