#include <uv.h>

#include <algorithm>

#include "proxy/data_path_counters.h"
#include "proxy/data_path_settings.h"
#include "proxy/fd_limit.h"
#include "proxy/stream_observer.h"

namespace tracecar::proxy {

std::string_view listenerRoleName(ListenerRole role) noexcept {
  switch (role) {
    case ListenerRole::kInbound:
      return "inbound";
    case ListenerRole::kOutbound:
      return "outbound";
    case ListenerRole::kCount:
      break;
  }
  return "unknown";
}

std::string_view toString(UpstreamProtocol protocol) noexcept {
  switch (protocol) {
    case UpstreamProtocol::kSame:
      return "same";
    case UpstreamProtocol::kHttp1:
      return "http1";
    case UpstreamProtocol::kHttp2:
      return "h2";
  }
  return "same";
}

std::optional<UpstreamProtocol> parseUpstreamProtocol(std::string_view text) noexcept {
  if (text == "same") return UpstreamProtocol::kSame;
  if (text == "http1") return UpstreamProtocol::kHttp1;
  if (text == "h2") return UpstreamProtocol::kHttp2;
  return std::nullopt;
}

UpstreamFailure connectFailureOf(int uv_status) noexcept {
  switch (uv_status) {
    case UV_ETIMEDOUT: return UpstreamFailure::kConnectTimeout;
    case UV_ECONNREFUSED: return UpstreamFailure::kConnectionRefused;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_ENETDOWN:
    case UV_EHOSTDOWN: return UpstreamFailure::kHostUnreachable;
    case UV_EADDRNOTAVAIL: return UpstreamFailure::kLocalAddress;
    case UV_EMFILE:
    case UV_ENFILE:
      warnOutOfFileDescriptors(uv_status == UV_ENFILE);
      return UpstreamFailure::kFileDescriptors;
    default: return UpstreamFailure::kConnectFailed;
  }
}

UpstreamFailure resolveFailureOf(int uv_status) noexcept {
  if (uv_status == UV_EMFILE || uv_status == UV_ENFILE) return connectFailureOf(uv_status);
  return UpstreamFailure::kResolveFailed;
}

LocalReplyReason localReplyReasonOf(UpstreamFailure failure) noexcept {
  switch (failure) {
    case UpstreamFailure::kConnectionRefused: return LocalReplyReason::kUpstreamRefused;
    case UpstreamFailure::kConnectTimeout: return LocalReplyReason::kConnectTimeout;
    case UpstreamFailure::kResponseTimeout: return LocalReplyReason::kResponseTimeout;
    case UpstreamFailure::kConnectionReset: return LocalReplyReason::kUpstreamReset;
    case UpstreamFailure::kBadResponse: return LocalReplyReason::kBadResponse;
    case UpstreamFailure::kResponseTooLarge: return LocalReplyReason::kResponseTooLarge;
    case UpstreamFailure::kResolveFailed: return LocalReplyReason::kResolveFailed;
    case UpstreamFailure::kTlsFailed: return LocalReplyReason::kUpstreamTls;
    case UpstreamFailure::kLoopDetected: return LocalReplyReason::kLoopDetected;
    case UpstreamFailure::kHostUnreachable:
    case UpstreamFailure::kConnectFailed:
    case UpstreamFailure::kLocalAddress: return LocalReplyReason::kUpstreamRefused;
    case UpstreamFailure::kFileDescriptors: return LocalReplyReason::kFileDescriptors;
    case UpstreamFailure::kOther: break;
  }
  return LocalReplyReason::kUpstreamReset;
}

std::string_view localReplyReasonName(LocalReplyReason reason) noexcept {
  switch (reason) {
    case LocalReplyReason::kHeadersTooLarge: return "headers_too_large";
    case LocalReplyReason::kTooManyHeaders: return "too_many_headers";
    case LocalReplyReason::kUriTooLong: return "uri_too_long";
    case LocalReplyReason::kBadRequest: return "bad_request";
    case LocalReplyReason::kBaggage: return "baggage";
    case LocalReplyReason::kTracestate: return "tracestate";
    case LocalReplyReason::kHeaderTimeout: return "header_timeout";
    case LocalReplyReason::kUpstreamRefused: return "upstream_refused";
    case LocalReplyReason::kUpstreamReset: return "upstream_reset";
    case LocalReplyReason::kBadResponse: return "bad_response";
    case LocalReplyReason::kResponseTooLarge: return "response_too_large";
    case LocalReplyReason::kResolveFailed: return "resolve_failed";
    case LocalReplyReason::kUpstreamTls: return "upstream_tls";
    case LocalReplyReason::kConnectTimeout: return "connect_timeout";
    case LocalReplyReason::kResponseTimeout: return "response_timeout";
    case LocalReplyReason::kLoopDetected: return "loop_detected";
    case LocalReplyReason::kFileDescriptors: return "file_descriptors";
    case LocalReplyReason::kNotImplemented: return "not_implemented";
    case LocalReplyReason::kRequestBodyTimeout: return "request_body_timeout";
    case LocalReplyReason::kObserver: return "observer";
    case LocalReplyReason::kCount: break;
  }
  return "unknown";
}

std::string_view dataPathTimeoutName(DataPathTimeout timeout) noexcept {
  switch (timeout) {
    case DataPathTimeout::kHeaderRead: return "request_header";
    case DataPathTimeout::kDownstreamIdle: return "downstream_idle";
    case DataPathTimeout::kUpstreamConnect: return "upstream_connect";
    case DataPathTimeout::kUpstreamResponse: return "upstream_response";
    case DataPathTimeout::kUpstreamIdle: return "upstream_idle";
    case DataPathTimeout::kDrain: return "drain";
    case DataPathTimeout::kTunnelIdle: return "tunnel_idle";
    case DataPathTimeout::kCount: break;
  }
  return "unknown";
}

std::string_view connectionRefusalName(ConnectionRefusal refusal) noexcept {
  switch (refusal) {
    case ConnectionRefusal::kLoop: return "loop";
    case ConnectionRefusal::kNoDestination: return "no_destination";
    case ConnectionRefusal::kUpstreamFailed: return "upstream_failed";
    case ConnectionRefusal::kCount: break;
  }
  return "unknown";
}

std::string_view tunnelDirectionName(TunnelDirection direction) noexcept {
  switch (direction) {
    case TunnelDirection::kToUpstream: return "to_upstream";
    case TunnelDirection::kToDownstream: return "to_downstream";
    case TunnelDirection::kCount: break;
  }
  return "unknown";
}

std::string_view tlsEndName(TlsEnd end) noexcept {
  switch (end) {
    case TlsEnd::kInbound: return "inbound";
    case TlsEnd::kUpstream: return "upstream";
    case TlsEnd::kCount: break;
  }
  return "unknown";
}

void DataPathSnapshot::add(const DataPathCounters& c) noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  for (size_t e = 0; e < kTlsEndCount; ++e) {
    tls_handshakes[e] += c.tls_handshakes[e].load(relaxed);
    tls_handshake_failures[e] += c.tls_handshake_failures[e].load(relaxed);
  }
  for (size_t r = 0; r < kListenerRoleCount; ++r) {
    connections_open[r] += c.connections_open[r].load(relaxed);
    connections_total[r] += c.connections_total[r].load(relaxed);
    requests_total[r] += c.requests_total[r].load(relaxed);
    for (size_t i = 0; i < kLocalReplyReasonCount; ++i) {
      local_replies[r][i] += c.local_replies[r][i].load(relaxed);
    }
    for (size_t p = 0; p < kSniffedProtocolCount; ++p) {
      sniffed[r][p] += c.sniffed[r][p].load(relaxed);
      opaque_tunnels[r][p] += c.opaque_tunnels[r][p].load(relaxed);
      for (size_t d = 0; d < kTunnelDirectionCount; ++d) {
        opaque_bytes[r][p][d] += c.opaque_bytes[r][p][d].load(relaxed);
      }
    }
    for (size_t i = 0; i < kConnectionRefusalCount; ++i) {
      refused[r][i] += c.refused[r][i].load(relaxed);
    }
  }
  for (size_t i = 0; i < kDataPathTimeoutCount; ++i) timeouts[i] += c.timeouts[i].load(relaxed);
  upstream_connects += c.upstream_connects.load(relaxed);
  upstream_reuses += c.upstream_reuses.load(relaxed);
  upstream_retries += c.upstream_retries.load(relaxed);
  upstream_failures += c.upstream_failures.load(relaxed);
  tunnels += c.tunnels.load(relaxed);
  upstream_connections_open += c.upstream_connections_open.load(relaxed);
  upstream_connections_idle += c.upstream_connections_idle.load(relaxed);
  buffered_bytes += c.buffered_bytes.load(relaxed);
  buffered_bytes_peak = std::max(buffered_bytes_peak, c.buffered_bytes_peak.load(relaxed));
  const auto addSide = [](H2Side& to, const H2PathCounters::Side& from) {
    to.streams += from.streams.load(std::memory_order_relaxed);
    to.headers_too_large += from.headers_too_large.load(std::memory_order_relaxed);
    to.premature_resets += from.premature_resets.load(std::memory_order_relaxed);
    to.rapid_reset_floods += from.rapid_reset_floods.load(std::memory_order_relaxed);
    to.continuation_floods += from.continuation_floods.load(std::memory_order_relaxed);
    to.settings_floods += from.settings_floods.load(std::memory_order_relaxed);
    to.ping_floods += from.ping_floods.load(std::memory_order_relaxed);
    to.empty_data_floods += from.empty_data_floods.load(std::memory_order_relaxed);
    to.protocol_errors += from.protocol_errors.load(std::memory_order_relaxed);
  };
  addSide(h2_sides[kH2Downstream], c.h2.downstream);
  addSide(h2_sides[kH2Upstream], c.h2.upstream);
  h2_resets_to_upstream += c.h2.resets_to_upstream.load(relaxed);
  h2_resets_to_downstream += c.h2.resets_to_downstream.load(relaxed);
  h2_upstream_goaways += c.h2.upstream_goaways.load(relaxed);
  h2_refused_retries += c.h2.refused_retries.load(relaxed);
  h2_upstream_connections_open += c.h2.upstream_connections_open.load(relaxed);
}

}  // namespace tracecar::proxy
