// End to end inside the process: BatchProcessor + OtlpHttpExporter on the processor's thread,
// against the fake collector.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "exporter/batch_processor.h"
#include "exporter/otlp_http_exporter.h"
#include "integration/support/exporter_fixture.h"

namespace tracecar::exporter {
namespace {

constexpr std::string_view kSpanIdField = "resource_spans.scope_spans.spans.span_id: \"";

std::unique_ptr<SpanRecord> numberedSpan(uint64_t n) {
  auto span = std::make_unique<SpanRecord>();
  span->trace_id = testing::traceIdFromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  span->span_id = SpanId::fromU64(n);
  span->name = "GET /items/{id}";
  span->kind = SpanKind::kServer;
  span->start_unix_nano = 1700000000000000000ULL + n;
  span->end_unix_nano = span->start_unix_nano + 1000;
  span->attributes.set("http.request.method", std::string("GET"));
  return span;
}

BatchProcessor::ExporterFactory otlpFactory(const OtlpConfig& config, ExporterCounters& counters) {
  return [config, &counters](uv_loop_t* loop) -> std::unique_ptr<SpanExporter> {
    OtlpHttpExporter::Options options;
    options.backoff.initial = 50ms;
    options.backoff.max = 200ms;
    options.seed = 7;
    auto created = OtlpHttpExporter::create(loop, config, testing::testResource(),
                                            tracecarScope("0.1.0"), counters, options);
    if (!created.ok()) throw std::runtime_error(std::string(created.status().message()));
    return std::move(*created);
  };
}

OtlpConfig configFor(uint16_t port) {
  OtlpConfig config;
  config.endpoint = {"http", "127.0.0.1", port, "/v1/traces"};
  config.timeout = 2000ms;
  return config;
}

TEST(BatchExportTest, DeliversEverySpanAcceptedBeforeShutdown) {
  integration::LogCapture logs;
  FakeCollector collector;
  ASSERT_NE(collector.port(), 0) << collector.log();
  ExporterCounters counters;
  BatchConfig batch_config;
  batch_config.max_queue_size = 2048;
  batch_config.max_export_batch_size = 200;
  batch_config.schedule_delay = 100ms;
  batch_config.export_timeout = 5000ms;

  constexpr uint64_t kSpans = 1000;
  {
    BatchProcessor processor(batch_config, otlpFactory(configFor(collector.port()), counters),
                             counters);
    for (uint64_t n = 1; n <= kSpans; ++n) ASSERT_TRUE(processor.onEnd(numberedSpan(n)));
    EXPECT_TRUE(processor.shutdown(20s));
  }

  EXPECT_EQ(counters.spans_enqueued.load(), kSpans);
  EXPECT_EQ(counters.spans_exported.load(), kSpans);
  for (size_t reason = 0; reason < static_cast<size_t>(DropReason::kCount); ++reason) {
    EXPECT_EQ(counters.spans_dropped[reason].load(), 0u) << "drop reason " << reason;
  }
  EXPECT_EQ(counters.requestCount(ExportRequestResult::kRetryableFailure), 0u);

  // Every span arrived exactly once, as the official schema reads the bodies.
  const std::vector<RecordedRequest> requests = collector.requests();
  EXPECT_EQ(counters.requestCount(ExportRequestResult::kSuccess), requests.size());
  std::multiset<std::string> span_ids;
  for (const RecordedRequest& request : requests) {
    const testing::ProtocResult decoded = testing::protocDecode(request.body);
    ASSERT_EQ(decoded.status, 0) << decoded.err;
    for (const std::string& line : testing::flattenTextFormat(decoded.out)) {
      if (line.rfind(kSpanIdField, 0) == 0) span_ids.insert(line.substr(kSpanIdField.size()));
    }
  }
  EXPECT_EQ(span_ids.size(), kSpans);
  EXPECT_EQ(std::set<std::string>(span_ids.begin(), span_ids.end()).size(), kSpans);
  for (const RecordedRequest& request : requests) EXPECT_EQ(request.connection, 1);
}

TEST(BatchExportTest, CountsWhatTheFullQueueRefusesWhileTheCollectorIsAway) {
  integration::LogCapture logs;
  RefusingPort refusing;
  ASSERT_NE(refusing.port(), 0);

  ExporterCounters counters;
  BatchConfig batch_config;
  batch_config.max_queue_size = 100;
  batch_config.max_export_batch_size = 50;
  batch_config.schedule_delay = 50ms;
  batch_config.export_timeout = 400ms;
  OtlpConfig config = configFor(refusing.port());
  config.timeout = 300ms;

  constexpr uint64_t kSpans = 1000;
  uint64_t accepted = 0;
  uint64_t refused = 0;
  {
    BatchProcessor processor(batch_config, otlpFactory(config, counters), counters);
    for (uint64_t n = 1; n <= kSpans; ++n) {
      if (processor.onEnd(numberedSpan(n))) {
        ++accepted;
      } else {
        ++refused;
      }
    }
    processor.shutdown(1500ms);
  }

  EXPECT_GE(accepted, batch_config.max_queue_size);
  EXPECT_GT(refused, 0u);
  EXPECT_EQ(counters.dropped(DropReason::kQueueFull), refused);
  EXPECT_EQ(counters.spans_enqueued.load(), accepted);
  EXPECT_EQ(counters.spans_exported.load(), 0u);
  // Every accepted span was answered: given up on after retries, or still queued at shutdown.
  EXPECT_EQ(counters.dropped(DropReason::kRetryExhausted) + counters.dropped(DropReason::kShutdown),
            accepted);
  EXPECT_EQ(counters.requestCount(ExportRequestResult::kSuccess), 0u);
  EXPECT_GE(counters.requestCount(ExportRequestResult::kRetryableFailure), 1u);
}

}  // namespace
}  // namespace tracecar::exporter
