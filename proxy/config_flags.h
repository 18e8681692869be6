#pragma once

#include "proxy/config.h"

namespace CLI {
class App;
}  // namespace CLI

namespace tracecar::proxy {

// Adds the configuration options (--config, --inbound, --outbound, --app, --admin, --workers,
// --upstream, --route, --sampling-rules) to a command; parsing fills flags, which loadConfig
// then layers over the file and the environment.
void addConfigFlags(CLI::App& command, ConfigFlags& flags);

}  // namespace tracecar::proxy
