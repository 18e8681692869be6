#include "proxy/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <sstream>

#include "base/ascii.h"
#include "propagation/percent_encoding.h"
#include "proxy/config_file.h"
#include "proxy/original_destination.h"
#include "proxy/version.h"

namespace tracecar::proxy {
namespace {

// A file setting that stands in for a variable, and the variables that override it (the
// winning one first: OTEL_EXPORTER_OTLP_TRACES_* before OTEL_EXPORTER_OTLP_*).
struct Binding {
  std::string_view key;
  std::string_view variable;
  std::array<std::string_view, 2> overridden_by;
};

constexpr Binding kBindings[] = {
    {"tracing.propagators", "OTEL_PROPAGATORS", {"OTEL_PROPAGATORS", ""}},
    {"sampling.sampler", "OTEL_TRACES_SAMPLER", {"OTEL_TRACES_SAMPLER", ""}},
    {"sampling.ratio", "OTEL_TRACES_SAMPLER_ARG", {"OTEL_TRACES_SAMPLER_ARG", ""}},
    {"tracing.span_attribute_count_limit",
     "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
     {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"}},
    {"tracing.span_attribute_value_length_limit",
     "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
     {"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"}},
    {"exporter.type", "OTEL_TRACES_EXPORTER", {"OTEL_TRACES_EXPORTER", ""}},
    {"exporter.console_path", "TRACECAR_CONSOLE_EXPORT_PATH", {"TRACECAR_CONSOLE_EXPORT_PATH", ""}},
    // Either endpoint variable overrides both endpoint settings of the file.
    {"exporter.traces_endpoint",
     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
     {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}},
    {"exporter.endpoint",
     "OTEL_EXPORTER_OTLP_ENDPOINT",
     {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}},
    {"exporter.protocol",
     "OTEL_EXPORTER_OTLP_PROTOCOL",
     {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"}},
    {"exporter.timeout",
     "OTEL_EXPORTER_OTLP_TIMEOUT",
     {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"}},
    {"exporter.compression",
     "OTEL_EXPORTER_OTLP_COMPRESSION",
     {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"}},
    {"exporter.certificate",
     "OTEL_EXPORTER_OTLP_CERTIFICATE",
     {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"}},
    {"exporter.client_key",
     "OTEL_EXPORTER_OTLP_CLIENT_KEY",
     {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"}},
    {"exporter.client_certificate",
     "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
     {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"}},
    {"exporter.thread_nice", "TRACECAR_EXPORTER_NICE", {"TRACECAR_EXPORTER_NICE", ""}},
    {"exporter.batch.schedule_delay", "OTEL_BSP_SCHEDULE_DELAY", {"OTEL_BSP_SCHEDULE_DELAY", ""}},
    {"exporter.batch.export_timeout", "OTEL_BSP_EXPORT_TIMEOUT", {"OTEL_BSP_EXPORT_TIMEOUT", ""}},
    {"exporter.batch.max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", {"OTEL_BSP_MAX_QUEUE_SIZE", ""}},
    {"exporter.batch.max_export_batch_size",
     "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
     {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", ""}},
};

// The OTel rule: a variable set to blanks is unset.
bool isSet(const exporter::EnvLookup& env, std::string_view name) {
  if (name.empty()) return false;
  const std::optional<std::string> value = env(name);
  return value && !ascii::trimOws(*value).empty();
}

// The first variable of a binding that is set, if any.
std::string_view overridingVariable(const exporter::EnvLookup& env, const Binding& binding) {
  for (std::string_view name : binding.overridden_by) {
    if (isSet(env, name)) return name;
  }
  return {};
}

void appendEncoded(std::string_view text, std::string& out) {
  propagation::appendPercentEncoded(text, out, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
  });
}

// "k=v,k2=v2" with keys and values percent-encoded, as the OTEL_* list variables are written.
std::string encodedList(const std::vector<FileEnvLayer::Pair>& pairs, bool encode_keys) {
  std::string out;
  for (const FileEnvLayer::Pair& pair : pairs) {
    if (!out.empty()) out += ',';
    if (encode_keys) {
      appendEncoded(pair.key, out);
    } else {
      out += pair.key;
    }
    out += '=';
    appendEncoded(pair.value, out);
  }
  return out;
}

// The file's list first, so that the environment's entries win for the same key.
std::optional<std::string> mergedList(const std::string& from_file,
                                      const std::optional<std::string>& from_env) {
  if (from_file.empty()) return from_env;
  if (!from_env || ascii::trimOws(*from_env).empty()) return from_file;
  return from_file + "," + *from_env;
}

// The environment as the OTel readers see it: a variable that is set wins; otherwise the file's
// value for the same setting, unless another variable of that setting is set.
exporter::EnvLookup layeredEnvironment(const exporter::EnvLookup& env, const FileEnvLayer& file) {
  std::vector<FileEnvLayer::Pair> resource = file.resource_attributes;
  if (file.service_name) resource.push_back(*file.service_name);
  return [env, file, resource_list = encodedList(resource, true),
          header_list = encodedList(file.headers, false)](
             std::string_view name) -> std::optional<std::string> {
    if (name == "OTEL_RESOURCE_ATTRIBUTES") return mergedList(resource_list, env(name));
    if (name == "OTEL_EXPORTER_OTLP_HEADERS") return mergedList(header_list, env(name));
    if (isSet(env, name)) return env(name);
    for (const Binding& binding : kBindings) {
      if (binding.variable != name) continue;
      if (!overridingVariable(env, binding).empty()) return std::nullopt;
      const auto value = file.variables.find(name);
      if (value != file.variables.end()) return value->second.text;
    }
    return env(name);
  };
}

// Warnings name their variable first: `NAME="value" ...` or `NAME: ...`.
bool warnedAbout(const std::vector<std::string>& warnings, std::string_view variable) {
  const std::string quoted = std::string(variable) + "=\"";
  const std::string colon = std::string(variable) + ": ";
  for (const std::string& warning : warnings) {
    if (warning.rfind(quoted, 0) == 0 || warning.rfind(colon, 0) == 0) return true;
  }
  return false;
}

// The readers warn in the variables' names; a value that came from the file is named by its key
// and line instead ("exporter.batch.max_export_batch_size (tracecar.yaml:7)=1000 is larger than
// ..."), since the user never set that variable.
void nameFileSettings(const exporter::EnvLookup& env, const FileEnvLayer& file,
                      std::string& warning) {
  const auto isNameChar = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (const auto& [name, value] : file.variables) {
    if (isSet(env, name)) continue;
    const std::string by = value.key + " (" + value.location + ")";
    for (size_t at = warning.find(name); at != std::string::npos; at = warning.find(name, at)) {
      const size_t end = at + name.size();
      if ((at > 0 && isNameChar(warning[at - 1])) ||
          (end < warning.size() && isNameChar(warning[end]))) {
        at = end;
        continue;
      }
      warning.replace(at, name.size(), by);
      at += by.size();
    }
  }
}

// grpc: the endpoint is used as given; the HTTP protocols append v1/traces to the base one.
void recordEnvOrigins(const exporter::EnvLookup& env, const FileEnvLayer& file,
                      const std::vector<std::string>& warnings, bool grpc, Origins& origins) {
  for (const Binding& binding : kBindings) {
    // The readers pass over a variable they warned about to the binding's next one (the traces
    // variable to the general one); the default when none is left.
    std::string invalid;
    bool from_env = false;
    for (const std::string_view name : binding.overridden_by) {
      if (!isSet(env, name)) continue;
      if (warnedAbout(warnings, name)) {
        if (!invalid.empty()) invalid += ", ";
        invalid += name;
        continue;
      }
      std::string detail(name);
      if (!invalid.empty()) detail += " (" + invalid + " is invalid and was ignored)";  // one
      origins[std::string(binding.key)] = Origin{Source::kEnv, std::move(detail)};
      from_env = true;
      break;
    }
    if (from_env) continue;
    if (!invalid.empty()) {
      const bool several = invalid.find(',') != std::string::npos;
      origins[std::string(binding.key)] = Origin{
          Source::kDefault,
          invalid + (several ? " are invalid and were ignored" : " is invalid and was ignored")};
      continue;
    }
    const auto value = file.variables.find(binding.variable);
    if (value != file.variables.end()) {
      origins[std::string(binding.key)] = Origin{Source::kFile, value->second.location};
    }
  }
  // One effective endpoint, from either setting.
  if (!origins.contains("exporter.traces_endpoint")) {
    if (const auto base = origins.find("exporter.endpoint"); base != origins.end()) {
      origins["exporter.traces_endpoint"] = Origin{
          base->second.source, base->second.detail + (grpc ? ", endpoint" : ", endpoint + v1/traces")};
    }
  } else if (!grpc && origins["exporter.traces_endpoint"].detail == "OTEL_EXPORTER_OTLP_ENDPOINT") {
    origins["exporter.traces_endpoint"].detail += " + v1/traces";
  }
  // Headers merge: the file's, then the environment's.
  const bool env_headers =
      isSet(env, "OTEL_EXPORTER_OTLP_HEADERS") || isSet(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
  if (env_headers && !file.headers.empty()) {
    origins["exporter.headers"] = Origin{
        Source::kEnv, "OTEL_EXPORTER_OTLP_[TRACES_]HEADERS over " + file.headers.front().location};
  } else if (env_headers) {
    origins["exporter.headers"] = Origin{Source::kEnv, "OTEL_EXPORTER_OTLP_[TRACES_]HEADERS"};
  } else if (!file.headers.empty()) {
    origins["exporter.headers"] = Origin{Source::kFile, file.headers.front().location};
  }
}

// Where each resource attribute came from: a value the environment alone would give (other than
// the built-in one) is the environment's; else the file's when it set the key.
void recordResourceOrigins(const exporter::EnvLookup& env, const FileEnvLayer& file,
                           const exporter::Resource& resource, Origins& origins) {
  std::vector<std::string> ignored;
  const exporter::Resource defaults =
      exporter::Resource::fromEnvironment(exporter::mapEnvironment({}), kVersion, ignored);
  const exporter::Resource env_only = exporter::Resource::fromEnvironment(env, kVersion, ignored);
  // The OTel variables without the K8S_* ones: which of the two gave a k8s.* attribute.
  const exporter::Resource otel_only = exporter::Resource::fromEnvironment(
      [&env](std::string_view name) -> std::optional<std::string> {
        if (name == "OTEL_RESOURCE_ATTRIBUTES" || name == "OTEL_SERVICE_NAME") return env(name);
        return std::nullopt;
      },
      kVersion, ignored);
  std::vector<FileEnvLayer::Pair> from_file = file.resource_attributes;
  if (file.service_name) from_file.push_back(*file.service_name);
  for (const exporter::Attribute& attribute : resource.attributes().items()) {
    const std::string key = "resource." + std::string(attribute.key.view());
    const exporter::AttributeValue* by_env = env_only.attributes().find(attribute.key);
    const exporter::AttributeValue* by_default = defaults.attributes().find(attribute.key);
    // The environment's when it alone gives this value (not the built-in one); a file entry for
    // the same key outranks what K8S_* would give.
    if (by_env != nullptr && *by_env == attribute.value &&
        (by_default == nullptr || !(*by_env == *by_default))) {
      std::string variable = "OTEL_RESOURCE_ATTRIBUTES";
      if (attribute.key == "service.name" && isSet(env, "OTEL_SERVICE_NAME")) {
        variable = "OTEL_SERVICE_NAME";
      } else if (const exporter::AttributeValue* by_otel = otel_only.attributes().find(attribute.key);
                 attribute.key.view().starts_with("k8s.") &&
                 (by_otel == nullptr || !(*by_otel == attribute.value))) {
        variable = "K8S_* (Kubernetes downward API)";
      }
      origins[key] = Origin{Source::kEnv, variable};
      continue;
    }
    for (auto it = from_file.rbegin(); it != from_file.rend(); ++it) {
      if (it->key == attribute.key) {
        origins[key] = Origin{Source::kFile, it->location};
        break;
      }
    }
  }
}

// The OTel settings: the file's values under the environment's.
void readOtelSettings(const exporter::EnvLookup& env, const FileEnvLayer& file,
                      LoadedConfig& loaded) {
  const exporter::EnvLookup layered = layeredEnvironment(env, file);
  ProxyConfig& config = loaded.config;
  std::vector<std::string> warnings;

  auto propagators = propagation::parsePropagators(layered("OTEL_PROPAGATORS").value_or(""));
  if (propagators.ok()) {
    config.propagation.propagators = *std::move(propagators);
  } else {
    loaded.errors.emplace_back(std::string(propagators.status().message()));
  }
  auto settings = exporter::exporterSettingsFromEnv(layered, warnings);
  if (settings.ok()) {
    config.exporter.settings = *std::move(settings);
  } else {
    loaded.errors.emplace_back(std::string(settings.status().message()));
  }
  config.exporter.batch = exporter::BatchConfig::fromEnv(layered, warnings);
  config.sampling.sampler =
      sampling::fromEnv(layered("OTEL_TRACES_SAMPLER").value_or(""),
                        layered("OTEL_TRACES_SAMPLER_ARG").value_or(""), warnings);
  config.tracing.attribute_limits = exporter::attributeLimitsFromEnv(layered, warnings);
  config.tracing.resource = exporter::Resource::fromEnvironment(layered, kVersion, warnings);

  recordEnvOrigins(env, file, warnings,
                   config.exporter.settings.otlp.protocol == exporter::OtlpProtocol::kGrpc,
                   loaded.origins);
  recordResourceOrigins(env, file, config.tracing.resource, loaded.origins);
  for (std::string& warning : warnings) {
    nameFileSettings(env, file, warning);
    loaded.warnings.push_back(std::move(warning));
  }
}

std::optional<std::string> readWholeFile(const std::string& path, std::string& error) {
  // A directory opens and reads as nothing: it would pass for an empty file (every default).
  std::error_code code;
  if (std::filesystem::is_directory(path, code)) {
    error = path + ": cannot read the configuration file: it is a directory (name the file in it)";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot read the configuration file: " + std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string describeOrigin(const Origin& origin) {
  switch (origin.source) {
    case Source::kFile:
      return " (set at " + origin.detail + ")";
    case Source::kEnv:
    case Source::kFlag:
      return " (set by " + origin.detail + ")";
    case Source::kDefault:
      break;
  }
  return " (the default)";
}

bool isWildcard(const HostPort& address) {
  in_addr v4{};
  in6_addr v6{};
  return (::inet_pton(AF_INET, address.host.c_str(), &v4) == 1 && v4.s_addr == INADDR_ANY) ||
         (::inet_pton(AF_INET6, address.host.c_str(), &v6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&v6));
}

// Would a peer at `to` be the listener? The data path's own rule (OwnListeners), on the
// addresses `to` names: localhost's two, or an IP literal however written; another name is
// checked once resolved, by the connection pools.
bool reaches(const HostPort& to, const HostPort& listener) {
  if (to.port != listener.port || listener.port == 0) return false;
  OwnListeners own;
  if (!own.add(listener.host, listener.port).ok()) return false;
  std::string_view host = to.host;
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (ascii::equalsIgnoreCase(host, "localhost")) {
    return own.contains("127.0.0.1", to.port) || own.contains("::1", to.port);
  }
  return own.contains(to.host, to.port);
}

// Would two listeners bind the same port on a shared address? A wildcard shares every address.
bool overlaps(const HostPort& a, const HostPort& b) {
  if (a.port == 0 || a.port != b.port) return false;
  return isWildcard(a) || isWildcard(b) || reaches(b, a);
}

// Once: applyFlags may run the checks again on the same result.
void addErrorOnce(LoadedConfig& loaded, std::string error) {
  if (std::find(loaded.errors.begin(), loaded.errors.end(), error) == loaded.errors.end()) {
    loaded.errors.push_back(std::move(error));
  }
}

void checkAddresses(LoadedConfig& loaded) {
  const ProxyConfig& config = loaded.config;
  const std::pair<std::string_view, const HostPort*> listeners[] = {
      {"listeners.inbound", &config.listeners.inbound},
      {"listeners.outbound", &config.listeners.outbound},
      {"listeners.admin", &config.listeners.admin}};
  for (size_t i = 0; i < std::size(listeners); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const HostPort& a = *listeners[i].second;
      const HostPort& b = *listeners[j].second;
      if (overlaps(a, b)) {
        addErrorOnce(loaded, std::string(listeners[i].first) + ": " + a.toString() +
                                 describeOrigin(loaded.origin(listeners[i].first)) + " overlaps " +
                                 std::string(listeners[j].first) + " " + b.toString() +
                                 describeOrigin(loaded.origin(listeners[j].first)));
      }
    }
  }
  for (const auto& [key, listener] : listeners) {
    if (reaches(config.upstreams.app, *listener)) {
      addErrorOnce(loaded, "upstreams.app: " + config.upstreams.app.toString() +
                               describeOrigin(loaded.origin("upstreams.app")) +
                               " is tracecar's own " + std::string(key) + "; requests would loop");
    }
  }
}

// The sampling settings together (a `+limit` rule needs a rate limit, nothing may follow a
// catch-all rule...): the Sampler the proxy will build must build.
void checkSampling(LoadedConfig& loaded) {
  const absl::StatusOr<sampling::Sampler> sampler =
      sampling::Sampler::create(loaded.config.sampling);
  if (sampler.ok()) return;
  const std::string message(sampler.status().message());
  std::string key = "sampling.rules";
  if (message.rfind("rate limit", 0) == 0) {
    key = "sampling.rate_limit";
  } else if (message.rfind("threshold precision", 0) == 0) {
    key = "sampling.threshold_precision";
  } else if (message.rfind("sampler ratio", 0) == 0) {
    key = "sampling.ratio";
  }
  addErrorOnce(loaded, key + describeOrigin(loaded.origin(key)) + ": " + message);
}

// Resolves what the layers leave open and checks what involves several settings.
void finish(LoadedConfig& loaded) {
  ProxyConfig& config = loaded.config;
  if (config.workers == 0) {
    config.workers = loaded.auto_workers.workers;
    Origin& origin = loaded.origins["workers"];
    origin.detail += (origin.detail.empty() ? "auto: " : " (auto: ") + loaded.auto_workers.reason +
                     (origin.source == Source::kDefault ? "" : ")");
  }
  auto matcher = http::RouteMatcher::compile(std::span<const std::string>(config.tracing.routes));
  if (matcher.ok()) {
    config.tracing.route_matcher = *std::move(matcher);
  } else {
    addErrorOnce(loaded, "routes: " + std::string(matcher.status().message()));
    config.tracing.route_matcher = http::RouteMatcher();
  }
  checkAddresses(loaded);
  checkSampling(loaded);
}

void flagAddress(const std::optional<std::string>& value, std::string_view flag,
                 std::string_view key, AddressUse use, HostPort& out, LoadedConfig& loaded) {
  if (!value) return;
  absl::StatusOr<HostPort> parsed = parseHostPort(*value, use);
  if (!parsed.ok()) {
    loaded.errors.push_back(std::string(flag) + ": " + std::string(parsed.status().message()));
    return;
  }
  out = *std::move(parsed);
  loaded.origins[std::string(key)] = Origin{Source::kFlag, std::string(flag)};
}

}  // namespace

std::string_view toString(OutboundMode mode) noexcept {
  switch (mode) {
    case OutboundMode::kHost:
      return "host";
    case OutboundMode::kUpstream:
      return "upstream";
    case OutboundMode::kOriginalDestination:
      return "original_destination";
  }
  return "host";
}

std::string_view toString(InboundMode mode) noexcept {
  return mode == InboundMode::kApp ? "app" : "original_port";
}

std::string_view toString(HeaderPolicy policy) noexcept {
  return policy == HeaderPolicy::kReject ? "reject" : "truncate";
}

std::string_view toString(Source source) noexcept {
  switch (source) {
    case Source::kDefault:
      return "default";
    case Source::kFile:
      return "file";
    case Source::kEnv:
      return "env";
    case Source::kFlag:
      return "flag";
  }
  return "default";
}

Origin LoadedConfig::origin(std::string_view key) const {
  const auto found = origins.find(key);
  return found == origins.end() ? Origin{} : found->second;
}

LoadedConfig loadConfig(const ConfigFlags& flags, const ConfigInputs& inputs) {
  LoadedConfig loaded;
  loaded.config.workers = 0;  // auto unless a layer says otherwise
  loaded.auto_workers = defaultWorkerCount(inputs.cpu);

  FileEnvLayer file;
  std::optional<std::string> text = inputs.file_text;
  if (!text && flags.config_file) {
    std::string error;
    text = readWholeFile(*flags.config_file, error);
    if (!text) loaded.errors.push_back(std::move(error));
  }
  if (text) readConfigFile(flags.config_file.value_or("config"), *text, loaded, file);

  readOtelSettings(inputs.env, file, loaded);
  applyFlags(flags, loaded);
  return loaded;
}

std::vector<std::string> inboundAlpn(const ProxyConfig& config) {
  if (!config.tls.inbound.alpn.empty()) return config.tls.inbound.alpn;
  if (config.upstreams.app_protocol == UpstreamProtocol::kSame) return {"http/1.1"};
  return {"h2", "http/1.1"};
}

void applyFlags(const ConfigFlags& flags, LoadedConfig& loaded) {
  ProxyConfig& config = loaded.config;
  flagAddress(flags.inbound, "--inbound", "listeners.inbound", AddressUse::kListen,
              config.listeners.inbound, loaded);
  flagAddress(flags.outbound, "--outbound", "listeners.outbound", AddressUse::kListen,
              config.listeners.outbound, loaded);
  flagAddress(flags.admin, "--admin", "listeners.admin", AddressUse::kListen,
              config.listeners.admin, loaded);
  flagAddress(flags.app, "--app", "upstreams.app", AddressUse::kPeer, config.upstreams.app, loaded);
  if (flags.upstream) {
    if (*flags.upstream == "host" || *flags.upstream == "original_destination") {
      config.upstreams.outbound_mode = *flags.upstream == "host"
                                           ? OutboundMode::kHost
                                           : OutboundMode::kOriginalDestination;
      loaded.origins["upstreams.outbound"] = Origin{Source::kFlag, "--upstream"};
    } else {
      HostPort upstream;
      const size_t before = loaded.errors.size();
      flagAddress(flags.upstream, "--upstream", "upstreams.outbound", AddressUse::kPeer, upstream,
                  loaded);
      if (loaded.errors.size() == before) {
        config.upstreams.outbound_mode = OutboundMode::kUpstream;
        config.upstreams.outbound_upstream = upstream;
      }
    }
  }
  if (flags.app_protocol) {
    if (const std::optional<UpstreamProtocol> protocol = parseUpstreamProtocol(*flags.app_protocol)) {
      config.upstreams.app_protocol = *protocol;
      loaded.origins["upstreams.app_protocol"] = Origin{Source::kFlag, "--app-protocol"};
    } else {
      addErrorOnce(loaded, "--app-protocol: must be same, http1 or h2, got \"" + *flags.app_protocol +
                           "\"");
    }
  }
  if (flags.tls_cert.has_value() != flags.tls_key.has_value()) {
    addErrorOnce(loaded, "--tls-cert and --tls-key go together");
  } else if (flags.tls_cert) {
    if (flags.tls_cert->empty() || flags.tls_key->empty()) {
      addErrorOnce(loaded, "--tls-cert and --tls-key: give the file names");
    } else {
      // The flags replace the certificate and key only: the file's client CA (mTLS) and ALPN
      // list stay, with the file's origin.
      // (try_emplace: applied again, the flags find these two recorded already.)
      const Origin before = loaded.origin("tls.inbound");
      if (!config.tls.inbound.client_ca_file.empty()) {
        loaded.origins.try_emplace("tls.inbound.client_ca_file", before);
      }
      if (!config.tls.inbound.alpn.empty()) loaded.origins.try_emplace("tls.inbound.alpn", before);
      config.tls.inbound.cert_file = *flags.tls_cert;
      config.tls.inbound.key_file = *flags.tls_key;
      loaded.origins["tls.inbound"] = Origin{Source::kFlag, "--tls-cert, --tls-key"};
    }
  }
  if (flags.workers) {
    const std::string& text = *flags.workers;
    size_t workers = 0;
    bool ok = text == "auto";
    if (!ok && !text.empty() && text.size() <= 4 &&
        text.find_first_not_of("0123456789") == std::string::npos) {
      workers = std::stoul(text);
      ok = workers >= 1 && workers <= static_cast<size_t>(kMaxWorkers);
    }
    if (ok) {
      config.workers = workers;  // 0: auto
      loaded.origins["workers"] = Origin{Source::kFlag, "--workers"};
    } else {
      loaded.errors.push_back("--workers: must be \"auto\" or an integer in 1.." +
                              std::to_string(kMaxWorkers) + ", got \"" + text + "\"");
    }
  }
  if (!flags.routes.empty()) {
    bool ok = true;
    for (const std::string& route : flags.routes) {
      const auto parsed = http::parseRouteTemplate(route);
      if (!parsed.ok()) {
        loaded.errors.push_back("--route: " + std::string(parsed.status().message()));
        ok = false;
      }
    }
    if (ok) {
      config.tracing.routes = flags.routes;
      loaded.origins["routes"] = Origin{Source::kFlag, "--route"};
    }
  }
  if (flags.sampling_rules) {
    auto rules = sampling::parseRules(*flags.sampling_rules);
    if (rules.ok()) {
      config.sampling.rules = *std::move(rules);
      loaded.origins["sampling.rules"] = Origin{Source::kFlag, "--sampling-rules"};
    } else {
      std::string message(rules.status().message());
      if (message.rfind("sampling rules: ", 0) == 0) message.erase(0, 16);
      loaded.errors.push_back("--sampling-rules: " + message);
    }
  }
  finish(loaded);
}

}  // namespace tracecar::proxy
