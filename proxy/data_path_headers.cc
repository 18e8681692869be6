#include "proxy/data_path_headers.h"

#include <array>
#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include "base/ascii.h"

namespace tracecar::proxy {
namespace {

bool isAlpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }
bool isHex(char c) noexcept {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// reg-name characters: unreserved / sub-delims ("%" checked apart).
bool isRegNameChar(char c) noexcept {
  if (isAlpha(c) || isDigit(c)) return true;
  switch (c) {
    case '-': case '.': case '_': case '~':
    case '!': case '$': case '&': case '\'': case '(': case ')':
    case '*': case '+': case ',': case ';': case '=':
      return true;
    default:
      return false;
  }
}

bool isRegName(std::string_view s) noexcept {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || !isHex(s[i + 1]) || !isHex(s[i + 2])) return false;
      i += 2;
    } else if (!isRegNameChar(s[i])) {
      return false;
    }
  }
  return true;
}

bool isIpv6Literal(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!isHex(c) && c != ':' && c != '.') return false;
  }
  return s.find(':') != std::string_view::npos;
}

// Calls visit(token) for every element of a comma-separated list, OWS trimmed, empty skipped.
template <class Visit>
void forEachListElement(std::string_view list, Visit&& visit) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view element = ascii::trimOws(list.substr(0, comma));
    if (!element.empty()) visit(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

bool isProtected(std::string_view name) noexcept {
  return http::HeaderMap::nameEquals(name, "host") ||
         http::HeaderMap::nameEquals(name, "content-length");
}

}  // namespace

namespace {

// The names stripHopByHop acts on, found by length first: most messages carry none of them.
bool isHopByHopName(std::string_view name) noexcept {
  switch (name.size()) {
    case 2:
      return http::HeaderMap::nameEquals(name, "te");
    case 7:
      return http::HeaderMap::nameEquals(name, "upgrade");
    case 10:
      return http::HeaderMap::nameEquals(name, "connection") ||
             http::HeaderMap::nameEquals(name, "keep-alive");
    case 16:
      return http::HeaderMap::nameEquals(name, "proxy-connection");
    case 17:
      return http::HeaderMap::nameEquals(name, "transfer-encoding");
    case 19:
      return http::HeaderMap::nameEquals(name, "proxy-authorization");
    default:
      return false;
  }
}

}  // namespace

bool dropContinueExpectation(http::HeaderMap& headers) {
  if (!headers.hasToken("expect", "100-continue")) return false;
  std::string rest;  // the other expectations, rare: a copy is cheap enough
  headers.forEach("expect", [&](std::string_view value) {
    forEachListElement(value, [&](std::string_view element) {
      if (ascii::equalsIgnoreCase(element, "100-continue")) return;
      if (!rest.empty()) rest += ", ";
      rest += element;
    });
  });
  headers.remove("expect");
  if (!rest.empty()) headers.add("Expect", rest);
  return true;
}

HopByHopInfo stripHopByHop(http::HeaderMap& headers, const HopByHopOptions& options) {
  HopByHopInfo info;
  size_t found = 0;
  size_t at = 0;
  for (size_t i = 0; i < headers.size() && found < 2; ++i) {
    const std::string_view name = headers.name(i);
    if (isHopByHopName(name)) {
      ++found;
      at = i;
    } else if (name.size() == 5 && http::HeaderMap::nameEquals(name, "close")) {
      found = 2;  // "Connection: close" names it: the full pass removes it
    }
  }
  if (found == 0) return info;  // without Connection, nothing else is named hop-by-hop either
  if (found == 1 && headers.name(at).size() == 10 &&  // "connection", not "keep-alive"
      http::HeaderMap::nameEquals(headers.name(at), "connection")) {
    // The usual case: one Connection field saying keep-alive or close, which names no field.
    const std::string_view option = ascii::trimOws(headers.value(at));
    if (ascii::equalsIgnoreCase(option, "keep-alive") || ascii::equalsIgnoreCase(option, "close")) {
      headers.remove("connection");  // the only one: found is 1
      return info;
    }
  }
  headers.forEach("te", [&](std::string_view value) {
    forEachListElement(value, [&](std::string_view element) {
      // "trailers" takes no parameters; a weight after it would make it another coding.
      if (http::HeaderMap::nameEquals(element, "trailers")) info.te_trailers = true;
    });
  });

  // The names Connection lists: views into the map, valid through the one removal pass below.
  constexpr size_t kInline = 8;
  std::array<std::string_view, kInline> first_named;
  std::vector<std::string_view> more_named;
  size_t named = 0;
  headers.forEach("connection", [&](std::string_view value) {
    forEachListElement(value, [&](std::string_view element) {
      if (isProtected(element)) return;
      if (options.keep_upgrade && http::HeaderMap::nameEquals(element, "upgrade")) return;
      if (named < kInline) {
        first_named[named++] = element;
      } else {
        more_named.push_back(element);
      }
    });
  });
  const auto isNamed = [&](std::string_view name) {
    for (size_t i = 0; i < named; ++i) {
      if (http::HeaderMap::nameEquals(name, first_named[i])) return true;
    }
    for (std::string_view other : more_named) {
      if (http::HeaderMap::nameEquals(name, other)) return true;
    }
    return false;
  };
  headers.removeWhere([&](std::string_view name, std::string_view /*value*/) {
    if (isNamed(name)) return true;
    if (!isHopByHopName(name)) return false;
    if (options.keep_upgrade && http::HeaderMap::nameEquals(name, "upgrade")) return false;
    if (options.keep_proxy_authorization &&
        http::HeaderMap::nameEquals(name, "proxy-authorization")) {
      return false;
    }
    return true;
  });
  return info;
}

std::optional<Authority> parseAuthority(std::string_view text) noexcept {
  Authority out;
  std::string_view host = text;
  std::string_view port;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    if (!isIpv6Literal(host)) return std::nullopt;
    out.ipv6 = true;
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      has_port = true;
    }
    if (host.empty() || !isRegName(host)) return std::nullopt;
  }
  if (has_port) {
    if (port.empty() || port.size() > 5) return std::nullopt;
    uint32_t value = 0;
    for (char c : port) {
      if (!isDigit(c)) return std::nullopt;
      value = value * 10 + static_cast<uint32_t>(c - '0');
    }
    if (value == 0 || value > 65535) return std::nullopt;
    out.port = static_cast<uint16_t>(value);
    out.has_port = true;
  }
  out.host = host;
  return out;
}

bool schemeIs(std::string_view scheme, std::string_view lowercase) noexcept {
  return http::HeaderMap::nameEquals(scheme, lowercase);
}

std::optional<RequestTargetParts> parseRequestTarget(std::string_view method,
                                                     std::string_view target) noexcept {
  RequestTargetParts parts;
  if (method == "CONNECT") {
    const std::optional<Authority> authority = parseAuthority(target);
    if (!authority || !authority->has_port) return std::nullopt;
    parts.form = RequestTargetForm::kAuthority;
    parts.authority = target;
    return parts;
  }
  if (target == "*") {
    if (method != "OPTIONS") return std::nullopt;
    parts.form = RequestTargetForm::kAsterisk;
    parts.path = target;
    return parts;
  }
  if (!target.empty() && target.front() == '/') {
    // origin-form is absolute-path [ "?" query ] (RFC 9112 section 3.2.1): no fragment, which
    // the app and the span would read differently.
    if (target.find('#') != std::string_view::npos) return std::nullopt;
    parts.form = RequestTargetForm::kOrigin;
    parts.path = target;
    return parts;
  }
  // absolute-form: scheme "://" authority path-abempty [ "?" query ]
  const size_t colon = target.find(':');
  if (colon == std::string_view::npos || colon == 0 || !isAlpha(target.front())) {
    return std::nullopt;
  }
  for (char c : target.substr(0, colon)) {
    if (!isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.') return std::nullopt;
  }
  if (target.substr(colon + 1, 2) != "//") return std::nullopt;
  const std::string_view rest = target.substr(colon + 3);
  const size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  if (!parseAuthority(authority)) return std::nullopt;
  parts.form = RequestTargetForm::kAbsolute;
  parts.scheme = target.substr(0, colon);
  parts.authority = authority;
  parts.path = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  return parts;
}

bool isValidHost(std::string_view value) noexcept {
  return value.empty() || parseAuthority(value).has_value();
}

std::string_view reasonPhrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 508: return "Loop Detected";
    default: return "";
  }
}

void appendLocalReply(std::string& out, int status, std::string_view reason, bool close,
                      bool head_request) {
  char line[64];
  std::snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
  out += line;
  out += reasonPhrase(status);
  out += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ";
  out += std::to_string(reason.size() + 1);
  out += "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head_request) {
    out += reason;
    out += '\n';
  }
}

MaxForwardsStep applyMaxForwards(std::string_view method, http::HeaderMap& headers) {
  if (method != "OPTIONS" && method != "TRACE") return MaxForwardsStep::kForward;
  if (headers.count("max-forwards") != 1) return MaxForwardsStep::kForward;
  const std::string_view value = *headers.get("max-forwards");
  // 1*DIGIT; a value too large to count down to 0 on any path is kept as sent (minus one).
  if (value.empty() || value.size() > 18) return MaxForwardsStep::kForward;
  uint64_t n = 0;
  for (const char c : value) {
    if (c < '0' || c > '9') return MaxForwardsStep::kForward;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n == 0) return MaxForwardsStep::kAnswer;
  headers.set("Max-Forwards", std::to_string(n - 1));
  return MaxForwardsStep::kForward;
}

LastHopAnswer lastHopAnswer(const http::Http1Head& request) {
  LastHopAnswer answer;
  if (request.method != "TRACE") return answer;
  answer.content_type = "message/http";
  http::HeaderMap fields = request.headers;
  fields.removeWhere([](std::string_view name, std::string_view) {
    return http::HeaderMap::nameEquals(name, "authorization") ||
           http::HeaderMap::nameEquals(name, "proxy-authorization") ||
           http::HeaderMap::nameEquals(name, "cookie");
  });
  std::string& out = answer.content;
  out.reserve(request.target.size() + fields.byteSize() + 32);
  out += request.method;
  out += ' ';
  out += request.target;
  out += request.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  fields.serialize(out);
  out += "\r\n";
  return answer;
}

void appendLastHopAnswer(std::string& out, const LastHopAnswer& answer, bool close) {
  out += "HTTP/1.1 200 OK\r\n";
  if (!answer.content_type.empty()) {
    out += "Content-Type: ";
    out += answer.content_type;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out += std::to_string(answer.content.size());
  out += "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  out += answer.content;
}

void appendChunkHeader(std::string& out, size_t size) {
  char line[24];
  const int n = std::snprintf(line, sizeof line, "%zx\r\n", size);
  out.append(line, static_cast<size_t>(n));
}

size_t stripTrailerFields(http::HeaderMap& trailers) noexcept {
  if (trailers.empty()) return 0;
  // Beside the hop-by-hop names and the protected ones (Host, Content-Length).
  static constexpr std::string_view kDropped[] = {
      "trailer", "proxy-authenticate", "traceparent", "tracestate", "baggage", "b3",
      "uber-trace-id"};
  const auto startsWith = [](std::string_view name, std::string_view prefix) {
    return name.size() >= prefix.size() &&
           http::HeaderMap::nameEquals(name.substr(0, prefix.size()), prefix);
  };
  size_t removed = 0;
  try {
    trailers.removeWhere([&](std::string_view name, std::string_view /*value*/) {
      bool drop = isHopByHopName(name) || isProtected(name) || startsWith(name, "x-b3-") ||
                  startsWith(name, "uberctx-");
      for (const std::string_view dropped : kDropped) {
        drop = drop || http::HeaderMap::nameEquals(name, dropped);
      }
      removed += drop ? 1 : 0;
      return drop;
    });
  } catch (const std::bad_alloc&) {
    // Compacting what is left failed; the fields were removed before it.
  }
  return removed;
}

void appendLastChunk(std::string& out, const http::HeaderMap* trailers) {
  out += "0\r\n";
  if (trailers != nullptr) trailers->serialize(out);
  out += "\r\n";
}

bool upgradeOffered(std::string_view offered, std::string_view chosen) noexcept {
  bool any = false;
  bool all = true;
  forEachListElement(chosen, [&](std::string_view protocol) {
    any = true;
    bool found = false;
    forEachListElement(offered, [&](std::string_view candidate) {
      found = found || ascii::equalsIgnoreCase(candidate, protocol);
    });
    all = all && found;
  });
  return any && all;
}

bool hasChunkedCoding(std::string_view transfer_encoding) noexcept {
  bool found = false;
  forEachListElement(transfer_encoding, [&](std::string_view coding) {
    coding = ascii::trimOws(coding.substr(0, coding.find(';')));  // parameters
    found = found || ascii::equalsIgnoreCase(coding, "chunked");
  });
  return found;
}

ResponseFraming chooseResponseFraming(bool no_body, std::optional<uint64_t> content_length,
                                      std::string_view transfer_encoding, bool upstream_chunked,
                                      bool downstream_http11, bool head_request) {
  ResponseFraming out;
  if (no_body) {
    out.framing = BodyFraming::kNone;
    // A HEAD response describes the GET one, framing included.
    if (head_request && downstream_http11) out.transfer_encoding = std::string(transfer_encoding);
    return out;
  }
  if (content_length && transfer_encoding.empty()) {
    out.framing = BodyFraming::kLength;
    return out;
  }
  if (!downstream_http11) {
    out.framing = BodyFraming::kClose;
    out.close = true;
    return out;
  }
  // chunked applied, then another coding: a close-delimited body (RFC 9112 section 6.3), relayed
  // as it came; applying chunked once more is not allowed (section 6.1).
  if (!upstream_chunked && hasChunkedCoding(transfer_encoding)) {
    out.framing = BodyFraming::kClose;
    out.close = true;
    out.transfer_encoding = std::string(transfer_encoding);
    return out;
  }
  out.framing = BodyFraming::kChunked;
  if (upstream_chunked) {
    out.transfer_encoding = std::string(transfer_encoding);
  } else if (transfer_encoding.empty()) {
    out.transfer_encoding = "chunked";
  } else {
    out.transfer_encoding = std::string(transfer_encoding) + ", chunked";
  }
  return out;
}

}  // namespace tracecar::proxy
