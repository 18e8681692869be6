// Guarding the pod: request and response limits (at and one past each), malformed requests
// (answered, never forwarded), upstream failures and timeouts, each with its one-line reason.

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "integration/proxy/data_path_fixture.h"

namespace tracecar::integration {
namespace {

using proxy::DataPathTimeout;
using proxy::ListenerRole;
using proxy::LocalReplyReason;

constexpr size_t kHeaderBytes = 1024;
constexpr size_t kHeaderCount = 10;
constexpr size_t kUriLength = 100;

class DataPathGuardTest : public DataPathTest {
 protected:
  proxy::DataPathSettings limited() const {
    proxy::DataPathSettings s = settings();
    s.request_limits.max_header_bytes = kHeaderBytes;
    s.request_limits.max_header_count = kHeaderCount;
    s.request_limits.max_uri_length = kUriLength;
    s.response_limits.max_header_bytes = kHeaderBytes;
    s.response_limits.max_header_count = kHeaderCount;
    return s;
  }

  // settings() with upstream_response at 300 ms.
  proxy::DataPathSettings shortResponseTimeout() const {
    proxy::DataPathSettings s = settings();
    s.timeouts.upstream_response = 300ms;
    return s;
  }

  // shortResponseTimeout(), with an app that never accepts (silent outlives the test's requests).
  void startProxyBefore(const SilentListener& silent) {
    ASSERT_NE(silent.port(), 0);
    proxy::DataPathSettings s = shortResponseTimeout();
    s.app = {"127.0.0.1", silent.port()};
    startProxy(s);
  }

  // Sends raw bytes on a fresh connection; the one response.
  std::optional<RawResponse> exchange(std::string_view request) {
    RawConnection c(inboundPort());
    if (!c.send(request)) return std::nullopt;
    return c.readResponse();
  }

  // A GET whose head (request line to the final CRLF) is exactly total bytes.
  static std::string headOfSize(size_t total) {
    const std::string fixed = "GET /echo HTTP/1.1\r\nHost: a\r\nX-Pad: \r\n\r\n";
    return "GET /echo HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(total - fixed.size(), 'p') +
           "\r\n\r\n";
  }
  // A GET with exactly count header fields.
  static std::string headWithFields(size_t count) {
    std::string out = "GET /echo HTTP/1.1\r\nHost: a\r\n";
    for (size_t i = 1; i < count; ++i) out += "X-F" + std::to_string(i) + ": v\r\n";
    return out + "\r\n";
  }
  // A GET whose request target is exactly length bytes.
  static std::string targetOfLength(size_t length) {
    const std::string prefix = "/echo?q=";
    return "GET " + prefix + std::string(length - prefix.size(), 'q') +
           " HTTP/1.1\r\nHost: a\r\n\r\n";
  }
};

// ---- request limits ----

TEST_F(DataPathGuardTest, RequestHeadAtTheByteLimitIsForwarded) {
  startProxy(limited());
  const std::optional<RawResponse> response = exchange(headOfSize(kHeaderBytes));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(origin_.requests(), 1);
}

TEST_F(DataPathGuardTest, RequestHeadOneByteOverTheLimitIs431AndNotForwarded) {
  startProxy(limited());
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send(headOfSize(kHeaderBytes + 1)));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 431);
  EXPECT_EQ(response->body, "header section too large\n");
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(c.closedByPeer());
  EXPECT_EQ(origin_.requests(), 0);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kHeadersTooLarge),
            1u);
}

TEST_F(DataPathGuardTest, DefaultLimitRejectsA61KiBHeadWithCurl) {
  startProxy();
  const ProcessResult r = curl({"-o", "/dev/null", "-w", "%{http_code}", "-H",
                                "X-Big: " + std::string(61 * 1024, 'b'), inboundUrl("/echo")});
  EXPECT_EQ(r.out, "431") << r.err;
  EXPECT_EQ(origin_.requests(), 0);
}

TEST_F(DataPathGuardTest, HeaderCountAtTheLimitIsForwarded) {
  startProxy(limited());
  const std::optional<RawResponse> response = exchange(headWithFields(kHeaderCount));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(DataPathGuardTest, OneHeaderOverTheCountIs431) {
  startProxy(limited());
  const std::optional<RawResponse> response = exchange(headWithFields(kHeaderCount + 1));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 431);
  EXPECT_EQ(response->body, "too many header fields\n");
  EXPECT_EQ(origin_.requests(), 0);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kTooManyHeaders),
            1u);
}

TEST_F(DataPathGuardTest, UriAtTheLimitIsForwarded) {
  startProxy(limited());
  const std::optional<RawResponse> response = exchange(targetOfLength(kUriLength));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(DataPathGuardTest, UriOneByteOverTheLimitIs414) {
  startProxy(limited());
  const std::optional<RawResponse> response = exchange(targetOfLength(kUriLength + 1));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 414);
  EXPECT_EQ(response->body, "request target too long\n");
  EXPECT_EQ(origin_.requests(), 0);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kUriTooLong), 1u);
}

// ---- malformed requests ----

struct Malformed {
  const char* name;
  const char* request;
  const char* reason;  // the body's one line
};

class DataPathMalformedTest : public DataPathGuardTest,
                              public ::testing::WithParamInterface<Malformed> {};

TEST_P(DataPathMalformedTest, IsAnswered400AndNeverForwarded) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send(GetParam().request));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->body, std::string(GetParam().reason) + "\n");
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_EQ(response->header("content-type"), "text/plain; charset=utf-8");
  EXPECT_TRUE(c.closedByPeer());
  EXPECT_EQ(origin_.requests(), 0);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kBadRequest), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Requests, DataPathMalformedTest,
    ::testing::Values(
        Malformed{"ConflictingContentLength",
                  "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
                  "abcd",
                  "Duplicate Content-Length"},
        Malformed{"ContentLengthWithTransferEncoding",
                  "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                  "Content-Length can't be present with Transfer-Encoding"},
        Malformed{"ObsFold", "GET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  c\r\n\r\n",
                  "line starts with whitespace (obs-fold)"},
        Malformed{"BareCr", "GET /echo HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", "bare CR"},
        Malformed{"BareLf", "GET /echo HTTP/1.1\nHost: a\r\n\r\n", "bare LF"},
        Malformed{"BadHeaderNameCharacter", "GET /echo HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
                  "invalid character in field name"},
        Malformed{"BadHeaderValueCharacter",
                  "GET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n",
                  "invalid character in field value"},
        Malformed{"MissingHost", "GET /echo HTTP/1.1\r\nX-A: b\r\n\r\n", "missing Host header"},
        Malformed{"DuplicateHost", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                  "more than one Host header"},
        Malformed{"InvalidHost", "GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n",
                  "invalid Host header"},
        Malformed{"InvalidTarget", "GET echo HTTP/1.1\r\nHost: a\r\n\r\n",
                  "Invalid characters in url"},
        Malformed{"FragmentInOriginForm", "GET /echo?a=1#frag HTTP/1.1\r\nHost: a\r\n\r\n",
                  "invalid request target"},
        Malformed{"AsteriskOutsideOptions", "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
                  "invalid request target"},
        Malformed{"AuthorityFormOutsideConnect", "GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n",
                  "Unexpected char in url schema"},
        Malformed{"UserinfoInAbsoluteForm",
                  "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request target"},
        Malformed{"UnsupportedVersion", "GET /echo HTTP/2.0\r\nHost: a\r\n\r\n",
                  "unsupported HTTP version"},
        // RFC 9110 section 9.3.6: CONNECT has no content; the bytes would be read two ways.
        Malformed{"ConnectWithContentLength",
                  "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 31\r\n\r\n"
                  "GET /smug HTTP/1.1\r\nHost: q\r\n\r\n",
                  "CONNECT with a body"},
        Malformed{"ConnectWithTransferEncoding",
                  "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "0\r\n\r\n",
                  "CONNECT with a body"},
        // A request line all the same: never an opaque tunnel past these checks.
        Malformed{"LowercaseMethod", "get /echo HTTP/1.1\r\nHost: a\r\n\r\n", "invalid method"},
        Malformed{"LowercaseVersion", "GET /echo http/1.1\r\nHost: a\r\n\r\n", "invalid HTTP version"},
        // An empty line before the request line is ignored (RFC 9112 section 2.2), not taken
        // for another protocol: the request behind it is checked like any other.
        Malformed{"ConflictingContentLengthAfterAnEmptyLine",
                  "\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                  "Content-Length: 4\r\n\r\nabcd",
                  "Duplicate Content-Length"},
        Malformed{"ObsFoldAfterEmptyLines",
                  "\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  c\r\n\r\n",
                  "line starts with whitespace (obs-fold)"},
        Malformed{"BareLfAsAnEmptyLine", "\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n", "bare LF"}),
    [](const ::testing::TestParamInfo<Malformed>& param) { return param.param.name; });

// RFC 9112 section 2.2: empty lines before the request line are ignored; the request is
// proxied (and limited) like any other, not passed through as another protocol.
TEST_F(DataPathGuardTest, EmptyLinesBeforeTheRequestLineAreIgnored) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(origin_.requests(), 1);
  EXPECT_EQ(counters().requests_total[static_cast<size_t>(ListenerRole::kInbound)], 1u);
}

TEST_F(DataPathGuardTest, MalformedRequestAfterAGoodOneLeavesTheGoodOneAnswered) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "GET /echo HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"));
  const std::optional<RawResponse> good = c.readResponse();
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
  const std::optional<RawResponse> bad = c.readResponse();
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(origin_.requests(), 1);
}

TEST_F(DataPathGuardTest, BadChunkFramingAfterTheHeadClosesTheExchange) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabcXX"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->body, "chunk data not followed by CRLF\n");
  EXPECT_TRUE(c.closedByPeer());
}

// ---- response limits ----

TEST_F(DataPathGuardTest, ResponseHeadAtTheByteLimitIsRelayed) {
  startProxy(limited());
  const std::optional<RawResponse> response =
      exchange("GET /head-size?total=" + std::to_string(kHeaderBytes) +
               " HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(DataPathGuardTest, ResponseHeadOverTheByteLimitIs502) {
  startProxy(limited());
  const std::optional<RawResponse> response =
      exchange("GET /head-size?total=" + std::to_string(kHeaderBytes + 1) +
               " HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 502);
  EXPECT_EQ(response->body, "upstream response header too large\n");
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kResponseTooLarge),
            1u);
}

TEST_F(DataPathGuardTest, ResponseHeaderCountAtAndOverTheLimit) {
  startProxy(limited());
  const std::optional<RawResponse> at = exchange(
      "GET /head-count?count=" + std::to_string(kHeaderCount) + " HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(at);
  EXPECT_EQ(at->status, 200);
  const std::optional<RawResponse> over =
      exchange("GET /head-count?count=" + std::to_string(kHeaderCount + 1) +
               " HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 502);
}

// ---- upstream failures ----

TEST_F(DataPathGuardTest, UpstreamRefusedIs502) {
  const RefusingPort app;
  ASSERT_NE(app.port(), 0);
  proxy::DataPathSettings s = settings();
  s.app.port = app.port();
  startProxyObserved(s);
  const ProcessResult r = curl({"-w", "\n%{http_code}", inboundUrl("/echo")});
  EXPECT_EQ(r.out, "upstream connection refused\n\n502");
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kUpstreamRefused),
            1u);
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  const proxy::RecordedStream stream = recorder_->streams()[0];
  ASSERT_EQ(stream.failures.size(), 1u);
  EXPECT_EQ(stream.failures[0], proxy::UpstreamFailure::kConnectionRefused);
  EXPECT_EQ(stream.stats->status, 502);
}

TEST_F(DataPathGuardTest, SlowUpstreamIs504) {
  startProxy(shortResponseTimeout());
  const ProcessResult r = curl({"-w", "\n%{http_code}", inboundUrl("/sleep?ms=2000")});
  EXPECT_EQ(r.out, "upstream response timeout\n\n504");
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 1u);
  // The connection that timed out is not reused.
  const ProcessResult next = curl({inboundUrl("/echo")});
  EXPECT_EQ(parseJson(next.out).value_or(Json{})["connection"].number(), 2);
}

// A 1xx is a sign of life: the response timeout counts again from each one (a 102 Processing
// keeps a long request alive), and a silence after the last one is timed from it. The other
// pairings of protocols: h2_translation_test.cc.
TEST_F(DataPathGuardTest, EachInterimResponseRestartsTheResponseTimeout) {
  startProxy(shortResponseTimeout());
  expectInterimsThenTheAnswer(inboundPort(), "Host: a\r\n");
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 0u);
}

TEST_F(DataPathGuardTest, ASilenceAfterAnInterimResponseIsTimedFromIt) {
  startProxy(shortResponseTimeout());
  expectASilenceAfterAnInterimTimedFromIt(inboundPort(), "Host: a\r\n");
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 1u);
}

TEST_F(DataPathGuardTest, ABodyThatStopsComingTimesOutAndClosesTheDownstreamConnection) {
  startProxyObserved(shortResponseTimeout());
  // 10 bytes with the head, the next 10 two seconds later.
  const ProcessResult r = curl({inboundUrl("/drip?pieces=2&ms=2000")});
  EXPECT_EQ(r.exit_code, 18) << r.err;  // transfer closed with outstanding read data
  EXPECT_EQ(r.out, std::string(10, 'a'));
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 1u);
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  const proxy::RecordedStream stream = recorder_->streams()[0];
  EXPECT_TRUE(stream.stats->aborted);
  ASSERT_EQ(stream.failures.size(), 1u);
  EXPECT_EQ(stream.failures[0], proxy::UpstreamFailure::kResponseTimeout);
}

TEST_F(DataPathGuardTest, ABodyThatKeepsComingIsNotTimedOutWhateverItsLength) {
  startProxy(shortResponseTimeout());
  // Five pieces 150 ms apart: 600 ms in all, never 300 ms without a byte.
  const ProcessResult r = curl({inboundUrl("/drip?pieces=5&ms=150")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, std::string(10, 'a') + std::string(10, 'b') + std::string(10, 'c') +
                       std::string(10, 'd') + std::string(10, 'e'));
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 0u);
  // The connection is clean and goes back to the pool: no stale deadline closes it there.
  std::this_thread::sleep_for(400ms);
  const ProcessResult next = curl({inboundUrl("/echo")});
  EXPECT_EQ(parseJson(next.out).value_or(Json{})["connection"].number(), 1);
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 0u);
}

TEST_F(DataPathGuardTest, AClientThatStopsReadingDoesNotTimeTheUpstreamOut) {
  startProxy(shortResponseTimeout());
  RawConnection c(inboundPort());
  // Far more than the sockets and the proxy's buffers hold: the proxy holds its reading from the
  // origin for the client, which reads nothing for longer than the timeout.
  ASSERT_TRUE(c.send("GET /big?size=20000000 HTTP/1.1\r\nHost: a\r\n\r\n"));
  std::this_thread::sleep_for(1000ms);
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 0u);
  const std::optional<RawResponse> response = c.readResponse(false, 60s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body.size(), 20000000u);
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 0u);
}

TEST_F(DataPathGuardTest, AnAnswerThatStreamsWhileTheClientStillUploadsIsNotTimedOut) {
  startProxy(shortResponseTimeout());
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("POST /duplex HTTP/1.1\r\nHost: a\r\nContent-Length: 30\r\n\r\n0123456789"));
  for (const char* piece : {"abcdefghij", "ABCDEFGHIJ"}) {
    std::this_thread::sleep_for(600ms);  // the origin waits for the client, not the reverse
    ASSERT_TRUE(c.send(piece));
  }
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "0123456789abcdefghijABCDEFGHIJ");
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 0u);
}

// A client that stops sending its request body while tracecar reads it is the one waited for:
// 408, not the upstream's 504, and no upstream failure.
TEST_F(DataPathGuardTest, AClientThatStopsSendingItsBodyIsAnswered408NotTheUpstream504) {
  startProxyObserved(shortResponseTimeout());
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n0123456789"));
  const std::optional<RawResponse> response = c.readResponse(false, 10s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_EQ(response->body, "request body timeout\n");
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(c.closedByPeer());
  const proxy::DataPathSnapshot snapshot = counters();
  EXPECT_EQ(snapshot.localReplies(ListenerRole::kInbound, LocalReplyReason::kRequestBodyTimeout),
            1u);
  EXPECT_EQ(snapshot.localReplies(ListenerRole::kInbound, LocalReplyReason::kResponseTimeout), 0u);
  EXPECT_EQ(snapshot.timeoutCount(DataPathTimeout::kUpstreamResponse), 1u);
  EXPECT_EQ(snapshot.upstream_failures, 0u);
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  const proxy::RecordedStream stream = recorder_->streams()[0];
  EXPECT_TRUE(stream.failures.empty());
  EXPECT_EQ(stream.stats->status, 408);
  // The upstream's half-sent request went with its connection: the next request opens another.
  const ProcessResult next = curl({inboundUrl("/echo")});
  EXPECT_EQ(parseJson(next.out).value_or(Json{})["connection"].number(), 2);
}

// At the limit: pieces of the body 150 ms apart under a 300 ms timeout are never a stall.
TEST_F(DataPathGuardTest, ABodySentSlowlyButSteadilyIsNotTimedOut) {
  startProxy(shortResponseTimeout());
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\n"));
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(150ms);
    ASSERT_TRUE(c.send(std::string(10, static_cast<char>('a' + i))));
  }
  const std::optional<RawResponse> response = c.readResponse(false, 10s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(parseJson(response->body).value_or(Json{})["body_length"].number(), 50);
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamResponse), 0u);
}

// A client that asked for 100 Continue got it and then sent nothing: its stall.
TEST_F(DataPathGuardTest, AClientThatSendsNothingAfterThe100ItAskedForIsAnswered408) {
  startProxy(shortResponseTimeout());
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
                     "Expect: 100-continue\r\n\r\n"));
  std::optional<RawResponse> response = c.readResponse(false, 10s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 100);
  response = c.readResponse(false, 10s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kRequestBodyTimeout),
            1u);
}

// A client still waiting for the 100 Continue it asked for is waiting for the upstream: 504.
TEST_F(DataPathGuardTest, AClientWaitingForA100ThatNeverComesIsTheUpstreams504) {
  SilentListener silent;  // accepts nothing, answers nothing
  startProxyBefore(silent);
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
                     "Expect: 100-continue\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse(false, 10s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 504);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kRequestBodyTimeout),
            0u);
  EXPECT_EQ(counters().upstream_failures, 1u);
}

// An upstream that stops taking the body holds the client back (tracecar stops reading it over
// the high-water mark): that wait is the upstream's, 504.
TEST_F(DataPathGuardTest, AnUpstreamThatStopsTakingTheBodyIsThe504NotTheClient) {
  SilentListener silent;  // accepts nothing, answers nothing
  startProxyBefore(silent);
  RawConnection c(inboundPort());
  constexpr size_t kBody = 64u << 20;  // far more than the sockets and tracecar hold
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: " +
                     std::to_string(kBody) + "\r\n\r\n"));
  // Sent beside the read: the send blocks once every buffer on the way is full, and fails once
  // tracecar has answered and closed.
  std::thread sender([&c] {
    const std::string piece(1 << 20, 'x');
    for (size_t sent = 0; sent < kBody; sent += piece.size()) {
      if (!c.send(piece)) return;
    }
  });
  const std::optional<RawResponse> response = c.readResponse(false, 20s);
  sender.join();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 504);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kRequestBodyTimeout),
            0u);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kResponseTimeout),
            1u);
}

TEST_F(DataPathGuardTest, AReusedConnectionThatTimesOutIsNotSentTheRequestAgain) {
  startProxy(shortResponseTimeout());
  ASSERT_EQ(curl({inboundUrl("/echo")}).exit_code, 0);  // leaves a pooled connection
  const ProcessResult r = curl({"-w", "\n%{http_code}", inboundUrl("/sleep?ms=1000")});
  EXPECT_EQ(r.out, "upstream response timeout\n\n504");
  EXPECT_EQ(counters().upstream_retries, 0u);
  EXPECT_EQ(origin_.requests(), 2);
}

TEST_F(DataPathGuardTest, UpstreamResetBeforeRespondingIs502) {
  startProxy();
  const ProcessResult r = curl({"-w", "\n%{http_code}", inboundUrl("/reset")});
  EXPECT_EQ(r.out, "upstream closed the connection before responding\n\n502");
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kUpstreamReset),
            1u);
}

TEST_F(DataPathGuardTest, UpstreamClosingMidResponseClosesTheDownstreamConnection) {
  startProxyObserved(settings());
  const ProcessResult r = curl({inboundUrl("/close-mid")});
  EXPECT_EQ(r.exit_code, 18) << r.err;  // transfer closed with outstanding read data
  EXPECT_EQ(r.out, std::string(10, 'x'));
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  const proxy::RecordedStream stream = recorder_->streams()[0];
  EXPECT_TRUE(stream.stats->aborted);
  ASSERT_EQ(stream.failures.size(), 1u);
  EXPECT_EQ(stream.failures[0], proxy::UpstreamFailure::kConnectionReset);
}

// A listener whose accept queue is full: connecting to it hangs.
class Blackhole {
 public:
  Blackhole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 0);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    for (int i = 0; i < 4; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&address), sizeof address);
      fillers_.push_back(c);
    }
    std::this_thread::sleep_for(100ms);
  }
  ~Blackhole() {
    for (int c : fillers_) ::close(c);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

TEST_F(DataPathGuardTest, UpstreamConnectTimeoutIs503) {
  Blackhole blackhole;
  proxy::DataPathSettings s = settings();
  s.app.port = blackhole.port();
  s.timeouts.upstream_connect = 300ms;
  startProxy(s);
  const ProcessResult r = curl({"-w", "\n%{http_code}", inboundUrl("/echo")});
  EXPECT_EQ(r.out, "upstream connect timeout\n\n503");
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kUpstreamConnect), 1u);
}

TEST_F(DataPathGuardTest, UnresolvableUpstreamIs502) {
  proxy::DataPathSettings s = settings();
  s.app = {"no-such-host.invalid", 80};
  startProxy(s);
  const ProcessResult r = curl({"-w", "\n%{http_code}", inboundUrl("/echo")});
  EXPECT_EQ(r.out, "upstream host name did not resolve\n\n502");
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kResolveFailed),
            1u);
}

TEST_F(DataPathGuardTest, ResolvesUpstreamHostNames) {
  proxy::DataPathSettings s = settings();
  s.app.host = "localhost";
  startProxy(s);
  const ProcessResult r = curl({inboundUrl("/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(parseJson(r.out).value_or(Json{})["method"].text, "GET");
}

TEST_F(DataPathGuardTest, EarlyResponseBeforeTheBodyClosesTheConnection) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("POST /expect-417 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                     "Content-Length: 100000\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 417);
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(c.closedByPeer());
}

// ---- clients that go away ----

TEST_F(DataPathGuardTest, ClientGoneInTheMiddleOfItsBodyAbortsTheExchange) {
  startProxyObserved(settings());
  {
    RawConnection c(inboundPort());
    ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"
                       "only ten.."));
    ASSERT_TRUE(eventually([&] { return counters().requests_total[0] == 1; }));
    c.shutdownWrite();
    EXPECT_TRUE(c.closedByPeer());
  }
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  const proxy::RecordedStream stream = recorder_->streams()[0];
  EXPECT_TRUE(stream.stats->aborted);
  EXPECT_EQ(stream.stats->request_body_bytes, 10u);
  // The upstream connection carried half a request: it is not pooled.
  EXPECT_TRUE(eventually([&] { return counters().upstream_connections_open == 0; }));
  EXPECT_TRUE(eventually([&] { return counters().connections_open[0] == 0; }));
}

TEST_F(DataPathGuardTest, ClientResetWhileWaitingForTheAnswerAbortsTheExchange) {
  startProxyObserved(settings());
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /sleep?ms=3000 HTTP/1.1\r\nHost: a\r\n\r\n"));  // still waiting at the reset
  ASSERT_TRUE(eventually([&] { return counters().requests_total[0] == 1; }));
  c.reset();
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  EXPECT_TRUE(recorder_->streams()[0].stats->aborted);
  EXPECT_TRUE(eventually([&] { return counters().connections_open[0] == 0; }));
  EXPECT_TRUE(eventually([&] { return counters().upstream_connections_open == 0; }));
  // The proxy goes on serving.
  EXPECT_EQ(curl({"-o", "/dev/null", "-w", "%{http_code}", inboundUrl("/echo")}).out, "200");
}

TEST_F(DataPathGuardTest, ClientResetInTheMiddleOfADownloadLeavesTheProxyServing) {
  startProxy();
  for (int i = 0; i < 3; ++i) {
    RawConnection c(inboundPort());
    ASSERT_TRUE(c.send("GET /big?size=20000000 HTTP/1.1\r\nHost: a\r\n\r\n"));
    EXPECT_EQ(c.readExactly(100000).size(), 100000u);
    c.reset();  // the proxy's next writes fail with EPIPE / ECONNRESET
  }
  EXPECT_TRUE(eventually([&] { return counters().connections_open[0] == 0; }));
  EXPECT_TRUE(eventually([&] { return counters().buffered_bytes == 0; }));
  EXPECT_EQ(curl({"-o", "/dev/null", "-w", "%{http_code}", inboundUrl("/echo")}).out, "200");
}

TEST_F(DataPathGuardTest, HalfClosedClientStillGetsItsAnswers) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /sleep?ms=200 HTTP/1.1\r\nHost: a\r\n\r\n"
                     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok"));
  c.shutdownWrite();
  const std::optional<RawResponse> first = c.readResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "slept\n");
  const std::optional<RawResponse> second = c.readResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(parseJson(second->body).value_or(Json{})["body"].text, "ok");
  EXPECT_TRUE(c.closedByPeer());
}

TEST_F(DataPathGuardTest, HalfClosedClientWithAPartialHeadIsClosed) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /status/200 HTTP/1.1\r\nHost: a\r\n\r\nGET /ec"));
  c.shutdownWrite();
  const std::optional<RawResponse> first = c.readResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_TRUE(c.closedByPeer());
  EXPECT_EQ(origin_.requests(), 1);
}

// ---- downstream timeouts ----

TEST_F(DataPathGuardTest, SlowRequestHeadIs408ThenClosed) {
  proxy::DataPathSettings s = settings();
  s.timeouts.header_read = 300ms;
  startProxy(s);
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: a\r\nX-Slow"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_EQ(response->body, "request header read timeout\n");
  EXPECT_TRUE(c.closedByPeer());
  EXPECT_EQ(origin_.requests(), 0);
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kHeaderRead), 1u);
  EXPECT_EQ(counters().localReplies(ListenerRole::kInbound, LocalReplyReason::kHeaderTimeout),
            1u);
}

TEST_F(DataPathGuardTest, HeaderTimeoutCountsFromTheFirstByteNotFromTheLastRequest) {
  proxy::DataPathSettings s = settings();
  s.timeouts.header_read = 400ms;
  startProxy(s);
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(c.readResponse());
  std::this_thread::sleep_for(600ms);  // idle between requests is not header time
  ASSERT_TRUE(c.send("GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> second = c.readResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 201);
}

TEST_F(DataPathGuardTest, IdleKeepAliveConnectionIsClosed) {
  proxy::DataPathSettings s = settings();
  s.timeouts.downstream_idle = 300ms;
  startProxy(s);
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(c.readResponse());
  EXPECT_TRUE(c.closedByPeer(3s));
  EXPECT_EQ(counters().timeoutCount(DataPathTimeout::kDownstreamIdle), 1u);
  EXPECT_TRUE(eventually([&] { return counters().connections_open[0] == 0; }));
}

}  // namespace
}  // namespace tracecar::integration
