#pragma once

#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"

namespace tracecar::sampling {

struct RateLimitSettings {
  double traces_per_second = 0;  // > 0
  uint32_t burst = 0;            // traces allowed at once; 0 = ceil(traces_per_second), at least 1
};

// A token bucket for the traces this sidecar starts, shared by every worker thread. It keeps one
// atomic word, the theoretical arrival time of the next trace (the GCRA form of a token bucket),
// and acquires with a compare-and-swap loop: lock-free, no clock of its own (time is passed in),
// and exact: over any span of d nanoseconds it grants at most burst + d * rate traces.
class RateLimiter {
 public:
  // Fails when the rate is not a finite number > 0 or the burst is too large for the rate.
  static absl::StatusOr<RateLimitSettings> validate(RateLimitSettings settings);

  // settings must have passed validate().
  explicit RateLimiter(const RateLimitSettings& settings) noexcept;
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes one token at time now_ns (any monotonic clock; callers may race with slightly older
  // times, which only makes the limiter stricter). False when the bucket is empty.
  bool tryAcquire(uint64_t now_ns) noexcept;

  double tracesPerSecond() const noexcept { return rate_; }
  uint32_t burst() const noexcept { return burst_; }
  uint64_t intervalNs() const noexcept { return interval_ns_; }

 private:
  double rate_;
  uint32_t burst_;
  uint64_t interval_ns_;   // ns per token, rounded up so the rate is never exceeded
  uint64_t tolerance_ns_;  // burst * interval: how far ahead of now the arrival time may run
  std::atomic<uint64_t> next_ns_{0};
};

}  // namespace tracecar::sampling
