#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "propagation/span_context.h"

namespace tracecar::propagation {

// Outcome of parsing one traceparent value. Everything but kValid means "restart the trace
// and drop tracestate".
enum class TraceparentStatus : uint8_t {
  kValid,
  kAbsent,          // no traceparent field (set by the propagator, never by parse)
  kMultipleFields,  // more than one traceparent field in one request
  kBadLength,       // v00 not exactly 55 chars, higher version shorter than 55
  kBadVersion,      // not two lowercase hex digits, or "ff"
  kBadFormat,       // delimiters, non-hex or uppercase hex, or v00/vN trailing content
  kZeroTraceId,
  kZeroParentId,
};

std::string_view toString(TraceparentStatus status) noexcept;

inline constexpr size_t kTraceparentLength = 55;

struct Traceparent {
  uint8_t version = 0;  // as received; we always emit 00
  TraceId trace_id;
  SpanId parent_id;
  uint8_t flags = 0;  // only the known bits (sampled, random); unknown bits are cleared
};

// Parses a traceparent value per W3C Trace Context Level 2. No allocation.
TraceparentStatus parseTraceparent(std::string_view value, Traceparent& out) noexcept;

// Writes "00-<trace-id>-<span-id>-<flags>" (exactly 55 chars) into out. Unknown flag bits are
// cleared. No allocation.
void formatTraceparent(const TraceId& trace_id, const SpanId& span_id, uint8_t flags,
                       char (&out)[kTraceparentLength]) noexcept;

}  // namespace tracecar::propagation
