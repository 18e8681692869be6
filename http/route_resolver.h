#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "http/route_cardinality_limiter.h"
#include "http/route_template.h"

namespace tracecar::http {

enum class RouteSource : uint8_t {
  kTemplate,   // a configured template matched
  kHeuristic,  // no template matched; the heuristic route was admitted under the cap
  kOverflow,   // no template matched and the cap is reached (or the path is not a path)
};

struct ResolvedRoute {
  std::string_view route;  // owned by the resolver: valid for its lifetime
  RouteSource source = RouteSource::kTemplate;
  uint32_t template_index = 0;  // meaningful for kTemplate only
};

// The route of a request on one listener: the first matching configured template, else the
// heuristic route, capped in number. Shared by the listener's workers; resolve() is safe to call
// from any of them at once.
class RouteResolver {
 public:
  explicit RouteResolver(RouteMatcher matcher,
                         size_t max_heuristic_routes = RouteCardinalityLimiter::kDefaultMaxRoutes)
      : matcher_(std::move(matcher)), limiter_(max_heuristic_routes) {}

  // scratch is the caller's (one per worker) buffer for the heuristic; the result never points
  // into it. Allocates only when a new heuristic route is admitted or scratch first grows.
  ResolvedRoute resolve(std::string_view path, std::string& scratch);
  // The same for a path that is its own route as it stands (a gRPC method's): the first
  // matching template, else the path itself, admitted under the same cap (kHeuristic) or
  // kOverflow past it. Never rewritten by the heuristic, and never past the cap.
  ResolvedRoute resolveLiteral(std::string_view path);

  const RouteMatcher& matcher() const noexcept { return matcher_; }
  const RouteCardinalityLimiter& limiter() const noexcept { return limiter_; }

 private:
  const RouteMatcher matcher_;
  RouteCardinalityLimiter limiter_;
};

}  // namespace tracecar::http
