// Enqueue cost per span into the span queue from two producer threads while one consumer
// drains it (the batch processor's hot path minus its counters). Run:
//   build/bench/span_queue_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "exporter/span_queue.h"

namespace tracecar::exporter {
namespace {

// Large enough that, on a shared 2-core box, a descheduled consumer does not turn the
// measurement into one of the "full" fast path (the full counter shows how often it did).
constexpr size_t kCapacity = size_t{1} << 20;
constexpr size_t kPerThread = 1024;  // spans per producer per iteration

SpanQueue* g_queue = nullptr;
std::atomic<bool> g_stop{false};
std::thread* g_consumer = nullptr;

// Drains the queue and frees the spans, as the exporter thread would after exporting them.
void consume() {
  std::vector<std::unique_ptr<SpanRecord>> out;
  out.reserve(512);
  while (!g_stop.load(std::memory_order_relaxed)) {
    out.clear();
    if (g_queue->popBatch(out, 512) == 0) std::this_thread::yield();
  }
}

// Each iteration pushes a block of pre-made spans (making them is not timed). items_per_second
// is the total over both producers; ns per span per producer = 2e9 / items_per_second.
void BM_SpanQueuePushBlock(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_queue = new SpanQueue(kCapacity);
    g_stop = false;
    g_consumer = new std::thread(consume);
  }
  std::vector<std::unique_ptr<SpanRecord>> spans(kPerThread);
  uint64_t full = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (auto& s : spans) {
      if (!s) s = std::make_unique<SpanRecord>();
    }
    state.ResumeTiming();
    for (auto& s : spans) {
      if (g_queue->tryPush(s) != SpanQueue::PushResult::kPushed) ++full;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPerThread));
  state.counters["full"] = benchmark::Counter(static_cast<double>(full));
  if (state.thread_index() == 0) {
    g_stop = true;
    g_consumer->join();
    delete g_consumer;
    delete g_queue;
  }
}

BENCHMARK(BM_SpanQueuePushBlock)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace tracecar::exporter
