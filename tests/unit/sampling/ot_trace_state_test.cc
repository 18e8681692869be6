#include "sampling/ot_trace_state.h"

#include <gtest/gtest.h>

#include <string>

#include "sampling/threshold.h"

namespace tracecar::sampling {
namespace {

using propagation::TraceState;
using propagation::TraceStateStatus;

TraceState parsed(std::string_view header) {
  TraceState ts;
  if (!header.empty()) {
    EXPECT_EQ(ts.parse(header), TraceStateStatus::kValid) << header;
  }
  return ts;
}

std::string afterSet(std::string_view header, uint64_t threshold) {
  TraceState ts = parsed(header);
  setThreshold(ts, threshold);
  return ts.toString();
}

std::string afterErase(std::string_view header) {
  TraceState ts = parsed(header);
  eraseThreshold(ts);
  return ts.toString();
}

TEST(OtEntry, ReadsThresholdAndRandomness) {
  const OtEntry e = parseOtValue("rv:6e6d1a75832a2f;th:c");
  EXPECT_TRUE(e.well_formed);
  EXPECT_TRUE(e.has_threshold_key);
  EXPECT_EQ(e.threshold, 0xc0000000000000u);
  EXPECT_EQ(e.randomness, 0x6e6d1a75832a2fu);
}

TEST(OtEntry, UnknownSubKeysAreFine) {
  const OtEntry e = parseOtValue("p:8;r:62;k1:A.b_c-9;th:0");
  EXPECT_TRUE(e.well_formed);
  EXPECT_EQ(e.threshold, 0u);
  EXPECT_FALSE(e.randomness);
}

TEST(OtEntry, InvalidSubValuesCountAsAbsent) {
  OtEntry e = parseOtValue("th:zz;rv:123");
  EXPECT_TRUE(e.well_formed);
  EXPECT_TRUE(e.has_threshold_key);
  EXPECT_FALSE(e.threshold);
  EXPECT_FALSE(e.randomness);
  e = parseOtValue("th:");
  EXPECT_TRUE(e.has_threshold_key);
  EXPECT_FALSE(e.threshold);
  e = parseOtValue("th:C");
  EXPECT_FALSE(e.threshold);
}

TEST(OtEntry, MalformedValuesHaveNoThresholdOrRandomness) {
  for (std::string_view bad : {"th", "th:8;", ";th:8", "th:8;;rv:6e6d1a75832a2f", "TH:8",
                               "1k:2;th:8", "th:8;th:c", "th:8 ", "th:8;x:a:b", "th:8;x:a/b",
                               "th:8,rv:6e6d1a75832a2f", ""}) {
    const OtEntry e = parseOtValue(bad);
    EXPECT_FALSE(e.well_formed) << bad;
    EXPECT_FALSE(e.threshold) << bad;
    EXPECT_FALSE(e.randomness) << bad;
  }
}

TEST(OtEntry, AbsentMember) {
  const TraceState ts = parsed("a=1,b=2");
  const OtEntry e = readOtEntry(ts);
  EXPECT_FALSE(e.present);
  EXPECT_FALSE(e.threshold);
}

TEST(SetThreshold, AddsOtMemberAtTheLeft) {
  EXPECT_EQ(afterSet("", 0xc0000000000000u), "ot=th:c");
  EXPECT_EQ(afterSet("a=1,b@t=2", 0xc0000000000000u), "ot=th:c,a=1,b@t=2");
  EXPECT_EQ(afterSet("", 0), "ot=th:0");
}

TEST(SetThreshold, KeepsOtherSubKeysAndMovesTheMemberLeft) {
  EXPECT_EQ(afterSet("a=1,ot=rv:6e6d1a75832a2f;th:8,b=2", 0xc0000000000000u),
            "ot=rv:6e6d1a75832a2f;th:c,a=1,b=2");
  EXPECT_EQ(afterSet("a=1,ot=th:8;foo:bar", 0xfd70a000000000u), "ot=foo:bar;th:fd70a,a=1");
  EXPECT_EQ(afterSet("a=1,ot=foo:bar", 0x80000000000000u), "ot=foo:bar;th:8,a=1");
}

TEST(SetThreshold, SameThresholdLeavesTracestateAlone) {
  TraceState ts = parsed("a=1,ot=th:c;rv:6e6d1a75832a2f");
  EXPECT_FALSE(setThreshold(ts, 0xc0000000000000u));
  EXPECT_EQ(ts.toString(), "a=1,ot=th:c;rv:6e6d1a75832a2f");
}

TEST(SetThreshold, ReplacesMalformedOtMember) {
  EXPECT_EQ(afterSet("a=1,ot=garbage", 0xc0000000000000u), "ot=th:c,a=1");
  EXPECT_EQ(afterSet("ot=th:8;th:4", 0xc0000000000000u), "ot=th:c");
}

TEST(SetThreshold, ErasesInsteadOfPassing256Characters) {
  const std::string filler = "k:" + std::string(246, 'x');  // 248 characters
  // "th:c" fits (248 + 1 + 4 = 253) ...
  EXPECT_EQ(afterSet("ot=th:8;" + filler, 0xc0000000000000u), "ot=" + filler + ";th:c");
  // ... 14 digits do not (248 + 1 + 17 = 266): the old th must not survive.
  EXPECT_EQ(afterSet("a=1,ot=th:8;" + filler, 0xaaaaaaaaaaaaacu), "ot=" + filler + ",a=1");
  // Exactly 256 fits.
  const std::string filler2 = "k:" + std::string(244, 'x');  // 246 + 1 + 9 = 256
  EXPECT_EQ(afterSet("ot=" + filler2, 0xfd70a400000000u), "ot=" + filler2 + ";th:fd70a4");
}

TEST(EraseThreshold, RemovesOnlyTh) {
  EXPECT_EQ(afterErase("a=1,ot=th:8;rv:6e6d1a75832a2f,b=2"), "ot=rv:6e6d1a75832a2f,a=1,b=2");
  EXPECT_EQ(afterErase("a=1,ot=th:8,b=2"), "a=1,b=2");  // nothing left: the member goes
  EXPECT_EQ(afterErase("a=1,ot=th:zz;x:y"), "ot=x:y,a=1");  // an invalid th goes too
}

TEST(EraseThreshold, NoThresholdOrMalformedIsUntouched) {
  for (std::string_view header : {"a=1,ot=rv:6e6d1a75832a2f", "a=1,ot=th", "a=1,b=2", ""}) {
    TraceState ts = parsed(header);
    EXPECT_FALSE(eraseThreshold(ts)) << header;
    EXPECT_EQ(ts.toString(), header);
  }
}

}  // namespace
}  // namespace tracecar::sampling
