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

std::optional<EnvValue> readVariable(const EnvLookup& env, std::string_view name) {
  const std::optional<std::string> raw = env(name);
  if (!raw) return std::nullopt;
  const std::string_view value = ascii::trimOws(*raw);
  if (value.empty()) return std::nullopt;
  return EnvValue{std::string(name), std::string(value), false};
}

std::optional<EnvValue> readLower(const LowerLayer& lower, std::string_view variable) {
  const std::optional<std::string> raw = lower.value(variable);
  if (!raw) return std::nullopt;
  const std::string_view value = ascii::trimOws(*raw);
  if (value.empty()) return std::nullopt;
  return EnvValue{lower.name(variable), std::string(value), true};
}

}  // namespace tracecar::exporter
