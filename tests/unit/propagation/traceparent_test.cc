#include "propagation/traceparent.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "propagation/ids.h"

namespace tracecar::propagation {
namespace {

constexpr std::string_view kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kParent = "00f067aa0ba902b7";

std::string tp(std::string_view version, std::string_view trace, std::string_view parent,
               std::string_view flags, std::string_view rest = "") {
  return std::string(version) + "-" + std::string(trace) + "-" + std::string(parent) + "-" +
         std::string(flags) + std::string(rest);
}

std::string format(const Traceparent& t) {
  char buf[kTraceparentLength];
  formatTraceparent(t.trace_id, t.parent_id, t.flags, buf);
  return std::string(buf, sizeof(buf));
}

TEST(Traceparent, ParsesVersion00) {
  Traceparent t;
  ASSERT_EQ(parseTraceparent(tp("00", kTrace, kParent, "01"), t), TraceparentStatus::kValid);
  EXPECT_EQ(t.version, 0);
  EXPECT_EQ(t.trace_id.toHex(), kTrace);
  EXPECT_EQ(t.parent_id.toHex(), kParent);
  EXPECT_EQ(t.flags, trace_flags::kSampled);
}

TEST(Traceparent, KeepsSampledAndRandomFlags) {
  for (auto [flags, want] : {std::pair{"00", 0}, {"01", 1}, {"02", 2}, {"03", 3}}) {
    Traceparent t;
    ASSERT_EQ(parseTraceparent(tp("00", kTrace, kParent, flags), t), TraceparentStatus::kValid);
    EXPECT_EQ(t.flags, want) << flags;
  }
}

TEST(Traceparent, ClearsUnknownFlags) {
  Traceparent t;
  ASSERT_EQ(parseTraceparent(tp("00", kTrace, kParent, "ff"), t), TraceparentStatus::kValid);
  EXPECT_EQ(t.flags, trace_flags::kSampled | trace_flags::kRandom);
  ASSERT_EQ(parseTraceparent(tp("00", kTrace, kParent, "fc"), t), TraceparentStatus::kValid);
  EXPECT_EQ(t.flags, 0);
  EXPECT_EQ(format(t), tp("00", kTrace, kParent, "00"));
}

struct Case {
  std::string name;
  std::string value;
  TraceparentStatus want;
};

class TraceparentRejects : public ::testing::TestWithParam<Case> {};

TEST_P(TraceparentRejects, RestartsTrace) {
  Traceparent t;
  t.flags = 0x7f;  // untouched on failure
  EXPECT_EQ(parseTraceparent(GetParam().value, t), GetParam().want) << GetParam().value;
  EXPECT_EQ(t.flags, 0x7f);
}

// Every traceparent situation the W3C trace-context test suite checks, and a few more.
INSTANTIATE_TEST_SUITE_P(
    W3CSuite, TraceparentRejects,
    ::testing::Values(
        Case{"Empty", "", TraceparentStatus::kBadLength},
        Case{"V00TrailingDot", tp("00", kTrace, kParent, "01", "."), TraceparentStatus::kBadLength},
        Case{"V00TrailingFields",
             tp("00", kTrace, kParent, "01", "-what-the-future-will-be-like"),
             TraceparentStatus::kBadLength},
        Case{"V00TrailingDash", tp("00", kTrace, kParent, "01", "-"), TraceparentStatus::kBadLength},
        Case{"VersionFf", tp("ff", kTrace, kParent, "01"), TraceparentStatus::kBadVersion},
        Case{"VersionUppercase", tp("CC", kTrace, kParent, "01"), TraceparentStatus::kBadVersion},
        Case{"VersionIllegalFirst", tp(".0", kTrace, kParent, "01"), TraceparentStatus::kBadVersion},
        Case{"VersionIllegalSecond", tp("0.", kTrace, kParent, "01"),
             TraceparentStatus::kBadVersion},
        Case{"VersionTooLong", tp("000", kTrace, kParent, "01"), TraceparentStatus::kBadLength},
        Case{"VersionTooLong4", tp("0000", kTrace, kParent, "01"), TraceparentStatus::kBadLength},
        Case{"HigherVersionTooLong", tp("ccc", kTrace, kParent, "01"),
             TraceparentStatus::kBadFormat},
        Case{"VersionTooShort", tp("0", kTrace, kParent, "01"), TraceparentStatus::kBadLength},
        Case{"HigherVersionTooShort", tp("cc", kTrace, kParent, "1"),
             TraceparentStatus::kBadLength},
        Case{"HigherVersionTrailingDot",
             tp("cc", kTrace, kParent, "01", ".what-the-future-will-be-like"),
             TraceparentStatus::kBadFormat},
        Case{"TraceIdAllZero", tp("00", "00000000000000000000000000000000", kParent, "01"),
             TraceparentStatus::kZeroTraceId},
        Case{"TraceIdIllegalFirst", tp("00", ".bf92f3577b34da6a3ce929d0e0e4736", kParent, "01"),
             TraceparentStatus::kBadFormat},
        Case{"TraceIdIllegalLast", tp("00", "4bf92f3577b34da6a3ce929d0e0e473.", kParent, "01"),
             TraceparentStatus::kBadFormat},
        Case{"TraceIdUppercase", tp("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kParent, "01"),
             TraceparentStatus::kBadFormat},
        Case{"TraceIdTooLong", tp("00", "4bf92f3577b34da6a3ce929d0e0e47366", kParent, "01"),
             TraceparentStatus::kBadLength},
        Case{"TraceIdTooShort", tp("00", "4bf92f3577b34da6a3ce929d0e0e473", kParent, "01"),
             TraceparentStatus::kBadLength},
        Case{"ParentIdAllZero", tp("00", kTrace, "0000000000000000", "01"),
             TraceparentStatus::kZeroParentId},
        Case{"ParentIdIllegalFirst", tp("00", kTrace, ".0f067aa0ba902b7", "01"),
             TraceparentStatus::kBadFormat},
        Case{"ParentIdIllegalLast", tp("00", kTrace, "00f067aa0ba902b.", "01"),
             TraceparentStatus::kBadFormat},
        Case{"ParentIdUppercase", tp("00", kTrace, "00F067AA0BA902B7", "01"),
             TraceparentStatus::kBadFormat},
        Case{"ParentIdTooLong", tp("00", kTrace, "00f067aa0ba902b77", "01"),
             TraceparentStatus::kBadLength},
        Case{"ParentIdTooShort", tp("00", kTrace, "00f067aa0ba902b", "01"),
             TraceparentStatus::kBadLength},
        Case{"FlagsIllegalFirst", tp("00", kTrace, kParent, ".1"), TraceparentStatus::kBadFormat},
        Case{"FlagsIllegalLast", tp("00", kTrace, kParent, "0."), TraceparentStatus::kBadFormat},
        Case{"FlagsUppercase", tp("00", kTrace, kParent, "0A"), TraceparentStatus::kBadFormat},
        Case{"FlagsTooLong", tp("00", kTrace, kParent, "001"), TraceparentStatus::kBadLength},
        Case{"FlagsTooShort", tp("00", kTrace, kParent, "1"), TraceparentStatus::kBadLength},
        Case{"WrongDelimiter", "00_" + std::string(kTrace) + "-" + std::string(kParent) + "-01",
             TraceparentStatus::kBadFormat},
        Case{"MissingDelimiter", "00-" + std::string(kTrace) + std::string(kParent) + "-01-",
             TraceparentStatus::kBadFormat},
        Case{"LeadingSpaceInsideLength", " " + tp("00", kTrace, kParent, "01").substr(0, 54),
             TraceparentStatus::kBadVersion},
        Case{"NulInside", tp("00", kTrace, kParent, "0") + std::string(1, '\0'),
             TraceparentStatus::kBadFormat}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(Traceparent, AcceptsHigherVersionWithFutureFields) {
  Traceparent t;
  ASSERT_EQ(parseTraceparent(tp("cc", kTrace, kParent, "01"), t), TraceparentStatus::kValid);
  EXPECT_EQ(t.version, 0xcc);
  ASSERT_EQ(parseTraceparent(tp("cc", kTrace, kParent, "01", "-what-the-future-will-be-like"), t),
            TraceparentStatus::kValid);
  EXPECT_EQ(t.trace_id.toHex(), kTrace);
  EXPECT_EQ(t.flags, 1);
}

TEST(Traceparent, ReemitsHigherVersionAsVersion00WithUnknownFlagsCleared) {
  Traceparent t;
  ASSERT_EQ(parseTraceparent(tp("01", kTrace, kParent, "09", "-extra"), t),
            TraceparentStatus::kValid);
  EXPECT_EQ(format(t), tp("00", kTrace, kParent, "01"));
}

TEST(Traceparent, VersionFeIsTheHighestValid) {
  Traceparent t;
  EXPECT_EQ(parseTraceparent(tp("fe", kTrace, kParent, "00"), t), TraceparentStatus::kValid);
}

TEST(Traceparent, FormatsExactly55LowercaseCharacters) {
  TraceId trace;
  SpanId span;
  ASSERT_TRUE(TraceId::fromHex(kTrace, trace));
  ASSERT_TRUE(SpanId::fromHex(kParent, span));
  char buf[kTraceparentLength];
  formatTraceparent(trace, span, 0x03, buf);
  EXPECT_EQ(std::string(buf, sizeof(buf)), tp("00", kTrace, kParent, "03"));
}

TEST(Traceparent, StatusNamesAreStable) {
  EXPECT_EQ(toString(TraceparentStatus::kValid), "valid");
  EXPECT_EQ(toString(TraceparentStatus::kMultipleFields), "multiple_fields");
  EXPECT_EQ(toString(TraceparentStatus::kZeroParentId), "zero_parent_id");
}

// Property: any ids and flags format to a value that parses back to the same ids and the
// known flags; any single-character corruption of a valid value either still parses (hex
// digit to another lowercase hex digit) or is rejected, never misparsed.
TEST(Traceparent, RandomRoundTripsAndCorruptions) {
  IdGenerator ids(7);
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    Traceparent in;
    in.trace_id = ids.newTraceId();
    in.parent_id = ids.newSpanId();
    in.flags = static_cast<uint8_t>(rng() & 0xff);
    const std::string s = format(in);
    Traceparent out;
    ASSERT_EQ(parseTraceparent(s, out), TraceparentStatus::kValid) << s;
    EXPECT_EQ(out.trace_id, in.trace_id);
    EXPECT_EQ(out.parent_id, in.parent_id);
    EXPECT_EQ(out.flags, in.flags & trace_flags::kKnown);
    EXPECT_EQ(format(out), s);

    std::string bad = s;
    const size_t pos = rng() % bad.size();
    bad[pos] = static_cast<char>(rng() & 0xff);
    Traceparent b;
    const TraceparentStatus st = parseTraceparent(bad, b);
    if (st == TraceparentStatus::kValid) {
      for (size_t k = 0; k < bad.size(); ++k) {
        const char c = bad[k];
        const bool dash = (k == 2 || k == 35 || k == 52);
        ASSERT_TRUE(dash ? c == '-' : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            << bad;
      }
    }
  }
}

}  // namespace
}  // namespace tracecar::propagation
