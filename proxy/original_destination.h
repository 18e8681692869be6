#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

// Transparent mode: where a connection that iptables REDIRECT sent to one of our listeners was
// really going (docs/transparent-mode.md), and whether that is tracecar itself.
namespace tracecar::proxy {

// The destination an accepted TCP connection had before a nat REDIRECT/DNAT rewrote it
// (SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST). An IPv4 connection accepted on a dual-stack IPv6
// socket gives an AF_INET address. std::nullopt when the connection was not redirected: the
// kernel tracks no NAT for it (its original destination is the socket's own local address) or
// does not track it at all. An error for anything else (not a TCP socket, closed fd).
absl::StatusOr<std::optional<sockaddr_storage>> originalDestination(int fd);

// What the listeners call on each accepted connection: originalDestination, or a stand-in (tests
// redirect connections without iptables that way).
using OriginalDestinationLookup =
    std::function<absl::StatusOr<std::optional<sockaddr_storage>>(int fd)>;

// tracecar's own listening addresses, for loop prevention: a redirected connection whose original
// destination is one of them would come straight back into the proxy, so it is refused. A
// listener bound to a wildcard ("0.0.0.0", or "::" which also takes IPv4) answers on loopback and
// on every local address; those are read once with loadLocalAddresses() (or given by
// addLocalAddress()). Built once at startup, then read-only and safe to share between workers.
class OwnListeners {
 public:
  // A listener bound to ip (a literal, IPv6 without brackets) and port.
  absl::Status add(std::string_view ip, uint16_t port);
  // A listener as getsockname() reports it (port 0 listeners must be added once bound).
  void add(const sockaddr_storage& bound);
  // An address of this network namespace (a pod IP).
  void addLocalAddress(const sockaddr_storage& address);
  // Every address of every interface of this network namespace (getifaddrs).
  absl::Status loadLocalAddresses();

  // Whether a connection to destination would reach one of the listeners.
  bool contains(const sockaddr_storage& destination) const noexcept;
  // The same for an IP literal (IPv6 without brackets) and port; false for anything else.
  bool contains(std::string_view ip, uint16_t port) const noexcept;

 private:
  struct Address {
    bool v6 = false;  // IPv4-mapped IPv6 addresses are kept as IPv4
    std::array<uint8_t, 16> bytes{};
    bool operator==(const Address&) const = default;
  };
  struct Listener {
    Address address;
    uint16_t port = 0;
    bool wildcard = false;
  };
  static std::optional<Address> toAddress(const sockaddr_storage& storage, uint16_t* port) noexcept;
  bool isLocal(const Address& address) const noexcept;

  std::vector<Listener> listeners_;
  std::vector<Address> local_addresses_;
};

}  // namespace tracecar::proxy
