#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "propagation/baggage.h"
#include "propagation/context.h"
#include "propagation/header_carrier.h"
#include "propagation/tracestate.h"

namespace tracecar::propagation {

// Header names, lowercase as carriers expect them.
namespace headers {
inline constexpr std::string_view kTraceparent = "traceparent";
inline constexpr std::string_view kTracestate = "tracestate";
inline constexpr std::string_view kBaggage = "baggage";
}  // namespace headers

struct PropagationConfig {
  // In OTEL_PROPAGATORS order; empty means "none".
  std::vector<PropagatorKind> propagators{PropagatorKind::kTraceContext, PropagatorKind::kBaggage};
  size_t tracestate_max_length = TraceState::kDefaultMaxLength;
  BaggageLimits baggage_limits;

  // Names the key and the bad value; limits may not go under the W3C floors.
  absl::Status validate() const;
};

// The propagator names, for messages.
inline constexpr std::string_view kKnownPropagators =
    "known: tracecontext, baggage, b3, b3multi, jaeger, none";

// An OTEL_PROPAGATORS value: comma-separated, surrounding whitespace ignored, names matched
// case-insensitively, duplicates collapsed; "none" alone means no propagation, and an empty
// value the default (tracecontext,baggage). Names it does not know are kept apart, in unknown,
// so that the caller decides: the SDK environment specification has a variable's unknown
// value warned about and ignored, while tracecar's file refuses it. Errors (the value is not
// a list of names): an empty name ("b3,,jaeger", "b3,"), "none" with other known names.
struct PropagatorList {
  std::vector<PropagatorKind> kinds;  // the known names, in order; empty for "none"
  std::vector<std::string> unknown;   // as written
  bool none = false;                  // "none" was named (kinds is empty)
};
absl::StatusOr<PropagatorList> parsePropagatorList(std::string_view value);

// The same, with an unknown name an error that names it (tracecar's file).
absl::StatusOr<std::vector<PropagatorKind>> parsePropagators(std::string_view value);

// The propagators of OTEL_PROPAGATORS, run as one.
//
// Extract runs them in the configured order; a later trace-context propagator that finds a
// valid context replaces an earlier one's (and the tracestate, which belongs to the W3C
// context, is then dropped). W3C baggage and Jaeger uberctx- baggage are merged. Inject writes
// every configured format.
class CompositePropagator {
 public:
  explicit CompositePropagator(PropagationConfig config = {});

  const PropagationConfig& config() const noexcept { return config_; }
  bool has(PropagatorKind kind) const noexcept;

  void extract(ReaderRef carrier, ExtractedContext& out) const;

  // Writes context (the span we started, whose id becomes the next hop's parent id), its
  // tracestate and the baggage. Empty tracestate or baggage headers are removed, not sent.
  // b3_debug: the extracted context's (ExtractedContext::b3_debug), for a context that
  // continues it; B3 then sends debug instead of sampled (only on a sampled context).
  void inject(WriterRef carrier, const SpanContext& context, const TraceState& trace_state,
              const Baggage& baggage, bool b3_debug = false) const;

 private:
  PropagatorKind firstB3() const noexcept;

  PropagationConfig config_;
  uint8_t mask_ = 0;
};

}  // namespace tracecar::propagation
