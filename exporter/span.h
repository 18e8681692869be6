#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
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
// names set on every span, which so cost no allocation). Copies and moves stay valid. Small (a
// view and a pointer) so that a span's attributes fit one small allocation.
class AttributeKey {
 public:
  AttributeKey() = default;
  explicit AttributeKey(std::string_view name) { copyFrom(name); }
  // name must outlive every copy of the key (a literal, a constant of the program's own) and be
  // well-formed UTF-8: the protobuf encoder takes a static name as it is, where it checks a
  // copied one.
  static AttributeKey ofStatic(std::string_view name) noexcept {
    AttributeKey key;
    key.view_ = name;
    return key;
  }
  // The key becomes name, held as ofStatic holds it.
  void setStatic(std::string_view name) noexcept {
    owned_.reset();
    view_ = name;
  }

  AttributeKey(const AttributeKey& other) {
    if (other.owned_) {
      copyFrom(other.view_);
    } else {
      view_ = other.view_;
    }
  }
  AttributeKey& operator=(const AttributeKey& other) {
    if (this != &other) *this = AttributeKey(other);
    return *this;
  }
  AttributeKey(AttributeKey&& other) noexcept
      : view_(std::exchange(other.view_, {})), owned_(std::move(other.owned_)) {}
  AttributeKey& operator=(AttributeKey&& other) noexcept {
    if (this != &other) {
      view_ = std::exchange(other.view_, {});
      owned_ = std::move(other.owned_);
    }
    return *this;
  }
  ~AttributeKey() = default;

  std::string_view view() const noexcept { return view_; }
  operator std::string_view() const noexcept { return view_; }  // NOLINT: a name reads as text
  // Held as ofStatic holds it (an empty key too).
  bool isStatic() const noexcept { return owned_ == nullptr; }
  bool empty() const noexcept { return view_.empty(); }
  size_t size() const noexcept { return view_.size(); }

  friend bool operator==(const AttributeKey& a, std::string_view b) noexcept {
    return a.view_ == b;
  }
  friend bool operator==(const AttributeKey& a, const AttributeKey& b) noexcept {
    return a.view_ == b.view_;
  }
  friend std::ostream& operator<<(std::ostream& os, const AttributeKey& key) {
    return os << key.view_;
  }

 private:
  void copyFrom(std::string_view name) {
    if (name.empty()) return;
    owned_ = std::make_unique<char[]>(name.size());
    std::memcpy(owned_.get(), name.data(), name.size());
    view_ = std::string_view(owned_.get(), name.size());
  }

  std::string_view view_;          // the name: into owned_, or into static storage
  std::unique_ptr<char[]> owned_;  // null for a static name
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
// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT (falling back to OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT), then
// the lower layer's value of the span variable's setting. An invalid value adds a warning
// naming the variable and its value, and is treated as not set.
AttributeLimits attributeLimitsFromEnv(const EnvLookup& env, std::vector<std::string>& warnings,
                                       const LowerLayer& lower = {});

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
  // The same for a string or an integer value, made in place in the list (no temporary). value
  // must not view a string of this list.
  void setStaticString(std::string_view key, std::string_view value,
                       const AttributeLimits& limits = {});
  void setStaticInt(std::string_view key, int64_t value, const AttributeLimits& limits = {});
  void reserve(size_t count) { items_.reserve(count); }

  const std::vector<Attribute>& items() const noexcept { return items_; }
  uint32_t dropped() const noexcept { return dropped_; }
  bool empty() const noexcept { return items_.empty(); }
  size_t size() const noexcept { return items_.size(); }
  const AttributeValue* find(std::string_view key) const noexcept;
  void clear() noexcept {
    items_.clear();
    dropped_ = 0;
    key_bits_ = 0;
    large_values_ = false;
  }
  // Some value holds memory that clearForReuse would free (see large_values_).
  bool holdsLargeValues() const noexcept { return large_values_; }
  // clear(), but the buffers of up to kSpareStrings string values (of at most
  // kSpareStringCapacity bytes each) stay for the next string values setStaticString makes: a
  // list refilled with values of the same sizes allocates nothing.
  void clearForReuse() noexcept;
  static constexpr size_t kSpareStrings = 4;
  static constexpr size_t kSpareStringCapacity = 256;
  size_t spareStrings() const noexcept { return spare_.size(); }  // for tests

 private:
  // Applies the value limit; replaces an existing key's value (false), or says whether a new
  // one fits (true) or was dropped (false).
  bool replaceOrRoom(std::string_view key, AttributeValue& value, const AttributeLimits& limits);
  // The attribute named key (whose keyBit is bit), or null.
  Attribute* findItem(std::string_view key, uint64_t bit) noexcept {
    return (key_bits_ & bit) == 0 ? nullptr : searchItem(key);
  }
  Attribute* searchItem(std::string_view key) noexcept;
  // A new, default attribute named key (static storage, keyBit bit) at the end; null when the
  // count limit drops it (counted).
  Attribute* addStatic(std::string_view key, uint64_t bit, const AttributeLimits& limits);
  // A cheap hash of key, as one of 64 bits: its length, first and middle characters (which tell
  // the semantic-convention names apart).
  static uint64_t keyBit(std::string_view key) noexcept {
    if (key.empty()) return 1;
    const auto first = static_cast<unsigned char>(key.front());
    const auto middle = static_cast<unsigned char>(key[key.size() / 2]);
    return uint64_t{1} << ((key.size() + first * 5 + middle * 3) % 64);
  }

  std::vector<Attribute> items_;
  std::vector<std::string> spare_;  // emptied string buffers, see clearForReuse
  uint32_t dropped_ = 0;
  // A value was set that clearForReuse would not keep whole: a string past
  // kSpareStringCapacity bytes, or an array.
  bool large_values_ = false;
  // The keyBit of every key in items_: a key whose bit is clear is not there, which spares the
  // search for most new keys.
  uint64_t key_bits_ = 0;
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
class SpanRecordPool;

struct SpanRecord {
  // Empties the record for another span: every field as in a new record, but the memory its
  // strings and lists hold is kept. home is left as it is.
  void clearForReuse() noexcept;
  // Holds memory that clearForReuse frees: attribute values past the kept sizes, events or
  // links. A pool empties such a record at once rather than keep it all while it waits.
  bool holdsLargeValues() const noexcept {
    return attributes.holdsLargeValues() || !events.empty() || !links.empty() ||
           encoded.capacity() > kKeptEncodedCapacity;
  }
  // The most of encoded's buffer that clearForReuse keeps (a server span takes a few hundred
  // bytes).
  static constexpr size_t kKeptEncodedCapacity = 2048;

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
  // The span as an OTLP protobuf Span message (OtlpProtoEncoder::encodeSpan), made from the
  // fields above when the span ended, on the thread that ended it, if the exporter sends
  // protobuf (BatchProcessor::onEnd); empty: the exporter encodes the fields itself. Whoever
  // changes a field after that clears it.
  std::string encoded;
  // Where the exporter returns the record once its span is exported (BatchProcessor::
  // newRecord); null: it is deleted.
  SpanRecordPool* home = nullptr;
};

inline bool utf8::isValid(std::string_view s) noexcept {
  // ORs the bytes together a word at a time; the last word (or the two halves of a short
  // string) may overlap bytes already seen, which changes nothing.
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t seen = 0;
  if (n >= 8) {
    uint64_t word = 0;
    for (size_t i = 8; i < n - 8; i += 8) {  // the words between the first and the last
      std::memcpy(&word, p + i, 8);
      seen |= word;
    }
    std::memcpy(&word, p, 8);
    seen |= word;
    std::memcpy(&word, p + n - 8, 8);
    seen |= word;
  } else if (n >= 4) {
    uint32_t head = 0;
    uint32_t tail = 0;
    std::memcpy(&head, p, 4);
    std::memcpy(&tail, p + n - 4, 4);
    seen = head | tail;
  } else if (n > 0) {
    seen = static_cast<unsigned char>(p[0]) | static_cast<unsigned char>(p[n / 2]) |
           static_cast<unsigned char>(p[n - 1]);
  }
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
