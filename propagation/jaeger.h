#pragma once

#include <cstdint>
#include <string_view>

#include "propagation/baggage.h"
#include "propagation/header_carrier.h"
#include "propagation/span_context.h"

namespace tracecar::propagation {

// Jaeger native propagation: "uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}"
// and "uberctx-{key}: {value}" baggage.
enum class JaegerStatus : uint8_t {
  kValid,
  kAbsent,
  kInvalid,
};

std::string_view toString(JaegerStatus status) noexcept;

struct JaegerResult {
  JaegerStatus status = JaegerStatus::kAbsent;
  SpanContext context;  // valid only when status == kValid; is_remote = true
  bool debug = false;   // flags bit 0x02 (debug implies sampled)
};

// trace-id: 1-32 hex digits (either case; left-padded to 128 bits), span-id and parent-span-id
// 1-16 hex digits, flags 1-2 hex digits (0x01 sampled, 0x02 debug). Separators ':' or the
// URL-encoded "%3A"/"%3a" (one value never mixes ':' with encoded ones). Trace id and span id
// must not be zero; parent may be (deprecated). No allocation.
JaegerResult parseUberTraceId(std::string_view value) noexcept;

// Not noexcept: the carrier it calls may throw.
JaegerResult extractJaeger(ReaderRef carrier);

// Merges every "uberctx-{key}" field into baggage (Baggage::merge, keys matched ignoring case:
// header names have none): a member that already has the percent-decoded value stays byte for
// byte with its properties and place; a different value replaces the last member of that key in
// place (without properties, the others of that key go); a new key is appended, lowercased,
// value re-encoded as a W3C baggage value. Keys that are not tokens are skipped. Returns the
// number of merges that changed baggage (a later field with the same key replaces an earlier
// one). Once baggage holds max_members, further new keys are skipped and counted in *dropped.
size_t extractJaegerBaggage(ReaderRef carrier, Baggage& baggage,
                            size_t max_members = BaggageLimits::kMinMembers,
                            size_t* dropped = nullptr);

// "uber-trace-id: {32 hex trace}:{16 hex span}:0:{01|00}". An invalid context writes nothing.
void injectJaeger(WriterRef carrier, const SpanContext& context);
// One "uberctx-{key}" field per baggage key (lowercased), value decoded then URL-encoded. Of
// several members whose keys differ only in case, the last one's value is sent; properties have
// no Jaeger form.
void injectJaegerBaggage(WriterRef carrier, const Baggage& baggage);

}  // namespace tracecar::propagation
