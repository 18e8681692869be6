#pragma once

#include <cstdint>
#include <map>
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

  // The layer that gave an attribute its value (the last of the layers above to set it), kept
  // as it is built: a value from a variable may equal a built-in one, so the values cannot say.
  enum class Layer : uint8_t { kBuiltIn, kKubernetes, kLower, kResourceAttributes, kServiceName };
  struct Source {
    Layer layer = Layer::kBuiltIn;
    std::string variable;  // kKubernetes: the variable ("K8S_POD_NAME"); else empty
  };
  // kBuiltIn for a key set otherwise (attributes() is writable) or not at all.
  Source sourceOf(std::string_view key) const;

 private:
  void set(std::string_view key, std::string value, Layer layer, std::string_view variable = {});

  Attributes attributes_;
  std::map<std::string, Source, std::less<>> sources_;
};

}  // namespace tracecar::exporter
