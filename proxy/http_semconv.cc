#include "proxy/http_semconv.h"

#include <algorithm>
#include <array>

#include "base/ascii.h"
#include "http/token.h"

namespace tracecar::proxy::semconv {
namespace {

constexpr std::string_view kDefaultMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                 "CONNECT", "OPTIONS", "TRACE", "PATCH"};

bool isAlpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }

int hexValue(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Does raw, form-decoded ("%XX" and '+'), equal expected? No allocation.
bool decodedEquals(std::string_view raw, std::string_view expected) noexcept {
  size_t j = 0;
  for (size_t i = 0; i < raw.size(); ++i, ++j) {
    char c = raw[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%' && i + 2 < raw.size()) {
      const int hi = hexValue(raw[i + 1]);
      const int lo = hexValue(raw[i + 2]);
      if (hi >= 0 && lo >= 0) {
        c = static_cast<char>(hi * 16 + lo);
        i += 2;
      }
    }
    if (j >= expected.size() || expected[j] != c) return false;
  }
  return j == expected.size();
}

bool shouldRedact(std::string_view key, const QueryRedaction& redaction) noexcept {
  if (redaction.mode == QueryRedaction::Mode::kAllValues) return true;
  for (const std::string& sensitive : redaction.sensitive_keys) {
    if (decodedEquals(key, sensitive)) return true;
  }
  return false;
}

// Path and query of the part of a target from its path on.
void splitPathAndQuery(std::string_view rest, RequestTarget& out) noexcept {
  size_t i = 0;
  while (i < rest.size() && rest[i] != '?' && rest[i] != '#') ++i;
  out.path = rest.substr(0, i);
  if (i < rest.size() && rest[i] == '?') {
    out.has_query = true;
    const std::string_view query = rest.substr(i + 1);
    out.query = query.substr(0, query.find('#'));
  }
}

std::optional<uint16_t> parsePort(std::string_view digits) noexcept {
  if (digits.empty() || digits.size() > 5) return std::nullopt;
  uint32_t port = 0;
  for (char c : digits) {
    if (!isDigit(c)) return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

}  // namespace

// ---- Methods ---------------------------------------------------------------------------------

KnownMethods::KnownMethods() : methods_(std::begin(kDefaultMethods), std::end(kDefaultMethods)) {}

absl::StatusOr<KnownMethods> KnownMethods::parse(std::string_view list) {
  KnownMethods known;
  if (ascii::trimOws(list).empty()) return known;
  known.methods_.clear();
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view name = ascii::trimOws(list.substr(0, comma));
    if (absl::Status status = checkName(name); !status.ok()) return status;
    if (!known.find(name)) known.methods_.emplace_back(name);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return known;
}

absl::Status KnownMethods::checkName(std::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("known HTTP methods: empty method name in the list");
  }
  for (char c : name) {
    if (!http::isTokenChar(c)) {
      return absl::InvalidArgumentError("known HTTP methods: \"" + std::string(name) +
                                        "\" is not a valid method name");
    }
  }
  return absl::OkStatus();
}

std::string KnownMethods::toString() const {
  std::string out;
  for (const std::string& method : methods_) {
    if (!out.empty()) out += ',';
    out += method;
  }
  return out;
}

std::optional<std::string_view> KnownMethods::find(std::string_view method) const noexcept {
  for (const std::string& known : methods_) {
    if (known == method) return std::string_view(known);
  }
  return std::nullopt;
}

HttpMethod normalizeMethod(std::string_view method, const KnownMethods& known) noexcept {
  if (const std::optional<std::string_view> name = known.find(method)) return {*name, false};
  return {kOtherValue, true};
}

void appendSpanName(const HttpMethod& method, std::string_view target, std::string& out) {
  out.append(method.other ? kOtherMethodSpanName : method.name);
  if (!target.empty()) {
    out.push_back(' ');
    out.append(target);
  }
}

// ---- Request target --------------------------------------------------------------------------

RequestTarget splitRequestTarget(std::string_view target, bool connect) noexcept {
  RequestTarget out;
  if (target.empty()) return out;
  if (connect && target.front() != '/') {
    out.form = TargetForm::kAuthority;
    out.authority = target;
    return out;
  }
  if (target == "*") {
    out.form = TargetForm::kAsterisk;
    out.path = target;
    return out;
  }
  if (target.front() == '/') {
    out.form = TargetForm::kOrigin;
    splitPathAndQuery(target, out);
    return out;
  }
  // absolute-form: scheme "://" authority path-abempty [ "?" query ]
  size_t i = 0;
  if (isAlpha(target[0])) {
    i = 1;
    while (i < target.size() &&
           (isAlpha(target[i]) || isDigit(target[i]) || target[i] == '+' || target[i] == '-' ||
            target[i] == '.')) {
      ++i;
    }
  }
  if (i > 0 && target.substr(i, 3) == "://") {
    out.form = TargetForm::kAbsolute;
    out.scheme = target.substr(0, i);
    std::string_view rest = target.substr(i + 3);
    size_t end = 0;
    while (end < rest.size() && rest[end] != '/' && rest[end] != '?' && rest[end] != '#') ++end;
    std::string_view authority = rest.substr(0, end);
    // The last '@': a password may hold an unencoded one, the host never does.
    if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
      out.has_userinfo = true;
      authority.remove_prefix(at + 1);
    }
    out.authority = authority;
    splitPathAndQuery(rest.substr(end), out);
    return out;
  }
  splitPathAndQuery(target, out);
  return out;
}

namespace {

// An IP literal's characters (RFC 3986 section 3.2.2, IPv6 and IPv4 forms, no zone).
bool isIpLiteral(std::string_view host) noexcept {
  if (host.empty()) return false;
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return hexValue(c) >= 0 || c == ':' || c == '.'; });
}

// RFC 3986 reg-name (which IPv4 addresses are too): unreserved, sub-delims and %HH. Userinfo
// ('@') and anything else that would carry more than a host into server.address is refused.
bool isRegName(std::string_view host) noexcept {
  if (host.empty()) return false;
  for (size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    if (c == '%') {
      if (i + 2 >= host.size() || hexValue(host[i + 1]) < 0 || hexValue(host[i + 2]) < 0) {
        return false;
      }
      i += 2;
      continue;
    }
    if (isAlpha(c) || isDigit(c)) continue;
    if (std::string_view("-._~!$&'()*+,;=").find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

std::optional<HostPort> parseHostPort(std::string_view authority) noexcept {
  authority = ascii::trimOws(authority);
  if (authority.empty()) return std::nullopt;
  HostPort out;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    out.host = authority.substr(1, close - 1);
    const size_t zone = out.host.find('%');  // RFC 6874: "[fe80::1%25eth0]"
    if (!isIpLiteral(out.host.substr(0, zone)) ||
        (zone != std::string_view::npos && !isRegName(out.host.substr(zone)))) {
      return std::nullopt;
    }
    const std::string_view rest = authority.substr(close + 1);
    if (rest.empty()) return out;
    if (rest.front() != ':') return std::nullopt;
    out.port = parsePort(rest.substr(1));
    return out;
  }
  const size_t colon = authority.find(':');
  if (colon == std::string_view::npos) {
    if (!isRegName(authority)) return std::nullopt;
    out.host = authority;
    return out;
  }
  if (authority.find(':', colon + 1) != std::string_view::npos) {
    // An IPv6 address without brackets (a sloppy X-Forwarded-Host): no port can be told apart.
    if (!isIpLiteral(authority)) return std::nullopt;
    out.host = authority;
    return out;
  }
  out.host = authority.substr(0, colon);
  if (!isRegName(out.host)) return std::nullopt;
  out.port = parsePort(authority.substr(colon + 1));
  return out;
}

std::optional<uint16_t> defaultPort(std::string_view scheme) noexcept {
  if (ascii::equalsIgnoreCase(scheme, "http")) return 80;
  if (ascii::equalsIgnoreCase(scheme, "https")) return 443;
  return std::nullopt;
}

std::string_view canonicalScheme(std::string_view scheme) noexcept {
  if (ascii::equalsIgnoreCase(scheme, "http")) return "http";
  if (ascii::equalsIgnoreCase(scheme, "https")) return "https";
  return scheme;
}

// ---- Redaction -------------------------------------------------------------------------------

std::vector<std::string> QueryRedaction::defaultSensitiveKeys() {
  return {"AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"};
}

void appendRedactedQuery(std::string_view query, const QueryRedaction& redaction,
                         std::string& out) {
  size_t start = 0;
  while (true) {
    size_t end = start;
    while (end < query.size() && query[end] != '&' && query[end] != ';') ++end;
    const std::string_view param = query.substr(start, end - start);
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos || !shouldRedact(param.substr(0, eq), redaction)) {
      out.append(param);
    } else {
      out.append(param.substr(0, eq + 1));
      out.append(kRedacted);
    }
    if (end >= query.size()) break;
    out.push_back(query[end]);
    start = end + 1;
  }
}

size_t appendUrlFull(std::string_view scheme, bool has_userinfo, std::string_view authority,
                     std::string_view path, std::optional<std::string_view> query,
                     const QueryRedaction& redaction, std::string& out) {
  if (!authority.empty()) {
    if (!scheme.empty()) {
      out.append(scheme);
      out.append("://");
    } else {
      out.append("//");
    }
    if (has_userinfo) {
      out.append(kRedacted);
      out.push_back(':');
      out.append(kRedacted);
      out.push_back('@');
    }
    out.append(authority);
  }
  out.append(path);
  if (!query) return std::string::npos;
  out.push_back('?');
  const size_t query_at = out.size();
  appendRedactedQuery(*query, redaction, out);
  return query_at;
}

// ---- Forwarding headers ----------------------------------------------------------------------

ForwardedElement parseForwarded(std::string_view value) noexcept {
  ForwardedElement out;
  size_t i = 0;
  const size_t n = value.size();
  while (i < n) {
    while (i < n && (ascii::isOws(value[i]) || value[i] == ';')) ++i;
    const size_t name_start = i;
    while (i < n && value[i] != '=' && value[i] != ';' && value[i] != ',' && !ascii::isOws(value[i])) ++i;
    const std::string_view name = value.substr(name_start, i - name_start);
    while (i < n && ascii::isOws(value[i])) ++i;
    std::string_view pair_value;
    if (i < n && value[i] == '=') {
      ++i;
      while (i < n && ascii::isOws(value[i])) ++i;
      if (i < n && value[i] == '"') {
        const size_t start = ++i;
        while (i < n && value[i] != '"') i += (value[i] == '\\' && i + 1 < n) ? 2 : 1;
        pair_value = value.substr(start, std::min(i, n) - start);
        if (i < n) ++i;  // the closing quote
      } else {
        const size_t start = i;
        while (i < n && value[i] != ';' && value[i] != ',' && !ascii::isOws(value[i])) ++i;
        pair_value = value.substr(start, i - start);
      }
    }
    if (ascii::equalsIgnoreCase(name, "for") && out.for_node.empty()) {
      out.for_node = pair_value;
    } else if (ascii::equalsIgnoreCase(name, "host") && out.host.empty()) {
      out.host = pair_value;
    } else if (ascii::equalsIgnoreCase(name, "proto") && out.proto.empty()) {
      out.proto = pair_value;
    }
    while (i < n && ascii::isOws(value[i])) ++i;
    if (i < n && value[i] == ',') break;  // only the first element
    if (i < n && value[i] != ';') ++i;     // stray byte: skip it rather than loop on it
  }
  return out;
}

std::optional<std::string_view> nodeAddress(std::string_view node) noexcept {
  node = ascii::trimOws(node);
  if (node.empty() || node.front() == '_' || ascii::equalsIgnoreCase(node, "unknown")) {
    return std::nullopt;
  }
  if (node.front() == '[') {
    const size_t close = node.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    return node.substr(1, close - 1);
  }
  const size_t colon = node.find(':');
  if (colon != std::string_view::npos && node.find(':', colon + 1) == std::string_view::npos) {
    node = node.substr(0, colon);  // IPv4 (or name) with a port
  }
  if (node.empty()) return std::nullopt;
  return node;
}

std::string_view firstListElement(std::string_view value) noexcept {
  return ascii::trimOws(value.substr(0, value.find(',')));
}

// ---- Protocol, status, errors ----------------------------------------------------------------

std::string_view protocolVersion(uint8_t major, uint8_t minor) noexcept {
  if (major == 1 && minor == 1) return "1.1";
  if (major == 1 && minor == 0) return "1.0";
  if (major == 2 && minor == 0) return "2";
  if (major == 3 && minor == 0) return "3";
  return {};
}

exporter::StatusCode spanStatusForHttpStatus(exporter::SpanKind kind, int status_code) noexcept {
  if (status_code < 100 || status_code >= 500) {  // 5xx, and codes no client can interpret
    return exporter::StatusCode::kError;
  }
  if (status_code >= 400 && kind == exporter::SpanKind::kClient) {
    return exporter::StatusCode::kError;
  }
  return exporter::StatusCode::kUnset;
}

std::string_view statusCodeErrorType(int status_code) noexcept {
  static constexpr auto kCodes = [] {
    std::array<std::array<char, 3>, 500> codes{};
    for (int code = 100; code < 600; ++code) {
      auto& text = codes[static_cast<size_t>(code - 100)];
      text[0] = static_cast<char>('0' + code / 100);
      text[1] = static_cast<char>('0' + code / 10 % 10);
      text[2] = static_cast<char>('0' + code % 10);
    }
    return codes;
  }();
  if (status_code < 100 || status_code > 599) return kOtherValue;
  const auto& text = kCodes[static_cast<size_t>(status_code - 100)];
  return std::string_view(text.data(), text.size());
}

std::string_view errorType(UpstreamFailure failure) noexcept {
  switch (failure) {
    case UpstreamFailure::kConnectionRefused: return "connection_refused";
    case UpstreamFailure::kConnectTimeout: return "connect_timeout";
    case UpstreamFailure::kResponseTimeout: return "response_timeout";
    case UpstreamFailure::kConnectionReset: return "connection_reset";
    case UpstreamFailure::kBadResponse: return "bad_response";
    case UpstreamFailure::kResponseTooLarge: return "response_too_large";
    case UpstreamFailure::kResolveFailed: return "resolve_failed";
    case UpstreamFailure::kTlsFailed: return "tls_handshake_failed";
    case UpstreamFailure::kLoopDetected: return "loop_detected";
    case UpstreamFailure::kHostUnreachable: return "host_unreachable";
    case UpstreamFailure::kConnectFailed: return "connect_failed";
    case UpstreamFailure::kLocalAddress: return "local_address_unavailable";
    case UpstreamFailure::kFileDescriptors: return "too_many_open_files";
    case UpstreamFailure::kOther: break;
  }
  return kOtherValue;
}

int localResponseStatus(UpstreamFailure failure) noexcept {
  switch (failure) {
    case UpstreamFailure::kConnectTimeout: return 503;
    case UpstreamFailure::kResponseTimeout: return 504;
    case UpstreamFailure::kLoopDetected: return 508;
    case UpstreamFailure::kFileDescriptors: return 503;
    default: return 502;
  }
}

std::string_view failureReason(UpstreamFailure failure) noexcept {
  switch (failure) {
    case UpstreamFailure::kConnectionRefused: return "upstream connection refused";
    case UpstreamFailure::kConnectTimeout: return "upstream connect timeout";
    case UpstreamFailure::kResponseTimeout: return "upstream response timeout";
    case UpstreamFailure::kConnectionReset: return "upstream closed the connection before responding";
    case UpstreamFailure::kBadResponse: return "malformed response from upstream";
    case UpstreamFailure::kResponseTooLarge: return "upstream response header too large";
    case UpstreamFailure::kResolveFailed: return "upstream host name did not resolve";
    case UpstreamFailure::kTlsFailed: return "upstream TLS handshake failed";
    case UpstreamFailure::kLoopDetected: return "the request names this proxy as its destination";
    case UpstreamFailure::kHostUnreachable: return "upstream host unreachable";
    case UpstreamFailure::kConnectFailed: return "upstream connect failed";
    case UpstreamFailure::kLocalAddress: return "no local address or port to connect to the upstream from";
    case UpstreamFailure::kFileDescriptors: return "tracecar is out of file descriptors";
    case UpstreamFailure::kOther: break;
  }
  return "upstream failure";
}

std::string_view failureReasonAfterHead(UpstreamFailure failure) noexcept {
  switch (failure) {
    case UpstreamFailure::kConnectionReset: return "upstream closed the connection mid-response";
    case UpstreamFailure::kResponseTimeout: return "upstream response body timeout";
    case UpstreamFailure::kBadResponse: return "malformed response body from upstream";
    case UpstreamFailure::kResponseTooLarge: return "upstream response trailers too large";
    case UpstreamFailure::kTlsFailed: return "upstream TLS failed mid-response";
    default: break;
  }
  return "upstream failed mid-response";
}

// ---- gRPC ------------------------------------------------------------------------------------

bool isGrpcContentType(std::string_view content_type) noexcept {
  constexpr std::string_view kGrpc = "application/grpc";
  if (content_type.size() < kGrpc.size() ||
      !ascii::equalsIgnoreCase(content_type.substr(0, kGrpc.size()), kGrpc)) {
    return false;
  }
  if (content_type.size() == kGrpc.size()) return true;
  const char next = content_type[kGrpc.size()];
  return next == '+' || next == ';';
}

std::optional<GrpcMethod> parseGrpcPath(std::string_view path) noexcept {
  if (path.size() < 4 || path.front() != '/') return std::nullopt;
  const std::string_view rest = path.substr(1);
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
    return std::nullopt;
  }
  GrpcMethod out{rest.substr(0, slash), rest.substr(slash + 1)};
  if (out.method.find_first_of("/?#") != std::string_view::npos ||
      out.service.find_first_of("?#") != std::string_view::npos) {
    return std::nullopt;
  }
  return out;
}

std::optional<int> parseGrpcStatus(std::string_view value) noexcept {
  value = ascii::trimOws(value);
  if (value.empty() || value.size() > 3) return std::nullopt;
  int code = 0;
  for (char c : value) {
    if (!isDigit(c)) return std::nullopt;
    code = code * 10 + (c - '0');
  }
  return code;
}

std::string_view grpcStatusName(int code) noexcept {
  static constexpr std::string_view kNames[] = {
      "OK",           "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS", "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",    "DATA_LOSS",
      "UNAUTHENTICATED"};
  if (code < 0 || static_cast<size_t>(code) >= std::size(kNames)) return kOtherValue;
  return kNames[code];
}

exporter::StatusCode spanStatusForGrpcStatus(exporter::SpanKind kind, int code) noexcept {
  if (code == 0) return exporter::StatusCode::kUnset;
  if (kind == exporter::SpanKind::kClient) return exporter::StatusCode::kError;
  switch (code) {
    case 2:   // UNKNOWN
    case 4:   // DEADLINE_EXCEEDED
    case 12:  // UNIMPLEMENTED
    case 13:  // INTERNAL
    case 14:  // UNAVAILABLE
    case 15:  // DATA_LOSS
      return exporter::StatusCode::kError;
    default:
      return exporter::StatusCode::kUnset;
  }
}

}  // namespace tracecar::proxy::semconv
