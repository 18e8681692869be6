#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/resource.h"
#include "exporter/span.h"

namespace tracecar::exporter {

// Encodes OTLP ExportTraceServiceRequest protobuf messages (opentelemetry-proto trace.proto),
// every span under one ResourceSpans and one ScopeSpans. Default-valued fields are left out as
// proto3 does; strings that are not valid UTF-8 get U+FFFD for each ill-formed sequence (a
// collector would otherwise reject the whole request).
//
// Two passes: the first computes every nested message's size, the second writes into a buffer
// of the exact size. Once out and the encoder have grown to a batch's size, encoding a batch
// of that size again allocates nothing. One encoder per thread.
class OtlpProtoEncoder {
 public:
  void encode(const Resource& resource, const InstrumentationScope& scope,
              std::span<const SpanRecord* const> spans, std::string& out);

 private:
  std::vector<uint32_t> sizes_;  // message and string sizes from pass one, in write order
};

// Parses an ExportTraceServiceResponse. rejected_spans and error_message are from its
// partial_success (0 and empty when absent; a negative count reads as 0). False when body is
// not a well-formed protobuf message; unknown fields are skipped. An empty body is a success.
bool parseExportTraceServiceResponse(std::string_view body, uint64_t& rejected_spans,
                                     std::string& error_message);

}  // namespace tracecar::exporter
