#include "proxy/config_flags.h"

#include <CLI/CLI.hpp>

namespace tracecar::proxy {
namespace {

void addStringOption(CLI::App& command, const std::string& name, std::optional<std::string>& out,
                     const std::string& type, const std::string& description) {
  command
      .add_option_function<std::string>(
          name, [&out](const std::string& value) { out = value; }, description)
      ->type_name(type);
}

}  // namespace

void addConfigFlags(CLI::App& command, ConfigFlags& flags) {
  addStringOption(command, "--config", flags.config_file, "FILE",
                  "YAML configuration file (see docs/configuration.md)");
  addStringOption(command, "--inbound", flags.inbound, "ADDR:PORT",
                  "Inbound listener, requests to the app (default 0.0.0.0:15006)");
  addStringOption(command, "--outbound", flags.outbound, "ADDR:PORT",
                  "Outbound listener, the app's own requests (default 127.0.0.1:15001)");
  addStringOption(command, "--app", flags.app, "HOST:PORT",
                  "Where inbound requests go (default 127.0.0.1:8080)");
  addStringOption(command, "--app-protocol", flags.app_protocol, "same|http1|h2",
                  "HTTP version requests reach the app with: what the client spoke (same, the "
                  "default), or always HTTP/1.1 or HTTP/2, translating");
  addStringOption(command, "--tls-cert", flags.tls_cert, "FILE",
                  "Terminate TLS on the inbound listener with this PEM certificate chain "
                  "(with --tls-key); reloaded when it changes");
  addStringOption(command, "--tls-key", flags.tls_key, "FILE",
                  "The private key of --tls-cert");
  addStringOption(command, "--admin", flags.admin, "ADDR:PORT",
                  "Admin listener: /metrics, /healthz, /readyz (default 127.0.0.1:15000)");
  addStringOption(command, "--workers", flags.workers, "N|auto",
                  "Worker threads (default auto: the container's CPU limit)");
  addStringOption(command, "--upstream", flags.upstream, "original_destination|host|HOST:PORT",
                  "Where outbound requests go: where a redirected connection was going, else "
                  "the host each request names (original_destination, the default); always the "
                  "host each request names; or a fixed upstream");
  command
      .add_option("--route", flags.routes,
                  "Route template, e.g. /users/{id}; repeatable, in match order; replaces the "
                  "file's routes")
      ->type_name("TEMPLATE")
      ->expected(1)
      ->allow_extra_args(false)  // one template per --route: `--route /a FILE` keeps FILE
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  addStringOption(command, "--sampling-rules", flags.sampling_rules, "RULES",
                  "Sampling rules, first match wins, e.g. \"/healthz=never, /checkout/*=always, "
                  "*=10%\"; replaces the file's sampling.rules (see docs/sampling.md)");
}

}  // namespace tracecar::proxy
