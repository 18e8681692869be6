#include "base/direct_syscalls.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "base/edge_triggered.h"

namespace {

// What base/edge_triggered.h knows of one descriptor. Only the thread whose loop watches the
// descriptor writes its entry; the atomics keep a read from another thread (which has a
// descriptor of the same number only once this one is closed) well-defined.
struct EdgeEntry {
  std::atomic<uint32_t> state{0};  // the bits below
  std::atomic<int> epfd{0};        // where it is registered, when kRegistered
  std::atomic<uint32_t> events{0};
  std::atomic<uint64_t> data{0};
};

constexpr uint32_t kWatched = 1U << 31;     // watchEdgeTriggered
constexpr uint32_t kRegistered = 1U << 30;  // added to epfd with EPOLLET, not deleted since
// The peer has closed its side: back to level-triggered until unwatched (see demote).
constexpr uint32_t kDemoted = 1U << 29;
constexpr uint32_t kFullReads = 0xff;       // full buffers read in a row since the last look
// What an edge-triggered registration adds to what libuv asks for.
constexpr uint32_t kEdgeEvents = EPOLLET | EPOLLRDHUP;
// libuv 1.44 reads at most 32 full buffers per event; registering again before it stops leaves
// the descriptor in epoll's ready list while bytes are still waiting.
constexpr uint32_t kRearmAfterFullReads = 16;
constexpr int kMaxEdgeFd = 1 << 16;

// All zero at start (static storage the program does not carry): a page of it becomes resident
// only once a descriptor of its range is watched.
EdgeEntry edge_entries[kMaxEdgeFd];

EdgeEntry* entryOf(int fd) noexcept {
  return static_cast<unsigned>(fd) < static_cast<unsigned>(kMaxEdgeFd) ? &edge_entries[fd]
                                                                       : nullptr;
}

long plainEpollCtl(int epfd, int op, int fd, epoll_event* event) noexcept {
  return syscall(SYS_epoll_ctl, static_cast<long>(epfd), static_cast<long>(op),
                 static_cast<long>(fd), event);
}

// After a read of a watched, registered descriptor: counts full buffers in a row, and every
// kRearmAfterFullReads of them registers the descriptor again (see kRearmAfterFullReads).
void afterRead(EdgeEntry& entry, int fd, ssize_t n, size_t count) noexcept {
  uint32_t state = entry.state.load(std::memory_order_relaxed);
  if ((state & kRegistered) == 0) return;
  if (n <= 0 || static_cast<size_t>(n) != count) {
    if ((state & kFullReads) != 0) entry.state.store(state & ~kFullReads, std::memory_order_relaxed);
    return;
  }
  if ((state & kFullReads) + 1 < kRearmAfterFullReads) {
    entry.state.store(state + 1, std::memory_order_relaxed);
    return;
  }
  entry.state.store(state & ~kFullReads, std::memory_order_relaxed);
  epoll_event again{};
  again.events = entry.events.load(std::memory_order_relaxed);
  again.data.u64 = entry.data.load(std::memory_order_relaxed);
  const int saved = errno;
  plainEpollCtl(entry.epfd.load(std::memory_order_relaxed), EPOLL_CTL_MOD, fd, &again);
  errno = saved;
}

// The peer's FIN is in: the bytes before it and the end of the stream may have come with one
// edge, and libuv stops at the short read of the bytes, so the end would never be reported.
// The descriptor goes back to what libuv asked for (level-triggered), for the rest of its life:
// the next epoll_wait reports the end of the stream still waiting.
void demote(EdgeEntry& entry, int epfd, int fd) noexcept {
  entry.state.store(kWatched | kDemoted, std::memory_order_relaxed);
  epoll_event level{};
  level.events = entry.events.load(std::memory_order_relaxed) & ~kEdgeEvents;
  level.data.u64 = entry.data.load(std::memory_order_relaxed);
  const int saved = errno;
  plainEpollCtl(epfd, EPOLL_CTL_MOD, fd, &level);
  errno = saved;
}

// A descriptor handed to watchEdgeTriggered is a connected TCP socket: its reads and writes go
// to recvfrom, sendto and sendmsg, which reach the socket directly, where read, write and writev
// first pass through the file layer (its position lock, the range and permission checks, the
// socket's file operations). For a stream socket with no flags the two do the same. Should the
// descriptor not be a socket after all (closed without unwatchEdgeTriggered and its number
// reused), the call fails with ENOTSOCK and is made again as read, write or writev.
bool isWatchedSocket(const EdgeEntry* entry) noexcept {
  return entry != nullptr && (entry->state.load(std::memory_order_relaxed) & kWatched) != 0;
}

// After epoll_wait: demotes each edge-triggered descriptor reported with EPOLLRDHUP. libuv puts
// the descriptor in the event's data, as it registered it.
void afterWait(int epfd, const epoll_event* events, long n) noexcept {
  for (long i = 0; i < n; ++i) {
    if ((events[i].events & EPOLLRDHUP) == 0) continue;
    const int fd = events[i].data.fd;
    EdgeEntry* entry = entryOf(fd);
    if (entry == nullptr) continue;
    const uint32_t state = entry->state.load(std::memory_order_relaxed);
    if ((state & (kRegistered | kDemoted)) != kRegistered) continue;
    if (entry->epfd.load(std::memory_order_relaxed) != epfd ||
        entry->data.load(std::memory_order_relaxed) != events[i].data.u64) {
      continue;
    }
    demote(*entry, epfd, fd);
  }
}

}  // namespace

namespace tracecar::base {

void watchEdgeTriggered(int fd) noexcept {
  EdgeEntry* entry = entryOf(fd);
  if (entry == nullptr) return;
  entry->state.store(kWatched, std::memory_order_relaxed);
}

void unwatchEdgeTriggered(int fd) noexcept {
  EdgeEntry* entry = entryOf(fd);
  if (entry == nullptr) return;
  entry->state.store(0, std::memory_order_relaxed);
}

}  // namespace tracecar::base

extern "C" {

ssize_t __wrap_read(int fd, void* buf, size_t count) {
  EdgeEntry* entry = entryOf(fd);
  long n = -1;
  if (isWatchedSocket(entry)) {
    n = syscall(SYS_recvfrom, static_cast<long>(fd), buf, count, 0L, nullptr, nullptr);
    if (n < 0 && errno == ENOTSOCK) n = syscall(SYS_read, static_cast<long>(fd), buf, count);
  } else {
    n = syscall(SYS_read, static_cast<long>(fd), buf, count);
  }
  if (entry != nullptr) afterRead(*entry, fd, n, count);
  return static_cast<ssize_t>(n);
}

ssize_t __wrap_write(int fd, const void* buf, size_t count) {
  if (isWatchedSocket(entryOf(fd))) {
    const long n = syscall(SYS_sendto, static_cast<long>(fd), buf, count, 0L, nullptr, 0L);
    if (n >= 0 || errno != ENOTSOCK) return static_cast<ssize_t>(n);
  }
  return static_cast<ssize_t>(syscall(SYS_write, static_cast<long>(fd), buf, count));
}

ssize_t __wrap_writev(int fd, const struct iovec* iov, int iovcnt) {
  if (isWatchedSocket(entryOf(fd)) && iovcnt >= 0) {
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(iov);  // sendmsg only reads the vector
    message.msg_iovlen = static_cast<size_t>(iovcnt);
    const long n = syscall(SYS_sendmsg, static_cast<long>(fd), &message, 0L);
    if (n >= 0 || errno != ENOTSOCK) return static_cast<ssize_t>(n);
  }
  return static_cast<ssize_t>(
      syscall(SYS_writev, static_cast<long>(fd), iov, static_cast<long>(iovcnt)));
}

int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
  EdgeEntry* entry = entryOf(fd);
  const uint32_t state = entry != nullptr ? entry->state.load(std::memory_order_relaxed) : 0;
  if ((state & kWatched) == 0 || (state & kDemoted) != 0) {
    return static_cast<int>(plainEpollCtl(epfd, op, fd, event));
  }
  if (op == EPOLL_CTL_DEL) {
    // Only the registration recorded is forgotten (a removal from another epoll instance
    // leaves it be).
    if ((state & kRegistered) != 0 && entry->epfd.load(std::memory_order_relaxed) == epfd) {
      entry->state.store(kWatched, std::memory_order_relaxed);
    }
    return static_cast<int>(plainEpollCtl(epfd, op, fd, event));
  }
  if ((op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD) || event == nullptr) {
    return static_cast<int>(plainEpollCtl(epfd, op, fd, event));
  }
  epoll_event edge = *event;
  edge.events |= kEdgeEvents;
  const long rc = plainEpollCtl(epfd, op, fd, &edge);
  if (rc == 0) {
    entry->epfd.store(epfd, std::memory_order_relaxed);
    entry->events.store(edge.events, std::memory_order_relaxed);
    entry->data.store(edge.data.u64, std::memory_order_relaxed);
    entry->state.store(kWatched | kRegistered, std::memory_order_relaxed);
  }
  return static_cast<int>(rc);
}

int __wrap_epoll_wait(int epfd, struct epoll_event* events, int maxevents, int timeout) {
  // epoll_pwait without a mask is epoll_wait (and is there on every architecture).
  const long n = syscall(SYS_epoll_pwait, static_cast<long>(epfd), events,
                         static_cast<long>(maxevents), static_cast<long>(timeout), nullptr, 0L);
  if (n > 0) afterWait(epfd, events, n);
  return static_cast<int>(n);
}

int __wrap_epoll_pwait(int epfd, struct epoll_event* events, int maxevents, int timeout,
                       const sigset_t* sigmask) {
  const long n =
      syscall(SYS_epoll_pwait, static_cast<long>(epfd), events, static_cast<long>(maxevents),
              static_cast<long>(timeout), sigmask, static_cast<long>(_NSIG / 8));
  if (n > 0) afterWait(epfd, events, n);
  return static_cast<int>(n);
}

}  // extern "C"
