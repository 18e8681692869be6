#include "proxy/listener_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>


namespace tracecar::proxy {
namespace {

std::string describe(const DataPathAddress& address) {
  const bool v6 = address.host.find(':') != std::string::npos;
  return (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

absl::Status socketError(const DataPathAddress& address, std::string_view what, int error) {
  return absl::UnavailableError("listening on " + describe(address) + ": " + std::string(what) +
                                ": " + std::strerror(error));
}

}  // namespace

absl::StatusOr<int> openListenSocket(const DataPathAddress& address, int backlog, bool first) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address.port);
    length = sizeof *v4;
  } else if (inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(address.port);
    length = sizeof *v6;
  } else {
    return absl::InvalidArgumentError("listening on " + describe(address) +
                                      ": not an IP address");
  }
  const int on = 1;
  const auto* where = reinterpret_cast<const sockaddr*>(&storage);
  if (first && address.port != 0) {
    // SO_REUSEADDR only: connections in TIME_WAIT do not hold the port, a listener does.
    const int probe = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return socketError(address, "socket", errno);
    int error = 0;
    if (::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        ::bind(probe, where, length) != 0) {
      error = errno;
    }
    ::close(probe);
    if (error == EADDRINUSE) {
      return absl::UnavailableError(
          "listening on " + describe(address) +
          ": the address is already in use (by another process, or by another of tracecar's "
          "listeners)");
    }
    if (error != 0) return socketError(address, "bind", error);
  }
  const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return socketError(address, "socket", errno);
  auto fail = [&](std::string_view what) {
    const int error = errno;
    ::close(fd);
    return socketError(address, what, error);
  };
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) {
    return fail("SO_REUSEADDR");
  }
  const bool any_port = address.port == 0;
  if (!any_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
    return fail("SO_REUSEPORT");
  }
  if (::bind(fd, where, length) != 0) return fail("bind");
  if (any_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
    return fail("SO_REUSEPORT");
  }
  if (::listen(fd, backlog) != 0) return fail("listen");
  return fd;
}

int ListenerSocket::start(int fd) noexcept {
  return acceptor_.start(
      context_.loop(), fd,
      [this](int accepted) {
        DownstreamSession::accept(context_, listener_, AcceptSource::descriptor(accepted));
      },
      "proxy");
}

}  // namespace tracecar::proxy
