// read, write and writev as tracecar links them: with TRACECAR_DIRECT_SYSCALLS the plain system
// calls of base/direct_syscalls.cc, otherwise glibc's. Either way they behave as read(2),
// write(2) and writev(2): bytes, short counts, and -1 with errno.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#ifdef TRACECAR_DIRECT_SYSCALLS
#include "base/direct_syscalls.h"
#endif

namespace {

class DirectSyscallsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(pipe2(fds_, O_CLOEXEC), 0); }
  void TearDown() override {
    for (int& fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }
  int& reader() { return fds_[0]; }
  int& writer() { return fds_[1]; }

 private:
  int fds_[2] = {-1, -1};
};

TEST_F(DirectSyscallsTest, WriteThenReadMoveTheBytes) {
  ASSERT_EQ(write(writer(), "hello", 5), 5);
  char buf[16] = {};
  ASSERT_EQ(read(reader(), buf, sizeof buf), 5);  // a short count: what there was
  EXPECT_EQ(std::string(buf, 5), "hello");
}

TEST_F(DirectSyscallsTest, WritevGathersInOrder) {
  char line[] = "GET / ";
  char version[] = "HTTP/1.1\r\n";
  const iovec iov[2] = {{line, 6}, {version, 10}};
  ASSERT_EQ(writev(writer(), iov, 2), 16);
  char buf[32] = {};
  ASSERT_EQ(read(reader(), buf, sizeof buf), 16);
  EXPECT_EQ(std::string(buf, 16), "GET / HTTP/1.1\r\n");
}

TEST_F(DirectSyscallsTest, ReadAtTheEndOfTheStreamReturnsZero) {
  close(writer());
  writer() = -1;
  char buf[4];
  errno = 0;
  EXPECT_EQ(read(reader(), buf, sizeof buf), 0);
  EXPECT_EQ(errno, 0);
}

TEST_F(DirectSyscallsTest, NothingToReadOnANonBlockingDescriptorIsEagain) {
  ASSERT_EQ(fcntl(reader(), F_SETFL, O_NONBLOCK), 0);
  char buf[4];
  errno = 0;
  EXPECT_EQ(read(reader(), buf, sizeof buf), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST_F(DirectSyscallsTest, ABadDescriptorIsEbadf) {
  char buf[4] = {};
  errno = 0;
  EXPECT_EQ(read(-1, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EBADF);
  errno = 0;
  EXPECT_EQ(write(-1, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EBADF);
  const iovec iov = {buf, sizeof buf};
  errno = 0;
  EXPECT_EQ(writev(-1, &iov, 1), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(DirectSyscallsTest, WritingWithNoReaderLeftIsEpipe) {
  struct sigaction ignore = {};
  struct sigaction old = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ignore, &old), 0);
  close(reader());
  reader() = -1;
  errno = 0;
  EXPECT_EQ(write(writer(), "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  sigaction(SIGPIPE, &old, nullptr);
}

TEST_F(DirectSyscallsTest, AWriteLargerThanThePipeIsShortOnANonBlockingDescriptor) {
  ASSERT_EQ(fcntl(writer(), F_SETFL, O_NONBLOCK), 0);
  const std::string big(size_t{1} << 20, 'x');
  const ssize_t n = write(writer(), big.data(), big.size());
  ASSERT_GT(n, 0);
  EXPECT_LT(static_cast<size_t>(n), big.size());
  errno = 0;
  EXPECT_EQ(write(writer(), big.data(), big.size()), -1);  // full now
  EXPECT_EQ(errno, EAGAIN);
}

#ifdef TRACECAR_DIRECT_SYSCALLS
// The linker sent this file's calls to the wrappers (ld --wrap), as it does tracecar's and
// libuv's (cli.direct_syscalls checks the tracecar binary imports none of the three).
TEST(DirectSyscallsLinkTest, CallsGoToTheWrappers) {
  EXPECT_EQ(reinterpret_cast<void*>(&read), reinterpret_cast<void*>(&__wrap_read));
  EXPECT_EQ(reinterpret_cast<void*>(&write), reinterpret_cast<void*>(&__wrap_write));
  EXPECT_EQ(reinterpret_cast<void*>(&writev), reinterpret_cast<void*>(&__wrap_writev));
  EXPECT_EQ(reinterpret_cast<void*>(&epoll_ctl), reinterpret_cast<void*>(&__wrap_epoll_ctl));
}

// An epoll_ctl through the wrapper of a descriptor nobody watches edge-triggered is epoll_ctl
// itself: the events as given, errors with errno.
TEST(DirectSyscallsLinkTest, EpollCtlOfAPlainDescriptorIsUnchanged) {
  int fds[2] = {-1, -1};
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(epfd, 0);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 0x1234;
  ASSERT_EQ(epoll_ctl(epfd, EPOLL_CTL_ADD, fds[0], &event), 0);
  errno = 0;
  EXPECT_EQ(epoll_ctl(epfd, EPOLL_CTL_ADD, fds[0], &event), -1);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  // Level-triggered: reported on every wait while the byte is unread.
  for (int i = 0; i < 2; ++i) {
    epoll_event out{};
    ASSERT_EQ(epoll_wait(epfd, &out, 1, 1000), 1);
    EXPECT_EQ(out.events, static_cast<uint32_t>(EPOLLIN));
    EXPECT_EQ(out.data.u64, 0x1234U);
  }
  EXPECT_EQ(epoll_ctl(epfd, EPOLL_CTL_DEL, fds[0], nullptr), 0);
  errno = 0;
  EXPECT_EQ(epoll_ctl(epfd, EPOLL_CTL_DEL, fds[0], nullptr), -1);
  EXPECT_EQ(errno, ENOENT);
  close(epfd);
  close(fds[0]);
  close(fds[1]);
}
#endif

}  // namespace
