#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "exporter/deadline.h"
#include "exporter/exporter_counters.h"
#include "exporter/log.h"
#include "exporter/retry_policy.h"
#include "exporter/span_exporter.h"

namespace tracecar::exporter {

// What the OTLP transports (HTTP and gRPC) share about one batch: its deadline, the attempts
// and the waits between them (backoff, or the collector's own delay), one answer per batch on a
// loop turn of its own, and a shutdown that answers the batch in flight and finishes once every
// handle is closed. The transport (Derived) encodes, starts each attempt and reads the answers:
//   void startAttempt() noexcept;  // called again for every retry
// It calls connectionFailed / attemptFailed / scheduleRetry / complete, and forwards its
// connection's "released" callback to handleClosed(). Connection has release(), after which the
// connection calls back once it is closed. Used on the exporter's loop only.
template <class Derived, class Connection>
class ExportAttemptLoop {
 public:
  ExportAttemptLoop(const ExportAttemptLoop&) = delete;
  ExportAttemptLoop& operator=(const ExportAttemptLoop&) = delete;

  // No handle of ours is open: the memory may go.
  bool deletable() const noexcept { return open_handles_ == 0; }

  void init() noexcept {
    // Initialising a timer cannot fail on a running loop.
    for (uv_timer_t* timer : {&deadline_timer_, &retry_timer_, &done_timer_}) {
      uv_timer_init(loop_, timer);
      timer->data = &derived();
      ++open_handles_;
    }
  }

  void shutdown(std::function<void()> done) noexcept {
    if (shutting_down_) {
      if (open_handles_ == 0) {
        if (done) done();
        return;
      }
      if (done) {
        try {
          shutdown_done_ = [first = std::move(shutdown_done_), second = std::move(done)] {
            if (first) first();
            second();
          };
        } catch (const std::bad_alloc&) {
          // The second caller is not told; the first still is.
        }
      }
      return;
    }
    shutting_down_ = true;
    shutdown_done_ = std::move(done);

    if (done_) {
      // The batch in flight is answered first: with its outcome if it has one already.
      ExportOutcome outcome;
      if (completing_) {
        outcome = std::move(outcome_);
      } else {
        outcome.status = Status::kRetryExhausted;
        outcome.caller_deadline = true;  // the shutdown's deadline ended it
        outcome.message = "the exporter shut down during the export";
        // The attempt on the wire is cut: it counts, as one the deadline ends does.
        if (attempt_in_flight_) counters_.request(ExportRequestResult::kTimeout);
      }
      completing_ = false;
      attempt_in_flight_ = false;
      SpanExporter::DoneCallback batch_done = std::move(done_);
      done_ = nullptr;
      batch_done(std::move(outcome));
    }

    for (uv_timer_t* timer : {&deadline_timer_, &retry_timer_, &done_timer_}) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer), &ExportAttemptLoop::onTimerClosed);
    }
    releaseConnection();  // the timers are still closing: done comes from a close callback
  }

 protected:
  using Status = ExportOutcome::Status;
  using milliseconds = std::chrono::milliseconds;
  static constexpr std::string_view kComponent = "exporter";

  ExportAttemptLoop(uv_loop_t* loop, ExporterCounters& counters, const Backoff::Params& backoff,
                    uint64_t seed) noexcept
      : loop_(loop), counters_(counters), backoff_(backoff, seed) {}
  ~ExportAttemptLoop() = default;

  // Starts the batch: false when it was refused (after shutdown, or a batch already in flight:
  // answered at once rather than lost). Then the transport encodes and, when the deadline is
  // still ahead (startDeadline), makes its first attempt.
  // The batch's deadline is the earlier of deadline_ms and timeout from now (kNoTimeout: none).
  bool beginBatch(size_t batch_size, uint64_t deadline_ms, milliseconds timeout,
                  SpanExporter::DoneCallback& done) noexcept {
    if (shutting_down_ || done_) {
      ExportOutcome outcome;
      outcome.status = Status::kRetryExhausted;
      done(std::move(outcome));
      return false;
    }
    done_ = std::move(done);
    batch_size_ = batch_size;
    uv_update_time(loop_);
    const uint64_t now = uv_now(loop_);
    started_ = now;
    const uint64_t own = deadlineAfter(now, timeout);
    deadline_ = std::min(deadline_ms, own);
    caller_deadline_ = deadline_ms <= own;
    attempts_ = 0;
    last_error_.clear();
    backoff_.reset();
    return true;
  }

  // Arms the batch's deadline, if it has one; false (and the batch answered) when it has
  // already passed.
  bool startDeadline() noexcept {
    const uint64_t now = uv_now(loop_);
    if (deadline_ <= now) {
      complete(Status::kRetryExhausted, "the export deadline had passed before the first attempt");
      return false;
    }
    if (deadline_ == kNoDeadline) return true;  // no limit: nothing waits to end the batch
    uv_timer_start(&deadline_timer_, &ExportAttemptLoop::onDeadlineTimer, deadline_ - now, 0);
    return true;
  }

  // The connection failed while an attempt was waiting for its answer.
  void connectionFailed(std::string_view reason) noexcept {
    if (!attempt_in_flight_) return;
    attempt_in_flight_ = false;
    releaseConnection();
    attemptFailed(std::string(reason));
  }

  void attemptFailed(std::string reason) noexcept {
    counters_.request(ExportRequestResult::kRetryableFailure);
    last_error_ = std::move(reason);
    scheduleRetry(std::nullopt);
  }

  void scheduleRetry(std::optional<milliseconds> retry_after) noexcept {
    uv_update_time(loop_);
    const std::optional<milliseconds> delay =
        retryDelay(retry_after, backoff_, timeLeft(uv_now(loop_), deadline_));
    if (!delay) {
      std::string message = "export of " + std::to_string(batch_size_) + " spans failed after " +
                            std::to_string(attempts_) +
                            (attempts_ == 1 ? " attempt" : " attempts") +
                            ", no time left to retry: " + last_error_;
      lost_log_.log(LogLevel::kError, kComponent, message);
      complete(Status::kRetryExhausted, std::move(message));
      return;
    }
    if (logEnabled(LogLevel::kDebug)) {
      log(LogLevel::kDebug, kComponent,
          "export attempt " + std::to_string(attempts_) + " failed (" + last_error_ +
              "); retrying in " + std::to_string(delay->count()) + " ms");
    }
    uv_timer_start(&retry_timer_, &ExportAttemptLoop::onRetryTimer,
                   static_cast<uint64_t>(delay->count()), 0);
  }

  // The batch's outcome, given to its caller on the next loop turn (never inside a callback of
  // the connection, which the caller may close).
  void complete(Status status, std::string message, uint64_t rejected = 0) noexcept {
    uv_timer_stop(&deadline_timer_);
    uv_timer_stop(&retry_timer_);
    attempt_in_flight_ = false;
    outcome_.status = status;
    outcome_.caller_deadline = status == Status::kRetryExhausted && caller_deadline_;
    outcome_.rejected_spans = rejected;
    outcome_.message = std::move(message);
    completing_ = true;
    uv_timer_start(&done_timer_, &ExportAttemptLoop::onDoneTimer, 0, 0);
  }

  void releaseConnection() noexcept {
    Connection* connection = connection_;
    connection_ = nullptr;
    if (connection != nullptr) connection->release();
  }

  // A timer or a connection finished closing.
  void handleClosed() noexcept {
    --open_handles_;
    if (!shutting_down_ || open_handles_ != 0) return;
    std::function<void()> finished = std::move(shutdown_done_);
    shutdown_done_ = nullptr;
    if (finished) finished();  // may destroy the exporter: nothing after this
  }

  uv_loop_t* const loop_;
  ExporterCounters& counters_;
  Backoff backoff_;
  int open_handles_ = 0;  // timers and connections not yet closed
  Connection* connection_ = nullptr;

  // The batch in flight.
  SpanExporter::DoneCallback done_;
  size_t batch_size_ = 0;
  uint64_t deadline_ = 0;  // uv_now terms; kNoDeadline: none
  bool caller_deadline_ = false;  // deadline_ is the caller's, not the exporter's own timeout
  uint64_t started_ = 0;
  uint32_t attempts_ = 0;
  bool attempt_in_flight_ = false;
  std::string last_error_;
  // A collector that keeps failing, refusing or warning fails every batch the same way: one
  // line per kind per interval (LogThrottle), every batch still counted.
  LogThrottle lost_log_;       // batches lost for want of time: retries exhausted, deadline
  LogThrottle refused_log_;    // batches the collector refused (not retryable)
  LogThrottle rejected_log_;   // batches accepted with spans rejected (partial success)
  LogThrottle answer_log_;     // batches accepted with a warning or an answer not understood

 private:
  Derived& derived() noexcept { return static_cast<Derived&>(*this); }
  static ExportAttemptLoop& from(void* data) noexcept {
    return static_cast<ExportAttemptLoop&>(*static_cast<Derived*>(data));
  }

  void onDeadline() noexcept {
    if (!done_ || completing_) return;
    uv_timer_stop(&retry_timer_);
    uv_update_time(loop_);
    std::string message;
    if (attempt_in_flight_) {
      attempt_in_flight_ = false;
      releaseConnection();
      counters_.request(ExportRequestResult::kTimeout);
      message = "export of " + std::to_string(batch_size_) + " spans timed out after " +
                std::to_string(uv_now(loop_) - started_) + " ms (attempt " +
                std::to_string(attempts_) + ")";
      if (!last_error_.empty()) message += "; earlier: " + last_error_;
    } else {
      message = "export deadline passed while waiting to retry: " + last_error_;
    }
    lost_log_.log(LogLevel::kError, kComponent, message);
    complete(Status::kRetryExhausted, std::move(message));
  }

  void deliver() noexcept {
    if (!completing_ || !done_) return;
    completing_ = false;
    SpanExporter::DoneCallback done = std::move(done_);
    done_ = nullptr;
    ExportOutcome outcome = std::move(outcome_);
    outcome_ = ExportOutcome();
    done(std::move(outcome));  // may start the next batch, or shut down: nothing after this
  }

  static void onDeadlineTimer(uv_timer_t* timer) noexcept { from(timer->data).onDeadline(); }
  static void onRetryTimer(uv_timer_t* timer) noexcept {
    ExportAttemptLoop& self = from(timer->data);
    if (self.done_ && !self.completing_) self.derived().startAttempt();
  }
  static void onDoneTimer(uv_timer_t* timer) noexcept { from(timer->data).deliver(); }
  static void onTimerClosed(uv_handle_t* handle) noexcept { from(handle->data).handleClosed(); }

  uv_timer_t deadline_timer_{};  // the batch's deadline
  uv_timer_t retry_timer_{};     // the wait before the next attempt
  uv_timer_t done_timer_{};      // answers on a loop turn of its own, never inside a call
  bool completing_ = false;      // outcome_ waits for done_timer_
  ExportOutcome outcome_;

  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
};

}  // namespace tracecar::exporter
