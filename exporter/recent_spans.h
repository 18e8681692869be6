#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "exporter/span.h"

namespace tracecar::exporter {

// What the debug page shows of one exported span.
struct SpanSummary {
  TraceId trace_id;
  SpanId span_id;
  std::string name;
  SpanKind kind = SpanKind::kUnspecified;
  StatusCode status = StatusCode::kUnset;
  uint64_t start_unix_nano = 0;
  uint64_t duration_ns = 0;  // 0 when the end is before the start
};

// A fixed-size ring of the most recently exported spans. The batch processor adds on its own
// thread, once per batch; readers take a copy. A mutex is enough: neither side is a hot path.
class RecentSpans {
 public:
  static constexpr size_t kDefaultCapacity = 256;

  explicit RecentSpans(size_t capacity = kDefaultCapacity);

  void add(const SpanRecord& span);
  void add(std::span<const SpanRecord* const> spans);

  // The kept spans, oldest first.
  std::vector<SpanSummary> snapshot() const;
  // Every span ever added, kept or since overwritten.
  uint64_t totalAdded() const;
  size_t capacity() const noexcept { return ring_.size(); }

 private:
  void addLocked(const SpanRecord& span);

  mutable std::mutex mutex_;
  std::vector<SpanSummary> ring_;  // sized once; names reuse their buffers as the ring turns
  size_t next_ = 0;                // slot the next span goes to
  uint64_t total_ = 0;
};

}  // namespace tracecar::exporter
