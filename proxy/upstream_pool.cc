#include "proxy/upstream_pool.h"

#include <algorithm>
#include <new>

namespace tracecar::proxy {

UpstreamPool::~UpstreamPool() {
  // The worker closes every connection and runs its loop until they are retired; any left
  // (a loop that could not run) are freed with their memory only.
  for (UpstreamConnection* connection : all_) delete connection;
}

UpstreamConnection* UpstreamPool::acquire(const UpstreamTarget& target,
                                          UpstreamConnectionCallbacks& client,
                                          bool fresh_only) noexcept {
  DataPathCounters& counters = context_.counters();
  try {
    if (!fresh_only) {
      auto* list = idle_.find(target);
      if (list != nullptr && !list->empty()) {
        UpstreamConnection* connection = list->back();
        list->pop_back();
        DataPathCounters::add(counters.upstream_connections_idle, -1);
        connection->reattach(client);
        return connection;
      }
    }
    auto* connection = new UpstreamConnection(context_, *this, target);
    all_.insert(connection);
    DataPathCounters::add(counters.upstream_connections_open, 1);
    connection->start(client);
    return connection;
  } catch (...) {
    return nullptr;
  }
}

void UpstreamPool::release(UpstreamConnection* connection, bool request_complete) noexcept {
  if (connection == nullptr) return;
  const size_t max_idle = context_.settings().max_idle_upstream_per_destination;
  if (!request_complete || !connection->reusable() || context_.draining() || max_idle == 0) {
    connection->close();
    return;
  }
  try {
    auto& list = idle_.findOrAdd(connection->target());
    if (list.size() >= max_idle) {
      connection->close();
      return;
    }
    list.push_back(connection);
  } catch (...) {
    connection->close();
    return;
  }
  DataPathCounters::add(context_.counters().upstream_connections_idle, 1);
  connection->park();
}

void UpstreamPool::closeIdle() noexcept {
  std::vector<UpstreamConnection*> idle;
  idle_.forEach([&idle](const auto& list) { idle.insert(idle.end(), list.begin(), list.end()); });
  for (UpstreamConnection* connection : idle) connection->close();
}

void UpstreamPool::closeAll() noexcept {
  std::vector<UpstreamConnection*> all(all_.begin(), all_.end());
  for (UpstreamConnection* connection : all) {
    UpstreamConnectionCallbacks* client = connection->client_;
    connection->close();
    if (client != nullptr) client->onUpstreamFailed(UpstreamFailure::kOther, false);
  }
}

size_t UpstreamPool::idleCount() const noexcept {
  size_t n = 0;
  idle_.forEach([&n](const auto& list) { n += list.size(); });
  return n;
}

void UpstreamPool::removeIdle(UpstreamConnection* connection) noexcept {
  if (idle_.remove(connection->poolKey(), connection)) {
    DataPathCounters::add(context_.counters().upstream_connections_idle, -1);
  }
}

void UpstreamPool::forget(UpstreamConnection* connection) noexcept {
  if (all_.erase(connection) > 0) {
    DataPathCounters::add(context_.counters().upstream_connections_open, -1);
  }
}

}  // namespace tracecar::proxy
