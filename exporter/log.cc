#include "exporter/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace tracecar {
namespace {

std::atomic<uint8_t> min_level{static_cast<uint8_t>(LogLevel::kInfo)};
LogSink& sink() {
  static LogSink instance;
  return instance;
}

void writeAll(int fd, std::string_view text) noexcept {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
}

void defaultSink(LogLevel level, std::string_view component, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms.count() % 1000));
  std::string line;
  line.reserve(64 + component.size() + message.size());
  line += stamp;
  line += logLevelName(level);
  line += ' ';
  line += component;
  line += ": ";
  // One record per line: a newline inside the message would forge a second record.
  for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
  line += '\n';
  writeAll(STDERR_FILENO, line);
}

}  // namespace

std::string_view logLevelName(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

void setMinLogLevel(LogLevel level) noexcept {
  min_level.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
}

bool logEnabled(LogLevel level) noexcept {
  return static_cast<uint8_t>(level) >= min_level.load(std::memory_order_relaxed);
}

void setLogSink(LogSink new_sink) { sink() = std::move(new_sink); }

void log(LogLevel level, std::string_view component, std::string_view message) noexcept {
  if (!logEnabled(level)) return;
  try {
    if (sink()) {
      sink()(level, component, message);
    } else {
      defaultSink(level, component, message);
    }
  } catch (...) {
    // Logging must never take the process down (an allocation failure, a throwing sink).
  }
}

std::optional<uint64_t> LogThrottle::admit(Clock::time_point now) noexcept {
  const int64_t ticks =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  int64_t next = next_.load(std::memory_order_relaxed);
  if (ticks < next || !next_.compare_exchange_strong(next, ticks + interval_,
                                                     std::memory_order_relaxed)) {
    held_back_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  return held_back_.exchange(0, std::memory_order_relaxed);
}

std::string LogThrottle::heldBackNote(uint64_t held_back) {
  if (held_back == 0) return {};
  return " (" + std::to_string(held_back) + " more like it held back since the last one)";
}

bool LogThrottle::log(LogLevel level, std::string_view component,
                      std::string_view message) noexcept {
  if (!logEnabled(level)) return false;
  const std::optional<uint64_t> held_back = admit();
  if (!held_back) return false;
  try {
    if (*held_back == 0) {
      tracecar::log(level, component, message);
    } else {
      tracecar::log(level, component, std::string(message) + heldBackNote(*held_back));
    }
  } catch (...) {
  }
  return true;
}

}  // namespace tracecar
