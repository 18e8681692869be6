#pragma once

#include <cstddef>
#include <string>
#include <unordered_set>
#include <vector>

#include "proxy/destination_lists.h"
#include "proxy/upstream_connection.h"
#include "proxy/upstream_selector.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

// The keep-alive upstream connections of one worker, keyed by destination ("host:port").
class UpstreamPool {
 public:
  explicit UpstreamPool(WorkerContext& context) noexcept : context_(context) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // A connection to target for client: an idle pooled one (ready() at once; reused()) unless
  // fresh_only, else a new one that reports onUpstreamReady or onUpstreamFailed. Null only when
  // out of memory.
  UpstreamConnection* acquire(const UpstreamTarget& target, UpstreamConnectionCallbacks& client,
                              bool fresh_only) noexcept;
  // The client is done with the connection: back to the pool when the exchange left it
  // reusable (request_complete: the whole request was sent), else closed.
  void release(UpstreamConnection* connection, bool request_complete) noexcept;
  // Drain: close the idle ones now, and every one released from now on.
  void closeIdle() noexcept;
  // End of the drain: close every connection.
  void closeAll() noexcept;
  bool empty() const noexcept { return all_.empty(); }
  size_t idleCount() const noexcept;

 private:
  friend class UpstreamConnection;
  void removeIdle(UpstreamConnection* connection) noexcept;
  void forget(UpstreamConnection* connection) noexcept;

  WorkerContext& context_;
  DestinationLists<UpstreamConnection> idle_;
  std::unordered_set<UpstreamConnection*> all_;
};

}  // namespace tracecar::proxy
