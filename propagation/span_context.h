#pragma once

#include <cstdint>

#include "propagation/ids.h"

namespace tracecar::propagation {

// W3C trace-flags bits this implementation knows (Trace Context Level 2).
namespace trace_flags {
inline constexpr uint8_t kSampled = 0x01;
inline constexpr uint8_t kRandom = 0x02;
inline constexpr uint8_t kKnown = kSampled | kRandom;
}  // namespace trace_flags

// The identity of one span as it crosses a process boundary. Trivially copyable: the data
// path passes it by value.
struct SpanContext {
  TraceId trace_id;
  SpanId span_id;
  uint8_t flags = 0;       // W3C trace-flags (only known bits are ever set)
  bool is_remote = false;  // true when extracted from a carrier

  bool isValid() const noexcept { return trace_id.isValid() && span_id.isValid(); }
  bool sampled() const noexcept { return (flags & trace_flags::kSampled) != 0; }
  bool randomTraceId() const noexcept { return (flags & trace_flags::kRandom) != 0; }
  friend bool operator==(const SpanContext&, const SpanContext&) = default;
};

}  // namespace tracecar::propagation
