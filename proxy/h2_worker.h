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


// What the HTTP/2 data path of one worker shares: its upstream pool, its downstream sessions
// (for drain), its counters and the settings both sides advertise. Used on the worker's thread.
class H2Worker {
 public:
  explicit H2Worker(WorkerContext& context, const http::H2Settings& downstream = {},
                    const http::H2Settings& upstream = {}) noexcept
      : context_(context),
        counters_(context.counters().h2),
        downstream_settings_(downstream),
        pool_(context, counters_, upstream) {}
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
  H2PathCounters& counters_;  // the worker's, in DataPathCounters
  http::H2Settings downstream_settings_;
  H2UpstreamPool pool_;
  std::unordered_set<H2DownstreamSession*> sessions_;
};

}  // namespace tracecar::proxy
