#include "http/route_cardinality_limiter.h"

#include <algorithm>
#include <bit>
#include <functional>

#include "http/route_heuristic.h"

namespace tracecar::http {
namespace {

// At most half full, so probe chains stay short and always reach an empty slot.
size_t tableSize(size_t max_routes) noexcept {
  return std::bit_ceil(std::max<size_t>(2, 2 * max_routes));
}

}  // namespace

RouteCardinalityLimiter::RouteCardinalityLimiter(size_t max_routes)
    : max_routes_(std::min(max_routes, kMaxMaxRoutes)),
      mask_(tableSize(max_routes_) - 1),
      slots_(std::make_unique<std::atomic<const Entry*>[]>(mask_ + 1)) {
  // Admission never grows the vector, so publishing an entry cannot be followed by a throw.
  entries_.reserve(max_routes_);
}

RouteCardinalityLimiter::~RouteCardinalityLimiter() = default;

const RouteCardinalityLimiter::Entry* RouteCardinalityLimiter::find(std::string_view route,
                                                                    size_t hash) const noexcept {
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Entry* e = slots_[i].load(std::memory_order_acquire);
    if (e == nullptr) return nullptr;
    if (e->hash == hash && e->route == route) return e;
  }
}

bool RouteCardinalityLimiter::contains(std::string_view route) const noexcept {
  return find(route, std::hash<std::string_view>{}(route)) != nullptr;
}

std::string_view RouteCardinalityLimiter::admit(std::string_view route) {
  if (route == kOtherRoute) return kOtherRoute;
  const size_t hash = std::hash<std::string_view>{}(route);
  if (const Entry* e = find(route, hash)) return e->route;
  if (size_.load(std::memory_order_acquire) >= max_routes_) {
    // Probe again: the route may have been the last one admitted, after our first probe; the
    // acquire above makes every admitted entry visible now.
    const Entry* e = find(route, hash);
    return e != nullptr ? std::string_view(e->route) : kOtherRoute;
  }

  std::lock_guard<std::mutex> lock(admit_mutex_);
  if (const Entry* e = find(route, hash)) return e->route;
  const size_t size = size_.load(std::memory_order_relaxed);
  if (size >= max_routes_) return kOtherRoute;
  auto entry = std::make_unique<Entry>(Entry{hash, std::string(route)});
  size_t i = hash & mask_;
  while (slots_[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & mask_;
  const Entry* published = entry.get();
  entries_.push_back(std::move(entry));
  slots_[i].store(published, std::memory_order_release);
  size_.store(size + 1, std::memory_order_release);
  return published->route;
}

}  // namespace tracecar::http
