#pragma once

#include "exporter/env.h"
#include "proxy/config.h"
#include "proxy/config_file.h"

namespace tracecar::proxy {

// The OpenTelemetry settings (the OTEL_* variables, TRACECAR_CONSOLE_EXPORT_PATH and
// TRACECAR_EXPORTER_NICE) over the file's: a variable that is set and valid wins; an invalid one
// is a warning and gives way to the file's value, then to the default. Fills loaded.config's
// propagators, exporter, batch, sampler, attribute limits, resource, sdk_disabled and
// known methods, their origins, and the errors and warnings.
void readOtelSettings(const exporter::EnvLookup& env, const FileEnvLayer& file,
                      LoadedConfig& loaded);

}  // namespace tracecar::proxy
