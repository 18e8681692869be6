#include "sampling/threshold.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace tracecar::sampling {
namespace {

std::string th(double p, int precision = kDefaultThresholdPrecision) {
  const uint64_t t = probabilityToThreshold(p, precision);
  if (t >= kNeverThreshold) return "never";
  char out[kMaxThresholdLength];
  return std::string(out, formatThreshold(t, out));
}

TEST(Threshold, PowersOfTwoEncodeAsOneDigit) {
  EXPECT_EQ(th(1.0), "0");
  EXPECT_EQ(th(0.5), "8");
  EXPECT_EQ(th(0.25), "c");
  EXPECT_EQ(th(0.125), "e");
  EXPECT_EQ(th(0.0625), "f");
}

// The examples of OTEP 235 / the probability sampling specification.
TEST(Threshold, SpecExamplesDecode) {
  EXPECT_EQ(parseThreshold("4"), 0x40000000000000u);  // 75% sampling
  EXPECT_EQ(probabilityToThreshold(0.75), 0x40000000000000u);
  EXPECT_EQ(parseThreshold("c"), 0xc0000000000000u);  // 25%
  EXPECT_EQ(parseThreshold("08"), 0x08000000000000u);  // 96.875%
  EXPECT_EQ(th(0.96875), "08");
  EXPECT_EQ(parseThreshold("0"), 0u);
  // 1% with 5 digits: (1 - 0.01) * 2^56 ~ 71337018784743424 = 0xfd70a400000000.
  EXPECT_EQ(parseThreshold("fd70a4"), 71337018784743424u);
  EXPECT_DOUBLE_EQ(thresholdToProbability(0xc0000000000000u), 0.25);
  EXPECT_DOUBLE_EQ(thresholdToProbability(0), 1.0);
}

struct PrecisionCase {
  double p;
  const char* digits3;
  const char* digits4;
  const char* digits5;
};

// The 1-in-N table of the specification, at precision 3, 4 and 5.
class ThresholdPrecision : public ::testing::TestWithParam<PrecisionCase> {};

TEST_P(ThresholdPrecision, MatchesTheSpecTable) {
  const PrecisionCase& c = GetParam();
  EXPECT_EQ(th(c.p, 3), c.digits3);
  EXPECT_EQ(th(c.p, 4), c.digits4);
  EXPECT_EQ(th(c.p, 5), c.digits5);
}

INSTANTIATE_TEST_SUITE_P(
    SpecTable, ThresholdPrecision,
    ::testing::Values(PrecisionCase{1, "0", "0", "0"}, PrecisionCase{0.5, "8", "8", "8"},
                      PrecisionCase{1.0 / 3, "aab", "aaab", "aaaab"},
                      PrecisionCase{0.25, "c", "c", "c"},
                      PrecisionCase{0.2, "ccd", "cccd", "ccccd"},
                      PrecisionCase{0.125, "e", "e", "e"},
                      PrecisionCase{0.1, "e66", "e666", "e6666"},
                      PrecisionCase{0.0625, "f", "f", "f"},
                      PrecisionCase{0.01, "fd71", "fd70a", "fd70a4"},
                      PrecisionCase{0.001, "ffbe7", "ffbe77", "ffbe76d"},
                      PrecisionCase{0.0001, "fff972", "fff9724", "fff97247"},
                      PrecisionCase{0.00001, "ffff584", "ffff583a", "ffff583a5"},
                      PrecisionCase{0.000001, "ffffef4", "ffffef39", "ffffef391"}));

TEST(Threshold, FullPrecisionIsTheRoundedExactThreshold) {
  EXPECT_EQ(th(0.1, 14), "e6666666666666");
  EXPECT_EQ(th(1.0 / 3, 14), "aaaaaaaaaaaaac");  // the double 1/3 is a little below 1/3
  EXPECT_EQ(th(0.01, 14), "fd70a3d70a3d71");
  EXPECT_EQ(th(0.2, 14), "cccccccccccccc");
  EXPECT_EQ(th(0.5, 14), "8");
}

TEST(Threshold, TinyProbabilitiesKeepOneIn2To56) {
  EXPECT_EQ(probabilityToThreshold(std::ldexp(1.0, -56), 14), kRandomnessMask);
  EXPECT_EQ(probabilityToThreshold(1e-30), kRandomnessMask);
  EXPECT_EQ(th(1e-30), "ffffffffffffff");
  EXPECT_EQ(th(1e-12), "fffffffffee68");  // 9 leading f's, then 4 significant digits
  EXPECT_GT(thresholdToProbability(kRandomnessMask), 0.0);
}

TEST(Threshold, ZeroNegativeAndNanNeverSample) {
  EXPECT_EQ(probabilityToThreshold(0), kNeverThreshold);
  EXPECT_EQ(probabilityToThreshold(-0.5), kNeverThreshold);
  EXPECT_EQ(probabilityToThreshold(std::numeric_limits<double>::quiet_NaN()), kNeverThreshold);
  EXPECT_EQ(probabilityToThreshold(2.0), 0u);
  EXPECT_EQ(thresholdToProbability(kNeverThreshold), 0.0);
}

// Leading f digits do not count against the precision, so the relative error of the kept
// probability stays below half a unit of the 4th significant digit (0.5 * 16^-3) at any scale,
// plus the rounding of p * 2^56 to a whole number, which only matters near 2^-56.
TEST(Threshold, DefaultPrecisionBoundsTheRelativeError) {
  for (double scale = 1; scale > 1e-15; scale /= 10) {
    for (double m : {1.0, 1.5, 2.0, 3.3, 5.0, 7.7, 9.9}) {
      const double p = m * scale / 10;
      const uint64_t t = probabilityToThreshold(p);
      ASSERT_LT(t, kNeverThreshold) << p;
      const double quantum = 0.5 / (p * std::ldexp(1.0, 56));
      EXPECT_LE(std::fabs(thresholdToProbability(t) - p) / p, 0.5 / 4096 + quantum) << p;
    }
  }
}

TEST(Threshold, FormatStripsTrailingZerosOnly) {
  char out[kMaxThresholdLength];
  EXPECT_EQ(std::string(out, formatThreshold(0x08000000000000u, out)), "08");
  EXPECT_EQ(std::string(out, formatThreshold(0x00000000000001u, out)), "00000000000001");
  EXPECT_EQ(std::string(out, formatThreshold(0xfd70a400000000u, out)), "fd70a4");
  EXPECT_EQ(std::string(out, formatThreshold(kRandomnessMask, out)), "ffffffffffffff");
}

TEST(Threshold, ParseRejectsMalformedValues) {
  EXPECT_FALSE(parseThreshold(""));
  EXPECT_FALSE(parseThreshold("C"));  // lowercase only
  EXPECT_FALSE(parseThreshold("fffffffffffffff"));  // 15 digits
  EXPECT_FALSE(parseThreshold("8g"));
  EXPECT_FALSE(parseThreshold(" 8"));
  EXPECT_EQ(parseThreshold("ffffffffffffff"), kRandomnessMask);
}

TEST(Randomness, ExactlyFourteenLowercaseHexDigits) {
  EXPECT_EQ(parseRandomness("6e6d1a75832a2f"), 0x6e6d1a75832a2fu);
  EXPECT_EQ(parseRandomness("00000000000000"), 0u);
  EXPECT_FALSE(parseRandomness("6e6d1a75832a2"));    // 13
  EXPECT_FALSE(parseRandomness("6e6d1a75832a2f0"));  // 15
  EXPECT_FALSE(parseRandomness("6E6D1A75832A2F"));
  EXPECT_FALSE(parseRandomness(""));
}

// tracestate-handling: rv 6e6d1a75832a2f is kept by every threshold from 0 through itself.
// (The specification's prose puts that at "41.1% through 100%"; by its own formula,
// probability = (2^56 - T) / 2^56, it is 56.9% through 100%.)
TEST(Randomness, SpecExampleKeepsThresholdsUpToItself) {
  const uint64_t rv = 0x6e6d1a75832a2fu;
  EXPECT_TRUE(keeps(rv, 0));
  EXPECT_TRUE(keeps(rv, rv));
  EXPECT_FALSE(keeps(rv, rv + 1));
  EXPECT_NEAR(thresholdToProbability(rv), 0.5686, 1e-4);
  EXPECT_TRUE(keeps(rv, probabilityToThreshold(0.57, 14)));
  EXPECT_FALSE(keeps(rv, probabilityToThreshold(0.568, 14)));
}

TEST(Randomness, KeepIffAtOrAboveThreshold) {
  const uint64_t t = probabilityToThreshold(0.25);
  EXPECT_FALSE(keeps(t - 1, t));
  EXPECT_TRUE(keeps(t, t));
  EXPECT_TRUE(keeps(kRandomnessMask, t));
  EXPECT_FALSE(keeps(0, t));
}

}  // namespace
}  // namespace tracecar::sampling
