#include "exporter/otlp_config.h"

#include <arpa/inet.h>

#include <absl/status/status.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

#include "base/ascii.h"
#include "http/token.h"
#include "propagation/percent_encoding.h"

namespace tracecar::exporter {
namespace {

// Largest accepted OTEL_EXPORTER_OTLP_TIMEOUT: the spec asks for at least 0..2^31-1.
constexpr long long kMaxTimeoutMs = 2147483647;
constexpr uint16_t kDefaultHttpPort = 80;
constexpr uint16_t kDefaultHttpsPort = 443;

// The spec's defaults: http/protobuf and http/json, and grpc.
Endpoint defaultEndpoint() { return Endpoint{"http", "localhost", 4318, "/v1/traces"}; }
Endpoint defaultGrpcEndpoint() { return Endpoint{"http", "localhost", 4317, "/"}; }

constexpr std::string_view kTracesPrefix = "OTEL_EXPORTER_OTLP_TRACES_";
constexpr std::string_view kBasePrefix = "OTEL_EXPORTER_OTLP_";

bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }
bool isAlpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii::toLower(c);
  return out;
}

// std::nullopt when a '%' is not followed by two hex digits.
std::optional<std::string> percentDecoded(std::string_view in) {
  std::string out;
  if (!propagation::percentDecode(in, out)) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------------------------
// URL parsing

absl::Status urlError(const std::string& reason) { return absl::InvalidArgumentError(reason); }

// A DNS-style name: labels of letters, digits, '-' and '_' separated by dots, one trailing dot
// allowed. All digits and dots must be a dotted-quad IPv4 address.
absl::Status checkHostName(std::string_view host) {
  bool numeric = true;
  for (char c : host) {
    if (isDigit(c) || c == '.') continue;
    numeric = false;
    if (!isAlpha(c) && c != '-' && c != '_') {
      return urlError(std::string("invalid character '") + c + "' in the host name");
    }
  }
  if (numeric) {
    in_addr address{};
    if (inet_pton(AF_INET, std::string(host).c_str(), &address) != 1) {
      return urlError("invalid IPv4 address \"" + std::string(host) + "\"");
    }
    return absl::OkStatus();
  }
  std::string_view name = host;
  if (name.back() == '.') name.remove_suffix(1);
  if (name.size() > 253) return urlError("the host name is longer than 253 characters");
  while (true) {
    const size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty()) return urlError("the host name has an empty label (\"..\" or a leading dot)");
    if (label.size() > 63) return urlError("a label of the host name is longer than 63 characters");
    if (label.front() == '-' || label.back() == '-') {
      return urlError("a label of the host name starts or ends with '-'");
    }
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  return absl::OkStatus();
}

absl::Status checkIpv6Literal(std::string_view literal) {
  if (literal.empty()) return urlError("empty IPv6 literal \"[]\"");
  if (literal.find('%') != std::string_view::npos) {
    return urlError("IPv6 zone identifiers are not supported");
  }
  in6_addr address{};
  if (inet_pton(AF_INET6, std::string(literal).c_str(), &address) != 1) {
    return urlError("invalid IPv6 literal \"[" + std::string(literal) + "]\"");
  }
  return absl::OkStatus();
}

// An empty port text means the scheme's default (RFC 3986 allows "host:").
absl::StatusOr<uint16_t> parsePort(std::string_view text, uint16_t default_port) {
  if (text.empty()) return default_port;
  uint32_t value = 0;
  for (char c : text) {
    if (!isDigit(c)) return urlError("invalid port \"" + std::string(text) + "\" (want 1..65535)");
    value = value * 10 + static_cast<uint32_t>(c - '0');
    if (value > 65535) break;
  }
  if (value == 0 || value > 65535) {
    return urlError("port \"" + std::string(text) + "\" is out of range (want 1..65535)");
  }
  return static_cast<uint16_t>(value);
}

// The URL with any userinfo replaced, for messages: credentials must not reach logs.
std::string redactedUrl(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::string(url);
  const size_t start = sep + 3;
  const size_t end = url.find_first_of("/?#", start);
  const std::string_view authority = url.substr(start, end == std::string_view::npos
                                                          ? std::string_view::npos
                                                          : end - start);
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, start)) + "REDACTED" + std::string(url.substr(start + at));
}

// ---------------------------------------------------------------------------------------------
// Environment

std::string tracesVariable(std::string_view suffix) {
  return std::string(kTracesPrefix) + std::string(suffix);
}
std::string generalVariable(std::string_view suffix) {
  return std::string(kBasePrefix) + std::string(suffix);
}

// The values a setting with a _TRACES_ form may take, in order: OTEL_EXPORTER_OTLP_TRACES_<suffix>,
// OTEL_EXPORTER_OTLP_<suffix>, the lower layer's value.
std::array<std::optional<EnvValue>, 3> signalCandidates(const EnvLookup& env,
                                                         const LowerLayer& lower,
                                                         std::string_view suffix) {
  return {readVariable(env, tracesVariable(suffix)), readVariable(env, generalVariable(suffix)),
          readLower(lower, generalVariable(suffix))};
}

// The first candidate that is set, whatever its value (file paths).
std::optional<EnvValue> firstSet(const std::array<std::optional<EnvValue>, 3>& candidates) {
  for (const std::optional<EnvValue>& candidate : candidates) {
    if (candidate) return candidate;
  }
  return std::nullopt;
}

std::optional<ExporterKind> parseExporterName(std::string_view name) {
  if (ascii::equalsIgnoreCase(name, "otlp")) return ExporterKind::kOtlp;
  if (ascii::equalsIgnoreCase(name, "console")) return ExporterKind::kConsole;
  if (ascii::equalsIgnoreCase(name, "none")) return ExporterKind::kNone;
  return std::nullopt;
}

std::string_view exporterName(ExporterKind kind) {
  switch (kind) {
    case ExporterKind::kOtlp:
      return "otlp";
    case ExporterKind::kConsole:
      return "console";
    case ExporterKind::kNone:
      break;
  }
  return "none";
}

constexpr std::string_view kKnownExporters = "known: otlp, console, none";

// OTEL_TRACES_EXPORTER is a list; tracecar runs one exporter. An unknown name is skipped with a
// warning (the SDK environment specification: warn and ignore a value not recognised);
// std::nullopt when no known name is left, and the variable then counts as not set. instead:
// what applies then, for the warning. Two different known names, or an empty name, are errors.
std::optional<ExporterKind> exporterFromList(const EnvValue& setting, std::string_view instead,
                                             std::vector<std::string>& warnings,
                                             std::vector<std::string>& errors) {
  std::optional<ExporterKind> chosen;
  std::string unknown;
  bool several = false;
  std::string_view list = setting.value;
  for (bool more = true; more;) {
    const size_t comma = list.find(',');
    const std::string_view item = ascii::trimOws(list.substr(0, comma));
    more = comma != std::string_view::npos;  // a trailing comma leaves an empty name
    list = more ? list.substr(comma + 1) : std::string_view();
    if (item.empty()) {
      // As in OTEL_PROPAGATORS: "otlp,," or "," is a slip to correct, not a name to skip (a
      // list of no name at all would otherwise pass for a choice).
      errors.push_back(setting.name + ": empty exporter name in \"" + setting.value + "\"");
      return std::nullopt;
    }
    const std::optional<ExporterKind> kind = parseExporterName(item);
    if (!kind) {
      unknown += (unknown.empty() ? "\"" : ", \"") + std::string(item) + "\"";
      continue;
    }
    several = several || (chosen && *chosen != *kind);
    if (!chosen) chosen = kind;
  }
  if (several) {
    errors.push_back(setting.name + "=\"" + setting.value +
                     "\": only one exporter at a time is supported; choose one of otlp, console, "
                     "none");
  }
  if (unknown.empty()) return chosen;
  if (chosen) {
    // Worded without the variable first: the variable itself is in use.
    warnings.push_back("unknown exporter " + unknown + " in " + setting.name + "=\"" +
                       setting.value + "\" ignored (" + std::string(kKnownExporters) + ")");
    return chosen;
  }
  warnings.push_back(setting.name + "=\"" + setting.value + "\": unknown exporter " + unknown +
                     " (" + std::string(kKnownExporters) + "); using " + std::string(instead));
  return std::nullopt;
}

ExporterKind exporterKind(const EnvLookup& env, const LowerLayer& lower,
                          std::vector<std::string>& warnings, std::vector<std::string>& errors) {
  // When nothing names one: otlp only when the user pointed us at a collector.
  const bool endpoint_set = readVariable(env, "OTEL_EXPORTER_OTLP_ENDPOINT").has_value() ||
                            readVariable(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").has_value() ||
                            readLower(lower, "OTEL_EXPORTER_OTLP_ENDPOINT").has_value() ||
                            readLower(lower, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").has_value();
  const ExporterKind by_default = endpoint_set ? ExporterKind::kOtlp : ExporterKind::kConsole;
  const std::optional<EnvValue> from_lower = readLower(lower, "OTEL_TRACES_EXPORTER");
  std::optional<ExporterKind> lower_kind;
  if (from_lower) lower_kind = exporterFromList(*from_lower, "", warnings, errors);
  if (const std::optional<EnvValue> variable = readVariable(env, "OTEL_TRACES_EXPORTER")) {
    const std::string instead =
        lower_kind ? std::string(exporterName(*lower_kind)) + " from " + from_lower->name
                   : std::string(exporterName(by_default)) + " (the default: " +
                         (endpoint_set ? "an endpoint is set)" : "no endpoint is set)");
    if (const std::optional<ExporterKind> kind =
            exporterFromList(*variable, instead, warnings, errors)) {
      return *kind;
    }
  }
  return lower_kind.value_or(by_default);
}

std::optional<OtlpProtocol> parseProtocol(std::string_view text) {
  if (ascii::equalsIgnoreCase(text, "http/protobuf")) return OtlpProtocol::kHttpProtobuf;
  if (ascii::equalsIgnoreCase(text, "http/json")) return OtlpProtocol::kHttpJson;
  if (ascii::equalsIgnoreCase(text, "grpc")) return OtlpProtocol::kGrpc;
  return std::nullopt;
}

// OTEL_EXPORTER_OTLP_[TRACES_]INSECURE: true or false (case-insensitive); anything else is
// ignored with a warning.
bool insecureFromEnv(const EnvLookup& env, std::vector<std::string>& warnings) {
  std::optional<EnvValue> setting = readVariable(env, tracesVariable("INSECURE"));
  if (!setting) setting = readVariable(env, generalVariable("INSECURE"));
  return setting && booleanValue(*setting, warnings);
}

// The first endpoint set of: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as given),
// OTEL_EXPORTER_OTLP_ENDPOINT (a base), then the lower layer's two in the same order; so either
// variable hides both of the lower layer's. std::nullopt (and an error) when it is unusable.
std::optional<Endpoint> endpointFromEnv(const EnvLookup& env, const LowerLayer& lower, bool grpc,
                                        bool insecure, std::vector<std::string>& errors) {
  struct Source {
    std::optional<EnvValue> setting;
    bool base;
  };
  const Source sources[] = {
      {readVariable(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), false},
      {readVariable(env, "OTEL_EXPORTER_OTLP_ENDPOINT"), true},
      {readLower(lower, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), false},
      {readLower(lower, "OTEL_EXPORTER_OTLP_ENDPOINT"), true},
  };
  for (const Source& source : sources) {
    if (!source.setting) continue;
    const EnvValue& s = *source.setting;
    // gRPC takes "host:port" without a scheme too: TLS unless OTEL_EXPORTER_OTLP_INSECURE=true.
    absl::StatusOr<Endpoint> endpoint =
        grpc && s.value.find("://") == std::string::npos
            ? parseEndpoint((insecure ? "http://" : "https://") + s.value)
            : parseEndpoint(s.value);
    if (!endpoint.ok()) {
      errors.push_back(s.name + "=\"" + redactedUrl(s.value) + "\" is not a usable endpoint: " +
                       std::string(endpoint.status().message()));
      return std::nullopt;
    }
    // The traces endpoint is used as given; gRPC names the method in :path itself.
    if (!source.base || grpc) return *std::move(endpoint);
    // The signal path goes at the end of the path, before any query.
    const size_t query = endpoint->path.find('?');
    std::string path = endpoint->path.substr(0, query);
    const std::string rest = query == std::string::npos ? "" : endpoint->path.substr(query);
    if (path.back() != '/') path.push_back('/');
    endpoint->path = path + "v1/traces" + rest;
    return *std::move(endpoint);
  }
  return grpc ? defaultGrpcEndpoint() : defaultEndpoint();
}

// Header names the transport sets itself: taking them from the user would break framing.
bool isReservedHeader(std::string_view key) noexcept {
  static constexpr std::string_view kReserved[] = {
      "host",       "content-length", "transfer-encoding", "connection", "keep-alive",
      "te",         "trailer",        "upgrade",           "proxy-connection",
      "content-type", "content-encoding"};
  for (std::string_view reserved : kReserved) {
    if (ascii::equalsIgnoreCase(key, reserved)) return true;
  }
  return false;
}

// How a skipped pair is named in a warning: its key, never its value (values are often
// credentials). Without '=' it may be the tail of a value cut at an unencoded comma
// ("key=part1,part2"): then only its position is given.
std::string describePair(std::string_view pair, size_t position) {
  const size_t eq = pair.find('=');
  if (eq != std::string_view::npos) {
    return "header \"" + std::string(ascii::trimOws(pair.substr(0, eq))) + "=...\"";
  }
  return "entry " + std::to_string(position) + " (not shown: it may be part of a value)";
}

void setHeader(std::vector<std::pair<std::string, std::string>>& headers, std::string key,
               std::string value) {
  for (auto& header : headers) {
    if (ascii::equalsIgnoreCase(header.first, key)) {
      header = {std::move(key), std::move(value)};
      return;
    }
  }
  headers.emplace_back(std::move(key), std::move(value));
}

void addHeaders(const EnvValue& setting, std::vector<std::pair<std::string, std::string>>& headers,
                std::vector<std::string>& warnings) {
  std::string_view list = setting.value;
  size_t position = 0;
  while (!list.empty()) {
    ++position;
    const size_t comma = list.find(',');
    const std::string_view pair = ascii::trimOws(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (pair.empty()) continue;  // "a=1,,b=2" and a trailing comma are harmless
    const auto skip = [&](std::string_view why) {
      warnings.push_back(setting.name + ": skipping " + describePair(pair, position) + ": " +
                         std::string(why));
    };
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      skip("want key=value (a comma inside a value is written %2C)");
      continue;
    }
    const std::string_view key = ascii::trimOws(pair.substr(0, eq));
    if (key.empty()) {
      skip("the key is empty");
      continue;
    }
    bool token = true;
    for (char c : key) token = token && http::isTokenChar(c);
    if (!token) {
      skip("the key is not an HTTP header name (token)");
      continue;
    }
    std::optional<std::string> value = percentDecoded(ascii::trimOws(pair.substr(eq + 1)));
    if (!value) {
      skip("the value has a '%' not followed by two hex digits");
      continue;
    }
    bool clean = true;
    for (char c : *value) {
      const auto u = static_cast<unsigned char>(c);
      clean = clean && (u == '\t' || (u >= 0x20 && u != 0x7f));
    }
    if (!clean) {
      skip("the decoded value contains a control character (CR, LF, NUL...)");
      continue;
    }
    if (isReservedHeader(key)) {
      skip("the exporter sets this header itself");
      continue;
    }
    setHeader(headers, std::string(key), std::move(*value));
  }
}

// A whole number of milliseconds in [0, kMaxTimeoutMs]; 0 is no limit (the common
// configuration specification: a timeout of 0 means no limit).
std::optional<std::chrono::milliseconds> parseTimeout(std::string_view text) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 ||
      value > kMaxTimeoutMs) {
    return std::nullopt;
  }
  return timeoutOrNoLimit(value);
}

std::optional<Compression> parseCompression(std::string_view text) {
  if (ascii::equalsIgnoreCase(text, "gzip")) return Compression::kGzip;
  if (ascii::equalsIgnoreCase(text, "none")) return Compression::kNone;
  return std::nullopt;
}

// A setting with a traces variable, a general one and the lower layer's value: the first that
// parse takes, each one before it warned about (problem: what the warning says of it); else
// fallback, which the warnings call fallback_text.
template <class T, class Parse>
T traceSetting(const EnvLookup& env, const LowerLayer& lower, std::string_view suffix,
               Parse parse, std::string_view problem, T fallback, std::string_view fallback_text,
               std::vector<std::string>& warnings) {
  const auto candidates = signalCandidates(env, lower, suffix);
  const auto picked = pickSetting<T>(candidates, parse, problem, fallback_text, warnings);
  return picked ? picked->first : fallback;
}

void tlsFilesFromEnv(const EnvLookup& env, const LowerLayer& lower, OtlpConfig& config,
                     std::vector<std::string>& warnings, std::vector<std::string>& errors) {
  const std::optional<EnvValue> certificate = firstSet(signalCandidates(env, lower, "CERTIFICATE"));
  const std::optional<EnvValue> key = firstSet(signalCandidates(env, lower, "CLIENT_KEY"));
  const std::optional<EnvValue> client_certificate =
      firstSet(signalCandidates(env, lower, "CLIENT_CERTIFICATE"));
  if (key && !client_certificate) {
    errors.push_back(key->name +
                     " is set but OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is not: mutual TLS needs "
                     "both the client key and the client certificate");
  }
  if (client_certificate && !key) {
    errors.push_back(client_certificate->name +
                     " is set but OTEL_EXPORTER_OTLP_CLIENT_KEY is not: mutual TLS needs both "
                     "the client certificate and the client key");
  }
  if (key.has_value() != client_certificate.has_value()) return;
  for (const std::optional<EnvValue>* s : {&certificate, &key, &client_certificate}) {
    if (*s && !config.endpoint.tls()) {
      warnings.push_back((*s)->name + " is set but the endpoint " + config.endpoint.url() +
                         " is plain http; the file is not used");
    }
  }
  if (certificate) config.certificate = certificate->value;
  if (key) config.client_key = key->value;
  if (client_certificate) config.client_certificate = client_certificate->value;
}

}  // namespace

std::string_view protocolName(OtlpProtocol protocol) noexcept {
  switch (protocol) {
    case OtlpProtocol::kHttpProtobuf:
      return "http/protobuf";
    case OtlpProtocol::kHttpJson:
      return "http/json";
    case OtlpProtocol::kGrpc:
      return "grpc";
  }
  return "unknown";
}

std::string Endpoint::hostHeader() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls() ? kDefaultHttpsPort : kDefaultHttpPort)) {
    out += ':';
    out += std::to_string(port);
  }
  return out;
}

std::string Endpoint::url() const { return scheme + "://" + hostHeader() + path; }

absl::StatusOr<Endpoint> parseEndpoint(std::string_view url) {
  if (url.empty()) return urlError("the URL is empty; want http(s)://host[:port][/path]");
  for (size_t i = 0; i < url.size(); ++i) {
    const auto u = static_cast<unsigned char>(url[i]);
    if (u == ' ' || u == '\t' || u == '\r' || u == '\n') {
      return urlError("whitespace at offset " + std::to_string(i));
    }
    if (u < 0x20 || u == 0x7f) return urlError("control character at offset " + std::to_string(i));
    if (u >= 0x80) {
      return urlError("non-ASCII byte at offset " + std::to_string(i) + " (percent-encode it)");
    }
  }
  // RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
  const size_t sep = url.find("://");
  const auto scheme_char = [](char c) {
    return isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.';
  };
  if (sep == std::string_view::npos || sep == 0 || !isAlpha(url.front()) ||
      !std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(sep), scheme_char)) {
    return urlError("not an absolute URL: want http(s)://host[:port][/path]");
  }
  Endpoint endpoint;
  endpoint.scheme = lowercase(url.substr(0, sep));
  if (endpoint.scheme != "http" && endpoint.scheme != "https") {
    return urlError("unsupported scheme \"" + std::string(url.substr(0, sep)) +
                    "\" (want http or https)");
  }
  const std::string_view rest = url.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) return urlError("a fragment (#...) is not allowed");
  const size_t authority_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view path =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return urlError("userinfo (user:password@) is not allowed; send credentials in headers");
  }
  if (authority.empty()) return urlError("the host is empty");

  std::string_view port_text;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return urlError("the IPv6 literal has no closing ']'");
    const std::string_view literal = authority.substr(1, close - 1);
    if (absl::Status status = checkIpv6Literal(literal); !status.ok()) return status;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      return urlError("unexpected \"" + std::string(after) + "\" after the IPv6 literal");
    }
    if (!after.empty()) port_text = after.substr(1);
    endpoint.host = std::string(literal);
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      return urlError("an IPv6 address must be in brackets, as in http://[::1]:4318");
    }
    const std::string_view host = authority.substr(0, colon);
    if (host.empty()) return urlError("the host is empty");
    if (absl::Status status = checkHostName(host); !status.ok()) return status;
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    endpoint.host = std::string(host);
  }
  absl::StatusOr<uint16_t> port =
      parsePort(port_text, endpoint.tls() ? kDefaultHttpsPort : kDefaultHttpPort);
  if (!port.ok()) return port.status();
  endpoint.port = *port;

  if (path.empty()) {
    endpoint.path = "/";
  } else if (path.front() == '?') {
    endpoint.path = "/" + std::string(path);
  } else {
    endpoint.path = std::string(path);
  }
  return endpoint;
}

ExporterSettings exporterSettingsFromEnv(const EnvLookup& env, std::vector<std::string>& warnings,
                                         std::vector<std::string>& errors,
                                         const LowerLayer& lower) {
  ExporterSettings settings;
  settings.otlp.endpoint = defaultEndpoint();
  std::optional<EnvValue> path = readVariable(env, "TRACECAR_CONSOLE_EXPORT_PATH");
  if (!path) path = readLower(lower, "TRACECAR_CONSOLE_EXPORT_PATH");
  if (path) settings.console_path = path->value;
  settings.kind = exporterKind(env, lower, warnings, errors);
  // The OTLP variables matter only to the OTLP exporter: a console sidecar does not fail on them.
  if (settings.kind != ExporterKind::kOtlp) return settings;

  OtlpConfig& otlp = settings.otlp;
  otlp.protocol = traceSetting(env, lower, "PROTOCOL", parseProtocol,
                               "is not a known protocol (accepted: grpc, http/protobuf, http/json)",
                               OtlpProtocol::kHttpProtobuf, "http/protobuf (the default)",
                               warnings);
  const bool grpc = otlp.protocol == OtlpProtocol::kGrpc;
  if (std::optional<Endpoint> endpoint =
          endpointFromEnv(env, lower, grpc, grpc && insecureFromEnv(env, warnings), errors)) {
    otlp.endpoint = *std::move(endpoint);
  } else if (grpc) {
    otlp.endpoint = defaultGrpcEndpoint();  // unusable anyway: the error stops the start
  }
  // Every list applies, the lower layer's first; the signal-specific variable is read last so
  // that it wins for a shared key.
  if (const std::optional<EnvValue> from_lower = readLower(lower, "OTEL_EXPORTER_OTLP_HEADERS")) {
    addHeaders(*from_lower, otlp.headers, warnings);
  }
  if (const std::optional<EnvValue> base = readVariable(env, "OTEL_EXPORTER_OTLP_HEADERS")) {
    addHeaders(*base, otlp.headers, warnings);
  }
  if (const std::optional<EnvValue> traces =
          readVariable(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")) {
    addHeaders(*traces, otlp.headers, warnings);
  }
  const std::string problem =
      "is not a whole number of milliseconds in [0, " + std::to_string(kMaxTimeoutMs) + "]";
  otlp.timeout = traceSetting(env, lower, "TIMEOUT", parseTimeout, problem,
                              std::chrono::milliseconds(10000), "the default 10000", warnings);
  otlp.compression = traceSetting(env, lower, "COMPRESSION", parseCompression,
                                  "is not a known compression (gzip or none)", Compression::kNone,
                                  "none", warnings);
  tlsFilesFromEnv(env, lower, otlp, warnings, errors);
  return settings;
}

}  // namespace tracecar::exporter
