// Counts every heap allocation of this test program to prove the hot paths allocate nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>

#include "propagation/b3.h"
#include "propagation/composite_propagator.h"
#include "propagation/jaeger.h"
#include "propagation/tracestate.h"
#include "test_carrier.h"
#include "propagation/ids.h"
#include "propagation/traceparent.h"

#include "support/counting_allocator.h"

namespace tracecar::propagation {
namespace {

// A carrier over fixed storage: it allocates nothing itself.
class FixedCarrier {
 public:
  void forEach(std::string_view name, FieldValueVisitor visit) const {
    if (name == "traceparent" && has_traceparent_) visit(std::string_view(tp_, tp_len_));
  }
  void forEachField(FieldVisitor visit) const {
    if (has_traceparent_) visit("traceparent", std::string_view(tp_, tp_len_));
  }
  void set(std::string_view name, std::string_view value) {
    if (name == "traceparent" && value.size() <= sizeof(tp_)) {
      value.copy(tp_, value.size());
      tp_len_ = value.size();
      has_traceparent_ = true;
    }
  }
  void remove(std::string_view name) {
    if (name == "traceparent") has_traceparent_ = false;
  }

 private:
  char tp_[64] = {};
  size_t tp_len_ = 0;
  bool has_traceparent_ = false;
};

size_t allocationsDuring(auto&& f) {
  const size_t before = g_allocations.load();
  f();
  return g_allocations.load() - before;
}

int* volatile g_sink = nullptr;  // keeps the compiler from eliding the allocation below

TEST(Allocation, CounterSeesAllocations) {
  EXPECT_GE(allocationsDuring([] {
              g_sink = new int(1);
              delete g_sink;
            }),
            1u);
}

TEST(Allocation, TraceparentParseAndFormatAllocateNothing) {
  const std::string_view in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const size_t n = allocationsDuring([&] {
    for (int i = 0; i < 1000; ++i) {
      Traceparent tp;
      ASSERT_EQ(parseTraceparent(in, tp), TraceparentStatus::kValid);
      char out[kTraceparentLength];
      formatTraceparent(tp.trace_id, tp.parent_id, tp.flags, out);
      ASSERT_EQ(std::string_view(out, sizeof(out)), in);
    }
  });
  EXPECT_EQ(n, 0u);
}

TEST(Allocation, IdGenerationAllocatesNothing) {
  IdGenerator::forThisThread();  // first use sets up the thread's generator
  const size_t n = allocationsDuring([] {
    for (int i = 0; i < 1000; ++i) {
      IdGenerator::forThisThread().newTraceId();
      IdGenerator::forThisThread().newSpanId();
    }
  });
  EXPECT_EQ(n, 0u);
}

// Extract a traceparent-only request, start a child span, inject: once the per-thread buffers
// are warm, the whole W3C round trip allocates nothing.
TEST(Allocation, TraceContextExtractInjectAllocatesNothingWhenWarm) {
  CompositePropagator propagator(PropagationConfig{{PropagatorKind::kTraceContext}, 512, {}});
  FixedCarrier in;
  in.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ExtractedContext ctx;
  FixedCarrier out;
  auto once = [&] {
    propagator.extract(in, ctx);
    ASSERT_TRUE(ctx.span_context.isValid());
    const SpanContext child =
        startChildSpan(ctx.span_context, IdGenerator::forThisThread(), ctx.span_context.sampled());
    propagator.inject(out, child, ctx.trace_state, ctx.baggage);
  };
  once();  // warm-up
  const size_t n = allocationsDuring([&] {
    for (int i = 0; i < 1000; ++i) once();
  });
  EXPECT_EQ(n, 0u);
}

std::string numberedMembers(int first, int last) {
  std::string s;
  for (int i = first; i <= last; ++i) {
    if (i != first) s += ',';
    s += "k" + std::to_string(i) + "=v" + std::to_string(i);
  }
  return s;
}

TEST(Allocation, TracestateParseReusesItsOneBuffer) {
  const std::string big = numberedMembers(1, 30) + "," + std::string(256, 'k') + "=" +
                          std::string(256, 'v') + ",z=" + std::string(256, 'v');
  TraceState ts;
  EXPECT_EQ(allocationsDuring([&] { ASSERT_EQ(ts.parse(big), TraceStateStatus::kValid); }), 1u);
  const std::string inputs[] = {big, numberedMembers(1, 3), "a=1 , , b=2", "foo=1,foo=2",
                                numberedMembers(1, 33), "", "x=" + std::string(256, 'x')};
  for (const std::string& input : inputs) {
    EXPECT_EQ(allocationsDuring([&] { (void)ts.parse(input); }), 0u) << input;
  }
  const std::string_view fields[] = {"a=1", "", "b=2,c=3"};
  EXPECT_EQ(allocationsDuring([&] { EXPECT_EQ(ts.parse(fields), TraceStateStatus::kValid); }), 0u);
}

TEST(Allocation, DiscardedTracestateAllocatesNothing) {
  TraceState ts;
  EXPECT_EQ(allocationsDuring([&] {
              EXPECT_EQ(ts.parse("foo=1,foo=2"), TraceStateStatus::kDuplicateKey);
              EXPECT_EQ(ts.parse(""), TraceStateStatus::kEmpty);
            }),
            0u);
}

TEST(Allocation, B3ParseAndExtractAllocateNothing) {
  const std::string single =
      "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d-05e3ac9a4f6e3b90";
  const testing::TestCarrier carrier{{"b3", "x"},
                                     {"x-b3-traceid", "463ac35c9f6413ad"},
                                     {"x-b3-spanid", "a2fb4a1d1a96d312"},
                                     {"x-b3-sampled", "true"},
                                     {"x-b3-flags", "1"}};
  B3Result parsed, extracted;
  EXPECT_EQ(allocationsDuring([&] {
              parsed = parseB3Single(single);
              extracted = extractB3(carrier);
            }),
            0u);
  EXPECT_EQ(parsed.status, B3Status::kValid);
  EXPECT_EQ(extracted.status, B3Status::kValid);
}

TEST(Allocation, JaegerParseAndExtractAllocateNothing) {
  const std::string encoded = "80f198ee56343ba864fe8b2a57d3eff7%3Ae457b5a2e4d86bd1%3A0%3A3";
  const testing::TestCarrier carrier{{"uber-trace-id", "1:2:0:1"}};
  JaegerResult parsed, extracted;
  EXPECT_EQ(allocationsDuring([&] {
              parsed = parseUberTraceId(encoded);
              extracted = extractJaeger(carrier);
            }),
            0u);
  EXPECT_EQ(parsed.status, JaegerStatus::kValid);
  EXPECT_EQ(extracted.status, JaegerStatus::kValid);
}

}  // namespace
}  // namespace tracecar::propagation
