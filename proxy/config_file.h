#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/config.h"

namespace tracecar::proxy {

// The values of the YAML file that share a setting with an OTEL_* (or TRACECAR_*) variable. The
// loader lets the environment win over them, so they are kept in the variables' own syntax.
struct FileEnvLayer {
  struct Value {
    std::string text;      // in the variable's syntax, e.g. "250" for OTEL_BSP_SCHEDULE_DELAY
    std::string key;       // "exporter.batch.schedule_delay"
    std::string location;  // "tracecar.yaml:12"
    std::string written;   // as the file wrote it ("250ms"), when not as text reads
    std::string position;  // "tracecar.yaml:12:5", for errors
  };
  struct Pair {
    std::string key;
    std::string value;
    std::string location;
  };
  std::map<std::string, Value, std::less<>> variables;  // by variable name
  std::vector<Pair> resource_attributes;                // tracing.resource_attributes, in order
  std::optional<Pair> service_name;                     // tracing.service_name
  std::vector<Pair> headers;                            // exporter.headers, in order
  // exporter.client_key without client_certificate, or the reverse: the variable of the half
  // the file has, and the error to report unless a variable gives the pair its other half.
  struct LoneHalf {
    std::string variable;
    std::string error;
  };
  std::optional<LoneHalf> lone_client_file;
};

// upstreams.outbound and --upstream: what a value without a port is not.
inline constexpr std::string_view kOutboundWant =
    "not original_destination, host or HOST:PORT (a fixed upstream, e.g. egress.internal:3128)";

// Schema limits, shared with the flags.
inline constexpr long long kMaxWorkers = 1024;
inline constexpr long long kMaxHeaderBytes = 16 * 1024 * 1024;
inline constexpr long long kMaxHeaderCount = 65536;
inline constexpr long long kMaxUriLength = 16 * 1024 * 1024;
inline constexpr long long kMaxPropagationLimit = 16 * 1024 * 1024;
inline constexpr long long kMaxAttributeLimit = 2147483647;

// Reads a YAML configuration file (its text; name is used in messages). Settings the file alone
// provides go into loaded.config, with their origins; settings shared with a variable go into
// env_layer. Every error is appended to loaded.errors as "name:line:column: key.path: reason":
// syntax errors, unknown and duplicate keys, values of the wrong type or out of range.
void readConfigFile(std::string_view name, std::string_view text, LoadedConfig& loaded,
                    FileEnvLayer& env_layer);

}  // namespace tracecar::proxy
