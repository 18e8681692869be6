#include "proxy/data_path_headers.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "unit/http/header_text.h"

namespace tracecar::proxy {
namespace {

using http::test_support::makeHeaders;
using http::test_support::serialize;

// ---- hop-by-hop ----

TEST(StripHopByHop, RemovesFixedHopByHopFields) {
  http::HeaderMap headers = makeHeaders({{"Host", "a"},
                                         {"Connection", "keep-alive"},
                                         {"Keep-Alive", "timeout=5"},
                                         {"Proxy-Connection", "keep-alive"},
                                         {"TE", "trailers"},
                                         {"Transfer-Encoding", "chunked"},
                                         {"Upgrade", "websocket"},
                                         {"Accept", "*/*"}});
  stripHopByHop(headers);
  EXPECT_EQ(serialize(headers), "Host: a\r\nAccept: */*\r\n");
}

// The common case takes a shorter way; its neighbours must not.
TEST(DropContinueExpectation, RemovesOnlyTheContinueMember) {
  http::HeaderMap alone = makeHeaders({{"Host", "a"}, {"Expect", " 100-CONTINUE "}});
  EXPECT_TRUE(dropContinueExpectation(alone));
  EXPECT_EQ(serialize(alone), "Host: a\r\n");

  http::HeaderMap mixed =
      makeHeaders({{"Expect", "x-a, 100-continue"}, {"Host", "a"}, {"Expect", "x-b"}});
  EXPECT_TRUE(dropContinueExpectation(mixed));
  EXPECT_EQ(serialize(mixed), "Host: a\r\nExpect: x-a, x-b\r\n");

  http::HeaderMap none = makeHeaders({{"Expect", "x-a"}, {"Host", "a"}});
  EXPECT_FALSE(dropContinueExpectation(none));
  EXPECT_EQ(serialize(none), "Expect: x-a\r\nHost: a\r\n");
}

// ---- trailers ----

TEST(StripTrailerFields, DropsWhatATrailerSectionMustNotCarryOn) {
  http::HeaderMap trailers = makeHeaders({{"grpc-status", "0"},
                                          {"Proxy-Authorization", "Basic eA=="},
                                          {"Host", "evil"},
                                          {"Connection", "close"},
                                          {"Keep-Alive", "timeout=5"},
                                          {"TE", "trailers"},
                                          {"Trailer", "x"},
                                          {"Content-Length", "9"},
                                          {"traceparent", "00-1111-2222-01"},
                                          {"TraceState", "a=1"},
                                          {"baggage", "k=v"},
                                          {"b3", "1"},
                                          {"X-B3-TraceId", "1"},
                                          {"uber-trace-id", "1:2:0:1"},
                                          {"Uberctx-k", "v"},
                                          {"X-Checksum", "abc"}});
  EXPECT_EQ(stripTrailerFields(trailers), 14u);
  EXPECT_EQ(serialize(trailers), "grpc-status: 0\r\nX-Checksum: abc\r\n");
  http::HeaderMap none;
  EXPECT_EQ(stripTrailerFields(none), 0u);
}

TEST(StripHopByHop, ALoneConnectionKeepAliveOrClose) {
  for (const char* option : {"keep-alive", "Keep-Alive", " close ", "CLOSE"}) {
    http::HeaderMap headers =
        makeHeaders({{"Host", "a"}, {"Connection", option}, {"Accept", "*/*"}});
    EXPECT_FALSE(stripHopByHop(headers).te_trailers);
    EXPECT_EQ(serialize(headers), "Host: a\r\nAccept: */*\r\n") << option;
  }
  http::HeaderMap named = makeHeaders({{"Connection", "close, X-One"}, {"X-One", "1"}});
  stripHopByHop(named);
  EXPECT_EQ(serialize(named), "");
  http::HeaderMap two = makeHeaders({{"Connection", "keep-alive"}, {"TE", "trailers"}});
  EXPECT_TRUE(stripHopByHop(two).te_trailers);
  EXPECT_EQ(serialize(two), "");
  // Connection lists field names: "close" names a field called Close too.
  http::HeaderMap close_field =
      makeHeaders({{"Connection", "close"}, {"Close", "x"}, {"A", "b"}});
  stripHopByHop(close_field);
  EXPECT_EQ(serialize(close_field), "A: b\r\n");
  http::HeaderMap alone_keep_alive = makeHeaders({{"Keep-Alive", "timeout=5"}, {"A", "b"}});
  stripHopByHop(alone_keep_alive);
  EXPECT_EQ(serialize(alone_keep_alive), "A: b\r\n");
}

TEST(StripHopByHop, RemovesFieldsNamedByConnectionAcrossLines) {
  http::HeaderMap headers = makeHeaders({{"Connection", "X-One, x-two"},
                                         {"connection", " X-Three ,,"},
                                         {"X-One", "1"},
                                         {"X-TWO", "2"},
                                         {"x-three", "3"},
                                         {"X-Four", "4"}});
  stripHopByHop(headers);
  EXPECT_EQ(serialize(headers), "X-Four: 4\r\n");
}

TEST(StripHopByHop, NeverRemovesHostOrContentLengthNamedByConnection) {
  http::HeaderMap headers =
      makeHeaders({{"Connection", "host, content-length"}, {"Host", "a"}, {"Content-Length", "3"}});
  stripHopByHop(headers);
  EXPECT_EQ(serialize(headers), "Host: a\r\nContent-Length: 3\r\n");
}

TEST(StripHopByHop, KeepsUpgradeWhenTunnelling) {
  http::HeaderMap headers = makeHeaders({{"Connection", "Upgrade"}, {"Upgrade", "websocket"}});
  HopByHopOptions options;
  options.keep_upgrade = true;
  stripHopByHop(headers, options);
  EXPECT_EQ(serialize(headers), "Upgrade: websocket\r\n");
}

TEST(StripHopByHop, ProxyAuthorizationOnlyWhenAsked) {
  http::HeaderMap kept = makeHeaders({{"Proxy-Authorization", "Basic eA=="}});
  stripHopByHop(kept);
  EXPECT_EQ(kept.size(), 1u);
  http::HeaderMap dropped = makeHeaders({{"Proxy-Authorization", "Basic eA=="}});
  HopByHopOptions options;
  options.keep_proxy_authorization = false;
  stripHopByHop(dropped, options);
  EXPECT_TRUE(dropped.empty());
}

TEST(StripHopByHop, ReportsTeTrailers) {
  http::HeaderMap yes = makeHeaders({{"TE", "gzip;q=0.5, Trailers"}});
  EXPECT_TRUE(stripHopByHop(yes).te_trailers);
  http::HeaderMap no = makeHeaders({{"TE", "gzip"}});
  EXPECT_FALSE(stripHopByHop(no).te_trailers);
  http::HeaderMap none;
  EXPECT_FALSE(stripHopByHop(none).te_trailers);
}

// ---- authority and request targets ----

TEST(ParseAuthority, HostAndPort) {
  auto a = parseAuthority("example.com:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "example.com");
  EXPECT_EQ(a->port, 8080);
  EXPECT_TRUE(a->has_port);
  auto b = parseAuthority("example.com");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->has_port);
}

TEST(ParseAuthority, Ipv6Literal) {
  auto a = parseAuthority("[::1]:80");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 80);
  EXPECT_TRUE(a->ipv6);
  EXPECT_TRUE(parseAuthority("[::1]"));
  EXPECT_FALSE(parseAuthority("[::1"));
  EXPECT_FALSE(parseAuthority("[::1]x"));
  EXPECT_FALSE(parseAuthority("[zz]:80"));
}

TEST(ParseAuthority, RefusesBadInput) {
  EXPECT_FALSE(parseAuthority(""));
  EXPECT_FALSE(parseAuthority(":80"));
  EXPECT_FALSE(parseAuthority("a:"));
  EXPECT_FALSE(parseAuthority("a:0"));
  EXPECT_FALSE(parseAuthority("a:65536"));
  EXPECT_FALSE(parseAuthority("a:123456"));
  EXPECT_FALSE(parseAuthority("a:8x"));
  EXPECT_FALSE(parseAuthority("user@host"));
  EXPECT_FALSE(parseAuthority("a b"));
  EXPECT_FALSE(parseAuthority("a%zz"));
  EXPECT_TRUE(parseAuthority("a%20b:1"));
  EXPECT_TRUE(parseAuthority("a:65535"));
}

TEST(ParseRequestTarget, OriginForm) {
  EXPECT_FALSE(parseRequestTarget("GET", "/a#b").has_value());  // origin-form has no fragment
  auto t = parseRequestTarget("GET", "/a/b?c=d");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->form, RequestTargetForm::kOrigin);
  EXPECT_EQ(t->path, "/a/b?c=d");
}

TEST(ParseRequestTarget, AbsoluteForm) {
  auto t = parseRequestTarget("GET", "http://example.com:81/x?y");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->form, RequestTargetForm::kAbsolute);
  EXPECT_EQ(t->scheme, "http");
  EXPECT_EQ(t->authority, "example.com:81");
  EXPECT_EQ(t->path, "/x?y");
  auto bare = parseRequestTarget("GET", "HTTP://example.com");
  ASSERT_TRUE(bare);
  EXPECT_TRUE(schemeIs(bare->scheme, "http"));
  EXPECT_EQ(bare->path, "");
  auto query = parseRequestTarget("GET", "http://example.com?q");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->authority, "example.com");
  EXPECT_EQ(query->path, "?q");
}

TEST(ParseRequestTarget, AuthorityFormOnlyForConnect) {
  auto t = parseRequestTarget("CONNECT", "example.com:443");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->form, RequestTargetForm::kAuthority);
  EXPECT_EQ(t->authority, "example.com:443");
  EXPECT_FALSE(parseRequestTarget("CONNECT", "example.com"));
  EXPECT_FALSE(parseRequestTarget("CONNECT", "/x"));
  EXPECT_FALSE(parseRequestTarget("GET", "example.com:443"));
}

TEST(ParseRequestTarget, AsteriskOnlyForOptions) {
  auto t = parseRequestTarget("OPTIONS", "*");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->form, RequestTargetForm::kAsterisk);
  EXPECT_FALSE(parseRequestTarget("GET", "*"));
}

TEST(ParseRequestTarget, RefusesOtherShapes) {
  EXPECT_FALSE(parseRequestTarget("GET", "x"));
  EXPECT_FALSE(parseRequestTarget("GET", "http:/x"));
  EXPECT_FALSE(parseRequestTarget("GET", "http:///x"));
  EXPECT_FALSE(parseRequestTarget("GET", "1http://a/"));
  EXPECT_FALSE(parseRequestTarget("GET", "http://user@a/"));
}

TEST(IsValidHost, EmptyOrAuthority) {
  EXPECT_TRUE(isValidHost(""));
  EXPECT_TRUE(isValidHost("a.b:80"));
  EXPECT_TRUE(isValidHost("[::1]:80"));
  EXPECT_FALSE(isValidHost("a b"));
  EXPECT_FALSE(isValidHost("a/b"));
}

// ---- local replies and framing ----

TEST(AppendLocalReply, OneLineTextPlain) {
  std::string out;
  appendLocalReply(out, 502, "upstream refused", true, false);
  EXPECT_EQ(out,
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 17\r\nConnection: close\r\n\r\nupstream refused\n");
}

TEST(AppendLocalReply, HeadRequestGetsNoBody) {
  std::string out;
  appendLocalReply(out, 400, "bad", false, true);
  EXPECT_EQ(out,
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 4\r\n\r\n");
}

TEST(Chunks, HeaderAndLastChunk) {
  std::string out;
  appendChunkHeader(out, 0x1a2b);
  EXPECT_EQ(out, "1a2b\r\n");
  out.clear();
  appendLastChunk(out, nullptr);
  EXPECT_EQ(out, "0\r\n\r\n");
  out.clear();
  http::HeaderMap trailers = makeHeaders({{"X-Sum", "1"}});
  appendLastChunk(out, &trailers);
  EXPECT_EQ(out, "0\r\nX-Sum: 1\r\n\r\n");
}

TEST(ChooseResponseFraming, ContentLengthPassesThrough) {
  const ResponseFraming f = chooseResponseFraming(false, 10, "", false, true, false);
  EXPECT_EQ(f.framing, BodyFraming::kLength);
  EXPECT_EQ(f.transfer_encoding, "");
  EXPECT_FALSE(f.close);
}

TEST(ChooseResponseFraming, ChunkedStaysChunkedForHttp11) {
  const ResponseFraming f = chooseResponseFraming(false, std::nullopt, "gzip, chunked", true,
                                                  true, false);
  EXPECT_EQ(f.framing, BodyFraming::kChunked);
  EXPECT_EQ(f.transfer_encoding, "gzip, chunked");
  EXPECT_FALSE(f.close);
}

TEST(ChooseResponseFraming, CloseDelimitedBecomesChunkedForHttp11) {
  const ResponseFraming f = chooseResponseFraming(false, std::nullopt, "", false, true, false);
  EXPECT_EQ(f.framing, BodyFraming::kChunked);
  EXPECT_EQ(f.transfer_encoding, "chunked");
  const ResponseFraming g = chooseResponseFraming(false, std::nullopt, "gzip", false, true, false);
  EXPECT_EQ(g.transfer_encoding, "gzip, chunked");
}

TEST(UpgradeOffered, OnlyProtocolsTheClientNamed) {
  EXPECT_TRUE(upgradeOffered("websocket", "websocket"));
  EXPECT_TRUE(upgradeOffered("h2c, WebSocket", "websocket"));
  EXPECT_TRUE(upgradeOffered("HTTP/2.0, websocket", "http/2.0"));
  EXPECT_FALSE(upgradeOffered("websocket", "h2c"));
  EXPECT_FALSE(upgradeOffered("websocket", "websocket, h2c"));
  EXPECT_FALSE(upgradeOffered("websocket", ""));
}

// RFC 9112 sections 6.1 and 6.3: chunked applied, then another coding, makes the body run to
// the close; chunked is not applied a second time.
TEST(ChooseResponseFraming, ChunkedNotLastIsRelayedAsItCameToTheClose) {
  const ResponseFraming f =
      chooseResponseFraming(false, std::nullopt, "chunked, gzip", false, true, false);
  EXPECT_EQ(f.framing, BodyFraming::kClose);
  EXPECT_EQ(f.transfer_encoding, "chunked, gzip");
  EXPECT_TRUE(f.close);
  EXPECT_TRUE(hasChunkedCoding("Chunked ;x=1, identity"));
  EXPECT_TRUE(hasChunkedCoding("gzip,chunked"));
  EXPECT_FALSE(hasChunkedCoding("gzip, xchunked"));
  EXPECT_FALSE(hasChunkedCoding(""));
}

TEST(ChooseResponseFraming, Http10ClientsGetCloseDelimited) {
  const ResponseFraming f = chooseResponseFraming(false, std::nullopt, "chunked", true, false,
                                                  false);
  EXPECT_EQ(f.framing, BodyFraming::kClose);
  EXPECT_EQ(f.transfer_encoding, "");
  EXPECT_TRUE(f.close);
}

TEST(ChooseResponseFraming, NoBodyKeepsHeadFramingOnlyForHead) {
  const ResponseFraming head = chooseResponseFraming(true, std::nullopt, "chunked", true, true,
                                                     true);
  EXPECT_EQ(head.framing, BodyFraming::kNone);
  EXPECT_EQ(head.transfer_encoding, "chunked");
  const ResponseFraming no_content = chooseResponseFraming(true, std::nullopt, "chunked", true,
                                                           true, false);
  EXPECT_EQ(no_content.transfer_encoding, "");
}

// ---- Max-Forwards (RFC 9110 section 7.6.2) ----

TEST(MaxForwards, OptionsAndTraceCountDown) {
  for (const std::string_view method : {"OPTIONS", "TRACE"}) {
    http::HeaderMap h;
    h.add("Max-Forwards", "3");
    EXPECT_EQ(applyMaxForwards(method, h), MaxForwardsStep::kForward);
    EXPECT_EQ(h.get("max-forwards"), "2");
    h.set("Max-Forwards", "1");
    EXPECT_EQ(applyMaxForwards(method, h), MaxForwardsStep::kForward);
    EXPECT_EQ(h.get("max-forwards"), "0");
    EXPECT_EQ(applyMaxForwards(method, h), MaxForwardsStep::kAnswer);
    EXPECT_EQ(h.get("max-forwards"), "0");
  }
}

TEST(MaxForwards, OtherMethodsAndOtherValuesAreLeftAlone) {
  http::HeaderMap h;
  h.add("Max-Forwards", "0");
  EXPECT_EQ(applyMaxForwards("GET", h), MaxForwardsStep::kForward);  // only OPTIONS and TRACE
  EXPECT_EQ(applyMaxForwards("options", h), MaxForwardsStep::kForward);  // methods are case-sensitive
  EXPECT_EQ(h.get("max-forwards"), "0");
  for (const std::string_view value : {"", "-1", "1x", " 1", "1, 2", "0x1"}) {
    http::HeaderMap v;
    v.add("Max-Forwards", value);
    EXPECT_EQ(applyMaxForwards("OPTIONS", v), MaxForwardsStep::kForward) << value;
    EXPECT_EQ(v.get("max-forwards"), value);
  }
  http::HeaderMap two;  // two fields: not one number
  two.add("Max-Forwards", "0");
  two.add("Max-Forwards", "5");
  EXPECT_EQ(applyMaxForwards("TRACE", two), MaxForwardsStep::kForward);
  EXPECT_EQ(two.count("max-forwards"), 2u);
  http::HeaderMap none;
  EXPECT_EQ(applyMaxForwards("TRACE", none), MaxForwardsStep::kForward);
  EXPECT_EQ(none.count("max-forwards"), 0u);
}

TEST(MaxForwards, LargestValuesCountDownToo) {
  http::HeaderMap h;
  h.add("Max-Forwards", "999999999999999999");  // 18 digits: the most that is read
  EXPECT_EQ(applyMaxForwards("TRACE", h), MaxForwardsStep::kForward);
  EXPECT_EQ(h.get("max-forwards"), "999999999999999998");
  http::HeaderMap over;
  over.add("Max-Forwards", "1000000000000000000");  // 19: kept as sent
  EXPECT_EQ(applyMaxForwards("TRACE", over), MaxForwardsStep::kForward);
  EXPECT_EQ(over.get("max-forwards"), "1000000000000000000");
}

TEST(LastHopAnswer, OptionsHasNoContentAndTraceReflectsTheHeadWithoutCredentials) {
  http::Http1Head options;
  options.method = "OPTIONS";
  options.target = "*";
  std::string out;
  appendLastHopAnswer(out, lastHopAnswer(options), false);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");

  http::Http1Head trace;
  trace.method = "TRACE";
  trace.target = "/a?b=1";
  trace.headers.add("Host", "svc");
  trace.headers.add("Authorization", "Bearer secret");
  trace.headers.add("Cookie", "s=1");
  trace.headers.add("proxy-authorization", "Basic x");
  trace.headers.add("Max-Forwards", "0");
  const LastHopAnswer answer = lastHopAnswer(trace);
  EXPECT_EQ(answer.content_type, "message/http");
  const std::string reflected = "TRACE /a?b=1 HTTP/1.1\r\nHost: svc\r\nMax-Forwards: 0\r\n\r\n";
  EXPECT_EQ(answer.content, reflected);
  out.clear();
  appendLastHopAnswer(out, answer, true);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Type: message/http\r\nContent-Length: " +
                     std::to_string(reflected.size()) + "\r\nConnection: close\r\n\r\n" +
                     reflected);
}

}  // namespace
}  // namespace tracecar::proxy
