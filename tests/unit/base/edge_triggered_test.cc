// base/edge_triggered.h with a real libuv loop over loopback TCP: a watched connection is
// registered with EPOLLET (as /proc/self/fdinfo shows it), others stay level-triggered, and a
// watched connection still reads every byte that waits when libuv stops at its reads per event,
// and the end of the stream when it came with the last bytes.
#include "base/edge_triggered.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace {

constexpr uint32_t kEpollEt = 1U << 31;

// A connected pair over 127.0.0.1: the accepted end (for the loop) and the connecting end.
struct SocketPair {
  int loop_end = -1;
  int peer_end = -1;
  ~SocketPair() {
    if (loop_end >= 0) close(loop_end);
    if (peer_end >= 0) close(peer_end);
  }
};

void makePair(SocketPair& pair, int receive_buffer = 0) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  pair.peer_end = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(pair.peer_end, 0);
  ASSERT_EQ(connect(pair.peer_end, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  pair.loop_end = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  close(listener);
  ASSERT_GE(pair.loop_end, 0);
  if (receive_buffer > 0) {
    ASSERT_EQ(setsockopt(pair.loop_end, SOL_SOCKET, SO_RCVBUF, &receive_buffer,
                         sizeof receive_buffer),
              0);
  }
}

// The events fd is registered with in epoll instance epfd, from /proc/self/fdinfo.
std::optional<uint32_t> registeredEvents(int epfd, int fd) {
  std::ifstream info("/proc/self/fdinfo/" + std::to_string(epfd));
  std::string line;
  while (std::getline(info, line)) {
    std::istringstream fields(line);
    std::string tag;
    int tfd = -1;
    std::string events_tag;
    uint32_t events = 0;
    if (fields >> tag >> tfd >> events_tag >> std::hex >> events && tag == "tfd:" &&
        events_tag == "events:" && tfd == fd) {
      return events;
    }
  }
  return std::nullopt;
}

// A libuv loop reading one TCP stream, counting the bytes.
class Reader {
 public:
  Reader(uv_loop_t* loop, int fd, size_t buffer_size) : buffer_(buffer_size, '\0') {
    uv_tcp_init(loop, &tcp_);
    tcp_.data = this;
    open_rc_ = uv_tcp_open(&tcp_, fd);
  }
  int openResult() const { return open_rc_; }
  int start() {
    return uv_read_start(
        reinterpret_cast<uv_stream_t*>(&tcp_),
        [](uv_handle_t* handle, size_t, uv_buf_t* buf) {
          auto* self = static_cast<Reader*>(handle->data);
          *buf = uv_buf_init(self->buffer_.data(), static_cast<unsigned>(self->buffer_.size()));
        },
        [](uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
          auto* self = static_cast<Reader*>(stream->data);
          if (nread > 0) self->received_ += static_cast<size_t>(nread);
          if (nread < 0) self->eof_ = true;
        });
  }
  void stop() { uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_)); }
  // Closes the handle and the descriptor it was opened with (the loop runs the close).
  void close(uv_loop_t* loop, int& fd) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_),
             [](uv_handle_t* handle) { static_cast<Reader*>(handle->data)->closed_ = true; });
    for (int i = 0; i < 100 && !closed_; ++i) uv_run(loop, UV_RUN_NOWAIT);
    ASSERT_TRUE(closed_);
    fd = -1;
  }
  size_t received() const { return received_; }
  bool eof() const { return eof_; }

 private:
  uv_tcp_t tcp_{};
  std::string buffer_;
  size_t received_ = 0;
  bool eof_ = false;
  bool closed_ = false;
  int open_rc_ = 0;
};

class EdgeTriggeredTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tracecar::base::kEdgeTriggeredAvailable) {
      GTEST_SKIP() << "built without TRACECAR_DIRECT_SYSCALLS: every descriptor is "
                      "level-triggered";
    }
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
  }
  void TearDown() override {
    if (!loop_ready_) return;
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  // Turns the loop until done(), at most `turns` times, a millisecond apart.
  template <typename Done>
  void runUntil(Done done, int turns = 500) {
    for (int i = 0; i < turns && !done(); ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (!done()) usleep(1000);
    }
  }
  // Sends bytes and the end of the stream from fd, and gives both time to reach the other end's
  // receive queue.
  static void sendAndEnd(int fd, std::string_view bytes) {
    ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
    usleep(20 * 1000);
  }
  // Watches fd edge-triggered and starts reading it.
  static void startWatched(Reader& reader, int fd) {
    tracecar::base::watchEdgeTriggered(fd);
    ASSERT_EQ(reader.openResult(), 0);
    ASSERT_EQ(reader.start(), 0);
  }
  // Turns the loop until reader reports the end of the stream, expects `bytes` read before it,
  // and closes the watched descriptor.
  void expectEndAfter(Reader& reader, int& fd, size_t bytes) {
    runUntil([&] { return reader.eof(); });
    EXPECT_EQ(reader.received(), bytes);
    EXPECT_TRUE(reader.eof());
    tracecar::base::unwatchEdgeTriggered(fd);
    reader.close(&loop_, fd);
  }
  uv_loop_t loop_{};
  bool loop_ready_ = false;
};

TEST_F(EdgeTriggeredTest, AWatchedConnectionIsRegisteredEdgeTriggeredAndOthersAreNot) {
  SocketPair watched_pair;
  SocketPair plain_pair;
  ASSERT_NO_FATAL_FAILURE(makePair(watched_pair));
  ASSERT_NO_FATAL_FAILURE(makePair(plain_pair));
  tracecar::base::watchEdgeTriggered(watched_pair.loop_end);
  Reader watched(&loop_, watched_pair.loop_end, 1024);
  Reader plain(&loop_, plain_pair.loop_end, 1024);
  ASSERT_EQ(watched.openResult(), 0);
  ASSERT_EQ(plain.openResult(), 0);
  ASSERT_EQ(watched.start(), 0);
  ASSERT_EQ(plain.start(), 0);
  uv_run(&loop_, UV_RUN_NOWAIT);  // registers both

  const int epfd = uv_backend_fd(&loop_);
  const auto watched_events = registeredEvents(epfd, watched_pair.loop_end);
  const auto plain_events = registeredEvents(epfd, plain_pair.loop_end);
  ASSERT_TRUE(watched_events.has_value());
  ASSERT_TRUE(plain_events.has_value());
  EXPECT_NE(*watched_events & kEpollEt, 0U);
  EXPECT_EQ(*plain_events & kEpollEt, 0U);

  // Unwatched, the next registration (reading stopped and started again) is level-triggered.
  tracecar::base::unwatchEdgeTriggered(watched_pair.loop_end);
  watched.stop();
  ASSERT_EQ(watched.start(), 0);
  uv_run(&loop_, UV_RUN_NOWAIT);
  const auto after = registeredEvents(epfd, watched_pair.loop_end);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(*after & kEpollEt, 0U);

  // Data still comes through either way.
  ASSERT_EQ(write(watched_pair.peer_end, "ping", 4), 4);
  ASSERT_EQ(write(plain_pair.peer_end, "pong", 4), 4);
  runUntil([&] { return watched.received() >= 4 && plain.received() >= 4; });
  EXPECT_EQ(watched.received(), 4U);
  EXPECT_EQ(plain.received(), 4U);
  watched.close(&loop_, watched_pair.loop_end);
  plain.close(&loop_, plain_pair.loop_end);
}

// libuv reads at most 32 full buffers per event and then waits for the next one; edge-triggered,
// no event comes unless something new arrives. Here everything is sent before the loop looks,
// with buffers of 1 KiB, so bytes are still waiting after the first 32 reads and nothing new
// will come: only the re-registration of base/direct_syscalls.cc gets them read.
TEST_F(EdgeTriggeredTest, EveryWaitingByteIsReadPastLibuvsReadsPerEvent) {
  SocketPair pair;
  ASSERT_NO_FATAL_FAILURE(makePair(pair, 1 << 20));
  ASSERT_EQ(fcntl(pair.peer_end, F_SETFL, O_NONBLOCK), 0);
  const std::string chunk(4096, 'x');
  size_t sent = 0;
  while (sent < 160 * 1024) {
    const ssize_t n = write(pair.peer_end, chunk.data(), chunk.size());
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  // Far more than 32 reads of 1 KiB, or the test shows nothing.
  ASSERT_GE(sent, 96U * 1024) << "the loopback connection took too little before being read";
  usleep(20 * 1000);  // let the last segments land in the receive queue

  Reader reader(&loop_, pair.loop_end, 1024);
  ASSERT_NO_FATAL_FAILURE(startWatched(reader, pair.loop_end));
  // A stalled read ends the 2,000 turns with bytes missing.
  runUntil([&] { return reader.received() >= sent; }, 2000);
  EXPECT_EQ(reader.received(), sent);
  tracecar::base::unwatchEdgeTriggered(pair.loop_end);
  reader.close(&loop_, pair.loop_end);
}

// The bytes and the end of the stream arrive before the loop looks, so one edge stands for
// both, and libuv's read of the bytes comes back short: the end must still be reported.
TEST_F(EdgeTriggeredTest, TheEndOfTheStreamAfterTheLastBytesIsReported) {
  SocketPair pair;
  ASSERT_NO_FATAL_FAILURE(makePair(pair));
  ASSERT_NO_FATAL_FAILURE(sendAndEnd(pair.peer_end, "last words"));

  Reader reader(&loop_, pair.loop_end, 1024);
  ASSERT_NO_FATAL_FAILURE(startWatched(reader, pair.loop_end));
  expectEndAfter(reader, pair.loop_end, 10);
}

// The same while reading is stopped: the bytes and the end wait, and reading again gets both.
TEST_F(EdgeTriggeredTest, TheEndOfTheStreamThatCameWhileReadingWasStoppedIsReported) {
  SocketPair pair;
  ASSERT_NO_FATAL_FAILURE(makePair(pair));
  Reader reader(&loop_, pair.loop_end, 1024);
  ASSERT_NO_FATAL_FAILURE(startWatched(reader, pair.loop_end));
  uv_run(&loop_, UV_RUN_NOWAIT);
  ASSERT_EQ(write(pair.peer_end, "first", 5), 5);
  runUntil([&] { return reader.received() >= 5; });
  ASSERT_EQ(reader.received(), 5U);
  reader.stop();
  uv_run(&loop_, UV_RUN_NOWAIT);
  ASSERT_NO_FATAL_FAILURE(sendAndEnd(pair.peer_end, "second"));
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(reader.received(), 5U);  // not reading
  ASSERT_EQ(reader.start(), 0);
  expectEndAfter(reader, pair.loop_end, 11);
}

// A removal of the descriptor from another epoll instance (which never had it) leaves the loop's
// registration as it was: the end of the stream after the last bytes is still reported.
TEST_F(EdgeTriggeredTest, ARemovalFromAnotherEpollInstanceLeavesTheRegistration) {
  SocketPair pair;
  ASSERT_NO_FATAL_FAILURE(makePair(pair));
  Reader reader(&loop_, pair.loop_end, 1024);
  ASSERT_NO_FATAL_FAILURE(startWatched(reader, pair.loop_end));
  uv_run(&loop_, UV_RUN_NOWAIT);  // registered with the loop's epoll instance

  const int other = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(other, 0);
  EXPECT_EQ(epoll_ctl(other, EPOLL_CTL_DEL, pair.loop_end, nullptr), -1);
  EXPECT_EQ(errno, ENOENT);
  close(other);

  ASSERT_NO_FATAL_FAILURE(sendAndEnd(pair.peer_end, "last words"));
  expectEndAfter(reader, pair.loop_end, 10);
}

}  // namespace
