#pragma once

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tracecar::exporter {

// Reads one environment variable; std::nullopt when unset. Configuration code takes one of
// these rather than calling getenv, so tests pass a map.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The process environment.
EnvLookup processEnvironment();
// A fixed map (tests).
EnvLookup mapEnvironment(std::map<std::string, std::string, std::less<>> values);

// The settings under the environment (tracecar's configuration file), each value in the syntax
// of the variable it stands for and found by that variable's general name
// (OTEL_EXPORTER_OTLP_TIMEOUT, never the _TRACES_ form). The readers take a setting from it
// when none of the setting's variables is set, and when those that are set are invalid: the
// OTel rule treats an invalid value as not set, so the next source applies before the
// default. The two list variables, OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS,
// are merged over the layer's list instead, key by key.
struct LowerLayer {
  // The layer's value of variable's setting; std::nullopt when the layer leaves it unset.
  EnvLookup value = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  // How a message names that value: "exporter.timeout (tracecar.yaml:3)".
  std::function<std::string(std::string_view variable)> name = [](std::string_view variable) {
    return std::string(variable);
  };
  // How a message shows that value, when the layer wrote it otherwise ("5s" for the "5000" of
  // a duration in milliseconds); empty: as the value reads.
  std::function<std::string(std::string_view variable)> written = [](std::string_view) {
    return std::string();
  };
};

// One value a reader considers, without its surrounding blanks.
struct EnvValue {
  std::string name;   // the variable, or how the lower layer names its value
  std::string value;
  bool lower = false;  // from the lower layer
  std::string written;  // how the lower layer wrote the value, when not as it reads

  // The value as a message shows it: as its layer wrote it.
  const std::string& shown() const { return written.empty() ? value : written; }
};

// The variable, when it is set to something other than blanks (the OTel rule: an empty value
// is the same as unset).
std::optional<EnvValue> readVariable(const EnvLookup& env, std::string_view name);
// The lower layer's value of variable's setting, when it has one.
std::optional<EnvValue> readLower(const LowerLayer& lower, std::string_view variable);

// A Boolean as the SDK environment specification defines them: "true" in any case is true, any
// other value false, with a warning (`NAME="value" is not true or false; using false` and
// why_false) unless it is "false".
bool booleanValue(const EnvValue& setting, std::vector<std::string>& warnings,
                  std::string_view why_false = {});

// A setting read from candidates in order (say a _TRACES_ variable, its general form, the
// lower layer's value): the first one parse takes (parse: std::optional<T>(std::string_view)),
// and where it came from. Each candidate before it that parse refuses adds a warning,
// `NAME="value" <problem>; using <what applies instead>`. std::nullopt when none is taken: the
// default applies, which the warnings call default_text.
template <class T, class Parse>
std::optional<std::pair<T, EnvValue>> pickSetting(
    std::span<const std::optional<EnvValue>> candidates, const Parse& parse,
    std::string_view problem, std::string_view default_text, std::vector<std::string>& warnings) {
  std::vector<std::optional<T>> parsed(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i]) parsed[i] = parse(candidates[i]->value);
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!candidates[i]) continue;
    if (parsed[i]) return std::pair<T, EnvValue>(*parsed[i], *candidates[i]);
    std::string instead(default_text);
    for (size_t j = i + 1; j < candidates.size(); ++j) {
      if (!candidates[j] || !parsed[j]) continue;
      const EnvValue& next = *candidates[j];
      instead = next.lower ? next.shown() + " from " + next.name : next.name + " instead";
      break;
    }
    warnings.push_back(candidates[i]->name + "=\"" + candidates[i]->value + "\" " +
                       std::string(problem) + "; using " + instead);
  }
  return std::nullopt;
}

}  // namespace tracecar::exporter
