// Stands in for tracecar's listeners in the network-namespace tests, so that the original
// destination is recovered by proxy/original_destination.h itself.
//
//   original_dst_probe serve NAME:PORT... [--own PORT,...] [--seconds N]
//     Listens on [::]:PORT (dual-stack) for each NAME:PORT, prints "READY", then answers every
//     connection with one line and closes it:
//       "NAME orig=ADDRESS own=yes|no"   (redirected; own: ADDRESS is one of the --own ports on
//                                          a local address, i.e. tracecar itself)
//       "NAME orig=none"                  (not redirected)
//     and prints the same line. Exits after N seconds (default 30) so it cannot outlive a test.
//   original_dst_probe connect HOST PORT
//     Connects (2 s timeout), prints the line the server sent, exits 0; "ERROR ..." and 1 when
//     the connection fails.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "http/tcp_address.h"
#include "proxy/original_destination.h"

namespace {

using tracecar::proxy::OwnListeners;

struct Served {
  std::string name;
  int fd = -1;
};

int usage() {
  std::fprintf(stderr,
               "usage: original_dst_probe serve NAME:PORT... [--own PORT,...] [--seconds N]\n"
               "       original_dst_probe connect HOST PORT\n");
  return 2;
}

int listenOn(uint16_t port) {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int on = 1;
  const int off = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_any;
  address.sin6_port = htons(port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 64) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string describe(int fd, const OwnListeners& own) {
  const auto original = tracecar::proxy::originalDestination(fd);
  if (!original.ok()) return "error=" + std::string(original.status().message());
  if (!original->has_value()) return "orig=none";
  return "orig=" + tracecar::http::describeAddress(**original) +
         (own.contains(**original) ? " own=yes" : " own=no");
}

int serve(int argc, char** argv) {
  std::vector<Served> served;
  OwnListeners own;
  int seconds = 30;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--own" && i + 1 < argc) {
      std::string list = argv[++i];
      for (size_t start = 0; start <= list.size();) {
        const size_t comma = std::min(list.find(',', start), list.size());
        const int port = std::atoi(list.substr(start, comma - start).c_str());
        if (port > 0) (void)own.add("::", static_cast<uint16_t>(port));
        start = comma + 1;
      }
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atoi(argv[++i]);
    } else {
      const size_t colon = arg.rfind(':');
      if (colon == std::string::npos) return usage();
      const int port = std::atoi(arg.c_str() + colon + 1);
      const int fd = listenOn(static_cast<uint16_t>(port));
      if (fd < 0) {
        std::fprintf(stderr, "listening on %d: %s\n", port, std::strerror(errno));
        return 1;
      }
      served.push_back({arg.substr(0, colon), fd});
    }
  }
  if (served.empty()) return usage();
  if (absl::Status status = own.loadLocalAddresses(); !status.ok()) {
    std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::vector<pollfd> fds;
  for (const Served& s : served) fds.push_back({s.fd, POLLIN, 0});
  while (std::chrono::steady_clock::now() < deadline) {
    if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      const int connection = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) continue;
      const std::string line = served[i].name + " " + describe(connection, own) + "\n";
      (void)::send(connection, line.data(), line.size(), MSG_NOSIGNAL);
      ::close(connection);
      std::fputs(line.c_str(), stdout);
      std::fflush(stdout);
    }
  }
  return 0;
}

int connectTo(const char* host, const char* port_text) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  const auto port = static_cast<uint16_t>(std::atoi(port_text));
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    length = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    length = sizeof *v6;
  } else {
    std::printf("ERROR not an IP address: %s\n", host);
    return 1;
  }
  const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const timeval timeout{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
    std::printf("ERROR connect: %s\n", std::strerror(errno));
    return 1;
  }
  std::string reply;
  char buffer[512];
  ssize_t n = 0;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) {
    reply.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (n < 0) {
    std::printf("ERROR recv: %s\n", std::strerror(errno));
    return 1;
  }
  std::fputs(reply.c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "serve") return serve(argc, argv);
  if (argc == 4 && std::string(argv[1]) == "connect") return connectTo(argv[2], argv[3]);
  return usage();
}
