#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporter/deadline.h"
#include "exporter/env.h"

namespace tracecar::exporter {

enum class OtlpProtocol : uint8_t { kHttpProtobuf, kHttpJson, kGrpc };
enum class Compression : uint8_t { kNone, kGzip };
std::string_view protocolName(OtlpProtocol protocol) noexcept;  // "http/protobuf", ...

// An http:// or https:// URL split for the transport.
struct Endpoint {
  std::string scheme;  // "http" or "https"
  std::string host;    // name or IP literal, without IPv6 brackets
  uint16_t port = 0;   // explicit, or 80/443 by scheme
  std::string path;    // path and query, at least "/"

  bool tls() const noexcept { return scheme == "https"; }
  std::string hostHeader() const;  // host[:port] (brackets for IPv6), port left out when default
  std::string url() const;         // scheme://hostHeader path
};

// Parses an absolute http(s) URL. Errors say what is wrong (scheme, host, port, userinfo...).
absl::StatusOr<Endpoint> parseEndpoint(std::string_view url);

// Where spans go: OTEL_TRACES_EXPORTER = otlp | console | none. When unset: otlp if an OTLP
// endpoint variable is set, else console (so a sidecar with no collector still shows spans).
enum class ExporterKind : uint8_t { kOtlp, kConsole, kNone };

// Settings of the OTLP exporter from the OTEL_EXPORTER_OTLP_* variables. Each variable has a
// _TRACES_ form (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT...) which wins when set and non-empty.
struct OtlpConfig {
  // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given; for http/* OTEL_EXPORTER_OTLP_ENDPOINT
  // is a base to which "v1/traces" is appended (after a '/' when it does not end in one), for
  // grpc it is used as given too. Default http://localhost:4318/v1/traces (http/*) or
  // http://localhost:4317 (grpc). grpc also takes "host:port" without a scheme: https, or http
  // when OTEL_EXPORTER_OTLP_[TRACES_]INSECURE=true (which matters for nothing else).
  Endpoint endpoint;
  OtlpProtocol protocol = OtlpProtocol::kHttpProtobuf;  // OTEL_EXPORTER_OTLP_PROTOCOL
  Compression compression = Compression::kNone;         // OTEL_EXPORTER_OTLP_COMPRESSION
  // OTEL_EXPORTER_OTLP_HEADERS: "k1=v1,k2=v2", trimmed, values percent-decoded. A malformed
  // pair is reported (by its key, or its position when it has no '=', never its value) and
  // skipped. Both variables' headers are sent, the _TRACES_ one winning for the same key.
  std::vector<std::pair<std::string, std::string>> headers;
  // OTEL_EXPORTER_OTLP_TIMEOUT, per batch export; kNoTimeout (what 0 means in the variable):
  // no limit.
  std::chrono::milliseconds timeout{10000};
  std::string certificate;         // OTEL_EXPORTER_OTLP_CERTIFICATE: CA bundle for the server
  std::string client_key;          // OTEL_EXPORTER_OTLP_CLIENT_KEY (mTLS)
  std::string client_certificate;  // OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE (mTLS)
};

struct ExporterSettings {
  ExporterKind kind = ExporterKind::kConsole;
  OtlpConfig otlp;           // meaningful when kind == kOtlp
  std::string console_path;  // TRACECAR_CONSOLE_EXPORT_PATH; empty: standard output
};

// Reads the exporter variables, each over the lower layer's value of its setting. Values the
// spec says to ignore when invalid (an unknown exporter, protocol or compression, a timeout, a
// header pair) add a warning naming the variable and are treated as not set: the next source
// applies (the general variable, the lower layer, the default), and the warning says which.
// An unknown name in the OTEL_TRACES_EXPORTER list is skipped, the known one kept. What cannot
// be ignored safely adds an error naming the variable and the value: two exporters at once, an
// empty name in OTEL_TRACES_EXPORTER (as in OTEL_PROPAGATORS), an endpoint that is not an
// http(s) URL, a client key without a client certificate (or the reverse). Every error is
// added, not only the first; the settings are usable only when none was.
ExporterSettings exporterSettingsFromEnv(const EnvLookup& env, std::vector<std::string>& warnings,
                                         std::vector<std::string>& errors,
                                         const LowerLayer& lower = {});

}  // namespace tracecar::exporter
