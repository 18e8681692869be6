#pragma once

#include <cstdint>
#include <string_view>

#include "propagation/header_carrier.h"
#include "propagation/span_context.h"

namespace tracecar::propagation {

// Zipkin B3 propagation (https://github.com/openzipkin/b3-propagation), as OpenTelemetry's
// B3 propagator does it.
enum class B3Status : uint8_t {
  kValid,
  kAbsent,
  kInvalid,          // malformed ids, sampling state or layout
  kSamplingOnly,     // "b3: 0|1|d" with no ids: a decision without a context
};

std::string_view toString(B3Status status) noexcept;

// kBoth writes both encodings (OTEL_PROPAGATORS naming both b3 and b3multi).
enum class B3InjectEncoding : uint8_t { kSingle, kMulti, kBoth };

struct B3Result {
  B3Status status = B3Status::kAbsent;
  SpanContext context;   // valid only when status == kValid; is_remote = true
                         // (kSamplingOnly: no ids, but flags carry the decision)
  bool debug = false;    // "d" or X-B3-Flags: 1 (debug implies sampled)
};

// Parses the single header value "{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]" or
// "{SamplingState}". TraceId is 16 or 32 lowercase hex (16 is left-padded with zeros); SpanId
// and ParentSpanId 16 lowercase hex, not all zero; SamplingState 1, 0 or d.
B3Result parseB3Single(std::string_view value) noexcept;

// Extracts from the carrier: the single "b3" header wins when it is valid; otherwise the
// multi headers x-b3-traceid, x-b3-spanid, x-b3-sampled (1/0, also true/false), x-b3-flags (1 =
// debug). x-b3-parentspanid is ignored. Several fields of one name are invalid. Without a valid
// context, a sampling decision from "b3" beats invalid multi headers.
// Not noexcept: the carrier it calls may throw.
B3Result extractB3(ReaderRef carrier);

// Injects "b3: {trace}-{span}-{1|0}" (kSingle) or x-b3-traceid/x-b3-spanid/x-b3-sampled
// (kMulti). Never injects x-b3-parentspanid. Removes the other encoding's headers and
// x-b3-flags. An invalid context leaves the carrier unchanged.
// debug (for a sampled context only): "d" in the single header; x-b3-flags: 1 and no
// x-b3-sampled in the multi ones (debug implies the accept decision).
void injectB3(WriterRef carrier, const SpanContext& context, B3InjectEncoding encoding,
              bool debug = false);

}  // namespace tracecar::propagation
