#include "proxy/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <sstream>

#include "base/ascii.h"
#include "proxy/config_file.h"
#include "proxy/config_lists.h"
#include "proxy/config_otel.h"
#include "proxy/original_destination.h"

namespace tracecar::proxy {
namespace {

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

std::string errorPrefix(const Origins& origins, std::string_view key) {
  const auto found = origins.find(key);
  const std::string path(key);
  if (found == origins.end()) return path + ": ";
  const Origin& origin = found->second;
  switch (origin.source) {
    case Source::kFile:
      return (origin.position.empty() ? origin.detail : origin.position) + ": " + path + ": ";
    case Source::kEnv:
      // The variable, without what the detail says after it ("(... is invalid and was ignored)").
      return origin.detail.substr(0, origin.detail.find(' ')) + ": ";
    case Source::kFlag:
      return origin.detail + ": ";
    case Source::kDefault:
      break;
  }
  return path + ": ";
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
  if (!text && flags.config_file && flags.config_file->empty()) {
    loaded.errors.push_back("--config: the file name is empty");
  } else if (!text && flags.config_file) {
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
    } else if (flags.upstream->find(':') == std::string::npos) {
      // Not an address: a keyword misspelt, or a host without its port.
      addErrorOnce(loaded, "--upstream: \"" + *flags.upstream + "\": " +
                               std::string(kOutboundWant));
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
      loaded.origins["tls.inbound.cert_file"] = Origin{Source::kFlag, "--tls-cert"};
      loaded.origins["tls.inbound.key_file"] = Origin{Source::kFlag, "--tls-key"};
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
    // Every bad rule, not only the first.
    const std::vector<std::string> errors = samplingRuleErrors(*flags.sampling_rules);
    for (const std::string& error : errors) addErrorOnce(loaded, "--sampling-rules: " + error);
    if (auto rules = sampling::parseRules(*flags.sampling_rules); errors.empty() && rules.ok()) {
      config.sampling.rules = *std::move(rules);
      loaded.origins["sampling.rules"] = Origin{Source::kFlag, "--sampling-rules"};
    }
  }
  finish(loaded);
}

}  // namespace tracecar::proxy
