#include "sampling/sampler.h"

#include "sampling/text.h"
#include "sampling/ot_trace_state.h"

namespace tracecar::sampling {

namespace {

// Rule indexes are uint16_t, and a first-match scan should stay short.
constexpr size_t kMaxRules = 1024;

bool isCatchAll(const RuleSpec& rule) noexcept {
  return rule.route == "*" && rule.methods.empty();
}

RootSamplerSpec defaultRootSpec(const SamplerSettings& settings, bool rate_limited) noexcept {
  RootSamplerSpec spec;
  switch (settings.kind) {
    case SamplerKind::kAlwaysOn:
    case SamplerKind::kParentBasedAlwaysOn: spec.kind = RootKind::kAlwaysOn; break;
    case SamplerKind::kAlwaysOff:
    case SamplerKind::kParentBasedAlwaysOff: spec.kind = RootKind::kAlwaysOff; break;
    case SamplerKind::kTraceIdRatio:
    case SamplerKind::kParentBasedTraceIdRatio:
      spec.kind = RootKind::kRatio;
      spec.ratio = settings.ratio;
      break;
  }
  spec.rate_limited = rate_limited;
  return spec;
}

}  // namespace

Sampler::Sampler() : labels_{"parent", "default"} {}

Sampler::Root Sampler::compileRoot(const RootSamplerSpec& spec) const noexcept {
  Root root;
  root.kind = spec.kind;
  root.rate_limited = spec.rate_limited;
  if (spec.kind == RootKind::kRatio) root.threshold = probabilityToThreshold(spec.ratio, precision_);
  return root;
}

absl::StatusOr<Sampler> Sampler::create(const SamplingConfig& config) {
  Sampler sampler;
  sampler.kind_ = config.sampler.kind;
  sampler.ratio_ = config.sampler.ratio;
  if (usesRatio(config.sampler.kind) && !(config.sampler.ratio >= 0 && config.sampler.ratio <= 1)) {
    return text::invalid(
        "sampler ratio ", config.sampler.ratio, " is outside [0, 1]");
  }
  if (config.threshold_precision < 1 || config.threshold_precision > kMaxThresholdDigits) {
    return text::invalid(
        "threshold precision must be 1..14 hex digits, got ", config.threshold_precision);
  }
  sampler.precision_ = config.threshold_precision;
  sampler.record_always_on_ = config.record_always_on_threshold;
  if (config.rules.size() > kMaxRules) {
    return text::invalid(
        "at most ", kMaxRules, " sampling rules, got ", config.rules.size());
  }
  if (config.rate_limit) {
    absl::StatusOr<RateLimitSettings> limit = RateLimiter::validate(*config.rate_limit);
    if (!limit.ok()) return limit.status();
    sampler.limiter_ = std::make_unique<RateLimiter>(*limit);
  }

  bool has_catch_all = false;
  RootSamplerSpec default_spec = defaultRootSpec(config.sampler, config.rate_limit.has_value());
  for (size_t i = 0; i < config.rules.size(); ++i) {
    const RuleSpec& spec = config.rules[i];
    const auto fail = [&](absl::string_view why) {
      return text::invalid("sampling rule ", i + 1, " (`",
                                                     formatRule(spec), "`): ", why);
    };
    if (absl::Status status = validateRule(spec); !status.ok()) return fail(status.message());
    if (has_catch_all) return fail("unreachable: an earlier `*` rule matches every span");
    if (spec.sampler.rate_limited && !config.rate_limit) {
      return fail("`+limit` needs a rate limit (traces per second) to be configured");
    }
    if (isCatchAll(spec)) {
      // The catch-all is the default root sampler under another name.
      has_catch_all = true;
      default_spec = spec.sampler;
      continue;
    }
    Rule rule;
    if (spec.route == "*") {
      rule.match = RouteMatch::kAny;
    } else if (spec.route.size() >= 2 && spec.route.substr(spec.route.size() - 2) == "/*") {
      rule.match = RouteMatch::kPrefix;
      rule.route = spec.route.substr(0, spec.route.size() - 2);
    } else {
      rule.match = RouteMatch::kExact;
      rule.route = spec.route;
    }
    rule.methods = spec.methods;
    rule.root = sampler.compileRoot(spec.sampler);
    sampler.rules_.push_back(std::move(rule));
    sampler.labels_.push_back(sampling::ruleLabel(spec));
  }
  sampler.default_root_ = sampler.compileRoot(default_spec);
  sampler.rules_text_ = formatRules(config.rules);
  return sampler;
}

std::string_view Sampler::ruleLabel(uint16_t rule) const noexcept {
  return rule < labels_.size() ? std::string_view(labels_[rule]) : std::string_view("unknown");
}

bool Sampler::matches(const Rule& rule, std::string_view method,
                      std::string_view route) const noexcept {
  if (!rule.methods.empty()) {
    bool any = false;
    for (const std::string& m : rule.methods) {
      if (m == method) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  switch (rule.match) {
    case RouteMatch::kAny: return true;
    case RouteMatch::kExact: return route == rule.route;
    case RouteMatch::kPrefix: {
      const std::string_view prefix = rule.route;
      if (!prefix.empty() && route == prefix) return true;
      return route.size() > prefix.size() && route.substr(0, prefix.size()) == prefix &&
             route[prefix.size()] == '/';
    }
  }
  return false;
}

Decision Sampler::decide(SamplingParams& params) const noexcept {
  Decision decision;
  propagation::TraceState& trace_state = params.trace_state;
  const OtEntry ot = readOtEntry(trace_state);
  const uint64_t randomness = ot.randomness ? *ot.randomness : params.trace_id.low56();
  const bool is_root = !params.parent.isValid();

  if (!is_root && isParentBased(kind_)) {
    decision.rule = kParentRule;
    decision.sampled = params.parent.sampled();
    // Pass `th` on only when it agrees with the flag: R >= T exactly when sampled.
    if (ot.has_threshold_key &&
        (!decision.sampled || !ot.threshold || !keeps(randomness, *ot.threshold))) {
      eraseThreshold(trace_state);
    }
    return decision;
  }

  const Root* root = &default_root_;
  decision.rule = kDefaultRule;
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (matches(rules_[i], params.method, params.route)) {
      root = &rules_[i].root;
      decision.rule = static_cast<uint16_t>(i + 2);
      break;
    }
  }

  uint64_t threshold = kAlwaysThreshold;
  switch (root->kind) {
    case RootKind::kAlwaysOn: decision.sampled = true; break;
    case RootKind::kAlwaysOff: decision.sampled = false; break;
    case RootKind::kRatio:
      threshold = root->threshold;
      decision.sampled = threshold < kNeverThreshold && keeps(randomness, threshold);
      break;
  }
  // Only traces this sidecar starts take a token.
  const bool limited = root->rate_limited && is_root && limiter_ != nullptr;
  if (decision.sampled && limited && !limiter_->tryAcquire(params.now_ns)) {
    decision.sampled = false;
    decision.rate_limited = true;
  }
  const bool records = root->kind == RootKind::kRatio || record_always_on_;
  if (decision.sampled && !limited && records) {
    setThreshold(trace_state, threshold);
  } else {
    eraseThreshold(trace_state);
  }
  return decision;
}

std::string Sampler::describe() const {
  std::string out(toString(kind_));
  if (usesRatio(kind_)) out += text::concat(" ratio=", ratio_);
  if (!rules_text_.empty()) out += text::concat(" rules=[", rules_text_, "]");
  if (limiter_) {
    out += text::concat(" rate_limit=", limiter_->tracesPerSecond(), "/s burst=",
                           limiter_->burst());
  }
  out += text::concat(" th_precision=", precision_);
  return out;
}

}  // namespace tracecar::sampling
