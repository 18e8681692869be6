// Counts every heap allocation of this test program to prove decide() allocates nothing.
#include <gtest/gtest.h>

#include <string>

#include "propagation/ids.h"
#include "propagation/span_context.h"
#include "propagation/tracestate.h"
#include "sampling/rate_limiter.h"
#include "sampling/sampler.h"
#include "sampling/trust_policy.h"

#include "support/counting_allocator.h"

namespace tracecar::sampling {
namespace {

using propagation::SpanContext;
using propagation::TraceId;
using propagation::TraceState;

size_t allocationsDuring(auto&& f) {
  const size_t before = g_allocations.load();
  f();
  return g_allocations.load() - before;
}

Sampler ruleSampler() {
  SamplingConfig config;
  config.sampler = {SamplerKind::kParentBasedTraceIdRatio, 0.1};
  config.rules = *parseRules("/healthz=never, GET|HEAD /checkout/*=always, POST /orders=0.5+limit");
  config.rate_limit = RateLimitSettings{1000, 100};
  return *Sampler::create(config);
}

TEST(Allocation, CounterSeesAllocations) {
  EXPECT_GE(allocationsDuring([] { std::string s(100, 'x'); }), 1u);
}

// A worker reuses one TraceState per request; once its buffer has grown, roots, children and
// rule matches allocate nothing, whether th is written, kept or erased.
TEST(Allocation, DecideAllocatesNothingWhenWarm) {
  const Sampler sampler = ruleSampler();
  propagation::IdGenerator ids(42);
  SpanContext sampled_parent;
  sampled_parent.span_id = propagation::SpanId::fromU64(7);
  sampled_parent.flags = propagation::trace_flags::kSampled;
  TraceState ts;
  const std::string_view headers[] = {"", "vendor=abc,ot=th:8;rv:f0000000000000,other=1",
                                      "ot=th:c", "a=1,b=2,c=3"};
  const std::string_view routes[] = {"/healthz", "/checkout/{id}", "/orders", "/users/{id}"};
  const std::string_view methods[] = {"GET", "POST", "HEAD"};

  auto once = [&](uint64_t n) {
    const TraceId id = ids.newTraceId();
    sampled_parent.trace_id = id;
    (void)ts.parse(headers[n % 4]);
    const SpanContext root;
    SamplingParams params{(n & 1) ? sampled_parent : root, id, ts, methods[n % 3], routes[n % 4],
                          n * 1000};
    (void)sampler.decide(params);
  };
  for (uint64_t n = 0; n < 1000; ++n) once(n);  // warm-up: ts's buffer reaches its size
  EXPECT_EQ(allocationsDuring([&] {
              for (uint64_t n = 0; n < 100'000; ++n) once(n);
            }),
            0u);
}

TEST(Allocation, DefaultSamplerRootOnEmptyTracestateAllocatesNothing) {
  const Sampler sampler;
  const TraceId id = propagation::IdGenerator(1).newTraceId();
  const SpanContext root;
  EXPECT_EQ(allocationsDuring([&] {
              for (int i = 0; i < 1000; ++i) {
                TraceState ts;  // "ot=th:0" fits the string's inline storage
                SamplingParams params{root, id, ts, "GET", "/", 0};
                ASSERT_TRUE(sampler.decide(params).sampled);
              }
            }),
            0u);
}

TEST(Allocation, TrustAndRateLimitAllocateNothing) {
  const TrustPolicy policy = *TrustPolicy::parse("10.0.0.0/8, 2001:db8::/32, 127.0.0.1");
  RateLimiter limiter(*RateLimiter::validate({100, 10}));
  EXPECT_EQ(allocationsDuring([&] {
              for (uint64_t i = 0; i < 1000; ++i) {
                (void)policy.trusts("10.1.2.3");
                (void)policy.trusts("2001:db8::42");
                (void)policy.trusts("::ffff:192.0.2.1");
                (void)limiter.tryAcquire(i * 1'000'000);
              }
            }),
            0u);
}

}  // namespace
}  // namespace tracecar::sampling
