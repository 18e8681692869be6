#include "base/direct_syscalls.h"

#include <sys/syscall.h>
#include <unistd.h>

extern "C" {

ssize_t __wrap_read(int fd, void* buf, size_t count) {
  return static_cast<ssize_t>(syscall(SYS_read, static_cast<long>(fd), buf, count));
}

ssize_t __wrap_write(int fd, const void* buf, size_t count) {
  return static_cast<ssize_t>(syscall(SYS_write, static_cast<long>(fd), buf, count));
}

ssize_t __wrap_writev(int fd, const struct iovec* iov, int iovcnt) {
  return static_cast<ssize_t>(
      syscall(SYS_writev, static_cast<long>(fd), iov, static_cast<long>(iovcnt)));
}

}  // extern "C"
