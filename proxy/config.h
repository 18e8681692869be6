#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporter/batch_config.h"
#include "exporter/env.h"
#include "exporter/otlp_config.h"
#include "exporter/resource.h"
#include "exporter/span.h"
#include "http/http1_parser.h"
#include "http/route_cardinality_limiter.h"
#include "http/route_template.h"
#include "propagation/composite_propagator.h"
#include "proxy/config_values.h"
#include "proxy/config_workers.h"
#include "proxy/data_path_settings.h"
#include "proxy/http_semconv.h"
#include "sampling/sampler.h"
#include "sampling/trust_policy.h"

namespace tracecar::proxy {

struct ListenerConfig {
  HostPort inbound{"0.0.0.0", 15006};     // requests to the app
  HostPort outbound{"127.0.0.1", 15001};  // the app's own requests
  HostPort admin{"127.0.0.1", 15000};     // /metrics, /healthz, /readyz
};

// Where the outbound listener forwards: to the host each request names (absolute-form URI or
// Host, as an HTTP proxy does), always to one fixed upstream, or (transparent mode) a redirected
// connection to where it was going and any other one as kHost.
enum class OutboundMode : uint8_t { kHost, kUpstream, kOriginalDestination };
// "host", "upstream", "original_destination"
std::string_view toString(OutboundMode mode) noexcept;

// Where the inbound listener forwards a redirected connection: to the app's host at the port the
// connection was sent to, or always to the app.
enum class InboundMode : uint8_t { kOriginalPort, kApp };
std::string_view toString(InboundMode mode) noexcept;  // "original_port" | "app"

// TLS that tracecar originates to one destination: the app speaks plain HTTP to the sidecar.
struct TlsOriginationConfig {
  std::optional<uint16_t> port;  // connect to this port instead of the one the request named
  std::string server_name;       // SNI and the name verified; empty: the destination's host
  std::string ca_file;           // PEM bundle; empty: the system's CAs
  std::string cert_file;         // client certificate and key (mTLS), both or neither
  std::string key_file;
  bool verify = true;  // verify the server's chain and name
};

// Outbound requests to one destination (matched by host and port, first match wins).
struct DestinationConfig {
  std::string match;             // as written: "api.example.com:80", "*.example.com", "10.0.0.7"
  std::string host;              // lowercase; "*.example.com" matches any name under example.com
  std::optional<uint16_t> port;  // any port when unset
  UpstreamProtocol protocol = UpstreamProtocol::kSame;
  std::optional<TlsOriginationConfig> tls;  // set: tracecar speaks TLS to it
};

struct UpstreamConfig {
  HostPort app{"127.0.0.1", 8080};  // where inbound requests go
  InboundMode inbound_mode = InboundMode::kOriginalPort;
  OutboundMode outbound_mode = OutboundMode::kOriginalDestination;
  HostPort outbound_upstream;  // meaningful when outbound_mode == kUpstream
  UpstreamProtocol app_protocol = UpstreamProtocol::kSame;  // the HTTP version the app gets
  std::vector<DestinationConfig> destinations;              // outbound, by destination
};

// TLS termination on the inbound listener: a connection that starts with a TLS ClientHello is
// decrypted with this certificate (ALPN h2 and http/1.1); without one, TLS passes through.
struct TlsTerminationConfig {
  std::string cert_file;       // PEM certificate chain
  std::string key_file;        // its private key
  std::string client_ca_file;  // set: clients must present a certificate signed by it
  // ALPN protocols offered, in preference order ("h2", "http/1.1"); empty: by app_protocol
  // (inboundAlpn).
  std::vector<std::string> alpn;
  bool enabled() const noexcept { return !cert_file.empty(); }
};


struct TlsConfig {
  TlsTerminationConfig inbound;
  // How often certificate, key and CA files are checked for changes (and loaded again).
  std::chrono::milliseconds reload_interval{10000};
};

// What to do with a baggage or tracestate header over its limit.
enum class HeaderPolicy : uint8_t {
  kTruncate,  // drop whole members and forward the rest
  kReject,    // answer 431
};
std::string_view toString(HeaderPolicy policy) noexcept;  // "truncate" | "reject"

struct LimitsConfig {
  http::Http1Limits request;   // over: 431 (header bytes or count), 414 (URI)
  http::Http1Limits response;  // over: 502 (max_uri_length unused)
  HeaderPolicy baggage_policy = HeaderPolicy::kTruncate;
  HeaderPolicy tracestate_policy = HeaderPolicy::kTruncate;
};

struct TimeoutConfig {
  std::chrono::milliseconds request_header{10000};     // first byte to end of the request head
  std::chrono::milliseconds downstream_idle{60000};    // keep-alive connection with no request
  std::chrono::milliseconds upstream_idle{30000};      // pooled upstream connection, unused
  std::chrono::milliseconds upstream_connect{5000};    // over: 503
  std::chrono::milliseconds upstream_response{60000};  // request sent to first byte of the
                                                       // response head; over: 504
  std::chrono::milliseconds drain{20000};              // SIGTERM to forced exit
  // A redirected connection whose client sends nothing for this long is taken for a
  // server-first protocol and tunnelled.
  std::chrono::milliseconds sniff{100};
  // A byte tunnel with no byte either way for this long is closed; 0: never.
  std::chrono::milliseconds tunnel_idle{3600000};
};

struct TracingConfig {
  // OTEL_SDK_DISABLED (tracing.sdk_disabled in the file): the SDK is disabled for every signal,
  // a no-op SDK in its place: no span is made, sampled or exported. Propagation is not the
  // SDK's, and goes on as configured.
  bool sdk_disabled = false;
  // Route templates, in configuration order, and the matcher compiled from them.
  std::vector<std::string> routes;
  http::RouteMatcher route_matcher;
  // Distinct heuristic routes per listener before the fallback route (0: always the fallback).
  size_t route_cardinality_limit = http::RouteCardinalityLimiter::kDefaultMaxRoutes;
  bool redact_all_query_values = true;
  // Query keys whose values are redacted when redact_all_query_values is false. Default: the
  // keys the OTel HTTP semantic conventions name.
  std::vector<std::string> sensitive_query_keys{"AWSAccessKeyId", "Signature", "sig",
                                                "X-Goog-Signature"};
  exporter::Resource resource;
  exporter::AttributeLimits attribute_limits;
  // Whose incoming context SERVER spans continue (inbound listener, by the downstream peer's
  // address); the others restart the trace and keep the context as a span link.
  sampling::TrustPolicy trust_incoming_context;
  bool drop_untrusted_baggage = false;  // and drop their baggage too
  // CLIENT spans also record url.scheme, url.path, url.query and user_agent.original.
  bool client_url_attributes = false;
  // SERVER spans take client.address, server.* and url.scheme from Forwarded / X-Forwarded-*.
  bool use_forwarded_headers = true;
  // OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS (tracing.known_methods in the file): the methods
  // spans and the request histograms report as themselves, any other as _OTHER. A full
  // override of the default list, not an addition to it.
  semconv::KnownMethods known_methods;
};

struct ExporterConfig {
  exporter::ExporterSettings settings;
  exporter::BatchConfig batch;
};

// Everything the proxy needs to run, with every default filled in and validated.
struct ProxyConfig {
  ListenerConfig listeners;
  UpstreamConfig upstreams;
  TlsConfig tls;
  size_t workers = 1;
  LimitsConfig limits;
  TimeoutConfig timeouts;
  // Propagators (OTEL_PROPAGATORS) and the tracestate and baggage limits, never below the W3C
  // minimums.
  propagation::PropagationConfig propagation;
  TracingConfig tracing;
  // OTEL_TRACES_SAMPLER(_ARG) or sampling.sampler/ratio, the rules, the rate limit on root
  // traces and the `th` precision; checked by sampling::Sampler::create.
  sampling::SamplingConfig sampling;
  ExporterConfig exporter;
};

// What the inbound listener offers in ALPN: tls.inbound.alpn, else h2 only when the app's
// HTTP version is known (upstreams.app_protocol http1 or h2: an HTTP/2 client is served,
// translated if need be); with "same" only http/1.1, since a client that agrees on h2 would
// reach an app that may not speak it.
std::vector<std::string> inboundAlpn(const ProxyConfig& config);

// Where a setting's value came from.
enum class Source : uint8_t { kDefault, kFile, kEnv, kFlag };
std::string_view toString(Source source) noexcept;  // "default", "file", "env", "flag"

struct Origin {
  Origin() = default;
  Origin(Source from, std::string what, std::string where = {})
      : source(from), detail(std::move(what)), position(std::move(where)) {}

  Source source = Source::kDefault;
  // "tracecar.yaml:12" for the file, the variable for env, the option for a flag; for a
  // default, what it was derived from, if anything.
  std::string detail;
  // The file's: where its value is ("tracecar.yaml:12:5"), for an error found in it later.
  std::string position;
};

// Origins by key path ("limits.request.max_header_bytes"); a key not present is a default.
using Origins = std::map<std::string, Origin, std::less<>>;

// How an error about the value of key starts, naming where the value came from:
// "tracecar.yaml:12:5: tls.inbound.key_file: " for the file's, "OTEL_EXPORTER_OTLP_CLIENT_KEY: "
// for a variable's, "--tls-key: " for a flag's, "KEY: " for a default.
std::string errorPrefix(const Origins& origins, std::string_view key);

// The command-line options that override configuration; filled by addConfigFlags.
struct ConfigFlags {
  std::optional<std::string> config_file;  // --config
  std::optional<std::string> inbound;      // --inbound ADDR:PORT
  std::optional<std::string> outbound;     // --outbound ADDR:PORT
  std::optional<std::string> app;          // --app HOST:PORT
  std::optional<std::string> admin;        // --admin ADDR:PORT
  std::optional<std::string> workers;      // --workers N|auto
  std::optional<std::string> upstream;     // --upstream host|original_destination|HOST:PORT
  std::optional<std::string> app_protocol;  // --app-protocol same|http1|h2
  std::optional<std::string> tls_cert;      // --tls-cert FILE (inbound termination)
  std::optional<std::string> tls_key;       // --tls-key FILE
  std::vector<std::string> routes;         // --route TEMPLATE, repeatable; replace the file's
  std::optional<std::string> sampling_rules;  // --sampling-rules TEXT; replaces the file's
};

// The result of loading: the configuration, where each value came from, and what went wrong.
// Errors carry their location and key path ("tracecar.yaml:7:5: limits.request.max_headers:
// ..."), the variable ("OTEL_PROPAGATORS: ...") or the option ("--inbound: ..."). Warnings are
// values ignored as the OTel specification says (an invalid OTEL_BSP_* value...).
struct LoadedConfig {
  ProxyConfig config;
  Origins origins;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  WorkerCount auto_workers;  // what "workers: auto" resolves to

  bool ok() const noexcept { return errors.empty(); }
  // The origin of key, a default when not recorded.
  Origin origin(std::string_view key) const;
};

// What the loader reads besides the file.
struct ConfigInputs {
  exporter::EnvLookup env = exporter::processEnvironment();
  CpuProbe cpu;
  // The file's text, instead of reading flags.config_file (tests); named by flags.config_file
  // or "config" in messages.
  std::optional<std::string> file_text;
};

// Loads the configuration with precedence flags > env > file > defaults: the YAML file named by
// flags.config_file (if any), the OTEL_* variables, then the flags. Every problem found is
// reported, not only the first; the configuration is only usable when ok().
LoadedConfig loadConfig(const ConfigFlags& flags, const ConfigInputs& inputs = {});

// Applies flags on top of a loaded configuration, then resolves "workers: auto", compiles the
// routes and checks the settings that depend on each other. loadConfig ends with it; a command
// may call it again to layer more flags on the same result.
void applyFlags(const ConfigFlags& flags, LoadedConfig& loaded);

}  // namespace tracecar::proxy
