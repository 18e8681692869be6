#include "sampling/rate_limiter.h"

#include <cmath>

#include "sampling/text.h"

namespace tracecar::sampling {

namespace {

constexpr double kNsPerSecond = 1e9;
// An interval of one nanosecond and a tolerance that cannot overflow: no practical limit.
constexpr double kMaxRate = kNsPerSecond;
constexpr uint64_t kMaxToleranceNs = uint64_t{1} << 62;

uint64_t intervalFor(double rate) noexcept {
  const double ns = std::ceil(kNsPerSecond / rate);
  return ns < 1 ? 1 : static_cast<uint64_t>(ns);
}

}  // namespace

absl::StatusOr<RateLimitSettings> RateLimiter::validate(RateLimitSettings settings) {
  const double rate = settings.traces_per_second;
  if (!std::isfinite(rate) || rate <= 0) {
    return text::invalid(
        "rate limit: traces per second must be a number > 0, got ", rate);
  }
  if (rate > kMaxRate) {
    return text::invalid(
        "rate limit: traces per second must be at most 1e9, got ", rate);
  }
  if (settings.burst == 0) settings.burst = static_cast<uint32_t>(std::max(1.0, std::ceil(rate)));
  if (static_cast<double>(settings.burst) * static_cast<double>(intervalFor(rate)) >
      static_cast<double>(kMaxToleranceNs)) {
    return text::invalid("rate limit: burst ", settings.burst,
                                                   " is too large for ", rate,
                                                   " traces per second");
  }
  return settings;
}

RateLimiter::RateLimiter(const RateLimitSettings& settings) noexcept
    : rate_(settings.traces_per_second),
      burst_(settings.burst == 0 ? 1 : settings.burst),
      interval_ns_(intervalFor(settings.traces_per_second)),
      tolerance_ns_(uint64_t{burst_} * interval_ns_) {}

bool RateLimiter::tryAcquire(uint64_t now_ns) noexcept {
  uint64_t next = next_ns_.load(std::memory_order_relaxed);
  for (;;) {
    // An idle bucket refills up to the burst: the arrival time never lags behind now.
    const uint64_t after = (next > now_ns ? next : now_ns) + interval_ns_;
    if (after - now_ns > tolerance_ns_) return false;
    if (next_ns_.compare_exchange_weak(next, after, std::memory_order_relaxed)) return true;
  }
}

}  // namespace tracecar::sampling
