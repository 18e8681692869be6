#include "proxy/protocol_translation.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "unit/http/header_text.h"

namespace tracecar::proxy {
namespace {

using http::test_support::makeHeaders;
using http::test_support::serialize;

// ---- an HTTP/2 stream to HTTP/1.1 ----

TEST(ChooseH1RequestBody, DeclaredContentLengthIsKept) {
  const H1RequestBody body =
      chooseH1RequestBody(makeHeaders({{"content-length", "10"}}), false, 0, false);
  EXPECT_EQ(body.framing, H1RequestFraming::kLength);
  EXPECT_FALSE(body.add_length);
}

TEST(ChooseH1RequestBody, WholeBodyWithTheHeadGetsItsLength) {
  const H1RequestBody body = chooseH1RequestBody({}, true, 42, false);
  EXPECT_EQ(body.framing, H1RequestFraming::kLength);
  EXPECT_TRUE(body.add_length);
  EXPECT_EQ(body.length, 42u);
}

TEST(ChooseH1RequestBody, EndedWithoutBodyHasNone) {
  EXPECT_EQ(chooseH1RequestBody({}, true, 0, false).framing, H1RequestFraming::kNone);
}

TEST(ChooseH1RequestBody, BodyStillComingOrTrailersGoChunked) {
  EXPECT_EQ(chooseH1RequestBody({}, false, 0, false).framing, H1RequestFraming::kChunked);
  EXPECT_EQ(chooseH1RequestBody({}, true, 5, true).framing, H1RequestFraming::kChunked);
}

TEST(AppendH1RequestHead, RequestLineHostFieldsAndFraming) {
  http::Http1Head request;
  request.method = "POST";
  request.target = "/p?q=1";
  request.headers = makeHeaders({{"host", "example:8080"}, {"accept", "*/*"}});
  std::string out;
  appendH1RequestHead(out, request, {H1RequestFraming::kChunked, 0, false});
  EXPECT_EQ(out,
            "POST /p?q=1 HTTP/1.1\r\nhost: example:8080\r\naccept: */*\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
}

TEST(AppendH1RequestHead, AddsKnownLengthAndConnectionTeForTe) {
  http::Http1Head request;
  request.method = "PUT";
  request.target = "/";
  request.headers = makeHeaders({{"host", "h"}, {"te", "trailers"}});
  std::string out;
  appendH1RequestHead(out, request, {H1RequestFraming::kLength, 7, true});
  EXPECT_EQ(out,
            "PUT / HTTP/1.1\r\nhost: h\r\nte: trailers\r\nContent-Length: 7\r\n"
            "Connection: te\r\n\r\n");
}

TEST(AppendH1RequestHead, JoinsCookieFieldsIntoOne) {
  http::Http1Head request;
  request.method = "GET";
  request.target = "/";
  request.headers =
      makeHeaders({{"cookie", "a=1"}, {"host", "h"}, {"cookie", "b=2"}, {"cookie", "c=3"}});
  std::string out;
  appendH1RequestHead(out, request, {});
  EXPECT_EQ(out, "GET / HTTP/1.1\r\ncookie: a=1; b=2; c=3\r\nhost: h\r\n\r\n");
}

TEST(H2ResponseFromH1, DropsHopByHopFieldsAndTheReason) {
  http::Http1Head response;
  response.status = 200;
  response.reason = "Fine";
  response.header_bytes = 123;
  response.headers = makeHeaders({{"Connection", "keep-alive, X-Hop"},
                                  {"X-Hop", "1"},
                                  {"Keep-Alive", "timeout=5"},
                                  {"Transfer-Encoding", "chunked"},
                                  {"Upgrade", "h2c"},
                                  {"Proxy-Connection", "keep-alive"},
                                  {"Content-Type", "text/plain"},
                                  {"Content-Length", "5"}});
  const http::H2Head head = h2ResponseFromH1(response);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header_list_bytes, 123u);
  EXPECT_EQ(serialize(head.headers), "Content-Type: text/plain\r\nContent-Length: 5\r\n");
}

TEST(H2ResponseFromH1, NoContentLengthWhereHttp2ForbidsOne) {
  for (int status : {103, 204}) {
    http::Http1Head response;
    response.status = status;
    response.headers = makeHeaders({{"Content-Length", "0"}, {"X-A", "1"}});
    EXPECT_EQ(serialize(h2ResponseFromH1(response).headers), "X-A: 1\r\n") << status;
  }
  http::Http1Head not_modified;
  not_modified.status = 304;
  not_modified.headers = makeHeaders({{"Content-Length", "10"}});
  EXPECT_EQ(serialize(h2ResponseFromH1(not_modified).headers), "Content-Length: 10\r\n");
}

// ---- HTTP/1.1 to an HTTP/2 upstream ----

TEST(H2RequestFromH1, OriginFormTakesAuthorityFromHost) {
  http::Http1Head request;
  request.method = "GET";
  request.target = "/a/b?c=d";
  request.headers = makeHeaders({{"Host", "svc:81"}, {"Accept", "*/*"}});
  const RequestTargetParts parts = *parseRequestTarget(request.method, request.target);
  const http::H2Head head = h2RequestFromH1(request, parts, true, "fallback:1");
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.scheme, "http");
  EXPECT_EQ(head.authority, "svc:81");
  EXPECT_EQ(head.path, "/a/b?c=d");
  EXPECT_EQ(serialize(head.headers), "Accept: */*\r\nte: trailers\r\n");
}

TEST(H2RequestFromH1, AbsoluteFormTakesAuthorityAndPathFromTheTarget) {
  http::Http1Head request;
  request.method = "GET";
  request.target = "http://other:82?x=1";
  request.headers = makeHeaders({{"Host", "ignored"}});
  const RequestTargetParts parts = *parseRequestTarget(request.method, request.target);
  const http::H2Head head = h2RequestFromH1(request, parts, false, "fallback:1");
  EXPECT_EQ(head.authority, "other:82");
  EXPECT_EQ(head.path, "/?x=1");
  EXPECT_TRUE(head.headers.empty());
}

TEST(H2RequestFromH1, AsteriskAndMissingHost) {
  http::Http1Head request;
  request.method = "OPTIONS";
  request.target = "*";
  request.version_minor = 0;
  const RequestTargetParts parts = *parseRequestTarget(request.method, request.target);
  const http::H2Head head = h2RequestFromH1(request, parts, false, "app:8080");
  EXPECT_EQ(head.path, "*");
  EXPECT_EQ(head.authority, "app:8080");

  http::Http1Head absolute;
  absolute.method = "OPTIONS";
  absolute.target = "http://h:1";
  const RequestTargetParts absolute_parts = *parseRequestTarget(absolute.method, absolute.target);
  EXPECT_EQ(h2RequestFromH1(absolute, absolute_parts, false, "x").path, "*");
}

TEST(H1ResponseFromH2, StatusReasonVersionAndLength) {
  http::H2Head response;
  response.status = 201;
  response.header_list_bytes = 77;
  response.headers = makeHeaders({{"content-length", "12"}, {"x-a", "b"}});
  const http::Http1Head head = h1ResponseFromH2(response);
  EXPECT_EQ(head.status, 201);
  EXPECT_EQ(head.reason, "Created");
  EXPECT_EQ(head.version_major, 2);
  EXPECT_EQ(head.version_minor, 0);
  EXPECT_EQ(head.header_bytes, 77u);
  ASSERT_TRUE(head.content_length.has_value());
  EXPECT_EQ(*head.content_length, 12u);
  EXPECT_FALSE(head.chunked);
  EXPECT_EQ(serialize(head.headers), "content-length: 12\r\nx-a: b\r\n");
}

TEST(H1ResponseFromH2, NoLengthLeavesFramingToTheProxy) {
  http::H2Head response;
  response.status = 299;
  const http::Http1Head head = h1ResponseFromH2(response);
  EXPECT_EQ(head.reason, "");
  EXPECT_FALSE(head.content_length.has_value());
}

TEST(StatusReason, NamesTheCodesOfRfc9110) {
  EXPECT_EQ(statusReason(103), "Early Hints");
  EXPECT_EQ(statusReason(422), "Unprocessable Content");
  EXPECT_EQ(statusReason(505), "HTTP Version Not Supported");
  EXPECT_EQ(statusReason(799), "");
}

}  // namespace
}  // namespace tracecar::proxy
