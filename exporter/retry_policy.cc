#include "exporter/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>

#include "base/ascii.h"

namespace tracecar::exporter {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMaxRetryAfter = std::chrono::hours(24);
constexpr long long kMaxRetryAfterSeconds = 24 * 60 * 60;

bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }

// A cursor over the date text; every read checks bounds and fails the whole parse on mismatch.
class Reader {
 public:
  explicit Reader(std::string_view text) noexcept : text_(text) {}

  bool literal(std::string_view expected) noexcept {
    if (text_.substr(0, expected.size()) != expected) return false;
    text_.remove_prefix(expected.size());
    return true;
  }
  // Exactly n digits.
  bool digits(size_t n, int& value) noexcept {
    if (text_.size() < n) return false;
    value = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!isDigit(text_[i])) return false;
      value = value * 10 + (text_[i] - '0');
    }
    text_.remove_prefix(n);
    return true;
  }
  // One of names (case-sensitive, as RFC 9110 writes them); its index.
  template <size_t N>
  bool oneOf(const std::string_view (&names)[N], int& index) noexcept {
    for (size_t i = 0; i < N; ++i) {
      if (literal(names[i])) {
        index = static_cast<int>(i);
        return true;
      }
    }
    return false;
  }
  bool done() const noexcept { return text_.empty(); }

 private:
  std::string_view text_;
};

constexpr std::string_view kDayNames[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::string_view kLongDayNames[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                              "Friday", "Saturday", "Sunday"};
constexpr std::string_view kMonthNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct Date {
  int year = 0;
  int month = 0;  // 0..11
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
};

bool timeOfDay(Reader& r, Date& d) noexcept {
  return r.digits(2, d.hour) && r.literal(":") && r.digits(2, d.minute) && r.literal(":") &&
         r.digits(2, d.second);
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
bool imfFixdate(std::string_view text, Date& d) noexcept {
  Reader r(text);
  int weekday = 0;
  return r.oneOf(kDayNames, weekday) && r.literal(", ") && r.digits(2, d.day) && r.literal(" ") &&
         r.oneOf(kMonthNames, d.month) && r.literal(" ") && r.digits(4, d.year) &&
         r.literal(" ") && timeOfDay(r, d) && r.literal(" GMT") && r.done();
}

// "Sunday, 06-Nov-94 08:49:37 GMT"; the year gets its century from now.
bool rfc850Date(std::string_view text, int current_year, Date& d) noexcept {
  Reader r(text);
  int weekday = 0;
  int two_digit_year = 0;
  if (!(r.oneOf(kLongDayNames, weekday) && r.literal(", ") && r.digits(2, d.day) &&
        r.literal("-") && r.oneOf(kMonthNames, d.month) && r.literal("-") &&
        r.digits(2, two_digit_year) && r.literal(" ") && timeOfDay(r, d) && r.literal(" GMT") &&
        r.done())) {
    return false;
  }
  // RFC 9110 5.6.7: a year more than 50 years in the future is the one a century earlier; so
  // the year is the one with these last two digits in (now - 50, now + 50].
  d.year = current_year - current_year % 100 + two_digit_year;
  if (d.year > current_year + 50) d.year -= 100;
  if (d.year <= current_year - 50) d.year += 100;
  return true;
}

// "Sun Nov  6 08:49:37 1994"
bool asctimeDate(std::string_view text, Date& d) noexcept {
  Reader r(text);
  int weekday = 0;
  if (!(r.oneOf(kDayNames, weekday) && r.literal(" ") && r.oneOf(kMonthNames, d.month) &&
        r.literal(" "))) {
    return false;
  }
  const bool day_ok = r.literal(" ") ? r.digits(1, d.day) : r.digits(2, d.day);
  return day_ok && r.literal(" ") && timeOfDay(r, d) && r.literal(" ") && r.digits(4, d.year) &&
         r.done();
}

bool isLeapYear(int year) noexcept {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

bool inRange(const Date& d) noexcept {
  static constexpr int kDaysInMonth[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int days = kDaysInMonth[d.month] + (d.month == 1 && isLeapYear(d.year) ? 1 : 0);
  // second 60 is a leap second (RFC 9110 5.6.7).
  return d.day >= 1 && d.day <= days && d.hour <= 23 && d.minute <= 59 && d.second <= 60;
}

std::optional<milliseconds> delayUntil(const Date& d, std::chrono::system_clock::time_point now) {
  std::tm tm{};
  tm.tm_year = d.year - 1900;
  tm.tm_mon = d.month;
  tm.tm_mday = d.day;
  tm.tm_hour = d.hour;
  tm.tm_min = d.minute;
  tm.tm_sec = d.second;
  const time_t when = timegm(&tm);
  const long long now_ms =
      std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
  // Seconds far from now are capped before they are scaled, so nothing overflows.
  const long long now_s = now_ms / 1000;
  const long long when_s = static_cast<long long>(when);
  if (when_s < now_s - 1) return milliseconds(0);
  if (when_s > now_s + kMaxRetryAfterSeconds + 1) return kMaxRetryAfter;
  const long long delay = when_s * 1000 - now_ms;
  return std::clamp(milliseconds(delay), milliseconds(0), kMaxRetryAfter);
}

int currentYear(std::chrono::system_clock::time_point now) noexcept {
  const time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return 1970;
  return tm.tm_year + 1900;
}

// splitmix64: a tiny, well-mixed generator; deterministic from the seed, which tests rely on.
uint64_t nextRandom(uint64_t& state) noexcept {
  state += 0x9E3779B97F4A7C15ULL;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

HttpDisposition classifyOtlpHttpStatus(int status) noexcept {
  if (status >= 200 && status <= 299) return HttpDisposition::kSuccess;
  switch (status) {
    case 429:
    case 502:
    case 503:
    case 504:
      return HttpDisposition::kRetryable;
    default:
      return HttpDisposition::kNonRetryable;
  }
}

std::optional<milliseconds> parseRetryAfter(std::string_view value,
                                            std::chrono::system_clock::time_point now) {
  const std::string_view text = ascii::trimOws(value);
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), isDigit)) {
    long long seconds = 0;
    for (char c : text) {
      seconds = seconds * 10 + (c - '0');
      if (seconds > kMaxRetryAfterSeconds) return kMaxRetryAfter;  // also stops any overflow
    }
    return std::chrono::seconds(seconds);
  }
  Date date;
  const bool parsed = imfFixdate(text, date) || rfc850Date(text, currentYear(now), date) ||
                      asctimeDate(text, date);
  if (!parsed || !inRange(date)) return std::nullopt;
  return delayUntil(date, now);
}

Backoff::Backoff(const Params& params, uint64_t seed) noexcept : params_(params), state_(seed) {}

milliseconds Backoff::next() noexcept {
  const double initial = std::max(0.0, static_cast<double>(params_.initial.count()));
  const double max = std::max(0.0, static_cast<double>(params_.max.count()));
  const double multiplier = std::isfinite(params_.multiplier) ? params_.multiplier : 1.0;
  const double jitter =
      std::isfinite(params_.jitter) ? std::clamp(params_.jitter, 0.0, 1.0) : 0.0;
  double base = initial * std::pow(std::max(multiplier, 0.0), static_cast<double>(attempt_));
  if (initial == 0.0) base = 0.0;    // 0 * inf would be NaN
  if (!(base <= max)) base = max;  // also when pow overflowed to inf
  if (attempt_ != std::numeric_limits<uint32_t>::max()) ++attempt_;

  // Uniform in [0, 1) from the top 53 bits.
  const double unit = static_cast<double>(nextRandom(state_) >> 11) * 0x1.0p-53;
  const double delay = base * (1.0 - jitter + 2.0 * jitter * unit);
  // Clamp well inside the range of milliseconds::rep before converting.
  const double cap = std::min(max * (1.0 + jitter), 9.0e18);
  const double bounded = delay >= 0.0 ? std::min(delay, cap) : 0.0;
  return milliseconds(static_cast<milliseconds::rep>(std::floor(bounded)));
}

void Backoff::reset() noexcept { attempt_ = 0; }

std::optional<milliseconds> retryDelay(std::optional<milliseconds> retry_after, Backoff& backoff,
                                       milliseconds time_left) noexcept {
  // The backoff advances either way, so a later attempt without Retry-After keeps growing. A
  // Retry-After shorter than the backoff (0, a date past) does not shorten it: a collector that
  // keeps answering 503 with Retry-After: 0 would otherwise be asked again at once, thousands
  // of times a second.
  const milliseconds drawn = backoff.next();
  const milliseconds delay = std::max({retry_after.value_or(drawn), drawn, milliseconds(0)});
  if (delay >= time_left) return std::nullopt;
  return delay;
}

}  // namespace tracecar::exporter
