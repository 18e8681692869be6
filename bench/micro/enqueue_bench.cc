// Cost of handing a finished span to the exporter: BatchProcessor::onEnd from two producer
// threads (the workers' hot path: queue slot claim, counters, the occasional wake-up of the
// exporter thread), while the exporter thread drains into an exporter that discards. Making
// the spans is not timed. Run:
//   build/bench/enqueue_bench --benchmark_min_time=2
// "ns/span" is per producer thread. The queue is sized so that a run never fills it even if
// the exporter thread gets no CPU at all ("dropped" must read 0): what is measured is the
// accepting path, not the cheaper queue-full one.
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <span>
#include <vector>

#include "exporter/batch_processor.h"

namespace tracecar::exporter {
namespace {

class DiscardingExporter : public SpanExporter {
 public:
  void exportBatch(std::span<const SpanRecord* const>, uint64_t, DoneCallback done) noexcept override {
    done(ExportOutcome{});
  }
  void shutdown(std::function<void()> done) noexcept override { done(); }
};

constexpr size_t kBlock = 256;  // spans per producer per timed block

ExporterCounters* g_counters = nullptr;
BatchProcessor* g_processor = nullptr;

void BM_OnEndTwoProducers(benchmark::State& state) {
  if (state.thread_index() == 0) {
    BatchConfig config;
    config.max_queue_size = size_t{1} << 20;
    config.max_export_batch_size = 512;
    config.schedule_delay = std::chrono::milliseconds(1000);
    g_counters = new ExporterCounters;
    g_processor = new BatchProcessor(
        config, [](uv_loop_t*) { return std::make_unique<DiscardingExporter>(); }, *g_counters);
  }
  std::vector<std::unique_ptr<SpanRecord>> spans(kBlock);
  double timed_seconds = 0;
  for (auto _ : state) {
    for (auto& s : spans) s = std::make_unique<SpanRecord>();
    const auto start = std::chrono::steady_clock::now();
    for (auto& s : spans) g_processor->onEnd(std::move(s));
    const auto end = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(end - start).count();
    timed_seconds += seconds;
    state.SetIterationTime(seconds);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBlock));
  if (state.thread_index() == 0) {
    g_processor->shutdown(std::chrono::milliseconds(30000));
    state.counters["dropped"] =
        benchmark::Counter(static_cast<double>(g_counters->dropped(DropReason::kQueueFull)));
    state.counters["enqueued"] = benchmark::Counter(static_cast<double>(
        g_counters->spans_enqueued.load()));
    delete g_processor;
    delete g_counters;
  }
  // Per-producer cost: each thread's timed blocks hold its own onEnd calls only.
  state.counters["ns/span"] = benchmark::Counter(
      timed_seconds * 1e9 / (static_cast<double>(kBlock) * static_cast<double>(state.iterations())),
      benchmark::Counter::kAvgThreads);
}

// 2 threads x 1500 iterations x 256 spans = 768 Ki spans < the queue's 1 Mi slots.
constexpr int64_t kIterations = 1500;
BENCHMARK(BM_OnEndTwoProducers)->Threads(2)->Iterations(kIterations)->UseManualTime()
    ->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_OnEndTwoProducers)->Threads(1)->Iterations(kIterations)->UseManualTime()
    ->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace
}  // namespace tracecar::exporter
