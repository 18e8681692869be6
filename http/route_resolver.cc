#include "http/route_resolver.h"

#include "http/route_heuristic.h"

namespace tracecar::http {

ResolvedRoute RouteResolver::resolve(std::string_view path, std::string& scratch) {
  if (std::optional<RouteMatch> m = matcher_.match(path)) {
    return {m->route, RouteSource::kTemplate, m->index};
  }
  heuristicRoute(path, scratch);
  const std::string_view route = limiter_.admit(scratch);
  return {route, route == kOtherRoute ? RouteSource::kOverflow : RouteSource::kHeuristic, 0};
}

ResolvedRoute RouteResolver::resolveLiteral(std::string_view path) {
  if (std::optional<RouteMatch> m = matcher_.match(path)) {
    return {m->route, RouteSource::kTemplate, m->index};
  }
  const std::string_view route = limiter_.admit(path);
  return {route, route == kOtherRoute ? RouteSource::kOverflow : RouteSource::kHeuristic, 0};
}

}  // namespace tracecar::http
