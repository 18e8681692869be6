#pragma once

#include "proxy/config.h"
#include "proxy/data_path_settings.h"
#include "proxy/request_tracer.h"

namespace tracecar::proxy {

// The data path's settings from a loaded configuration: listeners, upstreams, workers, the
// request and response limits and the timeouts.
DataPathSettings dataPathSettingsFrom(const ProxyConfig& config);

// The tracing settings every worker's RequestTracer shares: the baggage and tracestate policies,
// query redaction and attribute limits.
RequestTracingConfig requestTracingConfigFrom(const ProxyConfig& config);

}  // namespace tracecar::proxy
