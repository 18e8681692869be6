// Runs tests/support/fake_collector.py as a child process for one test, and reads back what it
// recorded. Also: the test PKI (tests/support/make_certs.sh) and a log capture.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "exporter/log.h"
#include "integration/support/mini_json.h"
#include "integration/support/process.h"
#include "support/scratch_dir.h"

#ifndef TRACECAR_TEST_SUPPORT_DIR
#error "TRACECAR_TEST_SUPPORT_DIR must name tests/support"
#endif
#ifndef TRACECAR_PYTHON3
#define TRACECAR_PYTHON3 "python3"
#endif

namespace tracecar::integration {

inline std::string supportFile(std::string_view name) {
  return std::string(TRACECAR_TEST_SUPPORT_DIR) + "/" + std::string(name);
}

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

using test_support::ScratchDir;

// One request as the collector recorded it.
struct RecordedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // lowercase names
  int connection = 0;                          // which of the collector's connections, from 1
  double time = 0;                             // seconds, monotonic, the collector's clock
  uint64_t wire_bytes = 0;                     // body bytes as sent (compressed or not)
  std::string body;                            // gzip-decoded

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class FakeCollector {
 public:
  struct Tls {
    std::string cert;
    std::string key;
    std::string client_ca;  // non-empty: require a client certificate signed by it
  };

  // Starts the collector with script (a JSON list of actions); port() is 0 when it failed.
  explicit FakeCollector(std::string script = R"([{"status": 200}])", const Tls& tls = {}) {
    std::vector<std::string> args = {TRACECAR_PYTHON3,
                                     supportFile("fake_collector.py"),
                                     "--script",
                                     std::move(script),
                                     "--record",
                                     record_.path(),
                                     "--max-seconds",
                                     "90"};
    if (!tls.cert.empty()) {
      args.insert(args.end(), {"--tls-cert", tls.cert, "--tls-key", tls.key});
      if (!tls.client_ca.empty()) args.insert(args.end(), {"--client-ca", tls.client_ca});
    }
    start(args);
  }

  ~FakeCollector() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > give_up) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  FakeCollector(const FakeCollector&) = delete;
  FakeCollector& operator=(const FakeCollector&) = delete;

  uint16_t port() const { return port_; }
  // The collector's own diagnostics (its stderr).
  std::string log() const { return slurp(record_.path() + "/collector.log"); }

  // Every request recorded so far, in arrival order.
  std::vector<RecordedRequest> requests() const {
    std::vector<RecordedRequest> out;
    for (int n = 1;; ++n) {
      const std::string base = record_.path() + "/" + std::to_string(n);
      if (!std::filesystem::exists(base + ".json")) break;
      RecordedRequest request;
      const std::optional<Json> meta = parseJson(slurp(base + ".json"));
      if (meta) {
        request.method = (*meta)["method"].text;
        request.path = (*meta)["path"].text;
        for (const JsonMember& header : (*meta)["headers"].members) {
          request.headers[header.name] = header.value.text;
        }
        request.connection = static_cast<int>((*meta)["connection"].number());
        request.time = (*meta)["time"].number();
        request.wire_bytes = static_cast<uint64_t>((*meta)["wire_bytes"].number());
      }
      request.body = slurp(base + ".body");
      out.push_back(std::move(request));
    }
    return out;
  }

 private:
  void start(const std::vector<std::string>& args) {
    const ReportingChild child = spawnReportingPort(args, record_.path() + "/collector.log");
    pid_ = child.pid;
    port_ = child.port;
  }

  ScratchDir record_{"tracecar-collector"};
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// The test PKI, made once per test program by make_certs.sh.
class TestCerts {
 public:
  static const TestCerts& get() {
    static const TestCerts instance;
    return instance;
  }
  bool ok() const { return ok_; }
  // ca.pem, server.pem, server.key, client.pem, client.key, other-ca.pem, wronghost.pem...
  std::string pki(std::string_view name) const {
    return dir_.path() + "/pki/" + std::string(name);
  }

 private:
  TestCerts() {
    const std::string command =
        "bash '" + supportFile("make_certs.sh") + "' '" + dir_.path() + "/pki' >/dev/null";
    ok_ = !dir_.path().empty() && std::system(command.c_str()) == 0;
  }
  ScratchDir dir_{"tracecar-certs"};
  bool ok_ = false;
};

// Collects log lines (from any thread) while alive; the default sink is back afterwards.
class LogCapture {
 public:
  LogCapture() {
    setLogSink([this](LogLevel level, std::string_view component, std::string_view message) {
      std::lock_guard lock(mutex_);
      lines_.push_back(std::string(logLevelName(level)) + " " + std::string(component) + ": " +
                       std::string(message));
    });
  }
  ~LogCapture() { setLogSink({}); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // A line at level ("warn", "error"...) containing every needle.
  bool has(std::string_view level, std::initializer_list<std::string_view> needles) const {
    std::lock_guard lock(mutex_);
    for (const std::string& line : lines_) {
      if (line.rfind(std::string(level) + " ", 0) != 0) continue;
      bool all = true;
      for (std::string_view needle : needles) all = all && line.find(needle) != std::string::npos;
      if (all) return true;
    }
    return false;
  }
  // Lines at level containing every needle.
  size_t count(std::string_view level, std::initializer_list<std::string_view> needles) const {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const std::string& line : lines_) {
      if (line.rfind(std::string(level) + " ", 0) != 0) continue;
      bool all = true;
      for (std::string_view needle : needles) all = all && line.find(needle) != std::string::npos;
      if (all) ++n;
    }
    return n;
  }
  std::string all() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const std::string& line : lines_) out += line + "\n";
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace tracecar::integration
