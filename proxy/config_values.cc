#include "proxy/config_values.h"

#include <arpa/inet.h>

#include <absl/status/status.h>

#include <algorithm>
#include <limits>

namespace tracecar::proxy {
namespace {

bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }
bool isAlpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

absl::Status invalid(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(quoted(text) + ": " + std::string(why));
}

bool isIpv4Literal(std::string_view host) {
  in_addr address{};
  return inet_pton(AF_INET, std::string(host).c_str(), &address) == 1;
}

bool isIpv6Literal(std::string_view host) {
  in6_addr address{};
  return inet_pton(AF_INET6, std::string(host).c_str(), &address) == 1;
}

// A DNS name: dot-separated labels of letters, digits, '-' and '_', none empty or longer than
// 63 bytes, none starting or ending with '-'; one trailing dot allowed.
bool isHostName(std::string_view name) noexcept {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  while (true) {
    const size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!isAlpha(c) && !isDigit(c) && c != '-' && c != '_') return false;
    }
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

}  // namespace

std::string HostPort::toString() const {
  return (isIpv6() ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

absl::StatusOr<HostPort> parseHostPort(std::string_view text, AddressUse use) {
  const std::string_view want = use == AddressUse::kListen
                                    ? "want ADDRESS:PORT, e.g. 0.0.0.0:15006 or [::]:15006"
                                    : "want HOST:PORT, e.g. 127.0.0.1:8080 or app.local:8080";
  if (text.empty()) return invalid(text, want);
  HostPort out;
  std::string_view port_text;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos)
      return invalid(text, "the IPv6 address has no closing ']'");
    const std::string_view literal = text.substr(1, close - 1);
    if (literal.find('%') != std::string_view::npos) {
      return invalid(text, "IPv6 zone identifiers are not supported");
    }
    if (!isIpv6Literal(literal)) return invalid(text, "not an IPv6 address in the brackets");
    const std::string_view after = text.substr(close + 1);
    if (after.empty() || after.front() != ':') return invalid(text, "missing \":PORT\"");
    out.host = std::string(literal);
    port_text = after.substr(1);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return invalid(text, "missing \":PORT\"; " + std::string(want));
    const std::string_view host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return invalid(text, "an IPv6 address must be in brackets, as in [::1]:15006");
    }
    if (host.empty()) return invalid(text, "the host is empty; " + std::string(want));
    const bool numeric = host.find_first_not_of("0123456789.") == std::string_view::npos;
    if (use == AddressUse::kListen || numeric) {
      if (!isIpv4Literal(host)) {
        return invalid(text, use == AddressUse::kListen
                                 ? "a listen address must be an IP address (0.0.0.0, "
                                   "127.0.0.1, [::]...), not a name"
                                 : "not a valid IPv4 address");
      }
    } else if (!isHostName(host)) {
      return invalid(text, "not a valid host name or IP address");
    }
    out.host = std::string(host);
    port_text = text.substr(colon + 1);
  }
  const uint32_t min_port = use == AddressUse::kListen ? 0 : 1;
  const std::string range = use == AddressUse::kListen ? "0..65535" : "1..65535";
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string_view::npos) {
    return invalid(text, "the port must be a number in " + range);
  }
  uint32_t port = 0;
  for (char c : port_text) port = port * 10 + static_cast<uint32_t>(c - '0');
  if (port < min_port || port > 65535) {
    return invalid(text, "port " + std::string(port_text) + " is out of range " + range);
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

absl::StatusOr<DestinationMatch> parseDestinationMatch(std::string_view text) {
  constexpr std::string_view kWant =
      "want HOST, HOST:PORT or *.DOMAIN[:PORT], e.g. api.example.com:80 or *.svc.cluster.local";
  if (text.empty()) return invalid(text, kWant);
  DestinationMatch out;
  std::string_view host = text;
  std::string_view port_text;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return invalid(text, "the IPv6 address has no closing ']'");
    host = text.substr(1, close - 1);
    const std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid(text, kWant);
      port_text = after.substr(1);
      if (port_text.empty()) return invalid(text, "the port is empty");
    }
    if (!isIpv6Literal(host)) return invalid(text, "not an IPv6 address in the brackets");
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const size_t colon = text.find(':');
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (port_text.empty()) return invalid(text, "the port is empty");
  } else if (text.find(':') != std::string_view::npos && !isIpv6Literal(text)) {
    return invalid(text, "not an IPv6 address (with a port, write [ADDRESS]:PORT)");
  }
  if (host.empty()) return invalid(text, "the host is empty; " + std::string(kWant));
  const bool wildcard = host.size() > 2 && host.substr(0, 2) == "*.";
  const std::string_view name = wildcard ? host.substr(2) : host;
  const bool numeric = name.find_first_not_of("0123456789.") == std::string_view::npos;
  if (host.find(':') == std::string_view::npos) {
    if (numeric && (wildcard || !isIpv4Literal(name))) {
      return invalid(text, "not a valid IPv4 address");
    }
    if (!numeric && !isHostName(name)) {
      return invalid(text, "not a valid host name, *.DOMAIN or IP address");
    }
  }
  if (!port_text.empty()) {
    if (port_text.size() > 5 ||
        port_text.find_first_not_of("0123456789") != std::string_view::npos) {
      return invalid(text, "the port must be a number in 1..65535");
    }
    uint32_t port = 0;
    for (char c : port_text) port = port * 10 + static_cast<uint32_t>(c - '0');
    if (port < 1 || port > 65535) return invalid(text, "the port is out of range 1..65535");
    out.port = static_cast<uint16_t>(port);
  }
  out.host.reserve(host.size());
  for (char c : host) out.host.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  if (out.host.size() > 1 && out.host.back() == '.') out.host.pop_back();
  return out;
}

absl::StatusOr<std::chrono::milliseconds> parseDuration(std::string_view text) {
  const std::string original(text);
  const auto error = [&original](std::string_view why) {
    return absl::InvalidArgumentError(
        "must be a duration like 500ms, 10s or 1m (a bare number "
        "is milliseconds), got \"" +
        original + "\"" + (why.empty() ? "" : ": " + std::string(why)));
  };
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty()) return error("");
  constexpr long long kLimit = std::numeric_limits<long long>::max() / 3600000;
  long long total = 0;
  bool first = true;
  while (!text.empty()) {
    if (!isDigit(text.front())) return error(first ? "" : "a unit must follow a number");
    long long number = 0;
    while (!text.empty() && isDigit(text.front())) {
      number = number * 10 + (text.front() - '0');
      if (number > kLimit) return error("too large");
      text.remove_prefix(1);
    }
    size_t unit_length = 0;
    while (unit_length < text.size() && isAlpha(text[unit_length])) ++unit_length;
    const std::string_view unit = text.substr(0, unit_length);
    text.remove_prefix(unit_length);
    long long scale = 0;
    if (unit.empty()) {
      if (!text.empty() && !isDigit(text.front())) {
        return error("unexpected '" + std::string(1, text.front()) + "'");
      }
      if (!first || !text.empty()) return error("every number needs a unit");
      scale = 1;
    } else if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60 * 1000;
    } else if (unit == "h") {
      scale = 60 * 60 * 1000;
    } else {
      return error("unknown unit \"" + std::string(unit) + "\" (ms, s, m or h)");
    }
    total += number * scale;
    if (total > kLimit) return error("too large");
    first = false;
  }
  return std::chrono::milliseconds(total);
}

std::string formatDuration(std::chrono::milliseconds duration) {
  const long long ms = duration.count();
  if (ms != 0 && ms % (60 * 60 * 1000) == 0) return std::to_string(ms / (60 * 60 * 1000)) + "h";
  if (ms != 0 && ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace tracecar::proxy
