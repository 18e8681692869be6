// Fuzzes Jaeger parsing: the input as one uber-trace-id value, and as header lines
// ("name: value", or a bare value taken as another uber-trace-id field) split at '\n', which
// also feeds uberctx- baggage. A kValid context must survive inject + extract with the same
// trace id, span id and sampled flag; extracted baggage must survive inject + extract.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "propagation/baggage.h"
#include "propagation/jaeger.h"
#include "tests/unit/propagation/test_carrier.h"

namespace tracecar::propagation {
namespace {

using testing::TestCarrier;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void checkShape(const JaegerResult& r) {
  if (r.status != JaegerStatus::kValid) {
    check(!r.context.isValid());
    return;
  }
  check(r.context.isValid() && r.context.is_remote);
  check((r.context.flags & ~trace_flags::kSampled) == 0);
  check(!r.debug || r.context.sampled());
}

void checkRoundTrip(const SpanContext& context, TestCarrier carrier) {
  injectJaeger(carrier, context);
  const JaegerResult back = extractJaeger(carrier);
  check(back.status == JaegerStatus::kValid);
  check(back.context.trace_id == context.trace_id && back.context.span_id == context.span_id &&
        back.context.sampled() == context.sampled());
}

void checkBaggageRoundTrip(const Baggage& baggage) {
  TestCarrier carrier;
  injectJaegerBaggage(carrier, baggage);
  Baggage back;
  check(extractJaegerBaggage(carrier, back) == baggage.size());
  check(back.size() == baggage.size());
  for (size_t i = 0; i < baggage.size(); ++i) {
    const std::string_view key = baggage.member(i).key;
    check(back.value(key) == baggage.value(key));
  }
}

void fuzzOne(std::string_view input) {
  const JaegerResult parsed = parseUberTraceId(input);
  checkShape(parsed);
  if (parsed.status == JaegerStatus::kValid) checkRoundTrip(parsed.context, TestCarrier{});

  const TestCarrier carrier = TestCarrier::fromHeaderLines(input, "uber-trace-id");
  const JaegerResult extracted = extractJaeger(carrier);
  checkShape(extracted);
  if (extracted.status == JaegerStatus::kValid) {
    checkRoundTrip(extracted.context, TestCarrier{});
    checkRoundTrip(extracted.context, carrier);
  }

  Baggage baggage;
  const size_t added = extractJaegerBaggage(carrier, baggage);
  check(baggage.size() <= added);
  checkBaggageRoundTrip(baggage);
}

}  // namespace
}  // namespace tracecar::propagation

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tracecar::propagation::fuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
