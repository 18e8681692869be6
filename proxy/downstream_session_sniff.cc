// DownstreamSession: the original destination, protocol sniffing and opaque tunnels
// (docs/transparent-mode.md).

#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <utility>

#include "http/tcp_address.h"
#include "proxy/downstream_session.h"
#include "proxy/h2_downstream_session.h"
#include "proxy/h2_worker.h"
#include "proxy/upstream_pool.h"

namespace tracecar::proxy {
namespace {

// The address of an IP literal target; false for a host name (never one of our listeners here:
// the targets checked come from addresses).
bool literalAddress(const UpstreamTarget& target, sockaddr_storage& out) noexcept {
  out = {};
  return uv_ip4_addr(target.host.c_str(), target.port, reinterpret_cast<sockaddr_in*>(&out)) ==
             0 ||
         uv_ip6_addr(target.host.c_str(), target.port, reinterpret_cast<sockaddr_in6*>(&out)) == 0;
}

}  // namespace

bool DownstreamSession::lookUpOriginalDestination(int fd) noexcept {
  const OriginalDestinationLookup* lookup = listener_.original_destination;
  if (lookup == nullptr || !*lookup || fd < 0) return true;
  try {
    const absl::StatusOr<std::optional<sockaddr_storage>> original = (*lookup)(fd);
    // An error is taken as "not redirected": the connection is served as one made to tracecar.
    if (!original.ok() || !original->has_value()) return true;
    const sockaddr_storage& destination = **original;
    http::IpPort where = http::ipPort(destination);
    if (where.ip.empty()) return true;
    peer_.redirected = true;
    peer_.original_address = std::move(where.ip);
    peer_.original_port = where.port;
    if (listener_.own == nullptr) return true;
    // Where it was going, or where tracecar would send it, is tracecar itself: a loop.
    bool loop = listener_.own->contains(destination);
    if (!loop) {
      const std::optional<UpstreamTarget> target = listener_.selector->tunnelTarget(peer_);
      sockaddr_storage address{};
      loop = target && literalAddress(*target, address) && listener_.own->contains(address);
    }
    if (loop) {
      refuseConnection(ConnectionRefusal::kLoop);
      return false;
    }
  } catch (...) {
    peer_.redirected = false;  // out of memory: served as not redirected
  }
  return true;
}

void DownstreamSession::startSniffing() noexcept {
  phase_ = Phase::kSniff;
  // Only a redirected connection may be server-first: a client that connected to tracecar's own
  // port speaks HTTP, however slowly.
  const std::chrono::milliseconds sniff = context_.settings().timeouts.sniff;
  if (peer_.redirected && sniff.count() > 0) {
    startTimer(TimerMode::kSniff, sniff);
  } else {
    startTimer(TimerMode::kIdle, context_.settings().timeouts.downstream_idle);
  }
  updateReading();
}

void DownstreamSession::onSniffData(std::string_view data) noexcept {
  if (timer_mode_ != TimerMode::kHeader) {
    // The first bytes: a request head's clock starts (408) whatever they turn out to be.
    request_start_ns_ = uv_hrtime();
    startTimer(TimerMode::kHeader, context_.settings().timeouts.header_read);
  } else if (request_start_ns_ == 0) {
    // The first plaintext after a TLS handshake: the request starts here (its span and its
    // duration), while the head's 408 clock, started by the ClientHello, goes on.
    request_start_ns_ = uv_hrtime();
  }
  const bool held = !input_.empty();
  if (held) {
    drive(data);  // appended to input_
    if (phase_ != Phase::kSniff) return;
  }
  const DataPathSettings& settings = context_.settings();
  const size_t max_line =
      std::min(settings.request_limits.max_uri_length + 32, settings.high_water_bytes);
  const std::optional<SniffedProtocol> protocol =
      sniffProtocol(held ? std::string_view(input_) : data, max_line);
  if (protocol == SniffedProtocol::kHttp1) {
    startHttp();
    drive(held ? std::string_view() : data);
    updateReading();
    return;
  }
  if (protocol == SniffedProtocol::kTls && listener_.tls != nullptr && socket_ != nullptr &&
      !socket_->tls()) {
    startTlsTermination(held ? std::string_view(input_) : data);
    return;
  }
  if (!held) drive(data);  // kept: the tunnel's first bytes, or more to sniff
  if (phase_ != Phase::kSniff) return;
  if (protocol == SniffedProtocol::kH2 && handOverToH2()) return;
  if (protocol) {
    openTunnel(*protocol);
    return;
  }
  updateReading();
}

void DownstreamSession::onSniffEof() noexcept {
  if (input_.empty()) {
    closeNow(true);
    return;
  }
  const SniffedProtocol protocol = sniffFinal(input_);
  if (protocol != SniffedProtocol::kHttp1) {
    openTunnel(protocol);  // the FIN follows the bytes
    return;
  }
  startHttp();
  drive({});
  // As between requests: a complete request is still answered, a partial head ends here.
  if (phase_ == Phase::kIdle && (input_.empty() || !parser_.paused())) closeNow(true);
}

void DownstreamSession::startHttp() noexcept {
  protocol_ = SniffedProtocol::kHttp1;
  DataPathCounters::add(context_.counters().sniffed[static_cast<size_t>(listener_.role)]
                                                   [static_cast<size_t>(protocol_)]);
  phase_ = Phase::kIdle;
}

bool DownstreamSession::handOverToH2() noexcept {
  H2Worker* h2 = context_.h2();
  if (h2 == nullptr || socket_ == nullptr) return false;
  H2DownstreamSession* session = nullptr;
  try {
    session = H2DownstreamSession::adopt(*h2, listener_, *socket_, peer_, input_);
  } catch (...) {
    session = nullptr;
  }
  if (session == nullptr) return false;  // out of memory: tunnelled instead
  protocol_ = SniffedProtocol::kH2;
  DataPathCounters::add(context_.counters().sniffed[static_cast<size_t>(listener_.role)]
                                                   [static_cast<size_t>(protocol_)]);
  // From here the socket and the connection's count belong to the HTTP/2 session; this one
  // only closes its timer and goes.
  socket_->setCallbacks(session->socketCallbacks());
  socket_ = nullptr;
  counted_ = false;
  closeNow(false);
  return true;
}

void DownstreamSession::startTlsTermination(std::string_view client_hello) noexcept {
  std::unique_ptr<http::TlsSession> session;
  try {
    session = http::TlsSession::server(listener_.tls->current());
  } catch (...) {
    session.reset();
  }
  if (session == nullptr) {  // out of memory
    closeNow(false);
    return;
  }
  peer_.tls = true;
  request_start_ns_ = 0;  // the handshake is the connection's, not the first request's
  socket_->startTls(std::move(session), TlsEnd::kInbound, client_hello);  // copies client_hello
  // What was held is ciphertext, now the session's: the plaintext is sniffed from scratch.
  context_.keepUnparsed(input_, {}, true);
  updateReading();
}

void DownstreamSession::openTunnel(SniffedProtocol protocol) noexcept {
  protocol_ = protocol;
  opaque_ = true;
  DataPathCounters& counters = context_.counters();
  const auto role = static_cast<size_t>(listener_.role);
  DataPathCounters::add(counters.sniffed[role][static_cast<size_t>(protocol)]);
  std::optional<UpstreamTarget> target;
  try {
    target = listener_.selector->tunnelTarget(peer_);
  } catch (...) {
    target.reset();
  }
  if (!target) {
    refuseConnection(ConnectionRefusal::kNoDestination);
    return;
  }
  DataPathCounters::add(counters.opaque_tunnels[role][static_cast<size_t>(protocol)]);
  stopTimer();
  phase_ = Phase::kOpening;
  ex_.target = std::move(*target);
  ex_.stats.listener = listener_.role;
  ex_.stats.start_ns = uv_hrtime();
  upstream_ = context_.pool().acquire(ex_.target, *this, /*fresh_only=*/true);
  if (upstream_ == nullptr) {
    refuseConnection(ConnectionRefusal::kUpstreamFailed);
    return;
  }
  updateReading();
}

void DownstreamSession::refuseConnection(ConnectionRefusal why) noexcept {
  context_.counters().refusal(listener_.role, why);
  // A reset, as a refused connection gets: the client must not take it for an answer.
  if (socket_ != nullptr) {
    uv_os_fd_t fd = -1;
    if (uv_fileno(reinterpret_cast<const uv_handle_t*>(socket_->tcp()), &fd) == 0) {
      const linger reset{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
  }
  ex_.stats.aborted = true;
  closeNow(false);
}

void DownstreamSession::armTunnelIdle() noexcept {
  const std::chrono::milliseconds idle = context_.settings().timeouts.tunnel_idle;
  if (idle.count() > 0 && phase_ == Phase::kTunnel) startTimer(TimerMode::kTunnelIdle, idle);
}

void DownstreamSession::countTunnelBytes(TunnelDirection direction, size_t n) noexcept {
  armTunnelIdle();  // a byte either way: the tunnel is in use
  if (!opaque_) return;
  DataPathCounters::add(context_.counters().opaque_bytes[static_cast<size_t>(listener_.role)]
                                                        [static_cast<size_t>(protocol_)]
                                                        [static_cast<size_t>(direction)],
                        n);
}

}  // namespace tracecar::proxy
