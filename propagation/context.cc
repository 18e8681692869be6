#include "propagation/context.h"

namespace tracecar::propagation {

std::string_view toString(PropagatorKind kind) noexcept {
  switch (kind) {
    case PropagatorKind::kTraceContext: return "tracecontext";
    case PropagatorKind::kBaggage: return "baggage";
    case PropagatorKind::kB3: return "b3";
    case PropagatorKind::kB3Multi: return "b3multi";
    case PropagatorKind::kJaeger: return "jaeger";
  }
  return "unknown";
}

void ExtractedContext::clear() noexcept {
  span_context = SpanContext{};
  trace_state.clear();
  baggage.clear();
  report = ExtractReport{};
  b3_debug = false;
}

SpanContext startRootSpan(IdGenerator& ids, bool sampled) noexcept {
  SpanContext c;
  c.trace_id = ids.newTraceId();
  c.span_id = ids.newSpanId();
  c.flags = static_cast<uint8_t>(trace_flags::kRandom | (sampled ? trace_flags::kSampled : 0));
  return c;
}

SpanContext startChildSpan(const SpanContext& parent, IdGenerator& ids, bool sampled) noexcept {
  SpanContext c;
  c.trace_id = parent.trace_id;
  c.span_id = ids.newSpanId();
  c.flags = static_cast<uint8_t>((parent.flags & trace_flags::kRandom) |
                                 (sampled ? trace_flags::kSampled : 0));
  return c;
}

}  // namespace tracecar::propagation
