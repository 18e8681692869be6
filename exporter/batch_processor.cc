#include "exporter/batch_processor.h"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "base/thread_name.h"
#include "exporter/log.h"
#include "exporter/otlp_proto_encoder.h"

namespace tracecar::exporter {
namespace {

// A usable config whatever the caller built by hand (fromEnv already enforces the same).
BatchConfig normalised(BatchConfig c) {
  if (c.max_queue_size == 0) c.max_queue_size = 1;
  if (c.max_export_batch_size == 0) c.max_export_batch_size = 1;
  c.max_export_batch_size = std::min(c.max_export_batch_size, c.max_queue_size);
  if (c.schedule_delay.count() < 0) c.schedule_delay = std::chrono::milliseconds(0);
  if (c.export_timeout.count() < 0) c.export_timeout = std::chrono::milliseconds(0);
  return c;
}

// Without a schedule delay every span wakes the loop (at most once per look at the queue);
// otherwise a batch's worth, or half the queue when that is smaller.
size_t wakeThreshold(const BatchConfig& c) {
  if (c.schedule_delay.count() == 0) return 1;
  return std::max<size_t>(1, std::min(c.max_export_batch_size, c.max_queue_size / 2));
}

// now + timeout, the latest time_point when that does not fit (kNoTimeout: no limit).
std::chrono::steady_clock::time_point steadyDeadline(std::chrono::steady_clock::time_point now,
                                                     std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  timeout = std::max(timeout, std::chrono::milliseconds::zero());
  const auto room =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
  if (timeout >= room) return Clock::time_point::max();
  return now + timeout;
}

template <typename Handle>
BatchProcessor* self(Handle* handle) noexcept {
  return static_cast<BatchProcessor*>(handle->data);
}

uint64_t nextProcessorId() noexcept {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// Raises the calling thread's nice value by increment (Linux keeps one per thread), up to 19,
// the lowest priority.
// Raising it needs no privilege; a failure (a seccomp filter, say) leaves the thread as it was.
void lowerThisThreadsPriority(int increment) noexcept {
  if (increment <= 0) return;
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return;
  const int wanted = std::min(current + increment, BatchConfig::kMaxThreadNice);
  if (wanted <= current) return;
  if (::setpriority(PRIO_PROCESS, tid, wanted) != 0) {
    const int error = errno;
    try {
      log(LogLevel::kWarn, "exporter",
          "could not lower the export thread's priority (nice " + std::to_string(current) +
              " to " + std::to_string(wanted) + "): " + std::strerror(error) +
              "; it runs at the workers' priority");
    } catch (const std::bad_alloc&) {
    }
  }
}

// Threads that get a pool of their own; any more (tests that make many threads) allocate.
constexpr size_t kMaxPools = 256;

}  // namespace

BatchProcessor::BatchProcessor(const BatchConfig& config, const ExporterFactory& make_exporter,
                               ExporterCounters& counters, RecentSpans* recent)
    : config_(normalised(config)),
      wake_threshold_(wakeThreshold(config_)),
      counters_(counters),
      recent_(recent),
      queue_(config_.max_queue_size),
      id_(nextProcessorId()) {
  batch_.reserve(config_.max_export_batch_size);
  batch_view_.reserve(config_.max_export_batch_size);
  drain_.reserve(config_.max_export_batch_size);

  if (const int rc = uv_loop_init(&loop_); rc != 0) {
    throw std::runtime_error(std::string("batch processor: uv_loop_init: ") + uv_strerror(rc));
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    const int error = errno;
    uv_loop_close(&loop_);
    throw std::system_error(error, std::generic_category(), "batch processor: eventfd");
  }
  if (const int rc = uv_poll_init(&loop_, &wake_poll_, wake_fd_); rc != 0) {
    ::close(wake_fd_);
    uv_loop_close(&loop_);
    throw std::runtime_error(std::string("batch processor: uv_poll_init: ") + uv_strerror(rc));
  }
  if (const int rc = uv_poll_start(&wake_poll_, UV_READABLE, &BatchProcessor::onWake); rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_poll_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    ::close(wake_fd_);
    throw std::runtime_error(std::string("batch processor: uv_poll_start: ") + uv_strerror(rc));
  }
  // Initialising timers cannot fail on a fresh loop once the loop itself is up.
  uv_timer_init(&loop_, &schedule_timer_);
  uv_timer_init(&loop_, &retry_timer_);
  uv_timer_init(&loop_, &deadline_timer_);
  wake_poll_.data = this;
  schedule_timer_.data = this;
  retry_timer_.data = this;
  deadline_timer_.data = this;

  try {
    exporter_ = make_exporter(&loop_);
    if (!exporter_) throw std::invalid_argument("batch processor: the factory made no exporter");
    encode_on_end_ = exporter_->sendsProtobuf();
    // No delay: nothing waits for a timer, every span wakes the loop (wake_threshold_ is 1).
    if (const auto delay = static_cast<uint64_t>(config_.schedule_delay.count()); delay > 0) {
      uv_timer_start(&schedule_timer_, &BatchProcessor::onScheduleTimer, delay, delay);
    }
    // The loop is not running yet, so everything above happens-before the thread's first step.
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    exporter_.reset();
    destroyLoop();
    throw;
  }
}

BatchProcessor::~BatchProcessor() { shutdown(config_.export_timeout); }

std::unique_ptr<SpanRecord> BatchProcessor::newRecord() {
  SpanRecordPool* pool = poolOfThisThread();
  return pool != nullptr ? pool->take() : std::make_unique<SpanRecord>();
}

SpanRecordPool* BatchProcessor::poolOfThisThread() {
  struct Cached {
    uint64_t processor = 0;
    SpanRecordPool* pool = nullptr;
  };
  thread_local Cached cached;
  if (cached.processor == id_) return cached.pool;
  SpanRecordPool* pool = nullptr;
  {
    std::lock_guard lock(pools_mutex_);
    if (pools_.size() < kMaxPools) {
      pools_.push_back(std::make_unique<SpanRecordPool>(
          std::clamp<size_t>(config_.max_export_batch_size, 64, 1024)));
      pool = pools_.back().get();
    }
  }
  cached = {id_, pool};
  return pool;
}

void BatchProcessor::recycle(std::vector<std::unique_ptr<SpanRecord>>& spans) noexcept {
  for (std::unique_ptr<SpanRecord>& span : spans) {
    if (span && span->home != nullptr) span->home->give(std::move(span));
  }
  spans.clear();
}

bool BatchProcessor::onEnd(std::unique_ptr<SpanRecord>&& span) noexcept {
  if (!span) return false;
  if (encode_on_end_) {
    try {
      OtlpProtoEncoder::encodeSpan(*span, span->encoded);
    } catch (...) {
      span->encoded.clear();  // out of memory: the exporter encodes the fields itself
    }
  }
  switch (queue_.tryPush(span)) {
    case SpanQueue::PushResult::kPushed:
      break;
    case SpanQueue::PushResult::kFull:
      counters_.drop(DropReason::kQueueFull);
      span.reset();
      return false;
    case SpanQueue::PushResult::kClosed:
      counters_.drop(DropReason::kShutdown);
      span.reset();
      return false;
  }
  // No counter bumped here: spans enqueued and queue length are read off the queue's own
  // positions (refreshCounters), so two producers do not fight over a counter's cache line.
  if (queue_.size() < wake_threshold_) return true;  // counts this thread's own push
  // The push before the look at the state, as the loop clears the state before it looks at
  // the queue (maybeExport): one of the two sees the other, so no span waits for the timer.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (wake_state_.load(std::memory_order_relaxed) == kWakeIdle) {
    wakers_.fetch_add(1);
    uint8_t idle = kWakeIdle;
    // "Sent" before the write: the loop may run (and clear it) between the two, and then sees
    // this span in the queue; the write only wakes it once more.
    if (wake_state_.compare_exchange_strong(idle, kWakeSent)) wake();
    wakers_.fetch_sub(1);
  }
  return true;
}

void BatchProcessor::refreshCounters() noexcept {
  // Read the consumer's position first (inside size()), then the producers': the length can
  // only be over-estimated by pushes racing this call, never negative.
  counters_.queue_length.store(queue_.size(), std::memory_order_relaxed);
  const uint64_t claimed = queue_.claimed();
  uint64_t seen = counters_.spans_enqueued.load(std::memory_order_relaxed);
  // A counter never goes back, whichever of two racing callers stores last.
  while (seen < claimed && !counters_.spans_enqueued.compare_exchange_weak(
                               seen, claimed, std::memory_order_relaxed)) {
  }
}

bool BatchProcessor::flush(std::chrono::milliseconds timeout) {
  const uint64_t target = queue_.claimed();
  std::unique_lock lock(mutex_);
  if (completed_ >= target) return true;
  if (loop_closed_) return false;
  if (target > flush_target_) flush_target_ = target;
  // Under the mutex: shutdown() takes it before it closes the loop.
  wake();
  const auto done = [&] { return completed_ >= target || loop_finished_; };
  const auto deadline = steadyDeadline(std::chrono::steady_clock::now(), timeout);
  if (deadline == std::chrono::steady_clock::time_point::max()) {
    cv_.wait(lock, done);
  } else {
    cv_.wait_until(lock, deadline, done);
  }
  return completed_ >= target;
}

bool BatchProcessor::shutdown(std::chrono::milliseconds timeout) {
  std::lock_guard guard(shutdown_mutex_);
  if (shut_down_) return shutdown_result_;
  shut_down_ = true;

  const uint64_t final_claimed = queue_.close();
  closeWakeups();
  {
    std::lock_guard lock(mutex_);
    shutdown_requested_ = true;
    shutdown_deadline_ = steadyDeadline(std::chrono::steady_clock::now(), timeout);
    wake();
  }
  thread_.join();

  // A producer that claimed a slot before the close may still be publishing it; it is a few
  // instructions away, so wait for it and count its span.
  uint64_t stragglers = 0;
  while (queue_.popped() < final_claimed) {
    const size_t n = queue_.popBatch(drain_, config_.max_export_batch_size);
    if (n == 0) std::this_thread::yield();
    stragglers += n;
    drain_.clear();
  }
  if (stragglers > 0) counters_.drop(DropReason::kShutdown, stragglers);
  refreshCounters();

  bool clean = false;
  {
    std::lock_guard lock(mutex_);
    completed_ += stragglers;
    shutdown_dropped_ += stragglers;
    clean = shutdown_dropped_ == 0;
    loop_closed_ = true;
  }
  cv_.notify_all();

  batch_view_.clear();
  batch_.clear();
  // Fails (busy) only if the exporter left a handle open past the deadline; then the loop's
  // own resources are abandoned rather than freed under the exporter's feet.
  uv_loop_close(&loop_);
  ::close(wake_fd_);  // after loop_closed_: no flush() writes to it any more
  wake_fd_ = -1;
  exporter_.reset();
  shutdown_result_ = clean;
  return clean;
}

void BatchProcessor::closeWakeups() noexcept {
  wake_state_.store(kWakeClosed);
  // A producer that got past its increment before the store may still write; one after it
  // finds the state closed and writes nothing.
  while (wakers_.load() != 0) std::this_thread::yield();
}

void BatchProcessor::destroyLoop() noexcept {
  uv_close(reinterpret_cast<uv_handle_t*>(&wake_poll_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&schedule_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline_timer_), nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  ::close(wake_fd_);
  wake_fd_ = -1;
}

// ---- loop thread ----

void BatchProcessor::run() noexcept {
  base::nameThisThread("tc-exporter");
  lowerThisThreadsPriority(config_.thread_nice);
  uv_run(&loop_, UV_RUN_DEFAULT);
  // Stopped at shutdown's deadline: give close callbacks already under way a chance to run.
  for (int i = 0; i < 8 && uv_loop_alive(&loop_) != 0; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  {
    std::lock_guard lock(mutex_);
    loop_finished_ = true;
  }
  cv_.notify_all();
}

void BatchProcessor::wake() noexcept {
  const uint64_t one = 1;
  // Fails only with EAGAIN, when the counter is near 2^64 - 1: the loop is woken anyway.
  while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void BatchProcessor::onWake(uv_poll_t* handle, int status, int /*events*/) noexcept {
  BatchProcessor* p = self(handle);
  if (status == 0) {
    uint64_t count = 0;  // wake-ups since the last look: one look serves them all
    while (::read(p->wake_fd_, &count, sizeof count) < 0 && errno == EINTR) {
    }
  }
  p->onCommand();
  p->maybeExport();
}

void BatchProcessor::onScheduleTimer(uv_timer_t* handle) noexcept {
  BatchProcessor* p = self(handle);
  p->timer_due_ = true;
  p->maybeExport();
  // Nothing was waiting: the next delay starts from here.
  if (p->queue_.size() == 0) p->timer_due_ = false;
}

void BatchProcessor::onRetryTimer(uv_timer_t* handle) noexcept { self(handle)->maybeExport(); }

void BatchProcessor::onDeadlineTimer(uv_timer_t* handle) noexcept {
  self(handle)->onShutdownDeadline();
}

void BatchProcessor::onCommand() noexcept {
  bool start_stopping = false;
  std::chrono::steady_clock::time_point deadline;
  {
    std::lock_guard lock(mutex_);
    flush_target_seen_ = flush_target_;
    if (shutdown_requested_ && !stopping_) {
      start_stopping = true;
      deadline = shutdown_deadline_;
    }
  }
  if (!start_stopping) return;
  stopping_ = true;
  final_claimed_ = queue_.claimed();  // the queue was closed before the request was posted
  uv_timer_stop(&schedule_timer_);
  uv_update_time(&loop_);
  if (deadline == std::chrono::steady_clock::time_point::max()) {
    shutdown_deadline_ms_ = kNoDeadline;  // no limit: the queue is exported however long it takes
    return;
  }
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  const auto left_ms = static_cast<uint64_t>(std::max<int64_t>(0, left.count()));
  shutdown_deadline_ms_ = deadlineAfter(uv_now(&loop_), std::chrono::milliseconds(left_ms));
  uv_timer_start(&deadline_timer_, &BatchProcessor::onDeadlineTimer, left_ms, 0);
}

bool BatchProcessor::shouldExport() const noexcept {
  if (in_flight_ || exporter_shutdown_started_ || handles_closing_) return false;
  const size_t waiting = queue_.size();
  if (waiting == 0) return false;
  return waiting >= wake_threshold_ || timer_due_ || stopping_ ||
         flush_target_seen_ > queue_.popped();
}

void BatchProcessor::maybeExport() noexcept {
  // An exporter may answer inside exportBatch; the outer call then picks up from there.
  if (in_dispatch_) {
    redo_dispatch_ = true;
    return;
  }
  in_dispatch_ = true;
  do {
    redo_dispatch_ = false;
    if (!in_flight_) {
      // Looking at the queue now: let the next producer past the threshold wake us again. The
      // fence pairs with onEnd's: a producer that saw "sent" pushed before this look.
      uint8_t sent = kWakeSent;
      wake_state_.compare_exchange_strong(sent, kWakeIdle);
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    while (shouldExport()) {
      if (!startExport()) break;
    }
  } while (redo_dispatch_);
  in_dispatch_ = false;
  if (stopping_ && !in_flight_ && queue_.popped() >= final_claimed_) shutdownExporter();
}

bool BatchProcessor::startExport() noexcept {
  batch_view_.clear();
  recycle(batch_);  // empty unless an answer never came (onExportDone gives them back)
  const size_t n = queue_.popBatch(batch_, config_.max_export_batch_size);
  if (n == 0) {
    // Claimed but not yet published: the producer is mid-push; look again shortly.
    armRetry();
    return false;
  }
  refreshCounters();
  for (const auto& span : batch_) batch_view_.push_back(span.get());
  timer_due_ = false;
  in_flight_ = true;
  counters_.spans_in_flight.store(batch_.size(), std::memory_order_relaxed);
  const uint64_t generation = ++generation_;
  uv_update_time(&loop_);
  uint64_t deadline = deadlineAfter(uv_now(&loop_), config_.export_timeout);
  deadline_is_shutdowns_ = stopping_ && shutdown_deadline_ms_ <= deadline;
  if (deadline_is_shutdowns_) deadline = shutdown_deadline_ms_;
  export_started_ns_ = uv_hrtime();
  // Two words: std::function keeps it inline, no allocation per export.
  exporter_->exportBatch(batch_view_, deadline, [this, generation](ExportOutcome outcome) {
    onExportDone(generation, std::move(outcome));
  });
  return true;
}

void BatchProcessor::onExportDone(uint64_t generation, ExportOutcome outcome) noexcept {
  // An answer to a batch shutdown's deadline already counted as dropped.
  if (!in_flight_ || generation != generation_) return;
  in_flight_ = false;
  counters_.spans_in_flight.store(0, std::memory_order_relaxed);
  counters_.observeLatency(uv_hrtime() - export_started_ns_);
  const uint64_t n = batch_.size();
  uint64_t lost = 0;
  switch (outcome.status) {
    case ExportOutcome::Status::kSuccess: {
      const uint64_t rejected = std::min(outcome.rejected_spans, n);
      counters_.spans_exported.fetch_add(n - rejected, std::memory_order_relaxed);
      if (rejected > 0) counters_.drop(DropReason::kRejected, rejected);
      if (recent_ != nullptr) {
        try {
          recent_->add(batch_view_);
        } catch (...) {
          // Out of memory for the debug ring: the export itself succeeded.
        }
      }
      break;
    }
    case ExportOutcome::Status::kRetryExhausted:
      // Out of time: shutdown's, when its deadline was the batch's and ended it (not the
      // exporter's own, shorter, timeout).
      counters_.drop(deadline_is_shutdowns_ && outcome.caller_deadline ? DropReason::kShutdown
                                                                       : DropReason::kRetryExhausted,
                     n);
      lost = n;
      break;
    case ExportOutcome::Status::kNonRetryable:
      counters_.drop(DropReason::kNonRetryable, n);
      lost = n;
      break;
  }
  if (stopping_ && lost > 0) {
    // Spans the shutdown did not get out, for whatever reason: shutdown() says so.
    std::lock_guard lock(mutex_);
    shutdown_dropped_ += lost;
  }
  // The records go back to the threads that made them now, while the thread is up for the
  // answer anyway, rather than at the start of the next export, which so has less to do
  // beside a busy worker before it sends.
  batch_view_.clear();
  recycle(batch_);
  finishBatch(n);
  maybeExport();
}

void BatchProcessor::finishBatch(uint64_t spans) noexcept {
  {
    std::lock_guard lock(mutex_);
    completed_ += spans;
  }
  cv_.notify_all();
}

void BatchProcessor::armRetry() noexcept {
  if (handles_closing_ || uv_is_active(reinterpret_cast<uv_handle_t*>(&retry_timer_)) != 0) {
    return;
  }
  uv_timer_start(&retry_timer_, &BatchProcessor::onRetryTimer, 1, 0);
}

void BatchProcessor::onShutdownDeadline() noexcept {
  uint64_t dropped = 0;
  if (in_flight_) {
    // The exporter keeps the batch's memory until the thread is joined; its answer, if it ever
    // comes, is ignored. The export's duration ends here (its attempt, if one was on the wire,
    // is counted by the exporter as it shuts down).
    counters_.observeLatency(uv_hrtime() - export_started_ns_);
    dropped += batch_.size();
    in_flight_ = false;
    counters_.spans_in_flight.store(0, std::memory_order_relaxed);
    ++generation_;
  }
  for (;;) {
    const size_t n = queue_.popBatch(drain_, config_.max_export_batch_size);
    drain_.clear();
    if (n == 0) break;
    dropped += n;
  }
  refreshCounters();
  if (dropped > 0) counters_.drop(DropReason::kShutdown, dropped);
  {
    std::lock_guard lock(mutex_);
    completed_ += dropped;
    shutdown_dropped_ += dropped;
  }
  cv_.notify_all();
  shutdownExporter();
  if (!exporter_shutdown_done_) {
    // The exporter did not finish closing in time: stop the loop anyway; shutdown() promised
    // to return by the deadline.
    closeHandles();
    uv_stop(&loop_);
  }
}

void BatchProcessor::shutdownExporter() noexcept {
  if (exporter_shutdown_started_) return;
  exporter_shutdown_started_ = true;
  uv_timer_stop(&schedule_timer_);
  uv_timer_stop(&retry_timer_);
  exporter_->shutdown([this] {
    exporter_shutdown_done_ = true;
    closeHandles();
  });
}

void BatchProcessor::closeHandles() noexcept {
  if (handles_closing_) return;
  handles_closing_ = true;
  // With these closed (and the exporter's), uv_run has nothing left and returns.
  uv_close(reinterpret_cast<uv_handle_t*>(&wake_poll_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&schedule_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline_timer_), nullptr);
}

}  // namespace tracecar::exporter
