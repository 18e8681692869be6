// Fuzzes B3 parsing: the input as one "b3" value, and as header lines ("name: value", or a bare
// value taken as another "b3" field) split at '\n'. Whatever parses as kValid must survive
// inject + extract in both encodings with the same trace id, span id and sampled flag.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "propagation/b3.h"
#include "tests/unit/propagation/test_carrier.h"

namespace tracecar::propagation {
namespace {

using testing::TestCarrier;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool sameIdsAndDecision(const SpanContext& a, const SpanContext& b) {
  return a.trace_id == b.trace_id && a.span_id == b.span_id && a.sampled() == b.sampled();
}

// Invariants every result holds, whatever the input.
void checkShape(const B3Result& r) {
  if (r.status != B3Status::kValid) {
    check(!r.context.isValid());
    return;
  }
  check(r.context.isValid() && r.context.is_remote);
  check((r.context.flags & ~trace_flags::kSampled) == 0);
  check(!r.debug || r.context.sampled());
}

// Injecting into carrier (which may hold any other headers) must make it extract exactly ctx.
void checkRoundTrip(const SpanContext& context, TestCarrier carrier) {
  for (B3InjectEncoding encoding : {B3InjectEncoding::kSingle, B3InjectEncoding::kMulti}) {
    injectB3(carrier, context, encoding);
    const B3Result back = extractB3(carrier);
    check(back.status == B3Status::kValid);
    check(sameIdsAndDecision(back.context, context));
    check(carrier.count("x-b3-parentspanid") == 0);
  }
}

void fuzzOne(std::string_view input) {
  const B3Result single = parseB3Single(input);
  checkShape(single);
  if (single.status == B3Status::kValid) checkRoundTrip(single.context, TestCarrier{});

  const TestCarrier carrier = TestCarrier::fromHeaderLines(input, "b3");
  const B3Result extracted = extractB3(carrier);
  checkShape(extracted);
  if (extracted.status == B3Status::kValid) {
    checkRoundTrip(extracted.context, TestCarrier{});
    checkRoundTrip(extracted.context, carrier);
  }
}

}  // namespace
}  // namespace tracecar::propagation

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tracecar::propagation::fuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
