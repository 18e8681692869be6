// TLS and per-destination settings: the configuration keys (tls:, upstreams.app_protocol,
// upstreams.destinations), destination patterns, the selector that applies them, and the
// certificate files' reload.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "http/http1_parser.h"
#include "proxy/config.h"
#include "proxy/config_print.h"
#include "proxy/reloading_tls_context.h"
#include "proxy/upstream_selector.h"
#include "support/scratch_dir.h"

namespace tracecar::proxy {
namespace {

CpuProbe oneCpu() {
  CpuProbe probe;
  probe.cgroup_root = "/nonexistent/cgroup";
  probe.proc_self_cgroup = "/nonexistent/proc/self/cgroup";
  probe.available_cpus = 1;
  return probe;
}

LoadedConfig load(const std::string& yaml, ConfigFlags flags = {}) {
  ConfigInputs inputs;
  inputs.env = exporter::mapEnvironment({});
  inputs.cpu = oneCpu();
  inputs.file_text = yaml;
  flags.config_file = "test.yaml";
  return loadConfig(flags, inputs);
}

std::string errors(const LoadedConfig& loaded) {
  std::string out;
  for (const std::string& e : loaded.errors) out += e + "\n";
  return out;
}

// ---- configuration ----

TEST(TlsConfig, DefaultsAreNoTlsAndSameProtocol) {
  const LoadedConfig loaded = load("");
  ASSERT_TRUE(loaded.ok()) << errors(loaded);
  EXPECT_FALSE(loaded.config.tls.inbound.enabled());
  EXPECT_EQ(loaded.config.tls.reload_interval, std::chrono::seconds(10));
  EXPECT_EQ(loaded.config.upstreams.app_protocol, UpstreamProtocol::kSame);
  EXPECT_TRUE(loaded.config.upstreams.destinations.empty());
  const std::string printed = formatEffectiveConfig(loaded);
  EXPECT_NE(printed.find("tls.inbound: none (TLS passes through)"), std::string::npos) << printed;
  EXPECT_NE(printed.find("upstreams.app_protocol: same"), std::string::npos) << printed;
}

TEST(TlsConfig, ReadsTerminationAndDestinations) {
  const LoadedConfig loaded = load(R"(
tls:
  inbound:
    cert_file: /etc/tracecar/tls.crt
    key_file: /etc/tracecar/tls.key
    client_ca_file: /etc/tracecar/clients.pem
  reload_interval: 500ms
upstreams:
  app_protocol: http1
  destinations:
    - match: API.Example.com:80
      protocol: h2
      tls:
        port: 443
        server_name: api.example.com
        ca_file: /etc/ssl/ca.pem
    - match: "*.svc.cluster.local"
      tls:
    - match: "[2001:db8::7]:8080"
      protocol: http1
)");
  ASSERT_TRUE(loaded.ok()) << errors(loaded);
  const ProxyConfig& c = loaded.config;
  EXPECT_EQ(c.tls.inbound.cert_file, "/etc/tracecar/tls.crt");
  EXPECT_EQ(c.tls.inbound.client_ca_file, "/etc/tracecar/clients.pem");
  EXPECT_EQ(c.tls.reload_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(c.upstreams.app_protocol, UpstreamProtocol::kHttp1);
  ASSERT_EQ(c.upstreams.destinations.size(), 3u);
  const DestinationConfig& api = c.upstreams.destinations[0];
  EXPECT_EQ(api.host, "api.example.com");
  EXPECT_EQ(api.port, 80);
  EXPECT_EQ(api.protocol, UpstreamProtocol::kHttp2);
  ASSERT_TRUE(api.tls);
  EXPECT_EQ(api.tls->port, 443);
  EXPECT_EQ(api.tls->server_name, "api.example.com");
  EXPECT_TRUE(api.tls->verify);
  const DestinationConfig& wildcard = c.upstreams.destinations[1];
  EXPECT_EQ(wildcard.host, "*.svc.cluster.local");
  EXPECT_FALSE(wildcard.port);
  ASSERT_TRUE(wildcard.tls);  // "tls:" alone: every default
  EXPECT_TRUE(wildcard.tls->ca_file.empty());
  const DestinationConfig& v6 = c.upstreams.destinations[2];
  EXPECT_EQ(v6.host, "2001:db8::7");
  EXPECT_EQ(v6.port, 8080);
  EXPECT_FALSE(v6.tls);
  const std::string printed = formatEffectiveConfig(loaded);
  EXPECT_NE(printed.find("upstreams.destinations[0].tls.port: 443"), std::string::npos)
      << printed;
  EXPECT_NE(printed.find("tls.reload_interval: 500ms"), std::string::npos) << printed;
}

TEST(TlsConfig, AlpnFollowsTheAppProtocolUnlessSet) {
  LoadedConfig loaded = load("");
  EXPECT_EQ(inboundAlpn(loaded.config), std::vector<std::string>{"http/1.1"});
  loaded = load("upstreams:\n  app_protocol: http1\n");
  EXPECT_EQ(inboundAlpn(loaded.config), (std::vector<std::string>{"h2", "http/1.1"}));
  loaded = load("upstreams:\n  app_protocol: h2\n");
  EXPECT_EQ(inboundAlpn(loaded.config), (std::vector<std::string>{"h2", "http/1.1"}));
  loaded = load("tls:\n  inbound:\n    cert_file: a\n    key_file: b\n    alpn: [h2]\n");
  ASSERT_TRUE(loaded.ok()) << errors(loaded);
  EXPECT_EQ(inboundAlpn(loaded.config), std::vector<std::string>{"h2"});
  loaded = load("tls:\n  inbound:\n    cert_file: a\n    key_file: b\n    alpn: [h3]\n");
  EXPECT_NE(errors(loaded).find("tls.inbound.alpn"), std::string::npos) << errors(loaded);
}

TEST(TlsConfig, ErrorsNameTheKey) {
  struct Case {
    const char* yaml;
    const char* want;
  } cases[] = {
      {"tls:\n  inbound:\n    cert_file: a.pem\n", "tls.inbound"},
      {"tls:\n  inbound:\n    client_ca_file: c.pem\n", "client_ca_file needs cert_file"},
      {"tls:\n  inbound:\n    cert_file: a\n    key_file: b\n    keyfile: c\n",
       "tls.inbound.keyfile"},
      {"tls:\n  reload_interval: 10ms\n", "at least 100ms"},
      {"upstreams:\n  app_protocol: h3\n", "must be same, http1 or h2, got \"h3\""},
      {"upstreams:\n  destinations: api.example.com\n", "must be a list of destinations"},
      {"upstreams:\n  destinations:\n    - protocol: h2\n", "needs match: HOST[:PORT]"},
      // Every entry's missing match is reported, whatever went wrong before it.
      {"upstreams:\n  destinations:\n    - match: a.example\n      protocol: h3\n"
       "    - protocol: h2\n",
       "upstreams.destinations[1]: needs match: HOST[:PORT]"},
      {"upstreams:\n  destinations:\n    - match: api.example.com:0\n", "out of range"},
      {"upstreams:\n  destinations:\n    - match: \"bad host\"\n", "not a valid host name"},
      {"upstreams:\n  destinations:\n    - match: a.example\n      tls:\n        port: 70000\n",
       "upstreams.destinations[0].tls.port"},
      {"upstreams:\n  destinations:\n    - match: a.example\n      tls:\n        cert_file: x\n",
       "cert_file and key_file"},
      {"upstreams:\n  destinations:\n    - match: a.example\n      tls:\n        verify: maybe\n",
       "upstreams.destinations[0].tls.verify"},
  };
  for (const Case& c : cases) {
    const LoadedConfig loaded = load(c.yaml);
    EXPECT_FALSE(loaded.ok()) << c.yaml;
    EXPECT_NE(errors(loaded).find(c.want), std::string::npos)
        << c.yaml << "\nwant: " << c.want << "\ngot: " << errors(loaded);
  }
}

TEST(TlsConfig, FlagsOverrideTheFile) {
  ConfigFlags flags;
  flags.app_protocol = "h2";
  flags.tls_cert = "/run/cert.pem";
  flags.tls_key = "/run/key.pem";
  const LoadedConfig loaded =
      load("tls:\n  inbound:\n    cert_file: a\n    key_file: b\n    client_ca_file: c\n", flags);
  ASSERT_TRUE(loaded.ok()) << errors(loaded);
  EXPECT_EQ(loaded.config.upstreams.app_protocol, UpstreamProtocol::kHttp2);
  EXPECT_EQ(loaded.config.tls.inbound.cert_file, "/run/cert.pem");
  EXPECT_EQ(loaded.config.tls.inbound.key_file, "/run/key.pem");
  // The flags replace the certificate and key, not the file's client CA: mTLS stays on.
  EXPECT_EQ(loaded.config.tls.inbound.client_ca_file, "c");
  EXPECT_EQ(loaded.origin("tls.inbound").source, Source::kFlag);
  EXPECT_EQ(loaded.origin("tls.inbound.client_ca_file").source, Source::kFile);
  const std::string text = formatEffectiveConfig(loaded);
  EXPECT_THAT(text,
              ::testing::ContainsRegex("tls.inbound.cert_file: /run/cert.pem +# flag --tls-cert\n"));
  EXPECT_THAT(text,
              ::testing::ContainsRegex("tls.inbound.key_file: /run/key.pem +# flag --tls-key\n"));
  // At its own key's line.
  EXPECT_THAT(text, ::testing::ContainsRegex("tls.inbound.client_ca_file: c +# file test.yaml:5"));
  LoadedConfig again = loaded;  // the flags applied once more keep the file as the CA's origin
  applyFlags(flags, again);
  EXPECT_EQ(again.origin("tls.inbound.client_ca_file").source, Source::kFile);

  ConfigFlags half;
  half.tls_cert = "/run/cert.pem";
  EXPECT_NE(errors(load("", half)).find("--tls-cert and --tls-key go together"),
            std::string::npos);
  ConfigFlags bad;
  bad.app_protocol = "http2";
  EXPECT_NE(errors(load("", bad)).find("--app-protocol: must be same, http1 or h2"),
            std::string::npos);
}

// ---- destination patterns ----

TEST(DestinationMatch, Parses) {
  auto m = parseDestinationMatch("Api.Example.COM:8443");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->host, "api.example.com");
  EXPECT_EQ(m->port, 8443);
  m = parseDestinationMatch("*.example.com");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->host, "*.example.com");
  EXPECT_FALSE(m->port);
  m = parseDestinationMatch("2001:db8::1");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->host, "2001:db8::1");
  m = parseDestinationMatch("[2001:db8::1]:443");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->port, 443);
  m = parseDestinationMatch("192.0.2.7:65535");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->port, 65535);
  for (const char* bad : {"", ":80", "host:", "host:65536", "host:0", "host:8x", "*.", "*.1.2",
                          "1.2.3", "[::1", "[nope]:80", "a b", "2001:db8::1:80:x"}) {
    EXPECT_FALSE(parseDestinationMatch(bad).ok()) << bad;
  }
}

DestinationSettings destination(std::string host, std::optional<uint16_t> port = std::nullopt,
                                UpstreamProtocol protocol = UpstreamProtocol::kSame,
                                std::shared_ptr<const ReloadingTlsContext> tls = nullptr,
                                std::optional<uint16_t> tls_port = std::nullopt,
                                std::string server_name = "") {
  DestinationSettings d;
  d.host = std::move(host);
  d.port = port;
  d.protocol = protocol;
  d.tls = std::move(tls);
  d.tls_port = tls_port;
  d.server_name = std::move(server_name);
  return d;
}

http::TlsServerConfig serverFiles(std::string cert, std::string key) {
  http::TlsServerConfig config;
  config.cert_file = std::move(cert);
  config.key_file = std::move(key);
  return config;
}

TEST(DestinationSettings, MatchesHostAndPort) {
  const DestinationSettings exact = destination("api.example.com", 80);
  EXPECT_TRUE(exact.matches("api.example.com", 80));
  EXPECT_TRUE(exact.matches("API.example.com.", 80));
  EXPECT_FALSE(exact.matches("api.example.com", 81));
  EXPECT_FALSE(exact.matches("xapi.example.com", 80));
  const DestinationSettings any_port = destination("*.example.com");
  EXPECT_TRUE(any_port.matches("a.example.com", 1));
  EXPECT_TRUE(any_port.matches("a.b.example.com", 443));
  EXPECT_FALSE(any_port.matches("example.com", 443));
  EXPECT_FALSE(any_port.matches("aexample.com", 443));
}

// ---- the selector ----

struct Request {
  http::Http1Head head;
  RequestTargetParts target;
};

Request request(std::string target, std::string host) {
  Request r;
  r.head.method = "GET";
  r.head.target = std::move(target);
  r.head.headers.add("Host", host);
  r.target = *parseRequestTarget(r.head.method, r.head.target);
  return r;
}

std::shared_ptr<const ReloadingTlsContext> systemCas() {
  auto context = ReloadingTlsContext::client(http::TlsClientConfig());
  EXPECT_TRUE(context.ok()) << context.status();
  return context.ok() ? *context : nullptr;
}

TEST(DestinationSelector, AppliesTheFirstMatch) {
  DataPathSettings settings;
  settings.outbound_mode = DataPathSettings::OutboundMode::kHost;
  const auto tls = systemCas();
  settings.destinations.push_back(
      destination("api.example.com", 80, UpstreamProtocol::kHttp2, tls, 443));
  settings.destinations.push_back(destination("*.example.com", std::nullopt,
                                              UpstreamProtocol::kHttp1, tls, std::nullopt,
                                              "edge.example.net"));
  auto selector = makeUpstreamSelector(settings, ListenerRole::kOutbound);
  PeerInfo peer;
  peer.listener = ListenerRole::kOutbound;

  Request r = request("/x", "api.example.com");
  auto result = selector->select(r.head, r.target, peer);
  auto* route = std::get_if<UpstreamRoute>(&result);
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->protocol, UpstreamProtocol::kHttp2);
  EXPECT_EQ(route->target.host, "api.example.com");
  EXPECT_EQ(route->target.port, 443);
  EXPECT_EQ(route->target.tls, tls);
  EXPECT_EQ(route->target.server_name, "api.example.com");
  EXPECT_EQ(route->target.poolKey(), "api.example.com:443 tls api.example.com");
  EXPECT_EQ(route->target.key(), "api.example.com:443");

  r = request("/x", "www.example.com:8080");
  result = selector->select(r.head, r.target, peer);
  route = std::get_if<UpstreamRoute>(&result);
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->protocol, UpstreamProtocol::kHttp1);
  EXPECT_EQ(route->target.port, 8080);
  EXPECT_EQ(route->target.server_name, "edge.example.net");

  r = request("/x", "other.test");
  result = selector->select(r.head, r.target, peer);
  route = std::get_if<UpstreamRoute>(&result);
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->protocol, UpstreamProtocol::kSame);
  EXPECT_EQ(route->target.tls, nullptr);
  EXPECT_EQ(route->target.poolKey(), "other.test:80");

  // A CONNECT tracecar terminates is never TLS-originated: its client speaks TLS itself.
  Request connect;
  connect.head.method = "CONNECT";
  connect.head.target = "api.example.com:80";
  connect.target = *parseRequestTarget(connect.head.method, connect.head.target);
  result = selector->select(connect.head, connect.target, peer);
  route = std::get_if<UpstreamRoute>(&result);
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->target.tls, nullptr);
}

TEST(DestinationSelector, RedirectedConnectionsMatchByHost) {
  DataPathSettings settings;  // original_destination
  settings.destinations.push_back(
      destination("api.example.com", std::nullopt, UpstreamProtocol::kSame, systemCas()));
  auto selector = makeUpstreamSelector(settings, ListenerRole::kOutbound);
  PeerInfo peer;
  peer.listener = ListenerRole::kOutbound;
  peer.redirected = true;
  peer.original_address = "192.0.2.10";
  peer.original_port = 80;
  Request r = request("/x", "api.example.com");
  auto result = selector->select(r.head, r.target, peer);
  auto* route = std::get_if<UpstreamRoute>(&result);
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->target.host, "192.0.2.10");
  EXPECT_NE(route->target.tls, nullptr);
  EXPECT_EQ(route->target.server_name, "api.example.com");
}

TEST(AppUpstreamSelector, CarriesTheAppProtocol) {
  DataPathSettings settings;
  settings.app_protocol = UpstreamProtocol::kHttp1;
  auto selector = makeUpstreamSelector(settings, ListenerRole::kInbound);
  Request r = request("/x", "app");
  auto result = selector->select(r.head, r.target, PeerInfo{});
  ASSERT_TRUE(std::holds_alternative<UpstreamRoute>(result));
  EXPECT_EQ(std::get<UpstreamRoute>(result).protocol, UpstreamProtocol::kHttp1);
}

// ---- reloading ----

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(scratch_.path().empty());
    const std::string script = std::string(TRACECAR_SOURCE_DIR) + "/tests/support/make_certs.sh";
    ASSERT_EQ(std::system(("bash " + script + " " + dir_ + "/pki >/dev/null 2>&1").c_str()), 0);
  }
  std::string pki(const std::string& name) const { return dir_ + "/pki/" + name; }
  const test_support::ScratchDir scratch_{"tracecar-reload"};
  const std::string& dir_ = scratch_.path();
};

TEST_F(ReloadTest, NewFilesAreLoadedAndBrokenOnesRefused) {
  const std::string cert = dir_ + "/live.pem";
  const std::string key = dir_ + "/live.key";
  std::filesystem::copy_file(pki("server.pem"), cert);
  std::filesystem::copy_file(pki("server.key"), key);
  auto context = ReloadingTlsContext::server(serverFiles(cert, key));
  ASSERT_TRUE(context.ok()) << context.status();
  const auto first = (*context)->current();
  std::string error;
  EXPECT_EQ((*context)->reloadIfChanged(error), ReloadingTlsContext::Reload::kUnchanged);

  // Renamed into place: a new inode, as a rotated secret volume gives.
  std::filesystem::copy_file(pki("other-server.pem"), cert + ".new");
  std::filesystem::copy_file(pki("other-server.key"), key + ".new");
  std::filesystem::rename(cert + ".new", cert);
  std::filesystem::rename(key + ".new", key);
  EXPECT_EQ((*context)->reloadIfChanged(error), ReloadingTlsContext::Reload::kReloaded) << error;
  const auto second = (*context)->current();
  EXPECT_NE(first, second);

  // A key that does not belong to the certificate: refused, the previous context stays, and the
  // same files are not tried again until they change.
  std::filesystem::copy_file(pki("server.key"), key + ".new");
  std::filesystem::rename(key + ".new", key);
  EXPECT_EQ((*context)->reloadIfChanged(error), ReloadingTlsContext::Reload::kFailed);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ((*context)->current(), second);
  EXPECT_EQ((*context)->reloadIfChanged(error), ReloadingTlsContext::Reload::kUnchanged);

  // A missing file mid-rotation: one failure, then quiet until it is back.
  std::filesystem::remove(cert);
  EXPECT_EQ((*context)->reloadIfChanged(error), ReloadingTlsContext::Reload::kFailed);
  EXPECT_NE(error.find("cannot be read"), std::string::npos) << error;
  EXPECT_EQ((*context)->reloadIfChanged(error), ReloadingTlsContext::Reload::kUnchanged);
  std::filesystem::copy_file(pki("server.pem"), cert);
  EXPECT_EQ((*context)->reloadIfChanged(error), ReloadingTlsContext::Reload::kReloaded) << error;
}

TEST_F(ReloadTest, StartupErrorsNameTheFile) {
  auto missing = ReloadingTlsContext::server(serverFiles(dir_ + "/none.pem", pki("server.key")));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("none.pem"), std::string::npos);
  auto mismatched =
      ReloadingTlsContext::server(serverFiles(pki("server.pem"), pki("client.key")));
  EXPECT_FALSE(mismatched.ok());
}

}  // namespace
}  // namespace tracecar::proxy
