#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/data_path_settings.h"
#include "proxy/upstream_failure.h"

namespace tracecar::http {
struct Http1Head;
class HeaderMap;
}

namespace tracecar::proxy {

// Why tracecar answered a request itself instead of forwarding it, or instead of relaying the
// upstream's answer. All but kObserver follow metrics' RejectReason one to one.
enum class LocalReplyReason : uint8_t {
  kHeadersTooLarge,   // 431: request head over the byte limit
  kTooManyHeaders,    // 431: over the header count
  kUriTooLong,        // 414
  kBadRequest,        // 400: malformed request, Host missing or duplicated, bad target
  kBaggage,           // 431 by an observer: baggage over its limits (reject policy)
  kTracestate,        // 431 by an observer: tracestate over its limits (reject policy)
  kHeaderTimeout,     // 408: the request head did not arrive in time
  kUpstreamRefused,   // 502: connect refused (or failed otherwise: unreachable, no local address)
  kUpstreamReset,     // 502: closed or reset before a response head
  kBadResponse,       // 502: the response could not be parsed
  kResponseTooLarge,  // 502: response head over the limits
  kResolveFailed,     // 502: the upstream's name did not resolve
  kUpstreamTls,       // 502: TLS to the upstream failed
  kConnectTimeout,    // 503
  kResponseTimeout,   // 504
  kLoopDetected,      // 508: the outbound listener was asked to forward to itself
  kNotImplemented,    // 501: a method tracecar cannot forward (CONNECT over HTTP/2)
  kRequestBodyTimeout,  // 408: the client stopped sending the request body while it was read
  kFileDescriptors,   // 503: tracecar is at its file descriptor limit
  kObserver,          // any other reply an observer asked for
  kCount
};
inline constexpr size_t kLocalReplyReasonCount = static_cast<size_t>(LocalReplyReason::kCount);
std::string_view localReplyReasonName(LocalReplyReason reason) noexcept;  // "bad_request", ...
// The reason of the answer tracecar gives for a failed upstream exchange.
LocalReplyReason localReplyReasonOf(UpstreamFailure failure) noexcept;

// An answer tracecar makes itself: "HTTP/1.1 <status>", text/plain, body = reason + "\n".
struct LocalReply {
  int status = 400;
  std::string reason;  // one line, no CR or LF
  LocalReplyReason code = LocalReplyReason::kObserver;
};

// The downstream connection a request came on.
struct PeerInfo {
  ListenerRole listener = ListenerRole::kInbound;
  std::string address;  // peer IP, IPv6 without brackets; "" when unknown
  uint16_t port = 0;
  std::string local_address;  // the address the peer connected to
  uint16_t local_port = 0;
  int fd = -1;  // the downstream socket; never close or read it
  // Transparent mode: the connection came through a nat REDIRECT and was going to
  // original_address:original_port (looked up once, when it was accepted).
  bool redirected = false;
  std::string original_address;  // IPv6 without brackets
  uint16_t original_port = 0;
  bool tls = false;  // tracecar terminated TLS on this connection: its requests are https
};

// What happened to one request, for onComplete. Times are uv_hrtime() nanoseconds (monotonic);
// 0 when the step never happened.
struct StreamStats {
  ListenerRole listener = ListenerRole::kInbound;
  int status = 0;  // final status sent downstream (101 / 2xx for tunnels); 0 when none
  uint64_t request_header_bytes = 0;
  uint64_t request_body_bytes = 0;  // as received from downstream (de-chunked)
  uint64_t response_header_bytes = 0;
  uint64_t response_body_bytes = 0;  // as received from upstream (de-chunked)
  uint64_t tunnel_bytes_upstream = 0;    // after an Upgrade / CONNECT: downstream -> upstream
  uint64_t tunnel_bytes_downstream = 0;  // upstream -> downstream

  uint64_t start_ns = 0;              // first byte of the request
  uint64_t end_ns = 0;                // last byte queued downstream, or the stream failed

  bool local_reply = false;  // answered by tracecar
  LocalReplyReason local_reply_reason = LocalReplyReason::kObserver;
  std::optional<UpstreamFailure> upstream_failure;
  bool upstream_reused = false;  // a pooled keep-alive connection carried the request
  bool upstream_tls = false;     // tracecar originated TLS to the upstream
  bool retried = false;          // a reused connection failed and a fresh one was used
  bool tunnel = false;           // became a byte tunnel (Upgrade or CONNECT)
  bool aborted = false;          // ended before a complete response (either side gone)
  bool refused_for_destination = false;  // the upstream selector refused it (no upstream tried)
  // The upstream the request went to (its last attempt): address and port, once sent.
  std::string upstream_address;
  uint16_t upstream_port = 0;
};

// The attempt it was recorded for is over (the request goes again): no peer until the next one.
inline void forgetPeer(StreamStats& stats) noexcept {
  stats.upstream_address.clear();
  stats.upstream_port = 0;
}

// Records the upstream a request is sent to (its CLIENT span's network.peer.*); out of memory
// leaves it unrecorded.
inline void notePeer(StreamStats& stats, const std::string& address, uint16_t port) noexcept {
  try {
    stats.upstream_address = address;
    stats.upstream_port = port;
  } catch (const std::bad_alloc&) {
    stats.upstream_address.clear();
    stats.upstream_port = 0;
  }
}

// Watches one request on its way through the data path: the tracing and metrics hooks. Made by
// a StreamObserverFactory when the request head arrives, used on that worker's thread only,
// destroyed after onComplete. Calls come in this order: onRequestHead, then (unless it returned
// a reply) any of onResponseHead / onUpstreamFailure, and always onComplete, exactly once.
//
// Requests answered before a valid head exists never get an observer: parse errors (400, 414,
// 431), the header timeout (408), and a missing, duplicated or invalid Host or request target
// (400). DataPathCounters::local_replies counts every local reply, observed or not.
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;

  // The request head, hop-by-hop fields already removed and the target as received. Headers may
  // be rewritten (e.g. traceparent injected); they are what goes upstream. Returning a reply
  // answers the request with it; the request is then never forwarded.
  virtual std::optional<LocalReply> onRequestHead(http::Http1Head& request,
                                                  const PeerInfo& peer) = 0;
  // The final response head from the upstream (or a 101, or the 2xx of a CONNECT), as received;
  // for a CONNECT the outbound listener terminates itself, a made-up 200.
  virtual void onResponseHead(const http::Http1Head& response) = 0;
  // Where the request goes ("host:port"), once chosen and before it is sent: what a request
  // that named no host (HTTP/1.0 without Host, in origin-form) is recorded with.
  virtual void onUpstreamChosen(std::string_view /*authority*/) {}
  // The request goes again on a fresh connection, after failure on the attempt just made and
  // before any answer (stats: the request's, upstream_address the attempt's peer). The head that
  // goes again, serialized for HTTP/1.1 or as HTTP/2 fields, may be rewritten (a new span per
  // attempt is a new parent for the next hop).
  virtual void onResend(UpstreamFailure /*failure*/, const StreamStats& /*stats*/,
                        std::string& /*h1_head*/) noexcept {}
  virtual void onResend(UpstreamFailure /*failure*/, const StreamStats& /*stats*/,
                        http::HeaderMap& /*h2_headers*/) noexcept {}
  // The upstream failed; a local reply follows when no response head was sent yet.
  virtual void onUpstreamFailure(UpstreamFailure kind) = 0;
  // The response's trailer fields (HTTP/2 trailers, HTTP/1.1 chunked trailers), after its head.
  virtual void onResponseTrailers(const http::HeaderMap& /*trailers*/) {}
  virtual void onComplete(const StreamStats& stats) = 0;
};

// One per worker and listener; called on that worker's thread.
// Tells observer (when there is one) of an answer tracecar gave itself, with no upstream behind
// it: no protocol version is recorded for it. An observer that throws is ignored: it only
// watches.
inline void observeOwnAnswer(StreamObserver* observer, int status, std::string_view reason = {},
                             bool upgrade = false) noexcept {
  if (observer == nullptr) return;
  try {
    http::Http1Head response;
    response.status = status;
    response.version_major = 0;
    response.version_minor = 0;
    response.reason = reason;
    response.upgrade = upgrade;
    observer->onResponseHead(response);
  } catch (...) {
  }
}

class StreamObserverFactory {
 public:
  virtual ~StreamObserverFactory() = default;
  virtual std::unique_ptr<StreamObserver> create(ListenerRole listener) = 0;
};

}  // namespace tracecar::proxy
