#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace tracecar::exporter {

// "No limit": what a timeout of 0 means in the OTel variables (the SDK configuration
// specification: a Timeout of 0 means no limit). Held as the longest duration, so that a time
// plus a timeout saturates instead of meaning "at once".
inline constexpr std::chrono::milliseconds kNoTimeout = std::chrono::milliseconds::max();

// A timeout read as a whole number of milliseconds, where 0 means no limit (kNoTimeout).
constexpr std::chrono::milliseconds timeoutOrNoLimit(long long ms) noexcept {
  return ms == 0 ? kNoTimeout : std::chrono::milliseconds(ms);
}

// A deadline, in uv_now terms, that never comes.
inline constexpr uint64_t kNoDeadline = std::numeric_limits<uint64_t>::max();

// now_ms + timeout; kNoDeadline when that does not fit (kNoTimeout always). A timeout below 0
// counts as 0.
constexpr uint64_t deadlineAfter(uint64_t now_ms, std::chrono::milliseconds timeout) noexcept {
  if (timeout == kNoTimeout) return kNoDeadline;
  if (timeout.count() <= 0) return now_ms;
  const auto ms = static_cast<uint64_t>(timeout.count());
  return ms >= kNoDeadline - now_ms ? kNoDeadline : now_ms + ms;
}

// The time from now_ms to deadline_ms (0 once it has passed); the longest duration for
// kNoDeadline.
constexpr std::chrono::milliseconds timeLeft(uint64_t now_ms, uint64_t deadline_ms) noexcept {
  if (deadline_ms <= now_ms) return std::chrono::milliseconds(0);
  const uint64_t left = deadline_ms - now_ms;
  constexpr auto kLongest = static_cast<uint64_t>(std::chrono::milliseconds::max().count());
  if (deadline_ms == kNoDeadline || left >= kLongest) return std::chrono::milliseconds::max();
  return std::chrono::milliseconds(static_cast<int64_t>(left));
}

}  // namespace tracecar::exporter
