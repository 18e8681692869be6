// Acceptor: accepts every waiting connection, and at the file descriptor limit pauses instead of
// spinning or dropping them: the waiting connections are taken once descriptors are free again.
#include "proxy/acceptor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <vector>

#include "proxy/fd_limit.h"

namespace tracecar::proxy {
namespace {

// A listening socket on 127.0.0.1, any port; its port.
int listenOnLoopback(uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 64) != 0) {
    return -1;
  }
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return fd;
}

int connectTo(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class AcceptorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  // Each test has its acceptor's handles closed before the acceptor goes.
  void TearDown() override { EXPECT_EQ(uv_loop_close(&loop_), 0); }
  // Runs the loop until done() or 5 s.
  template <class Done>
  bool runUntil(Done done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < give_up) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      usleep(1000);
    }
    return done();
  }
  uv_loop_t loop_{};
};

TEST_F(AcceptorTest, AcceptsEveryWaitingConnection) {
  uint16_t port = 0;
  const int listening = listenOnLoopback(port);
  ASSERT_GE(listening, 0);
  std::vector<int> accepted;
  Acceptor acceptor;
  ASSERT_EQ(acceptor.start(&loop_, listening, [&](int fd) { accepted.push_back(fd); }, "test"), 0);
  std::vector<int> clients;
  for (int i = 0; i < 10; ++i) clients.push_back(connectTo(port));
  EXPECT_TRUE(runUntil([&] { return accepted.size() == clients.size(); })) << accepted.size();
  for (int fd : accepted) {
    EXPECT_GT(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_GT(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    ::close(fd);
  }
  for (int fd : clients) ::close(fd);
  acceptor.close();
  EXPECT_FALSE(acceptor.open());
  EXPECT_TRUE(runUntil([&] { return !acceptor.closing(); }));
}

TEST_F(AcceptorTest, AtTheDescriptorLimitPausesAndTakesTheRestOnceDescriptorsAreFree) {
  uint16_t port = 0;
  const int listening = listenOnLoopback(port);
  ASSERT_GE(listening, 0);
  std::vector<int> clients;
  for (int i = 0; i < 6; ++i) clients.push_back(connectTo(port));
  for (int fd : clients) ASSERT_GE(fd, 0);

  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  std::vector<int> accepted;
  int callbacks = 0;
  Acceptor acceptor;
  bool closed = false;
  ASSERT_EQ(acceptor.start(
                &loop_, listening,
                [&](int fd) {
                  ++callbacks;
                  accepted.push_back(fd);
                },
                "test", [&] { closed = true; }),
            0);
  const int64_t open_now = openFileDescriptors();
  ASSERT_GT(open_now, 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(open_now + 2);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);

  // A few are taken (the limit bounds descriptor numbers, so it allows about two), then accept
  // fails with EMFILE and the acceptor pauses; the loop goes on (no spin: uv_run returns), and
  // the others wait in the backlog.
  EXPECT_TRUE(runUntil([&] { return !accepted.empty(); }));
  for (int i = 0; i < 20; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  const size_t first = accepted.size();
  EXPECT_LT(first, clients.size());

  // Descriptors given back: after the pause, the rest are taken.
  for (int fd : accepted) ::close(fd);
  accepted.clear();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_TRUE(runUntil([&] { return first + accepted.size() == clients.size(); }))
      << first << " + " << accepted.size();
  EXPECT_EQ(callbacks, 6);
  for (int fd : accepted) ::close(fd);
  for (int fd : clients) ::close(fd);

  acceptor.close();
  EXPECT_TRUE(acceptor.closing());
  EXPECT_TRUE(runUntil([&] { return closed; }));
  // The listening socket went with it.
  EXPECT_EQ(connectTo(port), -1);
}

TEST_F(AcceptorTest, ABadDescriptorIsRefusedAndClosed) {
  Acceptor acceptor;
  EXPECT_LT(acceptor.start(&loop_, -1, [](int) {}, "test"), 0);
  EXPECT_FALSE(acceptor.open());
  EXPECT_FALSE(acceptor.closing());
}

}  // namespace
}  // namespace tracecar::proxy
