#include "exporter/env.h"

#include <cstdlib>

#include "base/ascii.h"

namespace tracecar::exporter {

EnvLookup processEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

EnvLookup mapEnvironment(std::map<std::string, std::string, std::less<>> values) {
  return [values = std::move(values)](std::string_view name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

namespace {

// The OTel rule: a value of blanks is the same as none.
std::optional<std::string> nonBlank(const std::optional<std::string>& raw) {
  if (!raw) return std::nullopt;
  const std::string_view value = ascii::trimOws(*raw);
  if (value.empty()) return std::nullopt;
  return std::string(value);
}

}  // namespace

std::optional<EnvValue> readVariable(const EnvLookup& env, std::string_view name) {
  std::optional<std::string> value = nonBlank(env(name));
  if (!value) return std::nullopt;
  return EnvValue{std::string(name), *std::move(value), false, {}};
}

std::optional<EnvValue> readLower(const LowerLayer& lower, std::string_view variable) {
  std::optional<std::string> value = nonBlank(lower.value(variable));
  if (!value) return std::nullopt;
  return EnvValue{lower.name(variable), *std::move(value), true, lower.written(variable)};
}

bool booleanValue(const EnvValue& setting, std::vector<std::string>& warnings,
                  std::string_view why_false) {
  if (ascii::equalsIgnoreCase(setting.value, "true")) return true;
  if (!ascii::equalsIgnoreCase(setting.value, "false")) {
    warnings.push_back(setting.name + "=\"" + setting.value + "\" is not true or false; using false" +
                       std::string(why_false));
  }
  return false;
}

}  // namespace tracecar::exporter
