#include "proxy/original_destination.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#if __has_include(<linux/netfilter_ipv4.h>)
#include <linux/netfilter_ipv4.h>
#endif

#include <cerrno>
#include <cstring>
#include <string>

namespace tracecar::proxy {
namespace {

// From the kernel's UAPI: linux/netfilter_ipv4.h (SO_ORIGINAL_DST) and
// linux/netfilter_ipv6/ip6_tables.h (IP6T_SO_ORIGINAL_DST). The IPv6 header is not included: it
// drags in the whole x_tables UAPI for one number.
#ifdef SO_ORIGINAL_DST
constexpr int kSoOriginalDst = SO_ORIGINAL_DST;
#else
constexpr int kSoOriginalDst = 80;
#endif
constexpr int kIp6tSoOriginalDst = 80;

bool isV4Mapped(const sockaddr_in6& address) noexcept {
  return IN6_IS_ADDR_V4MAPPED(&address.sin6_addr);
}

absl::Status socketError(std::string_view what, int error) {
  return absl::FailedPreconditionError("original destination: " + std::string(what) + ": " +
                                       std::strerror(error));
}

// Errors that mean "no NAT on this connection" rather than a broken socket: ENOENT (conntrack
// has no entry) and ENOPROTOOPT (nf_conntrack is not loaded, so nothing can have redirected it).
bool meansNotRedirected(int error) noexcept { return error == ENOENT || error == ENOPROTOOPT; }

// An IP literal (IPv6 without brackets) and port as a socket address; nullopt for anything else.
std::optional<sockaddr_storage> socketAddress(std::string_view ip, uint16_t port) {
  const std::string text(ip);
  sockaddr_storage storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
  } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
  } else {
    return std::nullopt;
  }
  return storage;
}


}  // namespace

absl::StatusOr<std::optional<sockaddr_storage>> originalDestination(int fd) {
  sockaddr_storage local{};
  socklen_t local_length = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) {
    return socketError("getsockname", errno);
  }
  sockaddr_storage original{};
  if (local.ss_family == AF_INET ||
      (local.ss_family == AF_INET6 && isV4Mapped(*reinterpret_cast<const sockaddr_in6*>(&local)))) {
    // IPv4, also on a dual-stack IPv6 socket: the kernel answers SOL_IP there too.
    sockaddr_in v4{};
    socklen_t length = sizeof v4;
    if (::getsockopt(fd, SOL_IP, kSoOriginalDst, &v4, &length) != 0) {
      if (meansNotRedirected(errno)) return std::nullopt;
      return socketError("SO_ORIGINAL_DST", errno);
    }
    uint32_t local_ip = 0;
    uint16_t local_port = 0;
    if (local.ss_family == AF_INET) {
      const auto& l4 = *reinterpret_cast<const sockaddr_in*>(&local);
      local_ip = l4.sin_addr.s_addr;
      local_port = l4.sin_port;
    } else {
      const auto& l6 = *reinterpret_cast<const sockaddr_in6*>(&local);
      std::memcpy(&local_ip, &l6.sin6_addr.s6_addr[12], sizeof local_ip);
      local_port = l6.sin6_port;
    }
    if (v4.sin_addr.s_addr == local_ip && v4.sin_port == local_port) return std::nullopt;
    v4.sin_family = AF_INET;
    std::memcpy(&original, &v4, sizeof v4);
    return original;
  }
  if (local.ss_family != AF_INET6) {
    return absl::InvalidArgumentError("original destination: not an IPv4 or IPv6 socket");
  }
  sockaddr_in6 v6{};
  socklen_t length = sizeof v6;
  if (::getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &v6, &length) != 0) {
    if (meansNotRedirected(errno)) return std::nullopt;
    return socketError("IP6T_SO_ORIGINAL_DST", errno);
  }
  const auto& l6 = *reinterpret_cast<const sockaddr_in6*>(&local);
  if (std::memcmp(&v6.sin6_addr, &l6.sin6_addr, sizeof v6.sin6_addr) == 0 &&
      v6.sin6_port == l6.sin6_port) {
    return std::nullopt;
  }
  v6.sin6_family = AF_INET6;
  std::memcpy(&original, &v6, sizeof v6);
  return original;
}

std::optional<OwnListeners::Address> OwnListeners::toAddress(const sockaddr_storage& storage,
                                                             uint16_t* port) noexcept {
  Address address;
  if (storage.ss_family == AF_INET) {
    const auto& v4 = *reinterpret_cast<const sockaddr_in*>(&storage);
    std::memcpy(address.bytes.data(), &v4.sin_addr, 4);
    if (port != nullptr) *port = ntohs(v4.sin_port);
    return address;
  }
  if (storage.ss_family != AF_INET6) return std::nullopt;
  const auto& v6 = *reinterpret_cast<const sockaddr_in6*>(&storage);
  if (port != nullptr) *port = ntohs(v6.sin6_port);
  if (isV4Mapped(v6)) {
    std::memcpy(address.bytes.data(), &v6.sin6_addr.s6_addr[12], 4);
    return address;
  }
  address.v6 = true;
  std::memcpy(address.bytes.data(), &v6.sin6_addr, 16);
  return address;
}

absl::Status OwnListeners::add(std::string_view ip, uint16_t port) {
  const std::optional<sockaddr_storage> storage = socketAddress(ip, port);
  if (!storage) {
    return absl::InvalidArgumentError("own listener \"" + std::string(ip) +
                                      "\": not an IP address");
  }
  add(*storage);
  return absl::OkStatus();
}

void OwnListeners::add(const sockaddr_storage& bound) {
  Listener listener;
  const std::optional<Address> address = toAddress(bound, &listener.port);
  if (!address) return;
  listener.address = *address;
  // "0.0.0.0" and "::" are wildcards; "::ffff:0.0.0.0" (kept as IPv4) is not.
  const bool mapped = bound.ss_family == AF_INET6 && !address->v6;
  listener.wildcard = !mapped && *address == Address{address->v6, {}};
  listeners_.push_back(listener);
}

void OwnListeners::addLocalAddress(const sockaddr_storage& address) {
  const std::optional<Address> local = toAddress(address, nullptr);
  if (local) local_addresses_.push_back(*local);
}

absl::Status OwnListeners::loadLocalAddresses() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return absl::UnavailableError(std::string("listing local addresses: ") + std::strerror(errno));
  }
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    const int family = entry->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    sockaddr_storage storage{};
    std::memcpy(&storage, entry->ifa_addr,
                family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    addLocalAddress(storage);
  }
  ::freeifaddrs(list);
  return absl::OkStatus();
}

bool OwnListeners::isLocal(const Address& address) const noexcept {
  if (!address.v6) {
    // 127.0.0.0/8 and 0.0.0.0 (connecting to it reaches this host).
    if (address.bytes[0] == 127) return true;
    if (address.bytes[0] == 0 && address.bytes[1] == 0 && address.bytes[2] == 0 &&
        address.bytes[3] == 0) {
      return true;
    }
  } else {
    Address loopback{true, {}};
    loopback.bytes[15] = 1;
    if (address == loopback || address == Address{true, {}}) return true;
  }
  for (const Address& local : local_addresses_) {
    if (local == address) return true;
  }
  return false;
}

bool OwnListeners::contains(const sockaddr_storage& destination) const noexcept {
  uint16_t port = 0;
  const std::optional<Address> address = toAddress(destination, &port);
  if (!address) return false;
  for (const Listener& listener : listeners_) {
    if (listener.port != port) continue;
    if (!listener.wildcard) {
      if (listener.address == *address) return true;
      // Connecting to the unspecified address reaches the loopback one (Linux routes 0.0.0.0 to
      // 127.0.0.1 and :: to ::1).
      Address unspecified{listener.address.v6, {}};
      Address loopback{listener.address.v6, {}};
      if (listener.address.v6) {
        loopback.bytes[15] = 1;
      } else {
        loopback.bytes[0] = 127;
        loopback.bytes[3] = 1;
      }
      if (*address == unspecified && listener.address == loopback) return true;
      continue;
    }
    // "0.0.0.0" takes IPv4 only; "::" takes both (dual-stack).
    if (!listener.address.v6 && address->v6) continue;
    if (isLocal(*address)) return true;
  }
  return false;
}

bool OwnListeners::contains(std::string_view ip, uint16_t port) const noexcept {
  try {
    const std::optional<sockaddr_storage> destination = socketAddress(ip, port);
    return destination && contains(*destination);
  } catch (...) {
    return false;  // out of memory copying the text
  }
}

}  // namespace tracecar::proxy
