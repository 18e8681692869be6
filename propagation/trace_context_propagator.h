#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "propagation/context.h"
#include "propagation/header_carrier.h"
#include "propagation/span_context.h"
#include "propagation/tracestate.h"

namespace tracecar::propagation {

// The values of every field called name, in order. The vector is per thread and reused by
// the next call on this thread: use it before calling again.
const std::vector<std::string_view>& collectFields(ReaderRef carrier, std::string_view name);

// W3C Trace Context: reads traceparent (exactly one field) and, only when it is valid,
// tracestate (all fields combined), cut to tracestate_max_length by whole entries. Sets
// report.traceparent / tracestate / tracestate_entries_truncated / tracestate_length.
// context stays invalid unless traceparent is valid.
void extractTraceContext(ReaderRef carrier, size_t tracestate_max_length, SpanContext& context,
                         TraceState& trace_state, ExtractReport& report);

// Writes traceparent for context; writes tracestate, or removes it when empty. An invalid
// context writes nothing.
void injectTraceContext(WriterRef carrier, const SpanContext& context,
                        const TraceState& trace_state);

}  // namespace tracecar::propagation
