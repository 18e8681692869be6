#include "sampling/rules.h"

#include <charconv>
#include <cmath>
#include <system_error>

#include "sampling/text.h"

namespace tracecar::sampling {

namespace {

constexpr std::string_view kLimitSuffix = "+limit";

// RFC 9110 tchar: what an HTTP method token may hold.
bool isTchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

absl::Status validateRoute(std::string_view route) {
  if (route == "*") return absl::OkStatus();
  if (route.empty() || route.front() != '/') {
    return text::invalid(
        "route pattern `", route, "` must be `*` or start with `/`");
  }
  for (char c : route) {
    if (c <= ' ' || c == 0x7f || c == ',' || c == '=') {
      return text::invalid(
          "route pattern `", route, "` holds a space, control character, `,` or `=`");
    }
  }
  const size_t star = route.find('*');
  if (star != std::string_view::npos && (star != route.size() - 1 || route.size() < 2 ||
                                         route[route.size() - 2] != '/')) {
    return text::invalid(
        "route pattern `", route, "`: `*` is allowed only as a final `/*` segment");
  }
  return absl::OkStatus();
}

// Ratio text: a decimal in [0, 1], or a percentage in [0, 100] ending in '%'.
absl::StatusOr<double> parseRatioText(std::string_view text) {
  const bool percent = !text.empty() && text.back() == '%';
  const std::string_view digits = percent ? text.substr(0, text.size() - 1) : text;
  double value = 0;
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
  if (digits.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
    return text::invalid(
        "unknown sampler `", text, "`; expected always, never, a ratio in [0, 1] or a percent");
  }
  if (percent) value /= 100;
  if (value < 0 || value > 1) {
    return text::invalid(
        "sampling ratio `", text, "` is outside [0, 1] (0% to 100%)");
  }
  return value;
}

absl::StatusOr<RuleSpec> parseRule(std::string_view element) {
  RuleSpec rule;
  const size_t eq = element.rfind('=');
  if (eq == std::string_view::npos) {
    return absl::InvalidArgumentError("expected `[METHODS ]ROUTE=SAMPLER`");
  }
  std::string_view left = text::trim(element.substr(0, eq));
  std::string_view right = text::trim(element.substr(eq + 1));

  const size_t space = left.find_first_of(" \t");
  if (space != std::string_view::npos) {
    std::string_view methods = left.substr(0, space);
    left = text::trim(left.substr(space));
    while (true) {
      const size_t bar = methods.find('|');
      rule.methods.emplace_back(methods.substr(0, bar));
      if (bar == std::string_view::npos) break;
      methods.remove_prefix(bar + 1);
    }
  }
  rule.route = std::string(left);

  if (right.size() > kLimitSuffix.size() &&
      right.substr(right.size() - kLimitSuffix.size()) == kLimitSuffix) {
    rule.sampler.rate_limited = true;
    right = text::trim(right.substr(0, right.size() - kLimitSuffix.size()));
  }
  if (right == "always") {
    rule.sampler.kind = RootKind::kAlwaysOn;
  } else if (right == "never") {
    rule.sampler.kind = RootKind::kAlwaysOff;
  } else {
    absl::StatusOr<double> ratio = parseRatioText(right);
    if (!ratio.ok()) return ratio.status();
    rule.sampler.kind = RootKind::kRatio;
    rule.sampler.ratio = *ratio;
  }
  if (absl::Status status = validateRule(rule); !status.ok()) return status;
  return rule;
}

std::string formatRatio(double ratio) {
  char buffer[64];
  const auto [ptr, ec] = std::to_chars(buffer, buffer + sizeof(buffer), ratio);
  return ec == std::errc() ? std::string(buffer, ptr) : "1";
}

}  // namespace

absl::Status validateRule(const RuleSpec& rule) {
  if (absl::Status status = validateRoute(rule.route); !status.ok()) return status;
  for (const std::string& method : rule.methods) {
    if (method.empty()) return absl::InvalidArgumentError("empty method name");
    for (char c : method) {
      if (!isTchar(c)) {
        return text::invalid(
            "method `", method, "` is not an HTTP method token");
      }
    }
  }
  if (rule.sampler.kind == RootKind::kRatio &&
      !(rule.sampler.ratio >= 0 && rule.sampler.ratio <= 1)) {
    return text::invalid(
        "sampling ratio ", rule.sampler.ratio, " is outside [0, 1]");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RuleSpec>> parseRules(std::string_view text) {
  std::vector<RuleSpec> rules;
  if (text::trim(text).empty()) return rules;
  size_t position = 0;
  while (true) {
    ++position;
    const size_t comma = text.find(',');
    const std::string_view element = text::trim(text.substr(0, comma));
    absl::StatusOr<RuleSpec> rule = element.empty()
                                        ? absl::InvalidArgumentError("empty element")
                                        : parseRule(element);
    if (!rule.ok()) {
      return text::invalid("sampling rules: element ", position, " (`",
                                                     element, "`): ", rule.status().message());
    }
    rules.push_back(*std::move(rule));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return rules;
}

std::string ruleLabel(const RuleSpec& rule) {
  std::string out;
  for (size_t i = 0; i < rule.methods.size(); ++i) {
    if (i > 0) out += '|';
    out += rule.methods[i];
  }
  if (!out.empty()) out += ' ';
  out += rule.route;
  return out;
}

std::string formatRule(const RuleSpec& rule) {
  std::string out = ruleLabel(rule);
  out += '=';
  switch (rule.sampler.kind) {
    case RootKind::kAlwaysOn: out += "always"; break;
    case RootKind::kAlwaysOff: out += "never"; break;
    case RootKind::kRatio: out += formatRatio(rule.sampler.ratio); break;
  }
  if (rule.sampler.rate_limited) out += kLimitSuffix;
  return out;
}

std::string formatRules(const std::vector<RuleSpec>& rules) {
  std::string out;
  for (const RuleSpec& rule : rules) {
    if (!out.empty()) out += ", ";
    out += formatRule(rule);
  }
  return out;
}

bool routeMatches(std::string_view pattern, std::string_view route) noexcept {
  if (pattern == "*") return true;
  if (pattern.size() >= 2 && pattern.substr(pattern.size() - 2) == "/*") {
    const std::string_view prefix = pattern.substr(0, pattern.size() - 2);
    if (!prefix.empty() && route == prefix) return true;
    return route.size() > prefix.size() && route.substr(0, prefix.size()) == prefix &&
           route[prefix.size()] == '/';
  }
  return route == pattern;
}

}  // namespace tracecar::sampling
