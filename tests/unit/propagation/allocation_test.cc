// Counts every heap allocation of this test program to prove the hot paths allocate nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string_view>

#include "propagation/composite_propagator.h"
#include "propagation/ids.h"
#include "propagation/traceparent.h"

namespace {
std::atomic<size_t> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

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

}  // namespace
}  // namespace tracecar::propagation
