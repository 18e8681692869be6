// The fixture of the OtlpHttpExporter integration tests: an exporter on a loop of the test's
// own, run until each export is answered, and the collector's view of what it sent.
#pragma once

#include <arpa/inet.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/otlp_http_exporter.h"
#include "exporter/otlp_json_encoder.h"
#include "exporter/otlp_proto_encoder.h"
#include "integration/support/fake_collector.h"
#include "support/otlp_test_support.h"

namespace tracecar::exporter {

using namespace std::chrono_literals;
using integration::FakeCollector;
using integration::Json;
using integration::LogCapture;
using integration::RecordedRequest;
using integration::TestCerts;
using Status = ExportOutcome::Status;
using Result = ExportRequestResult;

constexpr auto kOtlpTimeout = 2500ms;
constexpr auto kLongWait = 30s;  // only a hang reaches it

// As the proxy's main does: writing to a connection the collector has closed must fail with
// EPIPE, not end the process (libuv leaves SIGPIPE alone).
inline const bool kSigpipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

inline OtlpHttpExporter::Options fastRetries() {
  OtlpHttpExporter::Options options;
  options.backoff.initial = 50ms;
  options.backoff.max = 200ms;
  options.backoff.multiplier = 2;
  options.backoff.jitter = 0.2;
  options.seed = 42;
  return options;
}

// Exact figures of counters.requests.
struct Requests {
  uint64_t success = 0;
  uint64_t partial = 0;
  uint64_t retryable = 0;
  uint64_t non_retryable = 0;
  uint64_t timeout = 0;
};

class OtlpHttpExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    setMinLogLevel(LogLevel::kDebug);
    spans_ = {testing::realisticServerSpan(), testing::rootSpan()};
    for (const SpanRecord& span : spans_) batch_.push_back(&span);
  }

  void TearDown() override {
    shutdownExporter();
    if (HasFailure() || std::getenv("TRACECAR_TEST_SHOW_LOGS") != nullptr) {
      std::cerr << "exporter log:\n" << logs_.all();
    }
    // Every handle the exporter opened has been closed.
    EXPECT_EQ(uv_loop_close(&loop_), 0);
    setMinLogLevel(LogLevel::kInfo);
  }

  OtlpConfig configFor(const FakeCollector& collector, std::string_view scheme = "http",
                       std::string_view host = "127.0.0.1") {
    OtlpConfig config;
    config.endpoint.scheme = std::string(scheme);
    config.endpoint.host = std::string(host);
    config.endpoint.port = collector.port();
    config.endpoint.path = "/v1/traces";
    config.timeout = kOtlpTimeout;
    return config;
  }

  void makeExporter(const OtlpConfig& config) {
    auto created = OtlpHttpExporter::create(&loop_, config, testing::testResource(),
                                            tracecarScope("0.1.0"), counters_, fastRetries());
    ASSERT_TRUE(created.ok()) << created.status();
    exporter_ = std::move(*created);
  }

  // The batch exportBatch() sends from now on.
  void useSpans(std::vector<SpanRecord> spans) {
    spans_ = std::move(spans);
    batch_.clear();
    for (const SpanRecord& span : spans_) batch_.push_back(&span);
  }

  // Exports batch_ and runs the loop until the answer.
  ExportOutcome exportBatch(std::chrono::milliseconds deadline = 20s) {
    std::optional<ExportOutcome> outcome;
    int answers = 0;
    uv_update_time(&loop_);
    exporter_->exportBatch(batch_, uv_now(&loop_) + static_cast<uint64_t>(deadline.count()),
                           [&](ExportOutcome o) {
                             ++answers;
                             outcome = std::move(o);
                           });
    EXPECT_EQ(answers, 0) << "answered from inside exportBatch";
    const auto give_up = std::chrono::steady_clock::now() + kLongWait;
    while (!outcome && std::chrono::steady_clock::now() < give_up) uv_run(&loop_, UV_RUN_ONCE);
    uv_run(&loop_, UV_RUN_NOWAIT);
    EXPECT_EQ(answers, 1);
    if (!outcome) return ExportOutcome{Status::kRetryExhausted, 0, "the test gave up waiting"};
    return *outcome;
  }

  // Runs the loop for a while (with a timer of its own, so it does not return at once).
  void runLoopFor(std::chrono::milliseconds duration) {
    uv_timer_t timer;
    uv_timer_init(&loop_, &timer);
    bool fired = false;
    timer.data = &fired;
    uv_timer_start(
        &timer, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; },
        static_cast<uint64_t>(duration.count()), 0);
    while (!fired) uv_run(&loop_, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
  }

  void shutdownExporter() {
    if (!exporter_) return;
    bool done = false;
    exporter_->shutdown([&] { done = true; });
    const auto give_up = std::chrono::steady_clock::now() + kLongWait;
    while (!done && std::chrono::steady_clock::now() < give_up) uv_run(&loop_, UV_RUN_ONCE);
    EXPECT_TRUE(done);
    exporter_.reset();
  }

  void expectRequests(const Requests& want) {
    EXPECT_EQ(counters_.requestCount(Result::kSuccess), want.success);
    EXPECT_EQ(counters_.requestCount(Result::kPartialSuccess), want.partial);
    EXPECT_EQ(counters_.requestCount(Result::kRetryableFailure), want.retryable);
    EXPECT_EQ(counters_.requestCount(Result::kNonRetryableFailure), want.non_retryable);
    EXPECT_EQ(counters_.requestCount(Result::kTimeout), want.timeout);
  }

  std::string protobufOf(std::span<const SpanRecord* const> batch) {
    std::string out;
    OtlpProtoEncoder().encode(testing::testResource(), tracecarScope("0.1.0"), batch, out);
    return out;
  }
  std::string jsonOf(std::span<const SpanRecord* const> batch) {
    std::string out;
    OtlpJsonEncoder().encode(testing::testResource(), tracecarScope("0.1.0"), batch, out);
    return out;
  }

  uv_loop_t loop_{};
  ExporterCounters counters_;
  std::unique_ptr<OtlpHttpExporter> exporter_;
  std::vector<SpanRecord> spans_;
  std::vector<const SpanRecord*> batch_;
  LogCapture logs_;
};

// A port on which nothing listens: bound but never listening, so it stays ours.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~RefusingPort() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace tracecar::exporter
