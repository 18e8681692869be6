#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "propagation/ids.h"

namespace tracecar::exporter {

using propagation::SpanId;
using propagation::TraceId;

// Values as in OTLP trace.proto Span.SpanKind and Status.StatusCode.
enum class SpanKind : uint8_t {
  kUnspecified = 0,
  kInternal = 1,
  kServer = 2,
  kClient = 3,
  kProducer = 4,
  kConsumer = 5
};
enum class StatusCode : uint8_t { kUnset = 0, kOk = 1, kError = 2 };

// OTLP Span.flags: bits 0-7 the W3C trace flags, then whether the parent's remoteness is known
// and whether the parent is remote.
namespace span_flags {
inline constexpr uint32_t kTraceFlagsMask = 0x000000ff;
inline constexpr uint32_t kHasIsRemote = 0x00000100;
inline constexpr uint32_t kIsRemote = 0x00000200;
}  // namespace span_flags

using StringArray = std::vector<std::string>;
using AttributeValue = std::variant<std::string, bool, int64_t, double, StringArray>;

struct Attribute {
  std::string key;
  AttributeValue value;
};

// OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT (default 128) and OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (default
// no limit): strings (and each string of an array) are cut to at most value_length characters.
struct AttributeLimits {
  size_t count = 128;
  size_t value_length = std::numeric_limits<size_t>::max();
};

// An attribute list that applies the limits as it is filled and counts what it dropped.
class Attributes {
 public:
  // Sets key (replacing an existing value in place). A new key past the count limit is dropped
  // and counted. Strings longer than the value limit are cut at a UTF-8 character boundary.
  void set(std::string_view key, AttributeValue value, const AttributeLimits& limits = {});

  const std::vector<Attribute>& items() const noexcept { return items_; }
  uint32_t dropped() const noexcept { return dropped_; }
  bool empty() const noexcept { return items_.empty(); }
  size_t size() const noexcept { return items_.size(); }
  const AttributeValue* find(std::string_view key) const noexcept;
  void clear() noexcept {
    items_.clear();
    dropped_ = 0;
  }

 private:
  std::vector<Attribute> items_;
  uint32_t dropped_ = 0;
};

struct SpanEvent {
  std::string name;
  uint64_t time_unix_nano = 0;
  Attributes attributes;
};

struct SpanLink {
  TraceId trace_id;
  SpanId span_id;
  std::string trace_state;
  uint32_t flags = 0;  // as Span.flags
  Attributes attributes;
};

// One finished span, as handed from a worker to the exporter.
struct SpanRecord {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // all zero for a root span
  std::string trace_state;
  uint32_t flags = 0;  // span_flags
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  uint64_t start_unix_nano = 0;
  uint64_t end_unix_nano = 0;
  Attributes attributes;
  std::vector<SpanEvent> events;
  uint32_t dropped_events = 0;
  std::vector<SpanLink> links;
  uint32_t dropped_links = 0;
  StatusCode status_code = StatusCode::kUnset;
  std::string status_message;
};

}  // namespace tracecar::exporter
