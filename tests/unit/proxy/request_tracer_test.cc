#include "proxy/request_tracer.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporter/span.h"
#include "http/header_map.h"
#include "http/route_resolver.h"
#include "http/route_template.h"
#include "propagation/composite_propagator.h"
#include "proxy/header_map_carrier.h"
#include "sampling/sampler.h"
#include "sampling/trust_policy.h"
#include "support/counting_allocator.h"

namespace tracecar::proxy {
namespace {

using exporter::SpanKind;
using exporter::SpanRecord;
using exporter::StatusCode;
using semconv::UpstreamFailure;
namespace attr = semconv::attr;

constexpr std::string_view kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kParent = "00f067aa0ba902b7";
constexpr uint64_t kStart = 1'700'000'000'000'000'000;
constexpr uint64_t kEnd = kStart + 2'500'000;

std::string traceparent(std::string_view flags = "01") {
  return "00-" + std::string(kTrace) + "-" + std::string(kParent) + "-" + std::string(flags);
}

class CollectingSink : public SpanSink {
 public:
  void onSpanEnd(std::unique_ptr<SpanRecord>&& span) override { spans.push_back(std::move(span)); }
  std::vector<std::unique_ptr<SpanRecord>> spans;
};

propagation::PropagationConfig propagationConfig(std::string_view propagators) {
  propagation::PropagationConfig config;
  config.propagators = *propagation::parsePropagators(propagators);
  return config;
}

http::RouteMatcher routeMatcher() {
  return *http::RouteMatcher::compile({"/users/{id}", "/files/{path...}"});
}

uint64_t g_mono_ns = 0;
uint64_t fakeMonotonic() noexcept { return g_mono_ns; }

// One worker's tracer over a seeded id generator and a collecting sink; the default sampler
// (parentbased_always_on) and trust policy (always) unless given.
struct Tracing {
  explicit Tracing(std::string_view propagators = "tracecontext,baggage",
                   RequestTracingConfig tracing_config = {},
                   sampling::Sampler sampler_in = sampling::Sampler(),
                   sampling::TrustPolicy trust_in = sampling::TrustPolicy())
      : propagator(propagationConfig(propagators)),
        routes(routeMatcher()),
        config(std::move(tracing_config)),
        sampler(std::move(sampler_in)),
        trust(std::move(trust_in)),
        ids(42),
        tracer(propagator, &routes, config, sampler, trust, sink, &ids, fakeMonotonic) {}

  propagation::CompositePropagator propagator;
  http::RouteResolver routes;
  RequestTracingConfig config;
  sampling::Sampler sampler;
  sampling::TrustPolicy trust;
  CollectingSink sink;
  propagation::IdGenerator ids;
  RequestTracer tracer;
};

// A tracer with no propagator and the given routes (null: none), the default sampler and trust
// policy, the real clock.
struct BareTracing {
  explicit BareTracing(http::RouteResolver* routes)
      : tracer(propagator, routes, config, sampler, trust, sink, &ids) {}

  propagation::CompositePropagator propagator;
  RequestTracingConfig config;
  CollectingSink sink;
  propagation::IdGenerator ids{7};
  const sampling::Sampler sampler;
  const sampling::TrustPolicy trust;
  RequestTracer tracer;
};

sampling::Sampler samplerOf(sampling::SamplingConfig config) {
  absl::StatusOr<sampling::Sampler> sampler = sampling::Sampler::create(config);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  return *std::move(sampler);
}

struct Request {
  Request(std::string m, std::string t,
          std::initializer_list<std::pair<std::string_view, std::string_view>> fields = {})
      : method(std::move(m)), target(std::move(t)) {
    for (const auto& [name, value] : fields) headers.add(name, value);
  }
  RequestTracer::Head head() { return {method, target, major, minor, headers}; }
  std::string get(std::string_view name) const {
    return std::string(headers.get(name).value_or("<absent>"));
  }

  std::string method;
  std::string target;
  uint8_t major = 1;
  uint8_t minor = 1;
  http::HeaderMap headers;
};

const RequestTracer::Peer kPeer{"10.1.2.3", 51234};

std::string str(const SpanRecord& span, std::string_view key) {
  const exporter::AttributeValue* value = span.attributes.find(key);
  if (value == nullptr) return "<absent>";
  if (const auto* s = std::get_if<std::string>(value)) return *s;
  return "<not a string>";
}

std::optional<int64_t> num(const SpanRecord& span, std::string_view key) {
  const exporter::AttributeValue* value = span.attributes.find(key);
  if (value == nullptr) return std::nullopt;
  if (const auto* i = std::get_if<int64_t>(value)) return *i;
  return std::nullopt;
}

bool has(const SpanRecord& span, std::string_view key) {
  return span.attributes.find(key) != nullptr;
}

// A finished SERVER exchange: begin, response status, end. Returns the outcome.
TracedRequest::Outcome serve(Tracing& t, Request& r, int status,
                             SpanKind kind = SpanKind::kServer) {
  TracedRequest traced = t.tracer.begin(kind, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.rejection());
  if (status != 0) traced.onResponseHead(status);
  return traced.end(kEnd);
}

std::string baggageOf(size_t members, size_t value_length = 1) {
  std::string out;
  for (size_t i = 0; i < members; ++i) {
    if (i) out += ',';
    out += "k" + std::to_string(i) + "=" + std::string(value_length, 'v');
  }
  return out;
}

std::string tracestateOf(size_t members, size_t value_length = 1) {
  std::string out;
  for (size_t i = 0; i < members; ++i) {
    if (i) out += ',';
    out += "vendor" + std::to_string(i) + "=" + std::string(value_length, 'x');
  }
  return out;
}

size_t countFields(const http::HeaderMap& headers, std::string_view prefix) {
  size_t n = 0;
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string_view name = headers.name(i);
    if (name.size() >= prefix.size() &&
        http::HeaderMap::nameEquals(name.substr(0, prefix.size()), prefix)) {
      ++n;
    }
  }
  return n;
}

// ---- Header map carrier ----------------------------------------------------------------------

TEST(HeaderMapCarrierTest, ReadsFieldsCaseInsensitivelyInOrder) {
  http::HeaderMap map;
  map.add("Tracestate", "a=1");
  map.add("Host", "h");
  map.add("tracestate", "b=2");
  const HeaderMapReader reader(map);
  std::vector<std::string_view> values;
  reader.forEach("tracestate", [&](std::string_view v) { values.push_back(v); });
  EXPECT_EQ(values, (std::vector<std::string_view>{"a=1", "b=2"}));
}

TEST(HeaderMapCarrierTest, VisitsEveryFieldWithItsNameAsReceived) {
  http::HeaderMap map;
  map.add("Uberctx-Tenant", "acme");
  map.add("host", "h");
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  HeaderMapReader(map).forEachField(
      [&](std::string_view n, std::string_view v) { fields.emplace_back(n, v); });
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[0].first, "Uberctx-Tenant");
  EXPECT_EQ(fields[1].second, "h");
}

TEST(HeaderMapCarrierTest, SetReplacesAllFieldsAndRemoveDropsThem) {
  http::HeaderMap map;
  map.add("Baggage", "a=1");
  map.add("x", "y");
  map.add("baggage", "b=2");
  HeaderMapCarrier carrier(map);
  carrier.set("baggage", "c=3");
  EXPECT_EQ(map.count("baggage"), 1u);
  EXPECT_EQ(map.get("baggage"), "c=3");
  EXPECT_EQ(map.name(0), "Baggage");  // the first field's place and spelling
  carrier.remove("BAGGAGE");
  EXPECT_EQ(map.count("baggage"), 0u);
  EXPECT_EQ(map.size(), 1u);
}

TEST(HeaderMapCarrierTest, ReadsAllocateNothing) {
  http::HeaderMap map;
  for (int i = 0; i < 20; ++i) map.add("x-field-" + std::to_string(i), "value");
  map.add("traceparent", traceparent());
  const HeaderMapReader reader(map);
  size_t seen = 0;
  const size_t before = g_allocations.load();
  reader.forEach("traceparent", [&](std::string_view) { ++seen; });
  reader.forEachField([&](std::string_view, std::string_view) { ++seen; });
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_EQ(seen, 22u);
}

// ---- Context -----------------------------------------------------------------------------------

TEST(RequestTracerTest, ContinuesIncomingTraceWithOurSpanAsNextParent) {
  Tracing t;
  Request r("GET", "/users/42", {{"Host", "shop.example"}, {"traceparent", traceparent()}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  const propagation::SpanContext ours = traced.spanContext();
  EXPECT_EQ(ours.trace_id.toHex(), kTrace);
  EXPECT_EQ(traced.parentSpanId().toHex(), kParent);
  EXPECT_NE(ours.span_id.toHex(), kParent);
  EXPECT_TRUE(traced.sampled());
  EXPECT_EQ(r.get("traceparent"),
            "00-" + std::string(kTrace) + "-" + ours.span_id.toHex() + "-01");
  EXPECT_EQ(r.headers.count("traceparent"), 1u);

  traced.onResponseHead(200);
  const TracedRequest::Outcome outcome = traced.end(kEnd);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  const SpanRecord& span = *t.sink.spans[0];
  EXPECT_EQ(span.trace_id.toHex(), kTrace);
  EXPECT_EQ(span.span_id, ours.span_id);
  EXPECT_EQ(span.parent_span_id.toHex(), kParent);
  EXPECT_EQ(span.kind, SpanKind::kServer);
  EXPECT_EQ(span.flags, 0x01u | exporter::span_flags::kHasIsRemote |
                            exporter::span_flags::kIsRemote);
  EXPECT_EQ(span.start_unix_nano, kStart);
  EXPECT_EQ(span.end_unix_nano, kEnd);
  EXPECT_TRUE(outcome.sampled);
  EXPECT_EQ(outcome.duration_ns, kEnd - kStart);
}

TEST(RequestTracerTest, KeepsTheIncomingRandomFlag) {
  Tracing t;
  Request r("GET", "/", {{"traceparent", traceparent("03")}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(traced.spanContext().flags, 0x03);
  EXPECT_TRUE(r.get("traceparent").ends_with("-03"));
  traced.end(kEnd);
}

TEST(RequestTracerTest, NoContextStartsASampledRootTrace) {
  Tracing t;
  Request r("GET", "/users/1", {{"Host", "h"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_TRUE(traced.spanContext().isValid());
  EXPECT_FALSE(traced.parentSpanId().isValid());
  EXPECT_TRUE(traced.sampled());
  EXPECT_EQ(traced.spanContext().flags, 0x03);  // sampled + random
  EXPECT_EQ(r.get("traceparent"), "00-" + traced.spanContext().trace_id.toHex() + "-" +
                                      traced.spanContext().span_id.toHex() + "-03");
  // A root kept by parentbased_always_on adds no tracestate (th:0 only when configured).
  EXPECT_EQ(r.get("tracestate"), "<absent>");
  EXPECT_EQ(traced.samplingRule(), sampling::Sampler::kDefaultRule);
  EXPECT_EQ(traced.samplingResult(), SamplingResult::kSampled);
  traced.onResponseHead(200);
  traced.end(kEnd);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  const SpanRecord& span = *t.sink.spans[0];
  EXPECT_FALSE(span.parent_span_id.isValid());
  EXPECT_EQ(span.flags, 0x03u | exporter::span_flags::kHasIsRemote);  // no remote parent
  EXPECT_EQ(span.trace_state, "");
  EXPECT_TRUE(span.links.empty());
}

TEST(RequestTracerTest, InvalidTraceparentRestartsAndDropsTracestate) {
  Tracing t;
  const std::string upper = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
  Request r("GET", "/", {{"traceparent", upper}, {"tracestate", "congo=t61rcWkgMzE"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(traced.extractReport().traceparent, propagation::TraceparentStatus::kBadFormat);
  EXPECT_NE(traced.spanContext().trace_id.toHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(traced.parentSpanId().isValid());
  // The incoming tracestate is gone, and the new root adds none.
  EXPECT_EQ(r.get("tracestate"), "<absent>");
  EXPECT_EQ(r.get("traceparent").substr(3, 32), traced.spanContext().trace_id.toHex());
  traced.onResponseHead(200);
  traced.end(kEnd);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  EXPECT_EQ(t.sink.spans[0]->trace_state, "");
  EXPECT_FALSE(t.sink.spans[0]->parent_span_id.isValid());
}

TEST(RequestTracerTest, TracestateIsForwardedAndRecorded) {
  Tracing t;
  Request r("GET", "/",
            {{"traceparent", traceparent()}, {"tracestate", "congo=t61rcWkgMzE, rojo=00f067aa"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(r.get("tracestate"), "congo=t61rcWkgMzE,rojo=00f067aa");
  traced.end(kEnd);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  EXPECT_EQ(t.sink.spans[0]->trace_state, "congo=t61rcWkgMzE,rojo=00f067aa");
}

TEST(RequestTracerTest, UnsampledIncomingIsNotExportedButStillInjected) {
  Tracing t;
  Request r("GET", "/users/9", {{"traceparent", traceparent("00")}, {"tracestate", "a=1"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.sampled());
  EXPECT_EQ(r.get("traceparent"),
            "00-" + std::string(kTrace) + "-" + traced.spanContext().span_id.toHex() + "-00");
  EXPECT_EQ(r.get("tracestate"), "a=1");
  traced.onResponseHead(200);
  const TracedRequest::Outcome outcome = traced.end(kEnd);
  EXPECT_TRUE(t.sink.spans.empty());
  EXPECT_FALSE(outcome.sampled);
  EXPECT_EQ(outcome.method, "GET");
  EXPECT_EQ(outcome.route, "/users/{id}");
  EXPECT_EQ(outcome.status_code, 200);
  EXPECT_EQ(outcome.duration_ns, kEnd - kStart);
}

TEST(RequestTracerTest, BaggageIsForwarded) {
  Tracing t;
  Request r("GET", "/", {{"baggage", "userId=alice, isProduction=false"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(r.get("baggage"), "userId=alice,isProduction=false");
  traced.end(kEnd);
}

// ---- Sampling and trust ------------------------------------------------------------------------

sampling::SamplingConfig samplerConfig(sampling::SamplerKind kind, double ratio = 1.0) {
  sampling::SamplingConfig config;
  config.sampler = {kind, ratio};
  return config;
}

// R = the trace id's low 56 bits: 0xce929d0e0e4736 for kTrace (kept at 0.25), 1 for kLowTrace.
constexpr std::string_view kLowTrace = "4bf92f3577b34da6a300000000000001";

TEST(SamplingTest, RatioKeepsByTraceIdAndWritesTheThreshold) {
  Tracing t("tracecontext,baggage", {},
            samplerOf(samplerConfig(sampling::SamplerKind::kTraceIdRatio, 0.25)));
  Request kept("GET", "/", {{"traceparent", traceparent("00")}, {"tracestate", "congo=x"}});
  TracedRequest a = t.tracer.begin(SpanKind::kServer, kept.head(), kPeer, "http", kStart);
  EXPECT_TRUE(a.sampled());  // traceidratio ignores the parent's flag
  EXPECT_EQ(kept.get("tracestate"), "ot=th:c,congo=x");
  EXPECT_EQ(a.samplingRule(), sampling::Sampler::kDefaultRule);
  a.end(kEnd);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  EXPECT_EQ(t.sink.spans[0]->trace_state, "ot=th:c,congo=x");

  Request dropped("GET", "/", {{"traceparent", "00-" + std::string(kLowTrace) + "-" +
                                                   std::string(kParent) + "-01"},
                               {"tracestate", "ot=th:8,congo=x"}});
  TracedRequest b = t.tracer.begin(SpanKind::kServer, dropped.head(), kPeer, "http", kStart);
  EXPECT_FALSE(b.sampled());
  EXPECT_EQ(b.samplingResult(), SamplingResult::kDropped);
  EXPECT_TRUE(dropped.get("traceparent").ends_with("-00"));
  EXPECT_EQ(dropped.get("tracestate"), "congo=x");  // a dropped span carries no th
  b.end(kEnd);
  EXPECT_EQ(t.sink.spans.size(), 1u);
}

// The threshold the sampler writes counts toward the tracestate limit: what goes on fits it.
TEST(SamplingTest, TheThresholdWrittenStillFitsTheTracestateLimit) {
  Tracing t("tracecontext,baggage", {},
            samplerOf(samplerConfig(sampling::SamplerKind::kTraceIdRatio, 0.25)));
  // 8 members and 7 commas, 512 characters: at the limit, all kept by the extract.
  std::string at_limit;
  for (int i = 0; i < 8; ++i) {
    if (i > 0) at_limit += ',';
    at_limit += "k" + std::to_string(i) + "=" + std::string(i == 7 ? 54 : 61, 'v');
  }
  ASSERT_EQ(at_limit.size(), 512u);
  Request r("GET", "/", {{"traceparent", traceparent("01")}, {"tracestate", at_limit}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_TRUE(traced.sampled());
  const std::string forwarded(r.get("tracestate"));
  EXPECT_LE(forwarded.size(), 512u) << forwarded;
  EXPECT_TRUE(forwarded.starts_with("ot=th:c,k0=")) << forwarded;
  EXPECT_EQ(forwarded.find("k7="), std::string::npos);  // the rightmost member made room
  EXPECT_EQ(traced.extractReport().tracestate_entries_truncated, 1u);
  traced.end(kEnd);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  EXPECT_EQ(t.sink.spans[0]->trace_state, forwarded);
}

// A list of 32 entries without ot: the sampler's entry takes the rightmost one's place, and
// that one is counted as dropped (member_limit). With 31, or with an ot already there, none is.
TEST(SamplingTest, TheThresholdInAFullListDropsTheRightmostAndCountsIt) {
  Tracing t("tracecontext,baggage", {},
            samplerOf(samplerConfig(sampling::SamplerKind::kTraceIdRatio, 0.25)));
  Request full("GET", "/", {{"traceparent", traceparent("01")}, {"tracestate", tracestateOf(32)}});
  TracedRequest a = t.tracer.begin(SpanKind::kServer, full.head(), kPeer, "http", kStart);
  ASSERT_TRUE(a.sampled());
  const std::string forwarded(full.get("tracestate"));
  EXPECT_TRUE(forwarded.starts_with("ot=th:c,vendor0=x")) << forwarded;
  EXPECT_EQ(forwarded.find("vendor31="), std::string::npos) << forwarded;
  EXPECT_EQ(a.extractReport().tracestate_entries_evicted, 1u);
  EXPECT_EQ(a.extractReport().tracestate_entries_truncated, 0u);
  a.end(kEnd);

  Request room("GET", "/", {{"traceparent", traceparent("01")}, {"tracestate", tracestateOf(31)}});
  TracedRequest b = t.tracer.begin(SpanKind::kServer, room.head(), kPeer, "http", kStart);
  EXPECT_NE(std::string(room.get("tracestate")).find("vendor30=x"), std::string::npos);
  EXPECT_EQ(b.extractReport().tracestate_entries_evicted, 0u);
  b.end(kEnd);

  Request with_ot("GET", "/", {{"traceparent", traceparent("01")},
                               {"tracestate", "ot=th:8," + tracestateOf(31)}});
  TracedRequest c = t.tracer.begin(SpanKind::kServer, with_ot.head(), kPeer, "http", kStart);
  EXPECT_NE(std::string(with_ot.get("tracestate")).find("vendor30=x"), std::string::npos);
  EXPECT_EQ(c.extractReport().tracestate_entries_evicted, 0u);
  c.end(kEnd);
}

TEST(SamplingTest, ParentBasedFollowsTheParentAndPassesItsThresholdOn) {
  Tracing t("tracecontext,baggage", {},
            samplerOf(samplerConfig(sampling::SamplerKind::kParentBasedTraceIdRatio, 0.25)));
  Request r("GET", "/", {{"traceparent", traceparent("01")}, {"tracestate", "ot=th:c"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_TRUE(traced.sampled());
  EXPECT_EQ(traced.samplingRule(), sampling::Sampler::kParentRule);
  EXPECT_EQ(r.get("tracestate"), "ot=th:c");
  traced.end(kEnd);
}

TEST(SamplingTest, FirstMatchingRuleByRouteAndMethodDecides) {
  sampling::SamplingConfig config = samplerConfig(sampling::SamplerKind::kParentBasedAlwaysOn);
  config.rules = *sampling::parseRules("GET /users/*=never, *=always");
  Tracing t("tracecontext,baggage", {}, samplerOf(config));
  Request get("GET", "/users/7", {});
  TracedRequest a = t.tracer.begin(SpanKind::kServer, get.head(), kPeer, "http", kStart);
  EXPECT_EQ(a.route(), "/users/{id}");
  EXPECT_FALSE(a.sampled());
  EXPECT_EQ(t.sampler.ruleLabel(a.samplingRule()), "GET /users/*");
  EXPECT_EQ(get.get("tracestate"), "<absent>");
  a.end(kEnd);
  Request post("POST", "/users/7", {});
  TracedRequest b = t.tracer.begin(SpanKind::kServer, post.head(), kPeer, "http", kStart);
  EXPECT_TRUE(b.sampled());
  EXPECT_EQ(t.sampler.ruleLabel(b.samplingRule()), "default");
  EXPECT_EQ(post.get("tracestate"), "<absent>");
  b.end(kEnd);
}

TEST(SamplingTest, RateLimitDropsRootsPastTheBurstAndErasesTheThreshold) {
  sampling::SamplingConfig config = samplerConfig(sampling::SamplerKind::kParentBasedAlwaysOn);
  config.rate_limit = sampling::RateLimitSettings{1, 2};
  Tracing t("tracecontext,baggage", {}, samplerOf(config));
  g_mono_ns = 5'000'000'000;
  std::vector<SamplingResult> results;
  for (int i = 0; i < 3; ++i) {
    Request r("GET", "/", {});
    TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
    results.push_back(traced.samplingResult());
    EXPECT_EQ(r.get("tracestate"), "<absent>");  // the rate limit makes p unknown: no th
    traced.end(kEnd);
  }
  EXPECT_EQ(results, (std::vector<SamplingResult>{SamplingResult::kSampled,
                                                  SamplingResult::kSampled,
                                                  SamplingResult::kRateLimited}));
  g_mono_ns += 1'000'000'000;  // one more token
  Request r("GET", "/", {});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(traced.samplingResult(), SamplingResult::kSampled);
  traced.end(kEnd);
  // A child of a sampled parent takes no token.
  Request child("GET", "/", {{"traceparent", traceparent("01")}});
  TracedRequest c = t.tracer.begin(SpanKind::kServer, child.head(), kPeer, "http", kStart);
  EXPECT_EQ(c.samplingResult(), SamplingResult::kSampled);
  c.end(kEnd);
  EXPECT_EQ(t.sink.spans.size(), 4u);
}

sampling::TrustPolicy trustOf(std::string_view text) {
  absl::StatusOr<sampling::TrustPolicy> policy = sampling::TrustPolicy::parse(text);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return *std::move(policy);
}

TEST(TrustTest, UntrustedSourceRestartsTheTraceWithALinkToTheIncomingContext) {
  Tracing t("tracecontext,baggage", {}, sampling::Sampler(), trustOf("192.0.2.0/24"));
  Request r("GET", "/users/1", {{"traceparent", traceparent("01")},
                                {"tracestate", "congo=t61rcWkgMzE"},
                                {"baggage", "uid=alice"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_TRUE(traced.restartedUntrusted());
  EXPECT_NE(traced.spanContext().trace_id.toHex(), kTrace);
  EXPECT_FALSE(traced.parentSpanId().isValid());
  EXPECT_TRUE(traced.sampled());  // a root of parentbased_always_on
  EXPECT_EQ(r.get("traceparent"), "00-" + traced.spanContext().trace_id.toHex() + "-" +
                                      traced.spanContext().span_id.toHex() + "-03");
  EXPECT_EQ(r.get("tracestate"), "<absent>");  // the caller's congo is not forwarded
  EXPECT_EQ(r.get("baggage"), "uid=alice");   // kept unless drop_untrusted_baggage
  traced.onResponseHead(200);
  traced.end(kEnd);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  const SpanRecord& span = *t.sink.spans[0];
  EXPECT_FALSE(span.parent_span_id.isValid());
  EXPECT_EQ(span.flags, 0x03u | exporter::span_flags::kHasIsRemote);
  EXPECT_EQ(span.trace_state, "");
  ASSERT_EQ(span.links.size(), 1u);
  const exporter::SpanLink& link = span.links[0];
  EXPECT_EQ(link.trace_id.toHex(), kTrace);
  EXPECT_EQ(link.span_id.toHex(), kParent);
  EXPECT_EQ(link.trace_state, "congo=t61rcWkgMzE");
  EXPECT_EQ(link.flags, 0x01u | exporter::span_flags::kHasIsRemote |
                            exporter::span_flags::kIsRemote);
}

TEST(TrustTest, UntrustedSampledFlagCannotForceSampling) {
  sampling::SamplingConfig config = samplerConfig(sampling::SamplerKind::kParentBasedAlwaysOff);
  Tracing t("tracecontext,baggage", {}, samplerOf(config), trustOf("192.0.2.0/24, ::1"));
  Request outside("GET", "/", {{"traceparent", traceparent("01")}, {"tracestate", "ot=th:0"}});
  TracedRequest a = t.tracer.begin(SpanKind::kServer, outside.head(), kPeer, "http", kStart);
  EXPECT_TRUE(a.restartedUntrusted());
  EXPECT_FALSE(a.sampled());
  EXPECT_EQ(a.samplingRule(), sampling::Sampler::kDefaultRule);
  EXPECT_EQ(outside.get("tracestate"), "<absent>");
  a.end(kEnd);
  // The same context from a trusted peer is followed.
  Request inside("GET", "/", {{"traceparent", traceparent("01")}, {"tracestate", "ot=th:0"}});
  TracedRequest b = t.tracer.begin(SpanKind::kServer, inside.head(),
                                   RequestTracer::Peer{"192.0.2.9", 4000}, "http", kStart);
  EXPECT_FALSE(b.restartedUntrusted());
  EXPECT_TRUE(b.sampled());
  EXPECT_EQ(b.spanContext().trace_id.toHex(), kTrace);
  EXPECT_EQ(inside.get("tracestate"), "ot=th:0");
  b.end(kEnd);
  // And so is one from an IPv6 peer in the list.
  Request local("GET", "/", {{"traceparent", traceparent("01")}});
  TracedRequest c = t.tracer.begin(SpanKind::kServer, local.head(),
                                   RequestTracer::Peer{"::1", 4000}, "http", kStart);
  EXPECT_FALSE(c.restartedUntrusted());
  c.end(kEnd);
}

TEST(TrustTest, DropUntrustedBaggageDropsOnlyTheUntrustedSourcesBaggage) {
  RequestTracingConfig config;
  config.drop_untrusted_baggage = true;
  Tracing t("tracecontext,baggage", config, sampling::Sampler(), trustOf("192.0.2.0/24"));
  Request outside("GET", "/", {{"baggage", "uid=alice,tier=gold"}});
  TracedRequest a = t.tracer.begin(SpanKind::kServer, outside.head(), kPeer, "http", kStart);
  EXPECT_FALSE(a.restartedUntrusted());  // no context to restart, but the baggage goes
  EXPECT_EQ(a.untrustedBaggageDropped(), 2u);
  EXPECT_EQ(outside.get("baggage"), "<absent>");
  a.end(kEnd);
  Request inside("GET", "/", {{"baggage", "uid=alice,tier=gold"}});
  TracedRequest b = t.tracer.begin(SpanKind::kServer, inside.head(),
                                   RequestTracer::Peer{"192.0.2.9", 4000}, "http", kStart);
  EXPECT_EQ(b.untrustedBaggageDropped(), 0u);
  EXPECT_EQ(inside.get("baggage"), "uid=alice,tier=gold");
  b.end(kEnd);
}

TEST(TrustTest, ClientSpansContinueTheAppsContextWhateverThePolicy) {
  Tracing t("tracecontext,baggage", {}, sampling::Sampler(), sampling::TrustPolicy::never());
  Request r("GET", "http://up.example/x", {{"traceparent", traceparent("01")}});
  TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(),
                                        RequestTracer::Peer{"127.0.0.1", 5000}, "http", kStart);
  EXPECT_FALSE(traced.restartedUntrusted());
  EXPECT_EQ(traced.spanContext().trace_id.toHex(), kTrace);
  traced.end(kEnd);
}

TEST(TrustTest, UnknownPeerAddressIsNotTrustedByAList) {
  Tracing t("tracecontext,baggage", {}, sampling::Sampler(), trustOf("127.0.0.1"));
  Request r("GET", "/", {{"traceparent", traceparent("01")}});
  TracedRequest traced =
      t.tracer.begin(SpanKind::kServer, r.head(), RequestTracer::Peer{}, "http", kStart);
  EXPECT_TRUE(traced.restartedUntrusted());
  traced.end(kEnd);
}

// ---- Baggage and tracestate policies ---------------------------------------------------------

TEST(ContextPolicyTest, BaggageAtTheMemberLimitIsForwardedWhole) {
  Tracing t;
  Request r("GET", "/", {{"baggage", baggageOf(64)}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.rejection());
  EXPECT_EQ(r.get("baggage"), baggageOf(64));
  EXPECT_EQ(traced.extractReport().baggage.dropped(), 0u);
  traced.end(kEnd);
}

TEST(ContextPolicyTest, BaggageOverTheMemberLimitIsTruncatedAndCounted) {
  Tracing t;
  Request r("GET", "/", {{"baggage", baggageOf(70)}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.rejection());
  EXPECT_EQ(r.get("baggage"), baggageOf(64));
  EXPECT_EQ(traced.extractReport().baggage.kept, 64u);
  EXPECT_EQ(traced.extractReport().baggage.dropped_member_limit, 6u);
  traced.end(kEnd);
  EXPECT_EQ(t.sink.spans.size(), 1u);
}

TEST(ContextPolicyTest, BaggageOverTheByteLimitIsTruncatedAndCounted) {
  Tracing t;
  Request r("GET", "/", {{"baggage", baggageOf(3, 3000)}});  // ~9000 bytes
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.rejection());
  EXPECT_EQ(r.get("baggage"), baggageOf(2, 3000));
  EXPECT_EQ(traced.extractReport().baggage.dropped_byte_limit, 1u);
  traced.end(kEnd);
}

RequestTracingConfig rejecting() {
  RequestTracingConfig config;
  config.baggage_policy = ContextHeaderPolicy::kReject;
  config.tracestate_policy = ContextHeaderPolicy::kReject;
  return config;
}

TEST(ContextPolicyTest, BaggageOverTheLimitIsRejectedAndNothingInjected) {
  Tracing t("tracecontext,baggage", rejecting());
  Request r("GET", "/users/1", {{"traceparent", traceparent()}, {"baggage", baggageOf(65)}});
  std::string before;
  r.headers.serialize(before);
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  ASSERT_TRUE(traced.rejection());
  EXPECT_EQ(traced.rejection()->reason, ContextRejection::Reason::kBaggage);
  EXPECT_EQ(traced.rejection()->status_code, 431);
  EXPECT_EQ(traced.rejection()->message, "baggage over the limit of 64 members or 8192 bytes");
  EXPECT_EQ(toString(traced.rejection()->reason), "baggage");
  std::string after;
  r.headers.serialize(after);
  EXPECT_EQ(after, before);  // not rewritten: the request is never forwarded
  EXPECT_EQ(traced.extractReport().baggage.dropped_member_limit, 1u);
  const TracedRequest::Outcome outcome = traced.end(kEnd);
  EXPECT_TRUE(outcome.rejected);
  EXPECT_EQ(outcome.status_code, 431);
  EXPECT_EQ(outcome.route, "");  // never reaches the route resolver
  EXPECT_EQ(outcome.error_type, "");  // a SERVER 4xx is no error
  EXPECT_TRUE(t.sink.spans.empty());
  EXPECT_EQ(t.routes.limiter().size(), 0u);
}

// The same refusal of an outbound request: no span, but a CLIENT 4xx is an error, and the
// metrics' error_type says so.
TEST(ContextPolicyTest, AClientRequestRejected431IsAnErrorForTheMetrics) {
  Tracing t("tracecontext,baggage", rejecting());
  Request r("GET", "http://orders.local/x", {{"baggage", baggageOf(65)}});
  TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", kStart);
  ASSERT_TRUE(traced.rejection());
  const TracedRequest::Outcome outcome = traced.end(kEnd);
  EXPECT_EQ(outcome.status_code, 431);
  EXPECT_EQ(outcome.error_type, "431");
  EXPECT_TRUE(t.sink.spans.empty());
}

TEST(ContextPolicyTest, RejectPolicyPassesBaggageAtTheLimit) {
  Tracing t("tracecontext,baggage", rejecting());
  Request r("GET", "/", {{"baggage", baggageOf(64)}, {"tracestate", tracestateOf(32)},
                         {"traceparent", traceparent()}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.rejection());
  EXPECT_EQ(r.get("baggage"), baggageOf(64));
  EXPECT_EQ(r.get("tracestate"), tracestateOf(32));
  traced.end(kEnd);
}

TEST(ContextPolicyTest, InvalidBaggageMembersAreDroppedEvenUnderReject) {
  Tracing t("tracecontext,baggage", rejecting());
  Request r("GET", "/", {{"baggage", "good=1,bad key=2"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.rejection());  // a limit policy, not a validity one
  EXPECT_EQ(r.get("baggage"), "good=1");
  EXPECT_EQ(traced.extractReport().baggage.dropped_invalid, 1u);
  traced.end(kEnd);
}

TEST(ContextPolicyTest, TracestateOverTheLengthLimitIsTruncatedAndCounted) {
  Tracing t;
  const std::string incoming = tracestateOf(10, 60);  // 10 entries of 68 or 69 characters
  ASSERT_GT(incoming.size(), 512u);
  Request r("GET", "/", {{"traceparent", traceparent()}, {"tracestate", incoming}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.rejection());
  const std::string forwarded = r.get("tracestate");
  EXPECT_LE(forwarded.size(), 512u);
  EXPECT_EQ(forwarded, tracestateOf(7, 60));
  EXPECT_EQ(traced.extractReport().tracestate_entries_truncated, 3u);
  traced.end(kEnd);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  EXPECT_EQ(t.sink.spans[0]->trace_state, forwarded);
}

TEST(ContextPolicyTest, TracestateOverTheLengthLimitIsRejected) {
  Tracing t("tracecontext,baggage", rejecting());
  Request r("GET", "/", {{"traceparent", traceparent()}, {"tracestate", tracestateOf(10, 60)}});
  const std::string before = r.get("traceparent");
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  ASSERT_TRUE(traced.rejection());
  EXPECT_EQ(traced.rejection()->reason, ContextRejection::Reason::kTracestate);
  EXPECT_EQ(traced.rejection()->status_code, 431);
  EXPECT_EQ(traced.rejection()->message,
            "tracestate over the limit of 32 members or 512 characters");
  EXPECT_EQ(r.get("traceparent"), before);
  EXPECT_EQ(r.get("tracestate"), tracestateOf(10, 60));
  traced.end(kEnd);
  EXPECT_TRUE(t.sink.spans.empty());
}

TEST(ContextPolicyTest, TracestateOverTheMemberLimitIsDiscardedUnderTruncate) {
  Tracing t;
  Request r("GET", "/", {{"traceparent", traceparent()}, {"tracestate", tracestateOf(33)}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.rejection());
  EXPECT_EQ(traced.extractReport().tracestate, propagation::TraceStateStatus::kTooManyMembers);
  EXPECT_EQ(r.get("tracestate"), "<absent>");
  EXPECT_EQ(traced.spanContext().trace_id.toHex(), kTrace);  // traceparent kept
  traced.end(kEnd);
}

TEST(ContextPolicyTest, TracestateOverTheMemberLimitIsRejected) {
  Tracing t("tracecontext,baggage", rejecting());
  Request r("GET", "/", {{"traceparent", traceparent()}, {"tracestate", tracestateOf(33)}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  ASSERT_TRUE(traced.rejection());
  EXPECT_EQ(traced.rejection()->reason, ContextRejection::Reason::kTracestate);
  traced.end(kEnd);
}

RequestTracingConfig sdkDisabled() {
  RequestTracingConfig config;
  config.sdk_disabled = true;
  return config;
}

TEST(SdkDisabledTest, TheIncomingContextGoesOnAsItCameAndNoSpanIsMade) {
  Tracing t("tracecontext,baggage", sdkDisabled());
  Request r("GET", "/users/7", {{"traceparent", traceparent("01")},
                                {"tracestate", "congo=t61rcWkgMzE"},
                                {"baggage", "uid=alice;p=1"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.rejection());
  // The caller's span stays the next hop's parent: the same traceparent, flags and all.
  EXPECT_EQ(r.get("traceparent"), traceparent("01"));
  EXPECT_EQ(r.headers.count("traceparent"), 1u);
  EXPECT_EQ(r.get("tracestate"), "congo=t61rcWkgMzE");
  EXPECT_EQ(r.get("baggage"), "uid=alice;p=1");
  EXPECT_EQ(traced.spanContext().span_id.toHex(), kParent);
  EXPECT_FALSE(traced.sampled());
  EXPECT_FALSE(traced.samplingDecided());
  EXPECT_EQ(traced.route(), "/users/{id}");  // the metrics still get their route
  traced.onResponseHead(200);
  const TracedRequest::Outcome outcome = traced.end(kEnd);
  EXPECT_TRUE(t.sink.spans.empty());
  EXPECT_FALSE(outcome.sampled);
  EXPECT_EQ(outcome.route, "/users/{id}");
  EXPECT_EQ(outcome.status_code, 200);
}

TEST(SdkDisabledTest, NoContextInjectsNone) {
  Tracing t("tracecontext,baggage,b3", sdkDisabled());
  Request r("GET", "/", {{"Host", "h"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.spanContext().isValid());
  EXPECT_EQ(r.get("traceparent"), "<absent>");
  EXPECT_EQ(r.get("b3"), "<absent>");
  EXPECT_EQ(r.get("baggage"), "<absent>");
  traced.end(kEnd);
  EXPECT_TRUE(t.sink.spans.empty());
}

TEST(SdkDisabledTest, AnInvalidTraceparentAndItsTracestateGoNoFurther) {
  Tracing t("tracecontext,baggage", sdkDisabled());
  const std::string long_tracestate = tracestateOf(10, 60);
  for (const std::string& bad :
       {std::string("00-") + std::string(kTrace) + "-0000000000000000-01", std::string("junk")}) {
    Request r("GET", "/", {{"traceparent", bad}, {"tracestate", long_tracestate},
                           {"baggage", "uid=alice"}});
    TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
    EXPECT_FALSE(traced.spanContext().isValid());
    EXPECT_EQ(r.get("traceparent"), "<absent>") << bad;
    EXPECT_EQ(r.get("tracestate"), "<absent>") << bad;
    EXPECT_EQ(r.get("baggage"), "uid=alice");
    traced.end(kEnd);
  }
  Request lone("GET", "/", {{"tracestate", long_tracestate}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, lone.head(), kPeer, "http", kStart);
  EXPECT_EQ(lone.get("tracestate"), "<absent>");
  traced.end(kEnd);
  EXPECT_TRUE(t.sink.spans.empty());
}

TEST(SdkDisabledTest, AnUnsampledContextStaysUnsampled) {
  Tracing t("tracecontext,baggage", sdkDisabled());
  Request r("GET", "/", {{"traceparent", traceparent("00")}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(r.get("traceparent"), traceparent("00"));
  traced.end(kEnd);
  EXPECT_TRUE(t.sink.spans.empty());
}

TEST(SdkDisabledTest, TheLimitsStillHold) {
  Tracing t("tracecontext,baggage", sdkDisabled());
  const std::string incoming = tracestateOf(10, 60);
  const std::string baggage = baggageOf(65);
  Request r("GET", "/", {{"traceparent", traceparent()}, {"tracestate", incoming},
                         {"baggage", baggage}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(r.get("tracestate"), tracestateOf(7, 60));
  EXPECT_EQ(traced.extractReport().tracestate_entries_truncated, 3u);
  EXPECT_EQ(r.get("baggage"), baggageOf(64));
  EXPECT_EQ(traced.extractReport().baggage.dropped_member_limit, 1u);
  traced.end(kEnd);

  RequestTracingConfig reject = sdkDisabled();
  reject.baggage_policy = ContextHeaderPolicy::kReject;
  Tracing strict("tracecontext,baggage", reject);
  Request over("GET", "/", {{"baggage", baggage}});
  TracedRequest refused = strict.tracer.begin(SpanKind::kServer, over.head(), kPeer, "http", kStart);
  ASSERT_TRUE(refused.rejection());
  EXPECT_EQ(refused.rejection()->status_code, 431);
  refused.end(kEnd);
}

TEST(SdkDisabledTest, AnUntrustedContextIsPassedOnNotRestarted) {
  Tracing t("tracecontext,baggage", sdkDisabled(), sampling::Sampler(), trustOf("192.0.2.0/24"));
  Request r("GET", "/", {{"traceparent", traceparent("01")}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.restartedUntrusted());
  EXPECT_EQ(r.get("traceparent"), traceparent("01"));
  traced.end(kEnd);
  EXPECT_TRUE(t.sink.spans.empty());
}

TEST(ContextPolicyTest, HeaderPolicyNames) {
  EXPECT_EQ(parseContextHeaderPolicy("truncate").value(), ContextHeaderPolicy::kTruncate);
  EXPECT_EQ(parseContextHeaderPolicy("reject").value(), ContextHeaderPolicy::kReject);
  EXPECT_FALSE(parseContextHeaderPolicy("drop").ok());
  EXPECT_EQ(toString(ContextHeaderPolicy::kReject), "reject");
  EXPECT_EQ(toString(ContextHeaderPolicy::kTruncate), "truncate");
}

// ---- Other propagators -----------------------------------------------------------------------

TEST(PropagatorConfigTest, B3SingleIsContinuedAndInjected) {
  Tracing t("b3");
  Request r("GET", "/", {{"b3", std::string(kTrace) + "-" + std::string(kParent) + "-1"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(traced.parentSpanId().toHex(), kParent);
  EXPECT_EQ(r.get("b3"),
            std::string(kTrace) + "-" + traced.spanContext().span_id.toHex() + "-1");
  EXPECT_EQ(r.get("traceparent"), "<absent>");
  traced.end(kEnd);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  EXPECT_EQ(t.sink.spans[0]->flags & exporter::span_flags::kIsRemote,
            exporter::span_flags::kIsRemote);
}

TEST(PropagatorConfigTest, B3MultiInjectsTheXB3Headers) {
  Tracing t("b3multi");
  Request r("GET", "/", {{"X-B3-TraceId", std::string(kTrace)},
                         {"X-B3-SpanId", std::string(kParent)},
                         {"X-B3-Sampled", "0"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.sampled());
  EXPECT_EQ(r.get("x-b3-traceid"), kTrace);
  EXPECT_EQ(r.get("x-b3-spanid"), traced.spanContext().span_id.toHex());
  EXPECT_EQ(r.get("x-b3-sampled"), "0");
  EXPECT_EQ(r.get("b3"), "<absent>");
  traced.end(kEnd);
  EXPECT_TRUE(t.sink.spans.empty());
}

TEST(PropagatorConfigTest, JaegerIsContinuedAndInjectedWithItsBaggage) {
  Tracing t("jaeger");
  const std::string uber = std::string(kTrace) + ":" + std::string(kParent) + ":0:1";
  Request r("GET", "/", {{"uber-trace-id", uber}, {"Uberctx-Tenant", "acme"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(traced.parentSpanId().toHex(), kParent);
  EXPECT_EQ(r.get("uber-trace-id"),
            std::string(kTrace) + ":" + traced.spanContext().span_id.toHex() + ":0:01");
  EXPECT_EQ(r.get("uberctx-tenant"), "acme");
  EXPECT_EQ(countFields(r.headers, "uberctx-"), 1u);
  traced.end(kEnd);
}

TEST(PropagatorConfigTest, JaegerBaggageOverTheLimitIsNotForwarded) {
  Tracing t("jaeger");
  Request r("GET", "/", {});
  for (int i = 0; i < 70; ++i) r.headers.add("uberctx-k" + std::to_string(i), "v");
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(traced.extractReport().baggage.dropped_member_limit, 6u);
  EXPECT_EQ(countFields(r.headers, "uberctx-"), 64u);
  EXPECT_EQ(r.get("uberctx-k69"), "<absent>");
  traced.end(kEnd);
}

TEST(PropagatorConfigTest, JaegerBaggageOverTheLimitIsRejected) {
  Tracing t("jaeger", rejecting());
  Request r("GET", "/", {});
  for (int i = 0; i < 65; ++i) r.headers.add("uberctx-k" + std::to_string(i), "v");
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  ASSERT_TRUE(traced.rejection());
  EXPECT_EQ(countFields(r.headers, "uberctx-"), 65u);
  EXPECT_EQ(r.get("uber-trace-id"), "<absent>");
  traced.end(kEnd);
}

TEST(PropagatorConfigTest, NoneStartsTracesAndInjectsNothing) {
  Tracing t("none");
  Request r("GET", "/", {{"traceparent", traceparent()}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  EXPECT_FALSE(traced.parentSpanId().isValid());
  EXPECT_EQ(r.get("traceparent"), traceparent());  // not ours to touch
  traced.end(kEnd);
}

// ---- SERVER spans ----------------------------------------------------------------------------

TEST(ServerSpanTest, CarriesTheStableHttpAttributes) {
  Tracing t;
  Request r("GET", "/users/42?id=7&flag",
            {{"Host", "shop.example:8080"}, {"User-Agent", "curl/8.0"}});
  serve(t, r, 200);
  ASSERT_EQ(t.sink.spans.size(), 1u);
  const SpanRecord& span = *t.sink.spans[0];
  EXPECT_EQ(span.name, "GET /users/{id}");
  EXPECT_EQ(span.kind, SpanKind::kServer);
  EXPECT_EQ(span.status_code, StatusCode::kUnset);
  EXPECT_EQ(str(span, attr::kHttpRequestMethod), "GET");
  EXPECT_FALSE(has(span, attr::kHttpRequestMethodOriginal));
  EXPECT_EQ(str(span, attr::kUrlPath), "/users/42");
  EXPECT_EQ(str(span, attr::kUrlQuery), "id=REDACTED&flag");
  EXPECT_EQ(str(span, attr::kUrlScheme), "http");
  EXPECT_EQ(str(span, attr::kHttpRoute), "/users/{id}");
  EXPECT_EQ(num(span, attr::kHttpResponseStatusCode), 200);
  EXPECT_EQ(str(span, attr::kNetworkProtocolVersion), "1.1");
  EXPECT_EQ(str(span, attr::kServerAddress), "shop.example");
  EXPECT_EQ(num(span, attr::kServerPort), 8080);
  EXPECT_EQ(str(span, attr::kClientAddress), "10.1.2.3");
  EXPECT_EQ(str(span, attr::kNetworkPeerAddress), "10.1.2.3");
  EXPECT_EQ(num(span, attr::kNetworkPeerPort), 51234);
  EXPECT_EQ(str(span, attr::kUserAgentOriginal), "curl/8.0");
  EXPECT_FALSE(has(span, attr::kErrorType));
  EXPECT_FALSE(has(span, attr::kUrlFull));
}

TEST(ServerSpanTest, SensitiveKeysModeKeepsOtherValues) {
  RequestTracingConfig config;
  config.query_redaction.mode = semconv::QueryRedaction::Mode::kSensitiveKeys;
  Tracing t("tracecontext,baggage", config);
  Request r("GET", "/files/a?color=blue&sig=abc", {{"Host", "h"}});
  serve(t, r, 200);
  EXPECT_EQ(str(*t.sink.spans.at(0), attr::kUrlQuery), "color=blue&sig=REDACTED");
}

TEST(ServerSpanTest, QuestionMarkAloneGivesAnEmptyQuery) {
  Tracing t;
  Request r("GET", "/users/1?", {{"Host", "h"}});
  serve(t, r, 200);
  EXPECT_EQ(str(*t.sink.spans.at(0), attr::kUrlQuery), "");
  Request no_query("GET", "/users/1", {{"Host", "h"}});
  serve(t, no_query, 200);
  EXPECT_FALSE(has(*t.sink.spans.at(1), attr::kUrlQuery));
}

TEST(ServerSpanTest, DefaultPortFollowsTheScheme) {
  Tracing t;
  Request r("GET", "/", {{"Host", "shop.example"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "https", kStart);
  traced.onResponseHead(200);
  traced.end(kEnd);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(str(span, attr::kUrlScheme), "https");
  EXPECT_EQ(num(span, attr::kServerPort), 443);
  Request plain("GET", "/", {{"Host", "[2001:db8::1]"}});
  serve(t, plain, 200);
  EXPECT_EQ(str(*t.sink.spans.at(1), attr::kServerAddress), "2001:db8::1");
  EXPECT_EQ(num(*t.sink.spans.at(1), attr::kServerPort), 80);
}

TEST(ServerSpanTest, Http10Version) {
  Tracing t;
  Request r("GET", "/", {});
  r.minor = 0;
  serve(t, r, 200);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(str(span, attr::kNetworkProtocolVersion), "1.0");
  EXPECT_FALSE(has(span, attr::kServerAddress));  // no Host
  EXPECT_FALSE(has(span, attr::kUserAgentOriginal));
}

TEST(ServerSpanTest, UnknownMethodIsOtherWithOriginalAndHttpSpanName) {
  Tracing t;
  Request r("PURGE", "/users/5", {{"Host", "h"}});
  const TracedRequest::Outcome outcome = serve(t, r, 200);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(str(span, attr::kHttpRequestMethod), "_OTHER");
  EXPECT_EQ(str(span, attr::kHttpRequestMethodOriginal), "PURGE");
  EXPECT_EQ(span.name, "HTTP /users/{id}");
  EXPECT_EQ(outcome.method, "_OTHER");
}

TEST(ServerSpanTest, ConfiguredKnownMethodsOverrideTheDefaults) {
  RequestTracingConfig config;
  config.known_methods = *semconv::KnownMethods::parse("GET,PURGE");
  Tracing t("tracecontext,baggage", config);
  Request r("PURGE", "/users/5", {});
  serve(t, r, 200);
  EXPECT_EQ(t.sink.spans.at(0)->name, "PURGE /users/{id}");
  EXPECT_FALSE(has(*t.sink.spans.at(0), attr::kHttpRequestMethodOriginal));
}

TEST(ServerSpanTest, HeuristicRouteNamesTheSpanButIsNotHttpRoute) {
  Tracing t;
  Request r("GET", "/orders/12345", {});
  const TracedRequest::Outcome outcome = serve(t, r, 200);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.name, "GET /orders/{id}");
  EXPECT_FALSE(has(span, attr::kHttpRoute));
  EXPECT_EQ(outcome.route, "/orders/{id}");
}

// A gRPC method path is admitted under the route cap: past it, the span is named like any
// request, so a client sending content-type application/grpc cannot mint span names.
TEST(ServerSpanTest, GrpcSpanNamesAreBoundedByTheRouteCap) {
  http::RouteResolver routes(routeMatcher(), 1);
  BareTracing t(&routes);
  CollectingSink& sink = t.sink;
  for (const char* path : {"/pkg.Svc/First", "/pkg.Svc/Second", "/users/7"}) {
    Request r("POST", path, {{"content-type", "application/grpc"}});
    TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
    traced.onResponseHead(200);
    (void)traced.end(kEnd);
  }
  ASSERT_EQ(sink.spans.size(), 3u);
  EXPECT_EQ(sink.spans[0]->name, "pkg.Svc/First");  // admitted: its route
  EXPECT_EQ(str(*sink.spans[0], attr::kHttpRoute), "/pkg.Svc/First");
  EXPECT_EQ(sink.spans[1]->name, "POST /{other}");  // past the cap
  EXPECT_EQ(str(*sink.spans[1], attr::kRpcMethod), "Second");
  EXPECT_EQ(sink.spans[2]->name, "POST /users/{id}");  // a configured template wins
}

// The path itself is what takes a place under the cap, not its heuristic form: method paths
// that the heuristic would fold into one route (/evil.Svc/{id}) still take a place each, and
// past the cap none becomes a route, a span name or a metric label.
TEST(ServerSpanTest, GrpcPathsTakeAPlaceEachUnderTheRouteCap) {
  http::RouteResolver routes(routeMatcher(), 2);
  BareTracing t(&routes);
  CollectingSink& sink = t.sink;
  std::vector<std::string> outcome_routes;
  for (const char* path : {"/evil.Svc/1001", "/evil.Svc/1002", "/evil.Svc/1003", "/evil.Svc/%4a",
                           "/evil.Svc/1001"}) {
    Request r("POST", path, {{"content-type", "application/grpc"}});
    TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
    traced.onResponseHead(200);
    outcome_routes.emplace_back(traced.end(kEnd).route);
  }
  ASSERT_EQ(sink.spans.size(), 5u);
  EXPECT_EQ(outcome_routes, (std::vector<std::string>{"/evil.Svc/1001", "/evil.Svc/1002",
                                                      "/{other}", "/{other}", "/evil.Svc/1001"}));
  EXPECT_EQ(str(*sink.spans[0], attr::kHttpRoute), "/evil.Svc/1001");
  EXPECT_EQ(sink.spans[1]->name, "evil.Svc/1002");
  for (size_t i : {2u, 3u}) {
    EXPECT_EQ(sink.spans[i]->name, "POST /{other}") << i;
    EXPECT_FALSE(has(*sink.spans[i], attr::kHttpRoute)) << i;
  }
  EXPECT_EQ(sink.spans[4]->name, "evil.Svc/1001");  // admitted before: still its route
  EXPECT_EQ(routes.limiter().size(), 2u);
}

TEST(ClientSpanTest, GrpcClientSpansKeepTheRpcName) {
  Tracing t;
  Request r("POST", "/pkg.Svc/Call", {{"content-type", "application/grpc"}});
  (void)serve(t, r, 200, SpanKind::kClient);
  EXPECT_EQ(t.sink.spans.at(0)->name, "pkg.Svc/Call");
}

TEST(ServerSpanTest, NoRouteResolverMeansMethodAloneAsName) {
  BareTracing t(nullptr);
  CollectingSink& sink = t.sink;
  Request r("GET", "/users/1", {});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  traced.onResponseHead(200);
  EXPECT_EQ(traced.end(kEnd).route, "");
  EXPECT_EQ(sink.spans.at(0)->name, "GET");
}

TEST(ServerSpanTest, AbsoluteFormTargetNamesTheServer) {
  Tracing t;
  Request r("GET", "http://shop.example:8081/users/3?x=1", {{"Host", "ignored.example"}});
  serve(t, r, 200);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(str(span, attr::kServerAddress), "shop.example");
  EXPECT_EQ(num(span, attr::kServerPort), 8081);
  EXPECT_EQ(str(span, attr::kUrlPath), "/users/3");
  EXPECT_EQ(str(span, attr::kUrlQuery), "x=REDACTED");
  EXPECT_EQ(span.name, "GET /users/{id}");
}

TEST(ServerSpanTest, ConnectHasNoPathAndNoRoute) {
  Tracing t;
  Request r("CONNECT", "db.example:5432", {{"Host", "db.example:5432"}});
  const TracedRequest::Outcome outcome = serve(t, r, 200);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.name, "CONNECT");
  EXPECT_FALSE(has(span, attr::kUrlPath));
  EXPECT_FALSE(has(span, attr::kHttpRoute));
  EXPECT_EQ(str(span, attr::kServerAddress), "db.example");
  EXPECT_EQ(num(span, attr::kServerPort), 5432);
  EXPECT_EQ(outcome.route, "");
}

// A span per attempt, at the tracer: the first attempt's span runs from the request's start to
// the resend, the next from the resend on, and never ends before it starts (a wall clock that
// steps back between the resend and the end).
TEST(ClientSpanTest, AResendSplitsTheSpanAtTheResend) {
  Tracing t;
  Request r("GET", "http://orders.local/x", {});
  TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", 0);
  const propagation::SpanId first_id = traced.spanContext().span_id;
  const std::optional<TracedRequest::Resend> ids = traced.resend(
      semconv::UpstreamFailure::kConnectionReset, "192.0.2.1", 80, 1'000, 5'000);
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(ids->previous, first_id);
  EXPECT_EQ(ids->next, traced.spanContext().span_id);
  traced.onResponseHead(200);
  traced.end(1'000, 3'000);  // the end, by a clock that stepped back
  ASSERT_EQ(t.sink.spans.size(), 2u);
  EXPECT_EQ(t.sink.spans[0]->start_unix_nano, 1'000u);
  EXPECT_EQ(t.sink.spans[0]->end_unix_nano, 5'000u);
  EXPECT_EQ(t.sink.spans[1]->start_unix_nano, 5'000u);
  EXPECT_EQ(t.sink.spans[1]->end_unix_nano, 5'000u);
  EXPECT_EQ(num(*t.sink.spans[1], "http.request.resend_count"), 1);

  // Nothing for a SERVER span.
  Request inbound("GET", "/users/1", {});
  TracedRequest server = t.tracer.begin(SpanKind::kServer, inbound.head(), kPeer, "http", 0);
  EXPECT_FALSE(server.resend(semconv::UpstreamFailure::kConnectionReset, "", 0, 1, 2));
  server.end(3);
}

TEST(ServerSpanTest, AsteriskTarget) {
  Tracing t;
  Request r("OPTIONS", "*", {{"Host", "h"}});
  serve(t, r, 200);
  EXPECT_EQ(t.sink.spans.at(0)->name, "OPTIONS");
  EXPECT_EQ(str(*t.sink.spans.at(0), attr::kUrlPath), "*");
}

TEST(ServerSpanTest, ForwardingHeadersNameTheOriginalClientAndServer) {
  Tracing t;
  Request r("GET", "/", {{"Host", "app.internal:8080"},
                         {"X-Forwarded-For", "203.0.113.7, 10.0.0.1"},
                         {"X-Forwarded-Host", "shop.example"},
                         {"X-Forwarded-Proto", "https"}});
  serve(t, r, 200);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(str(span, attr::kClientAddress), "203.0.113.7");
  EXPECT_EQ(str(span, attr::kNetworkPeerAddress), "10.1.2.3");
  EXPECT_EQ(str(span, attr::kServerAddress), "shop.example");
  EXPECT_EQ(num(span, attr::kServerPort), 443);
  EXPECT_EQ(str(span, attr::kUrlScheme), "https");
}

TEST(ServerSpanTest, ForwardedWinsOverXForwarded) {
  Tracing t;
  Request r("GET", "/",
            {{"X-Forwarded-For", "198.51.100.1"},
             {"Forwarded", "for=\"[2001:db8::7]:4711\";host=a.example:9443;proto=https"}});
  serve(t, r, 200);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(str(span, attr::kClientAddress), "2001:db8::7");
  EXPECT_EQ(str(span, attr::kServerAddress), "a.example");
  EXPECT_EQ(num(span, attr::kServerPort), 9443);
  EXPECT_EQ(str(span, attr::kUrlScheme), "https");
}

// Userinfo is no part of a host (the data path refuses it in Host and the target): a forwarded
// host that carries it, or anything else that is not a host, is passed over for Host.
TEST(ServerSpanTest, ForwardedHostThatIsNotAHostIsPassedOver) {
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{
           {"X-Forwarded-Host", "user:pw@evil.example:81"},
           {"X-Forwarded-Host", "alice@shop.example:8443"},
           {"Forwarded", "host=\"user:pw@evil.example:81\""},
           {"X-Forwarded-Host", "a b"},
           {"X-Forwarded-Host", "[shop.example]:81"}}) {
    Tracing t;
    Request r("GET", "/", {{"Host", "app.internal:8080"}, {name, value}});
    serve(t, r, 200);
    const SpanRecord& span = *t.sink.spans.at(0);
    EXPECT_EQ(str(span, attr::kServerAddress), "app.internal") << value;
    EXPECT_EQ(num(span, attr::kServerPort), 8080) << value;
  }
}

TEST(ServerSpanTest, AbsoluteTargetSchemeOtherThanHttpIsIgnored) {
  Tracing t;
  Request r("GET", "ftp://shop.example/x", {{"Host", "shop.example"}});
  serve(t, r, 200);
  EXPECT_EQ(str(*t.sink.spans.at(0), attr::kUrlScheme), "http");
  EXPECT_EQ(num(*t.sink.spans.at(0), attr::kServerPort), 80);
}

TEST(ServerSpanTest, ForwardedProtoOtherThanHttpIsIgnored) {
  Tracing t;
  Request r("GET", "/", {{"X-Forwarded-Proto", "gopher"}, {"Forwarded", "for=unknown"}});
  serve(t, r, 200);
  EXPECT_EQ(str(*t.sink.spans.at(0), attr::kUrlScheme), "http");
  EXPECT_EQ(str(*t.sink.spans.at(0), attr::kClientAddress), "10.1.2.3");
}

TEST(ServerSpanTest, ForwardingHeadersIgnoredWhenNotTrusted) {
  RequestTracingConfig config;
  config.use_forwarded_headers = false;
  Tracing t("tracecontext,baggage", config);
  Request r("GET", "/", {{"Host", "app:8080"}, {"X-Forwarded-For", "203.0.113.7"},
                         {"X-Forwarded-Host", "shop.example"}, {"X-Forwarded-Proto", "https"}});
  serve(t, r, 200);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(str(span, attr::kClientAddress), "10.1.2.3");
  EXPECT_EQ(str(span, attr::kServerAddress), "app");
  EXPECT_EQ(str(span, attr::kUrlScheme), "http");
}

TEST(ServerSpanTest, NotFoundLeavesStatusUnset) {
  Tracing t;
  Request r("GET", "/users/1", {});
  const TracedRequest::Outcome outcome = serve(t, r, 404);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.status_code, StatusCode::kUnset);
  EXPECT_FALSE(has(span, attr::kErrorType));
  EXPECT_EQ(num(span, attr::kHttpResponseStatusCode), 404);
  EXPECT_EQ(outcome.error_type, "");
  EXPECT_EQ(outcome.status_code, 404);
}

TEST(ServerSpanTest, ServerErrorIsErrorWithStatusCodeAsErrorType) {
  Tracing t;
  Request r("GET", "/users/1", {});
  const TracedRequest::Outcome outcome = serve(t, r, 500);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.status_code, StatusCode::kError);
  EXPECT_EQ(str(span, attr::kErrorType), "500");
  EXPECT_TRUE(span.status_message.empty());  // the status code says it
  EXPECT_EQ(outcome.error_type, "500");
}

TEST(ServerSpanTest, UpstreamFailureBeforeResponseRecordsTheLocalAnswer) {
  struct Case {
    UpstreamFailure failure;
    std::string_view error_type;
    int status;
  };
  for (const Case& c : {Case{UpstreamFailure::kConnectionRefused, "connection_refused", 502},
                        Case{UpstreamFailure::kConnectTimeout, "connect_timeout", 503},
                        Case{UpstreamFailure::kResponseTimeout, "response_timeout", 504},
                        Case{UpstreamFailure::kConnectionReset, "connection_reset", 502}}) {
    Tracing t;
    Request r("GET", "/users/1", {});
    TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
    traced.onUpstreamFailure(c.failure);
    const TracedRequest::Outcome outcome = traced.end(kEnd);
    const SpanRecord& span = *t.sink.spans.at(0);
    EXPECT_EQ(span.status_code, StatusCode::kError) << c.error_type;
    EXPECT_EQ(str(span, attr::kErrorType), c.error_type);
    EXPECT_EQ(num(span, attr::kHttpResponseStatusCode), c.status) << c.error_type;
    EXPECT_EQ(span.status_message, semconv::failureReason(c.failure));
    EXPECT_EQ(outcome.status_code, c.status);
    EXPECT_EQ(outcome.error_type, c.error_type);
  }
}

TEST(ServerSpanTest, FailureAfterTheResponseHeadKeepsItsStatus) {
  Tracing t;
  Request r("GET", "/users/1", {});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  traced.onResponseHead(200);
  traced.onUpstreamFailure(UpstreamFailure::kConnectionReset);
  traced.onUpstreamFailure(UpstreamFailure::kOther);  // the first one is the cause
  traced.end(kEnd);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.status_code, StatusCode::kError);
  EXPECT_EQ(num(span, attr::kHttpResponseStatusCode), 200);
  EXPECT_EQ(str(span, attr::kErrorType), "connection_reset");
  EXPECT_EQ(span.status_message, "upstream closed the connection mid-response");
}

TEST(ServerSpanTest, ARequestBodyTimeoutIsThe408TheClientGot) {
  Tracing t;
  Request r("POST", "/upload", {});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  traced.onResponseHead(408);
  traced.onRequestBodyTimeout();
  const TracedRequest::Outcome outcome = traced.end(kEnd);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.status_code, StatusCode::kUnset);
  EXPECT_FALSE(has(span, attr::kErrorType));
  EXPECT_EQ(num(span, attr::kHttpResponseStatusCode), 408);
  EXPECT_EQ(outcome.status_code, 408);
  EXPECT_EQ(outcome.error_type, "");
}

TEST(ClientSpanTest, ARequestBodyTimeoutIsAnErrorWithoutAStatusCode) {
  Tracing t;
  Request r("POST", "/upload", {});
  TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", kStart);
  traced.onRequestBodyTimeout();
  const TracedRequest::Outcome outcome = traced.end(kEnd);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.status_code, StatusCode::kError);
  EXPECT_EQ(str(span, attr::kErrorType), "request_body_timeout");
  EXPECT_FALSE(has(span, attr::kHttpResponseStatusCode));
  EXPECT_EQ(span.status_message, "the client stopped sending the request body");
  EXPECT_EQ(outcome.error_type, "request_body_timeout");
}

TEST(ServerSpanTest, AFailureAfterTheHeadSaysTheResponseBrokeOff) {
  for (const UpstreamFailure failure :
       {UpstreamFailure::kConnectionReset, UpstreamFailure::kResponseTimeout,
        UpstreamFailure::kBadResponse, UpstreamFailure::kResponseTooLarge,
        UpstreamFailure::kTlsFailed, UpstreamFailure::kOther}) {
    Tracing t;
    Request r("GET", "/users/1", {});
    TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", kStart);
    traced.onResponseHead(200);
    traced.onUpstreamFailure(failure);
    traced.end(kEnd);
    const SpanRecord& span = *t.sink.spans.at(0);
    EXPECT_EQ(span.status_message, semconv::failureReasonAfterHead(failure));
    EXPECT_NE(span.status_message, semconv::failureReason(failure));
    EXPECT_EQ(span.status_message.find("before"), std::string::npos) << span.status_message;
  }
}

TEST(ServerSpanTest, EndWithoutAnyAnswerIsAnError) {
  Tracing t;
  Request r("GET", "/users/1", {});
  const TracedRequest::Outcome outcome = serve(t, r, 0);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.status_code, StatusCode::kError);
  EXPECT_EQ(str(span, attr::kErrorType), "_OTHER");
  EXPECT_FALSE(has(span, attr::kHttpResponseStatusCode));
  EXPECT_EQ(outcome.status_code, 0);
}

TEST(ServerSpanTest, AttributeLimitsApply) {
  RequestTracingConfig config;
  config.attribute_limits.value_length = 8;
  config.attribute_limits.count = 4;
  Tracing t("tracecontext,baggage", config);
  Request r("GET", "/users/1", {{"User-Agent", "Mozilla/5.0 (X11)"}});
  serve(t, r, 200);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.attributes.size(), 4u);
  EXPECT_GT(span.attributes.dropped(), 0u);
  EXPECT_EQ(str(span, attr::kUrlPath), "/users/1");
}

TEST(ServerSpanTest, ValueLengthLimitCutsStrings) {
  RequestTracingConfig config;
  config.attribute_limits.value_length = 8;
  Tracing t("tracecontext,baggage", config);
  Request r("GET", "/users/1", {{"User-Agent", "Mozilla/5.0 (X11)"}});
  serve(t, r, 200);
  EXPECT_EQ(str(*t.sink.spans.at(0), attr::kUserAgentOriginal), "Mozilla/");
}

// ---- CLIENT spans ----------------------------------------------------------------------------

TEST(ClientSpanTest, UrlFullRedactsCredentialsAndQueryValues) {
  Tracing t;
  Request r("GET", "http://user:secret@api.example.com:8080/v1/items?token=abc&page=2",
            {{"Host", "api.example.com:8080"}, {"User-Agent", "app/1"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", kStart);
  traced.onUpstreamConnected("192.0.2.5", 8080);
  traced.onResponseHead(200, 1, 1);
  traced.end(kEnd);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.kind, SpanKind::kClient);
  EXPECT_EQ(span.name, "GET");
  EXPECT_EQ(str(span, attr::kUrlFull),
            "http://REDACTED:REDACTED@api.example.com:8080/v1/items?token=REDACTED&page=REDACTED");
  EXPECT_EQ(str(span, attr::kServerAddress), "api.example.com");
  EXPECT_EQ(num(span, attr::kServerPort), 8080);
  EXPECT_EQ(str(span, attr::kNetworkPeerAddress), "192.0.2.5");
  EXPECT_EQ(num(span, attr::kNetworkPeerPort), 8080);
  EXPECT_EQ(str(span, attr::kNetworkProtocolVersion), "1.1");
  EXPECT_EQ(num(span, attr::kHttpResponseStatusCode), 200);
  EXPECT_FALSE(has(span, attr::kHttpRoute));
  EXPECT_FALSE(has(span, attr::kUrlPath));
  EXPECT_FALSE(has(span, attr::kClientAddress));
  for (const exporter::Attribute& a : span.attributes.items()) {
    if (const auto* s = std::get_if<std::string>(&a.value)) {
      EXPECT_EQ(s->find("secret"), std::string::npos) << a.key;
    }
  }
}

// The attributes the conventions leave opt-in for clients: none by default (url.full carries
// them), all of them with client_url_attributes, redacted as on SERVER spans.
TEST(ClientSpanTest, UrlAttributesOnlyWhenConfigured) {
  for (const bool configured : {false, true}) {
    RequestTracingConfig config;
    config.client_url_attributes = configured;
    Tracing t("tracecontext,baggage", config);
    Request r("GET", "http://api.example.com/v1/items?token=abc&page=2",
              {{"Host", "api.example.com"}, {"User-Agent", "app/1"}});
    TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", kStart);
    traced.onResponseHead(200, 1, 1);
    traced.end(kEnd);
    const SpanRecord& span = *t.sink.spans.at(0);
    EXPECT_EQ(str(span, attr::kUrlFull),
              "http://api.example.com/v1/items?token=REDACTED&page=REDACTED");
    if (!configured) {
      for (const std::string_view key :
           {attr::kUrlPath, attr::kUrlQuery, attr::kUrlScheme, attr::kUserAgentOriginal}) {
        EXPECT_FALSE(has(span, key)) << key;
      }
      continue;
    }
    EXPECT_EQ(str(span, attr::kUrlPath), "/v1/items");
    EXPECT_EQ(str(span, attr::kUrlQuery), "token=REDACTED&page=REDACTED");
    EXPECT_EQ(str(span, attr::kUrlScheme), "http");
    EXPECT_EQ(str(span, attr::kUserAgentOriginal), "app/1");
    EXPECT_FALSE(has(span, attr::kClientAddress));

    // Origin form with an empty path; TLS originated to the upstream makes it https.
    Request bare("GET", "/", {{"Host", "b.svc"}});
    TracedRequest second = t.tracer.begin(SpanKind::kClient, bare.head(), kPeer, "http", kStart);
    second.onUpstreamTls();
    second.onResponseHead(200);
    second.end(kEnd);
    const SpanRecord& tls = *t.sink.spans.at(1);
    EXPECT_EQ(str(tls, attr::kUrlPath), "/");
    EXPECT_FALSE(has(tls, attr::kUrlQuery));
    EXPECT_FALSE(has(tls, attr::kUserAgentOriginal));
    EXPECT_EQ(str(tls, attr::kUrlScheme), "https");
    EXPECT_EQ(str(tls, attr::kUrlFull), "https://b.svc/");

    // CONNECT names no path.
    Request tunnel("CONNECT", "b.svc:443", {{"Host", "b.svc:443"}});
    TracedRequest third = t.tracer.begin(SpanKind::kClient, tunnel.head(), kPeer, "http", kStart);
    third.onResponseHead(200);
    third.end(kEnd);
    EXPECT_FALSE(has(*t.sink.spans.at(2), attr::kUrlPath));
  }
}

TEST(ClientSpanTest, OriginFormUsesHostAndScheme) {
  Tracing t;
  Request r("POST", "/v1/x?q=1", {{"Host", "b.svc:9090"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", kStart);
  traced.onResponseHead(201);
  traced.end(kEnd);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(str(span, attr::kUrlFull), "http://b.svc:9090/v1/x?q=REDACTED");
  EXPECT_EQ(num(span, attr::kServerPort), 9090);
  EXPECT_EQ(span.name, "POST");
  Request tls("GET", "/", {{"Host", "b.svc"}});
  TracedRequest second = t.tracer.begin(SpanKind::kClient, tls.head(), kPeer, "https", kStart);
  second.onResponseHead(200);
  second.end(kEnd);
  EXPECT_EQ(str(*t.sink.spans.at(1), attr::kUrlFull), "https://b.svc/");
  EXPECT_EQ(num(*t.sink.spans.at(1), attr::kServerPort), 443);
}

TEST(ClientSpanTest, ContinuesTheAppsContext) {
  Tracing t;
  Request r("GET", "/", {{"Host", "b"}, {"traceparent", traceparent()}});
  TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", kStart);
  EXPECT_EQ(r.get("traceparent"),
            "00-" + std::string(kTrace) + "-" + traced.spanContext().span_id.toHex() + "-01");
  traced.onResponseHead(200);
  traced.end(kEnd);
  EXPECT_EQ(t.sink.spans.at(0)->parent_span_id.toHex(), kParent);
  EXPECT_EQ(t.sink.spans.at(0)->flags & exporter::span_flags::kIsRemote,
            exporter::span_flags::kIsRemote);
}

TEST(ClientSpanTest, NotFoundIsAnError) {
  Tracing t;
  Request r("GET", "/missing", {{"Host", "b"}});
  const TracedRequest::Outcome outcome = serve(t, r, 404, SpanKind::kClient);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.status_code, StatusCode::kError);
  EXPECT_EQ(str(span, attr::kErrorType), "404");
  EXPECT_EQ(outcome.error_type, "404");
  EXPECT_EQ(outcome.kind, SpanKind::kClient);
}

TEST(ClientSpanTest, UpstreamFailureHasNoStatusCode) {
  Tracing t;
  Request r("GET", "/", {{"Host", "b"}});
  TracedRequest traced = t.tracer.begin(SpanKind::kClient, r.head(), kPeer, "http", kStart);
  traced.onUpstreamFailure(UpstreamFailure::kResolveFailed);
  const TracedRequest::Outcome outcome = traced.end(kEnd);
  const SpanRecord& span = *t.sink.spans.at(0);
  EXPECT_EQ(span.status_code, StatusCode::kError);
  EXPECT_EQ(str(span, attr::kErrorType), "resolve_failed");
  EXPECT_FALSE(has(span, attr::kHttpResponseStatusCode));
  EXPECT_FALSE(has(span, attr::kNetworkProtocolVersion));  // nothing was heard back
  EXPECT_EQ(outcome.status_code, 0);
  EXPECT_EQ(outcome.error_type, "resolve_failed");
}

// ---- Lifecycle and allocation ----------------------------------------------------------------

TEST(TracedRequestTest, EndTwiceExportsOnce) {
  Tracing t;
  Request r("GET", "/", {});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  traced.onResponseHead(200);
  traced.end(kEnd);
  traced.end(kEnd + 1);
  EXPECT_EQ(t.sink.spans.size(), 1u);
}

TEST(TracedRequestTest, MovedRequestEndsNormally) {
  Tracing t;
  Request r("GET", "/", {});
  TracedRequest first = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  TracedRequest moved = std::move(first);
  moved.onResponseHead(204);
  EXPECT_EQ(moved.end(kEnd).status_code, 204);
  EXPECT_EQ(t.sink.spans.size(), 1u);
}

TEST(TracedRequestTest, EndBeforeStartClampsDuration) {
  Tracing t;
  Request r("GET", "/", {});
  TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
  traced.onResponseHead(200);
  EXPECT_EQ(traced.end(kStart - 10).duration_ns, 0u);
  EXPECT_EQ(t.sink.spans.at(0)->end_unix_nano, kStart);
}

TEST(TracedRequestTest, DefaultConstructedEndIsHarmless) {
  TracedRequest traced;
  EXPECT_FALSE(traced.end(kEnd).sampled);
}

TEST(AllocationTest, WarmUnsampledRequestAllocatesNothing) {
  Tracing t;
  Request tmpl("GET", "/users/42?x=1",
               {{"Host", "shop.example"},
                {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0"},
                {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
                {"Accept-Language", "en-US,en;q=0.5"},
                {"traceparent", traceparent("00")},
                {"tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
                {"baggage", "uid=alice,prod=0"}});
  Request r = tmpl;
  const auto once = [&] {
    r.headers = tmpl.headers;
    TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
    traced.onResponseHead(200);
    const TracedRequest::Outcome outcome = traced.end(kEnd);
    EXPECT_FALSE(outcome.sampled);
  };
  for (int i = 0; i < 3; ++i) once();
  const size_t before = g_allocations.load();
  for (int i = 0; i < 100; ++i) once();
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_TRUE(t.sink.spans.empty());
}

TEST(AllocationTest, WarmUnsampledUntrustedRestartAllocatesNothing) {
  Tracing t("tracecontext,baggage", {},
            samplerOf(samplerConfig(sampling::SamplerKind::kParentBasedTraceIdRatio, 0.0)),
            trustOf("192.0.2.0/24"));
  // A browser-like head: in a tiny one, the replaced traceparent and removed tracestate would be
  // most of the header map's bytes, and HeaderMap compacts (allocates) when half are dead.
  Request tmpl("GET", "/users/42",
               {{"Host", "shop.example"},
                {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0"},
                {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
                {"Accept-Language", "en-US,en;q=0.5"},
                {"traceparent", traceparent("01")},
                {"tracestate", "congo=t61rcWkgMzE,ot=th:0"}});
  Request r = tmpl;
  size_t allocations = 0;
  const auto once = [&] {
    // Restoring the removed tracestate field allocates: only the tracer's part is counted.
    r.headers = tmpl.headers;
    const size_t before = g_allocations.load();
    TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
    EXPECT_TRUE(traced.restartedUntrusted());
    traced.onResponseHead(200);
    EXPECT_FALSE(traced.end(kEnd).sampled);
    allocations += g_allocations.load() - before;
    EXPECT_EQ(r.get("tracestate"), "<absent>");
  };
  for (int i = 0; i < 3; ++i) once();
  allocations = 0;
  for (int i = 0; i < 100; ++i) once();
  EXPECT_EQ(allocations, 0u);
}

TEST(AllocationTest, SampledRequestAllocatesABoundedAmount) {
  Tracing t;
  Request tmpl("GET", "/users/42?x=1",
               {{"Host", "shop.example"}, {"User-Agent", "curl/8.0"},
                {"traceparent", traceparent("01")}, {"tracestate", "congo=t61rcWkgMzE"}});
  Request r = tmpl;
  const auto once = [&] {
    r.headers = tmpl.headers;
    TracedRequest traced = t.tracer.begin(SpanKind::kServer, r.head(), kPeer, "http", kStart);
    traced.onResponseHead(200);
    traced.end(kEnd);
    t.sink.spans.clear();
  };
  for (int i = 0; i < 3; ++i) once();
  const size_t before = g_allocations.load();
  once();
  // The record, its attribute vector as it grows, and keys or values too long for SSO.
  EXPECT_LE(g_allocations.load() - before, 30u);
}

}  // namespace
}  // namespace tracecar::proxy
