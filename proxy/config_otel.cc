#include "proxy/config_otel.h"

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "propagation/percent_encoding.h"
#include "proxy/version.h"

namespace tracecar::proxy {
namespace {

// A file setting that stands in for a variable, and the variables that override it (the
// winning one first: OTEL_EXPORTER_OTLP_TRACES_* before OTEL_EXPORTER_OTLP_*).
struct Binding {
  std::string_view key;
  std::string_view variable;
  std::array<std::string_view, 2> overridden_by;
};

constexpr Binding kBindings[] = {
    {"tracing.propagators", "OTEL_PROPAGATORS", {"OTEL_PROPAGATORS", ""}},
    {"sampling.sampler", "OTEL_TRACES_SAMPLER", {"OTEL_TRACES_SAMPLER", ""}},
    {"sampling.ratio", "OTEL_TRACES_SAMPLER_ARG", {"OTEL_TRACES_SAMPLER_ARG", ""}},
    {"tracing.span_attribute_count_limit",
     "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
     {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"}},
    {"tracing.span_attribute_value_length_limit",
     "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
     {"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"}},
    {"exporter.type", "OTEL_TRACES_EXPORTER", {"OTEL_TRACES_EXPORTER", ""}},
    {"exporter.console_path", "TRACECAR_CONSOLE_EXPORT_PATH", {"TRACECAR_CONSOLE_EXPORT_PATH", ""}},
    // Either endpoint variable overrides both endpoint settings of the file.
    {"exporter.traces_endpoint",
     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
     {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}},
    {"exporter.endpoint",
     "OTEL_EXPORTER_OTLP_ENDPOINT",
     {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"}},
    {"exporter.protocol",
     "OTEL_EXPORTER_OTLP_PROTOCOL",
     {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"}},
    {"exporter.timeout",
     "OTEL_EXPORTER_OTLP_TIMEOUT",
     {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"}},
    {"exporter.compression",
     "OTEL_EXPORTER_OTLP_COMPRESSION",
     {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"}},
    {"exporter.certificate",
     "OTEL_EXPORTER_OTLP_CERTIFICATE",
     {"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"}},
    {"exporter.client_key",
     "OTEL_EXPORTER_OTLP_CLIENT_KEY",
     {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"}},
    {"exporter.client_certificate",
     "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
     {"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"}},
    {"exporter.thread_nice", "TRACECAR_EXPORTER_NICE", {"TRACECAR_EXPORTER_NICE", ""}},
    {"exporter.batch.schedule_delay", "OTEL_BSP_SCHEDULE_DELAY", {"OTEL_BSP_SCHEDULE_DELAY", ""}},
    {"exporter.batch.export_timeout", "OTEL_BSP_EXPORT_TIMEOUT", {"OTEL_BSP_EXPORT_TIMEOUT", ""}},
    {"exporter.batch.max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", {"OTEL_BSP_MAX_QUEUE_SIZE", ""}},
    {"exporter.batch.max_export_batch_size",
     "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
     {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", ""}},
    {"tracing.sdk_disabled", "OTEL_SDK_DISABLED", {"OTEL_SDK_DISABLED", ""}},
    {"tracing.known_methods",
     "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS",
     {"OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", ""}},
};

// The OTel rule: a variable set to blanks is unset.
bool isSet(const exporter::EnvLookup& env, std::string_view name) {
  return !name.empty() && exporter::readVariable(env, name).has_value();
}

void appendEncoded(std::string_view text, std::string& out) {
  propagation::appendPercentEncoded(text, out, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
  });
}

// "k=v,k2=v2" with keys and values percent-encoded, as the OTEL_* list variables are written.
std::string encodedList(const std::vector<FileEnvLayer::Pair>& pairs, bool encode_keys) {
  std::string out;
  for (const FileEnvLayer::Pair& pair : pairs) {
    if (!out.empty()) out += ',';
    if (encode_keys) {
      appendEncoded(pair.key, out);
    } else {
      out += pair.key;
    }
    out += '=';
    appendEncoded(pair.value, out);
  }
  return out;
}

// The file under the environment, as the OTel readers take it: each value in the syntax of
// its variable, the two lists (resource attributes with the service name last, and headers)
// written as their variables write them.
exporter::LowerLayer fileLayer(const FileEnvLayer& file) {
  std::vector<FileEnvLayer::Pair> resource = file.resource_attributes;
  if (file.service_name) resource.push_back(*file.service_name);
  std::map<std::string, std::string, std::less<>> names;
  std::map<std::string, std::string, std::less<>> values;
  std::map<std::string, std::string, std::less<>> written;
  for (const Binding& binding : kBindings) names.emplace(binding.variable, binding.key);
  for (const auto& [variable, value] : file.variables) {
    values.emplace(variable, value.text);
    if (!value.written.empty()) written.emplace(variable, value.written);
    names.insert_or_assign(variable, value.key + " (" + value.location + ")");
  }
  if (!resource.empty()) {
    values.emplace("OTEL_RESOURCE_ATTRIBUTES", encodedList(resource, true));
    names.emplace("OTEL_RESOURCE_ATTRIBUTES",
                  "tracing.resource_attributes (" + resource.front().location + ")");
  }
  if (!file.headers.empty()) {
    values.emplace("OTEL_EXPORTER_OTLP_HEADERS", encodedList(file.headers, false));
    names.emplace("OTEL_EXPORTER_OTLP_HEADERS",
                  "exporter.headers (" + file.headers.front().location + ")");
  }
  exporter::LowerLayer layer;
  layer.value = [values = std::move(values)](std::string_view variable)
      -> std::optional<std::string> {
    const auto found = values.find(variable);
    if (found == values.end()) return std::nullopt;
    return found->second;
  };
  layer.name = [names = std::move(names)](std::string_view variable) {
    const auto found = names.find(variable);
    return found == names.end() ? std::string(variable) : found->second;
  };
  layer.written = [written = std::move(written)](std::string_view variable) {
    const auto found = written.find(variable);
    return found == written.end() ? std::string() : found->second;
  };
  return layer;
}

// A warning that starts with the variable (`NAME="value" ...` or `NAME: ...`) says that its value
// was ignored as a whole; one about a part of a value the setting still takes (an unknown name
// in a list) is worded otherwise.
bool warnedAbout(const std::vector<std::string>& warnings, std::string_view variable) {
  const std::string quoted = std::string(variable) + "=\"";
  const std::string colon = std::string(variable) + ": ";
  for (const std::string& warning : warnings) {
    if (warning.rfind(quoted, 0) == 0 || warning.rfind(colon, 0) == 0) return true;
  }
  return false;
}

// grpc: the endpoint is used as given; the HTTP protocols append v1/traces to the base one.
void recordEnvOrigins(const exporter::EnvLookup& env, const FileEnvLayer& file,
                      const std::vector<std::string>& warnings, bool grpc, Origins& origins) {
  for (const Binding& binding : kBindings) {
    // The readers pass over a variable they warned about to the binding's next one (the traces
    // variable to the general one); the default when none is left.
    std::string invalid;
    bool from_env = false;
    for (const std::string_view name : binding.overridden_by) {
      if (!isSet(env, name)) continue;
      if (warnedAbout(warnings, name)) {
        if (!invalid.empty()) invalid += ", ";
        invalid += name;
        continue;
      }
      std::string detail(name);
      if (!invalid.empty()) detail += " (" + invalid + " is invalid and was ignored)";  // one
      origins[std::string(binding.key)] = Origin{Source::kEnv, std::move(detail)};
      from_env = true;
      break;
    }
    if (from_env) continue;
    // An invalid variable counts as not set: the file's value, else the default.
    const auto value = file.variables.find(binding.variable);
    if (!invalid.empty()) {
      const bool several = invalid.find(',') != std::string::npos;
      std::string why =
          invalid + (several ? " are invalid and were ignored" : " is invalid and was ignored");
      origins[std::string(binding.key)] =
          value != file.variables.end()
              ? Origin{Source::kFile, value->second.location + " (" + why + ")",
                       value->second.position}
              : Origin{Source::kDefault, std::move(why)};
      continue;
    }
    if (value != file.variables.end()) {
      origins[std::string(binding.key)] =
          Origin{Source::kFile, value->second.location, value->second.position};
    }
  }
  // One effective endpoint, from either setting.
  if (!origins.contains("exporter.traces_endpoint")) {
    if (const auto base = origins.find("exporter.endpoint"); base != origins.end()) {
      origins["exporter.traces_endpoint"] = Origin{
          base->second.source, base->second.detail + (grpc ? ", endpoint" : ", endpoint + v1/traces")};
    }
  } else if (!grpc && origins["exporter.traces_endpoint"].detail == "OTEL_EXPORTER_OTLP_ENDPOINT") {
    origins["exporter.traces_endpoint"].detail += " + v1/traces";
  }
  // Headers merge: the file's, then the environment's.
  const bool env_headers =
      isSet(env, "OTEL_EXPORTER_OTLP_HEADERS") || isSet(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
  if (env_headers && !file.headers.empty()) {
    origins["exporter.headers"] = Origin{
        Source::kEnv, "OTEL_EXPORTER_OTLP_[TRACES_]HEADERS over " + file.headers.front().location};
  } else if (env_headers) {
    origins["exporter.headers"] = Origin{Source::kEnv, "OTEL_EXPORTER_OTLP_[TRACES_]HEADERS"};
  } else if (!file.headers.empty()) {
    origins["exporter.headers"] = Origin{Source::kFile, file.headers.front().location};
  }
}

// Where each resource attribute came from: the layer that set it last, as the resource
// recorded it while it was built.
void recordResourceOrigins(const FileEnvLayer& file, const exporter::Resource& resource,
                           Origins& origins) {
  std::vector<FileEnvLayer::Pair> from_file = file.resource_attributes;
  if (file.service_name) from_file.push_back(*file.service_name);
  for (const exporter::Attribute& attribute : resource.attributes().items()) {
    const std::string key = "resource." + std::string(attribute.key.view());
    const exporter::Resource::Source source = resource.sourceOf(attribute.key.view());
    switch (source.layer) {
      case exporter::Resource::Layer::kBuiltIn:
        break;
      case exporter::Resource::Layer::kKubernetes:
        origins[key] = Origin{Source::kEnv, source.variable + " (Kubernetes downward API)"};
        break;
      case exporter::Resource::Layer::kResourceAttributes:
        origins[key] = Origin{Source::kEnv, "OTEL_RESOURCE_ATTRIBUTES"};
        break;
      case exporter::Resource::Layer::kServiceName:
        origins[key] = Origin{Source::kEnv, "OTEL_SERVICE_NAME"};
        break;
      case exporter::Resource::Layer::kLower:
        // The file's last entry for the key (service_name comes after resource_attributes).
        for (auto it = from_file.rbegin(); it != from_file.rend(); ++it) {
          if (it->key == attribute.key) {
            origins[key] = Origin{Source::kFile, it->location};
            break;
          }
        }
        break;
    }
  }
}

// OTEL_PROPAGATORS over the file's tracing.propagators (checked when the file was read). An
// unknown name in the variable is skipped with a warning and the known ones kept; with none
// left, the variable counts as not set. "none" with other names, or an empty name, is an error.
void readPropagators(const exporter::EnvLookup& env, const exporter::LowerLayer& lower,
                     ProxyConfig& config, std::vector<std::string>& warnings,
                     std::vector<std::string>& errors) {
  std::string instead = "tracecontext,baggage (the default)";
  config.propagation.propagators = propagation::PropagationConfig{}.propagators;
  if (const auto from_file = exporter::readLower(lower, "OTEL_PROPAGATORS")) {
    if (auto kinds = propagation::parsePropagators(from_file->value); kinds.ok()) {
      config.propagation.propagators = *std::move(kinds);
      instead = from_file->shown() + " from " + from_file->name;
    }
  }
  const auto variable = exporter::readVariable(env, "OTEL_PROPAGATORS");
  if (!variable) return;
  absl::StatusOr<propagation::PropagatorList> list =
      propagation::parsePropagatorList(variable->value);
  if (!list.ok()) {
    errors.emplace_back(list.status().message());
    return;
  }
  if (list->unknown.empty()) {
    config.propagation.propagators = std::move(list->kinds);
    return;
  }
  std::string unknown;
  for (const std::string& name : list->unknown) {
    unknown += (unknown.empty() ? "\"" : ", \"") + name + "\"";
  }
  const std::string named =
      (list->unknown.size() == 1 ? "unknown propagator " : "unknown propagators ") + unknown;
  if (!list->kinds.empty() || list->none) {
    // Worded without the variable first: the variable itself is in use.
    warnings.push_back(named + " in OTEL_PROPAGATORS=\"" + variable->value + "\" ignored (" +
                       std::string(propagation::kKnownPropagators) + ")");
    config.propagation.propagators = std::move(list->kinds);
    return;
  }
  warnings.push_back("OTEL_PROPAGATORS=\"" + variable->value + "\": " + named + " (" +
                     std::string(propagation::kKnownPropagators) + "); using " + instead);
}

// OTEL_TRACES_SAMPLER and _ARG over the file's sampling.sampler and ratio (checked when the file
// was read). sampling::fromEnv reads them as the specification says; an invalid variable gives
// way to the file's value, when there is one, before the default.
sampling::SamplerSettings readSampler(const exporter::EnvLookup& env,
                                      const exporter::LowerLayer& lower,
                                      std::vector<std::string>& warnings) {
  const auto file_sampler = exporter::readLower(lower, "OTEL_TRACES_SAMPLER");
  const auto file_ratio = exporter::readLower(lower, "OTEL_TRACES_SAMPLER_ARG");
  std::string sampler = file_sampler ? file_sampler->value : "";
  if (const auto variable = exporter::readVariable(env, "OTEL_TRACES_SAMPLER")) {
    const absl::StatusOr<sampling::SamplerKind> kind = sampling::parseSamplerKind(variable->value);
    if (kind.ok() || !file_sampler) {
      sampler = variable->value;  // an invalid one is fromEnv's to report, with the default
    } else {
      warnings.push_back("OTEL_TRACES_SAMPLER: " + std::string(kind.status().message()) +
                         "; using " + file_sampler->shown() + " from " + file_sampler->name);
    }
  }
  const absl::StatusOr<sampling::SamplerKind> kind = sampling::parseSamplerKind(sampler);
  std::string ratio = file_ratio ? file_ratio->value : "";
  if (const auto variable = exporter::readVariable(env, "OTEL_TRACES_SAMPLER_ARG")) {
    const absl::StatusOr<double> parsed = sampling::parseRatio(variable->value);
    if (parsed.ok() || !file_ratio || !kind.ok() || !sampling::usesRatio(*kind)) {
      ratio = variable->value;
    } else {
      warnings.push_back("OTEL_TRACES_SAMPLER_ARG: " + std::string(parsed.status().message()) +
                         "; using " + file_ratio->shown() + " from " + file_ratio->name);
    }
  }
  return sampling::fromEnv(sampler, ratio, warnings);
}

// OTEL_SDK_DISABLED, a Boolean as the SDK environment specification defines them: "true" (any
// case) is true; any other value is false, with a warning unless it is "false". Unlike other
// invalid values it does not give way to the file: the specification fixes it to false. Unset
// or blank: the file's tracing.sdk_disabled, else false.
bool readSdkDisabled(const exporter::EnvLookup& env, const exporter::LowerLayer& lower,
                     std::vector<std::string>& warnings) {
  if (const auto variable = exporter::readVariable(env, "OTEL_SDK_DISABLED")) {
    return exporter::booleanValue(*variable, warnings,
                                  ", as the specification says of any value but true");
  }
  const auto from_file = exporter::readLower(lower, "OTEL_SDK_DISABLED");
  return from_file && from_file->value == "true";
}

// OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS over the file's tracing.known_methods (checked when the
// file was read): a full override of the defaults. A variable with a name that is not a method
// is ignored whole with a warning, as any invalid value: the file's list applies, else the
// defaults.
semconv::KnownMethods readKnownMethods(const exporter::EnvLookup& env,
                                       const exporter::LowerLayer& lower,
                                       std::vector<std::string>& warnings) {
  constexpr std::string_view kVariable = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS";
  const std::optional<exporter::EnvValue> candidates[] = {exporter::readVariable(env, kVariable),
                                                          exporter::readLower(lower, kVariable)};
  const auto parse = [](std::string_view text) -> std::optional<semconv::KnownMethods> {
    absl::StatusOr<semconv::KnownMethods> known = semconv::KnownMethods::parse(text);
    if (!known.ok()) return std::nullopt;
    return *std::move(known);
  };
  // Only the variable can be refused (the file's list was checked): the problem is its own.
  std::string problem = "is not a comma-separated list of HTTP methods";
  if (candidates[0]) {
    const absl::StatusOr<semconv::KnownMethods> known =
        semconv::KnownMethods::parse(candidates[0]->value);
    if (!known.ok()) {
      constexpr std::string_view kPrefix = "known HTTP methods: ";
      std::string why(known.status().message());
      if (why.rfind(kPrefix, 0) == 0) why.erase(0, kPrefix.size());
      problem += " (" + why + ")";
    }
  }
  const auto picked = exporter::pickSetting<semconv::KnownMethods>(
      candidates, parse, problem, "the default " + semconv::KnownMethods().toString(), warnings);
  return picked ? picked->first : semconv::KnownMethods();
}

// The file is strict: a batch size it gave (the winning value) that the effective queue cannot
// hold is an error at its key, whichever layer set the queue. (BatchConfig::fromEnv clamps a
// variable's with a warning, as OTel says, and brings the default down with a smaller queue.)
void checkFileBatchFitsQueue(const FileEnvLayer& file, LoadedConfig& loaded,
                             std::vector<std::string>& errors) {
  exporter::BatchConfig& batch = loaded.config.exporter.batch;
  if (batch.max_export_batch_size <= batch.max_queue_size) return;
  const auto value = file.variables.find("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
  if (value == file.variables.end()) return;
  const Origin queue = loaded.origin("exporter.batch.max_queue_size");
  const std::string size = std::to_string(batch.max_queue_size);
  std::string limit;
  switch (queue.source) {
    case Source::kFile:
      limit = "exporter.batch.max_queue_size (" + size + ")";
      break;
    case Source::kEnv:
    case Source::kFlag:
      limit = "the queue size, " + size + " from " + queue.detail;
      break;
    case Source::kDefault:
      limit = "the queue size, " + size + " by default (exporter.batch.max_queue_size)";
      break;
  }
  errors.push_back(value->second.location + ": " + value->second.key +
                   ": must not be larger than " + limit);
  batch.max_export_batch_size = batch.max_queue_size;
}

}  // namespace

void readOtelSettings(const exporter::EnvLookup& env, const FileEnvLayer& file,
                      LoadedConfig& loaded) {
  ProxyConfig& config = loaded.config;
  std::vector<std::string> warnings;
  std::vector<std::string> errors;
  // Half an mTLS pair in the file: complete when a variable gives the other half (the layers
  // combine per setting), the variables' reader's to judge when one replaces that half. With
  // neither half from a variable, an error at the file's key, and the lone half is left out so
  // that the variables' reader does not report it again under a variable nobody set.
  FileEnvLayer without_lone_half;
  const FileEnvLayer* layer = &file;
  if (file.lone_client_file) {
    bool a_variable_has_a_half = false;
    for (std::string_view half : {"CLIENT_KEY", "CLIENT_CERTIFICATE"}) {
      a_variable_has_a_half = a_variable_has_a_half ||
                              isSet(env, "OTEL_EXPORTER_OTLP_" + std::string(half)) ||
                              isSet(env, "OTEL_EXPORTER_OTLP_TRACES_" + std::string(half));
    }
    if (!a_variable_has_a_half) {
      errors.push_back(file.lone_client_file->error);
      without_lone_half = file;
      without_lone_half.variables.erase(file.lone_client_file->variable);
      layer = &without_lone_half;
    }
  }
  const exporter::LowerLayer lower = fileLayer(*layer);

  readPropagators(env, lower, config, warnings, errors);
  config.exporter.settings = exporter::exporterSettingsFromEnv(env, warnings, errors, lower);
  config.exporter.batch = exporter::BatchConfig::fromEnv(env, warnings, lower);
  config.sampling.sampler = readSampler(env, lower, warnings);
  config.tracing.attribute_limits = exporter::attributeLimitsFromEnv(env, warnings, lower);
  config.tracing.resource = exporter::Resource::fromEnvironment(env, kVersion, warnings, lower);
  config.tracing.sdk_disabled = readSdkDisabled(env, lower, warnings);
  config.tracing.known_methods = readKnownMethods(env, lower, warnings);

  recordEnvOrigins(env, file, warnings,
                   config.exporter.settings.otlp.protocol == exporter::OtlpProtocol::kGrpc,
                   loaded.origins);
  // A Boolean variable decides even when it is not true or false.
  if (isSet(env, "OTEL_SDK_DISABLED")) {
    loaded.origins["tracing.sdk_disabled"] = Origin{Source::kEnv, "OTEL_SDK_DISABLED"};
  }
  recordResourceOrigins(file, config.tracing.resource, loaded.origins);
  checkFileBatchFitsQueue(file, loaded, errors);
  for (std::string& error : errors) loaded.errors.push_back(std::move(error));
  for (std::string& warning : warnings) loaded.warnings.push_back(std::move(warning));
}

}  // namespace tracecar::proxy
