#pragma once

#include "absl/status/statusor.h"
#include "proxy/config.h"
#include "proxy/data_path_settings.h"
#include "proxy/metrics.h"
#include "proxy/request_tracer.h"
#include "sampling/sampler.h"

namespace tracecar::proxy {

// The data path's settings from a loaded configuration: listeners, upstreams, workers, the
// request and response limits and the timeouts.
DataPathSettings dataPathSettingsFrom(const ProxyConfig& config);

// The tracing settings every worker's RequestTracer shares: the baggage and tracestate policies,
// query redaction, attribute limits and whether untrusted baggage is dropped.
RequestTracingConfig requestTracingConfigFrom(const ProxyConfig& config);

// The one Sampler every worker shares (a loaded, ok() configuration has been checked to build).
absl::StatusOr<sampling::Sampler> samplerFrom(const ProxyConfig& config);

// The sampler's metric labels: its name and one label per rule index.
SamplingLabels samplingLabelsOf(const sampling::Sampler& sampler);

}  // namespace tracecar::proxy
