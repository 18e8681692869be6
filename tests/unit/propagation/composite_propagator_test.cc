#include "propagation/composite_propagator.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "propagation/trace_context_propagator.h"
#include "test_carrier.h"

namespace tracecar::propagation {
namespace {

using testing::TestCarrier;

constexpr std::string_view kTp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr std::string_view kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kParent = "00f067aa0ba902b7";

CompositePropagator makePropagator(std::string_view names) {
  PropagationConfig config;
  auto kinds = parsePropagators(names);
  EXPECT_TRUE(kinds.ok()) << kinds.status();
  config.propagators = *kinds;
  return CompositePropagator(config);
}

SpanContext child(const ExtractedContext& ctx) {
  IdGenerator ids(1);
  return ctx.span_context.isValid() ? startChildSpan(ctx.span_context, ids, ctx.span_context.sampled())
                                    : startRootSpan(ids, true);
}

// ---- OTEL_PROPAGATORS ----

TEST(Propagators, DefaultIsTracecontextAndBaggage) {
  auto kinds = parsePropagators("");
  ASSERT_TRUE(kinds.ok());
  EXPECT_EQ(*kinds, (std::vector{PropagatorKind::kTraceContext, PropagatorKind::kBaggage}));
  EXPECT_EQ(PropagationConfig{}.propagators, *kinds);
}

TEST(Propagators, ParsesListWithWhitespaceAndCollapsesDuplicates) {
  auto kinds = parsePropagators(" b3 ,tracecontext,\tjaeger , b3multi,b3");
  ASSERT_TRUE(kinds.ok());
  EXPECT_EQ(*kinds, (std::vector{PropagatorKind::kB3, PropagatorKind::kTraceContext,
                                 PropagatorKind::kJaeger, PropagatorKind::kB3Multi}));
}

TEST(Propagators, NoneMeansNoPropagation) {
  auto kinds = parsePropagators("none");
  ASSERT_TRUE(kinds.ok());
  EXPECT_TRUE(kinds->empty());
  CompositePropagator p(PropagationConfig{*kinds, 512, {}});
  TestCarrier in{{"traceparent", std::string(kTp)}, {"baggage", "a=1"}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_FALSE(ctx.span_context.isValid());
  EXPECT_TRUE(ctx.baggage.empty());
}

TEST(Propagators, UnknownNameIsAnErrorThatNamesIt) {
  auto kinds = parsePropagators("tracecontext,xray");
  ASSERT_FALSE(kinds.ok());
  EXPECT_NE(std::string(kinds.status().message()).find("\"xray\""), std::string::npos)
      << kinds.status();
  EXPECT_NE(std::string(kinds.status().message()).find("OTEL_PROPAGATORS"), std::string::npos);
}

TEST(Propagators, NamesAreCaseInsensitive) {
  auto kinds = parsePropagators("TraceContext,B3Multi,NONE");
  ASSERT_FALSE(kinds.ok());  // none cannot be combined, whatever its case
  kinds = parsePropagators("TraceContext, Baggage ,B3Multi");
  ASSERT_TRUE(kinds.ok()) << kinds.status();
  EXPECT_EQ(*kinds, (std::vector{PropagatorKind::kTraceContext, PropagatorKind::kBaggage,
                                 PropagatorKind::kB3Multi}));
}

TEST(Propagators, EmptyNameErrorQuotesTheWholeValue) {
  auto kinds = parsePropagators("b3,");
  ASSERT_FALSE(kinds.ok());
  EXPECT_NE(std::string(kinds.status().message()).find("\"b3,\""), std::string::npos)
      << kinds.status();
}

TEST(Propagators, EmptyNameInListIsAnError) {
  EXPECT_FALSE(parsePropagators("tracecontext,,baggage").ok());
  EXPECT_FALSE(parsePropagators("tracecontext,").ok());
}

TEST(Propagators, NoneCannotBeCombined) {
  EXPECT_FALSE(parsePropagators("none,b3").ok());
  EXPECT_FALSE(parsePropagators("b3, none").ok());
  EXPECT_FALSE(parsePropagatorList("jaeger,none,xray").ok());
}

TEST(Propagators, NoneTwiceOrBesideAnUnknownNameIsStillNone) {
  auto list = parsePropagatorList("none, NONE");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->none);
  EXPECT_TRUE(list->kinds.empty());
  list = parsePropagatorList("none,xray");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->none);
  EXPECT_TRUE(list->kinds.empty());
  EXPECT_EQ(list->unknown, std::vector<std::string>{"xray"});
  // The strict form (the file) names the unknown one.
  auto kinds = parsePropagators("none,xray");
  ASSERT_FALSE(kinds.ok());
  EXPECT_NE(std::string(kinds.status().message()).find("\"xray\""), std::string::npos);
  list = parsePropagatorList("b3");
  ASSERT_TRUE(list.ok());
  EXPECT_FALSE(list->none);
}

TEST(PropagationConfig, RejectsLimitsBelowTheW3CFloor) {
  PropagationConfig c;
  EXPECT_TRUE(c.validate().ok());
  c.tracestate_max_length = 511;
  EXPECT_FALSE(c.validate().ok());
  c = PropagationConfig{};
  c.baggage_limits.max_members = 63;
  EXPECT_FALSE(c.validate().ok());
  c = PropagationConfig{};
  c.baggage_limits.max_bytes = 8191;
  EXPECT_FALSE(c.validate().ok());
  c.baggage_limits.max_bytes = 16384;
  c.baggage_limits.max_members = 128;
  c.tracestate_max_length = 1024;
  EXPECT_TRUE(c.validate().ok());
}

// ---- W3C trace context through a carrier ----

TEST(TraceContext, ContinuesValidTraceparent) {
  auto p = makePropagator("tracecontext,baggage");
  TestCarrier in{{"TraceParent", std::string(kTp)}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  ASSERT_TRUE(ctx.span_context.isValid());
  EXPECT_TRUE(ctx.span_context.is_remote);
  EXPECT_TRUE(ctx.span_context.sampled());
  EXPECT_EQ(ctx.span_context.trace_id.toHex(), kTrace);
  EXPECT_EQ(ctx.span_context.span_id.toHex(), kParent);
  EXPECT_EQ(ctx.report.traceparent, TraceparentStatus::kValid);
  EXPECT_EQ(ctx.report.source, PropagatorKind::kTraceContext);
}

TEST(TraceContext, InjectsChildWithOurSpanAsParentId) {
  auto p = makePropagator("tracecontext");
  TestCarrier in{{"traceparent", std::string(kTp)}, {"tracestate", "congo=t61rcWkgMzE"}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  const SpanContext ours = child(ctx);
  p.inject(in, ours, ctx.trace_state, ctx.baggage);
  EXPECT_EQ(in.count("traceparent"), 1u);
  EXPECT_EQ(in.get("traceparent"), "00-" + std::string(kTrace) + "-" + ours.span_id.toHex() + "-01");
  EXPECT_EQ(in.get("tracestate"), "congo=t61rcWkgMzE");
}

TEST(TraceContext, AcceptsOwsAroundTraceparent) {
  auto p = makePropagator("tracecontext");
  for (std::string v : {" " + std::string(kTp), "\t" + std::string(kTp), std::string(kTp) + " \t"}) {
    TestCarrier in{{"traceparent", v}};
    ExtractedContext ctx;
    p.extract(in, ctx);
    EXPECT_TRUE(ctx.span_context.isValid()) << v;
  }
}

TEST(TraceContext, DuplicatedTraceparentRestarts) {
  auto p = makePropagator("tracecontext");
  TestCarrier in{{"traceparent", std::string(kTp)},
                 {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01"},
                 {"tracestate", "foo=1"}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_FALSE(ctx.span_context.isValid());
  EXPECT_EQ(ctx.report.traceparent, TraceparentStatus::kMultipleFields);
  EXPECT_EQ(ctx.report.tracestate, TraceStateStatus::kNotParsed);
  EXPECT_TRUE(ctx.trace_state.empty());
}

TEST(TraceContext, RestartDropsIncomingTracestateOnInject) {
  auto p = makePropagator("tracecontext");
  TestCarrier in{{"traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},
                 {"tracestate", "foo=1"}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  ASSERT_FALSE(ctx.span_context.isValid());
  EXPECT_EQ(ctx.report.tracestate, TraceStateStatus::kNotParsed);
  const SpanContext root = child(ctx);
  p.inject(in, root, ctx.trace_state, ctx.baggage);
  EXPECT_EQ(in.count("tracestate"), 0u);
  EXPECT_EQ(in.get("traceparent").substr(3, 32), root.trace_id.toHex());
  EXPECT_NE(root.trace_id.toHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceContext, NewRootSetsRandomFlag) {
  IdGenerator ids(3);
  EXPECT_EQ(startRootSpan(ids, true).flags, trace_flags::kSampled | trace_flags::kRandom);
  EXPECT_EQ(startRootSpan(ids, false).flags, trace_flags::kRandom);
}

TEST(TraceContext, ChildKeepsIncomingRandomFlag) {
  IdGenerator ids(3);
  SpanContext parent;
  parent.trace_id = ids.newTraceId();
  parent.span_id = ids.newSpanId();
  parent.flags = 0;
  EXPECT_EQ(startChildSpan(parent, ids, true).flags, trace_flags::kSampled);
  parent.flags = trace_flags::kRandom;
  const SpanContext c = startChildSpan(parent, ids, false);
  EXPECT_EQ(c.flags, trace_flags::kRandom);
  EXPECT_EQ(c.trace_id, parent.trace_id);
  EXPECT_NE(c.span_id, parent.span_id);
}

TEST(TraceContext, CombinesSeveralTracestateFields) {
  auto p = makePropagator("tracecontext");
  TestCarrier in{{"traceparent", std::string(kTp)}, {"tracestate", "foo=1"}, {"tracestate", ""},
                 {"tracestate", "bar=2"}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_EQ(ctx.report.tracestate, TraceStateStatus::kValid);
  EXPECT_EQ(ctx.trace_state.toString(), "foo=1,bar=2");
}

TEST(TraceContext, InvalidTracestateIsDiscardedButTraceparentKept) {
  auto p = makePropagator("tracecontext");
  TestCarrier in{{"traceparent", std::string(kTp)}, {"tracestate", "foo=1"}, {"tracestate", "foo=2"}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_TRUE(ctx.span_context.isValid());
  EXPECT_EQ(ctx.report.tracestate, TraceStateStatus::kDuplicateKey);
  EXPECT_TRUE(ctx.trace_state.empty());
  p.inject(in, child(ctx), ctx.trace_state, ctx.baggage);
  EXPECT_EQ(in.count("tracestate"), 0u);
}

TEST(TraceContext, EmptyTracestateIsAcceptedAndNotSent) {
  auto p = makePropagator("tracecontext");
  TestCarrier in{{"traceparent", std::string(kTp)}, {"tracestate", ""}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_TRUE(ctx.span_context.isValid());
  EXPECT_EQ(ctx.report.tracestate, TraceStateStatus::kEmpty);
  p.inject(in, child(ctx), ctx.trace_state, ctx.baggage);
  EXPECT_EQ(in.count("tracestate"), 0u);
}

std::string member(char key, size_t total_length) {  // "k=vvvv..." of exactly total_length
  return std::string(1, key) + "=" + std::string(total_length - 2, 'v');
}

TEST(TraceContext, TracestateAtTheLengthLimitIsKept) {
  auto p = makePropagator("tracecontext");
  // 4 members of 127 chars + 3 commas + ... = exactly 512.
  std::string ts = member('a', 127) + "," + member('b', 127) + "," + member('c', 127) + "," +
                   member('d', 128);
  ASSERT_EQ(ts.size(), 512u);
  TestCarrier in{{"traceparent", std::string(kTp)}, {"tracestate", ts}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_EQ(ctx.report.tracestate_entries_truncated, 0u);
  EXPECT_EQ(ctx.trace_state.toString(), ts);
}

TEST(TraceContext, TracestateOnePastTheLimitLosesLongEntriesFirst) {
  auto p = makePropagator("tracecontext");
  std::string ts = member('a', 127) + "," + member('b', 129) + "," + member('c', 127) + "," +
                   member('d', 127);
  ASSERT_EQ(ts.size(), 513u);
  TestCarrier in{{"traceparent", std::string(kTp)}, {"tracestate", ts}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_EQ(ctx.report.tracestate_length, 513u);
  EXPECT_EQ(ctx.report.tracestate_entries_truncated, 1u);
  EXPECT_EQ(ctx.trace_state.toString(),
            member('a', 127) + "," + member('c', 127) + "," + member('d', 127));
}

TEST(TraceContext, ConfiguredTracestateLengthIsHonoured) {
  PropagationConfig config{{PropagatorKind::kTraceContext}, 1024, {}};
  CompositePropagator p(config);
  std::string ts = member('a', 127) + "," + member('b', 129) + "," + member('c', 127) + "," +
                   member('d', 127);
  TestCarrier in{{"traceparent", std::string(kTp)}, {"tracestate", ts}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_EQ(ctx.trace_state.toString(), ts);
}

// ---- baggage through a carrier ----

TEST(BaggageHeader, PassesThroughByteExact) {
  auto p = makePropagator("tracecontext,baggage");
  const std::string bg = "userId=alice,serverNode=DF%2028,isProduction=false;ttl=3,k=%41";
  TestCarrier in{{"traceparent", std::string(kTp)}, {"baggage", bg}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_EQ(ctx.report.baggage.kept, 4u);
  p.inject(in, child(ctx), ctx.trace_state, ctx.baggage);
  EXPECT_EQ(in.get("baggage"), bg);
}

TEST(BaggageHeader, CombinesFieldsAndRemovesEmpty) {
  auto p = makePropagator("baggage");
  TestCarrier in{{"baggage", "a=1"}, {"baggage", "b=2"}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_EQ(ctx.baggage.toString(), "a=1,b=2");
  TestCarrier none{{"baggage", ""}};
  p.extract(none, ctx);
  p.inject(none, child(ctx), ctx.trace_state, ctx.baggage);
  EXPECT_EQ(none.count("baggage"), 0u);
}

TEST(BaggageHeader, ReportsMembersDroppedOverTheMemberLimit) {
  auto p = makePropagator("baggage");
  std::string bg;
  for (int i = 0; i < 65; ++i) bg += (i ? ",k" : "k") + std::to_string(i) + "=v";
  TestCarrier in{{"baggage", bg}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_EQ(ctx.baggage.size(), 64u);
  EXPECT_EQ(ctx.report.baggage.dropped_member_limit, 1u);
  EXPECT_FALSE(ctx.baggage.value("k64").has_value());
}

TEST(BaggageHeader, NotExtractedWhenNotConfigured) {
  auto p = makePropagator("tracecontext");
  TestCarrier in{{"traceparent", std::string(kTp)}, {"baggage", "a=1"}};
  ExtractedContext ctx;
  p.extract(in, ctx);
  EXPECT_TRUE(ctx.baggage.empty());
}

// ---- composite behaviour ----

constexpr std::string_view kB3Trace = "80f198ee56343ba864fe8b2a57d3eff7";
constexpr std::string_view kB3Span = "e457b5a2e4d86bd1";

TEST(Composite, LaterPropagatorWinsAndDropsTracestate) {
  TestCarrier in{{"traceparent", std::string(kTp)}, {"tracestate", "foo=1"},
                 {"b3", std::string(kB3Trace) + "-" + std::string(kB3Span) + "-1"}};
  ExtractedContext ctx;
  makePropagator("tracecontext,b3").extract(in, ctx);
  EXPECT_EQ(ctx.span_context.trace_id.toHex(), kB3Trace);
  EXPECT_EQ(ctx.report.source, PropagatorKind::kB3);
  EXPECT_TRUE(ctx.trace_state.empty());

  makePropagator("b3,tracecontext").extract(in, ctx);
  EXPECT_EQ(ctx.span_context.trace_id.toHex(), kTrace);
  EXPECT_EQ(ctx.report.source, PropagatorKind::kTraceContext);
  EXPECT_EQ(ctx.trace_state.toString(), "foo=1");
}

TEST(Composite, InvalidLaterPropagatorDoesNotOverrideValidEarlierOne) {
  TestCarrier in{{"traceparent", std::string(kTp)}, {"b3", "not-valid"}};
  ExtractedContext ctx;
  makePropagator("tracecontext,b3").extract(in, ctx);
  EXPECT_EQ(ctx.span_context.trace_id.toHex(), kTrace);
  EXPECT_EQ(ctx.report.b3, B3Status::kInvalid);
}

TEST(Composite, InjectsEveryConfiguredFormat) {
  TestCarrier in{{"traceparent", std::string(kTp)}, {"baggage", "a=1"}};
  auto p = makePropagator("tracecontext,baggage,b3,jaeger");
  ExtractedContext ctx;
  p.extract(in, ctx);
  const SpanContext ours = child(ctx);
  TestCarrier out;
  p.inject(out, ours, ctx.trace_state, ctx.baggage);
  EXPECT_EQ(out.get("b3"), std::string(kTrace) + "-" + ours.span_id.toHex() + "-1");
  EXPECT_EQ(out.get("uber-trace-id"), std::string(kTrace) + ":" + ours.span_id.toHex() + ":0:01");
  EXPECT_EQ(out.get("uberctx-a"), "1");
  EXPECT_EQ(out.get("baggage"), "a=1");
  EXPECT_EQ(out.count("x-b3-parentspanid"), 0u);
}

// B3's debug flag is kept with the context it came with and sent on; a context another
// propagator replaces it with does not have it.
TEST(Composite, B3DebugGoesOnWithItsContext) {
  const std::string b3 = std::string(kB3Trace) + "-" + std::string(kB3Span) + "-d";
  auto p = makePropagator("tracecontext,b3");
  ExtractedContext ctx;
  TestCarrier in{{"b3", b3}};
  p.extract(in, ctx);
  EXPECT_TRUE(ctx.b3_debug);
  const SpanContext ours = child(ctx);
  TestCarrier out;
  p.inject(out, ours, ctx.trace_state, ctx.baggage, ctx.b3_debug);
  EXPECT_EQ(out.get("b3"), std::string(kB3Trace) + "-" + ours.span_id.toHex() + "-d");
  EXPECT_EQ(out.get("traceparent").substr(53), "01");

  // The same context in traceparent first: B3 adds its debug flag to it.
  TestCarrier same{{"traceparent", "00-" + std::string(kB3Trace) + "-" + std::string(kB3Span) +
                                       "-01"},
                   {"b3", b3}};
  p.extract(same, ctx);
  EXPECT_TRUE(ctx.b3_debug);
  EXPECT_EQ(ctx.report.source, PropagatorKind::kTraceContext);

  // Another context wins over B3's: no debug.
  TestCarrier other{{"b3", b3}, {"traceparent", std::string(kTp)}};
  makePropagator("b3,tracecontext").extract(other, ctx);
  EXPECT_EQ(ctx.span_context.trace_id.toHex(), kTrace);
  EXPECT_FALSE(ctx.b3_debug);

  // Extracting again starts clean.
  TestCarrier plain{{"b3", std::string(kB3Trace) + "-" + std::string(kB3Span) + "-1"}};
  p.extract(plain, ctx);
  EXPECT_FALSE(ctx.b3_debug);
}

TEST(Composite, B3MultiInjectsMultiHeaders) {
  TestCarrier in{{"traceparent", std::string(kTp)}};
  auto p = makePropagator("tracecontext,b3multi");
  ExtractedContext ctx;
  p.extract(in, ctx);
  const SpanContext ours = child(ctx);
  p.inject(in, ours, ctx.trace_state, ctx.baggage);
  EXPECT_EQ(in.get("x-b3-traceid"), kTrace);
  EXPECT_EQ(in.get("x-b3-spanid"), ours.span_id.toHex());
  EXPECT_EQ(in.get("x-b3-sampled"), "1");
  EXPECT_EQ(in.count("b3"), 0u);
}

TEST(Composite, B3AndB3MultiTogetherInjectBothEncodings) {
  for (std::string_view names : {"b3,b3multi", "b3multi,b3"}) {
    TestCarrier in{{"traceparent", std::string(kTp)}};
    auto p = makePropagator(std::string("tracecontext,") + std::string(names));
    ExtractedContext ctx;
    p.extract(in, ctx);
    const SpanContext ours = child(ctx);
    p.inject(in, ours, ctx.trace_state, ctx.baggage);
    EXPECT_EQ(in.get("b3"), std::string(kTrace) + "-" + ours.span_id.toHex() + "-1") << names;
    EXPECT_EQ(in.get("x-b3-traceid"), kTrace) << names;
    EXPECT_EQ(in.get("x-b3-spanid"), ours.span_id.toHex()) << names;
    EXPECT_EQ(in.get("x-b3-sampled"), "1") << names;
  }
}

TEST(Composite, JaegerBaggageMergesWithW3CBaggage) {
  TestCarrier in{{"uber-trace-id", std::string(kB3Trace) + ":" + std::string(kB3Span) + ":0:1"},
                 {"baggage", "a=1"},
                 {"uberctx-b", "two%20words"}};
  ExtractedContext ctx;
  makePropagator("baggage,jaeger").extract(in, ctx);
  EXPECT_EQ(ctx.report.source, PropagatorKind::kJaeger);
  EXPECT_EQ(ctx.baggage.value("a"), "1");
  EXPECT_EQ(ctx.baggage.value("b"), "two words");
}

TEST(Composite, JaegerBaggageMergesWhateverTheOrderOfTheList) {
  TestCarrier in{{"baggage", "a=1,b=w3c"}, {"uberctx-b", "jaeger"}, {"uberctx-c", "3"}};
  for (std::string_view names : {"baggage,jaeger", "jaeger,baggage"}) {
    ExtractedContext ctx;
    makePropagator(names).extract(in, ctx);
    EXPECT_EQ(ctx.baggage.value("a"), "1") << names;
    EXPECT_EQ(ctx.baggage.value("b"), "jaeger") << names;  // uberctx- overrides a W3C key
    EXPECT_EQ(ctx.baggage.value("c"), "3") << names;
    EXPECT_EQ(ctx.baggage.toString(), "a=1,b=jaeger,c=3") << names;
  }
}

// client -> tracecar A -> tracecar B -> app, both sidecars injecting every member in both
// formats: B reads each member twice and must forward the baggage A forwarded.
TEST(Composite, BaggageInBothFormatsCrossesTwoHopsByteExact) {
  const std::string_view inputs[] = {
      "a=1,k=v;p1;ttl=30,z=2",
      "userId=alice,serverNode=DF%2028,isProduction=false;ttl=3,k=%41",
      "k=v%41;p = 1 ; q,e=caf%C3%A9,pct=100%25,bad=%FF",
      "k=1;p,a=2,k=3;q,K=4",
  };
  for (std::string_view names : {"tracecontext,baggage,jaeger", "jaeger,tracecontext,baggage"}) {
    const auto p = makePropagator(names);
    for (std::string_view baggage : inputs) {
      TestCarrier request{{"traceparent", std::string(kTp)}, {"baggage", std::string(baggage)}};
      for (const char* hop : {"A", "B"}) {
        ExtractedContext ctx;
        p.extract(request, ctx);
        EXPECT_EQ(ctx.report.baggage.dropped(), 0u) << names << " " << hop << " " << baggage;
        p.inject(request, child(ctx), ctx.trace_state, ctx.baggage);
        EXPECT_EQ(request.get("baggage"), baggage) << names << " " << hop;
        EXPECT_EQ(request.count("baggage"), 1u) << names << " " << hop;
      }
      EXPECT_GT(request.count("uberctx-k"), 0u) << names << " " << baggage;
    }
  }
}

// Property: the same two hops, with random keys that differ only in case, duplicates, escapes
// of either case (some not UTF-8) and properties.
TEST(Composite, RandomBaggageInBothFormatsCrossesTwoHopsByteExact) {
  std::mt19937 rng(17);
  const std::string_view keys[] = {"a", "A", "k", "userId", "userid", "USERID"};
  const std::string_view pieces[] = {"v", "1", "%41", "%c3%a9", "%C3%A9", "%FF", "%25", "%zz",
                                     "%", "+", "~", "%2C", "%20"};
  const std::string_view properties[] = {"", ";p", ";ttl=30", ";p ; q=1"};
  const auto p = makePropagator("tracecontext,baggage,jaeger");
  for (int i = 0; i < 500; ++i) {
    std::string baggage;
    for (size_t m = 0, members = 1 + rng() % 8; m < members; ++m) {
      if (m > 0) baggage += ',';
      baggage += keys[rng() % std::size(keys)];
      baggage += '=';
      for (size_t n = rng() % 4; n > 0; --n) baggage += pieces[rng() % std::size(pieces)];
      baggage += properties[rng() % std::size(properties)];
    }
    TestCarrier request{{"traceparent", std::string(kTp)}, {"baggage", baggage}};
    for (const char* hop : {"A", "B"}) {
      ExtractedContext ctx;
      p.extract(request, ctx);
      p.inject(request, child(ctx), ctx.trace_state, ctx.baggage);
      ASSERT_EQ(request.get("baggage"), baggage) << hop;
    }
  }
}

TEST(Composite, PartialUberctxFieldsLeaveW3CBaggageAsIs) {
  const std::string bg = "a=1,k=v;p1;ttl=30,z=2";
  TestCarrier in{{"baggage", bg}, {"uberctx-z", "2"}, {"uberctx-k", "v"}};
  ExtractedContext ctx;
  makePropagator("baggage,jaeger").extract(in, ctx);
  EXPECT_EQ(ctx.baggage.toString(), bg);
  EXPECT_EQ(ctx.report.baggage.kept, 3u);
}

TEST(Composite, ChangedUberctxValueReplacesTheW3CMemberInPlace) {
  TestCarrier in{
      {"baggage", "a=1,k=v;p1;ttl=30,z=2"}, {"uberctx-k", "changed"}, {"uberctx-a", "1"}};
  auto p = makePropagator("tracecontext,baggage,jaeger");
  ExtractedContext ctx;
  p.extract(in, ctx);
  TestCarrier out;
  p.inject(out, child(ctx), ctx.trace_state, ctx.baggage);
  EXPECT_EQ(out.get("baggage"), "a=1,k=changed,z=2");
  EXPECT_EQ(out.get("uberctx-k"), "changed");
}

// A value grown by a uberctx- field can push the baggage past its byte limit: whole members go
// from the end, as for any baggage.
TEST(Composite, ChangedUberctxValueIsHeldToTheByteLimit) {
  const std::string bg = "k=v," + std::string("z=") + std::string(8186, 'z');
  ASSERT_EQ(bg.size(), BaggageLimits::kMinBytes);
  TestCarrier in{{"baggage", bg}, {"uberctx-k", "vv"}};
  ExtractedContext ctx;
  makePropagator("baggage,jaeger").extract(in, ctx);
  ASSERT_EQ(ctx.baggage.size(), 1u);  // not toString(): a failure would print 8 KB
  EXPECT_EQ(ctx.baggage.member(0).key, "k");
  EXPECT_EQ(ctx.baggage.member(0).raw_value, "vv");
  EXPECT_EQ(ctx.report.baggage.dropped_byte_limit, 1u);
  EXPECT_EQ(ctx.report.baggage.kept, 1u);
}

TEST(Composite, ManyUberctxFieldsAreBoundedAndCounted) {
  TestCarrier in;
  for (int i = 0; i < 8000; ++i) in.set("uberctx-k" + std::to_string(i), "v");
  ExtractedContext ctx;
  makePropagator("jaeger").extract(in, ctx);
  EXPECT_EQ(ctx.baggage.size(), BaggageLimits::kMinMembers);
  EXPECT_EQ(ctx.report.baggage.dropped_member_limit, 8000u - BaggageLimits::kMinMembers);
  EXPECT_EQ(ctx.baggage.value("k0"), "v");
  EXPECT_FALSE(ctx.baggage.value("k7999").has_value());
}

TEST(Composite, SameIdsFromB3KeepTheW3CTracestateAndRandomFlag) {
  const std::string tp = "00-" + std::string(kTrace) + "-" + std::string(kParent) + "-03";
  TestCarrier in{{"traceparent", tp},
                 {"tracestate", "vendor=x"},
                 {"b3", std::string(kTrace) + "-" + std::string(kParent) + "-1"}};
  ExtractedContext ctx;
  makePropagator("tracecontext,b3").extract(in, ctx);
  EXPECT_EQ(ctx.report.source, PropagatorKind::kTraceContext);
  EXPECT_EQ(ctx.trace_state.toString(), "vendor=x");
  EXPECT_EQ(ctx.span_context.flags, trace_flags::kSampled | trace_flags::kRandom);
}

TEST(Composite, InvalidContextInjectsNoTraceparent) {
  TestCarrier out;
  TraceState state;
  injectTraceContext(out, SpanContext{}, state);
  EXPECT_EQ(out.count("traceparent"), 0u);
  EXPECT_EQ(out.count("tracestate"), 0u);
}

// Property: for every propagator and random contexts, extract(inject(x)) gives x back.
TEST(Composite, RandomInjectExtractRoundTrips) {
  IdGenerator ids(99);
  std::mt19937 rng(5);
  for (std::string_view names : {"tracecontext", "b3", "b3multi", "jaeger"}) {
    auto p = makePropagator(names);
    for (int i = 0; i < 2000; ++i) {
      SpanContext c;
      c.trace_id = ids.newTraceId();
      c.span_id = ids.newSpanId();
      c.flags = (rng() & 1) ? trace_flags::kSampled : 0;
      TestCarrier carrier;
      p.inject(carrier, c, TraceState{}, Baggage{});
      ExtractedContext ctx;
      p.extract(carrier, ctx);
      ASSERT_TRUE(ctx.span_context.isValid()) << names;
      EXPECT_EQ(ctx.span_context.trace_id, c.trace_id) << names;
      EXPECT_EQ(ctx.span_context.span_id, c.span_id) << names;
      EXPECT_EQ(ctx.span_context.sampled(), c.sampled()) << names;
      EXPECT_TRUE(ctx.span_context.is_remote);
    }
  }
}

}  // namespace
}  // namespace tracecar::propagation
