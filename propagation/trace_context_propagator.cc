#include "propagation/trace_context_propagator.h"

#include <array>
#include <span>
#include <string>
#include <string_view>

#include "propagation/composite_propagator.h"

namespace tracecar::propagation {

const std::vector<std::string_view>& collectFields(ReaderRef carrier, std::string_view name) {
  thread_local std::vector<std::string_view> fields;  // reused: no allocation once warm
  fields.clear();
  carrier.forEach(name, [&](std::string_view v) { fields.push_back(v); });
  return fields;
}

void extractTraceContext(ReaderRef carrier, size_t tracestate_max_length, SpanContext& context,
                         TraceState& trace_state, ExtractReport& report) {
  context = SpanContext{};
  trace_state.clear();

  std::string_view value;
  size_t count = 0;
  carrier.forEach(headers::kTraceparent, [&](std::string_view v) {
    if (count++ == 0) value = v;
  });
  if (count == 0) {
    report.traceparent = TraceparentStatus::kAbsent;
    report.tracestate = TraceStateStatus::kNotParsed;
    return;
  }
  if (count > 1) {
    report.traceparent = TraceparentStatus::kMultipleFields;
    report.tracestate = TraceStateStatus::kNotParsed;
    return;
  }
  // HTTP strips OWS around field values; be as lenient if a carrier did not.
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  Traceparent tp;
  report.traceparent = parseTraceparent(value, tp);
  if (report.traceparent != TraceparentStatus::kValid) {
    // The spec: never parse tracestate after an invalid traceparent.
    report.tracestate = TraceStateStatus::kNotParsed;
    return;
  }
  context.trace_id = tp.trace_id;
  context.span_id = tp.parent_id;
  context.flags = tp.flags;
  context.is_remote = true;

  const auto& fields = collectFields(carrier, headers::kTracestate);
  size_t length = 0;
  for (std::string_view f : fields) length += f.size();
  if (fields.size() > 1) length += fields.size() - 1;
  report.tracestate_length = length;
  report.tracestate = trace_state.parse(fields);
  if (report.tracestate == TraceStateStatus::kValid) {
    report.tracestate_entries_truncated = trace_state.truncate(tracestate_max_length);
  }
}

void injectTraceContext(WriterRef carrier, const SpanContext& context,
                        const TraceState& trace_state) {
  if (!context.isValid()) return;  // an all-zero traceparent is invalid: never send one
  char buffer[kTraceparentLength];
  formatTraceparent(context.trace_id, context.span_id, context.flags, buffer);
  carrier.set(headers::kTraceparent, std::string_view(buffer, sizeof(buffer)));
  if (trace_state.empty()) {
    carrier.remove(headers::kTracestate);
  } else {
    thread_local std::string serialized;  // reused: no allocation per request once warm
    serialized.clear();
    trace_state.serialize(serialized);
    carrier.set(headers::kTracestate, serialized);
  }
}

}  // namespace tracecar::propagation
