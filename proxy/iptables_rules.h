#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The nat rules that send a pod's TCP traffic through tracecar (transparent mode), as text for
// iptables-restore. Pure: no processes, no sockets; proxy/init_iptables.h applies the text.
// docs/transparent-mode.md explains every chain and rule.
namespace tracecar::proxy {

enum class IpFamily : uint8_t { kIpv4, kIpv6 };
// "IPv4" or "IPv6".
std::string_view ipFamilyName(IpFamily family) noexcept;

// --ipv6: whether the IPv6 rules are installed too.
enum class Ipv6Mode : uint8_t {
  kAuto,  // when the namespace has a global IPv6 address (then required) or ip6tables works
  kOn,    // always; an error when ip6tables fails
  kOff,   // never
};

// Our chains. Every rule we install lives in one of them, except the two jumps below.
inline constexpr std::string_view kInboundChain = "TRACECAR_INBOUND";  // from PREROUTING
inline constexpr std::string_view kInboundRedirectChain = "TRACECAR_IN_REDIRECT";
inline constexpr std::string_view kOutputChain = "TRACECAR_OUTPUT";  // from OUTPUT
inline constexpr std::string_view kOutboundRedirectChain = "TRACECAR_REDIRECT";
inline constexpr std::string_view kOwnChains[] = {kInboundChain, kInboundRedirectChain,
                                                  kOutputChain, kOutboundRedirectChain};

// One TCP port, or an inclusive range ("8000-8010", written 8000:8010 for iptables).
struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  bool operator==(const PortRange&) const = default;
};

// A network of one family, normalised the way iptables-save prints it ("10.0.0.0/8",
// "2001:db8::/32", "192.0.2.7/32").
struct Cidr {
  IpFamily family = IpFamily::kIpv4;
  std::string text;
  bool operator==(const Cidr&) const = default;
};

struct InterceptionOptions {
  uint16_t inbound_port = 15006;   // the inbound listener: redirected inbound TCP goes here
  uint16_t outbound_port = 15001;  // the outbound listener: the app's redirected TCP goes here
  uint16_t admin_port = 15000;     // never redirected, like the two listener ports
  uint32_t proxy_uid = 1337;       // tracecar's own connections are never redirected
  std::optional<uint32_t> proxy_gid;

  bool all_inbound_ports = true;         // --inbound-ports "*"
  std::vector<PortRange> inbound_ports;  // otherwise only these ("" redirects nothing inbound)
  std::vector<PortRange> exclude_inbound_ports;
  std::vector<PortRange> exclude_outbound_ports;
  std::vector<Cidr> exclude_outbound_cidrs;  // both families; each family's rules take its own
};

// Option values. Lists are comma-separated, blanks around items ignored, "" is the empty list.
// Errors name the option and the bad item.
absl::StatusOr<std::vector<PortRange>> parsePortList(std::string_view option,
                                                     std::string_view text);
// --inbound-ports: "*" (every port) or a port list.
absl::Status parseInboundPorts(std::string_view text, InterceptionOptions& options);
// "10.0.0.0/8", "2001:db8::/32", or an address alone (a /32 or /128).
absl::StatusOr<std::vector<Cidr>> parseCidrList(std::string_view option, std::string_view text);
absl::StatusOr<Ipv6Mode> parseIpv6Mode(std::string_view text);
// Rejects settings that cannot work: port 0, the same port for both listeners.
absl::Status validateOptions(const InterceptionOptions& options);

// The rules in our own chains, as iptables-save prints them ("-A TRACECAR_OUTPUT ...").
std::vector<std::string> chainRules(const InterceptionOptions& options, IpFamily family);
// The jumps from the built-in chains to ours.
std::vector<std::string> jumpRules();

// Input for `iptables-restore --noflush` that installs the rules, given what
// `iptables-save -t nat` shows now. Declaring our chains flushes them (or creates them); a jump
// already present once is kept, a missing one added, extra copies removed: the result is the
// same however many times it runs. An empty saved_nat means a namespace without our rules.
std::string installScript(const InterceptionOptions& options, IpFamily family,
                          std::string_view saved_nat);
// Input for `iptables-restore --noflush` that removes our jumps and our chains, as far as
// saved_nat shows them, and nothing else; "" when none is there.
std::string cleanupScript(std::string_view saved_nat);

// What --dry-run prints: the install script of each family for a namespace without our rules,
// each under a comment naming the command that would read it.
std::string dryRunText(const InterceptionOptions& options, Ipv6Mode ipv6);

}  // namespace tracecar::proxy
