#include "proxy/config_lists.h"

#include "base/ascii.h"
#include "http/route_template.h"
#include "propagation/composite_propagator.h"
#include "proxy/http_semconv.h"
#include "sampling/rules.h"
#include "sampling/trust_policy.h"

namespace tracecar::proxy {
namespace {

// A list element that is one item names it once: "`X`: why" rather than "element 1 (`X`): why".
std::string namedOnce(std::string message) {
  if (message.rfind("element 1 (`", 0) != 0) return message;
  const size_t close = message.find("`): ");
  if (close == std::string::npos) return message;
  return message.substr(11, close + 1 - 11) + message.substr(close + 2);
}

// The errors of one element of a YAML list, which may itself hold a comma-separated string
// (a rule list's "GET /a=always, *=never"), each reported at the element.
void reportElement(FileReader& r, const Entry& element, const ElementCheck& check) {
  for (std::string& why : elementErrors(element.node.Scalar(), check)) {
    r.error(element, namedOnce(std::move(why)));
  }
}

// What is wrong, as a parser said it without its own prefix; empty when nothing is.
std::string whyNot(const absl::Status& status, std::string_view prefix) {
  return status.ok() ? std::string() : withoutPrefix(std::string(status.message()), prefix);
}

std::string ruleError(std::string_view element) {
  return whyNot(sampling::parseRules(element).status(), "sampling rules: ");
}

constexpr std::string_view kTrustPrefix = "trust_incoming_context: ";

// One network of a list of them; "always" and "never" stand alone.
std::string networkError(std::string_view element) {
  const auto one = sampling::TrustPolicy::parse(element);
  if (!one.ok()) return whyNot(one.status(), kTrustPrefix);
  if (one->networks().empty()) return "always and never stand alone, not in a list of networks";
  return "";
}

std::string propagatorError(std::string_view name) {
  return whyNot(propagation::parsePropagators(name).status(), "OTEL_PROPAGATORS: ");
}

constexpr std::string_view kMethodsPrefix = "known HTTP methods: ";

std::string methodError(std::string_view name) {
  return whyNot(semconv::KnownMethods::checkName(name), kMethodsPrefix);
}

}  // namespace

std::vector<std::string> elementErrors(std::string_view text, const ElementCheck& check) {
  std::vector<std::string_view> elements;
  while (true) {
    const size_t comma = text.find(',');
    elements.push_back(ascii::trimOws(text.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  std::vector<std::string> errors;
  for (size_t i = 0; i < elements.size(); ++i) {
    const std::string element(elements[i]);
    std::string why = element.empty() ? "empty element" : check(element);
    if (why.empty()) continue;
    if (elements.size() == 1) {
      errors.push_back(std::move(why));
      continue;
    }
    // The check saw the element alone, as a list's first: the position is this list's.
    const std::string alone = "element 1 (`" + element + "`): ";
    if (why.rfind(alone, 0) == 0) why.erase(0, alone.size());
    errors.push_back("element " + std::to_string(i + 1) + " (`" + element + "`): " + why);
  }
  return errors;
}

std::vector<std::string> samplingRuleErrors(std::string_view text) {
  if (ascii::trimOws(text).empty()) return {};  // no rules
  std::vector<std::string> errors = elementErrors(text, ruleError);
  if (errors.empty()) {
    if (std::string why = ruleError(text); !why.empty()) errors.push_back(std::move(why));
  }
  return errors;
}

void readRoutes(FileReader& r, const Entry& entry) {
  const size_t errors = r.errorCount();
  const auto list = r.stringList(entry, [&r](const Entry& element) {
    if (const auto parsed = http::parseRouteTemplate(element.node.Scalar()); !parsed.ok()) {
      r.error(element, std::string(parsed.status().message()));
    }
  });
  if (!list || r.errorCount() != errors) return;
  std::vector<std::string> routes;
  for (const Entry& element : *list) routes.push_back(element.node.Scalar());
  r.loaded().config.tracing.routes = std::move(routes);
  r.setOrigin(entry);
}

// A list, or one comma-separated string. Only `none` and `[]` turn propagation off: an empty
// string or a key without a value is an error, as for any other string.
void readPropagators(FileReader& r, const Entry& entry) {
  constexpr std::string_view kWant =
      "a propagator name, a comma-separated string or a list of them (none or [] for no "
      "propagation)";
  if (entry.node.IsNull()) {
    r.error(entry, "must be " + std::string(kWant) + ", got no value");
    return;
  }
  const size_t errors = r.errorCount();
  const auto check = [&r](const Entry& names) {
    for (std::string& why : elementErrors(names.node.Scalar(), propagatorError)) {
      r.error(names, why);
    }
  };
  std::string joined;
  if (entry.node.IsScalar()) {
    if (ascii::trimOws(entry.node.Scalar()).empty()) {
      r.error(entry, "must be " + std::string(kWant) + ", got \"" + entry.node.Scalar() + "\"");
      return;
    }
    check(entry);
    joined = entry.node.Scalar();
  } else if (const auto list = r.stringList(entry, check)) {
    for (const Entry& names : *list) joined += (joined.empty() ? "" : ",") + names.node.Scalar();
  } else {
    return;
  }
  if (r.errorCount() != errors) return;
  if (joined.empty()) joined = "none";  // an empty list: no propagation
  if (const auto all = propagation::parsePropagators(joined); !all.ok()) {
    r.error(entry, whyNot(all.status(), "OTEL_PROPAGATORS: "));
    return;
  }
  r.setEnv(entry, "OTEL_PROPAGATORS", joined);
}

// A list of method names, or one comma-separated string as the variable writes them; a full
// override of the defaults. An empty list is an error, not "no method is known": leaving the key
// out keeps the defaults, and a list that reports every method as _OTHER is surely a mistake.
void readKnownMethods(FileReader& r, const Entry& entry) {
  constexpr std::string_view kWant =
      "a list of HTTP methods (or one comma-separated string of them); leave the key out for the "
      "defaults";
  const bool blank = entry.node.IsScalar() && ascii::trimOws(entry.node.Scalar()).empty();
  if (entry.node.IsNull() || blank) {
    r.error(entry, "must be " + std::string(kWant) + ", got " + FileReader::describe(entry.node));
    return;
  }
  const size_t errors = r.errorCount();
  std::string joined;
  if (entry.node.IsScalar()) {
    for (std::string& why : elementErrors(entry.node.Scalar(), methodError)) r.error(entry, why);
    joined = entry.node.Scalar();
  } else {
    // One name per element: "GET,POST" in a list is a mistake, not two methods.
    const auto list = r.stringList(entry, [&r](const Entry& element) {
      if (std::string why = methodError(element.node.Scalar()); !why.empty()) {
        r.error(element, why);
      }
    });
    if (!list) return;
    if (list->empty() && r.errorCount() == errors) {
      r.error(entry, "must be " + std::string(kWant) + ", got an empty list");
      return;
    }
    for (const Entry& element : *list) joined += (joined.empty() ? "" : ",") + element.node.Scalar();
  }
  if (r.errorCount() != errors) return;
  const auto known = semconv::KnownMethods::parse(joined);
  if (!known.ok()) {
    r.error(entry, whyNot(known.status(), kMethodsPrefix));
    return;
  }
  r.setEnv(entry, "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", known->toString());
}

// "always", "never", or CIDRs: one string ("10.0.0.0/8, ::1") or a list, each element checked
// at its own line.
void readTrustPolicy(FileReader& r, const Entry& entry) {
  const size_t errors = r.errorCount();
  std::string text;
  if (entry.node.IsScalar()) {
    text = entry.node.Scalar();
    const bool several = text.find(',') != std::string::npos;
    if (several) {
      for (std::string& why : elementErrors(text, networkError)) r.error(entry, why);
    }
  } else {
    const auto list = r.stringList(
        entry, [&r](const Entry& element) { reportElement(r, element, networkError); });
    if (!list) return;
    if (list->empty() && r.errorCount() == errors) {
      r.error(entry, "an empty list; use never to trust no one");
      return;
    }
    for (const Entry& element : *list) text += (text.empty() ? "" : ",") + element.node.Scalar();
  }
  if (r.errorCount() != errors) return;
  const auto policy = sampling::TrustPolicy::parse(text);
  if (!policy.ok()) {
    r.error(entry, whyNot(policy.status(), kTrustPrefix));
    return;
  }
  r.loaded().config.tracing.trust_incoming_context = *policy;
  r.setOrigin(entry);
}

// One string in the text form ("/healthz=never, *=10%") or a list of rules, one per element.
void readSamplingRules(FileReader& r, const Entry& entry) {
  const size_t errors = r.errorCount();
  std::vector<sampling::RuleSpec> rules;
  if (entry.node.IsScalar()) {
    for (std::string& why : samplingRuleErrors(entry.node.Scalar())) r.error(entry, why);
    auto parsed = sampling::parseRules(entry.node.Scalar());
    if (r.errorCount() != errors || !parsed.ok()) return;
    rules = *std::move(parsed);
  } else {
    const auto list = r.stringList(
        entry, [&r](const Entry& element) { reportElement(r, element, ruleError); });
    if (!list || r.errorCount() != errors) return;
    for (const Entry& element : *list) {
      auto parsed = sampling::parseRules(element.node.Scalar());
      if (!parsed.ok()) return;  // never: checked above
      for (sampling::RuleSpec& rule : *parsed) rules.push_back(std::move(rule));
    }
  }
  r.loaded().config.sampling.rules = std::move(rules);
  r.setOrigin(entry);
}

}  // namespace tracecar::proxy
