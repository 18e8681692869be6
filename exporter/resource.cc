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

// std::nullopt when a '%' is not followed by two hex digits, or the result is not UTF-8 or holds
// a control character (control is then set): "%00" would cut the value short wherever it is
// written as a C string, "%0A" start a new line in a log.
std::optional<std::string> percentDecoded(std::string_view in, bool& control) {
  std::string out;
  if (!propagation::percentDecode(in, out)) return std::nullopt;
  if (utf8::sanitizedSize(out) != out.size()) return std::nullopt;
  if (ascii::hasControl(out)) {
    control = true;
    return std::nullopt;
  }
  return out;
}

struct Pair {
  std::string key;
  std::string value;
};

// The pairs of a list ("k=v,k2=v2", keys and values percent-encoded), in order; the entries
// that do not decode go to malformed, as written.
std::vector<Pair> decodeResourceAttributes(std::string_view list,
                                           std::vector<std::string_view>& malformed,
                                           bool& control) {
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
      key = percentDecoded(ascii::trimOws(pair.substr(0, eq)), control);
      value = percentDecoded(ascii::trimOws(pair.substr(eq + 1)), control);
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
std::vector<Pair> resourceAttributes(const EnvValue& setting, std::vector<std::string>& warnings) {
  std::vector<std::string_view> malformed;
  bool control = false;
  std::vector<Pair> pairs = decodeResourceAttributes(setting.value, malformed, control);
  if (malformed.empty()) return pairs;
  std::string entries;
  for (std::string_view entry : malformed) {
    // As written, control characters (a variable may hold them) shown as \xHH.
    entries += entries.empty() ? "\"" : ", \"";
    ascii::appendEscapingControls(entries, entry);
    entries += "\"";
  }
  warnings.push_back(setting.name + ": ignoring the whole value: malformed " +
                     (malformed.size() == 1 ? "entry " : "entries ") + entries +
                     " (want key=percent-encoded-value, separated by commas" +
                     (control ? "; a key or value may not hold a control character" : "") + ")");
  return {};
}

}  // namespace

Resource::Source Resource::sourceOf(std::string_view key) const {
  const auto found = sources_.find(key);
  return found == sources_.end() ? Source{} : found->second;
}

void Resource::set(std::string_view key, std::string value, Layer layer,
                   std::string_view variable) {
  attributes_.set(key, std::move(value), kUnlimited);
  sources_.insert_or_assign(std::string(key), Source{layer, std::string(variable)});
}

InstrumentationScope tracecarScope(std::string_view tracecar_version) {
  return InstrumentationScope{"tracecar", std::string(tracecar_version)};
}

Resource Resource::fromEnvironment(const EnvLookup& env, std::string_view tracecar_version,
                                   std::vector<std::string>& warnings, const LowerLayer& lower) {
  Resource resource;
  resource.set("service.name", "unknown_service:tracecar", Layer::kBuiltIn);
  resource.set("telemetry.sdk.name", "tracecar", Layer::kBuiltIn);
  resource.set("telemetry.sdk.language", "cpp", Layer::kBuiltIn);
  resource.set("telemetry.sdk.version", std::string(tracecar_version), Layer::kBuiltIn);

  static constexpr std::pair<std::string_view, std::string_view> kKubernetes[] = {
      {"K8S_POD_NAME", "k8s.pod.name"},
      {"POD_NAMESPACE", "k8s.namespace.name"},
      {"K8S_NAMESPACE_NAME", "k8s.namespace.name"},  // preferred
      {"K8S_NODE_NAME", "k8s.node.name"},
      {"K8S_POD_UID", "k8s.pod.uid"},
      {"K8S_CONTAINER_NAME", "k8s.container.name"}};
  for (const auto& [variable, key] : kKubernetes) {
    const std::optional<std::string> value = env(variable);
    if (value && !ascii::trimOws(*value).empty()) {
      resource.set(key, *value, Layer::kKubernetes, variable);
    }
  }

  if (const std::optional<EnvValue> list = readLower(lower, "OTEL_RESOURCE_ATTRIBUTES")) {
    for (Pair& pair : resourceAttributes(*list, warnings)) {
      resource.set(pair.key, std::move(pair.value), Layer::kLower);
    }
  }
  if (const std::optional<EnvValue> list = readVariable(env, "OTEL_RESOURCE_ATTRIBUTES")) {
    for (Pair& pair : resourceAttributes(*list, warnings)) {
      resource.set(pair.key, std::move(pair.value), Layer::kResourceAttributes);
    }
  }
  // Empty or blank: unset, like every variable.
  if (const std::optional<std::string> name = env("OTEL_SERVICE_NAME");
      name && !ascii::trimOws(*name).empty()) {
    resource.set("service.name", *name, Layer::kServiceName);
  }
  return resource;
}

}  // namespace tracecar::exporter
