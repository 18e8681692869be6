#include "propagation/traceparent.h"

#include <cstring>

#include "propagation/hex.h"

namespace tracecar::propagation {

std::string_view toString(TraceparentStatus status) noexcept {
  switch (status) {
    case TraceparentStatus::kValid: return "valid";
    case TraceparentStatus::kAbsent: return "absent";
    case TraceparentStatus::kMultipleFields: return "multiple_fields";
    case TraceparentStatus::kBadLength: return "bad_length";
    case TraceparentStatus::kBadVersion: return "bad_version";
    case TraceparentStatus::kBadFormat: return "bad_format";
    case TraceparentStatus::kZeroTraceId: return "zero_trace_id";
    case TraceparentStatus::kZeroParentId: return "zero_parent_id";
  }
  return "unknown";
}

// Layout: vv-tttttttttttttttttttttttttttttttt-pppppppppppppppp-ff
//         0  3                                 36               53
TraceparentStatus parseTraceparent(std::string_view value, Traceparent& out) noexcept {
  if (value.size() < kTraceparentLength) return TraceparentStatus::kBadLength;
  const char* s = value.data();

  uint8_t version = 0;
  if (!hex::decodeLower(s, &version, 1)) return TraceparentStatus::kBadVersion;
  if (version == 0xff) return TraceparentStatus::kBadVersion;
  if (version == 0x00 && value.size() != kTraceparentLength) {
    // Version 00 is exactly 55 characters; anything after the flags is invalid.
    return TraceparentStatus::kBadLength;
  }
  if (s[2] != '-' || s[35] != '-' || s[52] != '-') return TraceparentStatus::kBadFormat;
  // A higher version may append fields, but only after a '-'.
  if (value.size() > kTraceparentLength && s[55] != '-') return TraceparentStatus::kBadFormat;

  Traceparent tp;
  tp.version = version;
  uint8_t flags = 0;
  if (!hex::decodeLower(s + 3, tp.trace_id.bytes.data(), 16) ||
      !hex::decodeLower(s + 36, tp.parent_id.bytes.data(), 8) ||
      !hex::decodeLower(s + 53, &flags, 1)) {
    return TraceparentStatus::kBadFormat;
  }
  if (!tp.trace_id.isValid()) return TraceparentStatus::kZeroTraceId;
  if (!tp.parent_id.isValid()) return TraceparentStatus::kZeroParentId;
  tp.flags = flags & trace_flags::kKnown;
  out = tp;
  return TraceparentStatus::kValid;
}

void formatTraceparent(const TraceId& trace_id, const SpanId& span_id, uint8_t flags,
                       char (&out)[kTraceparentLength]) noexcept {
  out[0] = '0';
  out[1] = '0';
  out[2] = '-';
  hex::encodeLower(trace_id.bytes.data(), 16, out + 3);
  out[35] = '-';
  hex::encodeLower(span_id.bytes.data(), 8, out + 36);
  out[52] = '-';
  const uint8_t known = flags & trace_flags::kKnown;
  hex::encodeLower(&known, 1, out + 53);
}

}  // namespace tracecar::propagation
