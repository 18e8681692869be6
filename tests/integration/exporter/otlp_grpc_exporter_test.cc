// OtlpGrpcExporter against a real grpcio TraceService (tests/support/grpc_collector.py): the
// call's shape, spans as the official schema decodes them, statuses and retries, gzip, TLS.
#include "exporter/otlp_grpc_exporter.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>

#include "exporter/deadline.h"
#include "exporter/otlp_exporter_factory.h"
#include "integration/support/exporter_fixture.h"
#include "integration/support/grpc_collector.h"

namespace tracecar::exporter {
namespace {

using integration::GrpcCollector;
using integration::RecordedCall;

class OtlpGrpcExporterTest : public ::testing::Test {
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
    EXPECT_EQ(uv_loop_close(&loop_), 0);  // every handle the exporter opened was closed
    setMinLogLevel(LogLevel::kInfo);
  }

  OtlpConfig configFor(uint16_t port, std::string_view scheme = "http",
                       std::string_view host = "127.0.0.1") {
    OtlpConfig config;
    config.protocol = OtlpProtocol::kGrpc;
    config.endpoint.scheme = std::string(scheme);
    config.endpoint.host = std::string(host);
    config.endpoint.port = port;
    config.endpoint.path = "/";
    config.timeout = kOtlpTimeout;
    return config;
  }

  void makeExporter(const OtlpConfig& config) {
    OtlpExporterOptions options;
    options.backoff.initial = 50ms;
    options.backoff.max = 200ms;
    options.backoff.multiplier = 2;
    options.seed = 42;
    auto created = makeOtlpExporter(&loop_, config, testing::testResource(),
                                    tracecarScope("0.1.0"), counters_, options);
    ASSERT_TRUE(created.ok()) << created.status();
    exporter_ = std::move(*created);
  }

  // deadline_ms: the batch's deadline; by default 20 s from now.
  ExportOutcome exportBatch(std::optional<uint64_t> deadline_ms = std::nullopt) {
    std::optional<ExportOutcome> outcome;
    int answers = 0;
    uv_update_time(&loop_);
    const uint64_t deadline = deadline_ms.value_or(uv_now(&loop_) + 20000);
    exporter_->exportBatch(batch_, deadline, [&](ExportOutcome o) {
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

  std::string protobufOf() {
    std::string out;
    OtlpProtoEncoder().encode(testing::testResource(), tracecarScope("0.1.0"), batch_, out);
    return out;
  }

  // The batch as the official schema decoded it.
  void expectOurSpans(const RecordedCall& call) {
    ASSERT_EQ(call.spans.size(), 2u);
    EXPECT_EQ(call.spans[0].at("name"), "GET /api/v1/users/{id}");
    EXPECT_EQ(call.spans[0].at("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(call.spans[0].at("span_id"), "00f067aa0ba902b7");
    EXPECT_EQ(call.spans[0].at("scope"), "tracecar");
    EXPECT_EQ(call.spans[1].at("name"), "health");
    EXPECT_EQ(call.spans[1].at("trace_id"), "5b8efff798038103d269b633813fc60c");
    EXPECT_EQ(call.body, protobufOf());
  }

  uv_loop_t loop_{};
  ExporterCounters counters_;
  std::unique_ptr<SpanExporter> exporter_;
  std::vector<SpanRecord> spans_;
  std::vector<const SpanRecord*> batch_;
  LogCapture logs_;
};

TEST_F(OtlpGrpcExporterTest, ExportsOverH2cWithPriorKnowledge) {
  GrpcCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector.port());
  config.headers = {{"x-tenant", "blue"}, {"authorization", "Bearer t0ken"}};
  makeExporter(config);
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess) << outcome.message;
  EXPECT_EQ(outcome.rejected_spans, 0u);
  expectRequests({.success = 1});
  const std::vector<RecordedCall> calls = collector.calls();
  ASSERT_EQ(calls.size(), 1u) << collector.log();
  expectOurSpans(calls[0]);
  EXPECT_EQ(calls[0].metadata.at("x-tenant"), "blue");
  EXPECT_EQ(calls[0].metadata.at("authorization"), "Bearer t0ken");
  EXPECT_EQ(calls[0].metadata.at("user-agent").rfind("tracecar/0.1.0", 0), 0u)
      << calls[0].metadata.at("user-agent");
  // grpc-timeout carried the export timeout (2.5 s) minus what had passed.
  EXPECT_GT(calls[0].time_remaining, 1.5);
  EXPECT_LE(calls[0].time_remaining, 2.5);
}

// An export timeout of 0 (no limit) and a batch with no deadline: the call carries no
// grpc-timeout, which gRPC reads as no deadline at all.
TEST_F(OtlpGrpcExporterTest, NoTimeoutSendsNoGrpcTimeout) {
  GrpcCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector.port());
  config.timeout = kNoTimeout;
  makeExporter(config);
  EXPECT_EQ(exportBatch(kNoDeadline).status, Status::kSuccess);
  const std::vector<RecordedCall> calls = collector.calls();
  ASSERT_EQ(calls.size(), 1u) << collector.log();
  EXPECT_FALSE(calls[0].deadline) << calls[0].time_remaining;
  expectOurSpans(calls[0]);

  // The same exporter with a deadline from the batch: the call has one.
  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  const std::vector<RecordedCall> both = collector.calls();
  ASSERT_EQ(both.size(), 2u) << collector.log();
  EXPECT_TRUE(both[1].deadline);
  EXPECT_GT(both[1].time_remaining, 15.0);
  EXPECT_LE(both[1].time_remaining, 20.0);
}

TEST_F(OtlpGrpcExporterTest, ReusesOneConnectionAcrossBatches) {
  GrpcCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 3});
  const std::vector<RecordedCall> calls = collector.calls();
  ASSERT_EQ(calls.size(), 3u);
  // One client address and port: one connection.
  EXPECT_FALSE(calls[0].peer.empty());
  EXPECT_EQ(calls[1].peer, calls[0].peer);
  EXPECT_EQ(calls[2].peer, calls[0].peer);
}

TEST_F(OtlpGrpcExporterTest, PartialSuccessIsReportedNotRetried) {
  GrpcCollector collector(R"([{"code": 0, "rejected": 1, "error_message": "span too old"}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess);
  EXPECT_EQ(outcome.rejected_spans, 1u);
  EXPECT_EQ(outcome.message, "span too old");
  expectRequests({.partial = 1});
  EXPECT_EQ(collector.calls().size(), 1u);
  EXPECT_TRUE(logs_.has("warn", {"rejected 1 of 2 spans", "span too old"}));
}

TEST_F(OtlpGrpcExporterTest, RepeatedPartialSuccessIsLoggedOncePerInterval) {
  GrpcCollector collector(R"([{"code": 0, "rejected": 1, "error_message": "span too old"}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(exportBatch().rejected_spans, 1u);
  expectRequests({.partial = 4});
  EXPECT_EQ(logs_.count("warn", {"rejected 1 of 2 spans"}), 1u) << logs_.all();
}

TEST_F(OtlpGrpcExporterTest, UnavailableTwiceThenOk) {
  GrpcCollector collector(
      R"([{"code": 14, "message": "later"}, {"code": 14}, {"code": 0}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess) << outcome.message;
  expectRequests({.success = 1, .retryable = 2});
  const std::vector<RecordedCall> calls = collector.calls();
  ASSERT_EQ(calls.size(), 3u);
  expectOurSpans(calls[2]);
  // Backoff from 50 ms (jitter 20 %), far from RetryInfo's second.
  EXPECT_LT(calls[1].time - calls[0].time, 0.9);
}

class RetryableCodes : public OtlpGrpcExporterTest, public ::testing::WithParamInterface<int> {};

TEST_P(RetryableCodes, AreRetried) {
  GrpcCollector collector(R"([{"code": )" + std::to_string(GetParam()) +
                          R"(, "message": "x"}, {"code": 0}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 1, .retryable = 1});
  EXPECT_EQ(collector.calls().size(), 2u);
}

// CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS.
INSTANTIATE_TEST_SUITE_P(OtlpSpec, RetryableCodes, ::testing::Values(1, 4, 10, 11, 14, 15));

class NonRetryableCodes : public OtlpGrpcExporterTest, public ::testing::WithParamInterface<int> {};

TEST_P(NonRetryableCodes, AreNotRetried) {
  GrpcCollector collector(R"([{"code": )" + std::to_string(GetParam()) +
                          R"(, "message": "no"}, {"code": 0}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kNonRetryable);
  expectRequests({.non_retryable = 1});
  EXPECT_EQ(collector.calls().size(), 1u);
}

// UNKNOWN, INVALID_ARGUMENT, PERMISSION_DENIED, RESOURCE_EXHAUSTED (no RetryInfo),
// UNIMPLEMENTED, INTERNAL, UNAUTHENTICATED.
INSTANTIATE_TEST_SUITE_P(OtlpSpec, NonRetryableCodes,
                         ::testing::Values(2, 3, 7, 8, 12, 13, 16));

TEST_F(OtlpGrpcExporterTest, InvalidArgumentMessageIsPercentDecoded) {
  GrpcCollector collector(R"([{"code": 3, "message": "bad span: 100% \u00e9t\u00e9"}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kNonRetryable);
  EXPECT_NE(outcome.message.find("INVALID_ARGUMENT: bad span: 100% "), std::string::npos)
      << outcome.message;
  expectRequests({.non_retryable = 1});
}

TEST_F(OtlpGrpcExporterTest, ResourceExhaustedWithRetryInfoWaitsTheServersDelay) {
  GrpcCollector collector(
      R"([{"code": 8, "message": "slow down", "retry_delay": [1, 2]}, {"code": 0}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess) << outcome.message;
  expectRequests({.success = 1, .retryable = 1});
  const std::vector<RecordedCall> calls = collector.calls();
  ASSERT_EQ(calls.size(), 2u);
  // 1.000000002 s, rounded up to 1001 ms: not the 50 ms backoff.
  EXPECT_GE(calls[1].time - calls[0].time, 1.0);
  EXPECT_LT(calls[1].time - calls[0].time, 2.9);  // not 3 s: the 2 ns read as seconds
  expectOurSpans(calls[1]);
}

TEST_F(OtlpGrpcExporterTest, RetryInfoPastTheDeadlineEndsTheExport) {
  GrpcCollector collector(R"([{"code": 8, "retry_delay": [5, 0]}, {"code": 0}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kRetryExhausted);
  expectRequests({.retryable = 1});
  EXPECT_EQ(collector.calls().size(), 1u);
}

TEST_F(OtlpGrpcExporterTest, ResourceExhaustedWithDetailsButNoRetryInfoIsNotRetried) {
  GrpcCollector collector(R"([{"code": 8, "message": "quota", "details": true}, {"code": 0}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector.port()));
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kNonRetryable);
  EXPECT_NE(outcome.message.find("RESOURCE_EXHAUSTED: quota"), std::string::npos)
      << outcome.message;
  expectRequests({.non_retryable = 1});
  EXPECT_EQ(collector.calls().size(), 1u);
}

TEST_F(OtlpGrpcExporterTest, SlowCollectorRunsIntoTheDeadline) {
  GrpcCollector collector(R"([{"sleep": 3, "code": 0}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector.port());
  config.timeout = 2000ms;
  makeExporter(config);
  uv_update_time(&loop_);
  const uint64_t start = uv_now(&loop_);
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kRetryExhausted);
  EXPECT_LT(uv_now(&loop_) - start, 2900u);  // not the collector's 3 s
  // grpcio enforces grpc-timeout itself: its DEADLINE_EXCEEDED (retryable, but no time is left)
  // and our own deadline race by a millisecond. Either way: one attempt, nothing else.
  EXPECT_EQ(counters_.requestCount(Result::kTimeout) +
                counters_.requestCount(Result::kRetryableFailure),
            1u);
  EXPECT_EQ(counters_.requestCount(Result::kSuccess), 0u);
  EXPECT_EQ(counters_.requestCount(Result::kNonRetryableFailure), 0u);
  const std::vector<RecordedCall> calls = collector.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_LE(calls[0].time_remaining, 2.0);  // grpc-timeout told the server
  EXPECT_GT(calls[0].time_remaining, 1.0);  // less what the connection and the call took
}

// A peer that takes the connection and never answers: our deadline alone ends the export.
TEST_F(OtlpGrpcExporterTest, SilentPeerRunsIntoTheDeadline) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(fd, 8), 0);  // the kernel accepts; nobody reads
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  OtlpConfig config = configFor(ntohs(address.sin_port));
  config.timeout = 500ms;
  makeExporter(config);
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kRetryExhausted);
  EXPECT_NE(outcome.message.find("timed out"), std::string::npos) << outcome.message;
  expectRequests({.timeout = 1});
  shutdownExporter();
  ::close(fd);
}

TEST_F(OtlpGrpcExporterTest, GzipCompressesTheMessage) {
  GrpcCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector.port());
  config.compression = Compression::kGzip;
  makeExporter(config);
  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 1});
  const std::vector<RecordedCall> calls = collector.calls();
  ASSERT_EQ(calls.size(), 1u);
  expectOurSpans(calls[0]);  // grpcio decompressed it per grpc-encoding: gzip
}

TEST_F(OtlpGrpcExporterTest, NobodyListeningRetriesUntilTheDeadline) {
  RefusingPort nobody;
  OtlpConfig config = configFor(nobody.port());
  config.timeout = 600ms;
  makeExporter(config);
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kRetryExhausted);
  EXPECT_EQ(counters_.requestCount(Result::kSuccess), 0u);
  EXPECT_GE(counters_.requestCount(Result::kRetryableFailure), 2u);
  EXPECT_EQ(counters_.requestCount(Result::kNonRetryableFailure), 0u);
}

TEST_F(OtlpGrpcExporterTest, ExportsOverTlsWithAlpnH2) {
  const integration::TestCerts& certs = integration::TestCerts::get();
  ASSERT_TRUE(certs.ok());
  GrpcCollector collector(R"([{"code": 0}])",
                          {certs.pki("server.pem"), certs.pki("server.key")});
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector.port(), "https", "localhost");
  config.certificate = certs.pki("ca.pem");
  makeExporter(config);
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess) << outcome.message;
  expectRequests({.success = 1});
  const std::vector<RecordedCall> calls = collector.calls();
  ASSERT_EQ(calls.size(), 1u);
  expectOurSpans(calls[0]);
}

TEST_F(OtlpGrpcExporterTest, TlsWithAnotherCaNeverReachesTheService) {
  const integration::TestCerts& certs = integration::TestCerts::get();
  ASSERT_TRUE(certs.ok());
  GrpcCollector collector(R"([{"code": 0}])",
                          {certs.pki("server.pem"), certs.pki("server.key")});
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector.port(), "https", "localhost");
  config.certificate = certs.pki("other-ca.pem");
  config.timeout = 1500ms;  // room for at least one handshake however slow the machine
  makeExporter(config);
  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kRetryExhausted);
  EXPECT_EQ(counters_.requestCount(Result::kSuccess), 0u);
  EXPECT_GE(counters_.requestCount(Result::kRetryableFailure), 1u);
  EXPECT_TRUE(collector.calls().empty());
}

}  // namespace
}  // namespace tracecar::exporter
