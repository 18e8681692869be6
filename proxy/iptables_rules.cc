#include "proxy/iptables_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

namespace tracecar::proxy {
namespace {

constexpr std::string_view kPreroutingJump = "-A PREROUTING -p tcp -j TRACECAR_INBOUND";
constexpr std::string_view kOutputJump = "-A OUTPUT -p tcp -j TRACECAR_OUTPUT";

std::string_view trim(std::string_view text) noexcept {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

// The items of a comma-separated list; an empty or blank text is the empty list.
std::vector<std::string_view> splitList(std::string_view text) {
  std::vector<std::string_view> items;
  if (trim(text).empty()) return items;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    items.push_back(
        trim(text.substr(start, comma == std::string_view::npos ? text.npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return items;
}

absl::Status badItem(std::string_view option, std::string_view item, std::string_view why) {
  return absl::InvalidArgumentError(std::string(option) + ": \"" + std::string(item) +
                                    "\": " + std::string(why));
}

// A decimal number within [min, max], digits only.
std::optional<uint32_t> parseNumber(std::string_view text, uint32_t min, uint32_t max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value < min || value > max) return std::nullopt;
  return static_cast<uint32_t>(value);
}

std::string portMatch(const PortRange& range) {
  std::string out = "-p tcp -m tcp --dport " + std::to_string(range.first);
  if (range.last != range.first) out += ":" + std::to_string(range.last);
  return out;
}

std::string rule(std::string_view chain, std::string_view spec) {
  return "-A " + std::string(chain) + " " + std::string(spec);
}

// What saved_nat (iptables-save -t nat) shows of ours.
struct SavedState {
  std::vector<std::string_view> own_chains;  // declared chains that are ours, in kOwnChains order
  int prerouting_jumps = 0;
  int output_jumps = 0;
};

SavedState readSaved(std::string_view saved_nat) {
  SavedState state;
  std::vector<std::string_view> declared;
  bool in_nat = false;
  size_t start = 0;
  while (start < saved_nat.size()) {
    size_t end = saved_nat.find('\n', start);
    if (end == std::string_view::npos) end = saved_nat.size();
    const std::string_view line = trim(saved_nat.substr(start, end - start));
    start = end + 1;
    if (line.starts_with('*')) {
      in_nat = line == "*nat";
    } else if (line == "COMMIT") {
      in_nat = false;
    } else if (in_nat && line.starts_with(':')) {
      declared.push_back(line.substr(1, line.find(' ') - 1));
    } else if (in_nat && line == kPreroutingJump) {
      ++state.prerouting_jumps;
    } else if (in_nat && line == kOutputJump) {
      ++state.output_jumps;
    }
  }
  for (const std::string_view chain : kOwnChains) {
    if (std::find(declared.begin(), declared.end(), chain) != declared.end()) {
      state.own_chains.push_back(chain);
    }
  }
  return state;
}

// Adds jump once when absent, deletes the copies beyond the first when present more than once.
void keepOneJump(std::string& script, std::string_view jump, int present) {
  if (present == 0) script.append(jump).append("\n");
  for (int extra = 1; extra < present; ++extra) {
    script.append("-D").append(jump.substr(2)).append("\n");
  }
}

void appendDeclarations(std::string& script) {
  for (const std::string_view chain : kOwnChains) {
    script.append(":").append(chain).append(" - [0:0]\n");
  }
}

void appendRules(std::string& script, const std::vector<std::string>& rules) {
  for (const std::string& line : rules) script.append(line).append("\n");
}

}  // namespace

std::string_view ipFamilyName(IpFamily family) noexcept {
  return family == IpFamily::kIpv4 ? "IPv4" : "IPv6";
}

absl::StatusOr<std::vector<PortRange>> parsePortList(std::string_view option,
                                                     std::string_view text) {
  std::vector<PortRange> ranges;
  for (const std::string_view item : splitList(text)) {
    if (item.empty()) return badItem(option, item, "empty item; separate ports with one comma");
    if (item == "*") {
      return badItem(option, item, "\"*\" (every port) is accepted by --inbound-ports only");
    }
    const size_t dash = item.find('-');
    const std::string_view first_text = trim(item.substr(0, dash));
    const std::string_view last_text =
        dash == std::string_view::npos ? first_text : trim(item.substr(dash + 1));
    const std::optional<uint32_t> first = parseNumber(first_text, 1, 65535);
    const std::optional<uint32_t> last = parseNumber(last_text, 1, 65535);
    if (!first || !last) {
      return badItem(option, item, "want a port 1-65535 or a range like 8000-8010");
    }
    if (*first > *last) return badItem(option, item, "range ends before it starts");
    const PortRange range{static_cast<uint16_t>(*first), static_cast<uint16_t>(*last)};
    if (std::find(ranges.begin(), ranges.end(), range) == ranges.end()) ranges.push_back(range);
  }
  return ranges;
}

absl::Status parseInboundPorts(std::string_view text, InterceptionOptions& options) {
  if (trim(text) == "*") {
    options.all_inbound_ports = true;
    options.inbound_ports.clear();
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<PortRange>> ports = parsePortList("--inbound-ports", text);
  if (!ports.ok()) return ports.status();
  options.all_inbound_ports = false;
  options.inbound_ports = *std::move(ports);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Cidr>> parseCidrList(std::string_view option, std::string_view text) {
  std::vector<Cidr> cidrs;
  for (const std::string_view item : splitList(text)) {
    if (item.empty()) return badItem(option, item, "empty item; separate networks with one comma");
    const size_t slash = item.find('/');
    const std::string address(trim(item.substr(0, slash)));
    std::array<unsigned char, 16> bytes{};
    Cidr cidr;
    size_t bits = 0;
    if (inet_pton(AF_INET, address.c_str(), bytes.data()) == 1) {
      cidr.family = IpFamily::kIpv4;
      bits = 32;
    } else if (inet_pton(AF_INET6, address.c_str(), bytes.data()) == 1) {
      cidr.family = IpFamily::kIpv6;
      bits = 128;
    } else {
      return badItem(option, item, "want an IPv4 or IPv6 network like 10.0.0.0/8 or fd00::/8");
    }
    size_t prefix = bits;
    if (slash != std::string_view::npos) {
      const std::optional<uint32_t> parsed =
          parseNumber(trim(item.substr(slash + 1)), 0, static_cast<uint32_t>(bits));
      if (!parsed) {
        return badItem(option, item,
                       "the prefix length must be 0-" + std::to_string(bits) + " for " +
                           std::string(ipFamilyName(cidr.family)));
      }
      prefix = *parsed;
    }
    // Clear the host bits, as iptables does, so the rule reads back as written.
    for (size_t bit = prefix; bit < bits; ++bit) {
      bytes[bit / 8] = static_cast<unsigned char>(bytes[bit / 8] & ~(0x80u >> (bit % 8)));
    }
    char buffer[INET6_ADDRSTRLEN] = {};
    inet_ntop(cidr.family == IpFamily::kIpv4 ? AF_INET : AF_INET6, bytes.data(), buffer,
              sizeof buffer);
    cidr.text = std::string(buffer) + "/" + std::to_string(prefix);
    if (std::find(cidrs.begin(), cidrs.end(), cidr) == cidrs.end()) cidrs.push_back(cidr);
  }
  return cidrs;
}

absl::StatusOr<Ipv6Mode> parseIpv6Mode(std::string_view text) {
  const std::string_view value = trim(text);
  if (value == "auto") return Ipv6Mode::kAuto;
  if (value == "on") return Ipv6Mode::kOn;
  if (value == "off") return Ipv6Mode::kOff;
  return absl::InvalidArgumentError("--ipv6: \"" + std::string(text) + "\": want auto, on or off");
}

absl::Status validateOptions(const InterceptionOptions& options) {
  const std::pair<std::string_view, uint16_t> ports[] = {{"--inbound-port", options.inbound_port},
                                                         {"--outbound-port", options.outbound_port},
                                                         {"--admin-port", options.admin_port}};
  for (size_t i = 0; i < std::size(ports); ++i) {
    if (ports[i].second == 0) {
      return absl::InvalidArgumentError(std::string(ports[i].first) + ": must be 1-65535");
    }
    for (size_t j = 0; j < i; ++j) {
      if (ports[i].second == ports[j].second) {
        return absl::InvalidArgumentError(
            std::string(ports[j].first) + " and " + std::string(ports[i].first) + " are both " +
            std::to_string(ports[i].second) + "; each listener needs its own port");
      }
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> chainRules(const InterceptionOptions& options, IpFamily family) {
  std::vector<std::string> rules;
  // Inbound: our own ports and the excluded ones go where they were sent; the rest (or the
  // listed ports) to the inbound listener.
  std::vector<uint16_t> own = {options.admin_port, options.outbound_port, options.inbound_port};
  std::sort(own.begin(), own.end());
  own.erase(std::unique(own.begin(), own.end()), own.end());
  for (const uint16_t port : own) {
    rules.push_back(rule(kInboundChain, portMatch({port, port}) + " -j RETURN"));
  }
  for (const PortRange& range : options.exclude_inbound_ports) {
    rules.push_back(rule(kInboundChain, portMatch(range) + " -j RETURN"));
  }
  const std::string to_inbound = " -j " + std::string(kInboundRedirectChain);
  if (options.all_inbound_ports) {
    rules.push_back(rule(kInboundChain, "-p tcp" + to_inbound));
  } else {
    for (const PortRange& range : options.inbound_ports) {
      rules.push_back(rule(kInboundChain, portMatch(range) + to_inbound));
    }
  }
  rules.push_back(rule(kInboundRedirectChain,
                       "-p tcp -j REDIRECT --to-ports " + std::to_string(options.inbound_port)));

  // Outbound: never tracecar's own connections (no loop through the proxy), never loopback.
  rules.push_back(rule(kOutputChain,
                       "-m owner --uid-owner " + std::to_string(options.proxy_uid) + " -j RETURN"));
  if (options.proxy_gid) {
    rules.push_back(rule(
        kOutputChain, "-m owner --gid-owner " + std::to_string(*options.proxy_gid) + " -j RETURN"));
  }
  rules.push_back(rule(kOutputChain, family == IpFamily::kIpv4 ? "-d 127.0.0.0/8 -j RETURN"
                                                               : "-d ::1/128 -j RETURN"));
  // Any other destination through lo is one of the pod's own addresses: the app calling itself
  // by its pod IP is an inbound request, with the inbound exclusions; never an outbound one.
  rules.push_back(rule(kOutputChain, "-o lo -j " + std::string(kInboundChain)));
  rules.push_back(rule(kOutputChain, "-o lo -j RETURN"));
  for (const PortRange& range : options.exclude_outbound_ports) {
    rules.push_back(rule(kOutputChain, portMatch(range) + " -j RETURN"));
  }
  for (const Cidr& cidr : options.exclude_outbound_cidrs) {
    if (cidr.family != family) continue;
    // A /0 matches everything; iptables-save prints it without -d.
    const bool everything = cidr.text.ends_with("/0");
    rules.push_back(
        rule(kOutputChain, everything ? "-j RETURN" : "-d " + cidr.text + " -j RETURN"));
  }
  rules.push_back(rule(kOutputChain, "-j " + std::string(kOutboundRedirectChain)));
  rules.push_back(rule(kOutboundRedirectChain,
                       "-p tcp -j REDIRECT --to-ports " + std::to_string(options.outbound_port)));
  return rules;
}

std::vector<std::string> jumpRules() {
  return {std::string(kPreroutingJump), std::string(kOutputJump)};
}

std::string installScript(const InterceptionOptions& options, IpFamily family,
                          std::string_view saved_nat) {
  const SavedState state = readSaved(saved_nat);
  std::string script = "*nat\n";
  appendDeclarations(script);
  keepOneJump(script, kPreroutingJump, state.prerouting_jumps);
  keepOneJump(script, kOutputJump, state.output_jumps);
  appendRules(script, chainRules(options, family));
  script += "COMMIT\n";
  return script;
}

std::string cleanupScript(std::string_view saved_nat) {
  const SavedState state = readSaved(saved_nat);
  if (state.own_chains.empty() && state.prerouting_jumps == 0 && state.output_jumps == 0) {
    return {};
  }
  std::string script = "*nat\n";
  for (int i = 0; i < state.prerouting_jumps; ++i) {
    script.append("-D").append(kPreroutingJump.substr(2)).append("\n");
  }
  for (int i = 0; i < state.output_jumps; ++i) {
    script.append("-D").append(kOutputJump.substr(2)).append("\n");
  }
  // Our chains jump to each other: empty them all before deleting any.
  for (const std::string_view chain : state.own_chains) {
    script.append("-F ").append(chain).append("\n");
  }
  for (const std::string_view chain : state.own_chains) {
    script.append("-X ").append(chain).append("\n");
  }
  script += "COMMIT\n";
  return script;
}

std::string dryRunText(const InterceptionOptions& options, Ipv6Mode ipv6) {
  std::string text = "# IPv4: iptables-restore --noflush\n";
  text += installScript(options, IpFamily::kIpv4, "");
  if (ipv6 == Ipv6Mode::kOff) return text;
  text += ipv6 == Ipv6Mode::kOn
              ? "# IPv6: ip6tables-restore --noflush\n"
              : "# IPv6: ip6tables-restore --noflush (--ipv6 auto: when the namespace has a "
                "global IPv6 address or ip6tables works)\n";
  text += installScript(options, IpFamily::kIpv6, "");
  return text;
}

}  // namespace tracecar::proxy
