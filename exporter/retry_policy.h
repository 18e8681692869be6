#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tracecar::exporter {

// What an OTLP/HTTP status code means for the batch (OTLP spec, "Failures").
enum class HttpDisposition : uint8_t { kSuccess, kRetryable, kNonRetryable };
// 2xx success; 429, 502, 503, 504 retryable; everything else not.
HttpDisposition classifyOtlpHttpStatus(int status) noexcept;

// Retry-After (RFC 9110 10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate, and the obsolete
// RFC 850 and asctime forms) taken relative to now; a date in the past is zero. nullopt when
// malformed. Delays are capped at one day.
std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view value,
                                                         std::chrono::system_clock::time_point now);

// Exponential backoff with jitter for retries: the n-th delay is drawn uniformly from
// [base * (1 - jitter), base * (1 + jitter)] with base = min(initial * multiplier^n, max).
class Backoff {
 public:
  struct Params {
    std::chrono::milliseconds initial{1000};
    std::chrono::milliseconds max{5000};
    double multiplier = 1.5;
    double jitter = 0.2;
  };
  Backoff(const Params& params, uint64_t seed) noexcept;
  std::chrono::milliseconds next() noexcept;
  void reset() noexcept;  // the next delay is the initial one again
  const Params& params() const noexcept { return params_; }

 private:
  Params params_;
  uint64_t state_;
  uint32_t attempt_ = 0;
};

// The wait before the next attempt: the backoff's delay, or the server's Retry-After when it
// gave a longer one (the backoff advances either way). nullopt when that attempt could not
// start before the deadline (the caller stops retrying: retry exhausted).
std::optional<std::chrono::milliseconds> retryDelay(
    std::optional<std::chrono::milliseconds> retry_after, Backoff& backoff,
    std::chrono::milliseconds time_left) noexcept;

}  // namespace tracecar::exporter
