// The parser reads common heads itself and leaves the rest to llhttp (Http1Parser::
// setDirectHeads). Each message here runs through both paths, whole and cut at every byte, with
// the handler pausing or not: events, errors and consumed counts must be the same.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "unit/http/http1_parser_driver.h"

namespace tracecar::http {
namespace {

using test_support::Driver;
using test_support::joined;
using Kind = Http1Parser::Kind;

struct Handler {
  bool pause_in_head = false;
  bool pause_in_body = false;
  bool pause_in_complete = false;
  bool no_body = false;       // responses: the request was HEAD
  bool mark_connect = false;  // responses: the request was CONNECT
};

std::string outcome(Kind kind, std::string_view bytes, bool direct, const Handler& h,
                    size_t cut = std::string_view::npos) {
  Driver d(kind, Http1Limits{.max_header_bytes = 512, .max_header_count = 8, .max_uri_length = 64},
           direct);
  d.pause_in_head = h.pause_in_head;
  d.pause_in_body = h.pause_in_body;
  d.pause_in_complete = h.pause_in_complete;
  d.no_body = h.no_body;
  d.mark_connect = h.mark_connect;
  if (cut == std::string_view::npos) {
    d.feed(bytes);
  } else {
    d.feed(bytes.substr(0, cut));
    d.feed(bytes.substr(cut));
  }
  d.parser.finish();
  std::string out;
  for (const std::string& e : joined(d.events)) out += e + "\n";
  for (const Http1Head& head : d.heads) {
    out += "length " + (head.content_length ? std::to_string(*head.content_length) : "-") +
           " keep-alive " + std::to_string(head.keep_alive) + " upgrade " +
           std::to_string(head.upgrade) + " bytes " + std::to_string(head.header_bytes) + "\n";
  }
  return out + "error " + std::string(http1ErrorName(d.parser.error())) + " " +
         std::string(d.parser.errorReason()) + " consumed " + std::to_string(d.consumed) +
         " pending " + std::to_string(d.pending.size());
}

void expectSamePaths(Kind kind, std::string_view bytes) {
  const Handler handlers[] = {{},
                              {.pause_in_head = true},
                              {.pause_in_body = true},
                              {.pause_in_complete = true},
                              {.no_body = true},
                              {.mark_connect = true},
                              {.pause_in_head = true, .no_body = true}};
  for (const Handler& h : handlers) {
    const std::string expected = outcome(kind, bytes, false, h);
    EXPECT_EQ(outcome(kind, bytes, true, h), expected) << bytes;
    for (size_t cut = 0; cut <= bytes.size(); ++cut) {
      ASSERT_EQ(outcome(kind, bytes, true, h, cut), expected) << "cut at " << cut << ": " << bytes;
    }
  }
}

TEST(Http1ParserDirectTest, RequestsTheDirectPathTakes) {
  for (const char* bytes : {
           "GET /users/42 HTTP/1.1\r\nHost: a\r\nUser-Agent: x y\r\n\r\n",
           "POST /p?q=1#f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
           "PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
           "DELETE /x HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n",
           "PATCH /x HTTP/1.1\r\nconnection: Keep-Alive\r\ncontent-length: 0007\r\n\r\n1234567",
           "OPTIONS /x HTTP/1.1\r\nHost:  spaced \t\r\nEmpty:\r\n\r\n",
           "HEAD /x HTTP/1.1\r\nX: \x80\xff obs\r\n\r\n",
           "\r\n\r\nGET /after-empty-lines HTTP/1.1\r\n\r\n",
           "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET /c HTTP/1.1\r\n\r\n",
           "GET /x HTTP/1.1\r\nContent-Length: 5 \r\n\r\nhello",
       }) {
    expectSamePaths(Kind::kRequest, bytes);
  }
}

TEST(Http1ParserDirectTest, RequestsLeftToLlhttp) {
  for (const char* bytes : {
           "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",
           "OPTIONS * HTTP/1.1\r\n\r\n",
           "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\ntunnel bytes",
           "PURGE /x HTTP/1.1\r\n\r\n",
           "get /x HTTP/1.1\r\n\r\n",
           "GET /x HTTP/1.0\r\n\r\n",
           "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
           "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
           "POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
           "GET /x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes",
           "GET /x HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
           "GET /x HTTP/1.1\r\nConnection: close, x\r\n\r\n",
           "GET /x HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
           "GET /x HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
           "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
           "POST /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\na",
           "POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
           "POST /x HTTP/1.1\r\nContent-Length: \r\n\r\n",
           "POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
           "POST /x HTTP/1.1\r\nContent-Length: 123456789012345\r\n\r\nabc",  // 15 digits: direct
           "POST /x HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\nabc",  // 16: llhttp's
           "POST /x HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST /x HTTP/1.1\r\nContent-Length: 1\t\r\n\r\na",
           "POST /x HTTP/1.1\r\nContent-Length:\t1\r\n\r\na",
           "GET /x HTTP/1.1\r\nConnection: close\t\r\n\r\nGET /y HTTP/1.1\r\n\r\n",
           "GET /x HTTP/1.1\r\nConnection:\tclose\r\n\r\nGET /y HTTP/1.1\r\n\r\n",
           "GET /x HTTP/1.1\r\nConnection: close \r\n\r\nGET /y HTTP/1.1\r\n\r\n",
       }) {
    expectSamePaths(Kind::kRequest, bytes);
  }
}

TEST(Http1ParserDirectTest, ResponsesBothWays) {
  for (const char* bytes : {
           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 204 No Content\r\n\r\n",
           "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
           "HTTP/1.1 599\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 200  two  spaces \r\nContent-Length: 2\r\nConnection: close\r\n\r\nokafter",
           "HTTP/1.1 200 OK\r\n\r\nclose-delimited body",
           "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes",
           "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
           "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
           "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\t\r\n\r\nxHTTP/1.1 404 Not Found\r\n\r\n",
       }) {
    expectSamePaths(Kind::kResponse, bytes);
  }
}

// The direct path gives up on a head whose fields llhttp must see only after it has added some
// of them: the message then comes out of llhttp whole, with nothing from the first try.
TEST(Http1ParserDirectTest, AHeadGivenBackToLlhttpKeepsNothingOfTheFirstTry) {
  Driver d(Kind::kRequest);
  d.feed("GET /x HTTP/1.1\r\nA: 1\r\nB: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  ASSERT_EQ(d.parser.error(), Http1Error::kNone);
  ASSERT_EQ(d.heads.size(), 1u);
  EXPECT_EQ(d.heads[0].headers.size(), 3u);
  EXPECT_TRUE(d.heads[0].chunked);
  EXPECT_EQ(d.events.back(), "complete");
}

}  // namespace
}  // namespace tracecar::http
