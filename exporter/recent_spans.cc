#include "exporter/recent_spans.h"

namespace tracecar::exporter {

RecentSpans::RecentSpans(size_t capacity) : ring_(capacity == 0 ? 1 : capacity) {}

void RecentSpans::add(const SpanRecord& span) {
  std::lock_guard lock(mutex_);
  addLocked(span);
}

void RecentSpans::add(std::span<const SpanRecord* const> spans) {
  // Of a batch larger than the ring only the last ring_.size() spans stay: the ones before only
  // move the ring on (their slots are overwritten within the same batch).
  size_t kept = 0;
  size_t first_kept = spans.size();
  while (first_kept > 0 && kept < ring_.size()) {
    if (spans[--first_kept] != nullptr) ++kept;
  }
  size_t passed = 0;
  for (size_t i = 0; i < first_kept; ++i) {
    if (spans[i] != nullptr) ++passed;
  }
  std::lock_guard lock(mutex_);
  next_ = (next_ + passed) % ring_.size();
  total_ += passed;
  for (const SpanRecord* span : spans.subspan(first_kept)) {
    if (span != nullptr) addLocked(*span);
  }
}

void RecentSpans::addLocked(const SpanRecord& span) {
  SpanSummary& s = ring_[next_];
  s.trace_id = span.trace_id;
  s.span_id = span.span_id;
  s.name.assign(span.name);
  s.kind = span.kind;
  s.status = span.status_code;
  s.start_unix_nano = span.start_unix_nano;
  s.duration_ns =
      span.end_unix_nano >= span.start_unix_nano ? span.end_unix_nano - span.start_unix_nano : 0;
  next_ = (next_ + 1) % ring_.size();
  ++total_;
}

std::vector<SpanSummary> RecentSpans::snapshot() const {
  std::lock_guard lock(mutex_);
  const size_t kept = total_ < ring_.size() ? static_cast<size_t>(total_) : ring_.size();
  std::vector<SpanSummary> out;
  out.reserve(kept);
  // The oldest kept span sits at next_ once the ring has wrapped, at 0 before.
  const size_t first = kept < ring_.size() ? 0 : next_;
  for (size_t i = 0; i < kept; ++i) out.push_back(ring_[(first + i) % ring_.size()]);
  return out;
}

uint64_t RecentSpans::totalAdded() const {
  std::lock_guard lock(mutex_);
  return total_;
}

}  // namespace tracecar::exporter
