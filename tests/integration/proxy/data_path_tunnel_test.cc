// The outbound listener as the app's HTTP proxy, and the byte tunnels: CONNECT, Upgrade.

#include <gtest/gtest.h>

#include <string>

#include "integration/proxy/data_path_fixture.h"

namespace tracecar::integration {
namespace {

using proxy::ListenerRole;
using proxy::LocalReplyReason;

Json echoOf(const RawResponse& response) { return parseJson(response.body).value_or(Json{}); }

class DataPathTunnelTest : public DataPathTest {
 protected:
  std::string proxyUrl() const { return "http://127.0.0.1:" + std::to_string(outboundPort()); }
  // CONNECT to the origin through the outbound listener: is the tunnel established (200)?
  bool connectToOrigin(RawConnection& c) {
    if (!c.send("CONNECT 127.0.0.1:" + std::to_string(origin_.port()) +
                " HTTP/1.1\r\nHost: x\r\n\r\n")) {
      return false;
    }
    const std::optional<RawResponse> established = c.readResponse(/*head_request=*/true);
    return established && established->status == 200;
  }
};

// ---- outbound ----

TEST_F(DataPathTunnelTest, OutboundForwardsAbsoluteFormAsOriginForm) {
  startProxyObserved(settings());
  const ProcessResult r = curl({"-x", proxyUrl(), "-H", "Proxy-Authorization: Basic dTpw",
                                originUrl("/echo?x=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["target"].text, "/echo?x=1");
  EXPECT_EQ(echoedHeader(echo, "host"), "127.0.0.1:" + std::to_string(origin_.port()));
  EXPECT_EQ(echoedHeader(echo, "proxy-connection"), std::nullopt);
  EXPECT_EQ(echoedHeader(echo, "proxy-authorization"), std::nullopt);
  EXPECT_EQ(counters().requests_total[static_cast<size_t>(ListenerRole::kOutbound)], 1u);
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  const proxy::RecordedStream stream = recorder_->streams()[0];
  EXPECT_EQ(stream.listener, ListenerRole::kOutbound);
  EXPECT_EQ(stream.target, originUrl("/echo?x=1"));  // observers see the target as received
}

TEST_F(DataPathTunnelTest, OutboundAbsoluteFormReplacesAStaleHost) {
  startProxy();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET " + originUrl("") + " HTTP/1.1\r\nHost: elsewhere\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);  // the origin's answer for "/"
  EXPECT_EQ(origin_.stats()["targets"][0].text, "GET /");
}

TEST_F(DataPathTunnelTest, OutboundOriginFormGoesToTheHostHeader) {
  startProxy();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(origin_.port()) +
                     "\r\nProxy-Authorization: Basic dTpw\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  // Origin-form: the client did not address tracecar as its proxy; the field is not for us.
  EXPECT_EQ(echoedHeader(echoOf(*response), "proxy-authorization"), "Basic dTpw");
}

TEST_F(DataPathTunnelTest, OutboundRefusesNonHttpAbsoluteTargets) {
  startProxy();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET https://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->body, "only http:// targets are forwarded; use CONNECT for others\n");
}

TEST_F(DataPathTunnelTest, OutboundRefusesToForwardToItself) {
  startProxy();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(outboundPort()) +
                     "\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 508);
  EXPECT_EQ(counters().localReplies(ListenerRole::kOutbound, LocalReplyReason::kLoopDetected), 1u);
}

TEST_F(DataPathTunnelTest, OutboundFixedUpstreamModeIgnoresTheRequestedHost) {
  proxy::DataPathSettings s = settings();
  s.outbound_mode = proxy::DataPathSettings::OutboundMode::kUpstream;
  s.outbound_upstream = {"127.0.0.1", origin_.port()};
  startProxy(s);
  const ProcessResult r =
      curl({"-x", proxyUrl(), "http://somewhere.invalid:8080/echo?fixed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["target"].text, "/echo?fixed");
  EXPECT_EQ(echoedHeader(echo, "host"), "somewhere.invalid:8080");
}

// Each destination has its own idle connections: requests alternating between two origins
// each reuse the one connection to theirs, never the other's.
TEST_F(DataPathTunnelTest, OutboundKeepsEachDestinationsConnectionsApart) {
  OriginServer other;
  ASSERT_NE(other.port(), 0);
  startProxy();
  const std::string other_url = "http://127.0.0.1:" + std::to_string(other.port());
  for (int i = 0; i < 6; ++i) {
    const bool first = i % 2 == 0;
    const std::string url = (first ? originUrl("/echo") : other_url + "/echo") + "?i=" +
                            std::to_string(i);
    const ProcessResult r = curl({"-x", proxyUrl(), url});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json echo = parseJson(r.out).value_or(Json{});
    EXPECT_EQ(echo["target"].text, "/echo?i=" + std::to_string(i));
    EXPECT_EQ(echoedHeader(echo, "host"),
              "127.0.0.1:" + std::to_string(first ? origin_.port() : other.port()));
    EXPECT_EQ(echo["connection"].number(), 1) << i;
    EXPECT_EQ(echo["request_number"].number(), i / 2 + 1) << i;
  }
  EXPECT_EQ(counters().upstream_connects, 2u);
  EXPECT_EQ(counters().upstream_reuses, 4u);
}

// ---- CONNECT ----

TEST_F(DataPathTunnelTest, ConnectThroughTheOutboundListenerIsATunnel) {
  startProxyObserved(settings());
  // curl -p: CONNECT to the origin, then plain HTTP through the tunnel.
  const ProcessResult r = curl({"-p", "-x", proxyUrl(), originUrl("/echo?tunnelled")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json echo = parseJson(r.out).value_or(Json{});
  EXPECT_EQ(echo["target"].text, "/echo?tunnelled");
  EXPECT_EQ(counters().tunnels, 1u);
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  const proxy::RecordedStream stream = recorder_->streams()[0];
  EXPECT_EQ(stream.method, "CONNECT");
  EXPECT_EQ(stream.response_status, 200);
  EXPECT_TRUE(stream.stats->tunnel);
  EXPECT_GT(stream.stats->tunnel_bytes_upstream, 0u);
  EXPECT_GT(stream.stats->tunnel_bytes_downstream, 0u);
  // The origin saw the tunnelled request only, never the CONNECT.
  EXPECT_EQ(origin_.requests(), 1);
}

TEST_F(DataPathTunnelTest, ConnectTunnelRespectsHalfClose) {
  startProxy();
  RawConnection c(outboundPort());
  ASSERT_TRUE(connectToOrigin(c));
  // One request, then our FIN: the answer still comes back through the half-closed tunnel.
  ASSERT_TRUE(c.send("GET /status/203 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  c.shutdownWrite();
  const std::string rest = c.readUntilClose();
  EXPECT_EQ(rest.rfind("HTTP/1.1 203", 0), 0u) << rest;
}

// timeouts.tunnel_idle: a tunnel in use stays open; one with no byte either way for that long
// is closed, both sides, and counted.
TEST_F(DataPathTunnelTest, AnIdleTunnelIsClosedAndABusyOneIsNot) {
  proxy::DataPathSettings s = settings();
  s.timeouts.tunnel_idle = 400ms;
  startProxy(std::move(s));
  RawConnection c(outboundPort());
  ASSERT_TRUE(connectToOrigin(c));
  // Busy for three times the timeout: a request through the tunnel every 150 ms.
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(150ms);
    ASSERT_TRUE(c.send("GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::optional<RawResponse> r = c.readResponse();
    ASSERT_TRUE(r) << "round " << i;
    EXPECT_EQ(r->status, 204);
  }
  EXPECT_EQ(counters().timeoutCount(proxy::DataPathTimeout::kTunnelIdle), 0u);
  // Then silent from the last byte: closed, not before the timeout (less the read's own time).
  const auto silent = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closedByPeer(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - silent, 300ms);
  EXPECT_TRUE(eventually(
      [&] { return counters().timeoutCount(proxy::DataPathTimeout::kTunnelIdle) == 1; }));
}

TEST_F(DataPathTunnelTest, ATunnelIdleTimeoutOfZeroNeverCloses) {
  proxy::DataPathSettings s = settings();
  s.timeouts.tunnel_idle = 0ms;
  startProxy(std::move(s));
  RawConnection c(outboundPort());
  ASSERT_TRUE(connectToOrigin(c));
  EXPECT_FALSE(c.closedByPeer(600ms));
  ASSERT_TRUE(c.send("GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
}

TEST_F(DataPathTunnelTest, ConnectToAClosedPortIs502) {
  startProxy();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 502);
  EXPECT_TRUE(c.closedByPeer());
}

TEST_F(DataPathTunnelTest, InboundConnectIsForwardedAndTunnelledAfterThe2xx) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("CONNECT app.local:9 HTTP/1.1\r\nHost: app.local:9\r\n\r\n"));
  const std::optional<RawResponse> established = c.readResponse(/*head_request=*/true);
  ASSERT_TRUE(established);
  EXPECT_EQ(established->status, 200);
  ASSERT_TRUE(c.send("ping"));
  EXPECT_EQ(c.readExactly(4), "ping");
  c.shutdownWrite();
  EXPECT_TRUE(c.closedByPeer());
  EXPECT_EQ(origin_.stats()["targets"][0].text, "CONNECT app.local:9");
}

// ---- Upgrade ----

TEST_F(DataPathTunnelTest, WebSocketUpgradeBecomesATunnel) {
  startProxyObserved(settings());
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"));
  const std::optional<RawResponse> switching = c.readResponse();
  ASSERT_TRUE(switching);
  EXPECT_EQ(switching->status, 101);
  EXPECT_EQ(switching->header("upgrade"), "websocket");
  EXPECT_EQ(switching->header("connection"), "upgrade");
  // Bytes both ways, including ones that look like HTTP, and a large burst.
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.readExactly(18), "GET / HTTP/1.1\r\n\r\n");
  const std::string burst(300000, 'w');
  ASSERT_TRUE(c.send(burst));
  EXPECT_EQ(c.readExactly(burst.size()), burst);
  c.shutdownWrite();
  EXPECT_TRUE(c.closedByPeer());
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == 1; }));
  const proxy::RecordedStream stream = recorder_->streams()[0];
  EXPECT_EQ(stream.response_status, 101);
  EXPECT_TRUE(stream.stats->tunnel);
  EXPECT_FALSE(stream.stats->aborted);
  EXPECT_EQ(stream.stats->tunnel_bytes_upstream, 18 + burst.size());
  // The origin saw the upgrade request with its Upgrade and Connection options.
  EXPECT_EQ(counters().tunnels, 1u);
}

TEST_F(DataPathTunnelTest, WebSocketUpgradeWithCurlStyleHeaders) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                     "Upgrade: websocket\r\n\r\n"));
  // /echo does not switch: a plain answer, and the connection goes on as HTTP.
  const std::optional<RawResponse> refused = c.readResponse();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 200);
  const Json echo = echoOf(*refused);
  EXPECT_EQ(echoedHeader(echo, "upgrade"), "websocket");
  EXPECT_EQ(echoedHeader(echo, "connection"), "upgrade");
  ASSERT_TRUE(c.send("GET /status/202 HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> next = c.readResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 202);
  EXPECT_EQ(counters().tunnels, 0u);
}

TEST_F(DataPathTunnelTest, UpgradeNotListedInConnectionIsNotForwarded) {
  startProxy();
  RawConnection c(inboundPort());
  // Without the "upgrade" connection option, Upgrade is a hop-by-hop field like any other:
  // the origin sees no upgrade and refuses with 400.
  ASSERT_TRUE(c.send("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
}

// RFC 9110 section 8.6: no 1xx carries a Content-Length, a 101 included.
TEST_F(DataPathTunnelTest, SwitchingProtocolsGoesOnWithoutAContentLength) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /ws?cl=1 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\n\r\n"));
  const std::optional<RawResponse> switching = c.readResponse();
  ASSERT_TRUE(switching);
  EXPECT_EQ(switching->status, 101);
  EXPECT_EQ(switching->header("content-length"), std::nullopt);
  ASSERT_TRUE(c.send("ping"));
  EXPECT_EQ(c.readExactly(4), "ping");
}

// RFC 9110 section 7.8: a server switches only to a protocol the client offered.
TEST_F(DataPathTunnelTest, SwitchingToAProtocolNotOfferedIs502) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /ws?proto=h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 502);
  EXPECT_EQ(counters().tunnels, 0u);
  EXPECT_EQ(counters().upstream_failures, 1u);
}

// RFC 9110 section 7.8: an Upgrade in an HTTP/1.0 request is ignored: the origin sees none.
TEST_F(DataPathTunnelTest, UpgradeInAnHttp10RequestIsIgnored) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /ws HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->body, "not an upgrade\n");
  EXPECT_TRUE(c.closedByPeer());
}

TEST_F(DataPathTunnelTest, UnrequestedSwitchingProtocolsIs502) {
  startProxy();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("GET /switch HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 502);
  EXPECT_EQ(response->body, "malformed response from upstream\n");
  EXPECT_EQ(counters().tunnels, 0u);
  EXPECT_EQ(counters().upstream_failures, 1u);  // like any other bad answer
  // The connection goes on: the next request is answered.
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::optional<RawResponse> next = c.readResponse();
  ASSERT_TRUE(next) << "connection: " << response->header("connection").value_or("(none)");
  EXPECT_EQ(next->status, 200);
}

}  // namespace
}  // namespace tracecar::integration
