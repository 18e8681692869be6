#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tracecar::sampling {

// The sampler a rule (or the default) applies to the spans it decides.
enum class RootKind : uint8_t {
  kAlwaysOn,   // keep; records th:0
  kAlwaysOff,  // drop
  kRatio,      // consistent probability sampling with `ratio`
};

struct RootSamplerSpec {
  RootKind kind = RootKind::kAlwaysOn;
  double ratio = 1.0;         // kRatio only: in [0, 1]; 0 never keeps, 1 always does
  bool rate_limited = false;  // kept root traces also need a token of the shared rate limit
  friend bool operator==(const RootSamplerSpec&, const RootSamplerSpec&) = default;
};

// One sampling rule: the first rule whose methods and route match a span decides it.
//  route: "*" matches every route (also none); "/a/b" matches exactly that route template;
//         "/a/*" matches "/a" and every route under "/a/".
//  methods: http.request.method values, compared exactly ("GET", "_OTHER"); empty = any.
struct RuleSpec {
  std::string route;
  std::vector<std::string> methods;
  RootSamplerSpec sampler;
  friend bool operator==(const RuleSpec&, const RuleSpec&) = default;
};

// Checks one rule: the route pattern, the method tokens and the ratio.
absl::Status validateRule(const RuleSpec& rule);

// The one-line text form, for flags and pod annotations:
//   rules   = rule *( "," rule )              (spaces around elements are ignored)
//   rule    = [ method *( "|" method ) SP ] route "=" sampler
//   sampler = ( "always" / "never" / ratio / percent ) [ "+limit" ]
// e.g. "/healthz=never, GET|POST /checkout/*=always, *=0.1+limit". A ratio is a decimal in
// [0, 1]; a percent is a decimal in [0, 100] followed by "%". "+limit" makes kept root traces
// also take a token of the rate limit. An empty text is an empty list. Errors name the element
// by position and text.
absl::StatusOr<std::vector<RuleSpec>> parseRules(std::string_view text);

// The text form of rules (parseRules(formatRules(r)) == r).
std::string formatRules(const std::vector<RuleSpec>& rules);
std::string formatRule(const RuleSpec& rule);

// The label a rule is counted under: "[METHOD|METHOD ]route", e.g. "GET /checkout/*".
std::string ruleLabel(const RuleSpec& rule);

// Route pattern matching as described at RuleSpec.
bool routeMatches(std::string_view pattern, std::string_view route) noexcept;

}  // namespace tracecar::sampling
