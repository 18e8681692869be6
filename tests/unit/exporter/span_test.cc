#include "exporter/span.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace tracecar::exporter {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string str(const Attributes& attrs, std::string_view key) {
  const AttributeValue* v = attrs.find(key);
  return v == nullptr ? "<absent>" : std::get<std::string>(*v);
}

TEST(Attributes, KeepsKeysInInsertionOrder) {
  Attributes a;
  a.set("b", int64_t{1});
  a.set("a", true);
  a.set("c", 0.5);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a.items()[0].key, "b");
  EXPECT_EQ(a.items()[1].key, "a");
  EXPECT_EQ(a.items()[2].key, "c");
}

TEST(Attributes, ReplacingAKeyKeepsItsPlaceAndTakesTheNewType) {
  Attributes a;
  a.set("x", int64_t{1});
  a.set("y", int64_t{2});
  a.set("x", std::string("now a string"));
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a.items()[0].key, "x");
  EXPECT_EQ(str(a, "x"), "now a string");
  EXPECT_EQ(a.dropped(), 0u);
}

TEST(Attributes, KeysSurviveCopiesAndMovesOfTheList) {
  std::string name = "dynamic.key";
  auto a = std::make_unique<Attributes>();
  a->set(name, int64_t{1});
  a->setStatic("static.key", int64_t{2});
  a->setStaticString("static.text", "v");
  a->set("", int64_t{3});
  name.assign("overwritten");  // the list holds its own copy
  Attributes copy = *a;
  Attributes moved = std::move(*a);
  a.reset();
  for (const Attributes* list : {&copy, &moved}) {
    ASSERT_EQ(list->size(), 4u);
    EXPECT_EQ(list->items()[0].key, "dynamic.key");
    EXPECT_EQ(list->items()[1].key, "static.key");
    EXPECT_EQ(list->items()[2].key, "static.text");
    EXPECT_EQ(list->items()[3].key, "");
    EXPECT_NE(list->find("dynamic.key"), nullptr);
  }
  copy = moved;  // assignment over keys already there
  EXPECT_EQ(copy.items()[0].key, "dynamic.key");
}

TEST(Attributes, FindReturnsNullForAnAbsentKey) {
  Attributes a;
  a.set("x", false);
  EXPECT_EQ(a.find("y"), nullptr);
  ASSERT_NE(a.find("x"), nullptr);
  EXPECT_FALSE(std::get<bool>(*a.find("x")));
}

TEST(Attributes, CountLimitKeepsExactlyLimitKeys) {
  const AttributeLimits limits{3};
  Attributes a;
  for (int i = 0; i < 3; ++i) a.set("k" + std::to_string(i), int64_t{i}, limits);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a.dropped(), 0u);
}

TEST(Attributes, CountLimitDropsAndCountsOnePast) {
  const AttributeLimits limits{3};
  Attributes a;
  for (int i = 0; i < 5; ++i) a.set("k" + std::to_string(i), int64_t{i}, limits);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a.dropped(), 2u);
  EXPECT_EQ(a.find("k3"), nullptr);
}

TEST(Attributes, ReplacingAKeyWorksWhenFull) {
  const AttributeLimits limits{2};
  Attributes a;
  a.set("a", int64_t{1}, limits);
  a.set("b", int64_t{2}, limits);
  a.set("a", int64_t{10}, limits);
  EXPECT_EQ(std::get<int64_t>(*a.find("a")), 10);
  EXPECT_EQ(a.dropped(), 0u);
}

TEST(Attributes, ZeroCountLimitDropsEverything) {
  Attributes a;
  a.set("a", true, AttributeLimits{0});
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.dropped(), 1u);
}

TEST(Attributes, ClearForgetsItemsAndDrops) {
  Attributes a;
  a.set("a", true, AttributeLimits{0});
  a.clear();
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.dropped(), 0u);
}

TEST(Attributes, StringAtTheLengthLimitIsKept) {
  Attributes a;
  a.set("s", std::string("abcde"), AttributeLimits{128, 5});
  EXPECT_EQ(str(a, "s"), "abcde");
}

TEST(Attributes, StringOnePastTheLengthLimitIsCut) {
  Attributes a;
  a.set("s", std::string("abcdef"), AttributeLimits{128, 5});
  EXPECT_EQ(str(a, "s"), "abcde");
}

TEST(Attributes, LengthLimitCountsCharactersNotBytes) {
  Attributes a;
  const AttributeLimits limits{128, 3};
  a.set("at", std::string("h\xc3\xa9\xe2\x82\xac"), limits);            // "hé€": 3 characters
  a.set("past", std::string("h\xc3\xa9\xe2\x82\xac!"), limits);         // 4 characters
  a.set("emoji", std::string("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80x"), limits);
  EXPECT_EQ(str(a, "at"), "h\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(str(a, "past"), "h\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(str(a, "emoji"), "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80");
}

TEST(Attributes, LengthLimitNeverSplitsAMultiByteCharacter) {
  Attributes a;
  a.set("s", std::string("\xe2\x82\xac\xe2\x82\xac"), AttributeLimits{128, 1});
  EXPECT_EQ(str(a, "s"), "\xe2\x82\xac");
}

TEST(Attributes, LengthLimitCutsEachStringOfAnArray) {
  Attributes a;
  a.set("arr", StringArray{"abc", "abcd", "", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"},
        AttributeLimits{128, 3});
  EXPECT_THAT(std::get<StringArray>(*a.find("arr")),
              ElementsAre("abc", "abc", "", "\xc3\xa9\xc3\xa9\xc3\xa9"));
}

TEST(Attributes, LengthLimitLeavesOtherTypesAlone) {
  Attributes a;
  const AttributeLimits limits{128, 0};
  a.set("i", int64_t{123456789}, limits);
  a.set("d", 1.5, limits);
  a.set("b", true, limits);
  a.set("s", std::string("gone"), limits);
  EXPECT_EQ(std::get<int64_t>(*a.find("i")), 123456789);
  EXPECT_EQ(std::get<double>(*a.find("d")), 1.5);
  EXPECT_TRUE(std::get<bool>(*a.find("b")));
  EXPECT_EQ(str(a, "s"), "");
}

// --- attributeLimitsFromEnv ---------------------------------------------------------------

AttributeLimits limitsFrom(std::map<std::string, std::string, std::less<>> vars,
                           std::vector<std::string>& warnings) {
  return attributeLimitsFromEnv(mapEnvironment(std::move(vars)), warnings);
}

TEST(AttributeLimitsFromEnv, DefaultsAre128AndUnlimited) {
  std::vector<std::string> warnings;
  const AttributeLimits limits = limitsFrom({}, warnings);
  EXPECT_EQ(limits.count, 128u);
  EXPECT_EQ(limits.value_length, std::numeric_limits<size_t>::max());
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(AttributeLimitsFromEnv, ReadsSpanCountAndValueLength) {
  std::vector<std::string> warnings;
  const AttributeLimits limits = limitsFrom(
      {{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "12"}, {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", " 64 "}},
      warnings);
  EXPECT_EQ(limits.count, 12u);
  EXPECT_EQ(limits.value_length, 64u);
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(AttributeLimitsFromEnv, GeneralCountLimitIsTheFallback) {
  std::vector<std::string> warnings;
  EXPECT_EQ(limitsFrom({{"OTEL_ATTRIBUTE_COUNT_LIMIT", "7"}}, warnings).count, 7u);
}

TEST(AttributeLimitsFromEnv, SpanSpecificLimitsWinOverGeneralOnes) {
  std::vector<std::string> warnings;
  const AttributeLimits limits = limitsFrom({{"OTEL_ATTRIBUTE_COUNT_LIMIT", "7"},
                                             {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "9"},
                                             {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100"},
                                             {"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "50"}},
                                            warnings);
  EXPECT_EQ(limits.count, 9u);
  EXPECT_EQ(limits.value_length, 50u);
}

TEST(AttributeLimitsFromEnv, ZeroIsAValidLimit) {
  std::vector<std::string> warnings;
  EXPECT_EQ(limitsFrom({{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "0"}}, warnings).count, 0u);
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(AttributeLimitsFromEnv, EmptyValueCountsAsUnset) {
  std::vector<std::string> warnings;
  EXPECT_EQ(limitsFrom({{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", ""}}, warnings).count, 128u);
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(AttributeLimitsFromEnv, InvalidValueWarnsWithNameAndValueAndKeepsDefault) {
  for (const char* bad : {"-1", "12abc", "ten", "1.5", "99999999999999999999999"}) {
    std::vector<std::string> warnings;
    const AttributeLimits limits =
        limitsFrom({{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", bad},
                    {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", bad}},
                   warnings);
    EXPECT_EQ(limits.count, 128u) << bad;
    EXPECT_EQ(limits.value_length, std::numeric_limits<size_t>::max()) << bad;
    ASSERT_EQ(warnings.size(), 2u) << bad;
    EXPECT_THAT(warnings[0], HasSubstr("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"));
    EXPECT_THAT(warnings[0], HasSubstr(bad));
    EXPECT_THAT(warnings[1], HasSubstr("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"));
  }
}

TEST(AttributeLimitsFromEnv, InvalidSpanLimitFallsBackToValidGeneralOne) {
  std::vector<std::string> warnings;
  const AttributeLimits limits = limitsFrom(
      {{"OTEL_ATTRIBUTE_COUNT_LIMIT", "5"}, {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "x"}}, warnings);
  EXPECT_EQ(limits.count, 5u);
  EXPECT_EQ(warnings.size(), 1u);
}

// An invalid variable is treated as not set, so the lower layer's value (tracecar's file) applies
// before the default; a valid general variable still comes first.
TEST(AttributeLimitsFromEnv, InvalidVariablesGiveWayToTheLowerLayer) {
  LowerLayer lower;
  lower.value = mapEnvironment({{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "10"},
                                {"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64"}});
  lower.name = [](std::string_view variable) { return "file:" + std::string(variable); };
  std::vector<std::string> warnings;
  AttributeLimits limits = attributeLimitsFromEnv(
      mapEnvironment({{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "x"}}), warnings, lower);
  EXPECT_EQ(limits.count, 10u);
  EXPECT_EQ(limits.value_length, 64u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("using 10 from file:OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"));

  warnings.clear();
  limits = attributeLimitsFromEnv(mapEnvironment({{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "x"},
                                                  {"OTEL_ATTRIBUTE_COUNT_LIMIT", "20"}}),
                                  warnings, lower);
  EXPECT_EQ(limits.count, 20u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("using OTEL_ATTRIBUTE_COUNT_LIMIT instead"));
}

// --- utf8 ---------------------------------------------------------------------------------

std::string sanitized(std::string_view s) {
  std::string out;
  utf8::forEachSanitizedRun(s, [&out](std::string_view run) { out.append(run); });
  EXPECT_EQ(out.size(), utf8::sanitizedSize(s)) << s;
  EXPECT_EQ(utf8::isValid(s), out == s) << s;
  return out;
}

TEST(Utf8, WellFormedTextIsUnchanged) {
  for (std::string_view s : {"", "plain ascii that is longer than eight bytes", "h\xc3\xa9",
                             "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                             "\xef\xbf\xbd"}) {
    EXPECT_EQ(sanitized(s), s);
  }
}

TEST(Utf8, EachMaximalIllFormedSubpartBecomesOneReplacementCharacter) {
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(sanitized("a\xff" "b"), "a" + r + "b");
  EXPECT_EQ(sanitized("\xe2\x82"), r);                  // truncated 3-byte sequence
  EXPECT_EQ(sanitized("\xe2\x82x"), r + "x");
  EXPECT_EQ(sanitized("\xc0\x80"), r + r);              // overlong NUL
  EXPECT_EQ(sanitized("\xe0\x80\x80"), r + r + r);      // overlong 3-byte
  EXPECT_EQ(sanitized("\xed\xa0\x80"), r + r + r);      // surrogate U+D800
  EXPECT_EQ(sanitized("\xf4\x90\x80\x80"), r + r + r + r);  // past U+10FFFF
  EXPECT_EQ(sanitized("\xf0\x9f\x98"), r);
  EXPECT_EQ(sanitized("\x80\x80"), r + r);              // stray continuation bytes
  EXPECT_EQ(sanitized("12345678\xff"), "12345678" + r);  // past the 8-byte fast path
}

// isValid reads whole words, some overlapping: a stray byte is found at every position of
// strings of every length up to past two words.
TEST(Utf8, IsValidFindsAnIllFormedByteAtEveryPosition) {
  for (size_t size = 1; size <= 20; ++size) {
    const std::string ascii(size, 'a');
    EXPECT_TRUE(utf8::isValid(ascii)) << size;
    for (size_t at = 0; at < size; ++at) {
      std::string s = ascii;
      s[at] = '\xff';
      EXPECT_FALSE(utf8::isValid(s)) << size << " at " << at;
    }
  }
}

}  // namespace
}  // namespace tracecar::exporter
