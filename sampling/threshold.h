#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tracecar::sampling {

// Consistent probability sampling (OTel "TraceState: Probability Sampling"): a span is kept when
// its 56-bit randomness R is >= the 56-bit rejection threshold T = (1 - p) * 2^56.

// 2^56: one past the largest randomness value. As a threshold it rejects everything, which no
// `th` value can express; it stands for "never" (p = 0).
inline constexpr uint64_t kNeverThreshold = uint64_t{1} << 56;
inline constexpr uint64_t kRandomnessMask = kNeverThreshold - 1;
inline constexpr uint64_t kAlwaysThreshold = 0;  // th:0, p = 1

// Hex digits of a threshold: 56 bits.
inline constexpr int kMaxThresholdDigits = 14;
// Significant hex digits kept when a probability becomes a threshold. The spec recommends 4 for
// SDKs; leading `f` digits (small probabilities) do not count against it.
inline constexpr int kDefaultThresholdPrecision = 4;
// Longest `th` value and longest `rv` value.
inline constexpr size_t kMaxThresholdLength = 14;
inline constexpr size_t kRandomnessLength = 14;

// The threshold of sampling probability p, rounded (half up) to `precision` significant hex
// digits (1..14; 14 = the exact rounding of (1 - p) * 2^56). p >= 1 gives 0; p <= 0 or NaN gives
// kNeverThreshold; 0 < p < 2^-56 is raised to 2^-56, the smallest probability 56 bits express.
uint64_t probabilityToThreshold(double p, int precision = kDefaultThresholdPrecision) noexcept;

// The probability a threshold keeps: (2^56 - t) / 2^56; 0 for kNeverThreshold and above.
double thresholdToProbability(uint64_t threshold) noexcept;

// Writes the `th` form of threshold (< 2^56): 14 lowercase hex digits with trailing zeros
// removed, "0" for zero. Returns the length (1..14).
size_t formatThreshold(uint64_t threshold, char (&out)[kMaxThresholdLength]) noexcept;

// `th`: 1 to 14 lowercase hex digits, right-padded with zeros to 14. nullopt when malformed.
std::optional<uint64_t> parseThreshold(std::string_view value) noexcept;

// `rv`: exactly 14 lowercase hex digits. nullopt when malformed.
std::optional<uint64_t> parseRandomness(std::string_view value) noexcept;

// The decision itself: keep iff R >= T.
constexpr bool keeps(uint64_t randomness, uint64_t threshold) noexcept {
  return randomness >= threshold;
}

}  // namespace tracecar::sampling
