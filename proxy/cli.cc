#include "proxy/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "proxy/config.h"
#include "proxy/config_flags.h"
#include "proxy/config_print.h"
#include "proxy/init_iptables.h"
#include "proxy/inject_webhook_server.h"
#include "proxy/run.h"
#include "proxy/run_settings.h"
#include "proxy/version.h"

namespace tracecar::proxy {
namespace {

// Loads the configuration (file, environment, flags) and prints the effective settings with
// where each came from: 0. Otherwise every error, each with its file, line and key path, or its
// variable or option: 2. Warnings (values ignored as the OTel spec says) go to standard error
// and do not fail the check.
int validateConfig(const ConfigFlags& flags) {
  LoadedConfig loaded = loadConfig(flags);
  if (loaded.ok()) {
    // The certificate, key and CA files are read as `tracecar run` would read them, the data
    // path's and the exporter's, and the console exporter's file is checked.
    loadDataPathTls(loaded.config, loaded.origins, loaded.errors);
    checkExporterFiles(loaded.config, loaded.origins, loaded.errors);
  }
  for (const std::string& warning : loaded.warnings) {
    std::fprintf(stderr, "tracecar: warning: %s\n", warning.c_str());
  }
  if (!loaded.ok()) {
    for (const std::string& error : loaded.errors) std::fprintf(stderr, "%s\n", error.c_str());
    std::fprintf(stderr, "tracecar: %zu configuration error%s\n", loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s");
    return 2;
  }
  std::fputs(formatEffectiveConfig(loaded).c_str(), stdout);
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
                 "Same as \"validate\" without a file: check the environment (OTEL_* "
                 "variables) and print the effective settings; exit 0 when valid, 2 otherwise");

    ConfigFlags flags;
    std::optional<std::string> file;
    CLI::App* validate = app.add_subcommand(
        "validate",
        "Check a configuration (file, environment, flags) and print every effective setting "
        "with where it came from (default, file, env or flag): exit 0; or print every error "
        "with its file, line and key path: exit 2");
    validate
        ->add_option_function<std::string>(
            "FILE", [&file](const std::string& value) { file = value; },
            "YAML configuration file (same as --config)")
        ->type_name("");  // the positional's name says it: no "FILE FILE" in --help
    addConfigFlags(*validate, flags);

    ConfigFlags run_flags;
    RunOptions run_options;
    CLI::App* run = app.add_subcommand(
        "run",
        "Run the sidecar: the inbound listener (to the app) and the outbound listener (the app's "
        "own calls), a SERVER or CLIENT span for every request, exported over OTLP (or to the "
        "console), and the admin listener (/metrics /healthz /readyz). SIGTERM, SIGINT or SIGHUP drains "
        "in-flight requests, flushes the spans and exits 0; a second signal exits at once. "
        "Configuration errors: exit 2");
    addConfigFlags(*run, run_flags);
    run->add_option("--ready-file", run_options.ready_file,
                    "Once listening, write the bound ports here as JSON "
                    "({\"inbound\":N,\"outbound\":N,\"admin\":N,\"pid\":N}); useful "
                    "with port 0")
        ->type_name("PATH");

    InitIptablesFlags iptables_flags;
    CLI::App* init_iptables = app.add_subcommand(
        "init-iptables",
        "Set up transparent interception in this network namespace (a pod's init container, "
        "as root): iptables nat rules send inbound TCP to the inbound listener and the app's "
        "outbound TCP to the outbound listener, except tracecar's own connections (--proxy-uid), "
        "loopback and the exclusions; IPv4 and IPv6. Running it again leaves one set of rules; "
        "--cleanup removes them. Exit 0 done, 1 iptables failed or is missing (or lacks "
        "permission), 2 bad option. See docs/transparent-mode.md");
    addInitIptablesOptions(*init_iptables, iptables_flags);

    InjectWebhookOptions webhook_options;
    CLI::App* inject_webhook = app.add_subcommand(
        "inject-webhook",
        "Serve the Kubernetes sidecar injector (a mutating admission webhook) over HTTPS: "
        "POST /inject answers an AdmissionReview for a pod with a JSON Patch that adds the "
        "init-iptables container and the sidecar from --template, with the pod's tracecar.io/* "
        "annotations applied; bad input is allowed with a warning. The certificate files are "
        "reloaded when they change. See docs/kubernetes.md");
    addInjectWebhookOptions(*inject_webhook, webhook_options);

    app.footer(
        "Configuration (precedence: flags > environment > file > defaults; every key is in\n"
        "docs/configuration.md):\n"
        "  --config FILE                       YAML file: listeners, upstreams, tls, workers,\n"
        "                                      limits, timeouts, routes, tracing, sampling,\n"
        "                                      exporter\n"
        "  OTEL_PROPAGATORS                    tracecontext,baggage (default) | b3 | b3multi |\n"
        "                                      jaeger | none\n"
        "  OTEL_TRACES_SAMPLER, _ARG           parentbased_always_on (default) | always_on |\n"
        "                                      always_off | traceidratio | parentbased_* ...\n"
        "  OTEL_TRACES_EXPORTER                otlp | console | none (default: otlp when an\n"
        "                                      endpoint is set, else console)\n"
        "  OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _PROTOCOL (http/protobuf | http/json | grpc), _HEADERS,\n"
        "    _TIMEOUT, _COMPRESSION (gzip), _CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE,\n"
        "    _INSECURE (grpc without a scheme)\n"
        "  OTEL_BSP_SCHEDULE_DELAY, _EXPORT_TIMEOUT, _MAX_QUEUE_SIZE, _MAX_EXPORT_BATCH_SIZE\n"
        "  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_[SPAN_]ATTRIBUTE_COUNT_LIMIT,\n"
        "    OTEL_[SPAN_]ATTRIBUTE_VALUE_LENGTH_LIMIT\n"
        "  OTEL_SDK_DISABLED                   true: no span is made or exported (the context\n"
        "                                      goes on as it came)\n"
        "  OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS\n"
        "                                      methods reported as themselves, others as _OTHER:\n"
        "                                      GET,HEAD,POST,PURGE replaces the default list\n"
        "  TRACECAR_CONSOLE_EXPORT_PATH        file for the console exporter (default: stdout)\n"
        "  TRACECAR_EXPORTER_NICE              nice steps of the export thread, 0 to 19\n\n"
        "Run: tracecar run [--config tracecar.yaml] [--app 127.0.0.1:8080] [--route /users/{id}]\n"
        "Check a configuration before rollout: tracecar validate tracecar.yaml [--inbound ...]\n"
        "Transparent mode (init container): tracecar init-iptables [--dry-run] [--cleanup]\n"
        "Kubernetes injector: tracecar inject-webhook --tls-cert F --tls-key F --template F\n"
        "Documentation: README.md and docs/ in the source tree.");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // --help and --version exit 0; every usage error exits 2, like other Unix tools.
      return app.exit(e) == 0 ? 0 : 2;
    }
    if (validate->parsed()) {
      if (file && flags.config_file && *file != *flags.config_file) {
        std::fprintf(stderr,
                     "tracecar validate: give the configuration file once, as FILE or "
                     "with --config\n");
        return 2;
      }
      if (file && file->empty()) {
        std::fprintf(stderr, "tracecar validate: the file name is empty\n");
        return 2;
      }
      if (file) flags.config_file = file;
      return validateConfig(flags);
    }
    if (run->parsed()) return runProxy(run_flags, run_options);
    if (init_iptables->parsed()) return runInitIptables(iptables_flags);
    if (inject_webhook->parsed()) return runInjectWebhook(webhook_options);
    if (check_config) return validateConfig(ConfigFlags{});
    // Nothing asked for: a usage error (tracecar --help asks for the help).
    std::fputs(app.help().c_str(), stderr);
    std::fputs("\ntracecar: give a subcommand (run, validate, init-iptables, inject-webhook)\n",
               stderr);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tracecar: %s\n", e.what());
    return 1;
  }
}

}  // namespace tracecar::proxy
