#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace tracecar::http {

// Caps the number of distinct heuristic routes of one listener, so metrics labelled by route
// stay bounded whatever paths clients send. The first max_routes distinct routes are admitted
// and kept for the life of the limiter; past the cap every route not yet admitted is reported as
// kOtherRoute (which itself never takes a slot). Feed it only heuristic routes: configured
// templates are already bounded and must not use up the cap.
//
// One instance is shared by all workers of a listener, so the cap is exact. Entries are never
// removed, which makes reads simple: an open-addressing table of atomic pointers to immutable
// entries, probed without a lock. The mutex is taken only to admit a route that is not in the
// table while the cap is not yet reached; once it is, misses are answered without locking.
class RouteCardinalityLimiter {
 public:
  static constexpr size_t kDefaultMaxRoutes = 100;
  // Keeps the table's size sane whatever the configuration says.
  static constexpr size_t kMaxMaxRoutes = size_t{1} << 16;

  // max_routes is clamped to kMaxMaxRoutes; 0 reports every route as kOtherRoute.
  explicit RouteCardinalityLimiter(size_t max_routes = kDefaultMaxRoutes);
  RouteCardinalityLimiter(const RouteCardinalityLimiter&) = delete;
  RouteCardinalityLimiter& operator=(const RouteCardinalityLimiter&) = delete;
  ~RouteCardinalityLimiter();

  // route itself when it is (or now becomes) admitted, else kOtherRoute. The view is owned by
  // the limiter and valid for its lifetime. Allocates only when admitting a new route.
  std::string_view admit(std::string_view route);

  // Was route admitted? Never admits.
  bool contains(std::string_view route) const noexcept;

  size_t size() const noexcept { return size_.load(std::memory_order_acquire); }
  size_t maxRoutes() const noexcept { return max_routes_; }

 private:
  struct Entry {
    size_t hash = 0;
    std::string route;
  };

  const Entry* find(std::string_view route, size_t hash) const noexcept;

  const size_t max_routes_;
  const size_t mask_;  // table size - 1; the table is a power of two at least twice max_routes_
  const std::unique_ptr<std::atomic<const Entry*>[]> slots_;
  std::atomic<size_t> size_{0};  // stored (release) after the entry is published
  std::mutex admit_mutex_;
  // Owns what slots_ point to; guarded by admit_mutex_.
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace tracecar::http
