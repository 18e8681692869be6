#include "proxy/metrics.h"

#include <prometheus/metric_type.h>

#include <algorithm>
#include <limits>
#include <map>
#include <new>

#include "exporter/exporter_counters.h"
#include "exporter/span.h"
#include "propagation/context.h"
#include "proxy/fd_limit.h"

namespace tracecar::proxy {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Label = ClientMetric::Label;
using Labels = std::vector<Label>;

// The single writer of a shard updates its counters without a read-modify-write instruction.
inline void bump(std::atomic<uint64_t>& counter, uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline uint64_t read(const std::atomic<uint64_t>& counter) noexcept {
  return counter.load(std::memory_order_relaxed);
}

// Bounds in nanoseconds, so that a duration exactly at a bound lands in that bucket.
constexpr auto kBoundsNs = [] {
  std::array<uint64_t, WorkerMetrics::kDurationBounds.size()> ns{};
  for (size_t i = 0; i < ns.size(); ++i) {
    ns[i] = static_cast<uint64_t>(WorkerMetrics::kDurationBounds[i] * 1e9 + 0.5);
  }
  return ns;
}();

size_t bucketIndex(uint64_t duration_ns) noexcept {
  size_t i = 0;
  while (i < kBoundsNs.size() && duration_ns > kBoundsNs[i]) ++i;
  return i;
}

// Label values must be UTF-8 in the text format; routes and error types come from peers.
std::string sanitizedUtf8(std::string_view text) {
  if (exporter::utf8::isValid(text)) return std::string(text);
  std::string out;
  exporter::utf8::forEachSanitizedRun(text, [&out](std::string_view run) { out.append(run); });
  return out;
}

constexpr std::string_view kOther = "_OTHER";

// The method list of shards not given one: RFC 9110's methods and PATCH.
const std::shared_ptr<const semconv::KnownMethods>& defaultKnownMethods() {
  static const std::shared_ptr<const semconv::KnownMethods> defaults =
      std::make_shared<const semconv::KnownMethods>();
  return defaults;
}

constexpr std::array<std::string_view, static_cast<size_t>(Listener::kCount)> kListenerLabels{
    "inbound", "outbound", "admin"};

constexpr std::array<std::string_view, static_cast<size_t>(RejectReason::kCount)> kRejectLabels{
    "431_header_too_large",
    "431_too_many_headers",
    "414_uri_too_long",
    "400_bad_request",
    "431_baggage",
    "431_tracestate",
    "408_header_timeout",
    "502_refused",
    "502_reset",
    "502_bad_response",
    "502_response_too_large",
    "502_resolve_failed",
    "502_tls_failed",
    "503_connect_timeout",
    "504_response_timeout",
    "508_loop_detected",
    "501_not_implemented",
    "408_request_body_timeout",
    "503_file_descriptors"};
constexpr std::array<int, static_cast<size_t>(RejectReason::kCount)> kRejectStatus{
    431, 431, 414, 400, 431, 431, 408, 502, 502, 502, 502, 502, 502, 503, 504, 508, 501, 408, 503};

constexpr std::array<std::string_view, static_cast<size_t>(BaggageDropReason::kCount)>
    kBaggageDropLabels{"invalid", "member_limit", "byte_limit", "untrusted"};

constexpr std::array<std::string_view, static_cast<size_t>(SamplingDecision::kCount)>
    kSamplingDecisionLabels{"sampled", "dropped", "rate_limited"};

constexpr std::array<std::string_view, static_cast<size_t>(TraceStateDiscardReason::kCount)>
    kTraceStateDiscardLabels{"too_many_members", "duplicate_key", "invalid_key", "invalid_value",
                             "invalid_member"};

constexpr std::array<std::string_view, static_cast<size_t>(HttpRole::kCount)> kRoleLabels{"server",
                                                                                          "client"};

constexpr std::array<std::string_view, static_cast<size_t>(exporter::DropReason::kCount)>
    kExportDropLabels{"queue_full", "rejected", "retry_exhausted", "non_retryable", "shutdown"};

constexpr std::array<std::string_view, static_cast<size_t>(exporter::ExportRequestResult::kCount)>
    kExportResultLabels{"success", "partial_success", "retryable_failure", "non_retryable_failure",
                        "timeout"};

template <class Enum, size_t N>
std::string_view labelOf(const std::array<std::string_view, N>& labels, Enum value) noexcept {
  const auto i = static_cast<size_t>(value);
  return i < N ? labels[i] : std::string_view("unknown");
}

// ---- building the scrape ----

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric sample(Labels labels, MetricType type, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Gauge) {
    m.gauge.value = value;
  } else {
    m.counter.value = value;
  }
  return m;
}

Labels oneLabel(std::string_view name, std::string_view value) {
  return {Label{std::string(name), std::string(value)}};
}

// A histogram sample from per-bucket (not cumulative) counts, the last one being +Inf.
template <size_t N>
ClientMetric histogramSample(Labels labels, const std::array<double, N - 1>& bounds,
                             const std::array<uint64_t, N>& counts, double sum) {
  ClientMetric m;
  m.label = std::move(labels);
  uint64_t cumulative = 0;
  m.histogram.bucket.reserve(N);
  for (size_t i = 0; i < N; ++i) {
    cumulative += counts[i];
    ClientMetric::Bucket bucket;
    bucket.cumulative_count = cumulative;
    bucket.upper_bound = i + 1 < N ? bounds[i] : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back(bucket);
  }
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = sum;
  return m;
}

}  // namespace

std::string_view listenerLabel(Listener listener) noexcept {
  return labelOf(kListenerLabels, listener);
}
std::string_view rejectReasonLabel(RejectReason reason) noexcept {
  return labelOf(kRejectLabels, reason);
}
int rejectStatusCode(RejectReason reason) noexcept {
  const auto i = static_cast<size_t>(reason);
  return i < kRejectStatus.size() ? kRejectStatus[i] : 500;
}
std::string_view samplingDecisionLabel(SamplingDecision decision) noexcept {
  return labelOf(kSamplingDecisionLabels, decision);
}
std::string_view baggageDropReasonLabel(BaggageDropReason reason) noexcept {
  return labelOf(kBaggageDropLabels, reason);
}
std::string_view traceStateDiscardReasonLabel(TraceStateDiscardReason reason) noexcept {
  return labelOf(kTraceStateDiscardLabels, reason);
}
std::string_view httpRoleLabel(HttpRole role) noexcept { return labelOf(kRoleLabels, role); }

std::string_view httpMethodLabel(std::string_view method,
                                 const semconv::KnownMethods& known) noexcept {
  return known.find(method).value_or(kOther);
}

// ---- WorkerMetrics ----

WorkerMetrics::WorkerMetrics(size_t sampling_rules,
                             std::shared_ptr<const semconv::KnownMethods> known_methods)
    : known_methods_(known_methods ? std::move(known_methods) : defaultKnownMethods()),
      sampling_rules_(std::max<size_t>(sampling_rules, 1)),
      sampling_decisions_(new std::atomic<uint64_t>[sampling_rules_ * kDecisions]()) {
  for (RoleSeries& role : series_) {
    role.overflow = std::make_unique<Series>();
    role.overflow->labels = {Label{"http_request_method", std::string(kOther)},
                             Label{"http_route", std::string(kOther)}};
  }
}

WorkerMetrics::~WorkerMetrics() = default;

void WorkerMetrics::publish(RoleSeries& role, Series* series) noexcept {
  series->next = role.head.load(std::memory_order_relaxed);
  role.head.store(series, std::memory_order_release);
}

WorkerMetrics::Series* WorkerMetrics::overflow(RoleSeries& role) noexcept {
  if (!role.overflow_published) {
    role.overflow_published = true;
    publish(role, role.overflow.get());
  }
  return role.overflow.get();
}

WorkerMetrics::Series* WorkerMetrics::findOrAdd(RoleSeries& role, const SeriesKey& key) noexcept {
  if (role.last != nullptr && role.last_key == key) return role.last;
  if (auto it = role.by_key.find(key); it != role.by_key.end()) {
    role.last = it->second.get();
    role.last_key = it->first;
    return role.last;
  }
  if (role.by_key.size() >= kMaxSeriesPerRole) return overflow(role);
  try {
    auto series = std::make_unique<Series>();
    series->route.assign(key.route);
    series->error_type.assign(key.error_type);
    series->labels.push_back(Label{"http_request_method", std::string(key.method)});
    if (!key.route.empty()) series->labels.push_back(Label{"http_route", sanitizedUtf8(key.route)});
    if (key.status_code >= 100 && key.status_code <= 599) {
      series->labels.push_back(Label{"http_response_status_code", std::to_string(key.status_code)});
    }
    if (!key.error_type.empty()) {
      series->labels.push_back(Label{"error_type", sanitizedUtf8(key.error_type)});
    }
    Series* raw = series.get();
    const SeriesKey stored{key.method, raw->route, key.status_code, raw->error_type};
    role.by_key.emplace(stored, std::move(series));
    publish(role, raw);
    role.last = raw;
    role.last_key = stored;
    return raw;
  } catch (const std::bad_alloc&) {
    return overflow(role);
  }
}

void WorkerMetrics::recordRequest(HttpRole role, const HttpRequestLabels& labels,
                                  uint64_t duration_ns) noexcept {
  const auto r = static_cast<size_t>(role);
  if (r >= kRoles) return;
  int status = labels.status_code;
  if (status < 100 || status > 599) status = 0;  // one key for every status left out
  const SeriesKey key{httpMethodLabel(labels.method, *known_methods_), labels.route, status,
                      labels.error_type};
  Series* series = findOrAdd(series_[r], key);
  bump(series->buckets[bucketIndex(duration_ns)]);
  bump(series->sum_ns, duration_ns);
}

void WorkerMetrics::connectionOpened(Listener listener) noexcept {
  const auto l = static_cast<size_t>(listener);
  if (l >= kListeners) return;
  auto& open = connections_open_[l];
  open.store(open.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  bump(connections_total_[l]);
}

void WorkerMetrics::connectionClosed(Listener listener) noexcept {
  const auto l = static_cast<size_t>(listener);
  if (l >= kListeners) return;
  auto& open = connections_open_[l];
  open.store(open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

void WorkerMetrics::requestRejected(Listener listener, RejectReason reason) noexcept {
  const auto l = static_cast<size_t>(listener);
  const auto r = static_cast<size_t>(reason);
  if (l < kListeners && r < kReasons) bump(rejected_[l][r]);
}

void WorkerMetrics::baggageMembersDropped(BaggageDropReason reason, uint64_t count) noexcept {
  const auto r = static_cast<size_t>(reason);
  if (r < baggage_dropped_.size() && count != 0) bump(baggage_dropped_[r], count);
}

void WorkerMetrics::traceStateMembersTruncated(uint64_t count) noexcept {
  if (count != 0) bump(tracestate_truncated_, count);
}

void WorkerMetrics::traceStateDiscarded(TraceStateDiscardReason reason) noexcept {
  const auto r = static_cast<size_t>(reason);
  if (r < tracestate_discarded_.size()) bump(tracestate_discarded_[r]);
}

void WorkerMetrics::recordExtractReport(const propagation::ExtractReport& report) noexcept {
  baggageMembersDropped(BaggageDropReason::kInvalid, report.baggage.dropped_invalid);
  baggageMembersDropped(BaggageDropReason::kMemberLimit, report.baggage.dropped_member_limit);
  baggageMembersDropped(BaggageDropReason::kByteLimit, report.baggage.dropped_byte_limit);
  traceStateMembersTruncated(report.tracestate_entries_truncated);
  if (report.tracestate_entries_evicted != 0) {
    bump(tracestate_evicted_, report.tracestate_entries_evicted);
  }
  using propagation::TraceStateStatus;
  switch (report.tracestate) {
    case TraceStateStatus::kTooManyMembers:
      traceStateDiscarded(TraceStateDiscardReason::kTooManyMembers);
      break;
    case TraceStateStatus::kDuplicateKey:
      traceStateDiscarded(TraceStateDiscardReason::kDuplicateKey);
      break;
    case TraceStateStatus::kInvalidKey:
      traceStateDiscarded(TraceStateDiscardReason::kInvalidKey);
      break;
    case TraceStateStatus::kInvalidValue:
      traceStateDiscarded(TraceStateDiscardReason::kInvalidValue);
      break;
    case TraceStateStatus::kInvalidMember:
      traceStateDiscarded(TraceStateDiscardReason::kInvalidMember);
      break;
    // Kept, absent, or not looked at because the traceparent was invalid (the trace restarts).
    case TraceStateStatus::kValid:
    case TraceStateStatus::kEmpty:
    case TraceStateStatus::kNotParsed: break;
  }
}

void WorkerMetrics::samplingDecision(uint16_t rule, SamplingDecision decision) noexcept {
  const auto d = static_cast<size_t>(decision);
  if (rule < sampling_rules_ && d < kDecisions) bump(sampling_decisions_[rule * kDecisions + d]);
}

void WorkerMetrics::untrustedContextRestarted() noexcept { bump(untrusted_restarts_); }

void WorkerMetrics::spanStarted(HttpRole kind, bool sampled) noexcept {
  const auto k = static_cast<size_t>(kind);
  if (k >= kRoles) return;
  bump(spans_started_[k]);
  if (sampled) bump(spans_sampled_[k]);
}

// ---- ProxyMetrics ----

ProxyMetrics::ProxyMetrics() : known_methods_(defaultKnownMethods()) {}
ProxyMetrics::~ProxyMetrics() = default;

void ProxyMetrics::setSamplingLabels(SamplingLabels labels) {
  std::lock_guard lock(mutex_);
  sampling_labels_ = std::move(labels);
}

void ProxyMetrics::setKnownMethods(semconv::KnownMethods known) {
  auto shared = std::make_shared<const semconv::KnownMethods>(std::move(known));
  std::lock_guard lock(mutex_);
  known_methods_ = std::move(shared);
}

WorkerMetrics& ProxyMetrics::addShard() {
  std::lock_guard lock(mutex_);
  auto shard = std::make_unique<WorkerMetrics>(sampling_labels_.rules.size(), known_methods_);
  shards_.push_back(std::move(shard));
  return *shards_.back();
}

void ProxyMetrics::setExporterCounters(const exporter::ExporterCounters* counters,
                                       std::function<void()> refresh) {
  std::lock_guard lock(mutex_);
  exporter_ = counters;
  refresh_ = std::move(refresh);
}

std::vector<MetricFamily> ProxyMetrics::Collect() const {
  constexpr size_t kBuckets = WorkerMetrics::kBucketCount;
  constexpr size_t kListeners = WorkerMetrics::kListeners;
  constexpr size_t kReasons = WorkerMetrics::kReasons;
  constexpr size_t kRoles = WorkerMetrics::kRoles;

  struct HistogramTotals {
    std::array<uint64_t, kBuckets> buckets{};
    uint64_t sum_ns = 0;
  };
  std::array<std::map<Labels, HistogramTotals>, kRoles> histograms;
  std::array<int64_t, kListeners> open{};
  std::array<uint64_t, kListeners> total{};
  std::array<std::array<uint64_t, kReasons>, kListeners> rejected{};
  std::array<uint64_t, kBaggageDropLabels.size()> baggage{};
  uint64_t truncated = 0;
  uint64_t evicted = 0;
  std::array<uint64_t, kTraceStateDiscardLabels.size()> discarded{};
  std::array<uint64_t, kRoles> started{};
  std::array<uint64_t, kRoles> sampled{};
  constexpr size_t kDecisions = WorkerMetrics::kDecisions;
  SamplingLabels sampling_labels;
  std::vector<uint64_t> decisions;
  uint64_t untrusted_restarts = 0;
  const exporter::ExporterCounters* exporter = nullptr;
  std::function<void()> refresh;

  {
    std::lock_guard lock(mutex_);
    exporter = exporter_;
    refresh = refresh_;
    sampling_labels = sampling_labels_;
    decisions.assign(sampling_labels.rules.size() * kDecisions, 0);
    for (const auto& shard : shards_) {
      const size_t cells = std::min(decisions.size(), shard->sampling_rules_ * kDecisions);
      for (size_t i = 0; i < cells; ++i) decisions[i] += read(shard->sampling_decisions_[i]);
      untrusted_restarts += read(shard->untrusted_restarts_);
      for (size_t r = 0; r < kRoles; ++r) {
        const auto* series = shard->series_[r].head.load(std::memory_order_acquire);
        for (; series != nullptr; series = series->next) {
          HistogramTotals& totals = histograms[r][series->labels];
          for (size_t b = 0; b < kBuckets; ++b) totals.buckets[b] += read(series->buckets[b]);
          totals.sum_ns += read(series->sum_ns);
        }
        started[r] += read(shard->spans_started_[r]);
        sampled[r] += read(shard->spans_sampled_[r]);
      }
      for (size_t l = 0; l < kListeners; ++l) {
        open[l] += shard->connections_open_[l].load(std::memory_order_relaxed);
        total[l] += read(shard->connections_total_[l]);
        for (size_t k = 0; k < kReasons; ++k) rejected[l][k] += read(shard->rejected_[l][k]);
      }
      for (size_t i = 0; i < baggage.size(); ++i) baggage[i] += read(shard->baggage_dropped_[i]);
      truncated += read(shard->tracestate_truncated_);
      evicted += read(shard->tracestate_evicted_);
      for (size_t i = 0; i < discarded.size(); ++i) {
        discarded[i] += read(shard->tracestate_discarded_[i]);
      }
    }
  }

  std::vector<MetricFamily> out;
  out.reserve(16);

  static constexpr std::array<std::string_view, kRoles> kDurationNames{
      "http_server_request_duration_seconds", "http_client_request_duration_seconds"};
  static constexpr std::array<std::string_view, kRoles> kDurationHelp{
      "Duration of HTTP server requests (received on the inbound listener).",
      "Duration of HTTP client requests (sent by tracecar to an upstream)."};
  for (size_t r = 0; r < kRoles; ++r) {
    MetricFamily f = family(std::string(kDurationNames[r]), std::string(kDurationHelp[r]),
                            MetricType::Histogram);
    for (const auto& [labels, totals] : histograms[r]) {
      f.metric.push_back(histogramSample(labels, WorkerMetrics::kDurationBounds, totals.buckets,
                                         static_cast<double>(totals.sum_ns) / 1e9));
    }
    out.push_back(std::move(f));
  }

  {
    MetricFamily f =
        family("tracecar_connections_open", "Downstream connections currently open, by listener.",
               MetricType::Gauge);
    for (size_t l = 0; l < kListeners; ++l) {
      f.metric.push_back(sample(oneLabel("listener", kListenerLabels[l]), MetricType::Gauge,
                                static_cast<double>(open[l])));
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("tracecar_connections_total",
                            "Downstream connections accepted, by listener.", MetricType::Counter);
    for (size_t l = 0; l < kListeners; ++l) {
      f.metric.push_back(sample(oneLabel("listener", kListenerLabels[l]), MetricType::Counter,
                                static_cast<double>(total[l])));
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("tracecar_requests_rejected_total",
                            "Requests answered by tracecar with an error instead of by the "
                            "upstream, by listener and reason (the status code comes first).",
                            MetricType::Counter);
    for (size_t l = 0; l < kListeners; ++l) {
      for (size_t k = 0; k < kReasons; ++k) {
        Labels labels{Label{"listener", std::string(kListenerLabels[l])},
                      Label{"reason", std::string(kRejectLabels[k])}};
        f.metric.push_back(
            sample(std::move(labels), MetricType::Counter, static_cast<double>(rejected[l][k])));
      }
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f =
        family("tracecar_baggage_members_dropped_total",
               "Incoming baggage list-members not forwarded, by reason.", MetricType::Counter);
    for (size_t i = 0; i < baggage.size(); ++i) {
      f.metric.push_back(sample(oneLabel("reason", kBaggageDropLabels[i]), MetricType::Counter,
                                static_cast<double>(baggage[i])));
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f =
        family("tracecar_tracestate_members_dropped_total",
               "Incoming tracestate entries not forwarded: cut to fit the length limit, or "
               "dropped from a list of 32 to make room for the sampler's ot entry.",
               MetricType::Counter);
    f.metric.push_back(sample(oneLabel("reason", "length_limit"), MetricType::Counter,
                              static_cast<double>(truncated)));
    f.metric.push_back(sample(oneLabel("reason", "member_limit"), MetricType::Counter,
                              static_cast<double>(evicted)));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("tracecar_tracestate_discarded_total",
                            "Incoming tracestate headers discarded whole as invalid, by reason.",
                            MetricType::Counter);
    for (size_t i = 0; i < discarded.size(); ++i) {
      f.metric.push_back(sample(oneLabel("reason", kTraceStateDiscardLabels[i]),
                                MetricType::Counter, static_cast<double>(discarded[i])));
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f_started = family("tracecar_spans_started_total",
                                    "Spans started, sampled or not, by kind.", MetricType::Counter);
    MetricFamily f_sampled =
        family("tracecar_spans_sampled_total", "Spans started with the sampled flag set, by kind.",
               MetricType::Counter);
    for (size_t r = 0; r < kRoles; ++r) {
      f_started.metric.push_back(sample(oneLabel("kind", kRoleLabels[r]), MetricType::Counter,
                                        static_cast<double>(started[r])));
      f_sampled.metric.push_back(sample(oneLabel("kind", kRoleLabels[r]), MetricType::Counter,
                                        static_cast<double>(sampled[r])));
    }
    out.push_back(std::move(f_started));
    out.push_back(std::move(f_sampled));
  }
  {
    MetricFamily f = family("tracecar_sampling_decisions_total",
                            "Head sampling decisions, by sampler, rule (parent, default or the "
                            "rule's methods and route) and decision.",
                            MetricType::Counter);
    for (size_t rule = 0; rule < sampling_labels.rules.size(); ++rule) {
      for (size_t d = 0; d < kDecisions; ++d) {
        Labels labels{Label{"decision", std::string(kSamplingDecisionLabels[d])},
                      Label{"rule", sanitizedUtf8(sampling_labels.rules[rule])},
                      Label{"sampler", sanitizedUtf8(sampling_labels.sampler)}};
        f.metric.push_back(sample(std::move(labels), MetricType::Counter,
                                  static_cast<double>(decisions[rule * kDecisions + d])));
      }
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("tracecar_untrusted_context_restarts_total",
                            "Inbound requests whose trace context came from a source "
                            "trust_incoming_context does not trust: the trace was restarted.",
                            MetricType::Counter);
    f.metric.push_back(
        sample({}, MetricType::Counter, static_cast<double>(untrusted_restarts)));
    out.push_back(std::move(f));
  }

  {
    // The names Prometheus client libraries give these, so that existing alerts apply.
    MetricFamily open_fds = family("process_open_fds", "Number of open file descriptors.",
                                   MetricType::Gauge);
    if (const int64_t count = openFileDescriptors(); count >= 0) {
      open_fds.metric.push_back(sample({}, MetricType::Gauge, static_cast<double>(count)));
      out.push_back(std::move(open_fds));
    }
    MetricFamily max_fds = family("process_max_fds",
                                  "Maximum number of open file descriptors.", MetricType::Gauge);
    if (const uint64_t limit = fileDescriptorLimit(); limit > 0) {
      max_fds.metric.push_back(sample({}, MetricType::Gauge, static_cast<double>(limit)));
      out.push_back(std::move(max_fds));
    }
  }

  if (exporter == nullptr) return out;
  if (refresh) refresh();
  const exporter::ExporterCounters& c = *exporter;
  {
    MetricFamily f = family("tracecar_exporter_spans_enqueued_total",
                            "Spans handed to the exporter's queue.", MetricType::Counter);
    f.metric.push_back(
        sample({}, MetricType::Counter, static_cast<double>(read(c.spans_enqueued))));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("tracecar_exporter_spans_exported_total",
                            "Spans the collector accepted.", MetricType::Counter);
    f.metric.push_back(
        sample({}, MetricType::Counter, static_cast<double>(read(c.spans_exported))));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f =
        family("tracecar_exporter_spans_dropped_total",
               "Spans never delivered to the collector, by reason.", MetricType::Counter);
    for (size_t i = 0; i < kExportDropLabels.size(); ++i) {
      f.metric.push_back(sample(oneLabel("reason", kExportDropLabels[i]), MetricType::Counter,
                                static_cast<double>(read(c.spans_dropped[i]))));
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f =
        family("tracecar_exporter_requests_total",
               "Export requests (attempts) sent to the collector, by result.", MetricType::Counter);
    for (size_t i = 0; i < kExportResultLabels.size(); ++i) {
      f.metric.push_back(sample(oneLabel("result", kExportResultLabels[i]), MetricType::Counter,
                                static_cast<double>(read(c.requests[i]))));
    }
    out.push_back(std::move(f));
  }
  {
    MetricFamily f =
        family("tracecar_exporter_export_duration_seconds",
               "Duration of whole exports, first attempt to final answer.", MetricType::Histogram);
    std::array<uint64_t, exporter::ExporterCounters::kLatencyBounds.size() + 1> counts{};
    for (size_t i = 0; i < counts.size(); ++i) counts[i] = read(c.export_latency_buckets[i]);
    f.metric.push_back(histogramSample({}, exporter::ExporterCounters::kLatencyBounds, counts,
                                       static_cast<double>(read(c.export_latency_sum_ns)) / 1e9));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("tracecar_exporter_queue_length",
                            "Spans waiting in the exporter's queue.", MetricType::Gauge);
    f.metric.push_back(sample({}, MetricType::Gauge, static_cast<double>(read(c.queue_length))));
    out.push_back(std::move(f));
  }
  {
    MetricFamily f = family("tracecar_exporter_spans_in_flight",
                            "Spans of the batch being exported, taken off the queue and not yet "
                            "answered by the collector.",
                            MetricType::Gauge);
    f.metric.push_back(
        sample({}, MetricType::Gauge, static_cast<double>(read(c.spans_in_flight))));
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace tracecar::proxy
