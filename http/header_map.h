#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tracecar::http {

// The header fields of one message, in arrival order, each with the name spelled as received.
// Names are matched ASCII case-insensitively. Field bytes live in one buffer owned by the map,
// so a message costs a couple of allocations, not two per field; views returned stay valid
// until the map is next modified.
//
// Satisfies propagation's HeaderReader / HeaderWriter concepts through a small adapter in
// proxy/ (http never knows a tracing header name).
class HeaderMap {
 public:
  size_t size() const noexcept;  // number of fields
  bool empty() const noexcept { return size() == 0; }
  std::string_view name(size_t index) const noexcept;
  std::string_view value(size_t index) const noexcept;

  // Appends a field (no validation: the codec validated what it parsed).
  void add(std::string_view name, std::string_view value);
  // Replaces every field of name by one field holding value, at the place of the first one
  // (or at the end when there was none).
  void set(std::string_view name, std::string_view value);
  // Removes every field of name; returns how many went.
  size_t remove(std::string_view name);
  // Removes every field whose name starts with prefix (case-insensitively).
  size_t removePrefix(std::string_view prefix);
  // Removes, in one pass, every field for which drop(name, value) holds; returns how many went.
  // The views drop gets stay valid for the whole pass.
  template <class Drop>
  size_t removeWhere(Drop&& drop) {
    const size_t removed = removeIf([&](const Entry& e) {
      return drop(std::string_view(bytes_.data() + e.name_offset, e.name_length),
                  std::string_view(bytes_.data() + e.value_offset, e.value_length));
    });
    compactIfWasteful();
    return removed;
  }
  void clear() noexcept;

  // The first field of name.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  size_t count(std::string_view name) const noexcept;
  // Calls visit(value) for every field of name, in order.
  template <class Visit>
  void forEach(std::string_view name, Visit&& visit) const {
    for (size_t i = 0; i < size(); ++i) {
      if (nameEquals(this->name(i), name)) visit(value(i));
    }
  }
  // Every value of name, joined with ", " as one list.
  std::string joined(std::string_view name) const;
  // Does any field of name hold token in its comma-separated list (case-insensitive)? For
  // Connection, Transfer-Encoding, Expect, Upgrade.
  bool hasToken(std::string_view name, std::string_view token) const noexcept;

  // Bytes of the fields as HTTP/1.1 lines: name + ": " + value + CRLF, summed.
  size_t byteSize() const noexcept;
  // Appends "name: value\r\n" for every field.
  void serialize(std::string& out) const;

  static bool nameEquals(std::string_view a, std::string_view b) noexcept;

 private:
  struct Entry {
    uint32_t name_offset;
    uint32_t name_length;
    uint32_t value_offset;
    uint32_t value_length;
  };
  // Copies text to the end of bytes_ and returns its offset.
  uint32_t append(std::string_view text);
  // Drops entries for which drop(entry) holds; returns how many went.
  template <class Drop>
  size_t removeIf(Drop&& drop);
  void compactIfWasteful();

  std::string bytes_;  // names and values, back to back
  std::vector<Entry> entries_;
  size_t dead_bytes_ = 0;  // bytes of removed fields still in bytes_ (compacted when large)
};

template <class Drop>
size_t HeaderMap::removeIf(Drop&& drop) {
  size_t removed = 0;
  auto kept = entries_.begin();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (drop(*it)) {
      dead_bytes_ += it->name_length + it->value_length;
      ++removed;
    } else {
      *kept++ = *it;
    }
  }
  entries_.erase(kept, entries_.end());
  return removed;
}

}  // namespace tracecar::http
