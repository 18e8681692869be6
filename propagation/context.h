#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "propagation/b3.h"
#include "propagation/baggage.h"
#include "propagation/ids.h"
#include "propagation/jaeger.h"
#include "propagation/span_context.h"
#include "propagation/traceparent.h"
#include "propagation/tracestate.h"

namespace tracecar::propagation {

enum class PropagatorKind : uint8_t { kTraceContext, kBaggage, kB3, kB3Multi, kJaeger };

std::string_view toString(PropagatorKind kind) noexcept;  // the OTEL_PROPAGATORS name

// What extraction saw, for metrics and for the proxy's per-header policies.
struct ExtractReport {
  TraceparentStatus traceparent = TraceparentStatus::kAbsent;
  TraceStateStatus tracestate = TraceStateStatus::kEmpty;
  size_t tracestate_entries_truncated = 0;  // whole entries cut to fit the length limit
  // Entries dropped from a full list (32 members) to make room for the sampler's ot entry;
  // filled in by the proxy after sampling, not by extraction.
  size_t tracestate_entries_evicted = 0;
  size_t tracestate_length = 0;             // combined length as received, before any cut
  BaggageReport baggage;
  B3Status b3 = B3Status::kAbsent;
  JaegerStatus jaeger = JaegerStatus::kAbsent;
  std::optional<PropagatorKind> source;  // the propagator whose context was taken
};

// Everything a request carried in: the remote parent (invalid when none), its tracestate and
// the baggage. Reusable: extract() resets it.
struct ExtractedContext {
  SpanContext span_context;
  TraceState trace_state;
  Baggage baggage;
  ExtractReport report;
  // The context came with B3's debug flag ("d", x-b3-flags: 1): the next hop's B3 headers
  // carry it on, as the OpenTelemetry B3 propagator rules require.
  bool b3_debug = false;

  void clear() noexcept;
};

// A new trace: fresh ids, the random flag set (every bit of our trace ids is random).
SpanContext startRootSpan(IdGenerator& ids, bool sampled) noexcept;
// A child of parent (local or remote): same trace, new span id, parent's random flag kept.
SpanContext startChildSpan(const SpanContext& parent, IdGenerator& ids, bool sampled) noexcept;

}  // namespace tracecar::propagation
