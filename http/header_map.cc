#include "http/header_map.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <stdexcept>

#include "base/ascii.h"

namespace tracecar::http {
namespace {

constexpr size_t kMaxBytes = std::numeric_limits<uint32_t>::max();

// Where text starts inside buffer, if it is a view of it.
std::optional<size_t> offsetIn(const std::string& buffer, std::string_view text) noexcept {
  const std::less<const char*> before;
  const char* begin = buffer.data();
  const char* end = begin + buffer.size();
  if (text.empty() || before(text.data(), begin) || !before(text.data(), end)) return std::nullopt;
  return static_cast<size_t>(text.data() - begin);
}

}  // namespace

size_t HeaderMap::size() const noexcept { return entries_.size(); }

std::string_view HeaderMap::name(size_t index) const noexcept {
  const Entry& e = entries_[index];
  return std::string_view(bytes_.data() + e.name_offset, e.name_length);
}

std::string_view HeaderMap::value(size_t index) const noexcept {
  const Entry& e = entries_[index];
  return std::string_view(bytes_.data() + e.value_offset, e.value_length);
}

uint32_t HeaderMap::append(std::string_view text) {
  if (text.size() > kMaxBytes - bytes_.size()) throw std::length_error("HeaderMap over 4 GiB");
  // text may view bytes_ itself (h.set("x", *h.get("y"))): growing would move it.
  if (const std::optional<size_t> inside = offsetIn(bytes_, text)) {
    bytes_.reserve(bytes_.size() + text.size());
    text = std::string_view(bytes_.data() + *inside, text.size());
  }
  const auto offset = static_cast<uint32_t>(bytes_.size());
  bytes_.append(text);
  return offset;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  if (name.size() + value.size() > kMaxBytes - bytes_.size()) {
    throw std::length_error("HeaderMap over 4 GiB");
  }
  // Either view may point into bytes_ itself: grow first, then re-point them.
  const std::optional<size_t> name_inside = offsetIn(bytes_, name);
  const std::optional<size_t> value_inside = offsetIn(bytes_, value);
  bytes_.reserve(bytes_.size() + name.size() + value.size());
  if (name_inside) name = std::string_view(bytes_.data() + *name_inside, name.size());
  if (value_inside) value = std::string_view(bytes_.data() + *value_inside, value.size());
  const auto name_offset = static_cast<uint32_t>(bytes_.size());
  const auto value_offset = static_cast<uint32_t>(name_offset + name.size());
  // The entry goes in before the bytes: the appends cannot throw once the room is reserved.
  entries_.push_back(Entry{name_offset, static_cast<uint32_t>(name.size()), value_offset,
                           static_cast<uint32_t>(value.size())});
  bytes_.append(name);
  bytes_.append(value);
}


void HeaderMap::set(std::string_view name, std::string_view value) {
  size_t first = entries_.size();
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (nameEquals(this->name(i), name)) {
      first = i;
      break;
    }
  }
  if (first == entries_.size()) {
    add(name, value);
    return;
  }
  // Later duplicates go first, while name (which may view bytes_) is still valid; their bytes
  // stay in place until compaction, so value may still view them.
  size_t index = 0;
  removeIf([&](const Entry&) {
    const size_t i = index++;
    return i > first && nameEquals(this->name(i), name);
  });
  const uint32_t value_offset = append(value);
  Entry& kept = entries_[first];
  dead_bytes_ += kept.value_length;
  kept.value_offset = value_offset;
  kept.value_length = static_cast<uint32_t>(value.size());
  compactIfWasteful();
}

size_t HeaderMap::remove(std::string_view name) {
  const size_t removed = removeIf([&](const Entry& e) {
    return nameEquals(std::string_view(bytes_.data() + e.name_offset, e.name_length), name);
  });
  compactIfWasteful();
  return removed;
}

size_t HeaderMap::removePrefix(std::string_view prefix) {
  const size_t removed = removeIf([&](const Entry& e) {
    return e.name_length >= prefix.size() &&
           nameEquals(std::string_view(bytes_.data() + e.name_offset, prefix.size()), prefix);
  });
  compactIfWasteful();
  return removed;
}

void HeaderMap::compactIfWasteful() {
  if (entries_.empty()) {
    clear();
    return;
  }
  if (dead_bytes_ * 2 <= bytes_.size()) return;
  std::string packed;
  packed.reserve(bytes_.size() - dead_bytes_);
  for (Entry& e : entries_) {
    const auto name_offset = static_cast<uint32_t>(packed.size());
    packed.append(bytes_, e.name_offset, e.name_length);
    const auto value_offset = static_cast<uint32_t>(packed.size());
    packed.append(bytes_, e.value_offset, e.value_length);
    e.name_offset = name_offset;
    e.value_offset = value_offset;
  }
  bytes_.swap(packed);
  dead_bytes_ = 0;
}

void HeaderMap::clear() noexcept {
  bytes_.clear();  // keeps the capacity for the next message
  entries_.clear();
  dead_bytes_ = 0;
}

std::optional<std::string_view> HeaderMap::get(std::string_view name) const noexcept {
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (nameEquals(this->name(i), name)) return value(i);
  }
  return std::nullopt;
}

size_t HeaderMap::count(std::string_view name) const noexcept {
  size_t n = 0;
  for (size_t i = 0; i < entries_.size(); ++i) n += nameEquals(this->name(i), name) ? 1 : 0;
  return n;
}

std::string HeaderMap::joined(std::string_view name) const {
  std::string out;
  forEach(name, [&](std::string_view value) {
    if (!out.empty()) out += ", ";
    out += value;
  });
  return out;
}

bool HeaderMap::hasToken(std::string_view name, std::string_view token) const noexcept {
  if (token.empty()) return false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!nameEquals(this->name(i), name)) continue;
    std::string_view rest = value(i);
    while (true) {
      const size_t comma = rest.find(',');
      if (nameEquals(ascii::trimOws(rest.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

size_t HeaderMap::byteSize() const noexcept {
  size_t n = 0;
  for (const Entry& e : entries_) n += e.name_length + e.value_length + 4;  // ": " and CRLF
  return n;
}

void HeaderMap::serialize(std::string& out) const {
  out.reserve(out.size() + byteSize());
  for (size_t i = 0; i < entries_.size(); ++i) {
    out.append(name(i));
    out.append(": ");
    out.append(value(i));
    out.append("\r\n");
  }
}

bool HeaderMap::nameEquals(std::string_view a, std::string_view b) noexcept {
  return ascii::equalsIgnoreCase(a, b);
}

}  // namespace tracecar::http
