#include "proxy/run_settings.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "http/tls.h"

namespace tracecar::proxy {
namespace {

DataPathAddress address(const HostPort& host_port) {
  return DataPathAddress{host_port.host, host_port.port};
}

ContextHeaderPolicy policy(HeaderPolicy policy) noexcept {
  return policy == HeaderPolicy::kReject ? ContextHeaderPolicy::kReject
                                         : ContextHeaderPolicy::kTruncate;
}

// A file a TLS context is built from, and the key that names it.
struct NamedFile {
  std::string key;
  const std::string& path;  // empty: not configured
};

// The keys of one context's files, to name the one an error is about, and of the context.
struct TlsFileKeys {
  std::string context;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// Opens each configured file for reading, as OpenSSL will: an error for every one that cannot
// be read, each naming its key and the system's reason. True when all can be.
bool allReadable(const std::vector<NamedFile>& files, const Origins& origins,
                 std::vector<std::string>& errors) {
  bool all = true;
  for (const NamedFile& file : files) {
    if (file.path.empty()) continue;
    std::string reason;
    const int fd = ::open(file.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      reason = std::generic_category().message(errno);
    } else {
      struct stat st {};
      if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) reason = "it is a directory";
      ::close(fd);
    }
    if (reason.empty()) continue;
    errors.push_back(errorPrefix(origins, file.key) + "cannot read " + file.path + ": " + reason);
    all = false;
  }
  return all;
}

// An error of building a context from readable files (bad PEM data, an encrypted key, a key
// that does not match its certificate), under the key of the file it is about.
std::string contextError(const absl::Status& status, const TlsFileKeys& keys,
                         const Origins& origins) {
  std::string_view key;
  switch (http::tlsErrorFile(status)) {
    case http::TlsFile::kCaFile:
      key = keys.ca_file;
      break;
    case http::TlsFile::kCertFile:
      key = keys.cert_file;
      break;
    case http::TlsFile::kKeyFile:
      key = keys.key_file;
      break;
    case http::TlsFile::kNone:
      key = keys.context;  // not about one file: the context's settings as a whole
      break;
  }
  return errorPrefix(origins, key) + std::string(status.message());
}

}  // namespace

absl::StatusOr<sampling::Sampler> samplerFrom(const ProxyConfig& config) {
  return sampling::Sampler::create(config.sampling);
}

SamplingLabels samplingLabelsOf(const sampling::Sampler& sampler) {
  SamplingLabels labels;
  labels.sampler = std::string(sampler.samplerName());
  labels.rules.clear();
  for (size_t rule = 0; rule < sampler.ruleCount(); ++rule) {
    labels.rules.emplace_back(sampler.ruleLabel(static_cast<uint16_t>(rule)));
  }
  return labels;
}

std::vector<std::shared_ptr<ReloadingTlsContext>> DataPathTls::all() const {
  std::vector<std::shared_ptr<ReloadingTlsContext>> out;
  if (inbound) out.push_back(inbound);
  for (const auto& context : destinations) {
    if (context) out.push_back(context);
  }
  return out;
}

DataPathTls loadDataPathTls(const ProxyConfig& config, const Origins& origins,
                            std::vector<std::string>& errors) {
  DataPathTls tls;
  const TlsTerminationConfig& inbound = config.tls.inbound;
  if (inbound.enabled()) {
    const TlsFileKeys keys{"tls.inbound", "tls.inbound.client_ca_file", "tls.inbound.cert_file",
                           "tls.inbound.key_file"};
    const std::vector<NamedFile> files{{keys.cert_file, inbound.cert_file},
                                       {keys.key_file, inbound.key_file},
                                       {keys.ca_file, inbound.client_ca_file}};
    if (allReadable(files, origins, errors)) {
      auto context = ReloadingTlsContext::server({.cert_file = inbound.cert_file,
                                                  .key_file = inbound.key_file,
                                                  .client_ca_file = inbound.client_ca_file,
                                                  .alpn = inboundAlpn(config)});
      if (context.ok()) {
        tls.inbound = *std::move(context);
      } else {
        errors.push_back(contextError(context.status(), keys, origins));
      }
    }
  }
  const std::vector<DestinationConfig>& destinations = config.upstreams.destinations;
  tls.destinations.resize(destinations.size());
  for (size_t i = 0; i < destinations.size(); ++i) {
    if (!destinations[i].tls) continue;
    const TlsOriginationConfig& origination = *destinations[i].tls;
    const std::string key = "upstreams.destinations[" + std::to_string(i) + "].tls";
    const TlsFileKeys keys{key, key + ".ca_file", key + ".cert_file", key + ".key_file"};
    const std::vector<NamedFile> files{{keys.ca_file, origination.ca_file},
                                       {keys.cert_file, origination.cert_file},
                                       {keys.key_file, origination.key_file}};
    if (!allReadable(files, origins, errors)) continue;
    // The ALPN protocol is chosen per connection (http/1.1 or h2).
    auto context = ReloadingTlsContext::client({.ca_file = origination.ca_file,
                                                .cert_file = origination.cert_file,
                                                .key_file = origination.key_file,
                                                .verify_peer = origination.verify,
                                                .alpn = {}});
    if (context.ok()) {
      tls.destinations[i] = *std::move(context);
    } else {
      errors.push_back(contextError(context.status(), keys, origins));
    }
  }
  return tls;
}

void checkExporterFiles(const ProxyConfig& config, const Origins& origins,
                        std::vector<std::string>& errors) {
  if (config.tracing.sdk_disabled) return;  // `run` starts no exporter then
  const exporter::ExporterSettings& settings = config.exporter.settings;
  if (settings.kind == exporter::ExporterKind::kOtlp) {
    const exporter::OtlpConfig& otlp = settings.otlp;
    if (!otlp.endpoint.tls()) return;  // the files are not used (a warning said so)
    const TlsFileKeys keys{"exporter", "exporter.certificate", "exporter.client_certificate",
                           "exporter.client_key"};
    const std::vector<NamedFile> files{{keys.ca_file, otlp.certificate},
                                       {keys.cert_file, otlp.client_certificate},
                                       {keys.key_file, otlp.client_key}};
    if (!allReadable(files, origins, errors)) return;
    // As the exporter builds it (otlpTarget), ALPN aside.
    const auto context = http::TlsContext::client({.ca_file = otlp.certificate,
                                                   .cert_file = otlp.client_certificate,
                                                   .key_file = otlp.client_key,
                                                   .verify_peer = true,
                                                   .alpn = {}});
    if (!context.ok()) errors.push_back(contextError(context.status(), keys, origins));
    return;
  }
  if (settings.kind != exporter::ExporterKind::kConsole || settings.console_path.empty()) return;
  const std::string& path = settings.console_path;
  auto failed = [&](int error) {
    errors.push_back(errorPrefix(origins, "exporter.console_path") + "cannot open " + path +
                     " for appending: " + std::generic_category().message(error));
  };
  // Non-blocking, so that a FIFO with no reader yet does not stop the check (ENXIO: `run`
  // waits for its reader).
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  if (errno == ENXIO) return;
  if (errno != ENOENT) return failed(errno);
  // Missing: `run` creates it, so its directory has to exist and take a new file.
  std::filesystem::path directory = std::filesystem::path(path).parent_path();
  if (directory.empty()) directory = ".";
  if (::access(directory.c_str(), W_OK | X_OK) != 0) failed(errno);
}

DataPathSettings dataPathSettingsFrom(const ProxyConfig& config, const DataPathTls& tls) {
  DataPathSettings settings;
  settings.app_protocol = config.upstreams.app_protocol;
  settings.inbound_tls = tls.inbound;
  const std::vector<DestinationConfig>& destinations = config.upstreams.destinations;
  for (size_t i = 0; i < destinations.size(); ++i) {
    const DestinationConfig& from = destinations[i];
    DestinationSettings& to = settings.destinations.emplace_back();
    to.host = from.host;
    to.port = from.port;
    to.protocol = from.protocol;
    if (from.tls && i < tls.destinations.size() && tls.destinations[i]) {
      to.tls = tls.destinations[i];
      to.tls_port = from.tls->port;
      to.server_name = from.tls->server_name;
    }
  }
  settings.inbound = address(config.listeners.inbound);
  settings.outbound = address(config.listeners.outbound);
  settings.app = address(config.upstreams.app);
  settings.inbound_mode = config.upstreams.inbound_mode == InboundMode::kApp
                              ? DataPathSettings::InboundMode::kApp
                              : DataPathSettings::InboundMode::kOriginalPort;
  switch (config.upstreams.outbound_mode) {
    case OutboundMode::kHost:
      settings.outbound_mode = DataPathSettings::OutboundMode::kHost;
      break;
    case OutboundMode::kUpstream:
      settings.outbound_mode = DataPathSettings::OutboundMode::kUpstream;
      break;
    case OutboundMode::kOriginalDestination:
      settings.outbound_mode = DataPathSettings::OutboundMode::kOriginalDestination;
      break;
  }
  settings.outbound_upstream = address(config.upstreams.outbound_upstream);
  settings.workers = config.workers;
  settings.request_limits = config.limits.request;
  settings.response_limits = config.limits.response;
  settings.timeouts.header_read = config.timeouts.request_header;
  settings.timeouts.downstream_idle = config.timeouts.downstream_idle;
  settings.timeouts.upstream_connect = config.timeouts.upstream_connect;
  settings.timeouts.upstream_response = config.timeouts.upstream_response;
  settings.timeouts.upstream_idle = config.timeouts.upstream_idle;
  settings.timeouts.sniff = config.timeouts.sniff;
  settings.timeouts.tunnel_idle = config.timeouts.tunnel_idle;
  return settings;
}

RequestTracingConfig requestTracingConfigFrom(const ProxyConfig& config) {
  RequestTracingConfig tracing;
  tracing.baggage_policy = policy(config.limits.baggage_policy);
  tracing.tracestate_policy = policy(config.limits.tracestate_policy);
  tracing.query_redaction.mode = config.tracing.redact_all_query_values
                                     ? semconv::QueryRedaction::Mode::kAllValues
                                     : semconv::QueryRedaction::Mode::kSensitiveKeys;
  tracing.query_redaction.sensitive_keys = config.tracing.sensitive_query_keys;
  tracing.attribute_limits = config.tracing.attribute_limits;
  tracing.drop_untrusted_baggage = config.tracing.drop_untrusted_baggage;
  tracing.client_url_attributes = config.tracing.client_url_attributes;
  tracing.use_forwarded_headers = config.tracing.use_forwarded_headers;
  tracing.sdk_disabled = config.tracing.sdk_disabled;
  tracing.known_methods = config.tracing.known_methods;
  return tracing;
}

}  // namespace tracecar::proxy
