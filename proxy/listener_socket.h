#pragma once

#include <uv.h>

#include <absl/status/statusor.h>

#include <cstdint>

#include "proxy/acceptor.h"
#include "proxy/data_path_settings.h"
#include "proxy/downstream_session.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

// Opens a TCP socket bound to address (an IP literal) with SO_REUSEADDR and SO_REUSEPORT,
// non-blocking and close-on-exec, listening with backlog: each worker listens on its own socket
// of the same port and the kernel spreads connections among them. Port 0 takes a free port
// (bound before SO_REUSEPORT is set, so no other reuse-port group can share it); the other
// workers' sockets then bind to the port it got.
//
// first: the group's first socket. SO_REUSEPORT would let it join sockets already listening on
// a fixed port (another tracecar, any process of the same user, or another listener of this one)
// and take part of their connections; so a socket without SO_REUSEPORT is bound there first, and
// an address in use is an error (EADDRINUSE). Listening at once is what makes this process's own
// earlier listeners count.
absl::StatusOr<int> openListenSocket(const DataPathAddress& address, int backlog, bool first);

// One worker's listening socket of one listener: accepts connections (Acceptor, which pauses
// while file descriptors run out) into DownstreamSessions.
class ListenerSocket {
 public:
  ListenerSocket(WorkerContext& context, ListenerContext& listener) noexcept
      : context_(context), listener_(listener) {}
  ListenerSocket(const ListenerSocket&) = delete;
  ListenerSocket& operator=(const ListenerSocket&) = delete;

  // Takes fd, a listening socket (closed on failure too), and accepts on it from the worker's
  // loop.
  int start(int fd) noexcept;
  // Stops accepting; the handles and the socket close on the loop.
  void close() noexcept { acceptor_.close(); }

 private:
  WorkerContext& context_;
  ListenerContext& listener_;
  Acceptor acceptor_;
};

}  // namespace tracecar::proxy
