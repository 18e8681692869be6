// OTLP encode throughput: a batch of 512 server spans as the proxy makes them (12 attributes).
// Figures, not tests: run scripts/bench.sh. Target: >= 2 million spans/s per core (protobuf).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "exporter/otlp_json_encoder.h"
#include "exporter/otlp_proto_encoder.h"
#include "exporter/resource.h"
#include "propagation/ids.h"

namespace tracecar::exporter {
namespace {

constexpr size_t kBatch = 512;

struct Batch {
  std::vector<SpanRecord> spans;
  std::vector<const SpanRecord*> pointers;
  Resource resource;
  InstrumentationScope scope = tracecarScope("0.1.0");
};

const Batch& realisticBatch() {
  static const Batch batch = [] {
    Batch b;
    std::vector<std::string> warnings;
    b.resource = Resource::fromEnvironment(
        mapEnvironment({{"OTEL_SERVICE_NAME", "checkout"},
                        {"K8S_POD_NAME", "checkout-7d9f8c6b5-x2x7q"},
                        {"K8S_NAMESPACE_NAME", "shop"},
                        {"K8S_NODE_NAME", "node-3"}}),
        "0.1.0", warnings);
    propagation::IdGenerator ids(2026);
    b.spans.resize(kBatch);
    for (size_t i = 0; i < kBatch; ++i) {
      SpanRecord& s = b.spans[i];
      s.trace_id = ids.newTraceId();
      s.span_id = ids.newSpanId();
      s.parent_span_id = ids.newSpanId();
      s.flags = 0x01 | span_flags::kHasIsRemote | span_flags::kIsRemote;
      s.name = "GET /api/v1/users/{id}";
      s.kind = SpanKind::kServer;
      s.start_unix_nano = 1700000000000000000ULL + i * 1000003;
      s.end_unix_nano = s.start_unix_nano + 2500000 + i;
      s.attributes.setStatic("http.request.method", std::string("GET"));
      s.attributes.setStatic("url.path", "/api/v1/users/" + std::to_string(1000 + i));
      s.attributes.setStatic("url.scheme", std::string("http"));
      s.attributes.setStatic("http.route", std::string("/api/v1/users/{id}"));
      s.attributes.setStatic("http.response.status_code", int64_t{i % 50 == 0 ? 503 : 200});
      s.attributes.setStatic("server.address", std::string("users.shop.svc.cluster.local"));
      s.attributes.setStatic("server.port", int64_t{8080});
      s.attributes.setStatic("network.protocol.version", std::string("1.1"));
      s.attributes.setStatic("client.address", std::string("10.244.1.17"));
      s.attributes.setStatic("network.peer.address", std::string("10.244.1.17"));
      s.attributes.setStatic("network.peer.port", int64_t{40000 + static_cast<int64_t>(i)});
      s.attributes.setStatic("user_agent.original", std::string("Mozilla/5.0 (X11; Linux x86_64)"));
      if (i % 50 == 0) {
        s.status_code = StatusCode::kError;
        s.attributes.setStatic("error.type", std::string("503"));
      }
    }
    for (const SpanRecord& s : b.spans) b.pointers.push_back(&s);
    return b;
  }();
  return batch;
}

template <class Encoder>
void encodeBatch(benchmark::State& state) {
  const Batch& b = realisticBatch();
  Encoder encoder;
  std::string out;
  for (auto _ : state) {
    encoder.encode(b.resource, b.scope, b.pointers, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["spans_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kBatch), benchmark::Counter::kIsRate);
  state.counters["bytes_per_span"] = static_cast<double>(out.size()) / kBatch;
}

void BM_OtlpProtoEncode512ServerSpans(benchmark::State& state) {
  encodeBatch<OtlpProtoEncoder>(state);
}
BENCHMARK(BM_OtlpProtoEncode512ServerSpans);

void BM_OtlpJsonEncode512ServerSpans(benchmark::State& state) {
  encodeBatch<OtlpJsonEncoder>(state);
}
BENCHMARK(BM_OtlpJsonEncode512ServerSpans);

}  // namespace
}  // namespace tracecar::exporter
