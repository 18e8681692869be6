#include "proxy/config_file.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <initializer_list>
#include <limits>
#include <set>
#include <system_error>

#include "base/ascii.h"
#include "exporter/otlp_config.h"
#include "exporter/span.h"
#include "propagation/percent_encoding.h"
#include "proxy/config_lists.h"
#include "proxy/config_yaml.h"
#include "sampling/rate_limiter.h"
#include "sampling/rules.h"
#include "sampling/sampler_settings.h"
#include "sampling/threshold.h"
#include "sampling/trust_policy.h"

namespace tracecar::proxy {
namespace {

void readListeners(FileReader& r, const Entry& entry) {
  ListenerConfig& listeners = r.loaded().config.listeners;
  const auto listen = [&r](HostPort& out) {
    return [&r, &out](const Entry& e) {
      if (auto value = r.address(e, AddressUse::kListen)) {
        out = *std::move(value);
        r.setOrigin(e);
      }
    };
  };
  r.readMap(entry, {{"inbound", listen(listeners.inbound)},
                    {"outbound", listen(listeners.outbound)},
                    {"admin", listen(listeners.admin)}});
}

std::optional<UpstreamProtocol> protocolField(FileReader& r, const Entry& e) {
  const auto text = r.scalar(e, "same, http1 or h2");
  if (!text) return std::nullopt;
  const std::optional<UpstreamProtocol> protocol = parseUpstreamProtocol(*text);
  if (!protocol) r.error(e, "must be same, http1 or h2, got \"" + *text + "\"");
  return protocol;
}

// A file's name; its own origin, so that an error reading it names its key and line.
Handler fileField(FileReader& r, std::string& out) {
  return [&r, &out](const Entry& e) {
    if (auto value = r.nonEmptyString(e)) {
      out = *std::move(value);
      r.setOrigin(e);
    }
  };
}

void readOrigination(FileReader& r, const Entry& entry, TlsOriginationConfig& tls) {
  if (entry.node.IsNull()) return;  // "tls:" alone: TLS with every default
  r.readMap(entry, {{"port",
                     [&](const Entry& e) {
                       if (auto value = r.integer(e, 1, 65535)) {
                         tls.port = static_cast<uint16_t>(*value);
                       }
                     }},
                    {"server_name", fileField(r, tls.server_name)},
                    {"ca_file", fileField(r, tls.ca_file)},
                    {"cert_file", fileField(r, tls.cert_file)},
                    {"key_file", fileField(r, tls.key_file)},
                    {"verify", [&](const Entry& e) {
                       if (auto value = r.boolean(e)) tls.verify = *value;
                     }}});
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    r.error(entry, "cert_file and key_file (a client certificate) go together");
  }
}

// A list of {match, protocol, tls} maps, first match wins.
void readDestinations(FileReader& r, const Entry& entry) {
  if (entry.node.IsNull()) return;
  if (!entry.node.IsSequence()) {
    r.error(entry, "must be a list of destinations ({match: HOST[:PORT], protocol:, tls:}), got " +
                       FileReader::describe(entry.node));
    return;
  }
  std::vector<DestinationConfig> destinations;
  const size_t errors = r.loaded().errors.size();
  for (size_t i = 0; i < entry.node.size(); ++i) {
    const YAML::Node item = entry.node[i];
    const Entry element{item, entry.path + "[" + std::to_string(i) + "]",
                        item.IsNull() ? entry.mark : item.Mark()};
    if (!item.IsMap()) {
      r.error(element, "must be a map with match: HOST[:PORT], got " + FileReader::describe(item));
      continue;
    }
    DestinationConfig destination;
    bool has_match = false;  // the key is there (an invalid value has its own error)
    r.readMap(element,
              {{"match",
                [&](const Entry& e) {
                  has_match = true;
                  const auto text = r.nonEmptyString(e);
                  if (!text) return;
                  auto parsed = parseDestinationMatch(*text);
                  if (!parsed.ok()) {
                    r.error(e, std::string(parsed.status().message()));
                    return;
                  }
                  destination.match = *text;
                  destination.host = std::move(parsed->host);
                  destination.port = parsed->port;
                }},
               {"protocol",
                [&](const Entry& e) {
                  if (auto value = protocolField(r, e)) destination.protocol = *value;
                }},
               {"tls", [&](const Entry& e) {
                  destination.tls.emplace();
                  readOrigination(r, e, *destination.tls);
                }}});
    if (!has_match) {
      r.error(element, "needs match: HOST[:PORT]");
    }
    destinations.push_back(std::move(destination));
  }
  if (r.loaded().errors.size() != errors) return;
  r.loaded().config.upstreams.destinations = std::move(destinations);
  r.setOrigin(entry);
}

// tls: inbound termination and the reload interval.
void readTls(FileReader& r, const Entry& entry) {
  TlsConfig& tls = r.loaded().config.tls;
  r.readMap(entry,
            {{"inbound",
              [&](const Entry& e) {
                TlsTerminationConfig inbound;
                r.readMap(e, {{"cert_file", fileField(r, inbound.cert_file)},
                              {"key_file", fileField(r, inbound.key_file)},
                              {"client_ca_file", fileField(r, inbound.client_ca_file)},
                              {"alpn", [&](const Entry& a) {
                                 r.stringList(a, [&](const Entry& element) {
                                   const std::string& protocol = element.node.Scalar();
                                   if (protocol != "h2" && protocol != "http/1.1") {
                                     r.error(element, "must be h2 or http/1.1, got \"" +
                                                          protocol + "\"");
                                     return;
                                   }
                                   inbound.alpn.push_back(protocol);
                                 });
                               }}});
                if (inbound.cert_file.empty() != inbound.key_file.empty()) {
                  r.error(e, "cert_file and key_file go together");
                  return;
                }
                if (inbound.cert_file.empty() && !inbound.client_ca_file.empty()) {
                  r.error(e, "client_ca_file needs cert_file and key_file");
                  return;
                }
                tls.inbound = std::move(inbound);
                r.setOrigin(e);
              }},
             {"reload_interval", [&](const Entry& e) {
                if (auto value = r.duration(e)) {
                  if (*value < std::chrono::milliseconds(100)) {
                    r.error(e, "must be at least 100ms");
                    return;
                  }
                  tls.reload_interval = *value;
                  r.setOrigin(e);
                }
              }}});
}

void readUpstreams(FileReader& r, const Entry& entry) {
  UpstreamConfig& upstreams = r.loaded().config.upstreams;
  r.readMap(entry, {{"app",
                     [&](const Entry& e) {
                       if (auto value = r.address(e, AddressUse::kPeer)) {
                         upstreams.app = *std::move(value);
                         r.setOrigin(e);
                       }
                     }},
                    {"inbound",
                     [&](const Entry& e) {
                       const auto text = r.scalar(e, "original_port or app");
                       if (!text) return;
                       if (*text == "original_port" || *text == "app") {
                         upstreams.inbound_mode =
                             *text == "app" ? InboundMode::kApp : InboundMode::kOriginalPort;
                         r.setOrigin(e);
                       } else {
                         r.error(e, "must be original_port or app, got \"" + *text + "\"");
                       }
                     }},
                    {"app_protocol",
                     [&](const Entry& e) {
                       if (auto value = protocolField(r, e)) {
                         upstreams.app_protocol = *value;
                         r.setOrigin(e);
                       }
                     }},
                    {"destinations", [&](const Entry& e) { readDestinations(r, e); }},
                    {"outbound", [&](const Entry& e) {
                       const auto text =
                           r.scalar(e, "\"original_destination\", \"host\" or HOST:PORT");
                       if (!text) return;
                       if (*text == "host" || *text == "original_destination") {
                         upstreams.outbound_mode = *text == "host"
                                                       ? OutboundMode::kHost
                                                       : OutboundMode::kOriginalDestination;
                         r.setOrigin(e);
                         return;
                       }
                       if (text->find(':') == std::string::npos) {
                         r.error(e, "\"" + *text + "\": " + std::string(kOutboundWant));
                         return;
                       }
                       if (auto value = r.address(e, AddressUse::kPeer)) {
                         upstreams.outbound_mode = OutboundMode::kUpstream;
                         upstreams.outbound_upstream = *std::move(value);
                         r.setOrigin(e);
                       }
                     }}});
}

void readWorkers(FileReader& r, const Entry& entry) {
  if (entry.node.IsScalar() && entry.node.Scalar() == "auto") {
    r.loaded().config.workers = 0;  // resolved by the loader
    r.setOrigin(entry);
    return;
  }
  if (!entry.node.IsScalar() || entry.node.Scalar().empty() ||
      entry.node.Scalar().find_first_not_of("0123456789") != std::string::npos) {
    r.error(entry, "must be \"auto\" or an integer in 1.." + std::to_string(kMaxWorkers) +
                       ", got " + FileReader::describe(entry.node));
    return;
  }
  if (auto value = r.integer(entry, 1, kMaxWorkers)) {
    r.loaded().config.workers = static_cast<size_t>(*value);
    r.setOrigin(entry);
  }
}

Handler boolField(FileReader& r, bool& out) {
  return [&r, &out](const Entry& e) {
    if (auto value = r.boolean(e)) {
      out = *value;
      r.setOrigin(e);
    }
  };
}

Handler sizeField(FileReader& r, size_t& out, long long min, long long max) {
  return [&r, &out, min, max](const Entry& e) {
    if (auto value = r.integer(e, min, max)) {
      out = static_cast<size_t>(*value);
      r.setOrigin(e);
    }
  };
}

Handler policyField(FileReader& r, HeaderPolicy& out) {
  return [&r, &out](const Entry& e) {
    const auto text = r.scalar(e, "truncate or reject");
    if (!text) return;
    if (*text == "truncate" || *text == "reject") {
      out = *text == "truncate" ? HeaderPolicy::kTruncate : HeaderPolicy::kReject;
      r.setOrigin(e);
    } else {
      r.error(e, "must be truncate or reject, got \"" + *text + "\"");
    }
  };
}

// A propagation limit: a positive integer, and not under the W3C minimum (which
// PropagationConfig::validate checks).
Handler propagationLimitField(FileReader& r, size_t& out) {
  return [&r, &out](const Entry& e) {
    const auto value = r.integer(e, 1, kMaxPropagationLimit);
    if (!value) return;
    const size_t previous = out;
    out = static_cast<size_t>(*value);
    const absl::Status status = r.loaded().config.propagation.validate();
    if (!status.ok()) {
      r.error(e, std::string(status.message()));
      out = previous;
      return;
    }
    r.setOrigin(e);
  };
}

void readLimits(FileReader& r, const Entry& entry) {
  LimitsConfig& limits = r.loaded().config.limits;
  propagation::PropagationConfig& propagation = r.loaded().config.propagation;
  r.readMap(
      entry,
      {{"request",
        [&](const Entry& e) {
          r.readMap(
              e,
              {{"max_header_bytes",
                sizeField(r, limits.request.max_header_bytes, 1, kMaxHeaderBytes)},
               {"max_headers", sizeField(r, limits.request.max_header_count, 1, kMaxHeaderCount)},
               {"max_uri_length", sizeField(r, limits.request.max_uri_length, 1, kMaxUriLength)}});
        }},
       {"response",
        [&](const Entry& e) {
          r.readMap(e, {{"max_header_bytes",
                         sizeField(r, limits.response.max_header_bytes, 1, kMaxHeaderBytes)},
                        {"max_headers",
                         sizeField(r, limits.response.max_header_count, 1, kMaxHeaderCount)}});
        }},
       {"baggage",
        [&](const Entry& e) {
          r.readMap(
              e, {{"max_members", propagationLimitField(r, propagation.baggage_limits.max_members)},
                  {"max_bytes", propagationLimitField(r, propagation.baggage_limits.max_bytes)},
                  {"policy", policyField(r, limits.baggage_policy)}});
        }},
       {"tracestate", [&](const Entry& e) {
          r.readMap(e, {{"max_length", propagationLimitField(r, propagation.tracestate_max_length)},
                        {"policy", policyField(r, limits.tracestate_policy)}});
        }}});
}

void readTimeouts(FileReader& r, const Entry& entry) {
  TimeoutConfig& t = r.loaded().config.timeouts;
  const auto field = [&r](std::chrono::milliseconds& out) -> Handler {
    return [&r, &out](const Entry& e) {
      if (auto value = r.duration(e)) {
        out = *value;
        r.setOrigin(e);
      }
    };
  };
  r.readMap(entry, {{"request_header", field(t.request_header)},
                    {"downstream_idle", field(t.downstream_idle)},
                    {"upstream_idle", field(t.upstream_idle)},
                    {"upstream_connect", field(t.upstream_connect)},
                    {"upstream_response", field(t.upstream_response)},
                    {"drain", field(t.drain)},
                    {"sniff", field(t.sniff)},
                    {"tunnel_idle", [&r, &t](const Entry& e) {
                       if (auto value = r.duration(e, /*zero_allowed=*/true)) {
                         t.tunnel_idle = *value;
                         r.setOrigin(e);
                       }
                     }}});
}

// A resource attribute is text: a NUL or a newline (which YAML's "\0" and "\n" can write) would
// cut or split it wherever it is shown.
constexpr std::string_view kNoControlCharacter =
    "must not hold a control character (NUL, a newline...)";

void readTracing(FileReader& r, const Entry& entry) {
  TracingConfig& tracing = r.loaded().config.tracing;
  const auto limit = [&r](std::string_view variable, bool unlimited_allowed) -> Handler {
    return [&r, variable, unlimited_allowed](const Entry& e) {
      if (unlimited_allowed && e.node.IsScalar() && e.node.Scalar() == "unlimited") {
        r.setEnv(e, variable, std::to_string(std::numeric_limits<size_t>::max()));
        return;
      }
      if (auto value = r.integer(e, 0, kMaxAttributeLimit)) {
        r.setEnv(e, variable, std::to_string(*value));
      }
    };
  };
  r.readMap(
      entry,
      {{"propagators", [&](const Entry& e) { readPropagators(r, e); }},
       {"service_name",
        [&](const Entry& e) {
          if (auto name = r.nonEmptyString(e)) {
            if (ascii::hasControl(*name)) {
              r.error(e, kNoControlCharacter);
              return;
            }
            r.layer().service_name = FileEnvLayer::Pair{"service.name", *name, r.location(e.mark)};
          }
        }},
       {"resource_attributes",
        [&](const Entry& e) {
          r.layer().resource_attributes.clear();
          for (auto& [pair, element] : r.stringMap(e)) {
            if (ascii::hasControl(pair.key) || ascii::hasControl(pair.value)) {
              r.error(element, kNoControlCharacter);
              continue;
            }
            r.layer().resource_attributes.push_back(std::move(pair));
          }
        }},
       {"route_cardinality_limit",
        sizeField(r, tracing.route_cardinality_limit, 0,
                  static_cast<long long>(http::RouteCardinalityLimiter::kMaxMaxRoutes))},
       {"redact_all_query_values", boolField(r, tracing.redact_all_query_values)},
       {"sensitive_query_keys",
        [&](const Entry& e) {
          const size_t errors = r.errorCount();
          const auto list = r.stringList(e);
          if (!list || r.errorCount() != errors) return;
          tracing.sensitive_query_keys.clear();
          for (const Entry& key : *list) tracing.sensitive_query_keys.push_back(key.node.Scalar());
          r.setOrigin(e);
        }},
       {"known_methods", [&](const Entry& e) { readKnownMethods(r, e); }},
       {"trust_incoming_context", [&](const Entry& e) { readTrustPolicy(r, e); }},
       {"drop_untrusted_baggage", boolField(r, tracing.drop_untrusted_baggage)},
       {"client_url_attributes", boolField(r, tracing.client_url_attributes)},
       {"use_forwarded_headers", boolField(r, tracing.use_forwarded_headers)},
       {"sdk_disabled",
        [&](const Entry& e) {
          if (auto value = r.boolean(e)) {
            r.setEnv(e, "OTEL_SDK_DISABLED", *value ? "true" : "false");
          }
        }},
       {"span_attribute_count_limit", limit("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", false)},
       {"span_attribute_value_length_limit",
        limit("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", true)}});
}

void readSampling(FileReader& r, const Entry& entry) {
  sampling::SamplingConfig& config = r.loaded().config.sampling;
  std::optional<double> rate;
  std::optional<uint32_t> burst;
  std::optional<Entry> burst_entry;
  r.readMap(
      entry,
      {{"sampler",
        [&](const Entry& e) {
          const auto text = r.scalar(e, "a sampler name");
          if (!text) return;
          const auto kind = sampling::parseSamplerKind(*text);
          if (!kind.ok()) {
            r.error(e, std::string(kind.status().message()));
            return;
          }
          r.setEnv(e, "OTEL_TRACES_SAMPLER", std::string(sampling::toString(*kind)));
        }},
       {"ratio",
        [&](const Entry& e) {
          const auto text = r.scalar(e, "a number in [0, 1]");
          if (!text) return;
          const auto ratio = sampling::parseRatio(*text);
          if (!ratio.ok()) {
            r.error(e, withoutPrefix(std::string(ratio.status().message()), "sampler argument "));
            return;
          }
          r.setEnv(e, "OTEL_TRACES_SAMPLER_ARG", *text);
        }},
       {"rules", [&](const Entry& e) { readSamplingRules(r, e); }},
       {"rate_limit",
        [&](const Entry& e) {
          const auto text = r.scalar(e, "root traces per second");
          if (!text) return;
          double value = 0;
          const char* end = text->data() + text->size();
          const auto [ptr, ec] = std::from_chars(text->data(), end, value);
          if (text->empty() || ec != std::errc() || ptr != end) {
            r.error(e, "must be a number of root traces per second, got \"" + *text + "\"");
            return;
          }
          const auto valid = sampling::RateLimiter::validate({value, 0});
          if (!valid.ok()) {
            r.error(e, withoutPrefix(std::string(valid.status().message()), "rate limit: "));
            return;
          }
          rate = value;
          r.setOrigin(e);
        }},
       {"rate_limit_burst",
        [&](const Entry& e) {
          if (auto value = r.integer(e, 1, std::numeric_limits<uint32_t>::max())) {
            burst = static_cast<uint32_t>(*value);
            burst_entry = e;
            r.setOrigin(e);
          }
        }},
       {"threshold_precision",
        [&](const Entry& e) {
          if (auto value = r.integer(e, 1, sampling::kMaxThresholdDigits)) {
            config.threshold_precision = static_cast<int>(*value);
            r.setOrigin(e);
          }
        }},
       {"record_always_on_threshold", boolField(r, config.record_always_on_threshold)}});
  if (burst && !rate) {
    r.error(*burst_entry, "needs sampling.rate_limit");
    return;
  }
  if (!rate) return;
  const auto valid = sampling::RateLimiter::validate({*rate, burst.value_or(0)});
  if (!valid.ok()) {
    r.error(burst_entry ? *burst_entry : entry,
            withoutPrefix(std::string(valid.status().message()), "rate limit: "));
    return;
  }
  config.rate_limit = sampling::RateLimitSettings{*rate, burst.value_or(0)};
}

// Each header checked with the exporter's own rules (token name, no control characters, not
// one the exporter sets itself).
void readHeaders(FileReader& r, const Entry& entry) {
  r.layer().headers.clear();
  for (const auto& [header, element] : r.stringMap(entry)) {
    // Field names are case-insensitive: X-Api-Key and x-api-key are one header.
    // Captured by name: clang 14 cannot capture a structured binding.
    const std::string& name = header.key;
    const auto same =
        std::find_if(r.layer().headers.begin(), r.layer().headers.end(),
                     [&name](const FileEnvLayer::Pair& seen) {
                       return ascii::equalsIgnoreCase(seen.key, name);
                     });
    if (same != r.layer().headers.end()) {
      r.error(element, "header \"" + header.key + "\" is given twice (as \"" + same->key +
                           "\"; field names are case-insensitive)");
      continue;
    }
    std::string encoded = header.key + "=";
    propagation::appendPercentEncoded(header.value, encoded, [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '.' || c == '_' || c == '~';
    });
    std::vector<std::string> warnings;
    std::vector<std::string> errors;
    const exporter::ExporterSettings trial = exporter::exporterSettingsFromEnv(
        exporter::mapEnvironment(
            {{"OTEL_TRACES_EXPORTER", "otlp"}, {"OTEL_EXPORTER_OTLP_HEADERS", encoded}}),
        warnings, errors);
    if (errors.empty() && warnings.empty() && trial.otlp.headers.size() == 1) {
      r.layer().headers.push_back(header);
      continue;
    }
    std::string why = warnings.empty() ? "not a valid header" : warnings.front();
    if (const size_t cut = why.find("\": "); cut != std::string::npos) why = why.substr(cut + 3);
    r.error(element, why);
  }
}

// The offset of the first byte of text that is not part of well-formed UTF-8; npos when none.
size_t firstNonUtf8(std::string_view text) {
  if (exporter::utf8::isValid(text)) return std::string_view::npos;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t bad = 0;
    const size_t n = exporter::utf8::sequenceLength(p + i, text.size() - i, &bad);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

void readExporter(FileReader& r, const Entry& entry) {
  const auto choice = [&r](std::string_view variable,
                           std::initializer_list<std::string_view> accepted) -> Handler {
    std::vector<std::string_view> names(accepted);
    return [&r, variable, names](const Entry& e) {
      const auto text = r.scalar(e, "a string");
      if (!text) return;
      const std::string value = lowercase(*text);
      if (std::find(names.begin(), names.end(), value) == names.end()) {
        std::string list;
        for (std::string_view name : names)
          list += (list.empty() ? "" : " or ") + std::string(name);
        r.error(e, "must be " + list + ", got \"" + *text + "\"");
        return;
      }
      r.setEnv(e, variable, value);
    };
  };
  const auto path = [&r](std::string_view variable) -> Handler {
    return [&r, variable](const Entry& e) {
      if (auto text = r.nonEmptyString(e)) r.setEnv(e, variable, *text);
    };
  };
  const auto endpoint = [&r](std::string_view variable) -> Handler {
    return [&r, variable](const Entry& e) {
      const auto text = r.nonEmptyString(e);
      if (!text) return;
      const auto parsed = exporter::parseEndpoint(*text);
      if (!parsed.ok()) {
        r.error(e, "not a usable endpoint: " + std::string(parsed.status().message()));
        return;
      }
      r.setEnv(e, variable, *text);
    };
  };
  // The timeouts and the schedule delay, where 0 means no limit and no delay, as in their
  // variables.
  const auto milliseconds = [&r](std::string_view variable) -> Handler {
    return [&r, variable](const Entry& e) {
      if (auto value = r.duration(e, true)) r.setEnv(e, variable, std::to_string(value->count()));
    };
  };
  // The client key and certificate go together in the file, as tls.inbound's do.
  std::optional<Entry> client_key;
  std::optional<Entry> client_certificate;
  const auto client_file = [&r, &path](std::string_view variable,
                                       std::optional<Entry>& seen) -> Handler {
    return [&r, &seen, read = path(variable)](const Entry& e) {
      const size_t errors = r.loaded().errors.size();
      read(e);
      if (r.loaded().errors.size() == errors) seen = e;
    };
  };
  const auto integer = [&r](std::string_view variable, long long min, long long max) -> Handler {
    return [&r, variable, min, max](const Entry& e) {
      if (auto value = r.integer(e, min, max)) r.setEnv(e, variable, std::to_string(*value));
    };
  };
  const auto count = [&integer](std::string_view variable) {
    return integer(variable, 1, static_cast<long long>(exporter::BatchConfig::kMaxQueueSize));
  };
  r.readMap(entry,
            {{"type", choice("OTEL_TRACES_EXPORTER", {"otlp", "console", "none"})},
             {"console_path", path("TRACECAR_CONSOLE_EXPORT_PATH")},
             {"endpoint", endpoint("OTEL_EXPORTER_OTLP_ENDPOINT")},
             {"traces_endpoint", endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")},
             {"protocol", choice("OTEL_EXPORTER_OTLP_PROTOCOL", {"http/protobuf", "http/json", "grpc"})},
             {"headers", [&r](const Entry& e) { readHeaders(r, e); }},
             {"timeout", milliseconds("OTEL_EXPORTER_OTLP_TIMEOUT")},
             {"compression", choice("OTEL_EXPORTER_OTLP_COMPRESSION", {"gzip", "none"})},
             {"certificate", path("OTEL_EXPORTER_OTLP_CERTIFICATE")},
             {"client_key", client_file("OTEL_EXPORTER_OTLP_CLIENT_KEY", client_key)},
             {"client_certificate",
              client_file("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", client_certificate)},
             {"thread_nice",
              integer("TRACECAR_EXPORTER_NICE", 0, exporter::BatchConfig::kMaxThreadNice)},
             {"batch", [&](const Entry& e) {
                r.readMap(e, {{"schedule_delay", milliseconds("OTEL_BSP_SCHEDULE_DELAY")},
                              {"export_timeout", milliseconds("OTEL_BSP_EXPORT_TIMEOUT")},
                              {"max_queue_size", count("OTEL_BSP_MAX_QUEUE_SIZE")},
                              {"max_export_batch_size", count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")}});
              }}});
  if (client_key.has_value() != client_certificate.has_value()) {
    const bool key = client_key.has_value();
    r.error(key ? *client_key : *client_certificate,
            std::string("client_key and client_certificate (mutual TLS) go together; ") +
                (key ? "client_certificate" : "client_key") +
                " is missing (neither in the file nor in OTEL_EXPORTER_OTLP_[TRACES_]" +
                (key ? "CLIENT_CERTIFICATE" : "CLIENT_KEY") + ")");
    // Held back, with its line: a variable may give the pair its other half, which only the
    // environment's reader knows (readOtelSettings).
    r.layer().lone_client_file = FileEnvLayer::LoneHalf{
        key ? "OTEL_EXPORTER_OTLP_CLIENT_KEY" : "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        std::move(r.loaded().errors.back())};
    r.loaded().errors.pop_back();
  }
}

// Two common slips worth naming: an unquoted "[::1]:80" is a YAML list followed by ":80", and
// an unquoted route template in a [...] list ("[/users/{id}]") opens a YAML map.
std::string syntaxHint(std::string_view text, const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  for (int line = 0; line < mark.line && !text.empty(); ++line) {
    const size_t newline = text.find('\n');
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
  }
  const std::string_view line = text.substr(0, text.find('\n'));
  const size_t open = line.find('[');
  if (open == std::string_view::npos) return "";
  if (line.find("]:", open) != std::string_view::npos) {
    return " (an IPv6 address must be quoted, as in \"[::1]:15006\")";
  }
  if (line.find("/{", open) != std::string_view::npos) {
    return " (a route template in a [...] list must be quoted, as in [\"/users/{id}\"], or "
           "written one per line after \"- \")";
  }
  return "";
}

}  // namespace

void readConfigFile(std::string_view name, std::string_view text, LoadedConfig& loaded,
                    FileEnvLayer& env_layer) {
  FileReader r(name, loaded, env_layer);
  // YAML is UTF-8 here; other bytes would reach span attributes and be dropped or replaced.
  if (const size_t bad = firstNonUtf8(text); bad != std::string_view::npos) {
    const std::string_view before = text.substr(0, bad);
    const size_t newline = before.rfind('\n');
    YAML::Mark mark;
    mark.pos = static_cast<int>(bad);
    mark.line = static_cast<int>(std::count(before.begin(), before.end(), '\n'));
    mark.column = static_cast<int>(newline == std::string_view::npos ? bad : bad - newline - 1);
    r.error(mark, "", "not UTF-8 (a configuration file is UTF-8 text)");
    return;
  }
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::ParserException& e) {
    r.error(e.mark, "", "invalid YAML: " + e.msg + syntaxHint(text, e.mark));
    return;
  } catch (const YAML::Exception& e) {
    r.error(e.mark, "", "invalid YAML: " + e.msg);
    return;
  }
  if (documents.empty()) return;  // an empty file: every default
  if (documents.size() > 1) {
    r.error(documents[1].Mark(), "", "the file holds more than one YAML document");
    return;
  }
  const YAML::Node root = documents.front();
  if (!root.IsNull() && !root.IsMap()) {
    r.error(root.Mark(), "",
            "the file must be a map of sections (listeners:, limits:...), got " +
                FileReader::describe(root));
    return;
  }
  // One line per top-level section: a new section (sampling:...) is one more entry here.
  r.readMap(Entry{root, "", root.Mark()},
            {{"listeners", [&r](const Entry& e) { readListeners(r, e); }},
             {"upstreams", [&r](const Entry& e) { readUpstreams(r, e); }},
             {"tls", [&r](const Entry& e) { readTls(r, e); }},
             {"workers", [&r](const Entry& e) { readWorkers(r, e); }},
             {"limits", [&r](const Entry& e) { readLimits(r, e); }},
             {"timeouts", [&r](const Entry& e) { readTimeouts(r, e); }},
             {"routes", [&r](const Entry& e) { readRoutes(r, e); }},
             {"tracing", [&r](const Entry& e) { readTracing(r, e); }},
             {"sampling", [&r](const Entry& e) { readSampling(r, e); }},
             {"exporter", [&r](const Entry& e) { readExporter(r, e); }}});
}

}  // namespace tracecar::proxy
