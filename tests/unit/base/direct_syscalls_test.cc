// read, write and writev as tracecar links them: with TRACECAR_DIRECT_SYSCALLS the plain system
// calls of base/direct_syscalls.cc, otherwise glibc's. Either way they behave as read(2),
// write(2) and writev(2): bytes, short counts, and -1 with errno.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#ifdef TRACECAR_DIRECT_SYSCALLS
#include "base/direct_syscalls.h"
#include "base/edge_triggered.h"
#endif

namespace {

// "GET / HTTP/1.1\r\n" in two pieces, for writev: 6 bytes, then 10.
struct RequestLine {
  char line[7] = "GET / ";
  char version[11] = "HTTP/1.1\r\n";
  const iovec iov[2] = {{line, 6}, {version, 10}};
};

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
  const RequestLine request;
  ASSERT_EQ(writev(writer(), request.iov, 2), 16);
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

// The descriptors of the data path (handed to watchEdgeTriggered: connected stream sockets) are
// read and written with recvfrom, sendto and sendmsg. A child process forbids read, write and
// writev (seccomp: they fail with EPERM) and moves bytes over a socket pair: an unwatched socket
// fails, which shows the filter works; watched ones carry the bytes.
int socketCallsInAChild() {
  int fds[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 10;
  sock_filter program[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),  // seccomp_data.nr
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_read, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_writev, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
  };
  sock_fprog fprog{static_cast<unsigned short>(sizeof program / sizeof program[0]), program};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 11;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) return 12;
  char buf[32] = {};
  errno = 0;
  if (write(fds[0], "ping", 4) != -1 || errno != EPERM) return 20;  // not watched: write(2)
  tracecar::base::watchEdgeTriggered(fds[0]);
  if (write(fds[0], "ping", 4) != 4) return 21;
  errno = 0;
  if (read(fds[1], buf, sizeof buf) != -1 || errno != EPERM) return 22;
  tracecar::base::watchEdgeTriggered(fds[1]);
  if (read(fds[1], buf, sizeof buf) != 4 || std::string(buf, 4) != "ping") return 23;
  const RequestLine request;
  if (writev(fds[0], request.iov, 2) != 16) return 24;
  if (read(fds[1], buf, sizeof buf) != 16 || std::string(buf, 16) != "GET / HTTP/1.1\r\n") {
    return 25;
  }
  // The peer gone: the end of the stream, then EPIPE (SIGPIPE ignored), as read and write give.
  tracecar::base::unwatchEdgeTriggered(fds[1]);
  close(fds[1]);
  if (read(fds[0], buf, sizeof buf) != 0) return 26;
  signal(SIGPIPE, SIG_IGN);
  errno = 0;
  if (write(fds[0], "x", 1) != -1 || errno != EPIPE) return 27;
  tracecar::base::unwatchEdgeTriggered(fds[0]);
  close(fds[0]);
  return 0;
}

TEST(DirectSyscallsLinkTest, WatchedSocketsAreReadAndWrittenAsSockets) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(socketCallsInAChild());
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  if (WEXITSTATUS(status) == 11 || WEXITSTATUS(status) == 12) {
    GTEST_SKIP() << "this system does not let a process install a seccomp filter";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the step that failed: see socketCallsInAChild";
}

// A watched descriptor that is not a socket (closed without unwatchEdgeTriggered, its number
// reused for a pipe): ENOTSOCK from the socket call, and the call is made again as read, write
// or writev.
TEST_F(DirectSyscallsTest, AWatchedDescriptorThatIsNotASocketStillWorks) {
  tracecar::base::watchEdgeTriggered(reader());
  tracecar::base::watchEdgeTriggered(writer());
  EXPECT_EQ(write(writer(), "hello", 5), 5);
  const RequestLine request;
  EXPECT_EQ(writev(writer(), request.iov, 2), 16);
  char buf[32] = {};
  EXPECT_EQ(read(reader(), buf, sizeof buf), 21);
  EXPECT_EQ(std::string(buf, 21), "helloGET / HTTP/1.1\r\n");
  errno = 0;
  EXPECT_EQ(read(-1, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EBADF);
  tracecar::base::unwatchEdgeTriggered(reader());
  tracecar::base::unwatchEdgeTriggered(writer());
}
#endif

}  // namespace
