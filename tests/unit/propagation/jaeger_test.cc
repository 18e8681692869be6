#include "propagation/jaeger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "propagation/baggage.h"
#include "propagation/ids.h"
#include "unit/propagation/test_carrier.h"

namespace tracecar::propagation {
namespace {

using testing::TestCarrier;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSpan = "00f067aa0ba902b7";

SpanContext makeContext(std::string_view trace_hex, std::string_view span_hex, bool sampled) {
  SpanContext c;
  EXPECT_TRUE(TraceId::fromHex(trace_hex, c.trace_id)) << trace_hex;
  EXPECT_TRUE(SpanId::fromHex(span_hex, c.span_id)) << span_hex;
  c.flags = sampled ? trace_flags::kSampled : 0;
  c.is_remote = true;
  return c;
}

std::string uber(std::string_view trace, std::string_view span, std::string_view parent,
                 std::string_view flags, std::string_view sep = ":") {
  std::string out(trace);
  for (std::string_view p : {span, parent, flags}) {
    out += sep;
    out += p;
  }
  return out;
}

std::string padLeft(std::string_view digits, size_t width) {
  return std::string(width - digits.size(), '0') + std::string(digits);
}

// ---------------------------------------------------------------------------------------------
// uber-trace-id: accepted values

struct ValidCase {
  std::string name;
  std::string value;
  std::string want_trace;  // 32 hex
  std::string want_span;   // 16 hex
  bool want_sampled;
  bool want_debug;
};

class UberTraceIdAccepts : public ::testing::TestWithParam<ValidCase> {};

TEST_P(UberTraceIdAccepts, ExtractsContext) {
  const ValidCase& c = GetParam();
  const JaegerResult r = parseUberTraceId(c.value);
  ASSERT_EQ(r.status, JaegerStatus::kValid) << c.value;
  EXPECT_EQ(r.context.trace_id.toHex(), c.want_trace);
  EXPECT_EQ(r.context.span_id.toHex(), c.want_span);
  EXPECT_EQ(r.context.sampled(), c.want_sampled);
  EXPECT_EQ(r.debug, c.want_debug);
  EXPECT_TRUE(r.context.is_remote);
  // Only the sampled bit: Jaeger's flags say nothing about W3C randomness.
  EXPECT_EQ(r.context.flags & ~trace_flags::kSampled, 0);
}

const std::string kT(kTrace);
const std::string kS(kSpan);
const std::string kT64 = "0000000000000000a3ce929d0e0e4736";

INSTANTIATE_TEST_SUITE_P(
    JaegerClients, UberTraceIdAccepts,
    ::testing::Values(
        ValidCase{"Sampled128Bit", uber(kTrace, kSpan, "0", "1"), kT, kS, true, false},
        ValidCase{"NotSampled", uber(kTrace, kSpan, "0", "0"), kT, kS, false, false},
        ValidCase{"TwoDigitFlags", uber(kTrace, kSpan, "0", "01"), kT, kS, true, false},
        // jaeger-client-go / -java with 64-bit ids: no leading zeros, any length.
        ValidCase{"Client64BitTraceIdIsLeftPadded", uber("a3ce929d0e0e4736", kSpan, "0", "1"),
                  kT64, kS, true, false},
        ValidCase{"ShortIds", "1:2:0:1", "00000000000000000000000000000001", "0000000000000002",
                  true, false},
        ValidCase{"OddLengthIds", uber("abc", "def01", "0", "1"), padLeft("abc", 32),
                  padLeft("def01", 16), true, false},
        ValidCase{"Trace17Digits", uber("1a3ce929d0e0e4736", kSpan, "0", "1"),
                  padLeft("1a3ce929d0e0e4736", 32), kS, true, false},
        ValidCase{"UppercaseIds",
                  uber("4BF92F3577B34DA6A3CE929D0E0E4736", "00F067AA0BA902B7", "0", "1"), kT, kS,
                  true, false},
        ValidCase{"MixedCaseIds", uber("4bF92f3577B34da6a3CE929d0e0e4736", kSpan, "0", "1"), kT,
                  kS, true, false},
        ValidCase{"ParentIsIgnored", uber(kTrace, kSpan, "53995c3f42cd8ad8", "1"), kT, kS, true,
                  false},
        ValidCase{"DebugFlagImpliesSampled", uber(kTrace, kSpan, "0", "2"), kT, kS, true, true},
        ValidCase{"DebugAndSampled", uber(kTrace, kSpan, "0", "3"), kT, kS, true, true},
        // 0x04 is jaeger's "firehose" bit, 0x08+ unassigned: ignored.
        ValidCase{"UnknownFlagBitsIgnored", uber(kTrace, kSpan, "0", "fc"), kT, kS, false, false},
        ValidCase{"AllFlagBits", uber(kTrace, kSpan, "0", "FF"), kT, kS, true, true},
        ValidCase{"UrlEncodedColonsUppercase", uber(kTrace, kSpan, "0", "1", "%3A"), kT, kS, true,
                  false},
        ValidCase{"UrlEncodedColonsLowercase", uber(kTrace, kSpan, "0", "1", "%3a"), kT, kS, true,
                  false},
        ValidCase{"UrlEncodedColonsEitherCase", kT + "%3A" + kS + "%3a0%3A1", kT, kS, true, false},
        ValidCase{"UrlEncodedShortIds", "1%3A2%3A0%3A1", "00000000000000000000000000000001",
                  "0000000000000002", true, false},
        ValidCase{"LeadingZerosWithinLength", uber(kTrace, "0000000000000002", "0000", "00"), kT,
                  "0000000000000002", false, false}),
    [](const auto& test) { return test.param.name; });

// ---------------------------------------------------------------------------------------------
// uber-trace-id: rejected values

struct InvalidCase {
  std::string name;
  std::string value;
};

class UberTraceIdRejects : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(UberTraceIdRejects, IsInvalidWithoutContext) {
  const JaegerResult r = parseUberTraceId(GetParam().value);
  EXPECT_EQ(r.status, JaegerStatus::kInvalid) << GetParam().value;
  EXPECT_FALSE(r.context.isValid());
  EXPECT_EQ(r.context.flags, 0);
  EXPECT_FALSE(r.debug);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, UberTraceIdRejects,
    ::testing::Values(
        InvalidCase{"Empty", ""},
        InvalidCase{"OnlySeparators", ":::"},
        InvalidCase{"ThreeFields", kT + ":" + kS + ":1"},
        InvalidCase{"FiveFields", uber(kTrace, kSpan, "0", "1") + ":1"},
        InvalidCase{"TrailingColon", uber(kTrace, kSpan, "0", "1") + ":"},
        InvalidCase{"EmptyTrace", uber("", kSpan, "0", "1")},
        InvalidCase{"EmptySpan", uber(kTrace, "", "0", "1")},
        InvalidCase{"EmptyParent", uber(kTrace, kSpan, "", "1")},
        InvalidCase{"EmptyFlags", uber(kTrace, kSpan, "0", "")},
        InvalidCase{"TraceId33Digits", uber(kT + "1", kSpan, "0", "1")},
        InvalidCase{"SpanId17Digits", uber(kTrace, kS + "1", "0", "1")},
        InvalidCase{"ParentId17Digits", uber(kTrace, kSpan, "00000000000000001", "1")},
        InvalidCase{"Flags3Digits", uber(kTrace, kSpan, "0", "001")},
        InvalidCase{"ZeroTraceId", uber("0", kSpan, "0", "1")},
        InvalidCase{"ZeroTraceId32", uber("00000000000000000000000000000000", kSpan, "0", "1")},
        InvalidCase{"ZeroSpanId", uber(kTrace, "0", "0", "1")},
        InvalidCase{"ZeroSpanId16", uber(kTrace, "0000000000000000", "0", "1")},
        InvalidCase{"NonHexTrace", uber("4bf92f3577b34da6a3ce929d0e0e473g", kSpan, "0", "1")},
        InvalidCase{"NonHexFlags", uber(kTrace, kSpan, "0", "x")},
        InvalidCase{"HexPrefix", uber("0x1", kSpan, "0", "1")},
        InvalidCase{"Negative", uber("-1", kSpan, "0", "1")},
        InvalidCase{"SpaceAroundField", uber(kTrace, " 1", "0", "1")},
        InvalidCase{"TrailingSpace", uber(kTrace, kSpan, "0", "1") + " "},
        InvalidCase{"DashSeparators", uber(kTrace, kSpan, "0", "1", "-")},
        InvalidCase{"MixedSeparatorsColonFirst", kT + ":" + kS + "%3A0%3A1"},
        InvalidCase{"MixedSeparatorsEncodedFirst", kT + "%3A" + kS + ":0:1"},
        InvalidCase{"EncodedOtherCharacter", uber(kTrace, kSpan, "0", "1", "%3B")},
        InvalidCase{"TruncatedEncoding", kT + "%3A" + kS + "%3A0%3"},
        InvalidCase{"EncodedTooFewFields", kT + "%3A" + kS + "%3A1"},
        InvalidCase{"DoubleEncoded", uber(kTrace, kSpan, "0", "1", "%253A")},
        InvalidCase{"W3CTraceparent", "00-" + kT + "-" + kS + "-01"}),
    [](const auto& test) { return test.param.name; });

// ---------------------------------------------------------------------------------------------
// Extract

TEST(JaegerExtract, ExtractsUberTraceId) {
  const TestCarrier carrier{{"Uber-Trace-Id", uber(kTrace, kSpan, "0", "1")}};
  const JaegerResult r = extractJaeger(carrier);
  ASSERT_EQ(r.status, JaegerStatus::kValid);
  EXPECT_EQ(r.context, makeContext(kTrace, kSpan, true));
}

TEST(JaegerExtract, AbsentWithoutUberTraceId) {
  const TestCarrier carrier{{"uberctx-user", "alice"}, {"traceparent", "x"}};
  const JaegerResult r = extractJaeger(carrier);
  EXPECT_EQ(r.status, JaegerStatus::kAbsent);
  EXPECT_FALSE(r.context.isValid());
}

TEST(JaegerExtract, SeveralUberTraceIdFieldsAreInvalid) {
  const std::string v = uber(kTrace, kSpan, "0", "1");
  const TestCarrier carrier{{"uber-trace-id", v}, {"uber-trace-id", v}};
  const JaegerResult r = extractJaeger(carrier);
  EXPECT_EQ(r.status, JaegerStatus::kInvalid);
  EXPECT_FALSE(r.context.isValid());
}

TEST(JaegerExtract, InvalidValueIsInvalid) {
  const TestCarrier carrier{{"uber-trace-id", "0:1:0:1"}};
  EXPECT_EQ(extractJaeger(carrier).status, JaegerStatus::kInvalid);
}

// ---------------------------------------------------------------------------------------------
// Inject

TEST(JaegerInject, Writes128BitIdsZeroParentAndTwoDigitFlags) {
  TestCarrier carrier;
  injectJaeger(carrier, makeContext(kTrace, kSpan, true));
  EXPECT_EQ(carrier.fields(), (Fields{{"uber-trace-id", kT + ":" + kS + ":0:01"}}));
  injectJaeger(carrier, makeContext(kT64, "0000000000000002", false));
  EXPECT_EQ(carrier.fields(), (Fields{{"uber-trace-id", kT64 + ":0000000000000002:0:00"}}));
}

TEST(JaegerInject, ReplacesExistingFieldsWhateverTheirCase) {
  TestCarrier carrier{{"Uber-Trace-Id", "1:2:0:1"}, {"uber-trace-id", "3:4:0:1"}};
  injectJaeger(carrier, makeContext(kTrace, kSpan, true));
  EXPECT_EQ(carrier.count("uber-trace-id"), 1u);
  EXPECT_EQ(carrier.fields().back().first, "uber-trace-id");
}

TEST(JaegerInject, OnlySampledBitIsWritten) {
  SpanContext c = makeContext(kTrace, kSpan, true);
  c.flags |= trace_flags::kRandom;
  TestCarrier carrier;
  injectJaeger(carrier, c);
  EXPECT_EQ(carrier.get("uber-trace-id"), kT + ":" + kS + ":0:01");
}

TEST(JaegerInject, InvalidContextLeavesCarrierUnchanged) {
  TestCarrier carrier{{"uber-trace-id", "1:2:0:1"}};
  injectJaeger(carrier, SpanContext{});
  EXPECT_EQ(carrier.fields(), (Fields{{"uber-trace-id", "1:2:0:1"}}));
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(JaegerRoundTrip, ExtractOfInjectIsIdentity) {
  for (bool sampled : {false, true}) {
    for (std::string_view trace : {kTrace, std::string_view(kT64)}) {
      const SpanContext c = makeContext(trace, kSpan, sampled);
      TestCarrier carrier;
      injectJaeger(carrier, c);
      const JaegerResult r = extractJaeger(carrier);
      ASSERT_EQ(r.status, JaegerStatus::kValid);
      EXPECT_EQ(r.context, c);
      EXPECT_FALSE(r.debug);
    }
  }
}

// Randomized: random contexts round trip; random ids written the way jaeger clients write them
// (no leading zeros, either case, either separator) parse to the same numbers.
TEST(JaegerProperty, RandomContextsAndClientSpellingsRoundTrip) {
  IdGenerator ids(0x0ba902b7u);
  std::mt19937_64 rng(7);
  auto clientHex = [&](const std::string& hex) {
    std::string s = hex.substr(std::min(hex.find_first_not_of('0'), hex.size() - 1));
    if (rng() % 2) {
      for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    return s;
  };
  for (int i = 0; i < 2000; ++i) {
    SpanContext c;
    c.trace_id = ids.newTraceId();
    // Short ids exercise the left padding.
    const size_t zero_bytes = rng() % 16;
    for (size_t b = 0; b < zero_bytes; ++b) c.trace_id.bytes[b] = 0;
    if (!c.trace_id.isValid()) c.trace_id.bytes[15] = 1;
    c.span_id = SpanId::fromU64(ids.next() >> (rng() % 64));
    if (!c.span_id.isValid()) c.span_id = SpanId::fromU64(1);
    c.flags = static_cast<uint8_t>(rng() % 2);
    c.is_remote = true;

    TestCarrier carrier;
    injectJaeger(carrier, c);
    const JaegerResult r = extractJaeger(carrier);
    ASSERT_EQ(r.status, JaegerStatus::kValid) << carrier.get("uber-trace-id");
    ASSERT_EQ(r.context, c) << carrier.get("uber-trace-id");

    const bool debug = rng() % 4 == 0;
    const std::string flags = debug ? "2" : (c.sampled() ? "1" : "0");
    const std::string value = uber(clientHex(c.trace_id.toHex()), clientHex(c.span_id.toHex()),
                                   "0", flags, rng() % 2 ? ":" : "%3A");
    const JaegerResult client = parseUberTraceId(value);
    ASSERT_EQ(client.status, JaegerStatus::kValid) << value;
    ASSERT_EQ(client.context.trace_id, c.trace_id) << value;
    ASSERT_EQ(client.context.span_id, c.span_id) << value;
    ASSERT_EQ(client.context.sampled(), c.sampled() || debug) << value;
    ASSERT_EQ(client.debug, debug) << value;
  }
}

// ---------------------------------------------------------------------------------------------
// uberctx- baggage

TEST(JaegerBaggage, ExtractsEveryUberctxField) {
  const TestCarrier carrier{{"uberctx-user", "alice"},
                            {"x-other", "1"},
                            {"uberctx-tenant", "acme"},
                            {"uber-trace-id", uber(kTrace, kSpan, "0", "1")}};
  Baggage baggage;
  EXPECT_EQ(extractJaegerBaggage(carrier, baggage), 2u);
  EXPECT_EQ(baggage.size(), 2u);
  EXPECT_EQ(baggage.value("user"), "alice");
  EXPECT_EQ(baggage.value("tenant"), "acme");
}

struct BaggageValueCase {
  std::string name;
  std::string wire;
  std::string want;  // decoded value
};

class JaegerBaggageValue : public ::testing::TestWithParam<BaggageValueCase> {};

TEST_P(JaegerBaggageValue, IsUrlDecoded) {
  const TestCarrier carrier{{"uberctx-k", GetParam().wire}};
  Baggage baggage;
  ASSERT_EQ(extractJaegerBaggage(carrier, baggage), 1u);
  EXPECT_EQ(baggage.value("k"), GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Values, JaegerBaggageValue,
    ::testing::Values(BaggageValueCase{"Plain", "value", "value"},
                      BaggageValueCase{"Empty", "", ""},
                      BaggageValueCase{"EncodedSpaceAndComma", "a%20b%2Cc", "a b,c"},
                      BaggageValueCase{"LowercaseEscapes", "a%2cb%3d", "a,b="},
                      BaggageValueCase{"PlusStaysPlus", "a+b", "a+b"},
                      BaggageValueCase{"EncodedPlus", "a%2Bb", "a+b"},
                      BaggageValueCase{"Utf8", "caf%C3%A9", "caf\xC3\xA9"},
                      BaggageValueCase{"BadEscapeStaysLiteral", "100%zz", "100%zz"},
                      BaggageValueCase{"TruncatedEscapeStaysLiteral", "a%4", "a%4"},
                      BaggageValueCase{"LonePercent", "%", "%"},
                      BaggageValueCase{"RawSpecials", "a,b;c=d", "a,b;c=d"},
                      BaggageValueCase{"EncodedPercent", "50%25", "50%"}),
    [](const auto& test) { return test.param.name; });

TEST(JaegerBaggage, KeysAreCaseInsensitiveAndLowercased) {
  const TestCarrier carrier{{"Uberctx-User-Name", "alice"}, {"UBERCTX-Tier", "gold"}};
  Baggage baggage;
  EXPECT_EQ(extractJaegerBaggage(carrier, baggage), 2u);
  EXPECT_EQ(baggage.value("user-name"), "alice");
  EXPECT_EQ(baggage.value("tier"), "gold");
}

TEST(JaegerBaggage, SkipsEmptyAndInvalidKeysAndOtherHeaders) {
  const TestCarrier carrier{{"uberctx-", "empty-key"},
                            {"uberctx-a@b", "not-a-token"},
                            {"uberctx-a b", "space"},
                            {"uberctx-(x)", "parens"},
                            {"uberctx", "no-dash"},
                            {"uberctxfoo", "no-dash"},
                            {"x-uberctx-foo", "prefixed"},
                            {"uber-trace-id", "1:2:0:1"},
                            {"uberctx-ok", "yes"}};
  Baggage baggage;
  EXPECT_EQ(extractJaegerBaggage(carrier, baggage), 1u);
  ASSERT_EQ(baggage.size(), 1u);
  EXPECT_EQ(baggage.value("ok"), "yes");
}

TEST(JaegerBaggage, LaterFieldWithSameKeyReplacesEarlier) {
  const TestCarrier carrier{{"uberctx-k", "1"}, {"Uberctx-K", "2"}};
  Baggage baggage;
  extractJaegerBaggage(carrier, baggage);
  ASSERT_EQ(baggage.size(), 1u);
  EXPECT_EQ(baggage.value("k"), "2");
}

// Past the member limit each refused key counts once, however many fields carry it.
TEST(JaegerBaggage, KeysRefusedAtTheLimitCountOnceEach) {
  Baggage baggage;
  ASSERT_TRUE(baggage.set("k0", "v"));
  ASSERT_TRUE(baggage.set("k1", "v"));
  const TestCarrier carrier{{"uberctx-new", "a"}, {"uberctx-new", "b"}, {"Uberctx-NEW", "c"},
                            {"uberctx-other", "d"}, {"uberctx-k1", "changed"}};
  size_t dropped = 0;
  EXPECT_EQ(extractJaegerBaggage(carrier, baggage, 2, &dropped), 1u);
  EXPECT_EQ(dropped, 2u);  // "new" and "other"
  EXPECT_EQ(baggage.size(), 2u);
  EXPECT_EQ(baggage.value("k1"), "changed");
  // One key short of the limit: the first new key is taken (its three fields set it three
  // times), the next ones refused.
  Baggage one;
  ASSERT_TRUE(one.set("k0", "v"));
  dropped = 0;
  EXPECT_EQ(extractJaegerBaggage(carrier, one, 2, &dropped), 3u);
  EXPECT_EQ(dropped, 2u);  // "other" and "k1"
  EXPECT_EQ(one.value("new"), "c");
}

TEST(JaegerBaggage, MergesIntoExistingBaggage) {
  Baggage baggage;
  ASSERT_TRUE(baggage.set("w3c", "1"));
  ASSERT_TRUE(baggage.set("k", "old"));
  const TestCarrier carrier{{"uberctx-k", "new"}};
  EXPECT_EQ(extractJaegerBaggage(carrier, baggage), 1u);
  EXPECT_EQ(baggage.size(), 2u);
  EXPECT_EQ(baggage.value("w3c"), "1");
  EXPECT_EQ(baggage.value("k"), "new");
}

// What an extraction leaves of W3C baggage that uberctx- fields also carry.
std::string mergedBaggage(std::string_view w3c, const TestCarrier& carrier,
                          size_t* changed = nullptr) {
  Baggage baggage;
  baggage.parse(w3c);
  const size_t n = extractJaegerBaggage(carrier, baggage);
  if (changed != nullptr) *changed = n;
  return baggage.toString();
}

TEST(JaegerBaggage, SameValueLeavesTheW3CMemberAsItIs) {
  size_t changed = 1;
  EXPECT_EQ(mergedBaggage("a=1,k=v;p1;ttl=30,z=2",
                          {{"uberctx-a", "1"}, {"uberctx-k", "v"}, {"uberctx-z", "2"}}, &changed),
            "a=1,k=v;p1;ttl=30,z=2");
  EXPECT_EQ(changed, 0u);
}

TEST(JaegerBaggage, PartialUberctxSetKeepsOrderAndProperties) {
  const std::string w3c = "a=1,k=v;p1;ttl=30,z=2";
  for (const TestCarrier& carrier :
       {TestCarrier{{"uberctx-a", "1"}}, TestCarrier{{"uberctx-k", "v"}},
        TestCarrier{{"uberctx-z", "2"}, {"uberctx-a", "1"}}}) {
    EXPECT_EQ(mergedBaggage(w3c, carrier), w3c) << carrier.fields()[0].first;
  }
}

TEST(JaegerBaggage, DifferentValueReplacesTheMemberInPlaceWithoutProperties) {
  size_t changed = 0;
  EXPECT_EQ(mergedBaggage("a=1,k=v;p1;ttl=30,z=2", {{"uberctx-k", "new%20value"}}, &changed),
            "a=1,k=new%20value,z=2");
  EXPECT_EQ(changed, 1u);
}

TEST(JaegerBaggage, NewKeysGoAfterTheW3CMembers) {
  EXPECT_EQ(mergedBaggage("a=1,k=v;p", {{"uberctx-new", "x"}, {"uberctx-a", "1"}}),
            "a=1,k=v;p,new=x");
}

TEST(JaegerBaggage, PercentEncodedValueEqualAfterDecodingIsLeftAsIs) {
  const std::string w3c = "k=v%41,e=caf%c3%a9,p=100%25,s=a%20b";
  EXPECT_EQ(mergedBaggage(w3c, {{"uberctx-k", "vA"},
                                {"uberctx-e", "caf%C3%A9"},
                                {"uberctx-p", "100%25"},
                                {"uberctx-s", "a%20b"}}),
            w3c);
  EXPECT_EQ(mergedBaggage(w3c, {{"uberctx-k", "v%41"}, {"uberctx-p", "100%"}}), w3c);
}

// Invalid UTF-8 reads as U+FFFD on both sides; that is what injection sends for it.
TEST(JaegerBaggage, ValuesEqualOnceInvalidUtf8IsReplacedAreLeftAsIs) {
  EXPECT_EQ(mergedBaggage("k=%FF;p", {{"uberctx-k", "%EF%BF%BD"}}), "k=%FF;p");
  EXPECT_EQ(mergedBaggage("k=%EF%BF%BD;p", {{"uberctx-k", "%FF"}}), "k=%EF%BF%BD;p");
}

// Injection lowercases keys (header names have no case), so the field stands for the members
// whose key equals it ignoring case.
TEST(JaegerBaggage, KeyMatchesW3CMembersIgnoringCase) {
  EXPECT_EQ(mergedBaggage("userId=42;p,b=1", {{"uberctx-userid", "42"}}), "userId=42;p,b=1");
  EXPECT_EQ(mergedBaggage("userId=42;p,b=1", {{"Uberctx-UserId", "7"}}), "userId=7,b=1");
}

// Injection sends the value of the last member of a key: the others stay while it matches.
TEST(JaegerBaggage, DuplicateKeysStayWhenTheLastHasTheValue) {
  EXPECT_EQ(mergedBaggage("k=1,a=2,k=3;p", {{"uberctx-k", "3"}}), "k=1,a=2,k=3;p");
  EXPECT_EQ(mergedBaggage("Key=1,key=2", {{"uberctx-key", "2"}}), "Key=1,key=2");
}

TEST(JaegerBaggage, DuplicateKeysBecomeTheLastOneWhenTheValueDiffers) {
  EXPECT_EQ(mergedBaggage("k=1;p,a=2,k=3;q,b=4", {{"uberctx-k", "1"}}), "a=2,k=1,b=4");
  EXPECT_EQ(mergedBaggage("Key=1,a=2,key=2", {{"uberctx-key", "9"}}), "a=2,key=9");
}

TEST(JaegerBaggage, KeyInAnotherCaseIsNotRefusedAtTheLimit) {
  Baggage baggage;
  baggage.parse("K0=v,K1=v");
  const TestCarrier carrier{{"uberctx-k1", "changed"}};
  size_t dropped = 0;
  EXPECT_EQ(extractJaegerBaggage(carrier, baggage, 2, &dropped), 1u);
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(baggage.toString(), "K0=v,K1=changed");
}

TEST(JaegerBaggage, InjectsTheLastValueOfAKeyInAnyCase) {
  Baggage baggage;
  baggage.parse("k=1;p,a=x,K=2");
  TestCarrier carrier;
  injectJaegerBaggage(carrier, baggage);
  EXPECT_EQ(carrier.fields(), (Fields{{"uberctx-a", "x"}, {"uberctx-k", "2"}}));
}

TEST(JaegerBaggage, InjectsOneUrlEncodedFieldPerMember) {
  Baggage baggage;
  ASSERT_TRUE(baggage.set("user", "alice"));
  ASSERT_TRUE(baggage.set("note", "a b,c;d=e+f%~_.-"));
  ASSERT_TRUE(baggage.set("city", "K\xC3\xB6ln"));
  TestCarrier carrier;
  injectJaegerBaggage(carrier, baggage);
  EXPECT_EQ(carrier.fields(), (Fields{{"uberctx-user", "alice"},
                                      {"uberctx-note", "a%20b%2Cc%3Bd%3De%2Bf%25~_.-"},
                                      {"uberctx-city", "K%C3%B6ln"}}));
}

TEST(JaegerBaggage, InjectsReceivedW3CMembersDecoded) {
  Baggage baggage;
  baggage.parse("a=x%20y;prop=1,B=%F0%9F%98%80");
  ASSERT_EQ(baggage.size(), 2u);
  TestCarrier carrier;
  injectJaegerBaggage(carrier, baggage);
  // Properties have no Jaeger form; header names are lowercase.
  EXPECT_EQ(carrier.fields(), (Fields{{"uberctx-a", "x%20y"}, {"uberctx-b", "%F0%9F%98%80"}}));
}

// Found by jaeger_fuzz (it hung in the UTF-8 repair of an early baggage.cc): invalid UTF-8
// in a value comes back as U+FFFD, and the round trip is then stable.
TEST(JaegerBaggage, InvalidUtf8ValueBecomesReplacementCharacter) {
  const TestCarrier carrier{{"uberctx-bad", "%1\xB9\xD4" "FF%zz"}};
  Baggage baggage;
  ASSERT_EQ(extractJaegerBaggage(carrier, baggage), 1u);
  EXPECT_EQ(baggage.value("bad"), "%1\xEF\xBF\xBD\xEF\xBF\xBD" "FF%zz");
  TestCarrier out;
  injectJaegerBaggage(out, baggage);
  EXPECT_EQ(out.get("uberctx-bad"), "%251%EF%BF%BD%EF%BF%BDFF%25zz");
  Baggage back;
  ASSERT_EQ(extractJaegerBaggage(out, back), 1u);
  EXPECT_EQ(back.value("bad"), baggage.value("bad"));
}

TEST(JaegerBaggage, EmptyBaggageInjectsNothing) {
  TestCarrier carrier{{"x", "1"}};
  injectJaegerBaggage(carrier, Baggage{});
  EXPECT_EQ(carrier.fields(), (Fields{{"x", "1"}}));
}

TEST(JaegerBaggage, RoundTripKeepsDecodedValues) {
  std::mt19937_64 rng(99);
  for (int i = 0; i < 300; ++i) {
    Baggage original;
    const size_t members = rng() % 5;
    for (size_t m = 0; m < members; ++m) {
      std::string value;
      const size_t length = rng() % 12;
      // Printable ASCII: every byte survives both encodings unchanged.
      for (size_t j = 0; j < length; ++j) value.push_back(static_cast<char>(0x20 + rng() % 95));
      ASSERT_TRUE(original.set("k" + std::to_string(m), value));
    }
    TestCarrier carrier;
    injectJaegerBaggage(carrier, original);
    Baggage back;
    EXPECT_EQ(extractJaegerBaggage(carrier, back), members);
    ASSERT_EQ(back.size(), original.size());
    for (size_t m = 0; m < members; ++m) {
      const std::string key = "k" + std::to_string(m);
      EXPECT_EQ(back.value(key), original.value(key)) << key;
    }
  }
}

TEST(JaegerStatusNames, AreStable) {
  EXPECT_EQ(toString(JaegerStatus::kValid), "valid");
  EXPECT_EQ(toString(JaegerStatus::kAbsent), "absent");
  EXPECT_EQ(toString(JaegerStatus::kInvalid), "invalid");
}

}  // namespace
}  // namespace tracecar::propagation
