#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "exporter/deadline.h"
#include "exporter/env.h"

namespace tracecar::exporter {

// Batch span processor settings (OTEL_BSP_*), with the spec's defaults.
struct BatchConfig {
  // Largest accepted queue: the queue is allocated up front, so a typo must not cost gigabytes.
  static constexpr size_t kMaxQueueSize = size_t{1} << 20;
  // Largest accepted delay or timeout (about 24.8 days), far past any sensible value.
  static constexpr long long kMaxMilliseconds = 2147483647;
  // Largest nice increment (the export thread then runs at nice 19, the lowest).
  static constexpr int kMaxThreadNice = 19;

  // OTEL_BSP_SCHEDULE_DELAY. 0: no delay, a span is exported as soon as it is queued and no
  // export is running.
  std::chrono::milliseconds schedule_delay{5000};
  // OTEL_BSP_EXPORT_TIMEOUT; kNoTimeout (what 0 means in the variable): no limit.
  std::chrono::milliseconds export_timeout{30000};
  size_t max_queue_size = 2048;                     // OTEL_BSP_MAX_QUEUE_SIZE
  size_t max_export_batch_size = 512;               // OTEL_BSP_MAX_EXPORT_BATCH_SIZE
  // Added to the process's nice value for the export thread (TRACECAR_EXPORTER_NICE): above 0,
  // a worker woken while the thread encodes a batch on the same CPU tends to get it first. At 5
  // the thread still gets about a quarter of a CPU that a busy worker shares; 0, the default,
  // puts both on equal terms.
  int thread_nice = 0;

  // Reads the four variables and TRACECAR_EXPORTER_NICE, each over the lower layer's value of
  // its setting. An empty value counts as unset (as the spec says). A value that is not a whole
  // number in range (delay and timeout 0..kMaxMilliseconds ms, sizes 1..kMaxQueueSize, nice
  // 0..kMaxThreadNice) adds a warning naming the variable and the value, and is treated as not
  // set: the lower layer's value applies, else the default. A batch size from a variable that
  // is larger than the queue size is clamped to it, with a warning; a default one follows a
  // smaller queue down without one. One from the lower layer is left as it is: the lower layer
  // (tracecar's file) is strict, and its caller reports it.
  static BatchConfig fromEnv(const EnvLookup& env, std::vector<std::string>& warnings,
                             const LowerLayer& lower = {});
};

}  // namespace tracecar::exporter
