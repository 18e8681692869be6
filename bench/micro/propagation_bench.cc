// Microbenchmarks of the propagation hot paths. Figures, not tests: run scripts/bench.sh.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "propagation/baggage.h"
#include "propagation/ids.h"
#include "propagation/traceparent.h"
#include "propagation/tracestate.h"

namespace tracecar::propagation {
namespace {

void BM_TraceparentParseFormat(benchmark::State& state) {
  const std::string in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  char out[kTraceparentLength];
  for (auto _ : state) {
    Traceparent tp;
    benchmark::DoNotOptimize(parseTraceparent(in, tp));
    formatTraceparent(tp.trace_id, tp.parent_id, tp.flags, out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_TraceparentParseFormat);

void BM_TraceparentParse(benchmark::State& state) {
  const std::string in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  for (auto _ : state) {
    Traceparent tp;
    benchmark::DoNotOptimize(parseTraceparent(in, tp));
    benchmark::DoNotOptimize(tp);
  }
}
BENCHMARK(BM_TraceparentParse);

void BM_NewTraceAndSpanId(benchmark::State& state) {
  auto& ids = IdGenerator::forThisThread();
  for (auto _ : state) {
    benchmark::DoNotOptimize(ids.newTraceId());
    benchmark::DoNotOptimize(ids.newSpanId());
  }
}
BENCHMARK(BM_NewTraceAndSpanId);

std::string tracestate32() {
  std::string s;
  for (int i = 0; i < 32; ++i) {
    if (i) s += ',';
    s += "vendor" + std::to_string(i) + "@tenant=value-" + std::to_string(i * 7919);
  }
  return s;
}

void BM_Tracestate32MembersParseSerialize(benchmark::State& state) {
  const std::string in = tracestate32();
  TraceState ts;
  std::string out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ts.parse(in));
    out.clear();
    ts.serialize(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in.size()));
}
BENCHMARK(BM_Tracestate32MembersParseSerialize);

void BM_Tracestate32MembersSetOwnKey(benchmark::State& state) {
  const std::string in = tracestate32();
  TraceState ts;
  for (auto _ : state) {
    ts.parse(in);
    benchmark::DoNotOptimize(ts.set("ot", "th:c"));
  }
}
BENCHMARK(BM_Tracestate32MembersSetOwnKey);

// 64 members (the W3C member floor) of ~127 bytes: an 8 KB baggage that is kept whole.
std::string baggage8k() {
  std::string s;
  for (int i = 0; i < 64; ++i) {
    if (i) s += ',';
    std::string member = "key" + std::to_string(i) + "=value%20" + std::to_string(i) + "-";
    member += std::string(120 - member.size(), 'x');
    s += member + ";prop";
  }
  return s;
}

void BM_Baggage8KParseSerialize(benchmark::State& state) {
  const std::string in = baggage8k();
  Baggage bg;
  std::string out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(bg.parse(in));
    out.clear();
    bg.serialize(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["members"] = static_cast<double>(bg.size());
  state.counters["bytes"] = static_cast<double>(in.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in.size()));
}
BENCHMARK(BM_Baggage8KParseSerialize);

}  // namespace
}  // namespace tracecar::propagation
