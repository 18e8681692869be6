#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "propagation/tracestate.h"

namespace tracecar::sampling {

// The OpenTelemetry member of tracestate (OTel "TraceState Handling"): `ot=` followed by
// ';'-separated `key:value` sub-keys, key = lcalpha *(lcalpha / DIGIT), value = *(ALPHA / DIGIT /
// "." / "_" / "-"), keys unique, at most 256 characters. Of its sub-keys we read `th` (rejection
// threshold) and `rv` (explicit randomness); every other sub-key is kept as it is.
inline constexpr std::string_view kOtKey = "ot";
inline constexpr size_t kMaxOtValueLength = 256;

// What the `ot` member says. A member that breaks the grammar counts as having no `th` and no
// `rv`; it is never an error.
struct OtEntry {
  bool present = false;      // tracestate has an `ot` member
  bool well_formed = false;  // ... and it follows the grammar
  bool has_threshold_key = false;      // a `th` sub-key is there, valid or not
  std::optional<uint64_t> threshold;   // `th`, when valid
  std::optional<uint64_t> randomness;  // `rv`, when valid
};

OtEntry parseOtValue(std::string_view value) noexcept;
OtEntry readOtEntry(const propagation::TraceState& trace_state) noexcept;

// Sets `th` to threshold (< 2^56) in the `ot` member, keeping its other sub-keys in order and
// putting `th` last. A changed `ot` member moves to the left of tracestate (W3C mutation rule);
// an `ot` that already carries exactly this `th` is left alone. A malformed `ot` is replaced by
// `ot=th:...`. If the result would pass 256 characters, `th` is erased instead (a stale `th`
// must not survive). Returns whether tracestate changed. Allocates only when tracestate's
// buffer must grow.
bool setThreshold(propagation::TraceState& trace_state, uint64_t threshold);

// Removes the `th` sub-key; the `ot` member goes when nothing else is left in it, and otherwise
// moves to the left. A malformed `ot` is not touched (it has no `th` we could recognise).
// Returns whether tracestate changed.
bool eraseThreshold(propagation::TraceState& trace_state);

}  // namespace tracecar::sampling
