#include "sampling/threshold.h"

#include <cmath>

#include "propagation/hex.h"

namespace tracecar::sampling {

namespace {

// Number of leading `f` digits in the 14-digit hex form of t.
int leadingFs(uint64_t t) noexcept {
  int n = 0;
  for (int shift = 52; shift >= 0 && ((t >> shift) & 0xf) == 0xf; shift -= 4) ++n;
  return n;
}

std::optional<uint64_t> parseHex(std::string_view value) noexcept {
  uint64_t v = 0;
  for (char c : value) {
    const int8_t digit = propagation::hex::kLowerTable[static_cast<uint8_t>(c)];
    if (digit < 0) return std::nullopt;
    v = (v << 4) | static_cast<uint64_t>(digit);
  }
  return v;
}

}  // namespace

uint64_t probabilityToThreshold(double p, int precision) noexcept {
  if (!(p > 0.0)) return kNeverThreshold;  // also NaN
  if (p >= 1.0) return kAlwaysThreshold;
  // p * 2^56 is exact in a double (a power-of-two scale), so rounding it rounds T exactly.
  auto kept = static_cast<uint64_t>(std::llround(std::ldexp(p, 56)));
  if (kept == 0) kept = 1;
  if (kept >= kNeverThreshold) return kAlwaysThreshold;
  const uint64_t exact = kNeverThreshold - kept;

  if (precision < 1) precision = 1;
  const int digits = precision + leadingFs(exact);
  if (digits >= kMaxThresholdDigits) return exact;
  const uint64_t unit = uint64_t{1} << (4 * (kMaxThresholdDigits - digits));
  const uint64_t rounded = (exact + unit / 2) / unit * unit;
  // Rounding up past 0xfff...: keep the digits we have rather than reach "never".
  return rounded < kNeverThreshold ? rounded : exact / unit * unit;
}

double thresholdToProbability(uint64_t threshold) noexcept {
  if (threshold >= kNeverThreshold) return 0.0;
  return std::ldexp(static_cast<double>(kNeverThreshold - threshold), -56);
}

size_t formatThreshold(uint64_t threshold, char (&out)[kMaxThresholdLength]) noexcept {
  threshold &= kRandomnessMask;
  for (int i = 0; i < kMaxThresholdDigits; ++i) {
    out[i] = propagation::hex::kDigits[(threshold >> (4 * (kMaxThresholdDigits - 1 - i))) & 0xf];
  }
  size_t length = kMaxThresholdLength;
  while (length > 1 && out[length - 1] == '0') --length;
  return length;
}

std::optional<uint64_t> parseThreshold(std::string_view value) noexcept {
  if (value.empty() || value.size() > kMaxThresholdLength) return std::nullopt;
  const std::optional<uint64_t> v = parseHex(value);
  if (!v) return std::nullopt;
  return *v << (4 * (kMaxThresholdLength - value.size()));
}

std::optional<uint64_t> parseRandomness(std::string_view value) noexcept {
  if (value.size() != kRandomnessLength) return std::nullopt;
  return parseHex(value);
}

}  // namespace tracecar::sampling
