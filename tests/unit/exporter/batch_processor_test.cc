#include "exporter/batch_processor.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "exporter/otlp_proto_encoder.h"

// Sanitizer runtimes own operator new: there, no replacement and the allocation test is skipped.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TRACECAR_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TRACECAR_SANITIZER 1
#endif
#endif

// Allocation counting for the zero-allocation test: only the thread that sets the flag counts.
// GCC sees free() in our replacement delete once inlined and mistakes it for a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
thread_local bool t_count_allocations = false;
thread_local uint64_t t_allocations = 0;
}  // namespace

#ifndef TRACECAR_SANITIZER
void* operator new(std::size_t size) {
  if (t_count_allocations) ++t_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace tracecar::exporter {
namespace {

using namespace std::chrono_literals;
using Status = ExportOutcome::Status;

constexpr auto kLongWait = 10s;  // generous upper bound: only a hang reaches it

std::unique_ptr<SpanRecord> tagged(uint64_t tag) {
  auto span = std::make_unique<SpanRecord>();
  span->start_unix_nano = tag;
  span->end_unix_nano = tag + 10;
  span->name = "span";
  return span;
}

// What the fake exporter saw and how it should answer; shared with the test, it outlives the
// exporter (which the processor destroys at shutdown).
struct FakeState {
  // kRetryExhausted: out of the deadline the processor gave; kOwnTimeout: out of the exporter's
  // own, earlier, timeout.
  enum class Mode { kSucceed, kRetryExhausted, kOwnTimeout, kNonRetryable, kReject, kDelay, kHold };

  std::mutex mutex;
  std::condition_variable cv;
  Mode mode = Mode::kSucceed;
  uint64_t reject = 0;
  uint64_t delay_ms = 0;
  std::vector<std::vector<uint64_t>> batches;  // tags of each exported batch
  int in_flight = 0;
  int max_in_flight = 0;
  uint64_t last_deadline_minus_now = 0;
  uint64_t last_deadline = 0;
  bool shutdown_called = false;
  Status release_status = Status::kSuccess;
  bool protobuf = false;                 // what the exporter's sendsProtobuf says
  std::vector<std::string> encodings;    // SpanRecord::encoded of every span exported

  void setMode(Mode m, uint64_t n = 0) {
    std::lock_guard lock(mutex);
    mode = m;
    reject = n;
    delay_ms = n;
  }
  size_t spansSeen() {
    std::lock_guard lock(mutex);
    size_t n = 0;
    for (const auto& b : batches) n += b.size();
    return n;
  }
  bool waitForBatches(size_t n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, kLongWait, [&] { return batches.size() >= n; });
  }
  std::vector<std::vector<uint64_t>> seen() {
    std::lock_guard lock(mutex);
    return batches;
  }
};

class FakeExporter : public SpanExporter {
 public:
  FakeExporter(uv_loop_t* loop, std::shared_ptr<FakeState> state) : state_(std::move(state)) {
    uv_timer_init(loop, &timer_);
    uv_async_init(loop, &release_, &FakeExporter::onRelease);
    timer_.data = this;
    release_.data = this;
  }

  // Test thread: answers a held batch with status.
  void release(Status status) {
    {
      std::lock_guard lock(state_->mutex);
      state_->release_status = status;
      state_->mode = FakeState::Mode::kSucceed;
    }
    uv_async_send(&release_);
  }

  void exportBatch(std::span<const SpanRecord* const> batch, uint64_t deadline_ms,
                   DoneCallback done) noexcept override {
    std::vector<uint64_t> tags;
    for (const SpanRecord* s : batch) tags.push_back(s->start_unix_nano);
    FakeState::Mode mode;
    uint64_t n = 0;
    {
      std::lock_guard lock(state_->mutex);
      for (const SpanRecord* s : batch) state_->encodings.push_back(s->encoded);
      state_->batches.push_back(std::move(tags));
      state_->in_flight++;
      state_->max_in_flight = std::max(state_->max_in_flight, state_->in_flight);
      state_->last_deadline_minus_now = deadline_ms - uv_now(timer_.loop);
      state_->last_deadline = deadline_ms;
      mode = state_->mode;
      n = state_->mode == FakeState::Mode::kReject ? state_->reject : state_->delay_ms;
    }
    state_->cv.notify_all();
    switch (mode) {
      case FakeState::Mode::kSucceed:
        return answer(std::move(done), {Status::kSuccess, 0, ""});
      case FakeState::Mode::kRetryExhausted:
        return answer(std::move(done), {Status::kRetryExhausted, 0, "503", true});
      case FakeState::Mode::kOwnTimeout:
        return answer(std::move(done), {Status::kRetryExhausted, 0, "503", false});
      case FakeState::Mode::kNonRetryable:
        return answer(std::move(done), {Status::kNonRetryable, 0, "400"});
      case FakeState::Mode::kReject:
        return answer(std::move(done), {Status::kSuccess, n, "rejected"});
      case FakeState::Mode::kDelay:
        held_ = std::move(done);
        uv_timer_start(&timer_, &FakeExporter::onTimer, n, 0);
        return;
      case FakeState::Mode::kHold:
        held_ = std::move(done);
        return;
    }
  }

  bool sendsProtobuf() const noexcept override { return state_->protobuf; }

  void shutdown(std::function<void()> done) noexcept override {
    {
      std::lock_guard lock(state_->mutex);
      state_->shutdown_called = true;
    }
    // A held batch is answered as a failure, as a real exporter aborting its request would;
    // the processor must ignore an answer that comes after shutdown's deadline.
    if (DoneCallback pending = std::exchange(held_, nullptr)) {
      answer(std::move(pending), {Status::kRetryExhausted, 0, "shutting down"});
    }
    shutdown_done_ = std::move(done);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &FakeExporter::onClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&release_), &FakeExporter::onClosed);
  }

 private:
  void answer(DoneCallback done, ExportOutcome outcome) {
    {
      std::lock_guard lock(state_->mutex);
      state_->in_flight--;
    }
    done(std::move(outcome));
  }
  static void onTimer(uv_timer_t* t) noexcept {
    auto* self = static_cast<FakeExporter*>(t->data);
    // Taken out first: answering may start the next export, which holds a new callback.
    DoneCallback done = std::exchange(self->held_, nullptr);
    if (done) self->answer(std::move(done), {Status::kSuccess, 0, ""});
  }
  static void onRelease(uv_async_t* a) noexcept {
    auto* self = static_cast<FakeExporter*>(a->data);
    Status status;
    {
      std::lock_guard lock(self->state_->mutex);
      status = self->state_->release_status;
    }
    DoneCallback done = std::exchange(self->held_, nullptr);
    if (done) self->answer(std::move(done), {status, 0, ""});
  }
  static void onClosed(uv_handle_t* h) noexcept {
    auto* self = static_cast<FakeExporter*>(h->data);
    if (++self->closed_ == 2 && self->shutdown_done_) self->shutdown_done_();
  }

  std::shared_ptr<FakeState> state_;
  uv_timer_t timer_{};
  uv_async_t release_{};
  DoneCallback held_;
  std::function<void()> shutdown_done_;
  int closed_ = 0;
};

BatchConfig config(size_t queue, size_t batch, std::chrono::milliseconds delay = 1h) {
  BatchConfig c;
  c.max_queue_size = queue;
  c.max_export_batch_size = batch;
  c.schedule_delay = delay;
  c.export_timeout = 30s;
  return c;
}

// Builds a processor with a fake exporter; fake points at it while the processor lives.
struct Harness {
  // protobuf: the fake exporter says it sends protobuf, so spans come to it encoded.
  explicit Harness(const BatchConfig& c, RecentSpans* recent = nullptr, bool protobuf = false)
      : state(makeState(protobuf)),
        processor(
            c,
            [this](uv_loop_t* loop) {
              auto e = std::make_unique<FakeExporter>(loop, state);
              fake = e.get();
              return e;
            },
            counters, recent) {}

  void push(uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; ++i) processor.onEnd(tagged(i));
  }
  static std::shared_ptr<FakeState> makeState(bool protobuf) {
    auto state = std::make_shared<FakeState>();
    state->protobuf = protobuf;
    return state;
  }

  ExporterCounters counters;
  std::shared_ptr<FakeState> state;
  FakeExporter* fake = nullptr;
  BatchProcessor processor;
};

uint64_t dropped(const ExporterCounters& c, DropReason r) { return c.dropped(r); }

TEST(BatchProcessor, ExportsFullBatchWithoutWaitingForTheTimer) {
  Harness h(config(64, 4));
  h.push(0, 4);
  ASSERT_TRUE(h.state->waitForBatches(1));
  EXPECT_EQ(h.state->seen()[0], (std::vector<uint64_t>{0, 1, 2, 3}));
  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(h.counters.spans_enqueued.load(), 4u);
  EXPECT_EQ(h.counters.spans_exported.load(), 4u);
  EXPECT_EQ(h.counters.queue_length.load(), 0u);
}

TEST(BatchProcessor, ExportThreadIsNamedForTopAndPerf) {
  Harness h(config(64, 1));
  h.push(0, 1);
  ASSERT_TRUE(h.state->waitForBatches(1));
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(task.path() / "comm");
    std::string name;
    if (std::getline(in, name)) names.insert(name);
  }
  EXPECT_EQ(names.count("tc-exporter"), 1u) << "threads: " << ::testing::PrintToString(names);
}

// The nice value of this process's thread named tc-exporter.
std::optional<int> exportThreadNice() {
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (!std::getline(comm, name) || name != "tc-exporter") continue;
    return ::getpriority(PRIO_PROCESS, static_cast<id_t>(std::stoi(task.path().filename())));
  }
  return std::nullopt;
}

int thisThreadsNice() {
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
}

TEST(BatchProcessor, ExportThreadRunsNicerThanTheThreadThatStartedIt) {
  const int base = thisThreadsNice();
  for (const int increment : {0, 3, 19}) {
    BatchConfig c = config(64, 1);
    c.thread_nice = increment;
    Harness h(c);
    h.push(0, 1);
    ASSERT_TRUE(h.state->waitForBatches(1));  // the thread has been running for a while
    EXPECT_EQ(exportThreadNice(), std::min(base + increment, 19)) << "increment " << increment;
  }
  EXPECT_EQ(thisThreadsNice(), base) << "only the export thread changes";
}

TEST(BatchProcessor, NeverExportsMoreThanBatchSizeAndKeepsOrder) {
  Harness h(config(64, 3));
  h.push(0, 10);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  std::vector<uint64_t> all;
  for (const auto& batch : h.state->seen()) {
    EXPECT_LE(batch.size(), 3u);
    all.insert(all.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(all, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(h.counters.spans_exported.load(), 10u);
}

TEST(BatchProcessor, ScheduleDelayExportsPartialBatch) {
  Harness h(config(2048, 512, 20ms));
  h.push(0, 3);
  // No flush: only the timer can send these three.
  for (int i = 0; i < 1000 && h.state->spansSeen() < 3; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(h.state->spansSeen(), 3u);
}

TEST(BatchProcessor, FlushExportsEverythingAccepted) {
  Harness h(config(2048, 512));
  h.push(0, 100);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(h.state->spansSeen(), 100u);
  EXPECT_EQ(h.counters.spans_enqueued.load(), 100u);
  EXPECT_EQ(h.counters.spans_exported.load(), 100u);
  EXPECT_EQ(h.counters.queue_length.load(), 0u);
  EXPECT_TRUE(h.processor.flush(kLongWait));  // nothing new: done at once
}

TEST(BatchProcessor, CountsRetryExhaustedAndNonRetryableBySpan) {
  Harness h(config(64, 512));
  h.state->setMode(FakeState::Mode::kRetryExhausted);
  h.push(0, 5);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  h.state->setMode(FakeState::Mode::kNonRetryable);
  h.push(5, 8);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(dropped(h.counters, DropReason::kRetryExhausted), 5u);
  EXPECT_EQ(dropped(h.counters, DropReason::kNonRetryable), 3u);
  EXPECT_EQ(h.counters.spans_exported.load(), 0u);
  EXPECT_EQ(h.counters.spans_enqueued.load(), 8u);
}

TEST(BatchProcessor, PartialSuccessCountsRejectedSpansOnly) {
  Harness h(config(64, 512));
  h.state->setMode(FakeState::Mode::kReject, 2);
  h.push(0, 5);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(h.counters.spans_exported.load(), 3u);
  EXPECT_EQ(dropped(h.counters, DropReason::kRejected), 2u);
}

TEST(BatchProcessor, RejectedCountAboveBatchSizeIsClamped) {
  Harness h(config(64, 512));
  h.state->setMode(FakeState::Mode::kReject, 50);
  h.push(0, 5);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(h.counters.spans_exported.load(), 0u);
  EXPECT_EQ(dropped(h.counters, DropReason::kRejected), 5u);
}

TEST(BatchProcessor, CountsQueueFullDropsExactlyWhileExporterIsBusy) {
  Harness h(config(8, 8));
  h.state->setMode(FakeState::Mode::kHold);
  h.push(100, 101);
  EXPECT_FALSE(h.processor.flush(1ms));  // starts the export, which the fake holds
  ASSERT_TRUE(h.state->waitForBatches(1));
  int accepted = 0;
  for (uint64_t i = 0; i < 20; ++i) accepted += h.processor.onEnd(tagged(i)) ? 1 : 0;
  EXPECT_EQ(accepted, 8);
  EXPECT_EQ(dropped(h.counters, DropReason::kQueueFull), 12u);
  h.processor.refreshCounters();  // as a metrics reader does
  EXPECT_EQ(h.counters.queue_length.load(), 8u);
  EXPECT_EQ(h.counters.spans_enqueued.load(), 9u);
  h.fake->release(Status::kSuccess);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(h.counters.spans_enqueued.load(), 9u);
  EXPECT_EQ(h.counters.spans_exported.load(), 9u);
  EXPECT_EQ(h.state->seen()[1], (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(BatchProcessor, SerialisesExportsAndWaitsForDelayedAnswers) {
  Harness h(config(64, 2));
  h.state->setMode(FakeState::Mode::kDelay, 5);
  h.push(0, 10);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(h.state->seen().size(), 5u);
  {
    std::lock_guard lock(h.state->mutex);
    EXPECT_EQ(h.state->max_in_flight, 1);
  }
  EXPECT_EQ(h.counters.spans_exported.load(), 10u);
}

TEST(BatchProcessor, GivesExporterDeadlineOfExportTimeout) {
  BatchConfig c = config(64, 4);
  c.export_timeout = 1234ms;
  Harness h(c);
  h.push(0, 4);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  std::lock_guard lock(h.state->mutex);
  EXPECT_EQ(h.state->last_deadline_minus_now, 1234u);
}

// An export timeout of 0 in the variables (kNoTimeout) is no limit: the exporter gets no
// deadline.
TEST(BatchProcessor, NoExportTimeoutGivesTheExporterNoDeadline) {
  BatchConfig c = config(64, 4);
  c.export_timeout = kNoTimeout;
  Harness h(c);
  h.push(0, 4);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  std::lock_guard lock(h.state->mutex);
  EXPECT_EQ(h.state->last_deadline, kNoDeadline);
}

// shutdown(kNoTimeout), as `run` calls it with that export timeout, waits for the export in
// flight however long it takes, and then exports what was queued behind it.
TEST(BatchProcessor, ShutdownWithoutATimeoutWaitsForTheExportInFlight) {
  BatchConfig c = config(64, 4);
  c.export_timeout = kNoTimeout;
  Harness h(c);
  h.state->setMode(FakeState::Mode::kHold);
  h.push(0, 4);
  ASSERT_TRUE(h.state->waitForBatches(1));
  h.push(4, 6);
  std::atomic<bool> returned{false};
  bool clean = false;
  std::thread stopper([&] {
    clean = h.processor.shutdown(kNoTimeout);
    returned = true;
  });
  std::this_thread::sleep_for(100ms);  // time enough to drop everything, were there a deadline
  EXPECT_FALSE(returned.load());
  h.fake->release(Status::kSuccess);
  stopper.join();
  EXPECT_TRUE(clean);
  EXPECT_EQ(h.counters.spans_exported.load(), 6u);
  EXPECT_EQ(dropped(h.counters, DropReason::kShutdown), 0u);
}

// Voluntary context switches of the export thread so far: one per wake-up from a wait.
uint64_t exportThreadWakeups() {
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (!std::getline(comm, name) || name != "tc-exporter") continue;
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stoull(line.substr(24));
    }
  }
  ADD_FAILURE() << "no tc-exporter thread";
  return 0;
}

// A schedule delay of 0: a span is exported as soon as it is queued and no export is running;
// spans that come during an export go out together right after it. No timer runs, so the idle
// export thread sleeps instead of waking up every millisecond.
TEST(BatchProcessor, ZeroScheduleDelayExportsAtOnceWithoutPolling) {
  Harness h(config(64, 16, 0ms));
  h.state->setMode(FakeState::Mode::kHold);
  h.push(0, 1);
  ASSERT_TRUE(h.state->waitForBatches(1));  // one span, far from a batch's worth
  h.push(1, 6);
  h.fake->release(Status::kSuccess);
  ASSERT_TRUE(h.state->waitForBatches(2));
  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(h.state->seen(), (std::vector<std::vector<uint64_t>>{{0}, {1, 2, 3, 4, 5}}));

  const uint64_t before = exportThreadWakeups();
  std::this_thread::sleep_for(300ms);
  EXPECT_LE(exportThreadWakeups() - before, 3u) << "the idle export thread keeps waking up";
  h.push(6, 7);
  ASSERT_TRUE(h.state->waitForBatches(3));
  EXPECT_EQ(h.state->seen()[2], (std::vector<uint64_t>{6}));
}

TEST(BatchProcessor, RecordsOneLatencyObservationPerExport) {
  Harness h(config(64, 2));
  h.push(0, 6);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  uint64_t observations = 0;
  for (const auto& b : h.counters.export_latency_buckets) observations += b.load();
  EXPECT_EQ(observations, h.state->seen().size());
}

TEST(BatchProcessor, ShutdownExportsEverythingStillQueued) {
  Harness h(config(2048, 16));
  h.state->setMode(FakeState::Mode::kDelay, 2);
  h.push(0, 50);
  EXPECT_TRUE(h.processor.shutdown(kLongWait));
  EXPECT_EQ(h.counters.spans_exported.load(), 50u);
  EXPECT_EQ(dropped(h.counters, DropReason::kShutdown), 0u);
  EXPECT_EQ(h.state->spansSeen(), 50u);
  EXPECT_TRUE(h.state->shutdown_called);
  EXPECT_EQ(h.counters.queue_length.load(), 0u);
}

TEST(BatchProcessor, ShutdownCountsWhatTheSilentExporterNeverAnsweredAndReturnsInTime) {
  Harness h(config(16, 4));
  h.state->setMode(FakeState::Mode::kHold);
  h.push(0, 10);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(h.processor.shutdown(200ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, kLongWait);
  EXPECT_EQ(dropped(h.counters, DropReason::kShutdown), 10u);
  // The fake's late "retry exhausted" answer at shutdown is not counted twice.
  EXPECT_EQ(dropped(h.counters, DropReason::kRetryExhausted), 0u);
  EXPECT_EQ(h.counters.spans_exported.load(), 0u);
  EXPECT_EQ(h.counters.queue_length.load(), 0u);
  EXPECT_TRUE(h.state->shutdown_called);
}

// A batch sent during shutdown has shutdown's deadline (200 ms, under the 30 s export timeout):
// when the exporter runs out of that time, its spans count as dropped by the shutdown. A batch
// that ran out of its own time before the shutdown stays retry_exhausted.
TEST(BatchProcessor, ABatchOutOfShutdownsTimeCountsAsShutdown) {
  Harness h(config(2048, 16));
  h.state->setMode(FakeState::Mode::kRetryExhausted);
  h.push(0, 16);  // a full batch: exported at once, before the shutdown
  ASSERT_TRUE(h.state->waitForBatches(1));
  h.push(100, 105);  // under a batch, with an hour's schedule delay: sent by the shutdown
  EXPECT_FALSE(h.processor.shutdown(200ms));  // spans were lost at shutdown
  EXPECT_EQ(h.state->spansSeen(), 21u);
  EXPECT_LE(h.state->last_deadline_minus_now, 200u);
  EXPECT_EQ(dropped(h.counters, DropReason::kRetryExhausted), 16u);
  EXPECT_EQ(dropped(h.counters, DropReason::kShutdown), 5u);
}

// A batch sent during shutdown that ran out of the exporter's own timeout (shorter than what the
// shutdown had left) is retry_exhausted: the collector failed, not the shutdown's time. Either
// way the shutdown lost spans and says so.
TEST(BatchProcessor, ABatchOutOfItsOwnTimeoutDuringShutdownIsRetryExhausted) {
  Harness h(config(2048, 16));
  h.state->setMode(FakeState::Mode::kOwnTimeout);
  h.push(0, 5);
  EXPECT_FALSE(h.processor.shutdown(kLongWait));
  EXPECT_EQ(dropped(h.counters, DropReason::kRetryExhausted), 5u);
  EXPECT_EQ(dropped(h.counters, DropReason::kShutdown), 0u);
}

// A batch the collector refuses during the shutdown is non_retryable, and the shutdown is not
// clean; one it accepts is.
TEST(BatchProcessor, ABatchRefusedDuringShutdownMakesItUnclean) {
  Harness refused(config(2048, 16));
  refused.state->setMode(FakeState::Mode::kNonRetryable);
  refused.push(0, 5);
  EXPECT_FALSE(refused.processor.shutdown(kLongWait));
  EXPECT_EQ(dropped(refused.counters, DropReason::kNonRetryable), 5u);
  EXPECT_EQ(dropped(refused.counters, DropReason::kShutdown), 0u);

  Harness accepted(config(2048, 16));
  accepted.push(0, 5);
  EXPECT_TRUE(accepted.processor.shutdown(kLongWait));
  EXPECT_EQ(accepted.counters.spans_exported.load(), 5u);
}

// The export the shutdown's deadline cuts still has a duration.
TEST(BatchProcessor, AnExportCutByTheShutdownIsInTheDurationHistogram) {
  Harness h(config(16, 4));
  h.state->setMode(FakeState::Mode::kHold);
  h.push(0, 4);
  ASSERT_TRUE(h.state->waitForBatches(1));
  EXPECT_FALSE(h.processor.shutdown(100ms));
  uint64_t observations = 0;
  for (const auto& b : h.counters.export_latency_buckets) observations += b.load();
  EXPECT_EQ(observations, 1u);
}

// While a batch waits for the collector, its spans are in flight: the queue no longer holds
// them and nothing has answered for them yet. Every enqueued span is in exactly one place.
TEST(BatchProcessor, SpansOfTheBatchBeingExportedAreInFlight) {
  Harness h(config(16, 4));
  h.state->setMode(FakeState::Mode::kHold);
  h.push(0, 6);  // a batch of 4 goes out and is held; 2 wait in the queue
  ASSERT_TRUE(h.state->waitForBatches(1));
  h.processor.refreshCounters();
  EXPECT_EQ(h.counters.spans_in_flight.load(), 4u);
  EXPECT_EQ(h.counters.queue_length.load(), 2u);
  EXPECT_EQ(h.counters.spans_enqueued.load(), 6u);
  h.fake->release(ExportOutcome::Status::kSuccess);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(h.counters.spans_in_flight.load(), 0u);
  EXPECT_EQ(h.counters.spans_exported.load(), 6u);
}

TEST(BatchProcessor, CountsSpansEndedAfterShutdown) {
  Harness h(config(16, 4));
  ASSERT_TRUE(h.processor.shutdown(kLongWait));
  EXPECT_FALSE(h.processor.onEnd(tagged(1)));
  EXPECT_FALSE(h.processor.onEnd(tagged(2)));
  EXPECT_EQ(dropped(h.counters, DropReason::kShutdown), 2u);
  EXPECT_EQ(h.counters.spans_enqueued.load(), 0u);
  EXPECT_TRUE(h.processor.flush(10ms));  // nothing accepted is outstanding
}

TEST(BatchProcessor, ShutdownIsIdempotent) {
  Harness h(config(16, 4));
  h.push(0, 3);
  EXPECT_TRUE(h.processor.shutdown(kLongWait));
  EXPECT_TRUE(h.processor.shutdown(kLongWait));
  EXPECT_EQ(h.counters.spans_exported.load(), 3u);
}

TEST(BatchProcessor, DestructorExportsQueuedSpans) {
  ExporterCounters counters;
  auto state = std::make_shared<FakeState>();
  {
    BatchProcessor processor(
        config(64, 32),
        [&](uv_loop_t* loop) { return std::make_unique<FakeExporter>(loop, state); }, counters);
    for (uint64_t i = 0; i < 5; ++i) processor.onEnd(tagged(i));
  }
  EXPECT_EQ(counters.spans_exported.load(), 5u);
  EXPECT_EQ(state->spansSeen(), 5u);
}

TEST(BatchProcessor, AddsExportedSpansToRecentSpans) {
  RecentSpans recent(4);
  Harness h(config(64, 512), &recent);
  h.push(0, 6);
  ASSERT_TRUE(h.processor.flush(kLongWait));
  const auto kept = recent.snapshot();
  ASSERT_EQ(kept.size(), 4u);
  EXPECT_EQ(kept.front().start_unix_nano, 2u);
  EXPECT_EQ(kept.back().start_unix_nano, 5u);
  EXPECT_EQ(kept.back().duration_ns, 10u);
}

TEST(BatchProcessor, TwoProducerThreadsLoseNothing) {
  Harness h(config(512, 64));
  constexpr uint64_t kPerThread = 20000;
  std::vector<std::vector<uint64_t>> accepted(2);
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        const uint64_t tag = t * kPerThread + i;
        if (h.processor.onEnd(tagged(tag))) accepted[t].push_back(tag);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(h.processor.flush(kLongWait));

  std::set<uint64_t> want(accepted[0].begin(), accepted[0].end());
  want.insert(accepted[1].begin(), accepted[1].end());
  std::multiset<uint64_t> got;
  for (const auto& batch : h.state->seen()) got.insert(batch.begin(), batch.end());
  EXPECT_EQ(got.size(), want.size());  // no duplicates...
  EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin(), got.end()));  // ...no loss
  const uint64_t n = want.size();
  EXPECT_EQ(h.counters.spans_enqueued.load(), n);
  EXPECT_EQ(h.counters.spans_exported.load(), n);
  EXPECT_EQ(dropped(h.counters, DropReason::kQueueFull), 2 * kPerThread - n);
  EXPECT_EQ(h.counters.queue_length.load(), 0u);
}

// Every batch's worth of spans is exported on a producer's wake-up, never left for the schedule
// timer (1 h here): also when the wake-up preempts the producer half-way, which is likeliest
// with the producer and the exporter thread on one CPU (a pod with a one-CPU limit).
TEST(BatchProcessor, EveryFullBatchIsExportedWithoutTheTimerOnOneCpu) {
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof before, &before), 0);
  int cpu = -1;
  for (int i = 0; i < CPU_SETSIZE && cpu < 0; ++i) {
    if (CPU_ISSET(i, &before)) cpu = i;
  }
  ASSERT_GE(cpu, 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // the exporter thread inherits it
  struct RestoreAffinity {
    const cpu_set_t& set;
    ~RestoreAffinity() { sched_setaffinity(0, sizeof set, &set); }
  } restore{before};

  Harness h(config(64, 8));  // wakes at 8 spans
  constexpr uint64_t kBursts = 3000;
  for (uint64_t b = 0; b < kBursts; ++b) {
    h.push(b * 8, b * 8 + 8);
    // A slot claimed but not yet published when the exporter popped stays for the next batch
    // (fewer than a batch's worth), so up to 7 may be left; a lost wake-up leaves at least 8.
    std::unique_lock lock(h.state->mutex);
    const bool exported = h.state->cv.wait_for(lock, 5s, [&] {
      size_t n = 0;
      for (const auto& batch : h.state->batches) n += batch.size();
      return n + 7 >= (b + 1) * 8;
    });
    ASSERT_TRUE(exported) << "burst " << b << ": left waiting for the timer";
  }
  ASSERT_TRUE(h.processor.flush(kLongWait));  // the rest, and the last answer counted
  EXPECT_EQ(h.counters.spans_exported.load(), kBursts * 8);
}

// Records from newRecord come back to the thread that made them once their batch is answered
// (before flush returns), emptied; spans made by another thread never get them.
TEST(BatchProcessor, RecyclesRecordsToTheThreadThatMadeThem) {
  Harness h(config(64, 4));
  std::set<const SpanRecord*> first_batch;
  for (uint64_t i = 0; i < 4; ++i) {
    std::unique_ptr<SpanRecord> span = h.processor.newRecord();
    span->start_unix_nano = i;
    span->name = "a span name long enough to need memory of its own";
    first_batch.insert(span.get());
    h.processor.onEnd(std::move(span));
  }
  ASSERT_TRUE(h.processor.flush(kLongWait));
  std::thread([&] {
    std::unique_ptr<SpanRecord> other = h.processor.newRecord();
    EXPECT_EQ(first_batch.count(other.get()), 0u);
  }).join();
  std::vector<std::unique_ptr<SpanRecord>> recycled;  // all alive: no address is reused
  for (int i = 0; i < 4; ++i) {
    recycled.push_back(h.processor.newRecord());
    EXPECT_EQ(first_batch.count(recycled.back().get()), 1u) << "record " << i;
    EXPECT_TRUE(recycled.back()->name.empty());
    EXPECT_EQ(recycled.back()->start_unix_nano, 0u);
  }
  EXPECT_EQ(h.state->seen()[0], (std::vector<uint64_t>{0, 1, 2, 3}));
}

// Up to 256 threads get a pool of their own; any more still get records, without one.
TEST(BatchProcessor, ThreadsPastThePoolLimitStillGetRecords) {
  Harness h(config(64, 4));
  size_t pooled = 0;
  for (int i = 0; i < 300; ++i) {
    std::thread([&] {
      std::unique_ptr<SpanRecord> span = h.processor.newRecord();
      ASSERT_NE(span, nullptr);
      if (span->home != nullptr) ++pooled;
    }).join();
  }
  EXPECT_EQ(pooled, 256u);
}

TEST(BatchProcessor, FlushFromSeveralThreadsAtOnce) {
  Harness h(config(2048, 512));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (uint64_t t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      h.push(t * 100, t * 100 + 100);
      if (h.processor.flush(kLongWait)) ok.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 3);
  EXPECT_EQ(h.counters.spans_exported.load(), 300u);
}

TEST(BatchProcessor, OnEndAndTryPushAllocateNothing) {
#ifdef TRACECAR_SANITIZER
  GTEST_SKIP() << "the sanitizer runtime owns operator new";
#endif
  constexpr size_t kSpans = 10000;
  Harness h(config(2 * kSpans, 512));
  h.push(0, 100);  // warm-up: first wake-up, first export
  ASSERT_TRUE(h.processor.flush(kLongWait));
  std::vector<std::unique_ptr<SpanRecord>> spans;
  spans.reserve(kSpans);
  for (size_t i = 0; i < kSpans; ++i) spans.push_back(tagged(i));

  t_allocations = 0;
  t_count_allocations = true;
  for (auto& span : spans) h.processor.onEnd(std::move(span));
  t_count_allocations = false;
  EXPECT_EQ(t_allocations, 0u);

  SpanQueue queue(kSpans);
  for (size_t i = 0; i < kSpans; ++i) spans[i] = tagged(i);
  t_allocations = 0;
  t_count_allocations = true;
  for (auto& span : spans) queue.tryPush(span);
  t_count_allocations = false;
  EXPECT_EQ(t_allocations, 0u);
  EXPECT_EQ(queue.size(), kSpans);

  ASSERT_TRUE(h.processor.flush(kLongWait));
  EXPECT_EQ(h.counters.spans_exported.load(), 100 + kSpans);
}

// An exporter that sends protobuf gets every span already encoded, by the thread that ended it;
// any other gets the fields alone.
TEST(BatchProcessor, SpansComeEncodedWhenTheExporterSendsProtobuf) {
  for (const bool protobuf : {true, false}) {
    Harness h(config(64, 4), nullptr, protobuf);
    h.push(0, 4);
    ASSERT_TRUE(h.processor.flush(kLongWait));
    std::lock_guard lock(h.state->mutex);
    ASSERT_EQ(h.state->encodings.size(), 4u);
    for (uint64_t i = 0; i < 4; ++i) {
      if (!protobuf) {
        EXPECT_TRUE(h.state->encodings[i].empty());
        continue;
      }
      std::string want;
      OtlpProtoEncoder::encodeSpan(*tagged(i), want);
      EXPECT_EQ(h.state->encodings[i], want) << "span " << i;
    }
  }
}

// A recycled record keeps its encoding's buffer, emptied: the next span it holds is encoded
// without an allocation.
TEST(BatchProcessor, EncodingARecycledRecordAllocatesNothing) {
#ifdef TRACECAR_SANITIZER
  GTEST_SKIP() << "the sanitizer runtime owns operator new";
#endif
  Harness h(config(64, 4), nullptr, /*protobuf=*/true);
  uint64_t tag = 0;
  const auto fill = [&tag](SpanRecord& span) {
    span.start_unix_nano = ++tag;
    span.end_unix_nano = tag + 10;
    span.name = "GET /users/{id}";
    span.kind = SpanKind::kServer;
  };
  for (int round = 0; round < 3; ++round) {  // records made, exported and given back
    for (int i = 0; i < 8; ++i) {
      std::unique_ptr<SpanRecord> span = h.processor.newRecord();
      fill(*span);
      h.processor.onEnd(std::move(span));
    }
    ASSERT_TRUE(h.processor.flush(kLongWait));
  }
  for (int i = 0; i < 4; ++i) {
    std::unique_ptr<SpanRecord> span = h.processor.newRecord();
    ASSERT_GE(span->encoded.capacity(), 512u) << "not a recycled record";
    EXPECT_TRUE(span->encoded.empty());
    fill(*span);
    t_allocations = 0;
    t_count_allocations = true;
    h.processor.onEnd(std::move(span));
    t_count_allocations = false;
    EXPECT_EQ(t_allocations, 0u);
  }
  ASSERT_TRUE(h.processor.flush(kLongWait));
  std::lock_guard lock(h.state->mutex);
  for (const std::string& encoding : h.state->encodings) EXPECT_FALSE(encoding.empty());
}

}  // namespace
}  // namespace tracecar::exporter
