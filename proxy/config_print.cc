#include "proxy/config_print.h"

#include <charconv>
#include <limits>
#include <system_error>
#include <variant>
#include <vector>

#include "base/ascii.h"

namespace tracecar::proxy {
namespace {

constexpr size_t kOriginColumn = 56;

std::string describe(const Origin& origin) {
  std::string text(toString(origin.source));
  if (origin.detail.empty()) return text;
  return origin.source == Source::kDefault ? text + " (" + origin.detail + ")"
                                           : text + " " + origin.detail;
}

std::string list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& item : items) out += (out.size() > 1 ? ", " : "") + item;
  return out + "]";
}

std::string attributeText(const exporter::AttributeValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return list(v);
        } else {
          return std::to_string(v);
        }
      },
      value);
}

// A value as one line of text: a control character (a resource attribute or a path may hold
// one) is shown as \xHH, never written as it is (a NUL would end the line, a newline start one).
std::string printable(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  ascii::appendEscapingControls(out, value);
  return out;
}

class Printer {
 public:
  explicit Printer(const LoadedConfig& loaded) : loaded_(loaded) {}

  void line(const std::string& key, const std::string& value) {
    line(key, value, loaded_.origin(key));
  }
  void line(const std::string& key, const std::string& value, const Origin& origin) {
    std::string text = key + ": " + printable(value);
    text.append(text.size() < kOriginColumn ? kOriginColumn - text.size() : 1, ' ');
    out_ += text + "# " + describe(origin) + "\n";
  }
  void number(const std::string& key, size_t value) { line(key, std::to_string(value)); }
  void duration(const std::string& key, std::chrono::milliseconds value) {
    line(key, formatDuration(value));
  }
  // A timeout where 0 (kNoTimeout once read) means no limit.
  void timeout(const std::string& key, std::chrono::milliseconds value) {
    line(key, value == exporter::kNoTimeout ? "0 (no limit)" : formatDuration(value));
  }

  std::string take() { return std::move(out_); }

 private:
  const LoadedConfig& loaded_;
  std::string out_;
};

void printExporter(const ProxyConfig& config, const LoadedConfig& loaded, Printer& p) {
  const exporter::ExporterSettings& settings = config.exporter.settings;
  Origin type_origin = loaded.origin("exporter.type");
  if (type_origin.source == Source::kDefault && type_origin.detail.empty()) {
    type_origin.detail = settings.kind == exporter::ExporterKind::kOtlp ? "an endpoint is set"
                                                                        : "no endpoint is set";
  }
  switch (settings.kind) {
    case exporter::ExporterKind::kNone:
      p.line("exporter.type", "none", type_origin);
      break;
    case exporter::ExporterKind::kConsole:
      p.line("exporter.type", "console", type_origin);
      p.line("exporter.console_path",
             settings.console_path.empty() ? "(standard output)" : settings.console_path);
      break;
    case exporter::ExporterKind::kOtlp: {
      const exporter::OtlpConfig& otlp = settings.otlp;
      p.line("exporter.type", "otlp", type_origin);
      p.line("exporter.traces_endpoint", otlp.endpoint.url());
      p.line("exporter.protocol", std::string(exporter::protocolName(otlp.protocol)));
      std::vector<std::string> names;
      for (const auto& header : otlp.headers) names.push_back(header.first);
      p.line("exporter.headers", names.empty() ? "(none)" : list(names) + " (values hidden)");
      p.timeout("exporter.timeout", otlp.timeout);
      p.line("exporter.compression",
             otlp.compression == exporter::Compression::kGzip ? "gzip" : "none");
      if (!otlp.certificate.empty()) p.line("exporter.certificate", otlp.certificate);
      if (!otlp.client_key.empty()) p.line("exporter.client_key", otlp.client_key);
      if (!otlp.client_certificate.empty()) {
        p.line("exporter.client_certificate", otlp.client_certificate);
      }
      break;
    }
  }
  const exporter::BatchConfig& batch = config.exporter.batch;
  p.number("exporter.thread_nice", static_cast<size_t>(batch.thread_nice));
  p.line("exporter.batch.schedule_delay",
         batch.schedule_delay.count() == 0 ? "0 (no delay)"
                                           : formatDuration(batch.schedule_delay));
  p.timeout("exporter.batch.export_timeout", batch.export_timeout);
  p.number("exporter.batch.max_queue_size", batch.max_queue_size);
  p.number("exporter.batch.max_export_batch_size", batch.max_export_batch_size);
}

std::string number(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return ec == std::errc() ? std::string(buffer, end) : std::to_string(value);
}

void printSampling(const sampling::SamplingConfig& config, Printer& p) {
  p.line("sampling.sampler", std::string(sampling::toString(config.sampler.kind)));
  p.line("sampling.ratio", sampling::usesRatio(config.sampler.kind)
                               ? number(config.sampler.ratio)
                               : std::string("(not used by this sampler)"));
  p.line("sampling.rules",
         config.rules.empty() ? "[]" : "[" + sampling::formatRules(config.rules) + "]");
  if (config.rate_limit) {
    p.line("sampling.rate_limit", number(config.rate_limit->traces_per_second) + "/s");
    const auto valid = sampling::RateLimiter::validate(*config.rate_limit);
    p.number("sampling.rate_limit_burst", valid.ok() ? valid->burst : config.rate_limit->burst);
  } else {
    p.line("sampling.rate_limit", "none");
  }
  p.number("sampling.threshold_precision", static_cast<size_t>(config.threshold_precision));
  p.line("sampling.record_always_on_threshold",
         config.record_always_on_threshold ? "true" : "false");
}

}  // namespace

std::string formatEffectiveConfig(const LoadedConfig& loaded) {
  const ProxyConfig& config = loaded.config;
  Printer p(loaded);
  p.line("listeners.inbound", config.listeners.inbound.toString());
  p.line("listeners.outbound", config.listeners.outbound.toString());
  p.line("listeners.admin", config.listeners.admin.toString());
  p.line("upstreams.app", config.upstreams.app.toString());
  p.line("upstreams.inbound", std::string(toString(config.upstreams.inbound_mode)));
  p.line("upstreams.outbound", config.upstreams.outbound_mode == OutboundMode::kUpstream
                                   ? config.upstreams.outbound_upstream.toString()
                                   : std::string(toString(config.upstreams.outbound_mode)));
  p.line("upstreams.app_protocol", std::string(toString(config.upstreams.app_protocol)));
  const std::vector<DestinationConfig>& destinations = config.upstreams.destinations;
  if (destinations.empty()) p.line("upstreams.destinations", "[]");
  for (size_t i = 0; i < destinations.size(); ++i) {
    const DestinationConfig& d = destinations[i];
    const Origin origin = loaded.origin("upstreams.destinations");
    const std::string key = "upstreams.destinations[" + std::to_string(i) + "]";
    p.line(key + ".match", d.match, origin);
    p.line(key + ".protocol", std::string(toString(d.protocol)), origin);
    if (!d.tls) {
      p.line(key + ".tls", "none (plaintext)", origin);
      continue;
    }
    const TlsOriginationConfig& tls = *d.tls;
    p.line(key + ".tls.port", tls.port ? std::to_string(*tls.port) : "(the request's)", origin);
    p.line(key + ".tls.server_name", tls.server_name.empty() ? "(the host named)" : tls.server_name,
           origin);
    p.line(key + ".tls.ca_file", tls.ca_file.empty() ? "(the system's CAs)" : tls.ca_file, origin);
    if (!tls.cert_file.empty()) {
      p.line(key + ".tls.cert_file", tls.cert_file, origin);
      p.line(key + ".tls.key_file", tls.key_file, origin);
    }
    p.line(key + ".tls.verify", tls.verify ? "true" : "false", origin);
  }
  const TlsTerminationConfig& inbound = config.tls.inbound;
  if (inbound.enabled()) {
    const Origin origin = loaded.origin("tls.inbound");
    // Each file's own key, when recorded (--tls-cert and --tls-key leave the client CA and the
    // ALPN list to the file, which is then their origin).
    const auto keptOrigin = [&](std::string_view key) {
      return loaded.origins.contains(key) ? loaded.origin(key) : origin;
    };
    p.line("tls.inbound.cert_file", inbound.cert_file, keptOrigin("tls.inbound.cert_file"));
    p.line("tls.inbound.key_file", inbound.key_file, keptOrigin("tls.inbound.key_file"));
    if (!inbound.client_ca_file.empty()) {
      p.line("tls.inbound.client_ca_file", inbound.client_ca_file,
             keptOrigin("tls.inbound.client_ca_file"));
    }
    p.line("tls.inbound.alpn", list(inboundAlpn(config)),
           inbound.alpn.empty() ? Origin{Source::kDefault, "from upstreams.app_protocol"}
                                : keptOrigin("tls.inbound.alpn"));
  } else {
    p.line("tls.inbound", "none (TLS passes through)");
  }
  p.duration("tls.reload_interval", config.tls.reload_interval);
  p.number("workers", config.workers);

  const LimitsConfig& limits = config.limits;
  p.number("limits.request.max_header_bytes", limits.request.max_header_bytes);
  p.number("limits.request.max_headers", limits.request.max_header_count);
  p.number("limits.request.max_uri_length", limits.request.max_uri_length);
  p.number("limits.response.max_header_bytes", limits.response.max_header_bytes);
  p.number("limits.response.max_headers", limits.response.max_header_count);
  p.number("limits.baggage.max_members", config.propagation.baggage_limits.max_members);
  p.number("limits.baggage.max_bytes", config.propagation.baggage_limits.max_bytes);
  p.line("limits.baggage.policy", std::string(toString(limits.baggage_policy)));
  p.number("limits.tracestate.max_length", config.propagation.tracestate_max_length);
  p.line("limits.tracestate.policy", std::string(toString(limits.tracestate_policy)));

  const TimeoutConfig& timeouts = config.timeouts;
  p.duration("timeouts.request_header", timeouts.request_header);
  p.duration("timeouts.downstream_idle", timeouts.downstream_idle);
  p.duration("timeouts.upstream_idle", timeouts.upstream_idle);
  p.duration("timeouts.upstream_connect", timeouts.upstream_connect);
  p.duration("timeouts.upstream_response", timeouts.upstream_response);
  p.duration("timeouts.sniff", timeouts.sniff);
  p.line("timeouts.tunnel_idle", timeouts.tunnel_idle.count() == 0
                                     ? "0 (never)"
                                     : formatDuration(timeouts.tunnel_idle));
  p.duration("timeouts.drain", timeouts.drain);

  const TracingConfig& tracing = config.tracing;
  p.line("routes", list(tracing.routes));
  std::string propagators;
  for (propagation::PropagatorKind kind : config.propagation.propagators) {
    if (!propagators.empty()) propagators += ',';
    propagators += propagation::toString(kind);
  }
  p.line("tracing.propagators", propagators.empty() ? "none" : propagators);
  p.number("tracing.route_cardinality_limit", tracing.route_cardinality_limit);
  p.line("tracing.redact_all_query_values", tracing.redact_all_query_values ? "true" : "false");
  p.line("tracing.sensitive_query_keys", list(tracing.sensitive_query_keys));
  p.number("tracing.span_attribute_count_limit", tracing.attribute_limits.count);
  p.line("tracing.span_attribute_value_length_limit",
         tracing.attribute_limits.value_length == std::numeric_limits<size_t>::max()
             ? "unlimited"
             : std::to_string(tracing.attribute_limits.value_length));
  p.line("tracing.trust_incoming_context", tracing.trust_incoming_context.toString());
  p.line("tracing.drop_untrusted_baggage", tracing.drop_untrusted_baggage ? "true" : "false");
  p.line("tracing.client_url_attributes", tracing.client_url_attributes ? "true" : "false");
  p.line("tracing.use_forwarded_headers", tracing.use_forwarded_headers ? "true" : "false");
  p.line("tracing.known_methods", list(tracing.known_methods.methods()));
  p.line("tracing.sdk_disabled", tracing.sdk_disabled ? "true" : "false");
  printSampling(config.sampling, p);
  for (const exporter::Attribute& attribute : tracing.resource.attributes().items()) {
    p.line("resource." + std::string(attribute.key.view()), attributeText(attribute.value));
  }
  printExporter(config, loaded, p);
  return p.take();
}

}  // namespace tracecar::proxy
