#include "propagation/b3.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "propagation/ids.h"
#include "unit/propagation/test_carrier.h"

namespace tracecar::propagation {
namespace {

using testing::TestCarrier;

constexpr std::string_view kTrace = "80f198ee56343ba864fe8b2a57d3eff7";
constexpr std::string_view kTrace64 = "a3ce929d0e0e4736";
constexpr std::string_view kSpan = "e457b5a2e4d86bd1";
constexpr std::string_view kParent = "05e3ac9a4f6e3b90";

std::string join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) {
    if (!out.empty()) out += '-';
    out += p;
  }
  return out;
}

SpanContext makeContext(std::string_view trace_hex, std::string_view span_hex, bool sampled) {
  SpanContext c;
  EXPECT_TRUE(TraceId::fromHex(trace_hex, c.trace_id)) << trace_hex;
  EXPECT_TRUE(SpanId::fromHex(span_hex, c.span_id)) << span_hex;
  c.flags = sampled ? trace_flags::kSampled : 0;
  c.is_remote = true;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Single header: accepted values

struct ValidCase {
  std::string name;
  std::string value;
  std::string want_trace;  // 32 hex
  bool want_sampled;
  bool want_debug;
};

class B3SingleAccepts : public ::testing::TestWithParam<ValidCase> {};

TEST_P(B3SingleAccepts, ExtractsContext) {
  const ValidCase& c = GetParam();
  const B3Result r = parseB3Single(c.value);
  ASSERT_EQ(r.status, B3Status::kValid) << c.value;
  EXPECT_EQ(r.context.trace_id.toHex(), c.want_trace);
  EXPECT_EQ(r.context.span_id.toHex(), kSpan);
  EXPECT_EQ(r.context.sampled(), c.want_sampled);
  EXPECT_EQ(r.debug, c.want_debug);
  EXPECT_TRUE(r.context.is_remote);
  // B3 says nothing about randomness: only the sampled bit may be set.
  EXPECT_EQ(r.context.flags & ~trace_flags::kSampled, 0);
}

const std::string kPadded64 = "0000000000000000" + std::string(kTrace64);

INSTANTIATE_TEST_SUITE_P(
    ZipkinAndBrave, B3SingleAccepts,
    ::testing::Values(
        ValidCase{"TraceSpan", join({kTrace, kSpan}), std::string(kTrace), false, false},
        ValidCase{"Sampled", join({kTrace, kSpan, "1"}), std::string(kTrace), true, false},
        ValidCase{"NotSampled", join({kTrace, kSpan, "0"}), std::string(kTrace), false, false},
        ValidCase{"DebugFlagImpliesSampled", join({kTrace, kSpan, "d"}), std::string(kTrace),
                  true, true},
        ValidCase{"WithParent", join({kTrace, kSpan, "1", kParent}), std::string(kTrace), true,
                  false},
        ValidCase{"DebugWithParent", join({kTrace, kSpan, "d", kParent}), std::string(kTrace),
                  true, true},
        ValidCase{"ZeroParentIsOnlyCheckedForForm",
                  join({kTrace, kSpan, "0", "0000000000000000"}), std::string(kTrace), false,
                  false},
        // Brave with traceId128Bit=false emits 64-bit trace ids.
        ValidCase{"Brave64BitTraceIdIsLeftPadded", join({kTrace64, kSpan, "1"}), kPadded64, true,
                  false},
        ValidCase{"Brave64BitTraceIdWithParent", join({kTrace64, kSpan, "1", kParent}), kPadded64,
                  true, false},
        ValidCase{"PaddedTraceIdStaysAsIs", join({kPadded64, kSpan, "1"}), kPadded64, true,
                  false},
        ValidCase{"TraceIdHighBitsOnly",
                  join({"00000000000000010000000000000000", kSpan}),
                  "00000000000000010000000000000000", false, false}),
    [](const auto& test) { return test.param.name; });

TEST(B3Single, AbsentSamplingStateIsDeferredAndNotSampled) {
  const B3Result r = parseB3Single(join({kTrace, kSpan}));
  ASSERT_EQ(r.status, B3Status::kValid);
  EXPECT_EQ(r.context.flags, 0);
  EXPECT_FALSE(r.debug);
}

// ---------------------------------------------------------------------------------------------
// Single header: sampling decision only

TEST(B3Single, SamplingStateAloneIsADecisionWithoutContext) {
  for (auto [value, sampled, debug] :
       {std::tuple{"0", false, false}, {"1", true, false}, {"d", true, true}}) {
    const B3Result r = parseB3Single(value);
    ASSERT_EQ(r.status, B3Status::kSamplingOnly) << value;
    EXPECT_FALSE(r.context.isValid()) << value;
    EXPECT_EQ(r.context.sampled(), sampled) << value;
    EXPECT_EQ(r.debug, debug) << value;
  }
}

// ---------------------------------------------------------------------------------------------
// Single header: every invalid layout

struct InvalidCase {
  std::string name;
  std::string value;
};

class B3SingleRejects : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(B3SingleRejects, IsInvalidWithoutContext) {
  const B3Result r = parseB3Single(GetParam().value);
  EXPECT_EQ(r.status, B3Status::kInvalid) << GetParam().value;
  EXPECT_FALSE(r.context.isValid());
  EXPECT_FALSE(r.debug);
}

const std::string k31(kTrace.substr(1));
const std::string k33 = std::string(kTrace) + "a";
const std::string k15(kSpan.substr(1));
const std::string k17 = std::string(kSpan) + "a";

INSTANTIATE_TEST_SUITE_P(
    Layouts, B3SingleRejects,
    ::testing::Values(
        InvalidCase{"Empty", ""},
        InvalidCase{"SamplingTrue", "true"},
        InvalidCase{"SamplingTwo", "2"},
        InvalidCase{"SamplingUppercaseD", "D"},
        InvalidCase{"SamplingTwoChars", "01"},
        InvalidCase{"TraceOnly", std::string(kTrace)},
        InvalidCase{"TraceId31", join({k31, kSpan, "1"})},
        InvalidCase{"TraceId33", join({k33, kSpan, "1"})},
        InvalidCase{"TraceId15", join({kTrace64.substr(1), kSpan, "1"})},
        InvalidCase{"TraceId17", join({std::string(kTrace64) + "a", kSpan, "1"})},
        InvalidCase{"TraceId24", join({kTrace.substr(0, 24), kSpan, "1"})},
        InvalidCase{"SpanId15", join({kTrace, k15, "1"})},
        InvalidCase{"SpanId17", join({kTrace, k17, "1"})},
        InvalidCase{"SpanId32", join({kTrace, kTrace, "1"})},
        InvalidCase{"ParentId15", join({kTrace, kSpan, "1", kParent.substr(1)})},
        InvalidCase{"ParentId17", join({kTrace, kSpan, "1", std::string(kParent) + "0"})},
        InvalidCase{"ParentIdUppercase", join({kTrace, kSpan, "1", "05E3AC9A4F6E3B90"})},
        InvalidCase{"UppercaseTraceId", join({"80F198EE56343BA864FE8B2A57D3EFF7", kSpan, "1"})},
        InvalidCase{"UppercaseSpanId", join({kTrace, "E457B5A2E4D86BD1", "1"})},
        InvalidCase{"NonHexTraceId", join({"g0f198ee56343ba864fe8b2a57d3eff7", kSpan, "1"})},
        InvalidCase{"ZeroTraceId", join({"00000000000000000000000000000000", kSpan, "1"})},
        InvalidCase{"ZeroTraceId64", join({"0000000000000000", kSpan, "1"})},
        InvalidCase{"ZeroSpanId", join({kTrace, "0000000000000000", "1"})},
        InvalidCase{"SamplingStateTwo", join({kTrace, kSpan, "2"})},
        InvalidCase{"SamplingStateTrue", join({kTrace, kSpan, "true"})},
        InvalidCase{"SamplingStateUppercaseD", join({kTrace, kSpan, "D"})},
        InvalidCase{"SamplingStateTwoDigits", join({kTrace, kSpan, "01"})},
        InvalidCase{"ParentInPlaceOfSamplingState", join({kTrace, kSpan, kParent})},
        InvalidCase{"ExtraField", join({kTrace, kSpan, "1", kParent, "1"})},
        InvalidCase{"EmptyTrace", join({"", kSpan, "1"})},
        InvalidCase{"EmptySpan", join({kTrace, "", "1"})},
        InvalidCase{"EmptySamplingState", join({kTrace, kSpan, ""})},
        InvalidCase{"EmptySamplingStateWithParent", join({kTrace, kSpan, "", kParent})},
        InvalidCase{"EmptyParent", join({kTrace, kSpan, "1", ""})},
        InvalidCase{"TrailingDash", join({kTrace, kSpan}) + "-"},
        InvalidCase{"LeadingDash", "-" + join({kTrace, kSpan, "1"})},
        InvalidCase{"DoubleDash", std::string(kTrace) + "--" + std::string(kSpan)},
        InvalidCase{"LeadingSpace", " " + join({kTrace, kSpan, "1"})},
        InvalidCase{"TrailingSpace", join({kTrace, kSpan, "1"}) + " "},
        InvalidCase{"UnderscoreSeparator", std::string(kTrace) + "_" + std::string(kSpan)},
        InvalidCase{"OnlyDashes", "---"},
        InvalidCase{"NulInside", join({kTrace, kSpan}) + std::string(1, '\0')}),
    [](const auto& test) { return test.param.name; });

// ---------------------------------------------------------------------------------------------
// Multi headers

TEST(B3Multi, ExtractsBraveHeaders) {
  // Brave writes mixed-case names; the carrier matches them case-insensitively.
  const TestCarrier carrier{{"X-B3-TraceId", std::string(kTrace)},
                            {"X-B3-SpanId", std::string(kSpan)},
                            {"X-B3-ParentSpanId", std::string(kParent)},
                            {"X-B3-Sampled", "1"}};
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, B3Status::kValid);
  EXPECT_EQ(r.context, makeContext(kTrace, kSpan, true));
  EXPECT_FALSE(r.debug);
}

struct MultiCase {
  std::string name;
  std::vector<std::pair<std::string, std::string>> fields;
  B3Status want;
  bool want_sampled = false;
  bool want_debug = false;
};

class B3MultiExtract : public ::testing::TestWithParam<MultiCase> {};

TEST_P(B3MultiExtract, GivesStatusAndDecision) {
  const MultiCase& c = GetParam();
  TestCarrier carrier;
  for (const auto& [n, v] : c.fields) carrier.add(n, v);
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, c.want) << toString(r.status);
  if (c.want == B3Status::kValid) {
    EXPECT_TRUE(r.context.isValid());
    EXPECT_TRUE(r.context.is_remote);
  } else {
    EXPECT_FALSE(r.context.isValid());
  }
  if (c.want == B3Status::kInvalid || c.want == B3Status::kAbsent) {
    EXPECT_EQ(r.context.flags, 0);
    return;
  }
  EXPECT_EQ(r.context.flags & ~trace_flags::kSampled, 0);
  EXPECT_EQ(r.context.sampled(), c.want_sampled);
  EXPECT_EQ(r.debug, c.want_debug);
}

using Fields = std::vector<std::pair<std::string, std::string>>;
const std::string kT(kTrace);
const std::string kS(kSpan);

INSTANTIATE_TEST_SUITE_P(
    Headers, B3MultiExtract,
    ::testing::Values(
        MultiCase{"NoHeaders", {}, B3Status::kAbsent},
        MultiCase{"UnrelatedHeaders", {{"x-b3", "1"}, {"b3-sampled", "1"}}, B3Status::kAbsent},
        MultiCase{"IdsOnlyAreDeferred", {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}},
                  B3Status::kValid, false},
        MultiCase{"SampledOne", {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-sampled", "1"}},
                  B3Status::kValid, true},
        MultiCase{"SampledZero",
                  {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-sampled", "0"}},
                  B3Status::kValid, false},
        MultiCase{"SampledTrue",
                  {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-sampled", "true"}},
                  B3Status::kValid, true},
        MultiCase{"SampledFalse",
                  {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-sampled", "false"}},
                  B3Status::kValid, false},
        MultiCase{"SampledTrueAnyCase",
                  {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-sampled", "True"}},
                  B3Status::kValid, true},
        MultiCase{"DebugFlagImpliesSampled",
                  {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-flags", "1"}},
                  B3Status::kValid, true, true},
        MultiCase{"DebugFlagWinsOverSampledZero",
                  {{"x-b3-traceid", kT},
                   {"x-b3-spanid", kS},
                   {"x-b3-sampled", "0"},
                   {"x-b3-flags", "1"}},
                  B3Status::kValid, true, true},
        // py_zipkin sends "X-B3-Flags: 0" on every request.
        MultiCase{"FlagsZeroIsNotDebug",
                  {{"x-b3-traceid", kT},
                   {"x-b3-spanid", kS},
                   {"x-b3-sampled", "1"},
                   {"x-b3-flags", "0"}},
                  B3Status::kValid, true, false},
        MultiCase{"Brave64BitTraceId",
                  {{"x-b3-traceid", std::string(kTrace64)}, {"x-b3-spanid", kS},
                   {"x-b3-sampled", "1"}},
                  B3Status::kValid, true},
        MultiCase{"ParentSpanIdIsIgnoredEvenWhenMalformed",
                  {{"x-b3-traceid", kT},
                   {"x-b3-spanid", kS},
                   {"x-b3-parentspanid", "not-an-id"},
                   {"x-b3-parentspanid", "twice"}},
                  B3Status::kValid, false},
        MultiCase{"SampledZeroAloneDeniesTracing", {{"x-b3-sampled", "0"}},
                  B3Status::kSamplingOnly, false},
        MultiCase{"SampledOneAloneAcceptsTracing", {{"x-b3-sampled", "1"}},
                  B3Status::kSamplingOnly, true},
        MultiCase{"DebugAloneAcceptsTracing", {{"x-b3-flags", "1"}}, B3Status::kSamplingOnly,
                  true, true},
        MultiCase{"FlagsZeroAloneIsNoDecision", {{"x-b3-flags", "0"}}, B3Status::kAbsent},
        MultiCase{"ParentAloneIsAbsent", {{"x-b3-parentspanid", std::string(kParent)}},
                  B3Status::kAbsent},
        MultiCase{"TraceIdWithoutSpanId", {{"x-b3-traceid", kT}, {"x-b3-sampled", "1"}},
                  B3Status::kInvalid},
        MultiCase{"SpanIdWithoutTraceId", {{"x-b3-spanid", kS}}, B3Status::kInvalid},
        MultiCase{"TraceId15", {{"x-b3-traceid", kT.substr(0, 15)}, {"x-b3-spanid", kS}},
                  B3Status::kInvalid},
        MultiCase{"TraceId17", {{"x-b3-traceid", kT.substr(0, 17)}, {"x-b3-spanid", kS}},
                  B3Status::kInvalid},
        MultiCase{"TraceId31", {{"x-b3-traceid", kT.substr(0, 31)}, {"x-b3-spanid", kS}},
                  B3Status::kInvalid},
        MultiCase{"TraceId33", {{"x-b3-traceid", kT + "0"}, {"x-b3-spanid", kS}},
                  B3Status::kInvalid},
        MultiCase{"SpanId15", {{"x-b3-traceid", kT}, {"x-b3-spanid", kS.substr(1)}},
                  B3Status::kInvalid},
        MultiCase{"SpanId17", {{"x-b3-traceid", kT}, {"x-b3-spanid", kS + "1"}},
                  B3Status::kInvalid},
        MultiCase{"UppercaseTraceId",
                  {{"x-b3-traceid", "80F198EE56343BA864FE8B2A57D3EFF7"}, {"x-b3-spanid", kS}},
                  B3Status::kInvalid},
        MultiCase{"ZeroTraceId",
                  {{"x-b3-traceid", "0000000000000000"}, {"x-b3-spanid", kS}},
                  B3Status::kInvalid},
        MultiCase{"ZeroSpanId", {{"x-b3-traceid", kT}, {"x-b3-spanid", "0000000000000000"}},
                  B3Status::kInvalid},
        MultiCase{"EmptyTraceId", {{"x-b3-traceid", ""}, {"x-b3-spanid", kS}},
                  B3Status::kInvalid},
        MultiCase{"SampledTwo", {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-sampled", "2"}},
                  B3Status::kInvalid},
        MultiCase{"SampledD", {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-sampled", "d"}},
                  B3Status::kInvalid},
        MultiCase{"SampledEmpty", {{"x-b3-sampled", ""}}, B3Status::kInvalid},
        MultiCase{"FlagsTwo", {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-flags", "2"}},
                  B3Status::kInvalid},
        MultiCase{"TwoTraceIdFields",
                  {{"x-b3-traceid", kT}, {"x-b3-traceid", kT}, {"x-b3-spanid", kS}},
                  B3Status::kInvalid},
        MultiCase{"TwoSpanIdFields",
                  {{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"X-B3-SpanId", kS}},
                  B3Status::kInvalid},
        MultiCase{"TwoSampledFields",
                  {{"x-b3-traceid", kT},
                   {"x-b3-spanid", kS},
                   {"x-b3-sampled", "1"},
                   {"x-b3-sampled", "1"}},
                  B3Status::kInvalid},
        MultiCase{"TwoFlagsFields",
                  {{"x-b3-traceid", kT},
                   {"x-b3-spanid", kS},
                   {"x-b3-flags", "1"},
                   {"x-b3-flags", "1"}},
                  B3Status::kInvalid}),
    [](const auto& test) { return test.param.name; });

// ---------------------------------------------------------------------------------------------
// Single versus multi

TEST(B3Extract, SingleHeaderWinsOverMulti) {
  const TestCarrier carrier{{"x-b3-traceid", std::string(kTrace64)},
                            {"x-b3-spanid", std::string(kParent)},
                            {"x-b3-sampled", "0"},
                            {"b3", join({kTrace, kSpan, "1"})}};
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, B3Status::kValid);
  EXPECT_EQ(r.context, makeContext(kTrace, kSpan, true));
}

TEST(B3Extract, SingleHeaderWinsOverInvalidMulti) {
  const TestCarrier carrier{{"b3", join({kTrace, kSpan, "0"})}, {"x-b3-traceid", "bad"}};
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, B3Status::kValid);
  EXPECT_EQ(r.context, makeContext(kTrace, kSpan, false));
}

TEST(B3Extract, FallsBackToMultiWhenSingleIsInvalid) {
  const TestCarrier carrier{{"b3", "garbage"},
                            {"x-b3-traceid", std::string(kTrace)},
                            {"x-b3-spanid", std::string(kSpan)},
                            {"x-b3-sampled", "1"}};
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, B3Status::kValid);
  EXPECT_EQ(r.context, makeContext(kTrace, kSpan, true));
}

TEST(B3Extract, MultiContextWinsOverSingleSamplingDecision) {
  const TestCarrier carrier{{"b3", "0"},
                            {"x-b3-traceid", std::string(kTrace)},
                            {"x-b3-spanid", std::string(kSpan)},
                            {"x-b3-sampled", "1"}};
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, B3Status::kValid);
  EXPECT_TRUE(r.context.sampled());
}

TEST(B3Extract, SingleSamplingDecisionWinsOverInvalidMulti) {
  const TestCarrier carrier{{"b3", "0"}, {"x-b3-traceid", std::string(kTrace)}};
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, B3Status::kSamplingOnly);
  EXPECT_FALSE(r.context.sampled());
}

TEST(B3Extract, InvalidSingleWithoutMultiIsInvalid) {
  const TestCarrier carrier{{"b3", join({kTrace, kSpan, "true"})}};
  EXPECT_EQ(extractB3(carrier).status, B3Status::kInvalid);
}

TEST(B3Extract, InvalidSingleAndInvalidMultiIsInvalid) {
  const TestCarrier carrier{{"b3", "x"}, {"x-b3-spanid", std::string(kSpan)}};
  EXPECT_EQ(extractB3(carrier).status, B3Status::kInvalid);
}

TEST(B3Extract, SeveralSingleFieldsAreInvalid) {
  const std::string value = join({kTrace, kSpan, "1"});
  const TestCarrier carrier{{"b3", value}, {"B3", value}};
  const B3Result r = extractB3(carrier);
  EXPECT_EQ(r.status, B3Status::kInvalid);
  EXPECT_FALSE(r.context.isValid());
}

TEST(B3Extract, SeveralSingleFieldsFallBackToMulti) {
  const std::string value = join({kTrace, kSpan, "1"});
  const TestCarrier carrier{{"b3", value},
                            {"b3", value},
                            {"x-b3-traceid", std::string(kTrace64)},
                            {"x-b3-spanid", std::string(kSpan)}};
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, B3Status::kValid);
  EXPECT_EQ(r.context.trace_id.toHex(), kPadded64);
}

TEST(B3Extract, SamplingOnlyFromSingleHeader) {
  const TestCarrier carrier{{"b3", "d"}};
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, B3Status::kSamplingOnly);
  EXPECT_TRUE(r.debug);
  EXPECT_TRUE(r.context.sampled());
  EXPECT_FALSE(r.context.isValid());
}

TEST(B3Extract, UppercaseHeaderNameMatches) {
  const TestCarrier carrier{{"B3", join({kTrace, kSpan, "1", kParent})}};
  EXPECT_EQ(extractB3(carrier).status, B3Status::kValid);
}

TEST(B3Extract, AbsentWhenNoB3Headers) {
  const TestCarrier carrier{{"traceparent", "00-" + kT + "-" + kS + "-01"}};
  const B3Result r = extractB3(carrier);
  EXPECT_EQ(r.status, B3Status::kAbsent);
  EXPECT_FALSE(r.context.isValid());
}

// ---------------------------------------------------------------------------------------------
// Inject

TEST(B3Inject, SingleWritesTraceSpanAndSampled) {
  TestCarrier carrier;
  injectB3(carrier, makeContext(kTrace, kSpan, true), B3InjectEncoding::kSingle);
  EXPECT_EQ(carrier.fields(), (Fields{{"b3", join({kTrace, kSpan, "1"})}}));
  injectB3(carrier, makeContext(kTrace, kSpan, false), B3InjectEncoding::kSingle);
  EXPECT_EQ(carrier.fields(), (Fields{{"b3", join({kTrace, kSpan, "0"})}}));
}

TEST(B3Inject, SingleAlwaysWrites128BitTraceId) {
  SpanContext c = makeContext(kPadded64, kSpan, true);
  TestCarrier carrier;
  injectB3(carrier, c, B3InjectEncoding::kSingle);
  EXPECT_EQ(carrier.get("b3"), join({kPadded64, kSpan, "1"}));
}

TEST(B3Inject, SingleRemovesMultiHeaders) {
  TestCarrier carrier{{"X-B3-TraceId", "x"},  {"x-b3-spanid", "x"}, {"x-b3-sampled", "1"},
                      {"x-b3-flags", "1"},    {"X-B3-ParentSpanId", "x"},
                      {"b3", "old"},          {"other", "kept"}};
  injectB3(carrier, makeContext(kTrace, kSpan, false), B3InjectEncoding::kSingle);
  EXPECT_EQ(carrier.fields(),
            (Fields{{"other", "kept"}, {"b3", join({kTrace, kSpan, "0"})}}));
}

TEST(B3Inject, MultiWritesLowercaseHeaders) {
  TestCarrier carrier;
  injectB3(carrier, makeContext(kTrace, kSpan, true), B3InjectEncoding::kMulti);
  EXPECT_EQ(carrier.fields(), (Fields{{"x-b3-traceid", kT},
                                      {"x-b3-spanid", kS},
                                      {"x-b3-sampled", "1"}}));
  injectB3(carrier, makeContext(kPadded64, kSpan, false), B3InjectEncoding::kMulti);
  EXPECT_EQ(carrier.fields(), (Fields{{"x-b3-traceid", kPadded64},
                                      {"x-b3-spanid", kS},
                                      {"x-b3-sampled", "0"}}));
}

TEST(B3Inject, MultiRemovesSingleHeaderAndFlags) {
  TestCarrier carrier{{"B3", "old"}, {"x-b3-flags", "1"}, {"other", "kept"}};
  injectB3(carrier, makeContext(kTrace, kSpan, false), B3InjectEncoding::kMulti);
  EXPECT_EQ(carrier.count("b3"), 0u);
  EXPECT_EQ(carrier.count("x-b3-flags"), 0u);
  EXPECT_EQ(carrier.get("other"), "kept");
  EXPECT_EQ(carrier.get("x-b3-sampled"), "0");
}

TEST(B3Inject, NeverInjectsParentSpanId) {
  for (B3InjectEncoding encoding : {B3InjectEncoding::kSingle, B3InjectEncoding::kMulti}) {
    TestCarrier carrier{{"x-b3-parentspanid", std::string(kParent)}};
    injectB3(carrier, makeContext(kTrace, kSpan, true), encoding);
    EXPECT_EQ(carrier.count("x-b3-parentspanid"), 0u);
    for (const auto& [name, value] : carrier.fields()) {
      EXPECT_EQ(value.find(kParent), std::string::npos) << name;
    }
  }
}

TEST(B3Inject, InvalidContextLeavesCarrierUnchanged) {
  const Fields before{{"b3", "1"}, {"x-b3-sampled", "1"}};
  for (B3InjectEncoding encoding : {B3InjectEncoding::kSingle, B3InjectEncoding::kMulti}) {
    TestCarrier carrier{{"b3", "1"}, {"x-b3-sampled", "1"}};
    injectB3(carrier, SpanContext{}, encoding);
    EXPECT_EQ(carrier.fields(), before);
  }
}

// The OpenTelemetry B3 rules: a debug flag received is propagated with the next requests.
TEST(B3Inject, DebugIsSentAsDebugNotSampled) {
  TestCarrier single{{"x-b3-sampled", "1"}};
  injectB3(single, makeContext(kTrace, kSpan, true), B3InjectEncoding::kSingle, true);
  EXPECT_EQ(single.fields(), (Fields{{"b3", join({kTrace, kSpan, "d"})}}));

  TestCarrier multi{{"x-b3-sampled", "1"}};
  injectB3(multi, makeContext(kTrace, kSpan, true), B3InjectEncoding::kMulti, true);
  EXPECT_EQ(multi.fields(),
            (Fields{{"x-b3-traceid", kT}, {"x-b3-spanid", kS}, {"x-b3-flags", "1"}}));

  for (B3InjectEncoding encoding : {B3InjectEncoding::kSingle, B3InjectEncoding::kMulti}) {
    TestCarrier carrier;
    injectB3(carrier, makeContext(kTrace, kSpan, true), encoding, true);
    const B3Result r = extractB3(carrier);
    ASSERT_EQ(r.status, B3Status::kValid);
    EXPECT_TRUE(r.debug);
    EXPECT_TRUE(r.context.sampled());
  }
}

// Debug implies sampled: a context that is not sampled (a sampler said no) sends no debug.
TEST(B3Inject, DebugOnAnUnsampledContextIsNotSent) {
  TestCarrier single;
  injectB3(single, makeContext(kTrace, kSpan, false), B3InjectEncoding::kSingle, true);
  EXPECT_EQ(single.get("b3"), join({kTrace, kSpan, "0"}));
  TestCarrier multi{{"x-b3-flags", "1"}};
  injectB3(multi, makeContext(kTrace, kSpan, false), B3InjectEncoding::kMulti, true);
  EXPECT_EQ(multi.count("x-b3-flags"), 0u);
  EXPECT_EQ(multi.get("x-b3-sampled"), "0");
}

TEST(B3Inject, RandomFlagIsNotPropagated) {
  SpanContext c = makeContext(kTrace, kSpan, true);
  c.flags |= trace_flags::kRandom;
  TestCarrier carrier;
  injectB3(carrier, c, B3InjectEncoding::kSingle);
  const B3Result r = extractB3(carrier);
  ASSERT_EQ(r.status, B3Status::kValid);
  EXPECT_EQ(r.context.flags, trace_flags::kSampled);
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(B3RoundTrip, ExtractOfInjectIsIdentityForBothEncodings) {
  for (B3InjectEncoding encoding : {B3InjectEncoding::kSingle, B3InjectEncoding::kMulti}) {
    for (bool sampled : {false, true}) {
      for (std::string_view trace : {kTrace, std::string_view(kPadded64)}) {
        const SpanContext c = makeContext(trace, kSpan, sampled);
        TestCarrier carrier;
        injectB3(carrier, c, encoding);
        const B3Result r = extractB3(carrier);
        ASSERT_EQ(r.status, B3Status::kValid);
        EXPECT_EQ(r.context, c);
        EXPECT_FALSE(r.debug);
      }
    }
  }
}

TEST(B3RoundTrip, SwitchingEncodingLeavesOnlyTheNewOne) {
  const SpanContext c = makeContext(kTrace, kSpan, true);
  TestCarrier carrier;
  injectB3(carrier, c, B3InjectEncoding::kMulti);
  injectB3(carrier, c, B3InjectEncoding::kSingle);
  EXPECT_EQ(carrier.fields().size(), 1u);
  injectB3(carrier, c, B3InjectEncoding::kMulti);
  EXPECT_EQ(carrier.fields().size(), 3u);
  EXPECT_EQ(extractB3(carrier).context, c);
}

// Randomized: random contexts survive both encodings; random single-character mutations of a
// valid header either still parse to a well-formed context or are rejected, never crash.
TEST(B3Property, RandomContextsAndMutationsBehave) {
  IdGenerator ids(0xb3b3b3b3u);
  std::mt19937_64 rng(20240601);
  const std::string alphabet = "0123456789abcdefABCDEFdg-_ x\t";
  for (int i = 0; i < 2000; ++i) {
    SpanContext c;
    c.trace_id = ids.newTraceId();
    if (rng() % 4 == 0) {
      for (size_t b = 0; b < 8; ++b) c.trace_id.bytes[b] = 0;  // a 64-bit trace id
      if (!c.trace_id.isValid()) c.trace_id.bytes[15] = 1;
    }
    c.span_id = ids.newSpanId();
    c.flags = static_cast<uint8_t>(rng() % 2);
    c.is_remote = true;
    const auto encoding = rng() % 2 ? B3InjectEncoding::kSingle : B3InjectEncoding::kMulti;
    TestCarrier carrier;
    injectB3(carrier, c, encoding);
    const B3Result r = extractB3(carrier);
    ASSERT_EQ(r.status, B3Status::kValid) << i;
    ASSERT_EQ(r.context, c) << i;

    std::string value = join({c.trace_id.toHex(), c.span_id.toHex(), "1", kParent});
    const size_t mutations = 1 + rng() % 3;
    for (size_t m = 0; m < mutations; ++m) {
      const size_t pos = rng() % value.size();
      const char ch = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: value[pos] = ch; break;
        case 1: value.insert(value.begin() + static_cast<std::ptrdiff_t>(pos), ch); break;
        default: value.erase(pos, 1); break;
      }
    }
    const B3Result p = parseB3Single(value);
    if (p.status == B3Status::kValid) {
      ASSERT_TRUE(p.context.isValid()) << value;
      ASSERT_TRUE(p.context.is_remote) << value;
      ASSERT_TRUE(!p.debug || p.context.sampled()) << value;
      // A valid value re-injects to the canonical form of the same context.
      TestCarrier again;
      injectB3(again, p.context, B3InjectEncoding::kSingle);
      ASSERT_EQ(parseB3Single(again.get("b3")).context, p.context) << value;
    } else {
      ASSERT_FALSE(p.context.isValid()) << value;
    }
  }
}

TEST(B3StatusNames, AreStable) {
  EXPECT_EQ(toString(B3Status::kValid), "valid");
  EXPECT_EQ(toString(B3Status::kAbsent), "absent");
  EXPECT_EQ(toString(B3Status::kInvalid), "invalid");
  EXPECT_EQ(toString(B3Status::kSamplingOnly), "sampling_only");
}

}  // namespace
}  // namespace tracecar::propagation
