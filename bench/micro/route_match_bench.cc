// Route matching against 100 REST templates, the heuristic on a miss, and the whole resolver.
// Figures, not tests: run scripts/bench.sh --benchmark_filter=Route.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/route_heuristic.h"
#include "http/route_resolver.h"
#include "http/route_template.h"

namespace tracecar::http {
namespace {

// A service's routes as one would configure them: specific literals before parameters.
std::vector<std::string> hundredTemplates() {
  std::vector<std::string> t;
  const char* const resources[][2] = {
      {"users", "orders"},     {"orders", "items"},     {"products", "variants"},
      {"carts", "items"},      {"payments", "refunds"}, {"invoices", "lines"},
      {"shipments", "events"}, {"reviews", "comments"}, {"categories", "products"},
      {"inventory", "moves"},  {"accounts", "members"}, {"sessions", "tokens"},
  };
  for (const auto& r : resources) {
    const std::string base = std::string("/api/v1/") + r[0];
    t.push_back(base);
    t.push_back(base + "/search");
    t.push_back(base + "/{id}");
    t.push_back(base + "/{id}/" + r[1]);
    t.push_back(base + "/{id}/" + r[1] + "/{sub_id}");
    t.push_back(base + "/{id}/status");
  }
  for (const char* r : {"users", "orders", "products"}) {
    const std::string base = std::string("/api/v2/") + r;
    t.push_back(base);
    t.push_back(base + "/{id}");
    t.push_back(base + "/{id}/history");
    t.push_back(base + "/{id}/history/{version}");
  }
  for (const char* s : {"/", "/healthz", "/readyz", "/metrics", "/login", "/logout", "/oauth/token",
                        "/oauth/authorize", "/.well-known/openid-configuration", "/graphql",
                        "/admin/users/{id}", "/admin/settings", "/webhooks/{provider}",
                        "/static/{path...}", "/assets/{path...}", "/internal/debug/{path...}"}) {
    t.push_back(s);
  }
  if (t.size() != 100) {
    std::fprintf(stderr, "expected 100 templates, built %zu\n", t.size());
    std::abort();
  }
  return t;
}

const RouteMatcher& matcher() {
  static const RouteMatcher m = [] {
    const std::vector<std::string> t = hundredTemplates();
    absl::StatusOr<RouteMatcher> compiled = RouteMatcher::compile(std::span<const std::string>(t));
    if (!compiled.ok()) std::abort();
    return std::move(*compiled);
  }();
  return m;
}

// The baseline the trie replaces: each template on its own, tried in order.
const std::vector<RouteMatcher>& oneByOne() {
  static const std::vector<RouteMatcher> all = [] {
    std::vector<RouteMatcher> v;
    for (const std::string& t : hundredTemplates()) {
      v.push_back(*RouteMatcher::compile({std::string_view(t)}));
    }
    return v;
  }();
  return all;
}

constexpr std::string_view kMixed[] = {
    "/api/v1/users/42",
    "/api/v1/orders/98765/items/3?expand=product",
    "/api/v1/products/search?q=shoes",
    "/api/v2/products/1234/history/7",
    "/healthz",
    "/static/js/app.3f9a2c.js",
    "/webhooks/stripe",
    "/api/v1/sessions/9f1c2d3e-aaaa-bbbb-cccc-0123456789ab/tokens",
    "/api/v3/unknown/things/42",        // miss
    "/wp-admin/setup.php",              // miss
    "/api/v1/users/42/orders/7/extra",  // miss, deep
    "/",
    "/api/v1/inventory/77/moves",
    "/admin/users/5",
    "/favicon.ico",  // miss
    "/api/v1/accounts/acme/members/bob",
};

void matchOne(benchmark::State& state, std::string_view path) {
  const RouteMatcher& m = matcher();
  for (auto _ : state) {
    benchmark::DoNotOptimize(path);
    benchmark::DoNotOptimize(m.match(path));
  }
}

void BM_RouteMatchHitShallow(benchmark::State& s) { matchOne(s, "/api/v1/users/42"); }
void BM_RouteMatchHitDeep(benchmark::State& s) {
  matchOne(s, "/api/v1/orders/98765/items/3?expand=product");
}
void BM_RouteMatchHitLastTemplates(benchmark::State& s) {
  matchOne(s, "/internal/debug/pprof/heap");
}
void BM_RouteMatchHitCatchAll(benchmark::State& s) { matchOne(s, "/static/js/app.3f9a2c.js"); }
void BM_RouteMatchMissDeep(benchmark::State& s) { matchOne(s, "/api/v1/users/42/orders/7/extra"); }
void BM_RouteMatchMissAtRoot(benchmark::State& s) { matchOne(s, "/wp-admin/setup.php"); }
BENCHMARK(BM_RouteMatchHitShallow);
BENCHMARK(BM_RouteMatchHitDeep);
BENCHMARK(BM_RouteMatchHitLastTemplates);
BENCHMARK(BM_RouteMatchHitCatchAll);
BENCHMARK(BM_RouteMatchMissDeep);
BENCHMARK(BM_RouteMatchMissAtRoot);

void BM_RouteMatchMixed16(benchmark::State& state) {
  const RouteMatcher& m = matcher();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m.match(kMixed[i++ & 15]));
  }
}
BENCHMARK(BM_RouteMatchMixed16);

void BM_RouteMatchMixed16OneByOneBaseline(benchmark::State& state) {
  const std::vector<RouteMatcher>& all = oneByOne();
  size_t i = 0;
  for (auto _ : state) {
    const std::string_view path = kMixed[i++ & 15];
    for (const RouteMatcher& m : all) {
      if (auto r = m.match(path)) {
        benchmark::DoNotOptimize(r);
        break;
      }
    }
  }
}
BENCHMARK(BM_RouteMatchMixed16OneByOneBaseline);

void BM_RouteHeuristicOnMiss(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    heuristicRoute("/api/v3/unknown/9f1c2d3e-aaaa-bbbb-cccc-0123456789ab/things/42", out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_RouteHeuristicOnMiss);

// Match miss + heuristic + lookup of an already admitted route: the full cost of an unknown path.
void BM_RouteResolveMiss(benchmark::State& state) {
  static RouteResolver resolver(matcher());
  std::string scratch;
  for (auto _ : state) {
    benchmark::DoNotOptimize(resolver.resolve("/api/v3/unknown/things/42", scratch));
  }
}
BENCHMARK(BM_RouteResolveMiss);

void BM_RouteResolveMixed16(benchmark::State& state) {
  static RouteResolver resolver(matcher());
  std::string scratch;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(resolver.resolve(kMixed[i++ & 15], scratch));
  }
}
BENCHMARK(BM_RouteResolveMixed16);

}  // namespace
}  // namespace tracecar::http
