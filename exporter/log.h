#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace tracecar {

// One-line diagnostics from any thread. The default sink writes
// "2026-11-21T10:00:00.123Z warn exporter: message" to standard error with one write(2) per
// line, so lines from several threads never interleave. The proxy may install another sink
// (tests capture lines this way); the sink is called from the logging thread.
enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };

std::string_view logLevelName(LogLevel level) noexcept;  // "debug", "info", "warn", "error"

using LogSink = std::function<void(LogLevel level, std::string_view component,
                                   std::string_view message)>;

// Lines below the minimum level are dropped before formatting. Default: kInfo.
void setMinLogLevel(LogLevel level) noexcept;
bool logEnabled(LogLevel level) noexcept;
// Replaces the sink; an empty function restores the default. Not for use while other threads
// log.
void setLogSink(LogSink sink);

void log(LogLevel level, std::string_view component, std::string_view message) noexcept;

// Keeps one kind of line (a failed export, a refused accept) from flooding the log when its
// cause repeats: the first line passes, then at most one per interval; the line that passes
// after others were held back says how many. The counters on /metrics still count every event.
// Safe to share between threads.
class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kDefaultInterval{10};

  explicit LogThrottle(std::chrono::nanoseconds interval = kDefaultInterval) noexcept
      : interval_(interval.count()) {}

  // Whether a line due now may be written; if so, how many lines were held back since the last
  // one that was. A caller that is told nullopt writes nothing.
  std::optional<uint64_t> admit(Clock::time_point now = Clock::now()) noexcept;

  // " (12 more like it held back since the last one)", or "" for none.
  static std::string heldBackNote(uint64_t held_back);

  // log() when admitted, with heldBackNote appended; false when held back.
  bool log(LogLevel level, std::string_view component, std::string_view message) noexcept;

 private:
  const int64_t interval_;  // nanoseconds
  std::atomic<int64_t> next_{INT64_MIN};  // Clock ticks (ns) from which a line may pass again
  std::atomic<uint64_t> held_back_{0};
};

}  // namespace tracecar
