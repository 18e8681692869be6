// What tracecar refuses in an HTTP/2 client's request before anything goes upstream, and how it
// ends streams and connections a client leaves hanging (docs/http2.md, "Requests refused"):
// the configured request limits (header list bytes, field count, :path length) at and one past
// each limit, userinfo in :authority, a Host that disagrees with :authority, CONNECT, a header
// block that never ends, and the RST_STREAM NO_ERROR after an answer given before the request
// ended. The real worker pool runs in process in front of an in-process h2c origin.
#include <gtest/gtest.h>
#include <poll.h>

#include <memory>
#include <string>

#include "integration/proxy/h2_translation_fixture.h"
#include "support/h2_wire.h"

namespace tracecar::integration {
namespace {

using proxy::DataPathTimeout;
using proxy::ListenerRole;
using proxy::LocalReplyReason;
using proxy::UpstreamProtocol;

// RFC 9113 section 6.5.2: name + value + 32 per field, pseudo-header fields included.
constexpr size_t kFieldOverhead = 32;

http::H2Head requestHead(std::string method, std::string authority, std::string path) {
  http::H2Head head;
  head.method = std::move(method);
  head.scheme = "http";
  head.authority = std::move(authority);
  head.path = std::move(path);
  return head;
}

size_t headerListBytes(const http::H2Head& head) {
  size_t bytes = 0;
  const auto field = [&](std::string_view name, std::string_view value) {
    if (!value.empty()) bytes += name.size() + value.size() + kFieldOverhead;
  };
  field(":method", head.method);
  field(":scheme", head.scheme);
  field(":authority", head.authority);
  field(":path", head.path);
  for (size_t i = 0; i < head.headers.size(); ++i) field(head.headers.name(i), head.headers.value(i));
  return bytes;
}

class H2RequestChecksTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(origin_.port(), 0) << "the origin did not start"; }
  void start(const std::function<void(proxy::DataPathSettings&)>& tweak = {}) {
    proxy_ = std::make_unique<TranslationProxy>(origin_.port(), UpstreamProtocol::kSame, tweak);
    ASSERT_TRUE(proxy_->status().ok()) << proxy_->status();
  }
  std::string authority(ListenerRole role = ListenerRole::kInbound) const {
    return "127.0.0.1:" + std::to_string(proxy_->port(role));
  }
  // One request on a fresh connection; the client's response.
  H2TestClient::Response exchange(const http::H2Head& head,
                                  ListenerRole role = ListenerRole::kInbound) {
    H2TestClient client(proxy_->port(role));
    EXPECT_TRUE(client.ok());
    const int32_t id = client.submit(head);
    EXPECT_TRUE(client.waitClosed(id));
    return client.response(id);
  }
  uint64_t replies(LocalReplyReason reason, ListenerRole role = ListenerRole::kInbound) const {
    return proxy_->counters().localReplies(role, reason);
  }

  H2cOrigin origin_;
  std::unique_ptr<TranslationProxy> proxy_;
};

// ---- the configured limits ----

TEST_F(H2RequestChecksTest, HeaderListAtTheConfiguredLimitIsForwardedOnePastIs431) {
  constexpr size_t kLimit = 1024;
  start([](proxy::DataPathSettings& s) { s.request_limits.max_header_bytes = kLimit; });
  const auto padded = [&](size_t list_bytes) {
    http::H2Head head = requestHead("GET", authority(), "/hello");
    const size_t without_pad = headerListBytes(head) + std::string_view("x-pad").size() +
                               kFieldOverhead;
    head.headers.add("x-pad", std::string(list_bytes - without_pad, 'p'));
    EXPECT_EQ(headerListBytes(head), list_bytes);
    return head;
  };

  const H2TestClient::Response at = exchange(padded(kLimit));
  EXPECT_EQ(at.status, 200);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_EQ(proxy_->recorder().streams()[0].stats->request_header_bytes, kLimit);

  // One past, with a body still to come: 431 from tracecar, then the body is not wanted.
  H2TestClient client(proxy_->port());
  const int32_t id = client.open(padded(kLimit + 1));
  ASSERT_TRUE(client.waitClosed(id));
  EXPECT_EQ(client.response(id).status, 431);
  EXPECT_TRUE(client.response(id).ended);
  EXPECT_EQ(client.response(id).cause, http::H2CloseCause::kResetByPeer);
  EXPECT_EQ(client.response(id).code, http::H2ErrorCode::kNoError);

  EXPECT_EQ(origin_.requests().size(), 1u);
  EXPECT_EQ(replies(LocalReplyReason::kHeadersTooLarge), 1u);
  EXPECT_EQ(proxy_->spans().size(), 1u);  // refused before any observer: no span
}

TEST_F(H2RequestChecksTest, HeaderCountAtTheLimitIsForwardedOnePastIs431) {
  start([](proxy::DataPathSettings& s) { s.request_limits.max_header_count = 10; });
  const auto withFields = [&](size_t n) {
    http::H2Head head = requestHead("GET", authority(), "/hello");
    for (size_t i = 0; i < n; ++i) head.headers.add("x-field-" + std::to_string(i), "v");
    return head;
  };
  EXPECT_EQ(exchange(withFields(10)).status, 200);
  // Cookie crumbs count as the one field they are joined into.
  http::H2Head crumbs = withFields(8);
  for (const char* crumb : {"a=1", "b=2", "c=3"}) crumbs.headers.add("cookie", crumb);
  EXPECT_EQ(exchange(crumbs).status, 200);

  const H2TestClient::Response past = exchange(withFields(11));
  EXPECT_EQ(past.status, 431);
  EXPECT_EQ(past.body, "too many header fields\n");
  EXPECT_EQ(origin_.requests().size(), 2u);
  EXPECT_EQ(replies(LocalReplyReason::kTooManyHeaders), 1u);
  ASSERT_TRUE(proxy_->waitForRequests(2));
  EXPECT_EQ(proxy_->spans().size(), 2u);
}

// The field count holds for trailers too; one past it, the request never ends at the origin.
TEST_F(H2RequestChecksTest, TrailerCountAtTheLimitIsForwardedOnePastIs431) {
  start([](proxy::DataPathSettings& s) { s.request_limits.max_header_count = 10; });
  const auto post = [&](size_t trailer_fields) {
    H2TestClient client(proxy_->port());
    EXPECT_TRUE(client.ok());
    const int32_t id = client.open(requestHead("POST", authority(), "/echo"));
    client.sendData(id, "body", false);
    Fields trailers;
    for (size_t i = 0; i < trailer_fields; ++i) {
      trailers.emplace_back("x-trailer-" + std::to_string(i), "v");
    }
    client.sendTrailers(id, trailers);
    EXPECT_TRUE(client.waitClosed(id));
    return client.response(id);
  };
  const H2TestClient::Response at = post(10);
  EXPECT_EQ(at.status, 200);
  EXPECT_EQ(at.body, "body");
  ASSERT_EQ(origin_.requests().size(), 1u);
  EXPECT_EQ(origin_.requests()[0].trailers.size(), 10u);

  const H2TestClient::Response past = post(11);
  EXPECT_EQ(past.status, 431);
  EXPECT_EQ(past.body, "too many trailer fields\n");
  EXPECT_EQ(replies(LocalReplyReason::kTooManyHeaders), 1u);
  // It never ended at the origin: the next request is the second the origin sees.
  EXPECT_EQ(post(0).status, 200);
  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].trailers.size(), 0u);
}

TEST_F(H2RequestChecksTest, PathAtTheUriLimitIsForwardedOnePastIs414) {
  constexpr size_t kLimit = 64;
  start([](proxy::DataPathSettings& s) { s.request_limits.max_uri_length = kLimit; });
  const auto pathOf = [](size_t n) {
    std::string path = "/hello?q=";
    path.resize(n, 'x');
    return path;
  };
  EXPECT_EQ(exchange(requestHead("GET", authority(), pathOf(kLimit))).status, 200);
  const H2TestClient::Response past = exchange(requestHead("GET", authority(), pathOf(kLimit + 1)));
  EXPECT_EQ(past.status, 414);
  ASSERT_EQ(origin_.requests().size(), 1u);
  EXPECT_EQ(origin_.requests()[0].path, pathOf(kLimit));
  EXPECT_EQ(replies(LocalReplyReason::kUriTooLong), 1u);
}

// ---- the authority ----

TEST_F(H2RequestChecksTest, UserinfoInAuthorityIs400AndNeverForwarded) {
  start();
  const H2TestClient::Response r =
      exchange(requestHead("GET", "user:pw@" + authority(), "/hello"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "invalid :authority\n");
  EXPECT_TRUE(origin_.requests().empty());
  EXPECT_EQ(replies(LocalReplyReason::kBadRequest), 1u);
  EXPECT_EQ(proxy_->spans().size(), 0u);
}

TEST_F(H2RequestChecksTest, UserinfoInOutboundAuthorityNeverReachesASpan) {
  start();
  const std::string outbound = authority(ListenerRole::kOutbound);
  EXPECT_EQ(exchange(requestHead("GET", "user:pw@" + outbound, "/hello"), ListenerRole::kOutbound)
                .status,
            400);
  EXPECT_EQ(exchange(requestHead("GET", outbound, "/hello"), ListenerRole::kOutbound).status, 200);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  std::this_thread::sleep_for(100ms);
  const std::vector<exporter::SpanRecord> spans = proxy_->spans().spans();
  ASSERT_EQ(spans.size(), 1u);  // the good request's CLIENT span only
  for (const exporter::Attribute& a : spans[0].attributes.items()) {
    if (const auto* text = std::get_if<std::string>(&a.value)) {
      EXPECT_EQ(text->find("pw"), std::string::npos) << a.key;
    }
  }
  EXPECT_EQ(origin_.requests().size(), 1u);
  EXPECT_EQ(replies(LocalReplyReason::kBadRequest, ListenerRole::kOutbound), 1u);
}

TEST_F(H2RequestChecksTest, HostDifferentFromAuthorityIs400) {
  start();
  http::H2Head head = requestHead("GET", authority(), "/hello");
  head.headers.add("host", "elsewhere.example:80");
  const H2TestClient::Response r = exchange(head);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "host differs from :authority\n");
  EXPECT_TRUE(origin_.requests().empty());
  EXPECT_EQ(replies(LocalReplyReason::kBadRequest), 1u);

  // Two host fields: the codec resets the stream as malformed.
  http::H2Head two = requestHead("GET", authority(), "/hello");
  two.headers.add("host", authority());
  two.headers.add("host", authority());
  const H2TestClient::Response reset = exchange(two);
  EXPECT_EQ(reset.status, 0);
  EXPECT_EQ(reset.cause, http::H2CloseCause::kResetByPeer);
  EXPECT_EQ(reset.code, http::H2ErrorCode::kProtocolError);
  EXPECT_TRUE(origin_.requests().empty());
}

// RFC 9113 section 8.3.1: :path is origin-form. With a scheme other than http or https, the
// codec does not check it: an absolute-form :path would name a second authority (and the
// request line would carry it past :authority).
TEST_F(H2RequestChecksTest, APathThatIsNotOriginFormIs400) {
  start();
  for (const char* path : {"http://evil.example/x", "evil.example:80"}) {
    http::H2Head head = requestHead("GET", authority(), path);
    head.scheme = "foo";
    const H2TestClient::Response r = exchange(head);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_EQ(r.body, "invalid :path\n") << path;
  }
  EXPECT_TRUE(origin_.requests().empty());
  EXPECT_EQ(replies(LocalReplyReason::kBadRequest), 2u);
  // "*" for OPTIONS stays valid: forwarded (the origin knows no such endpoint).
  http::H2Head options = requestHead("OPTIONS", authority(), "*");
  options.scheme = "foo";
  EXPECT_EQ(exchange(options).status, 404);
  EXPECT_EQ(origin_.requests().size(), 1u);
}

// Request body bytes tracecar holds for a stream (its upstream cannot take them yet) go back to
// the client's connection window when the client resets the stream: otherwise, after a
// connection window's worth of such resets, nothing more could be uploaded on the connection.
TEST_F(H2RequestChecksTest, AStreamResetByTheClientGivesItsHeldBodyBackToTheConnectionWindow) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  proxy_ = std::make_unique<TranslationProxy>(silent.port(), UpstreamProtocol::kSame);
  ASSERT_TRUE(proxy_->status().ok()) << proxy_->status();
  H2TestClient client(proxy_->port(ListenerRole::kInbound));
  ASSERT_TRUE(client.ok());
  const std::string body(65535, 'b');  // one stream window
  // 16 of them fill tracecar's connection window (1 MiB) but 16 bytes.
  std::vector<int32_t> ids;
  for (int i = 0; i < 16; ++i) {
    const int32_t id = client.open(requestHead("POST", authority(), "/upload"));
    ASSERT_GT(id, 0);
    client.sendData(id, body, false);
    ASSERT_TRUE(client.waitSent(id, 5s)) << i;
    ids.push_back(id);
  }
  for (const int32_t id : ids) client.reset(id, http::H2ErrorCode::kCancel);
  // The window is back: a new stream's window of body goes out at once.
  const int32_t next = client.open(requestHead("POST", authority(), "/upload"));
  ASSERT_GT(next, 0);
  client.sendData(next, body, false);
  EXPECT_TRUE(client.waitSent(next, 3s));
}

// limits.response.* hold for an HTTP/2 app's answers as for an HTTP/1.1 app's: 502 past them.
TEST_F(H2RequestChecksTest, AnHttp2AppsAnswerPastTheResponseLimitsIs502) {
  start([](proxy::DataPathSettings& s) {
    s.response_limits.max_header_count = 10;
    s.response_limits.max_header_bytes = 1024;
  });
  // x-origin and 9 more: 10 fields, at the limit; 11 past it.
  EXPECT_EQ(exchange(requestHead("GET", authority(), "/fields?n=9")).status, 200);
  const H2TestClient::Response count = exchange(requestHead("GET", authority(), "/fields?n=10"));
  EXPECT_EQ(count.status, 502);
  EXPECT_EQ(count.body, "upstream response header too large\n");
  // As RFC 9113 counts: :status 42, x-origin 42, x-pad 37 + its length: 1024 with 903.
  EXPECT_EQ(exchange(requestHead("GET", authority(), "/fields?pad=903")).status, 200);
  EXPECT_EQ(exchange(requestHead("GET", authority(), "/fields?pad=904")).status, 502);
  EXPECT_EQ(replies(LocalReplyReason::kResponseTooLarge), 2u);
}

TEST_F(H2RequestChecksTest, HostAgreeingWithAuthorityGoesOnAsTheAuthority) {
  start();
  http::H2Head head = requestHead("GET", "app.example:8080", "/hello");
  head.headers.add("host", "APP.example:8080");  // the same host: case does not matter
  EXPECT_EQ(exchange(head).status, 200);
  // Host alone names the target when :authority is absent.
  http::H2Head host_only = requestHead("GET", "", "/hello");
  host_only.headers.add("host", "other.example:81");
  EXPECT_EQ(exchange(host_only).status, 200);

  const std::vector<OriginRequest> seen = origin_.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].authority, "app.example:8080");
  EXPECT_EQ(fieldOf(seen[0].headers, "host"), std::nullopt);
  EXPECT_EQ(seen[1].authority, "other.example:81");
}

TEST(H2RequestChecksHttp1AppTest, AuthorityIsTheHostOfAnHttp1App) {
  OriginServer app;
  TranslationProxy proxy(app.port(), UpstreamProtocol::kHttp1);
  ASSERT_TRUE(proxy.status().ok()) << proxy.status();
  H2TestClient client(proxy.port());
  http::H2Head head = requestHead("GET", "app.example:8080", "/echo");
  head.headers.add("host", "APP.EXAMPLE:8080");
  const int32_t id = client.submit(head);
  ASSERT_TRUE(client.waitClosed(id));
  ASSERT_EQ(client.response(id).status, 200);
  const Json echo = parseJson(client.response(id).body).value_or(Json{});
  EXPECT_EQ(echoedHeader(echo, "host"), "app.example:8080");

  http::H2Head differing = requestHead("GET", "app.example:8080", "/echo");
  differing.headers.add("host", "other.example");
  const int32_t refused = client.submit(differing);
  ASSERT_TRUE(client.waitClosed(refused));
  EXPECT_EQ(client.response(refused).status, 400);
}

// ---- CONNECT ----

TEST_F(H2RequestChecksTest, ConnectIsAnswered501AndCountedAsNotImplemented) {
  start();
  http::H2Head head;
  head.method = "CONNECT";
  head.authority = "example.com:443";
  EXPECT_EQ(exchange(head).status, 501);
  EXPECT_EQ(replies(LocalReplyReason::kNotImplemented), 1u);
  EXPECT_EQ(replies(LocalReplyReason::kBadRequest), 0u);
  EXPECT_TRUE(origin_.requests().empty());
}

// ---- streams and connections left hanging ----

// A raw client: the preface, an empty SETTINGS, then the bytes given.
struct RawH2 {
  explicit RawH2(uint16_t port) : fd(connectLoopback(port)) {}
  ~RawH2() {
    if (fd >= 0) ::close(fd);
  }
  bool send(std::string_view bytes) const { return writeAll(fd, bytes); }
  // Reads until the peer closes (true) or timeout; notes whether a GOAWAY came.
  bool readUntilClosed(std::chrono::milliseconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    std::string in;
    while (std::chrono::steady_clock::now() < give_up) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return true;
      in.append(buf, static_cast<size_t>(n));
      while (in.size() >= 9) {
        const size_t length = (static_cast<size_t>(static_cast<uint8_t>(in[0])) << 16) |
                              (static_cast<size_t>(static_cast<uint8_t>(in[1])) << 8) |
                              static_cast<uint8_t>(in[2]);
        if (in.size() < 9 + length) break;
        if (static_cast<uint8_t>(in[3]) == h2wire::kGoaway) goaway = true;
        in.erase(0, 9 + length);
      }
    }
    return false;
  }
  int fd = -1;
  bool goaway = false;
};

// A GET whose HEADERS frame lacks END_HEADERS: the CONTINUATION that would end it never comes.
std::string unfinishedHeaderBlock() {
  using namespace h2wire;
  return std::string(kPreface) + frame(kSettings, 0, 0, "") +
         frame(kHeaders, kEndStream, 1, "\x82\x86" + literalIndexedName(4, "/hello"));
}

TEST_F(H2RequestChecksTest, HeaderBlockThatNeverEndsIsCutAtTheRequestHeaderTimeout) {
  start([](proxy::DataPathSettings& s) { s.timeouts.header_read = 300ms; });
  RawH2 client(proxy_->port());
  ASSERT_TRUE(client.send(unfinishedHeaderBlock()));
  EXPECT_TRUE(client.readUntilClosed(10s));
  EXPECT_TRUE(client.goaway);
  EXPECT_EQ(proxy_->counters().timeoutCount(DataPathTimeout::kHeaderRead), 1u);
  EXPECT_TRUE(origin_.requests().empty());
}

TEST_F(H2RequestChecksTest, ConnectionWithAStreamHangingAfterTheIdleGoawayClosesAfterTheLinger) {
  start([](proxy::DataPathSettings& s) {
    s.timeouts.header_read = 60s;  // out of the way: the idle GOAWAY and the linger end it
    s.timeouts.downstream_idle = 300ms;
    s.timeouts.linger = 300ms;
  });
  RawH2 client(proxy_->port());
  ASSERT_TRUE(client.send(unfinishedHeaderBlock()));
  EXPECT_TRUE(client.readUntilClosed(10s));
  EXPECT_TRUE(client.goaway);
  EXPECT_EQ(proxy_->counters().timeoutCount(DataPathTimeout::kDownstreamIdle), 1u);
  EXPECT_EQ(proxy_->counters().timeoutCount(DataPathTimeout::kHeaderRead), 0u);
}

TEST_F(H2RequestChecksTest, AnswerBeforeTheRequestEndedIsFollowedByResetNoErrorAndIdleApplies) {
  start([](proxy::DataPathSettings& s) {
    s.timeouts.upstream_response = 300ms;
    s.timeouts.downstream_idle = 500ms;
  });
  H2TestClient client(proxy_->port());
  const int32_t id = client.open(requestHead("POST", authority(), "/never"));
  client.sendData(id, "part of a body that never ends", false);
  ASSERT_TRUE(client.waitClosed(id));
  const H2TestClient::Response& r = client.response(id);
  EXPECT_EQ(r.status, 408);  // the client stopped sending its body: its wait, not the app's
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.cause, http::H2CloseCause::kResetByPeer);
  EXPECT_EQ(r.code, http::H2ErrorCode::kNoError);
  ASSERT_TRUE(proxy_->waitForRequests(1));
  EXPECT_FALSE(proxy_->recorder().streams()[0].stats->aborted);  // the exchange was complete
  // The stream is closed: the connection idles out like any other.
  EXPECT_TRUE(waitFor(
      [&] { return proxy_->counters().timeoutCount(DataPathTimeout::kDownstreamIdle) == 1; }));
}

}  // namespace
}  // namespace tracecar::integration
