#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tracecar::sampling {

// The top-level samplers of OTEL_TRACES_SAMPLER that tracecar implements.
enum class SamplerKind : uint8_t {
  kAlwaysOn,                 // always_on: every span kept, the parent ignored
  kAlwaysOff,                // always_off: no span kept, the parent ignored
  kTraceIdRatio,             // traceidratio: consistent probability, the parent ignored
  kParentBasedAlwaysOn,      // parentbased_always_on (the default)
  kParentBasedAlwaysOff,     // parentbased_always_off
  kParentBasedTraceIdRatio,  // parentbased_traceidratio
};

// The OTEL_TRACES_SAMPLER name, e.g. "parentbased_traceidratio". Static storage.
std::string_view toString(SamplerKind kind) noexcept;
bool isParentBased(SamplerKind kind) noexcept;
bool usesRatio(SamplerKind kind) noexcept;

struct SamplerSettings {
  SamplerKind kind = SamplerKind::kParentBasedAlwaysOn;
  double ratio = 1.0;  // used by the two *traceidratio kinds; in [0, 1]
  friend bool operator==(const SamplerSettings&, const SamplerSettings&) = default;
};

// Reads OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG values (pass "" when unset). As the SDK
// environment specification asks, names are matched case-insensitively, and an invalid value
// is reported (one line appended to warnings) and then ignored: an unknown sampler keeps the
// default parentbased_always_on; for the ratio samplers, a missing argument means 1.0 and an
// invalid or out-of-range one is reported and also means 1.0. The argument of the other
// samplers is ignored.
SamplerSettings fromEnv(std::string_view sampler, std::string_view arg,
                        std::vector<std::string>& warnings);

// Strict forms for flags and config files: an unknown name or a bad ratio is an error.
absl::StatusOr<SamplerKind> parseSamplerKind(std::string_view name);
// A decimal number in [0, 1] ("0.25", "1", "1e-3").
absl::StatusOr<double> parseRatio(std::string_view text);

}  // namespace tracecar::sampling
