#include "sampling/sampler_settings.h"

#include <array>
#include <charconv>
#include <cmath>
#include <system_error>
#include <utility>

#include "sampling/text.h"

namespace tracecar::sampling {

namespace {

constexpr std::array<std::pair<std::string_view, SamplerKind>, 6> kNames{{
    {"always_on", SamplerKind::kAlwaysOn},
    {"always_off", SamplerKind::kAlwaysOff},
    {"traceidratio", SamplerKind::kTraceIdRatio},
    {"parentbased_always_on", SamplerKind::kParentBasedAlwaysOn},
    {"parentbased_always_off", SamplerKind::kParentBasedAlwaysOff},
    {"parentbased_traceidratio", SamplerKind::kParentBasedTraceIdRatio},
}};

}  // namespace

std::string_view toString(SamplerKind kind) noexcept {
  for (const auto& [name, k] : kNames) {
    if (k == kind) return name;
  }
  return "unknown";
}

bool isParentBased(SamplerKind kind) noexcept {
  return kind == SamplerKind::kParentBasedAlwaysOn || kind == SamplerKind::kParentBasedAlwaysOff ||
         kind == SamplerKind::kParentBasedTraceIdRatio;
}

bool usesRatio(SamplerKind kind) noexcept {
  return kind == SamplerKind::kTraceIdRatio || kind == SamplerKind::kParentBasedTraceIdRatio;
}

absl::StatusOr<SamplerKind> parseSamplerKind(std::string_view name) {
  const std::string_view trimmed = text::trim(name);
  for (const auto& [known, kind] : kNames) {
    if (text::equalsLower(trimmed, known)) return kind;
  }
  return text::invalid(
      "unknown sampler `", name,
      "`; expected always_on, always_off, traceidratio, parentbased_always_on, "
      "parentbased_always_off or parentbased_traceidratio");
}

absl::StatusOr<double> parseRatio(std::string_view text) {
  const std::string_view trimmed = text::trim(text);
  double value = 0;
  const char* end = trimmed.data() + trimmed.size();
  const auto [ptr, ec] = std::from_chars(trimmed.data(), end, value);
  if (trimmed.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
    return text::invalid(
        "sampler argument `", text, "` is not a number");
  }
  if (value < 0 || value > 1) {
    return text::invalid(
        "sampler argument `", text, "` is outside [0, 1]");
  }
  return value;
}

SamplerSettings fromEnv(std::string_view sampler, std::string_view arg,
                        std::vector<std::string>& warnings) {
  SamplerSettings settings;
  if (!text::trim(sampler).empty()) {
    absl::StatusOr<SamplerKind> kind = parseSamplerKind(sampler);
    if (kind.ok()) {
      settings.kind = *kind;
    } else {
      warnings.push_back(text::concat("OTEL_TRACES_SAMPLER: ", kind.status().message(),
                                      "; using parentbased_always_on"));
    }
  }
  if (usesRatio(settings.kind) && !text::trim(arg).empty()) {
    absl::StatusOr<double> ratio = parseRatio(arg);
    if (ratio.ok()) {
      settings.ratio = *ratio;
    } else {
      warnings.push_back(
          text::concat("OTEL_TRACES_SAMPLER_ARG: ", ratio.status().message(), "; using 1.0"));
    }
  }
  return settings;
}

}  // namespace tracecar::sampling
