#pragma once

#include <absl/container/flat_hash_map.h>
#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/http_semconv.h"

namespace tracecar::exporter {
struct ExporterCounters;
}
namespace tracecar::propagation {
struct ExtractReport;
}

namespace tracecar::proxy {

// Label values below are part of the metrics' interface: dashboards and alerts use them, so
// they never change once released.

enum class Listener : uint8_t { kInbound, kOutbound, kAdmin, kCount };
std::string_view listenerLabel(Listener listener) noexcept;  // "inbound", "outbound", "admin"

// Why a request was answered by tracecar itself instead of by its upstream.
enum class RejectReason : uint8_t {
  kHeaderTooLarge,    // "431_header_too_large": request head over the byte limit
  kTooManyHeaders,    // "431_too_many_headers"
  kUriTooLong,        // "414_uri_too_long"
  kBadRequest,        // "400_bad_request": malformed request (strict parsing)
  kBaggage,           // "431_baggage": baggage over its limits under the reject policy
  kTracestate,        // "431_tracestate": tracestate over its limit under the reject policy
  kHeaderTimeout,     // "408_header_timeout": the request head did not arrive in time
  kUpstreamRefused,   // "502_refused"
  kUpstreamReset,     // "502_reset": the upstream closed or reset before a full answer
  kBadResponse,       // "502_bad_response": malformed response from the upstream
  kResponseTooLarge,  // "502_response_too_large": response head over the limits
  kResolveFailed,     // "502_resolve_failed": the upstream's name did not resolve
  kUpstreamTls,       // "502_tls_failed": TLS to the upstream failed
  kConnectTimeout,    // "503_connect_timeout"
  kResponseTimeout,   // "504_response_timeout"
  kLoopDetected,      // "508_loop_detected": the outbound listener was asked to forward to itself
  kNotImplemented,    // "501_not_implemented": CONNECT (or extended CONNECT) over HTTP/2
  kRequestBodyTimeout,  // "408_request_body_timeout": the client stopped sending its body
  kFileDescriptors,   // "503_file_descriptors": tracecar at its file descriptor limit
  kCount
};
std::string_view rejectReasonLabel(RejectReason reason) noexcept;
int rejectStatusCode(RejectReason reason) noexcept;  // 431, 414, 400, 408, 501, 502, ..., 508

// Why baggage list-members were not forwarded (propagation::BaggageReport).
enum class BaggageDropReason : uint8_t {
  kInvalid,      // "invalid": not following the grammar
  kMemberLimit,  // "member_limit"
  kByteLimit,    // "byte_limit"
  kUntrusted,    // "untrusted": from an untrusted source, with drop_untrusted_baggage
  kCount
};
std::string_view baggageDropReasonLabel(BaggageDropReason reason) noexcept;

// Why a whole incoming tracestate was discarded (traceparent kept), per W3C Trace Context L2.
enum class TraceStateDiscardReason : uint8_t {
  kTooManyMembers,  // "too_many_members"
  kDuplicateKey,    // "duplicate_key"
  kInvalidKey,      // "invalid_key"
  kInvalidValue,    // "invalid_value"
  kInvalidMember,   // "invalid_member"
  kCount
};
std::string_view traceStateDiscardReasonLabel(TraceStateDiscardReason reason) noexcept;

// A head sampling decision (tracecar_sampling_decisions_total's decision label).
enum class SamplingDecision : uint8_t {
  kSampled,      // "sampled"
  kDropped,      // "dropped"
  kRateLimited,  // "rate_limited": kept by its probability, but the rate limit had no token
  kCount
};
std::string_view samplingDecisionLabel(SamplingDecision decision) noexcept;

// The sampler's label table (sampling::Sampler::samplerName() and ruleLabel(0..ruleCount-1)):
// a decision's rule index picks its label. The default is the default Sampler's.
struct SamplingLabels {
  std::string sampler = "parentbased_always_on";
  std::vector<std::string> rules{"parent", "default"};
};

// Which side of a proxied request: SERVER (we received it) or CLIENT (we sent it upstream).
// Picks the duration histogram and the span kind label.
enum class HttpRole : uint8_t { kServer, kClient, kCount };
std::string_view httpRoleLabel(HttpRole role) noexcept;  // "server", "client"

// The semconv method label: the method when known lists it (case-sensitive), else "_OTHER". The
// view is owned by known or is static storage.
std::string_view httpMethodLabel(std::string_view method,
                                 const semconv::KnownMethods& known) noexcept;

// Labels of one finished request. The views need only live for the call.
struct HttpRequestLabels {
  std::string_view method;      // as received; reported through httpMethodLabel
  std::string_view route;       // http.route; "" when none (label left out)
  int status_code = 0;          // the status sent downstream; outside 100-599: label left out
  std::string_view error_type;  // semconv error.type when the request failed; "" otherwise
};

// One thread's metrics. Exactly one thread records into a shard (its owner: a worker, or the
// main thread for the admin listener); the scrape reads it from another thread. Recording
// never takes a lock and, once a label set has been seen, never allocates: counters are
// relaxed atomics the owner updates with a plain load and store, histogram series live in a
// hash map only the owner touches and are published to the scraper through an append-only
// list.
class alignas(64) WorkerMetrics {
 public:
  // The histograms' upper bounds, seconds (OTel HTTP semantic conventions).
  static constexpr std::array<double, 14> kDurationBounds{
      0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};
  // Distinct label sets per role and shard; later ones go to one series labelled
  // method="_OTHER", route="_OTHER" so a misbehaving peer cannot grow memory without bound.
  static constexpr size_t kMaxSeriesPerRole = 2048;

  // sampling_rules: how many rule indexes sampling decisions may carry (at least 1).
  // known_methods: the methods the method label reports as themselves (null: the defaults);
  // shared, never changed, so the series keys may view it.
  explicit WorkerMetrics(size_t sampling_rules = SamplingLabels{}.rules.size(),
                         std::shared_ptr<const semconv::KnownMethods> known_methods = nullptr);
  ~WorkerMetrics();
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // A request finished: observes http_{server,client}_request_duration_seconds.
  void recordRequest(HttpRole role, const HttpRequestLabels& labels, uint64_t duration_ns) noexcept;

  void connectionOpened(Listener listener) noexcept;
  void connectionClosed(Listener listener) noexcept;
  void requestRejected(Listener listener, RejectReason reason) noexcept;

  void baggageMembersDropped(BaggageDropReason reason, uint64_t count) noexcept;
  // Entries cut from a valid tracestate to fit the length limit.
  void traceStateMembersTruncated(uint64_t count) noexcept;
  void traceStateDiscarded(TraceStateDiscardReason reason) noexcept;
  // The baggage and tracestate figures of one extraction, in one call.
  void recordExtractReport(const propagation::ExtractReport& report) noexcept;

  void spanStarted(HttpRole kind, bool sampled) noexcept;
  // A span's sampling decision; rule is the sampler's index (out of range: ignored).
  void samplingDecision(uint16_t rule, SamplingDecision decision) noexcept;
  // A SERVER span restarted the trace because its source was not trusted.
  void untrustedContextRestarted() noexcept;

 private:
  friend class ProxyMetrics;

  static constexpr size_t kBucketCount = kDurationBounds.size() + 1;  // the last one is +Inf
  static constexpr size_t kListeners = static_cast<size_t>(Listener::kCount);
  static constexpr size_t kReasons = static_cast<size_t>(RejectReason::kCount);
  static constexpr size_t kRoles = static_cast<size_t>(HttpRole::kCount);

  // One histogram series. Everything but the atomics is written once, before the series is
  // published, and never changes afterwards.
  struct Series {
    std::string route;       // as recorded: the map key's route points here
    std::string error_type;  // likewise
    std::vector<prometheus::ClientMetric::Label> labels;        // sorted, valid UTF-8
    const Series* next = nullptr;                               // the published list
    std::array<std::atomic<uint64_t>, kBucketCount> buckets{};  // per bucket, not cumulative
    std::atomic<uint64_t> sum_ns{0};
  };

  struct SeriesKey {
    std::string_view method;  // httpMethodLabel's: views known_methods_ or static text
    std::string_view route;
    int status_code = 0;
    std::string_view error_type;
    bool operator==(const SeriesKey&) const = default;
    template <class H>
    friend H AbslHashValue(H h, const SeriesKey& key) {
      return H::combine(std::move(h), key.method, key.route, key.status_code, key.error_type);
    }
  };

  struct RoleSeries {
    absl::flat_hash_map<SeriesKey, std::unique_ptr<Series>> by_key;  // the owner's only
    // The series found last, and its key (pointing into the series): requests come in runs of
    // one route, and comparing a key costs less than hashing it.
    Series* last = nullptr;
    SeriesKey last_key;
    std::unique_ptr<Series> overflow;  // made up front: used past the cap or out of memory
    bool overflow_published = false;
    std::atomic<const Series*> head{nullptr};
  };

  Series* findOrAdd(RoleSeries& role, const SeriesKey& key) noexcept;
  Series* overflow(RoleSeries& role) noexcept;
  static void publish(RoleSeries& role, Series* series) noexcept;

  std::shared_ptr<const semconv::KnownMethods> known_methods_;
  std::array<RoleSeries, kRoles> series_;
  std::array<std::atomic<int64_t>, kListeners> connections_open_{};
  std::array<std::atomic<uint64_t>, kListeners> connections_total_{};
  std::array<std::array<std::atomic<uint64_t>, kReasons>, kListeners> rejected_{};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(BaggageDropReason::kCount)>
      baggage_dropped_{};
  std::atomic<uint64_t> tracestate_truncated_{0};
  std::atomic<uint64_t> tracestate_evicted_{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(TraceStateDiscardReason::kCount)>
      tracestate_discarded_{};
  std::array<std::atomic<uint64_t>, kRoles> spans_started_{};
  std::array<std::atomic<uint64_t>, kRoles> spans_sampled_{};
  static constexpr size_t kDecisions = static_cast<size_t>(SamplingDecision::kCount);
  size_t sampling_rules_;
  // [rule * kDecisions + decision], sized once: recording never allocates.
  std::unique_ptr<std::atomic<uint64_t>[]> sampling_decisions_;
  std::atomic<uint64_t> untrusted_restarts_{0};
};

// All of the proxy's metrics: the shards of every thread and the exporter's counters, merged
// when scraped. The admin server serializes its Collect() next to the prometheus::Registry's
// (prometheus-cpp 1.0 has no way to add a custom Collectable to a Registry).
class ProxyMetrics final : public prometheus::Collectable {
 public:
  ProxyMetrics();
  ~ProxyMetrics() override;

  // The sampler's labels; call before the first addShard (shards are sized from it).
  void setSamplingLabels(SamplingLabels labels);
  // The methods the histograms' http_request_method label reports as themselves, the spans'
  // list (tracing.known_methods); the defaults unless set. Call before the first addShard.
  void setKnownMethods(semconv::KnownMethods known);

  // A new shard for the calling thread to record into; it lives as long as this object. Takes
  // a mutex: call it when a worker starts, not per request.
  WorkerMetrics& addShard();

  // Exposes the exporter's counters (which must outlive this object); refresh, if set, runs
  // at the start of every scrape (BatchProcessor::refreshCounters). Null counters: none.
  void setExporterCounters(const exporter::ExporterCounters* counters,
                           std::function<void()> refresh = {});

  // Any thread; many at once. Sums every shard.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mutex_;  // guards the shard list and the exporter source, never a shard
  std::vector<std::unique_ptr<WorkerMetrics>> shards_;
  SamplingLabels sampling_labels_;
  std::shared_ptr<const semconv::KnownMethods> known_methods_;
  const exporter::ExporterCounters* exporter_ = nullptr;
  std::function<void()> refresh_;
};

}  // namespace tracecar::proxy
