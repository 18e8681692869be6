#include "http/tcp_address.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace tracecar::http {

IpPort ipPort(const sockaddr_storage& address) {
  char ip[INET6_ADDRSTRLEN] = {};
  IpPort out;
  if (address.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&address);
    uv_ip6_name(a, ip, sizeof ip);
    out.port = ntohs(a->sin6_port);
  } else if (address.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&address);
    uv_ip4_name(a, ip, sizeof ip);
    out.port = ntohs(a->sin_port);
  }
  out.ip = ip;
  return out;
}

std::string describeAddress(const sockaddr_storage& address) {
  const IpPort where = ipPort(address);
  // snprintf rather than string concatenation: g++ 12 at -O3 reports a false -Wrestrict on the
  // latter.
  char text[INET6_ADDRSTRLEN + 16];
  if (address.ss_family == AF_INET6) {
    std::snprintf(text, sizeof text, "[%s]:%u", where.ip.c_str(), unsigned{where.port});
  } else {
    std::snprintf(text, sizeof text, "%s:%u", where.ip.c_str(), unsigned{where.port});
  }
  return text;
}

int resolveTcp(uv_loop_t* loop, uv_getaddrinfo_t* req, uv_getaddrinfo_cb callback,
               const std::string& host, uint16_t port) noexcept {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  char service[8];
  std::snprintf(service, sizeof service, "%u", static_cast<unsigned>(port));
  return uv_getaddrinfo(loop, req, callback, host.c_str(), service, &hints);
}

void appendAddresses(const addrinfo* list, std::vector<sockaddr_storage>& out) {
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    sockaddr_storage address{};
    std::memcpy(&address, ai->ai_addr, std::min<size_t>(ai->ai_addrlen, sizeof address));
    out.push_back(address);
  }
}

}  // namespace tracecar::http
