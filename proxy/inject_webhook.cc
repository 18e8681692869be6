#include "proxy/inject_webhook.h"

#include <absl/status/status.h>

#include <optional>
#include <utility>

#include "http/route_template.h"
#include "proxy/iptables_rules.h"
#include "sampling/rules.h"

namespace tracecar::proxy {
namespace {

using json::Value;

constexpr std::string_view kServiceNameVariable = "OTEL_SERVICE_NAME";

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A container object of the template: needs a name, and args (if any) must be strings.
absl::Status checkContainer(const Value& container, std::string_view key) {
  if (!container.isObject()) return absl::InvalidArgumentError(std::string(key) + ": not an object");
  const Value* name = container.find("name");
  if (name == nullptr || !name->isString() || name->text().empty()) {
    return absl::InvalidArgumentError(std::string(key) + ".name: missing or not a string");
  }
  if (const Value* args = container.find("args"); args != nullptr) {
    if (!args->isArray()) return absl::InvalidArgumentError(std::string(key) + ".args: not a list");
    for (const Value& arg : args->items()) {
      if (!arg.isString()) {
        return absl::InvalidArgumentError(std::string(key) + ".args: every item must be a string");
      }
    }
  }
  return absl::OkStatus();
}

// Replaces every `flag VALUE` and `flag=VALUE` in the container's args with one `flag VALUE` per
// value, at the end.
void replaceFlag(Value& container, std::string_view flag, const std::vector<std::string>& values) {
  Value& args = *(container.find("args") != nullptr ? container.find("args")
                                                     : &container.set("args", Value::array()));
  std::vector<Value> kept;
  const std::vector<Value>& items = args.items();
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& arg = items[i].text();
    if (arg == flag) {
      ++i;  // and its value
      continue;
    }
    if (arg.size() > flag.size() && arg.compare(0, flag.size(), flag) == 0 &&
        arg[flag.size()] == '=') {
      continue;
    }
    kept.push_back(items[i]);
  }
  for (const std::string& value : values) {
    kept.push_back(Value::string(std::string(flag)));
    kept.push_back(Value::string(value));
  }
  args = Value::array(std::move(kept));
}

void setServiceName(Value& container, const std::string& service_name) {
  if (service_name.empty()) return;
  Value variable = Value::object();
  variable.set("name", Value::string(std::string(kServiceNameVariable)));
  variable.set("value", Value::string(service_name));
  Value* env = container.find("env");
  if (env == nullptr || !env->isArray()) env = &container.set("env", Value::array());
  for (Value& item : env->items()) {
    if (item.stringAt("name") == kServiceNameVariable) {
      item = std::move(variable);
      return;
    }
  }
  env->push(std::move(variable));
}

// The annotations' values that apply to this pod, each already checked.
struct PodSettings {
  std::optional<std::vector<std::string>> routes;
  std::optional<std::string> sampling_rules;
  std::optional<std::string> exclude_inbound_ports;
  std::optional<std::string> exclude_outbound_ports;
  std::optional<std::string> exclude_outbound_cidrs;
};

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Reads the annotations; a bad value adds a warning (the pod is then left alone).
PodSettings readAnnotations(const Value* annotations, std::vector<std::string>& warnings) {
  PodSettings settings;
  if (annotations == nullptr || !annotations->isObject()) return settings;
  auto get = [&](std::string_view key) -> std::optional<std::string_view> {
    const Value* v = annotations->find(key);
    if (v == nullptr || !v->isString()) return std::nullopt;
    return trim(v->text());
  };
  if (auto routes = get(kRoutesAnnotation)) {
    std::vector<std::string> list;
    std::string_view rest = *routes;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view item = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (item.empty()) continue;
      if (auto parsed = http::parseRouteTemplate(item); !parsed.ok()) {
        warnings.push_back(std::string(kRoutesAnnotation) + ": " + quoted(item) + ": " +
                           std::string(parsed.status().message()));
        continue;
      }
      list.emplace_back(item);
    }
    settings.routes = std::move(list);
  }
  if (auto rules = get(kSamplerAnnotation)) {
    if (auto parsed = sampling::parseRules(*rules); !parsed.ok()) {
      warnings.push_back(std::string(kSamplerAnnotation) + ": " +
                         std::string(parsed.status().message()));
    }
    settings.sampling_rules = std::string(*rules);
  }
  auto ports = [&](std::string_view key, std::optional<std::string>& out) {
    if (auto text = get(key)) {
      if (auto parsed = parsePortList(key, *text); !parsed.ok()) {
        warnings.emplace_back(parsed.status().message());
      }
      out = std::string(*text);
    }
  };
  ports(kExcludeInboundPortsAnnotation, settings.exclude_inbound_ports);
  ports(kExcludeOutboundPortsAnnotation, settings.exclude_outbound_ports);
  if (auto text = get(kExcludeOutboundCidrsAnnotation)) {
    if (auto parsed = parseCidrList(kExcludeOutboundCidrsAnnotation, *text); !parsed.ok()) {
      warnings.emplace_back(parsed.status().message());
    }
    settings.exclude_outbound_cidrs = std::string(*text);
  }
  return settings;
}

std::vector<std::string> flagValues(const std::optional<std::string>& value) {
  if (!value || value->empty()) return {};
  return {*value};
}

bool hasContainerNamed(const Value* list, std::string_view a, std::string_view b) {
  if (list == nullptr || !list->isArray()) return false;
  for (const Value& container : list->items()) {
    const std::string_view name = container.stringAt("name");
    if (name == a || name == b) return true;
  }
  return false;
}

Value addOperation(std::string path, Value value) {
  Value op = Value::object();
  op.set("op", Value::string("add"));
  op.set("path", Value::string(std::move(path)));
  op.set("value", std::move(value));
  return op;
}

std::string podLabel(const Value& pod) {
  const Value* metadata = pod.find("metadata");
  std::string name = metadata != nullptr ? std::string(metadata->stringAt("name")) : "";
  if (name.empty() && metadata != nullptr) name = std::string(metadata->stringAt("generateName"));
  const std::string ns = metadata != nullptr ? std::string(metadata->stringAt("namespace")) : "";
  return ns.empty() ? name : ns + "/" + name;
}

}  // namespace

absl::StatusOr<InjectionTemplate> parseInjectionTemplate(std::string_view text) {
  auto parsed = json::parse(text);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->isObject()) return absl::InvalidArgumentError("not a JSON object");
  InjectionTemplate injection;
  const Value* init = parsed->find("initContainer");
  const Value* sidecar = parsed->find("sidecar");
  if (init == nullptr) return absl::InvalidArgumentError("initContainer: missing");
  if (sidecar == nullptr) return absl::InvalidArgumentError("sidecar: missing");
  if (auto s = checkContainer(*init, "initContainer"); !s.ok()) return s;
  if (auto s = checkContainer(*sidecar, "sidecar"); !s.ok()) return s;
  injection.init_container = *init;
  injection.sidecar = *sidecar;
  injection.init_name = std::string(init->stringAt("name"));
  injection.sidecar_name = std::string(sidecar->stringAt("name"));
  if (injection.init_name == injection.sidecar_name) {
    return absl::InvalidArgumentError("initContainer.name and sidecar.name must differ");
  }
  injection.native_sidecar = sidecar->stringAt("restartPolicy") == "Always";
  return injection;
}

std::string serviceNameFor(const Value& pod) {
  const Value* metadata = pod.find("metadata");
  if (metadata == nullptr) return "";
  if (const Value* labels = metadata->find("labels"); labels != nullptr) {
    for (std::string_view key : {"app", "app.kubernetes.io/name"}) {
      if (const std::string_view v = labels->stringAt(key); !v.empty()) return std::string(v);
    }
  }
  if (const std::string_view name = metadata->stringAt("name"); !name.empty()) {
    return std::string(name);
  }
  std::string_view generate = metadata->stringAt("generateName");
  while (!generate.empty() && generate.back() == '-') generate.remove_suffix(1);
  return std::string(generate);
}

PodPatch patchFor(const InjectionTemplate& injection, const Value& pod) {
  PodPatch result;
  result.operations = Value::array();
  const Value* metadata = pod.find("metadata");
  const Value* spec = pod.find("spec");
  if (!pod.isObject() || spec == nullptr || !spec->isObject()) {
    result.skipped = "not a pod (no spec)";
    result.warnings.push_back("the object is not a pod with a spec; not injected");
    return result;
  }
  const Value* annotations = metadata != nullptr ? metadata->find("annotations") : nullptr;
  const Value* inject = annotations != nullptr ? annotations->find(kInjectAnnotation) : nullptr;
  if (inject != nullptr) {
    const std::string_view value = inject->isString() ? trim(inject->text()) : "";
    if (value == "false") {
      result.skipped = std::string(kInjectAnnotation) + " is \"false\"";
      return result;
    }
    if (value != "true") {
      result.skipped = std::string(kInjectAnnotation) + " is not \"true\" or \"false\"";
      result.warnings.push_back(std::string(kInjectAnnotation) + ": " +
                                quoted(inject->isString() ? inject->text() : "(not a string)") +
                                ": expected \"true\" or \"false\"; not injected");
      return result;
    }
  }
  const Value* init_containers = spec->find("initContainers");
  const Value* containers = spec->find("containers");
  if (hasContainerNamed(init_containers, injection.init_name, injection.sidecar_name) ||
      hasContainerNamed(containers, injection.init_name, injection.sidecar_name)) {
    result.skipped = "already injected";
    return result;
  }
  if (const Value* host_network = spec->find("hostNetwork");
      host_network != nullptr && host_network->isBool() && host_network->boolean()) {
    result.skipped = "hostNetwork pod";
    result.warnings.push_back(
        "the pod uses the node's network (hostNetwork): its rules would intercept the node's "
        "traffic; not injected");
    return result;
  }

  PodSettings settings = readAnnotations(annotations, result.warnings);
  if (!result.warnings.empty()) {
    result.skipped = "bad annotation values";
    result.warnings.back() += "; not injected";
    return result;
  }

  Value init = injection.init_container;
  if (settings.exclude_inbound_ports) {
    replaceFlag(init, "--exclude-inbound-ports", flagValues(settings.exclude_inbound_ports));
  }
  if (settings.exclude_outbound_ports) {
    replaceFlag(init, "--exclude-outbound-ports", flagValues(settings.exclude_outbound_ports));
  }
  if (settings.exclude_outbound_cidrs) {
    replaceFlag(init, "--exclude-outbound-cidrs", flagValues(settings.exclude_outbound_cidrs));
  }
  Value sidecar = injection.sidecar;
  if (settings.routes) replaceFlag(sidecar, "--route", *settings.routes);
  if (settings.sampling_rules) {
    replaceFlag(sidecar, "--sampling-rules", flagValues(settings.sampling_rules));
  }
  setServiceName(sidecar, serviceNameFor(pod));

  const bool have_init = init_containers != nullptr && init_containers->isArray() &&
                         !init_containers->items().empty();
  Value& ops = result.operations;
  if (injection.native_sidecar) {
    // The iptables step, then the sidecar, before the pod's own init containers: those already
    // run with interception, so the sidecar must be up for them too.
    if (have_init) {
      ops.push(addOperation("/spec/initContainers/0", std::move(sidecar)));
      ops.push(addOperation("/spec/initContainers/0", std::move(init)));
    } else {
      ops.push(addOperation("/spec/initContainers", Value::array({std::move(init),
                                                                   std::move(sidecar)})));
    }
  } else {
    if (have_init) {
      ops.push(addOperation("/spec/initContainers/0", std::move(init)));
    } else {
      ops.push(addOperation("/spec/initContainers", Value::array({std::move(init)})));
    }
    if (containers != nullptr && containers->isArray()) {
      ops.push(addOperation("/spec/containers/-", std::move(sidecar)));
    } else {
      ops.push(addOperation("/spec/containers", Value::array({std::move(sidecar)})));
    }
  }
  return result;
}

ReviewResult review(const InjectionTemplate& injection, std::string_view request_body) {
  ReviewResult result;
  Value response = Value::object();
  std::string uid;
  auto parsed = json::parse(request_body);
  const Value* request = parsed.ok() ? parsed->find("request") : nullptr;
  if (!parsed.ok()) {
    result.skipped = "the request body is not JSON";
    result.warnings.push_back("tracecar: the AdmissionReview is not valid JSON (" +
                              std::string(parsed.status().message()) + "); not injected");
  } else if (request == nullptr || !request->isObject()) {
    result.skipped = "not an AdmissionReview";
    result.warnings.push_back("tracecar: the body is not an AdmissionReview with a request; "
                              "not injected");
  } else {
    uid = std::string(request->stringAt("uid"));
    const Value* kind = request->find("kind");
    const Value* object = request->find("object");
    const std::string_view operation = request->stringAt("operation");
    if (kind == nullptr || kind->stringAt("kind") != "Pod" || !kind->stringAt("group").empty()) {
      result.skipped = "not a pod";
      result.warnings.push_back("tracecar: the object is not a Pod; not injected");
    } else if (operation != "CREATE") {
      result.skipped = "operation " + std::string(operation) + ", not CREATE";
    } else if (object == nullptr || !object->isObject()) {
      result.skipped = "no object";
      result.warnings.push_back("tracecar: the request has no pod object; not injected");
    } else {
      PodPatch patch = patchFor(injection, *object);
      result.pod = podLabel(*object);
      if (const std::string_view ns = request->stringAt("namespace");
          !ns.empty() && result.pod.find('/') == std::string::npos) {
        result.pod = std::string(ns) + "/" + result.pod;
      }
      result.skipped = patch.skipped;
      for (std::string& warning : patch.warnings) {
        result.warnings.push_back("tracecar: pod " + result.pod + ": " + warning);
      }
      if (!patch.operations.items().empty()) {
        result.injected = true;
        response.set("patchType", Value::string("JSONPatch"));
        response.set("patch", Value::string(base64Encode(json::serialize(patch.operations))));
      }
    }
  }
  Value answer = Value::object();
  answer.set("apiVersion", Value::string("admission.k8s.io/v1"));
  answer.set("kind", Value::string("AdmissionReview"));
  Value& out = answer.set("response", Value::object());
  out.set("uid", Value::string(uid));
  out.set("allowed", Value(true));
  for (Value::Member& member : response.members()) out.set(member.first, std::move(member.second));
  if (!result.warnings.empty()) {
    Value warnings = Value::array();
    for (const std::string& warning : result.warnings) warnings.push(Value::string(warning));
    out.set("warnings", std::move(warnings));
  }
  result.body = json::serialize(answer);
  return result;
}

std::string base64Encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8 |
                       static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += kAlphabet[n >> 6 & 63];
    out += kAlphabet[n & 63];
  }
  if (const size_t rest = data.size() - i; rest > 0) {
    uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16;
    if (rest == 2) n |= static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += rest == 2 ? kAlphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace tracecar::proxy
