#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "exporter/env.h"
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

// An attribute's name: an owned copy, or a view of static storage (the semantic-convention
// names set on every span, which so cost no allocation). Copies and moves stay valid.
class AttributeKey {
 public:
  AttributeKey() = default;
  explicit AttributeKey(std::string_view name) : owned_(name) {}
  explicit AttributeKey(std::string&& name) noexcept : owned_(std::move(name)) {}
  // name must outlive every copy of the key (a literal, a constant).
  static AttributeKey ofStatic(std::string_view name) noexcept {
    AttributeKey key;
    key.static_ = name;
    key.is_static_ = true;
    return key;
  }

  std::string_view view() const noexcept { return is_static_ ? static_ : std::string_view(owned_); }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: a name reads as text
  bool empty() const noexcept { return view().empty(); }
  size_t size() const noexcept { return view().size(); }

  friend bool operator==(const AttributeKey& a, std::string_view b) noexcept {
    return a.view() == b;
  }
  friend bool operator==(const AttributeKey& a, const AttributeKey& b) noexcept {
    return a.view() == b.view();
  }
  friend std::ostream& operator<<(std::ostream& os, const AttributeKey& key) {
    return os << key.view();
  }

 private:
  std::string owned_;
  std::string_view static_;
  bool is_static_ = false;
};

struct Attribute {
  AttributeKey key;
  AttributeValue value;
};

// OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT (default 128) and OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT (default
// no limit): strings (and each string of an array) are cut to at most value_length characters.
struct AttributeLimits {
  size_t count = 128;
  size_t value_length = std::numeric_limits<size_t>::max();
};

// The limits from OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT (falling back to OTEL_ATTRIBUTE_COUNT_LIMIT) and
// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT (falling back to OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT). An
// invalid value adds a warning naming the variable and its value, and is ignored.
AttributeLimits attributeLimitsFromEnv(const EnvLookup& env, std::vector<std::string>& warnings);

// UTF-8 helpers: OTLP strings must be valid UTF-8 (a collector rejects the whole request
// otherwise), and length limits count characters, not bytes.
namespace utf8 {
// Cuts s to at most max_chars characters, never inside a multi-byte sequence.
void truncate(std::string& s, size_t max_chars) noexcept;
// True when s is well-formed UTF-8. Inline for the all-ASCII case every encoder hits.
bool isValid(std::string_view s) noexcept;
bool isValidNonAscii(std::string_view s) noexcept;
// The size of s once every ill-formed sequence is replaced by U+FFFD (3 bytes); s.size() when
// s is valid.
size_t sanitizedSize(std::string_view s) noexcept;
// Calls emit(valid_run) for each well-formed run of s and emit("\xEF\xBF\xBD") for each
// maximal ill-formed subpart (Unicode's "best practice" replacement).
template <class Emit>
void forEachSanitizedRun(std::string_view s, Emit&& emit);
// The length of the well-formed sequence at s[0], or 0 when s[0] starts an ill-formed one;
// *bad_len is then the number of bytes the replacement character stands for.
size_t sequenceLength(const unsigned char* p, size_t avail, size_t* bad_len) noexcept;
}  // namespace utf8

// An attribute list that applies the limits as it is filled and counts what it dropped.
class Attributes {
 public:
  // Sets key (replacing an existing value in place). A new key past the count limit is dropped
  // and counted. Strings longer than the value limit are cut at a UTF-8 character boundary.
  void set(std::string_view key, AttributeValue value, const AttributeLimits& limits = {});
  // The same for a key with static storage (see AttributeKey::ofStatic): no copy of the name.
  void setStatic(std::string_view key, AttributeValue value, const AttributeLimits& limits = {});
  void reserve(size_t count) { items_.reserve(count); }

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
  // Applies the value limit; replaces an existing key's value (false), or says whether a new
  // one fits (true) or was dropped (false).
  bool replaceOrRoom(std::string_view key, AttributeValue& value, const AttributeLimits& limits);

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

inline bool utf8::isValid(std::string_view s) noexcept {
  uint64_t seen = 0;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, s.data() + i, 8);
    seen |= word;
  }
  for (; i < s.size(); ++i) seen |= static_cast<unsigned char>(s[i]);
  return (seen & 0x8080808080808080ULL) == 0 || isValidNonAscii(s);
}

template <class Emit>
void utf8::forEachSanitizedRun(std::string_view s, Emit&& emit) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t run = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t bad = 0;
    const size_t n = sequenceLength(p + i, s.size() - i, &bad);
    if (n != 0) {
      i += n;
      continue;
    }
    if (i > run) emit(s.substr(run, i - run));
    emit(kReplacement);
    i += bad;
    run = i;
  }
  if (s.size() > run) emit(s.substr(run));
}

}  // namespace tracecar::exporter
