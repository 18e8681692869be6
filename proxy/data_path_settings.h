#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "proxy/reloading_tls_context.h"

namespace tracecar::proxy {

// Which listener a connection came in on. Indexes DataPathCounters' per-listener arrays.
enum class ListenerRole : uint8_t {
  kInbound,   // requests to the app
  kOutbound,  // the app's own requests
  kCount
};
inline constexpr size_t kListenerRoleCount = static_cast<size_t>(ListenerRole::kCount);
std::string_view listenerRoleName(ListenerRole role) noexcept;  // "inbound", "outbound"

// The HTTP version requests go upstream with.
enum class UpstreamProtocol : uint8_t {
  kSame,   // what the downstream spoke
  kHttp1,  // HTTP/1.1: HTTP/2 streams are translated
  kHttp2,  // HTTP/2 with prior knowledge: HTTP/1.1 requests are translated
};
std::string_view toString(UpstreamProtocol protocol) noexcept;  // "same" | "http1" | "h2"
std::optional<UpstreamProtocol> parseUpstreamProtocol(std::string_view text) noexcept;

// Outbound requests to one destination: the HTTP version they go with, and TLS origination.
struct DestinationSettings {
  std::string host;              // lowercase name or IP literal; "*.example.com": names under it
  std::optional<uint16_t> port;  // any port when unset
  UpstreamProtocol protocol = UpstreamProtocol::kSame;
  // TLS origination (null: plaintext): connect to tls_port (or the request's port), send SNI and
  // verify server_name (or the host the request named).
  std::shared_ptr<const ReloadingTlsContext> tls;
  std::optional<uint16_t> tls_port;
  std::string server_name;

  // Does a request to host:port (host as named: any case, IPv6 without brackets) match?
  bool matches(std::string_view host_named, uint16_t port_named) const noexcept;
};

// An address to listen on or to connect to.
struct DataPathAddress {
  std::string host;  // IP literal (IPv6 without brackets); a peer may also be a DNS name
  uint16_t port = 0;
};

struct DataPathTimeouts {
  std::chrono::milliseconds header_read{10000};        // first byte to end of a request head: 408
  std::chrono::milliseconds downstream_idle{60000};    // keep-alive connection between requests
  std::chrono::milliseconds upstream_connect{5000};    // resolve + connect: 503
  std::chrono::milliseconds upstream_response{60000};  // request sent (or its last progress) to
                                                       // the response head: 504
  std::chrono::milliseconds upstream_idle{30000};      // pooled upstream connection, unused
  std::chrono::milliseconds linger{2000};              // after the last byte of a closing reply
  // A redirected connection whose client sent nothing for this long speaks a server-first
  // protocol: it becomes an opaque tunnel to its destination.
  std::chrono::milliseconds sniff{100};
  // A byte tunnel (CONNECT, Upgrade, an opaque one) with no byte either way for this long is
  // closed, both sides; 0: never.
  std::chrono::milliseconds tunnel_idle{3600000};
};

// What the data path needs to run; the configuration loader fills it from ProxyConfig.
struct DataPathSettings {
  // Where the outbound listener sends requests.
  enum class OutboundMode : uint8_t {
    kHost,      // to the host each request names (absolute-form target, CONNECT, or Host)
    kUpstream,  // always to outbound_upstream
    // A connection redirected by iptables goes where it was going (SO_ORIGINAL_DST); any other
    // one as in kHost.
    kOriginalDestination,
  };
  // Where the inbound listener sends a redirected connection.
  enum class InboundMode : uint8_t {
    kOriginalPort,  // app.host at the port it was sent to (app when not redirected)
    kApp,           // always app
  };

  bool inbound_enabled = true;
  DataPathAddress inbound{"0.0.0.0", 15006};
  DataPathAddress app{"127.0.0.1", 8080};  // inbound requests go here
  InboundMode inbound_mode = InboundMode::kOriginalPort;
  UpstreamProtocol app_protocol = UpstreamProtocol::kSame;  // how requests reach the app
  // TLS termination on the inbound listener (null: TLS passes through as an opaque tunnel).
  std::shared_ptr<const ReloadingTlsContext> inbound_tls;

  bool outbound_enabled = true;
  DataPathAddress outbound{"127.0.0.1", 15001};
  OutboundMode outbound_mode = OutboundMode::kOriginalDestination;
  // An outbound listener on 127.0.0.1 also listens on [::1] at the same port, where ip6tables
  // REDIRECT sends the app's IPv6 connections (skipped when the host has no IPv6 loopback).
  bool outbound_ipv6_loopback = true;
  DataPathAddress outbound_upstream;  // used when outbound_mode == kUpstream
  // Per-destination settings of outbound requests, first match wins.
  std::vector<DestinationSettings> destinations;

  size_t workers = 1;
  int listen_backlog = 511;

  http::Http1Limits request_limits;   // over: 431 (header bytes, header count), 414 (URI)
  http::Http1Limits response_limits;  // over: 502 (max_uri_length unused)
  DataPathTimeouts timeouts;

  // Flow control: a peer is no longer read while what waits to be written to the other side is
  // over the high-water mark, and is read again once that falls to the low-water mark.
  size_t high_water_bytes = 64 * 1024;
  size_t low_water_bytes = 32 * 1024;

  // Other listening addresses of this process (the admin listener): a redirected connection to
  // one of them, like one to a data path listener, is a loop and is refused.
  std::vector<DataPathAddress> other_own_listeners;

  // Idle keep-alive upstream connections kept per destination and worker.
  size_t max_idle_upstream_per_destination = 64;

  // Adds "Via: 1.1 tracecar" to requests and responses (RFC 9110 section 7.6.3). Off by
  // default: the sidecar is meant to be invisible to the app and its peers.
  bool add_via = false;
};

}  // namespace tracecar::proxy
