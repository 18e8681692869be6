#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "exporter/log.h"

struct sockaddr_storage;

namespace tracecar::proxy {

// A socket bound to address (IPv4 or IPv6, with SO_REUSEADDR; [::] takes IPv4 too), listening
// with backlog, non-blocking and close-on-exec, for an Acceptor; a negative errno on failure.
int listenOn(const sockaddr_storage& address, int backlog) noexcept;
// The port a socket is bound to; 0 on error.
uint16_t boundPort(int fd) noexcept;

// Accepts the connections of one listening socket on a loop, by itself (a poll handle and
// accept4, not uv_listen), for the case of running out of file descriptors. libuv then accepts
// and closes every waiting connection with a descriptor it keeps in reserve; once another
// thread has taken that descriptor, it calls back with EMFILE in a loop that does not end until
// a descriptor is free, which nothing on the stuck loop can make happen. Here, accept failing
// for want of descriptors (or of the kernel's memory, or for a reason not foreseen) pauses
// accepting for kPauseMs instead: the waiting connections stay in the backlog and are taken once
// the connections being served have given descriptors back. An error of the one connection
// being accepted (accept(2)'s network errors, a refusal by a firewall rule) skips it. Warnings
// are throttled (LogThrottle).
class Acceptor {
 public:
  static constexpr uint64_t kPauseMs = 100;
  // Connections accepted per readiness event, so that a flood of them cannot hold the loop.
  static constexpr int kAcceptsPerEvent = 128;

  // Called with each accepted connection (non-blocking, close-on-exec), which it then owns.
  using Accepted = std::function<void(int fd)>;

  Acceptor() = default;
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Takes fd, a listening socket (closed on failure too), and accepts on it from loop. component
  // names the warnings' source ("proxy", "admin"). closed, if set, runs once the handles and
  // the socket have closed on the loop (after close(), or after a start that failed once its
  // handles were made: closing() then says so).
  int start(uv_loop_t* loop, int fd, Accepted accepted, std::string component,
            std::function<void()> closed = {}) noexcept;
  // Stops accepting; the handles and the socket close on the loop.
  void close() noexcept;
  bool open() const noexcept { return open_; }
  bool closing() const noexcept { return !open_ && handles_open_ > 0; }

 private:
  static void onReadable(uv_poll_t* poll, int status, int events) noexcept;
  static void onPauseOver(uv_timer_t* timer) noexcept;
  static void onHandleClosed(uv_handle_t* handle) noexcept;
  void acceptWaiting() noexcept;
  void pause() noexcept;

  uv_poll_t poll_{};
  uv_timer_t pause_timer_{};
  bool timer_open_ = false;
  int fd_ = -1;
  bool open_ = false;
  int handles_open_ = 0;
  Accepted accepted_;
  std::string component_;
  std::function<void()> closed_;
  LogThrottle warnings_;  // accept and poll errors other than the descriptor limit's
};

}  // namespace tracecar::proxy
