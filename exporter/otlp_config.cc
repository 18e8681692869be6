#include "exporter/otlp_config.h"

#include <arpa/inet.h>

#include <absl/status/status.h>

#include <algorithm>
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

// A variable that is set to something other than blanks, and its value without surrounding
// blanks. name is the variable actually read, for messages.
struct Setting {
  std::string name;
  std::string value;
};

std::optional<Setting> read(const EnvLookup& env, std::string_view name) {
  const std::optional<std::string> raw = env(name);
  if (!raw) return std::nullopt;
  const std::string_view value = ascii::trimOws(*raw);
  if (value.empty()) return std::nullopt;  // the spec: empty is the same as unset
  return Setting{std::string(name), std::string(value)};
}

// OTEL_EXPORTER_OTLP_TRACES_<suffix>, else OTEL_EXPORTER_OTLP_<suffix>.
std::optional<Setting> readSignal(const EnvLookup& env, std::string_view suffix) {
  if (auto traces = read(env, std::string(kTracesPrefix) + std::string(suffix))) return traces;
  return read(env, std::string(kBasePrefix) + std::string(suffix));
}

absl::StatusOr<ExporterKind> exporterKind(const EnvLookup& env) {
  const std::optional<Setting> setting = read(env, "OTEL_TRACES_EXPORTER");
  std::optional<ExporterKind> chosen;
  if (setting) {
    std::string_view list = setting->value;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view item = ascii::trimOws(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (item.empty()) continue;
      ExporterKind kind;
      if (ascii::equalsIgnoreCase(item, "otlp")) {
        kind = ExporterKind::kOtlp;
      } else if (ascii::equalsIgnoreCase(item, "console")) {
        kind = ExporterKind::kConsole;
      } else if (ascii::equalsIgnoreCase(item, "none")) {
        kind = ExporterKind::kNone;
      } else {
        return absl::InvalidArgumentError(setting->name + "=\"" + setting->value +
                                          "\": unknown exporter \"" + std::string(item) +
                                          "\"; accepted: otlp, console, none");
      }
      if (chosen && *chosen != kind) {
        return absl::InvalidArgumentError(setting->name + "=\"" + setting->value +
                                          "\": only one exporter at a time is supported; "
                                          "choose one of otlp, console, none");
      }
      chosen = kind;
    }
  }
  if (chosen) return *chosen;
  // Unset (or a list of blanks): otlp only when the user pointed us at a collector.
  const bool endpoint_set = read(env, "OTEL_EXPORTER_OTLP_ENDPOINT").has_value() ||
                            read(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").has_value();
  return endpoint_set ? ExporterKind::kOtlp : ExporterKind::kConsole;
}

absl::StatusOr<OtlpProtocol> protocolFromEnv(const EnvLookup& env) {
  const std::optional<Setting> setting = readSignal(env, "PROTOCOL");
  if (!setting) return OtlpProtocol::kHttpProtobuf;
  if (ascii::equalsIgnoreCase(setting->value, "http/protobuf")) return OtlpProtocol::kHttpProtobuf;
  if (ascii::equalsIgnoreCase(setting->value, "http/json")) return OtlpProtocol::kHttpJson;
  if (ascii::equalsIgnoreCase(setting->value, "grpc")) return OtlpProtocol::kGrpc;
  return absl::InvalidArgumentError(setting->name + "=\"" + setting->value +
                                    "\" is not a known protocol; accepted: grpc, "
                                    "http/protobuf, http/json");
}

// OTEL_EXPORTER_OTLP_[TRACES_]INSECURE: true or false (case-insensitive); anything else is
// ignored with a warning.
bool insecureFromEnv(const EnvLookup& env, std::vector<std::string>& warnings) {
  const std::optional<Setting> setting = readSignal(env, "INSECURE");
  if (!setting) return false;
  if (ascii::equalsIgnoreCase(setting->value, "true")) return true;
  if (!ascii::equalsIgnoreCase(setting->value, "false")) {
    warnings.push_back(setting->name + "=\"" + setting->value +
                       "\" is not true or false; using false");
  }
  return false;
}

absl::StatusOr<Endpoint> endpointFromEnv(const EnvLookup& env, bool grpc, bool insecure) {
  const auto invalid = [](const Setting& s, const absl::Status& status) {
    return absl::InvalidArgumentError(s.name + "=\"" + redactedUrl(s.value) +
                                      "\" is not a usable endpoint: " +
                                      std::string(status.message()));
  };
  // gRPC takes "host:port" without a scheme too: TLS unless OTEL_EXPORTER_OTLP_INSECURE=true.
  const auto parse = [&](const std::string& url) {
    if (grpc && url.find("://") == std::string::npos) {
      return parseEndpoint((insecure ? "http://" : "https://") + url);
    }
    return parseEndpoint(url);
  };
  if (const std::optional<Setting> traces = read(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
    absl::StatusOr<Endpoint> endpoint = parse(traces->value);
    if (!endpoint.ok()) return invalid(*traces, endpoint.status());
    return endpoint;  // as given: no signal path is added
  }
  if (const std::optional<Setting> base = read(env, "OTEL_EXPORTER_OTLP_ENDPOINT")) {
    absl::StatusOr<Endpoint> endpoint = parse(base->value);
    if (!endpoint.ok()) return invalid(*base, endpoint.status());
    if (grpc) return endpoint;  // gRPC names the method in :path itself
    // The signal path goes at the end of the path, before any query.
    const size_t query = endpoint->path.find('?');
    std::string path = endpoint->path.substr(0, query);
    const std::string rest = query == std::string::npos ? "" : endpoint->path.substr(query);
    if (path.back() != '/') path.push_back('/');
    endpoint->path = path + "v1/traces" + rest;
    return endpoint;
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
// credentials).
std::string describePair(std::string_view pair) {
  const size_t eq = pair.find('=');
  if (eq != std::string_view::npos) return std::string(ascii::trimOws(pair.substr(0, eq))) + "=...";
  const size_t cut = pair.find_first_of(" \t:");
  if (cut == std::string_view::npos) return std::string(pair);
  return std::string(pair.substr(0, cut)) + "...";
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

void addHeaders(const Setting& setting, std::vector<std::pair<std::string, std::string>>& headers,
                std::vector<std::string>& warnings) {
  std::string_view list = setting.value;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view pair = ascii::trimOws(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (pair.empty()) continue;  // "a=1,,b=2" and a trailing comma are harmless
    const auto skip = [&](std::string_view why) {
      warnings.push_back(setting.name + ": skipping header \"" + describePair(pair) + "\": " +
                         std::string(why));
    };
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      skip("want key=value");
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

// A whole number of milliseconds in [1, kMaxTimeoutMs].
std::optional<std::chrono::milliseconds> parseTimeout(std::string_view text) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 ||
      value > kMaxTimeoutMs) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(value);
}

std::optional<Compression> parseCompression(std::string_view text) {
  if (ascii::equalsIgnoreCase(text, "gzip")) return Compression::kGzip;
  if (ascii::equalsIgnoreCase(text, "none")) return Compression::kNone;
  return std::nullopt;
}

// A setting with a traces variable and a general one (OTEL_EXPORTER_OTLP_[TRACES_]suffix): the
// traces one when parse takes it; else, warned about, the general one when parse takes that;
// else, warned about too, fallback. problem: what the warning says of an untaken value.
template <class T, class Parse>
T traceSetting(const EnvLookup& env, std::string_view suffix, Parse parse, std::string_view problem,
               T fallback, std::string_view fallback_text, std::vector<std::string>& warnings) {
  const std::optional<Setting> traces = read(env, std::string(kTracesPrefix) + std::string(suffix));
  const std::optional<Setting> general = read(env, std::string(kBasePrefix) + std::string(suffix));
  const auto warn = [&](const Setting& setting, const std::string& instead) {
    warnings.push_back(setting.name + "=\"" + setting.value + "\" " + std::string(problem) +
                       "; using " + instead);
  };
  const auto fromGeneral = [&]() -> T {
    if (!general) return fallback;
    if (const std::optional<T> value = parse(general->value)) return *value;
    warn(*general, std::string(fallback_text));
    return fallback;
  };
  if (!traces) return fromGeneral();
  if (const std::optional<T> value = parse(traces->value)) return *value;
  const bool general_usable = general && parse(general->value).has_value();
  warn(*traces, general_usable ? general->name + " instead" : std::string(fallback_text));
  return fromGeneral();
}

std::chrono::milliseconds timeoutFromEnv(const EnvLookup& env, std::vector<std::string>& warnings) {
  const std::string problem =
      "is not a whole number of milliseconds in [1, " + std::to_string(kMaxTimeoutMs) + "]";
  return traceSetting(env, "TIMEOUT", parseTimeout, problem, std::chrono::milliseconds(10000),
                      "the default 10000", warnings);
}

Compression compressionFromEnv(const EnvLookup& env, std::vector<std::string>& warnings) {
  return traceSetting(env, "COMPRESSION", parseCompression,
                      "is not a known compression (gzip or none)", Compression::kNone, "none",
                      warnings);
}

absl::Status tlsFilesFromEnv(const EnvLookup& env, OtlpConfig& config,
                             std::vector<std::string>& warnings) {
  const std::optional<Setting> certificate = readSignal(env, "CERTIFICATE");
  const std::optional<Setting> key = readSignal(env, "CLIENT_KEY");
  const std::optional<Setting> client_certificate = readSignal(env, "CLIENT_CERTIFICATE");
  if (key && !client_certificate) {
    return absl::InvalidArgumentError(
        key->name + " is set but OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is not: mutual TLS "
                    "needs both the client key and the client certificate");
  }
  if (client_certificate && !key) {
    return absl::InvalidArgumentError(
        client_certificate->name + " is set but OTEL_EXPORTER_OTLP_CLIENT_KEY is not: mutual "
                                   "TLS needs both the client certificate and the client key");
  }
  for (const std::optional<Setting>* s : {&certificate, &key, &client_certificate}) {
    if (*s && !config.endpoint.tls()) {
      warnings.push_back((*s)->name + " is set but the endpoint " + config.endpoint.url() +
                         " is plain http; the file is not used");
    }
  }
  if (certificate) config.certificate = certificate->value;
  if (key) config.client_key = key->value;
  if (client_certificate) config.client_certificate = client_certificate->value;
  return absl::OkStatus();
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

absl::StatusOr<ExporterSettings> exporterSettingsFromEnv(const EnvLookup& env,
                                                        std::vector<std::string>& warnings) {
  ExporterSettings settings;
  settings.otlp.endpoint = defaultEndpoint();
  if (const std::optional<Setting> path = read(env, "TRACECAR_CONSOLE_EXPORT_PATH")) {
    settings.console_path = path->value;
  }
  absl::StatusOr<ExporterKind> kind = exporterKind(env);
  if (!kind.ok()) return kind.status();
  settings.kind = *kind;
  // The OTLP variables matter only to the OTLP exporter: a console sidecar does not fail on them.
  if (settings.kind != ExporterKind::kOtlp) return settings;

  OtlpConfig& otlp = settings.otlp;
  absl::StatusOr<OtlpProtocol> protocol = protocolFromEnv(env);
  if (!protocol.ok()) return protocol.status();
  otlp.protocol = *protocol;
  const bool grpc = otlp.protocol == OtlpProtocol::kGrpc;
  absl::StatusOr<Endpoint> endpoint =
      endpointFromEnv(env, grpc, grpc && insecureFromEnv(env, warnings));
  if (!endpoint.ok()) return endpoint.status();
  otlp.endpoint = *std::move(endpoint);
  // Both lists apply; the signal-specific one is read last so it wins for a shared key.
  if (const std::optional<Setting> base = read(env, "OTEL_EXPORTER_OTLP_HEADERS")) {
    addHeaders(*base, otlp.headers, warnings);
  }
  if (const std::optional<Setting> traces = read(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")) {
    addHeaders(*traces, otlp.headers, warnings);
  }
  otlp.timeout = timeoutFromEnv(env, warnings);
  otlp.compression = compressionFromEnv(env, warnings);
  if (absl::Status status = tlsFilesFromEnv(env, otlp, warnings); !status.ok()) return status;
  return settings;
}

}  // namespace tracecar::exporter
