#include "http/header_map.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <stdexcept>
#include <utility>

#include "base/ascii.h"

namespace tracecar::http {
namespace {

constexpr size_t kMaxBytes = std::numeric_limits<uint32_t>::max();

// Where text starts inside the bytes at begin, if it is a view of them.
std::optional<size_t> offsetIn(const char* begin, size_t size, std::string_view text) noexcept {
  const std::less<const char*> before;
  const char* end = begin + size;
  if (text.empty() || before(text.data(), begin) || !before(text.data(), end)) return std::nullopt;
  return static_cast<size_t>(text.data() - begin);
}

constexpr size_t kMaxNameBytes = 0x7fffffff;  // a name's length shares its word with a flag
// The first buffer of a map: room for a typical message head, so it grows once or never.
constexpr size_t kFirstBufferBytes = 256;

}  // namespace

HeaderMap::Bytes::Bytes(const Bytes& other) {
  reserve(other.size_);
  append(std::string_view(other.data_, other.size_));
}

HeaderMap::Bytes::Bytes(Bytes&& other) noexcept
    : data_(other.data_), size_(other.size_), capacity_(other.capacity_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.capacity_ = 0;
}

HeaderMap::Bytes& HeaderMap::Bytes::operator=(const Bytes& other) {
  if (this != &other) {
    size_ = 0;
    reserve(other.size_);  // reuses the buffer when it is large enough
    append(std::string_view(other.data_, other.size_));
  }
  return *this;
}

HeaderMap::Bytes& HeaderMap::Bytes::operator=(Bytes&& other) noexcept {
  if (this != &other) {
    delete[] data_;
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

HeaderMap::Bytes::~Bytes() { delete[] data_; }

void HeaderMap::Bytes::reserve(size_t capacity) {
  if (capacity <= capacity_) return;
  char* bigger = new char[capacity];
  if (size_ > 0) std::memcpy(bigger, data_, size_);
  delete[] data_;
  data_ = bigger;
  capacity_ = capacity;
}

void HeaderMap::Bytes::swap(Bytes& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(size_, other.size_);
  std::swap(capacity_, other.capacity_);
}

size_t HeaderMap::size() const noexcept { return entries_.size(); }

std::string_view HeaderMap::name(size_t index) const noexcept {
  const Entry& e = entries_[index];
  return std::string_view(bytes_.data() + e.name_offset, e.nameLength());
}

std::string_view HeaderMap::value(size_t index) const noexcept {
  const Entry& e = entries_[index];
  return std::string_view(bytes_.data() + e.value_offset, e.value_length);
}

bool HeaderMap::verified(size_t index) const noexcept {
  return (entries_[index].name_bits & kVerified) != 0;
}

void HeaderMap::reserve(size_t fields, size_t bytes) {
  entries_.reserve(fields);
  bytes_.reserve(bytes);
}

uint32_t HeaderMap::append(std::string_view text) {
  if (text.size() > kMaxBytes - bytes_.size()) throw std::length_error("HeaderMap over 4 GiB");
  // text may view bytes_ itself (h.set("x", *h.get("y"))): growing would move it.
  const size_t needed = bytes_.size() + text.size();
  if (needed > bytes_.capacity()) {
    const std::optional<size_t> inside = offsetIn(bytes_.data(), bytes_.size(), text);
    bytes_.reserve(std::max({needed, 2 * bytes_.capacity(), kFirstBufferBytes}));
    if (inside) text = std::string_view(bytes_.data() + *inside, text.size());
  }
  const auto offset = static_cast<uint32_t>(bytes_.size());
  bytes_.append(text);
  return offset;
}

void HeaderMap::add(std::string_view name, std::string_view value) { addField(name, value, 0); }

void HeaderMap::addVerified(std::string_view name, std::string_view value) {
  addField(name, value, kVerified);
}

void HeaderMap::addField(std::string_view name, std::string_view value, uint32_t flags) {
  const size_t used = bytes_.size();
  if (name.size() + value.size() > kMaxBytes - used || name.size() > kMaxNameBytes) {
    throw std::length_error("HeaderMap over 4 GiB");
  }
  const size_t needed = used + name.size() + value.size();
  if (needed > bytes_.capacity()) {
    // Either view may point into bytes_ itself: grow first, then re-point them.
    const std::optional<size_t> name_inside = offsetIn(bytes_.data(), used, name);
    const std::optional<size_t> value_inside = offsetIn(bytes_.data(), used, value);
    bytes_.reserve(std::max({needed, 2 * bytes_.capacity(), kFirstBufferBytes}));
    if (name_inside) name = std::string_view(bytes_.data() + *name_inside, name.size());
    if (value_inside) value = std::string_view(bytes_.data() + *value_inside, value.size());
  }
  const auto name_offset = static_cast<uint32_t>(used);
  const auto value_offset = static_cast<uint32_t>(used + name.size());
  // The entry goes in before the bytes: the appends cannot throw once the room is reserved.
  entries_.push_back(Entry{name_offset, static_cast<uint32_t>(name.size()) | flags, value_offset,
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
  kept.name_bits &= ~kVerified;  // a value nobody checked
  dead_bytes_ += kept.value_length;
  kept.value_offset = value_offset;
  kept.value_length = static_cast<uint32_t>(value.size());
  compactIfWasteful();
}

size_t HeaderMap::remove(std::string_view name) {
  const size_t removed = removeIf([&](const Entry& e) {
    return nameEquals(std::string_view(bytes_.data() + e.name_offset, e.nameLength()), name);
  });
  compactIfWasteful();
  return removed;
}

size_t HeaderMap::removePrefix(std::string_view prefix) {
  const size_t removed = removeIf([&](const Entry& e) {
    return e.nameLength() >= prefix.size() &&
           nameEquals(std::string_view(bytes_.data() + e.name_offset, prefix.size()), prefix);
  });
  compactIfWasteful();
  return removed;
}

void HeaderMap::compactIfWasteful() {
  if (entries_.size() == 0) {
    clear();
    return;
  }
  if (dead_bytes_ * 2 <= bytes_.size()) return;
  Bytes packed;
  packed.reserve(bytes_.size() - dead_bytes_);
  for (Entry& e : entries_) {
    const auto name_offset = static_cast<uint32_t>(packed.size());
    packed.append(std::string_view(bytes_.data() + e.name_offset, e.nameLength()));
    const auto value_offset = static_cast<uint32_t>(packed.size());
    packed.append(std::string_view(bytes_.data() + e.value_offset, e.value_length));
    e.name_offset = name_offset;
    e.value_offset = value_offset;
  }
  bytes_.swap(packed);
  dead_bytes_ = 0;
}

HeaderMap& HeaderMap::operator=(const HeaderMap& other) {
  if (this != &other) {
    try {
      bytes_ = other.bytes_;  // reuses the buffer when it is large enough
      entries_ = other.entries_;
      dead_bytes_ = other.dead_bytes_;
    } catch (...) {
      clear();
      throw;
    }
  }
  return *this;
}

HeaderMap& HeaderMap::operator=(HeaderMap&& other) noexcept {
  if (this != &other) {
    bytes_ = std::move(other.bytes_);
    entries_ = std::move(other.entries_);
    dead_bytes_ = std::exchange(other.dead_bytes_, 0);
  }
  return *this;
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
  return fieldBytes() + 4 * entries_.size();  // ": " and CRLF
}

size_t HeaderMap::fieldBytes() const noexcept {
  // Every live name and value is in bytes_ once; what else is there is counted dead.
  return bytes_.size() - dead_bytes_;
}

void HeaderMap::serialize(std::string& out) const {
  // Sized once, then written in place: no append (and no capacity check) per piece.
  const size_t start = out.size();
  out.resize(start + byteSize());
  char* p = out.data() + start;
  const char* const bytes = bytes_.data();
  for (const Entry& e : entries_) {
    const size_t n = e.nameLength();
    std::memcpy(p, bytes + e.name_offset, n);
    p += n;
    p[0] = ':';
    p[1] = ' ';
    p += 2;
    std::memcpy(p, bytes + e.value_offset, e.value_length);
    p += e.value_length;
    p[0] = '\r';
    p[1] = '\n';
    p += 2;
  }
}

bool HeaderMap::nameEquals(std::string_view a, std::string_view b) noexcept {
  return ascii::equalsIgnoreCase(a, b);
}

}  // namespace tracecar::http
