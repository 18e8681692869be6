#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "http/http1_parser.h"
#include "proxy/upstream_selector.h"

namespace tracecar::proxy {
namespace {

struct Request {
  http::Http1Head head;
  RequestTargetParts target;
};

Request request(std::string method, std::string target, std::string host = "") {
  Request r;
  r.head.method = std::move(method);
  r.head.target = std::move(target);
  if (!host.empty()) r.head.headers.add("Host", host);
  r.target = *parseRequestTarget(r.head.method, r.head.target);
  return r;
}

PeerInfo listenerAt(std::string address, uint16_t port) {
  PeerInfo peer;
  peer.listener = ListenerRole::kOutbound;
  peer.local_address = std::move(address);
  peer.local_port = port;
  return peer;
}

std::variant<UpstreamRoute, LocalReply> select(UpstreamSelector& selector, const Request& r,
                                               const PeerInfo& peer = listenerAt("127.0.0.1",
                                                                                 15001)) {
  return selector.select(r.head, r.target, peer);
}

TEST(UpstreamTarget, KeyBracketsIpv6) {
  EXPECT_EQ((UpstreamTarget{"10.0.0.1", 80}).key(), "10.0.0.1:80");
  EXPECT_EQ((UpstreamTarget{"::1", 8080}).key(), "[::1]:8080");
  EXPECT_EQ((UpstreamTarget{"app.local", 1}).key(), "app.local:1");
}

TEST(FixedUpstreamSelector, SendsEverythingToItsTarget) {
  FixedUpstreamSelector selector({"127.0.0.1", 8080});
  const auto choice = select(selector, request("GET", "http://elsewhere:9/x", "elsewhere:9"));
  ASSERT_TRUE(std::holds_alternative<UpstreamRoute>(choice));
  const UpstreamRoute& route = std::get<UpstreamRoute>(choice);
  EXPECT_EQ(route.target, (UpstreamTarget{"127.0.0.1", 8080}));
  EXPECT_FALSE(route.terminate_connect);
}

TEST(HostUpstreamSelector, AbsoluteFormNamesTheUpstream) {
  HostUpstreamSelector selector;
  const auto with_port = select(selector, request("GET", "http://api.local:8081/x", "stale"));
  ASSERT_TRUE(std::holds_alternative<UpstreamRoute>(with_port));
  EXPECT_EQ(std::get<UpstreamRoute>(with_port).target, (UpstreamTarget{"api.local", 8081}));
  const auto default_port = select(selector, request("GET", "http://[::1]/x", "[::1]"));
  ASSERT_TRUE(std::holds_alternative<UpstreamRoute>(default_port));
  EXPECT_EQ(std::get<UpstreamRoute>(default_port).target, (UpstreamTarget{"::1", 80}));
}

TEST(HostUpstreamSelector, OnlyHttpAbsoluteTargets) {
  HostUpstreamSelector selector;
  const auto choice = select(selector, request("GET", "https://api.local/x", "api.local"));
  ASSERT_TRUE(std::holds_alternative<LocalReply>(choice));
  EXPECT_EQ(std::get<LocalReply>(choice).status, 400);
  EXPECT_EQ(std::get<LocalReply>(choice).code, LocalReplyReason::kBadRequest);
}

TEST(HostUpstreamSelector, OriginFormUsesHost) {
  HostUpstreamSelector selector;
  const auto choice = select(selector, request("GET", "/x", "api.local:7000"));
  ASSERT_TRUE(std::holds_alternative<UpstreamRoute>(choice));
  EXPECT_EQ(std::get<UpstreamRoute>(choice).target, (UpstreamTarget{"api.local", 7000}));
  const auto no_host = select(selector, request("GET", "/x"));
  ASSERT_TRUE(std::holds_alternative<LocalReply>(no_host));
  EXPECT_EQ(std::get<LocalReply>(no_host).status, 400);
}

TEST(HostUpstreamSelector, ConnectIsTerminatedHere) {
  HostUpstreamSelector selector;
  const auto choice = select(selector, request("CONNECT", "api.local:443", "api.local:443"));
  ASSERT_TRUE(std::holds_alternative<UpstreamRoute>(choice));
  EXPECT_TRUE(std::get<UpstreamRoute>(choice).terminate_connect);
  EXPECT_EQ(std::get<UpstreamRoute>(choice).target, (UpstreamTarget{"api.local", 443}));
}

TEST(HostUpstreamSelector, RefusesToLoopBackToItsOwnListener) {
  HostUpstreamSelector selector;
  for (const char* host : {"127.0.0.1:15001", "localhost:15001", "127.0.0.2:15001"}) {
    const auto choice = select(selector, request("GET", "/x", host));
    ASSERT_TRUE(std::holds_alternative<LocalReply>(choice)) << host;
    EXPECT_EQ(std::get<LocalReply>(choice).status, 508) << host;
    EXPECT_EQ(std::get<LocalReply>(choice).code, LocalReplyReason::kLoopDetected);
  }
  // Another port, or a listener on a routable address asked for loopback, is fine.
  EXPECT_TRUE(std::holds_alternative<UpstreamRoute>(
      select(selector, request("GET", "/x", "127.0.0.1:15002"))));
  EXPECT_TRUE(std::holds_alternative<UpstreamRoute>(select(
      selector, request("GET", "/x", "127.0.0.1:15001"), listenerAt("10.1.2.3", 15001))));
  // A listener on every address is reached through loopback too.
  EXPECT_TRUE(std::holds_alternative<LocalReply>(select(
      selector, request("GET", "/x", "[::1]:15001"), listenerAt("0.0.0.0", 15001))));
}

TEST(MakeUpstreamSelector, FollowsTheSettings) {
  DataPathSettings settings;
  settings.app = {"127.0.0.1", 9000};
  auto inbound = makeUpstreamSelector(settings, ListenerRole::kInbound);
  const auto to_app = select(*inbound, request("GET", "/x", "whatever:1"));
  EXPECT_EQ(std::get<UpstreamRoute>(to_app).target, (UpstreamTarget{"127.0.0.1", 9000}));

  auto host_mode = makeUpstreamSelector(settings, ListenerRole::kOutbound);
  const auto to_host = select(*host_mode, request("GET", "/x", "whatever:1"));
  EXPECT_EQ(std::get<UpstreamRoute>(to_host).target, (UpstreamTarget{"whatever", 1}));

  settings.outbound_mode = DataPathSettings::OutboundMode::kUpstream;
  settings.outbound_upstream = {"egress.local", 3128};
  auto fixed = makeUpstreamSelector(settings, ListenerRole::kOutbound);
  const auto to_fixed = select(*fixed, request("GET", "/x", "whatever:1"));
  EXPECT_EQ(std::get<UpstreamRoute>(to_fixed).target, (UpstreamTarget{"egress.local", 3128}));
}

}  // namespace
}  // namespace tracecar::proxy
