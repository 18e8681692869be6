#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace tracecar::exporter {

// Reads one environment variable; std::nullopt when unset. Configuration code takes one of
// these rather than calling getenv, so tests pass a map.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// The process environment.
EnvLookup processEnvironment();
// A fixed map (tests).
EnvLookup mapEnvironment(std::map<std::string, std::string, std::less<>> values);

}  // namespace tracecar::exporter
