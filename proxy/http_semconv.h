#pragma once

#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/span.h"
#include "proxy/upstream_failure.h"

// Pure helpers for the stable OpenTelemetry HTTP semantic conventions (HTTP spans): method
// normalisation, span names, request-target splitting, redaction, server/client addresses,
// protocol version, span status and error.type. No I/O, no clock, no header map.
namespace tracecar::proxy::semconv {

// Attribute names.
namespace attr {
inline constexpr std::string_view kHttpRequestMethod = "http.request.method";
inline constexpr std::string_view kHttpRequestMethodOriginal = "http.request.method_original";
inline constexpr std::string_view kHttpResponseStatusCode = "http.response.status_code";
inline constexpr std::string_view kHttpRoute = "http.route";
inline constexpr std::string_view kUrlPath = "url.path";
inline constexpr std::string_view kUrlQuery = "url.query";
inline constexpr std::string_view kUrlScheme = "url.scheme";
inline constexpr std::string_view kUrlFull = "url.full";
inline constexpr std::string_view kServerAddress = "server.address";
inline constexpr std::string_view kServerPort = "server.port";
inline constexpr std::string_view kClientAddress = "client.address";
inline constexpr std::string_view kNetworkPeerAddress = "network.peer.address";
inline constexpr std::string_view kNetworkPeerPort = "network.peer.port";
inline constexpr std::string_view kNetworkProtocolVersion = "network.protocol.version";
inline constexpr std::string_view kUserAgentOriginal = "user_agent.original";
inline constexpr std::string_view kErrorType = "error.type";
inline constexpr std::string_view kHttpRequestResendCount = "http.request.resend_count";
inline constexpr std::string_view kRpcSystem = "rpc.system";
inline constexpr std::string_view kRpcService = "rpc.service";
inline constexpr std::string_view kRpcMethod = "rpc.method";
inline constexpr std::string_view kRpcGrpcStatusCode = "rpc.grpc.status_code";
}  // namespace attr

// The value that replaces redacted credentials and query values (the spec's wording).
inline constexpr std::string_view kRedacted = "REDACTED";
// http.request.method for a method the instrumentation does not know; also error.type's
// fallback.
inline constexpr std::string_view kOtherValue = "_OTHER";
// error.type of an exchange that ended after its response began but before the whole response
// was delivered, with no failure of the upstream to name (the client went away or reset the
// stream, its request broke off, the drain ran out): the span's status is Error whatever the
// status code (semantic conventions: "another error" than the status code).
inline constexpr std::string_view kResponseIncomplete = "response_incomplete";
// error.type of a CLIENT span whose request tracecar cut because the app, its client, stopped
// sending the request body (answered 408 by tracecar; the upstream never answered).
inline constexpr std::string_view kRequestBodyTimeout = "request_body_timeout";
// The {method} of a span name when http.request.method is _OTHER.
inline constexpr std::string_view kOtherMethodSpanName = "HTTP";

// ---- Methods ---------------------------------------------------------------------------------

// The methods reported as themselves; any other is reported as _OTHER. The default is RFC 9110's
// methods and PATCH. The spec asks for a full override (OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS)
// because a proxy sees methods such as PURGE or PROPFIND that it would otherwise hide.
class KnownMethods {
 public:
  KnownMethods();  // GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH

  // A comma-separated, case-sensitive list replacing the defaults; whitespace around names is
  // ignored, duplicates collapse. Empty means the defaults. A name that is not an RFC 9110 token
  // is an error naming it.
  static absl::StatusOr<KnownMethods> parse(std::string_view list);
  // One name of such a list: an error naming it unless it is a non-empty RFC 9110 token.
  static absl::Status checkName(std::string_view name);

  // The known method equal to method (case-sensitive): a view owned by this object.
  std::optional<std::string_view> find(std::string_view method) const noexcept;
  const std::vector<std::string>& methods() const noexcept { return methods_; }
  // The list as parse reads it: "GET,HEAD,...".
  std::string toString() const;

  bool operator==(const KnownMethods&) const = default;

 private:
  std::vector<std::string> methods_;
};

struct HttpMethod {
  // http.request.method: the known method, or "_OTHER". Views this object's KnownMethods or
  // static storage, never the request.
  std::string_view name;
  bool other = false;  // the method was not known: http.request.method_original carries it
};

HttpMethod normalizeMethod(std::string_view method, const KnownMethods& known) noexcept;

// "{method} {target}" or "{method}" (target empty), {method} being "HTTP" for _OTHER. Appends.
void appendSpanName(const HttpMethod& method, std::string_view target, std::string& out);

// ---- Request target --------------------------------------------------------------------------

// RFC 9112 section 3.2 request-target forms.
enum class TargetForm : uint8_t {
  kOrigin,     // "/path?query"
  kAbsolute,   // "http://host:port/path?query" (to proxies)
  kAuthority,  // "host:port" (CONNECT only)
  kAsterisk,   // "*" (OPTIONS only)
  kOther,      // anything else: treated as a path up to '?'
};

// The parts of a request target, as views into it.
struct RequestTarget {
  TargetForm form = TargetForm::kOther;
  std::string_view scheme;     // absolute-form, as written
  bool has_userinfo = false;   // absolute-form "user:pass@" (never reported: credentials)
  std::string_view authority;  // absolute- and authority-form: host[:port], without userinfo
  std::string_view path;       // "" for absolute-form without a path and for authority-form
  bool has_query = false;      // a '?' was present, even with nothing after it
  std::string_view query;      // after '?', before any '#'
};

// connect: the request's method is CONNECT (the only one whose target is authority-form).
RequestTarget splitRequestTarget(std::string_view target, bool connect) noexcept;

struct HostPort {
  std::string_view host;         // without IPv6 brackets
  std::optional<uint16_t> port;  // absent when not written, empty or not a valid port
};

// "host", "host:port", "[v6]", "[v6]:port" (Host header, :authority, a target's authority, a
// proxy's forwarded host). nullopt when there is no host (empty, "[", ":80") or it is not one
// (userinfo, "a b", brackets around a name): nothing but a host reaches server.address.
std::optional<HostPort> parseHostPort(std::string_view authority) noexcept;

// 80 for http, 443 for https (case-insensitive); nullopt for other schemes.
std::optional<uint16_t> defaultPort(std::string_view scheme) noexcept;

// "http" or "https" (static) when scheme is one of them in any case; otherwise scheme itself.
std::string_view canonicalScheme(std::string_view scheme) noexcept;

// ---- Redaction -------------------------------------------------------------------------------

// What url.query (and url.full's query) shows.
struct QueryRedaction {
  enum class Mode : uint8_t {
    kAllValues,      // every value becomes REDACTED; keys are kept
    kSensitiveKeys,  // only the values of sensitive_keys become REDACTED
  };
  Mode mode = Mode::kAllValues;
  // kSensitiveKeys: compared case-sensitively (as the spec asks) with each key, percent-decoded.
  // The default is the spec's list; an empty list redacts nothing.
  std::vector<std::string> sensitive_keys = defaultSensitiveKeys();

  static std::vector<std::string> defaultSensitiveKeys();  // AWSAccessKeyId Signature sig
                                                           // X-Goog-Signature
};

// Appends query (without its '?') with values redacted. Parameters are separated by '&' or ';'
// and kept in order, empty ones included; a parameter without '=' is a key alone and is kept.
// For a redacted parameter everything after its first '=' becomes REDACTED.
void appendRedactedQuery(std::string_view query, const QueryRedaction& redaction,
                         std::string& out);

// Appends url.full: scheme "://" [REDACTED:REDACTED@] authority path ["?" redacted query].
// A URL whose authority is unknown is written without "scheme://". Returns where the redacted
// query starts in out (after the '?'; url.query), or std::string::npos without a query.
size_t appendUrlFull(std::string_view scheme, bool has_userinfo, std::string_view authority,
                   std::string_view path, std::optional<std::string_view> query,
                   const QueryRedaction& redaction, std::string& out);

// ---- Forwarding headers (SERVER spans) -------------------------------------------------------

// The first element of a Forwarded field (RFC 7239), i.e. the one added by the proxy nearest
// the client. Values are unquoted (escapes inside quotes are left as written).
struct ForwardedElement {
  std::string_view for_node;
  std::string_view host;
  std::string_view proto;
};
ForwardedElement parseForwarded(std::string_view value) noexcept;

// The address in a Forwarded "for" node or an X-Forwarded-For element: brackets and port
// removed. nullopt for "unknown", obfuscated identifiers ("_hidden") and empty nodes.
std::optional<std::string_view> nodeAddress(std::string_view node) noexcept;

// The first element of a comma-separated list (X-Forwarded-For/-Host/-Proto), OWS trimmed.
std::string_view firstListElement(std::string_view value) noexcept;

// ---- Protocol, status, errors ----------------------------------------------------------------

// network.protocol.version: "1.0", "1.1", "2", "3"; "" when unknown (then not reported).
std::string_view protocolVersion(uint8_t major, uint8_t minor) noexcept;

// The span status an HTTP status code gives: 5xx and codes outside 100-599 are Error for both
// kinds; 4xx is Error for CLIENT spans and Unset for SERVER spans; anything else Unset.
exporter::StatusCode spanStatusForHttpStatus(exporter::SpanKind kind, int status_code) noexcept;

// error.type for a status code that is an error: the code as a string ("100".."599", static
// storage), or "_OTHER" for a code outside that range.
std::string_view statusCodeErrorType(int status_code) noexcept;

using proxy::UpstreamFailure;

std::string_view errorType(UpstreamFailure failure) noexcept;
// The status tracecar answers downstream with when the upstream failed before a response head:
// 503 for connect timeouts, 504 for response timeouts, 502 otherwise.
int localResponseStatus(UpstreamFailure failure) noexcept;
// A one-line human reason, for the local answer's body and the span status message.
std::string_view failureReason(UpstreamFailure failure) noexcept;
// The same, for a failure after the upstream's response head was relayed: the span status
// message then says the response broke off, not that none came.
std::string_view failureReasonAfterHead(UpstreamFailure failure) noexcept;

// ---- gRPC (OTel RPC semantic conventions, gRPC) -------------------------------------------

// rpc.system of gRPC requests.
inline constexpr std::string_view kGrpcSystem = "grpc";

// content-type "application/grpc", alone or followed by "+proto", "+json", ";...".
bool isGrpcContentType(std::string_view content_type) noexcept;

// The parts of a gRPC request path "/package.Service/Method" (views into it).
struct GrpcMethod {
  std::string_view service;  // "package.Service"
  std::string_view method;   // "Method"
};
// nullopt unless path is "/" service "/" method with both non-empty and no further '/', '?'.
std::optional<GrpcMethod> parseGrpcPath(std::string_view path) noexcept;

// A grpc-status value: 1 to 3 digits; nullopt otherwise.
std::optional<int> parseGrpcStatus(std::string_view value) noexcept;

// "OK", "CANCELLED", ... "UNAUTHENTICATED" for 0..16 (static storage); "_OTHER" otherwise.
std::string_view grpcStatusName(int code) noexcept;

// The span status a gRPC status gives: SERVER spans are Error for UNKNOWN, DEADLINE_EXCEEDED,
// UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS (errors of the server, not of the
// caller); CLIENT spans for any code but OK.
exporter::StatusCode spanStatusForGrpcStatus(exporter::SpanKind kind, int code) noexcept;

}  // namespace tracecar::proxy::semconv
