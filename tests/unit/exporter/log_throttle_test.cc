// LogThrottle: the first line of a kind passes, then one per interval, and the line after a
// quiet spell says how many were held back.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "exporter/log.h"

namespace tracecar {
namespace {

using namespace std::chrono_literals;
using Clock = LogThrottle::Clock;

TEST(LogThrottleTest, FirstLinePassesThenOnePerInterval) {
  LogThrottle throttle(10s);
  const Clock::time_point t0 = Clock::now();
  EXPECT_EQ(throttle.admit(t0), std::optional<uint64_t>(0));
  EXPECT_EQ(throttle.admit(t0 + 1ms), std::nullopt);
  EXPECT_EQ(throttle.admit(t0 + 9999ms), std::nullopt);
  // At the interval exactly, the next line passes and counts the two held back.
  EXPECT_EQ(throttle.admit(t0 + 10s), std::optional<uint64_t>(2));
  EXPECT_EQ(throttle.admit(t0 + 10s + 1ns), std::nullopt);
  // Long after, nothing held back since the last line that passed but that one.
  EXPECT_EQ(throttle.admit(t0 + 1h), std::optional<uint64_t>(1));
  EXPECT_EQ(throttle.admit(t0 + 2h), std::optional<uint64_t>(0));
}

TEST(LogThrottleTest, HeldBackNote) {
  EXPECT_EQ(LogThrottle::heldBackNote(0), "");
  EXPECT_EQ(LogThrottle::heldBackNote(1), " (1 more like it held back since the last one)");
  EXPECT_EQ(LogThrottle::heldBackNote(37), " (37 more like it held back since the last one)");
}

TEST(LogThrottleTest, LogWritesTheAdmittedLinesWithTheNote) {
  std::vector<std::string> lines;
  setLogSink([&](LogLevel, std::string_view component, std::string_view message) {
    lines.push_back(std::string(component) + ": " + std::string(message));
  });
  LogThrottle throttle(50ms);
  EXPECT_TRUE(throttle.log(LogLevel::kError, "exporter", "export failed"));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(throttle.log(LogLevel::kError, "exporter", "export failed"));
  std::this_thread::sleep_for(60ms);
  EXPECT_TRUE(throttle.log(LogLevel::kError, "exporter", "export failed"));
  setLogSink({});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "exporter: export failed");
  EXPECT_EQ(lines[1], "exporter: export failed (5 more like it held back since the last one)");
}

TEST(LogThrottleTest, DisabledLevelIsNeitherWrittenNorCounted) {
  setMinLogLevel(LogLevel::kError);
  LogThrottle throttle(1h);
  EXPECT_FALSE(throttle.log(LogLevel::kWarn, "proxy", "x"));
  setMinLogLevel(LogLevel::kInfo);
  EXPECT_EQ(throttle.admit(), std::optional<uint64_t>(0));
}

TEST(LogThrottleTest, ThreadsSharingOneThrottleLetExactlyOneLineThrough) {
  LogThrottle throttle(1h);
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (throttle.admit()) passed.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(passed.load(), 1);
}

}  // namespace
}  // namespace tracecar
