#include "exporter/export_attempt_loop.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <optional>

namespace tracecar::exporter {
namespace {

using namespace std::chrono_literals;
using Status = ExportOutcome::Status;

struct FakeConnection {
  void release() noexcept {}
};

// A transport whose attempts fail a given number of times, then succeed or stay unanswered.
class FakeTransport : public ExportAttemptLoop<FakeTransport, FakeConnection> {
 public:
  FakeTransport(uv_loop_t* loop, ExporterCounters& counters)
      : ExportAttemptLoop(loop, counters, Backoff::Params{1ms, 2ms, 1.5, 0.0}, 1) {
    init();
  }

  void exportBatch(uint64_t deadline_ms, milliseconds timeout,
                   SpanExporter::DoneCallback done) noexcept {
    if (!beginBatch(1, deadline_ms, timeout, done)) return;
    if (!startDeadline()) return;
    startAttempt();
  }

  void startAttempt() noexcept {
    ++attempts_;
    if (failures_left > 0) {
      --failures_left;
      attemptFailed("refused");
      return;
    }
    if (answers) {
      complete(Status::kSuccess, "");
      return;
    }
    attempt_in_flight_ = true;  // an answer that never comes
  }

  uint64_t deadline() const noexcept { return deadline_; }
  uint32_t attempts() const noexcept { return attempts_; }

  int failures_left = 0;
  bool answers = true;
};

// A loop initialised before the members that use it.
struct Loop {
  Loop() { uv_loop_init(&loop); }
  uv_loop_t loop{};
};

class ExportAttemptLoopTest : public ::testing::Test {
 protected:
  ~ExportAttemptLoopTest() override {
    bool closed = false;
    transport_.shutdown([&closed] { closed = true; });
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_TRUE(closed);
    uv_loop_close(&loop_);
  }

  SpanExporter::DoneCallback record() {
    return [this](ExportOutcome outcome) { outcome_ = std::move(outcome); };
  }

  Loop owner_;
  uv_loop_t& loop_ = owner_.loop;
  ExporterCounters counters_;
  FakeTransport transport_{&loop_, counters_};
  std::optional<ExportOutcome> outcome_;
};

// No deadline from the batch processor and no timeout of the exporter's own (both 0, "no limit",
// in the variables): nothing is armed to end the batch, which waits for its answer.
TEST_F(ExportAttemptLoopTest, WithoutDeadlineOrTimeoutNothingEndsTheBatch) {
  transport_.answers = false;
  transport_.exportBatch(kNoDeadline, kNoTimeout, record());
  EXPECT_EQ(transport_.deadline(), kNoDeadline);
  uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(uv_loop_alive(&loop_), 0) << "a timer is armed";
  EXPECT_FALSE(outcome_.has_value());
  EXPECT_EQ(counters_.requestCount(ExportRequestResult::kTimeout), 0u);
}

TEST_F(ExportAttemptLoopTest, WithoutDeadlineOrTimeoutRetriesUntilTheCollectorAnswers) {
  transport_.failures_left = 5;
  transport_.exportBatch(kNoDeadline, kNoTimeout, record());
  uv_run(&loop_, UV_RUN_DEFAULT);
  ASSERT_TRUE(outcome_.has_value());
  EXPECT_EQ(outcome_->status, Status::kSuccess);
  EXPECT_EQ(transport_.attempts(), 6u);
}

// Either limit alone still bounds the batch.
TEST_F(ExportAttemptLoopTest, TheExportersTimeoutBoundsABatchWithoutDeadline) {
  transport_.answers = false;
  uv_update_time(&loop_);
  const uint64_t now = uv_now(&loop_);
  transport_.exportBatch(kNoDeadline, 5ms, record());
  EXPECT_LE(transport_.deadline(), now + 5 + 1000);  // uv_now moves on by the loop's clock only
  EXPECT_GE(transport_.deadline(), now + 5);
  uv_run(&loop_, UV_RUN_DEFAULT);
  ASSERT_TRUE(outcome_.has_value());
  EXPECT_EQ(outcome_->status, Status::kRetryExhausted);
  EXPECT_FALSE(outcome_->caller_deadline);  // the exporter's own timeout ended it
  EXPECT_EQ(counters_.requestCount(ExportRequestResult::kTimeout), 1u);
}

TEST_F(ExportAttemptLoopTest, TheBatchsDeadlineBoundsAnExporterWithoutTimeout) {
  transport_.answers = false;
  uv_update_time(&loop_);
  const uint64_t deadline = uv_now(&loop_) + 5;
  transport_.exportBatch(deadline, kNoTimeout, record());
  EXPECT_EQ(transport_.deadline(), deadline);
  uv_run(&loop_, UV_RUN_DEFAULT);
  ASSERT_TRUE(outcome_.has_value());
  EXPECT_EQ(outcome_->status, Status::kRetryExhausted);
  EXPECT_TRUE(outcome_->caller_deadline);  // the batch processor's deadline ended it
}

// The caller's deadline and the exporter's own timeout at the same moment: the caller's is the
// one that ends the batch (the batch processor then knows it was, say, the shutdown's).
TEST_F(ExportAttemptLoopTest, ADeadlineEqualToTheOwnTimeoutIsTheCallers) {
  transport_.answers = false;
  uv_update_time(&loop_);
  transport_.exportBatch(uv_now(&loop_) + 5, 5ms, record());
  uv_run(&loop_, UV_RUN_DEFAULT);
  ASSERT_TRUE(outcome_.has_value());
  EXPECT_TRUE(outcome_->caller_deadline);
}

// Shut down with an attempt on the wire: the batch is answered (out of time) and the attempt
// counted as one the deadline cut, as any attempt is counted.
TEST_F(ExportAttemptLoopTest, ShuttingDownWithAnAttemptOnTheWireCountsItAsATimeout) {
  transport_.answers = false;
  transport_.exportBatch(kNoDeadline, kNoTimeout, record());
  uv_run(&loop_, UV_RUN_NOWAIT);
  ASSERT_FALSE(outcome_.has_value());
  bool closed = false;
  transport_.shutdown([&closed] { closed = true; });
  ASSERT_TRUE(outcome_.has_value());
  EXPECT_EQ(outcome_->status, Status::kRetryExhausted);
  EXPECT_TRUE(outcome_->caller_deadline);
  EXPECT_EQ(counters_.requestCount(ExportRequestResult::kTimeout), 1u);
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_TRUE(closed);
}

TEST(Deadline, SaturatesInsteadOfWrapping) {
  EXPECT_EQ(deadlineAfter(100, 5ms), 105u);
  EXPECT_EQ(deadlineAfter(100, 0ms), 100u);
  EXPECT_EQ(deadlineAfter(100, -3ms), 100u);
  EXPECT_EQ(deadlineAfter(100, kNoTimeout), kNoDeadline);
  EXPECT_EQ(deadlineAfter(kNoDeadline - 10, 10ms), kNoDeadline);
  EXPECT_EQ(deadlineAfter(kNoDeadline - 10, 9ms), kNoDeadline - 1);
  EXPECT_EQ(timeLeft(100, 105), 5ms);
  EXPECT_EQ(timeLeft(105, 100), 0ms);
  EXPECT_EQ(timeLeft(100, kNoDeadline), std::chrono::milliseconds::max());
}

}  // namespace
}  // namespace tracecar::exporter
