#include "exporter/batch_config.h"

#include <charconv>
#include <optional>
#include <string_view>

#include "base/ascii.h"

namespace tracecar::exporter {
namespace {

// The value of name when it is a whole number in [min, max]; otherwise a warning and nullopt.
std::optional<long long> readNumber(const EnvLookup& env, std::string_view name, long long min,
                                    long long max, std::vector<std::string>& warnings) {
  const std::optional<std::string> raw = env(name);
  if (!raw) return std::nullopt;
  const std::string_view text = ascii::trimOws(*raw);
  if (text.empty()) return std::nullopt;
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const bool whole = ec == std::errc() && end == text.data() + text.size();
  if (!whole || value < min || value > max) {
    warnings.push_back(std::string(name) + "=\"" + *raw + "\" is not a whole number in [" +
                       std::to_string(min) + ", " + std::to_string(max) +
                       "]; using the default");
    return std::nullopt;
  }
  return value;
}

}  // namespace

BatchConfig BatchConfig::fromEnv(const EnvLookup& env, std::vector<std::string>& warnings) {
  BatchConfig config;
  const auto max_size = static_cast<long long>(kMaxQueueSize);
  if (auto v = readNumber(env, "OTEL_BSP_SCHEDULE_DELAY", 1, kMaxMilliseconds, warnings)) {
    config.schedule_delay = std::chrono::milliseconds(*v);
  }
  if (auto v = readNumber(env, "OTEL_BSP_EXPORT_TIMEOUT", 1, kMaxMilliseconds, warnings)) {
    config.export_timeout = std::chrono::milliseconds(*v);
  }
  if (auto v = readNumber(env, "OTEL_BSP_MAX_QUEUE_SIZE", 1, max_size, warnings)) {
    config.max_queue_size = static_cast<size_t>(*v);
  }
  const std::optional<long long> batch =
      readNumber(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, max_size, warnings);
  if (batch) config.max_export_batch_size = static_cast<size_t>(*batch);
  if (auto v = readNumber(env, "TRACECAR_EXPORTER_NICE", 0, kMaxThreadNice, warnings)) {
    config.thread_nice = static_cast<int>(*v);
  }
  if (config.max_export_batch_size > config.max_queue_size && !batch) {
    // A queue smaller than the default batch brings the batch size down with it.
    config.max_export_batch_size = config.max_queue_size;
  } else if (config.max_export_batch_size > config.max_queue_size) {
    // The spec requires batch <= queue; a bigger batch could never fill.
    warnings.push_back("OTEL_BSP_MAX_EXPORT_BATCH_SIZE=" +
                       std::to_string(config.max_export_batch_size) +
                       " is larger than OTEL_BSP_MAX_QUEUE_SIZE=" +
                       std::to_string(config.max_queue_size) + "; using " +
                       std::to_string(config.max_queue_size));
    config.max_export_batch_size = config.max_queue_size;
  }
  return config;
}

}  // namespace tracecar::exporter
