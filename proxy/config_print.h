#pragma once

#include <string>

#include "proxy/config.h"

namespace tracecar::proxy {

// The effective configuration, one "key.path: value  # origin" line per setting, in the order
// of docs/configuration.md; the origin is "default", "file NAME:LINE", "env VARIABLE" or
// "flag --OPTION". Header values of the exporter are never printed, only their names.
std::string formatEffectiveConfig(const LoadedConfig& loaded);

}  // namespace tracecar::proxy
