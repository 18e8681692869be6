#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tracecar::propagation {

// Outcome of parsing the tracestate fields of one request (W3C Trace Context Level 2).
// Every status but kValid and kEmpty discards the whole tracestate; traceparent is kept.
enum class TraceStateStatus : uint8_t {
  kValid,
  kEmpty,           // no field, or only empty members: accepted, and not sent on
  kNotParsed,       // traceparent was invalid, so tracestate was not looked at
  kTooManyMembers,  // more than 32 list-members
  kDuplicateKey,
  kInvalidKey,
  kInvalidValue,
  kInvalidMember,   // no '=', or other list syntax error
};

std::string_view toString(TraceStateStatus status) noexcept;

// The vendor list of tracestate: up to 32 key=value members, leftmost = most recent.
// Members are kept in one string (one allocation, reused across parses); a member table of
// offsets sits inline in the object.
class TraceState {
 public:
  static constexpr size_t kMaxMembers = 32;
  static constexpr size_t kMaxKeyLength = 256;
  static constexpr size_t kMaxValueLength = 256;
  // Entries longer than this are the first to go when the header must be cut.
  static constexpr size_t kLongEntryThreshold = 128;
  // The spec's minimum combined length that must be propagated, and our default cut.
  static constexpr size_t kDefaultMaxLength = 512;

  struct Member {
    std::string_view key;
    std::string_view value;
  };

  // Parses and combines the given header fields (RFC 9110 5.3: as if joined by ','). Empty
  // fields and empty list-members are allowed and skipped; OWS around members is dropped.
  // On any status other than kValid the object is left empty. The fields must not point into
  // this object. The only allocation is growing buffer_ (capacity is kept across parses, and a
  // valid list needs at most 32 * 513 bytes); running out of that little memory is fatal.
  TraceStateStatus parse(std::span<const std::string_view> fields) noexcept;
  TraceStateStatus parse(std::string_view field) noexcept { return parse(std::span(&field, 1)); }

  static bool isValidKey(std::string_view key) noexcept;
  static bool isValidValue(std::string_view value) noexcept;

  bool empty() const noexcept { return count_ == 0; }
  size_t size() const noexcept { return count_; }
  // Views into the object: valid until the next parse, set, erase, truncate or clear.
  Member member(size_t index) const noexcept;  // 0 = leftmost; empty when out of range
  std::optional<std::string_view> get(std::string_view key) const noexcept;

  // Inserts or updates key: the member moves to (or is added at) the left; the order of the
  // others is kept. With 32 members already and a new key, the rightmost member is dropped.
  // False (and no change) when key or value is invalid. key and value may be views into this
  // object (set(m.key, m.value) moves m to the left).
  bool set(std::string_view key, std::string_view value);
  bool erase(std::string_view key);
  void clear() noexcept;

  // Cuts the list so that its serialized length is <= max_length, removing whole entries:
  // first those longer than 128 characters (from the right), then from the end. Returns the
  // number of entries removed.
  size_t truncate(size_t max_length);

  size_t serializedLength() const noexcept;  // members joined by ','
  void serialize(std::string& out) const;    // appends
  std::string toString() const;

  friend bool operator==(const TraceState& a, const TraceState& b) noexcept {
    return a.toString() == b.toString();
  }

 private:
  struct Slot {
    uint32_t offset;  // of the key in buffer_
    uint16_t key_length;
    uint16_t value_length;
  };
  std::string buffer_;  // "key=value" entries back to back, no separators
  size_t entryLength(size_t index) const noexcept {
    return size_t{slots_[index].key_length} + 1 + slots_[index].value_length;
  }
  size_t indexOf(std::string_view key) const noexcept;  // count_ when absent
  void removeAt(size_t index) noexcept;

  std::array<Slot, kMaxMembers> slots_{};
  size_t count_ = 0;
};

}  // namespace tracecar::propagation
