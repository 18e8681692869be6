#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace tracecar::exporter {

enum class DropReason : uint8_t {
  kQueueFull,       // the queue was full when a worker handed the span over
  kRejected,        // the collector's partial success rejected it
  kRetryExhausted,  // retryable failures until the export timeout ran out
  kNonRetryable,    // the collector answered with an error that must not be retried
  kShutdown,        // still queued when shutdown's deadline passed
  kCount
};

enum class ExportRequestResult : uint8_t {
  kSuccess,
  kPartialSuccess,
  kRetryableFailure,  // each failed attempt that will be (or would have been) retried
  kNonRetryableFailure,
  kTimeout,
  kCount
};

// Exporter figures, as cheap relaxed atomics; the proxy's /metrics reads them. A span counts as
// exported only once the collector has said so.
struct ExporterCounters {
  // Export latency buckets (seconds, upper bounds), as the HTTP duration histograms use.
  static constexpr std::array<double, 14> kLatencyBounds{
      0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};

  // spans_enqueued and queue_length are kept by BatchProcessor::refreshCounters, off the hot path.
  std::atomic<uint64_t> spans_enqueued{0};
  std::atomic<uint64_t> spans_exported{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(DropReason::kCount)> spans_dropped{};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(ExportRequestResult::kCount)> requests{};
  std::atomic<uint64_t> queue_length{0};
  // Spans of the batch being exported (taken off the queue, not yet answered): with the queue,
  // enqueued = exported + dropped (all reasons but queue_full) + queue_length + in_flight.
  std::atomic<uint64_t> spans_in_flight{0};
  // Latency of whole exports (first attempt to final answer): cumulative-free bucket counts,
  // the last bucket being +Inf, plus the sum in nanoseconds.
  std::array<std::atomic<uint64_t>, kLatencyBounds.size() + 1> export_latency_buckets{};
  std::atomic<uint64_t> export_latency_sum_ns{0};

  void drop(DropReason reason, uint64_t n = 1) noexcept {
    spans_dropped[static_cast<size_t>(reason)].fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t dropped(DropReason reason) const noexcept {
    return spans_dropped[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
  }
  void request(ExportRequestResult result) noexcept {
    requests[static_cast<size_t>(result)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t requestCount(ExportRequestResult result) const noexcept {
    return requests[static_cast<size_t>(result)].load(std::memory_order_relaxed);
  }
  void observeLatency(uint64_t nanoseconds) noexcept {
    const double seconds = static_cast<double>(nanoseconds) / 1e9;
    size_t i = 0;
    while (i < kLatencyBounds.size() && seconds > kLatencyBounds[i]) ++i;
    export_latency_buckets[i].fetch_add(1, std::memory_order_relaxed);
    export_latency_sum_ns.fetch_add(nanoseconds, std::memory_order_relaxed);
  }
};

}  // namespace tracecar::exporter
