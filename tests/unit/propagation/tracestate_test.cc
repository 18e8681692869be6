#include "propagation/tracestate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tracecar::propagation {

// Failures print the status by name, not as a byte.
void PrintTo(TraceStateStatus status, std::ostream* os) { *os << toString(status); }

namespace {

using Fields = std::vector<std::string>;
using Model = std::vector<std::pair<std::string, std::string>>;

TraceStateStatus parseFields(TraceState& ts, const Fields& fields) {
  std::vector<std::string_view> views(fields.begin(), fields.end());
  return ts.parse(views);
}

Model members(const TraceState& ts) {
  Model out;
  for (size_t i = 0; i < ts.size(); ++i) {
    out.emplace_back(std::string(ts.member(i).key), std::string(ts.member(i).value));
  }
  return out;
}

std::string join(const Model& model) {
  std::string out;
  for (const auto& [key, value] : model) {
    if (!out.empty()) out += ',';
    out += key + "=" + value;
  }
  return out;
}

// "k01=v,k02=v,...": count members, each key distinct.
std::string numbered(size_t first, size_t count) {
  std::string out;
  for (size_t i = first; i < first + count; ++i) {
    if (!out.empty()) out += ',';
    out += "k" + std::to_string(100 + i) + "=" + std::to_string(i);
  }
  return out;
}

// All printable ASCII except ',' and '=': what a value may hold (it starts with a space).
std::string allValueChars() {
  std::string out;
  for (char c = 0x20; c <= 0x7e; ++c) {
    if (c != ',' && c != '=') out += c;
  }
  return out;
}

const std::string kAllKeyChars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";

struct AcceptCase {
  std::string name;
  Fields fields;
  std::string want;  // serialized result
};

class TraceStateAccepts : public ::testing::TestWithParam<AcceptCase> {};

TEST_P(TraceStateAccepts, KeepsEveryMemberInOrder) {
  TraceState ts;
  ASSERT_EQ(parseFields(ts, GetParam().fields), TraceStateStatus::kValid);
  EXPECT_EQ(ts.toString(), GetParam().want);
  EXPECT_EQ(ts.serializedLength(), GetParam().want.size());
}

// Every accepting tracestate case of the W3C trace-context test suite, and the grammar's edges.
INSTANTIATE_TEST_SUITE_P(
    W3CSuite, TraceStateAccepts,
    ::testing::Values(
        AcceptCase{"SingleMember", {"rojo=00f067aa0ba902b7"}, "rojo=00f067aa0ba902b7"},
        AcceptCase{"TwoMembers", {"foo=1,bar=2"}, "foo=1,bar=2"},
        AcceptCase{"CombinesFieldsInOrder",
                   {"foo=1,bar=2", "rojo=1,congo=2", "baz=3"},
                   "foo=1,bar=2,rojo=1,congo=2,baz=3"},
        AcceptCase{"SkipsEmptyFieldAfter", {"foo=1", ""}, "foo=1"},
        AcceptCase{"SkipsEmptyFieldBefore", {"", "foo=1"}, "foo=1"},
        AcceptCase{"SkipsWhitespaceField", {"foo=1", " \t ", "bar=2"}, "foo=1,bar=2"},
        AcceptCase{"DropsSpacesAndTabsAroundMembers",
                   {"foo=1 \t , \t bar=2, \t baz=3"},
                   "foo=1,bar=2,baz=3"},
        AcceptCase{"DropsTabsAndSpacesAroundMembers",
                   {"foo=1\t \t,\t \tbar=2,\t \tbaz=3"},
                   "foo=1,bar=2,baz=3"},
        AcceptCase{"DropsLeadingSpace", {" foo=1"}, "foo=1"},
        AcceptCase{"DropsLeadingTab", {"\tfoo=1"}, "foo=1"},
        AcceptCase{"DropsTrailingSpace", {"foo=1 "}, "foo=1"},
        AcceptCase{"DropsTrailingTab", {"foo=1\t"}, "foo=1"},
        AcceptCase{"DropsMixedOwsBothSides", {"\t foo=1 \t"}, "foo=1"},
        AcceptCase{"SkipsEmptyMembers", {",foo=1,, ,\t,bar=2,"}, "foo=1,bar=2"},
        AcceptCase{"KeepsLeadingSpacesOfValue", {"foo=  bar"}, "foo=  bar"},
        AcceptCase{"KeepsInnerSpacesOfValue", {"foo=a b  c"}, "foo=a b  c"},
        AcceptCase{"AllKeyCharacters", {kAllKeyChars + "=1"}, kAllKeyChars + "=1"},
        AcceptCase{"AllKeyCharactersWithVendor",
                   {kAllKeyChars + "@a-z0-9_-*/=1"},
                   kAllKeyChars + "@a-z0-9_-*/=1"},
        AcceptCase{"AllValueCharacters", {"foo=" + allValueChars()}, "foo=" + allValueChars()},
        AcceptCase{"KeyStartingWithDigit", {"0abc=1"}, "0abc=1"},
        AcceptCase{"MultiTenantKey", {"t@v=1"}, "t@v=1"},
        AcceptCase{"MultiTenantKeyL1Limits",
                   {"foo=1", std::string(241, 't') + "@" + std::string(14, 'v') + "=1"},
                   "foo=1," + std::string(241, 't') + "@" + std::string(14, 'v') + "=1"},
        // Level 2 lets '@' appear anywhere after the first character, so these Level 1
        // multi-tenant violations are valid keys now (the suite still expects a discard).
        AcceptCase{"L2KeyEndingWithAt", {"foo@=1,bar=2"}, "foo@=1,bar=2"},
        AcceptCase{"L2KeyWithDoubleAt", {"foo@@bar=1,bar=2"}, "foo@@bar=1,bar=2"},
        AcceptCase{"L2KeyWithTwoAts", {"foo@bar@baz=1,bar=2"}, "foo@bar@baz=1,bar=2"},
        AcceptCase{"L2TenantOf242",
                   {"foo=1", std::string(242, 't') + "@v=1"},
                   "foo=1," + std::string(242, 't') + "@v=1"},
        AcceptCase{"L2VendorOf15",
                   {"foo=1", "t@" + std::string(15, 'v') + "=1"},
                   "foo=1,t@" + std::string(15, 'v') + "=1"},
        AcceptCase{"KeyOf256", {"foo=1", std::string(256, 'z') + "=1"},
                   "foo=1," + std::string(256, 'z') + "=1"},
        AcceptCase{"ValueOf256", {"foo=" + std::string(256, 'v')},
                   "foo=" + std::string(256, 'v')},
        AcceptCase{"ValueOf256ThenTrailingOws", {"foo=" + std::string(256, 'v') + " \t "},
                   "foo=" + std::string(256, 'v')},
        AcceptCase{"ThirtyTwoMembersInOneField", {numbered(1, 32)}, numbered(1, 32)},
        AcceptCase{"ThirtyTwoMembersInFourFields",
                   {numbered(1, 10), numbered(11, 10), numbered(21, 10), numbered(31, 2)},
                   numbered(1, 32)},
        AcceptCase{"ThirtyTwoMembersAmongEmptyOnes",
                   {",," + numbered(1, 16) + ",, ,", "", numbered(17, 16) + ",\t,"},
                   numbered(1, 32)}),
    [](const auto& test_info) { return test_info.param.name; });

struct RejectCase {
  std::string name;
  Fields fields;
  TraceStateStatus want;
};

class TraceStateRejects : public ::testing::TestWithParam<RejectCase> {};

TEST_P(TraceStateRejects, DiscardsWholeTracestate) {
  TraceState ts;
  ASSERT_EQ(ts.parse("congo=t61rcWkgMzE"), TraceStateStatus::kValid);  // must not survive
  EXPECT_EQ(parseFields(ts, GetParam().fields), GetParam().want);
  EXPECT_TRUE(ts.empty());
  EXPECT_EQ(ts.size(), 0u);
  EXPECT_EQ(ts.toString(), "");
  EXPECT_EQ(ts.serializedLength(), 0u);
  EXPECT_FALSE(ts.get("foo").has_value());
  EXPECT_FALSE(ts.get("congo").has_value());
}

const std::string kValid = "rojo=00f067aa0ba902b7";

// Every discarding tracestate case of the W3C trace-context test suite (strict level 2), and
// one of each way a member can break the grammar.
INSTANTIATE_TEST_SUITE_P(
    W3CSuite, TraceStateRejects,
    ::testing::Values(
        RejectCase{"DuplicateKeySameValue", {"foo=1,foo=1"}, TraceStateStatus::kDuplicateKey},
        RejectCase{"DuplicateKeyOtherValue", {"foo=1,foo=2"}, TraceStateStatus::kDuplicateKey},
        RejectCase{"DuplicateKeyAcrossFields", {"foo=1", "foo=1"}, TraceStateStatus::kDuplicateKey},
        RejectCase{"DuplicateKeyOtherValueAcrossFields",
                   {"foo=1", "foo=2"},
                   TraceStateStatus::kDuplicateKey},
        RejectCase{"DuplicateKeyFarApart",
                   {"foo=1," + numbered(1, 20), "bar=1, foo=9"},
                   TraceStateStatus::kDuplicateKey},
        RejectCase{"SpaceBeforeEquals", {"foo =1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"TabBeforeEquals", {"foo\t=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"UppercaseKey", {"FOO=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"MixedCaseKey", {"fOo=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"DotInKey", {"foo.bar=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"KeyStartingWithAt", {"@foo=1,bar=2"}, TraceStateStatus::kInvalidKey},
        RejectCase{"KeyStartingWithUnderscore", {"_foo=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"KeyStartingWithDash", {"-foo=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"KeyStartingWithStar", {"*foo=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"KeyStartingWithSlash", {"/foo=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"EmptyKey", {"=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"NonAsciiKey", {"caf\xc3\xa9=1"}, TraceStateStatus::kInvalidKey},
        RejectCase{"NulInKey", {std::string("fo\0o=1", 6)}, TraceStateStatus::kInvalidKey},
        RejectCase{"KeyOf257",
                   {"foo=1", std::string(257, 'z') + "=1"},
                   TraceStateStatus::kInvalidKey},
        RejectCase{"InvalidKeyInLaterField",
                   {kValid, "bar=1,BAZ=2"},
                   TraceStateStatus::kInvalidKey},
        RejectCase{"EqualsInValue", {"foo=bar=baz"}, TraceStateStatus::kInvalidValue},
        RejectCase{"EmptyValue", {"foo=,bar=3"}, TraceStateStatus::kInvalidValue},
        RejectCase{"EmptyValueLast", {"bar=3,foo="}, TraceStateStatus::kInvalidValue},
        RejectCase{"OnlySpacesAsValue", {"foo=   ,bar=3"}, TraceStateStatus::kInvalidValue},
        RejectCase{"TabInValue", {"foo=a\tb"}, TraceStateStatus::kInvalidValue},
        RejectCase{"LeadingTabInValue", {"foo=\tb"}, TraceStateStatus::kInvalidValue},
        RejectCase{"NewlineInValue", {"foo=1\r\nbar=2"}, TraceStateStatus::kInvalidValue},
        RejectCase{"DelInValue", {"foo=a\x7f"}, TraceStateStatus::kInvalidValue},
        RejectCase{"ControlInValue", {"foo=\x01"}, TraceStateStatus::kInvalidValue},
        RejectCase{"NonAsciiValue", {"foo=caf\xc3\xa9"}, TraceStateStatus::kInvalidValue},
        RejectCase{"NulInValue", {std::string("foo=a\0b", 7)}, TraceStateStatus::kInvalidValue},
        RejectCase{"SemicolonSeparatedMembers", {"foo=1;bar=2"}, TraceStateStatus::kInvalidValue},
        RejectCase{"ValueOf257",
                   {"foo=1", "bar=" + std::string(257, 'v')},
                   TraceStateStatus::kInvalidValue},
        RejectCase{"MissingEquals", {"foo"}, TraceStateStatus::kInvalidMember},
        RejectCase{"MissingEqualsAfterValidMember",
                   {"foo=1,bar"},
                   TraceStateStatus::kInvalidMember},
        RejectCase{"ColonInsteadOfEquals", {"foo:1"}, TraceStateStatus::kInvalidMember},
        RejectCase{"ThirtyThreeMembersInOneField",
                   {numbered(1, 33)},
                   TraceStateStatus::kTooManyMembers},
        RejectCase{"ThirtyThreeMembersInFourFields",
                   {numbered(1, 10), numbered(11, 10), numbered(21, 10), numbered(31, 3)},
                   TraceStateStatus::kTooManyMembers},
        RejectCase{"ThirtyThreeMembersAmongEmptyOnes",
                   {numbered(1, 16) + ",,", ", ,", numbered(17, 17)},
                   TraceStateStatus::kTooManyMembers}),
    [](const auto& test_info) { return test_info.param.name; });

class TraceStateEmpty : public ::testing::TestWithParam<Fields> {};

TEST_P(TraceStateEmpty, AcceptsAndSendsNothing) {
  TraceState ts;
  ASSERT_EQ(ts.parse("foo=1"), TraceStateStatus::kValid);
  EXPECT_EQ(parseFields(ts, GetParam()), TraceStateStatus::kEmpty);
  EXPECT_TRUE(ts.empty());
  EXPECT_EQ(ts.toString(), "");
}

INSTANTIATE_TEST_SUITE_P(W3CSuite, TraceStateEmpty,
                         ::testing::Values(Fields{}, Fields{""}, Fields{"", ""}, Fields{" "},
                                           Fields{"\t \t"}, Fields{","}, Fields{" , ,\t, "},
                                           Fields{",,", "", " , "}));

TEST(TraceState, ParseIsNoexcept) {
  static_assert(noexcept(std::declval<TraceState&>().parse(std::string_view())));
  static_assert(noexcept(std::declval<TraceState&>().parse(std::span<const std::string_view>())));
}

TEST(TraceState, LooksUpMembersByKey) {
  TraceState ts;
  ASSERT_EQ(ts.parse("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"), TraceStateStatus::kValid);
  EXPECT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts.get("rojo"), "00f067aa0ba902b7");
  EXPECT_EQ(ts.get("congo"), "t61rcWkgMzE");
  EXPECT_FALSE(ts.get("rojo=").has_value());
  EXPECT_FALSE(ts.get("").has_value());
  EXPECT_EQ(ts.member(1).key, "congo");
  EXPECT_TRUE(ts.member(2).key.empty());  // out of range
}

TEST(TraceState, ValidatesKeysAtTheirLengthLimit) {
  EXPECT_TRUE(TraceState::isValidKey(std::string(256, 'a')));
  EXPECT_FALSE(TraceState::isValidKey(std::string(257, 'a')));
  EXPECT_TRUE(TraceState::isValidKey("a"));
  EXPECT_FALSE(TraceState::isValidKey(""));
}

TEST(TraceState, ValidatesValuesAtTheirLengthLimit) {
  EXPECT_TRUE(TraceState::isValidValue(std::string(256, 'v')));
  EXPECT_FALSE(TraceState::isValidValue(std::string(257, 'v')));
  EXPECT_TRUE(TraceState::isValidValue(" " + std::string(255, 'v')));
  EXPECT_FALSE(TraceState::isValidValue(std::string(255, 'v') + " "));
  EXPECT_FALSE(TraceState::isValidValue(""));
  EXPECT_FALSE(TraceState::isValidValue(" "));
}

TEST(TraceState, NamesEveryStatus) {
  std::set<std::string_view> names;
  for (auto status : {TraceStateStatus::kValid, TraceStateStatus::kEmpty,
                      TraceStateStatus::kNotParsed, TraceStateStatus::kTooManyMembers,
                      TraceStateStatus::kDuplicateKey, TraceStateStatus::kInvalidKey,
                      TraceStateStatus::kInvalidValue, TraceStateStatus::kInvalidMember}) {
    EXPECT_NE(toString(status), "unknown");
    names.insert(toString(status));
  }
  EXPECT_EQ(names.size(), 8u);
  EXPECT_EQ(toString(TraceStateStatus::kDuplicateKey), "duplicate_key");
}

// --- Mutation -------------------------------------------------------------------------------

TEST(TraceState, SetOfExistingKeyMovesItLeftWithNewValue) {
  TraceState ts;
  ASSERT_EQ(ts.parse("a=1,b=2,c=3,d=4"), TraceStateStatus::kValid);
  EXPECT_TRUE(ts.set("c", "9"));
  EXPECT_EQ(ts.toString(), "c=9,a=1,b=2,d=4");
  EXPECT_TRUE(ts.set("d", "longer value"));
  EXPECT_EQ(ts.toString(), "d=longer value,c=9,a=1,b=2");
  EXPECT_TRUE(ts.set("d", "x"));  // already leftmost: value changes, order stays
  EXPECT_EQ(ts.toString(), "d=x,c=9,a=1,b=2");
  EXPECT_EQ(ts.serializedLength(), ts.toString().size());
}

TEST(TraceState, SetOfNewKeyAddsItOnTheLeft) {
  TraceState ts;
  EXPECT_TRUE(ts.set("congo", "t61rcWkgMzE"));
  EXPECT_TRUE(ts.set("rojo", "00f067aa0ba902b7"));
  EXPECT_EQ(ts.toString(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

TEST(TraceState, SetOfSameKeyAndValueStillMovesItLeft) {
  TraceState ts;
  ASSERT_EQ(ts.parse("a=1,b=2"), TraceStateStatus::kValid);
  EXPECT_TRUE(ts.set("b", "2"));
  EXPECT_EQ(ts.toString(), "b=2,a=1");
}

TEST(TraceState, SetOfNewKeyOnFullListDropsTheRightmost) {
  TraceState ts;
  ASSERT_EQ(ts.parse(numbered(1, 32)), TraceStateStatus::kValid);
  EXPECT_TRUE(ts.set("new", "v"));
  EXPECT_EQ(ts.size(), 32u);
  EXPECT_EQ(ts.toString(), "new=v," + numbered(1, 31));
  EXPECT_FALSE(ts.get("k132").has_value());
}

TEST(TraceState, SetOfNewKeyWithThirtyOneMembersDropsNothing) {
  TraceState ts;
  ASSERT_EQ(ts.parse(numbered(1, 31)), TraceStateStatus::kValid);
  EXPECT_TRUE(ts.set("new", "v"));
  EXPECT_EQ(ts.toString(), "new=v," + numbered(1, 31));
}

TEST(TraceState, SetOfExistingKeyOnFullListDropsNothing) {
  TraceState ts;
  ASSERT_EQ(ts.parse(numbered(1, 32)), TraceStateStatus::kValid);
  EXPECT_TRUE(ts.set("k132", "x"));
  EXPECT_EQ(ts.size(), 32u);
  EXPECT_EQ(ts.toString(), "k132=x," + numbered(1, 31));
}

TEST(TraceState, SetRejectsInvalidKeyOrValueWithoutChange) {
  TraceState ts;
  ASSERT_EQ(ts.parse("a=1,b=2"), TraceStateStatus::kValid);
  const std::pair<std::string, std::string> bad[] = {
      {"", "1"},  {"A", "1"},   {"@a", "1"},   {std::string(257, 'k'), "1"},
      {"b", ""},  {"b", "1 "},  {"b", "x=y"},  {"b", "x,y"},
      {"b", "\t"}, {"b", std::string(257, 'v')}, {"a b", "1"}, {"b", "\xff"}};
  for (const auto& [key, value] : bad) {
    EXPECT_FALSE(ts.set(key, value)) << key << "=" << value;
    EXPECT_EQ(ts.toString(), "a=1,b=2");
  }
}

TEST(TraceState, SetAcceptsViewsIntoItself) {
  TraceState ts;
  ASSERT_EQ(ts.parse("a=1,b=2,c=" + std::string(200, 'c')), TraceStateStatus::kValid);
  const TraceState::Member c = ts.member(2);
  EXPECT_TRUE(ts.set(c.key, c.value));
  EXPECT_EQ(ts.toString(), "c=" + std::string(200, 'c') + ",a=1,b=2");
  const TraceState::Member a = ts.member(1);
  EXPECT_TRUE(ts.set("z", a.value));
  EXPECT_EQ(ts.toString(), "z=1,c=" + std::string(200, 'c') + ",a=1,b=2");
}

TEST(TraceState, EraseRemovesOnlyThatKeyAndKeepsOrder) {
  TraceState ts;
  ASSERT_EQ(ts.parse("a=1,b=2,c=3"), TraceStateStatus::kValid);
  EXPECT_TRUE(ts.erase("b"));
  EXPECT_EQ(ts.toString(), "a=1,c=3");
  EXPECT_FALSE(ts.erase("b"));
  EXPECT_TRUE(ts.erase("a"));
  EXPECT_TRUE(ts.erase("c"));
  EXPECT_TRUE(ts.empty());
  EXPECT_EQ(ts.serializedLength(), 0u);
}

TEST(TraceState, ClearEmptiesTheList) {
  TraceState ts;
  ASSERT_EQ(ts.parse("a=1,b=2"), TraceStateStatus::kValid);
  ts.clear();
  EXPECT_TRUE(ts.empty());
  EXPECT_EQ(ts.toString(), "");
  EXPECT_TRUE(ts.set("a", "3"));
  EXPECT_EQ(ts.toString(), "a=3");
}

TEST(TraceState, SerializeAppends) {
  TraceState ts;
  ASSERT_EQ(ts.parse("a=1,b=2"), TraceStateStatus::kValid);
  std::string out = "tracestate: ";
  ts.serialize(out);
  EXPECT_EQ(out, "tracestate: a=1,b=2");
}

// --- Truncation -----------------------------------------------------------------------------

// One member of exactly `length` characters ("key=value").
std::string entry(std::string_view key, size_t length) {
  return std::string(key) + "=" + std::string(length - key.size() - 1, 'v');
}

TEST(TraceState, TruncateKeepsEverythingWithinTheLimit) {
  TraceState ts;
  ASSERT_EQ(ts.parse("a=1,b=2"), TraceStateStatus::kValid);
  EXPECT_EQ(ts.truncate(7), 0u);
  EXPECT_EQ(ts.toString(), "a=1,b=2");
}

TEST(TraceState, TruncateKeepsExactly512) {
  // Four entries of 127 and commas: 4 * 127 + 3 = 511; one more character makes 512.
  const std::string header =
      entry("a", 127) + "," + entry("b", 127) + "," + entry("c", 127) + "," + entry("d", 128);
  ASSERT_EQ(header.size(), 512u);
  TraceState ts;
  ASSERT_EQ(ts.parse(header), TraceStateStatus::kValid);
  EXPECT_EQ(ts.truncate(TraceState::kDefaultMaxLength), 0u);
  EXPECT_EQ(ts.toString(), header);
}

TEST(TraceState, TruncateOnePast512RemovesTheLastEntry) {
  // Three entries of 128 and one of 126 with commas: 513. None is long, so the last one goes.
  const std::string kept = entry("a", 128) + "," + entry("b", 128) + "," + entry("c", 128);
  TraceState ts;
  ASSERT_EQ(ts.parse(kept + "," + entry("d", 126)), TraceStateStatus::kValid);
  ASSERT_EQ(ts.serializedLength(), 513u);
  EXPECT_EQ(ts.truncate(TraceState::kDefaultMaxLength), 1u);
  EXPECT_EQ(ts.toString(), kept);
}

TEST(TraceState, TruncateRemovesLongEntriesFirstFromTheRight) {
  // Short, long, short, long, short: the cut takes the rightmost long entry first.
  TraceState ts;
  const std::string a = entry("a", 20), b = entry("b", 200), c = entry("c", 20),
                    d = entry("d", 129), e = entry("e", 20);
  ASSERT_EQ(ts.parse(a + "," + b + "," + c + "," + d + "," + e), TraceStateStatus::kValid);
  ASSERT_EQ(ts.serializedLength(), 393u);
  EXPECT_EQ(ts.truncate(392), 1u);
  EXPECT_EQ(ts.toString(), a + "," + b + "," + c + "," + e);
  EXPECT_EQ(ts.truncate(63), 1u);
  EXPECT_EQ(ts.toString(), a + "," + c + "," + e);
  EXPECT_EQ(ts.truncate(62), 0u);
  EXPECT_EQ(ts.truncate(61), 1u);  // no long entries left: from the end
  EXPECT_EQ(ts.toString(), a + "," + c);
}

TEST(TraceState, TruncateTreats128AsShortAnd129AsLong) {
  TraceState ts;
  const std::string at = entry("a", 128), past = entry("b", 129), tail = entry("c", 10);
  ASSERT_EQ(ts.parse(at + "," + tail), TraceStateStatus::kValid);
  EXPECT_EQ(ts.truncate(ts.serializedLength() - 1), 1u);
  EXPECT_EQ(ts.toString(), at);  // 128 is not long: the last entry went
  ASSERT_EQ(ts.parse(past + "," + tail), TraceStateStatus::kValid);
  EXPECT_EQ(ts.truncate(ts.serializedLength() - 1), 1u);
  EXPECT_EQ(ts.toString(), tail);  // 129 is long: it went first
}

TEST(TraceState, TruncateRemovesEveryLongEntryBeforeAnyShortOne) {
  TraceState ts;
  const std::string s1 = entry("s1", 100), l1 = entry("l1", 250), s2 = entry("s2", 100),
                    l2 = entry("l2", 200);
  ASSERT_EQ(ts.parse(s1 + "," + l1 + "," + s2 + "," + l2), TraceStateStatus::kValid);
  EXPECT_EQ(ts.truncate(201), 2u);
  EXPECT_EQ(ts.toString(), s1 + "," + s2);
}

TEST(TraceState, TruncateToZeroRemovesEverything) {
  TraceState ts;
  ASSERT_EQ(ts.parse(numbered(1, 5)), TraceStateStatus::kValid);
  EXPECT_EQ(ts.truncate(0), 5u);
  EXPECT_TRUE(ts.empty());
  EXPECT_EQ(ts.truncate(0), 0u);
}

// --- Round trips and allocation -------------------------------------------------------------

TEST(TraceState, RoundTripsThroughToString) {
  for (const std::string& header :
       {std::string("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), numbered(1, 32),
        "foo=" + allValueChars(), kAllKeyChars + "@x=1,t@v= leading", std::string("a=1")}) {
    TraceState x;
    ASSERT_EQ(x.parse(header), TraceStateStatus::kValid) << header;
    TraceState y;
    ASSERT_EQ(y.parse(x.toString()), TraceStateStatus::kValid);
    EXPECT_EQ(x, y);
    EXPECT_EQ(members(x), members(y));
  }
}

TEST(TraceState, CopiesAreIndependent) {
  TraceState a;
  ASSERT_EQ(a.parse("a=1,b=2"), TraceStateStatus::kValid);
  TraceState b = a;
  EXPECT_TRUE(b.set("c", "3"));
  EXPECT_EQ(a.toString(), "a=1,b=2");
  EXPECT_EQ(b.toString(), "c=3,a=1,b=2");
  EXPECT_FALSE(a == b);
}

// --- Randomized properties (fixed seed, bounded) --------------------------------------------

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  size_t below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  // Mostly short, sometimes right at the limit.
  size_t length(size_t max) {
    switch (below(4)) {
      case 0: return max;
      case 1: return 1 + below(max);
      default: return 1 + below(12);
    }
  }

  std::string key() {
    static constexpr std::string_view kFirst = "abcdefghijklmnopqrstuvwxyz0123456789";
    static constexpr std::string_view kRest = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@";
    std::string out(1, kFirst[below(kFirst.size())]);
    const size_t n = length(TraceState::kMaxKeyLength);
    while (out.size() < n) out += kRest[below(kRest.size())];
    return out;
  }

  std::string value() {
    std::string out;
    const size_t n = length(TraceState::kMaxValueLength);
    while (out.size() < n) {
      const char c = static_cast<char>(0x20 + below(0x5f));
      if (c != ',' && c != '=') out += c;
    }
    if (out.back() == ' ') out.back() = '~';
    return out;
  }

  std::string ows() {
    static constexpr std::string_view kOws[] = {"", "", "", " ", "\t", " \t "};
    return std::string(kOws[below(std::size(kOws))]);
  }

  Model list() {
    Model out;
    std::set<std::string> keys;
    const size_t n = below(TraceState::kMaxMembers + 1);
    while (out.size() < n) {
      std::string k = key();
      if (keys.insert(k).second) out.emplace_back(std::move(k), value());
    }
    return out;
  }

  // The list as it may arrive: OWS, empty members, split into several fields at commas.
  Fields encode(const Model& model) {
    Fields fields(1);
    for (const auto& [k, v] : model) {
      if (below(5) == 0) fields.back() += ows() + ",";  // an empty member
      if (below(6) == 0) fields.emplace_back();         // a new header field
      if (!fields.back().empty()) fields.back() += ",";
      fields.back() += ows() + k + "=" + v + ows();
    }
    if (below(4) == 0) fields.emplace_back(ows());
    return fields;
  }

 private:
  std::mt19937 rng_;
};

void expectInvariants(const TraceState& ts) {
  EXPECT_LE(ts.size(), TraceState::kMaxMembers);
  EXPECT_EQ(ts.serializedLength(), ts.toString().size());
  std::set<std::string_view> keys;
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_TRUE(TraceState::isValidKey(ts.member(i).key));
    EXPECT_TRUE(TraceState::isValidValue(ts.member(i).value));
    EXPECT_TRUE(keys.insert(ts.member(i).key).second) << "duplicate " << ts.member(i).key;
  }
}

TEST(TraceStateProperty, ParsesWhatItGeneratesAndRoundTrips) {
  Generator gen(20240611);
  TraceState ts;  // reused, as a connection would
  for (int round = 0; round < 400; ++round) {
    const Model model = gen.list();
    const Fields fields = gen.encode(model);
    const TraceStateStatus status = parseFields(ts, fields);
    ASSERT_EQ(status, model.empty() ? TraceStateStatus::kEmpty : TraceStateStatus::kValid)
        << "round " << round;
    ASSERT_EQ(members(ts), model) << "round " << round;
    ASSERT_EQ(ts.toString(), join(model));
    TraceState again;
    ASSERT_EQ(again.parse(ts.toString()), status);
    ASSERT_EQ(again, ts);
    expectInvariants(ts);
  }
}

Model::iterator findKey(Model& model, std::string_view key) {
  return std::find_if(model.begin(), model.end(), [&](const auto& m) { return m.first == key; });
}

TEST(TraceStateProperty, MutationsMatchAReferenceModel) {
  Generator gen(7);
  for (int round = 0; round < 150; ++round) {
    Model model = gen.list();
    TraceState ts;
    ASSERT_EQ(parseFields(ts, {join(model)}),
              model.empty() ? TraceStateStatus::kEmpty : TraceStateStatus::kValid);
    for (int step = 0; step < 40; ++step) {
      const size_t op = gen.below(4);
      // Half the time an existing key, so updates and erases really happen.
      const std::string key =
          !model.empty() && gen.below(2) == 0 ? model[gen.below(model.size())].first : gen.key();
      if (op <= 1) {
        const std::string value = gen.value();
        if (auto it = findKey(model, key); it != model.end()) {
          model.erase(it);
        } else if (model.size() == TraceState::kMaxMembers) {
          model.pop_back();
        }
        model.insert(model.begin(), {key, value});
        ASSERT_TRUE(ts.set(key, value));
      } else if (op == 2) {
        const auto it = findKey(model, key);
        const bool present = it != model.end();
        if (present) model.erase(it);
        ASSERT_EQ(ts.erase(key), present);
      } else {
        // The rule, applied the slow way: rightmost long entry first, else the last one.
        const size_t limit = gen.below(ts.serializedLength() + 2);
        size_t removed = 0;
        while (join(model).size() > limit) {
          const auto long_entry = std::find_if(model.rbegin(), model.rend(), [](const auto& m) {
            return m.first.size() + 1 + m.second.size() > TraceState::kLongEntryThreshold;
          });
          model.erase(long_entry == model.rend() ? model.end() - 1 : std::next(long_entry).base());
          ++removed;
        }
        ASSERT_EQ(ts.truncate(limit), removed);
        ASSERT_LE(ts.serializedLength(), limit);
      }
      ASSERT_EQ(members(ts), model) << "round " << round << " step " << step;
      expectInvariants(ts);
    }
  }
}

}  // namespace
}  // namespace tracecar::propagation
