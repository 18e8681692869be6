#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "sampling/ot_trace_state.h"

namespace tracecar::sampling {
namespace {

using propagation::SpanContext;
using propagation::TraceId;
using propagation::TraceState;

// A trace id whose low 56 bits are r.
TraceId traceIdWithRandomness(uint64_t r) {
  TraceId id;
  id.bytes[0] = 0x4b;
  for (int i = 0; i < 7; ++i) id.bytes[15 - i] = static_cast<uint8_t>(r >> (8 * i));
  return id;
}

SpanContext parentOf(const TraceId& id, bool sampled) {
  SpanContext parent;
  parent.trace_id = id;
  parent.span_id = propagation::SpanId::fromU64(0x00f067aa0ba902b7);
  parent.flags = sampled ? propagation::trace_flags::kSampled : 0;
  parent.is_remote = true;
  return parent;
}

Sampler make(SamplingConfig config) {
  absl::StatusOr<Sampler> sampler = Sampler::create(config);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  return sampler.ok() ? *std::move(sampler) : Sampler();
}

Sampler make(SamplerKind kind, double ratio = 1.0, std::string_view rules = "") {
  SamplingConfig config;
  config.sampler = {kind, ratio};
  absl::StatusOr<std::vector<RuleSpec>> parsed = parseRules(rules);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (parsed.ok()) config.rules = *parsed;
  return make(std::move(config));
}

struct Outcome {
  Decision decision;
  std::string tracestate;
};

// One decision for a span of trace id under parent (invalid = root) with tracestate header.
Outcome decide(const Sampler& sampler, const TraceId& id, const SpanContext& parent,
               std::string_view tracestate = "", std::string_view method = "GET",
               std::string_view route = "/", uint64_t now_ns = 0) {
  TraceState ts;
  if (!tracestate.empty()) {
    EXPECT_EQ(ts.parse(tracestate), propagation::TraceStateStatus::kValid) << tracestate;
  }
  SamplingParams params{parent, id, ts, method, route, now_ns};
  const Decision d = sampler.decide(params);
  return {d, ts.toString()};
}

Outcome decideRoot(const Sampler& sampler, const TraceId& id, std::string_view tracestate = "",
                   std::string_view method = "GET", std::string_view route = "/") {
  return decide(sampler, id, SpanContext{}, tracestate, method, route);
}

const TraceId kHighR = traceIdWithRandomness(0xf0000000000000);  // kept by p >= 1/16
const TraceId kLowR = traceIdWithRandomness(0x01000000000000);   // dropped by p < 0.99

// --- Top-level samplers ------------------------------------------------------------------

TEST(Sampler, DefaultIsParentBasedAlwaysOn) {
  const Sampler sampler;
  EXPECT_EQ(sampler.samplerName(), "parentbased_always_on");
  const Outcome root = decideRoot(sampler, kLowR);
  EXPECT_TRUE(root.decision.sampled);
  EXPECT_EQ(root.decision.rule, Sampler::kDefaultRule);
  EXPECT_EQ(root.tracestate, "");  // no th:0 unless asked for: no new header by default
  EXPECT_TRUE(decide(sampler, kLowR, parentOf(kLowR, true)).decision.sampled);
  const Outcome child = decide(sampler, kLowR, parentOf(kLowR, false));
  EXPECT_FALSE(child.decision.sampled);
  EXPECT_EQ(child.decision.rule, Sampler::kParentRule);
}

TEST(Sampler, AlwaysOnIgnoresAnUnsampledParent) {
  const Sampler sampler = make(SamplerKind::kAlwaysOn);
  const Outcome o = decide(sampler, kLowR, parentOf(kLowR, false), "ot=th:8");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.decision.rule, Sampler::kDefaultRule);
  EXPECT_EQ(o.tracestate, "");  // the parent's th:8 would claim a probability not applied
}

TEST(Sampler, AlwaysOnRecordsThresholdZeroWhenAskedTo) {
  SamplingConfig config;
  config.sampler = {SamplerKind::kParentBasedAlwaysOn, 1.0};
  config.record_always_on_threshold = true;
  const Sampler sampler = make(config);
  EXPECT_EQ(decideRoot(sampler, kLowR).tracestate, "ot=th:0");  // consistent AlwaysOn: T = 0
  EXPECT_EQ(decideRoot(sampler, kLowR, "a=1,ot=th:8;rv:01000000000000").tracestate,
            "ot=rv:01000000000000;th:0,a=1");
  // A ratio of 1 records th:0 either way: it is a probability decision.
  EXPECT_EQ(decideRoot(make(SamplerKind::kTraceIdRatio, 1.0), kLowR).tracestate, "ot=th:0");
}

TEST(Sampler, AlwaysOffIgnoresASampledParent) {
  const Sampler sampler = make(SamplerKind::kAlwaysOff);
  const Outcome o = decide(sampler, kHighR, parentOf(kHighR, true), "a=1,ot=th:0");
  EXPECT_FALSE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "a=1");
  EXPECT_FALSE(decideRoot(sampler, kHighR).decision.sampled);
}

TEST(Sampler, TraceIdRatioIgnoresTheParent) {
  const Sampler sampler = make(SamplerKind::kTraceIdRatio, 0.25);
  Outcome o = decide(sampler, kHighR, parentOf(kHighR, false));
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "ot=th:c");
  o = decide(sampler, kLowR, parentOf(kLowR, true), "ot=th:0");
  EXPECT_FALSE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "");
}

TEST(Sampler, ParentBasedAlwaysOffDropsRootsAndFollowsParents) {
  const Sampler sampler = make(SamplerKind::kParentBasedAlwaysOff);
  EXPECT_FALSE(decideRoot(sampler, kHighR).decision.sampled);
  EXPECT_EQ(decideRoot(sampler, kHighR).tracestate, "");
  EXPECT_TRUE(decide(sampler, kLowR, parentOf(kLowR, true)).decision.sampled);
}

TEST(Sampler, ParentBasedTraceIdRatioSamplesRootsByRatio) {
  const Sampler sampler = make(SamplerKind::kParentBasedTraceIdRatio, 0.25);
  EXPECT_EQ(sampler.samplerName(), "parentbased_traceidratio");
  const Outcome kept = decideRoot(sampler, kHighR);
  EXPECT_TRUE(kept.decision.sampled);
  EXPECT_EQ(kept.tracestate, "ot=th:c");
  EXPECT_FALSE(decideRoot(sampler, kLowR).decision.sampled);
  // A sampled parent keeps a child whose randomness the ratio would have dropped.
  EXPECT_TRUE(decide(sampler, kLowR, parentOf(kLowR, true)).decision.sampled);
}

TEST(Sampler, RatioZeroNeverSamplesAndOneAlways) {
  const Sampler never = make(SamplerKind::kTraceIdRatio, 0.0);
  const Sampler always = make(SamplerKind::kTraceIdRatio, 1.0);
  const TraceId top = traceIdWithRandomness(kRandomnessMask);
  const TraceId bottom = traceIdWithRandomness(0);
  EXPECT_FALSE(decideRoot(never, top).decision.sampled);
  EXPECT_EQ(decideRoot(never, top, "ot=th:0").tracestate, "");
  EXPECT_TRUE(decideRoot(always, bottom).decision.sampled);
  EXPECT_EQ(decideRoot(always, bottom).tracestate, "ot=th:0");
}

// --- Randomness and thresholds ------------------------------------------------------------

TEST(Sampler, KeepsExactlyFromTheThreshold) {
  const Sampler sampler = make(SamplerKind::kTraceIdRatio, 0.25);
  const uint64_t t = 0xc0000000000000;
  EXPECT_FALSE(decideRoot(sampler, traceIdWithRandomness(t - 1)).decision.sampled);
  EXPECT_TRUE(decideRoot(sampler, traceIdWithRandomness(t)).decision.sampled);
}

TEST(Sampler, RandomnessComesFromRvWhenValid) {
  const Sampler sampler = make(SamplerKind::kTraceIdRatio, 0.25);
  // The trace id says keep; rv (one below T) says drop, and rv wins.
  Outcome o = decideRoot(sampler, kHighR, "ot=rv:bfffffffffffff");
  EXPECT_FALSE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "ot=rv:bfffffffffffff");
  o = decideRoot(sampler, kLowR, "ot=rv:c0000000000000");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "ot=rv:c0000000000000;th:c");
}

TEST(Sampler, InvalidRvFallsBackToTheTraceId) {
  const Sampler sampler = make(SamplerKind::kTraceIdRatio, 0.25);
  EXPECT_TRUE(decideRoot(sampler, kHighR, "ot=rv:0000000000000").decision.sampled);   // 13
  EXPECT_TRUE(decideRoot(sampler, kHighR, "ot=rv:0000000000000G").decision.sampled);
  EXPECT_FALSE(decideRoot(sampler, kLowR, "ot=rv:ffffffffffffff;;").decision.sampled);
}

TEST(Sampler, RecordsThresholdAtConfiguredPrecision) {
  SamplingConfig config;
  config.sampler = {SamplerKind::kTraceIdRatio, 0.1};
  const TraceId top = traceIdWithRandomness(kRandomnessMask);
  EXPECT_EQ(decideRoot(make(config), top).tracestate, "ot=th:e666");
  config.threshold_precision = 14;
  EXPECT_EQ(decideRoot(make(config), top).tracestate, "ot=th:e6666666666666");
  config.sampler.ratio = 0.01;
  config.threshold_precision = 5;
  EXPECT_EQ(decideRoot(make(config), top).tracestate, "ot=th:fd70a4");
}

// --- Parent-based threshold pass-through --------------------------------------------------

TEST(ParentBased, PassesOnAConsistentThresholdUntouched) {
  const Sampler sampler;
  const Outcome o = decide(sampler, kHighR, parentOf(kHighR, true), "a=1,ot=th:c;rv:f0000000000000");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "a=1,ot=th:c;rv:f0000000000000");
}

TEST(ParentBased, ErasesAThresholdAboveTheRandomness) {
  const Sampler sampler;
  // Sampled, but R (from rv) < T: the th cannot have made this decision.
  Outcome o = decide(sampler, kHighR, parentOf(kHighR, true), "a=1,ot=th:c;rv:10000000000000");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "ot=rv:10000000000000,a=1");
  // Same with R from the trace id.
  o = decide(sampler, kLowR, parentOf(kLowR, true), "a=1,ot=th:8,b=2");
  EXPECT_EQ(o.tracestate, "a=1,b=2");
}

TEST(ParentBased, ErasesTheThresholdOfAnUnsampledParent) {
  const Sampler sampler = make(SamplerKind::kParentBasedTraceIdRatio, 0.5);
  const Outcome o = decide(sampler, kHighR, parentOf(kHighR, false), "x=1,ot=th:8;k:v,y=2");
  EXPECT_FALSE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "ot=k:v,x=1,y=2");
}

TEST(ParentBased, ErasesAMalformedThresholdOfASampledParent) {
  const Sampler sampler;
  const Outcome o = decide(sampler, kHighR, parentOf(kHighR, true), "ot=th:XY;k:v");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "ot=k:v");
}

TEST(ParentBased, LeavesAMalformedOtMemberAlone) {
  const Sampler sampler;
  for (bool sampled : {true, false}) {
    const Outcome o = decide(sampler, kHighR, parentOf(kHighR, sampled), "a=1,ot=th:8;;x,b=2");
    EXPECT_EQ(o.decision.sampled, sampled);
    EXPECT_EQ(o.tracestate, "a=1,ot=th:8;;x,b=2");
  }
}

TEST(ParentBased, SampledParentWithoutThresholdGetsNone) {
  const Sampler sampler;
  const Outcome o = decide(sampler, kHighR, parentOf(kHighR, true), "a=1");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "a=1");
}

// --- Tracestate edits at the root ---------------------------------------------------------

TEST(Sampler, RootEditKeepsOtherVendorsAndMovesOtLeft) {
  const Sampler sampler = make(SamplerKind::kTraceIdRatio, 0.5);
  const Outcome o = decideRoot(sampler, kHighR, "v1=a,ot=foo:bar;rv:f0000000000000,v2=b");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "ot=foo:bar;rv:f0000000000000;th:8,v1=a,v2=b");
  const Outcome dropped = decideRoot(sampler, kHighR, "v1=a,ot=rv:00000000000001;th:0,v2=b");
  EXPECT_FALSE(dropped.decision.sampled);
  EXPECT_EQ(dropped.tracestate, "ot=rv:00000000000001,v1=a,v2=b");
}

TEST(Sampler, RootReplacesAMalformedOtWhenItSamples) {
  const Sampler sampler = make(SamplerKind::kTraceIdRatio, 0.5);
  EXPECT_EQ(decideRoot(sampler, kHighR, "v1=a,ot=???").tracestate, "ot=th:8,v1=a");
  EXPECT_EQ(decideRoot(sampler, kLowR, "v1=a,ot=???").tracestate, "v1=a,ot=???");
}

// --- Statistics and consistency -----------------------------------------------------------

class KeptFraction : public ::testing::TestWithParam<double> {};

// 10^6 random trace ids from a fixed seed: the kept fraction is within 5 binomial standard
// deviations of the probability the recorded threshold stands for.
TEST_P(KeptFraction, MatchesTheRatio) {
  const double ratio = GetParam();
  const Sampler sampler = make(SamplerKind::kTraceIdRatio, ratio);
  const double p = thresholdToProbability(probabilityToThreshold(ratio));
  std::mt19937_64 rng(20240611);
  constexpr int kTrials = 1'000'000;
  const SpanContext root;
  TraceState ts;
  int kept = 0;
  for (int i = 0; i < kTrials; ++i) {
    TraceId id;
    const uint64_t hi = rng();
    const uint64_t lo = rng();
    for (int b = 0; b < 8; ++b) {
      id.bytes[b] = static_cast<uint8_t>(hi >> (8 * b));
      id.bytes[8 + b] = static_cast<uint8_t>(lo >> (8 * b));
    }
    ts.clear();
    SamplingParams params{root, id, ts, "GET", "/", 0};
    if (sampler.decide(params).sampled) ++kept;
  }
  const double sigma = std::sqrt(kTrials * p * (1 - p));
  EXPECT_NEAR(kept, kTrials * p, 5 * sigma) << "ratio " << ratio;
}

INSTANTIATE_TEST_SUITE_P(Ratios, KeptFraction, ::testing::Values(0.5, 0.25, 0.1, 0.01));

std::vector<TraceId> randomIds(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TraceId> ids(n);
  for (TraceId& id : ids) {
    for (uint8_t& b : id.bytes) b = static_cast<uint8_t>(rng());
  }
  return ids;
}

TEST(Consistency, TwoSidecarsWithTheSameRatioAgree) {
  const Sampler a = make(SamplerKind::kParentBasedTraceIdRatio, 0.3);
  const Sampler b = make(SamplerKind::kParentBasedTraceIdRatio, 0.3);
  int kept = 0;
  for (const TraceId& id : randomIds(100'000, 7)) {
    const Outcome x = decideRoot(a, id);
    const Outcome y = decideRoot(b, id);
    ASSERT_EQ(x.decision.sampled, y.decision.sampled);
    ASSERT_EQ(x.tracestate, y.tracestate);
    kept += x.decision.sampled;
  }
  EXPECT_GT(kept, 25'000);
  EXPECT_LT(kept, 35'000);
}

TEST(Consistency, ALowerRatioKeepsASubset) {
  const Sampler low = make(SamplerKind::kTraceIdRatio, 0.1);
  const Sampler high = make(SamplerKind::kTraceIdRatio, 0.5);
  int low_kept = 0;
  for (const TraceId& id : randomIds(100'000, 11)) {
    const bool l = decideRoot(low, id).decision.sampled;
    const bool h = decideRoot(high, id).decision.sampled;
    if (l) {
      ++low_kept;
      ASSERT_TRUE(h) << id.toHex();
    }
  }
  EXPECT_GT(low_kept, 9'000);
}

TEST(Consistency, ChildWithLowerRatioKeepsOnlySampledParentsTraces) {
  // A traceidratio child (ignores the parent) with a lower ratio than the root: whatever it
  // keeps, the root kept too, since both read the same randomness.
  const Sampler root = make(SamplerKind::kParentBasedTraceIdRatio, 0.5);
  const Sampler child = make(SamplerKind::kTraceIdRatio, 0.2);
  for (const TraceId& id : randomIds(50'000, 13)) {
    const Outcome r = decideRoot(root, id);
    const SpanContext parent = parentOf(id, r.decision.sampled);
    const Outcome c = decide(child, id, parent, r.tracestate);
    if (c.decision.sampled) {
      ASSERT_TRUE(r.decision.sampled);
    }
  }
}

// --- Rules ----------------------------------------------------------------------------------

TEST(Rules, FirstMatchWins) {
  const Sampler sampler = make(SamplerKind::kParentBasedTraceIdRatio, 0.0,
                               "/healthz=never, GET /checkout/*=always, /checkout/*=0.5, "
                               "POST|PUT /api/*=always");
  ASSERT_EQ(sampler.ruleCount(), 6u);
  EXPECT_EQ(sampler.ruleLabel(0), "parent");
  EXPECT_EQ(sampler.ruleLabel(1), "default");
  EXPECT_EQ(sampler.ruleLabel(2), "/healthz");
  EXPECT_EQ(sampler.ruleLabel(3), "GET /checkout/*");
  EXPECT_EQ(sampler.ruleLabel(4), "/checkout/*");
  EXPECT_EQ(sampler.ruleLabel(5), "POST|PUT /api/*");
  EXPECT_EQ(sampler.ruleLabel(99), "unknown");

  Outcome o = decideRoot(sampler, kHighR, "", "GET", "/healthz");
  EXPECT_FALSE(o.decision.sampled);
  EXPECT_EQ(o.decision.rule, 2);
  o = decideRoot(sampler, kLowR, "", "GET", "/checkout/{id}");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.decision.rule, 3);
  EXPECT_EQ(o.tracestate, "");  // an always rule records no th unless asked to
  o = decideRoot(sampler, kLowR, "", "POST", "/checkout");
  EXPECT_FALSE(o.decision.sampled);
  EXPECT_EQ(o.decision.rule, 4);
  o = decideRoot(sampler, kHighR, "", "POST", "/checkout");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.tracestate, "ot=th:8");
  o = decideRoot(sampler, kLowR, "", "PUT", "/api/v1/users");
  EXPECT_EQ(o.decision.rule, 5);
  EXPECT_TRUE(o.decision.sampled);
  o = decideRoot(sampler, kLowR, "", "GET", "/api/v1/users");  // method filter: no match
  EXPECT_EQ(o.decision.rule, Sampler::kDefaultRule);
  EXPECT_FALSE(o.decision.sampled);  // default ratio 0
  o = decideRoot(sampler, kHighR, "", "GET", "/checkoutx");  // not under /checkout/
  EXPECT_EQ(o.decision.rule, Sampler::kDefaultRule);
}

TEST(Rules, CatchAllReplacesTheDefault) {
  const Sampler sampler = make(SamplerKind::kParentBasedAlwaysOn, 1.0, "/healthz=never, *=0.25");
  EXPECT_EQ(sampler.ruleCount(), 3u);
  const Outcome o = decideRoot(sampler, kLowR, "", "GET", "/orders");
  EXPECT_EQ(o.decision.rule, Sampler::kDefaultRule);
  EXPECT_FALSE(o.decision.sampled);
  EXPECT_TRUE(decideRoot(sampler, kHighR, "", "GET", "").decision.sampled);
}

TEST(Rules, MethodOnlyStarRuleIsNotTheDefault) {
  const Sampler sampler = make(SamplerKind::kParentBasedAlwaysOn, 1.0, "OPTIONS *=never");
  EXPECT_EQ(sampler.ruleLabel(2), "OPTIONS *");
  EXPECT_FALSE(decideRoot(sampler, kHighR, "", "OPTIONS", "/x").decision.sampled);
  EXPECT_TRUE(decideRoot(sampler, kHighR, "", "GET", "/x").decision.sampled);
}

TEST(Rules, ParentBasedHonoursATrustedParentOverRules) {
  const Sampler sampler = make(SamplerKind::kParentBasedAlwaysOn, 1.0, "/healthz=never");
  const Outcome o = decide(sampler, kHighR, parentOf(kHighR, true), "", "GET", "/healthz");
  EXPECT_TRUE(o.decision.sampled);
  EXPECT_EQ(o.decision.rule, Sampler::kParentRule);
}

TEST(Rules, NonParentBasedAppliesRulesToChildrenToo) {
  const Sampler sampler = make(SamplerKind::kAlwaysOn, 1.0, "/healthz=never");
  const Outcome o = decide(sampler, kHighR, parentOf(kHighR, true), "ot=th:0", "GET", "/healthz");
  EXPECT_FALSE(o.decision.sampled);
  EXPECT_EQ(o.decision.rule, 2);
  EXPECT_EQ(o.tracestate, "");
}

// An untrusted source reaches decide() as a root: its sampled flag cannot force sampling.
TEST(Rules, UntrustedSourceIsDecidedAsARoot) {
  const Sampler sampler = make(SamplerKind::kParentBasedAlwaysOff);
  const Outcome o = decideRoot(sampler, kHighR);
  EXPECT_FALSE(o.decision.sampled);
  EXPECT_EQ(o.decision.rule, Sampler::kDefaultRule);
}

// --- Rate limit -----------------------------------------------------------------------------

SamplingConfig limitedConfig(std::string_view rules, double rate, uint32_t burst) {
  SamplingConfig config;
  config.rules = *parseRules(rules);
  config.rate_limit = RateLimitSettings{rate, burst};
  return config;
}

TEST(RateLimit, LimitsKeptRootsAndErasesTheirThreshold) {
  const Sampler sampler = make(limitedConfig("/checkout/*=always, *=0.5+limit", 1, 2));
  ASSERT_NE(sampler.rateLimiter(), nullptr);
  int kept = 0;
  int limited = 0;
  for (int i = 0; i < 10; ++i) {
    const Outcome o = decide(sampler, kHighR, SpanContext{}, "ot=th:8", "GET", "/", 1000);
    kept += o.decision.sampled;
    limited += o.decision.rate_limited;
    EXPECT_EQ(o.tracestate, "") << i;  // the probability is unknown once a limit applies
  }
  EXPECT_EQ(kept, 2);
  EXPECT_EQ(limited, 8);
  // Dropped by probability: no token is used, and it is not counted as rate limited.
  EXPECT_FALSE(decide(sampler, kLowR, SpanContext{}, "", "GET", "/", 5'000'000'000).decision
                   .rate_limited);
  // Refilled after a second; unlimited rules and children never take tokens.
  EXPECT_TRUE(decide(sampler, kHighR, SpanContext{}, "", "GET", "/", 2'000'001'000).decision
                  .sampled);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(decideRoot(sampler, kLowR, "", "GET", "/checkout/{id}").decision.sampled);
    EXPECT_TRUE(decide(sampler, kLowR, parentOf(kLowR, true)).decision.sampled);
  }
}

TEST(RateLimit, DefaultFromEnvIsLimitedWhenNoCatchAll) {
  SamplingConfig config = limitedConfig("/a=always", 1, 1);
  const Sampler sampler = make(config);
  EXPECT_TRUE(decideRoot(sampler, kHighR, "", "GET", "/b").decision.sampled);
  EXPECT_TRUE(decideRoot(sampler, kHighR, "", "GET", "/b").decision.rate_limited);
  EXPECT_TRUE(decideRoot(sampler, kHighR, "", "GET", "/a").decision.sampled);
}

// --- Building -------------------------------------------------------------------------------

TEST(SamplerCreate, RejectsBadConfigurations) {
  SamplingConfig config;
  config.rules = *parseRules("*=0.1, /late=always");
  absl::StatusOr<Sampler> s = Sampler::create(config);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("rule 2 (`/late=always`): unreachable"),
            std::string::npos)
      << s.status();

  config.rules = *parseRules("/a=always+limit");
  s = Sampler::create(config);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("+limit"), std::string::npos);

  config.rules.clear();
  config.threshold_precision = 15;
  EXPECT_FALSE(Sampler::create(config).ok());
  config.threshold_precision = 0;
  EXPECT_FALSE(Sampler::create(config).ok());

  config = SamplingConfig{};
  config.sampler = {SamplerKind::kTraceIdRatio, 1.5};
  EXPECT_FALSE(Sampler::create(config).ok());

  config = SamplingConfig{};
  config.rate_limit = RateLimitSettings{-1, 0};
  EXPECT_FALSE(Sampler::create(config).ok());

  config = SamplingConfig{};
  config.rules = {RuleSpec{"no-slash", {}, {}}};
  s = Sampler::create(config);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("rule 1"), std::string::npos);
}

TEST(SamplerCreate, DescribesItself) {
  SamplingConfig config = limitedConfig("/healthz=never", 100, 0);
  config.sampler = {SamplerKind::kParentBasedTraceIdRatio, 0.1};
  EXPECT_EQ(make(config).describe(),
            "parentbased_traceidratio ratio=0.1 rules=[/healthz=never] rate_limit=100/s "
            "burst=100 th_precision=4");
  EXPECT_EQ(Sampler().describe(), "parentbased_always_on th_precision=4");
}

}  // namespace
}  // namespace tracecar::sampling
