#pragma once

#include <algorithm>
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
  // The downstream header list limit is the configured request limit
  // (limits.request.max_header_bytes), whatever downstream says: a client is told it in
  // SETTINGS_MAX_HEADER_LIST_SIZE and answered 431 past it, as an HTTP/1.1 client is. The
  // upstream ones are the response limits (limits.response.max_header_bytes and max_headers):
  // an upstream answer over either is a 502, as from an HTTP/1.1 upstream.
  explicit H2Worker(WorkerContext& context, const http::H2Settings& downstream = {},
                    const http::H2Settings& upstream = {}) noexcept
      : context_(context),
        counters_(context.counters().h2),
        downstream_settings_(withRequestLimits(downstream, context.settings())),
        pool_(context, counters_, withResponseLimits(upstream, context.settings())) {}
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
  static http::H2Settings withRequestLimits(http::H2Settings settings,
                                            const DataPathSettings& data_path) noexcept {
    // The configuration caps the limit at 16 MiB: it fits the 32-bit setting.
    settings.max_header_list_bytes = static_cast<uint32_t>(
        std::min<size_t>(data_path.request_limits.max_header_bytes, UINT32_MAX));
    return settings;
  }
  static http::H2Settings withResponseLimits(http::H2Settings settings,
                                             const DataPathSettings& data_path) noexcept {
    settings.max_header_list_bytes = static_cast<uint32_t>(
        std::min<size_t>(data_path.response_limits.max_header_bytes, UINT32_MAX));
    settings.max_header_fields = static_cast<uint32_t>(
        std::min<size_t>(data_path.response_limits.max_header_count, UINT32_MAX));
    return settings;
  }

  WorkerContext& context_;
  H2PathCounters& counters_;  // the worker's, in DataPathCounters
  http::H2Settings downstream_settings_;
  H2UpstreamPool pool_;
  std::unordered_set<H2DownstreamSession*> sessions_;
};

}  // namespace tracecar::proxy
