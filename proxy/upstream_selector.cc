#include "proxy/upstream_selector.h"

#include <arpa/inet.h>

#include <charconv>

#include "http/http1_parser.h"

namespace tracecar::proxy {
namespace {

LocalReply badRequest(std::string reason) {
  return LocalReply{400, std::move(reason), LocalReplyReason::kBadRequest};
}

bool isLoopback(std::string_view host) noexcept {
  if (http::HeaderMap::nameEquals(host, "localhost")) return true;
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

bool isUnspecified(std::string_view host) noexcept { return host == "0.0.0.0" || host == "::"; }

// Would a connection to host:port come back to the listener the request arrived on?
bool loopsBack(std::string_view host, uint16_t port, const PeerInfo& peer) noexcept {
  if (port != peer.local_port) return false;
  if (host == peer.local_address) return true;
  return isLoopback(host) && (isLoopback(peer.local_address) || isUnspecified(peer.local_address));
}

void appendKey(std::string& out, std::string_view host, uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  if (v6) out += '[';
  out += host;
  if (v6) out += ']';
  char digits[8] = {':'};
  const char* const end = std::to_chars(digits + 1, digits + sizeof digits, port).ptr;
  out.append(digits, static_cast<size_t>(end - digits));
}

}  // namespace

std::string UpstreamTarget::key() const {
  std::string out;
  appendKey(out, host, port);
  return out;
}

std::string UpstreamTarget::poolKey() const {
  std::string out;
  appendKey(out, host, port);
  if (tls) {
    out += " tls ";
    out += server_name;
  }
  return out;
}

std::unique_ptr<http::TlsSession> UpstreamTarget::newTlsSession(std::string_view alpn) const {
  if (!tls) return nullptr;
  try {
    return http::TlsSession::client(tls->current(), server_name.empty() ? host : server_name,
                                    std::vector<std::string>{std::string(alpn)});
  } catch (...) {
    return nullptr;
  }
}

std::optional<UpstreamTarget> originalTarget(const PeerInfo& peer) {
  if (!peer.redirected) return std::nullopt;
  return UpstreamTarget{peer.original_address, peer.original_port};
}

std::variant<UpstreamRoute, LocalReply> AppUpstreamSelector::select(
    const http::Http1Head& /*request*/, const RequestTargetParts& /*target*/,
    const PeerInfo& peer) {
  UpstreamRoute route;
  route.target = *tunnelTarget(peer);
  route.protocol = protocol_;
  return route;
}

std::optional<UpstreamTarget> AppUpstreamSelector::tunnelTarget(const PeerInfo& peer) {
  if (mode_ == DataPathSettings::InboundMode::kOriginalPort && peer.redirected) {
    return UpstreamTarget{app_.host, peer.original_port};
  }
  return app_;
}

std::variant<UpstreamRoute, LocalReply> OriginalDestinationSelector::select(
    const http::Http1Head& request, const RequestTargetParts& target, const PeerInfo& peer) {
  if (!peer.redirected) return host_.select(request, target, peer);
  // The app addressed the destination itself: whatever form its target has is meant for it.
  UpstreamRoute route;
  route.target = UpstreamTarget{peer.original_address, peer.original_port};
  route.preserve_target = true;
  return route;
}

std::variant<UpstreamRoute, LocalReply> FixedUpstreamSelector::select(
    const http::Http1Head& /*request*/, const RequestTargetParts& /*target*/,
    const PeerInfo& /*peer*/) {
  UpstreamRoute route;
  route.target = target_;
  route.protocol = protocol_;
  return route;
}

std::variant<UpstreamRoute, LocalReply> HostUpstreamSelector::select(
    const http::Http1Head& request, const RequestTargetParts& target, const PeerInfo& peer) {
  std::string_view authority_text;
  uint16_t default_port = 80;
  bool terminate_connect = false;
  switch (target.form) {
    case RequestTargetForm::kAuthority:
      authority_text = target.authority;
      terminate_connect = true;
      break;
    case RequestTargetForm::kAbsolute:
      if (!schemeIs(target.scheme, "http")) {
        return badRequest("only http:// targets are forwarded; use CONNECT for others");
      }
      authority_text = target.authority;
      break;
    case RequestTargetForm::kOrigin:
    case RequestTargetForm::kAsterisk:
      authority_text = request.headers.get("host").value_or("");
      break;
  }
  const std::optional<Authority> authority = parseAuthority(authority_text);
  if (!authority) return badRequest("no host to forward the request to");
  UpstreamRoute route;
  route.target.host = std::string(authority->host);
  route.target.port = authority->has_port ? authority->port : default_port;
  route.terminate_connect = terminate_connect;
  if (loopsBack(route.target.host, route.target.port, peer)) {
    return LocalReply{508, "the request names this proxy as its destination",
                      LocalReplyReason::kLoopDetected};
  }
  return route;
}

bool DestinationSettings::matches(std::string_view host_named,
                                  uint16_t port_named) const noexcept {
  if (port && *port != port_named) return false;
  if (host_named.size() > 1 && host_named.back() == '.') host_named.remove_suffix(1);
  if (host.size() > 2 && host[0] == '*' && host[1] == '.') {
    const std::string_view suffix = std::string_view(host).substr(1);  // ".example.com"
    return host_named.size() > suffix.size() &&
           http::HeaderMap::nameEquals(host_named.substr(host_named.size() - suffix.size()),
                                       suffix);
  }
  return http::HeaderMap::nameEquals(host_named, host);
}

const DestinationSettings* DestinationSelector::find(std::string_view host,
                                                     uint16_t port) const noexcept {
  for (const DestinationSettings& destination : destinations_) {
    if (destination.matches(host, port)) return &destination;
  }
  return nullptr;
}

std::variant<UpstreamRoute, LocalReply> DestinationSelector::select(
    const http::Http1Head& request, const RequestTargetParts& target, const PeerInfo& peer) {
  std::variant<UpstreamRoute, LocalReply> result = inner_->select(request, target, peer);
  auto* route = std::get_if<UpstreamRoute>(&result);
  if (route == nullptr || route->terminate_connect) return result;
  std::string_view named = route->target.host;
  const DestinationSettings* destination = find(named, route->target.port);
  if (destination == nullptr && peer.redirected) {
    // The connection was going to an address; the request may name the host it meant.
    const std::optional<Authority> authority =
        parseAuthority(request.headers.get("host").value_or(""));
    if (authority) {
      named = authority->host;
      destination = find(named, route->target.port);
    }
  }
  if (destination == nullptr) return result;
  route->protocol = destination->protocol;
  if (destination->tls) {
    route->target.server_name =
        destination->server_name.empty() ? std::string(named) : destination->server_name;
    route->target.tls = destination->tls;
    if (destination->tls_port) route->target.port = *destination->tls_port;
  }
  return result;
}

namespace {

// Where the outbound listener sends a request, before per-destination settings.
std::unique_ptr<UpstreamSelector> outboundSelector(const DataPathSettings& settings) {
  switch (settings.outbound_mode) {
    case DataPathSettings::OutboundMode::kUpstream:
      return std::make_unique<FixedUpstreamSelector>(
          UpstreamTarget{settings.outbound_upstream.host, settings.outbound_upstream.port});
    case DataPathSettings::OutboundMode::kOriginalDestination:
      return std::make_unique<OriginalDestinationSelector>();
    case DataPathSettings::OutboundMode::kHost:
      break;
  }
  return std::make_unique<HostUpstreamSelector>();
}

}  // namespace

std::unique_ptr<UpstreamSelector> makeUpstreamSelector(const DataPathSettings& settings,
                                                       ListenerRole role) {
  if (role == ListenerRole::kInbound) {
    return std::make_unique<AppUpstreamSelector>(
        UpstreamTarget{settings.app.host, settings.app.port}, settings.inbound_mode,
        settings.app_protocol);
  }
  if (settings.destinations.empty()) return outboundSelector(settings);
  return std::make_unique<DestinationSelector>(outboundSelector(settings), settings.destinations);
}

void noteSelectorRefusal(const LocalReply& reply, StreamStats& stats, StreamObserver* observer) {
  stats.refused_for_destination = true;
  if (reply.code != LocalReplyReason::kLoopDetected || observer == nullptr) return;
  stats.upstream_failure = UpstreamFailure::kLoopDetected;
  observer->onUpstreamFailure(UpstreamFailure::kLoopDetected);
}

}  // namespace tracecar::proxy
