#include "proxy/http_semconv.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <string>
#include <string_view>

#include "proxy/stream_observer.h"
#include "proxy/upstream_failure.h"

namespace tracecar::proxy::semconv {
namespace {

using exporter::SpanKind;
using exporter::StatusCode;

// ---- Methods ---------------------------------------------------------------------------------

TEST(KnownMethodsTest, ReportsTheNineStandardMethodsAsThemselves) {
  const KnownMethods known;
  for (std::string_view m :
       {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
    const HttpMethod method = normalizeMethod(m, known);
    EXPECT_EQ(method.name, m);
    EXPECT_FALSE(method.other) << m;
  }
}

TEST(KnownMethodsTest, UnknownMethodBecomesOther) {
  const KnownMethods known;
  for (std::string_view m : {"PURGE", "PROPFIND", "get", "Get", "QUERY", ""}) {
    const HttpMethod method = normalizeMethod(m, known);
    EXPECT_EQ(method.name, "_OTHER") << m;
    EXPECT_TRUE(method.other) << m;
  }
}

TEST(KnownMethodsTest, OverrideReplacesTheDefaults) {
  const absl::StatusOr<KnownMethods> known = KnownMethods::parse(" GET , PURGE,GET ");
  ASSERT_TRUE(known.ok()) << known.status();
  EXPECT_EQ(known->methods().size(), 2u);
  EXPECT_FALSE(normalizeMethod("PURGE", *known).other);
  EXPECT_FALSE(normalizeMethod("GET", *known).other);
  EXPECT_TRUE(normalizeMethod("POST", *known).other);  // a full override, not an addition
}

TEST(KnownMethodsTest, EmptyOverrideMeansTheDefaults) {
  const absl::StatusOr<KnownMethods> known = KnownMethods::parse("  ");
  ASSERT_TRUE(known.ok());
  EXPECT_EQ(known->methods().size(), 9u);
}

TEST(KnownMethodsTest, OverrideRejectsNonTokensAndEmptyNames) {
  EXPECT_FALSE(KnownMethods::parse("GET,PU T").ok());
  EXPECT_FALSE(KnownMethods::parse("GET,,POST").ok());
  EXPECT_FALSE(KnownMethods::parse("GET,\"X\"").ok());
}

TEST(KnownMethodsTest, ViewsPointIntoTheKnownSetNotTheInput) {
  const KnownMethods known;
  std::string input = "GET";
  const HttpMethod method = normalizeMethod(input, known);
  input = "XXX";
  EXPECT_EQ(method.name, "GET");
}

// ---- Span names ------------------------------------------------------------------------------

std::string spanName(std::string_view method, std::string_view target) {
  std::string out;
  appendSpanName(normalizeMethod(method, KnownMethods()), target, out);
  return out;
}

TEST(SpanNameTest, MethodAndRoute) { EXPECT_EQ(spanName("GET", "/users/{id}"), "GET /users/{id}"); }
TEST(SpanNameTest, MethodAloneWithoutRoute) { EXPECT_EQ(spanName("POST", ""), "POST"); }
TEST(SpanNameTest, OtherMethodIsHttp) {
  EXPECT_EQ(spanName("PURGE", ""), "HTTP");
  EXPECT_EQ(spanName("PURGE", "/cache/{key}"), "HTTP /cache/{key}");
}

// ---- Request targets -------------------------------------------------------------------------

TEST(RequestTargetTest, OriginFormPathAndQuery) {
  const RequestTarget t = splitRequestTarget("/search/a?q=1&r=2", false);
  EXPECT_EQ(t.form, TargetForm::kOrigin);
  EXPECT_EQ(t.path, "/search/a");
  EXPECT_TRUE(t.has_query);
  EXPECT_EQ(t.query, "q=1&r=2");
  EXPECT_TRUE(t.scheme.empty());
  EXPECT_TRUE(t.authority.empty());
}

TEST(RequestTargetTest, OriginFormWithoutQuery) {
  const RequestTarget t = splitRequestTarget("/", false);
  EXPECT_EQ(t.path, "/");
  EXPECT_FALSE(t.has_query);
}

TEST(RequestTargetTest, QuestionMarkAloneIsAnEmptyQuery) {
  const RequestTarget t = splitRequestTarget("/a?", false);
  EXPECT_EQ(t.path, "/a");
  EXPECT_TRUE(t.has_query);
  EXPECT_EQ(t.query, "");
}

TEST(RequestTargetTest, FragmentEndsPathAndQuery) {
  const RequestTarget a = splitRequestTarget("/a?x=1#frag", false);
  EXPECT_EQ(a.query, "x=1");
  const RequestTarget b = splitRequestTarget("/a#frag?x=1", false);
  EXPECT_EQ(b.path, "/a");
  EXPECT_FALSE(b.has_query);
}

TEST(RequestTargetTest, AbsoluteFormSplitsSchemeAuthorityPathQuery) {
  const RequestTarget t = splitRequestTarget("http://api.example.com:8080/v1/items?id=7", false);
  EXPECT_EQ(t.form, TargetForm::kAbsolute);
  EXPECT_EQ(t.scheme, "http");
  EXPECT_EQ(t.authority, "api.example.com:8080");
  EXPECT_FALSE(t.has_userinfo);
  EXPECT_EQ(t.path, "/v1/items");
  EXPECT_EQ(t.query, "id=7");
}

TEST(RequestTargetTest, AbsoluteFormUserinfoIsSeparatedFromTheHost) {
  const RequestTarget t = splitRequestTarget("https://user:p@ss@h.example/x", false);
  EXPECT_TRUE(t.has_userinfo);
  EXPECT_EQ(t.authority, "h.example");
  EXPECT_EQ(t.path, "/x");
}

TEST(RequestTargetTest, AbsoluteFormWithoutPath) {
  const RequestTarget t = splitRequestTarget("HTTP://H.example?x", false);
  EXPECT_EQ(t.form, TargetForm::kAbsolute);
  EXPECT_EQ(t.scheme, "HTTP");
  EXPECT_EQ(t.authority, "H.example");
  EXPECT_EQ(t.path, "");
  EXPECT_EQ(t.query, "x");
}

TEST(RequestTargetTest, AbsoluteFormIPv6Authority) {
  const RequestTarget t = splitRequestTarget("http://[::1]:8080/p", false);
  EXPECT_EQ(t.authority, "[::1]:8080");
  EXPECT_EQ(t.path, "/p");
}

TEST(RequestTargetTest, AuthorityFormForConnect) {
  const RequestTarget t = splitRequestTarget("db.example:5432", true);
  EXPECT_EQ(t.form, TargetForm::kAuthority);
  EXPECT_EQ(t.authority, "db.example:5432");
  EXPECT_TRUE(t.path.empty());
  EXPECT_FALSE(t.has_query);
}

TEST(RequestTargetTest, Asterisk) {
  const RequestTarget t = splitRequestTarget("*", false);
  EXPECT_EQ(t.form, TargetForm::kAsterisk);
  EXPECT_EQ(t.path, "*");
}

TEST(RequestTargetTest, AnythingElseIsReadAsAPath) {
  const RequestTarget t = splitRequestTarget("urn:x?y", false);
  EXPECT_EQ(t.form, TargetForm::kOther);
  EXPECT_EQ(t.path, "urn:x");
  EXPECT_EQ(t.query, "y");
}

// ---- Host and port ---------------------------------------------------------------------------

TEST(HostPortTest, NameAlone) {
  const auto hp = parseHostPort("example.com");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "example.com");
  EXPECT_FALSE(hp->port);
}

TEST(HostPortTest, NameAndPort) {
  const auto hp = parseHostPort("example.com:8080");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "example.com");
  EXPECT_EQ(hp->port, 8080);
}

TEST(HostPortTest, IPv6BracketsAreRemoved) {
  const auto a = parseHostPort("[2001:db8::1]:8443");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "2001:db8::1");
  EXPECT_EQ(a->port, 8443);
  const auto b = parseHostPort("[::1]");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_FALSE(b->port);
}

TEST(HostPortTest, BareIPv6HasNoPort) {
  const auto hp = parseHostPort("2001:db8::1");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "2001:db8::1");
  EXPECT_FALSE(hp->port);
}

TEST(HostPortTest, PortAtAndPastTheLimit) {
  EXPECT_EQ(parseHostPort("h:65535")->port, 65535);
  EXPECT_FALSE(parseHostPort("h:65536")->port);
  EXPECT_FALSE(parseHostPort("h:0")->port);
  EXPECT_FALSE(parseHostPort("h:")->port);
  EXPECT_FALSE(parseHostPort("h:8o")->port);
  EXPECT_FALSE(parseHostPort("h:123456")->port);
  EXPECT_EQ(parseHostPort("h:abc")->host, "h");
}

TEST(HostPortTest, NoHost) {
  EXPECT_FALSE(parseHostPort(""));
  EXPECT_FALSE(parseHostPort(":80"));
  EXPECT_FALSE(parseHostPort("["));
  EXPECT_FALSE(parseHostPort("[]:80"));
  EXPECT_FALSE(parseHostPort("[::1]x"));
}

TEST(HostPortTest, OnlyAHost) {
  EXPECT_FALSE(parseHostPort("user:pw@evil.example:81"));
  EXPECT_FALSE(parseHostPort("alice@shop.example:8443"));
  EXPECT_FALSE(parseHostPort("alice@shop.example"));
  EXPECT_FALSE(parseHostPort("a b"));
  EXPECT_FALSE(parseHostPort("[shop.example]:81"));
  EXPECT_FALSE(parseHostPort("2001:db8::zz"));
  EXPECT_FALSE(parseHostPort("h%2"));
  EXPECT_EQ(parseHostPort("h%2D1:81")->host, "h%2D1");
  EXPECT_EQ(parseHostPort("[fe80::1%25eth0]:81")->host, "fe80::1%25eth0");
  EXPECT_EQ(parseHostPort("192.0.2.1:81")->host, "192.0.2.1");
}

TEST(HostPortTest, DefaultPortBySchemeAndCanonicalScheme) {
  EXPECT_EQ(defaultPort("http"), 80);
  EXPECT_EQ(defaultPort("HTTPS"), 443);
  EXPECT_FALSE(defaultPort("ftp"));
  EXPECT_EQ(canonicalScheme("HtTp"), "http");
  EXPECT_EQ(canonicalScheme("HTTPS"), "https");
  EXPECT_EQ(canonicalScheme("ws"), "ws");
}

// ---- Query redaction -------------------------------------------------------------------------

std::string redact(std::string_view query, const QueryRedaction& redaction = {}) {
  std::string out;
  appendRedactedQuery(query, redaction, out);
  return out;
}

QueryRedaction sensitiveOnly(
    std::vector<std::string> keys = QueryRedaction::defaultSensitiveKeys()) {
  QueryRedaction r;
  r.mode = QueryRedaction::Mode::kSensitiveKeys;
  r.sensitive_keys = std::move(keys);
  return r;
}

TEST(QueryRedactionTest, DefaultRedactsEveryValueKeepingKeys) {
  EXPECT_EQ(redact("q=OpenTelemetry&page=2"), "q=REDACTED&page=REDACTED");
}

TEST(QueryRedactionTest, KeysWithoutValuesAreKept) {
  EXPECT_EQ(redact("debug&q=x&verbose"), "debug&q=REDACTED&verbose");
}

TEST(QueryRedactionTest, EmptyValueIsRedactedToo) {
  EXPECT_EQ(redact("a=&b=1"), "a=REDACTED&b=REDACTED");
}

TEST(QueryRedactionTest, RepeatedKeysAreEachRedacted) {
  EXPECT_EQ(redact("id=1&id=2&id=3"), "id=REDACTED&id=REDACTED&id=REDACTED");
  EXPECT_EQ(redact("sig=1&x=2&sig=3", sensitiveOnly()), "sig=REDACTED&x=2&sig=REDACTED");
}

TEST(QueryRedactionTest, EmptyQueryStaysEmpty) { EXPECT_EQ(redact(""), ""); }

TEST(QueryRedactionTest, EmptyParametersAndSeparatorsAreKept) {
  EXPECT_EQ(redact("&a=1&&b=2&"), "&a=REDACTED&&b=REDACTED&");
}

TEST(QueryRedactionTest, EqualsInsideValueIsPartOfTheValue) {
  EXPECT_EQ(redact("token=a=b=c"), "token=REDACTED");
}

TEST(QueryRedactionTest, SemicolonSeparatesParametersToo) {
  // Some servers split on ';': a sensitive value behind one must not slip through.
  EXPECT_EQ(redact("x=1;sig=abc", sensitiveOnly()), "x=1;sig=REDACTED");
}

TEST(QueryRedactionTest, SensitiveKeysModeRedactsOnlyThoseKeys) {
  EXPECT_EQ(redact("q=OpenTelemetry&sig=abc&Signature=d&AWSAccessKeyId=e&X-Goog-Signature=f",
                   sensitiveOnly()),
            "q=OpenTelemetry&sig=REDACTED&Signature=REDACTED&AWSAccessKeyId=REDACTED&"
            "X-Goog-Signature=REDACTED");
}

TEST(QueryRedactionTest, SensitiveKeysMatchCaseSensitively) {
  EXPECT_EQ(redact("SIG=abc&signature=d", sensitiveOnly()), "SIG=abc&signature=d");
}

TEST(QueryRedactionTest, PercentEncodedSensitiveKeyIsRecognisedAndKeptAsWritten) {
  EXPECT_EQ(redact("%73ig=abc", sensitiveOnly()), "%73ig=REDACTED");
  EXPECT_EQ(redact("X%2DGoog%2dSignature=abc", sensitiveOnly()), "X%2DGoog%2dSignature=REDACTED");
  EXPECT_EQ(redact("api+key=1", sensitiveOnly({"api key"})), "api+key=REDACTED");
  EXPECT_EQ(redact("si%=1&si%6=2", sensitiveOnly()), "si%=1&si%6=2");  // bad escapes: literal
}

TEST(QueryRedactionTest, EmptySensitiveListRedactsNothing) {
  EXPECT_EQ(redact("sig=abc&q=1", sensitiveOnly({})), "sig=abc&q=1");
}

TEST(QueryRedactionTest, KeyAloneNeverMatchesEvenIfSensitive) {
  EXPECT_EQ(redact("sig&q=1", sensitiveOnly()), "sig&q=1");
}

// ---- url.full --------------------------------------------------------------------------------

std::string urlFull(std::string_view scheme, bool userinfo, std::string_view authority,
                    std::string_view path, std::optional<std::string_view> query,
                    const QueryRedaction& redaction = {}) {
  std::string out;
  appendUrlFull(scheme, userinfo, authority, path, query, redaction, out);
  return out;
}

TEST(UrlFullTest, CredentialsAreReplaced) {
  EXPECT_EQ(urlFull("https", true, "www.example.com", "/", std::nullopt),
            "https://REDACTED:REDACTED@www.example.com/");
}

TEST(UrlFullTest, QueryRedactedLikeUrlQuery) {
  EXPECT_EQ(urlFull("https", false, "www.example.com", "/path", "color=blue&sig=x",
                    sensitiveOnly()),
            "https://www.example.com/path?color=blue&sig=REDACTED");
  EXPECT_EQ(urlFull("http", false, "h:8080", "/p", "a=1"), "http://h:8080/p?a=REDACTED");
}

TEST(UrlFullTest, QuestionMarkAloneIsKept) {
  EXPECT_EQ(urlFull("http", false, "h", "/p", ""), "http://h/p?");
}

TEST(UrlFullTest, NoAuthorityGivesARelativeReference) {
  EXPECT_EQ(urlFull("http", false, "", "/p", std::nullopt), "/p");
}

// ---- Forwarding headers ----------------------------------------------------------------------

TEST(ForwardedTest, FirstElementParameters) {
  const ForwardedElement e =
      parseForwarded("for=192.0.2.60;proto=https;by=203.0.113.43;host=shop.example, for=10.0.0.1");
  EXPECT_EQ(e.for_node, "192.0.2.60");
  EXPECT_EQ(e.proto, "https");
  EXPECT_EQ(e.host, "shop.example");
}

TEST(ForwardedTest, QuotedIPv6NodeAndCaseInsensitiveNames) {
  const ForwardedElement e =
      parseForwarded("For=\"[2001:db8:cafe::17]:4711\"; Host=\"a.example:8443\"");
  EXPECT_EQ(e.for_node, "[2001:db8:cafe::17]:4711");
  EXPECT_EQ(e.host, "a.example:8443");
  EXPECT_EQ(nodeAddress(e.for_node), "2001:db8:cafe::17");
}

TEST(ForwardedTest, OnlyTheFirstElementCounts) {
  const ForwardedElement e = parseForwarded("proto=http, for=10.0.0.1");
  EXPECT_TRUE(e.for_node.empty());
  EXPECT_EQ(e.proto, "http");
}

TEST(ForwardedTest, MalformedInputEndsWithoutCrashing) {
  for (std::string_view v : {"", ";", "=", "for=", "for=\"unterminated", "a;b;c=", ",,,", "\"\""}) {
    const ForwardedElement e = parseForwarded(v);
    EXPECT_LE(e.for_node.size(), v.size());
  }
  EXPECT_EQ(parseForwarded("for=\"unterminated").for_node, "unterminated");
}

TEST(ForwardedTest, NodeAddresses) {
  EXPECT_EQ(nodeAddress("192.0.2.60"), "192.0.2.60");
  EXPECT_EQ(nodeAddress("192.0.2.60:4711"), "192.0.2.60");
  EXPECT_EQ(nodeAddress("[::1]:80"), "::1");
  EXPECT_EQ(nodeAddress("2001:db8::1"), "2001:db8::1");
  EXPECT_FALSE(nodeAddress("unknown"));
  EXPECT_FALSE(nodeAddress("UNKNOWN"));
  EXPECT_FALSE(nodeAddress("_hidden"));
  EXPECT_FALSE(nodeAddress(""));
  EXPECT_FALSE(nodeAddress("[]"));
}

TEST(ForwardedTest, FirstListElement) {
  EXPECT_EQ(firstListElement(" 203.0.113.7 , 10.0.0.1"), "203.0.113.7");
  EXPECT_EQ(firstListElement("https"), "https");
  EXPECT_EQ(firstListElement(""), "");
}

// ---- Protocol version, status, error.type ----------------------------------------------------

TEST(ProtocolVersionTest, KnownVersions) {
  EXPECT_EQ(protocolVersion(1, 0), "1.0");
  EXPECT_EQ(protocolVersion(1, 1), "1.1");
  EXPECT_EQ(protocolVersion(2, 0), "2");
  EXPECT_EQ(protocolVersion(3, 0), "3");
  EXPECT_EQ(protocolVersion(0, 9), "");
}

TEST(SpanStatusTest, ServerLeaves4xxUnsetAndMarks5xxError) {
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kServer, 200), StatusCode::kUnset);
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kServer, 302), StatusCode::kUnset);
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kServer, 404), StatusCode::kUnset);
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kServer, 499), StatusCode::kUnset);
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kServer, 500), StatusCode::kError);
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kServer, 599), StatusCode::kError);
}

TEST(SpanStatusTest, ClientMarks4xxAnd5xxError) {
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kClient, 200), StatusCode::kUnset);
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kClient, 399), StatusCode::kUnset);
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kClient, 400), StatusCode::kError);
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kClient, 404), StatusCode::kError);
  EXPECT_EQ(spanStatusForHttpStatus(SpanKind::kClient, 503), StatusCode::kError);
}

TEST(SpanStatusTest, UninterpretableCodesAreErrors) {
  for (SpanKind kind : {SpanKind::kServer, SpanKind::kClient}) {
    EXPECT_EQ(spanStatusForHttpStatus(kind, 99), StatusCode::kError);
    EXPECT_EQ(spanStatusForHttpStatus(kind, 600), StatusCode::kError);
    EXPECT_EQ(spanStatusForHttpStatus(kind, 100), StatusCode::kUnset);
  }
}

TEST(ErrorTypeTest, StatusCodeAsString) {
  EXPECT_EQ(statusCodeErrorType(404), "404");
  EXPECT_EQ(statusCodeErrorType(500), "500");
  EXPECT_EQ(statusCodeErrorType(100), "100");
  EXPECT_EQ(statusCodeErrorType(599), "599");
  EXPECT_EQ(statusCodeErrorType(99), "_OTHER");
  EXPECT_EQ(statusCodeErrorType(600), "_OTHER");
}

TEST(ErrorTypeTest, UpstreamFailureNamesAndLocalStatuses) {
  struct Case {
    UpstreamFailure failure;
    std::string_view name;
    int status;
  };
  for (const Case& c : {Case{UpstreamFailure::kConnectionRefused, "connection_refused", 502},
                        Case{UpstreamFailure::kConnectTimeout, "connect_timeout", 503},
                        Case{UpstreamFailure::kResponseTimeout, "response_timeout", 504},
                        Case{UpstreamFailure::kConnectionReset, "connection_reset", 502},
                        Case{UpstreamFailure::kBadResponse, "bad_response", 502},
                        Case{UpstreamFailure::kResponseTooLarge, "response_too_large", 502},
                        Case{UpstreamFailure::kResolveFailed, "resolve_failed", 502},
                        Case{UpstreamFailure::kHostUnreachable, "host_unreachable", 502},
                        Case{UpstreamFailure::kConnectFailed, "connect_failed", 502},
                        Case{UpstreamFailure::kLocalAddress, "local_address_unavailable", 502},
                        Case{UpstreamFailure::kFileDescriptors, "too_many_open_files", 503},
                        Case{UpstreamFailure::kOther, "_OTHER", 502}}) {
    EXPECT_EQ(errorType(c.failure), c.name);
    EXPECT_EQ(localResponseStatus(c.failure), c.status) << c.name;
    EXPECT_FALSE(failureReason(c.failure).empty());
    EXPECT_EQ(failureReason(c.failure).find('\n'), std::string_view::npos);
  }
}

TEST(ErrorTypeTest, ConnectErrorsAreNamedForWhatFailed) {
  struct Case {
    int uv_status;
    UpstreamFailure failure;
    LocalReplyReason reason;
  };
  for (const Case& c :
       {Case{UV_ECONNREFUSED, UpstreamFailure::kConnectionRefused, LocalReplyReason::kUpstreamRefused},
        Case{UV_ETIMEDOUT, UpstreamFailure::kConnectTimeout, LocalReplyReason::kConnectTimeout},
        Case{UV_ENETUNREACH, UpstreamFailure::kHostUnreachable, LocalReplyReason::kUpstreamRefused},
        Case{UV_EHOSTUNREACH, UpstreamFailure::kHostUnreachable, LocalReplyReason::kUpstreamRefused},
        Case{UV_EACCES, UpstreamFailure::kConnectFailed, LocalReplyReason::kUpstreamRefused},
        Case{UV_EPERM, UpstreamFailure::kConnectFailed, LocalReplyReason::kUpstreamRefused},
        Case{UV_EADDRNOTAVAIL, UpstreamFailure::kLocalAddress, LocalReplyReason::kUpstreamRefused},
        Case{UV_EMFILE, UpstreamFailure::kFileDescriptors, LocalReplyReason::kFileDescriptors},
        Case{UV_ENFILE, UpstreamFailure::kFileDescriptors, LocalReplyReason::kFileDescriptors}}) {
    EXPECT_EQ(connectFailureOf(c.uv_status), c.failure) << uv_err_name(c.uv_status);
    EXPECT_EQ(localReplyReasonOf(c.failure), c.reason) << uv_err_name(c.uv_status);
  }
  EXPECT_EQ(localReplyReasonName(LocalReplyReason::kFileDescriptors), "file_descriptors");
  // A name lookup: only the descriptor limit is told apart from a name that did not resolve.
  EXPECT_EQ(resolveFailureOf(UV_EMFILE), UpstreamFailure::kFileDescriptors);
  EXPECT_EQ(resolveFailureOf(UV_ENFILE), UpstreamFailure::kFileDescriptors);
  EXPECT_EQ(resolveFailureOf(UV_EAI_NONAME), UpstreamFailure::kResolveFailed);
  EXPECT_EQ(resolveFailureOf(UV_EAI_AGAIN), UpstreamFailure::kResolveFailed);
}

// ---- gRPC ------------------------------------------------------------------------------------

TEST(GrpcSemconvTest, RecognisesGrpcContentTypes) {
  EXPECT_TRUE(isGrpcContentType("application/grpc"));
  EXPECT_TRUE(isGrpcContentType("application/grpc+proto"));
  EXPECT_TRUE(isGrpcContentType("Application/GRPC;charset=utf-8"));
  EXPECT_FALSE(isGrpcContentType("application/grpc-web"));
  EXPECT_FALSE(isGrpcContentType("application/json"));
  EXPECT_FALSE(isGrpcContentType("application/grp"));
}

TEST(GrpcSemconvTest, SplitsThePathIntoServiceAndMethod) {
  const std::optional<GrpcMethod> m = parseGrpcPath("/pkg.v1.Greeter/SayHello");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->service, "pkg.v1.Greeter");
  EXPECT_EQ(m->method, "SayHello");
  EXPECT_FALSE(parseGrpcPath("/Greeter").has_value());
  EXPECT_FALSE(parseGrpcPath("//SayHello").has_value());
  EXPECT_FALSE(parseGrpcPath("/Greeter/").has_value());
  EXPECT_FALSE(parseGrpcPath("/a/b/c").has_value());
  EXPECT_FALSE(parseGrpcPath("/a/b?x=1").has_value());
}

TEST(GrpcSemconvTest, ParsesStatusValuesAndNamesThem) {
  EXPECT_EQ(parseGrpcStatus("0"), 0);
  EXPECT_EQ(parseGrpcStatus("14"), 14);
  EXPECT_FALSE(parseGrpcStatus("").has_value());
  EXPECT_FALSE(parseGrpcStatus("1x").has_value());
  EXPECT_FALSE(parseGrpcStatus("1234").has_value());
  EXPECT_EQ(grpcStatusName(0), "OK");
  EXPECT_EQ(grpcStatusName(4), "DEADLINE_EXCEEDED");
  EXPECT_EQ(grpcStatusName(16), "UNAUTHENTICATED");
  EXPECT_EQ(grpcStatusName(17), "_OTHER");
}

TEST(GrpcSemconvTest, ServerSpansAreErrorOnlyForServerSideCodes) {
  for (int code = 0; code <= 16; ++code) {
    const bool server_error =
        code == 2 || code == 4 || code == 12 || code == 13 || code == 14 || code == 15;
    EXPECT_EQ(spanStatusForGrpcStatus(SpanKind::kServer, code),
              server_error ? StatusCode::kError : StatusCode::kUnset)
        << code;
    EXPECT_EQ(spanStatusForGrpcStatus(SpanKind::kClient, code),
              code == 0 ? StatusCode::kUnset : StatusCode::kError)
        << code;
  }
}

}  // namespace
}  // namespace tracecar::proxy::semconv
