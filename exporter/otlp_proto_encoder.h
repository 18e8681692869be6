#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "exporter/resource.h"
#include "exporter/span.h"

namespace tracecar::exporter {

// Encodes OTLP ExportTraceServiceRequest protobuf messages (opentelemetry-proto trace.proto),
// every span under one ResourceSpans and one ScopeSpans. Default-valued fields are left out as
// proto3 does; strings that are not valid UTF-8 get U+FFFD for each ill-formed sequence (a
// collector would otherwise reject the whole request).
//
// One pass, front to back: each nested message's length is written once its body is, into room
// reserved before it (the body moves when the length needs more or fewer bytes than reserved;
// lengths are always the shortest varint). Once out has grown to a batch's size, encoding a
// batch of that size again allocates nothing.
//
// A span whose record carries its own encoding (SpanRecord::encoded, made by encodeSpan on the
// thread that ended it) is copied into the batch as it is; the others are encoded here. Either
// way the bytes are the same.
class OtlpProtoEncoder {
 public:
  void encode(const Resource& resource, const InstrumentationScope& scope,
              std::span<const SpanRecord* const> spans, std::string& out);

  // Writes span's Span message (its fields, without the tag and length a batch puts before
  // them) over out, growing it as needed. Once out has held a span of that size, encoding
  // another allocates nothing.
  static void encodeSpan(const SpanRecord& span, std::string& out);
};

// Parses an ExportTraceServiceResponse. rejected_spans and error_message are from its
// partial_success (0 and empty when absent; a negative count reads as 0). False when body is
// not a well-formed protobuf message; unknown fields are skipped. An empty body is a success.
bool parseExportTraceServiceResponse(std::string_view body, uint64_t& rejected_spans,
                                     std::string& error_message);

}  // namespace tracecar::exporter
