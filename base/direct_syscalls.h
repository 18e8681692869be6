#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

// read, write and writev as the system calls themselves, for the event loop's sockets; and
// epoll_ctl, epoll_wait and epoll_pwait, which watch the descriptors of base/edge_triggered.h
// edge-triggered.
//
// glibc's wrappers of these calls are thread cancellation points: in a process with more than
// one thread, each call switches the thread to asynchronous cancellation and back, two atomic
// read-modify-writes around every socket read and write. tracecar never cancels a thread, so
// these go straight to the kernel, through syscall(2), which sets errno as the wrappers do.
//
// The connections handed to base/edge_triggered.h's watchEdgeTriggered (connected stream
// sockets) are read and written with recvfrom, sendto and sendmsg instead, which reach the
// socket without the kernel's file layer; ENOTSOCK falls back to read, write and writev.
//
// With TRACECAR_DIRECT_SYSCALLS the linker (ld --wrap) sends here the calls to read, write and
// writev of tracecar's own code and of libuv, linked from its static library. Libraries linked
// as shared objects (OpenSSL) keep glibc's.
extern "C" {
ssize_t __wrap_read(int fd, void* buf, size_t count);                // NOLINT(bugprone-*)
ssize_t __wrap_write(int fd, const void* buf, size_t count);         // NOLINT(bugprone-*)
ssize_t __wrap_writev(int fd, const struct iovec* iov, int iovcnt);  // NOLINT(bugprone-*)
struct epoll_event;
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event* event);  // NOLINT(bugprone-*)
int __wrap_epoll_wait(int epfd, struct epoll_event* events, int maxevents,  // NOLINT(bugprone-*)
                      int timeout);
int __wrap_epoll_pwait(int epfd, struct epoll_event* events,  // NOLINT(bugprone-*)
                       int maxevents, int timeout, const sigset_t* sigmask);
}
