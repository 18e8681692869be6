#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tracecar::proxy {

// An address to listen on or to connect to.
struct HostPort {
  std::string host;  // IP literal (IPv6 without brackets) or, for a peer, a DNS name
  uint16_t port = 0;

  bool isIpv6() const noexcept { return host.find(':') != std::string::npos; }
  std::string toString() const;  // "10.0.0.1:80", "[::1]:80", "app.local:8080"
  bool operator==(const HostPort&) const = default;
};

enum class AddressUse : uint8_t {
  kListen,  // an IP literal; port 0..65535 (0: any free port)
  kPeer,    // an IP literal or a DNS name; port 1..65535
};

// Parses "HOST:PORT", with an IPv6 address in brackets ("[::1]:15006"). Errors say what is wrong
// and quote the text.
absl::StatusOr<HostPort> parseHostPort(std::string_view text, AddressUse use);

// A destination pattern: "HOST", "HOST:PORT", "*.DOMAIN[:PORT]", an IP address ("[v6]:PORT" with
// a port). The host comes back lowercase, IPv6 without brackets.
struct DestinationMatch {
  std::string host;
  std::optional<uint16_t> port;  // any when unset
};
absl::StatusOr<DestinationMatch> parseDestinationMatch(std::string_view text);

// The largest duration accepted anywhere (about 24.8 days): timers take 32-bit milliseconds.
inline constexpr std::chrono::milliseconds kMaxDuration{2147483647};

// Parses a duration: a bare whole number is milliseconds ("500"); otherwise one or more whole
// numbers each followed by a unit, ms, s, m or h ("500ms", "10s", "1m30s"). Surrounding blanks
// are ignored. Errors (empty, unknown unit, overflow) quote the text.
absl::StatusOr<std::chrono::milliseconds> parseDuration(std::string_view text);

// The shortest exact form in one unit: "20s", "1m", "1500ms", "2h".
std::string formatDuration(std::chrono::milliseconds duration);

}  // namespace tracecar::proxy
