#pragma once

#include <atomic>
#include <cstdint>
#include <unordered_set>

#include "http/h2_session.h"
#include "proxy/data_path_counters.h"
#include "proxy/h2_upstream_pool.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

class H2DownstreamSession;

// One worker's HTTP/2 figures beyond DataPathCounters (which counts HTTP/2 requests, local
// replies, timeouts and connections like HTTP/1.1 ones). Single writer, relaxed atomics.
struct H2PathCounters {
  using Counter = DataPathCounters::Counter;
  using Gauge = DataPathCounters::Gauge;

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

  void add(Side& side, const http::H2Counters& c) noexcept {
    DataPathCounters::add(side.streams, c.streams_opened);
    DataPathCounters::add(side.headers_too_large, c.headers_too_large);
    DataPathCounters::add(side.premature_resets, c.premature_resets);
    DataPathCounters::add(side.rapid_reset_floods, c.rapid_reset_floods);
    DataPathCounters::add(side.continuation_floods, c.continuation_floods);
    DataPathCounters::add(side.settings_floods, c.settings_floods);
    DataPathCounters::add(side.ping_floods, c.ping_floods);
    DataPathCounters::add(side.empty_data_floods, c.empty_data_floods);
    DataPathCounters::add(side.protocol_errors, c.protocol_errors);
  }
};

// What the HTTP/2 data path of one worker shares: its upstream pool, its downstream sessions
// (for drain), its counters and the settings both sides advertise. Used on the worker's thread.
class H2Worker {
 public:
  explicit H2Worker(WorkerContext& context, const http::H2Settings& downstream = {},
                    const http::H2Settings& upstream = {}) noexcept
      : context_(context), downstream_settings_(downstream), pool_(context, counters_, upstream) {}
  H2Worker(const H2Worker&) = delete;
  H2Worker& operator=(const H2Worker&) = delete;

  WorkerContext& context() noexcept { return context_; }
  H2UpstreamPool& pool() noexcept { return pool_; }
  H2PathCounters& counters() noexcept { return counters_; }
  const http::H2Settings& downstreamSettings() const noexcept { return downstream_settings_; }
  std::unordered_set<H2DownstreamSession*>& sessions() noexcept { return sessions_; }

  // Graceful drain: each connection sends GOAWAY and closes once its streams are done; idle
  // upstream connections close.
  void drain() noexcept;
  // End of the drain timeout: everything closes now.
  void forceClose() noexcept;
  // Nothing left open (sessions and upstream connections).
  bool idle() const noexcept { return sessions_.empty() && pool_.empty(); }

 private:
  WorkerContext& context_;
  H2PathCounters counters_;
  http::H2Settings downstream_settings_;
  H2UpstreamPool pool_;
  std::unordered_set<H2DownstreamSession*> sessions_;
};

}  // namespace tracecar::proxy
