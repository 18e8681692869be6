#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tracecar::propagation {

// W3C Baggage limits. The W3C floor (64 members, 8192 bytes) is also the lowest value a
// configuration may set: the spec says a platform MUST propagate at least that much. The caller
// validates its configuration; parse() and enforce() also treat a smaller value as the floor.
struct BaggageLimits {
  static constexpr size_t kMinMembers = 64;
  static constexpr size_t kMinBytes = 8192;
  size_t max_members = kMinMembers;
  size_t max_bytes = kMinBytes;  // of the serialized baggage-string, members joined by ','
};

// Why members of an incoming baggage were not kept; counters for the caller's metrics.
struct BaggageReport {
  uint32_t kept = 0;
  uint32_t dropped_invalid = 0;      // list-members that do not follow the grammar
  uint32_t dropped_member_limit = 0; // past max_members
  uint32_t dropped_byte_limit = 0;   // would have made the string longer than max_bytes
  uint32_t dropped() const noexcept {
    return dropped_invalid + dropped_member_limit + dropped_byte_limit;
  }
};

// A W3C baggage list. Members received and not modified are re-emitted byte for byte (key,
// value encoding and properties exactly as received; only the OWS around the member goes).
class Baggage {
 public:
  struct Member {
    std::string_view key;
    std::string_view raw_value;   // percent-encoded, as on the wire
    std::string_view properties;  // raw text after the first ';' (without it), "" if none
  };

  // Parses and combines the given header fields (as if joined with ','), replacing the current
  // contents. Invalid list-members are skipped (counted); empty ones silently. Then the longest
  // prefix of valid members within both limits is kept: whole members go from the end. A
  // dropped member counts as dropped_member_limit if it lies past max_members, otherwise as
  // dropped_byte_limit. Never throws: linear in the input, one string per kept member.
  BaggageReport parse(std::span<const std::string_view> fields, const BaggageLimits& limits = {});
  BaggageReport parse(std::string_view field, const BaggageLimits& limits = {}) {
    return parse(std::span(&field, 1), limits);
  }

  // How merge() and contains() compare keys. Baggage keys are case-sensitive; kIgnoreCase (ASCII)
  // is for formats whose keys travel in header names, which have no case (Jaeger's uberctx-).
  enum class KeyMatch : uint8_t { kExact, kIgnoreCase };

  bool empty() const noexcept { return members_.empty(); }
  size_t size() const noexcept { return members_.size(); }
  Member member(size_t index) const noexcept;  // all empty views if index >= size()
  // The percent-decoded value of the last member with that key (invalid UTF-8 -> U+FFFD).
  std::optional<std::string> value(std::string_view key) const;
  bool contains(std::string_view key, KeyMatch match = KeyMatch::kExact) const noexcept;

  // Replaces every member with that key by one at the end, value percent-encoded. properties
  // is raw property text ("" for none; OWS around it is trimmed). False (and no change) if key
  // is not a token or the properties do not follow the grammar. Limits are not applied here:
  // call enforce() after modifying. Bytes that are not UTF-8 decode as U+FFFD in value().
  bool set(std::string_view key, std::string_view value, std::string_view properties = {});
  // Takes key=value from a format that has no properties into the list, keeping its order: the
  // members whose key matches are that one entry. If the last of them already has the value (as
  // value() reads both: percent-decoded, invalid UTF-8 as U+FFFD), nothing changes, so members
  // received in both formats keep their bytes, properties and place. Otherwise the last of them
  // becomes key=value in its place, keeping its own key spelling but no properties (they were
  // written for the old value), and the others go. With no match, key=value is appended. True if
  // the list changed; false (and no change) if key is not a token. Limits are not applied here.
  bool merge(std::string_view key, std::string_view value, KeyMatch match = KeyMatch::kExact);
  bool erase(std::string_view key);
  void clear() noexcept;

  // Drops whole members from the end until within limits (same floor and counting as
  // parse()); returns how many went and how many are kept.
  BaggageReport enforce(const BaggageLimits& limits);

  size_t serializedLength() const noexcept;
  void serialize(std::string& out) const;  // appends
  std::string toString() const;

  static bool isValidKey(std::string_view key) noexcept;  // RFC 9110 token
  // OWS property *( OWS ";" OWS property ) OWS, property = key [OWS "=" OWS value]: the shape
  // of member().properties, so set() takes back what member() gave out.
  static bool isValidProperties(std::string_view properties) noexcept;
  // Percent-decoding; a '%' not followed by two hex digits stays literal; the result is made
  // valid UTF-8 (each maximal invalid subpart becomes one U+FFFD).
  static std::string decodeValue(std::string_view raw);
  // Percent-encodes every byte that is not a baggage-octet, and '%' itself.
  static void encodeValue(std::string_view value, std::string& out);

 private:
  struct Entry {
    std::string text;       // the whole member, OWS around it trimmed
    uint32_t key_length;    // key = text[0, key_length)
    uint32_t value_offset;  // raw value = text[value_offset, value_offset + value_length)
    uint32_t value_length;
    uint32_t properties_offset;  // == text.size() when there are no properties
  };
  // key=value (value percent-encoded)[;properties], properties already checked. False if too
  // long to address.
  static bool makeEntry(std::string_view key, std::string_view value, std::string_view properties,
                        Entry& out);
  static std::string_view keyOf(const Entry& e) noexcept {
    return std::string_view(e.text).substr(0, e.key_length);
  }
  std::vector<Entry> members_;
};

}  // namespace tracecar::propagation
