// Requests that change HTTP version on their way upstream (docs/protocol-translation.md):
// HTTP/2 clients (nghttp, an in-process client) in front of an HTTP/1.1-only app
// (tests/support/origin_server.py) behind app_protocol http1, and HTTP/1.1 clients (curl, raw
// sockets) in front of an h2c-only app (in process) behind app_protocol h2. Both the origin's
// view and the spans are checked.
#include "support/counting_allocator.h"  // the largest heap block: nothing buffers a whole body

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "integration/proxy/h2_translation_fixture.h"

namespace tracecar::integration {
namespace {

using proxy::ListenerRole;
using proxy::LocalReplyReason;
using proxy::UpstreamProtocol;

constexpr size_t kHighWater = 64 * 1024;

http::H2Head requestHead(std::string method, const std::string& authority, std::string path) {
  http::H2Head head;
  head.method = std::move(method);
  head.scheme = "http";
  head.authority = authority;
  head.path = std::move(path);
  return head;
}

std::string authorityOf(const TranslationProxy& proxy, ListenerRole role = ListenerRole::kInbound) {
  return "127.0.0.1:" + std::to_string(proxy.port(role));
}

// A file of n bytes (a repeated pattern) in dir.
std::string makeFile(const ScratchDir& dir, std::string_view name, size_t n) {
  const std::string path = dir.file(name);
  std::ofstream out(path, std::ios::binary);
  std::string block(64 * 1024, '\0');
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>('a' + i % 23);
  for (size_t left = n; left > 0;) {
    const size_t k = std::min(left, block.size());
    out.write(block.data(), static_cast<std::streamsize>(k));
    left -= k;
  }
  return path;
}

std::string spanVersion(const exporter::SpanRecord& span) {
  return spanAttribute(span, "network.protocol.version");
}

// Semantic conventions: a span per attempt. The two CLIENT spans of a request sent twice: the
// first attempt's (Error, connection_reset) and the second's (http.request.resend_count 1),
// which the upstream was told of in traceparent (the one its second request carried).
// total: the spans expected in all, the last two those of the request.
void expectASpanPerAttempt(TranslationProxy& proxy, std::string_view traceparent,
                           size_t total = 2) {
  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == total; })) << proxy.spans().size();
  const std::vector<exporter::SpanRecord> spans = proxy.spans().spans();
  const exporter::SpanRecord& first = spans[total - 2];
  const exporter::SpanRecord& second = spans[total - 1];
  EXPECT_EQ(first.kind, exporter::SpanKind::kClient);
  EXPECT_EQ(first.status_code, exporter::StatusCode::kError);
  EXPECT_EQ(spanAttribute(first, "error.type"), "connection_reset");
  EXPECT_EQ(spanAttribute(first, "http.request.resend_count"), "<absent>");
  EXPECT_EQ(spanAttribute(first, "http.response.status_code"), "<absent>");
  EXPECT_EQ(spanAttribute(second, "http.request.resend_count"), "1");
  EXPECT_EQ(spanAttribute(second, "http.response.status_code"), "200");
  EXPECT_EQ(second.status_code, exporter::StatusCode::kUnset);
  EXPECT_EQ(second.trace_id, first.trace_id);
  EXPECT_EQ(second.parent_span_id, first.parent_span_id);
  EXPECT_NE(second.span_id, first.span_id);
  ASSERT_EQ(traceparent.size(), 55u) << traceparent;
  EXPECT_EQ(traceparent.substr(36, 16), second.span_id.toHex());
}

// ---- HTTP/2 clients, HTTP/1.1 app ----

class H2ToHttp1Test : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(origin_.port(), 0) << "the origin did not start"; }
  void start(const std::function<void(proxy::DataPathSettings&)>& tweak = {}) {
    proxy_ = std::make_unique<TranslationProxy>(origin_.port(), UpstreamProtocol::kHttp1, tweak);
    ASSERT_TRUE(proxy_->status().ok()) << proxy_->status();
  }
  ProcessResult nghttp(std::vector<std::string> args) {
    std::vector<std::string> argv = {"nghttp", "-t", "20"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runProcess(argv, 60s);
  }

  OriginServer origin_;
  std::unique_ptr<TranslationProxy> proxy_;
  ScratchDir dir_;
};

TEST_F(H2ToHttp1Test, GetReachesTheAppAsHttp11WithHostFromAuthority) {
  start();
  const ProcessResult r = nghttp({proxy_->url("/echo?x=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["version"].text, "HTTP/1.1");
  EXPECT_EQ(echo["method"].text, "GET");
  EXPECT_EQ(echo["target"].text, "/echo?x=1");
  EXPECT_EQ(echoedHeader(echo, "host"), authorityOf(*proxy_));
  EXPECT_EQ(echoedHeader(echo, "transfer-encoding"), std::nullopt);
  EXPECT_EQ(echoedHeader(echo, "content-length"), std::nullopt);
  ASSERT_TRUE(echoedHeader(echo, "traceparent").has_value());

  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(span.kind, exporter::SpanKind::kServer);
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  EXPECT_EQ(spanVersion(span), "2");  // what the client spoke
  EXPECT_NE(echoedHeader(echo, "traceparent")->find(span.span_id.toHex()), std::string::npos);
  const proxy::RecordedStream stream = proxy_->recorder().streams()[0];
  EXPECT_EQ(stream.stats->status, 200);
  EXPECT_EQ(stream.stats->response_body_bytes, r.out.size());
}

TEST_F(H2ToHttp1Test, PostWithContentLengthKeepsItsLength) {
  start();
  const std::string file = makeFile(dir_, "body", 100000);
  const ProcessResult r = nghttp({"-d", file, proxy_->url("/echo?nobody=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["method"].text, "POST");
  EXPECT_EQ(echoedHeader(echo, "content-length"), "100000");
  EXPECT_EQ(echoedHeader(echo, "transfer-encoding"), std::nullopt);
  EXPECT_EQ(echo["body_length"].number(), 100000);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(proxy_->recorder().streams()[0].stats->request_body_bytes, 100000u);
}

TEST_F(H2ToHttp1Test, PostWithoutContentLengthArrivesWhole) {
  start();
  const std::string file = makeFile(dir_, "body", 300000);
  const ProcessResult r =
      nghttp({"--no-content-length", "-d", file, proxy_->url("/echo?nobody=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["body_length"].number(), 300000);
  // Framed by whichever the proxy could: a length known at once, or chunks.
  EXPECT_TRUE(echoedHeader(echo, "content-length") ||
              echoedHeader(echo, "transfer-encoding") == "chunked");
}

TEST_F(H2ToHttp1Test, BodyThatFollowsTheHeadGoesChunkedWithTrailers) {
  start();
  H2TestClient client(proxy_->port());
  ASSERT_TRUE(client.ok());
  const int32_t id = client.open(requestHead("POST", authorityOf(*proxy_), "/echo"));
  std::this_thread::sleep_for(100ms);  // the head goes upstream alone
  client.sendData(id, "first part, ", false);
  std::this_thread::sleep_for(50ms);
  client.sendData(id, "second part", false);
  client.sendTrailers(id, {{"x-request-trailer", "t1"}});
  ASSERT_TRUE(client.waitClosed(id));
  const H2TestClient::Response& response = client.response(id);
  EXPECT_EQ(response.status, 200);
  const Json echo = parseJson(response.body).value_or(Json{});
  EXPECT_EQ(echoedHeader(echo, "transfer-encoding"), "chunked");
  EXPECT_EQ(echo["body"].text, "first part, second part");
  ASSERT_EQ(echo["trailers"].items.size(), 1u) << response.body;
  EXPECT_EQ(echo["trailers"][0][0].text, "x-request-trailer");
  EXPECT_EQ(echo["trailers"][0][1].text, "t1");
}

TEST_F(H2ToHttp1Test, NghttpTrailersReachTheApp) {
  start();
  const std::string file = makeFile(dir_, "body", 1000);
  const ProcessResult r = nghttp({"--no-content-length", "--trailer", "x-checksum: abc", "-d", file,
                                  proxy_->url("/echo?nobody=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["body_length"].number(), 1000);
  ASSERT_EQ(echo["trailers"].items.size(), 1u) << r.out;
  EXPECT_EQ(echo["trailers"][0][1].text, "abc");
}

TEST_F(H2ToHttp1Test, ChunkedTrailersBecomeHttp2Trailers) {
  start();
  H2TestClient client(proxy_->port());
  const int32_t id = client.submit(
      requestHead("GET", authorityOf(*proxy_), "/chunked?chunks=4&size=10&trailer=1"));
  ASSERT_TRUE(client.waitClosed(id));
  const H2TestClient::Response& response = client.response(id);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd");
  EXPECT_EQ(fieldOf(response.headers, "transfer-encoding"), std::nullopt);
  ASSERT_TRUE(fieldOf(response.trailers, "x-checksum").has_value());
  EXPECT_EQ(fieldOf(response.trailers, "x-checksum")->size(), 64u);
  EXPECT_TRUE(response.ended);
  EXPECT_EQ(response.code, http::H2ErrorCode::kNoError);
}

TEST_F(H2ToHttp1Test, HopByHopFieldsOfTheAppNeverReachTheClient) {
  start();
  H2TestClient client(proxy_->port());
  const int32_t id = client.submit(requestHead("GET", authorityOf(*proxy_), "/hop"));
  ASSERT_TRUE(client.waitClosed(id));
  const H2TestClient::Response& response = client.response(id);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "hop\n");
  for (const char* name :
       {"connection", "keep-alive", "proxy-connection", "upgrade", "x-hop-response"}) {
    EXPECT_EQ(fieldOf(response.headers, name), std::nullopt) << name;
  }
  EXPECT_EQ(fieldOf(response.headers, "x-end-to-end"), "1");
}

TEST_F(H2ToHttp1Test, HeadAnd204HaveNoBody) {
  start();
  H2TestClient client(proxy_->port());
  const int32_t head = client.submit(requestHead("HEAD", authorityOf(*proxy_), "/status/200"));
  ASSERT_TRUE(client.waitClosed(head));
  EXPECT_EQ(client.response(head).status, 200);
  EXPECT_EQ(client.response(head).body_bytes, 0u);
  EXPECT_EQ(fieldOf(client.response(head).headers, "content-length"), "11");  // the GET's
  const int32_t empty = client.submit(requestHead("GET", authorityOf(*proxy_), "/status/204"));
  ASSERT_TRUE(client.waitClosed(empty));
  EXPECT_EQ(client.response(empty).status, 204);
  EXPECT_EQ(client.response(empty).body_bytes, 0u);
  EXPECT_TRUE(client.response(empty).ended);

  const ProcessResult r = nghttp({"-v", "-H", ":method: HEAD", proxy_->url("/status/200")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(":status: 200"), std::string::npos) << r.out;
  ASSERT_TRUE(proxy_->waitForRequests(3));
  for (const exporter::SpanRecord& span : proxy_->spans().spans()) {
    EXPECT_EQ(spanAttribute(span, "error.type"), "<absent>");
  }
}

TEST_F(H2ToHttp1Test, SequentialStreamsReuseOneKeepAliveConnection) {
  start();
  H2TestClient client(proxy_->port());
  for (int i = 0; i < 3; ++i) {
    const int32_t id = client.submit(requestHead("GET", authorityOf(*proxy_), "/echo"));
    ASSERT_TRUE(client.waitClosed(id));
    const Json echo = parseJson(client.response(id).body).value_or(Json{});
    EXPECT_EQ(echo["request_number"].number(), i + 1);
  }
  EXPECT_EQ(origin_.connections(), 1);
  ASSERT_TRUE(proxy_->waitForRequests(3));
  const std::vector<proxy::RecordedStream> streams = proxy_->recorder().streams();
  EXPECT_FALSE(streams[0].stats->upstream_reused);
  EXPECT_TRUE(streams[2].stats->upstream_reused);
}

TEST_F(H2ToHttp1Test, PooledConnectionTheAppClosedIsRetriedOnAFreshOne) {
  start();
  H2TestClient client(proxy_->port());
  const int32_t first = client.submit(requestHead("GET", authorityOf(*proxy_), "/drop-next"));
  ASSERT_TRUE(client.waitClosed(first));
  EXPECT_EQ(client.response(first).status, 200);
  // The app reads the next request on that connection and closes it without an answer.
  const int32_t second = client.submit(requestHead("GET", authorityOf(*proxy_), "/echo"));
  ASSERT_TRUE(client.waitClosed(second));
  EXPECT_EQ(client.response(second).status, 200);
  EXPECT_EQ(parseJson(client.response(second).body).value_or(Json{})["request_number"].number(), 1);
  ASSERT_TRUE(proxy_->waitForRequests(2));
  EXPECT_TRUE(proxy_->recorder().streams()[1].stats->retried);
  EXPECT_EQ(proxy_->counters().upstream_retries, 1u);
}

TEST_F(H2ToHttp1Test, OutboundRequestRetriedOnAFreshConnectionIsASpanPerAttempt) {
  start();
  H2TestClient client(proxy_->port(ListenerRole::kOutbound));
  const std::string authority = authorityOf(*proxy_, ListenerRole::kOutbound);
  const int32_t first = client.submit(requestHead("GET", authority, "/drop-next"));
  ASSERT_TRUE(client.waitClosed(first));
  const int32_t second = client.submit(requestHead("GET", authority, "/echo"));
  ASSERT_TRUE(client.waitClosed(second));
  EXPECT_EQ(client.response(second).status, 200);
  EXPECT_EQ(proxy_->counters().upstream_retries, 1u);
  const Json echo = parseJson(client.response(second).body).value_or(Json{});
  expectASpanPerAttempt(*proxy_, echoedHeader(echo, "traceparent").value_or(""), 3);
}

TEST_F(H2ToHttp1Test, PooledConnectionTheAppClosedIsNotRetriedForAPost) {
  start();
  H2TestClient client(proxy_->port());
  const int32_t first = client.submit(requestHead("GET", authorityOf(*proxy_), "/drop-next"));
  ASSERT_TRUE(client.waitClosed(first));
  EXPECT_EQ(client.response(first).status, 200);
  // The app reads the POST and closes without an answer: it may have acted on it.
  const int32_t second = client.submit(requestHead("POST", authorityOf(*proxy_), "/echo"));
  ASSERT_TRUE(client.waitClosed(second));
  EXPECT_EQ(client.response(second).status, 502);
  ASSERT_TRUE(proxy_->waitForRequests(2));
  EXPECT_FALSE(proxy_->recorder().streams()[1].stats->retried);
  EXPECT_EQ(proxy_->counters().upstream_retries, 0u);
}

TEST_F(H2ToHttp1Test, ConcurrentStreamsEachGetAnHttp1Connection) {
  start();
  const ProcessResult r =
      nghttp({"-n", proxy_->url("/sleep?ms=200&n=1"), proxy_->url("/sleep?ms=200&n=2"),
              proxy_->url("/sleep?ms=200&n=3")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(proxy_->waitForRequests(3));
  EXPECT_EQ(origin_.connections(), 3);  // one exchange at a time per HTTP/1.1 connection
  for (const exporter::SpanRecord& span : proxy_->spans().spans()) {
    EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  }
}

TEST_F(H2ToHttp1Test, LargeResponseToAStalledClientStaysBounded) {
  start();
  http::H2Settings settings;
  H2TestClient client(proxy_->port(), settings);
  constexpr uint64_t kSize = 32u << 20;
  const int32_t id = client.submit(
      requestHead("GET", authorityOf(*proxy_), "/big?size=" + std::to_string(kSize)), {}, nullptr,
      /*keep_body=*/false);
  g_largest_allocation = 0;
  std::this_thread::sleep_for(1s);  // reads nothing meanwhile
  const size_t largest_while_stalled = g_largest_allocation.load();
  ASSERT_TRUE(client.waitClosed(id, 60s));
  EXPECT_EQ(client.response(id).body_bytes, kSize);
  EXPECT_LT(largest_while_stalled, 1u << 20);
  EXPECT_LT(proxy_->counters().buffered_bytes_peak, static_cast<int64_t>(4 * kHighWater));
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(proxy_->recorder().streams()[0].stats->response_body_bytes, kSize);
}

TEST_F(H2ToHttp1Test, LargeUploadToASlowAppStaysBounded) {
  start();
  const std::string file = makeFile(dir_, "upload", 8u << 20);
  g_largest_allocation = 0;
  const ProcessResult r = nghttp({"-d", file, proxy_->url("/echo?nobody=1&slow_ms=3")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["body_length"].number(), 8u << 20);
  EXPECT_LT(g_largest_allocation.load(), 1u << 20);
  EXPECT_LT(proxy_->counters().buffered_bytes_peak, static_cast<int64_t>(4 * kHighWater));
}

TEST_F(H2ToHttp1Test, AppResetBeforeAnsweringIs502) {
  start();
  const ProcessResult r = nghttp({"-v", proxy_->url("/reset")});
  EXPECT_NE(r.out.find(":status: 502"), std::string::npos) << r.out;
  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(spanAttribute(span, "error.type"), "connection_reset");
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "502");
  EXPECT_EQ(
      proxy_->counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kUpstreamReset),
      1u);
  EXPECT_EQ(proxy_->counters().upstream_failures, 1u);
}

TEST_F(H2ToHttp1Test, SlowAppIsAResponseTimeout504) {
  start([](proxy::DataPathSettings& s) { s.timeouts.upstream_response = 300ms; });
  const ProcessResult r = nghttp({"-v", proxy_->url("/sleep?ms=3000")});
  EXPECT_NE(r.out.find(":status: 504"), std::string::npos) << r.out;
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(spanAttribute(proxy_->spans().spans()[0], "error.type"), "response_timeout");
  EXPECT_EQ(proxy_->counters().upstream_failures, 1u);
}

TEST_F(H2ToHttp1Test, OutboundClientSpanNamesTheVersionSpokenUpstream) {
  start();
  const ProcessResult r = nghttp({proxy_->url("/echo", ListenerRole::kOutbound)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(parseJson(r.out).value_or(Json{})["version"].text, "HTTP/1.1");
  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(span.kind, exporter::SpanKind::kClient);
  EXPECT_EQ(spanVersion(span), "1.1");
  EXPECT_EQ(spanAttribute(span, "network.peer.address"), "127.0.0.1");
  EXPECT_EQ(spanAttribute(span, "network.peer.port"), std::to_string(origin_.port()));
}

// Max-Forwards (RFC 9110 section 7.6.2) over HTTP/2: an OPTIONS at 0 is answered by tracecar
// (the app never sees it) and recorded with that 200; a TRACE above 0 goes on, one lower.
TEST_F(H2ToHttp1Test, MaxForwardsIsCountedDownAndAnsweredAtZero) {
  start();
  const ProcessResult options = nghttp({"-v", "-H", ":method: OPTIONS", "-H", "max-forwards: 0",
                                        proxy_->url("/echo")});
  ASSERT_EQ(options.exit_code, 0) << options.err;
  EXPECT_NE(options.out.find(":status: 200"), std::string::npos) << options.out;
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(origin_.requests(), 0);
  const exporter::SpanRecord answered = proxy_->spans().spans()[0];
  EXPECT_EQ(spanAttribute(answered, "http.request.method"), "OPTIONS");
  EXPECT_EQ(spanAttribute(answered, "http.response.status_code"), "200");

  const ProcessResult trace = nghttp({"-H", ":method: TRACE", "-H", "max-forwards: 2",
                                      proxy_->url("/echo")});
  ASSERT_EQ(trace.exit_code, 0) << trace.err;
  const Json echo = parseJson(trace.out).value_or(Json{});
  EXPECT_EQ(echo["method"].text, "TRACE");
  EXPECT_EQ(echoedHeader(echo, "max-forwards"), "1");
}

TEST(H2ToHttp1RefusedTest, RefusedAppIs502OnThatStream) {
  const RefusingPort app;
  ASSERT_NE(app.port(), 0);
  TranslationProxy proxy(app.port(), UpstreamProtocol::kHttp1);
  ASSERT_TRUE(proxy.status().ok());
  const ProcessResult r = runProcess({"nghttp", "-v", "-t", "10", proxy.url("/")}, 30s);
  EXPECT_NE(r.out.find(":status: 502"), std::string::npos) << r.out;
  ASSERT_TRUE(proxy.waitForRequests(1));
  const exporter::SpanRecord span = proxy.spans().spans()[0];
  EXPECT_EQ(span.status_code, exporter::StatusCode::kError);
  EXPECT_EQ(spanAttribute(span, "error.type"), "connection_refused");
  const proxy::DataPathSnapshot counters = proxy.counters();
  EXPECT_EQ(counters.localReplies(ListenerRole::kInbound, LocalReplyReason::kUpstreamRefused), 1u);
  EXPECT_EQ(counters.upstream_failures, 1u);
}

// ---- HTTP/1.1 clients, HTTP/2 app ----

class Http1ToH2Test : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(origin_.port(), 0) << "the origin did not start"; }
  void start(const std::function<void(proxy::DataPathSettings&)>& tweak = {}) {
    proxy_ = std::make_unique<TranslationProxy>(origin_.port(), UpstreamProtocol::kHttp2, tweak);
    ASSERT_TRUE(proxy_->status().ok()) << proxy_->status();
  }
  ProcessResult curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--http1.1", "--max-time", "50"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runProcess(argv, 60s);
  }
  std::string host() const { return "Host: " + authorityOf(*proxy_) + "\r\n"; }

  H2cOrigin origin_;
  std::unique_ptr<TranslationProxy> proxy_;
  ScratchDir dir_;
};

TEST_F(Http1ToH2Test, GetReachesTheAppAsHttp2WithAuthorityFromHost) {
  start();
  const ProcessResult r = curl(
      {"-H", "Keep-Alive: timeout=5", "-H", "Connection: keep-alive", proxy_->url("/hello?q=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello\n");
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].protocol, "h2");
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].scheme, "http");
  EXPECT_EQ(seen[0].authority, authorityOf(*proxy_));
  EXPECT_EQ(seen[0].path, "/hello?q=1");
  for (const char* name : {"host", "connection", "keep-alive", "transfer-encoding"}) {
    EXPECT_EQ(fieldOf(seen[0].headers, name), std::nullopt) << name;
  }
  EXPECT_TRUE(fieldOf(seen[0].headers, "traceparent").has_value());
  EXPECT_EQ(fieldOf(seen[0].headers, "user-agent")->rfind("curl/", 0), 0u);

  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(span.kind, exporter::SpanKind::kServer);
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  EXPECT_EQ(spanVersion(span), "1.1");  // what the client spoke
  EXPECT_EQ(proxy_->recorder().streams()[0].stats->response_body_bytes, 6u);
}

// limits.response.* hold for the HTTP/2 app's answers: 502 past them, as from an HTTP/1.1 app.
TEST_F(Http1ToH2Test, AnAnswerPastTheResponseLimitsIs502) {
  start([](proxy::DataPathSettings& s) {
    s.response_limits.max_header_count = 10;
    s.response_limits.max_header_bytes = 1024;
  });
  for (const auto& [target, status] : std::vector<std::pair<std::string, int>>{
           {"/fields?n=9", 200}, {"/fields?n=10", 502}, {"/fields?pad=903", 200},
           {"/fields?pad=904", 502}}) {
    RawConnection c(proxy_->port());
    ASSERT_TRUE(c.send("GET " + target + " HTTP/1.1\r\n" + host() + "\r\n"));
    const std::optional<RawResponse> r = c.readResponse();
    ASSERT_TRUE(r.has_value()) << target;
    EXPECT_EQ(r->status, status) << target;
  }
}

TEST_F(Http1ToH2Test, ResponseHeadIsHttp11WithReasonAndLength) {
  start();
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\n" + host() + "\r\n"));
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->version, "HTTP/1.1");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->reason, "OK");
  EXPECT_EQ(r->header("content-length"), "6");
  EXPECT_EQ(r->header("x-origin"), "h2");
  EXPECT_FALSE(r->chunked);
  EXPECT_EQ(r->body, "hello\n");
}

TEST_F(Http1ToH2Test, PostWithContentLengthArrivesWhole) {
  start();
  const std::string file = makeFile(dir_, "body", 200000);
  const ProcessResult r = curl({"--data-binary", "@" + file, "-o", "/dev/null", "-w",
                                "%{http_code}", proxy_->url("/status/200")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].body_bytes, 200000u);
  EXPECT_EQ(fieldOf(seen[0].headers, "content-length"), "200000");
  EXPECT_TRUE(seen[0].ended);
}

TEST_F(Http1ToH2Test, ChunkedRequestWithTrailersArrivesAsDataAndTrailers) {
  start();
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\n" + host() +
                     "TE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Request-Trailer: t2\r\n\r\n"));
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello, world");
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body, "hello, world");
  EXPECT_EQ(fieldOf(seen[0].headers, "transfer-encoding"), std::nullopt);
  EXPECT_EQ(fieldOf(seen[0].headers, "te"), "trailers");
  EXPECT_EQ(fieldOf(seen[0].trailers, "x-request-trailer"), "t2");
}

TEST_F(Http1ToH2Test, ResponseWithoutLengthIsChunkedWithItsTrailers) {
  start();
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("POST /echo?trailers=1 HTTP/1.1\r\n" + host() +
                     "TE: trailers\r\nContent-Length: 4\r\n\r\nabcd"));
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->body, "abcd");
  EXPECT_EQ(r->header("content-length"), std::nullopt);
  ASSERT_EQ(r->trailers.size(), 2u);
  EXPECT_EQ(r->trailers[0].first, "x-body-length");
  EXPECT_EQ(r->trailers[0].second, "4");
}

TEST_F(Http1ToH2Test, HeadAnd204And304HaveNoBody) {
  start();
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("HEAD /hello HTTP/1.1\r\n" + host() + "\r\n"));
  std::optional<RawResponse> r = c.readResponse(/*head_request=*/true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-length"), "6");
  ASSERT_TRUE(c.send("GET /status/204 HTTP/1.1\r\n" + host() + "\r\n"));
  r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->reason, "No Content");
  EXPECT_EQ(r->header("transfer-encoding"), std::nullopt);
  ASSERT_TRUE(c.send("GET /status/304 HTTP/1.1\r\n" + host() + "\r\n"));
  r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 304);
  EXPECT_EQ(r->header("transfer-encoding"), std::nullopt);
  // Nothing stray followed: the connection still answers.
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\n" + host() + "\r\n"));
  r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "hello\n");
}

TEST_F(Http1ToH2Test, KeepAliveConnectionCarriesSequentialRequestsOverOneH2Connection) {
  start();
  RawConnection c(proxy_->port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\n" + host() + "\r\n"));
    const std::optional<RawResponse> r = c.readResponse();
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->body, "hello\n");
    EXPECT_EQ(r->header("connection"), std::nullopt);
  }
  // Pipelined: answered in order.
  ASSERT_TRUE(c.send("GET /status/201 HTTP/1.1\r\n" + host() + "\r\nGET /status/202 HTTP/1.1\r\n" +
                     host() + "\r\n"));
  EXPECT_EQ(c.readResponse()->status, 201);
  EXPECT_EQ(c.readResponse()->status, 202);
  EXPECT_EQ(origin_.connections(), 1);
  EXPECT_EQ(origin_.resets(), 0);  // complete exchanges end their streams, never reset them
  ASSERT_TRUE(proxy_->waitForRequests(7));
  EXPECT_EQ(proxy_->counters().connections_total[0], 1u);

  const ProcessResult two = curl({proxy_->url("/hello"), proxy_->url("/hello")});
  EXPECT_EQ(two.out, "hello\nhello\n");
  EXPECT_EQ(origin_.connections(), 1);
}

TEST_F(Http1ToH2Test, UpgradeStaysHttp11) {
  start();
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("GET /ws HTTP/1.1\r\n" + host() +
                     "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 101);
  ASSERT_TRUE(c.send("ping over the tunnel"));
  EXPECT_EQ(c.readExactly(20), "ping over the tunnel");
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].protocol, "HTTP/1.1");
  EXPECT_EQ(fieldOf(seen[0].headers, "upgrade"), "websocket");
}

TEST_F(Http1ToH2Test, InterimResponsesAreRelayed) {
  start();
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("GET /interim HTTP/1.1\r\n" + host() + "\r\n"));
  std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 103);
  EXPECT_EQ(r->reason, "Early Hints");
  EXPECT_EQ(r->header("link"), "</style.css>; rel=preload");
  r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "after interim\n");
}

TEST_F(Http1ToH2Test, RefusedStreamIsSentOnceMore) {
  start();
  const ProcessResult r = curl({proxy_->url("/refuse-first")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "second try\n");
  EXPECT_EQ(origin_.requests().size(), 2u);
  EXPECT_EQ(proxy_->counters().h2_refused_retries, 1u);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_TRUE(proxy_->recorder().streams()[0].stats->retried);
  EXPECT_EQ(spanAttribute(proxy_->spans().spans()[0], "http.response.status_code"), "200");
}

TEST_F(Http1ToH2Test, RefusedOutboundStreamIsASpanPerAttempt) {
  start();
  const ProcessResult r = curl({proxy_->url("/refuse-first", ListenerRole::kOutbound)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "second try\n");
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 2u);
  expectASpanPerAttempt(*proxy_, fieldOf(seen[1].headers, "traceparent").value_or(""));
}

// A request whose body had begun to go when the app refused it is not sent again (the bytes
// that went are not kept for a second sending): 502.
TEST_F(Http1ToH2Test, RefusedStreamWhoseBodyWentIsNotSentAgain) {
  start();
  const ProcessResult r = curl({"--data-binary", "abc", "-o", "/dev/null", "-w", "%{http_code}",
                                proxy_->url("/refuse-first")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "502");
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body_bytes, 3u);
  EXPECT_EQ(proxy_->counters().h2_refused_retries, 0u);
}

// An HTTP/2 client through a proxy that speaks HTTP/2 to an h2c origin, whose /refuse-first
// refuses the first request it sees (REFUSED_STREAM) and answers the next.
class H2ToH2RefusedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(origin_.port(), 0) << "the origin did not start";
    proxy_ = std::make_unique<TranslationProxy>(origin_.port(), UpstreamProtocol::kHttp2);
    ASSERT_TRUE(proxy_->status().ok()) << proxy_->status();
  }

  H2cOrigin origin_;
  std::unique_ptr<TranslationProxy> proxy_;
  ScratchDir dir_;
};

// A request the app refused (never processed) goes once more, on another stream.
TEST_F(H2ToH2RefusedTest, RefusedStreamIsSentOnceMore) {
  const ProcessResult r = runProcess({"nghttp", "-t", "10", proxy_->url("/refuse-first")}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "second try\n");
  EXPECT_EQ(origin_.requests().size(), 2u);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_TRUE(proxy_->recorder().streams()[0].stats->retried);
}

TEST_F(H2ToH2RefusedTest, RefusedOutboundStreamIsASpanPerAttempt) {
  const ProcessResult r = runProcess(
      {"nghttp", "-t", "10", proxy_->url("/refuse-first", ListenerRole::kOutbound)}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "second try\n");
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 2u);
  expectASpanPerAttempt(*proxy_, fieldOf(seen[1].headers, "traceparent").value_or(""));
}

// A request whose trailers already went to the app, with no body byte before them: a refusal is
// not answered by sending it again, which would go without its trailers.
TEST_F(H2ToH2RefusedTest, RefusedStreamWhoseTrailersWentIsNotSentAgain) {
  const std::string empty = makeFile(dir_, "empty", 0);
  const ProcessResult r = runProcess({"nghttp", "-v", "-t", "10", "--trailer", "x-checksum: abc",
                                      "-d", empty, proxy_->url("/refuse-first")},
                                     30s);
  EXPECT_NE(r.out.find(":status: 502"), std::string::npos) << r.out;
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body_bytes, 0u);
  EXPECT_EQ(fieldOf(seen[0].trailers, "x-checksum"), "abc");
}

// The same when a body byte went: the refusal is answered 502.
TEST_F(H2ToH2RefusedTest, RefusedStreamWhoseBodyWentIsNotSentAgain) {
  const std::string body = makeFile(dir_, "body", 3);
  const ProcessResult r =
      runProcess({"nghttp", "-v", "-t", "10", "-d", body, proxy_->url("/refuse-first")}, 30s);
  EXPECT_NE(r.out.find(":status: 502"), std::string::npos) << r.out;
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body_bytes, 3u);
}

// ---- HTTP/2 clients, HTTP/2 app: a response body that stops coming ----

class H2ToH2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(origin_.port(), 0) << "the origin did not start";
    proxy_ = std::make_unique<TranslationProxy>(
        origin_.port(), UpstreamProtocol::kHttp2,
        [](proxy::DataPathSettings& s) { s.timeouts.upstream_response = 300ms; });
    ASSERT_TRUE(proxy_->status().ok()) << proxy_->status();
  }
  uint64_t responseTimeouts() const {
    return proxy_->counters()
        .timeouts[static_cast<size_t>(proxy::DataPathTimeout::kUpstreamResponse)];
  }

  H2cOrigin origin_;
  std::unique_ptr<TranslationProxy> proxy_;
};

TEST_F(H2ToH2Test, ABodyThatStopsComingResetsTheClientsStream) {
  H2TestClient client(proxy_->port());
  // 10 bytes with the head, the next 10 two seconds later.
  const int32_t id =
      client.submit(requestHead("GET", authorityOf(*proxy_), "/drip?pieces=2&ms=2000"));
  ASSERT_TRUE(client.waitClosed(id, 10s));
  const H2TestClient::Response& response = client.response(id);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, std::string(10, 'a'));
  EXPECT_FALSE(response.ended);
  EXPECT_EQ(response.cause, http::H2CloseCause::kResetByPeer);
  EXPECT_EQ(response.code, http::H2ErrorCode::kInternalError);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(spanAttribute(span, "error.type"), "response_timeout");
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  EXPECT_EQ(responseTimeouts(), 1u);
  EXPECT_EQ(proxy_->counters().upstream_failures, 1u);
  EXPECT_TRUE(eventually([&] { return origin_.resets() == 1; }));
  // The connection goes on.
  const int32_t next = client.submit(requestHead("GET", authorityOf(*proxy_), "/hello"));
  ASSERT_TRUE(client.waitClosed(next));
  EXPECT_EQ(client.response(next).body, "hello\n");
}

// A client that cancels its stream after the response head: the answer began but was not
// delivered whole, which the span says whatever the status code.
TEST_F(H2ToH2Test, AClientThatCancelsMidBodyMakesTheSpanAnError) {
  H2TestClient client(proxy_->port());
  const int32_t id =
      client.submit(requestHead("GET", authorityOf(*proxy_), "/drip?pieces=3&ms=200"));
  ASSERT_TRUE(client.waitHead(id));
  EXPECT_EQ(client.response(id).status, 200);
  client.reset(id, http::H2ErrorCode::kCancel);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  EXPECT_EQ(spanAttribute(span, "error.type"), "response_incomplete");
  EXPECT_EQ(span.status_code, exporter::StatusCode::kError);
  EXPECT_EQ(span.status_message, "ended before the whole response was delivered");
  // A stream read to its end is no error.
  const int32_t whole = client.submit(requestHead("GET", authorityOf(*proxy_), "/drip?pieces=2&ms=10"));
  ASSERT_TRUE(client.waitClosed(whole));
  EXPECT_TRUE(client.response(whole).ended);
  ASSERT_TRUE(proxy_->waitForRequests(2));
  const exporter::SpanRecord second = proxy_->spans().spans()[1];
  EXPECT_EQ(spanAttribute(second, "error.type"), "<absent>");
  EXPECT_EQ(second.status_code, exporter::StatusCode::kUnset);
}

// A client that has its whole answer and then drops the rest of its upload: delivered, no error.
TEST_F(H2ToH2Test, AClientDoneWithItsAnswerThatCancelsItsUploadIsNoError) {
  H2TestClient client(proxy_->port());
  const int32_t id = client.open(requestHead("POST", authorityOf(*proxy_), "/early"));
  client.sendData(id, "part of an upload", false);
  ASSERT_TRUE(client.waitEnded(id));
  EXPECT_EQ(client.response(id).body, "early\n");
  client.reset(id, http::H2ErrorCode::kCancel);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  EXPECT_EQ(spanAttribute(span, "error.type"), "<absent>");
  EXPECT_EQ(span.status_code, exporter::StatusCode::kUnset);
}

// RFC 9113 section 8.1.1: a body shorter than its content-length makes the response malformed.
TEST_F(H2ToH2Test, AMalformedResponseIsABadResponseNotAReset) {
  H2TestClient client(proxy_->port());
  const int32_t id = client.submit(requestHead("GET", authorityOf(*proxy_), "/short-body"));
  ASSERT_TRUE(client.waitClosed(id));
  EXPECT_EQ(client.response(id).cause, http::H2CloseCause::kResetByPeer);
  EXPECT_EQ(client.response(id).code, http::H2ErrorCode::kInternalError);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(spanAttribute(proxy_->spans().spans()[0], "error.type"), "bad_response");
  // tracecar reset the client's stream itself: nothing of the app's was relayed.
  EXPECT_EQ(proxy_->counters().h2_resets_to_downstream, 0u);
}

// resets_to_downstream counts the app's RST_STREAM relayed to the client, and only those.
TEST_F(H2ToH2Test, OnlyAResetRelayedToTheClientIsCountedAsOne) {
  H2TestClient client(proxy_->port());
  const int32_t before = client.submit(requestHead("GET", authorityOf(*proxy_), "/reset"));
  ASSERT_TRUE(client.waitClosed(before));
  EXPECT_EQ(client.response(before).status, 502);  // answered, not relayed
  const int32_t after =
      client.submit(requestHead("GET", authorityOf(*proxy_), "/drip?pieces=1&ms=50&reset=1"));
  ASSERT_TRUE(client.waitClosed(after));
  EXPECT_EQ(client.response(after).body, std::string(10, 'a'));
  EXPECT_EQ(client.response(after).cause, http::H2CloseCause::kResetByPeer);
  EXPECT_EQ(client.response(after).code, http::H2ErrorCode::kInternalError);
  ASSERT_TRUE(proxy_->waitForRequests(2));
  EXPECT_EQ(proxy_->counters().h2_resets_to_downstream, 1u);
}

TEST_F(H2ToH2Test, ABodyThatKeepsComingIsNotTimedOutWhateverItsLength) {
  H2TestClient client(proxy_->port());
  // Five pieces 150 ms apart: 600 ms in all, never 300 ms without a byte.
  const int32_t id =
      client.submit(requestHead("GET", authorityOf(*proxy_), "/drip?pieces=5&ms=150"));
  ASSERT_TRUE(client.waitClosed(id, 10s));
  const H2TestClient::Response& response = client.response(id);
  EXPECT_TRUE(response.ended);
  EXPECT_EQ(response.body, std::string(10, 'a') + std::string(10, 'b') + std::string(10, 'c') +
                               std::string(10, 'd') + std::string(10, 'e'));
  EXPECT_EQ(responseTimeouts(), 0u);
  EXPECT_EQ(origin_.resets(), 0);
}

TEST_F(H2ToH2Test, AClientThatStopsReadingDoesNotTimeTheAppOut) {
  H2TestClient client(proxy_->port());
  constexpr uint64_t kSize = 32u << 20;
  const int32_t id = client.submit(
      requestHead("GET", authorityOf(*proxy_), "/big?size=" + std::to_string(kSize)), {}, nullptr,
      /*keep_body=*/false);
  std::this_thread::sleep_for(1s);  // reads nothing for longer than the timeout
  EXPECT_EQ(responseTimeouts(), 0u);
  ASSERT_TRUE(client.waitClosed(id, 60s));
  EXPECT_TRUE(client.response(id).ended);
  EXPECT_EQ(client.response(id).body_bytes, kSize);
  EXPECT_EQ(responseTimeouts(), 0u);
}

TEST_F(Http1ToH2Test, LargeResponseToAStalledClientStaysBounded) {
  start();
  constexpr uint64_t kSize = 32u << 20;
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("GET /big?size=" + std::to_string(kSize) + " HTTP/1.1\r\n" + host() + "\r\n"));
  g_largest_allocation = 0;
  std::this_thread::sleep_for(1s);  // reads nothing meanwhile
  EXPECT_LT(g_largest_allocation.load(), 1u << 20);
  const std::optional<RawResponse> r = c.readResponse(false, 60s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body.size(), kSize);
  EXPECT_LT(proxy_->counters().buffered_bytes_peak, static_cast<int64_t>(4 * kHighWater));
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(proxy_->recorder().streams()[0].stats->response_body_bytes, kSize);
}

TEST_F(Http1ToH2Test, LargeUploadStaysBounded) {
  start();
  const std::string file = makeFile(dir_, "upload", 16u << 20);
  g_largest_allocation = 0;
  const ProcessResult r =
      curl({"--data-binary", "@" + file, "-H", "Content-Type: application/octet-stream", "-o",
            "/dev/null", "-w", "%{http_code}", proxy_->url("/status/200")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  ASSERT_EQ(origin_.requests().size(), 1u);
  EXPECT_EQ(origin_.requests()[0].body_bytes, 16u << 20);
  EXPECT_LT(proxy_->counters().buffered_bytes_peak, static_cast<int64_t>(4 * kHighWater));
}

TEST_F(Http1ToH2Test, AppResetIs502AndTheConnectionGoesOn) {
  start();
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("GET /reset HTTP/1.1\r\n" + host() + "\r\n"));
  std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 502);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\n" + host() + "\r\n"));
  r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(proxy_->waitForRequests(2));
  const std::vector<exporter::SpanRecord> spans = proxy_->spans().spans();
  EXPECT_EQ(spanAttribute(spans[0], "error.type"), "connection_reset");
  EXPECT_EQ(spanAttribute(spans[0], "http.response.status_code"), "502");
  EXPECT_EQ(spanAttribute(spans[1], "error.type"), "<absent>");
  const proxy::DataPathSnapshot counters = proxy_->counters();
  EXPECT_EQ(counters.localReplies(ListenerRole::kInbound, LocalReplyReason::kUpstreamReset), 1u);
  EXPECT_EQ(counters.upstream_failures, 1u);
}

TEST_F(Http1ToH2Test, AppThatNeverAnswersIs504) {
  start([](proxy::DataPathSettings& s) { s.timeouts.upstream_response = 300ms; });
  const ProcessResult r = curl({"-o", "/dev/null", "-w", "%{http_code}", proxy_->url("/never")});
  EXPECT_EQ(r.out, "504");
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(spanAttribute(proxy_->spans().spans()[0], "error.type"), "response_timeout");
  const proxy::DataPathSnapshot counters = proxy_->counters();
  EXPECT_EQ(counters.localReplies(ListenerRole::kInbound, LocalReplyReason::kResponseTimeout), 1u);
  EXPECT_EQ(counters.timeouts[static_cast<size_t>(proxy::DataPathTimeout::kUpstreamResponse)], 1u);
}

// The response timeout runs between the pieces of an HTTP/2 app's body too (as between an
// HTTP/1.1 app's, tests/integration/proxy/data_path_guard_test.cc).
void shortResponseTimeout(proxy::DataPathSettings& s) { s.timeouts.upstream_response = 300ms; }

// A POST of 20 bytes whose client sends 10 and stops; waits for the stream's answer to end.
int32_t postTenBytesOfTwenty(H2TestClient& client, const TranslationProxy& proxy,
                             const std::string& path, bool expect_continue = false) {
  http::H2Head head = requestHead("POST", authorityOf(proxy), path);
  head.headers.add("content-length", "20");
  if (expect_continue) head.headers.add("expect", "100-continue");
  const int32_t id = client.open(head);
  client.sendData(id, "0123456789", false);
  EXPECT_TRUE(client.waitEnded(id, 10s));
  return id;
}

uint64_t requestBodyTimeouts(const TranslationProxy& proxy) {
  return proxy.counters().localReplies(ListenerRole::kInbound,
                                       LocalReplyReason::kRequestBodyTimeout);
}

uint64_t responseTimeouts(const TranslationProxy& proxy) {
  return proxy.counters().timeouts[static_cast<size_t>(proxy::DataPathTimeout::kUpstreamResponse)];
}

TEST_F(Http1ToH2Test, ABodyThatStopsComingTimesOutAndClosesTheClientConnection) {
  start(shortResponseTimeout);
  // 10 bytes with the head, the next 10 two seconds later.
  const ProcessResult r = curl({proxy_->url("/drip?pieces=2&ms=2000")});
  EXPECT_EQ(r.exit_code, 18) << r.err;  // transfer closed with outstanding read data
  EXPECT_EQ(r.out, std::string(10, 'a'));
  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(spanAttribute(span, "error.type"), "response_timeout");
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  EXPECT_TRUE(proxy_->recorder().streams()[0].stats->aborted);
  EXPECT_EQ(responseTimeouts(*proxy_), 1u);
  EXPECT_EQ(proxy_->counters().upstream_failures, 1u);
  // The app's stream is reset, not left open on the pooled connection.
  EXPECT_TRUE(eventually([&] { return origin_.resets() == 1; }));
}

TEST_F(Http1ToH2Test, ABodyThatKeepsComingIsNotTimedOutWhateverItsLength) {
  start(shortResponseTimeout);
  // Five pieces 150 ms apart: 600 ms in all, never 300 ms without a byte.
  const ProcessResult r = curl({proxy_->url("/drip?pieces=5&ms=150")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string(10, 'a') + std::string(10, 'b') + std::string(10, 'c') +
                       std::string(10, 'd') + std::string(10, 'e'));
  // No deadline is left behind once the exchange is over.
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(curl({proxy_->url("/hello")}).out, "hello\n");
  EXPECT_EQ(responseTimeouts(*proxy_), 0u);
  EXPECT_EQ(origin_.resets(), 0);
}

// A client that stops sending its request body while tracecar takes all of it is the one waited
// for: 408 and no upstream failure, whatever the protocol on either side.
TEST_F(Http1ToH2Test, AClientThatStopsSendingItsBodyIsAnswered408) {
  start(shortResponseTimeout);
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\n" + host() + "Content-Length: 20\r\n\r\n0123456789"));
  const std::optional<RawResponse> r = c.readResponse(false, 10s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->body, "request body timeout\n");
  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "408");
  EXPECT_EQ(spanAttribute(span, "error.type"), "<absent>");
  EXPECT_EQ(requestBodyTimeouts(*proxy_), 1u);
  EXPECT_EQ(proxy_->counters().upstream_failures, 0u);
  EXPECT_EQ(responseTimeouts(*proxy_), 1u);
  // The app's stream is reset, not left waiting for the rest of the body.
  EXPECT_TRUE(eventually([&] { return origin_.resets() == 1; }));
}

TEST_F(H2ToHttp1Test, AClientThatStopsSendingItsBodyIsAnswered408) {
  start(shortResponseTimeout);
  H2TestClient client(proxy_->port());
  const H2TestClient::Response& response =
      client.response(postTenBytesOfTwenty(client, *proxy_, "/echo"));
  EXPECT_EQ(response.status, 408);
  EXPECT_EQ(response.body, "request body timeout\n");
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(spanAttribute(proxy_->spans().spans()[0], "http.response.status_code"), "408");
  EXPECT_EQ(requestBodyTimeouts(*proxy_), 1u);
  const proxy::DataPathSnapshot counters = proxy_->counters();
  EXPECT_EQ(counters.localReplies(ListenerRole::kInbound, LocalReplyReason::kResponseTimeout), 0u);
  EXPECT_EQ(counters.upstream_failures, 0u);
  EXPECT_EQ(responseTimeouts(*proxy_), 1u);
}

// Request body bytes another stream holds back (its app takes none of them) are the
// connection's window, which this stream's DATA needs too: while any are held, a stream whose
// body stops coming may be a client held back by tracecar, and the app is blamed (504).
TEST(H2ToHttp1HeldWindowTest, ABodyHeldForAnotherStreamMakesAStallTheApps504) {
  SilentListener silent;  // connections complete, nothing is read
  ASSERT_NE(silent.port(), 0);
  TranslationProxy proxy(silent.port(), UpstreamProtocol::kHttp1,
                         [](proxy::DataPathSettings& s) { s.timeouts.upstream_response = 300ms; });
  ASSERT_TRUE(proxy.status().ok()) << proxy.status();
  H2TestClient client(proxy.port());
  http::H2Head stalled_head = requestHead("POST", authorityOf(proxy), "/stalled");
  stalled_head.headers.add("content-length", "20");
  const int32_t stalled = client.open(stalled_head);
  client.sendData(stalled, "0123456789", false);
  // Then a body far larger than the sockets on the way hold, to an app that reads none of it.
  constexpr size_t kBig = 32u << 20;
  http::H2Head big_head = requestHead("POST", authorityOf(proxy), "/big");
  big_head.headers.add("content-length", std::to_string(kBig));
  const int32_t big = client.open(big_head);
  client.sendData(big, std::string(kBig, 'x'), true);
  ASSERT_TRUE(client.waitEnded(stalled, 10s));
  EXPECT_EQ(client.response(stalled).status, 504);
  EXPECT_EQ(requestBodyTimeouts(proxy), 0u);
}

// After a 100 Continue from an HTTP/1.1 app, the stream's timer still runs from the client's
// last body byte: a client that then stalls gets the 408, one that keeps sending is not cut.
TEST_F(H2ToHttp1Test, AfterA100AClientThatStallsGets408AndOneThatKeepsSendingIsServed) {
  start(shortResponseTimeout);
  H2TestClient client(proxy_->port());
  const int32_t stalled = postTenBytesOfTwenty(client, *proxy_, "/echo", true);
  EXPECT_EQ(client.response(stalled).status, 408);

  http::H2Head steady_head = requestHead("POST", authorityOf(*proxy_), "/echo");
  steady_head.headers.add("content-length", "50");
  steady_head.headers.add("expect", "100-continue");
  const int32_t steady = client.open(steady_head);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(150ms);
    client.sendData(steady, std::string(10, static_cast<char>('a' + i)), i == 4);
  }
  ASSERT_TRUE(client.waitEnded(steady, 10s));
  EXPECT_EQ(client.response(steady).status, 200);
  EXPECT_EQ(parseJson(client.response(steady).body).value_or(Json{})["body_length"].number(), 50);
  EXPECT_EQ(requestBodyTimeouts(*proxy_), 1u);
  EXPECT_EQ(proxy_->counters().upstream_failures, 0u);
  EXPECT_EQ(responseTimeouts(*proxy_), 1u);
}

TEST_F(H2ToH2Test, AClientThatStopsSendingItsBodyIsAnswered408) {
  H2TestClient client(proxy_->port());
  const H2TestClient::Response& response =
      client.response(postTenBytesOfTwenty(client, *proxy_, "/hello"));
  EXPECT_EQ(response.status, 408);
  EXPECT_EQ(response.body, "request body timeout\n");
  EXPECT_EQ(requestBodyTimeouts(*proxy_), 1u);
  EXPECT_EQ(proxy_->counters().upstream_failures, 0u);
  EXPECT_EQ(responseTimeouts(), 1u);
  EXPECT_TRUE(eventually([&] { return origin_.resets() == 1; }));
  // The connection goes on.
  const int32_t next = client.submit(requestHead("GET", authorityOf(*proxy_), "/hello"));
  ASSERT_TRUE(client.waitClosed(next));
  EXPECT_EQ(client.response(next).body, "hello\n");
}

// At the limit: pieces of the body 150 ms apart under a 300 ms timeout are never a stall.
TEST_F(H2ToH2Test, ABodySentSlowlyButSteadilyIsNotTimedOut) {
  H2TestClient client(proxy_->port());
  http::H2Head head = requestHead("POST", authorityOf(*proxy_), "/hello");
  head.headers.add("content-length", "50");
  const int32_t id = client.open(head);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(150ms);
    client.sendData(id, std::string(10, static_cast<char>('a' + i)), i == 4);
  }
  ASSERT_TRUE(client.waitClosed(id, 10s));
  EXPECT_EQ(client.response(id).status, 200);
  EXPECT_EQ(client.response(id).body, "hello\n");
  EXPECT_EQ(responseTimeouts(), 0u);
  ASSERT_FALSE(origin_.requests().empty());
  EXPECT_EQ(origin_.requests().back().body.size(), 50u);
}

TEST_F(Http1ToH2Test, AMalformedResponseIsABadResponse) {
  start();
  const ProcessResult r = curl({proxy_->url("/short-body")});
  EXPECT_EQ(r.exit_code, 18) << r.err;  // the head (content-length 10) went; the body fell short
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(spanAttribute(proxy_->spans().spans()[0], "error.type"), "bad_response");
}

TEST_F(Http1ToH2Test, AClientThatStopsReadingDoesNotTimeTheAppOut) {
  start(shortResponseTimeout);
  constexpr uint64_t kSize = 32u << 20;
  RawConnection c(proxy_->port());
  ASSERT_TRUE(c.send("GET /big?size=" + std::to_string(kSize) + " HTTP/1.1\r\n" + host() + "\r\n"));
  std::this_thread::sleep_for(1s);  // reads nothing for longer than the timeout
  EXPECT_EQ(responseTimeouts(*proxy_), 0u);
  const std::optional<RawResponse> r = c.readResponse(false, 60s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body.size(), kSize);
  EXPECT_EQ(responseTimeouts(*proxy_), 0u);
}

TEST_F(Http1ToH2Test, OutboundClientSpanNamesTheVersionSpokenUpstream) {
  start();
  const ProcessResult r = curl({proxy_->url("/hello", ListenerRole::kOutbound)});
  EXPECT_EQ(r.out, "hello\n");
  ASSERT_TRUE(proxy_->waitForRequests(1));
  const exporter::SpanRecord span = proxy_->spans().spans()[0];
  EXPECT_EQ(span.kind, exporter::SpanKind::kClient);
  EXPECT_EQ(spanVersion(span), "2");
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  EXPECT_EQ(spanAttribute(span, "network.peer.address"), "127.0.0.1");
  EXPECT_EQ(spanAttribute(span, "network.peer.port"), std::to_string(origin_.port()));
}

TEST(Http1ToH2RefusedTest, RefusedAppIs502) {
  const RefusingPort app;
  ASSERT_NE(app.port(), 0);
  TranslationProxy proxy(app.port(), UpstreamProtocol::kHttp2);
  ASSERT_TRUE(proxy.status().ok());
  const ProcessResult r = runProcess(
      {"curl", "-sS", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}", proxy.url("/")}, 30s);
  EXPECT_EQ(r.out, "502");
  ASSERT_TRUE(proxy.waitForRequests(1));
  const exporter::SpanRecord span = proxy.spans().spans()[0];
  EXPECT_EQ(spanAttribute(span, "error.type"), "connection_refused");
  const proxy::DataPathSnapshot counters = proxy.counters();
  EXPECT_EQ(counters.localReplies(ListenerRole::kInbound, LocalReplyReason::kUpstreamRefused), 1u);
  EXPECT_EQ(counters.upstream_failures, 1u);
}

// A 1xx is a sign of life whichever protocols the client and the app speak: the response
// timeout counts again from each one (a 102 Processing keeps a long request alive), and a
// silence after the last one is timed from it. HTTP/1.1 on both sides:
// data_path_guard_test.cc.

// Four 102s 200 ms apart and the answer 200 ms after the last, under a 300 ms timeout.
void expectProcessingServed(H2TestClient& client, const TranslationProxy& proxy) {
  const int32_t id =
      client.submit(requestHead("GET", authorityOf(proxy), "/processing?count=4&ms=200"));
  ASSERT_TRUE(client.waitEnded(id, 10s));
  EXPECT_EQ(client.response(id).interim, (std::vector<int>{102, 102, 102, 102}));
  EXPECT_EQ(client.response(id).status, 200);
  EXPECT_EQ(client.response(id).body, "processed\n");
  EXPECT_EQ(responseTimeouts(proxy), 0u);
}

// One 102 150 ms in, then nothing: the 504 comes 300 ms after the 102, not after the request.
void expectSilenceTimedFromTheInterim(H2TestClient& client, const TranslationProxy& proxy) {
  const auto sent = std::chrono::steady_clock::now();
  const int32_t id = client.submit(
      requestHead("GET", authorityOf(proxy), "/processing?count=1&ms=150&final_ms=3000"));
  ASSERT_TRUE(client.waitEnded(id, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 420ms);
  EXPECT_EQ(client.response(id).interim, std::vector<int>{102});
  EXPECT_EQ(client.response(id).status, 504);
  EXPECT_EQ(responseTimeouts(proxy), 1u);
}

TEST_F(H2ToHttp1Test, EachInterimResponseRestartsTheResponseTimeout) {
  start(shortResponseTimeout);
  H2TestClient client(proxy_->port());
  expectProcessingServed(client, *proxy_);
}

TEST_F(H2ToHttp1Test, ASilenceAfterAnInterimResponseIsTimedFromIt) {
  start(shortResponseTimeout);
  H2TestClient client(proxy_->port());
  expectSilenceTimedFromTheInterim(client, *proxy_);
}

TEST_F(H2ToH2Test, EachInterimResponseRestartsTheResponseTimeout) {
  H2TestClient client(proxy_->port());
  expectProcessingServed(client, *proxy_);
}

TEST_F(H2ToH2Test, ASilenceAfterAnInterimResponseIsTimedFromIt) {
  H2TestClient client(proxy_->port());
  expectSilenceTimedFromTheInterim(client, *proxy_);
}

TEST_F(Http1ToH2Test, EachInterimResponseRestartsTheResponseTimeout) {
  start(shortResponseTimeout);
  expectInterimsThenTheAnswer(proxy_->port(), host());
  EXPECT_EQ(responseTimeouts(*proxy_), 0u);
}

TEST_F(Http1ToH2Test, ASilenceAfterAnInterimResponseIsTimedFromIt) {
  start(shortResponseTimeout);
  expectASilenceAfterAnInterimTimedFromIt(proxy_->port(), host());
  EXPECT_EQ(responseTimeouts(*proxy_), 1u);
}

}  // namespace
}  // namespace tracecar::integration
