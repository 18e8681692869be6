#include "exporter/resource.h"

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "base/ascii.h"
#include "propagation/percent_encoding.h"

namespace tracecar::exporter {

namespace {

// Resource attributes are not span attributes: no count or length limit applies to them.
constexpr AttributeLimits kUnlimited{std::numeric_limits<size_t>::max(),
                                     std::numeric_limits<size_t>::max()};

// std::nullopt when a '%' is not followed by two hex digits or the result is not UTF-8.
std::optional<std::string> percentDecoded(std::string_view in) {
  std::string out;
  if (!propagation::percentDecode(in, out)) return std::nullopt;
  if (utf8::sanitizedSize(out) != out.size()) return std::nullopt;
  return out;
}

void setFromVariable(const EnvLookup& env, std::string_view variable, std::string_view key,
                     Attributes& attributes) {
  const std::optional<std::string> value = env(variable);
  if (value && !ascii::trimOws(*value).empty()) attributes.set(key, *value, kUnlimited);
}

struct Pair {
  std::string key;
  std::string value;
};

// The pairs of a list ("k=v,k2=v2", keys and values percent-encoded), in order; the entries
// that do not decode go to malformed, as written.
std::vector<Pair> decodeResourceAttributes(std::string_view list,
                                           std::vector<std::string_view>& malformed) {
  std::vector<Pair> pairs;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view pair = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (ascii::trimOws(pair).empty()) continue;  // "a=1,,b=2" and a trailing comma are harmless
    const size_t eq = pair.find('=');
    std::optional<std::string> key;
    std::optional<std::string> value;
    if (eq != std::string_view::npos) {
      key = percentDecoded(ascii::trimOws(pair.substr(0, eq)));
      value = percentDecoded(ascii::trimOws(pair.substr(eq + 1)));
    }
    if (!key || key->empty() || !value) {
      malformed.push_back(pair);
      continue;
    }
    pairs.push_back(Pair{*std::move(key), *std::move(value)});
  }
  return pairs;
}

// The resource SDK specification: "In case of any error, e.g. failure to decode, the entire
// environment variable value SHOULD be discarded and an error SHOULD be reported".
void addResourceAttributes(const EnvValue& setting, Attributes& attributes,
                           std::vector<std::string>& warnings) {
  std::vector<std::string_view> malformed;
  std::vector<Pair> pairs = decodeResourceAttributes(setting.value, malformed);
  if (!malformed.empty()) {
    std::string entries;
    for (std::string_view entry : malformed) {
      entries += (entries.empty() ? "\"" : ", \"") + std::string(entry) + "\"";
    }
    warnings.push_back(setting.name + ": ignoring the whole value: malformed " +
                       (malformed.size() == 1 ? "entry " : "entries ") + entries +
                       " (want key=percent-encoded-value, separated by commas)");
    return;
  }
  for (Pair& pair : pairs) attributes.set(pair.key, std::move(pair.value), kUnlimited);
}

}  // namespace

InstrumentationScope tracecarScope(std::string_view tracecar_version) {
  return InstrumentationScope{"tracecar", std::string(tracecar_version)};
}

Resource Resource::fromEnvironment(const EnvLookup& env, std::string_view tracecar_version,
                                   std::vector<std::string>& warnings, const LowerLayer& lower) {
  Resource resource;
  Attributes& attributes = resource.attributes_;
  attributes.set("service.name", std::string("unknown_service:tracecar"), kUnlimited);
  attributes.set("telemetry.sdk.name", std::string("tracecar"), kUnlimited);
  attributes.set("telemetry.sdk.language", std::string("cpp"), kUnlimited);
  attributes.set("telemetry.sdk.version", std::string(tracecar_version), kUnlimited);

  setFromVariable(env, "K8S_POD_NAME", "k8s.pod.name", attributes);
  setFromVariable(env, "POD_NAMESPACE", "k8s.namespace.name", attributes);
  setFromVariable(env, "K8S_NAMESPACE_NAME", "k8s.namespace.name", attributes);  // preferred
  setFromVariable(env, "K8S_NODE_NAME", "k8s.node.name", attributes);
  setFromVariable(env, "K8S_POD_UID", "k8s.pod.uid", attributes);
  setFromVariable(env, "K8S_CONTAINER_NAME", "k8s.container.name", attributes);

  if (const std::optional<EnvValue> list = readLower(lower, "OTEL_RESOURCE_ATTRIBUTES")) {
    addResourceAttributes(*list, attributes, warnings);
  }
  if (const std::optional<EnvValue> list = readVariable(env, "OTEL_RESOURCE_ATTRIBUTES")) {
    addResourceAttributes(*list, attributes, warnings);
  }
  // Empty or blank: unset, like every variable.
  if (const std::optional<std::string> name = env("OTEL_SERVICE_NAME");
      name && !ascii::trimOws(*name).empty()) {
    attributes.set("service.name", *name, kUnlimited);
  }
  return resource;
}

}  // namespace tracecar::exporter
