#pragma once

#include <netdb.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

// TCP addresses on a libuv loop: resolving a host name and printing an address.
namespace tracecar::http {

struct IpPort {
  std::string ip;  // IPv6 without brackets
  uint16_t port = 0;
};
// The IP and port of an IPv4 or IPv6 address; "" and 0 for any other family.
IpPort ipPort(const sockaddr_storage& address);
// "127.0.0.1:4318" or "[::1]:4318".
std::string describeAddress(const sockaddr_storage& address);

// Starts resolving host for a TCP connection to port (IPv4 and IPv6); uv_getaddrinfo's result.
int resolveTcp(uv_loop_t* loop, uv_getaddrinfo_t* req, uv_getaddrinfo_cb callback,
               const std::string& host, uint16_t port) noexcept;
// Appends the IPv4 and IPv6 addresses of list to out, in order. Throws std::bad_alloc, after
// which out holds those appended so far.
void appendAddresses(const addrinfo* list, std::vector<sockaddr_storage>& out);

}  // namespace tracecar::http
