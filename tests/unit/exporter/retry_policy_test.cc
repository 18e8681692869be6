#include "exporter/retry_policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace tracecar::exporter {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// classifyOtlpHttpStatus

struct StatusCase {
  int status;
  HttpDisposition disposition;
};

class ClassifyStatus : public ::testing::TestWithParam<StatusCase> {};

TEST_P(ClassifyStatus, FollowsTheOtlpFailureRules) {
  EXPECT_EQ(classifyOtlpHttpStatus(GetParam().status), GetParam().disposition)
      << GetParam().status;
}

INSTANTIATE_TEST_SUITE_P(
    Codes, ClassifyStatus,
    ::testing::Values(StatusCase{200, HttpDisposition::kSuccess},
                      StatusCase{202, HttpDisposition::kSuccess},
                      StatusCase{204, HttpDisposition::kSuccess},
                      StatusCase{299, HttpDisposition::kSuccess},
                      StatusCase{429, HttpDisposition::kRetryable},
                      StatusCase{502, HttpDisposition::kRetryable},
                      StatusCase{503, HttpDisposition::kRetryable},
                      StatusCase{504, HttpDisposition::kRetryable},
                      StatusCase{-1, HttpDisposition::kNonRetryable},
                      StatusCase{0, HttpDisposition::kNonRetryable},
                      StatusCase{100, HttpDisposition::kNonRetryable},
                      StatusCase{199, HttpDisposition::kNonRetryable},
                      StatusCase{300, HttpDisposition::kNonRetryable},
                      StatusCase{301, HttpDisposition::kNonRetryable},
                      StatusCase{400, HttpDisposition::kNonRetryable},
                      StatusCase{401, HttpDisposition::kNonRetryable},
                      StatusCase{404, HttpDisposition::kNonRetryable},
                      StatusCase{408, HttpDisposition::kNonRetryable},
                      StatusCase{413, HttpDisposition::kNonRetryable},
                      StatusCase{428, HttpDisposition::kNonRetryable},
                      StatusCase{430, HttpDisposition::kNonRetryable},
                      StatusCase{500, HttpDisposition::kNonRetryable},
                      StatusCase{501, HttpDisposition::kNonRetryable},
                      StatusCase{505, HttpDisposition::kNonRetryable},
                      StatusCase{600, HttpDisposition::kNonRetryable}));

// ---------------------------------------------------------------------------------------------
// parseRetryAfter

// 2025-06-01T00:00:00Z, a Sunday.
const std::chrono::system_clock::time_point kNow =
    std::chrono::sys_days{std::chrono::year{2025} / std::chrono::June / 1};
constexpr milliseconds kDay = std::chrono::hours(24);

struct RetryAfterCase {
  const char* value;
  std::optional<milliseconds> delay;
};

void PrintTo(const RetryAfterCase& c, std::ostream* os) { *os << '"' << c.value << '"'; }

class ParseRetryAfter : public ::testing::TestWithParam<RetryAfterCase> {};

TEST_P(ParseRetryAfter, ReadsSecondsAndHttpDates) {
  const std::optional<milliseconds> delay = parseRetryAfter(GetParam().value, kNow);
  EXPECT_EQ(delay, GetParam().delay) << "\"" << GetParam().value << "\"";
}

INSTANTIATE_TEST_SUITE_P(
    DelaySeconds, ParseRetryAfter,
    ::testing::Values(RetryAfterCase{"0", 0ms}, RetryAfterCase{"1", 1000ms},
                      RetryAfterCase{"120", 120000ms}, RetryAfterCase{"007", 7000ms},
                      RetryAfterCase{" 5 ", 5000ms}, RetryAfterCase{"\t7\t", 7000ms},
                      RetryAfterCase{"86399", 86399000ms}, RetryAfterCase{"86400", kDay},
                      RetryAfterCase{"86401", kDay}, RetryAfterCase{"4294967296", kDay},
                      RetryAfterCase{"18446744073709551616", kDay},
                      RetryAfterCase{"99999999999999999999999999999999999999999999", kDay}));

INSTANTIATE_TEST_SUITE_P(
    Dates, ParseRetryAfter,
    ::testing::Values(
        // IMF-fixdate
        RetryAfterCase{"Sun, 01 Jun 2025 00:00:10 GMT", 10000ms},
        RetryAfterCase{"Sun, 01 Jun 2025 01:00:00 GMT", 3600000ms},
        RetryAfterCase{"  Sun, 01 Jun 2025 00:00:10 GMT\t", 10000ms},
        RetryAfterCase{"Sun, 01 Jun 2025 00:00:00 GMT", 0ms},
        RetryAfterCase{"Mon, 02 Jun 2025 00:00:00 GMT", kDay},
        RetryAfterCase{"Mon, 02 Jun 2025 00:00:01 GMT", kDay},
        RetryAfterCase{"Fri, 31 Dec 9999 23:59:59 GMT", kDay},
        RetryAfterCase{"Sun, 06 Nov 1994 08:49:37 GMT", 0ms},
        RetryAfterCase{"Thu, 29 Feb 2024 12:00:00 GMT", 0ms},
        RetryAfterCase{"Sat, 31 May 2025 23:59:59 GMT", 0ms},
        RetryAfterCase{"Sun, 01 Jun 2025 00:00:60 GMT", 60000ms},  // leap second
        // RFC 850
        RetryAfterCase{"Sunday, 01-Jun-25 00:00:10 GMT", 10000ms},
        RetryAfterCase{"Sunday, 01-Jun-25 00:02:00 GMT", 120000ms},
        RetryAfterCase{"Sunday, 06-Nov-94 08:49:37 GMT", 0ms},
        RetryAfterCase{"Tuesday, 01-Jan-75 00:00:00 GMT", kDay},  // 2075: 50 years ahead
        RetryAfterCase{"Thursday, 01-Jan-76 00:00:00 GMT", 0ms},  // 1976, not 2076
        RetryAfterCase{"Friday, 01-Jan-99 00:00:00 GMT", 0ms},
        // asctime
        RetryAfterCase{"Sun Jun  1 00:00:10 2025", 10000ms},
        RetryAfterCase{"Sun Jun 01 00:00:10 2025", 10000ms},
        RetryAfterCase{"Sun Nov  6 08:49:37 1994", 0ms},
        RetryAfterCase{"Mon Jun  2 00:00:00 2025", kDay}));

INSTANTIATE_TEST_SUITE_P(
    Garbage, ParseRetryAfter,
    ::testing::Values(
        RetryAfterCase{"", std::nullopt}, RetryAfterCase{"   ", std::nullopt},
        RetryAfterCase{"-5", std::nullopt}, RetryAfterCase{"+5", std::nullopt},
        RetryAfterCase{"5.0", std::nullopt}, RetryAfterCase{"5s", std::nullopt},
        RetryAfterCase{"1e3", std::nullopt}, RetryAfterCase{"0x10", std::nullopt},
        RetryAfterCase{"abc", std::nullopt}, RetryAfterCase{"5 5", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 2025 00:00:10 UTC", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 2025 00:00:10 gmt", std::nullopt},
        RetryAfterCase{"sun, 01 Jun 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun, 01 jun 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun, 1 Jun 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun,  01 Jun 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 25 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 2025 0:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 2025 00:00:10", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 2025 00:00:10 GMTx", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 2025 00:00:10 GMT 5", std::nullopt},
        RetryAfterCase{"Sun, 01 Foo 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Xyz, 01 Jun 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sunday, 01 Jun 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun, 01-Jun-25 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sunday, 01-Jun-2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun Jun 1 00:00:10 2025", std::nullopt},
        RetryAfterCase{"Sun Jun  1 00:00:10 25", std::nullopt},
        RetryAfterCase{"Sun Jun  1 00:00:10 2025 GMT", std::nullopt},
        RetryAfterCase{"2025-06-01T00:00:10Z", std::nullopt},
        // Out of range fields.
        RetryAfterCase{"Sun, 00 Jun 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Tue, 31 Jun 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sat, 29 Feb 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Tue, 29 Feb 2100 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun, 32 Jan 2025 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 2025 24:00:00 GMT", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 2025 00:60:00 GMT", std::nullopt},
        RetryAfterCase{"Sun, 01 Jun 2025 00:00:61 GMT", std::nullopt},
        RetryAfterCase{"Sunday, 31-Apr-25 00:00:10 GMT", std::nullopt},
        RetryAfterCase{"Sun Jun 31 00:00:10 2025", std::nullopt},
        RetryAfterCase{"Sun Jun  0 00:00:10 2025", std::nullopt}));

TEST(ParseRetryAfter, LeapDayOfALeapYearIsValid) {
  const auto now = std::chrono::sys_days{std::chrono::year{2028} / std::chrono::February / 28};
  EXPECT_EQ(parseRetryAfter("Tue, 29 Feb 2028 00:00:00 GMT", now), kDay);
  EXPECT_EQ(parseRetryAfter("Mon, 28 Feb 2028 23:00:00 GMT", now), std::optional(kDay - 1h));
}

TEST(ParseRetryAfter, DateIsTakenRelativeToNowWithMilliseconds) {
  EXPECT_EQ(parseRetryAfter("Sun, 01 Jun 2025 00:00:10 GMT", kNow + 250ms), 9750ms);
  EXPECT_EQ(parseRetryAfter("Sun, 01 Jun 2025 00:00:10 GMT", kNow + 10s + 1ms), 0ms);
}

TEST(ParseRetryAfter, TwoDigitYearsFollowTheCurrentCentury) {
  // In 2099, "01" means 2101 (two years ahead), not 2001.
  const std::chrono::system_clock::time_point late =
      std::chrono::sys_days{std::chrono::year{2099} / std::chrono::December / 31};
  EXPECT_EQ(parseRetryAfter("Saturday, 01-Jan-01 00:00:00 GMT", late), kDay);
  // In 2030, "80" is 2080 (50 years ahead, not more) and "81" is 1981.
  const std::chrono::system_clock::time_point y2030 =
      std::chrono::sys_days{std::chrono::year{2030} / std::chrono::January / 1};
  EXPECT_EQ(parseRetryAfter("Monday, 01-Jan-80 00:00:00 GMT", y2030), kDay);
  EXPECT_EQ(parseRetryAfter("Thursday, 01-Jan-81 00:00:00 GMT", y2030), 0ms);
  // In 2025, "25" on a later date is this year.
  EXPECT_EQ(parseRetryAfter("Sunday, 01-Jun-25 00:00:05 GMT", kNow), 5000ms);
}

// ---------------------------------------------------------------------------------------------
// Backoff

TEST(Backoff, GrowsByTheMultiplierUpToTheMax) {
  Backoff backoff({100ms, 1000ms, 2.0, 0.0}, 1);
  const std::vector<milliseconds> expected{100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms, 1000ms};
  for (milliseconds want : expected) EXPECT_EQ(backoff.next(), want);
}

TEST(Backoff, ResetStartsOverAtTheInitialDelay) {
  Backoff backoff({100ms, 1000ms, 2.0, 0.0}, 1);
  backoff.next();
  backoff.next();
  backoff.next();
  backoff.reset();
  EXPECT_EQ(backoff.next(), 100ms);
  EXPECT_EQ(backoff.next(), 200ms);
}

TEST(Backoff, DefaultsAreOneSecondToFiveSeconds) {
  const Backoff::Params p;
  EXPECT_EQ(p.initial, 1000ms);
  EXPECT_EQ(p.max, 5000ms);
  EXPECT_DOUBLE_EQ(p.multiplier, 1.5);
  EXPECT_DOUBLE_EQ(p.jitter, 0.2);
}

TEST(Backoff, IsDeterministicFromItsSeed) {
  Backoff a({}, 42);
  Backoff b({}, 42);
  Backoff c({}, 43);
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    const milliseconds x = a.next();
    EXPECT_EQ(x, b.next());
    differs = differs || x != c.next();
  }
  EXPECT_TRUE(differs);
}

TEST(Backoff, JitterStaysWithinBoundsAndSpreadsOverThem) {
  const Backoff::Params p{1000ms, 5000ms, 1.5, 0.2};
  Backoff backoff(p, 12345);
  constexpr int kRounds = 2000;
  constexpr int kAttempts = 8;
  std::vector<double> sum(kAttempts, 0.0);
  std::vector<long long> low(kAttempts, std::numeric_limits<long long>::max());
  std::vector<long long> high(kAttempts, 0);
  for (int round = 0; round < kRounds; ++round) {
    backoff.reset();
    for (int n = 0; n < kAttempts; ++n) {
      const long long d = backoff.next().count();
      sum[n] += static_cast<double>(d);
      low[n] = std::min(low[n], d);
      high[n] = std::max(high[n], d);
    }
  }
  for (int n = 0; n < kAttempts; ++n) {
    const double base = std::min(1000.0 * std::pow(1.5, n), 5000.0);
    SCOPED_TRACE(n);
    EXPECT_GE(low[n], static_cast<long long>(std::floor(base * 0.8)));
    EXPECT_LE(high[n], static_cast<long long>(base * 1.2));
    EXPECT_LE(high[n], 6000);
    // Both ends are reached closely, and the draws centre on the base.
    EXPECT_LT(low[n], base * 0.81);
    EXPECT_GT(high[n], base * 1.19);
    EXPECT_NEAR(sum[n] / kRounds, base, base * 0.02);
  }
}

TEST(Backoff, NeverExceedsMaxTimesOnePlusJitterAfterManyAttempts) {
  Backoff backoff({1000ms, 5000ms, 1.5, 0.2}, 7);
  for (int i = 0; i < 10000; ++i) {
    const milliseconds d = backoff.next();
    ASSERT_GE(d, 0ms);
    ASSERT_LE(d, 6000ms);
  }
}

TEST(Backoff, SurvivesNonsenseParameters) {
  const std::vector<Backoff::Params> params{
      {-5ms, 100ms, 2.0, 0.5},
      {100ms, -1ms, 2.0, 0.5},
      {100ms, 1000ms, std::numeric_limits<double>::quiet_NaN(), 0.1},
      {100ms, 1000ms, 2.0, std::numeric_limits<double>::infinity()},
      {100ms, 1000ms, 2.0, 5.0},
      {100ms, 1000ms, -3.0, -1.0},
      {0ms, 1000ms, 1e300, 0.2},
      {milliseconds::max(), milliseconds::max(), 10.0, 1.0},
  };
  for (const Backoff::Params& p : params) {
    Backoff backoff(p, 99);
    for (int i = 0; i < 100; ++i) ASSERT_GE(backoff.next(), 0ms);
  }
}

// ---------------------------------------------------------------------------------------------
// retryDelay

TEST(RetryDelay, ALongerRetryAfterWinsOverTheBackoff) {
  Backoff backoff({100ms, 1000ms, 2.0, 0.0}, 1);
  EXPECT_EQ(retryDelay(2000ms, backoff, 10s), 2000ms);
}

// Retry-After: 0 (or a date past) does not make the next attempt immediate: the backoff holds.
TEST(RetryDelay, AShorterRetryAfterDoesNotShortenTheBackoff) {
  Backoff backoff({100ms, 1000ms, 2.0, 0.0}, 1);
  EXPECT_EQ(retryDelay(0ms, backoff, 10s), 100ms);
  EXPECT_EQ(retryDelay(150ms, backoff, 10s), 200ms);
  EXPECT_EQ(retryDelay(-5000ms, backoff, 10s), 400ms);
}

TEST(RetryDelay, WithoutRetryAfterUsesTheBackoff) {
  Backoff backoff({}, 5);
  Backoff twin({}, 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(retryDelay(std::nullopt, backoff, 1h), twin.next());
}

TEST(RetryDelay, RetryAfterStillAdvancesTheBackoff) {
  Backoff backoff({100ms, 1000ms, 2.0, 0.0}, 1);
  EXPECT_EQ(retryDelay(3000ms, backoff, 1h), 3000ms);
  EXPECT_EQ(retryDelay(std::nullopt, backoff, 1h), 200ms);
}

TEST(RetryDelay, GivesUpWhenTheAttemptCouldNotStartBeforeTheDeadline) {
  Backoff backoff({100ms, 1000ms, 2.0, 0.0}, 1);
  EXPECT_EQ(retryDelay(5000ms, backoff, 5000ms), std::nullopt);
  EXPECT_EQ(retryDelay(5000ms, backoff, 4999ms), std::nullopt);
  EXPECT_EQ(retryDelay(4999ms, backoff, 5000ms), 4999ms);
  backoff.reset();
  EXPECT_EQ(retryDelay(std::nullopt, backoff, 100ms), std::nullopt);  // draws 100ms
  backoff.reset();
  EXPECT_EQ(retryDelay(std::nullopt, backoff, 101ms), 100ms);
  EXPECT_EQ(retryDelay(0ms, backoff, 0ms), std::nullopt);
  backoff.reset();
  EXPECT_EQ(retryDelay(0ms, backoff, 100ms), std::nullopt);  // the backoff's 100ms
  EXPECT_EQ(retryDelay(0ms, backoff, -5ms), std::nullopt);
}

TEST(RetryDelay, RetryAfterOfADayBeyondTheDeadlineIsExhaustion) {
  Backoff backoff({}, 3);
  const std::optional<milliseconds> after = parseRetryAfter("86400", kNow);
  EXPECT_EQ(retryDelay(after, backoff, 30s), std::nullopt);
}

}  // namespace
}  // namespace tracecar::exporter
