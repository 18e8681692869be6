#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "exporter/env.h"
#include "exporter/span.h"

namespace tracecar::exporter {

// OTLP InstrumentationScope: who produced the spans.
struct InstrumentationScope {
  std::string name;
  std::string version;
};

// The scope of every span tracecar makes: name "tracecar" and tracecar's version.
InstrumentationScope tracecarScope(std::string_view tracecar_version);

// The OTLP Resource: what produced the spans (this sidecar, its service, its pod).
class Resource {
 public:
  // Layers, each later one winning over the earlier ones for the same key:
  //  1. telemetry.sdk.name="tracecar", telemetry.sdk.language="cpp",
  //     telemetry.sdk.version=tracecar_version, service.name="unknown_service:tracecar";
  //  2. Kubernetes attributes, from variables the Helm chart sets with the downward API:
  //     K8S_POD_NAME -> k8s.pod.name, K8S_NAMESPACE_NAME (or POD_NAMESPACE) ->
  //     k8s.namespace.name, K8S_NODE_NAME -> k8s.node.name, K8S_POD_UID -> k8s.pod.uid,
  //     K8S_CONTAINER_NAME -> k8s.container.name (unset or empty: attribute left out);
  //  3. the lower layer's OTEL_RESOURCE_ATTRIBUTES list (tracecar's file: its
  //     resource_attributes, then its service_name);
  //  4. OTEL_RESOURCE_ATTRIBUTES: key=value pairs separated by commas, trimmed, then
  //     percent-decoded. A malformed pair (no '=', empty key, bad percent-encoding, invalid
  //     UTF-8) discards the whole variable, as the resource SDK specification asks, with a
  //     warning naming the malformed pairs;
  //  5. OTEL_SERVICE_NAME -> service.name.
  static Resource fromEnvironment(const EnvLookup& env, std::string_view tracecar_version,
                                  std::vector<std::string>& warnings,
                                  const LowerLayer& lower = {});

  const Attributes& attributes() const noexcept { return attributes_; }
  Attributes& attributes() noexcept { return attributes_; }

 private:
  Attributes attributes_;
};

}  // namespace tracecar::exporter
