#include "proxy/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "exporter/exporter_counters.h"
#include "propagation/context.h"

// Counts heap allocations: this is the only file of this test program that includes it.
#include "support/counting_allocator.h"

namespace tracecar::proxy {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using ::testing::HasSubstr;
using LabelPairs = std::vector<std::pair<std::string, std::string>>;

constexpr uint64_t kMs = 1000000;

const MetricFamily* findFamily(const std::vector<MetricFamily>& families, std::string_view name) {
  for (const MetricFamily& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool sameLabels(const ClientMetric& metric, const LabelPairs& labels) {
  if (metric.label.size() != labels.size()) return false;
  for (const auto& [name, value] : labels) {
    bool found = false;
    for (const auto& label : metric.label) found |= label.name == name && label.value == value;
    if (!found) return false;
  }
  return true;
}

// The sample of the family with exactly these labels; null when absent.
const ClientMetric* findSample(const std::vector<MetricFamily>& families, std::string_view name,
                               const LabelPairs& labels) {
  const MetricFamily* family = findFamily(families, name);
  if (family == nullptr) return nullptr;
  for (const ClientMetric& metric : family->metric) {
    if (sameLabels(metric, labels)) return &metric;
  }
  return nullptr;
}

double counterValue(const std::vector<MetricFamily>& families, std::string_view name,
                    const LabelPairs& labels) {
  const ClientMetric* metric = findSample(families, name, labels);
  return metric == nullptr ? -1 : metric->counter.value;
}

// Cumulative count of the bucket whose upper bound is le.
uint64_t bucketCount(const ClientMetric& metric, double le) {
  for (const auto& bucket : metric.histogram.bucket) {
    if (bucket.upper_bound == le) return bucket.cumulative_count;
  }
  ADD_FAILURE() << "no bucket le=" << le;
  return 0;
}

constexpr std::string_view kServer = "http_server_request_duration_seconds";
constexpr std::string_view kClient = "http_client_request_duration_seconds";

TEST(WorkerMetrics, RecordsServerRequestWithSemconvLabels) {
  ProxyMetrics metrics;
  WorkerMetrics& shard = metrics.addShard();
  shard.recordRequest(HttpRole::kServer, {"GET", "/users/{id}", 200, ""}, 30 * kMs);
  shard.recordRequest(HttpRole::kServer, {"GET", "/users/{id}", 200, ""}, 70 * kMs);

  const auto families = metrics.Collect();
  const MetricFamily* family = findFamily(families, kServer);
  ASSERT_NE(family, nullptr);
  EXPECT_EQ(family->type, MetricType::Histogram);
  EXPECT_FALSE(family->help.empty());
  const ClientMetric* metric = findSample(families, kServer,
                                          {{"http_request_method", "GET"},
                                           {"http_route", "/users/{id}"},
                                           {"http_response_status_code", "200"}});
  ASSERT_NE(metric, nullptr);
  EXPECT_EQ(metric->histogram.sample_count, 2u);
  EXPECT_DOUBLE_EQ(metric->histogram.sample_sum, 0.1);
  ASSERT_EQ(metric->histogram.bucket.size(), WorkerMetrics::kDurationBounds.size() + 1);
  EXPECT_EQ(bucketCount(*metric, 0.025), 0u);
  EXPECT_EQ(bucketCount(*metric, 0.05), 1u);
  EXPECT_EQ(bucketCount(*metric, 0.075), 2u);
  EXPECT_EQ(bucketCount(*metric, std::numeric_limits<double>::infinity()), 2u);
  // The client histogram is there, empty.
  const MetricFamily* client = findFamily(families, kClient);
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->metric.empty());
}

// The shard remembers the series it found last; runs, alternations and a caller that rewrites
// its route buffer between calls still land each request in its own series.
TEST(WorkerMetrics, RunsAndAlternationsOfLabelSetsEachLandInTheirOwnSeries) {
  ProxyMetrics metrics;
  WorkerMetrics& shard = metrics.addShard();
  std::string route = "/users/{id}";
  shard.recordRequest(HttpRole::kServer, {"GET", route, 200, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"GET", route, 200, ""}, kMs);
  route = "/users/{ie}";  // same size, last byte changed, same buffer
  shard.recordRequest(HttpRole::kServer, {"GET", route, 200, ""}, kMs);
  route = "/users/{id}";
  shard.recordRequest(HttpRole::kServer, {"GET", route, 200, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"GET", route, 404, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"PUT", route, 404, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"PUT", route, 404, "timeout"}, kMs);
  shard.recordRequest(HttpRole::kClient, {"PUT", route, 404, "timeout"}, kMs);
  shard.recordRequest(HttpRole::kServer, {"GET", route, 200, ""}, kMs);

  const auto families = metrics.Collect();
  // Samples in the series of these labels; -1 when there is none.
  const auto count = [&](std::string_view family, std::string method, std::string status,
                         std::string route_label, std::string error_type = "") -> int64_t {
    LabelPairs labels = {{"http_request_method", std::move(method)},
                         {"http_route", std::move(route_label)},
                         {"http_response_status_code", std::move(status)}};
    if (!error_type.empty()) labels.emplace_back("error_type", std::move(error_type));
    const ClientMetric* metric = findSample(families, family, labels);
    return metric == nullptr ? -1 : static_cast<int64_t>(metric->histogram.sample_count);
  };
  EXPECT_EQ(count(kServer, "GET", "200", "/users/{id}"), 4);
  EXPECT_EQ(count(kServer, "GET", "200", "/users/{ie}"), 1);
  EXPECT_EQ(count(kServer, "GET", "404", "/users/{id}"), 1);
  EXPECT_EQ(count(kServer, "PUT", "404", "/users/{id}"), 1);
  EXPECT_EQ(count(kServer, "PUT", "404", "/users/{id}", "timeout"), 1);
  EXPECT_EQ(count(kClient, "PUT", "404", "/users/{id}", "timeout"), 1);
}

TEST(WorkerMetrics, ClientRequestsWithErrorTypeAreTheirOwnSeries) {
  ProxyMetrics metrics;
  WorkerMetrics& shard = metrics.addShard();
  shard.recordRequest(HttpRole::kClient, {"POST", "/orders", 502, "connection_refused"}, kMs);
  shard.recordRequest(HttpRole::kClient, {"POST", "/orders", 502, ""}, kMs);
  const auto families = metrics.Collect();
  EXPECT_NE(findSample(families, kClient,
                       {{"http_request_method", "POST"},
                        {"http_route", "/orders"},
                        {"http_response_status_code", "502"},
                        {"error_type", "connection_refused"}}),
            nullptr);
  EXPECT_NE(findSample(families, kClient,
                       {{"http_request_method", "POST"},
                        {"http_route", "/orders"},
                        {"http_response_status_code", "502"}}),
            nullptr);
  EXPECT_TRUE(findFamily(families, kServer)->metric.empty());
}

TEST(WorkerMetrics, UnknownMethodsBecomeOther) {
  const semconv::KnownMethods defaults;
  EXPECT_EQ(httpMethodLabel("GET", defaults), "GET");
  EXPECT_EQ(httpMethodLabel("PATCH", defaults), "PATCH");
  EXPECT_EQ(httpMethodLabel("get", defaults), "_OTHER");  // methods are case-sensitive
  EXPECT_EQ(httpMethodLabel("PURGE", defaults), "_OTHER");
  EXPECT_EQ(httpMethodLabel("", defaults), "_OTHER");

  ProxyMetrics metrics;
  WorkerMetrics& shard = metrics.addShard();
  shard.recordRequest(HttpRole::kServer, {"PURGE", "/x", 204, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"FOO", "/x", 204, ""}, kMs);
  const auto families = metrics.Collect();
  const ClientMetric* metric = findSample(families, kServer,
                                          {{"http_request_method", "_OTHER"},
                                           {"http_route", "/x"},
                                           {"http_response_status_code", "204"}});
  ASSERT_NE(metric, nullptr);
  EXPECT_EQ(metric->histogram.sample_count, 2u);
}

// tracing.known_methods replaces the default list for the method label as for the spans: a
// listed method is its own label value, and a default one left out of the list is _OTHER.
TEST(WorkerMetrics, KnownMethodsOverrideTheDefaultList) {
  const absl::StatusOr<semconv::KnownMethods> known = semconv::KnownMethods::parse("GET,PURGE");
  ASSERT_TRUE(known.ok());
  EXPECT_EQ(httpMethodLabel("PURGE", *known), "PURGE");
  EXPECT_EQ(httpMethodLabel("POST", *known), "_OTHER");
  // The label views the list, never the request's text.
  std::string method = "PURGE";
  EXPECT_EQ(httpMethodLabel(method, *known).data(), known->methods()[1].data());

  ProxyMetrics metrics;
  metrics.setKnownMethods(*known);
  WorkerMetrics& shard = metrics.addShard();
  shard.recordRequest(HttpRole::kServer, {method, "/x", 200, ""}, kMs);
  method = "PURGX";  // the caller's buffer changes: the series keeps its label
  shard.recordRequest(HttpRole::kServer, {"PURGE", "/x", 200, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"POST", "/x", 200, ""}, kMs);
  shard.recordRequest(HttpRole::kClient, {"GET", "/x", 200, ""}, kMs);
  const auto families = metrics.Collect();
  const LabelPairs purge{{"http_request_method", "PURGE"},
                         {"http_route", "/x"},
                         {"http_response_status_code", "200"}};
  const ClientMetric* metric = findSample(families, kServer, purge);
  ASSERT_NE(metric, nullptr);
  EXPECT_EQ(metric->histogram.sample_count, 2u);
  metric = findSample(families, kServer,
                      {{"http_request_method", "_OTHER"},
                       {"http_route", "/x"},
                       {"http_response_status_code", "200"}});
  ASSERT_NE(metric, nullptr);
  EXPECT_EQ(metric->histogram.sample_count, 1u);
  EXPECT_NE(findSample(families, kClient,
                       {{"http_request_method", "GET"},
                        {"http_route", "/x"},
                        {"http_response_status_code", "200"}}),
            nullptr);

  // A shard's list is fixed when it is made: setting another later never changes it under a
  // worker.
  ProxyMetrics defaults;
  WorkerMetrics& early = defaults.addShard();
  defaults.setKnownMethods(*known);
  early.recordRequest(HttpRole::kServer, {"PURGE", "/x", 200, ""}, kMs);
  EXPECT_NE(findSample(defaults.Collect(), kServer,
                       {{"http_request_method", "_OTHER"},
                        {"http_route", "/x"},
                        {"http_response_status_code", "200"}}),
            nullptr);
}

TEST(WorkerMetrics, EmptyRouteAndStatusOutsideRangeAreLeftOut) {
  ProxyMetrics metrics;
  WorkerMetrics& shard = metrics.addShard();
  shard.recordRequest(HttpRole::kServer, {"GET", "", 0, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"GET", "", 600, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"GET", "", 99, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"GET", "", 100, ""}, kMs);
  shard.recordRequest(HttpRole::kServer, {"GET", "", 599, ""}, kMs);
  const auto families = metrics.Collect();
  const ClientMetric* none = findSample(families, kServer, {{"http_request_method", "GET"}});
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(none->histogram.sample_count, 3u);
  EXPECT_NE(findSample(families, kServer,
                       {{"http_request_method", "GET"}, {"http_response_status_code", "100"}}),
            nullptr);
  EXPECT_NE(findSample(families, kServer,
                       {{"http_request_method", "GET"}, {"http_response_status_code", "599"}}),
            nullptr);
}

// A duration exactly at a bound counts in that bucket (le is inclusive); a nanosecond more
// counts in the next one.
TEST(WorkerMetrics, HistogramBucketEdgesAtAndPastEachBound) {
  ProxyMetrics metrics;
  WorkerMetrics& shard = metrics.addShard();
  constexpr auto& kBounds = WorkerMetrics::kDurationBounds;
  auto ns = [](double seconds) { return static_cast<uint64_t>(std::llround(seconds * 1e9)); };
  for (size_t i = 0; i < kBounds.size(); ++i) {
    const std::string at = "/at/" + std::to_string(i);
    const std::string past = "/past/" + std::to_string(i);
    shard.recordRequest(HttpRole::kServer, {"GET", at, 200, ""}, ns(kBounds[i]));
    shard.recordRequest(HttpRole::kServer, {"GET", past, 200, ""}, ns(kBounds[i]) + 1);
  }
  shard.recordRequest(HttpRole::kServer, {"GET", "/zero", 200, ""}, 0);

  const auto families = metrics.Collect();
  const double inf = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < kBounds.size(); ++i) {
    SCOPED_TRACE("bound " + std::to_string(kBounds[i]));
    const ClientMetric* at = findSample(families, kServer,
                                        {{"http_request_method", "GET"},
                                         {"http_route", "/at/" + std::to_string(i)},
                                         {"http_response_status_code", "200"}});
    const ClientMetric* past = findSample(families, kServer,
                                          {{"http_request_method", "GET"},
                                           {"http_route", "/past/" + std::to_string(i)},
                                           {"http_response_status_code", "200"}});
    ASSERT_NE(at, nullptr);
    ASSERT_NE(past, nullptr);
    EXPECT_EQ(bucketCount(*at, kBounds[i]), 1u);
    if (i > 0) {
      EXPECT_EQ(bucketCount(*at, kBounds[i - 1]), 0u);
    }
    EXPECT_EQ(bucketCount(*past, kBounds[i]), 0u);
    EXPECT_EQ(bucketCount(*past, i + 1 < kBounds.size() ? kBounds[i + 1] : inf), 1u);
    EXPECT_NEAR(at->histogram.sample_sum, kBounds[i], 1e-12);
  }
  const ClientMetric* zero = findSample(families, kServer,
                                        {{"http_request_method", "GET"},
                                         {"http_route", "/zero"},
                                         {"http_response_status_code", "200"}});
  ASSERT_NE(zero, nullptr);
  EXPECT_EQ(bucketCount(*zero, kBounds[0]), 1u);
}

TEST(ProxyMetrics, ShardsMergeIntoOneSeriesPerLabelSet) {
  ProxyMetrics metrics;
  WorkerMetrics& a = metrics.addShard();
  WorkerMetrics& b = metrics.addShard();
  a.recordRequest(HttpRole::kServer, {"GET", "/a", 200, ""}, 1 * kMs);
  b.recordRequest(HttpRole::kServer, {"GET", "/a", 200, ""}, 2 * kMs);
  b.recordRequest(HttpRole::kServer, {"GET", "/a", 200, ""}, 300 * kMs);
  b.recordRequest(HttpRole::kServer, {"GET", "/b", 200, ""}, 1 * kMs);
  a.connectionOpened(Listener::kInbound);
  b.connectionOpened(Listener::kInbound);
  b.connectionOpened(Listener::kInbound);
  b.connectionClosed(Listener::kInbound);
  a.requestRejected(Listener::kInbound, RejectReason::kUriTooLong);
  b.requestRejected(Listener::kInbound, RejectReason::kUriTooLong);
  a.spanStarted(HttpRole::kServer, true);
  b.spanStarted(HttpRole::kServer, false);

  const auto families = metrics.Collect();
  EXPECT_EQ(findFamily(families, kServer)->metric.size(), 2u);
  const ClientMetric* merged = findSample(
      families, kServer,
      {{"http_request_method", "GET"}, {"http_route", "/a"}, {"http_response_status_code", "200"}});
  ASSERT_NE(merged, nullptr);
  EXPECT_EQ(merged->histogram.sample_count, 3u);
  EXPECT_EQ(bucketCount(*merged, 0.005), 2u);
  EXPECT_EQ(bucketCount(*merged, 0.25), 2u);
  EXPECT_EQ(bucketCount(*merged, 0.5), 3u);
  EXPECT_NEAR(merged->histogram.sample_sum, 0.303, 1e-12);

  const ClientMetric* open =
      findSample(families, "tracecar_connections_open", {{"listener", "inbound"}});
  ASSERT_NE(open, nullptr);
  EXPECT_EQ(open->gauge.value, 2);
  EXPECT_EQ(counterValue(families, "tracecar_connections_total", {{"listener", "inbound"}}), 3);
  EXPECT_EQ(counterValue(families, "tracecar_connections_total", {{"listener", "admin"}}), 0);
  EXPECT_EQ(counterValue(families, "tracecar_requests_rejected_total",
                         {{"listener", "inbound"}, {"reason", "414_uri_too_long"}}),
            2);
  EXPECT_EQ(counterValue(families, "tracecar_requests_rejected_total",
                         {{"listener", "outbound"}, {"reason", "414_uri_too_long"}}),
            0);
  EXPECT_EQ(counterValue(families, "tracecar_spans_started_total", {{"kind", "server"}}), 2);
  EXPECT_EQ(counterValue(families, "tracecar_spans_sampled_total", {{"kind", "server"}}), 1);
  EXPECT_EQ(counterValue(families, "tracecar_spans_started_total", {{"kind", "client"}}), 0);
}

// Every thread records into its own shard while scrapes run; once the writers are done, a
// scrape sees exactly what was recorded, and no scrape ever saw a count go down.
TEST(ProxyMetrics, ConcurrentRecordingThenScrapeSeesExactTotals) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 20000;
  const std::array<std::string_view, 3> routes{"/users/{id}", "/orders", "/files/{path...}"};
  ProxyMetrics metrics;
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::atomic<bool> went_down{false};

  std::thread scraper([&] {
    double last = 0;
    while (!done.load()) {
      const auto families = metrics.Collect();
      double total = 0;
      for (const ClientMetric& m : findFamily(families, kServer)->metric) {
        total += static_cast<double>(m.histogram.sample_count);
      }
      if (total < last) went_down = true;
      last = total;
      scrapes.fetch_add(1);
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&metrics, &routes, &scrapes] {
      WorkerMetrics& shard = metrics.addShard();
      while (scrapes.load() == 0) std::this_thread::yield();  // record while scrapes run
      for (int i = 0; i < kPerThread; ++i) {
        const std::string_view route = routes[static_cast<size_t>(i) % routes.size()];
        shard.connectionOpened(Listener::kOutbound);
        shard.recordRequest(HttpRole::kServer, {"GET", route, 200, ""},
                            static_cast<uint64_t>(i % 100) * kMs);
        shard.recordRequest(HttpRole::kClient, {"GET", route, 200, ""}, kMs);
        shard.spanStarted(HttpRole::kServer, i % 2 == 0);
        shard.requestRejected(Listener::kOutbound, RejectReason::kResponseTimeout);
        shard.connectionClosed(Listener::kOutbound);
      }
      shard.connectionOpened(Listener::kOutbound);  // one left open per thread
    });
  }
  for (auto& w : workers) w.join();
  while (scrapes.load() < 3) std::this_thread::yield();
  done = true;
  scraper.join();
  EXPECT_FALSE(went_down);

  const auto families = metrics.Collect();
  double server_total = 0;
  double server_sum = 0;
  const MetricFamily* server = findFamily(families, kServer);
  ASSERT_EQ(server->metric.size(), routes.size());
  for (const ClientMetric& m : server->metric) {
    server_total += static_cast<double>(m.histogram.sample_count);
    server_sum += m.histogram.sample_sum;
  }
  EXPECT_EQ(server_total, kThreads * kPerThread);
  // Each thread: sum over i of (i % 100) ms.
  const double per_thread_sum = (kPerThread / 100) * (99.0 * 100 / 2) / 1000;
  EXPECT_NEAR(server_sum, kThreads * per_thread_sum, 1e-6);
  const ClientMetric* client = findSample(families, kClient,
                                          {{"http_request_method", "GET"},
                                           {"http_route", "/orders"},
                                           {"http_response_status_code", "200"}});
  ASSERT_NE(client, nullptr);
  // i % 3 == 1 picks /orders: 6667 of every 20000.
  EXPECT_EQ(client->histogram.sample_count, static_cast<uint64_t>(kThreads * 6667));
  EXPECT_EQ(counterValue(families, "tracecar_connections_total", {{"listener", "outbound"}}),
            kThreads * (kPerThread + 1));
  EXPECT_EQ(
      findSample(families, "tracecar_connections_open", {{"listener", "outbound"}})->gauge.value,
      kThreads);
  EXPECT_EQ(counterValue(families, "tracecar_requests_rejected_total",
                         {{"listener", "outbound"}, {"reason", "504_response_timeout"}}),
            kThreads * kPerThread);
  EXPECT_EQ(counterValue(families, "tracecar_spans_started_total", {{"kind", "server"}}),
            kThreads * kPerThread);
  EXPECT_EQ(counterValue(families, "tracecar_spans_sampled_total", {{"kind", "server"}}),
            kThreads * kPerThread / 2);
}

TEST(ProxyMetrics, LabelValuesAreEscapedInTheTextFormat) {
  ProxyMetrics metrics;
  WorkerMetrics& shard = metrics.addShard();
  shard.recordRequest(HttpRole::kServer, {"GET", "/a\"b\\c\nd", 200, ""}, kMs);
  shard.recordRequest(HttpRole::kServer,
                      {"GET",
                       "/bad\xff"
                       "utf8",
                       200, "x\"y"},
                      kMs);
  const std::string text = prometheus::TextSerializer().Serialize(metrics.Collect());
  EXPECT_THAT(text, HasSubstr(R"(http_route="/a\"b\\c\nd")"));
  EXPECT_THAT(text, HasSubstr("http_route=\"/bad\xEF\xBF\xBDutf8\""));  // U+FFFD
  EXPECT_THAT(text, HasSubstr(R"(error_type="x\"y")"));
  EXPECT_THAT(text, HasSubstr("# TYPE http_server_request_duration_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("# TYPE tracecar_requests_rejected_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE tracecar_connections_open gauge"));
  EXPECT_THAT(text, HasSubstr("le=\"+Inf\""));
}

TEST(WorkerMetrics, SeriesPastTheCapFoldIntoOneOtherSeries) {
  ProxyMetrics metrics;
  WorkerMetrics& shard = metrics.addShard();
  constexpr size_t kExtra = 10;
  for (size_t i = 0; i < WorkerMetrics::kMaxSeriesPerRole + kExtra; ++i) {
    shard.recordRequest(HttpRole::kServer, {"GET", "/r/" + std::to_string(i), 200, ""}, kMs);
  }
  // A label set seen before the cap still has its own series.
  shard.recordRequest(HttpRole::kServer, {"GET", "/r/0", 200, ""}, kMs);
  const auto families = metrics.Collect();
  EXPECT_EQ(findFamily(families, kServer)->metric.size(), WorkerMetrics::kMaxSeriesPerRole + 1);
  const ClientMetric* other =
      findSample(families, kServer, {{"http_request_method", "_OTHER"}, {"http_route", "_OTHER"}});
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->histogram.sample_count, kExtra);
  const ClientMetric* first = findSample(families, kServer,
                                         {{"http_request_method", "GET"},
                                          {"http_route", "/r/0"},
                                          {"http_response_status_code", "200"}});
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->histogram.sample_count, 2u);
}

TEST(WorkerMetrics, ExtractReportCountsBaggageAndTracestateDrops) {
  ProxyMetrics metrics;
  WorkerMetrics& shard = metrics.addShard();
  propagation::ExtractReport report;
  report.baggage.dropped_invalid = 2;
  report.baggage.dropped_member_limit = 3;
  report.baggage.dropped_byte_limit = 4;
  report.tracestate = propagation::TraceStateStatus::kValid;
  report.tracestate_entries_truncated = 5;
  report.tracestate_entries_evicted = 1;
  shard.recordExtractReport(report);
  report = {};
  report.tracestate = propagation::TraceStateStatus::kDuplicateKey;
  shard.recordExtractReport(report);
  report.tracestate = propagation::TraceStateStatus::kNotParsed;  // traceparent invalid
  shard.recordExtractReport(report);

  const auto families = metrics.Collect();
  const auto baggage = [&](std::string reason) {
    return counterValue(families, "tracecar_baggage_members_dropped_total", {{"reason", reason}});
  };
  EXPECT_EQ(baggage("invalid"), 2);
  EXPECT_EQ(baggage("member_limit"), 3);
  EXPECT_EQ(baggage("byte_limit"), 4);
  EXPECT_EQ(counterValue(families, "tracecar_tracestate_members_dropped_total",
                         {{"reason", "length_limit"}}),
            5);
  EXPECT_EQ(counterValue(families, "tracecar_tracestate_members_dropped_total",
                         {{"reason", "member_limit"}}),
            1);
  EXPECT_EQ(
      counterValue(families, "tracecar_tracestate_discarded_total", {{"reason", "duplicate_key"}}),
      1);
  double discarded = 0;
  for (const auto& m : findFamily(families, "tracecar_tracestate_discarded_total")->metric) {
    discarded += m.counter.value;
  }
  EXPECT_EQ(discarded, 1);
}

TEST(ProxyMetrics, ExporterCountersAreReadAfterTheRefresh) {
  ProxyMetrics metrics;
  exporter::ExporterCounters counters;
  int refreshes = 0;
  metrics.setExporterCounters(&counters, [&] {
    ++refreshes;
    counters.spans_enqueued = 40;
    counters.queue_length = 7;
  });
  counters.spans_exported = 30;
  counters.spans_in_flight = 2;
  counters.drop(exporter::DropReason::kQueueFull, 3);
  counters.drop(exporter::DropReason::kRetryExhausted);
  counters.request(exporter::ExportRequestResult::kSuccess);
  counters.request(exporter::ExportRequestResult::kRetryableFailure);
  counters.observeLatency(20 * kMs);
  counters.observeLatency(20 * 1000 * kMs);  // past the last bound

  const auto families = metrics.Collect();
  EXPECT_EQ(refreshes, 1);
  EXPECT_EQ(counterValue(families, "tracecar_exporter_spans_enqueued_total", {}), 40);
  EXPECT_EQ(counterValue(families, "tracecar_exporter_spans_exported_total", {}), 30);
  EXPECT_EQ(
      counterValue(families, "tracecar_exporter_spans_dropped_total", {{"reason", "queue_full"}}),
      3);
  EXPECT_EQ(counterValue(families, "tracecar_exporter_spans_dropped_total",
                         {{"reason", "retry_exhausted"}}),
            1);
  EXPECT_EQ(
      counterValue(families, "tracecar_exporter_spans_dropped_total", {{"reason", "shutdown"}}), 0);
  EXPECT_EQ(counterValue(families, "tracecar_exporter_requests_total", {{"result", "success"}}), 1);
  EXPECT_EQ(
      counterValue(families, "tracecar_exporter_requests_total", {{"result", "retryable_failure"}}),
      1);
  const ClientMetric* queue = findSample(families, "tracecar_exporter_queue_length", {});
  ASSERT_NE(queue, nullptr);
  EXPECT_EQ(queue->gauge.value, 7);
  const ClientMetric* in_flight = findSample(families, "tracecar_exporter_spans_in_flight", {});
  ASSERT_NE(in_flight, nullptr);
  EXPECT_EQ(in_flight->gauge.value, 2);
  const ClientMetric* latency =
      findSample(families, "tracecar_exporter_export_duration_seconds", {});
  ASSERT_NE(latency, nullptr);
  EXPECT_EQ(latency->histogram.sample_count, 2u);
  EXPECT_EQ(bucketCount(*latency, 0.025), 1u);
  EXPECT_EQ(bucketCount(*latency, 10), 1u);
  EXPECT_EQ(bucketCount(*latency, std::numeric_limits<double>::infinity()), 2u);
  EXPECT_NEAR(latency->histogram.sample_sum, 20.02, 1e-9);
}

TEST(ProxyMetrics, WithoutExporterCountersNoExporterFamilies) {
  ProxyMetrics metrics;
  for (const MetricFamily& f : metrics.Collect()) {
    EXPECT_FALSE(f.name.starts_with("tracecar_exporter_")) << f.name;
  }
}

TEST(ProxyMetrics, NamesFollowPrometheusConventions) {
  ProxyMetrics metrics;
  exporter::ExporterCounters counters;
  metrics.setExporterCounters(&counters);
  for (const MetricFamily& f : metrics.Collect()) {
    SCOPED_TRACE(f.name);
    EXPECT_FALSE(f.help.empty());
    EXPECT_EQ(f.type == MetricType::Counter, f.name.ends_with("_total"));
    if (f.type == MetricType::Histogram) {
      EXPECT_TRUE(f.name.ends_with("_seconds"));
    }
  }
}

TEST(ProxyMetrics, SamplingDecisionsAreCountedBySamplerRuleAndDecision) {
  ProxyMetrics metrics;
  metrics.setSamplingLabels(
      SamplingLabels{"parentbased_traceidratio", {"parent", "default", "/healthz", "GET /a/*"}});
  WorkerMetrics& a = metrics.addShard();
  WorkerMetrics& b = metrics.addShard();
  a.samplingDecision(2, SamplingDecision::kDropped);
  b.samplingDecision(2, SamplingDecision::kDropped);
  a.samplingDecision(0, SamplingDecision::kSampled);
  b.samplingDecision(1, SamplingDecision::kRateLimited);
  a.samplingDecision(4, SamplingDecision::kSampled);  // past the table: ignored
  a.untrustedContextRestarted();
  b.untrustedContextRestarted();
  const std::vector<MetricFamily> families = metrics.Collect();
  const auto decisions = [&](std::string rule, std::string decision) {
    return counterValue(families, "tracecar_sampling_decisions_total",
                        {{"sampler", "parentbased_traceidratio"},
                         {"rule", std::move(rule)},
                         {"decision", std::move(decision)}});
  };
  EXPECT_EQ(decisions("/healthz", "dropped"), 2);
  EXPECT_EQ(decisions("parent", "sampled"), 1);
  EXPECT_EQ(decisions("default", "rate_limited"), 1);
  EXPECT_EQ(decisions("GET /a/*", "sampled"), 0);  // every series exists from the start
  EXPECT_EQ(findFamily(families, "tracecar_sampling_decisions_total")->metric.size(), 4u * 3u);
  EXPECT_EQ(counterValue(families, "tracecar_untrusted_context_restarts_total", {}), 2);
}

TEST(ProxyMetrics, DefaultSamplingLabelsAreTheDefaultSamplers) {
  ProxyMetrics metrics;
  metrics.addShard().samplingDecision(1, SamplingDecision::kSampled);
  EXPECT_EQ(counterValue(metrics.Collect(), "tracecar_sampling_decisions_total",
                         {{"sampler", "parentbased_always_on"},
                          {"rule", "default"},
                          {"decision", "sampled"}}),
            1);
}

double gaugeValue(const std::vector<MetricFamily>& families, std::string_view name) {
  const ClientMetric* metric = findSample(families, name, {});
  return metric == nullptr ? -1 : metric->gauge.value;
}

TEST(ProxyMetrics, FileDescriptorsOpenAndTheLimit) {
  ProxyMetrics metrics;
  const double before = gaugeValue(metrics.Collect(), "process_open_fds");
  ASSERT_GT(before, 2);  // at least standard input, output and error
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) fds.push_back(::dup(STDERR_FILENO));
  const auto families = metrics.Collect();
  EXPECT_EQ(gaugeValue(families, "process_open_fds"), before + 10);
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(gaugeValue(families, "process_max_fds"), static_cast<double>(limit.rlim_cur));
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(gaugeValue(metrics.Collect(), "process_open_fds"), before);
}

TEST(RejectReason, LabelsAndStatusCodesAreStable) {
  const std::vector<std::pair<std::string_view, int>> expected{{"431_header_too_large", 431},
                                                               {"431_too_many_headers", 431},
                                                               {"414_uri_too_long", 414},
                                                               {"400_bad_request", 400},
                                                               {"431_baggage", 431},
                                                               {"431_tracestate", 431},
                                                               {"408_header_timeout", 408},
                                                               {"502_refused", 502},
                                                               {"502_reset", 502},
                                                               {"502_bad_response", 502},
                                                               {"502_response_too_large", 502},
                                                               {"502_resolve_failed", 502},
                                                               {"502_tls_failed", 502},
                                                               {"503_connect_timeout", 503},
                                                               {"504_response_timeout", 504},
                                                               {"508_loop_detected", 508},
                                                               {"501_not_implemented", 501},
                                                               {"408_request_body_timeout", 408},
                                                               {"503_file_descriptors", 503}};
  ASSERT_EQ(expected.size(), static_cast<size_t>(RejectReason::kCount));
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto reason = static_cast<RejectReason>(i);
    EXPECT_EQ(rejectReasonLabel(reason), expected[i].first);
    EXPECT_EQ(rejectStatusCode(reason), expected[i].second);
    // The label starts with the status code.
    EXPECT_EQ(rejectReasonLabel(reason).substr(0, 3), std::to_string(expected[i].second));
  }
  EXPECT_EQ(listenerLabel(Listener::kInbound), "inbound");
  EXPECT_EQ(listenerLabel(Listener::kOutbound), "outbound");
  EXPECT_EQ(listenerLabel(Listener::kAdmin), "admin");
}

size_t allocationsDuring(auto&& f) {
  const size_t before = g_allocations.load();
  f();
  return g_allocations.load() - before;
}

TEST(WorkerMetrics, SteadyStateRecordingAllocatesNothing) {
  ProxyMetrics metrics;
  metrics.setKnownMethods(*semconv::KnownMethods::parse("GET,PURGE,BREW"));
  WorkerMetrics& shard = metrics.addShard();
  propagation::ExtractReport report;
  report.baggage.dropped_byte_limit = 1;
  report.tracestate = propagation::TraceStateStatus::kInvalidKey;
  // Routes arrive as views into request buffers, not as the strings the series were made with.
  std::string route = "/users/{id}";
  std::string error = "timeout";
  auto record = [&] {
    for (int i = 0; i < 1000; ++i) {
      shard.recordRequest(HttpRole::kServer, {"GET", route, 200, ""},
                          static_cast<uint64_t>(i) * kMs);
      shard.recordRequest(HttpRole::kClient, {"GET", route, 504, error}, kMs);
      shard.recordRequest(HttpRole::kServer, {"BREW", route, 418, ""}, kMs);
      shard.recordRequest(HttpRole::kServer, {"POST", route, 200, ""}, kMs);  // _OTHER
      shard.connectionOpened(Listener::kInbound);
      shard.requestRejected(Listener::kInbound, RejectReason::kBaggage);
      shard.recordExtractReport(report);
      shard.spanStarted(HttpRole::kClient, true);
      shard.samplingDecision(1, SamplingDecision::kRateLimited);
      shard.untrustedContextRestarted();
      shard.connectionClosed(Listener::kInbound);
    }
  };
  record();  // first use of each label set: allowed to allocate
  std::string other_route = route;
  route = other_route;  // same text, another buffer
  EXPECT_EQ(allocationsDuring(record), 0u);
  // The counter sees allocations at all.
  EXPECT_GT(allocationsDuring([&] {
              shard.recordRequest(HttpRole::kServer, {"GET", "/new", 200, ""}, kMs);
            }),
            0u);
}

}  // namespace
}  // namespace tracecar::proxy
