#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

// `tracecar init-iptables`: installs (or, with --cleanup, removes) the nat rules of
// proxy/iptables_rules.h in the current network namespace with iptables-restore and
// ip6tables-restore. Meant for a pod's init container (root, or CAP_NET_ADMIN and CAP_NET_RAW).
namespace tracecar::proxy {

// The command line as given; runInitIptables checks it.
struct InitIptablesFlags {
  uint16_t inbound_port = 15006;
  uint16_t outbound_port = 15001;
  uint16_t admin_port = 15000;
  uint32_t proxy_uid = 1337;
  std::optional<uint32_t> proxy_gid;
  std::string inbound_ports = "*";
  std::string exclude_inbound_ports;
  std::string exclude_outbound_ports;
  std::string exclude_outbound_cidrs;
  std::string ipv6 = "auto";
  bool dry_run = false;
  bool cleanup = false;
};

// Adds the options of init-iptables, each with its default, to command.
void addInitIptablesOptions(CLI::App& command, InitIptablesFlags& flags);

// Runs the command: 0 done; 1 iptables failed, is missing or lacks permission (each named, with
// what iptables said); 2 a bad option value. Messages go to standard error, the rules applied
// (or with --dry-run, the rules that would be) to standard output.
int runInitIptables(const InitIptablesFlags& flags);

}  // namespace tracecar::proxy
