#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "propagation/ids.h"
#include "propagation/span_context.h"
#include "propagation/tracestate.h"
#include "sampling/rate_limiter.h"
#include "sampling/rules.h"
#include "sampling/sampler_settings.h"
#include "sampling/threshold.h"

namespace tracecar::sampling {

// What decide() needs to know about the span being started.
struct SamplingParams {
  // The parent: invalid when the request carried no context, or when its source is not trusted
  // (the trace is then restarted, and the incoming context becomes a span link).
  const propagation::SpanContext& parent;
  const propagation::TraceId& trace_id;  // of the new span (the parent's, for a child)
  // The tracestate the new span will carry; decide() edits its `ot` member in place. For a
  // restarted trace pass an empty one: an `rv` from an untrusted peer must not steer sampling.
  propagation::TraceState& trace_state;
  std::string_view method;  // http.request.method value ("GET", "_OTHER")
  std::string_view route;   // route template, "" when none
  uint64_t now_ns = 0;      // any monotonic clock; only the rate limit reads it
};

struct Decision {
  bool sampled = false;
  // A rule kept the trace by probability, but the rate limit had no token left.
  bool rate_limited = false;
  // What decided, an index into Sampler::ruleLabel(): kParentRule, kDefaultRule or a rule.
  uint16_t rule = 0;
};

// Everything a Sampler is built from. rate_limit is shared by the rules marked rate_limited,
// and by the default root sampler unless a catch-all rule (route "*", no methods) replaces it.
struct SamplingConfig {
  SamplerSettings sampler;  // OTEL_TRACES_SAMPLER(_ARG): parent handling and the default
  std::vector<RuleSpec> rules;
  std::optional<RateLimitSettings> rate_limit;
  int threshold_precision = kDefaultThresholdPrecision;  // hex digits of `th`, 1..14
  // Whether a root kept by always_on (or an `always` rule) records `th:0`, as the
  // specification's consistent AlwaysOn sampler does. Off by default: with the default sampler
  // it would add `tracestate: ot=th:0` to every request that came without context. Off, such a
  // root carries no `th` (an incoming one is erased: it would claim a probability not applied).
  bool record_always_on_threshold = false;
};

// Makes the head sampling decision of every span tracecar starts. Immutable once built, except
// for the rate limit's one atomic word: decide() may be called from any number of threads at
// once, takes no lock, and does not allocate unless trace_state's buffer must grow (a worker
// that reuses one TraceState per request soon stops growing it; running out of memory there is
// fatal, as it is for TraceState itself).
//
// How a decision is made:
//  1. A parent-based top-level sampler (parentbased_*) with a valid parent follows the parent's
//     sampled flag (rule "parent"). The parent's `th` is passed on when consistent with the flag:
//     it is erased when the parent is not sampled, and when a sampled parent's `th` is
//     malformed or greater than the randomness R.
//  2. Otherwise (a root, or a top-level sampler that ignores the parent: always_on, always_off,
//     traceidratio) the first rule matching method and route decides, else the default root
//     sampler named by OTEL_TRACES_SAMPLER: always_on keeps (T = 0), always_off drops, a ratio p
//     keeps iff R >= T = (1 - p) * 2^56. R is the `rv` of the `ot` tracestate member when valid,
//     else the low 56 bits of the trace id. A root kept by a rate-limited rule also needs a
//     token; without one it is dropped.
//  3. A kept span records its threshold as `th` in the `ot` member (always_on: th:0), except
//     when the rate limit took part, which makes the probability unknown: `th` is then erased,
//     as for every dropped span. `rv` and unknown `ot` sub-keys are kept; a changed `ot`
//     member moves to the left of tracestate.
class Sampler {
 public:
  static constexpr uint16_t kParentRule = 0;   // label "parent"
  static constexpr uint16_t kDefaultRule = 1;  // label "default"

  // Fails, naming the rule, on an invalid rule, a rule after a catch-all, "+limit" without a
  // rate limit, a bad rate limit or a precision outside 1..14.
  static absl::StatusOr<Sampler> create(const SamplingConfig& config);
  // parentbased_always_on, no rules: the default of the SDK specification.
  Sampler();

  Sampler(Sampler&&) noexcept = default;
  Sampler& operator=(Sampler&&) noexcept = default;

  Decision decide(SamplingParams& params) const noexcept;

  // Prometheus label values, owned by the Sampler and valid for its lifetime.
  std::string_view samplerName() const noexcept { return toString(kind_); }
  size_t ruleCount() const noexcept { return labels_.size(); }  // rule indexes are below this
  std::string_view ruleLabel(uint16_t rule) const noexcept;

  // One line for the startup log, e.g.
  // "parentbased_traceidratio ratio=0.1 rules=[/healthz=never] rate_limit=100/s burst=100".
  std::string describe() const;
  const RateLimiter* rateLimiter() const noexcept { return limiter_.get(); }

 private:
  enum class RouteMatch : uint8_t { kAny, kExact, kPrefix };
  struct Root {
    RootKind kind = RootKind::kAlwaysOn;
    uint64_t threshold = kAlwaysThreshold;  // kRatio only
    bool rate_limited = false;
  };
  struct Rule {
    RouteMatch match = RouteMatch::kAny;
    std::string route;  // exact route, or the prefix before "/*"
    std::vector<std::string> methods;
    Root root;
  };

  bool matches(const Rule& rule, std::string_view method, std::string_view route) const noexcept;
  Root compileRoot(const RootSamplerSpec& spec) const noexcept;

  SamplerKind kind_ = SamplerKind::kParentBasedAlwaysOn;
  double ratio_ = 1.0;
  int precision_ = kDefaultThresholdPrecision;
  bool record_always_on_ = false;
  Root default_root_;
  std::vector<Rule> rules_;
  std::vector<std::string> labels_;  // [kParentRule] "parent", [kDefaultRule] "default", rules
  std::string rules_text_;
  std::unique_ptr<RateLimiter> limiter_;
};

}  // namespace tracecar::sampling
