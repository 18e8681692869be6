// Microbenchmarks of the sampling decision. Figures, not tests: run scripts/bench.sh.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <vector>

#include "propagation/ids.h"
#include "propagation/span_context.h"
#include "propagation/tracestate.h"
#include "sampling/rate_limiter.h"
#include "sampling/sampler.h"
#include "sampling/trust_policy.h"

namespace tracecar::sampling {
namespace {

using propagation::SpanContext;
using propagation::TraceId;
using propagation::TraceState;

Sampler makeSampler(SamplerKind kind, double ratio, std::string_view rules,
                    bool rate_limit = false) {
  SamplingConfig config;
  config.sampler = {kind, ratio};
  config.rules = *parseRules(rules);
  if (rate_limit) config.rate_limit = RateLimitSettings{1e6, 1000};
  return *Sampler::create(config);
}

std::vector<TraceId> traceIds() {
  propagation::IdGenerator ids(1234);
  std::vector<TraceId> out(1024);
  for (TraceId& id : out) id = ids.newTraceId();
  return out;
}

// A root span on an empty tracestate: the decision plus writing or erasing `ot=th:...`.
void decideRoot(benchmark::State& state, const Sampler& sampler) {
  const std::vector<TraceId> ids = traceIds();
  const SpanContext root;
  TraceState ts;
  size_t i = 0;
  for (auto _ : state) {
    ts.clear();
    SamplingParams params{root, ids[i++ & 1023], ts, "GET", "/users/{id}", i};
    benchmark::DoNotOptimize(sampler.decide(params));
  }
}

void BM_DecideRootParentBasedAlwaysOn(benchmark::State& state) {
  decideRoot(state, Sampler());
}
BENCHMARK(BM_DecideRootParentBasedAlwaysOn);

void BM_DecideRootRatio10Percent(benchmark::State& state) {
  decideRoot(state, makeSampler(SamplerKind::kParentBasedTraceIdRatio, 0.1, ""));
}
BENCHMARK(BM_DecideRootRatio10Percent);

// Ten rules, the last of which matches.
void BM_DecideRootTenRules(benchmark::State& state) {
  std::string rules;
  for (int i = 0; i < 9; ++i) rules += "GET /r" + std::to_string(i) + "/*=0.5, ";
  rules += "GET /users/*=0.25";
  decideRoot(state, makeSampler(SamplerKind::kParentBasedTraceIdRatio, 0.1, rules));
}
BENCHMARK(BM_DecideRootTenRules);

void BM_DecideRootRateLimited(benchmark::State& state) {
  decideRoot(state, makeSampler(SamplerKind::kParentBasedAlwaysOn, 1, "", true));
}
BENCHMARK(BM_DecideRootRateLimited)->Threads(1)->Threads(2);

// A sampled remote parent whose tracestate carries `ot=th:c;rv:...` among other vendors: the
// consistency check and the pass-through (no edit).
void BM_DecideChildPassThrough(benchmark::State& state) {
  const Sampler sampler = makeSampler(SamplerKind::kParentBasedTraceIdRatio, 0.25, "");
  SpanContext parent;
  const std::vector<TraceId> ids = traceIds();
  parent.trace_id = ids[0];
  parent.span_id = propagation::SpanId::fromU64(42);
  parent.flags = propagation::trace_flags::kSampled;
  TraceState ts;
  (void)ts.parse("congo=t61rcWkgMzE,ot=th:c;rv:f0000000000000,rojo=00f067aa0ba902b7");
  for (auto _ : state) {
    SamplingParams params{parent, parent.trace_id, ts, "GET", "/", 0};
    benchmark::DoNotOptimize(sampler.decide(params));
  }
}
BENCHMARK(BM_DecideChildPassThrough);

// The same tracestate with root ratio decisions that rewrite `th` every time (two samplers
// alternate th:8 and th:c), so the `ot` member is rebuilt and moved to the left.
void BM_DecideRootRewritesThreshold(benchmark::State& state) {
  const Sampler half = makeSampler(SamplerKind::kTraceIdRatio, 0.5, "");
  const Sampler quarter = makeSampler(SamplerKind::kTraceIdRatio, 0.25, "");
  const SpanContext root;
  TraceId id;
  id.bytes[9] = 0xff;  // R high: kept by both
  TraceState ts;
  (void)ts.parse("congo=t61rcWkgMzE,ot=th:c;rv:f0000000000000,rojo=00f067aa0ba902b7");
  bool flip = false;
  for (auto _ : state) {
    SamplingParams params{root, id, ts, "GET", "/", 0};
    benchmark::DoNotOptimize((flip = !flip) ? half.decide(params) : quarter.decide(params));
  }
}
BENCHMARK(BM_DecideRootRewritesThreshold);

void BM_TrustPolicyCidrList(benchmark::State& state) {
  const TrustPolicy policy = *TrustPolicy::parse("10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                                                 "fd00::/8");
  const std::string_view peers[] = {"10.1.2.3", "203.0.113.7", "::ffff:192.168.4.5", "fd00::1"};
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(policy.trusts(peers[i++ & 3]));
}
BENCHMARK(BM_TrustPolicyCidrList);

void BM_RateLimiterAcquire(benchmark::State& state) {
  static RateLimiter limiter(*RateLimiter::validate({1e6, 1000}));
  uint64_t now = 0;
  for (auto _ : state) benchmark::DoNotOptimize(limiter.tryAcquire(now += 500));
}
BENCHMARK(BM_RateLimiterAcquire)->Threads(1)->Threads(2);

}  // namespace
}  // namespace tracecar::sampling
