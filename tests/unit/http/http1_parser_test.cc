#include "http/http1_parser.h"

#include <gtest/gtest.h>

#include <new>
#include <random>
#include <string>
#include <vector>

#include "unit/http/http1_parser_driver.h"

namespace tracecar::http {
namespace {

using test_support::describe;
using test_support::Driver;
using test_support::joined;
using Kind = Http1Parser::Kind;
using Events = test_support::Events;

struct Outcome {
  Events events;
  Http1Error error;
  std::string reason;
  size_t consumed;
};

Outcome parseAll(Kind kind, std::string_view bytes, const Http1Limits& limits = {}) {
  Driver d(kind, limits);
  d.feed(bytes);
  return {d.events, d.parser.error(), std::string(d.parser.errorReason()), d.consumed};
}

// Feeds bytes cut at the given offsets (ascending), with optional pauses in every body event.
Outcome parseSplit(Kind kind, std::string_view bytes, const std::vector<size_t>& cuts,
                   bool pause_in_body = false) {
  Driver d(kind);
  d.pause_in_body = pause_in_body;
  size_t from = 0;
  for (size_t cut : cuts) {
    d.feed(bytes.substr(from, cut - from));
    from = cut;
  }
  d.feed(bytes.substr(from));
  return {joined(d.events), d.parser.error(), std::string(d.parser.errorReason()), d.consumed};
}

const std::string kRequests =
    "POST /upload?x=1 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Transfer-Encoding: chunked\r\n"
    "X-Long-Header-Name: some value\twith spaces\r\n"
    "\r\n"
    "5\r\nhello\r\n"
    "6;name=value\r\n world\r\n"
    "0\r\n"
    "X-Checksum: abc\r\n"
    "X-Other:\r\n"
    "\r\n"
    "GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n"
    "PUT /put HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
    "QUERY /search HTTP/1.1\r\nContent-Length: 3\r\n\r\nq=1"
    "X-CUSTOM_A /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3;a=1;b=\"x y\";c\r\nabc\r\n2;q=\"a\\\"b\"\r\nde\r\n0;last\r\n\r\n";

const Events kRequestEvents = {
    "head POST /upload?x=1 HTTP/1.1 [Host: example.com] [Transfer-Encoding: chunked] "
    "[X-Long-Header-Name: some value\twith spaces]",
    "body hello world",
    "trailers [X-Checksum: abc] [X-Other: ]",
    "complete",
    "head GET /next HTTP/1.1 [Host: example.com]",
    "complete",
    "head PUT /put HTTP/1.1 [Content-Length: 11]",
    "body hello world",
    "complete",
    "head QUERY /search HTTP/1.1 [Content-Length: 3]",
    "body q=1",
    "complete",
    "head X-CUSTOM_A /c HTTP/1.1 [Transfer-Encoding: chunked]",
    "body abcde",
    "complete",
};

const std::string kResponses =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3;a=1;b=2\r\nabc\r\nA;q=\"x y\";r\r\n0123456789\r\n0\r\n\r\n"
    "HTTP/1.1 204 No Content\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyz";

const Events kResponseEvents = {
    "head 100 Continue HTTP/1.1",
    "complete",
    "head 200 OK HTTP/1.1 [Transfer-Encoding: chunked]",
    "body abc0123456789",
    "complete",
    "head 204 No Content HTTP/1.1",
    "complete",
    "head 200 OK HTTP/1.1 [Content-Length: 3]",
    "body xyz",
    "complete",
};

// --- Messages and their events ---------------------------------------------------------------

TEST(Http1ParserTest, ParsesPipelinedRequestsInOrder) {
  const Outcome all = parseAll(Kind::kRequest, kRequests);
  EXPECT_EQ(all.error, Http1Error::kNone) << all.reason;
  EXPECT_EQ(all.consumed, kRequests.size());
  EXPECT_EQ(joined(all.events), kRequestEvents);
}

TEST(Http1ParserTest, ParsesResponsesWithInterimAndEmptyBodies) {
  const Outcome all = parseAll(Kind::kResponse, kResponses);
  EXPECT_EQ(all.error, Http1Error::kNone) << all.reason;
  EXPECT_EQ(all.consumed, kResponses.size());
  EXPECT_EQ(joined(all.events), kResponseEvents);
}

TEST(Http1ParserTest, ChunkedBodyArrivesWithoutFraming) {
  Driver d(Kind::kRequest);
  d.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  d.feed("6\r\n world\r\n0\r\n\r\n");
  EXPECT_EQ(d.events, (Events{"head POST / HTTP/1.1 [Transfer-Encoding: chunked]", "body hello",
                              "body  world", "complete"}));
}

TEST(Http1ParserTest, FillsTheHead) {
  Driver d(Kind::kRequest);
  const std::string head = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:  3 \r\n\r\n";
  d.feed(head + "abc");
  ASSERT_EQ(d.heads.size(), 1u);
  const Http1Head& h = d.heads[0];
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.target, "/a");
  EXPECT_EQ(h.version_major, 1);
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.content_length, 3u);
  EXPECT_FALSE(h.chunked);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.upgrade);
  EXPECT_EQ(h.header_bytes, head.size());
  EXPECT_EQ(h.headers.get("content-length"), "3");  // OWS trimmed on both sides
}

TEST(Http1ParserTest, FillsAResponseHead) {
  Driver ok(Kind::kResponse);
  ok.feed("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_EQ(ok.heads.size(), 1u);
  EXPECT_EQ(ok.heads[0].status, 404);
  EXPECT_EQ(ok.heads[0].reason, "Not Found");
  EXPECT_EQ(ok.heads[0].version_minor, 0);
  EXPECT_TRUE(ok.heads[0].keep_alive);
  EXPECT_TRUE(ok.heads[0].method.empty());
}

TEST(Http1ParserTest, StatusLineMayOmitTheReason) {
  const Outcome o = parseAll(Kind::kResponse, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(o.error, Http1Error::kNone) << o.reason;
  EXPECT_EQ(o.events, (Events{"head 200  HTTP/1.1 [Content-Length: 0]", "complete"}));
}

TEST(Http1ParserTest, ChunkedFlagAndNoContentLength) {
  Driver d(Kind::kRequest);
  d.feed("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
  ASSERT_EQ(d.heads.size(), 1u);
  EXPECT_TRUE(d.heads[0].chunked);
  EXPECT_EQ(d.heads[0].content_length, std::nullopt);
  EXPECT_EQ(d.events.back(), "complete");
}

TEST(Http1ParserTest, AcceptsEmptyLinesBeforeARequest) {
  const Outcome o = parseAll(Kind::kRequest, "\r\n\r\nGET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(o.error, Http1Error::kNone) << o.reason;
  EXPECT_EQ(o.events, (Events{"head GET / HTTP/1.1", "complete"}));
}

TEST(Http1ParserTest, KnowsExtensionMethodsLlhttpKnows) {
  const Outcome o =
      parseAll(Kind::kRequest, "PURGE /x HTTP/1.1\r\n\r\nM-SEARCH * HTTP/1.1\r\n\r\n");
  EXPECT_EQ(o.error, Http1Error::kNone) << o.reason;
  EXPECT_EQ(o.events,
            (Events{"head PURGE /x HTTP/1.1", "complete", "head M-SEARCH * HTTP/1.1", "complete"}));
}

// Any method of A-Z, '-' and '_', up to 20 (RFC 9110 section 9.1 allows any token; see
// http::isMethodChar); llhttp knows a fixed list.
TEST(Http1ParserTest, AcceptsMethodsLlhttpDoesNotKnow) {
  for (const bool direct : {true, false}) {
    Driver d(Kind::kRequest);
    d.parser.setDirectHeads(direct);
    d.feed("FOO /a HTTP/1.1\r\n\r\nBREW /pot HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
           "PLAY /rtsp HTTP/1.1\r\n\r\nABCDEFGHIJ-KLMNOPQ_R /t HTTP/1.1\r\n\r\n"
           "CONNECT a:1 HTTP/1.1\r\n\r\n");
    EXPECT_EQ(d.parser.error(), Http1Error::kNone) << d.parser.errorReason();
    EXPECT_EQ(d.events, (Events{"head FOO /a HTTP/1.1", "complete",
                                "head BREW /pot HTTP/1.1 [Content-Length: 2]", "body hi",
                                "complete", "head PLAY /rtsp HTTP/1.1", "complete",
                                "head ABCDEFGHIJ-KLMNOPQ_R /t HTTP/1.1", "complete",
                                "head CONNECT a:1 HTTP/1.1", "complete (upgraded)"}));
  }
}

TEST(Http1ParserTest, InMessageFollowsTheFirstByteToCompletion) {
  Driver d(Kind::kRequest);
  EXPECT_FALSE(d.parser.inMessage());
  d.feed("\r\n");
  EXPECT_FALSE(d.parser.inMessage());
  d.feed("G");
  EXPECT_TRUE(d.parser.inMessage());
  d.feed("ET / HTTP/1.1\r\nContent-Length: 2\r\n\r\na");
  EXPECT_TRUE(d.parser.inMessage());
  d.feed("b");
  EXPECT_FALSE(d.parser.inMessage());
}

// --- Split feeding --------------------------------------------------------------------------

TEST(Http1ParserTest, OneByteAtATimeEqualsAllAtOnce) {
  for (const auto& [kind, bytes, expected] :
       {std::tuple{Kind::kRequest, kRequests, kRequestEvents},
        std::tuple{Kind::kResponse, kResponses, kResponseEvents}}) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < bytes.size(); ++i) cuts.push_back(i);
    const Outcome split = parseSplit(kind, bytes, cuts);
    EXPECT_EQ(split.error, Http1Error::kNone) << split.reason;
    EXPECT_EQ(split.consumed, bytes.size());
    EXPECT_EQ(split.events, expected);
  }
}

TEST(Http1ParserTest, TwoPiecesCutAtEveryOffsetEqualAllAtOnce) {
  for (const auto& [kind, bytes, expected] :
       {std::tuple{Kind::kRequest, kRequests, kRequestEvents},
        std::tuple{Kind::kResponse, kResponses, kResponseEvents}}) {
    for (size_t at = 0; at <= bytes.size(); ++at) {
      const Outcome split = parseSplit(kind, bytes, {at});
      ASSERT_EQ(split.error, Http1Error::kNone) << split.reason << " cut at " << at;
      ASSERT_EQ(split.consumed, bytes.size()) << "cut at " << at;
      ASSERT_EQ(split.events, expected) << "cut at " << at;
    }
  }
}

TEST(Http1ParserTest, RandomSplitsEqualAllAtOnce) {
  std::mt19937 random(20240611);
  for (int round = 0; round < 400; ++round) {
    const bool requests = round % 2 == 0;
    const std::string& bytes = requests ? kRequests : kResponses;
    std::uniform_int_distribution<size_t> at(0, bytes.size());
    std::vector<size_t> cuts(1 + round % 7);
    for (size_t& cut : cuts) cut = at(random);
    std::sort(cuts.begin(), cuts.end());
    const Outcome split =
        parseSplit(requests ? Kind::kRequest : Kind::kResponse, bytes, cuts, round % 3 == 0);
    ASSERT_EQ(split.error, Http1Error::kNone) << split.reason;
    ASSERT_EQ(split.consumed, bytes.size());
    ASSERT_EQ(split.events, requests ? kRequestEvents : kResponseEvents) << "round " << round;
  }
}

// A field cut between parse() calls is kept whole although each call's buffer is gone after it.
TEST(Http1ParserTest, FieldCutAcrossReadsSurvivesItsBuffers) {
  Driver d(Kind::kRequest);
  std::string buffer;
  for (const char* piece :
       {"GET / HTTP/1.1\r\nX-Lon", "g-Name: first ha", "lf, second half\r\nA: b", "\r\n\r\n"}) {
    buffer = piece;
    ASSERT_EQ(d.parser.parse(buffer), buffer.size());
    buffer.assign(buffer.size(), '#');  // what a reused read buffer would hold next
  }
  ASSERT_EQ(d.parser.error(), Http1Error::kNone) << d.parser.errorReason();
  ASSERT_EQ(d.heads.size(), 1u);
  EXPECT_EQ(describe(d.heads[0].headers), " [X-Long-Name: first half, second half] [A: b]");
}

// --- Limits: at the limit passes, one past fails ---------------------------------------------

// "GET / HTTP/1.1\r\nX: aaa...\r\n\r\n", exactly size bytes.
std::string headOfSize(size_t size) {
  const std::string start = "GET / HTTP/1.1\r\nX: ";
  return start + std::string(size - start.size() - 4, 'a') + "\r\n\r\n";
}

TEST(Http1ParserTest, HeaderBytesAtTheLimitPass) {
  Http1Limits limits;
  limits.max_header_bytes = 200;
  Driver d(Kind::kRequest, limits);
  d.feed(headOfSize(200));
  EXPECT_EQ(d.parser.error(), Http1Error::kNone) << d.parser.errorReason();
  ASSERT_EQ(d.heads.size(), 1u);
  EXPECT_EQ(d.heads[0].header_bytes, 200u);
}

TEST(Http1ParserTest, HeaderBytesOnePastTheLimitFail) {
  Http1Limits limits;
  limits.max_header_bytes = 200;
  const Outcome o = parseAll(Kind::kRequest, headOfSize(201), limits);
  EXPECT_EQ(o.error, Http1Error::kHeadersTooLarge);
  EXPECT_EQ(o.reason, "header section too large");
  EXPECT_EQ(o.consumed, 200u);  // the 201st byte is refused
  EXPECT_TRUE(o.events.empty());
}

TEST(Http1ParserTest, HeaderBytesAreCountedAsTheyArrive) {
  Http1Limits limits;
  limits.max_header_bytes = 100;
  Driver d(Kind::kRequest, limits);
  const std::string start = "GET / HTTP/1.1\r\nX-Endless: ";
  d.feed(start);
  size_t fed = start.size();
  while (d.parser.error() == Http1Error::kNone && fed < 1000) {
    d.feed("v");
    ++fed;
  }
  EXPECT_EQ(d.parser.error(), Http1Error::kHeadersTooLarge);
  EXPECT_EQ(fed, 101u);
  EXPECT_EQ(d.consumed, 100u);
  EXPECT_EQ(d.parser.parse("more"), 0u);
}

TEST(Http1ParserTest, EmptyLinesBeforeTheRequestCountAsHeaderBytes) {
  Http1Limits limits;
  limits.max_header_bytes = 20;
  EXPECT_EQ(parseAll(Kind::kRequest, "\r\nGET / HTTP/1.1\r\n\r\n", limits).error,
            Http1Error::kNone);
  EXPECT_EQ(parseAll(Kind::kRequest, "\r\n\r\nGET / HTTP/1.1\r\n\r\n", limits).error,
            Http1Error::kHeadersTooLarge);
}

std::string requestWithFields(size_t count) {
  std::string out = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < count; ++i) out += "F" + std::to_string(i) + ": v\r\n";
  return out + "\r\n";
}

TEST(Http1ParserTest, HeaderCountAtTheLimitPasses) {
  Http1Limits limits;
  limits.max_header_count = 5;
  const Outcome o = parseAll(Kind::kRequest, requestWithFields(5), limits);
  EXPECT_EQ(o.error, Http1Error::kNone) << o.reason;
  EXPECT_EQ(o.events.size(), 2u);
}

TEST(Http1ParserTest, HeaderCountOnePastTheLimitFails) {
  Http1Limits limits;
  limits.max_header_count = 5;
  const Outcome o = parseAll(Kind::kRequest, requestWithFields(6), limits);
  EXPECT_EQ(o.error, Http1Error::kTooManyHeaders);
  EXPECT_EQ(o.reason, "too many header fields");
  EXPECT_TRUE(o.events.empty());
}

TEST(Http1ParserTest, UriAtTheLimitPasses) {
  Http1Limits limits;
  limits.max_uri_length = 10;
  Driver d(Kind::kRequest, limits);
  d.feed("GET /123456789 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(d.parser.error(), Http1Error::kNone) << d.parser.errorReason();
  ASSERT_EQ(d.heads.size(), 1u);
  EXPECT_EQ(d.heads[0].target, "/123456789");
}

TEST(Http1ParserTest, UriOnePastTheLimitFails) {
  Http1Limits limits;
  limits.max_uri_length = 10;
  const Outcome o = parseAll(Kind::kRequest, "GET /1234567890 HTTP/1.1\r\n\r\n", limits);
  EXPECT_EQ(o.error, Http1Error::kUriTooLong);
  EXPECT_EQ(o.consumed, 14u);
}

TEST(Http1ParserTest, UriLimitComesBeforeTheHeaderByteLimit) {
  Http1Limits limits;
  limits.max_uri_length = 10;
  limits.max_header_bytes = 20;
  EXPECT_EQ(parseAll(Kind::kRequest, "GET /" + std::string(100, 'a'), limits).error,
            Http1Error::kUriTooLong);
}

// Head: 47 bytes. Trailer section: "T: <filler>\r\n\r\n".
std::string chunkedWithTrailerOfSize(size_t size) {
  return "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nT: " +
         std::string(size - 7, 't') + "\r\n\r\n";
}

TEST(Http1ParserTest, TrailerBytesAtTheLimitPass) {
  Http1Limits limits;
  limits.max_header_bytes = 100;
  const Outcome o = parseAll(Kind::kRequest, chunkedWithTrailerOfSize(100), limits);
  EXPECT_EQ(o.error, Http1Error::kNone) << o.reason;
  EXPECT_EQ(o.events.back(), "complete");
}

TEST(Http1ParserTest, TrailerBytesOnePastTheLimitFail) {
  Http1Limits limits;
  limits.max_header_bytes = 100;
  const Outcome o = parseAll(Kind::kRequest, chunkedWithTrailerOfSize(101), limits);
  EXPECT_EQ(o.error, Http1Error::kHeadersTooLarge);
  EXPECT_EQ(o.reason, "trailer section too large");
  EXPECT_EQ(o.events, (Events{"head POST / HTTP/1.1 [Transfer-Encoding: chunked]", "body a"}));
}

// RFC 9110 section 6.5.1: framing fields do not belong in trailers. They are dropped and the
// message, framed by its header section, goes on with the rest of its trailers.
TEST(Http1ParserTest, FramingFieldsInTrailersAreDropped) {
  const Outcome request = parseAll(
      Kind::kRequest,
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nContent-Length: 5\r\n"
      "X-Sum: 1\r\n\r\n");
  EXPECT_EQ(request.error, Http1Error::kNone) << request.reason;
  EXPECT_EQ(request.events,
            (Events{"head POST / HTTP/1.1 [Transfer-Encoding: chunked]", "body a",
                    "trailers [X-Sum: 1]", "complete"}));
  const Outcome response = parseAll(
      Kind::kResponse,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
      "transfer-encoding: gzip\r\nX-T: 1\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(response.error, Http1Error::kNone) << response.reason;
  EXPECT_EQ(response.events.back(), "complete");
  EXPECT_EQ(response.events[response.events.size() - 2], "trailers [X-T: 1]");
}

std::string chunkedWithTrailers(size_t count) {
  std::string out = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  for (size_t i = 0; i < count; ++i) out += "T" + std::to_string(i) + ": v\r\n";
  return out + "\r\n";
}

TEST(Http1ParserTest, TrailerCountAtTheLimitPasses) {
  Http1Limits limits;
  limits.max_header_count = 3;
  const Outcome o = parseAll(Kind::kRequest, chunkedWithTrailers(3), limits);
  EXPECT_EQ(o.error, Http1Error::kNone) << o.reason;
  EXPECT_EQ(o.events[1], "trailers [T0: v] [T1: v] [T2: v]");
}

TEST(Http1ParserTest, TrailerCountOnePastTheLimitFails) {
  Http1Limits limits;
  limits.max_header_count = 3;
  const Outcome o = parseAll(Kind::kRequest, chunkedWithTrailers(4), limits);
  EXPECT_EQ(o.error, Http1Error::kTooManyHeaders);
  EXPECT_EQ(o.reason, "too many trailer fields");
}

TEST(Http1ParserTest, ResponseHeadsHaveTheSameLimits) {
  Http1Limits limits;
  limits.max_header_bytes = 38;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";  // 38 bytes
  EXPECT_EQ(parseAll(Kind::kResponse, head, limits).error, Http1Error::kNone);
  limits.max_header_bytes = 37;
  EXPECT_EQ(parseAll(Kind::kResponse, head, limits).error, Http1Error::kHeadersTooLarge);
}

// --- Strictness ------------------------------------------------------------------------------

struct Malformed {
  const char* name;
  Kind kind;
  std::string bytes;
  const char* reason;  // errorReason() must contain it
};

const std::vector<Malformed> kMalformed = {
    // Field names.
    {"name with @", Kind::kRequest, "GET / HTTP/1.1\r\nX@Y: a\r\n\r\n", "field name"},
    {"name with space inside", Kind::kRequest, "GET / HTTP/1.1\r\nHo st: a\r\n\r\n", "colon"},
    {"space before colon", Kind::kRequest, "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
     "whitespace between field name and colon"},
    {"tab before colon", Kind::kRequest, "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
     "whitespace between field name and colon"},
    {"space before colon in a response", Kind::kResponse,
     "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", "whitespace between field name and colon"},
    {"empty name", Kind::kRequest, "GET / HTTP/1.1\r\n: a\r\n\r\n", "empty field name"},
    {"no colon", Kind::kRequest, "GET / HTTP/1.1\r\nHost\r\n\r\n", "without colon"},
    {"name with non-ASCII", Kind::kRequest, "GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n", "field name"},
    // Field values.
    {"value with SOH", Kind::kRequest, std::string("GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n"),
     "field value"},
    {"value with DEL", Kind::kRequest, "GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n", "field value"},
    {"value with NUL", Kind::kRequest, std::string("GET / HTTP/1.1\r\nX: a\0z\r\n\r\n", 26),
     "field value"},
    {"value with ESC in a response", Kind::kResponse,
     "HTTP/1.1 200 OK\r\nX: \x1b[0m\r\nContent-Length: 0\r\n\r\n", "field value"},
    // Line folding and leading whitespace.
    {"obs-fold with SP", Kind::kRequest, "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", "obs-fold"},
    {"obs-fold with HTAB", Kind::kRequest, "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", "obs-fold"},
    {"obs-fold in a response", Kind::kResponse,
     "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", "obs-fold"},
    {"whitespace before the first field", Kind::kRequest, "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
     "whitespace"},
    {"obs-fold in trailers", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n", "obs-fold"},
    // Line endings.
    {"bare LF after the request line", Kind::kRequest, "GET / HTTP/1.1\nHost: a\r\n\r\n",
     "bare LF"},
    {"bare LF after a field", Kind::kRequest, "GET / HTTP/1.1\r\nHost: a\n\r\n", "bare LF"},
    {"bare LF ending the head", Kind::kRequest, "GET / HTTP/1.1\r\nHost: a\r\n\n", "bare LF"},
    {"bare LF only", Kind::kRequest, "GET / HTTP/1.1\n\n", "bare LF"},
    {"bare LF before the request", Kind::kRequest, "\nGET / HTTP/1.1\r\n\r\n", "bare LF"},
    {"bare LF after the status line", Kind::kResponse, "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
     "bare LF"},
    {"bare CR after the request line", Kind::kRequest, "GET / HTTP/1.1\rHost: a\r\n\r\n",
     "bare CR"},
    {"bare CR inside a field", Kind::kRequest, "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
     "bare CR"},
    {"bare CR ending the head", Kind::kRequest, "GET / HTTP/1.1\r\nHost: a\r\n\rX", "bare CR"},
    {"bare CR before the request", Kind::kRequest, "\rGET / HTTP/1.1\r\n\r\n", "bare CR"},
    {"bare LF in trailers", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\n\r\n", "bare LF"},
    // Content-Length and Transfer-Encoding.
    {"identical duplicate Content-Length", Kind::kRequest,
     "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", "Content-Length"},
    {"conflicting Content-Length", Kind::kRequest,
     "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "Content-Length"},
    {"Content-Length list", Kind::kRequest, "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\na",
     "Content-Length"},
    {"signed Content-Length", Kind::kRequest, "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\na",
     "Content-Length"},
    {"empty Content-Length", Kind::kRequest, "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
     "Content-Length"},
    {"overflowing Content-Length", Kind::kRequest,
     "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", "Content-Length"},
    {"Content-Length with Transfer-Encoding", Kind::kRequest,
     "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "Content-Length can't be present with Transfer-Encoding"},
    {"Transfer-Encoding with Content-Length", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
     "Content-Length can't be present with Transfer-Encoding"},
    {"Content-Length with Transfer-Encoding in a response", Kind::kResponse,
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "Content-Length can't be present with Transfer-Encoding"},
    {"Transfer-Encoding gzip", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc", "does not end in chunked"},
    {"Transfer-Encoding chunked then gzip", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc", "Transfer-Encoding"},
    {"Transfer-Encoding chunked then gzip in two fields", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\nabc",
     "Transfer-Encoding"},
    {"Transfer-Encoding chunked twice", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
     "Transfer-Encoding"},
    {"Transfer-Encoding chunkedx", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n", "does not end in chunked"},
    {"Transfer-Encoding in HTTP/1.0", Kind::kRequest,
     "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.0"},
    {"Transfer-Encoding in an HTTP/1.0 response", Kind::kResponse,
     "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.0"},
    // Chunk framing.
    {"chunk size not hex", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n", "invalid chunk size"},
    {"negative chunk size", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n", "invalid chunk size"},
    {"0x chunk size", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n", "invalid chunk size"},
    {"space after chunk size", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n", "invalid chunk size"},
    {"empty chunk size", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n", "invalid chunk size"},
    {"overflowing chunk size", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
     "chunk size overflow"},
    {"bare LF after chunk size", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n", "invalid chunk size"},
    {"bare CR after chunk size", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\rXabc\r\n0\r\n\r\n", "bare CR"},
    {"bare CR after chunk extension", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\rXabc\r\n0\r\n\r\n", "bare CR"},
    {"control character in chunk extension", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a\x01\r\nabc\r\n0\r\n\r\n",
     "chunk extension"},
    {"chunk extension without a name", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;=b\r\nabc\r\n0\r\n\r\n",
     "invalid chunk extension"},
    {"empty chunk extension", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a;\r\nabc\r\n0\r\n\r\n",
     "invalid chunk extension"},
    {"chunk extension with an empty value", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\r\nabc\r\n0\r\n\r\n",
     "invalid chunk extension"},
    {"chunk extension quoted value not closed", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"b\r\nabc\r\n0\r\n\r\n",
     "invalid character in chunk extension"},
    {"chunk extension text after a quoted value", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"b\"c\r\nabc\r\n0\r\n\r\n",
     "invalid chunk extension"},
    {"whitespace before a chunk extension", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 ;a\r\nabc\r\n0\r\n\r\n",
     "invalid chunk size"},
    {"bad chunk extension in a response", Kind::kResponse,
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a b\r\nabc\r\n0\r\n\r\n",
     "invalid chunk extension"},
    {"chunk data without CRLF", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
     "chunk data not followed by CRLF"},
    {"chunk data with LF only", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
     "chunk data not followed by CRLF"},
    {"chunk data with CR only", Kind::kRequest,
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r0\r\n\r\n",
     "chunk data not followed by CRLF"},
    // Versions.
    {"HTTP/1.2", Kind::kRequest, "GET / HTTP/1.2\r\n\r\n", "unsupported HTTP version"},
    {"HTTP/2.0", Kind::kRequest, "GET / HTTP/2.0\r\n\r\n", "unsupported HTTP version"},
    {"HTTP/0.9 version", Kind::kRequest, "GET / HTTP/0.9\r\n\r\n", "unsupported HTTP version"},
    {"HTTP/1.10", Kind::kRequest, "GET / HTTP/1.10\r\n\r\n", "invalid HTTP version"},
    {"lowercase http", Kind::kRequest, "GET / http/1.1\r\n\r\n", "invalid HTTP version"},
    {"RTSP", Kind::kRequest, "GET / RTSP/1.0\r\n\r\n", "invalid HTTP version"},
    {"no version", Kind::kRequest, "GET /\r\n\r\n", "invalid request target"},
    {"HTTP/2 preface", Kind::kRequest, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
     "unsupported HTTP version"},
    {"response HTTP/1.2", Kind::kResponse, "HTTP/1.2 200 OK\r\n\r\n", "unsupported HTTP version"},
    {"response HTTP/2", Kind::kResponse, "HTTP/2 200 OK\r\n\r\n", "unsupported HTTP version"},
    // Request and status lines.
    {"lowercase method", Kind::kRequest, "get / HTTP/1.1\r\n\r\n", "method"},
    {"method with a lowercase letter", Kind::kRequest, "GeT / HTTP/1.1\r\n\r\n", "method"},
    {"method with a non-token character", Kind::kRequest, "G@T / HTTP/1.1\r\n\r\n", "method"},
    {"method with a digit", Kind::kRequest, "M1 / HTTP/1.1\r\n\r\n", "method"},
    {"method of 21 characters", Kind::kRequest, "ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n\r\n",
     "method"},
    {"double space before target", Kind::kRequest, "GET  / HTTP/1.1\r\n\r\n",
     "invalid request target"},
    {"double space before version", Kind::kRequest, "GET /  HTTP/1.1\r\n\r\n",
     "invalid HTTP version"},
    {"space after version", Kind::kRequest, "GET / HTTP/1.1 \r\n\r\n", "invalid HTTP version"},
    {"control character in target", Kind::kRequest, "GET /a\x01z HTTP/1.1\r\n\r\n",
     "invalid request target"},
    {"tab in target", Kind::kRequest, "GET /a\tb HTTP/1.1\r\n\r\n", "invalid request target"},
    {"non-ASCII in target", Kind::kRequest, "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
     "invalid request target"},
    {"two-digit status", Kind::kResponse, "HTTP/1.1 20 OK\r\n\r\n", "invalid status code"},
    {"four-digit status", Kind::kResponse, "HTTP/1.1 2000 OK\r\n\r\n", "invalid status code"},
    {"status 099", Kind::kResponse, "HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n",
     "invalid status code"},
    {"status 600", Kind::kResponse, "HTTP/1.1 600 OK\r\nContent-Length: 0\r\n\r\n",
     "invalid status code"},
    {"double space before status", Kind::kResponse, "HTTP/1.1  200 OK\r\n\r\n",
     "invalid status code"},
    {"control character in reason", Kind::kResponse, "HTTP/1.1 200 O\x01K\r\n\r\n",
     "reason phrase"},
};

TEST(Http1ParserTest, RefusesEveryMalformedMessage) {
  for (const Malformed& m : kMalformed) {
    SCOPED_TRACE(m.name);
    const Outcome whole = parseAll(m.kind, m.bytes);
    EXPECT_EQ(whole.error, Http1Error::kInvalid) << whole.reason;
    EXPECT_NE(whole.reason.find(m.reason), std::string::npos) << whole.reason;
    EXPECT_LE(whole.consumed, m.bytes.size());
    for (const std::string& e : whole.events) EXPECT_NE(e, "complete");
    // The same verdict when the bytes come one at a time.
    std::vector<size_t> cuts;
    for (size_t i = 1; i < m.bytes.size(); ++i) cuts.push_back(i);
    const Outcome split = parseSplit(m.kind, m.bytes, cuts);
    EXPECT_EQ(split.error, Http1Error::kInvalid);
    EXPECT_EQ(split.reason, whole.reason);
    // And when they come in two pieces, cut at every offset.
    for (size_t at = 0; at <= m.bytes.size(); ++at) {
      const Outcome two = parseSplit(m.kind, m.bytes, {at});
      EXPECT_EQ(two.error, Http1Error::kInvalid) << "cut at " << at;
      EXPECT_EQ(two.reason, whole.reason) << "cut at " << at;
    }
  }
}

TEST(Http1ParserTest, NothingIsParsedAfterAnError) {
  Driver d(Kind::kRequest);
  d.feed("GET / HTTP/1.1\r\nHost : a\r\n\r\n");
  ASSERT_EQ(d.parser.error(), Http1Error::kInvalid);
  EXPECT_EQ(d.parser.parse("GET / HTTP/1.1\r\n\r\n"), 0u);
  d.parser.finish();
  EXPECT_EQ(d.parser.error(), Http1Error::kInvalid);
  EXPECT_TRUE(d.events.empty());
}

TEST(Http1ParserTest, BodyBeforeBadChunkFramingIsDeliveredThenRefused) {
  const Outcome o = parseAll(Kind::kRequest,
                             "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\r\nhello\r\n5\r\nworldXX0\r\n\r\n");
  EXPECT_EQ(o.error, Http1Error::kInvalid);
  EXPECT_EQ(joined(o.events),
            (Events{"head POST / HTTP/1.1 [Transfer-Encoding: chunked]", "body helloworld"}));
}

// --- Responses -------------------------------------------------------------------------------

TEST(Http1ParserTest, HandlerDecidesAResponseToHeadHasNoBody) {
  Driver d(Kind::kResponse);
  d.no_body = true;
  d.feed(
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(d.parser.error(), Http1Error::kNone) << d.parser.errorReason();
  EXPECT_EQ(d.events, (Events{"head 200 OK HTTP/1.1 [Content-Length: 5]", "complete",
                              "head 200 OK HTTP/1.1 [Transfer-Encoding: chunked]", "complete",
                              "head 200 OK HTTP/1.1", "complete"}));
  EXPECT_FALSE(d.parser.inMessage());
}

TEST(Http1ParserTest, RequestParserIgnoresOnHeadResult) {
  Driver d(Kind::kRequest);
  d.no_body = true;
  d.feed("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(d.events, (Events{"head POST / HTTP/1.1 [Content-Length: 2]", "body ok", "complete"}));
}

TEST(Http1ParserTest, InterimResponsesAreMessagesOfTheirOwn) {
  const Outcome o = parseAll(Kind::kResponse,
                             "HTTP/1.1 100 Continue\r\n\r\n"
                             "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(o.error, Http1Error::kNone) << o.reason;
  EXPECT_EQ(o.events,
            (Events{"head 100 Continue HTTP/1.1", "complete",
                    "head 103 Early Hints HTTP/1.1 [Link: </a.css>; rel=preload]", "complete",
                    "head 200 OK HTTP/1.1 [Content-Length: 2]", "body ok", "complete"}));
}

TEST(Http1ParserTest, InterimResponseWithCloseDoesNotEndTheConnection) {
  const Outcome o = parseAll(Kind::kResponse,
                             "HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(o.events, (Events{"head 100 Continue HTTP/1.1 [Connection: close]", "complete",
                              "head 200 OK HTTP/1.1 [Content-Length: 0]", "complete"}));
}

TEST(Http1ParserTest, NoContentAndNotModifiedHaveNoBody) {
  const Outcome o = parseAll(Kind::kResponse,
                             "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"
                             "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n"
                             "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(o.error, Http1Error::kNone) << o.reason;
  EXPECT_EQ(o.events,
            (Events{"head 204 No Content HTTP/1.1 [Content-Length: 3]", "complete",
                    "head 304 Not Modified HTTP/1.1 [Content-Length: 1234]", "complete",
                    "head 304 Not Modified HTTP/1.1 [Transfer-Encoding: chunked]", "complete",
                    "head 200 OK HTTP/1.1 [Content-Length: 3]", "body abc", "complete"}));
}

TEST(Http1ParserTest, CloseDelimitedBodyEndsAtFinish) {
  Driver d(Kind::kResponse);
  d.feed("HTTP/1.1 200 OK\r\n\r\nsome ");
  d.feed("bytes");
  ASSERT_EQ(d.heads.size(), 1u);
  EXPECT_FALSE(d.heads[0].keep_alive);
  EXPECT_TRUE(d.parser.inMessage());
  EXPECT_EQ(d.events, (Events{"head 200 OK HTTP/1.1", "body some ", "body bytes"}));
  d.parser.finish();
  EXPECT_EQ(d.parser.error(), Http1Error::kNone) << d.parser.errorReason();
  EXPECT_EQ(d.events.back(), "complete");
  EXPECT_FALSE(d.parser.inMessage());
  EXPECT_EQ(d.parser.parse("late"), 0u);
}

TEST(Http1ParserTest, TransferEncodingNotChunkedMakesAResponseCloseDelimited) {
  Driver d(Kind::kResponse);
  d.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzipped");
  d.parser.finish();
  EXPECT_EQ(d.parser.error(), Http1Error::kNone) << d.parser.errorReason();
  EXPECT_EQ(d.events,
            (Events{"head 200 OK HTTP/1.1 [Transfer-Encoding: gzip]", "body zipped", "complete"}));
}

TEST(Http1ParserTest, FinishInsideAMessageIsUnexpectedEof) {
  for (const auto& [kind, bytes] :
       {std::pair{Kind::kRequest, std::string("G")},
        std::pair{Kind::kRequest, std::string("GET / HTTP/1.1\r\nHost: a\r\n")},
        std::pair{Kind::kRequest, std::string("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")},
        std::pair{Kind::kRequest,
                  std::string("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")},
        std::pair{
            Kind::kRequest,
            std::string("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\r\n")},
        std::pair{Kind::kResponse, std::string("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")},
        std::pair{Kind::kResponse, std::string("HTTP/1.1 200 OK\r\n")}}) {
    SCOPED_TRACE(bytes);
    Driver d(kind);
    d.feed(bytes);
    ASSERT_EQ(d.parser.error(), Http1Error::kNone);
    EXPECT_TRUE(d.parser.inMessage());
    d.parser.finish();
    EXPECT_EQ(d.parser.error(), Http1Error::kUnexpectedEof);
    for (const std::string& e : d.events) EXPECT_NE(e, "complete");
  }
}

TEST(Http1ParserTest, FinishBetweenMessagesIsClean) {
  Driver d(Kind::kRequest);
  d.feed("GET / HTTP/1.1\r\n\r\n\r\n");
  d.parser.finish();
  EXPECT_EQ(d.parser.error(), Http1Error::kNone);
  EXPECT_EQ(d.events, (Events{"head GET / HTTP/1.1", "complete"}));
}

// --- Connection management -------------------------------------------------------------------

TEST(Http1ParserTest, KeepAliveFollowsVersionAndConnection) {
  struct Case {
    std::string bytes;
    bool keep_alive;
  };
  for (const Case& c : std::vector<Case>{
           {"GET / HTTP/1.1\r\n\r\n", true},
           {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
           {"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", false},
           {"GET / HTTP/1.0\r\n\r\n", false},
           {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
       }) {
    SCOPED_TRACE(c.bytes);
    Driver d(Kind::kRequest);
    d.feed(c.bytes);
    ASSERT_EQ(d.heads.size(), 1u);
    EXPECT_EQ(d.heads[0].keep_alive, c.keep_alive);
  }
}

TEST(Http1ParserTest, BytesAfterAClosingMessageAreIgnored) {
  for (const std::string head :
       {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "GET / HTTP/1.0\r\n\r\n"}) {
    Driver d(Kind::kRequest);
    const std::string bytes = head + "GET /smuggled HTTP/1.1\r\n\r\n";
    EXPECT_EQ(d.feed(bytes), bytes.size());
    EXPECT_EQ(d.feed("garbage\r\n\n"), 10u);
    EXPECT_EQ(d.parser.error(), Http1Error::kNone);
    ASSERT_EQ(d.events.size(), 2u);
    EXPECT_EQ(d.events[1], "complete");
    d.parser.finish();
    EXPECT_EQ(d.parser.error(), Http1Error::kNone);
  }
}

// --- Upgrades and CONNECT --------------------------------------------------------------------

TEST(Http1ParserTest, UpgradeRequestStopsBeforeTheTunnelBytes) {
  Driver d(Kind::kRequest);
  const std::string head =
      "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  EXPECT_EQ(d.feed(head + "\x81\x05hello"), head.size());
  EXPECT_TRUE(d.parser.upgraded());
  EXPECT_EQ(d.pending, "\x81\x05hello");
  ASSERT_EQ(d.heads.size(), 1u);
  EXPECT_TRUE(d.heads[0].upgrade);
  EXPECT_EQ(d.events.back(), "complete (upgraded)");
  EXPECT_EQ(d.parser.parse(d.pending), 0u);
}

TEST(Http1ParserTest, UpgradeWithoutConnectionUpgradeIsNotAnUpgrade) {
  Driver d(Kind::kRequest);
  d.feed("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
  EXPECT_FALSE(d.parser.upgraded());
  EXPECT_EQ(d.events.size(), 4u);
}

TEST(Http1ParserTest, UpgradeRequestBodyComesBeforeTheTunnel) {
  Driver d(Kind::kRequest);
  const std::string message =
      "POST / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\nhi";
  EXPECT_EQ(d.feed(message + "PRI"), message.size());
  EXPECT_EQ(d.events.back(), "complete (upgraded)");
  EXPECT_EQ(d.events[1], "body hi");
  EXPECT_EQ(d.pending, "PRI");
}

TEST(Http1ParserTest, ConnectRequestStopsAfterItsHead) {
  Driver d(Kind::kRequest);
  const std::string head = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
  EXPECT_EQ(d.feed(head + "\x16\x03\x01"), head.size());
  EXPECT_TRUE(d.parser.upgraded());
  EXPECT_EQ(d.events, (Events{"head CONNECT example.com:443 HTTP/1.1 [Host: example.com:443]",
                              "complete (upgraded)"}));
  EXPECT_EQ(d.pending, "\x16\x03\x01");
}

TEST(Http1ParserTest, RefusedUpgradeGoesBackToHttp) {
  Driver d(Kind::kRequest);
  const std::string first =
      "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  d.feed(first + "GET /next HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(d.parser.upgraded());
  d.parser.resumeAfterUpgrade();
  EXPECT_FALSE(d.parser.upgraded());
  d.feed("");
  EXPECT_EQ(d.events.back(), "complete");
  EXPECT_EQ(d.events[d.events.size() - 2], "head GET /next HTTP/1.1");
  EXPECT_TRUE(d.pending.empty());
}

TEST(Http1ParserTest, SwitchingProtocolsResponseLeavesTheRest) {
  Driver d(Kind::kResponse);
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  EXPECT_EQ(d.feed(head + "\x81\x02hi"), head.size());
  EXPECT_TRUE(d.parser.upgraded());
  EXPECT_TRUE(d.heads[0].upgrade);
  EXPECT_EQ(d.pending, "\x81\x02hi");
  EXPECT_EQ(d.events.back(), "complete (upgraded)");
  d.parser.finish();
  EXPECT_EQ(d.parser.error(), Http1Error::kNone);
}

TEST(Http1ParserTest, ConnectSuccessMarkedByTheHandlerLeavesTheRest) {
  Driver d(Kind::kResponse);
  d.mark_connect = true;
  const std::string head = "HTTP/1.1 200 Connection Established\r\n\r\n";
  EXPECT_EQ(d.feed(head + "\x16\x03\x03"), head.size());
  EXPECT_TRUE(d.parser.upgraded());
  EXPECT_EQ(d.events, (Events{"head 200 Connection Established HTTP/1.1", "complete (upgraded)"}));
  EXPECT_EQ(d.pending, "\x16\x03\x03");
}

TEST(Http1ParserTest, ConnectFailureIsAnOrdinaryResponse) {
  Driver d(Kind::kResponse);
  d.mark_connect = true;  // only 2xx are marked
  d.feed("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
  EXPECT_FALSE(d.parser.upgraded());
  EXPECT_EQ(d.events.back(), "complete");
}

// --- Pause and resume ------------------------------------------------------------------------

TEST(Http1ParserTest, PauseInBodyStopsRightAfterTheEvent) {
  Driver d(Kind::kRequest);
  d.auto_resume = false;
  d.pause_in_body = true;
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string bytes = head + "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  const size_t first = d.feed(bytes);
  EXPECT_EQ(first, head.size() + 3 + 5);
  EXPECT_TRUE(d.parser.paused());
  EXPECT_EQ(d.parser.parse(d.pending), 0u);  // still paused
  EXPECT_EQ(d.events.back(), "body hello");

  d.parser.resume();
  const size_t second = d.feed("");
  EXPECT_EQ(second, 2 + 3 + 5);
  EXPECT_EQ(d.events.back(), "body world");

  d.pause_in_body = false;
  d.parser.resume();
  d.feed("");
  EXPECT_EQ(d.consumed, bytes.size());
  EXPECT_EQ(d.events, (Events{"head POST / HTTP/1.1 [Transfer-Encoding: chunked]", "body hello",
                              "body world", "complete", "head GET / HTTP/1.1", "complete"}));
}

TEST(Http1ParserTest, CompletionAfterAPauseOnTheLastBodyByteComesWithEmptyInput) {
  Driver d(Kind::kRequest);
  d.auto_resume = false;
  d.pause_in_body = true;
  const std::string bytes = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  EXPECT_EQ(d.feed(bytes), bytes.size());
  EXPECT_EQ(d.events.back(), "body abc");
  d.parser.resume();
  EXPECT_EQ(d.parser.parse(""), 0u);
  EXPECT_EQ(d.events.back(), "complete");
  EXPECT_FALSE(d.parser.inMessage());
}

TEST(Http1ParserTest, PauseInHeadOfAMessageWithABody) {
  Driver d(Kind::kRequest);
  d.auto_resume = false;
  d.pause_in_head = true;
  const std::string head = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n";
  EXPECT_EQ(d.feed(head + "abc"), head.size());
  EXPECT_EQ(d.events.size(), 1u);
  d.parser.resume();
  d.feed("");
  EXPECT_EQ(d.events, (Events{"head POST / HTTP/1.1 [Content-Length: 3]", "body abc", "complete"}));
}

TEST(Http1ParserTest, PauseInHeadOfAMessageWithoutABodyOwesTheCompletion) {
  Driver d(Kind::kResponse);
  d.auto_resume = false;
  d.pause_in_head = true;
  d.no_body = true;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
  EXPECT_EQ(d.feed(head + head), head.size());
  EXPECT_EQ(d.events.size(), 1u);
  EXPECT_TRUE(d.parser.inMessage());
  d.parser.resume();
  EXPECT_EQ(d.feed(""), head.size());
  EXPECT_EQ(d.events, (Events{"head 200 OK HTTP/1.1 [Content-Length: 3]", "complete",
                              "head 200 OK HTTP/1.1 [Content-Length: 3]"}));
  d.parser.resume();
  d.feed("");
  EXPECT_EQ(d.events.back(), "complete");
}

TEST(Http1ParserTest, PauseInTrailersOwesTheCompletion) {
  Driver d(Kind::kRequest);
  d.auto_resume = false;
  d.pause_in_trailers = true;
  d.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: v\r\n\r\n");
  EXPECT_EQ(d.events.back(), "trailers [T: v]");
  d.parser.resume();
  d.feed("");
  EXPECT_EQ(d.events.back(), "complete");
}

TEST(Http1ParserTest, PauseInCompletionStopsBetweenPipelinedMessages) {
  Driver d(Kind::kRequest);
  d.auto_resume = false;
  d.pause_in_complete = true;
  const std::string one = "GET /1 HTTP/1.1\r\n\r\n";
  const std::string two = "GET /2 HTTP/1.1\r\n\r\n";
  EXPECT_EQ(d.feed(one + two), one.size());
  EXPECT_EQ(d.events, (Events{"head GET /1 HTTP/1.1", "complete"}));
  d.parser.resume();
  EXPECT_EQ(d.feed(""), two.size());
  EXPECT_EQ(d.events.size(), 4u);
}

TEST(Http1ParserTest, FinishDeliversWhatAPauseHeldBack) {
  Driver d(Kind::kResponse);
  d.auto_resume = false;
  d.pause_in_body = true;
  d.feed("HTTP/1.1 200 OK\r\n\r\nbody");
  EXPECT_TRUE(d.parser.paused());
  d.parser.finish();
  EXPECT_EQ(d.parser.error(), Http1Error::kNone) << d.parser.errorReason();
  EXPECT_EQ(d.events.back(), "complete");
}

// --- Handler failures ------------------------------------------------------------------------

TEST(Http1ParserTest, AThrowingHandlerBecomesAnError) {
  Driver d(Kind::kRequest);
  d.throw_in_head = true;
  d.feed("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(d.parser.error(), Http1Error::kInvalid);
  EXPECT_EQ(d.parser.errorReason(), "out of memory");
  EXPECT_EQ(d.events.size(), 1u);
}

TEST(Http1ParserTest, ErrorNamesAreStable) {
  EXPECT_EQ(http1ErrorName(Http1Error::kNone), "none");
  EXPECT_EQ(http1ErrorName(Http1Error::kHeadersTooLarge), "headers_too_large");
  EXPECT_EQ(http1ErrorName(Http1Error::kTooManyHeaders), "too_many_headers");
  EXPECT_EQ(http1ErrorName(Http1Error::kUriTooLong), "uri_too_long");
  EXPECT_EQ(http1ErrorName(Http1Error::kInvalid), "invalid");
  EXPECT_EQ(http1ErrorName(Http1Error::kUnexpectedEof), "unexpected_eof");
}

}  // namespace
}  // namespace tracecar::http
