#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/h2_session.h"
#include "proxy/data_path_settings.h"
#include "proxy/sniff.h"
#include "proxy/stream_observer.h"

namespace tracecar::proxy {

// Which timer fired.
enum class DataPathTimeout : uint8_t {
  kHeaderRead,        // request head too slow: 408
  kDownstreamIdle,    // keep-alive connection closed
  kUpstreamConnect,   // 503
  kUpstreamResponse,  // 504
  kUpstreamIdle,      // pooled connection closed
  kDrain,             // connection cut at the end of the drain timeout
  kTunnelIdle,        // a byte tunnel with no byte either way closed
  kCount
};
inline constexpr size_t kDataPathTimeoutCount = static_cast<size_t>(DataPathTimeout::kCount);
// The timeout's key under timeouts: in the configuration ("request_header", ...).
std::string_view dataPathTimeoutName(DataPathTimeout timeout) noexcept;

// Why a downstream connection was closed without being forwarded.
enum class ConnectionRefusal : uint8_t {
  kLoop,           // its original destination is tracecar itself
  kNoDestination,  // not HTTP, and nowhere to tunnel it (the outbound listener, not redirected)
  kUpstreamFailed,  // its opaque tunnel's destination could not be reached
  kCount
};
inline constexpr size_t kConnectionRefusalCount = static_cast<size_t>(ConnectionRefusal::kCount);
std::string_view connectionRefusalName(ConnectionRefusal refusal) noexcept;  // "loop", ...

// The two directions of a tunnel.
enum class TunnelDirection : uint8_t {
  kToUpstream,    // sent by the downstream peer
  kToDownstream,  // sent by the upstream peer
  kCount
};
inline constexpr size_t kTunnelDirectionCount = static_cast<size_t>(TunnelDirection::kCount);
std::string_view tunnelDirectionName(TunnelDirection direction) noexcept;  // "to_upstream", ...

// Where a TLS session of the data path is: terminated on the inbound listener, or originated
// by tracecar to an upstream.
enum class TlsEnd : uint8_t {
  kInbound,   // terminated on the inbound listener
  kUpstream,  // originated to an upstream
  kCount
};
inline constexpr size_t kTlsEndCount = static_cast<size_t>(TlsEnd::kCount);
std::string_view tlsEndName(TlsEnd end) noexcept;  // "inbound", "upstream"

// One worker's data path figures. The worker is the only writer (a relaxed load and store, no
// read-modify-write); any thread may read them, e.g. the metrics scrape.
// One worker's HTTP/2 figures beyond DataPathCounters (which counts HTTP/2 requests, local
// replies, timeouts and connections like HTTP/1.1 ones). Single writer, relaxed atomics.
struct H2PathCounters {
  using Counter = std::atomic<uint64_t>;
  using Gauge = std::atomic<int64_t>;

  // H2Session's counters, summed over the connections when they close, per side.
  struct Side {
    Counter streams{0};
    Counter headers_too_large{0};
    Counter premature_resets{0};
    Counter rapid_reset_floods{0};
    Counter continuation_floods{0};
    Counter settings_floods{0};
    Counter ping_floods{0};
    Counter empty_data_floods{0};
    Counter protocol_errors{0};
  };
  Side downstream;
  Side upstream;

  Counter resets_to_upstream{0};    // RST_STREAM from the downstream, relayed
  Counter resets_to_downstream{0};  // RST_STREAM from the upstream, relayed
  Counter upstream_goaways{0};      // GOAWAY received from upstreams
  Counter refused_retries{0};       // refused upstream streams sent again on another connection
  Gauge upstream_connections_open{0};

  static void bump(Counter& counter, uint64_t n = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void add(Side& side, const http::H2Counters& c) noexcept {
    bump(side.streams, c.streams_opened);
    bump(side.headers_too_large, c.headers_too_large);
    bump(side.premature_resets, c.premature_resets);
    bump(side.rapid_reset_floods, c.rapid_reset_floods);
    bump(side.continuation_floods, c.continuation_floods);
    bump(side.settings_floods, c.settings_floods);
    bump(side.ping_floods, c.ping_floods);
    bump(side.empty_data_floods, c.empty_data_floods);
    bump(side.protocol_errors, c.protocol_errors);
  }
};

struct DataPathCounters {
  using Counter = std::atomic<uint64_t>;
  using Gauge = std::atomic<int64_t>;

  std::array<Gauge, kListenerRoleCount> connections_open{};
  std::array<Counter, kListenerRoleCount> connections_total{};
  std::array<Counter, kListenerRoleCount> requests_total{};  // request heads parsed
  // Requests answered by tracecar, by listener and reason.
  std::array<std::array<Counter, kLocalReplyReasonCount>, kListenerRoleCount> local_replies{};
  std::array<Counter, kDataPathTimeoutCount> timeouts{};

  Counter upstream_connects{0};  // fresh upstream connections established
  Counter upstream_reuses{0};    // requests sent on a pooled connection
  Counter upstream_retries{0};   // a reused connection failed; the request went on a fresh one
  Counter upstream_failures{0};  // exchanges that failed on the upstream side
  Counter tunnels{0};            // Upgrade / CONNECT tunnels opened
  Gauge upstream_connections_open{0};
  Gauge upstream_connections_idle{0};

  // Bytes read but not yet written on (parser leftovers and write queues): what the data path
  // holds in memory for streaming, now and at its highest.
  Gauge buffered_bytes{0};
  Gauge buffered_bytes_peak{0};

  // Transparent mode and sniffing: connections by listener and sniffed protocol, the opaque
  // tunnels among them and their bytes, and the connections refused.
  using ProtocolCounters = std::array<Counter, kSniffedProtocolCount>;
  std::array<ProtocolCounters, kListenerRoleCount> sniffed{};
  std::array<ProtocolCounters, kListenerRoleCount> opaque_tunnels{};
  std::array<std::array<std::array<Counter, kTunnelDirectionCount>, kSniffedProtocolCount>,
             kListenerRoleCount>
      opaque_bytes{};
  std::array<std::array<Counter, kConnectionRefusalCount>, kListenerRoleCount> refused{};

  // The HTTP/2 data path's own figures (its connections, requests and replies count above).
  H2PathCounters h2;

  // TLS handshakes completed and failed, by end.
  std::array<Counter, kTlsEndCount> tls_handshakes{};
  std::array<Counter, kTlsEndCount> tls_handshake_failures{};

  static void add(Counter& counter, uint64_t n = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void add(Gauge& gauge, int64_t n) noexcept {
    gauge.store(gauge.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void localReply(ListenerRole role, LocalReplyReason reason) noexcept {
    add(local_replies[static_cast<size_t>(role)][static_cast<size_t>(reason)]);
  }
  void timeout(DataPathTimeout which) noexcept { add(timeouts[static_cast<size_t>(which)]); }
  void refusal(ListenerRole role, ConnectionRefusal why) noexcept {
    add(refused[static_cast<size_t>(role)][static_cast<size_t>(why)]);
  }
  void buffered(int64_t delta) noexcept {
    const int64_t now = buffered_bytes.load(std::memory_order_relaxed) + delta;
    buffered_bytes.store(now, std::memory_order_relaxed);
    if (now > buffered_bytes_peak.load(std::memory_order_relaxed)) {
      buffered_bytes_peak.store(now, std::memory_order_relaxed);
    }
  }
};

// The figures of every worker at one moment, summed (the buffered-bytes peak is the highest
// worker's).
struct DataPathSnapshot {
  std::array<int64_t, kListenerRoleCount> connections_open{};
  std::array<uint64_t, kListenerRoleCount> connections_total{};
  std::array<uint64_t, kListenerRoleCount> requests_total{};
  std::array<std::array<uint64_t, kLocalReplyReasonCount>, kListenerRoleCount> local_replies{};
  std::array<uint64_t, kDataPathTimeoutCount> timeouts{};
  uint64_t upstream_connects = 0;
  uint64_t upstream_reuses = 0;
  uint64_t upstream_retries = 0;
  uint64_t upstream_failures = 0;
  uint64_t tunnels = 0;
  int64_t upstream_connections_open = 0;
  int64_t upstream_connections_idle = 0;
  int64_t buffered_bytes = 0;
  int64_t buffered_bytes_peak = 0;
  using ProtocolFigures = std::array<uint64_t, kSniffedProtocolCount>;
  std::array<ProtocolFigures, kListenerRoleCount> sniffed{};
  std::array<ProtocolFigures, kListenerRoleCount> opaque_tunnels{};
  std::array<std::array<std::array<uint64_t, kTunnelDirectionCount>, kSniffedProtocolCount>,
             kListenerRoleCount>
      opaque_bytes{};
  std::array<std::array<uint64_t, kConnectionRefusalCount>, kListenerRoleCount> refused{};
  // HTTP/2, per side (kH2Downstream, kH2Upstream): the codec's figures of closed connections.
  struct H2Side {
    uint64_t streams = 0;
    uint64_t headers_too_large = 0;
    uint64_t premature_resets = 0;
    uint64_t rapid_reset_floods = 0;
    uint64_t continuation_floods = 0;
    uint64_t settings_floods = 0;
    uint64_t ping_floods = 0;
    uint64_t empty_data_floods = 0;
    uint64_t protocol_errors = 0;
  };
  static constexpr size_t kH2Downstream = 0;
  static constexpr size_t kH2Upstream = 1;
  std::array<H2Side, 2> h2_sides{};
  uint64_t h2_resets_to_upstream = 0;
  uint64_t h2_resets_to_downstream = 0;
  uint64_t h2_upstream_goaways = 0;
  uint64_t h2_refused_retries = 0;
  int64_t h2_upstream_connections_open = 0;
  std::array<uint64_t, kTlsEndCount> tls_handshakes{};
  std::array<uint64_t, kTlsEndCount> tls_handshake_failures{};
  // Certificate files loaded again after a change, and changes that failed to load (filled by
  // whoever reloads them, not by the workers).
  uint64_t tls_reloads = 0;
  uint64_t tls_reload_failures = 0;

  uint64_t localReplies(ListenerRole role, LocalReplyReason reason) const noexcept {
    return local_replies[static_cast<size_t>(role)][static_cast<size_t>(reason)];
  }
  uint64_t timeoutCount(DataPathTimeout which) const noexcept {
    return timeouts[static_cast<size_t>(which)];
  }
  uint64_t sniffedCount(ListenerRole role, SniffedProtocol protocol) const noexcept {
    return sniffed[static_cast<size_t>(role)][static_cast<size_t>(protocol)];
  }
  uint64_t opaqueTunnels(ListenerRole role, SniffedProtocol protocol) const noexcept {
    return opaque_tunnels[static_cast<size_t>(role)][static_cast<size_t>(protocol)];
  }
  uint64_t opaqueBytes(ListenerRole role, SniffedProtocol protocol,
                       TunnelDirection direction) const noexcept {
    return opaque_bytes[static_cast<size_t>(role)][static_cast<size_t>(protocol)]
                       [static_cast<size_t>(direction)];
  }
  uint64_t refusals(ListenerRole role, ConnectionRefusal why) const noexcept {
    return refused[static_cast<size_t>(role)][static_cast<size_t>(why)];
  }
  void add(const DataPathCounters& counters) noexcept;
};

}  // namespace tracecar::proxy
