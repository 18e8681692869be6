#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "exporter/resource.h"
#include "exporter/span.h"

namespace tracecar::exporter {

// Encodes the OTLP/JSON form of an ExportTraceServiceRequest, as the OTLP specification maps
// it: lowerCamelCase keys, trace and span ids as lowercase hex (not base64), enums as
// integers, 64-bit integers as decimal strings, doubles as numbers ("NaN", "Infinity",
// "-Infinity" as strings), default-valued fields left out. Strings are escaped per RFC 8259
// (control characters as \u00XX) and ill-formed UTF-8 becomes U+FFFD. Every span goes under
// one resourceSpans / scopeSpans entry. Appending into a reused out allocates nothing once out
// has the capacity.
class OtlpJsonEncoder {
 public:
  void encode(const Resource& resource, const InstrumentationScope& scope,
              std::span<const SpanRecord* const> spans, std::string& out);
};

// Reads {"partialSuccess":{"rejectedSpans":"3","errorMessage":"..."}} (rejectedSpans as a
// string or a number; the proto field names are accepted too; other members are skipped).
// rejected_spans and error_message are 0 and empty when absent. False when body is not one
// well-formed JSON object; an empty body is a success.
bool parseJsonPartialSuccess(std::string_view body, uint64_t& rejected_spans,
                             std::string& error_message);

}  // namespace tracecar::exporter
