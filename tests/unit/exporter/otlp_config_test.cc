#include "exporter/otlp_config.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace tracecar::exporter {
namespace {

using namespace std::chrono_literals;
using Env = std::map<std::string, std::string, std::less<>>;
using Headers = std::vector<std::pair<std::string, std::string>>;

// The settings, or every error in one status, a line each.
absl::StatusOr<ExporterSettings> settingsFrom(Env vars, std::vector<std::string>& warnings,
                                              const LowerLayer& lower = {}) {
  std::vector<std::string> errors;
  ExporterSettings settings =
      exporterSettingsFromEnv(mapEnvironment(std::move(vars)), warnings, errors, lower);
  if (errors.empty()) return settings;
  std::string message;
  for (const std::string& error : errors) message += (message.empty() ? "" : "\n") + error;
  return absl::InvalidArgumentError(message);
}

// A lower layer holding values by variable name, named "file:VARIABLE" in messages.
LowerLayer lowerLayer(Env values) {
  LowerLayer lower;
  lower.value = mapEnvironment(std::move(values));
  lower.name = [](std::string_view variable) { return "file:" + std::string(variable); };
  return lower;
}

bool contains(absl::string_view haystack, absl::string_view needle) {
  return haystack.find(needle) != absl::string_view::npos;
}

// ---------------------------------------------------------------------------------------------
// parseEndpoint

struct GoodUrl {
  const char* url;
  const char* scheme;
  const char* host;
  uint16_t port;
  const char* path;
  const char* host_header;
  const char* normalized;
};

void PrintTo(const GoodUrl& c, std::ostream* os) { *os << c.url; }

class ParseEndpointGood : public ::testing::TestWithParam<GoodUrl> {};

TEST_P(ParseEndpointGood, SplitsSchemeHostPortAndPath) {
  const GoodUrl& c = GetParam();
  const absl::StatusOr<Endpoint> e = parseEndpoint(c.url);
  ASSERT_TRUE(e.ok()) << c.url << ": " << e.status();
  EXPECT_EQ(e->scheme, c.scheme);
  EXPECT_EQ(e->host, c.host);
  EXPECT_EQ(e->port, c.port);
  EXPECT_EQ(e->path, c.path);
  EXPECT_EQ(e->tls(), std::string(c.scheme) == "https");
  EXPECT_EQ(e->hostHeader(), c.host_header);
  EXPECT_EQ(e->url(), c.normalized);
}

INSTANTIATE_TEST_SUITE_P(
    Urls, ParseEndpointGood,
    ::testing::Values(
        GoodUrl{"http://localhost:4318/v1/traces", "http", "localhost", 4318, "/v1/traces",
                "localhost:4318", "http://localhost:4318/v1/traces"},
        GoodUrl{"http://collector", "http", "collector", 80, "/", "collector",
                "http://collector/"},
        GoodUrl{"https://collector.example.com", "https", "collector.example.com", 443, "/",
                "collector.example.com", "https://collector.example.com/"},
        GoodUrl{"HTTPS://Collector:443/x", "https", "Collector", 443, "/x", "Collector",
                "https://Collector/x"},
        GoodUrl{"http://h:443", "http", "h", 443, "/", "h:443", "http://h:443/"},
        GoodUrl{"https://h:80/", "https", "h", 80, "/", "h:80", "https://h:80/"},
        GoodUrl{"http://h:80/", "http", "h", 80, "/", "h", "http://h/"},
        GoodUrl{"http://h:1", "http", "h", 1, "/", "h:1", "http://h:1/"},
        GoodUrl{"http://h:65535", "http", "h", 65535, "/", "h:65535", "http://h:65535/"},
        GoodUrl{"http://h:04318", "http", "h", 4318, "/", "h:4318", "http://h:4318/"},
        GoodUrl{"http://h:/", "http", "h", 80, "/", "h", "http://h/"},
        GoodUrl{"http://10.0.0.1:4318", "http", "10.0.0.1", 4318, "/", "10.0.0.1:4318",
                "http://10.0.0.1:4318/"},
        GoodUrl{"http://[::1]:4318/v1/traces", "http", "::1", 4318, "/v1/traces", "[::1]:4318",
                "http://[::1]:4318/v1/traces"},
        GoodUrl{"https://[2001:db8::1]", "https", "2001:db8::1", 443, "/", "[2001:db8::1]",
                "https://[2001:db8::1]/"},
        GoodUrl{"http://[::ffff:10.0.0.1]:80", "http", "::ffff:10.0.0.1", 80, "/",
                "[::ffff:10.0.0.1]", "http://[::ffff:10.0.0.1]/"},
        GoodUrl{"http://h:4318/path?x=1&y=2", "http", "h", 4318, "/path?x=1&y=2", "h:4318",
                "http://h:4318/path?x=1&y=2"},
        GoodUrl{"http://h?x=1", "http", "h", 80, "/?x=1", "h", "http://h/?x=1"},
        GoodUrl{"http://otel-collector_1.observability.svc.cluster.local:4318", "http",
                "otel-collector_1.observability.svc.cluster.local", 4318, "/",
                "otel-collector_1.observability.svc.cluster.local:4318",
                "http://otel-collector_1.observability.svc.cluster.local:4318/"},
        GoodUrl{"http://example.com./", "http", "example.com.", 80, "/", "example.com.",
                "http://example.com./"},
        GoodUrl{"http://h/a%20b/", "http", "h", 80, "/a%20b/", "h", "http://h/a%20b/"}));

struct BadUrl {
  const char* url;
  const char* reason;  // a piece of the error message
};

void PrintTo(const BadUrl& c, std::ostream* os) { *os << c.url; }

class ParseEndpointBad : public ::testing::TestWithParam<BadUrl> {};

TEST_P(ParseEndpointBad, SaysWhatIsWrong) {
  const absl::StatusOr<Endpoint> e = parseEndpoint(GetParam().url);
  ASSERT_FALSE(e.ok()) << GetParam().url;
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(e.status().message(), GetParam().reason))
      << GetParam().url << " -> " << e.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Urls, ParseEndpointBad,
    ::testing::Values(
        BadUrl{"", "empty"}, BadUrl{"localhost:4318", "absolute"},
        BadUrl{"//h/v1/traces", "absolute"}, BadUrl{"http:/h", "absolute"},
        BadUrl{"://h", "absolute"}, BadUrl{"c:4318/?next=http://x", "absolute"},
        BadUrl{"1http://h", "absolute"}, BadUrl{"ftp://h/", "scheme \"ftp\""},
        BadUrl{"grpc://h:4317", "scheme \"grpc\""}, BadUrl{"unix:///run/otel.sock", "scheme \"unix\""},
        BadUrl{"http://user:pw@h/", "userinfo"}, BadUrl{"http://user@h", "userinfo"},
        BadUrl{"http://h/#top", "fragment"}, BadUrl{"http://h#", "fragment"},
        BadUrl{"http:///v1/traces", "host is empty"}, BadUrl{"http://", "host is empty"},
        BadUrl{"http://:4318", "host is empty"}, BadUrl{"http://h:0", "out of range"},
        BadUrl{"http://h:65536", "out of range"},
        BadUrl{"http://h:99999999999999999999999", "out of range"},
        BadUrl{"http://h:abc", "invalid port"}, BadUrl{"http://h:-1", "invalid port"},
        BadUrl{"http://h:+80", "invalid port"}, BadUrl{"http://h: 80", "whitespace"},
        BadUrl{" http://h", "whitespace"}, BadUrl{"http://h ", "whitespace"},
        BadUrl{"http://h/a b", "whitespace"}, BadUrl{"http://h/\r\n", "whitespace"},
        BadUrl{"http://h/\tx", "whitespace"}, BadUrl{"http://h/\x01", "control"},
        BadUrl{"http://h\x7f", "control"}, BadUrl{"http://h/caf\xc3\xa9", "non-ASCII"},
        BadUrl{"http://::1:4318/", "brackets"}, BadUrl{"http://[::1/", "closing"},
        BadUrl{"http://[]:80", "empty IPv6"}, BadUrl{"http://[::g]/", "invalid IPv6"},
        BadUrl{"http://[10.0.0.1]/", "invalid IPv6"},
        BadUrl{"http://[fe80::1%25eth0]/", "zone"}, BadUrl{"http://[::1]x/", "after the IPv6"},
        BadUrl{"http://256.1.1.1/", "IPv4"}, BadUrl{"http://1.2.3/", "IPv4"},
        BadUrl{"http://ex!ample/", "invalid character"}, BadUrl{"http://a..b/", "empty label"},
        BadUrl{"http://.a/", "empty label"}, BadUrl{"http://-a.b/", "'-'"},
        BadUrl{"http://a-.b/", "'-'"},
        BadUrl{"http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b/",
               "63"}));

TEST(ParseEndpoint, UserinfoErrorDoesNotRepeatThePassword) {
  const absl::StatusOr<Endpoint> e = parseEndpoint("http://user:s3cret@h/");
  ASSERT_FALSE(e.ok());
  EXPECT_FALSE(contains(e.status().message(), "s3cret"));
}

TEST(ProtocolName, NamesEachProtocolAsTheVariableSpellsIt) {
  EXPECT_EQ(protocolName(OtlpProtocol::kHttpProtobuf), "http/protobuf");
  EXPECT_EQ(protocolName(OtlpProtocol::kHttpJson), "http/json");
  EXPECT_EQ(protocolName(OtlpProtocol::kGrpc), "grpc");
}

// ---------------------------------------------------------------------------------------------
// Exporter kind

struct KindCase {
  Env env;
  ExporterKind kind;
};

class ExporterKindFromEnv : public ::testing::TestWithParam<KindCase> {};

TEST_P(ExporterKindFromEnv, PicksTheExporter) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s = settingsFrom(GetParam().env, warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, GetParam().kind);
  EXPECT_TRUE(warnings.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ExporterKindFromEnv,
    ::testing::Values(
        KindCase{{}, ExporterKind::kConsole},
        KindCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}}, ExporterKind::kOtlp},
        KindCase{{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces"}},
                 ExporterKind::kOtlp},
        KindCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", ""}}, ExporterKind::kConsole},
        KindCase{{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""}}, ExporterKind::kConsole},
        KindCase{{{"OTEL_TRACES_EXPORTER", "otlp"}}, ExporterKind::kOtlp},
        KindCase{{{"OTEL_TRACES_EXPORTER", "console"}}, ExporterKind::kConsole},
        KindCase{{{"OTEL_TRACES_EXPORTER", "none"}}, ExporterKind::kNone},
        KindCase{{{"OTEL_TRACES_EXPORTER", "OTLP"}}, ExporterKind::kOtlp},
        KindCase{{{"OTEL_TRACES_EXPORTER", " console "}}, ExporterKind::kConsole},
        KindCase{{{"OTEL_TRACES_EXPORTER", "otlp,otlp"}}, ExporterKind::kOtlp},
        KindCase{{{"OTEL_TRACES_EXPORTER", ""}}, ExporterKind::kConsole},
        KindCase{{{"OTEL_TRACES_EXPORTER", ""}, {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"}},
                 ExporterKind::kOtlp},
        KindCase{{{"OTEL_TRACES_EXPORTER", "none"}, {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"}},
                 ExporterKind::kNone},
        KindCase{{{"OTEL_TRACES_EXPORTER", "console"},
                  {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c"}},
                 ExporterKind::kConsole}));

struct KindError {
  const char* value;
  std::vector<const char*> pieces;
};

class ExporterKindError : public ::testing::TestWithParam<KindError> {};

TEST_P(ExporterKindError, FailsNamingVariableAndValue) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", GetParam().value}}, warnings);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.status().message(), "OTEL_TRACES_EXPORTER")) << s.status();
  for (const char* piece : GetParam().pieces) {
    EXPECT_TRUE(contains(s.status().message(), piece)) << piece << " in " << s.status();
  }
}

INSTANTIATE_TEST_SUITE_P(Values, ExporterKindError,
                         ::testing::Values(KindError{"otlp,console", {"only one"}},
                                           KindError{"otlp, none", {"only one"}},
                                           KindError{"console,zipkin,otlp", {"only one"}},
                                           // An empty name, as in OTEL_PROPAGATORS: a list of
                                           // no name is not a choice of the lower layer's.
                                           KindError{",", {"empty exporter name in \",\""}},
                                           KindError{"none, ", {"empty exporter name"}},
                                           KindError{"otlp,,otlp", {"empty exporter name"}}));

// The SDK environment specification: a value the implementation does not recognise is warned
// about and ignored, i.e. treated as not set.
struct UnknownKindCase {
  Env env;
  ExporterKind kind;
  std::vector<const char*> warning;  // pieces of the one warning
};

class UnknownExporter : public ::testing::TestWithParam<UnknownKindCase> {};

TEST_P(UnknownExporter, IsWarnedAboutAndTreatedAsUnset) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s = settingsFrom(GetParam().env, warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, GetParam().kind);
  ASSERT_EQ(warnings.size(), 1u);
  for (const char* piece : GetParam().warning) {
    EXPECT_TRUE(contains(warnings[0], piece)) << piece << " in " << warnings[0];
  }
}

INSTANTIATE_TEST_SUITE_P(
    Values, UnknownExporter,
    ::testing::Values(
        UnknownKindCase{{{"OTEL_TRACES_EXPORTER", "zipkin"}},
                        ExporterKind::kConsole,
                        {"OTEL_TRACES_EXPORTER=\"zipkin\"", "otlp, console, none",
                         "using console (the default: no endpoint is set)"}},
        UnknownKindCase{{{"OTEL_TRACES_EXPORTER", "logging"},
                         {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}},
                        ExporterKind::kOtlp,
                        {"\"logging\"", "using otlp (the default: an endpoint is set)"}},
        // In a list, the unknown name is skipped and the known one kept.
        UnknownKindCase{{{"OTEL_TRACES_EXPORTER", "otlp,jaeger"}},
                        ExporterKind::kOtlp,
                        {"unknown exporter \"jaeger\" in OTEL_TRACES_EXPORTER=\"otlp,jaeger\""}},
        UnknownKindCase{{{"OTEL_TRACES_EXPORTER", "zipkin, none, xray"}},
                        ExporterKind::kNone,
                        {"\"zipkin\", \"xray\""}}));

TEST(UnknownExporter, GivesWayToTheLowerLayer) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", "zipkin"}}, warnings,
                   lowerLayer({{"OTEL_TRACES_EXPORTER", "none"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, ExporterKind::kNone);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "using none from file:OTEL_TRACES_EXPORTER")) << warnings[0];
}

TEST(ExporterSettings, AnEndpointOfTheLowerLayerSelectsOtlp) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({}, warnings, lowerLayer({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://f:4318"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, ExporterKind::kOtlp);
  EXPECT_EQ(s->otlp.endpoint.url(), "http://f:4318/v1/traces");
}

TEST(ExporterSettings, EveryErrorIsReportedNotOnlyTheFirst) {
  std::vector<std::string> warnings;
  std::vector<std::string> errors;
  exporterSettingsFromEnv(mapEnvironment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "nope"},
                                          {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k"}}),
                          warnings, errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_TRUE(contains(errors[0], "OTEL_EXPORTER_OTLP_ENDPOINT=\"nope\"")) << errors[0];
  EXPECT_TRUE(contains(errors[1], "OTEL_EXPORTER_OTLP_CLIENT_KEY is set")) << errors[1];

  errors.clear();
  exporterSettingsFromEnv(mapEnvironment({{"OTEL_TRACES_EXPORTER", "otlp,console"},
                                          {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://c"},
                                          {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c"}}),
                          warnings, errors);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_TRUE(contains(errors[0], "only one exporter")) << errors[0];
  EXPECT_TRUE(contains(errors[1], "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) << errors[1];
  EXPECT_TRUE(contains(errors[2], "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is set")) << errors[2];
}

TEST(ExporterSettings, ConsoleIgnoresBrokenOtlpVariables) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", "console"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                    {"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://nope"},
                    {"OTEL_EXPORTER_OTLP_TIMEOUT", "soon"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind, ExporterKind::kConsole);
  EXPECT_TRUE(warnings.empty());
}

TEST(ExporterSettings, ReadsTheConsolePath) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"TRACECAR_CONSOLE_EXPORT_PATH", "/var/log/spans.jsonl"}}, warnings);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->console_path, "/var/log/spans.jsonl");
  const absl::StatusOr<ExporterSettings> unset = settingsFrom({}, warnings);
  ASSERT_TRUE(unset.ok());
  EXPECT_EQ(unset->console_path, "");
}

TEST(ExporterSettings, DefaultsFollowTheSpec) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s = settingsFrom({{"OTEL_TRACES_EXPORTER", "otlp"}},
                                                          warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.endpoint.url(), "http://localhost:4318/v1/traces");
  EXPECT_EQ(s->otlp.protocol, OtlpProtocol::kHttpProtobuf);
  EXPECT_EQ(s->otlp.compression, Compression::kNone);
  EXPECT_EQ(s->otlp.timeout, 10000ms);
  EXPECT_TRUE(s->otlp.headers.empty());
  EXPECT_TRUE(s->otlp.certificate.empty());
  EXPECT_TRUE(warnings.empty());
}

// ---------------------------------------------------------------------------------------------
// Endpoint variables

struct EndpointCase {
  Env env;
  const char* url;
};

class EndpointFromEnv : public ::testing::TestWithParam<EndpointCase> {};

TEST_P(EndpointFromEnv, BuildsTheTracesUrl) {
  Env env = GetParam().env;
  env.emplace("OTEL_TRACES_EXPORTER", "otlp");
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s = settingsFrom(env, warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.endpoint.url(), GetParam().url);
  EXPECT_TRUE(warnings.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EndpointFromEnv,
    ::testing::Values(
        EndpointCase{{}, "http://localhost:4318/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"}},
                     "http://h:4318/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/"}},
                     "http://h:4318/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h/base"}},
                     "http://h/base/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h/base/"}},
                     "http://h/base/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://h"}}, "https://h/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h/base?tenant=a"}},
                     "http://h/base/v1/traces?tenant=a"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1]:4318"}},
                     "http://[::1]:4318/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", " http://h:4318 "}},
                     "http://h:4318/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:4318/custom/path"}},
                     "http://h:4318/custom/path"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:4318"}},
                     "http://h:4318/"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:4318/v1/traces"}},
                     "http://h:4318/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://h/x?y=1"}},
                     "https://h/x?y=1"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"},
                      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/t"}},
                     "http://traces:9999/t"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"},
                      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""}},
                     "http://base:4318/v1/traces"},
        EndpointCase{{{"OTEL_EXPORTER_OTLP_ENDPOINT", ""}}, "http://localhost:4318/v1/traces"}));

struct EndpointError {
  const char* variable;
  const char* value;
  const char* reason;
};

class EndpointFromEnvError : public ::testing::TestWithParam<EndpointError> {};

TEST_P(EndpointFromEnvError, FailsNamingTheVariable) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{GetParam().variable, GetParam().value}}, warnings);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(s.status().message());
  EXPECT_TRUE(contains(message, std::string(GetParam().variable) + "=")) << message;
  EXPECT_TRUE(contains(message, GetParam().reason)) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EndpointFromEnvError,
    ::testing::Values(
        EndpointError{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "absolute"},
        EndpointError{"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c", "scheme"},
        EndpointError{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:70000", "port"},
        EndpointError{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/#x", "fragment"}));

TEST(EndpointFromEnv, ErrorRedactsCredentials) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://me:hunter2@c:4318"}}, warnings);
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(contains(s.status().message(), "hunter2")) << s.status();
  EXPECT_TRUE(contains(s.status().message(), "userinfo")) << s.status();
  EXPECT_TRUE(contains(s.status().message(), "http://REDACTED@c:4318")) << s.status();
}

// ---------------------------------------------------------------------------------------------
// Protocol

struct ProtocolCase {
  Env env;
  OtlpProtocol protocol;
};

class ProtocolFromEnv : public ::testing::TestWithParam<ProtocolCase> {};

TEST_P(ProtocolFromEnv, ReadsTheProtocol) {
  Env env = GetParam().env;
  env.emplace("OTEL_TRACES_EXPORTER", "otlp");
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s = settingsFrom(env, warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.protocol, GetParam().protocol);
  EXPECT_TRUE(warnings.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ProtocolFromEnv,
    ::testing::Values(
        ProtocolCase{{}, OtlpProtocol::kHttpProtobuf},
        ProtocolCase{{{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"}},
                     OtlpProtocol::kHttpProtobuf},
        ProtocolCase{{{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}}, OtlpProtocol::kHttpJson},
        ProtocolCase{{{"OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/JSON"}}, OtlpProtocol::kHttpJson},
        ProtocolCase{{{"OTEL_EXPORTER_OTLP_PROTOCOL", ""}}, OtlpProtocol::kHttpProtobuf},
        ProtocolCase{{{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"},
                      {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"}},
                     OtlpProtocol::kHttpJson},
        ProtocolCase{{{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                      {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"}},
                     OtlpProtocol::kHttpJson},
        ProtocolCase{{{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                      {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", ""}},
                     OtlpProtocol::kHttpJson}));

TEST(ProtocolFromEnv, GrpcIsAcceptedWithItsDefaultEndpoint) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", "otlp"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.protocol, OtlpProtocol::kGrpc);
  EXPECT_EQ(s->otlp.endpoint.url(), "http://localhost:4317/");
  EXPECT_EQ(s->otlp.endpoint.port, 4317);
  EXPECT_FALSE(s->otlp.endpoint.tls());
  EXPECT_TRUE(warnings.empty());
}

TEST(ProtocolFromEnv, GrpcFromTheTracesVariableWins) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                    {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.protocol, OtlpProtocol::kGrpc);
}

TEST(ProtocolFromEnv, GrpcUsesTheBaseEndpointAsGiven) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example:4317"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.endpoint.url(), "https://collector.example:4317/");  // no /v1/traces
  EXPECT_TRUE(s->otlp.endpoint.tls());
}

TEST(ProtocolFromEnv, GrpcUsesTheTracesEndpointAsGiven) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"},
                    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:5317"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.endpoint.url(), "http://c:5317/");
}

TEST(ProtocolFromEnv, GrpcEndpointWithoutSchemeIsTlsUnlessInsecure) {
  std::vector<std::string> warnings;
  absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.endpoint.url(), "https://c:4317/");
  s = settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                    {"OTEL_EXPORTER_OTLP_TRACES_INSECURE", "TRUE"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.endpoint.url(), "http://c:4317/");
  // A scheme decides by itself.
  s = settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                    {"OTEL_EXPORTER_OTLP_INSECURE", "true"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->otlp.endpoint.tls());
  EXPECT_TRUE(warnings.empty());
  s = settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                    {"OTEL_EXPORTER_OTLP_INSECURE", "yes"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->otlp.endpoint.tls());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "OTEL_EXPORTER_OTLP_INSECURE=\"yes\"")) << warnings[0];
}

TEST(ProtocolFromEnv, HttpEndpointWithoutSchemeIsStillAnError) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318"}}, warnings);
  EXPECT_FALSE(s.ok());
}

// Unknown, it is warned about and treated as not set: the next source applies.
TEST(ProtocolFromEnv, UnknownProtocolIsAWarningNamingValueAndAcceptedOnes) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", "otlp"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.protocol, OtlpProtocol::kHttpProtobuf);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/xml\"")) << warnings[0];
  EXPECT_TRUE(contains(warnings[0], "grpc, http/protobuf, http/json")) << warnings[0];
  EXPECT_TRUE(contains(warnings[0], "using http/protobuf (the default)")) << warnings[0];
}

TEST(ProtocolFromEnv, UnknownTracesProtocolGivesWayToTheGeneralThenTheLowerLayer) {
  std::vector<std::string> warnings;
  absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", "otlp"},
                    {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"},
                    {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}},
                   warnings, lowerLayer({{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.protocol, OtlpProtocol::kHttpJson);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "using OTEL_EXPORTER_OTLP_PROTOCOL instead")) << warnings[0];

  warnings.clear();
  s = settingsFrom({{"OTEL_TRACES_EXPORTER", "otlp"},
                    {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"}},
                   warnings, lowerLayer({{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.protocol, OtlpProtocol::kGrpc);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "using grpc from file:OTEL_EXPORTER_OTLP_PROTOCOL"))
      << warnings[0];
}

// ---------------------------------------------------------------------------------------------
// Headers

struct HeaderCase {
  const char* base;    // OTEL_EXPORTER_OTLP_HEADERS, nullptr: unset
  const char* traces;  // OTEL_EXPORTER_OTLP_TRACES_HEADERS, nullptr: unset
  Headers headers;
  // One entry per expected warning: pieces it must contain.
  std::vector<std::vector<std::string>> warnings;
};

class HeadersFromEnv : public ::testing::TestWithParam<HeaderCase> {};

TEST_P(HeadersFromEnv, ParsesPairs) {
  const HeaderCase& c = GetParam();
  Env env{{"OTEL_TRACES_EXPORTER", "otlp"}};
  if (c.base != nullptr) env.emplace("OTEL_EXPORTER_OTLP_HEADERS", c.base);
  if (c.traces != nullptr) env.emplace("OTEL_EXPORTER_OTLP_TRACES_HEADERS", c.traces);
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s = settingsFrom(env, warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.headers, c.headers);
  ASSERT_EQ(warnings.size(), c.warnings.size());
  for (size_t i = 0; i < warnings.size(); ++i) {
    for (const std::string& piece : c.warnings[i]) {
      EXPECT_TRUE(contains(warnings[i], piece)) << piece << " in " << warnings[i];
    }
  }
}

const std::string kBase = "OTEL_EXPORTER_OTLP_HEADERS";
const std::string kTraces = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";

INSTANTIATE_TEST_SUITE_P(
    Cases, HeadersFromEnv,
    ::testing::Values(
        HeaderCase{nullptr, nullptr, {}, {}},
        HeaderCase{"a=1,b=2", nullptr, {{"a", "1"}, {"b", "2"}}, {}},
        HeaderCase{" a = 1 ,\tb=2\t", nullptr, {{"a", "1"}, {"b", "2"}}, {}},
        HeaderCase{"Authorization=Basic%20dXNlcjpwYXNz",
                   nullptr,
                   {{"Authorization", "Basic dXNlcjpwYXNz"}},
                   {}},
        HeaderCase{"k=a%2Cb%3Dc%25", nullptr, {{"k", "a,b=c%"}}, {}},
        HeaderCase{"k=x=y", nullptr, {{"k", "x=y"}}, {}},
        HeaderCase{"k=", nullptr, {{"k", ""}}, {}},
        HeaderCase{"k=%c3%A9", nullptr, {{"k", "\xc3\xa9"}}, {}},
        HeaderCase{"k=a%09b", nullptr, {{"k", "a\tb"}}, {}},
        HeaderCase{"a=1,,b=2,", nullptr, {{"a", "1"}, {"b", "2"}}, {}},
        HeaderCase{"a=1,a=2", nullptr, {{"a", "2"}}, {}},
        HeaderCase{"x-api-key=k,X-Scope-OrgID=t1", nullptr,
                   {{"x-api-key", "k"}, {"X-Scope-OrgID", "t1"}}, {}},
        // Without '=' an entry may be the tail of a value cut at a comma: only its position.
        HeaderCase{"novalue,b=2", nullptr, {{"b", "2"}}, {{kBase, "entry 1", "key=value"}}},
        HeaderCase{"x-api-key=part1,part2secret",
                   nullptr,
                   {{"x-api-key", "part1"}},
                   {{kBase, "skipping entry 2 (not shown", "%2C"}}},
        HeaderCase{"=v", nullptr, {}, {{kBase, "empty"}}},
        HeaderCase{"bad key=v", nullptr, {}, {{kBase, "bad key", "token"}}},
        HeaderCase{"k(1)=v", nullptr, {}, {{kBase, "k(1)", "token"}}},
        HeaderCase{"k=%zz", nullptr, {}, {{kBase, "\"k=...\"", "'%'"}}},
        HeaderCase{"k=ab%4", nullptr, {}, {{kBase, "\"k=...\"", "'%'"}}},
        HeaderCase{"k=a%0D%0Ab", nullptr, {}, {{kBase, "\"k=...\"", "control"}}},
        HeaderCase{"k=a%0ab", nullptr, {}, {{kBase, "control"}}},
        HeaderCase{"k=a%00", nullptr, {}, {{kBase, "control"}}},
        HeaderCase{"k=a%7F", nullptr, {}, {{kBase, "control"}}},
        HeaderCase{"Content-Length=5,a=1", nullptr, {{"a", "1"}}, {{kBase, "Content-Length"}}},
        HeaderCase{"host=evil", nullptr, {}, {{kBase, "host"}}},
        HeaderCase{"Transfer-Encoding=chunked", nullptr, {}, {{kBase, "Transfer-Encoding"}}},
        HeaderCase{"a=1,b=2", "B=3,c=4", {{"a", "1"}, {"B", "3"}, {"c", "4"}}, {}},
        HeaderCase{nullptr, "c=4", {{"c", "4"}}, {}},
        HeaderCase{"a=1", "", {{"a", "1"}}, {}},
        HeaderCase{"", "a=1", {{"a", "1"}}, {}},
        HeaderCase{"a=1", "oops", {{"a", "1"}}, {{kTraces, "entry 1"}}},
        HeaderCase{"bad,a=1", "k=%", {{"a", "1"}}, {{kBase, "entry 1"}, {kTraces, "k=..."}}}));

TEST(HeadersFromEnv, WarningNeverRepeatsAValue) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", "otlp"},
                    {"OTEL_EXPORTER_OTLP_HEADERS",
                     "Authorization: Bearer s3cret,api-key=s3cret%0A,b@d=s3cret,k=a,s3cret"}},
                   warnings);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(warnings.size(), 4u);
  for (const std::string& w : warnings) {
    EXPECT_FALSE(contains(w, "s3cret")) << w;
    EXPECT_TRUE(contains(w, "OTEL_EXPORTER_OTLP_HEADERS")) << w;
  }
  // An entry without '=' is named by its position only: "Authorization: Bearer s3cret", or the
  // rest of a value with an unencoded comma.
  EXPECT_TRUE(contains(warnings[0], "entry 1")) << warnings[0];
  EXPECT_TRUE(contains(warnings[1], "api-key")) << warnings[1];
  EXPECT_TRUE(contains(warnings[2], "b@d")) << warnings[2];
  EXPECT_TRUE(contains(warnings[3], "entry 5")) << warnings[3];
}

// ---------------------------------------------------------------------------------------------
// Timeout and compression

// No warning when expected is nullptr; else exactly one, quoting expected.
void expectWarning(const std::vector<std::string>& warnings, const char* expected) {
  if (expected == nullptr) {
    EXPECT_TRUE(warnings.empty());
  } else {
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_TRUE(contains(warnings[0], expected)) << warnings[0];
  }
}

struct TimeoutCase {
  Env env;
  std::chrono::milliseconds timeout;
  const char* warning;  // nullptr: none; else the variable=value the warning must quote
};

class TimeoutFromEnv : public ::testing::TestWithParam<TimeoutCase> {};

TEST_P(TimeoutFromEnv, ReadsWholeMilliseconds) {
  Env env = GetParam().env;
  env.emplace("OTEL_TRACES_EXPORTER", "otlp");
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s = settingsFrom(env, warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.timeout, GetParam().timeout);
  expectWarning(warnings, GetParam().warning);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, TimeoutFromEnv,
    ::testing::Values(
        TimeoutCase{{}, 10000ms, nullptr},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "5000"}}, 5000ms, nullptr},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", " 250 "}}, 250ms, nullptr},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "1"}}, 1ms, nullptr},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "2147483647"}}, 2147483647ms, nullptr},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", ""}}, 10000ms, nullptr},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "5000"},
                     {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"}},
                    700ms, nullptr},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "5000"},
                     {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", ""}},
                    5000ms, nullptr},
        // The common configuration specification: a timeout of 0 means no limit.
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "0"}}, kNoTimeout, nullptr},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "-1"}}, 10000ms,
                    "OTEL_EXPORTER_OTLP_TIMEOUT=\"-1\""},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "1.5"}}, 10000ms,
                    "OTEL_EXPORTER_OTLP_TIMEOUT=\"1.5\""},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s"}}, 10000ms,
                    "OTEL_EXPORTER_OTLP_TIMEOUT=\"10s\""},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "2147483648"}}, 10000ms,
                    "OTEL_EXPORTER_OTLP_TIMEOUT=\"2147483648\""},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "99999999999999999999999"}}, 10000ms,
                    "OTEL_EXPORTER_OTLP_TIMEOUT=\"99999999999999999999999\""},
        // An unusable traces variable gives way to the general one.
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "5000"},
                     {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"}},
                    5000ms, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=\"soon\""},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"}}, kNoTimeout, nullptr},
        TimeoutCase{{{"OTEL_EXPORTER_OTLP_TIMEOUT", "5000"},
                     {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"}},
                    kNoTimeout, nullptr}));

TEST(TimeoutFromEnv, AnInvalidValueGivesWayToTheLowerLayer) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", "otlp"}, {"OTEL_EXPORTER_OTLP_TIMEOUT", "soon"}},
                   warnings, lowerLayer({{"OTEL_EXPORTER_OTLP_TIMEOUT", "2000"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.timeout, 2000ms);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "OTEL_EXPORTER_OTLP_TIMEOUT=\"soon\"")) << warnings[0];
  EXPECT_TRUE(contains(warnings[0], "using 2000 from file:OTEL_EXPORTER_OTLP_TIMEOUT"))
      << warnings[0];
}

struct CompressionCase {
  Env env;
  Compression compression;
  const char* warning;
};

class CompressionFromEnv : public ::testing::TestWithParam<CompressionCase> {};

TEST_P(CompressionFromEnv, ReadsGzipOrNone) {
  Env env = GetParam().env;
  env.emplace("OTEL_TRACES_EXPORTER", "otlp");
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s = settingsFrom(env, warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.compression, GetParam().compression);
  expectWarning(warnings, GetParam().warning);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CompressionFromEnv,
    ::testing::Values(
        CompressionCase{{}, Compression::kNone, nullptr},
        CompressionCase{{{"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"}}, Compression::kGzip,
                        nullptr},
        CompressionCase{{{"OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP"}}, Compression::kGzip,
                        nullptr},
        CompressionCase{{{"OTEL_EXPORTER_OTLP_COMPRESSION", "none"}}, Compression::kNone,
                        nullptr},
        CompressionCase{{{"OTEL_EXPORTER_OTLP_COMPRESSION", ""}}, Compression::kNone, nullptr},
        CompressionCase{{{"OTEL_EXPORTER_OTLP_COMPRESSION", "none"},
                         {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"}},
                        Compression::kGzip, nullptr},
        CompressionCase{{{"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                         {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"}},
                        Compression::kNone, nullptr},
        CompressionCase{{{"OTEL_EXPORTER_OTLP_COMPRESSION", "deflate"}}, Compression::kNone,
                        "OTEL_EXPORTER_OTLP_COMPRESSION=\"deflate\""},
        CompressionCase{{{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"}}, Compression::kNone,
                        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=\"zstd\""},
        CompressionCase{{{"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                         {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"}},
                        Compression::kGzip, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=\"zstd\""}));

// ---------------------------------------------------------------------------------------------
// TLS files

TEST(TlsFilesFromEnv, KeepsThePathsForAnHttpsEndpoint) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318"},
                    {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"},
                    {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/client.key"},
                    {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/client.pem"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.certificate, "/etc/ca.pem");
  EXPECT_EQ(s->otlp.client_key, "/etc/client.key");
  EXPECT_EQ(s->otlp.client_certificate, "/etc/client.pem");
  EXPECT_TRUE(warnings.empty());
}

TEST(TlsFilesFromEnv, TracesVariablesWinAndMixWithBaseOnes) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c/v1/traces"},
                    {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/base-ca.pem"},
                    {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/traces-ca.pem"},
                    {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/traces.key"},
                    {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/base.pem"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.certificate, "/traces-ca.pem");
  EXPECT_EQ(s->otlp.client_key, "/traces.key");
  EXPECT_EQ(s->otlp.client_certificate, "/base.pem");
  EXPECT_TRUE(warnings.empty());
}

TEST(TlsFilesFromEnv, CertificateForPlainHttpIsAWarning) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                    {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "OTEL_EXPORTER_OTLP_CERTIFICATE")) << warnings[0];
  EXPECT_TRUE(contains(warnings[0], "not used")) << warnings[0];
}

TEST(TlsFilesFromEnv, ClientPairForPlainHttpWarnsForEachFile) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", "otlp"},
                    {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/k"},
                    {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c"}},
                   warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_TRUE(contains(warnings[0], "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY")) << warnings[0];
  EXPECT_TRUE(contains(warnings[1], "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")) << warnings[1];
}

TEST(TlsFilesFromEnv, LowerLayerFilesPairWithVariablesAndAreNamedInWarnings) {
  std::vector<std::string> warnings;
  absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c"},
                    {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/env.key"}},
                   warnings,
                   lowerLayer({{"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/file.key"},
                               {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/file.pem"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.client_key, "/env.key");
  EXPECT_EQ(s->otlp.client_certificate, "/file.pem");
  EXPECT_TRUE(warnings.empty());

  s = settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"}}, warnings,
                   lowerLayer({{"OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "file:OTEL_EXPORTER_OTLP_CERTIFICATE is set")) << warnings[0];
}

TEST(EndpointFromEnv, EitherVariableHidesBothOfTheLowerLayersEndpoints) {
  const LowerLayer lower = lowerLayer({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://f/custom"},
                                       {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://f:4318"}});
  std::vector<std::string> warnings;
  absl::StatusOr<ExporterSettings> s = settingsFrom({}, warnings, lower);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.endpoint.url(), "http://f/custom");
  s = settingsFrom({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://e:4318"}}, warnings, lower);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.endpoint.url(), "http://e:4318/v1/traces");
}

TEST(HeadersFromEnv, TheLowerLayersListComesFirstAndVariablesWinPerKey) {
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s =
      settingsFrom({{"OTEL_TRACES_EXPORTER", "otlp"}, {"OTEL_EXPORTER_OTLP_HEADERS", "b=env"}},
                   warnings, lowerLayer({{"OTEL_EXPORTER_OTLP_HEADERS", "a=file,b=file"}}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->otlp.headers, (Headers{{"a", "file"}, {"b", "env"}}));
}

TEST(ExporterSettings, ConsolePathFromTheLowerLayerUnderTheVariable) {
  std::vector<std::string> warnings;
  const LowerLayer lower = lowerLayer({{"TRACECAR_CONSOLE_EXPORT_PATH", "/file.jsonl"}});
  absl::StatusOr<ExporterSettings> s = settingsFrom({}, warnings, lower);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->console_path, "/file.jsonl");
  s = settingsFrom({{"TRACECAR_CONSOLE_EXPORT_PATH", "/env.jsonl"}}, warnings, lower);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->console_path, "/env.jsonl");
}

struct HalfPair {
  Env env;
  const char* named;
};

class TlsHalfPair : public ::testing::TestWithParam<HalfPair> {};

TEST_P(TlsHalfPair, IsAnErrorNamingBothHalves) {
  Env env = GetParam().env;
  env.emplace("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c");
  std::vector<std::string> warnings;
  const absl::StatusOr<ExporterSettings> s = settingsFrom(env, warnings);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.status().message(), GetParam().named)) << s.status();
  EXPECT_TRUE(contains(s.status().message(), "both")) << s.status();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, TlsHalfPair,
    ::testing::Values(
        HalfPair{{{"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k"}}, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
        HalfPair{{{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/k"}},
                 "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"},
        HalfPair{{{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c"}},
                 "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"},
        HalfPair{{{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c"},
                  {"OTEL_EXPORTER_OTLP_CLIENT_KEY", ""}},
                 "OTEL_EXPORTER_OTLP_CLIENT_KEY"}));

}  // namespace
}  // namespace tracecar::exporter
