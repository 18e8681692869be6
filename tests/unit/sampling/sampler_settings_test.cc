#include "sampling/sampler_settings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tracecar::sampling {
namespace {

struct EnvCase {
  std::string sampler;
  std::string arg;
  SamplerKind kind;
  double ratio;
  size_t warnings;
};

class FromEnv : public ::testing::TestWithParam<EnvCase> {};

TEST_P(FromEnv, ReadsSamplerAndArgument) {
  const EnvCase& c = GetParam();
  std::vector<std::string> warnings;
  const SamplerSettings s = fromEnv(c.sampler, c.arg, warnings);
  EXPECT_EQ(s.kind, c.kind) << toString(s.kind);
  EXPECT_DOUBLE_EQ(s.ratio, c.ratio);
  EXPECT_EQ(warnings.size(), c.warnings);
}

INSTANTIATE_TEST_SUITE_P(
    Names, FromEnv,
    ::testing::Values(
        EnvCase{"", "", SamplerKind::kParentBasedAlwaysOn, 1.0, 0},
        EnvCase{"always_on", "", SamplerKind::kAlwaysOn, 1.0, 0},
        EnvCase{"always_off", "", SamplerKind::kAlwaysOff, 1.0, 0},
        EnvCase{"traceidratio", "0.25", SamplerKind::kTraceIdRatio, 0.25, 0},
        EnvCase{"parentbased_always_on", "", SamplerKind::kParentBasedAlwaysOn, 1.0, 0},
        EnvCase{"parentbased_always_off", "", SamplerKind::kParentBasedAlwaysOff, 1.0, 0},
        EnvCase{"parentbased_traceidratio", "0.1", SamplerKind::kParentBasedTraceIdRatio, 0.1, 0},
        // Case-insensitive, surrounding spaces ignored.
        EnvCase{" ParentBased_TraceIdRatio ", " 1e-3 ", SamplerKind::kParentBasedTraceIdRatio,
                0.001, 0},
        // A ratio sampler without argument samples everything.
        EnvCase{"traceidratio", "", SamplerKind::kTraceIdRatio, 1.0, 0},
        EnvCase{"traceidratio", "0", SamplerKind::kTraceIdRatio, 0.0, 0},
        EnvCase{"traceidratio", "1", SamplerKind::kTraceIdRatio, 1.0, 0},
        // Invalid values: reported, and the default kept.
        EnvCase{"jaeger_remote", "", SamplerKind::kParentBasedAlwaysOn, 1.0, 1},
        EnvCase{"xray", "0.5", SamplerKind::kParentBasedAlwaysOn, 1.0, 1},
        EnvCase{"traceidratio", "1.5", SamplerKind::kTraceIdRatio, 1.0, 1},
        EnvCase{"traceidratio", "-0.1", SamplerKind::kTraceIdRatio, 1.0, 1},
        EnvCase{"traceidratio", "half", SamplerKind::kTraceIdRatio, 1.0, 1},
        EnvCase{"traceidratio", "0.5x", SamplerKind::kTraceIdRatio, 1.0, 1},
        EnvCase{"traceidratio", "nan", SamplerKind::kTraceIdRatio, 1.0, 1},
        EnvCase{"traceidratio", "inf", SamplerKind::kTraceIdRatio, 1.0, 1},
        EnvCase{"bogus", "bogus", SamplerKind::kParentBasedAlwaysOn, 1.0, 1},
        // Samplers without an argument ignore it.
        EnvCase{"always_on", "0.5", SamplerKind::kAlwaysOn, 1.0, 0},
        EnvCase{"parentbased_always_off", "bogus", SamplerKind::kParentBasedAlwaysOff, 1.0, 0}));

TEST(FromEnvWarnings, NameTheVariableTheValueAndTheFallback) {
  std::vector<std::string> warnings;
  fromEnv("sometimes", "", warnings);
  fromEnv("traceidratio", "2", warnings);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0].rfind("OTEL_TRACES_SAMPLER: unknown sampler `sometimes`", 0), 0u)
      << warnings[0];
  EXPECT_NE(warnings[0].find("using parentbased_always_on"), std::string::npos);
  EXPECT_EQ(warnings[1],
            "OTEL_TRACES_SAMPLER_ARG: sampler argument `2` is outside [0, 1]; using 1.0");
}

TEST(SamplerKindNames, RoundTrip) {
  for (SamplerKind kind :
       {SamplerKind::kAlwaysOn, SamplerKind::kAlwaysOff, SamplerKind::kTraceIdRatio,
        SamplerKind::kParentBasedAlwaysOn, SamplerKind::kParentBasedAlwaysOff,
        SamplerKind::kParentBasedTraceIdRatio}) {
    EXPECT_EQ(parseSamplerKind(toString(kind)).value(), kind);
  }
  EXPECT_TRUE(isParentBased(SamplerKind::kParentBasedTraceIdRatio));
  EXPECT_FALSE(isParentBased(SamplerKind::kTraceIdRatio));
  EXPECT_TRUE(usesRatio(SamplerKind::kTraceIdRatio));
  EXPECT_FALSE(usesRatio(SamplerKind::kAlwaysOn));
  EXPECT_FALSE(parseSamplerKind("").ok());
}

}  // namespace
}  // namespace tracecar::sampling
