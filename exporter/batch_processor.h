#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "exporter/batch_config.h"
#include "exporter/exporter_counters.h"
#include "exporter/recent_spans.h"
#include "exporter/span.h"
#include "exporter/span_exporter.h"
#include "exporter/span_queue.h"
#include "exporter/span_record_pool.h"

namespace tracecar::exporter {

// The batch span processor: workers hand finished spans to onEnd (never blocking, never
// allocating), and the processor's own thread runs a libuv loop that exports them in batches
// through one SpanExporter, one export at a time.
//
// The loop exports when a batch's worth (or half the queue, if smaller) is waiting, when the
// schedule delay timer fires, and eagerly while a flush or shutdown is pending. With a schedule
// delay of 0 there is no timer: it exports whatever is queued as soon as no export is running.
// An export timeout of kNoTimeout gives each batch no deadline (and shutdown(kNoTimeout) none).
class BatchProcessor {
 public:
  // Builds the exporter for the processor's loop. Called once, in the constructor, before the
  // loop runs.
  using ExporterFactory = std::function<std::unique_ptr<SpanExporter>(uv_loop_t*)>;

  // recent (optional, must outlive the processor) receives every successfully exported batch.
  BatchProcessor(const BatchConfig& config, const ExporterFactory& make_exporter,
                 ExporterCounters& counters, RecentSpans* recent = nullptr);
  ~BatchProcessor();  // shutdown(config.export_timeout)
  BatchProcessor(const BatchProcessor&) = delete;
  BatchProcessor& operator=(const BatchProcessor&) = delete;

  // Any thread. Queues span; false when it was dropped (queue full, or shut down), which is
  // counted. When the exporter sends protobuf, encodes the span into span->encoded first, so
  // that the encoding runs beside the request that made the span rather than in the export
  // thread's batch (see SpanExporter::sendsProtobuf). Never blocks, and allocates nothing once
  // the thread's records have held spans of that size (newRecord).
  bool onEnd(std::unique_ptr<SpanRecord>&& span) noexcept;
  // Any thread: an empty record for a span this thread will end. Once spans of a thread have
  // been exported their records come back to it through a pool of its own (as many as a batch
  // holds, at most 1024), so a warm thread allocates no record.
  std::unique_ptr<SpanRecord> newRecord();

  // Any thread but the exporter's. Exports every span accepted before the call; true when they
  // have all been answered (exported or dropped for a stated reason) within timeout.
  bool flush(std::chrono::milliseconds timeout);

  // Any thread but the exporter's. Refuses new spans (counted as dropped: shutdown), exports
  // what is queued, shuts the exporter down and joins the thread, all within timeout; whatever
  // could not be exported in time is counted as dropped: shutdown. True when every span was
  // exported: false also when a batch answered during the shutdown failed (the collector
  // refused it, its retries ran out: counted under that reason). Idempotent: later calls return
  // the first call's answer.
  bool shutdown(std::chrono::milliseconds timeout);

  // Any thread. Brings counters.spans_enqueued and counters.queue_length up to date from the
  // queue; the exporter thread also does it whenever it takes spans off the queue. A metrics
  // reader calls it before reading them.
  void refreshCounters() noexcept;

  const BatchConfig& config() const noexcept { return config_; }

 private:
  // Loop thread.
  void run() noexcept;
  void maybeExport() noexcept;
  bool shouldExport() const noexcept;
  bool startExport() noexcept;
  void onExportDone(uint64_t generation, ExportOutcome outcome) noexcept;
  void finishBatch(uint64_t spans) noexcept;
  void onCommand() noexcept;
  void onShutdownDeadline() noexcept;
  void shutdownExporter() noexcept;
  void closeHandles() noexcept;
  void armRetry() noexcept;
  void closeWakeups() noexcept;
  void destroyLoop() noexcept;

  void wake() noexcept;
  static void onWake(uv_poll_t* handle, int status, int events) noexcept;
  static void onScheduleTimer(uv_timer_t* handle) noexcept;
  static void onRetryTimer(uv_timer_t* handle) noexcept;
  static void onDeadlineTimer(uv_timer_t* handle) noexcept;

  const BatchConfig config_;
  bool encode_on_end_ = false;  // set once, before the loop runs: the exporter sends protobuf
  const size_t wake_threshold_;  // queue length at which a producer wakes the loop
  ExporterCounters& counters_;
  RecentSpans* const recent_;
  SpanQueue queue_;
  // The record pools of the threads that made spans (newRecord), one per thread.
  SpanRecordPool* poolOfThisThread();
  void recycle(std::vector<std::unique_ptr<SpanRecord>>& spans) noexcept;
  const uint64_t id_;  // tells this processor from any earlier one at the same address
  std::mutex pools_mutex_;
  std::vector<std::unique_ptr<SpanRecordPool>> pools_;

  // Who may wake the loop: a producer past the threshold that turns "idle" into "sent" writes
  // to the wake-up eventfd; the loop sets it back to idle each time it looks at the queue while
  // no export is in flight. So producers make at most one syscall per look, never one per span.
  // "closed" at shutdown; wakers_ counts producers between their look at the state and their
  // write, so that shutdown waits for them and no producer touches the loop once it is gone.
  enum WakeState : uint8_t { kWakeIdle, kWakeSent, kWakeClosed };
  std::atomic<uint8_t> wake_state_{kWakeIdle};
  std::atomic<uint32_t> wakers_{0};

  uv_loop_t loop_{};
  // Wake-ups and commands from other threads: an eventfd that producers write to and the loop
  // polls. (uv_async_t would do, but its receiver spins while a sender is between its two
  // steps, which is often when both threads share a CPU and the wake-up preempts the sender.)
  int wake_fd_ = -1;
  uv_poll_t wake_poll_{};
  uv_timer_t schedule_timer_{};  // OTEL_BSP_SCHEDULE_DELAY
  uv_timer_t retry_timer_{};     // waits for a producer to publish a slot it has claimed
  uv_timer_t deadline_timer_{};  // shutdown's deadline
  std::unique_ptr<SpanExporter> exporter_;
  std::thread thread_;

  // Loop thread only.
  std::vector<std::unique_ptr<SpanRecord>> batch_;  // the batch in flight (capacity reserved)
  std::vector<const SpanRecord*> batch_view_;
  std::vector<std::unique_ptr<SpanRecord>> drain_;  // what shutdown drops (capacity reserved)
  bool in_flight_ = false;
  bool in_dispatch_ = false;  // maybeExport is on the stack (an exporter may answer at once)
  bool redo_dispatch_ = false;
  bool timer_due_ = false;    // the schedule delay passed: export even a partial batch
  uint64_t generation_ = 0;   // tells a stale answer (after shutdown's deadline) from the live one
  uint64_t export_started_ns_ = 0;
  // The batch in flight has shutdown's deadline, nearer than its own export timeout: running
  // out of time is then the shutdown's doing, and its spans are counted as such.
  bool deadline_is_shutdowns_ = false;
  uint64_t flush_target_seen_ = 0;  // the loop's copy of flush_target_
  bool stopping_ = false;     // shutdown seen by the loop
  uint64_t final_claimed_ = 0;       // queue positions ever claimed (the queue is closed)
  uint64_t shutdown_deadline_ms_ = 0;  // in uv_now terms
  bool exporter_shutdown_started_ = false;
  bool exporter_shutdown_done_ = false;
  bool handles_closing_ = false;

  // Shared with flush() and shutdown() callers.
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t completed_ = 0;      // queue positions whose spans have been answered or dropped
  uint64_t flush_target_ = 0;   // export eagerly until completed_ reaches it
  bool shutdown_requested_ = false;
  std::chrono::steady_clock::time_point shutdown_deadline_{};
  uint64_t shutdown_dropped_ = 0;  // spans the shutdown did not export, for any reason
  bool loop_finished_ = false;
  bool loop_closed_ = false;  // no wake() after this

  std::mutex shutdown_mutex_;  // serialises shutdown() callers
  bool shut_down_ = false;
  bool shutdown_result_ = true;
};

}  // namespace tracecar::exporter
