#include "proxy/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "propagation/composite_propagator.h"
#include "proxy/version.h"

namespace tracecar::proxy {
namespace {

// Validates the settings read from the environment and prints the effective values, so a
// platform team can check a sidecar's env before rollout. 0 when valid, 2 otherwise.
int checkConfig() {
  const char* raw = std::getenv("OTEL_PROPAGATORS");
  auto propagators = propagation::parsePropagators(raw == nullptr ? "" : raw);
  if (!propagators.ok()) {
    std::fprintf(stderr, "tracecar: configuration error: %s\n",
                 std::string(propagators.status().message()).c_str());
    return 2;
  }
  std::string names;
  for (propagation::PropagatorKind kind : *propagators) {
    if (!names.empty()) names += ',';
    names += propagation::toString(kind);
  }
  std::printf("propagators: %s\n", names.empty() ? "none" : names.c_str());
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
                 "Validate the configuration from the environment (OTEL_PROPAGATORS), print the "
                 "effective settings and exit: 0 when valid, 2 otherwise");
    app.footer(
        "Environment:\n"
        "  OTEL_PROPAGATORS  tracecontext,baggage (default) | b3 | b3multi | jaeger | none\n\n"
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
