#pragma once

#include <uv.h>

#include <cstdint>

namespace tracecar::proxy {

// A one-shot deadline kept on a libuv timer that is cheap to move. Each request arms and
// disarms its connection's timeouts several times; doing that with uv_timer_start/stop reorders
// libuv's timer heap every time. Here arming only records the deadline, and the heap is touched
// when the new deadline is earlier than the one the uv timer is due at. A timer that fires
// before the recorded deadline (the deadline moved later, or was disarmed) re-arms itself for
// the rest, or stays stopped. Deadlines are as exact as with plain uv timers: both count from
// the loop's cached time (uv_now).
class DeadlineTimer {
 public:
  // The owner's uv timer, initialised, with its callback (which must call expired() first).
  void bind(uv_timer_t* timer, uv_timer_cb callback) noexcept {
    timer_ = timer;
    callback_ = callback;
  }

  void arm(uint64_t timeout_ms) noexcept {
    const uint64_t now = uv_now(timer_->loop);
    deadline_ = now + timeout_ms;
    armed_ = true;
    if (!uv_is_active(reinterpret_cast<const uv_handle_t*>(timer_)) || due_ > deadline_) {
      uv_timer_start(timer_, callback_, timeout_ms, 0);
      due_ = deadline_;
    }
  }

  // The uv timer may still fire once; expired() then says there is nothing to do.
  void disarm() noexcept { armed_ = false; }

  // Stops the uv timer too (before closing its handle, or when idle for long).
  void stop() noexcept {
    armed_ = false;
    uv_timer_stop(timer_);
  }

  bool armed() const noexcept { return armed_; }

  // Call at the top of the uv timer's callback: true when the deadline has passed (and the
  // timer is disarmed); false when there was nothing due, after re-arming for the time left.
  bool expired() noexcept {
    if (!armed_) return false;
    const uint64_t now = uv_now(timer_->loop);
    if (now >= deadline_) {
      armed_ = false;
      return true;
    }
    uv_timer_start(timer_, callback_, deadline_ - now, 0);
    due_ = deadline_;
    return false;
  }

 private:
  uv_timer_t* timer_ = nullptr;
  uv_timer_cb callback_ = nullptr;
  uint64_t deadline_ = 0;  // loop time (ms) the armed timeout ends at
  uint64_t due_ = 0;       // loop time the uv timer was last started for
  bool armed_ = false;
};

}  // namespace tracecar::proxy
