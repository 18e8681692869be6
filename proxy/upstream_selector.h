#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "proxy/data_path_headers.h"
#include "proxy/data_path_settings.h"
#include "proxy/stream_observer.h"

namespace tracecar::http {
struct Http1Head;
}

namespace tracecar::proxy {

// Where a request goes: the key of the upstream keep-alive pool.
struct UpstreamTarget {
  std::string host;  // DNS name or IP literal (IPv6 without brackets)
  uint16_t port = 0;

  std::string key() const;  // "host:port", "[v6]:port"
  bool operator==(const UpstreamTarget&) const = default;
};

struct UpstreamRoute {
  UpstreamTarget target;
  // CONNECT answered by tracecar itself: connect to target, answer 200, tunnel the bytes. When
  // false a CONNECT is forwarded to the upstream like any request.
  bool terminate_connect = false;
};

// Decides the upstream of each request of one listener. One per worker and listener, used on
// that worker's thread. The transparent original-destination mode is another implementation
// (it reads PeerInfo::fd).
class UpstreamSelector {
 public:
  virtual ~UpstreamSelector() = default;
  // A route, or the answer to give instead (the request is then never forwarded).
  virtual std::variant<UpstreamRoute, LocalReply> select(const http::Http1Head& request,
                                                         const RequestTargetParts& target,
                                                         const PeerInfo& peer) = 0;
};

// Every request to one upstream (the inbound listener's app, or a configured outbound one).
class FixedUpstreamSelector final : public UpstreamSelector {
 public:
  explicit FixedUpstreamSelector(UpstreamTarget target) : target_(std::move(target)) {}
  std::variant<UpstreamRoute, LocalReply> select(const http::Http1Head& request,
                                                 const RequestTargetParts& target,
                                                 const PeerInfo& peer) override;

 private:
  UpstreamTarget target_;
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

// The selector settings give a listener.
std::unique_ptr<UpstreamSelector> makeUpstreamSelector(const DataPathSettings& settings,
                                                       ListenerRole role);

}  // namespace tracecar::proxy
