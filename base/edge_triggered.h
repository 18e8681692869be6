#pragma once

// Edge-triggered epoll for the data path's connections.
//
// libuv watches every descriptor level-triggered: a socket it was told about is looked at again
// by the next epoll_wait even when its read drained it, which costs a poll of the socket per
// event. A descriptor handed to watchEdgeTriggered gets EPOLLET whenever the event loop registers
// it (the linker sends libuv's epoll_ctl calls to base/direct_syscalls.cc), and is then reported
// only when something new happens to it.
//
// That is safe for a libuv TCP stream because libuv reads until a read comes back short or with
// EAGAIN, and because any change to what it watches (reading stopped and started again, a write
// that has to wait) registers the descriptor again, which makes epoll look at it at once. Two
// cases are not covered by that, and the wrappers handle them:
// - libuv's own limit on reads per event (32 full buffers, so that one busy socket cannot starve
//   the loop): it then stops with bytes still waiting, and nothing new may come. After every
//   16th full buffer in a row from a watched descriptor the read wrapper registers it again, so
//   that epoll reports it on the next turn if bytes are still there.
// - the end of the stream arriving with the last bytes: one edge stands for both, and libuv
//   stops at the short read of the bytes. The registration asks for EPOLLRDHUP too, and a
//   descriptor that epoll_wait reports with it (the peer's FIN is in) goes back to
//   level-triggered for the rest of its life, so the next epoll_wait reports the end.
//
// Only for connected TCP sockets read through a libuv stream (not listening sockets, not
// descriptors polled with uv_poll_t). Call unwatchEdgeTriggered before the descriptor is closed.
// Without TRACECAR_DIRECT_SYSCALLS (sanitizer builds, a shared libuv) both calls do nothing and
// every descriptor stays level-triggered.

namespace tracecar::base {

#ifdef TRACECAR_DIRECT_SYSCALLS
inline constexpr bool kEdgeTriggeredAvailable = true;
// fd's next registrations with epoll (through epoll_ctl) get EPOLLET. Descriptors from 65536 up
// stay level-triggered.
void watchEdgeTriggered(int fd) noexcept;
// Back to level-triggered from the next registration on; forgets fd.
void unwatchEdgeTriggered(int fd) noexcept;
#else
inline constexpr bool kEdgeTriggeredAvailable = false;
inline void watchEdgeTriggered(int /*fd*/) noexcept {}
inline void unwatchEdgeTriggered(int /*fd*/) noexcept {}
#endif

}  // namespace tracecar::base
