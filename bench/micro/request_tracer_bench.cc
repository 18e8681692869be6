// The tracing half of one proxied request: RequestTracer::begin + TracedRequest::end for a
// typical inbound GET (traceparent, tracestate, baggage), sampled and not, and restarted from an
// untrusted source. Figures, not tests:
// run scripts/bench.sh. Time per iteration is ns per request; allocs/req counts heap
// allocations per request (operator new is replaced in this program to count them).
#include "support/counting_allocator.h"  // g_allocations: operator new calls

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "exporter/span.h"
#include "http/header_map.h"
#include "http/route_resolver.h"
#include "http/route_template.h"
#include "propagation/composite_propagator.h"
#include "proxy/request_tracer.h"
#include "sampling/sampler.h"
#include "sampling/trust_policy.h"

namespace tracecar::proxy {
namespace {

// Frees each span at once: the producer-side cost without an exporter thread.
class DroppingSink : public SpanSink {
 public:
  void onSpanEnd(std::unique_ptr<exporter::SpanRecord>&& span) override {
    benchmark::DoNotOptimize(span.get());
    span.reset();
  }
};

struct Setup {
  explicit Setup(sampling::Sampler sampler_in = sampling::Sampler(),
                 sampling::TrustPolicy trust_in = sampling::TrustPolicy())
      : routes(*http::RouteMatcher::compile({"/api/v1/users/{id}", "/api/v1/orders/{id}",
                                             "/static/{path...}", "/healthz"})),
        sampler(std::move(sampler_in)),
        trust(std::move(trust_in)),
        ids(1),
        tracer(propagator, &routes, config, sampler, trust, sink, &ids) {}

  propagation::CompositePropagator propagator;  // tracecontext,baggage
  http::RouteResolver routes;
  RequestTracingConfig config;
  sampling::Sampler sampler;
  sampling::TrustPolicy trust;
  DroppingSink sink;
  propagation::IdGenerator ids;
  RequestTracer tracer;
};

http::HeaderMap typicalHeaders(std::string_view flags) {
  http::HeaderMap h;
  h.add("Host", "shop.example:8080");
  h.add("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0");
  h.add("Accept", "application/json");
  h.add("Accept-Encoding", "gzip, deflate, br");
  h.add("Accept-Language", "en-US,en;q=0.5");
  h.add("traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + std::string(flags));
  h.add("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  h.add("baggage", "userId=alice,isProduction=false,tenant=acme-corp");
  return h;
}

const RequestTracer::Peer kPeer{"10.1.2.3", 51234};

void run(benchmark::State& state, std::string_view flags, exporter::SpanKind kind,
         std::string_view target, Setup& setup) {
  const http::HeaderMap tmpl = typicalHeaders(flags);
  http::HeaderMap headers = tmpl;
  const std::string method = "GET";
  const std::string path(target);
  uint64_t now = 1'700'000'000'000'000'000;
  uint64_t allocations = 0;
  for (auto _ : state) {
    headers = tmpl;  // the codec would hand a fresh head; copying into warm storage is cheap
    const uint64_t before = g_allocations.load(std::memory_order_relaxed);
    TracedRequest traced =
        setup.tracer.begin(kind, RequestTracer::Head{method, path, 1, 1, headers}, kPeer, "http",
                           now);
    traced.onResponseHead(200);
    const TracedRequest::Outcome outcome = traced.end(now + 1'000'000);
    allocations += g_allocations.load(std::memory_order_relaxed) - before;
    benchmark::DoNotOptimize(outcome);
    now += 1'000;
  }
  state.counters["allocs/req"] =
      benchmark::Counter(static_cast<double>(allocations), benchmark::Counter::kAvgIterations);
}

void run(benchmark::State& state, std::string_view flags, exporter::SpanKind kind,
         std::string_view target) {
  Setup setup;
  run(state, flags, kind, target, setup);
}

void BM_HeaderCopyBaseline(benchmark::State& state) {
  const http::HeaderMap tmpl = typicalHeaders("01");
  http::HeaderMap headers = tmpl;
  for (auto _ : state) {
    headers = tmpl;
    benchmark::DoNotOptimize(headers);
  }
}
BENCHMARK(BM_HeaderCopyBaseline);

void BM_InboundGetUnsampled(benchmark::State& state) {
  run(state, "00", exporter::SpanKind::kServer, "/api/v1/users/42?expand=orders");
}
BENCHMARK(BM_InboundGetUnsampled);

void BM_InboundGetSampled(benchmark::State& state) {
  run(state, "01", exporter::SpanKind::kServer, "/api/v1/users/42?expand=orders");
}
BENCHMARK(BM_InboundGetSampled);

// A peer outside trust_incoming_context, parentbased_always_off: the trace restarts unsampled.
void BM_InboundGetUntrustedUnsampled(benchmark::State& state) {
  sampling::SamplingConfig config;
  config.sampler.kind = sampling::SamplerKind::kParentBasedAlwaysOff;
  Setup setup(*sampling::Sampler::create(config), *sampling::TrustPolicy::parse("192.0.2.0/24"));
  run(state, "01", exporter::SpanKind::kServer, "/api/v1/users/42?expand=orders", setup);
}
BENCHMARK(BM_InboundGetUntrustedUnsampled);

void BM_OutboundGetSampled(benchmark::State& state) {
  run(state, "01", exporter::SpanKind::kClient, "/api/v1/users/42?expand=orders");
}
BENCHMARK(BM_OutboundGetSampled);

}  // namespace
}  // namespace tracecar::proxy
