// OtlpHttpExporter against the fake collector (tests/support/fake_collector.py): what goes on
// the wire, how each answer is handled, and what is counted.
#include "exporter/otlp_http_exporter.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "integration/support/exporter_fixture.h"

namespace tracecar::exporter {
namespace {

// ---- what goes on the wire ----

TEST_F(OtlpHttpExporterTest, PostsProtobufThatTheOfficialSchemaDecodes) {
  FakeCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess) << outcome.message;
  EXPECT_EQ(outcome.rejected_spans, 0u);
  expectRequests({.success = 1});

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 1u);
  const RecordedRequest& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/v1/traces");
  EXPECT_EQ(r.header("host"), "127.0.0.1:" + std::to_string(collector.port()));
  EXPECT_EQ(r.header("content-type"), "application/x-protobuf");
  EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
  EXPECT_EQ(r.header("user-agent"), "tracecar/0.1.0");
  EXPECT_EQ(r.headers.count("content-encoding"), 0u);
  EXPECT_EQ(r.body, protobufOf(batch_));

  const testing::ProtocResult decoded = testing::protocDecode(r.body);
  ASSERT_EQ(decoded.status, 0) << decoded.err;
  const std::vector<std::string> fields = testing::flattenTextFormat(decoded.out);
  auto has = [&](const std::string& line) {
    return std::find(fields.begin(), fields.end(), line) != fields.end();
  };
  EXPECT_TRUE(has("resource_spans.scope_spans.scope.name: \"tracecar\""));
  EXPECT_TRUE(has("resource_spans.scope_spans.spans.name: \"GET /api/v1/users/{id}\""));
  EXPECT_TRUE(has("resource_spans.scope_spans.spans.name: \"health\""));
  EXPECT_TRUE(has("resource_spans.scope_spans.spans.trace_id: \"" +
                  testing::cEscaped(spans_[0].trace_id.bytes) + "\""));
  EXPECT_TRUE(has("resource_spans.scope_spans.spans.start_time_unix_nano: 1700000000123456789"));
  EXPECT_TRUE(has("resource_spans.scope_spans.spans.kind: SPAN_KIND_SERVER"));
}

TEST_F(OtlpHttpExporterTest, PostsJsonInTheSpecShape) {
  FakeCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector);
  config.protocol = OtlpProtocol::kHttpJson;
  makeExporter(config);

  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 1});

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].header("content-type"), "application/json");
  EXPECT_EQ(requests[0].body, jsonOf(batch_));

  const std::optional<Json> body = integration::parseJson(requests[0].body);
  ASSERT_TRUE(body) << requests[0].body;
  const Json& spans = (*body)["resourceSpans"][0]["scopeSpans"][0]["spans"];
  ASSERT_EQ(spans.items.size(), 2u);
  const Json& span = spans[0];
  EXPECT_EQ(span["traceId"].text, "4bf92f3577b34da6a3ce929d0e0e4736");  // hex, not base64
  EXPECT_EQ(span["spanId"].text, "00f067aa0ba902b7");
  EXPECT_EQ(span["parentSpanId"].text, "53995c3f42cd8ad8");
  EXPECT_TRUE(span["startTimeUnixNano"].isString());  // int64 as a decimal string
  EXPECT_EQ(span["startTimeUnixNano"].text, "1700000000123456789");
  EXPECT_TRUE(span["kind"].isNumber());  // enums as integers
  EXPECT_EQ(span["kind"].text, "2");
  EXPECT_EQ(span["status"]["code"].text, "2");
  bool saw_status_code = false;
  for (const Json& attribute : span["attributes"].items) {
    if (attribute["key"].text != "http.response.status_code") continue;
    saw_status_code = true;
    EXPECT_TRUE(attribute["value"]["intValue"].isString());
    EXPECT_EQ(attribute["value"]["intValue"].text, "503");
  }
  EXPECT_TRUE(saw_status_code);
}

TEST_F(OtlpHttpExporterTest, GzipsTheBodyWhenConfigured) {
  FakeCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector);
  config.compression = Compression::kGzip;
  makeExporter(config);
  // Repetitive enough that gzip must shrink it.
  batch_.clear();
  for (int i = 0; i < 20; ++i) batch_.push_back(&spans_[0]);

  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 1});

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 1u);
  const RecordedRequest& r = requests[0];
  EXPECT_EQ(r.header("content-encoding"), "gzip");
  EXPECT_EQ(r.header("content-length"), std::to_string(r.wire_bytes));
  EXPECT_EQ(r.body, protobufOf(batch_));  // as the collector decoded it
  EXPECT_LT(r.wire_bytes, r.body.size());
}

TEST_F(OtlpHttpExporterTest, SendsConfiguredHeadersAndDropsUnsafeOnes) {
  FakeCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector);
  config.headers = {{"api-key", "secret"},
                    {"X-Tenant", "team a"},
                    {"x-forged", "v\r\nInjected: 1"},
                    {"content-type", "text/plain"}};
  makeExporter(config);

  EXPECT_EQ(exportBatch().status, Status::kSuccess);

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].header("api-key"), "secret");
  EXPECT_EQ(requests[0].header("x-tenant"), "team a");
  EXPECT_EQ(requests[0].headers.count("x-forged"), 0u);
  EXPECT_EQ(requests[0].headers.count("injected"), 0u);
  EXPECT_EQ(requests[0].header("content-type"), "application/x-protobuf");
  EXPECT_TRUE(logs_.has("warn", {"x-forged"})) << logs_.all();
}

// ---- answers ----

TEST_F(OtlpHttpExporterTest, Retries503ThenSucceeds) {
  FakeCollector collector(R"([{"status": 503}, {"status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess) << outcome.message;
  expectRequests({.success = 1, .retryable = 1});

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].body, requests[1].body);
  EXPECT_EQ(requests[1].connection, requests[0].connection);  // a 503 keeps the connection
}

TEST_F(OtlpHttpExporterTest, WaitsForRetryAfterOn429) {
  FakeCollector collector(R"([{"status": 429, "retry_after": "1"}, {"status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 1, .retryable = 1});

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 2u);
  // Retry-After: 1 rather than the 50 ms backoff (a lower bound only).
  EXPECT_GE(requests[1].time - requests[0].time, 0.95);
}

TEST_F(OtlpHttpExporterTest, DoesNotRetry400) {
  FakeCollector collector(R"([{"status": 400, "body": "bad\nrequest"}, {"status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kNonRetryable);
  expectRequests({.non_retryable = 1});
  EXPECT_EQ(collector.requests().size(), 1u);
  // The status and a sanitized excerpt of the body, on one line.
  EXPECT_TRUE(logs_.has("error", {"400", "bad.request"})) << logs_.all();
}

TEST_F(OtlpHttpExporterTest, ACollectorRefusingEveryBatchIsLoggedOncePerInterval) {
  FakeCollector collector(R"([{"status": 400, "body": "bad request"}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  for (int i = 0; i < 5; ++i) EXPECT_EQ(exportBatch().status, Status::kNonRetryable);
  // Every batch counted, one line written (the next is due 10 s later).
  expectRequests({.non_retryable = 5});
  EXPECT_EQ(logs_.count("error", {"400", "bad request"}), 1u) << logs_.all();
}

TEST_F(OtlpHttpExporterTest, LogsTheMessageOfAProtobufErrorStatus) {
  FakeCollector collector(R"([{"status": 401, "rpc_message": "missing api key"}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  EXPECT_EQ(exportBatch().status, Status::kNonRetryable);
  expectRequests({.non_retryable = 1});
  EXPECT_TRUE(logs_.has("error", {"401", ": missing api key"})) << logs_.all();
}

TEST_F(OtlpHttpExporterTest, ReportsProtobufPartialSuccess) {
  FakeCollector collector(R"([{"partial": {"rejected": 3, "message": "too old"}}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess);
  EXPECT_EQ(outcome.rejected_spans, 3u);
  EXPECT_EQ(outcome.message, "too old");
  expectRequests({.partial = 1});
  EXPECT_EQ(collector.requests().size(), 1u);  // a partial success is never retried
  EXPECT_TRUE(logs_.has("warn", {"rejected 3", "too old"})) << logs_.all();
}

TEST_F(OtlpHttpExporterTest, ReportsJsonPartialSuccess) {
  FakeCollector collector(R"([{"partial": {"rejected": 2, "message": "bad span"}}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector);
  config.protocol = OtlpProtocol::kHttpJson;
  makeExporter(config);

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess);
  EXPECT_EQ(outcome.rejected_spans, 2u);
  EXPECT_EQ(outcome.message, "bad span");
  expectRequests({.partial = 1});
  EXPECT_EQ(collector.requests().size(), 1u);
}

// A 2xx whose partial success cannot be read is a success: what the parser read before it
// failed (here rejected_spans 3) rejects nothing.
class UnreadablePartialSuccess : public OtlpHttpExporterTest,
                                 public ::testing::WithParamInterface<OtlpProtocol> {};

TEST_P(UnreadablePartialSuccess, RejectsNothing) {
  const bool json = GetParam() == OtlpProtocol::kHttpJson;
  // After the answer: a broken varint, or " garbage".
  FakeCollector collector(
      json ? R"([{"partial": {"rejected": 3, "message": "x"}, "trailing": "2067617262616765"}])"
           : R"([{"partial": {"rejected": 3, "message": "x"}, "trailing": "ff"}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector);
  config.protocol = GetParam();
  makeExporter(config);

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess);
  EXPECT_EQ(outcome.rejected_spans, 0u);
  EXPECT_EQ(outcome.message, "");
  expectRequests({.success = 1});
  EXPECT_TRUE(logs_.has("warn", {"could not be read"})) << logs_.all();
  EXPECT_FALSE(logs_.has("warn", {"rejected"})) << logs_.all();
}

INSTANTIATE_TEST_SUITE_P(Encodings, UnreadablePartialSuccess,
                         ::testing::Values(OtlpProtocol::kHttpProtobuf, OtlpProtocol::kHttpJson));

TEST_F(OtlpHttpExporterTest, GivesUpOnAnAnswerPastTheTimeout) {
  FakeCollector collector(R"([{"delay_ms": 3000, "status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  OtlpConfig config = configFor(collector);
  config.timeout = 800ms;
  makeExporter(config);

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kRetryExhausted);
  expectRequests({.timeout = 1});
  EXPECT_EQ(collector.requests().size(), 1u);
  EXPECT_TRUE(logs_.has("error", {"timed out"})) << logs_.all();
}

TEST_F(OtlpHttpExporterTest, BatchProcessorDeadlineWinsOverALongerTimeout) {
  FakeCollector collector(R"([{"delay_ms": 3000, "status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));  // 2.5 s

  const ExportOutcome outcome = exportBatch(300ms);
  EXPECT_EQ(outcome.status, Status::kRetryExhausted);
  expectRequests({.timeout = 1});
}

TEST_F(OtlpHttpExporterTest, RetriesAfterAResetConnection) {
  FakeCollector collector(R"([{"reset": true}, {"status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kSuccess) << outcome.message;
  expectRequests({.success = 1, .retryable = 1});

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].connection, 1);
  EXPECT_EQ(requests[1].connection, 2);
  EXPECT_EQ(requests[0].body, requests[1].body);
}

TEST_F(OtlpHttpExporterTest, OpensANewConnectionAfterConnectionClose) {
  FakeCollector collector(R"([{"close": true, "status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 2});  // no failed attempt on the closed connection

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].connection, 1);
  EXPECT_EQ(requests[1].connection, 2);
}

TEST_F(OtlpHttpExporterTest, ReplacesAConnectionTheCollectorClosedWhileIdle) {
  FakeCollector collector(R"([{"hangup": true, "status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  runLoopFor(1000ms);  // the collector's FIN arrives while the connection is idle
  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 2});  // seen closed before use: no failed attempt

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].connection, 1);
  EXPECT_EQ(requests[1].connection, 2);
}

TEST_F(OtlpHttpExporterTest, RetriesWhenAReusedConnectionTurnsOutClosed) {
  FakeCollector collector(R"([{"status": 200}, {"reset": true}, {"status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  const ExportOutcome second = exportBatch();
  EXPECT_EQ(second.status, Status::kSuccess) << second.message;
  expectRequests({.success = 2, .retryable = 1});

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].connection, 1);
  EXPECT_EQ(requests[1].connection, 1);
  EXPECT_EQ(requests[2].connection, 2);
  EXPECT_EQ(requests[1].body, requests[2].body);
}

// The body is written from the exporter's own buffer, which the next batch overwrites: a
// connection answered while that write is still going is closed, not reused.
TEST_F(OtlpHttpExporterTest, ClosesAConnectionAnsweredBeforeItsBodyWasWritten) {
  FakeCollector collector(R"([{"early_ms": 500, "status": 200}, {"status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));
  // 8 MiB: more than the socket buffers take while the collector is not reading.
  SpanRecord big = testing::realisticServerSpan();
  big.attributes.setStaticString("test.padding", std::string(8 << 20, 'p'));
  useSpans({std::move(big)});
  const std::string first_body = protobufOf(batch_);

  const ExportOutcome early = exportBatch();
  EXPECT_EQ(early.status, Status::kSuccess) << early.message;
  useSpans({testing::realisticServerSpan(), testing::rootSpan()});
  const ExportOutcome next = exportBatch();
  EXPECT_EQ(next.status, Status::kSuccess) << next.message;
  expectRequests({.success = 2});

  std::vector<RecordedRequest> requests;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while ((requests = collector.requests()).size() < 2 &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(requests.size(), 2u) << collector.log();
  EXPECT_EQ(requests[0].connection, 1);
  EXPECT_LT(requests[0].wire_bytes, std::stoull(requests[0].header("content-length")));
  // What did arrive of the first body is that body: nothing of the next batch, which was
  // encoded into the same buffer, went out on the first connection.
  EXPECT_TRUE(first_body.starts_with(requests[0].body))
      << requests[0].body.size() << " bytes received";
  EXPECT_EQ(requests[1].connection, 2);
  EXPECT_EQ(requests[1].wire_bytes, std::stoull(requests[1].header("content-length")));
  EXPECT_EQ(requests[1].body, protobufOf(batch_));
}

TEST_F(OtlpHttpExporterTest, AnswersWithoutARequestWhenNoTimeIsLeft) {
  FakeCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  EXPECT_EQ(exportBatch(0ms).status, Status::kRetryExhausted);
  expectRequests({});
  EXPECT_EQ(collector.requests().size(), 0u);
}

TEST_F(OtlpHttpExporterTest, KeepsOneConnectionAcrossBatches) {
  FakeCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  EXPECT_EQ(exportBatch().status, Status::kSuccess);
  expectRequests({.success = 3});

  const std::vector<RecordedRequest> requests = collector.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const RecordedRequest& r : requests) EXPECT_EQ(r.connection, 1);
}

TEST_F(OtlpHttpExporterTest, RetriesARefusedConnectionUntilTheDeadline) {
  RefusingPort refusing;
  ASSERT_NE(refusing.port(), 0);
  OtlpConfig config;
  config.endpoint = {"http", "127.0.0.1", refusing.port(), "/v1/traces"};
  config.timeout = 600ms;
  makeExporter(config);

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kRetryExhausted);
  EXPECT_GE(counters_.requestCount(Result::kRetryableFailure), 2u);
  EXPECT_EQ(counters_.requestCount(Result::kSuccess), 0u);
  EXPECT_EQ(counters_.requestCount(Result::kNonRetryableFailure), 0u);
  EXPECT_TRUE(logs_.has("error", {"connection refused"})) << logs_.all();
}

TEST_F(OtlpHttpExporterTest, RetriesAnUnresolvableHost) {
  OtlpConfig config;
  config.endpoint = {"http", "collector.invalid", 4318, "/v1/traces"};
  config.timeout = 400ms;
  makeExporter(config);

  const ExportOutcome outcome = exportBatch();
  EXPECT_EQ(outcome.status, Status::kRetryExhausted);
  EXPECT_GE(counters_.requestCount(Result::kRetryableFailure) +
                counters_.requestCount(Result::kTimeout),
            1u);
  EXPECT_EQ(counters_.requestCount(Result::kSuccess), 0u);
}

// ---- shutdown ----

TEST_F(OtlpHttpExporterTest, ShutdownAnswersTheExportInFlightFirst) {
  FakeCollector collector(R"([{"delay_ms": 3000, "status": 200}])");
  ASSERT_NE(collector.port(), 0) << collector.log();
  makeExporter(configFor(collector));

  std::vector<std::string> events;
  uv_update_time(&loop_);
  exporter_->exportBatch(batch_, uv_now(&loop_) + 20000, [&](ExportOutcome outcome) {
    events.push_back(outcome.status == Status::kRetryExhausted ? "export: retry exhausted"
                                                               : "export: other");
  });
  // Until the collector holds the request.
  const auto give_up = std::chrono::steady_clock::now() + kLongWait;
  while (collector.requests().empty() && std::chrono::steady_clock::now() < give_up) {
    uv_run(&loop_, UV_RUN_NOWAIT);
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(collector.requests().size(), 1u);

  bool shut_down = false;
  exporter_->shutdown([&] {
    events.push_back("shutdown");
    shut_down = true;
  });
  while (!shut_down && std::chrono::steady_clock::now() < give_up) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(events, (std::vector<std::string>{"export: retry exhausted", "shutdown"}));
  exporter_.reset();
}

TEST_F(OtlpHttpExporterTest, ShutsDownWithNothingExported) {
  OtlpConfig config;
  config.endpoint = {"http", "127.0.0.1", 4318, "/v1/traces"};
  makeExporter(config);
  shutdownExporter();
  expectRequests({});
}

}  // namespace
}  // namespace tracecar::exporter
