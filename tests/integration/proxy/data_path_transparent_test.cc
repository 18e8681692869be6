// Transparent mode on real sockets: the original destination (a stand-in lookup plays iptables),
// protocol sniffing, opaque tunnels, loop prevention and their counters.

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "integration/proxy/data_path_fixture.h"
#include "proxy/run_metrics.h"

namespace tracecar::integration {
namespace {

using proxy::ConnectionRefusal;
using proxy::ListenerRole;
using proxy::SniffedProtocol;
using proxy::TunnelDirection;

sockaddr_storage loopback(uint16_t port) {
  sockaddr_storage storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(port);
  v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return storage;
}

std::string randomBytes(size_t n, unsigned seed) {
  std::mt19937 random(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(random() & 0xff);
  return out;
}

// A raw TCP server on 127.0.0.1 for the tunnels: may speak first (and then close its side), then
// echoes what it reads (or only counts it) and answers the client's FIN with its own.
class TcpServer {
 public:
  struct Options {
    std::string greeting;                  // sent as soon as a connection is accepted
    bool shutdown_after_greeting = false;  // then FIN, and keep reading
    bool echo = true;
  };

  explicit TcpServer(Options options) : options_(std::move(options)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_storage address = loopback(0);
    socklen_t length = sizeof(sockaddr_in);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&address), length) != 0 ||
        ::listen(fd_, 16) != 0) {
      return;
    }
    sockaddr_in bound{};
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &length);
    port_ = ntohs(bound.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~TcpServer() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    for (std::thread& t : connections_) t.join();
    if (fd_ >= 0) ::close(fd_);
  }
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  uint16_t port() const { return port_; }
  size_t received() const { return received_.load(); }
  int accepted() const { return accepted_.load(); }

 private:
  void acceptLoop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      ++accepted_;
      connections_.emplace_back([this, client] { serve(client); });
    }
  }
  void serve(int fd) {
    if (!options_.greeting.empty()) sendAll(fd, options_.greeting);
    if (options_.shutdown_after_greeting) ::shutdown(fd, SHUT_WR);
    char buffer[65536];
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) {
        if (n == 0 && !options_.shutdown_after_greeting) ::shutdown(fd, SHUT_WR);
        break;
      }
      received_ += static_cast<size_t>(n);
      if (options_.echo && !options_.shutdown_after_greeting) {
        sendAll(fd, std::string_view(buffer, static_cast<size_t>(n)));
      }
    }
    // Lets the peer read what was sent before the close.
    std::this_thread::sleep_for(50ms);
    ::close(fd);
  }
  static void sendAll(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  Options options_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> received_{0};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;
};

// Where the stand-in for SO_ORIGINAL_DST says connections were going (none: not redirected).
struct FakeRedirect {
  std::mutex mutex;
  std::optional<sockaddr_storage> to;
  void set(std::optional<sockaddr_storage> destination) {
    std::lock_guard lock(mutex);
    to = destination;
  }
};

class DataPathTransparentTest : public DataPathTest {
 protected:
  // The proxy with the stand-in lookup; observed: a recorder watches every request.
  // A test that keeps the default sniff timeout is not about server-first protocols: a longer
  // one, so that a test thread slow to send its first bytes never looks like one.
  void startTransparent(proxy::DataPathSettings s, bool observed = false) {
    if (s.timeouts.sniff == proxy::DataPathSettings{}.timeouts.sniff) s.timeouts.sniff = 5s;
    proxy::DataPathHooks hooks;
    if (observed) {
      recorder_ = std::make_shared<proxy::StreamRecorder>();
      hooks.observers = [recorder = recorder_](size_t, ListenerRole) {
        return std::make_unique<proxy::RecordingStreamObserverFactory>(recorder);
      };
    }
    hooks.original_destination =
        [redirect = redirect_](int) -> absl::StatusOr<std::optional<sockaddr_storage>> {
      std::lock_guard lock(redirect->mutex);
      return redirect->to;
    };
    startProxy(std::move(s), std::move(hooks));
  }
  uint64_t sniffed(ListenerRole role, SniffedProtocol protocol) const {
    return counters().sniffedCount(role, protocol);
  }
  // Sends data, then FIN; everything that comes back until the proxy closes.
  static std::string roundTrip(RawConnection& c, const std::string& data) {
    std::thread writer([&c, &data] {
      c.send(data);
      c.shutdownWrite();
    });
    std::string back = c.readUntilClose(20s);
    writer.join();
    return back;
  }

  std::shared_ptr<FakeRedirect> redirect_ = std::make_shared<FakeRedirect>();
};

// ---- opaque tunnels ----

TEST_F(DataPathTransparentTest, InboundBinaryEchoIsByteExactWithHalfClose) {
  TcpServer echo({});
  proxy::DataPathSettings s = settings();
  s.app = {"127.0.0.1", echo.port()};
  startTransparent(s);
  // Not redirected: the inbound listener's tunnels go to the app. 2 MiB both ways, more than the
  // high-water marks hold.
  std::string data = randomBytes(2 << 20, 1);
  data[0] = '\0';  // surely not HTTP
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.ok());
  const std::string back = roundTrip(c, data);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data);
  ASSERT_TRUE(eventually([&] { return counters().connections_open[0] == 0; }));
  const proxy::DataPathSnapshot snapshot = counters();
  EXPECT_EQ(snapshot.sniffedCount(ListenerRole::kInbound, SniffedProtocol::kOther), 1u);
  EXPECT_EQ(snapshot.opaqueTunnels(ListenerRole::kInbound, SniffedProtocol::kOther), 1u);
  EXPECT_EQ(snapshot.opaqueBytes(ListenerRole::kInbound, SniffedProtocol::kOther,
                                 TunnelDirection::kToUpstream),
            data.size());
  EXPECT_EQ(snapshot.opaqueBytes(ListenerRole::kInbound, SniffedProtocol::kOther,
                                 TunnelDirection::kToDownstream),
            data.size());
  EXPECT_EQ(snapshot.tunnels, 0u);  // Upgrade / CONNECT tunnels only
  EXPECT_EQ(snapshot.requests_total[0], 0u);
  EXPECT_LT(snapshot.buffered_bytes_peak, 4 * 64 * 1024);
}

TEST_F(DataPathTransparentTest, OutboundRedirectedBinaryEchoGoesToTheOriginalDestination) {
  TcpServer echo({});
  redirect_->set(loopback(echo.port()));
  startTransparent(settings());
  const std::string data = "\x01\x02" + randomBytes(300000, 2);
  RawConnection c(outboundPort());
  const std::string back = roundTrip(c, data);
  EXPECT_TRUE(back == data) << back.size();
  EXPECT_EQ(echo.accepted(), 1);
  EXPECT_EQ(sniffed(ListenerRole::kOutbound, SniffedProtocol::kOther), 1u);
  EXPECT_EQ(counters().opaqueBytes(ListenerRole::kOutbound, SniffedProtocol::kOther,
                                   TunnelDirection::kToDownstream),
            data.size());
}

TEST_F(DataPathTransparentTest, UpstreamHalfCloseReachesTheClientWhichKeepsSending) {
  TcpServer server({"bye\n", /*shutdown_after_greeting=*/true, /*echo=*/false});
  redirect_->set(loopback(server.port()));
  proxy::DataPathSettings s = settings();
  s.timeouts.sniff = 50ms;
  startTransparent(s);
  RawConnection c(outboundPort());
  // The server speaks first and closes its side: the client reads the FIN, then still sends.
  EXPECT_EQ(c.readExactly(4), "bye\n");
  EXPECT_TRUE(c.closedByPeer(5s));
  const std::string data = randomBytes(100000, 3);
  ASSERT_TRUE(c.send(data));
  c.shutdownWrite();
  EXPECT_TRUE(eventually([&] { return server.received() == data.size(); }))
      << server.received();
  EXPECT_EQ(sniffed(ListenerRole::kOutbound, SniffedProtocol::kServerFirst), 1u);
}

TEST_F(DataPathTransparentTest, ServerSpeaksFirstOriginIsTunnelledAfterTheSniffTimeout) {
  TcpServer smtp({"220 ready\r\n"});
  redirect_->set(loopback(smtp.port()));
  proxy::DataPathSettings s = settings();
  s.timeouts.sniff = 50ms;
  startTransparent(s);
  RawConnection c(outboundPort());
  EXPECT_EQ(c.readExactly(11), "220 ready\r\n");
  ASSERT_TRUE(c.send("QUIT\r\n"));
  EXPECT_EQ(c.readExactly(6), "QUIT\r\n");
  EXPECT_EQ(sniffed(ListenerRole::kOutbound, SniffedProtocol::kServerFirst), 1u);
  EXPECT_EQ(counters().opaqueTunnels(ListenerRole::kOutbound, SniffedProtocol::kServerFirst), 1u);
}

TEST_F(DataPathTransparentTest, TlsBytesPassThroughUntouched) {
  TcpServer echo({});
  redirect_->set(loopback(echo.port()));
  startTransparent(settings());
  // A ClientHello's record header (handshake, TLS 1.0 record version), then anything.
  const std::string hello = std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) +
                            randomBytes(60000, 4);
  RawConnection c(outboundPort());
  const std::string back = roundTrip(c, hello);
  EXPECT_TRUE(back == hello);
  EXPECT_EQ(sniffed(ListenerRole::kOutbound, SniffedProtocol::kTls), 1u);
  EXPECT_EQ(counters().opaqueBytes(ListenerRole::kOutbound, SniffedProtocol::kTls,
                                   TunnelDirection::kToUpstream),
            hello.size());
}

TEST_F(DataPathTransparentTest, H2PrefaceGoesToTheHttp2DataPathAndIsCountedAsH2) {
  TcpServer echo({});
  proxy::DataPathSettings s = settings();
  s.app = {"127.0.0.1", echo.port()};
  startTransparent(s);
  // The preface and an empty SETTINGS frame, in two writes: the preface is sniffed across them.
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  const std::string settings_frame("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send(preface.substr(0, 5)));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c.send(preface.substr(5) + settings_frame));
  // tracecar itself answers, as an HTTP/2 server: its SETTINGS frame (type 4, stream 0) first.
  const std::string frame = c.readExactly(9);
  ASSERT_EQ(frame.size(), 9u);
  EXPECT_EQ(static_cast<unsigned char>(frame[3]), 0x04);
  EXPECT_EQ(frame.substr(5, 4), std::string(4, '\0'));
  EXPECT_EQ(sniffed(ListenerRole::kInbound, SniffedProtocol::kH2), 1u);
  EXPECT_EQ(sniffed(ListenerRole::kInbound, SniffedProtocol::kHttp1), 0u);
  EXPECT_EQ(counters().opaqueTunnels(ListenerRole::kInbound, SniffedProtocol::kH2), 0u);
  EXPECT_EQ(echo.accepted(), 0);  // nothing reached the app: no stream was opened
}

TEST_F(DataPathTransparentTest, TextProtocolThatIsNotHttpIsTunnelled) {
  TcpServer echo({});
  redirect_->set(loopback(echo.port()));
  startTransparent(settings());
  // An uppercase command and a space, like a method, but no HTTP version: Redis inline.
  RawConnection c(outboundPort());
  EXPECT_EQ(roundTrip(c, "SET key value\r\nGET key\r\n"), "SET key value\r\nGET key\r\n");
  EXPECT_EQ(sniffed(ListenerRole::kOutbound, SniffedProtocol::kOther), 1u);
}

// An opaque tunnel with no byte either way for timeouts.tunnel_idle is closed, as any tunnel.
TEST_F(DataPathTransparentTest, AnIdleOpaqueTunnelIsClosed) {
  TcpServer echo({});
  redirect_->set(loopback(echo.port()));
  proxy::DataPathSettings s = settings();
  s.timeouts.tunnel_idle = 300ms;
  startTransparent(s);
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("SET key value\r\n"));
  EXPECT_EQ(c.readExactly(15), "SET key value\r\n");
  EXPECT_TRUE(c.closedByPeer(5s));  // neither side closed: the idle timer did
  EXPECT_TRUE(eventually(
      [&] { return counters().timeoutCount(proxy::DataPathTimeout::kTunnelIdle) == 1; }));
}

TEST_F(DataPathTransparentTest, TunnelToAClosedPortResetsTheClient) {
  redirect_->set(loopback(1));
  startTransparent(settings());
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send(std::string("\x00\x01", 2)));
  EXPECT_TRUE(c.closedByPeer());
  EXPECT_TRUE(eventually([&] {
    return counters().refusals(ListenerRole::kOutbound, ConnectionRefusal::kUpstreamFailed) == 1;
  }));
}

TEST_F(DataPathTransparentTest, OutboundNonHttpWithNowhereToGoIsClosedAndCounted) {
  startTransparent(settings());  // not redirected, host mode: no destination for opaque bytes
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send(std::string("\x16\x03\x01\x00\x05hello", 10)));
  EXPECT_TRUE(c.closedByPeer());
  EXPECT_TRUE(eventually([&] {
    return counters().refusals(ListenerRole::kOutbound, ConnectionRefusal::kNoDestination) == 1;
  }));
  EXPECT_EQ(sniffed(ListenerRole::kOutbound, SniffedProtocol::kTls), 1u);
}

TEST_F(DataPathTransparentTest, SilentClientNotRedirectedIsNotServerFirst) {
  TcpServer smtp({"220 ready\r\n"});
  proxy::DataPathSettings s = settings();
  s.app = {"127.0.0.1", smtp.port()};
  s.timeouts.sniff = 20ms;
  startTransparent(s);
  // A client of tracecar's own port is an HTTP client, however slow: no tunnel after the sniff
  // timeout, and its request is answered.
  RawConnection c(inboundPort());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(smtp.accepted(), 0);
  ASSERT_TRUE(c.send("GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_FALSE(c.closedByPeer(300ms));
  EXPECT_EQ(sniffed(ListenerRole::kInbound, SniffedProtocol::kServerFirst), 0u);
}

// ---- HTTP on redirected connections ----

TEST_F(DataPathTransparentTest, RedirectedHttpGoesToTheOriginalDestinationWithItsHost) {
  redirect_->set(loopback(origin_.port()));
  startTransparent(settings(), /*observed=*/true);
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET /echo?a=1 HTTP/1.1\r\nHost: checkout.default.svc:8080\r\n\r\n"
                     "GET /status/201 HTTP/1.1\r\nHost: checkout.default.svc:8080\r\n\r\n"));
  const std::optional<RawResponse> first = c.readResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  const Json echo = parseJson(first->body).value_or(Json{});
  EXPECT_EQ(echo["target"].text, "/echo?a=1");
  EXPECT_EQ(echoedHeader(echo, "host"), "checkout.default.svc:8080");
  const std::optional<RawResponse> second = c.readResponse();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 201);
  // Sniffed once for the connection, not per request; each request observed (a CLIENT span).
  EXPECT_EQ(sniffed(ListenerRole::kOutbound, SniffedProtocol::kHttp1), 1u);
  EXPECT_EQ(counters().requests_total[static_cast<size_t>(ListenerRole::kOutbound)], 2u);
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 2; }));
}

TEST_F(DataPathTransparentTest, RedirectedAbsoluteFormIsForwardedAsReceived) {
  redirect_->set(loopback(origin_.port()));
  startTransparent(settings());
  // The app talks to a proxy of its own (redirected here): the target is meant for that proxy.
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET http://elsewhere.invalid/echo HTTP/1.1\r\nHost: elsewhere.invalid\r\n"
                     "Proxy-Authorization: Basic dTpw\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(origin_.stats()["targets"][0].text, "GET http://elsewhere.invalid/echo");
}

TEST_F(DataPathTransparentTest, RedirectedInboundGoesToTheAppHostAtTheOriginalPort) {
  redirect_->set(loopback(origin_.port()));
  proxy::DataPathSettings s = settings();
  s.app = {"127.0.0.1", 1};  // not where a redirected connection goes
  startTransparent(s);
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /status/202 HTTP/1.1\r\nHost: 192.0.2.2:8080\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 202);
}

TEST_F(DataPathTransparentTest, InboundAppModeIgnoresTheOriginalPort) {
  redirect_->set(loopback(1));
  proxy::DataPathSettings s = settings();
  s.inbound_mode = proxy::DataPathSettings::InboundMode::kApp;
  startTransparent(s);
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /status/202 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 202);
}

TEST_F(DataPathTransparentTest, SlowRequestLineOnARedirectedConnectionIsStillHttp) {
  redirect_->set(loopback(origin_.port()));
  proxy::DataPathSettings s = settings();
  s.timeouts.sniff = 300ms;
  startTransparent(s);
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GE"));
  std::this_thread::sleep_for(600ms);  // past the sniff timeout: bytes came, so not server-first
  ASSERT_TRUE(c.send("T /status/200 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(sniffed(ListenerRole::kOutbound, SniffedProtocol::kHttp1), 1u);
}

// ---- loop prevention ----

TEST_F(DataPathTransparentTest, ConnectionRedirectedFromTracecarItselfIsRefused) {
  startTransparent(settings());
  const uint16_t ports[] = {inboundPort(), outboundPort()};
  for (const uint16_t port : ports) {
    redirect_->set(loopback(port));
    for (const ListenerRole role : {ListenerRole::kInbound, ListenerRole::kOutbound}) {
      RawConnection c(role == ListenerRole::kInbound ? inboundPort() : outboundPort());
      c.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
      EXPECT_TRUE(c.closedByPeer());
    }
  }
  EXPECT_TRUE(eventually([&] {
    const proxy::DataPathSnapshot snapshot = counters();
    return snapshot.refusals(ListenerRole::kInbound, ConnectionRefusal::kLoop) == 2 &&
           snapshot.refusals(ListenerRole::kOutbound, ConnectionRefusal::kLoop) == 2;
  }));
  EXPECT_EQ(origin_.requests(), 0);
  EXPECT_EQ(counters().requests_total[0] + counters().requests_total[1], 0u);
}

TEST_F(DataPathTransparentTest, RedirectToAnotherOwnListenerIsALoop) {
  proxy::DataPathSettings s = settings();
  s.other_own_listeners.push_back({"127.0.0.1", 15999});  // say, the admin listener
  startTransparent(s);
  redirect_->set(loopback(15999));
  RawConnection c(outboundPort());
  EXPECT_TRUE(c.closedByPeer());
  EXPECT_TRUE(eventually([&] {
    return counters().refusals(ListenerRole::kOutbound, ConnectionRefusal::kLoop) == 1;
  }));
}

TEST_F(DataPathTransparentTest, InboundOriginalPortThatIsAnOwnListenerIsALoop) {
  startTransparent(settings());
  // Sent to some address at the outbound listener's port: forwarded to the app host (127.0.0.1)
  // at that port, it would come straight back.
  sockaddr_storage elsewhere = loopback(outboundPort());
  reinterpret_cast<sockaddr_in*>(&elsewhere)->sin_addr.s_addr = htonl(0xc0000202);  // 192.0.2.2
  redirect_->set(elsewhere);
  RawConnection c(inboundPort());
  EXPECT_TRUE(c.closedByPeer());
  EXPECT_TRUE(eventually([&] {
    return counters().refusals(ListenerRole::kInbound, ConnectionRefusal::kLoop) == 1;
  }));
}

// ---- /metrics ----

TEST_F(DataPathTransparentTest, CountersAppearOnMetrics) {
  TcpServer echo({});
  redirect_->set(loopback(echo.port()));
  startTransparent(settings());
  {
    RawConnection c(outboundPort());
    EXPECT_EQ(roundTrip(c, std::string("\x00zz", 3)), std::string("\x00zz", 3));
  }
  std::vector<prometheus::MetricFamily> families;
  proxy::addDataPathFigures(counters(), families);
  auto value = [&](std::string_view name,
                   std::vector<std::pair<std::string, std::string>> labels) -> double {
    for (const prometheus::MetricFamily& family : families) {
      if (family.name != name) continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        size_t matched = 0;
        for (const auto& [key, want] : labels) {
          for (const auto& label : metric.label) {
            if (label.name == key && label.value == want) ++matched;
          }
        }
        if (matched == labels.size()) return metric.counter.value;
      }
    }
    return -1;
  };
  EXPECT_EQ(value("tracecar_sniffed_connections_total",
                  {{"listener", "outbound"}, {"protocol", "other"}}),
            1);
  EXPECT_EQ(value("tracecar_opaque_tunnels_total",
                  {{"listener", "outbound"}, {"protocol", "other"}}),
            1);
  EXPECT_EQ(value("tracecar_opaque_tunnel_bytes_total",
                  {{"listener", "outbound"}, {"protocol", "other"}, {"direction", "to_upstream"}}),
            3);
  EXPECT_EQ(value("tracecar_opaque_tunnel_bytes_total", {{"listener", "outbound"},
                                                          {"protocol", "other"},
                                                          {"direction", "to_downstream"}}),
            3);
  EXPECT_EQ(value("tracecar_connections_refused_total",
                  {{"listener", "inbound"}, {"reason", "loop"}}),
            0);
}

}  // namespace
}  // namespace tracecar::integration
