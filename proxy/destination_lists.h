#pragma once

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "proxy/upstream_selector.h"

namespace tracecar::proxy {

// One worker's upstream connections by destination (UpstreamTarget::poolKey()), remembering the
// destination looked up last: requests come in runs to one destination, and comparing targets
// costs less than making the key and hashing it. A list left empty goes, except the remembered
// one, which goes once another is remembered; the remembered target holds its TLS context until
// then. Used on the owning worker's thread only.
template <class Connection>
class DestinationLists {
 public:
  using List = std::vector<Connection*>;

  // target's list; null when there is none. May throw (bad_alloc), leaving the lists as they
  // were.
  List* find(const UpstreamTarget& target) { return lookup(target, false); }

  // target's list, made empty when there is none. May throw (bad_alloc), leaving the lists as
  // they were.
  List& findOrAdd(const UpstreamTarget& target) { return *lookup(target, true); }

  // Takes connection out of the list under key (its target's poolKey()); false when it was in
  // none.
  bool remove(const std::string& key, Connection* connection) noexcept {
    auto it = lists_.find(key);
    if (it == lists_.end()) return false;
    List& list = it->second;
    const auto found = std::find(list.begin(), list.end(), connection);
    if (found == list.end()) return false;
    list.erase(found);
    if (list.empty() && &list != last_) lists_.erase(it);  // erasing moves no other list
    return true;
  }

  template <class Visit>
  void forEach(Visit&& visit) const {
    for (const auto& [key, list] : lists_) visit(list);
  }

 private:
  List* lookup(const UpstreamTarget& target, bool add) {
    if (last_ != nullptr && target == last_target_) return last_;
    std::string key = target.poolKey();
    List* list = nullptr;
    if (!add) {
      auto it = lists_.find(key);
      if (it == lists_.end()) return nullptr;  // nothing changed: last_ still good
      list = &it->second;
    } else {
      // The key is copied before the map changes: an insert whose key copy throws would leave
      // the map with a slot marked full and nothing in it.
      std::string stored = key;
      last_ = nullptr;  // an insert may move every list
      list = &lists_.try_emplace(std::move(stored)).first->second;
    }
    return remember(target, std::move(key), list);
  }

  // list (of target, under key) becomes the one remembered. May throw, leaving the map as it is.
  List* remember(const UpstreamTarget& target, std::string key, List* list) {
    UpstreamTarget copy = target;  // may throw: then the list before stays remembered, or none
    if (!last_key_.empty()) {
      auto before = lists_.find(last_key_);
      if (before != lists_.end() && before->second.empty() && &before->second != list) {
        lists_.erase(before);
      }
    }
    last_target_ = std::move(copy);
    last_key_ = std::move(key);
    last_ = list;
    return list;
  }

  absl::flat_hash_map<std::string, List> lists_;
  List* last_ = nullptr;  // null: look it up again (last_key_ may still name an empty list)
  UpstreamTarget last_target_;
  std::string last_key_;
};

}  // namespace tracecar::proxy
