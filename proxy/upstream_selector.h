#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "proxy/data_path_headers.h"
#include "proxy/data_path_settings.h"
#include "proxy/reloading_tls_context.h"
#include "proxy/stream_observer.h"

namespace tracecar::http {
struct Http1Head;
}

namespace tracecar::proxy {

// Where a request goes: the key of the upstream keep-alive pool.
struct UpstreamTarget {
  UpstreamTarget() = default;
  UpstreamTarget(std::string host_, uint16_t port_) : host(std::move(host_)), port(port_) {}

  std::string host;  // DNS name or IP literal (IPv6 without brackets)
  uint16_t port = 0;
  // TLS origination: the context connections to this target use (null: plaintext), and the
  // name sent as SNI and verified against the certificate.
  std::shared_ptr<const ReloadingTlsContext> tls;
  std::string server_name;

  std::string key() const;      // "host:port", "[v6]:port"
  std::string poolKey() const;  // key(), and with TLS " tls " and the server name
  // With TLS: a client session offering alpn ("http/1.1" or "h2"), started on a connection
  // to this target; null when out of memory.
  std::unique_ptr<http::TlsSession> newTlsSession(std::string_view alpn) const;
  bool operator==(const UpstreamTarget&) const = default;
};

struct UpstreamRoute {
  UpstreamTarget target;
  // CONNECT answered by tracecar itself: connect to target, answer 200, tunnel the bytes. When
  // false a CONNECT is forwarded to the upstream like any request.
  bool terminate_connect = false;
  // The request target goes upstream as received (an absolute-form target is not rewritten to
  // origin-form): the client meant it for the next hop, which may be a proxy.
  bool preserve_target = false;
  // The HTTP version the request goes upstream with.
  UpstreamProtocol protocol = UpstreamProtocol::kSame;
};

// The original destination of a redirected connection; nullopt when it was not redirected.
std::optional<UpstreamTarget> originalTarget(const PeerInfo& peer);

// A refusal of select() that is an upstream failure (a loop found from the host's name, before
// any address) is recorded as one found on the addresses is: in stats and with the observer.
void noteSelectorRefusal(const LocalReply& reply, StreamStats& stats, StreamObserver* observer);

// Decides the upstream of each request of one listener, and of a connection that is not HTTP.
// One per worker and listener, used on that worker's thread.
class UpstreamSelector {
 public:
  virtual ~UpstreamSelector() = default;
  // A route, or the answer to give instead (the request is then never forwarded).
  virtual std::variant<UpstreamRoute, LocalReply> select(const http::Http1Head& request,
                                                         const RequestTargetParts& target,
                                                         const PeerInfo& peer) = 0;
  // Where a connection that does not speak HTTP/1.x goes as an opaque tunnel; nullopt: nowhere
  // (it is closed). By default its original destination, when it was redirected.
  virtual std::optional<UpstreamTarget> tunnelTarget(const PeerInfo& peer) {
    return originalTarget(peer);
  }
};

// The inbound listener: requests and tunnels go to the app; in kOriginalPort mode a redirected
// connection goes to the app's host at the port it was sent to.
class AppUpstreamSelector final : public UpstreamSelector {
 public:
  AppUpstreamSelector(UpstreamTarget app, DataPathSettings::InboundMode mode,
                      UpstreamProtocol protocol = UpstreamProtocol::kSame)
      : app_(std::move(app)), mode_(mode), protocol_(protocol) {}
  std::variant<UpstreamRoute, LocalReply> select(const http::Http1Head& request,
                                                 const RequestTargetParts& target,
                                                 const PeerInfo& peer) override;
  std::optional<UpstreamTarget> tunnelTarget(const PeerInfo& peer) override;

 private:
  UpstreamTarget app_;
  DataPathSettings::InboundMode mode_;
  UpstreamProtocol protocol_;
};

// Every request to one upstream (a configured outbound one, or an app in tests).
class FixedUpstreamSelector final : public UpstreamSelector {
 public:
  explicit FixedUpstreamSelector(UpstreamTarget target,
                                 UpstreamProtocol protocol = UpstreamProtocol::kSame)
      : target_(std::move(target)), protocol_(protocol) {}
  std::variant<UpstreamRoute, LocalReply> select(const http::Http1Head& request,
                                                 const RequestTargetParts& target,
                                                 const PeerInfo& peer) override;

 private:
  UpstreamTarget target_;
  UpstreamProtocol protocol_;
};

// The outbound listener as the app's HTTP_PROXY: to the authority of an absolute-form target
// (http only), of a CONNECT (terminated here), or else of the Host field. Refuses (508) a
// destination that is the listener itself.
class HostUpstreamSelector final : public UpstreamSelector {
 public:
  std::variant<UpstreamRoute, LocalReply> select(const http::Http1Head& request,
                                                 const RequestTargetParts& target,
                                                 const PeerInfo& peer) override;
};

// Transparent outbound (kOriginalDestination): a redirected connection's requests go where the
// connection was going, with the request target as received; any other connection's as with
// HostUpstreamSelector.
class OriginalDestinationSelector final : public UpstreamSelector {
 public:
  std::variant<UpstreamRoute, LocalReply> select(const http::Http1Head& request,
                                                 const RequestTargetParts& target,
                                                 const PeerInfo& peer) override;

 private:
  HostUpstreamSelector host_;
};

// Per-destination settings on top of another selector's choice (the outbound listener with
// upstreams.destinations): the first destination matching the route's host and port (or, for
// a redirected connection, the Host the request names at that port) sets the HTTP version and
// TLS origination. A CONNECT that tracecar terminates is left as it is: its client speaks TLS
// itself, if at all.
class DestinationSelector final : public UpstreamSelector {
 public:
  DestinationSelector(std::unique_ptr<UpstreamSelector> inner,
                      std::vector<DestinationSettings> destinations)
      : inner_(std::move(inner)), destinations_(std::move(destinations)) {}
  std::variant<UpstreamRoute, LocalReply> select(const http::Http1Head& request,
                                                 const RequestTargetParts& target,
                                                 const PeerInfo& peer) override;
  std::optional<UpstreamTarget> tunnelTarget(const PeerInfo& peer) override {
    return inner_->tunnelTarget(peer);
  }

 private:
  const DestinationSettings* find(std::string_view host, uint16_t port) const noexcept;

  std::unique_ptr<UpstreamSelector> inner_;
  std::vector<DestinationSettings> destinations_;
};

// The selector settings give a listener.
std::unique_ptr<UpstreamSelector> makeUpstreamSelector(const DataPathSettings& settings,
                                                       ListenerRole role);

}  // namespace tracecar::proxy
