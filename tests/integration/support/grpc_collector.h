// Runs tests/support/grpc_collector.py (a grpcio TraceService) as a child process for one test,
// and reads back what it recorded.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "integration/support/fake_collector.h"
#include "integration/support/mini_json.h"
#include "integration/support/process.h"
#include "support/otlp_test_support.h"

namespace tracecar::integration {

// Debian's interpreter: it has python3-grpcio and python3-protobuf, whatever python3 is on PATH.
inline constexpr const char* kSystemPython3 = "/usr/bin/python3";

struct RecordedCall {
  std::map<std::string, std::string> metadata;  // as grpcio hands it to the service
  double time_remaining = -1;                   // of the call's deadline, seconds
  bool deadline = false;                        // the call carried one (grpc-timeout)
  double time = 0;                              // seconds, monotonic, the collector's clock
  std::string peer;                             // "ipv4:127.0.0.1:<client port>"
  std::vector<std::map<std::string, std::string>> spans;  // name, trace_id, span_id, kind, scope
  std::string body;                                        // the request message as received
};

class GrpcCollector {
 public:
  struct Tls {
    std::string cert;
    std::string key;
  };

  explicit GrpcCollector(std::string script = R"([{"code": 0}])", const Tls& tls = {}) {
    const std::string protos = exporter::testing::otlpProtoDir();
    if (protos.empty()) return;
    std::vector<std::string> args = {kSystemPython3, supportFile("grpc_collector.py"),
                                     "--script",     std::move(script),
                                     "--record",     record_.path(),
                                     "--protos",     protos,
                                     "--max-seconds", "90"};
    if (!tls.cert.empty()) args.insert(args.end(), {"--tls-cert", tls.cert, "--tls-key", tls.key});
    const ReportingChild child = spawnReportingPort(args, record_.path() + "/collector.log");
    pid_ = child.pid;
    port_ = child.port;
  }

  ~GrpcCollector() {
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
  GrpcCollector(const GrpcCollector&) = delete;
  GrpcCollector& operator=(const GrpcCollector&) = delete;

  uint16_t port() const { return port_; }
  std::string log() const { return slurp(record_.path() + "/collector.log"); }

  std::vector<RecordedCall> calls() const {
    std::vector<RecordedCall> out;
    for (int n = 1;; ++n) {
      const std::string base = record_.path() + "/" + std::to_string(n);
      if (!std::filesystem::exists(base + ".json")) break;
      RecordedCall call;
      if (const std::optional<Json> meta = parseJson(slurp(base + ".json"))) {
        for (const JsonMember& m : (*meta)["metadata"].members) call.metadata[m.name] = m.value.text;
        call.time_remaining = (*meta)["time_remaining"].number();
        // grpcio reports a call without grpc-timeout as ~9.2e18 s left; the longest grpc-timeout
        // (99999999H) is 3.6e11 s.
        call.deadline = (*meta)["time_remaining"].isNumber() && call.time_remaining < 1e12;
        call.time = (*meta)["time"].number();
        call.peer = (*meta)["peer"].text;
        for (const Json& span : (*meta)["spans"].items) {
          std::map<std::string, std::string> fields;
          for (const JsonMember& m : span.members) fields[m.name] = m.value.text;
          call.spans.push_back(std::move(fields));
        }
      }
      call.body = slurp(base + ".body");
      out.push_back(std::move(call));
    }
    return out;
  }

 private:
  ScratchDir record_{"tracecar-grpc-collector"};
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace tracecar::integration
