#include "proxy/acceptor.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "exporter/log.h"
#include "proxy/fd_limit.h"

namespace tracecar::proxy {

int listenOn(const sockaddr_storage& address, int backlog) noexcept {
  const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  const int on = 1;
  const int off = 0;
  const bool v6 = address.ss_family == AF_INET6;
  const socklen_t length = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  // [::] takes IPv4 too, whatever net.ipv6.bindv6only says (as libuv's uv_tcp_bind does).
  if ((v6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0 ||
      ::listen(fd, backlog) != 0) {
    const int error = errno;
    ::close(fd);
    return -error;
  }
  return fd;
}

uint16_t boundPort(int fd) noexcept {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return 0;
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
}

int Acceptor::start(uv_loop_t* loop, int fd, Accepted accepted, std::string component,
                    std::function<void()> closed) noexcept {
  if (open_ || handles_open_ > 0) {
    ::close(fd);
    return UV_EBUSY;
  }
  try {
    accepted_ = std::move(accepted);
    component_ = std::move(component);
    closed_ = std::move(closed);
  } catch (...) {
    ::close(fd);
    return UV_ENOMEM;
  }
  if (const int rc = uv_poll_init_socket(loop, &poll_, fd); rc < 0) {
    ::close(fd);
    return rc;
  }
  poll_.data = this;
  fd_ = fd;
  open_ = true;
  handles_open_ = 1;
  if (const int rc = uv_timer_init(loop, &pause_timer_); rc < 0) {
    close();
    return rc;
  }
  pause_timer_.data = this;
  timer_open_ = true;
  ++handles_open_;
  if (const int rc = uv_poll_start(&poll_, UV_READABLE, &Acceptor::onReadable); rc < 0) {
    close();
    return rc;
  }
  return 0;
}

void Acceptor::close() noexcept {
  if (!open_) return;
  open_ = false;
  // The socket is closed once the poll handle no longer watches it (onHandleClosed).
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &Acceptor::onHandleClosed);
  if (timer_open_) uv_close(reinterpret_cast<uv_handle_t*>(&pause_timer_), &Acceptor::onHandleClosed);
}

void Acceptor::onHandleClosed(uv_handle_t* handle) noexcept {
  auto* self = static_cast<Acceptor*>(handle->data);
  if (handle == reinterpret_cast<uv_handle_t*>(&self->poll_)) {
    ::close(self->fd_);
    self->fd_ = -1;
  }
  if (--self->handles_open_ > 0) return;
  std::function<void()> closed = std::move(self->closed_);
  self->closed_ = nullptr;
  if (closed) closed();  // may destroy the acceptor: nothing after this
}

void Acceptor::onReadable(uv_poll_t* poll, int status, int /*events*/) noexcept {
  auto* self = static_cast<Acceptor*>(poll->data);
  if (status < 0) {
    // libuv has stopped the handle: poll again after the pause.
    self->warnings_.log(LogLevel::kWarn, self->component_,
                        std::string("polling a listening socket: ") + uv_strerror(status) +
                            "; accepting again in " + std::to_string(kPauseMs) + " ms");
    self->pause();
    return;
  }
  self->acceptWaiting();
}

void Acceptor::acceptWaiting() noexcept {
  for (int i = 0; i < kAcceptsPerEvent && open_; ++i) {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      accepted_(fd);
      continue;
    }
    const int error = errno;
    switch (error) {
      case EAGAIN:
#if EAGAIN != EWOULDBLOCK
      case EWOULDBLOCK:
#endif
        return;
      // That one connection's trouble (accept(2): the network errors already pending on the new
      // socket are passed up, to be treated like EAGAIN by retrying; a firewall or LSM refusal):
      // the next one is taken.
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
      case EPERM:
      case ENETDOWN:
      case ENOPROTOOPT:
      case EHOSTDOWN:
      case ENONET:
      case EHOSTUNREACH:
      case EOPNOTSUPP:
      case ENETUNREACH:
      case ETIMEDOUT:
        continue;
      case EMFILE:
      case ENFILE:
        warnOutOfFileDescriptors(error == ENFILE);
        pause();
        return;
      default:
        // ENOBUFS, ENOMEM (the kernel's memory for sockets): waiting is all that can help; and
        // anything unforeseen, so that it cannot spin.
        warnings_.log(LogLevel::kWarn, component_,
                      std::string("accepting a connection: ") + std::strerror(error) +
                          "; accepting again in " + std::to_string(kPauseMs) + " ms");
        pause();
        return;
    }
  }
}

void Acceptor::pause() noexcept {
  if (!open_ || !timer_open_) return;
  uv_poll_stop(&poll_);
  uv_timer_start(&pause_timer_, &Acceptor::onPauseOver, kPauseMs, 0);
}

void Acceptor::onPauseOver(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Acceptor*>(timer->data);
  if (!self->open_) return;
  uv_poll_start(&self->poll_, UV_READABLE, &Acceptor::onReadable);
}

}  // namespace tracecar::proxy
