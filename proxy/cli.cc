#include "proxy/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "proxy/version.h"

namespace tracecar::proxy {

int runCli(int argc, char** argv) noexcept {
  try {
    CLI::App app{
        "tracecar: a sidecar proxy that gives a service W3C distributed tracing without touching "
        "its code.\nIt intercepts the pod's HTTP traffic, continues or starts the trace on every "
        "request,\nemits SERVER and CLIENT spans and exports them over OTLP.",
        "tracecar"};
    app.set_version_flag("-V,--version", std::string("tracecar ") + kVersion,
                         "Print the version and exit");
    app.footer(
        "The proxy data path is not built yet: this release provides the propagation library.\n"
        "Documentation: README.md and docs/ in the source tree.");
    app.require_subcommand(0, 0);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // --help and --version exit 0; every usage error exits 2, like other Unix tools.
      return app.exit(e) == 0 ? 0 : 2;
    }
    // Nothing to run yet without a data path: say so rather than pretend to proxy.
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tracecar: %s\n", e.what());
    return 1;
  }
}

}  // namespace tracecar::proxy
