#include "proxy/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "exporter/batch_config.h"
#include "exporter/env.h"
#include "exporter/otlp_config.h"
#include "exporter/resource.h"
#include "exporter/span.h"
#include "propagation/composite_propagator.h"
#include "proxy/version.h"

namespace tracecar::proxy {
namespace {

void printAttribute(const exporter::Attribute& attribute) {
  std::printf("  %s=", attribute.key.c_str());
  if (const auto* text = std::get_if<std::string>(&attribute.value)) {
    std::printf("%s\n", text->c_str());
  } else {
    std::printf("(non-string)\n");
  }
}

std::string describeExporter(const exporter::ExporterSettings& settings) {
  switch (settings.kind) {
    case exporter::ExporterKind::kNone:
      return "none (spans are counted, not exported)";
    case exporter::ExporterKind::kConsole:
      return "console (OTLP/JSON lines to " +
             (settings.console_path.empty() ? std::string("standard output")
                                            : settings.console_path) +
             ")";
    case exporter::ExporterKind::kOtlp: {
      const auto& otlp = settings.otlp;
      std::string text = "otlp " + std::string(exporter::protocolName(otlp.protocol)) + " " +
                         otlp.endpoint.url() + " (timeout " +
                         std::to_string(otlp.timeout.count()) + " ms, compression " +
                         (otlp.compression == exporter::Compression::kGzip ? "gzip" : "none") +
                         ", " + std::to_string(otlp.headers.size()) + " extra header(s)";
      if (!otlp.certificate.empty()) text += ", CA " + otlp.certificate;
      if (!otlp.client_certificate.empty()) text += ", client certificate " + otlp.client_certificate;
      return text + ")";
    }
  }
  return "?";
}

// Validates the settings read from the environment and prints the effective values, so a
// platform team can check a sidecar's env before rollout. 0 when valid, 2 otherwise; warnings
// (values ignored as the OTel spec says) go to standard error and do not fail the check.
int checkConfig() {
  const exporter::EnvLookup env = exporter::processEnvironment();
  std::vector<std::string> warnings;
  std::vector<std::string> errors;

  const auto raw_propagators = env("OTEL_PROPAGATORS");
  auto propagators = propagation::parsePropagators(raw_propagators.value_or(""));
  if (!propagators.ok()) errors.emplace_back(propagators.status().message());
  auto exporter_settings = exporter::exporterSettingsFromEnv(env, warnings);
  if (!exporter_settings.ok()) errors.emplace_back(exporter_settings.status().message());
  const exporter::BatchConfig batch = exporter::BatchConfig::fromEnv(env, warnings);
  const exporter::AttributeLimits limits = exporter::attributeLimitsFromEnv(env, warnings);
  const exporter::Resource resource = exporter::Resource::fromEnvironment(env, kVersion, warnings);

  for (const std::string& warning : warnings) {
    std::fprintf(stderr, "tracecar: warning: %s\n", warning.c_str());
  }
  if (!errors.empty()) {
    for (const std::string& error : errors) {
      std::fprintf(stderr, "tracecar: configuration error: %s\n", error.c_str());
    }
    return 2;
  }

  std::string names;
  for (propagation::PropagatorKind kind : *propagators) {
    if (!names.empty()) names += ',';
    names += propagation::toString(kind);
  }
  std::printf("propagators: %s\n", names.empty() ? "none" : names.c_str());
  std::printf("exporter: %s\n", describeExporter(*exporter_settings).c_str());
  std::printf("batch: schedule_delay %lld ms, export_timeout %lld ms, max_queue_size %zu, "
              "max_export_batch_size %zu\n",
              static_cast<long long>(batch.schedule_delay.count()),
              static_cast<long long>(batch.export_timeout.count()), batch.max_queue_size,
              batch.max_export_batch_size);
  if (limits.value_length == std::numeric_limits<size_t>::max()) {
    std::printf("span attributes: at most %zu, values unlimited\n", limits.count);
  } else {
    std::printf("span attributes: at most %zu, values cut to %zu characters\n", limits.count,
                limits.value_length);
  }
  std::printf("resource:\n");
  for (const exporter::Attribute& attribute : resource.attributes().items()) {
    printAttribute(attribute);
  }
  return 0;
}

}  // namespace

int runCli(int argc, char** argv) noexcept {
  try {
    CLI::App app{
        "tracecar: a sidecar proxy that gives a service W3C distributed tracing without touching "
        "its code.\nIt intercepts the pod's HTTP traffic, continues or starts the trace on every "
        "request,\nemits SERVER and CLIENT spans and exports them over OTLP.",
        "tracecar"};
    app.set_version_flag("-V,--version", std::string("tracecar ") + kVersion,
                         "Print the version and exit");
    bool check_config = false;
    app.add_flag("--check-config", check_config,
                 "Validate the configuration from the environment (OTEL_* variables), print the "
                 "effective settings and exit: 0 when valid, 2 otherwise");
    app.footer(
        "Environment:\n"
        "  OTEL_PROPAGATORS                    tracecontext,baggage (default) | b3 | b3multi |\n"
        "                                      jaeger | none\n"
        "  OTEL_TRACES_EXPORTER                otlp | console | none (default: otlp when an\n"
        "                                      endpoint is set, else console)\n"
        "  OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _PROTOCOL (http/protobuf | http/json), _HEADERS,\n"
        "    _TIMEOUT, _COMPRESSION (gzip), _CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE\n"
        "  OTEL_BSP_SCHEDULE_DELAY, _EXPORT_TIMEOUT, _MAX_QUEUE_SIZE, _MAX_EXPORT_BATCH_SIZE\n"
        "  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT,\n"
        "    OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT\n\n"
        "The proxy data path is not built yet: this release provides the propagation library.\n"
        "Documentation: README.md and docs/ in the source tree.");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // --help and --version exit 0; every usage error exits 2, like other Unix tools.
      return app.exit(e) == 0 ? 0 : 2;
    }
    if (check_config) return checkConfig();
    // Nothing to run yet without a data path: say so rather than pretend to proxy.
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tracecar: %s\n", e.what());
    return 1;
  }
}

}  // namespace tracecar::proxy
