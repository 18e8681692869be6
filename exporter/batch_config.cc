#include "exporter/batch_config.h"

#include <charconv>
#include <optional>
#include <string_view>

namespace tracecar::exporter {
namespace {

using Picked = std::optional<std::pair<long long, EnvValue>>;

// The variable, else (unset, or invalid and warned about) the lower layer's value, when it is
// a whole number in [min, max]; std::nullopt leaves the default, default_text in the warning.
Picked readNumber(const EnvLookup& env, const LowerLayer& lower, std::string_view name,
                  long long min, long long max, std::string_view default_text,
                  std::vector<std::string>& warnings) {
  const std::optional<EnvValue> candidates[] = {readVariable(env, name), readLower(lower, name)};
  const auto parse = [min, max](std::string_view text) -> std::optional<long long> {
    long long value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
      return std::nullopt;
    }
    return value;
  };
  const std::string problem =
      "is not a whole number in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  return pickSetting<long long>(candidates, parse, problem, default_text, warnings);
}

}  // namespace

BatchConfig BatchConfig::fromEnv(const EnvLookup& env, std::vector<std::string>& warnings,
                                 const LowerLayer& lower) {
  BatchConfig config;
  const auto max_size = static_cast<long long>(kMaxQueueSize);
  if (Picked v = readNumber(env, lower, "OTEL_BSP_SCHEDULE_DELAY", 0, kMaxMilliseconds,
                            "the default 5000", warnings)) {
    config.schedule_delay = std::chrono::milliseconds(v->first);
  }
  if (Picked v = readNumber(env, lower, "OTEL_BSP_EXPORT_TIMEOUT", 0, kMaxMilliseconds,
                            "the default 30000", warnings)) {
    // The common configuration specification: a timeout of 0 means no limit.
    config.export_timeout = timeoutOrNoLimit(v->first);
  }
  const Picked queue = readNumber(env, lower, "OTEL_BSP_MAX_QUEUE_SIZE", 1, max_size,
                                  "the default 2048", warnings);
  if (queue) config.max_queue_size = static_cast<size_t>(queue->first);
  const Picked batch = readNumber(env, lower, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, max_size,
                                  "the default 512", warnings);
  if (batch) config.max_export_batch_size = static_cast<size_t>(batch->first);
  if (Picked v = readNumber(env, lower, "TRACECAR_EXPORTER_NICE", 0, kMaxThreadNice,
                            "the default 0", warnings)) {
    config.thread_nice = static_cast<int>(v->first);
  }
  if (config.max_export_batch_size <= config.max_queue_size) return config;
  if (!batch) {
    // A queue smaller than the default batch brings the batch size down with it.
    config.max_export_batch_size = config.max_queue_size;
  } else if (!batch->second.lower) {
    // The spec requires batch <= queue; a bigger batch could never fill.
    const std::string queue_text =
        queue ? queue->second.name + "=" + std::to_string(config.max_queue_size)
              : "the default OTEL_BSP_MAX_QUEUE_SIZE " + std::to_string(config.max_queue_size);
    warnings.push_back(batch->second.name + "=" + std::to_string(config.max_export_batch_size) +
                       " is larger than " + queue_text + "; using " +
                       std::to_string(config.max_queue_size));
    config.max_export_batch_size = config.max_queue_size;
  }
  return config;
}

}  // namespace tracecar::exporter
