// The data path's integration fixture: the proxy (a WorkerPool on port 0) in this process, a
// real origin (tests/support/origin_server.py) as a child process, curl as a real client, and
// raw sockets for what curl will not send.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "integration/support/mini_json.h"
#include "integration/support/process.h"
#include "proxy/data_path_observers.h"
#include "proxy/worker.h"
#include "support/scratch_dir.h"

namespace tracecar::integration {

using namespace std::chrono_literals;

inline std::string dataPathSupportDir() {
  return (std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "support")
      .lexically_normal()
      .string();
}

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

using test_support::ScratchDir;

struct ProcessResult {
  int exit_code = -1;  // -1: did not exit in time (killed)
  std::string out;
  std::string err;
};

// Runs a program, captures its output, kills it after timeout.
inline ProcessResult runProcess(const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout = 60s) {
  ProcessResult result;
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return result;
  }
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open = 2;
  bool killed = false;
  while (open > 0) {
    if (std::chrono::steady_clock::now() > give_up && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    if (::poll(fds, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[65536];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
        continue;
      }
      (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!killed && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// One HTTP response as a raw client read it.
struct RawResponse {
  std::string version;
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<std::pair<std::string, std::string>> trailers;
  bool chunked = false;

  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (strcasecmp(n.c_str(), std::string(name).c_str()) == 0) return v;
    }
    return std::nullopt;
  }
  size_t count(std::string_view name) const {
    size_t n = 0;
    for (const auto& [field, v] : headers) {
      n += strcasecmp(field.c_str(), std::string(name).c_str()) == 0 ? 1 : 0;
    }
    return n;
  }
};

// A blocking client socket with deadlines. receive_buffer > 0 shrinks SO_RCVBUF before it
// connects (a client that reads late).
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, const std::string& host = "127.0.0.1",
                         int receive_buffer = 0) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(port);
      length = sizeof *v4;
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(port);
      length = sizeof *v6;
    } else {
      return;
    }
    fd_ = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    noDelay();
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  bool eof() const { return eof_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  void shutdownWrite() { ::shutdown(fd_, SHUT_WR); }
  // Closes with a reset (SO_LINGER 0).
  void reset() {
    const linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }

  // Everything until the peer closes (or the deadline).
  std::string readUntilClose(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_ && fill(deadline)) {
    }
    std::string out = std::move(buffer_);
    buffer_.clear();
    return out;
  }
  // Did the peer close (EOF or reset) within timeout, with nothing else to read?
  bool closedByPeer(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_ && fill(deadline)) {
    }
    return eof_ && buffer_.empty();
  }
  std::string readExactly(size_t n, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buffer_.size() < n && fill(deadline)) {
    }
    const size_t take = std::min(n, buffer_.size());
    std::string out = buffer_.substr(0, take);
    buffer_.erase(0, take);
    return out;
  }

  // One response, framed by its headers (1xx responses are responses too). head_request: the
  // response has no body whatever it says.
  std::optional<RawResponse> readResponse(bool head_request = false,
                                          std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    RawResponse response;
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(deadline)) return std::nullopt;
    }
    const std::string head = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    std::istringstream lines(head);
    std::string line;
    std::getline(lines, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    response.version = line.substr(0, 8);
    if (line.size() < 12) return std::nullopt;
    response.status = std::atoi(line.substr(9, 3).c_str());
    response.reason = line.size() > 13 ? line.substr(13) : "";
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const size_t colon = line.find(':');
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      response.headers.emplace_back(line.substr(0, colon), value);
    }
    const int s = response.status;
    if (head_request || (s >= 100 && s < 200) || s == 204 || s == 304) return response;
    const std::optional<std::string> te = response.header("transfer-encoding");
    if (te && te->size() >= 7 && te->compare(te->size() - 7, 7, "chunked") == 0) {
      response.chunked = true;
      for (;;) {
        size_t eol;
        while ((eol = buffer_.find("\r\n")) == std::string::npos) {
          if (!fill(deadline)) return std::nullopt;
        }
        const size_t size = std::strtoul(buffer_.substr(0, eol).c_str(), nullptr, 16);
        buffer_.erase(0, eol + 2);
        if (size == 0) break;
        while (buffer_.size() < size + 2) {
          if (!fill(deadline)) return std::nullopt;
        }
        response.body += buffer_.substr(0, size);
        buffer_.erase(0, size + 2);
      }
      for (;;) {
        size_t eol;
        while ((eol = buffer_.find("\r\n")) == std::string::npos) {
          if (!fill(deadline)) return std::nullopt;
        }
        const std::string field = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 2);
        if (field.empty()) break;
        const size_t colon = field.find(':');
        std::string value = field.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        response.trailers.emplace_back(field.substr(0, colon), value);
      }
      return response;
    }
    if (const std::optional<std::string> length = response.header("content-length")) {
      const size_t n = std::strtoul(length->c_str(), nullptr, 10);
      while (buffer_.size() < n) {
        if (!fill(deadline)) return std::nullopt;
      }
      response.body = buffer_.substr(0, n);
      buffer_.erase(0, n);
      return response;
    }
    while (!eof_ && fill(deadline)) {
    }
    if (!eof_) return std::nullopt;
    response.body = std::move(buffer_);
    buffer_.clear();
    return response;
  }

 protected:
  // A connection accepted from a listener of the test's own.
  explicit RawConnection(int accepted_fd) : fd_(accepted_fd) { noDelay(); }

  void noDelay() {
    const int on = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }

  // Reads more; false at EOF, on error or past the deadline.
  bool fill(std::chrono::steady_clock::time_point deadline) {
    if (eof_ || fd_ < 0) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                              std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

// A listening socket on 127.0.0.1 and a free port (in port); -1 when it cannot be had.
inline int listenOnLoopback(uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0 ||
      ::listen(fd, 64) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return fd;
}

// A TCP listener on 127.0.0.1 that never accepts: connections complete in its backlog and never
// hear a byte (an HTTP/1.1 upstream that never answers nor reads; an HTTP/2 one that never opens
// its windows past the first 65,535 bytes). port() is 0 when it could not be had.
class SilentListener {
 public:
  SilentListener() { fd_ = listenOnLoopback(port_); }
  ~SilentListener() {
    if (fd_ >= 0) ::close(fd_);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// tests/support/origin_server.py as a child process.
class OriginServer {
 public:
  explicit OriginServer(const std::string& host = "127.0.0.1") {
    const std::vector<std::string> args = {"python3", dataPathSupportDir() + "/origin_server.py",
                                           "--host", host, "--max-seconds", "300"};
    const ReportingChild child = spawnReportingPort(args);
    pid_ = child.pid;
    port_ = child.port;
    host_ = host;
  }
  ~OriginServer() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  OriginServer(const OriginServer&) = delete;
  OriginServer& operator=(const OriginServer&) = delete;

  uint16_t port() const { return port_; }

  // GET /stats straight from the origin: requests and connections it has seen.
  Json stats() const {
    RawConnection c(port_, host_);
    c.send("GET /stats HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n");
    const std::optional<RawResponse> response = c.readResponse();
    if (!response) return Json{};
    return parseJson(response->body).value_or(Json{});
  }
  int requests() const { return static_cast<int>(stats()["requests"].number()); }
  int connections() const { return static_cast<int>(stats()["connections"].number()); }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string host_;
};

// Waits (up to timeout) until done() holds.
template <class Done>
bool eventually(Done&& done, std::chrono::milliseconds timeout = 5s) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// GET /processing (tests/support/origin_server.py; the h2c test origin has it too) over raw
// HTTP/1.1, under an upstream_response of 300 ms. host_field: "Host: ...\r\n".
// Four 102s 200 ms apart and the answer 200 ms after the last (never 300 ms of silence): the
// 102s are relayed and the 200 comes.
inline void expectInterimsThenTheAnswer(uint16_t port, const std::string& host_field) {
  RawConnection c(port);
  ASSERT_TRUE(c.send("GET /processing?count=4&ms=200 HTTP/1.1\r\n" + host_field + "\r\n"));
  for (int i = 0; i < 4; ++i) {
    const std::optional<RawResponse> interim = c.readResponse();
    ASSERT_TRUE(interim.has_value());
    EXPECT_EQ(interim->status, 102);
  }
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "processed\n");
}
// One 102 150 ms in, then nothing for 3 s: the 504 comes 300 ms after the 102, not after the
// request.
inline void expectASilenceAfterAnInterimTimedFromIt(uint16_t port, const std::string& host_field) {
  RawConnection c(port);
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.send("GET /processing?count=1&ms=150&final_ms=3000 HTTP/1.1\r\n" + host_field +
                     "\r\n"));
  const std::optional<RawResponse> interim = c.readResponse();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->status, 102);
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 504);
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 420ms);
}

// The proxy for one test, with a fresh origin behind its inbound listener.
class DataPathTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(origin_.port(), 0) << "the origin did not start"; }
  void TearDown() override {
    if (pool_) pool_->stop(2s);
  }

  // Test defaults: 127.0.0.1 port 0 for both listeners, the origin as the app, one worker.
  proxy::DataPathSettings settings() const {
    proxy::DataPathSettings s;
    s.inbound = {"127.0.0.1", 0};
    s.outbound = {"127.0.0.1", 0};
    s.app = {"127.0.0.1", origin_.port()};
    s.workers = 1;
    return s;
  }
  void startProxy(proxy::DataPathSettings s, proxy::DataPathHooks hooks = {}) {
    pool_ = std::make_unique<proxy::WorkerPool>(std::move(s), std::move(hooks));
    const absl::Status status = pool_->start();
    ASSERT_TRUE(status.ok()) << status;
  }
  void startProxy() { startProxy(settings()); }
  // Records every request; optionally rejects or rewrites them.
  void startProxyObserved(proxy::DataPathSettings s, proxy::StreamRecorder::Options options = {}) {
    recorder_ = std::make_shared<proxy::StreamRecorder>(std::move(options));
    proxy::DataPathHooks hooks;
    hooks.observers = [recorder = recorder_](size_t, proxy::ListenerRole) {
      return std::make_unique<proxy::RecordingStreamObserverFactory>(recorder);
    };
    startProxy(std::move(s), std::move(hooks));
  }

  uint16_t inboundPort() const { return pool_->port(proxy::ListenerRole::kInbound); }
  uint16_t outboundPort() const { return pool_->port(proxy::ListenerRole::kOutbound); }
  std::string inboundUrl(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(inboundPort()) + std::string(path);
  }
  std::string originUrl(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(origin_.port()) + std::string(path);
  }
  proxy::DataPathSnapshot counters() const { return pool_->snapshot(); }

  // curl -sS with extra arguments; -w prints the status code last.
  ProcessResult curl(std::vector<std::string> args, std::chrono::milliseconds timeout = 60s) const {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "50"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runProcess(argv, timeout);
  }

  OriginServer origin_;
  std::unique_ptr<proxy::WorkerPool> pool_;
  std::shared_ptr<proxy::StreamRecorder> recorder_;
};

// The value of a header in an echo body's "headers" list ([name, value] pairs); nullopt when
// absent.
inline std::optional<std::string> echoedHeader(const Json& echo, std::string_view name) {
  for (const Json& pair : echo["headers"].items) {
    if (strcasecmp(pair[0].text.c_str(), std::string(name).c_str()) == 0) return pair[1].text;
  }
  return std::nullopt;
}

}  // namespace tracecar::integration
