// The HTTP/1.1 data path end to end: forwarding, framing, pipelining, hop-by-hop fields,
// streaming with bounded memory, keep-alive pools, observers, drain, workers.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include "integration/proxy/data_path_fixture.h"

namespace tracecar::integration {
namespace {

using proxy::ListenerRole;
using proxy::LocalReplyReason;

Json echoOf(const RawResponse& response) { return parseJson(response.body).value_or(Json{}); }

// ---- forwarding and framing ----

TEST_F(DataPathTest, ForwardsGetToTheAppWithCurl) {
  startProxy();
  const ProcessResult r = curl({"-H", "X-Test: 1", inboundUrl("/echo?a=b")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["method"].text, "GET");
  EXPECT_EQ(echo["target"].text, "/echo?a=b");
  EXPECT_EQ(echo["version"].text, "HTTP/1.1");
  EXPECT_EQ(echoedHeader(echo, "x-test"), "1");
  EXPECT_EQ(echoedHeader(echo, "host"), "127.0.0.1:" + std::to_string(inboundPort()));
  EXPECT_EQ(counters().requests_total[0], 1u);
  EXPECT_EQ(counters().connections_total[0], 1u);
}

TEST_F(DataPathTest, ForwardsPostBodyWithContentLength) {
  startProxy();
  const ProcessResult r = curl({"--data-binary", "hello body", inboundUrl("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["method"].text, "POST");
  EXPECT_EQ(echo["body"].text, "hello body");
  EXPECT_EQ(echoedHeader(echo, "content-length"), "10");
}

TEST_F(DataPathTest, ChunkedRequestWithTrailersIsReencodedChunkByChunk) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  const Json echo = echoOf(*response);
  EXPECT_EQ(echo["body"].text, "hello world");
  EXPECT_EQ(echoedHeader(echo, "transfer-encoding"), "chunked");
  EXPECT_EQ(echoedHeader(echo, "te"), "trailers");
  EXPECT_EQ(echoedHeader(echo, "content-length"), std::nullopt);
  ASSERT_EQ(echo["trailers"].items.size(), 1u);
  EXPECT_EQ(echo["trailers"][0][0].text, "X-Sum");
  EXPECT_EQ(echo["trailers"][0][1].text, "42");
}

// A trailer section does not carry on what it must not hold (RFC 9110 section 6.5.1): routing,
// credentials for a proxy, connection control, the trace context.
TEST_F(DataPathTest, TrailersDoNotCarryRoutingCredentialsOrTraceContext) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\nProxy-Authorization: Basic eDp5\r\nHost: evil\r\n"
      "Connection: close\r\ntraceparent: 00-11111111111111111111111111111111-2222222222222222-01\r\n"
      "X-Sum: 42\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  const Json echo = echoOf(*response);
  EXPECT_EQ(echo["body"].text, "hello");
  ASSERT_EQ(echo["trailers"].items.size(), 1u);
  EXPECT_EQ(echo["trailers"][0][0].text, "X-Sum");
  // The trailers' Connection: close ends the client's connection after this answer (it is not
  // forwarded; the parser reads nothing more), instead of leaving it open and deaf.
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(c.closedByPeer());
}

TEST_F(DataPathTest, AMethodOfAnyTokenIsForwarded) {
  startProxy();
  RawConnection c(inboundPort());
  // QUERY is not one llhttp knows; the chunk extensions are several, one of them quoted.
  ASSERT_TRUE(c.send(
      "QUERY /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;a=1;b=\"x y\";c\r\nhello\r\n0\r\n\r\n"
      "BREW /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\ntea"));
  for (const char* method : {"QUERY", "BREW"}) {
    const std::optional<RawResponse> response = c.readResponse();
    ASSERT_TRUE(response) << method;
    EXPECT_EQ(response->status, 200);
    const Json echo = echoOf(*response);
    EXPECT_EQ(echo["method"].text, method);
  }
  EXPECT_EQ(counters().requests_total[0] + counters().requests_total[1], 2u);
}

TEST_F(DataPathTest, ChunkedResponseWithTrailersIsRelayed) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /chunked?chunks=4&size=3&trailer=1 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(response->chunked);
  EXPECT_EQ(response->body, "aaabbbcccddd");
  ASSERT_EQ(response->trailers.size(), 1u);
  EXPECT_EQ(response->trailers[0].first, "X-Checksum");
  EXPECT_EQ(response->trailers[0].second.size(), 64u);
  // The connection is still usable.
  ASSERT_TRUE(c.send("GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> next = c.readResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 201);
}

TEST_F(DataPathTest, HeadResponseHasNoBodyAndTheConnectionGoesOn) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("HEAD /big?size=5000 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "HEAD /chunked HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> head = c.readResponse(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-length"), "5000");
  const std::optional<RawResponse> chunked_head = c.readResponse(true);
  ASSERT_TRUE(chunked_head);
  EXPECT_EQ(chunked_head->header("transfer-encoding"), "chunked");
  const std::optional<RawResponse> get = c.readResponse();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "status 200\n");
  EXPECT_EQ(origin_.connections(), 1);
}

// An answer to HEAD with Connection: close ends its upstream connection: the next request,
// even one pipelined behind it, goes on a new one (a POST is never sent again on another, so
// on the old connection it would get 502).
TEST_F(DataPathTest, HeadAnswerWithConnectionCloseIsNotReused) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("HEAD /status/200?close=1 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"));
  const std::optional<RawResponse> head = c.readResponse(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_FALSE(head->header("connection").has_value());  // hop-by-hop: the client goes on
  const std::optional<RawResponse> post = c.readResponse();
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 200);
  EXPECT_EQ(echoOf(*post)["body"].text, "hi");
  EXPECT_EQ(origin_.connections(), 2);
}

TEST_F(DataPathTest, ExpectContinueIsForwardedAndThe100Relayed) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                     "Content-Length: 4\r\n\r\n"));
  const std::optional<RawResponse> interim = c.readResponse();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c.send("data"));
  const std::optional<RawResponse> final_response = c.readResponse();
  ASSERT_TRUE(final_response);
  EXPECT_EQ(final_response->status, 200);
  const Json echo = echoOf(*final_response);
  EXPECT_EQ(echo["body"].text, "data");
  EXPECT_EQ(echoedHeader(echo, "expect"), "100-continue");
}

// RFC 9110 section 10.1.1: an HTTP/1.0 client's 100-continue is ignored, so the upstream is
// not asked for an interim answer that an HTTP/1.0 client may not be sent.
TEST_F(DataPathTest, Http10ExpectContinueIsIgnored) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(
      c.send("POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata"));
  const std::string raw = c.readUntilClose();
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw;
  EXPECT_EQ(raw.find("100 Continue"), std::string::npos) << raw;
  const size_t body = raw.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos) << raw;
  const Json echo = parseJson(raw.substr(body + 4)).value_or(Json{});
  EXPECT_EQ(echo["body"].text, "data");
  EXPECT_EQ(echoedHeader(echo, "expect"), std::nullopt);

  // Any other expectation goes on, for the upstream to judge.
  RawConnection other(inboundPort());
  ASSERT_TRUE(other.send("POST /echo HTTP/1.0\r\nExpect: 100-Continue, x-other\r\n"
                         "Content-Length: 2\r\n\r\nhi"));
  const std::string raw_other = other.readUntilClose();
  EXPECT_EQ(raw_other.find("100 Continue"), std::string::npos) << raw_other;
  const size_t other_body = raw_other.find("\r\n\r\n");
  ASSERT_NE(other_body, std::string::npos) << raw_other;
  EXPECT_EQ(echoedHeader(parseJson(raw_other.substr(other_body + 4)).value_or(Json{}), "expect"),
            "x-other");
}

TEST_F(DataPathTest, ExpectContinueWithCurl) {
  startProxy();
  const ProcessResult r = curl({"-v", "-H", "Expect: 100-continue", "--data-binary",
                                std::string(2000, 'x'), inboundUrl("/echo?nobody=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("< HTTP/1.1 100 Continue"), std::string::npos) << r.err;
  EXPECT_EQ(parseJson(r.out).value_or(Json{})["body_length"].number(), 2000);
}

TEST_F(DataPathTest, NoContentAndNotModifiedHaveNoBody) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /status/304 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /status/202 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> no_content = c.readResponse();
  ASSERT_TRUE(no_content);
  EXPECT_EQ(no_content->status, 204);
  const std::optional<RawResponse> not_modified = c.readResponse();
  ASSERT_TRUE(not_modified);
  EXPECT_EQ(not_modified->status, 304);
  const std::optional<RawResponse> accepted = c.readResponse();
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 202);
  EXPECT_EQ(accepted->body, "status 202\n");
}

TEST_F(DataPathTest, AContentLengthThatANoContentAnswerMustNotHaveIsRemoved) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /status/204?cl=1 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /status/202 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> no_content = c.readResponse();
  ASSERT_TRUE(no_content);
  EXPECT_EQ(no_content->status, 204);
  EXPECT_EQ(no_content->header("content-length"), std::nullopt);
  const std::optional<RawResponse> accepted = c.readResponse();
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 202);
  EXPECT_EQ(accepted->body, "status 202\n");
}

TEST_F(DataPathTest, CloseDelimitedResponseIsRechunkedForHttp11Clients) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /close-delimited?size=70000 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_TRUE(response->chunked);
  EXPECT_EQ(response->body.size(), 70000u);
  EXPECT_EQ(response->header("connection"), std::nullopt);
  // The downstream connection survives the upstream's close.
  ASSERT_TRUE(c.send("GET /http10?size=10 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> http10 = c.readResponse();
  ASSERT_TRUE(http10);
  EXPECT_EQ(http10->version, "HTTP/1.1");
  EXPECT_TRUE(http10->chunked);
  EXPECT_EQ(http10->body.size(), 10u);
}

TEST_F(DataPathTest, Http10ClientGetsCloseDelimitedBodyAndNoInterimResponses) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /chunked?chunks=2&size=4 HTTP/1.0\r\n\r\n"));
  const std::string raw = c.readUntilClose();
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw;
  EXPECT_EQ(raw.find("Transfer-Encoding"), std::string::npos) << raw;
  EXPECT_NE(raw.find("Connection: close"), std::string::npos) << raw;
  EXPECT_EQ(raw.substr(raw.size() - 8), "aaaabbbb");
}

TEST_F(DataPathTest, Http10KeepAliveClientKeepsItsConnection) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /status/200 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const std::optional<RawResponse> first = c.readResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->header("connection"), "keep-alive");
  ASSERT_TRUE(c.send("GET /echo HTTP/1.0\r\n\r\n"));
  const std::optional<RawResponse> second = c.readResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
  // HTTP/1.1 upstream requests need a Host: the upstream's address stands in.
  EXPECT_EQ(echoedHeader(echoOf(*second), "host"),
            "127.0.0.1:" + std::to_string(origin_.port()));
  EXPECT_TRUE(c.closedByPeer());
}

TEST_F(DataPathTest, PipelinedRequestsAreAnsweredInOrder) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /sleep?ms=300 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                     "GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /echo?last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  const std::optional<RawResponse> first = c.readResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "slept\n");
  const std::optional<RawResponse> second = c.readResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(echoOf(*second)["body"].text, "abc");
  const std::optional<RawResponse> third = c.readResponse();
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 201);
  const std::optional<RawResponse> fourth = c.readResponse();
  ASSERT_TRUE(fourth);
  EXPECT_EQ(echoOf(*fourth)["target"].text, "/echo?last");
  EXPECT_EQ(fourth->header("connection"), "close");
  EXPECT_TRUE(c.closedByPeer());
}

TEST_F(DataPathTest, HopByHopFieldsAreRemovedInBothDirections) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: a\r\nConnection: X-Private, keep-alive\r\n"
                     "X-Private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n"
                     "TE: trailers, deflate\r\nUpgrade: foo\r\nX-End: 1\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  const Json echo = echoOf(*response);
  for (const char* gone : {"x-private", "keep-alive", "proxy-connection", "upgrade"}) {
    EXPECT_EQ(echoedHeader(echo, gone), std::nullopt) << gone;
  }
  EXPECT_EQ(echoedHeader(echo, "x-end"), "1");
  // TE survives as "trailers" only, with the connection option RFC 9110 asks for.
  EXPECT_EQ(echoedHeader(echo, "te"), "trailers");
  EXPECT_EQ(echoedHeader(echo, "connection"), "te");

  ASSERT_TRUE(c.send("GET /hop HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> hop = c.readResponse();
  ASSERT_TRUE(hop);
  for (const char* gone :
       {"connection", "x-hop-response", "keep-alive", "proxy-connection", "upgrade"}) {
    EXPECT_EQ(hop->header(gone), std::nullopt) << gone;
  }
  EXPECT_EQ(hop->header("x-end-to-end"), "1");
}

TEST_F(DataPathTest, ViaIsAddedOnlyWhenConfigured) {
  proxy::DataPathSettings s = settings();
  s.add_via = true;
  startProxy(s);
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(echoedHeader(echoOf(*response), "via"), "1.1 tracecar");
  EXPECT_EQ(response->header("via"), "1.1 tracecar");
}

// ---- streaming with bounded memory ----

constexpr size_t kBigBody = 50u * 1024 * 1024;

TEST_F(DataPathTest, StreamsA50MiBUploadWithBoundedMemory) {
  proxy::DataPathSettings s = settings();
  startProxy(s);
  ScratchDir dir;
  const std::string file = dir.file("upload.bin");
  {
    std::ofstream out(file, std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 7 % 251);
    for (size_t i = 0; i < kBigBody / block.size(); ++i) out << block;
  }
  const ProcessResult sha = runProcess({"sha256sum", file});
  const ProcessResult r =
      curl({"--data-binary", "@" + file, inboundUrl("/echo?nobody=1&slow_ms=1")}, 120s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["body_length"].number(), static_cast<double>(kBigBody));
  EXPECT_EQ(echo["body_sha256"].text, sha.out.substr(0, 64));
  const int64_t peak = counters().buffered_bytes_peak;
  RecordProperty("buffered_bytes_peak", std::to_string(peak));
  // The slow origin made the queue grow (flow control was exercised), and it stayed bounded.
  EXPECT_GT(peak, static_cast<int64_t>(s.low_water_bytes));
  EXPECT_LE(peak, static_cast<int64_t>(4 * s.high_water_bytes)) << "peak " << peak;
}

TEST_F(DataPathTest, StreamsA50MiBDownloadToASlowReaderWithBoundedMemory) {
  proxy::DataPathSettings s = settings();
  startProxy(s);
  ScratchDir dir;
  const std::string file = dir.file("download.bin");
  const ProcessResult r = curl({"--limit-rate", "40M", "-o", file,
                                inboundUrl("/big?size=" + std::to_string(kBigBody))},
                               120s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::filesystem::file_size(file), kBigBody);
  const int64_t peak = counters().buffered_bytes_peak;
  RecordProperty("buffered_bytes_peak", std::to_string(peak));
  EXPECT_GT(peak, static_cast<int64_t>(s.low_water_bytes));
  EXPECT_LE(peak, static_cast<int64_t>(4 * s.high_water_bytes)) << "peak " << peak;
  EXPECT_TRUE(eventually([&] { return counters().buffered_bytes == 0; }));
}

TEST_F(DataPathTest, StreamsALargeChunkedResponse) {
  startProxy();
  const ProcessResult r = curl({inboundUrl("/chunked?chunks=2000&size=5000&trailer=1"), "-o",
                                "/dev/null", "-w", "%{size_download}"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "10000000");
}

// ---- keep-alive pools ----

TEST_F(DataPathTest, ReusesOneUpstreamConnectionForSequentialRequests) {
  startProxy();
  // Three separate client connections, one after the other.
  for (int i = 0; i < 3; ++i) {
    const ProcessResult r = curl({inboundUrl("/echo")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(parseJson(r.out).value_or(Json{})["connection"].number(), 1) << i;
  }
  // And several requests on one client connection.
  const ProcessResult r = curl({inboundUrl("/echo"), inboundUrl("/echo"), inboundUrl("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(origin_.connections(), 1);
  EXPECT_EQ(counters().upstream_connects, 1u);
  EXPECT_EQ(counters().upstream_reuses, 5u);
}

TEST_F(DataPathTest, IdleUpstreamClosedByThePeerIsDroppedFromThePool) {
  startProxy();
  ASSERT_EQ(curl({inboundUrl("/hangup")}).exit_code, 0);
  // The proxy notices the close while the connection sits in the pool.
  ASSERT_TRUE(eventually([&] { return counters().upstream_connections_open == 0; }));
  const ProcessResult r = curl({inboundUrl("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(parseJson(r.out).value_or(Json{})["connection"].number(), 2);
  EXPECT_EQ(counters().upstream_retries, 0u);
}

class DataPathRetryTest : public DataPathTest {
 protected:
  // The origin answers /drop-next, then reads the next request on that pooled connection and
  // closes it without an answer. request goes on a fresh client connection and reuses it; the
  // answer's status.
  int statusAfterAPooledConnectionDrops(const std::string& request) {
    if (curl({inboundUrl("/drop-next")}).exit_code != 0) return 0;
    RawConnection c(inboundPort());
    if (!c.send(request)) return 0;
    const std::optional<RawResponse> response = c.readResponse();
    return response ? response->status : 0;
  }
};

TEST_F(DataPathTest, ReusedConnectionThatFailsBeforeAnsweringIsRetriedOnce) {
  startProxy();
  ASSERT_EQ(curl({inboundUrl("/drop-next")}).exit_code, 0);
  // The origin reads the next request on that connection and closes it without an answer.
  const ProcessResult r = curl({inboundUrl("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["connection"].number(), 2);
  EXPECT_EQ(counters().upstream_retries, 1u);
  EXPECT_EQ(origin_.requests(), 3);
}

TEST_F(DataPathRetryTest, ReusedConnectionFailureForADeleteIsRetried) {
  startProxy();
  EXPECT_EQ(statusAfterAPooledConnectionDrops("DELETE /echo HTTP/1.1\r\nHost: a\r\n\r\n"), 200);
  EXPECT_EQ(counters().upstream_retries, 1u);
  EXPECT_EQ(origin_.requests(), 3);
}

TEST_F(DataPathRetryTest, ReusedConnectionFailureForAMethodThatMayNotBeRepeatedIsNotRetried) {
  startProxy();
  // The origin read the POST (no body) before it closed: it may have acted on it, so tracecar
  // must not send it again (RFC 9112 section 9.3.1).
  EXPECT_EQ(statusAfterAPooledConnectionDrops(
                "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
            502);
  EXPECT_EQ(counters().upstream_retries, 0u);
  EXPECT_EQ(origin_.requests(), 2);
}

TEST_F(DataPathRetryTest, ReusedConnectionFailureWithABodyAlreadySentIsNotRetried) {
  startProxy();
  EXPECT_EQ(statusAfterAPooledConnectionDrops(
                "PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"),
            502);
  EXPECT_EQ(counters().upstream_retries, 0u);
}

TEST_F(DataPathTest, UpstreamIdleTimeoutClosesPooledConnections) {
  proxy::DataPathSettings s = settings();
  s.timeouts.upstream_idle = 200ms;
  startProxy(s);
  ASSERT_EQ(curl({inboundUrl("/echo")}).exit_code, 0);
  ASSERT_TRUE(eventually([&] { return counters().upstream_connections_open == 0; }));
  EXPECT_EQ(counters().timeoutCount(proxy::DataPathTimeout::kUpstreamIdle), 1u);
  const ProcessResult r = curl({inboundUrl("/echo")});
  EXPECT_EQ(parseJson(r.out).value_or(Json{})["connection"].number(), 2);
}

// ---- observers ----

TEST_F(DataPathTest, ObserverSeesEachRequestAndItsRewritesGoUpstream) {
  proxy::StreamRecorder::Options options;
  options.inject_name = "traceparent";
  options.inject_value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  startProxyObserved(settings(), options);
  const ProcessResult r = curl({"--data-binary", "12345", inboundUrl("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(echoedHeader(parseJson(r.out).value_or(Json{}), "traceparent"),
            options.inject_value);
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  const std::vector<proxy::RecordedStream> streams = recorder_->streams();
  ASSERT_EQ(streams.size(), 1u);
  const proxy::RecordedStream& s = streams[0];
  EXPECT_EQ(s.method, "POST");
  EXPECT_EQ(s.target, "/echo");
  EXPECT_EQ(s.peer.address, "127.0.0.1");
  EXPECT_EQ(s.peer.local_port, inboundPort());
  EXPECT_EQ(s.response_status, 200);
  EXPECT_EQ(s.calls_after_complete, 0);
  ASSERT_TRUE(s.stats);
  EXPECT_EQ(s.stats->status, 200);
  EXPECT_EQ(s.stats->request_body_bytes, 5u);
  EXPECT_GT(s.stats->response_body_bytes, 0u);
  EXPECT_FALSE(s.stats->local_reply);
  EXPECT_FALSE(s.stats->aborted);
  EXPECT_NE(s.stats->start_ns, 0u);
  EXPECT_LE(s.stats->start_ns, s.stats->end_ns);
}

TEST_F(DataPathTest, ObserverLocalReplyIsAnsweredAndNeverForwarded) {
  proxy::StreamRecorder::Options options;
  options.reject_header = "baggage";
  options.reply = {431, "baggage over its limits", LocalReplyReason::kBaggage};
  startProxyObserved(settings(), options);
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: a\r\nbaggage: k=v\r\n\r\n"));
  const std::optional<RawResponse> rejected = c.readResponse();
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->status, 431);
  EXPECT_EQ(rejected->body, "baggage over its limits\n");
  EXPECT_EQ(rejected->header("content-type"), "text/plain; charset=utf-8");
  // No body: the connection goes on.
  ASSERT_TRUE(c.send("GET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> next = c.readResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(origin_.requests(), 1);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kBaggage), 1u);
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 2; }));
  const proxy::RecordedStream first = recorder_->streams()[0];
  ASSERT_TRUE(first.stats);
  EXPECT_TRUE(first.stats->local_reply);
  EXPECT_EQ(first.stats->local_reply_reason, LocalReplyReason::kBaggage);
  EXPECT_EQ(first.stats->status, 431);
}

// ---- workers and drain ----

TEST_F(DataPathTest, GracefulDrainLetsTheRequestInFlightFinish) {
  startProxy();
  RawConnection idle(inboundPort());
  ASSERT_TRUE(idle.send("GET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(idle.readResponse());
  RawConnection busy(inboundPort());
  ASSERT_TRUE(busy.send("GET /sleep?ms=2000 HTTP/1.1\r\nHost: a\r\n\r\n"));  // in flight at the drain
  ASSERT_TRUE(eventually([&] { return counters().requests_total[0] == 2; }));
  pool_->requestStop(5s);
  // The idle keep-alive connection is closed at once; the busy one gets its answer, then closes.
  EXPECT_TRUE(idle.closedByPeer(2s));
  const std::optional<RawResponse> response = busy.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "slept\n");
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(busy.closedByPeer());
  pool_->stop(5s);
  // No longer listening.
  RawConnection late(inboundPort());
  EXPECT_FALSE(late.ok());
  EXPECT_EQ(counters().timeoutCount(proxy::DataPathTimeout::kDrain), 0u);
}

TEST_F(DataPathTest, DrainTimeoutCutsWhatIsLeft) {
  startProxy();
  RawConnection busy(inboundPort());
  ASSERT_TRUE(busy.send("GET /sleep?ms=3000 HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(eventually([&] { return counters().requests_total[0] == 1; }));
  const auto start = std::chrono::steady_clock::now();
  pool_->stop(200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_TRUE(busy.closedByPeer(2s));
  EXPECT_EQ(counters().timeoutCount(proxy::DataPathTimeout::kDrain), 1u);
}

TEST_F(DataPathTest, WorkersShareTheListeningPort) {
  proxy::DataPathSettings s = settings();
  s.workers = 3;
  startProxy(s);
  ASSERT_EQ(pool_->size(), 3u);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 12; ++i) {
    clients.emplace_back([&] {
      if (curl({inboundUrl("/status/200")}).exit_code == 0) ++ok;
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(ok.load(), 12);
  EXPECT_EQ(counters().requests_total[0], 12u);
}

TEST_F(DataPathTest, ListensOnIpv6) {
  proxy::DataPathSettings s = settings();
  s.inbound = {"::1", 0};
  startProxy(s);
  RawConnection c(inboundPort(), "::1");
  if (!c.ok()) GTEST_SKIP() << "no IPv6 loopback";
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: [::1]\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(echoedHeader(echoOf(*response), "host"), "[::1]");
}

TEST_F(DataPathTest, StartFailsWhenThePortIsTaken) {
  startProxy();
  proxy::DataPathSettings s = settings();
  s.inbound = {"127.0.0.1", origin_.port()};  // the origin holds it, without SO_REUSEPORT
  proxy::WorkerPool other(s);
  const absl::Status status = other.start();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("already in use"), std::string_view::npos) << status;
}

// SO_REUSEPORT would let a second tracecar (or any process of the same user) join a running
// one's listeners and take part of their connections: a port in use is an error instead.
TEST_F(DataPathTest, ASecondProxyCannotJoinTheListenersOfARunningOne) {
  startProxy();
  proxy::DataPathSettings s = settings();
  s.inbound = {"127.0.0.1", inboundPort()};
  proxy::WorkerPool other(s);
  const absl::Status status = other.start();
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "listening on 127.0.0.1:" + std::to_string(inboundPort()) +
                                  ": the address is already in use (by another process, or by "
                                  "another of tracecar's listeners)");
  for (int i = 0; i < 10; ++i) EXPECT_EQ(curl({inboundUrl("/status/200")}).exit_code, 0);
  EXPECT_EQ(counters().requests_total[0], 10u);
}

// The outbound listener on 127.0.0.1 also listens on [::1] at its port, unless that address is
// another listener's: it must not share the inbound listener's connections.
TEST_F(DataPathTest, TheOutboundListenersIpv6TwinLeavesTheInboundListenersAddressAlone) {
  const int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_addr = in6addr_loopback;
  socklen_t length = sizeof any;
  if (probe < 0 || ::bind(probe, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 ||
      ::getsockname(probe, reinterpret_cast<sockaddr*>(&any), &length) != 0) {
    if (probe >= 0) ::close(probe);
    GTEST_SKIP() << "no IPv6 loopback";
  }
  const uint16_t port = ntohs(any.sin6_port);
  ::close(probe);
  proxy::DataPathSettings s = settings();
  s.workers = 2;
  s.inbound = {"::1", port};
  s.outbound = {"127.0.0.1", port};
  startProxy(s);
  for (int i = 0; i < 20; ++i) {
    RawConnection c(port, "::1");
    ASSERT_TRUE(c.send("GET /status/200 HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n"));
    const std::optional<RawResponse> response = c.readResponse();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
  }
  EXPECT_EQ(counters().requests_total[0], 20u);  // all of them on the inbound listener
  EXPECT_EQ(counters().requests_total[1], 0u);
}

}  // namespace
}  // namespace tracecar::integration
