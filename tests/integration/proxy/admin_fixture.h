// The admin server on a loop of its own thread, as the proxy's main thread runs it, plus what
// the tests talk to it with: curl and promtool as real processes, and a raw socket for what
// curl will not send.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "exporter/recent_spans.h"
#include "exporter/span.h"
#include "integration/support/process.h"
#include "proxy/admin_server.h"
#include "proxy/metrics.h"

namespace tracecar::proxy::testing {

using namespace std::chrono_literals;

// libuv leaves SIGPIPE alone: a peer closing under a write must be an error, not the end.
inline const bool kSigpipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

struct CommandResult {
  int exit_code = -1;
  std::string output;  // standard output and standard error
};

// Runs a shell command and waits for it.
inline CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline bool haveProgram(const std::string& name) {
  return run("command -v " + name + " >/dev/null").exit_code == 0;
}

// One HTTP answer as curl -i prints it.
struct HttpAnswer {
  int status = 0;
  std::string head;  // status line and header lines
  std::string body;
  std::optional<std::string> header(std::string_view name) const {
    size_t at = 0;
    while ((at = head.find("\r\n", at)) != std::string::npos) {
      at += 2;
      const size_t colon = head.find(':', at);
      const size_t end = head.find("\r\n", at);
      if (colon == std::string::npos || colon > end) continue;
      std::string field = head.substr(at, colon - at);
      if (field.size() == name.size() &&
          std::equal(field.begin(), field.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        size_t value = colon + 1;
        while (value < end && head[value] == ' ') ++value;
        return head.substr(value, end - value);
      }
    }
    return std::nullopt;
  }
};

// Splits "HTTP/1.1 200 OK\r\n...\r\n\r\nbody".
inline HttpAnswer parseAnswer(std::string_view raw) {
  HttpAnswer answer;
  const size_t end = raw.find("\r\n\r\n");
  answer.head = std::string(raw.substr(0, end == std::string_view::npos ? raw.size() : end));
  if (end != std::string_view::npos) answer.body = std::string(raw.substr(end + 4));
  if (answer.head.size() > 12 && answer.head.starts_with("HTTP/1.")) {
    answer.status = std::atoi(answer.head.c_str() + 9);
  }
  return answer;
}

// curl -i against the server; extra goes before the URL.
inline HttpAnswer curl(uint16_t port, std::string_view path, std::string_view extra = "") {
  const CommandResult result =
      run("curl -sS -i --max-time 10 " + std::string(extra) +
          " 'http://127.0.0.1:" + std::to_string(port) + std::string(path) + "'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return parseAnswer(result.output);
}

// A blocking client socket with a receive timeout, for bytes curl would not send.
class RawClient {
 public:
  explicit RawClient(uint16_t port, std::chrono::milliseconds timeout = 5000ms) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{};
    tv.tv_sec = timeout.count() / 1000;
    tv.tv_usec = (timeout.count() % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void shutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // Everything until the server closes (or the timeout, or a reset): closed() says which.
  std::string readToEnd() {
    std::string out;
    char buffer[16384];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n > 0) {
        out.append(buffer, static_cast<size_t>(n));
        continue;
      }
      closed_ = n == 0 || errno == ECONNRESET;
      return out;
    }
  }

  // One answer: the head, then Content-Length bytes of body (none after a HEAD request).
  std::string readAnswer(bool head_request = false) {
    char buffer[16384];
    for (;;) {
      const size_t end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        const HttpAnswer parsed = parseAnswer(pending_.substr(0, end + 4));
        const size_t length =
            head_request
                ? 0
                : std::strtoul(parsed.header("content-length").value_or("0").c_str(), nullptr, 10);
        if (pending_.size() >= end + 4 + length) {
          std::string answer = pending_.substr(0, end + 4 + length);
          pending_.erase(0, end + 4 + length);
          return answer;
        }
      }
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        closed_ = n == 0;
        std::string rest = std::move(pending_);
        pending_.clear();
        return rest;
      }
      pending_.append(buffer, static_cast<size_t>(n));
    }
  }

  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string pending_;
};

using integration::freePort;

inline exporter::SpanRecord testSpan(uint64_t n, std::string name, exporter::SpanKind kind,
                                     exporter::StatusCode status) {
  exporter::SpanRecord span;
  propagation::TraceId::fromHex("4bf92f3577b34da6a3ce929d0e0e4736", span.trace_id);
  span.span_id = propagation::SpanId::fromU64(n);
  span.name = std::move(name);
  span.kind = kind;
  span.status_code = status;
  span.start_unix_nano = 1700000000123456789ULL + n;
  span.end_unix_nano = span.start_unix_nano + 2500000;
  return span;
}

// The server runs on its own thread and loop, like the proxy's main thread; the test thread
// records into a worker shard, as a worker would.
class AdminServerTest : public ::testing::Test {
 protected:
  void TearDown() override { stopServer(); }

  void startServer(AdminServerOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    AdminSources sources;
    sources.collectables = {&registry_, &metrics_};
    sources.recent_spans = &recent_;
    sources.metrics = &admin_shard_;
    std::promise<uint16_t> bound;
    thread_ = std::thread([this, options, sources, &bound] {
      uv_loop_t loop;
      uv_loop_init(&loop);
      uv_async_t stop{};
      {
        AdminServer server(&loop, options, sources);
        stop.data = &server;
        uv_async_init(&loop, &stop, [](uv_async_t* async) {
          static_cast<AdminServer*>(async->data)->stop([async] {
            uv_close(reinterpret_cast<uv_handle_t*>(async), nullptr);
          });
        });
        stop_ = &stop;
        server_ = &server;
        const absl::Status status = server.start();
        if (!status.ok()) ADD_FAILURE() << status;
        bound.set_value(status.ok() ? server.port() : 0);
        if (!status.ok()) uv_async_send(&stop);
        uv_run(&loop, UV_RUN_DEFAULT);
        server_ = nullptr;
      }
      uv_loop_close(&loop);
    });
    port_ = bound.get_future().get();
    ASSERT_NE(port_, 0);
  }

  void stopServer() {
    if (!thread_.joinable()) return;
    uv_async_send(stop_);
    thread_.join();
  }

  std::string scrape() {
    const HttpAnswer answer = curl(port_, "/metrics");
    EXPECT_EQ(answer.status, 200) << answer.head;
    return answer.body;
  }

  prometheus::Registry registry_;
  ProxyMetrics metrics_;
  WorkerMetrics& worker_ = metrics_.addShard();
  WorkerMetrics& admin_shard_ = metrics_.addShard();
  exporter::RecentSpans recent_{8};
  std::thread thread_;
  uv_async_t* stop_ = nullptr;
  AdminServer* server_ = nullptr;  // valid while the thread runs; only thread-safe calls
  uint16_t port_ = 0;
};

}  // namespace tracecar::proxy::testing
