#include "exporter/span.h"

#include <charconv>
#include <cstring>

#include "base/ascii.h"

namespace tracecar::exporter {

namespace {

bool isContinuation(unsigned char b) noexcept { return (b & 0xc0) == 0x80; }

void applyValueLength(AttributeValue& value, size_t max_chars) {
  if (auto* s = std::get_if<std::string>(&value)) {
    utf8::truncate(*s, max_chars);
  } else if (auto* array = std::get_if<StringArray>(&value)) {
    for (auto& item : *array) utf8::truncate(item, max_chars);
  }
}

// A non-negative decimal limit; nullopt for anything else.
std::optional<size_t> parseLimit(std::string_view text) noexcept {
  size_t parsed = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return parsed;
}

// A limit: the span variable, else its general form, else the lower layer's value (the span
// variable's setting); a value that is not a number is warned about and treated as not set.
void readLimit(const EnvLookup& env, const LowerLayer& lower, std::string_view span_name,
               std::string_view general_name, std::string_view default_text, size_t& out,
               std::vector<std::string>& warnings) {
  const std::optional<EnvValue> candidates[] = {
      readVariable(env, span_name), readVariable(env, general_name), readLower(lower, span_name)};
  const auto picked = pickSetting<size_t>(candidates, parseLimit, "is not a non-negative integer",
                                          default_text, warnings);
  if (picked) out = picked->first;
}

}  // namespace

void utf8::truncate(std::string& s, size_t max_chars) noexcept {
  if (s.size() <= max_chars) return;  // never more characters than bytes
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (isContinuation(static_cast<unsigned char>(s[i]))) continue;
    if (chars == max_chars) {
      s.resize(i);
      return;
    }
    ++chars;
  }
}

size_t utf8::sequenceLength(const unsigned char* p, size_t avail, size_t* bad_len) noexcept {
  const unsigned char b = p[0];
  if (b < 0x80) return 1;
  size_t need = 0;
  unsigned char lo = 0x80;  // the second byte's range narrows to rule out overlongs,
  unsigned char hi = 0xbf;  // surrogates and code points past U+10FFFF
  if (b >= 0xc2 && b <= 0xdf) {
    need = 1;
  } else if (b >= 0xe0 && b <= 0xef) {
    need = 2;
    if (b == 0xe0) lo = 0xa0;
    if (b == 0xed) hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    need = 3;
    if (b == 0xf0) lo = 0x90;
    if (b == 0xf4) hi = 0x8f;
  } else {
    *bad_len = 1;
    return 0;
  }
  size_t i = 1;
  for (; i <= need && i < avail; ++i) {
    const unsigned char c = p[i];
    const bool ok = i == 1 ? (c >= lo && c <= hi) : isContinuation(c);
    if (!ok) break;
  }
  if (i == need + 1) return i;
  *bad_len = i;
  return 0;
}

bool utf8::isValidNonAscii(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (i + 8 <= s.size()) {
      uint64_t word = 0;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t bad = 0;
    const size_t n = sequenceLength(p + i, s.size() - i, &bad);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t utf8::sanitizedSize(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t size = s.size();
  size_t i = 0;
  while (i < s.size()) {
    // Eight ASCII bytes at a time: span strings are nearly always ASCII.
    if (i + 8 <= s.size()) {
      uint64_t word = 0;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
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
    size = size - bad + 3;
    i += bad;
  }
  return size;
}

Attribute* Attributes::searchItem(std::string_view key) noexcept {
  for (auto& item : items_) {
    if (item.key == key) return &item;
  }
  return nullptr;
}

bool Attributes::replaceOrRoom(std::string_view key, AttributeValue& value,
                               const AttributeLimits& limits) {
  if (const auto* text = std::get_if<std::string>(&value)) {
    if (text->size() > kSpareStringCapacity) large_values_ = true;
  } else if (std::holds_alternative<StringArray>(value)) {
    large_values_ = true;
  }
  if (limits.value_length != std::numeric_limits<size_t>::max()) {
    applyValueLength(value, limits.value_length);
  }
  const uint64_t bit = keyBit(key);
  if (Attribute* item = findItem(key, bit)) {
    item->value = std::move(value);
    return false;
  }
  if (items_.size() >= limits.count) {
    ++dropped_;
    return false;
  }
  key_bits_ |= bit;
  return true;
}

void Attributes::set(std::string_view key, AttributeValue value, const AttributeLimits& limits) {
  if (replaceOrRoom(key, value, limits)) {
    items_.push_back(Attribute{AttributeKey(key), std::move(value)});
  }
}

void Attributes::setStatic(std::string_view key, AttributeValue value,
                           const AttributeLimits& limits) {
  if (replaceOrRoom(key, value, limits)) {
    items_.push_back(Attribute{AttributeKey::ofStatic(key), std::move(value)});
  }
}

[[gnu::always_inline]] inline Attribute* Attributes::addStatic(std::string_view key, uint64_t bit,
                                                               const AttributeLimits& limits) {
  if (items_.size() >= limits.count) {
    ++dropped_;
    return nullptr;
  }
  Attribute& item = items_.emplace_back();
  item.key.setStatic(key);
  key_bits_ |= bit;
  return &item;
}

void Attributes::setStaticString(std::string_view key, std::string_view value,
                                 const AttributeLimits& limits) {
  if (value.size() > kSpareStringCapacity) large_values_ = true;
  const uint64_t bit = keyBit(key);
  Attribute* item = findItem(key, bit);
  if (item != nullptr) {
    item->value = std::string(value);
  } else if ((item = addStatic(key, bit, limits)) != nullptr) {
    if (value.size() > std::string().capacity() && !spare_.empty()) {
      // Past the short-string size: a kept buffer (one big enough, if any) instead of a new one.
      size_t pick = spare_.size() - 1;
      for (size_t i = 0; i < spare_.size(); ++i) {
        if (spare_[i].capacity() >= value.size()) {
          pick = i;
          break;
        }
      }
      std::swap(spare_[pick], spare_.back());
      item->value.emplace<std::string>(std::move(spare_.back())).assign(value);
      spare_.pop_back();
    } else {
      item->value.emplace<std::string>(value);
    }
  } else {
    return;
  }
  if (limits.value_length != std::numeric_limits<size_t>::max()) {
    utf8::truncate(std::get<std::string>(item->value), limits.value_length);
  }
}

void Attributes::setStaticInt(std::string_view key, int64_t value, const AttributeLimits& limits) {
  const uint64_t bit = keyBit(key);
  Attribute* item = findItem(key, bit);
  if (item == nullptr && (item = addStatic(key, bit, limits)) == nullptr) return;
  item->value = value;
}

void Attributes::clearForReuse() noexcept {
  for (Attribute& item : items_) {
    if (spare_.size() == kSpareStrings) break;
    auto* text = std::get_if<std::string>(&item.value);
    if (text == nullptr || text->capacity() <= std::string().capacity() ||
        text->capacity() > kSpareStringCapacity) {
      continue;
    }
    if (spare_.capacity() == 0) {
      try {
        spare_.reserve(kSpareStrings);
      } catch (...) {
        break;  // nothing kept, as clear()
      }
    }
    text->clear();
    spare_.push_back(std::move(*text));  // within the capacity reserved: cannot throw
  }
  clear();
}

const AttributeValue* Attributes::find(std::string_view key) const noexcept {
  if ((key_bits_ & keyBit(key)) == 0) return nullptr;
  for (const auto& item : items_) {
    if (item.key == key) return &item.value;
  }
  return nullptr;
}

void SpanRecord::clearForReuse() noexcept {
  trace_id = TraceId{};
  span_id = SpanId{};
  parent_span_id = SpanId{};
  trace_state.clear();
  flags = 0;
  name.clear();
  kind = SpanKind::kInternal;
  start_unix_nano = 0;
  end_unix_nano = 0;
  attributes.clearForReuse();
  events.clear();
  dropped_events = 0;
  links.clear();
  dropped_links = 0;
  status_code = StatusCode::kUnset;
  status_message.clear();
  if (encoded.capacity() > kKeptEncodedCapacity) {
    std::string().swap(encoded);
  } else {
    encoded.clear();
  }
}

AttributeLimits attributeLimitsFromEnv(const EnvLookup& env, std::vector<std::string>& warnings,
                                       const LowerLayer& lower) {
  AttributeLimits limits;
  readLimit(env, lower, "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT",
            "the default 128", limits.count, warnings);
  readLimit(env, lower, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "the default (no limit)", limits.value_length,
            warnings);
  return limits;
}

}  // namespace tracecar::exporter
