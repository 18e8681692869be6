#include "propagation/tracestate.h"

#include <algorithm>
#include <cstring>

namespace tracecar::propagation {

namespace {

// Character classes of the Level 2 grammar, one table lookup per byte.
constexpr uint8_t kKeyFirst = 1;   // lcalpha / DIGIT
constexpr uint8_t kKeyChar = 2;    // lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
constexpr uint8_t kValueChar = 4;  // chr: %x20-7E except "," and "="

constexpr std::array<uint8_t, 256> makeClasses() {
  std::array<uint8_t, 256> classes{};
  for (int c = 'a'; c <= 'z'; ++c) classes[c] |= kKeyFirst | kKeyChar;
  for (int c = '0'; c <= '9'; ++c) classes[c] |= kKeyFirst | kKeyChar;
  for (char c : {'_', '-', '*', '/', '@'}) classes[static_cast<uint8_t>(c)] |= kKeyChar;
  for (int c = 0x20; c <= 0x7e; ++c) {
    if (c != ',' && c != '=') classes[c] |= kValueChar;
  }
  return classes;
}
constexpr std::array<uint8_t, 256> kClasses = makeClasses();

bool is(char c, uint8_t cls) noexcept { return (kClasses[static_cast<uint8_t>(c)] & cls) != 0; }

bool isOws(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trimOws(std::string_view s) noexcept {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && isOws(s[begin])) ++begin;
  while (end > begin && isOws(s[end - 1])) --end;
  return std::string_view(s.data() + begin, end - begin);
}

struct PendingMember {
  std::string_view key;
  std::string_view value;
};
using PendingList = std::array<PendingMember, TraceState::kMaxMembers>;

// Splits and checks every member without copying, so a list that is discarded costs nothing.
TraceStateStatus scan(std::span<const std::string_view> fields, PendingList& out,
                      size_t& count) noexcept {
  count = 0;
  for (const std::string_view field : fields) {
    size_t pos = 0;
    while (pos <= field.size()) {
      size_t comma = field.find(',', pos);
      if (comma == std::string_view::npos) comma = field.size();
      const std::string_view member = trimOws(std::string_view(field.data() + pos, comma - pos));
      pos = comma + 1;
      if (member.empty()) continue;  // empty and whitespace-only members are allowed
      if (count == TraceState::kMaxMembers) return TraceStateStatus::kTooManyMembers;
      const size_t eq = member.find('=');
      if (eq == std::string_view::npos) return TraceStateStatus::kInvalidMember;
      const std::string_view key(member.data(), eq);
      const std::string_view value(member.data() + eq + 1, member.size() - eq - 1);
      if (!TraceState::isValidKey(key)) return TraceStateStatus::kInvalidKey;
      if (!TraceState::isValidValue(value)) return TraceStateStatus::kInvalidValue;
      for (size_t i = 0; i < count; ++i) {
        if (out[i].key == key) return TraceStateStatus::kDuplicateKey;
      }
      out[count++] = PendingMember{key, value};
    }
  }
  return count == 0 ? TraceStateStatus::kEmpty : TraceStateStatus::kValid;
}

}  // namespace

std::string_view toString(TraceStateStatus status) noexcept {
  switch (status) {
    case TraceStateStatus::kValid: return "valid";
    case TraceStateStatus::kEmpty: return "empty";
    case TraceStateStatus::kNotParsed: return "not_parsed";
    case TraceStateStatus::kTooManyMembers: return "too_many_members";
    case TraceStateStatus::kDuplicateKey: return "duplicate_key";
    case TraceStateStatus::kInvalidKey: return "invalid_key";
    case TraceStateStatus::kInvalidValue: return "invalid_value";
    case TraceStateStatus::kInvalidMember: return "invalid_member";
  }
  return "unknown";
}

bool TraceState::isValidKey(std::string_view key) noexcept {
  if (key.empty() || key.size() > kMaxKeyLength || !is(key[0], kKeyFirst)) return false;
  return std::all_of(key.begin() + 1, key.end(), [](char c) { return is(c, kKeyChar); });
}

bool TraceState::isValidValue(std::string_view value) noexcept {
  // The last character must not be a space: trailing spaces are OWS, not value.
  if (value.empty() || value.size() > kMaxValueLength || value.back() == ' ') return false;
  return std::all_of(value.begin(), value.end(), [](char c) { return is(c, kValueChar); });
}

TraceStateStatus TraceState::parse(std::span<const std::string_view> fields) noexcept {
  clear();
  PendingList pending;
  size_t count = 0;
  const TraceStateStatus status = scan(fields, pending, count);
  if (status != TraceStateStatus::kValid) return status;

  size_t bytes = 0;
  for (size_t i = 0; i < count; ++i) bytes += pending[i].key.size() + 1 + pending[i].value.size();
  buffer_.reserve(bytes);  // the one allocation, and none once the capacity has grown
  for (size_t i = 0; i < count; ++i) {
    const auto& [key, value] = pending[i];
    slots_[i] = Slot{static_cast<uint32_t>(buffer_.size()), static_cast<uint16_t>(key.size()),
                     static_cast<uint16_t>(value.size())};
    buffer_.append(key);
    buffer_.push_back('=');
    buffer_.append(value);
  }
  count_ = count;
  return TraceStateStatus::kValid;
}

TraceState::Member TraceState::member(size_t index) const noexcept {
  if (index >= count_) return Member{};
  const Slot& slot = slots_[index];
  const char* key = buffer_.data() + slot.offset;
  return Member{std::string_view(key, slot.key_length),
                std::string_view(key + slot.key_length + 1, slot.value_length)};
}

size_t TraceState::indexOf(std::string_view key) const noexcept {
  for (size_t i = 0; i < count_; ++i) {
    if (member(i).key == key) return i;
  }
  return count_;
}

std::optional<std::string_view> TraceState::get(std::string_view key) const noexcept {
  const size_t index = indexOf(key);
  if (index == count_) return std::nullopt;
  return member(index).value;
}

void TraceState::removeAt(size_t index) noexcept {
  const uint32_t offset = slots_[index].offset;
  const size_t length = entryLength(index);
  // Keeps buffer_ compact, so its size is bounded by the live entries.
  buffer_.erase(offset, length);
  for (size_t i = 0; i < count_; ++i) {
    if (slots_[i].offset > offset) slots_[i].offset -= static_cast<uint32_t>(length);
  }
  std::copy(slots_.begin() + static_cast<ptrdiff_t>(index) + 1,
            slots_.begin() + static_cast<ptrdiff_t>(count_),
            slots_.begin() + static_cast<ptrdiff_t>(index));
  --count_;
}

bool TraceState::set(std::string_view key, std::string_view value) {
  if (!isValidKey(key) || !isValidValue(value)) return false;
  // Copied first: key and value may point into buffer_, which the steps below move.
  char entry[kMaxKeyLength + 1 + kMaxValueLength];
  std::memcpy(entry, key.data(), key.size());
  entry[key.size()] = '=';
  std::memcpy(entry + key.size() + 1, value.data(), value.size());
  const size_t length = key.size() + 1 + value.size();
  const size_t existing = indexOf(std::string_view(entry, key.size()));

  // The only step that can throw, taken before anything changes.
  buffer_.reserve(buffer_.size() + length);
  if (existing != count_) {
    removeAt(existing);
  } else if (count_ == kMaxMembers) {
    removeAt(count_ - 1);  // the list is full: the rightmost member makes room
  }
  const auto offset = static_cast<uint32_t>(buffer_.size());
  buffer_.append(entry, length);
  std::copy_backward(slots_.begin(), slots_.begin() + static_cast<ptrdiff_t>(count_),
                     slots_.begin() + static_cast<ptrdiff_t>(count_) + 1);
  slots_[0] = Slot{offset, static_cast<uint16_t>(key.size()), static_cast<uint16_t>(value.size())};
  ++count_;
  return true;
}

bool TraceState::erase(std::string_view key) {
  const size_t index = indexOf(key);
  if (index == count_) return false;
  removeAt(index);
  return true;
}

void TraceState::clear() noexcept {
  buffer_.clear();  // keeps the capacity for the next parse
  count_ = 0;
}

size_t TraceState::truncate(size_t max_length) {
  size_t removed = 0;
  size_t length = serializedLength();
  while (length > max_length && count_ > 0) {
    size_t victim = count_ - 1;
    for (size_t i = count_; i-- > 0;) {
      if (entryLength(i) > kLongEntryThreshold) {
        victim = i;  // the rightmost long entry goes before any short one
        break;
      }
    }
    length -= entryLength(victim) + (count_ > 1 ? 1 : 0);
    removeAt(victim);
    ++removed;
  }
  return removed;
}

size_t TraceState::serializedLength() const noexcept {
  // buffer_ holds exactly the live entries; add one comma between each pair.
  return count_ == 0 ? 0 : buffer_.size() + count_ - 1;
}

void TraceState::serialize(std::string& out) const {
  out.reserve(out.size() + serializedLength());
  for (size_t i = 0; i < count_; ++i) {
    if (i > 0) out.push_back(',');
    out.append(buffer_, slots_[i].offset, entryLength(i));
  }
}

std::string TraceState::toString() const {
  std::string out;
  serialize(out);
  return out;
}

}  // namespace tracecar::propagation
