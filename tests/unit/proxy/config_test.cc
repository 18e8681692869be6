#include "proxy/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "proxy/config_flags.h"
#include "proxy/config_print.h"
#include "proxy/config_values.h"
#include "proxy/config_workers.h"
#include "proxy/run_settings.h"

namespace tracecar::proxy {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using Env = std::map<std::string, std::string, std::less<>>;

// A probe that finds no cgroup limit and four CPUs, so "auto" is deterministic.
CpuProbe fourCpus() {
  CpuProbe probe;
  probe.cgroup_root = "/nonexistent/cgroup";
  probe.proc_self_cgroup = "/nonexistent/proc/self/cgroup";
  probe.available_cpus = 4;
  return probe;
}

LoadedConfig load(const std::string& yaml, Env env = {}, ConfigFlags flags = {}) {
  ConfigInputs inputs;
  inputs.env = exporter::mapEnvironment(std::move(env));
  inputs.cpu = fourCpus();
  inputs.file_text = yaml;
  if (!flags.config_file) flags.config_file = "test.yaml";
  return loadConfig(flags, inputs);
}

LoadedConfig loadWithoutFile(Env env = {}, ConfigFlags flags = {}) {
  ConfigInputs inputs;
  inputs.env = exporter::mapEnvironment(std::move(env));
  inputs.cpu = fourCpus();
  return loadConfig(flags, inputs);
}

std::string attribute(const LoadedConfig& loaded, std::string_view key) {
  const exporter::AttributeValue* value = loaded.config.tracing.resource.attributes().find(key);
  if (value == nullptr) return "(absent)";
  const auto* text = std::get_if<std::string>(value);
  return text == nullptr ? "(not a string)" : *text;
}

// ---------------------------------------------------------------------------------------------
// Defaults

TEST(ProxyConfigDefaults, MatchTheDocumentedValues) {
  const LoadedConfig loaded = loadWithoutFile();
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  const ProxyConfig& c = loaded.config;
  EXPECT_EQ(c.listeners.inbound.toString(), "0.0.0.0:15006");
  EXPECT_EQ(c.listeners.outbound.toString(), "127.0.0.1:15001");
  EXPECT_EQ(c.listeners.admin.toString(), "127.0.0.1:15000");
  EXPECT_EQ(c.upstreams.app.toString(), "127.0.0.1:8080");
  EXPECT_EQ(c.upstreams.outbound_mode, OutboundMode::kOriginalDestination);
  EXPECT_EQ(c.upstreams.inbound_mode, InboundMode::kOriginalPort);
  EXPECT_EQ(c.timeouts.sniff, 100ms);
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.limits.request.max_header_bytes, 60u * 1024);
  EXPECT_EQ(c.limits.request.max_header_count, 100u);
  EXPECT_EQ(c.limits.request.max_uri_length, 8u * 1024);
  EXPECT_EQ(c.limits.response.max_header_bytes, 60u * 1024);
  EXPECT_EQ(c.limits.response.max_header_count, 100u);
  EXPECT_EQ(c.limits.baggage_policy, HeaderPolicy::kTruncate);
  EXPECT_EQ(c.limits.tracestate_policy, HeaderPolicy::kTruncate);
  EXPECT_EQ(c.propagation.tracestate_max_length, 512u);
  EXPECT_EQ(c.propagation.baggage_limits.max_members, 64u);
  EXPECT_EQ(c.propagation.baggage_limits.max_bytes, 8192u);
  EXPECT_THAT(c.propagation.propagators, ElementsAre(propagation::PropagatorKind::kTraceContext,
                                                     propagation::PropagatorKind::kBaggage));
  EXPECT_EQ(c.timeouts.request_header, 10s);
  EXPECT_EQ(c.timeouts.downstream_idle, 60s);
  EXPECT_EQ(c.timeouts.upstream_idle, 30s);
  EXPECT_EQ(c.timeouts.upstream_connect, 5s);
  EXPECT_EQ(c.timeouts.upstream_response, 60s);
  EXPECT_EQ(c.timeouts.drain, 20s);
  EXPECT_THAT(c.tracing.routes, IsEmpty());
  EXPECT_TRUE(c.tracing.route_matcher.empty());
  EXPECT_EQ(c.tracing.route_cardinality_limit, 100u);
  EXPECT_TRUE(c.tracing.redact_all_query_values);
  EXPECT_FALSE(c.tracing.client_url_attributes);
  EXPECT_TRUE(c.tracing.use_forwarded_headers);
  EXPECT_EQ(c.tracing.attribute_limits.count, 128u);
  EXPECT_EQ(attribute(loaded, "service.name"), "unknown_service:tracecar");
  EXPECT_EQ(c.exporter.settings.kind, exporter::ExporterKind::kConsole);
  EXPECT_EQ(c.exporter.batch.max_queue_size, 2048u);
  EXPECT_EQ(c.exporter.batch.thread_nice, 0);
  EXPECT_EQ(loaded.origin("listeners.inbound").source, Source::kDefault);
  EXPECT_THAT(loaded.origin("workers").detail, HasSubstr("4 available CPUs"));
}

TEST(ProxyConfigDefaults, EmptyFileAndEmptySectionsKeepDefaults) {
  for (const char* yaml : {"", "# nothing\n", "limits:\ntimeouts:\n  # drain: 1s\n"}) {
    const LoadedConfig loaded = load(yaml);
    EXPECT_TRUE(loaded.ok()) << yaml;
    EXPECT_EQ(loaded.config.timeouts.drain, 20s);
  }
}

// ---------------------------------------------------------------------------------------------
// Precedence: flags > env > file > defaults

TEST(ProxyConfigPrecedence, FileOverridesDefaultsAndRecordsTheLine) {
  const LoadedConfig loaded = load(
      "listeners:\n"
      "  inbound: 0.0.0.0:7000\n"
      "timeouts:\n"
      "  upstream_connect: 250ms\n"
      "workers: 3\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.listeners.inbound.port, 7000);
  EXPECT_EQ(loaded.config.timeouts.upstream_connect, 250ms);
  EXPECT_EQ(loaded.config.workers, 3u);
  EXPECT_EQ(loaded.origin("listeners.inbound").source, Source::kFile);
  EXPECT_EQ(loaded.origin("listeners.inbound").detail, "test.yaml:2");
  EXPECT_EQ(loaded.origin("timeouts.upstream_connect").detail, "test.yaml:4");
  EXPECT_EQ(loaded.origin("listeners.outbound").source, Source::kDefault);
}

TEST(ProxyConfigPrecedence, EnvOverridesFilePropagators) {
  const std::string yaml = "tracing:\n  propagators: [b3]\n";
  const LoadedConfig from_file = load(yaml);
  EXPECT_THAT(from_file.config.propagation.propagators,
              ElementsAre(propagation::PropagatorKind::kB3));
  EXPECT_EQ(from_file.origin("tracing.propagators").source, Source::kFile);

  const LoadedConfig from_env = load(yaml, {{"OTEL_PROPAGATORS", "jaeger"}});
  EXPECT_THAT(from_env.config.propagation.propagators,
              ElementsAre(propagation::PropagatorKind::kJaeger));
  EXPECT_EQ(from_env.origin("tracing.propagators").source, Source::kEnv);
  EXPECT_EQ(from_env.origin("tracing.propagators").detail, "OTEL_PROPAGATORS");
}

TEST(ProxyConfigPrecedence, PropagatorsAcceptACommaString) {
  const LoadedConfig loaded = load("tracing:\n  propagators: \"tracecontext, b3multi\"\n");
  ASSERT_TRUE(loaded.ok());
  EXPECT_THAT(loaded.config.propagation.propagators,
              ElementsAre(propagation::PropagatorKind::kTraceContext,
                          propagation::PropagatorKind::kB3Multi));
}

TEST(ProxyConfigPrecedence, EmptyPropagatorListMeansNone) {
  const LoadedConfig loaded = load("tracing:\n  propagators: []\n");
  ASSERT_TRUE(loaded.ok());
  EXPECT_THAT(loaded.config.propagation.propagators, IsEmpty());
}

TEST(ProxyConfigPrecedence, EnvOverridesFileBatchSettings) {
  const std::string yaml =
      "exporter:\n  batch:\n    schedule_delay: 200ms\n    max_queue_size: 100\n";
  const LoadedConfig loaded = load(yaml, {{"OTEL_BSP_SCHEDULE_DELAY", "300"}});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.exporter.batch.schedule_delay, 300ms);
  EXPECT_EQ(loaded.config.exporter.batch.max_queue_size, 100u);
  EXPECT_EQ(loaded.origin("exporter.batch.schedule_delay").source, Source::kEnv);
  EXPECT_EQ(loaded.origin("exporter.batch.max_queue_size").detail, "test.yaml:4");
  // A queue below the default batch size brings the batch size down, without a warning.
  EXPECT_EQ(loaded.config.exporter.batch.max_export_batch_size, 100u);
  EXPECT_THAT(loaded.warnings, IsEmpty());
}

// The batch size follows the queue size that won, not the file's when the environment set
// another.
TEST(ProxyConfigPrecedence, TheDefaultBatchSizeFollowsTheEffectiveQueueSize) {
  const std::string yaml = "exporter:\n  batch:\n    max_queue_size: 100\n";
  const LoadedConfig bigger = load(yaml, {{"OTEL_BSP_MAX_QUEUE_SIZE", "5000"}});
  ASSERT_TRUE(bigger.ok());
  EXPECT_EQ(bigger.config.exporter.batch.max_queue_size, 5000u);
  EXPECT_EQ(bigger.config.exporter.batch.max_export_batch_size, 512u);
  EXPECT_THAT(bigger.warnings, IsEmpty());
  EXPECT_EQ(bigger.origin("exporter.batch.max_export_batch_size").source, Source::kDefault);

  const LoadedConfig smaller = load(yaml, {{"OTEL_BSP_MAX_QUEUE_SIZE", "50"}});
  ASSERT_TRUE(smaller.ok());
  EXPECT_EQ(smaller.config.exporter.batch.max_export_batch_size, 50u);
  EXPECT_THAT(smaller.warnings, IsEmpty());
}

// A warning about a value from the file names the file's key and line, not a variable the user
// never set.
TEST(ProxyConfigPrecedence, AWarningNamesTheFileSettingItIsAbout) {
  const LoadedConfig from_env = load("exporter:\n  batch:\n    max_queue_size: 100\n",
                                     {{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000"}});
  ASSERT_TRUE(from_env.ok()) << from_env.errors.front();
  EXPECT_EQ(from_env.config.exporter.batch.max_export_batch_size, 100u);
  EXPECT_THAT(from_env.warnings,
              ElementsAre("OTEL_BSP_MAX_EXPORT_BATCH_SIZE=1000 is larger than "
                          "exporter.batch.max_queue_size (test.yaml:3)=100; using 100"));
}

// The file is strict: a batch size it gives that the effective queue (whoever set it) cannot
// hold is an error at its key, never a silent clamp.
TEST(ProxyConfigErrors, AFileBatchSizeLargerThanTheEffectiveQueueIsAnError) {
  const LoadedConfig alone = load("exporter:\n  batch:\n    max_export_batch_size: 4096\n");
  EXPECT_THAT(alone.errors,
              ElementsAre("test.yaml:3: exporter.batch.max_export_batch_size: must not be larger "
                          "than the queue size, 2048 by default (exporter.batch.max_queue_size)"));
  EXPECT_THAT(alone.warnings, IsEmpty());

  const LoadedConfig env_queue = load("exporter:\n  batch:\n    max_export_batch_size: 1000\n",
                                      {{"OTEL_BSP_MAX_QUEUE_SIZE", "100"}});
  EXPECT_THAT(env_queue.errors,
              ElementsAre("test.yaml:3: exporter.batch.max_export_batch_size: must not be larger "
                          "than the queue size, 100 from OTEL_BSP_MAX_QUEUE_SIZE"));
  EXPECT_THAT(env_queue.warnings, IsEmpty());

  // An invalid batch variable gives way to the file's batch size, which is then the file's.
  const LoadedConfig fallback = load("exporter:\n  batch:\n    max_export_batch_size: 4096\n",
                                     {{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "lots"}});
  EXPECT_THAT(fallback.errors,
              ElementsAre(HasSubstr("test.yaml:3: exporter.batch.max_export_batch_size")));
}

// The check is on the combined layers: a queue from the environment large enough for the file's
// batch makes the file's pair valid.
TEST(ProxyConfigPrecedence, TheFilesBatchIsCheckedAgainstTheEffectiveQueue) {
  const LoadedConfig loaded =
      load("exporter:\n  batch: {max_queue_size: 100, max_export_batch_size: 200}\n",
           {{"OTEL_BSP_MAX_QUEUE_SIZE", "1000"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.exporter.batch.max_queue_size, 1000u);
  EXPECT_EQ(loaded.config.exporter.batch.max_export_batch_size, 200u);
  EXPECT_EQ(loaded.origin("exporter.batch.max_export_batch_size").detail, "test.yaml:2");
  EXPECT_THAT(loaded.warnings, IsEmpty());
}

TEST(ProxyConfigPrecedence, ABlankServiceNameVariableLeavesTheFilesName) {
  const LoadedConfig loaded =
      load("tracing:\n  service_name: filesvc\n", {{"OTEL_SERVICE_NAME", " "}});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(attribute(loaded, "service.name"), "filesvc");
  EXPECT_EQ(loaded.origin("resource.service.name").detail, "test.yaml:2");
}

TEST(ProxyConfigErrors, AFileThatIsNotUtf8IsAnErrorAtItsFirstBadByte) {
  const LoadedConfig loaded = load("tracing:\n  service_name: \"caf\xe9\"\n");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0], "test.yaml:2:21: not UTF-8 (a configuration file is UTF-8 text)");
  // Well-formed multi-byte text is fine.
  const LoadedConfig utf8 = load("tracing:\n  service_name: \"caf\xc3\xa9\"\n");
  ASSERT_TRUE(utf8.ok()) << utf8.errors.front();
  EXPECT_EQ(attribute(utf8, "service.name"), "caf\xc3\xa9");
}

TEST(ProxyConfigErrors, ADirectoryIsNotAConfigurationFile) {
  ConfigFlags flags;
  flags.config_file = ::testing::TempDir();
  const LoadedConfig loaded = loadWithoutFile({}, flags);
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0], ::testing::TempDir() +
                                  ": cannot read the configuration file: it is a directory "
                                  "(name the file in it)");
}

TEST(ProxyConfigPrecedence, ExportThreadNiceFromTheFileAndTheEnvironment) {
  const std::string yaml = "exporter:\n  thread_nice: 5\n";
  const LoadedConfig from_file = load(yaml);
  ASSERT_TRUE(from_file.ok());
  EXPECT_EQ(from_file.config.exporter.batch.thread_nice, 5);
  EXPECT_EQ(from_file.origin("exporter.thread_nice").detail, "test.yaml:2");
  const LoadedConfig from_env = load(yaml, {{"TRACECAR_EXPORTER_NICE", "19"}});
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env.config.exporter.batch.thread_nice, 19);
  EXPECT_EQ(from_env.origin("exporter.thread_nice").source, Source::kEnv);
  EXPECT_THAT(from_env.warnings, IsEmpty());
}

TEST(ProxyConfigPrecedence, BlankEnvCountsAsUnsetSoTheFileApplies) {
  const LoadedConfig loaded =
      load("exporter:\n  batch:\n    schedule_delay: 2s\n", {{"OTEL_BSP_SCHEDULE_DELAY", "  "}});
  EXPECT_EQ(loaded.config.exporter.batch.schedule_delay, 2s);
  EXPECT_EQ(loaded.origin("exporter.batch.schedule_delay").source, Source::kFile);
}

// The OTel rule treats an invalid variable as not set: the next source, the file, applies; the
// warning says which value, and validate names the file as the origin.
TEST(ProxyConfigPrecedence, InvalidEnvGivesWayToTheFilesValue) {
  const LoadedConfig loaded =
      load("exporter:\n  batch:\n    schedule_delay: 2s\n", {{"OTEL_BSP_SCHEDULE_DELAY", "soon"}});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.exporter.batch.schedule_delay, 2s);
  ASSERT_EQ(loaded.warnings.size(), 1u);
  EXPECT_EQ(loaded.warnings[0],
            "OTEL_BSP_SCHEDULE_DELAY=\"soon\" is not a whole number in [0, 2147483647]; using "
            "2s from exporter.batch.schedule_delay (test.yaml:3)");
  EXPECT_EQ(loaded.origin("exporter.batch.schedule_delay").source, Source::kFile);
  EXPECT_EQ(loaded.origin("exporter.batch.schedule_delay").detail,
            "test.yaml:3 (OTEL_BSP_SCHEDULE_DELAY is invalid and was ignored)");
  // Without a file value, the default.
  const LoadedConfig bare = loadWithoutFile({{"OTEL_BSP_SCHEDULE_DELAY", "soon"}});
  EXPECT_EQ(bare.config.exporter.batch.schedule_delay, 5s);
  EXPECT_THAT(bare.warnings, ElementsAre(HasSubstr("; using the default 5000")));
  EXPECT_EQ(bare.origin("exporter.batch.schedule_delay").source, Source::kDefault);
}

struct FallbackCase {
  const char* yaml;
  Env env;
  const char* key;       // the setting, as validate prints it
  const char* printed;   // "key: value" as validate prints it
  const char* warning;   // a piece of the one warning
};

class ProxyConfigInvalidEnv : public ::testing::TestWithParam<FallbackCase> {};

TEST_P(ProxyConfigInvalidEnv, FallsBackToTheFileThenTheDefault) {
  const FallbackCase& c = GetParam();
  const LoadedConfig loaded = load(c.yaml, c.env);
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  ASSERT_EQ(loaded.warnings.size(), 1u) << c.yaml;
  EXPECT_THAT(loaded.warnings[0], HasSubstr(c.warning));
  EXPECT_THAT(formatEffectiveConfig(loaded), HasSubstr(std::string(c.printed)));
  EXPECT_EQ(loaded.origin(c.key).source, Source::kFile) << c.key;
  EXPECT_THAT(loaded.origin(c.key).detail, HasSubstr("is invalid and was ignored")) << c.key;
}

INSTANTIATE_TEST_SUITE_P(
    EverySetting, ProxyConfigInvalidEnv,
    ::testing::Values(
        FallbackCase{"sampling:\n  sampler: always_off\n",
                     {{"OTEL_TRACES_SAMPLER", "alwayson"}},
                     "sampling.sampler",
                     "sampling.sampler: always_off ",
                     "OTEL_TRACES_SAMPLER: unknown sampler `alwayson`; expected always_on, "
                     "always_off, traceidratio, parentbased_always_on, parentbased_always_off or "
                     "parentbased_traceidratio; using always_off from sampling.sampler "
                     "(test.yaml:2)"},
        FallbackCase{"sampling:\n  sampler: traceidratio\n  ratio: 0.25\n",
                     {{"OTEL_TRACES_SAMPLER_ARG", "half"}},
                     "sampling.ratio",
                     "sampling.ratio: 0.25 ",
                     "using 0.25 from sampling.ratio (test.yaml:3)"},
        FallbackCase{"exporter:\n  batch:\n    max_queue_size: 8192\n",
                     {{"OTEL_BSP_MAX_QUEUE_SIZE", "abc"}},
                     "exporter.batch.max_queue_size",
                     "exporter.batch.max_queue_size: 8192 ",
                     "using 8192 from exporter.batch.max_queue_size (test.yaml:3)"},
        FallbackCase{"exporter:\n  thread_nice: 4\n",
                     {{"TRACECAR_EXPORTER_NICE", "99"}},
                     "exporter.thread_nice",
                     "exporter.thread_nice: 4 ",
                     "using 4 from exporter.thread_nice (test.yaml:2)"},
        FallbackCase{"exporter:\n  endpoint: http://c:4318\n  timeout: 2s\n",
                     {{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"}},
                     "exporter.timeout",
                     "exporter.timeout: 2s ",
                     "using 2s from exporter.timeout (test.yaml:3)"},
        FallbackCase{"exporter:\n  endpoint: http://c:4318\n  compression: gzip\n",
                     {{"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"}},
                     "exporter.compression",
                     "exporter.compression: gzip ",
                     "using gzip from exporter.compression (test.yaml:3)"},
        FallbackCase{"exporter:\n  endpoint: http://c:4317\n  protocol: grpc\n",
                     {{"OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"}},
                     "exporter.protocol",
                     "exporter.protocol: grpc ",
                     "using grpc from exporter.protocol (test.yaml:3)"},
        FallbackCase{"exporter:\n  type: none\n",
                     {{"OTEL_TRACES_EXPORTER", "zipkin"}},
                     "exporter.type",
                     "exporter.type: none ",
                     "using none from exporter.type (test.yaml:2)"},
        FallbackCase{"tracing:\n  propagators: [b3]\n",
                     {{"OTEL_PROPAGATORS", "xray"}},
                     "tracing.propagators",
                     "tracing.propagators: b3 ",
                     "using b3 from tracing.propagators (test.yaml:2)"},
        FallbackCase{"tracing:\n  span_attribute_count_limit: 10\n",
                     {{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "many"}},
                     "tracing.span_attribute_count_limit",
                     "tracing.span_attribute_count_limit: 10 ",
                     "using 10 from tracing.span_attribute_count_limit (test.yaml:2)"},
        FallbackCase{"tracing:\n  span_attribute_value_length_limit: unlimited\n",
                     {{"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "long"}},
                     "tracing.span_attribute_value_length_limit",
                     "tracing.span_attribute_value_length_limit: unlimited ",
                     "using unlimited from tracing.span_attribute_value_length_limit (test.yaml:2)"},
        FallbackCase{"exporter:\n  batch:\n    schedule_delay: 250ms\n",
                     {{"OTEL_BSP_SCHEDULE_DELAY", "-1"}},
                     "exporter.batch.schedule_delay",
                     "exporter.batch.schedule_delay: 250ms ",
                     "using 250ms from exporter.batch.schedule_delay (test.yaml:3)"},
        FallbackCase{"tracing:\n  known_methods: [GET, PURGE]\n",
                     {{"OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "GET,PU T"}},
                     "tracing.known_methods",
                     "tracing.known_methods: [GET, PURGE] ",
                     "using GET,PURGE from tracing.known_methods (test.yaml:2)"}));

TEST(ProxyConfigPrecedence, ServiceNameAndResourceAttributesFromFileUnderEnv) {
  const std::string yaml =
      "tracing:\n"
      "  service_name: checkout\n"
      "  resource_attributes:\n"
      "    deployment.environment: prod eu\n"
      "    team: \"pay,ments=1%\"\n";
  const LoadedConfig from_file = load(yaml);
  ASSERT_TRUE(from_file.ok());
  EXPECT_EQ(attribute(from_file, "service.name"), "checkout");
  EXPECT_EQ(attribute(from_file, "deployment.environment"), "prod eu");
  EXPECT_EQ(attribute(from_file, "team"), "pay,ments=1%");
  EXPECT_EQ(from_file.origin("resource.team").detail, "test.yaml:5");
  EXPECT_EQ(from_file.origin("resource.service.name").detail, "test.yaml:2");

  const LoadedConfig from_env =
      load(yaml, {{"OTEL_SERVICE_NAME", "cart"}, {"OTEL_RESOURCE_ATTRIBUTES", "team=orders"}});
  EXPECT_EQ(attribute(from_env, "service.name"), "cart");
  EXPECT_EQ(attribute(from_env, "team"), "orders");
  EXPECT_EQ(attribute(from_env, "deployment.environment"), "prod eu");
  EXPECT_EQ(from_env.origin("resource.service.name").detail, "OTEL_SERVICE_NAME");
  EXPECT_EQ(from_env.origin("resource.team").source, Source::kEnv);
  EXPECT_EQ(from_env.origin("resource.deployment.environment").source, Source::kFile);
}

// Where a value came from is recorded as the layers are applied, not guessed from the value: a
// variable that repeats the built-in value is still the variable's.
TEST(ProxyConfigPrecedence, ServiceNameEqualToTheDefaultIsStillTheVariables) {
  const std::string yaml = "tracing:\n  service_name: filesvc\n";
  const LoadedConfig loaded = load(yaml, {{"OTEL_SERVICE_NAME", "unknown_service:tracecar"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(attribute(loaded, "service.name"), "unknown_service:tracecar");
  EXPECT_EQ(loaded.origin("resource.service.name").source, Source::kEnv);
  EXPECT_EQ(loaded.origin("resource.service.name").detail, "OTEL_SERVICE_NAME");
  const LoadedConfig by_list =
      load(yaml, {{"OTEL_RESOURCE_ATTRIBUTES", "service.name=unknown_service:tracecar"}});
  EXPECT_EQ(by_list.origin("resource.service.name").detail, "OTEL_RESOURCE_ATTRIBUTES");
  // The file's value equal to the default is the file's.
  const LoadedConfig from_file = load("tracing:\n  service_name: unknown_service:tracecar\n");
  EXPECT_EQ(from_file.origin("resource.service.name").detail, "test.yaml:2");
  // A Kubernetes attribute is named after its variable.
  const LoadedConfig pod = load("", {{"K8S_POD_NAME", "p-1"}});
  EXPECT_EQ(pod.origin("resource.k8s.pod.name").detail, "K8S_POD_NAME (Kubernetes downward API)");
}

// "%00" would cut the value wherever it is written as a C string: the variable is malformed,
// discarded whole with a warning; the file's value with a control character is an error.
TEST(ProxyConfigResource, ControlCharactersAreRefusedNotTruncated) {
  const LoadedConfig loaded = load("", {{"OTEL_RESOURCE_ATTRIBUTES", "a=%00b,team=pay"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(attribute(loaded, "a"), "(absent)");
  EXPECT_EQ(attribute(loaded, "team"), "(absent)");
  EXPECT_THAT(loaded.warnings,
              ElementsAre("OTEL_RESOURCE_ATTRIBUTES: ignoring the whole value: malformed entry "
                          "\"a=%00b\" (want key=percent-encoded-value, separated by commas; a key "
                          "or value may not hold a control character)"));
  EXPECT_THAT(load("tracing:\n  resource_attributes:\n    a: \"x\\0y\"\n  service_name: "
                   "\"s\\nt\"\n")
                  .errors,
              ElementsAre("test.yaml:3:8: tracing.resource_attributes.a: must not hold a control "
                          "character (NUL, a newline...)",
                          "test.yaml:4:17: tracing.service_name: must not hold a control character "
                          "(NUL, a newline...)"));
  // What still holds one (a variable is not decoded) is printed escaped, on one line.
  const LoadedConfig tab = load("", {{"OTEL_SERVICE_NAME", "a\tb\x01"}});
  EXPECT_THAT(formatEffectiveConfig(tab), HasSubstr("resource.service.name: a\\x09b\\x01 "));
}

// OTEL_TRACES_EXPORTER with an empty name is an error, as OTEL_PROPAGATORS with one is: "," names
// no exporter, and is not taken for the file's choice.
TEST(ProxyConfigErrors, AnEmptyExporterNameIsAnError) {
  for (const char* value : {",", "otlp,", "none,,none"}) {
    const LoadedConfig loaded = load("exporter:\n  type: none\n", {{"OTEL_TRACES_EXPORTER", value}});
    EXPECT_THAT(loaded.errors, ElementsAre("OTEL_TRACES_EXPORTER: empty exporter name in \"" +
                                           std::string(value) + "\""));
  }
  EXPECT_THAT(load("", {{"OTEL_PROPAGATORS", ","}}).errors,
              ElementsAre("OTEL_PROPAGATORS: empty propagator name in \",\""));
}

TEST(ProxyConfigErrors, AnEmptyConfigFileNameIsNamedAsTheFlag) {
  ConfigFlags flags;
  flags.config_file = "";
  ConfigInputs inputs;
  inputs.env = exporter::mapEnvironment({});
  inputs.cpu = fourCpus();
  EXPECT_THAT(loadConfig(flags, inputs).errors, ElementsAre("--config: the file name is empty"));
}

// A word that is not a keyword of --upstream is named as one of the three things it may be.
TEST(ProxyConfigErrors, AnUpstreamWithoutAPortNamesTheKeywords) {
  ConfigFlags flags;
  flags.upstream = "hots";
  EXPECT_THAT(loadWithoutFile({}, flags).errors,
              ElementsAre("--upstream: \"hots\": not original_destination, host or HOST:PORT (a "
                          "fixed upstream, e.g. egress.internal:3128)"));
  flags.upstream = "egress.internal:3128";
  EXPECT_TRUE(loadWithoutFile({}, flags).ok());
}

TEST(ProxyConfigPrecedence, EnvResourceServiceNameBeatsFileServiceName) {
  const LoadedConfig loaded = load("tracing:\n  service_name: checkout\n",
                                   {{"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env"}});
  EXPECT_EQ(attribute(loaded, "service.name"), "from-env");
}

TEST(ProxyConfigPrecedence, FileEndpointSelectsOtlpAndGetsTheSignalPath) {
  const LoadedConfig loaded = load(
      "exporter:\n  endpoint: http://collector:4318\n  protocol: http/json\n  timeout: 2s\n"
      "  compression: gzip\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  const exporter::ExporterSettings& s = loaded.config.exporter.settings;
  EXPECT_EQ(s.kind, exporter::ExporterKind::kOtlp);
  EXPECT_EQ(s.otlp.endpoint.url(), "http://collector:4318/v1/traces");
  EXPECT_EQ(s.otlp.protocol, exporter::OtlpProtocol::kHttpJson);
  EXPECT_EQ(s.otlp.timeout, 2s);
  EXPECT_EQ(s.otlp.compression, exporter::Compression::kGzip);
}

TEST(ProxyConfigPrecedence, FileGrpcEndpointIsUsedAsGiven) {
  const LoadedConfig loaded =
      load("exporter:\n  endpoint: http://collector:4317\n  protocol: grpc\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  const exporter::ExporterSettings& s = loaded.config.exporter.settings;
  EXPECT_EQ(s.kind, exporter::ExporterKind::kOtlp);
  EXPECT_EQ(s.otlp.protocol, exporter::OtlpProtocol::kGrpc);
  EXPECT_EQ(s.otlp.endpoint.url(), "http://collector:4317/");
  EXPECT_EQ(loaded.origins.at("exporter.traces_endpoint").detail.find("v1/traces"),
            std::string::npos);
}

TEST(ProxyConfigPrecedence, EitherEndpointVariableHidesBothFileEndpoints) {
  const LoadedConfig loaded = load("exporter:\n  traces_endpoint: http://file:4318/custom\n",
                                   {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"}});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.exporter.settings.otlp.endpoint.url(), "http://env:4318/v1/traces");
  EXPECT_EQ(loaded.origin("exporter.traces_endpoint").source, Source::kEnv);
}

TEST(ProxyConfigPrecedence, ExporterHeadersMergeWithEnvWinningPerKey) {
  const LoadedConfig loaded = load(
      "exporter:\n  endpoint: http://c:4318\n  headers:\n    x-tenant: a b\n"
      "    authorization: from-file\n",
      {{"OTEL_EXPORTER_OTLP_HEADERS", "authorization=from-env"}});
  ASSERT_TRUE(loaded.ok());
  using Headers = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(loaded.config.exporter.settings.otlp.headers,
            (Headers{{"x-tenant", "a b"}, {"authorization", "from-env"}}));
}

TEST(ProxyConfigPrecedence, GeneralAttributeVariableHidesTheFileLimit) {
  const std::string yaml =
      "tracing:\n  span_attribute_count_limit: 10\n  span_attribute_value_length_limit: 64\n";
  const LoadedConfig from_file = load(yaml);
  EXPECT_EQ(from_file.config.tracing.attribute_limits.count, 10u);
  EXPECT_EQ(from_file.config.tracing.attribute_limits.value_length, 64u);
  const LoadedConfig from_env = load(yaml, {{"OTEL_ATTRIBUTE_COUNT_LIMIT", "20"}});
  EXPECT_EQ(from_env.config.tracing.attribute_limits.count, 20u);
  EXPECT_EQ(from_env.origin("tracing.span_attribute_count_limit").detail,
            "OTEL_ATTRIBUTE_COUNT_LIMIT");
  const LoadedConfig unlimited = load("tracing:\n  span_attribute_value_length_limit: unlimited\n");
  EXPECT_EQ(unlimited.config.tracing.attribute_limits.value_length,
            std::numeric_limits<size_t>::max());
}

TEST(ProxyConfigPrecedence, FileExporterTypeAndConsolePath) {
  const LoadedConfig loaded = load("exporter:\n  type: none\n");
  EXPECT_EQ(loaded.config.exporter.settings.kind, exporter::ExporterKind::kNone);
  const LoadedConfig console =
      load("exporter:\n  console_path: /tmp/spans.jsonl\n", {{"OTEL_TRACES_EXPORTER", "console"}});
  EXPECT_EQ(console.config.exporter.settings.console_path, "/tmp/spans.jsonl");
  const LoadedConfig env_wins =
      load("exporter:\n  type: none\n", {{"OTEL_TRACES_EXPORTER", "console"}});
  EXPECT_EQ(env_wins.config.exporter.settings.kind, exporter::ExporterKind::kConsole);
}

TEST(ProxyConfigPrecedence, FlagsOverrideFileAndEnv) {
  ConfigFlags flags;
  flags.inbound = "127.0.0.1:9006";
  flags.app = "[::1]:9090";
  flags.workers = "2";
  flags.upstream = "egress.local:3128";
  const LoadedConfig loaded =
      load("listeners:\n  inbound: 0.0.0.0:7000\nupstreams:\n  app: 127.0.0.1:7080\nworkers: 8\n",
           {}, flags);
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.listeners.inbound.toString(), "127.0.0.1:9006");
  EXPECT_EQ(loaded.config.upstreams.app.toString(), "[::1]:9090");
  EXPECT_EQ(loaded.config.workers, 2u);
  EXPECT_EQ(loaded.config.upstreams.outbound_mode, OutboundMode::kUpstream);
  EXPECT_EQ(loaded.config.upstreams.outbound_upstream.toString(), "egress.local:3128");
  EXPECT_EQ(loaded.origin("listeners.inbound").source, Source::kFlag);
  EXPECT_EQ(loaded.origin("listeners.inbound").detail, "--inbound");
  EXPECT_EQ(loaded.origin("workers").detail, "--workers");
}

TEST(ProxyConfigPrecedence, UpstreamFlagHostRestoresHostMode) {
  ConfigFlags flags;
  flags.upstream = "host";
  const LoadedConfig loaded = load("upstreams:\n  outbound: 10.0.0.1:80\n", {}, flags);
  EXPECT_EQ(loaded.config.upstreams.outbound_mode, OutboundMode::kHost);
}

TEST(ProxyConfigTransparent, FileSetsTheModesAndTheSniffTimeout) {
  const LoadedConfig loaded = load(
      "upstreams:\n  inbound: app\n  outbound: host\ntimeouts:\n  sniff: 250ms\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.upstreams.inbound_mode, InboundMode::kApp);
  EXPECT_EQ(loaded.config.upstreams.outbound_mode, OutboundMode::kHost);
  EXPECT_EQ(loaded.config.timeouts.sniff, 250ms);
  EXPECT_EQ(loaded.origin("timeouts.sniff").source, Source::kFile);
  const std::string text = formatEffectiveConfig(loaded);
  EXPECT_THAT(text, HasSubstr("upstreams.inbound: app"));
  EXPECT_THAT(text, HasSubstr("upstreams.outbound: host"));
  EXPECT_THAT(text, HasSubstr("timeouts.sniff: 250ms"));
}

// A byte tunnel idle for timeouts.tunnel_idle is closed: an hour by default, 0 for never.
TEST(ProxyConfigTimeouts, TunnelIdleDefaultsToAnHourAndTakesZero) {
  const LoadedConfig defaults = load("");
  ASSERT_TRUE(defaults.ok()) << defaults.errors.front();
  EXPECT_EQ(defaults.config.timeouts.tunnel_idle, 1h);
  EXPECT_THAT(formatEffectiveConfig(defaults), HasSubstr("timeouts.tunnel_idle: 1h"));
  const LoadedConfig never = load("timeouts:\n  tunnel_idle: 0\n");
  ASSERT_TRUE(never.ok()) << never.errors.front();
  EXPECT_EQ(never.config.timeouts.tunnel_idle, 0ms);
  EXPECT_EQ(never.origin("timeouts.tunnel_idle").source, Source::kFile);
  EXPECT_EQ(dataPathSettingsFrom(never.config).timeouts.tunnel_idle, 0ms);
  // Printed as what it means, as the exporter's 0 timeouts are.
  EXPECT_THAT(formatEffectiveConfig(never), HasSubstr("timeouts.tunnel_idle: 0 (never) "));
  const LoadedConfig minutes = load("timeouts:\n  tunnel_idle: 5m\n");
  ASSERT_TRUE(minutes.ok()) << minutes.errors.front();
  EXPECT_EQ(dataPathSettingsFrom(minutes.config).timeouts.tunnel_idle, 5min);
  const LoadedConfig bad = load("timeouts:\n  tunnel_idle: -1s\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.errors.front(), HasSubstr("timeouts.tunnel_idle"));
}

TEST(ProxyConfigTransparent, OriginalDestinationFromFileAndFlag) {
  LoadedConfig loaded = load("upstreams:\n  outbound: original_destination\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.upstreams.outbound_mode, OutboundMode::kOriginalDestination);
  ConfigFlags flags;
  flags.upstream = "original_destination";
  loaded = load("upstreams:\n  outbound: 10.0.0.1:80\n", {}, flags);
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.upstreams.outbound_mode, OutboundMode::kOriginalDestination);
  EXPECT_EQ(loaded.origin("upstreams.outbound").detail, "--upstream");
  EXPECT_THAT(formatEffectiveConfig(loaded),
              HasSubstr("upstreams.outbound: original_destination"));
}

TEST(ProxyConfigTransparent, BadInboundModeIsAnError) {
  const LoadedConfig loaded = load("upstreams:\n  inbound: port\n");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0],
            "test.yaml:2:12: upstreams.inbound: must be original_port or app, got \"port\"");
}

TEST(ProxyConfigPrecedence, WorkersAutoFlagOverridesFileCount) {
  ConfigFlags flags;
  flags.workers = "auto";
  const LoadedConfig loaded = load("workers: 8\n", {}, flags);
  EXPECT_EQ(loaded.config.workers, 4u);
  const LoadedConfig from_file = load("workers: auto\n");
  EXPECT_EQ(from_file.config.workers, 4u);
  EXPECT_EQ(from_file.origin("workers").source, Source::kFile);
}

TEST(ProxyConfigPrecedence, RouteFlagsReplaceFileRoutesAndCompile) {
  ConfigFlags flags;
  flags.routes = {"/orders/{id}", "/static/{path...}"};
  const LoadedConfig loaded = load("routes:\n  - /users/{id}\n", {}, flags);
  ASSERT_TRUE(loaded.ok());
  EXPECT_THAT(loaded.config.tracing.routes, ElementsAre("/orders/{id}", "/static/{path...}"));
  const auto match = loaded.config.tracing.route_matcher.match("/static/css/site.css");
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->route, "/static/{path...}");
  EXPECT_FALSE(loaded.config.tracing.route_matcher.match("/users/1").has_value());
}

TEST(ProxyConfigPrecedence, FileRoutesCompileInOrder) {
  const LoadedConfig loaded = load("routes:\n  - /users/me\n  - /users/{id}\n");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.tracing.route_matcher.match("/users/me")->route, "/users/me");
  EXPECT_EQ(loaded.config.tracing.route_matcher.match("/users/7")->route, "/users/{id}");
}

TEST(ProxyConfigPrecedence, ApplyFlagsLayersOnALoadedConfig) {
  LoadedConfig loaded = load("listeners:\n  admin: 127.0.0.1:9901\n");
  ConfigFlags flags;
  flags.admin = "127.0.0.1:9902";
  applyFlags(flags, loaded);
  EXPECT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.listeners.admin.port, 9902);
}

// ---------------------------------------------------------------------------------------------
// Errors: key path, file name and line, all of them

TEST(ProxyConfigErrors, UnknownKeysAreErrorsWithAHint) {
  const LoadedConfig loaded = load(
      "listners:\n"
      "  inbound: 0.0.0.0:1\n"
      "limits:\n"
      "  request:\n"
      "    max_header_byte: 10\n"
      "    colour: blue\n");
  EXPECT_THAT(loaded.errors,
              ElementsAre("test.yaml:1:1: listners: unknown key; did you mean \"listeners\"?",
                          "test.yaml:5:5: limits.request.max_header_byte: unknown key; did you "
                          "mean \"max_header_bytes\"?",
                          "test.yaml:6:5: limits.request.colour: unknown key (known here: "
                          "max_header_bytes, max_headers, max_uri_length)"));
}

TEST(ProxyConfigErrors, ResponseLimitsHaveNoUriLength) {
  const LoadedConfig loaded = load("limits:\n  response:\n    max_uri_length: 10\n");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_THAT(loaded.errors[0],
              HasSubstr("test.yaml:3:5: limits.response.max_uri_length: unknown key"));
}

TEST(ProxyConfigErrors, DuplicateKeysAreErrors) {
  const LoadedConfig loaded = load("workers: 2\nworkers: 3\n");
  EXPECT_THAT(loaded.errors,
              ElementsAre("test.yaml:2:1: workers: duplicate key (first set on line 1)"));
}

TEST(ProxyConfigErrors, EveryErrorIsCollected) {
  ConfigFlags flags;
  flags.admin = "localhost:1";
  const LoadedConfig loaded = load(
      "listeners:\n"
      "  inbound: 0.0.0.0:99999\n"
      "limits:\n"
      "  request:\n"
      "    max_header_bytes: abc\n"
      "timeouts:\n"
      "  drain: soon\n"
      "workers: many\n",
      {{"OTEL_PROPAGATORS", "none,b3"}, {"OTEL_EXPORTER_OTLP_ENDPOINT", "nope"},
       {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k"}},
      flags);
  EXPECT_THAT(
      loaded.errors,
      ElementsAre(
          "test.yaml:2:12: listeners.inbound: \"0.0.0.0:99999\": port 99999 is out of range "
          "0..65535",
          "test.yaml:5:23: limits.request.max_header_bytes: must be a positive integer, got "
          "\"abc\"",
          "test.yaml:7:10: timeouts.drain: must be a duration like 500ms, 10s or 1m (a bare number "
          "is milliseconds), got \"soon\"",
          "test.yaml:8:10: workers: must be \"auto\" or an integer in 1..1024, got \"many\"",
          "OTEL_PROPAGATORS: \"none\" cannot be combined with other propagators",
          "OTEL_EXPORTER_OTLP_ENDPOINT=\"nope\" is not a usable endpoint: not an absolute URL: "
          "want http(s)://host[:port][/path]",
          "OTEL_EXPORTER_OTLP_CLIENT_KEY is set but OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is not: "
          "mutual TLS needs both the client key and the client certificate",
          "--admin: \"localhost:1\": a listen address must be an IP address (0.0.0.0, "
          "127.0.0.1, [::]...), not a name"));
}

TEST(ProxyConfigErrors, YamlSyntaxErrorHasItsLine) {
  const LoadedConfig loaded = load("listeners:\n  inbound: [0.0.0.0:1\nworkers: 2\n");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_THAT(loaded.errors[0], HasSubstr("test.yaml:3:"));
  EXPECT_THAT(loaded.errors[0], HasSubstr("invalid YAML"));
}

TEST(ProxyConfigErrors, FileMustBeOneMap) {
  EXPECT_THAT(load("- a\n- b\n").errors,
              ElementsAre(HasSubstr("test.yaml:1:1: the file must be a map of sections")));
  EXPECT_THAT(load("workers: 1\n---\nworkers: 2\n").errors,
              ElementsAre(HasSubstr("more than one YAML document")));
  EXPECT_THAT(load("limits: 5\n").errors,
              ElementsAre("test.yaml:1:9: limits: must be a map of keys to values, got \"5\""));
}

TEST(ProxyConfigErrors, MissingFileIsNamed) {
  ConfigInputs inputs;
  inputs.env = exporter::mapEnvironment({});
  inputs.cpu = fourCpus();
  ConfigFlags flags;
  flags.config_file = "/nonexistent/tracecar.yaml";
  const LoadedConfig loaded = loadConfig(flags, inputs);
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_THAT(loaded.errors[0], HasSubstr("/nonexistent/tracecar.yaml: cannot read"));
}

TEST(ProxyConfigErrors, ReadsARealFile) {
  const std::string path = ::testing::TempDir() + "/config_test_real.yaml";
  std::ofstream(path) << "workers: 5\n";
  ConfigInputs inputs;
  inputs.env = exporter::mapEnvironment({});
  inputs.cpu = fourCpus();
  ConfigFlags flags;
  flags.config_file = path;
  const LoadedConfig loaded = loadConfig(flags, inputs);
  EXPECT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.workers, 5u);
  EXPECT_EQ(loaded.origin("workers").detail, path + ":1");
  std::filesystem::remove(path);
}

struct ErrorCase {
  const char* yaml;
  const char* error;
};

class ProxyConfigErrorPath : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ProxyConfigErrorPath, NamesFileLineAndKey) {
  const LoadedConfig loaded = load(GetParam().yaml);
  EXPECT_THAT(loaded.errors, ElementsAre(GetParam().error)) << GetParam().yaml;
  EXPECT_THAT(loaded.warnings, IsEmpty()) << "a file error is not reported twice";
}

INSTANTIATE_TEST_SUITE_P(
    EveryKey, ProxyConfigErrorPath,
    ::testing::Values(
        ErrorCase{"listeners:\n  inbound: localhost:1\n",
                  "test.yaml:2:12: listeners.inbound: \"localhost:1\": a listen address must be "
                  "an IP address (0.0.0.0, 127.0.0.1, [::]...), not a name"},
        ErrorCase{"listeners:\n  outbound: 127.0.0.1\n",
                  "test.yaml:2:13: listeners.outbound: \"127.0.0.1\": missing \":PORT\"; want "
                  "ADDRESS:PORT, e.g. 0.0.0.0:15006 or [::]:15006"},
        ErrorCase{"listeners:\n  admin: [::1]:80\n",
                  "test.yaml:2:15: invalid YAML: end of map not found (an IPv6 address must be "
                  "quoted, as in \"[::1]:15006\")"},
        ErrorCase{"routes: [/users/{id}, /x]\n",
                  "test.yaml:1:17: invalid YAML: end of sequence flow not found (a route "
                  "template in a [...] list must be quoted, as in [\"/users/{id}\"], or written "
                  "one per line after \"- \")"},
        ErrorCase{"listeners:\n  admin: [a, b]\n",
                  "test.yaml:2:3: listeners.admin: must be an address like 127.0.0.1:8080, got "
                  "a list"},
        ErrorCase{"upstreams:\n  app: 127.0.0.1:0\n",
                  "test.yaml:2:8: upstreams.app: \"127.0.0.1:0\": port 0 is out of range 1..65535"},
        // Neither a keyword nor an address: both named.
        ErrorCase{"upstreams:\n  outbound: hst\n",
                  "test.yaml:2:13: upstreams.outbound: \"hst\": not original_destination, host "
                  "or HOST:PORT (a fixed upstream, e.g. egress.internal:3128)"},
        ErrorCase{"upstreams:\n  outbound: \"app.local:\"\n",
                  "test.yaml:2:13: upstreams.outbound: \"app.local:\": the port must be a number "
                  "in 1..65535"},
        ErrorCase{"workers: 1025\n", "test.yaml:1:10: workers: must be at most 1024, got \"1025\""},
        // auto is valid too, and the message says so.
        ErrorCase{"workers:\n",
                  "test.yaml:1:1: workers: must be \"auto\" or an integer in 1..1024, got no value"},
        ErrorCase{"workers: \"\"\n",
                  "test.yaml:1:10: workers: must be \"auto\" or an integer in 1..1024, got \"\""},
        ErrorCase{"limits:\n  request:\n    max_headers: -1\n",
                  "test.yaml:3:18: limits.request.max_headers: must be a positive integer, got "
                  "\"-1\""},
        ErrorCase{"limits:\n  request:\n    max_uri_length: 1.5\n",
                  "test.yaml:3:21: limits.request.max_uri_length: must be a positive integer, "
                  "got \"1.5\""},
        ErrorCase{"limits:\n  response:\n    max_header_bytes: 0\n",
                  "test.yaml:3:23: limits.response.max_header_bytes: must be a positive "
                  "integer, got \"0\""},
        ErrorCase{"limits:\n  response:\n    max_headers: 65537\n",
                  "test.yaml:3:18: limits.response.max_headers: must be at most 65536, got "
                  "\"65537\""},
        ErrorCase{"limits:\n  baggage:\n    max_bytes: 8191\n",
                  "test.yaml:3:16: limits.baggage.max_bytes: baggage max bytes 8191 is below "
                  "the W3C minimum of 8192"},
        ErrorCase{"limits:\n  baggage:\n    max_members: 63\n",
                  "test.yaml:3:18: limits.baggage.max_members: baggage max members 63 is below "
                  "the W3C minimum of 64"},
        ErrorCase{"limits:\n  baggage:\n    policy: drop\n",
                  "test.yaml:3:13: limits.baggage.policy: must be truncate or reject, got "
                  "\"drop\""},
        ErrorCase{"limits:\n  tracestate:\n    max_length: 511\n",
                  "test.yaml:3:17: limits.tracestate.max_length: tracestate max length 511 is "
                  "below the W3C minimum of 512 characters"},
        ErrorCase{"limits:\n  tracestate:\n    policy: [reject]\n",
                  "test.yaml:3:5: limits.tracestate.policy: must be truncate or reject, got a "
                  "list"},
        ErrorCase{"timeouts:\n  request_header: 0\n",
                  "test.yaml:2:19: timeouts.request_header: must be between 1ms and "
                  "2147483647ms, got \"0\""},
        ErrorCase{"timeouts:\n  downstream_idle: 1y\n",
                  "test.yaml:2:20: timeouts.downstream_idle: must be a duration like 500ms, 10s "
                  "or 1m (a bare number is milliseconds), got \"1y\": unknown unit \"y\" (ms, s, "
                  "m or h)"},
        ErrorCase{"timeouts:\n  upstream_idle: -5s\n",
                  "test.yaml:2:18: timeouts.upstream_idle: must be a duration like 500ms, 10s or "
                  "1m (a bare number is milliseconds), got \"-5s\""},
        ErrorCase{"timeouts:\n  upstream_connect: 1m30\n",
                  "test.yaml:2:21: timeouts.upstream_connect: must be a duration like 500ms, 10s "
                  "or 1m (a bare number is milliseconds), got \"1m30\": every number needs a "
                  "unit"},
        ErrorCase{"timeouts:\n  upstream_response: 600h\n",
                  "test.yaml:2:22: timeouts.upstream_response: must be between 1ms and "
                  "2147483647ms, got \"600h\""},
        ErrorCase{"timeouts:\n  drain: {s: 1}\n",
                  "test.yaml:2:3: timeouts.drain: must be a duration like 500ms, 10s or 1m, got "
                  "a map"},
        ErrorCase{"routes: /users/{id}\n",
                  "test.yaml:1:9: routes: must be a list, got \"/users/{id}\""},
        ErrorCase{"routes:\n  - /users/{id}\n  - users\n",
                  "test.yaml:3:5: routes[1]: route template \"users\", position 0: does not "
                  "start with '/'"},
        ErrorCase{"routes:\n  - \"\"\n", "test.yaml:2:5: routes[0]: must be a non-empty string"},
        ErrorCase{"tracing:\n  propagators: [tracecontext, none]\n",
                  "test.yaml:2:3: tracing.propagators: \"none\" cannot be combined with other "
                  "propagators"},
        ErrorCase{"tracing:\n  service_name: \"\"\n",
                  "test.yaml:2:17: tracing.service_name: must be a non-empty string"},
        ErrorCase{"tracing:\n  resource_attributes: [a]\n",
                  "test.yaml:2:3: tracing.resource_attributes: must be a map of names to "
                  "values, got a list"},
        ErrorCase{"tracing:\n  resource_attributes:\n    team: [a]\n",
                  "test.yaml:3:5: tracing.resource_attributes.team: must be a string, got a "
                  "list"},
        ErrorCase{"tracing:\n  route_cardinality_limit: 65537\n",
                  "test.yaml:2:28: tracing.route_cardinality_limit: must be at most 65536, got "
                  "\"65537\""},
        ErrorCase{"tracing:\n  route_cardinality_limit: -99999999999999999999\n",
                  "test.yaml:2:28: tracing.route_cardinality_limit: must be a non-negative "
                  "integer, got \"-99999999999999999999\""},
        ErrorCase{"tracing:\n  route_cardinality_limit: 99999999999999999999\n",
                  "test.yaml:2:28: tracing.route_cardinality_limit: must be at most 65536, got "
                  "\"99999999999999999999\""},
        ErrorCase{"tracing:\n  redact_all_query_values: yes\n",
                  "test.yaml:2:28: tracing.redact_all_query_values: must be true or false, got "
                  "\"yes\""},
        ErrorCase{"tracing:\n  sensitive_query_keys: [token, \"\"]\n",
                  "test.yaml:2:33: tracing.sensitive_query_keys[1]: must be a non-empty string"},
        ErrorCase{"tracing:\n  span_attribute_count_limit: -1\n",
                  "test.yaml:2:31: tracing.span_attribute_count_limit: must be a non-negative "
                  "integer, got \"-1\""},
        ErrorCase{"tracing:\n  span_attribute_value_length_limit: lots\n",
                  "test.yaml:2:38: tracing.span_attribute_value_length_limit: must be a "
                  "non-negative integer, got \"lots\""},
        ErrorCase{"exporter:\n  type: jaeger\n",
                  "test.yaml:2:9: exporter.type: must be otlp or console or none, got \"jaeger\""},
        ErrorCase{"exporter:\n  console_path:\n",
                  "test.yaml:2:3: exporter.console_path: must be a non-empty string, got no "
                  "value"},
        ErrorCase{"exporter:\n  endpoint: collector:4318\n",
                  "test.yaml:2:13: exporter.endpoint: not a usable endpoint: not an absolute "
                  "URL: want http(s)://host[:port][/path]"},
        ErrorCase{"exporter:\n  traces_endpoint: http://u:p@c/v1/traces\n",
                  "test.yaml:2:20: exporter.traces_endpoint: not a usable endpoint: userinfo "
                  "(user:password@) is not allowed; send credentials in headers"},
        ErrorCase{"exporter:\n  protocol: h2\n",
                  "test.yaml:2:13: exporter.protocol: must be http/protobuf or http/json or grpc, "
                  "got \"h2\""},
        ErrorCase{"exporter:\n  headers:\n    bad name: x\n",
                  "test.yaml:3:15: exporter.headers.bad name: the key is not an HTTP header "
                  "name (token)"},
        ErrorCase{"exporter:\n  headers:\n    X-Api-Key: a\n    x-api-key: b\n",
                  "test.yaml:4:16: exporter.headers.x-api-key: header \"x-api-key\" is given "
                  "twice (as \"X-Api-Key\"; field names are case-insensitive)"},
        ErrorCase{"exporter:\n  headers:\n    content-type: text/plain\n",
                  "test.yaml:3:19: exporter.headers.content-type: the exporter sets this header "
                  "itself"},
        ErrorCase{"exporter:\n  timeout: 10 s\n",
                  "test.yaml:2:12: exporter.timeout: must be a duration like 500ms, 10s or 1m (a "
                  "bare number is milliseconds), got \"10 s\": unexpected ' '"},
        ErrorCase{"exporter:\n  compression: zstd\n",
                  "test.yaml:2:16: exporter.compression: must be gzip or none, got \"zstd\""},
        ErrorCase{"exporter:\n  certificate: \"\"\n",
                  "test.yaml:2:16: exporter.certificate: must be a non-empty string"},
        ErrorCase{"exporter:\n  client_key: [a]\n",
                  "test.yaml:2:3: exporter.client_key: must be a non-empty string, got a list"},
        ErrorCase{"exporter:\n  client_certificate: {a: b}\n",
                  "test.yaml:2:3: exporter.client_certificate: must be a non-empty string, got "
                  "a map"},
        ErrorCase{"exporter:\n  batch:\n    schedule_delay: 600h\n",
                  "test.yaml:3:21: exporter.batch.schedule_delay: must be between 0ms and "
                  "2147483647ms, got \"600h\""},
        ErrorCase{"exporter:\n  timeout: -1s\n",
                  "test.yaml:2:12: exporter.timeout: must be a duration like 500ms, 10s or 1m (a "
                  "bare number is milliseconds), got \"-1s\""},
        ErrorCase{"exporter:\n  protocol: grpc\n  endpoint: http://x:1\n  client_key: /k\n",
                  "test.yaml:4:15: exporter.client_key: client_key and client_certificate "
                  "(mutual TLS) go together; client_certificate is missing (neither in the file "
                  "nor in OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE)"},
        ErrorCase{"exporter: {endpoint: \"https://x\", client_certificate: /c}\n",
                  "test.yaml:1:55: exporter.client_certificate: client_key and "
                  "client_certificate (mutual TLS) go together; client_key is missing (neither "
                  "in the file nor in OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_KEY)"},
        ErrorCase{"tracing:\n  propagators: \"\"\n",
                  "test.yaml:2:16: tracing.propagators: must be a propagator name, a "
                  "comma-separated string or a list of them (none or [] for no propagation), "
                  "got \"\""},
        ErrorCase{"tracing:\n  propagators: \" \"\n",
                  "test.yaml:2:16: tracing.propagators: must be a propagator name, a "
                  "comma-separated string or a list of them (none or [] for no propagation), "
                  "got \" \""},
        ErrorCase{"tracing:\n  propagators:\n",
                  "test.yaml:2:3: tracing.propagators: must be a propagator name, a "
                  "comma-separated string or a list of them (none or [] for no propagation), "
                  "got no value"},
        ErrorCase{"tracing:\n  propagators: [b3, xray]\n",
                  "test.yaml:2:21: tracing.propagators[1]: unknown propagator \"xray\" (known: "
                  "tracecontext, baggage, b3, b3multi, jaeger, none)"},
        ErrorCase{"tracing:\n  sdk_disabled: yes\n",
                  "test.yaml:2:17: tracing.sdk_disabled: must be true or false, got \"yes\""},
        ErrorCase{"exporter:\n  batch:\n    export_timeout: forever\n",
                  "test.yaml:3:21: exporter.batch.export_timeout: must be a duration like "
                  "500ms, 10s or 1m (a bare number is milliseconds), got \"forever\""},
        ErrorCase{"exporter:\n  batch:\n    max_queue_size: 1048577\n",
                  "test.yaml:3:21: exporter.batch.max_queue_size: must be at most 1048576, got "
                  "\"1048577\""},
        ErrorCase{"exporter:\n  thread_nice: 20\n",
                  "test.yaml:2:16: exporter.thread_nice: must be at most 19, got \"20\""},
        ErrorCase{"exporter:\n  thread_nice: -1\n",
                  "test.yaml:2:16: exporter.thread_nice: must be a non-negative integer, got "
                  "\"-1\""},
        ErrorCase{"exporter:\n  batch:\n    max_queue_size: 10\n    max_export_batch_size: 11\n",
                  "test.yaml:4: exporter.batch.max_export_batch_size: must not be larger than "
                  "exporter.batch.max_queue_size (10)"},
        ErrorCase{"sampling:\n  rules:\n    - /healthz=never\n    - GET /x=sometimes\n",
                  "test.yaml:4:7: sampling.rules[1]: `GET /x=sometimes`: unknown sampler "
                  "`sometimes`; expected always, never, a ratio in [0, 1] or a percent"},
        ErrorCase{"sampling:\n  rules: \"/healthz=never, /a/*/b=always\"\n",
                  "test.yaml:2:10: sampling.rules: element 2 (`/a/*/b=always`): route pattern "
                  "`/a/*/b`: `*` is allowed only as a final `/*` segment"},
        ErrorCase{"sampling:\n  sampler: jaeger_remote\n",
                  "test.yaml:2:12: sampling.sampler: unknown sampler `jaeger_remote`; expected "
                  "always_on, always_off, traceidratio, parentbased_always_on, "
                  "parentbased_always_off or parentbased_traceidratio"},
        ErrorCase{"sampling:\n  ratio: 1.5\n",
                  "test.yaml:2:10: sampling.ratio: `1.5` is outside [0, 1]"},
        ErrorCase{"sampling:\n  rate_limit: -1\n",
                  "test.yaml:2:15: sampling.rate_limit: traces per second must be a number > 0, "
                  "got -1"},
        ErrorCase{"sampling:\n  rate_limit_burst: 5\n",
                  "test.yaml:2:21: sampling.rate_limit_burst: needs sampling.rate_limit"},
        ErrorCase{"sampling:\n  threshold_precision: 15\n",
                  "test.yaml:2:24: sampling.threshold_precision: must be at most 14, got \"15\""},
        ErrorCase{"sampling:\n  rules: [\"/a=always+limit\"]\n",
                  "sampling.rules (set at test.yaml:2): sampling rule 1 (`/a=always+limit`): "
                  "`+limit` needs a rate limit (traces per second) to be configured"},
        ErrorCase{"tracing:\n  trust_incoming_context: \"10.0.0.0/8, 10.1.2.3/8\"\n",
                  "test.yaml:2:27: tracing.trust_incoming_context: element 2 (`10.1.2.3/8`): "
                  "`10.1.2.3/8` has bits set below its /8 prefix"},
        ErrorCase{"tracing:\n  trust_incoming_context:\n    - 10.0.0.0/8\n    - 300.1.1.1\n",
                  "test.yaml:4:7: tracing.trust_incoming_context[1]: `300.1.1.1`: `300.1.1.1` is "
                  "not an IPv4 or IPv6 address"},
        ErrorCase{"tracing:\n  drop_untrusted_baggage: maybe\n",
                  "test.yaml:2:27: tracing.drop_untrusted_baggage: must be true or false, got "
                  "\"maybe\""},
        ErrorCase{"tracing:\n  client_url_attributes: 1\n",
                  "test.yaml:2:26: tracing.client_url_attributes: must be true or false, got "
                  "\"1\""},
        ErrorCase{"tracing:\n  known_methods: [GET, \"PU T\"]\n",
                  "test.yaml:2:24: tracing.known_methods[1]: \"PU T\" is not a valid method "
                  "name"},
        ErrorCase{"tracing:\n  known_methods:\n    - GET\n    - GET,POST\n",
                  "test.yaml:4:7: tracing.known_methods[1]: \"GET,POST\" is not a valid method "
                  "name"},
        ErrorCase{"tracing:\n  known_methods: \"GET,,PURGE\"\n",
                  "test.yaml:2:18: tracing.known_methods: element 2 (``): empty element"},
        ErrorCase{"tracing:\n  known_methods: []\n",
                  "test.yaml:2:3: tracing.known_methods: must be a list of HTTP methods (or one "
                  "comma-separated string of them); leave the key out for the defaults, got an "
                  "empty list"},
        ErrorCase{"tracing:\n  known_methods:\n",
                  "test.yaml:2:3: tracing.known_methods: must be a list of HTTP methods (or one "
                  "comma-separated string of them); leave the key out for the defaults, got no "
                  "value"},
        ErrorCase{"tracing:\n  known_methods: {GET: 1}\n",
                  "test.yaml:2:3: tracing.known_methods: must be a list, got a map"}));

// Every limit: accepted at its bound, refused one past it.
struct LimitCase {
  const char* section;
  const char* key;
  long long lowest;
  long long highest;
};

class ProxyConfigLimitBounds : public ::testing::TestWithParam<LimitCase> {};

TEST_P(ProxyConfigLimitBounds, AcceptsTheBoundsAndRefusesOnePast) {
  const LimitCase& c = GetParam();
  const auto yaml = [&c](long long value) {
    return std::string("limits:\n  ") + c.section + ":\n    " + c.key + ": " +
           std::to_string(value) + "\n";
  };
  EXPECT_TRUE(load(yaml(c.lowest)).ok()) << c.key << " " << c.lowest;
  EXPECT_TRUE(load(yaml(c.highest)).ok()) << c.key << " " << c.highest;
  EXPECT_FALSE(load(yaml(c.lowest - 1)).ok()) << c.key << " " << c.lowest - 1;
  EXPECT_FALSE(load(yaml(c.highest + 1)).ok()) << c.key << " " << c.highest + 1;
}

INSTANTIATE_TEST_SUITE_P(
    EveryLimit, ProxyConfigLimitBounds,
    ::testing::Values(LimitCase{"request", "max_header_bytes", 1, 16 * 1024 * 1024},
                      LimitCase{"request", "max_headers", 1, 65536},
                      LimitCase{"request", "max_uri_length", 1, 16 * 1024 * 1024},
                      LimitCase{"response", "max_header_bytes", 1, 16 * 1024 * 1024},
                      LimitCase{"response", "max_headers", 1, 65536},
                      // The W3C minimums are the floors.
                      LimitCase{"baggage", "max_members", 64, 16 * 1024 * 1024},
                      LimitCase{"baggage", "max_bytes", 8192, 16 * 1024 * 1024},
                      LimitCase{"tracestate", "max_length", 512, 16 * 1024 * 1024}));

TEST(ProxyConfigLimits, FileLimitsReachTheStructs) {
  const LoadedConfig loaded = load(
      "limits:\n"
      "  request: {max_header_bytes: 1000, max_headers: 10, max_uri_length: 100}\n"
      "  response: {max_header_bytes: 2000, max_headers: 20}\n"
      "  baggage: {max_members: 64, max_bytes: 8192, policy: reject}\n"
      "  tracestate: {max_length: 512, policy: reject}\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  const ProxyConfig& c = loaded.config;
  EXPECT_EQ(c.limits.request.max_header_bytes, 1000u);
  EXPECT_EQ(c.limits.request.max_header_count, 10u);
  EXPECT_EQ(c.limits.request.max_uri_length, 100u);
  EXPECT_EQ(c.limits.response.max_header_bytes, 2000u);
  EXPECT_EQ(c.limits.response.max_header_count, 20u);
  EXPECT_EQ(c.limits.baggage_policy, HeaderPolicy::kReject);
  EXPECT_EQ(c.limits.tracestate_policy, HeaderPolicy::kReject);
  EXPECT_TRUE(c.propagation.validate().ok());
}

// ---------------------------------------------------------------------------------------------
// Flags and settings that depend on each other

TEST(ProxyConfigFlags, BadFlagValuesAreNamed) {
  ConfigFlags flags;
  flags.inbound = "0.0.0.0";
  flags.workers = "0";
  flags.upstream = "[::1]";
  flags.routes = {"/ok", "/users/{id}/{id}"};
  const LoadedConfig loaded = loadWithoutFile({}, flags);
  EXPECT_THAT(loaded.errors,
              ElementsAre(HasSubstr("--inbound: \"0.0.0.0\": missing \":PORT\""),
                          "--upstream: \"[::1]\": missing \":PORT\"",
                          "--workers: must be \"auto\" or an integer in 1..1024, got \"0\"",
                          HasSubstr("--route: route template \"/users/{id}/{id}\", position 12: "
                                    "duplicate parameter name 'id'")));
}

TEST(ProxyConfigFlags, OverlappingListenersAreRefused) {
  ConfigFlags flags;
  flags.outbound = "127.0.0.1:15006";
  const LoadedConfig loaded = loadWithoutFile({}, flags);
  EXPECT_THAT(loaded.errors,
              ElementsAre("listeners.outbound: 127.0.0.1:15006 (set by --outbound) overlaps "
                          "listeners.inbound 0.0.0.0:15006 (the default)"));
}

TEST(ProxyConfigFlags, AppThatIsOurOwnListenerIsRefused) {
  const LoadedConfig loaded = load("upstreams:\n  app: 127.0.0.1:15006\n");
  EXPECT_THAT(loaded.errors,
              ElementsAre("upstreams.app: 127.0.0.1:15006 (set at test.yaml:2) is tracecar's own "
                          "listeners.inbound; requests would loop"));
}

// The same address however written: not by its text.
TEST(ProxyConfigFlags, AppReachingOurListenerByAnotherSpellingIsRefused) {
  struct Case {
    const char* inbound;
    const char* app;
    bool loops;
  };
  for (const Case& c : {Case{"127.0.0.1:25001", "localhost:25001", true},
                        Case{"127.0.0.1:25001", "LOCALHOST.:25001", true},
                        Case{"127.0.0.1:25001", "0.0.0.0:25001", true},
                        Case{"[::1]:25001", "localhost:25001", true},
                        Case{"[::1]:25001", "[::]:25001", true},
                        Case{"[::1]:25001", "[0:0:0:0:0:0:0:1]:25001", true},
                        Case{"127.0.0.1:25001", "[::ffff:127.0.0.1]:25001", true},
                        Case{"0.0.0.0:25001", "127.0.0.2:25001", true},
                        Case{"[::0]:25001", "localhost:25001", true},
                        Case{"127.0.0.1:25001", "127.0.0.2:25001", false},
                        Case{"127.0.0.1:25001", "localhost:25002", false},
                        Case{"127.0.0.1:25001", "app.example:25001", false},
                        Case{"[::1]:25001", "0.0.0.0:25001", false}}) {
    ConfigFlags flags;
    flags.inbound = c.inbound;
    flags.app = c.app;
    const LoadedConfig loaded = loadWithoutFile({}, flags);
    if (c.loops) {
      EXPECT_THAT(loaded.errors, ElementsAre(HasSubstr("is tracecar's own listeners.inbound; "
                                                       "requests would loop")))
          << c.inbound << " " << c.app;
    } else {
      EXPECT_THAT(loaded.errors, IsEmpty()) << c.inbound << " " << c.app;
    }
  }
}

TEST(ProxyConfigFlags, ListenersOverlapHoweverTheAddressIsWritten) {
  for (const auto& [inbound, admin] :
       std::vector<std::pair<const char*, const char*>>{{"[::0]:25010", "127.0.0.1:25010"},
                                                         {"[::1]:25010", "[0::1]:25010"},
                                                         {"[::ffff:127.0.0.1]:25010",
                                                          "127.0.0.1:25010"}}) {
    ConfigFlags flags;
    flags.inbound = inbound;
    flags.admin = admin;
    const LoadedConfig loaded = loadWithoutFile({}, flags);
    EXPECT_THAT(loaded.errors, ElementsAre(HasSubstr("listeners.admin: ")))
        << inbound << " " << admin;
  }
  ConfigFlags apart;
  apart.inbound = "127.0.0.1:25010";
  apart.admin = "127.0.0.2:25010";
  EXPECT_THAT(loadWithoutFile({}, apart).errors, IsEmpty());
}

TEST(ProxyConfigFlags, PortZeroListenersNeverOverlap) {
  ConfigFlags flags;
  flags.inbound = "127.0.0.1:0";
  flags.outbound = "127.0.0.1:0";
  flags.admin = "127.0.0.1:0";
  EXPECT_TRUE(loadWithoutFile({}, flags).ok());
}

TEST(ProxyConfigFlags, AddConfigFlagsParsesEveryOption) {
  CLI::App app;
  ConfigFlags flags;
  addConfigFlags(app, flags);
  std::vector<std::string> args = {
      "--route",   "/b",          "--workers",  "auto",        "--config", "t.yaml",
      "--inbound", "0.0.0.0:1",   "--outbound", "127.0.0.1:2", "--app",    "app:3",
      "--admin",   "127.0.0.1:4", "--upstream", "host",        "--route",  "/a",
      "--sampling-rules", "*=10%"};
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  app.parse(args);
  EXPECT_EQ(flags.config_file, "t.yaml");
  EXPECT_EQ(flags.inbound, "0.0.0.0:1");
  EXPECT_EQ(flags.outbound, "127.0.0.1:2");
  EXPECT_EQ(flags.app, "app:3");
  EXPECT_EQ(flags.admin, "127.0.0.1:4");
  EXPECT_EQ(flags.workers, "auto");
  EXPECT_EQ(flags.upstream, "host");
  EXPECT_THAT(flags.routes, ElementsAre("/b", "/a"));
  EXPECT_EQ(flags.sampling_rules, "*=10%");
}

// ---------------------------------------------------------------------------------------------
// Sampling and trust

TEST(ProxyConfigSampling, DefaultsAreParentBasedAlwaysOnTrustingEveryone) {
  const LoadedConfig loaded = loadWithoutFile();
  ASSERT_TRUE(loaded.ok());
  const ProxyConfig& c = loaded.config;
  EXPECT_EQ(c.sampling.sampler.kind, sampling::SamplerKind::kParentBasedAlwaysOn);
  EXPECT_TRUE(c.sampling.rules.empty());
  EXPECT_FALSE(c.sampling.rate_limit.has_value());
  EXPECT_EQ(c.sampling.threshold_precision, 4);
  EXPECT_TRUE(c.tracing.trust_incoming_context.trustsEveryone());
  EXPECT_FALSE(c.tracing.drop_untrusted_baggage);
}

TEST(ProxyConfigSampling, FileSectionReachesTheConfig) {
  const LoadedConfig loaded = load(
      "sampling:\n  sampler: ParentBased_TraceIdRatio\n  ratio: 0.25\n  rules:\n"
      "    - /healthz=never\n    - GET|HEAD /checkout/*=always\n    - \"*=10%+limit\"\n"
      "  rate_limit: 2.5\n  rate_limit_burst: 7\n  threshold_precision: 14\n"
      "tracing:\n  trust_incoming_context: [10.0.0.0/8, \"::1\"]\n"
      "  drop_untrusted_baggage: true\n  client_url_attributes: true\n"
      "  use_forwarded_headers: false\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  const ProxyConfig& c = loaded.config;
  EXPECT_EQ(c.sampling.sampler.kind, sampling::SamplerKind::kParentBasedTraceIdRatio);
  EXPECT_DOUBLE_EQ(c.sampling.sampler.ratio, 0.25);
  EXPECT_EQ(sampling::formatRules(c.sampling.rules),
            "/healthz=never, GET|HEAD /checkout/*=always, *=0.1+limit");
  ASSERT_TRUE(c.sampling.rate_limit.has_value());
  EXPECT_DOUBLE_EQ(c.sampling.rate_limit->traces_per_second, 2.5);
  EXPECT_EQ(c.sampling.rate_limit->burst, 7u);
  EXPECT_EQ(c.sampling.threshold_precision, 14);
  EXPECT_EQ(c.tracing.trust_incoming_context.toString(), "10.0.0.0/8, ::1/128");
  EXPECT_TRUE(c.tracing.drop_untrusted_baggage);
  EXPECT_TRUE(c.tracing.client_url_attributes);
  EXPECT_EQ(loaded.origin("tracing.client_url_attributes").detail, "test.yaml:14");
  EXPECT_FALSE(c.tracing.use_forwarded_headers);
  EXPECT_EQ(loaded.origin("tracing.use_forwarded_headers").detail, "test.yaml:15");
  // What the workers' tracer gets.
  EXPECT_FALSE(requestTracingConfigFrom(c).use_forwarded_headers);
  EXPECT_EQ(loaded.origin("sampling.sampler").detail, "test.yaml:2");
  EXPECT_EQ(loaded.origin("sampling.rules").detail, "test.yaml:4");
  EXPECT_EQ(loaded.origin("tracing.trust_incoming_context").detail, "test.yaml:12");
}

TEST(ProxyConfigSampling, EnvSamplerOverridesTheFile) {
  const LoadedConfig loaded =
      load("sampling:\n  sampler: always_off\n  ratio: 0.5\n",
           {{"OTEL_TRACES_SAMPLER", "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "0.125"}});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.sampling.sampler.kind, sampling::SamplerKind::kTraceIdRatio);
  EXPECT_DOUBLE_EQ(loaded.config.sampling.sampler.ratio, 0.125);
  EXPECT_EQ(loaded.origin("sampling.sampler").source, Source::kEnv);
  EXPECT_EQ(loaded.origin("sampling.ratio").detail, "OTEL_TRACES_SAMPLER_ARG");
}

TEST(ProxyConfigSampling, FileRatioAppliesUnderAnEnvSampler) {
  const LoadedConfig loaded =
      load("sampling:\n  ratio: 0.5\n", {{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"}});
  ASSERT_TRUE(loaded.ok());
  EXPECT_DOUBLE_EQ(loaded.config.sampling.sampler.ratio, 0.5);
  EXPECT_EQ(loaded.origin("sampling.ratio").detail, "test.yaml:2");
}

TEST(ProxyConfigSampling, InvalidEnvSamplerIsAWarningAndTheDefaultStays) {
  const LoadedConfig loaded = loadWithoutFile({{"OTEL_TRACES_SAMPLER", "xray"}});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.sampling.sampler.kind, sampling::SamplerKind::kParentBasedAlwaysOn);
  ASSERT_EQ(loaded.warnings.size(), 1u);
  EXPECT_THAT(loaded.warnings[0], HasSubstr("OTEL_TRACES_SAMPLER: unknown sampler `xray`"));
  EXPECT_EQ(loaded.origin("sampling.sampler").source, Source::kDefault);
  EXPECT_THAT(loaded.origin("sampling.sampler").detail, HasSubstr("invalid and was ignored"));
}

TEST(ProxyConfigSampling, InvalidEnvRatioIsAWarningAndMeansOne) {
  const LoadedConfig loaded = loadWithoutFile(
      {{"OTEL_TRACES_SAMPLER", "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "lots"}});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config.sampling.sampler.kind, sampling::SamplerKind::kTraceIdRatio);
  EXPECT_DOUBLE_EQ(loaded.config.sampling.sampler.ratio, 1.0);
  ASSERT_EQ(loaded.warnings.size(), 1u);
  EXPECT_THAT(loaded.warnings[0], HasSubstr("OTEL_TRACES_SAMPLER_ARG"));
}

TEST(ProxyConfigSampling, RulesFlagReplacesTheFileRules) {
  ConfigFlags flags;
  flags.sampling_rules = "/healthz=never, /checkout/*=always, *=10%";
  const LoadedConfig loaded = load("sampling:\n  rules: [\"*=never\"]\n", {}, flags);
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(sampling::formatRules(loaded.config.sampling.rules),
            "/healthz=never, /checkout/*=always, *=0.1");
  EXPECT_EQ(loaded.origin("sampling.rules").detail, "--sampling-rules");
}

TEST(ProxyConfigSampling, BadRulesFlagNamesTheElement) {
  ConfigFlags flags;
  flags.sampling_rules = "/healthz=never, GET /checkout/*=sometimes";
  const LoadedConfig loaded = loadWithoutFile({}, flags);
  EXPECT_THAT(loaded.errors,
              ElementsAre("--sampling-rules: element 2 (`GET /checkout/*=sometimes`): unknown "
                          "sampler `sometimes`; expected always, never, a ratio in [0, 1] or a "
                          "percent"));
}

TEST(ProxyConfigSampling, RuleAfterTheCatchAllIsRefused) {
  ConfigFlags flags;
  flags.sampling_rules = "*=always, /healthz=never";
  const LoadedConfig loaded = loadWithoutFile({}, flags);
  EXPECT_THAT(loaded.errors,
              ElementsAre("sampling.rules (set by --sampling-rules): sampling rule 2 "
                          "(`/healthz=never`): unreachable: an earlier `*` rule matches every "
                          "span"));
}

TEST(ProxyConfigSampling, TrustNeverAndAlwaysAreWords) {
  EXPECT_TRUE(load("tracing:\n  trust_incoming_context: never\n")
                  .config.tracing.trust_incoming_context.trustsNoOne());
  EXPECT_TRUE(load("tracing:\n  trust_incoming_context: Always\n")
                  .config.tracing.trust_incoming_context.trustsEveryone());
  const LoadedConfig mixed = load("tracing:\n  trust_incoming_context: [never, 10.0.0.0/8]\n");
  EXPECT_THAT(mixed.errors,
              ElementsAre("test.yaml:2:28: tracing.trust_incoming_context[0]: always and never "
                          "stand alone, not in a list of networks"));
}

// A ratio the sampler does not use is shown as such, not with a value it was never given.
TEST(ProxyConfigSampling, PrintShowsAnUnusedRatioAsUnused) {
  const LoadedConfig loaded = load("sampling:\n  sampler: always_off\n  ratio: 0.3\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  const std::string text = formatEffectiveConfig(loaded);
  EXPECT_THAT(text, ::testing::ContainsRegex("sampling.ratio: \\(not used by this sampler\\) +# "
                                             "file test.yaml:3"));
}

TEST(ProxyConfigSampling, PrintShowsEverySamplingSettingWithItsOrigin) {
  ConfigFlags flags;
  flags.sampling_rules = "/healthz=never";
  const LoadedConfig loaded =
      load("sampling:\n  rate_limit: 100\ntracing:\n  trust_incoming_context: 192.0.2.0/24\n",
           {{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
            {"OTEL_TRACES_SAMPLER_ARG", "0.1"}},
           flags);
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  const std::string text = formatEffectiveConfig(loaded);
  EXPECT_THAT(text, HasSubstr("sampling.sampler: parentbased_traceidratio"));
  EXPECT_THAT(text, HasSubstr("# env OTEL_TRACES_SAMPLER\n"));
  EXPECT_THAT(text, HasSubstr("sampling.ratio: 0.1"));
  EXPECT_THAT(text, HasSubstr("sampling.rules: [/healthz=never]"));
  EXPECT_THAT(text, HasSubstr("# flag --sampling-rules\n"));
  EXPECT_THAT(text, HasSubstr("sampling.rate_limit: 100/s"));
  EXPECT_THAT(text, HasSubstr("sampling.rate_limit_burst: 100"));
  EXPECT_THAT(text, HasSubstr("sampling.threshold_precision: 4"));
  EXPECT_THAT(text, HasSubstr("tracing.trust_incoming_context: 192.0.2.0/24"));
  EXPECT_THAT(text, HasSubstr("tracing.drop_untrusted_baggage: false"));
  EXPECT_THAT(text, HasSubstr("tracing.client_url_attributes: false"));
}

TEST(ProxyConfigPrint, EveryLineNamesItsOrigin) {
  ConfigFlags flags;
  flags.inbound = "0.0.0.0:9006";
  const LoadedConfig loaded = load(
      "timeouts:\n  drain: 90s\nexporter:\n  endpoint: http://c:4318\n  headers:\n"
      "    authorization: secret-token\n",
      {{"OTEL_PROPAGATORS", "b3"}}, flags);
  ASSERT_TRUE(loaded.ok());
  const std::string text = formatEffectiveConfig(loaded);
  EXPECT_THAT(text, HasSubstr("listeners.inbound: 0.0.0.0:9006"));
  EXPECT_THAT(text, HasSubstr("# flag --inbound\n"));
  EXPECT_THAT(text, HasSubstr("timeouts.drain: 90s"));
  EXPECT_THAT(text, HasSubstr("# file test.yaml:2\n"));
  EXPECT_THAT(text, HasSubstr("tracing.propagators: b3"));
  EXPECT_THAT(text, HasSubstr("# env OTEL_PROPAGATORS\n"));
  EXPECT_THAT(text, HasSubstr("exporter.traces_endpoint: http://c:4318/v1/traces"));
  EXPECT_THAT(text, HasSubstr("exporter.headers: [authorization] (values hidden)"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("secret-token")));
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    EXPECT_THAT(text.substr(start, end - start), HasSubstr("# ")) << "every line has an origin";
    start = end + 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Known HTTP methods: OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS over tracing.known_methods

constexpr std::string_view kKnownMethodsVariable = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS";

std::vector<std::string> knownMethods(const LoadedConfig& loaded) {
  return loaded.config.tracing.known_methods.methods();
}

TEST(ProxyConfigKnownMethods, DefaultsToRfc9110AndPatch) {
  const LoadedConfig loaded = loadWithoutFile();
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_THAT(knownMethods(loaded), ElementsAre("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
                                                "OPTIONS", "TRACE", "PATCH"));
  EXPECT_EQ(loaded.origin("tracing.known_methods").source, Source::kDefault);
}

// A full override: the defaults the file leaves out are not known any more.
TEST(ProxyConfigKnownMethods, TheFilesListReplacesTheDefaults) {
  const LoadedConfig loaded = load("tracing:\n  known_methods: [GET, PURGE, GET]\n");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_THAT(knownMethods(loaded), ElementsAre("GET", "PURGE"));
  EXPECT_FALSE(loaded.config.tracing.known_methods.find("POST"));
  EXPECT_EQ(loaded.origin("tracing.known_methods").source, Source::kFile);
  EXPECT_EQ(loaded.origin("tracing.known_methods").detail, "test.yaml:2");
  // One comma-separated string, as the variable writes it.
  const LoadedConfig string = load("tracing:\n  known_methods: \"PROPFIND, MKCOL\"\n");
  ASSERT_TRUE(string.ok()) << string.errors.front();
  EXPECT_THAT(knownMethods(string), ElementsAre("PROPFIND", "MKCOL"));
}

TEST(ProxyConfigKnownMethods, TheVariableOverridesTheFile) {
  const LoadedConfig loaded = load("tracing:\n  known_methods: [GET, PURGE]\n",
                                   {{std::string(kKnownMethodsVariable), " PROPFIND ,purge"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_THAT(loaded.warnings, IsEmpty());
  // Case-sensitive, and not merged with the file's list or the defaults.
  EXPECT_THAT(knownMethods(loaded), ElementsAre("PROPFIND", "purge"));
  EXPECT_EQ(loaded.origin("tracing.known_methods").source, Source::kEnv);
  EXPECT_EQ(loaded.origin("tracing.known_methods").detail, kKnownMethodsVariable);
  // Without a file.
  const LoadedConfig bare = loadWithoutFile({{std::string(kKnownMethodsVariable), "GET,PURGE"}});
  EXPECT_THAT(knownMethods(bare), ElementsAre("GET", "PURGE"));
  EXPECT_EQ(bare.origin("tracing.known_methods").source, Source::kEnv);
}

TEST(ProxyConfigKnownMethods, ABlankVariableIsUnset) {
  const LoadedConfig loaded =
      load("tracing:\n  known_methods: [PURGE]\n", {{std::string(kKnownMethodsVariable), " "}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_THAT(loaded.warnings, IsEmpty());
  EXPECT_THAT(knownMethods(loaded), ElementsAre("PURGE"));
  EXPECT_EQ(loaded.origin("tracing.known_methods").source, Source::kFile);
  const LoadedConfig bare = loadWithoutFile({{std::string(kKnownMethodsVariable), ""}});
  EXPECT_THAT(bare.warnings, IsEmpty());
  EXPECT_EQ(bare.config.tracing.known_methods, semconv::KnownMethods());
}

// An invalid variable is ignored whole with a warning (the OTel rule): the file's list, else
// the defaults. Neither is an error.
TEST(ProxyConfigKnownMethods, AnInvalidVariableGivesWayToTheFileThenTheDefaults) {
  const LoadedConfig loaded = load("tracing:\n  known_methods: [GET, PURGE]\n",
                                   {{std::string(kKnownMethodsVariable), "GET,PU T"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_THAT(knownMethods(loaded), ElementsAre("GET", "PURGE"));
  EXPECT_THAT(loaded.warnings,
              ElementsAre("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS=\"GET,PU T\" is not a "
                          "comma-separated list of HTTP methods (\"PU T\" is not a valid method "
                          "name); using GET,PURGE from tracing.known_methods (test.yaml:2)"));
  EXPECT_EQ(loaded.origin("tracing.known_methods").source, Source::kFile);
  EXPECT_EQ(loaded.origin("tracing.known_methods").detail,
            "test.yaml:2 (OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS is invalid and was ignored)");

  const LoadedConfig bare = loadWithoutFile({{std::string(kKnownMethodsVariable), "GET,,POST"}});
  ASSERT_TRUE(bare.ok()) << bare.errors.front();
  EXPECT_EQ(bare.config.tracing.known_methods, semconv::KnownMethods());
  EXPECT_THAT(bare.warnings,
              ElementsAre("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS=\"GET,,POST\" is not a "
                          "comma-separated list of HTTP methods (empty method name in the list); "
                          "using the default GET,HEAD,POST,PUT,DELETE,CONNECT,OPTIONS,TRACE,PATCH"));
  EXPECT_EQ(bare.origin("tracing.known_methods").source, Source::kDefault);
  EXPECT_EQ(bare.origin("tracing.known_methods").detail,
            "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS is invalid and was ignored");
}

TEST(ProxyConfigKnownMethods, ValidatePrintsTheListWithItsOrigin) {
  EXPECT_THAT(formatEffectiveConfig(loadWithoutFile()),
              HasSubstr("tracing.known_methods: [GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, "
                        "TRACE, PATCH] # default\n"));
  EXPECT_THAT(formatEffectiveConfig(load("tracing:\n  known_methods: \"GET, PURGE\"\n")),
              ::testing::ContainsRegex("tracing.known_methods: \\[GET, PURGE\\] +# file "
                                       "test.yaml:2\n"));
  EXPECT_THAT(formatEffectiveConfig(
                  loadWithoutFile({{std::string(kKnownMethodsVariable), "PROPFIND"}})),
              ::testing::ContainsRegex("tracing.known_methods: \\[PROPFIND\\] +# env "
                                       "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS\n"));
}

// The spans' list is the effective one (the metrics take theirs from it in `run`).
TEST(ProxyConfigKnownMethods, ReachesTheRequestTracingConfig) {
  const LoadedConfig loaded =
      loadWithoutFile({{std::string(kKnownMethodsVariable), "GET,PURGE"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  const RequestTracingConfig tracing = requestTracingConfigFrom(loaded.config);
  EXPECT_THAT(tracing.known_methods.methods(), ElementsAre("GET", "PURGE"));
  EXPECT_EQ(requestTracingConfigFrom(loadWithoutFile().config).known_methods,
            semconv::KnownMethods());
}

// ---------------------------------------------------------------------------------------------
// Values

// ---------------------------------------------------------------------------------------------
// The OTel rules for values: zeros, unknown names, a discarded resource list, OTEL_SDK_DISABLED

// The common configuration specification: a timeout of 0 means no limit; a duration may be 0
// (the schedule delay: none). In the variables and in the file's keys alike.
TEST(ProxyConfigZeros, ZeroTimeoutsMeanNoLimitAndZeroDelayNoDelay) {
  const LoadedConfig from_env = loadWithoutFile({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                                                 {"OTEL_EXPORTER_OTLP_TIMEOUT", "0"},
                                                 {"OTEL_BSP_EXPORT_TIMEOUT", "0"},
                                                 {"OTEL_BSP_SCHEDULE_DELAY", "0"}});
  ASSERT_TRUE(from_env.ok()) << from_env.errors.front();
  EXPECT_THAT(from_env.warnings, IsEmpty());
  EXPECT_EQ(from_env.config.exporter.settings.otlp.timeout, exporter::kNoTimeout);
  EXPECT_EQ(from_env.config.exporter.batch.export_timeout, exporter::kNoTimeout);
  EXPECT_EQ(from_env.config.exporter.batch.schedule_delay, 0ms);
  const std::string text = formatEffectiveConfig(from_env);
  EXPECT_THAT(text, HasSubstr("exporter.timeout: 0 (no limit)                          # env "
                              "OTEL_EXPORTER_OTLP_TIMEOUT\n"));
  EXPECT_THAT(text, HasSubstr("exporter.batch.schedule_delay: 0 (no delay)             # env "
                              "OTEL_BSP_SCHEDULE_DELAY\n"));
  EXPECT_THAT(text, HasSubstr("exporter.batch.export_timeout: 0 (no limit)             # env "
                              "OTEL_BSP_EXPORT_TIMEOUT\n"));

  const LoadedConfig from_file = load(
      "exporter:\n  endpoint: http://c:4318\n  timeout: 0\n  batch:\n    export_timeout: 0s\n"
      "    schedule_delay: 0ms\n");
  ASSERT_TRUE(from_file.ok()) << from_file.errors.front();
  EXPECT_EQ(from_file.config.exporter.settings.otlp.timeout, exporter::kNoTimeout);
  EXPECT_EQ(from_file.config.exporter.batch.export_timeout, exporter::kNoTimeout);
  EXPECT_EQ(from_file.config.exporter.batch.schedule_delay, 0ms);
  EXPECT_THAT(formatEffectiveConfig(from_file),
              HasSubstr("exporter.timeout: 0 (no limit)                          # file "
                        "test.yaml:3\n"));
}

// The SDK environment specification: a value not recognised is warned about and ignored; in a
// list, the unknown names are skipped and the known ones kept.
TEST(ProxyConfigUnknownNames, EnvPropagatorsKeepTheKnownNames) {
  const LoadedConfig loaded =
      load("tracing:\n  propagators: [b3]\n", {{"OTEL_PROPAGATORS", "tracecontext,xray,B3Multi"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_THAT(loaded.config.propagation.propagators,
              ElementsAre(propagation::PropagatorKind::kTraceContext,
                          propagation::PropagatorKind::kB3Multi));
  EXPECT_THAT(loaded.warnings,
              ElementsAre("unknown propagator \"xray\" in "
                          "OTEL_PROPAGATORS=\"tracecontext,xray,B3Multi\" ignored (known: "
                          "tracecontext, baggage, b3, b3multi, jaeger, none)"));
  EXPECT_EQ(loaded.origin("tracing.propagators").source, Source::kEnv);
  EXPECT_EQ(loaded.origin("tracing.propagators").detail, "OTEL_PROPAGATORS");
}

TEST(ProxyConfigUnknownNames, EnvPropagatorsWithNoKnownNameAreIgnored) {
  const LoadedConfig loaded = loadWithoutFile({{"OTEL_PROPAGATORS", "xray, ot"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.propagation.propagators, propagation::PropagationConfig{}.propagators);
  EXPECT_THAT(loaded.warnings,
              ElementsAre("OTEL_PROPAGATORS=\"xray, ot\": unknown propagators \"xray\", \"ot\" "
                          "(known: tracecontext, baggage, b3, b3multi, jaeger, none); using "
                          "tracecontext,baggage (the default)"));
  EXPECT_EQ(loaded.origin("tracing.propagators").source, Source::kDefault);
}

TEST(ProxyConfigUnknownNames, EnvNoneBesideAnUnknownNameIsNone) {
  const LoadedConfig loaded =
      load("tracing:\n  propagators: [b3]\n", {{"OTEL_PROPAGATORS", "none,xray"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_TRUE(loaded.config.propagation.propagators.empty());
  EXPECT_THAT(loaded.warnings,
              ElementsAre("unknown propagator \"xray\" in OTEL_PROPAGATORS=\"none,xray\" "
                          "ignored (known: tracecontext, baggage, b3, b3multi, jaeger, none)"));
  EXPECT_EQ(loaded.origin("tracing.propagators").detail, "OTEL_PROPAGATORS");
}

TEST(ProxyConfigUnknownNames, EnvPropagatorsThatAreNotAListOfNamesAreErrors) {
  EXPECT_THAT(loadWithoutFile({{"OTEL_PROPAGATORS", "none,b3"}}).errors,
              ElementsAre("OTEL_PROPAGATORS: \"none\" cannot be combined with other propagators"));
  EXPECT_THAT(loadWithoutFile({{"OTEL_PROPAGATORS", "b3,,jaeger"}}).errors,
              ElementsAre("OTEL_PROPAGATORS: empty propagator name in \"b3,,jaeger\""));
}

TEST(ProxyConfigUnknownNames, EnvExporterAndProtocolAreWarnings) {
  const LoadedConfig loaded =
      loadWithoutFile({{"OTEL_TRACES_EXPORTER", "otlp,zipkin"},
                       {"OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.exporter.settings.kind, exporter::ExporterKind::kOtlp);
  EXPECT_EQ(loaded.config.exporter.settings.otlp.protocol, exporter::OtlpProtocol::kHttpProtobuf);
  ASSERT_EQ(loaded.warnings.size(), 2u);
  EXPECT_THAT(loaded.warnings[0], HasSubstr("unknown exporter \"zipkin\""));
  EXPECT_THAT(loaded.warnings[1], HasSubstr("OTEL_EXPORTER_OTLP_PROTOCOL=\"thrift\""));
  EXPECT_EQ(loaded.origin("exporter.type").source, Source::kEnv);
  EXPECT_EQ(loaded.origin("exporter.protocol").detail,
            "OTEL_EXPORTER_OTLP_PROTOCOL is invalid and was ignored");
}

// The resource SDK specification: on any error the entire variable is discarded; the file's
// attributes stay.
TEST(ProxyConfigResource, AMalformedVariableIsDiscardedWholeAndTheFilesAttributesStay) {
  const LoadedConfig loaded =
      load("tracing:\n  service_name: checkout\n  resource_attributes:\n    team: pay\n",
           {{"OTEL_RESOURCE_ATTRIBUTES", "service.name=x,bad,x=%zz"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(attribute(loaded, "service.name"), "checkout");
  EXPECT_EQ(attribute(loaded, "team"), "pay");
  EXPECT_EQ(attribute(loaded, "x"), "(absent)");
  EXPECT_EQ(loaded.origin("resource.service.name").detail, "test.yaml:2");
  EXPECT_THAT(loaded.warnings,
              ElementsAre("OTEL_RESOURCE_ATTRIBUTES: ignoring the whole value: malformed entries "
                          "\"bad\", \"x=%zz\" (want key=percent-encoded-value, separated by "
                          "commas)"));
}

// The mTLS pair is checked once the file and the environment are combined: a variable may
// replace either half of the file's pair, or give a lone half in the file its other half.
TEST(ProxyConfigErrors, ClientKeyAndCertificateFromTheFileAndTheEnvironment) {
  const std::string both =
      "exporter:\n  endpoint: https://c\n  client_key: /k\n  client_certificate: /c\n";
  const LoadedConfig loaded = load(both, {{"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/env.key"}});
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.exporter.settings.otlp.client_key, "/env.key");
  EXPECT_EQ(loaded.config.exporter.settings.otlp.client_certificate, "/c");
  EXPECT_EQ(loaded.origin("exporter.client_certificate").detail, "test.yaml:4");

  // Half the pair in the file, the other half from a variable: one pair, no error.
  const std::string key_only = "exporter:\n  endpoint: https://c\n  client_key: /k\n";
  for (const char* variable : {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                               "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"}) {
    const LoadedConfig split = load(key_only, {{variable, "/env.crt"}});
    ASSERT_TRUE(split.ok()) << split.errors.front();
    EXPECT_EQ(split.config.exporter.settings.otlp.client_key, "/k");
    EXPECT_EQ(split.config.exporter.settings.otlp.client_certificate, "/env.crt");
    EXPECT_EQ(split.origin("exporter.client_key").detail, "test.yaml:3");
  }
  // The variable replaces the file's half and the other is still missing: the variable's
  // reader says so, once.
  const LoadedConfig same_half = load(key_only, {{"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/env.key"}});
  ASSERT_EQ(same_half.errors.size(), 1u);
  EXPECT_THAT(same_half.errors[0], HasSubstr("OTEL_EXPORTER_OTLP_CLIENT_KEY is set but "
                                             "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is not"));
}

// OTEL_SDK_DISABLED: a Boolean. "true" in any case is true; anything else is false, with a
// warning unless it is "false"; unset or empty, the file's tracing.sdk_disabled applies.
struct SdkDisabledCase {
  const char* yaml;
  Env env;
  bool disabled;
  Source source;
  bool warned;
};

class ProxyConfigSdkDisabled : public ::testing::TestWithParam<SdkDisabledCase> {};

TEST_P(ProxyConfigSdkDisabled, IsReadAsTheSpecificationsBoolean) {
  const SdkDisabledCase& c = GetParam();
  const LoadedConfig loaded = load(c.yaml, c.env);
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
  EXPECT_EQ(loaded.config.tracing.sdk_disabled, c.disabled);
  EXPECT_EQ(loaded.origin("tracing.sdk_disabled").source, c.source);
  EXPECT_EQ(loaded.warnings.size(), c.warned ? 1u : 0u);
  EXPECT_THAT(formatEffectiveConfig(loaded),
              HasSubstr(std::string("tracing.sdk_disabled: ") + (c.disabled ? "true" : "false")));
}

INSTANTIATE_TEST_SUITE_P(
    Values, ProxyConfigSdkDisabled,
    ::testing::Values(
        SdkDisabledCase{"", {}, false, Source::kDefault, false},
        SdkDisabledCase{"", {{"OTEL_SDK_DISABLED", "true"}}, true, Source::kEnv, false},
        SdkDisabledCase{"", {{"OTEL_SDK_DISABLED", "TRUE"}}, true, Source::kEnv, false},
        SdkDisabledCase{"", {{"OTEL_SDK_DISABLED", "False"}}, false, Source::kEnv, false},
        SdkDisabledCase{"", {{"OTEL_SDK_DISABLED", "1"}}, false, Source::kEnv, true},
        SdkDisabledCase{"tracing:\n  sdk_disabled: true\n", {}, true, Source::kFile, false},
        SdkDisabledCase{"tracing:\n  sdk_disabled: true\n", {{"OTEL_SDK_DISABLED", " "}}, true,
                        Source::kFile, false},
        SdkDisabledCase{"tracing:\n  sdk_disabled: true\n", {{"OTEL_SDK_DISABLED", "false"}},
                        false, Source::kEnv, false},
        // Not a true value: false, as the specification says, whatever the file holds.
        SdkDisabledCase{"tracing:\n  sdk_disabled: true\n", {{"OTEL_SDK_DISABLED", "yes"}},
                        false, Source::kEnv, true}));

TEST(Duration, ParsesUnitsAndBareMilliseconds) {
  EXPECT_EQ(*parseDuration("500"), 500ms);
  EXPECT_EQ(*parseDuration("500ms"), 500ms);
  EXPECT_EQ(*parseDuration("10s"), 10s);
  EXPECT_EQ(*parseDuration("1m"), 60s);
  EXPECT_EQ(*parseDuration("2h"), 7200s);
  EXPECT_EQ(*parseDuration("1m30s"), 90s);
  EXPECT_EQ(*parseDuration("1s500ms"), 1500ms);
  EXPECT_EQ(*parseDuration(" 0 "), 0ms);
}

TEST(Duration, RefusesWhatIsNotADuration) {
  for (const char* text : {"", " ", "s", "10x", "1.5s", "-1s", "10 s", "1m30", "ms10",
                           "99999999999999999999ms", "9999999999999h"}) {
    EXPECT_FALSE(parseDuration(text).ok()) << text;
  }
}

TEST(Duration, FormatsInTheLargestExactUnit) {
  EXPECT_EQ(formatDuration(1500ms), "1500ms");
  EXPECT_EQ(formatDuration(20s), "20s");
  EXPECT_EQ(formatDuration(60s), "1m");
  EXPECT_EQ(formatDuration(90s), "90s");
  EXPECT_EQ(formatDuration(7200s), "2h");
  EXPECT_EQ(formatDuration(0ms), "0ms");
}

TEST(HostPortParse, AcceptsIpv4Ipv6AndNames) {
  EXPECT_EQ(parseHostPort("0.0.0.0:15006", AddressUse::kListen)->toString(), "0.0.0.0:15006");
  const auto v6 = parseHostPort("[::]:15006", AddressUse::kListen);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::");
  EXPECT_TRUE(v6->isIpv6());
  EXPECT_EQ(v6->toString(), "[::]:15006");
  EXPECT_EQ(parseHostPort("[2001:db8::1]:443", AddressUse::kPeer)->host, "2001:db8::1");
  EXPECT_EQ(parseHostPort("app.default.svc:8080", AddressUse::kPeer)->host, "app.default.svc");
  EXPECT_EQ(parseHostPort("127.0.0.1:0", AddressUse::kListen)->port, 0);
  EXPECT_EQ(parseHostPort("127.0.0.1:65535", AddressUse::kPeer)->port, 65535);
}

TEST(HostPortParse, RefusesBadAddressesAndPorts) {
  const std::pair<const char*, AddressUse> bad[] = {
      {"", AddressUse::kListen},
      {"0.0.0.0", AddressUse::kListen},
      {"0.0.0.0:", AddressUse::kListen},
      {"0.0.0.0:65536", AddressUse::kListen},
      {"0.0.0.0:-1", AddressUse::kListen},
      {"0.0.0.0:http", AddressUse::kListen},
      {":80", AddressUse::kPeer},
      {"127.0.0.1:0", AddressUse::kPeer},
      {"::1:80", AddressUse::kPeer},
      {"[::1]", AddressUse::kPeer},
      {"[::1:80", AddressUse::kPeer},
      {"[::1]x:80", AddressUse::kPeer},
      {"[fe80::1%eth0]:80", AddressUse::kPeer},
      {"[1.2.3.4]:80", AddressUse::kPeer},
      {"localhost:80", AddressUse::kListen},
      {"300.1.1.1:80", AddressUse::kPeer},
      {"-app:80", AddressUse::kPeer},
      {"a..b:80", AddressUse::kPeer},
      {"app_@:80", AddressUse::kPeer},
  };
  for (const auto& [text, use] : bad) EXPECT_FALSE(parseHostPort(text, use).ok()) << text;
  EXPECT_THAT(std::string(parseHostPort("::1:80", AddressUse::kPeer).status().message()),
              HasSubstr("must be in brackets"));
}

// ---------------------------------------------------------------------------------------------
// Workers: the container's CPU limit

class FakeCgroup : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        std::filesystem::path(::testing::TempDir()) /
        ("cgroup_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "sys");
    probe_.cgroup_root = (root_ / "sys").string();
    probe_.proc_self_cgroup = (root_ / "self_cgroup").string();
    probe_.available_cpus = 8;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void write(const std::string& relative, const std::string& text) {
    const std::filesystem::path path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  std::filesystem::path root_;
  CpuProbe probe_;
};

TEST(CgroupParse, V2CpuMax) {
  EXPECT_EQ(parseCgroupV2CpuMax("150000 100000\n"), 1.5);
  EXPECT_EQ(parseCgroupV2CpuMax("200000 100000"), 2.0);
  EXPECT_EQ(parseCgroupV2CpuMax("max 100000\n"), std::nullopt);
  EXPECT_EQ(parseCgroupV2CpuMax(""), std::nullopt);
  EXPECT_EQ(parseCgroupV2CpuMax("abc 100000"), std::nullopt);
  EXPECT_EQ(parseCgroupV2CpuMax("100000 0"), std::nullopt);
}

TEST(CgroupParse, V1Quota) {
  EXPECT_EQ(parseCgroupV1Quota("50000\n", "100000\n"), 0.5);
  EXPECT_EQ(parseCgroupV1Quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_EQ(parseCgroupV1Quota("x", "100000"), std::nullopt);
}

TEST_F(FakeCgroup, V2ContainerViewReadsTheRoot) {
  write("self_cgroup", "0::/\n");
  write("sys/cpu.max", "150000 100000\n");
  const auto limit = cgroupCpuLimit(probe_);
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->cores, 1.5);
  EXPECT_EQ(defaultWorkerCount(probe_).workers, 2u);  // rounded up
}

TEST_F(FakeCgroup, V2TightestOfTheCgroupAndItsAncestors) {
  write("self_cgroup", "0::/kubepods/pod1/c1\n");
  write("sys/kubepods/pod1/c1/cpu.max", "max 100000\n");
  write("sys/kubepods/pod1/cpu.max", "250000 100000\n");
  write("sys/kubepods/cpu.max", "400000 100000\n");
  const WorkerCount count = defaultWorkerCount(probe_);
  EXPECT_EQ(count.workers, 3u);
  EXPECT_THAT(count.reason, HasSubstr("kubepods/pod1/cpu.max"));
}

TEST_F(FakeCgroup, V2PathNotVisibleFallsBackToTheRoot) {
  write("self_cgroup", "0::/system.slice/docker-abc.scope\n");
  write("sys/cpu.max", "100000 100000\n");
  EXPECT_EQ(defaultWorkerCount(probe_).workers, 1u);
}

TEST_F(FakeCgroup, V1CfsQuota) {
  write("self_cgroup", "5:cpuacct,cpu:/docker/abc\n4:memory:/docker/abc\n");
  write("sys/cpuacct,cpu/cpu.cfs_quota_us", "300000\n");
  write("sys/cpuacct,cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(defaultWorkerCount(probe_).workers, 3u);
}

TEST_F(FakeCgroup, V1UnlimitedQuotaUsesTheCpus) {
  write("self_cgroup", "1:cpu:/\n");
  write("sys/cpu/cpu.cfs_quota_us", "-1\n");
  write("sys/cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroupCpuLimit(probe_), std::nullopt);
  const WorkerCount count = defaultWorkerCount(probe_);
  EXPECT_EQ(count.workers, 8u);
  EXPECT_THAT(count.reason, HasSubstr("no cgroup CPU limit"));
}

TEST_F(FakeCgroup, QuotaAboveTheCpusIsCapped) {
  write("self_cgroup", "0::/\n");
  write("sys/cpu.max", "1600000 100000\n");
  probe_.available_cpus = 2;
  const WorkerCount count = defaultWorkerCount(probe_);
  EXPECT_EQ(count.workers, 2u);
  EXPECT_THAT(count.reason, HasSubstr("capped"));
}

TEST_F(FakeCgroup, SmallQuotaIsAtLeastOneWorker) {
  write("self_cgroup", "0::/\n");
  write("sys/cpu.max", "10000 100000\n");
  EXPECT_EQ(defaultWorkerCount(probe_).workers, 1u);
}

TEST_F(FakeCgroup, NothingReadableUsesTheCpus) {
  EXPECT_EQ(defaultWorkerCount(probe_).workers, 8u);
}

TEST_F(FakeCgroup, LoaderUsesTheProbeForAuto) {
  write("self_cgroup", "0::/\n");
  write("sys/cpu.max", "250000 100000\n");
  ConfigInputs inputs;
  inputs.env = exporter::mapEnvironment({});
  inputs.cpu = probe_;
  const LoadedConfig loaded = loadConfig(ConfigFlags{}, inputs);
  EXPECT_EQ(loaded.config.workers, 3u);
  EXPECT_THAT(loaded.origin("workers").detail, HasSubstr("CPU limit 2.5"));
}

TEST(AvailableCpus, IsAtLeastOne) { EXPECT_GE(availableCpus(CpuProbe{}), 1u); }

TEST(DefaultWorkerCount, OneCpuIsSingular) {
  CpuProbe probe = fourCpus();
  probe.available_cpus = 1;
  EXPECT_EQ(defaultWorkerCount(probe).reason, "1 available CPU, no cgroup CPU limit");
  EXPECT_EQ(defaultWorkerCount(fourCpus()).reason, "4 available CPUs, no cgroup CPU limit");
}

}  // namespace
}  // namespace tracecar::proxy
