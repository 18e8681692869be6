#include "sampling/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace tracecar::sampling {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

RateLimiter limiter(double rate, uint32_t burst) {
  const absl::StatusOr<RateLimitSettings> settings = RateLimiter::validate({rate, burst});
  EXPECT_TRUE(settings.ok()) << settings.status();
  return RateLimiter(*settings);
}

int acquireAll(RateLimiter& l, uint64_t now, int attempts) {
  int granted = 0;
  for (int i = 0; i < attempts; ++i) granted += l.tryAcquire(now);
  return granted;
}

TEST(RateLimiter, GrantsTheBurstAtOnceThenNothing) {
  RateLimiter l = limiter(10, 5);
  EXPECT_EQ(acquireAll(l, 100 * kSecond, 50), 5);
}

TEST(RateLimiter, RefillsOneTokenPerInterval) {
  RateLimiter l = limiter(10, 5);
  const uint64_t t0 = 7 * kSecond;
  EXPECT_EQ(acquireAll(l, t0, 5), 5);
  EXPECT_FALSE(l.tryAcquire(t0 + kSecond / 10 - 1));
  EXPECT_TRUE(l.tryAcquire(t0 + kSecond / 10));
  EXPECT_FALSE(l.tryAcquire(t0 + kSecond / 10));
  // Idle for a minute: back to the burst, not 600 tokens.
  EXPECT_EQ(acquireAll(l, t0 + 60 * kSecond, 100), 5);
}

TEST(RateLimiter, FractionalRates) {
  RateLimiter half = limiter(0.5, 1);  // one trace per two seconds
  EXPECT_TRUE(half.tryAcquire(0));
  EXPECT_FALSE(half.tryAcquire(kSecond));
  EXPECT_FALSE(half.tryAcquire(2 * kSecond - 1));
  EXPECT_TRUE(half.tryAcquire(2 * kSecond));

  RateLimiter third = limiter(1.0 / 3, 0);  // burst defaults to 1
  EXPECT_EQ(third.burst(), 1u);
  int granted = 0;
  for (uint64_t t = 0; t <= 30 * kSecond; t += kSecond / 4) granted += third.tryAcquire(t);
  EXPECT_EQ(granted, 11);  // at 0, 3, 6, ..., 30 s

  RateLimiter fast = limiter(2.5, 0);  // burst ceil(2.5) = 3
  EXPECT_EQ(fast.burst(), 3u);
  EXPECT_EQ(fast.intervalNs(), 400'000'000u);
}

// Over simulated time the total never exceeds burst + elapsed * rate, and a steady demand
// above the rate gets the rate.
TEST(RateLimiter, LongRunGetsTheRateAndNoMore) {
  RateLimiter l = limiter(100, 10);
  int granted = 0;
  const uint64_t step = kSecond / 1000;  // 1000 attempts per second, 10x the rate
  for (uint64_t t = 0; t < 60 * kSecond; t += step) granted += l.tryAcquire(t);
  EXPECT_LE(granted, 10 + 60 * 100);
  EXPECT_GE(granted, 60 * 100);
}

TEST(RateLimiter, OlderTimestampsFromRacingThreadsAreOnlyStricter) {
  RateLimiter l = limiter(1, 2);
  EXPECT_EQ(acquireAll(l, 10 * kSecond, 2), 2);
  EXPECT_FALSE(l.tryAcquire(9 * kSecond));  // a thread that read the clock earlier
  EXPECT_TRUE(l.tryAcquire(11 * kSecond));
}

TEST(RateLimiter, ManyThreadsNeverExceedTheBudget) {
  RateLimiter l = limiter(1000, 50);
  constexpr int kThreads = 8;
  constexpr int kAttempts = 50'000;
  std::atomic<uint64_t> clock{kSecond};
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      int mine = 0;
      for (int a = 0; a < kAttempts; ++a) {
        // Simulated time: every attempt moves the shared clock 10 us forward.
        const uint64_t now = clock.fetch_add(10'000, std::memory_order_relaxed);
        mine += l.tryAcquire(now);
      }
      granted.fetch_add(mine);
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed_s = static_cast<double>(clock.load() - kSecond) / kSecond;
  EXPECT_LE(granted.load(), 50 + static_cast<int>(std::ceil(elapsed_s * 1000)));
  EXPECT_GT(granted.load(), 0);
}

TEST(RateLimiter, ValidateRejectsBadSettings) {
  EXPECT_FALSE(RateLimiter::validate({0, 1}).ok());
  EXPECT_FALSE(RateLimiter::validate({-5, 1}).ok());
  EXPECT_FALSE(RateLimiter::validate({std::numeric_limits<double>::infinity(), 1}).ok());
  EXPECT_FALSE(RateLimiter::validate({std::numeric_limits<double>::quiet_NaN(), 1}).ok());
  EXPECT_FALSE(RateLimiter::validate({2e9, 1}).ok());
  EXPECT_FALSE(RateLimiter::validate({1e-9, 4'000'000'000u}).ok());  // burst * interval overflows
  EXPECT_TRUE(RateLimiter::validate({1e9, 1}).ok());
  EXPECT_EQ(RateLimiter::validate({0.2, 0})->burst, 1u);
  EXPECT_EQ(RateLimiter::validate({7, 3})->burst, 3u);
}

}  // namespace
}  // namespace tracecar::sampling
