#include "proxy/traced_stream_observer.h"

#include <gtest/gtest.h>
#include <uv.h>
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporter/span.h"
#include "http/http1_parser.h"
#include "http/route_resolver.h"
#include "http/route_template.h"
#include "propagation/composite_propagator.h"
#include "propagation/ids.h"
#include "proxy/metrics.h"
#include "proxy/run_metrics.h"
#include "proxy/run_settings.h"
#include "sampling/sampler.h"
#include "sampling/trust_policy.h"

namespace tracecar::proxy {
namespace {

using exporter::SpanKind;
using exporter::SpanRecord;
using exporter::StatusCode;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using LabelPairs = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kParent = "00f067aa0ba902b7";
constexpr uint64_t kMs = 1'000'000;

// Wall-clock time = this epoch + the monotonic time.
constexpr uint64_t kWallAtMonotonicZero = 1'700'000'000'000'000'000;
uint64_t fakeUnixAt(uint64_t monotonic_ns) noexcept { return kWallAtMonotonicZero + monotonic_ns; }

class CollectingSink : public SpanSink {
 public:
  void onSpanEnd(std::unique_ptr<SpanRecord>&& span) override { spans.push_back(std::move(span)); }
  std::vector<std::unique_ptr<SpanRecord>> spans;
};

std::string traceparent(std::string_view flags) {
  return "00-" + std::string(kTrace) + "-" + std::string(kParent) + "-" + std::string(flags);
}

http::Http1Head requestHead(std::string method, std::string target,
                            std::initializer_list<std::pair<std::string_view, std::string_view>>
                                fields = {}) {
  http::Http1Head head;
  head.method = std::move(method);
  head.target = std::move(target);
  head.headers.add("Host", "app.local:8080");
  for (const auto& [name, value] : fields) head.headers.add(name, value);
  return head;
}

http::Http1Head responseHead(int status) {
  http::Http1Head head;
  head.status = status;
  return head;
}

// First byte at 1 s of the monotonic clock, last byte duration_ms later.
StreamStats stats(ListenerRole listener, int status, uint64_t duration_ms) {
  StreamStats s;
  s.listener = listener;
  s.status = status;
  s.start_ns = 1'000 * kMs;
  s.end_ns = s.start_ns + duration_ms * kMs;
  return s;
}

StreamStats localReply(ListenerRole listener, int status, LocalReplyReason reason) {
  StreamStats s = stats(listener, status, 1);
  s.local_reply = true;
  s.local_reply_reason = reason;
  return s;
}

const ClientMetric* findSample(const std::vector<MetricFamily>& families, std::string_view name,
                               const LabelPairs& labels) {
  for (const MetricFamily& family : families) {
    if (family.name != name) continue;
    for (const ClientMetric& metric : family.metric) {
      if (metric.label.size() != labels.size()) continue;
      bool all = true;
      for (const auto& [key, value] : labels) {
        bool found = false;
        for (const auto& label : metric.label) found |= label.name == key && label.value == value;
        all &= found;
      }
      if (all) return &metric;
    }
  }
  return nullptr;
}

double counter(const std::vector<MetricFamily>& families, std::string_view name,
               const LabelPairs& labels) {
  const ClientMetric* metric = findSample(families, name, labels);
  return metric == nullptr ? -1 : metric->counter.value;
}

// The histogram sample with these labels; count -1 when absent.
struct Observed {
  double count = -1;
  double sum = 0;
};
Observed histogram(const std::vector<MetricFamily>& families, std::string_view name,
                   const LabelPairs& labels) {
  const ClientMetric* metric = findSample(families, name, labels);
  if (metric == nullptr) return {};
  return {static_cast<double>(metric->histogram.sample_count), metric->histogram.sample_sum};
}

std::string attribute(const SpanRecord& span, std::string_view key) {
  for (const exporter::Attribute& a : span.attributes.items()) {
    if (a.key != key) continue;
    if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
    if (const auto* i = std::get_if<int64_t>(&a.value)) return std::to_string(*i);
    return "<other>";
  }
  return "<absent>";
}

WorkerMetrics& shardFor(ProxyMetrics& metrics, const sampling::Sampler& sampler) {
  metrics.setSamplingLabels(samplingLabelsOf(sampler));
  return metrics.addShard();
}

// One worker's two factories over a collecting sink and a fresh metrics shard.
struct Worker {
  explicit Worker(RequestTracingConfig tracing = {},
                  sampling::Sampler sampler_in = sampling::Sampler(),
                  sampling::TrustPolicy trust_in = sampling::TrustPolicy())
      : routes(*http::RouteMatcher::compile({"/users/{id}"})),
        config(std::move(tracing)),
        sampler(std::move(sampler_in)),
        trust(std::move(trust_in)),
        ids(7),
        shard(shardFor(metrics, sampler)),
        inbound(ListenerRole::kInbound, propagator, &routes, config, sampler, trust, sink, shard,
                fakeUnixAt, &ids),
        outbound(ListenerRole::kOutbound, propagator, nullptr, config, sampler, trust, sink,
                 shard, fakeUnixAt, &ids) {}

  std::vector<MetricFamily> scrape() const { return metrics.Collect(); }

  propagation::CompositePropagator propagator;
  http::RouteResolver routes;
  RequestTracingConfig config;
  sampling::Sampler sampler;
  sampling::TrustPolicy trust;
  CollectingSink sink;
  propagation::IdGenerator ids;
  ProxyMetrics metrics;
  WorkerMetrics& shard;
  TracedStreamObserverFactory inbound;
  TracedStreamObserverFactory outbound;
};

const PeerInfo kPeer{ListenerRole::kInbound, "10.1.2.3", 51234, "10.1.2.4", 15006, -1, false, "", 0};

TEST(TracedStreamObserverTest, InboundRequestBecomesServerSpanAndChildContextGoesUpstream) {
  Worker w;
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head =
      requestHead("GET", "/users/42?token=s3cret", {{"traceparent", traceparent("01")}});
  EXPECT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  observer->onResponseHead(responseHead(200));
  observer->onComplete(stats(ListenerRole::kInbound, 200, 250));

  ASSERT_EQ(w.sink.spans.size(), 1u);
  const SpanRecord& span = *w.sink.spans[0];
  EXPECT_EQ(span.kind, SpanKind::kServer);
  EXPECT_EQ(span.name, "GET /users/{id}");
  EXPECT_EQ(span.trace_id.toHex(), kTrace);
  EXPECT_EQ(span.parent_span_id.toHex(), kParent);
  EXPECT_EQ(attribute(span, "http.route"), "/users/{id}");
  EXPECT_EQ(attribute(span, "http.response.status_code"), "200");
  EXPECT_EQ(attribute(span, "url.query"), "token=REDACTED");
  EXPECT_EQ(attribute(span, "client.address"), "10.1.2.3");
  // The span runs from the stream's first byte to its last, on the wall clock.
  EXPECT_EQ(span.start_unix_nano, kWallAtMonotonicZero + 1'000 * kMs);
  EXPECT_EQ(span.end_unix_nano, kWallAtMonotonicZero + 1'250 * kMs);
  // The request sent on carries the span just started as its parent.
  EXPECT_EQ(std::string(head.headers.get("traceparent").value_or("")),
            "00-" + std::string(kTrace) + "-" + span.span_id.toHex() + "-01");

  const std::vector<MetricFamily> families = w.scrape();
  const Observed observed =
      histogram(families, "http_server_request_duration_seconds",
                {{"http_request_method", "GET"},
                 {"http_route", "/users/{id}"},
                 {"http_response_status_code", "200"}});
  EXPECT_EQ(observed.count, 1);
  EXPECT_DOUBLE_EQ(observed.sum, 0.25);  // first byte to last byte, from the stream's stats
  EXPECT_EQ(counter(families, "tracecar_spans_started_total", {{"kind", "server"}}), 1);
  EXPECT_EQ(counter(families, "tracecar_spans_sampled_total", {{"kind", "server"}}), 1);
}

TEST(TracedStreamObserverTest, SamplingDecisionsAreCountedBySamplerAndRule) {
  sampling::SamplingConfig config;
  config.sampler = {sampling::SamplerKind::kParentBasedAlwaysOn, 1.0};
  config.rules = *sampling::parseRules("GET /users/*=never");
  config.rate_limit = sampling::RateLimitSettings{0.001, 1};
  Worker w({}, *sampling::Sampler::create(config));
  const auto serve = [&](http::Http1Head head) {
    std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
    EXPECT_FALSE(observer->onRequestHead(head, kPeer).has_value());
    observer->onResponseHead(responseHead(200));
    observer->onComplete(stats(ListenerRole::kInbound, 200, 1));
  };
  serve(requestHead("GET", "/users/1"));                                  // the rule: dropped
  serve(requestHead("GET", "/users/2", {{"traceparent", traceparent("01")}}));  // parent
  serve(requestHead("POST", "/users/3"));  // default, takes the one token
  serve(requestHead("POST", "/users/4"));  // default, no token left

  const std::vector<MetricFamily> families = w.scrape();
  const auto decisions = [&](std::string_view rule, std::string_view decision) {
    return counter(families, "tracecar_sampling_decisions_total",
                   {{"sampler", "parentbased_always_on"},
                    {"rule", std::string(rule)},
                    {"decision", std::string(decision)}});
  };
  EXPECT_EQ(decisions("GET /users/*", "dropped"), 1);
  EXPECT_EQ(decisions("GET /users/*", "sampled"), 0);
  EXPECT_EQ(decisions("parent", "sampled"), 1);
  EXPECT_EQ(decisions("default", "sampled"), 1);
  EXPECT_EQ(decisions("default", "rate_limited"), 1);
  EXPECT_EQ(decisions("default", "dropped"), 0);
  EXPECT_EQ(counter(families, "tracecar_untrusted_context_restarts_total", {}), 0);
}

TEST(TracedStreamObserverTest, UntrustedContextRestartAndDroppedBaggageAreCounted) {
  RequestTracingConfig tracing;
  tracing.drop_untrusted_baggage = true;
  Worker w(tracing, sampling::Sampler(), *sampling::TrustPolicy::parse("192.0.2.0/24"));
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head = requestHead(
      "GET", "/users/1", {{"traceparent", traceparent("01")}, {"baggage", "a=1,b=2,c=3"}});
  EXPECT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  observer->onResponseHead(responseHead(200));
  observer->onComplete(stats(ListenerRole::kInbound, 200, 1));

  ASSERT_EQ(w.sink.spans.size(), 1u);
  EXPECT_NE(w.sink.spans[0]->trace_id.toHex(), kTrace);
  ASSERT_EQ(w.sink.spans[0]->links.size(), 1u);
  EXPECT_EQ(w.sink.spans[0]->links[0].trace_id.toHex(), kTrace);
  const std::vector<MetricFamily> families = w.scrape();
  EXPECT_EQ(counter(families, "tracecar_untrusted_context_restarts_total", {}), 1);
  EXPECT_EQ(counter(families, "tracecar_baggage_members_dropped_total", {{"reason", "untrusted"}}),
            3);
  EXPECT_EQ(counter(families, "tracecar_sampling_decisions_total",
                    {{"sampler", "parentbased_always_on"},
                     {"rule", "default"},
                     {"decision", "sampled"}}),
            1);
}

TEST(TracedStreamObserverTest, OutboundRequestBecomesClientSpanWithoutRoute) {
  Worker w;
  std::unique_ptr<StreamObserver> observer = w.outbound.create(ListenerRole::kOutbound);
  http::Http1Head head = requestHead("POST", "http://orders.local:9000/users/42");
  EXPECT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  observer->onResponseHead(responseHead(404));
  observer->onComplete(stats(ListenerRole::kOutbound, 404, 10));

  ASSERT_EQ(w.sink.spans.size(), 1u);
  const SpanRecord& span = *w.sink.spans[0];
  EXPECT_EQ(span.kind, SpanKind::kClient);
  EXPECT_EQ(span.name, "POST");
  EXPECT_EQ(span.status_code, StatusCode::kError);  // CLIENT: 4xx is an error
  EXPECT_EQ(attribute(span, "url.full"), "http://orders.local:9000/users/42");
  EXPECT_EQ(attribute(span, "server.address"), "orders.local");
  // A new trace: the context sent on is the CLIENT span's.
  EXPECT_NE(std::string(head.headers.get("traceparent").value_or("")).find(span.span_id.toHex()),
            std::string::npos);

  const std::vector<MetricFamily> families = w.scrape();
  EXPECT_EQ(histogram(families, "http_client_request_duration_seconds",
                      {{"http_request_method", "POST"},
                       {"http_response_status_code", "404"},
                       {"error_type", "404"}})  // CLIENT: 4xx is an error
                .count,
            1);
  EXPECT_EQ(counter(families, "tracecar_spans_started_total", {{"kind", "client"}}), 1);
  EXPECT_EQ(counter(families, "tracecar_spans_started_total", {{"kind", "server"}}), 0);
}

size_t occurrences(std::string_view text, std::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

// Semantic conventions: a span per attempt. A request sent again on a fresh connection ends the
// first attempt's span (Error, the failure, the peer it went to) and goes on as a new span with
// http.request.resend_count, whose id every context field of the head that goes again carries.
TEST(TracedStreamObserverTest, AResentRequestIsASpanPerAttemptAndItsContextFollows) {
  Worker w;
  propagation::PropagationConfig every;
  every.propagators = *propagation::parsePropagators("tracecontext,b3,b3multi,jaeger");
  w.propagator = propagation::CompositePropagator(every);
  for (const bool h2 : {false, true}) {
    w.sink.spans.clear();
    std::unique_ptr<StreamObserver> observer = w.outbound.create(ListenerRole::kOutbound);
    http::Http1Head head = requestHead("GET", "http://orders.local:9000/users/42");
    ASSERT_FALSE(observer->onRequestHead(head, kPeer).has_value());
    std::string h1_head = "GET /users/42 HTTP/1.1\r\n";
    head.headers.serialize(h1_head);
    h1_head += "\r\n";
    StreamStats s = stats(ListenerRole::kOutbound, 0, 0);
    s.upstream_address = "192.0.2.7";
    s.upstream_port = 9000;
    if (h2) {
      observer->onResend(UpstreamFailure::kConnectionReset, s, head.headers);
    } else {
      observer->onResend(UpstreamFailure::kConnectionReset, s, h1_head);
    }
    ASSERT_EQ(w.sink.spans.size(), 1u);
    const SpanRecord& first = *w.sink.spans[0];
    EXPECT_EQ(first.status_code, StatusCode::kError);
    EXPECT_EQ(attribute(first, "error.type"), "connection_reset");
    EXPECT_EQ(attribute(first, "network.peer.address"), "192.0.2.7");
    EXPECT_EQ(attribute(first, "network.peer.port"), "9000");
    EXPECT_EQ(attribute(first, "http.request.resend_count"), "<absent>");

    observer->onResponseHead(responseHead(200));
    observer->onComplete(stats(ListenerRole::kOutbound, 200, 5));
    ASSERT_EQ(w.sink.spans.size(), 2u);
    const SpanRecord& second = *w.sink.spans[1];
    EXPECT_EQ(second.status_code, StatusCode::kUnset);
    EXPECT_EQ(attribute(second, "http.request.resend_count"), "1");
    EXPECT_EQ(attribute(second, "http.response.status_code"), "200");
    EXPECT_EQ(attribute(second, "error.type"), "<absent>");
    EXPECT_EQ(second.trace_id, first.trace_id);
    EXPECT_EQ(second.parent_span_id, first.parent_span_id);
    EXPECT_NE(second.span_id, first.span_id);
    // traceparent, b3, X-B3-SpanId and uber-trace-id name the second span, none the first.
    std::string rewritten = h1_head;
    if (h2) {
      rewritten.clear();
      head.headers.serialize(rewritten);
    }
    EXPECT_EQ(occurrences(rewritten, second.span_id.toHex()), 4u) << rewritten;
    EXPECT_EQ(occurrences(rewritten, first.span_id.toHex()), 0u) << rewritten;
  }
  EXPECT_EQ(counter(w.scrape(), "tracecar_spans_started_total", {{"kind", "client"}}), 4);
}

// Nothing is recorded for an unsampled request: a resend changes nothing.
TEST(TracedStreamObserverTest, AResentUnsampledRequestKeepsItsContext) {
  sampling::SamplingConfig config;
  config.sampler = {sampling::SamplerKind::kAlwaysOff, 1.0};
  Worker w({}, *sampling::Sampler::create(config));
  std::unique_ptr<StreamObserver> observer = w.outbound.create(ListenerRole::kOutbound);
  http::Http1Head head = requestHead("GET", "http://orders.local:9000/users/42");
  ASSERT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  const http::HeaderMap before = head.headers;
  observer->onResend(UpstreamFailure::kConnectionReset, stats(ListenerRole::kOutbound, 0, 0),
                     head.headers);
  observer->onComplete(stats(ListenerRole::kOutbound, 200, 5));
  EXPECT_EQ(head.headers.get("traceparent"), before.get("traceparent"));
  EXPECT_TRUE(w.sink.spans.empty());
}

TEST(TracedStreamObserverTest, UnsampledRequestIsMeasuredAndPropagatedButNotExported) {
  Worker w;
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head = requestHead("GET", "/users/7", {{"traceparent", traceparent("00")}});
  EXPECT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  observer->onResponseHead(responseHead(200));
  observer->onComplete(stats(ListenerRole::kInbound, 200, 3));

  EXPECT_TRUE(w.sink.spans.empty());
  EXPECT_TRUE(std::string(head.headers.get("traceparent").value_or("")).ends_with("-00"));
  const std::vector<MetricFamily> families = w.scrape();
  EXPECT_EQ(histogram(families, "http_server_request_duration_seconds",
                      {{"http_request_method", "GET"},
                       {"http_route", "/users/{id}"},
                       {"http_response_status_code", "200"}})
                .count,
            1);
  EXPECT_EQ(counter(families, "tracecar_spans_started_total", {{"kind", "server"}}), 1);
  EXPECT_EQ(counter(families, "tracecar_spans_sampled_total", {{"kind", "server"}}), 0);
}

TEST(TracedStreamObserverTest, BaggageOverLimitUnderRejectPolicyAnswers431AndIsNeverTraced) {
  RequestTracingConfig tracing;
  tracing.baggage_policy = ContextHeaderPolicy::kReject;
  Worker w(tracing);
  std::string baggage;
  for (int i = 0; i < 65; ++i) baggage += (i ? ",k" : "k") + std::to_string(i) + "=v";
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head = requestHead("GET", "/users/7", {{"baggage", baggage}});
  const std::optional<LocalReply> reply = observer->onRequestHead(head, kPeer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 431);
  EXPECT_EQ(reply->code, LocalReplyReason::kBaggage);
  EXPECT_NE(reply->reason.find("baggage"), std::string::npos);
  EXPECT_FALSE(head.headers.get("traceparent").has_value());  // nothing injected
  observer->onComplete(localReply(ListenerRole::kInbound, 431, LocalReplyReason::kBaggage));

  EXPECT_TRUE(w.sink.spans.empty());
  const std::vector<MetricFamily> families = w.scrape();
  EXPECT_EQ(counter(families, "tracecar_requests_rejected_total",
                    {{"listener", "inbound"}, {"reason", "431_baggage"}}),
            1);
  EXPECT_EQ(histogram(families, "http_server_request_duration_seconds",
                      {{"http_request_method", "GET"}, {"http_response_status_code", "431"}})
                .count,
            1);
  EXPECT_EQ(counter(families, "tracecar_spans_started_total", {{"kind", "server"}}), 0);
  // Nothing of the baggage was forwarded, so no member counts as dropped to fit.
  EXPECT_EQ(counter(families, "tracecar_baggage_members_dropped_total",
                    {{"reason", "member_limit"}}),
            0);
}

TEST(TracedStreamObserverTest, RefusedUpstreamEndsServerSpanWithErrorTypeAnd502) {
  Worker w;
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head = requestHead("GET", "/users/7");
  ASSERT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  observer->onUpstreamFailure(UpstreamFailure::kConnectionRefused);
  observer->onComplete(
      localReply(ListenerRole::kInbound, 502, LocalReplyReason::kUpstreamRefused));

  ASSERT_EQ(w.sink.spans.size(), 1u);
  const SpanRecord& span = *w.sink.spans[0];
  EXPECT_EQ(span.status_code, StatusCode::kError);
  EXPECT_EQ(attribute(span, "error.type"), "connection_refused");
  EXPECT_EQ(attribute(span, "http.response.status_code"), "502");

  const std::vector<MetricFamily> families = w.scrape();
  EXPECT_EQ(histogram(families, "http_server_request_duration_seconds",
                      {{"http_request_method", "GET"},
                       {"http_route", "/users/{id}"},
                       {"http_response_status_code", "502"},
                       {"error_type", "connection_refused"}})
                .count,
            1);
  EXPECT_EQ(counter(families, "tracecar_requests_rejected_total",
                    {{"listener", "inbound"}, {"reason", "502_refused"}}),
            1);
}

// semconv: error.type is conditionally required on the duration metric when the request ended
// in error; for an error status, it is the code. A server 4xx is no error: no label.
TEST(TracedStreamObserverTest, UpstreamAnswer5xxIsItsOwnErrorTypeLabel) {
  Worker w;
  for (const int status : {503, 404}) {
    std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
    http::Http1Head head = requestHead("GET", "/users/7");
    ASSERT_FALSE(observer->onRequestHead(head, kPeer).has_value());
    observer->onResponseHead(responseHead(status));
    observer->onComplete(stats(ListenerRole::kInbound, status, 2));
  }

  ASSERT_EQ(w.sink.spans.size(), 2u);
  EXPECT_EQ(attribute(*w.sink.spans[0], "error.type"), "503");
  const std::vector<MetricFamily> families = w.scrape();
  EXPECT_EQ(histogram(families, "http_server_request_duration_seconds",
                      {{"http_request_method", "GET"},
                       {"http_route", "/users/{id}"},
                       {"http_response_status_code", "503"},
                       {"error_type", "503"}})
                .count,
            1);
  EXPECT_EQ(histogram(families, "http_server_request_duration_seconds",
                      {{"http_request_method", "GET"},
                       {"http_route", "/users/{id}"},
                       {"http_response_status_code", "404"}})
                .count,
            1);
}

TEST(TracedStreamObserverTest, DataPathLocalReplyIsTheServerSpansStatus) {
  Worker w;
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head = requestHead("GET", "/users/7");
  ASSERT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  observer->onComplete(localReply(ListenerRole::kInbound, 508, LocalReplyReason::kLoopDetected));

  ASSERT_EQ(w.sink.spans.size(), 1u);
  EXPECT_EQ(attribute(*w.sink.spans[0], "http.response.status_code"), "508");
  EXPECT_EQ(w.sink.spans[0]->status_code, StatusCode::kError);
  EXPECT_EQ(counter(w.scrape(), "tracecar_requests_rejected_total",
                    {{"listener", "inbound"}, {"reason", "508_loop_detected"}}),
            1);
}

TEST(TracedStreamObserverTest, DownstreamGoneWithoutAnswerIsAnErrorWithOtherType) {
  Worker w;
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head = requestHead("GET", "/users/7");
  ASSERT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  StreamStats s = stats(ListenerRole::kInbound, 0, 5);
  s.aborted = true;
  observer->onComplete(s);
  observer->onComplete(s);  // a second call changes nothing

  ASSERT_EQ(w.sink.spans.size(), 1u);
  EXPECT_EQ(attribute(*w.sink.spans[0], "error.type"), "_OTHER");
  EXPECT_EQ(histogram(w.scrape(), "http_server_request_duration_seconds",
                      {{"http_request_method", "GET"},
                       {"http_route", "/users/{id}"},
                       {"error_type", "_OTHER"}})
                .count,
            1);
}

TEST(TracedStreamObserverTest, EachRejectionIsCountedOnceBetweenObserversAndDataPath) {
  Worker w;
  // The observer saw a refused upstream; the data path counted it too, and a 431 for a head too
  // large that no observer ever saw.
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head = requestHead("GET", "/users/7");
  ASSERT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  observer->onUpstreamFailure(UpstreamFailure::kConnectionRefused);
  observer->onComplete(
      localReply(ListenerRole::kInbound, 502, LocalReplyReason::kUpstreamRefused));

  DataPathSnapshot snapshot;
  snapshot.connections_open[0] = 2;
  snapshot.connections_total[0] = 5;
  snapshot.connections_total[1] = 3;
  snapshot.local_replies[0][static_cast<size_t>(LocalReplyReason::kUpstreamRefused)] = 1;
  snapshot.local_replies[0][static_cast<size_t>(LocalReplyReason::kHeadersTooLarge)] = 4;
  snapshot.local_replies[1][static_cast<size_t>(LocalReplyReason::kBadRequest)] = 2;
  RunMetrics run(w.metrics, [&] { return snapshot; });
  const std::vector<MetricFamily> families = run.Collect();

  EXPECT_EQ(counter(families, "tracecar_requests_rejected_total",
                    {{"listener", "inbound"}, {"reason", "502_refused"}}),
            1);
  EXPECT_EQ(counter(families, "tracecar_requests_rejected_total",
                    {{"listener", "inbound"}, {"reason", "431_header_too_large"}}),
            4);
  EXPECT_EQ(counter(families, "tracecar_requests_rejected_total",
                    {{"listener", "outbound"}, {"reason", "400_bad_request"}}),
            2);
  EXPECT_EQ(counter(families, "tracecar_connections_total", {{"listener", "inbound"}}), 5);
  EXPECT_EQ(counter(families, "tracecar_connections_total", {{"listener", "outbound"}}), 3);
  EXPECT_EQ(counter(families, "tracecar_connections_total", {{"listener", "admin"}}), 0);
  const ClientMetric* open =
      findSample(families, "tracecar_connections_open", {{"listener", "inbound"}});
  ASSERT_NE(open, nullptr);
  EXPECT_EQ(open->gauge.value, 2);
}

TEST(TracedStreamObserverTest, EveryRejectReasonMapsBackToItsLocalReply) {
  for (size_t k = 0; k < static_cast<size_t>(RejectReason::kCount); ++k) {
    const auto local = static_cast<LocalReplyReason>(k);
    const std::optional<RejectReason> reason = rejectReasonOf(local);
    ASSERT_TRUE(reason.has_value()) << localReplyReasonName(local);
    EXPECT_EQ(static_cast<size_t>(*reason), k);
  }
  EXPECT_EQ(rejectReasonOf(LocalReplyReason::kLoopDetected), RejectReason::kLoopDetected);
  EXPECT_FALSE(rejectReasonOf(LocalReplyReason::kObserver).has_value());
}

TEST(TracedStreamObserverTest, GrpcStatusFromTrailersDecidesTheServerSpan) {
  Worker w;
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head =
      requestHead("POST", "/pkg.Greeter/SayHello", {{"content-type", "application/grpc"}});
  head.version_major = 2;
  head.version_minor = 0;
  EXPECT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  observer->onResponseHead(responseHead(200));
  http::HeaderMap trailers;
  trailers.add("grpc-status", "14");
  observer->onResponseTrailers(trailers);
  observer->onComplete(stats(ListenerRole::kInbound, 200, 5));

  ASSERT_EQ(w.sink.spans.size(), 1u);
  const SpanRecord& span = *w.sink.spans[0];
  EXPECT_EQ(span.name, "pkg.Greeter/SayHello");
  EXPECT_EQ(attribute(span, "rpc.system"), "grpc");
  EXPECT_EQ(attribute(span, "rpc.service"), "pkg.Greeter");
  EXPECT_EQ(attribute(span, "rpc.method"), "SayHello");
  EXPECT_EQ(attribute(span, "rpc.grpc.status_code"), "14");
  EXPECT_EQ(attribute(span, "http.route"), "/pkg.Greeter/SayHello");
  EXPECT_EQ(attribute(span, "error.type"), "UNAVAILABLE");
  EXPECT_EQ(span.status_code, exporter::StatusCode::kError);
  EXPECT_EQ(histogram(w.scrape(), "http_server_request_duration_seconds",
                      {{"http_request_method", "POST"},
                       {"http_route", "/pkg.Greeter/SayHello"},
                       {"http_response_status_code", "200"},
                       {"error_type", "UNAVAILABLE"}})
                .count,
            1);
}

TEST(TracedStreamObserverTest, TrailersOnlyGrpcResponseCarriesItsStatusInTheHead) {
  Worker w;
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head =
      requestHead("POST", "/pkg.Greeter/SayHello", {{"content-type", "application/grpc+proto"}});
  EXPECT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  http::Http1Head response = responseHead(200);
  response.headers.add("grpc-status", "5");  // NOT_FOUND: the caller's error, not the server's
  observer->onResponseHead(response);
  observer->onComplete(stats(ListenerRole::kInbound, 200, 5));

  ASSERT_EQ(w.sink.spans.size(), 1u);
  const SpanRecord& span = *w.sink.spans[0];
  EXPECT_EQ(attribute(span, "rpc.grpc.status_code"), "5");
  EXPECT_EQ(span.status_code, exporter::StatusCode::kUnset);
  EXPECT_EQ(attribute(span, "error.type"), "<absent>");
}

TEST(TracedStreamObserverTest, NonGrpcRequestGetsNoRpcAttributes) {
  Worker w;
  std::unique_ptr<StreamObserver> observer = w.inbound.create(ListenerRole::kInbound);
  http::Http1Head head = requestHead("POST", "/pkg.Greeter/SayHello");
  EXPECT_FALSE(observer->onRequestHead(head, kPeer).has_value());
  http::HeaderMap trailers;
  trailers.add("grpc-status", "14");
  observer->onResponseHead(responseHead(200));
  observer->onResponseTrailers(trailers);
  observer->onComplete(stats(ListenerRole::kInbound, 200, 5));
  ASSERT_EQ(w.sink.spans.size(), 1u);
  EXPECT_EQ(attribute(*w.sink.spans[0], "rpc.system"), "<absent>");
  EXPECT_EQ(attribute(*w.sink.spans[0], "rpc.grpc.status_code"), "<absent>");
  EXPECT_EQ(w.sink.spans[0]->status_code, exporter::StatusCode::kUnset);
}

TEST(UnixNanosAtTest, IsTheWallClockNowForTheMonotonicNow) {
  const auto wall = [] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  };
  const uint64_t before = wall();
  const uint64_t converted = unixNanosAt(uv_hrtime());
  const uint64_t after = wall();
  // Within the bounds, give or take what the wall clock may have been slewed since the anchor
  // (at most a second old): far less than a millisecond.
  EXPECT_GE(converted + kMs, before);
  EXPECT_LE(converted, after + kMs);
}

TEST(UnixNanosAtTest, KeepsMonotonicDifferencesExactlyAndTakesEarlierTimes) {
  const uint64_t now = uv_hrtime();
  const uint64_t at_now = unixNanosAt(now);
  // Earlier than the anchor (a request that started before it was taken): still exact.
  EXPECT_EQ(unixNanosAt(now - 300 * kMs), at_now - 300 * kMs);
  EXPECT_EQ(unixNanosAt(now + 1), at_now + 1);
}

// A fake pair of clocks: the monotonic one at fake_monotonic, the wall clock that plus
// fake_wall_offset.
uint64_t fake_monotonic = 0;
uint64_t fake_wall_offset = 0;
uint64_t fakeMonotonic() noexcept { return fake_monotonic; }
uint64_t fakeWall() noexcept { return fake_monotonic + fake_wall_offset; }

TEST(WallClockAnchorTest, FollowsAWallClockStepOnceASecondHasPassed) {
  fake_monotonic = 5'000 * kMs;
  fake_wall_offset = kWallAtMonotonicZero;
  WallClockAnchor anchor(fakeMonotonic, fakeWall);
  EXPECT_EQ(anchor.unixAt(5'000 * kMs), kWallAtMonotonicZero + 5'000 * kMs);
  EXPECT_EQ(anchor.unixAt(4'000 * kMs), kWallAtMonotonicZero + 4'000 * kMs);  // earlier: exact

  // The wall clock is stepped 7 s forward.
  fake_wall_offset = kWallAtMonotonicZero + 7'000 * kMs;
  fake_monotonic = 5'999 * kMs;
  EXPECT_EQ(anchor.unixAt(5'999 * kMs), kWallAtMonotonicZero + 5'999 * kMs);  // not yet seen
  fake_monotonic = 6'000 * kMs;  // a second past the anchor: taken again
  EXPECT_EQ(anchor.unixAt(6'000 * kMs), kWallAtMonotonicZero + 13'000 * kMs);
  EXPECT_EQ(anchor.unixAt(6'500 * kMs), kWallAtMonotonicZero + 13'500 * kMs);
}

TEST(WallClockAnchorTest, NeverGoesBelowTheEpoch) {
  fake_monotonic = 10'000 * kMs;
  fake_wall_offset = 0;  // a wall clock at 10 s after 1970
  WallClockAnchor anchor(fakeMonotonic, fakeWall);
  EXPECT_EQ(anchor.unixAt(10'000 * kMs), 10'000 * kMs);
  EXPECT_EQ(anchor.unixAt(1'000 * kMs), 1'000 * kMs);
  EXPECT_EQ(anchor.unixAt(0), 0u);
  fake_wall_offset = 0;
  fake_monotonic = 10'000 * kMs;
  WallClockAnchor early(fakeMonotonic, [] () noexcept -> uint64_t { return 2'000 * kMs; });
  EXPECT_EQ(early.unixAt(5'000 * kMs), 0u);  // 5 s before a wall clock at 2 s: clamped
}

}  // namespace
}  // namespace tracecar::proxy
