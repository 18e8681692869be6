#pragma once

#include <cstdint>
#include <functional>
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

}  // namespace tracecar
