#pragma once

#include "absl/status/statusor.h"
#include "proxy/config.h"
#include "proxy/data_path_settings.h"
#include "proxy/metrics.h"
#include "proxy/request_tracer.h"
#include "sampling/sampler.h"

namespace tracecar::proxy {

// The TLS contexts a configuration names, built from their files: the inbound listener's
// (tls.inbound) and each destination's (upstreams.destinations[i].tls; null without).
struct DataPathTls {
  std::shared_ptr<ReloadingTlsContext> inbound;
  std::vector<std::shared_ptr<ReloadingTlsContext>> destinations;
  // Every context above, for reloading.
  std::vector<std::shared_ptr<ReloadingTlsContext>> all() const;
};
// Every file that cannot be read is an error of its own; a context is built only from files
// that can all be read. Each error starts with where the file was named (errorPrefix: the
// file's key and line, the flag, or the variable): "tracecar.yaml:4:15: tls.inbound.key_file:
// cannot read /etc/tls/key.pem: No such file or directory".
DataPathTls loadDataPathTls(const ProxyConfig& config, const Origins& origins,
                            std::vector<std::string>& errors);

// What `tracecar run` reads before its exporter can start, checked without starting it: the
// OTLP exporter's CA, client certificate and key (for an https endpoint), and that the console
// exporter's file can be opened for appending (an existing file is not touched; a missing one
// is not created, its directory must take it; a FIFO with no reader yet passes, as `run` waits
// for one). Errors are worded as loadDataPathTls words them, naming the variable or the file's
// key. Nothing is checked while the SDK is disabled: `run` starts no exporter.
void checkExporterFiles(const ProxyConfig& config, const Origins& origins,
                        std::vector<std::string>& errors);

// The data path's settings from a loaded configuration: listeners, upstreams, workers, the
// request and response limits, the timeouts and TLS (contexts from loadDataPathTls).
DataPathSettings dataPathSettingsFrom(const ProxyConfig& config, const DataPathTls& tls = {});

// The tracing settings every worker's RequestTracer shares: the baggage and tracestate policies,
// query redaction, attribute limits, the known methods and whether untrusted baggage is dropped.
RequestTracingConfig requestTracingConfigFrom(const ProxyConfig& config);

// The one Sampler every worker shares (a loaded, ok() configuration has been checked to build).
absl::StatusOr<sampling::Sampler> samplerFrom(const ProxyConfig& config);

// The sampler's metric labels: its name and one label per rule index.
SamplingLabels samplingLabelsOf(const sampling::Sampler& sampler);

}  // namespace tracecar::proxy
