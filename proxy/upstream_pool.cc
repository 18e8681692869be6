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
      IdleList* list = idleList(target, false);
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
    IdleList& list = *idleList(connection->target(), true);
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
  for (auto& [key, list] : idle_) idle.insert(idle.end(), list.begin(), list.end());
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
  for (const auto& [key, list] : idle_) n += list.size();
  return n;
}

void UpstreamPool::removeIdle(UpstreamConnection* connection) noexcept {
  auto it = idle_.find(connection->poolKey());
  if (it == idle_.end()) return;
  IdleList& list = it->second;
  const auto found = std::find(list.begin(), list.end(), connection);
  if (found == list.end()) return;
  list.erase(found);
  if (list.empty() && &list != last_list_) idle_.erase(it);
  DataPathCounters::add(context_.counters().upstream_connections_idle, -1);
}

UpstreamPool::IdleList* UpstreamPool::idleList(const UpstreamTarget& target, bool create) {
  if (last_list_ != nullptr && target == last_target_) return last_list_;
  std::string key = target.poolKey();
  if (!create) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;  // the map unchanged: last_list_ still good
    return remember(target, std::move(key), &it->second);
  }
  // The key is copied before the map changes: an insert whose key copy throws would leave the
  // map with a slot marked full and nothing in it.
  std::string stored = key;
  last_list_ = nullptr;  // an insert may move every list
  IdleList* list = &idle_.try_emplace(std::move(stored)).first->second;
  return remember(target, std::move(key), list);
}

UpstreamPool::IdleList* UpstreamPool::remember(const UpstreamTarget& target, std::string key,
                                               IdleList* list) {
  UpstreamTarget copy = target;  // may throw: then the list before stays remembered, or none
  // The list remembered before is no longer kept empty (erasing moves no other list).
  if (!last_key_.empty()) {
    auto before = idle_.find(last_key_);
    if (before != idle_.end() && before->second.empty() && &before->second != list) {
      idle_.erase(before);
    }
  }
  last_target_ = std::move(copy);
  last_key_ = std::move(key);
  last_list_ = list;
  return list;
}

void UpstreamPool::forget(UpstreamConnection* connection) noexcept {
  if (all_.erase(connection) > 0) {
    DataPathCounters::add(context_.counters().upstream_connections_open, -1);
  }
}

}  // namespace tracecar::proxy
