#include "propagation/baggage.h"

#include <algorithm>
#include <array>
#include <limits>
#include <new>

#include "base/ascii.h"
#include "propagation/hex.h"
#include "propagation/percent_encoding.h"

namespace tracecar::propagation {
namespace {

constexpr uint8_t kTchar = 0x01;
constexpr uint8_t kOctet = 0x02;  // baggage-octet
constexpr uint8_t kOws = 0x04;

// One table lookup per byte: the whole grammar is three character classes.
constexpr std::array<uint8_t, 256> kClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] |= kTchar;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] |= kTchar;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] |= kTchar;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<uint8_t>(c)] |= kTchar;
  // %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
  for (int c = 0x21; c <= 0x7e; ++c) {
    if (c != '"' && c != ',' && c != ';' && c != '\\') t[static_cast<size_t>(c)] |= kOctet;
  }
  t[static_cast<size_t>(' ')] |= kOws;
  t[static_cast<size_t>('\t')] |= kOws;
  return t;
}();

bool is(char c, uint8_t cls) noexcept { return (kClass[static_cast<uint8_t>(c)] & cls) != 0; }

// Kept members address their parts with uint32_t offsets.
constexpr size_t kMaxStoredBytes = std::numeric_limits<uint32_t>::max();

// Reading position over one member's text; every scan stops at the first byte outside its class.
struct Cursor {
  std::string_view s;
  size_t pos = 0;

  bool atEnd() const noexcept { return pos == s.size(); }
  bool take(char c) noexcept {
    if (atEnd() || s[pos] != c) return false;
    ++pos;
    return true;
  }
  size_t skip(uint8_t cls) noexcept {
    const size_t start = pos;
    while (!atEnd() && is(s[pos], cls)) ++pos;
    return pos - start;
  }
};

// At the start of a property (OWS before it already skipped): key [OWS "=" OWS value] OWS.
bool scanProperty(Cursor& in) noexcept {
  if (in.skip(kTchar) == 0) return false;
  in.skip(kOws);
  if (in.take('=')) {
    in.skip(kOws);
    in.skip(kOctet);
    in.skip(kOws);
  }
  return true;
}

// OWS property *( OWS ";" OWS property ) OWS, to the end of the text.
bool scanProperties(Cursor& in) noexcept {
  while (true) {
    in.skip(kOws);
    if (!scanProperty(in)) return false;
    if (in.atEnd()) return true;
    if (!in.take(';')) return false;
  }
}

struct Layout {
  uint32_t key_length = 0;
  uint32_t value_offset = 0;
  uint32_t value_length = 0;
  uint32_t properties_offset = 0;
};

// text is a member with the OWS around it already trimmed, at most kMaxStoredBytes long.
bool scanMember(std::string_view text, Layout& out) noexcept {
  Cursor in{text};
  out.key_length = static_cast<uint32_t>(in.skip(kTchar));
  if (out.key_length == 0) return false;
  in.skip(kOws);
  if (!in.take('=')) return false;
  in.skip(kOws);
  out.value_offset = static_cast<uint32_t>(in.pos);
  out.value_length = static_cast<uint32_t>(in.skip(kOctet));
  in.skip(kOws);
  if (in.atEnd()) {
    out.properties_offset = static_cast<uint32_t>(text.size());
    return true;
  }
  if (!in.take(';')) return false;
  out.properties_offset = static_cast<uint32_t>(in.pos);
  return scanProperties(in);
}

std::string_view trimOws(std::string_view s) noexcept {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && is(s[begin], kOws)) ++begin;
  while (end > begin && is(s[end - 1], kOws)) --end;
  return s.substr(begin, end - begin);
}

// The longest-prefix rule, applied one valid member at a time in list order.
class Budget {
 public:
  explicit Budget(const BaggageLimits& limits) noexcept
      : max_members_(std::max(limits.max_members, BaggageLimits::kMinMembers)),
        max_bytes_(std::min(std::max(limits.max_bytes, BaggageLimits::kMinBytes),
                            kMaxStoredBytes)) {}

  // True if the member (length bytes) is kept; otherwise counts why it was dropped.
  bool admit(size_t length, BaggageReport& report) noexcept {
    const size_t index = seen_++;
    const size_t separator = index == 0 ? 0 : 1;
    if (!full_ && index < max_members_ && length <= max_bytes_ - bytes_ &&
        separator <= max_bytes_ - bytes_ - length) {
      bytes_ += separator + length;
      return true;
    }
    full_ = true;  // keep a prefix: nothing after a dropped member may be kept
    bump(index >= max_members_ ? report.dropped_member_limit : report.dropped_byte_limit);
    return false;
  }

  static void bump(uint32_t& counter) noexcept {
    if (counter != std::numeric_limits<uint32_t>::max()) ++counter;
  }

 private:
  size_t max_members_;
  size_t max_bytes_;
  size_t seen_ = 0;
  size_t bytes_ = 0;
  bool full_ = false;
};

// Length of the well-formed UTF-8 sequence at s[i] (Unicode Table 3-7), or, if there is none,
// of its maximal subpart (at least 1) as a negative number.
int utf8Sequence(std::string_view s, size_t i) noexcept {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t lead = byte(i);
  if (lead < 0x80) return 1;
  int need = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    need = 1;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    need = 2;
    if (lead == 0xe0) lo = 0xa0;  // overlong
    if (lead == 0xed) hi = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    need = 3;
    if (lead == 0xf0) lo = 0x90;  // overlong
    if (lead == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return -1;
  }
  int got = 0;
  while (got < need) {
    const size_t k = i + 1 + static_cast<size_t>(got);
    if (k >= s.size() || byte(k) < lo || byte(k) > hi) return -(got + 1);
    lo = 0x80;
    hi = 0xbf;
    ++got;
  }
  return need + 1;
}

// The byte at raw[i], percent-decoded; moves i past it (past all three characters of an escape).
// A '%' not followed by two hex digits is itself.
char decodeAt(std::string_view raw, size_t& i) noexcept {
  if (raw[i] == '%' && raw.size() - i >= 3) {
    const int8_t hi = hex::kAnyCaseTable[static_cast<uint8_t>(raw[i + 1])];
    const int8_t lo = hex::kAnyCaseTable[static_cast<uint8_t>(raw[i + 2])];
    if (hi >= 0 && lo >= 0) {
      i += 3;
      return static_cast<char>((hi << 4) | lo);
    }
  }
  return raw[i++];
}

bool isAscii(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
}

bool keysMatch(std::string_view a, std::string_view b, Baggage::KeyMatch match) noexcept {
  return match == Baggage::KeyMatch::kExact ? a == b : ascii::equalsIgnoreCase(a, b);
}

// Whether a member whose raw value is raw reads, in value(), as one set to value would.
bool readsAs(std::string_view raw, std::string_view value) {
  // Byte by byte first, allocating nothing: equal bytes read the same, and different bytes
  // read differently unless one side holds a byte >= 0x80 (invalid UTF-8 reads as U+FFFD).
  bool same = true;
  bool ascii = true;
  size_t j = 0;
  for (size_t i = 0; i < raw.size(); ++j) {
    const char c = decodeAt(raw, i);
    ascii = ascii && static_cast<uint8_t>(c) < 0x80;
    same = same && j < value.size() && value[j] == c;
  }
  if (same && j == value.size()) return true;
  if (ascii && isAscii(value)) return false;
  std::string encoded;
  Baggage::encodeValue(value, encoded);
  return Baggage::decodeValue(raw) == Baggage::decodeValue(encoded);
}

}  // namespace

bool Baggage::isValidKey(std::string_view key) noexcept {
  Cursor in{key};
  return in.skip(kTchar) > 0 && in.atEnd();
}

bool Baggage::isValidProperties(std::string_view properties) noexcept {
  Cursor in{properties};
  return scanProperties(in);
}

BaggageReport Baggage::parse(std::span<const std::string_view> fields,
                             const BaggageLimits& limits) {
  BaggageReport report;
  members_.clear();
  Budget budget(limits);
  try {
    size_t pieces = 0;
    for (std::string_view field : fields) {
      pieces += 1 + static_cast<size_t>(std::count(field.begin(), field.end(), ','));
    }
    members_.reserve(std::min(pieces, std::max(limits.max_members, BaggageLimits::kMinMembers)));

    // ',' cannot occur inside a valid member, so splitting on it first is exact.
    for (std::string_view field : fields) {
      size_t start = 0;
      while (start <= field.size()) {
        const size_t comma = std::min(field.find(',', start), field.size());
        const std::string_view text = trimOws(field.substr(start, comma - start));
        start = comma + 1;
        if (text.empty()) continue;  // ",," and blank fields are allowed and mean nothing
        Layout layout;
        // Over 4 GiB cannot be addressed, let alone fit the limits: treat it as unreadable.
        if (text.size() > kMaxStoredBytes || !scanMember(text, layout)) {
          Budget::bump(report.dropped_invalid);
          continue;
        }
        if (!budget.admit(text.size(), report)) continue;
        members_.push_back(Entry{std::string(text), layout.key_length, layout.value_offset,
                                 layout.value_length, layout.properties_offset});
      }
    }
  } catch (const std::bad_alloc&) {
    // Out of memory is the one failure left: propagate nothing rather than a wrong list.
    report.dropped_byte_limit += static_cast<uint32_t>(members_.size());
    members_.clear();
  }
  report.kept = static_cast<uint32_t>(members_.size());
  return report;
}

BaggageReport Baggage::enforce(const BaggageLimits& limits) {
  BaggageReport report;
  Budget budget(limits);
  size_t keep = 0;
  while (keep < members_.size() && budget.admit(members_[keep].text.size(), report)) ++keep;
  for (size_t i = keep + 1; i < members_.size(); ++i) budget.admit(members_[i].text.size(), report);
  members_.resize(keep);
  report.kept = static_cast<uint32_t>(members_.size());
  return report;
}

Baggage::Member Baggage::member(size_t index) const noexcept {
  if (index >= members_.size()) return {};
  const Entry& e = members_[index];
  const std::string_view text = e.text;
  return Member{text.substr(0, e.key_length), text.substr(e.value_offset, e.value_length),
                text.substr(e.properties_offset)};
}

std::optional<std::string> Baggage::value(std::string_view key) const {
  for (size_t i = members_.size(); i-- > 0;) {
    const Member m = member(i);
    if (m.key == key) return decodeValue(m.raw_value);
  }
  return std::nullopt;
}

bool Baggage::contains(std::string_view key, KeyMatch match) const noexcept {
  return std::any_of(members_.begin(), members_.end(),
                     [&](const Entry& e) { return keysMatch(keyOf(e), key, match); });
}

bool Baggage::makeEntry(std::string_view key, std::string_view value, std::string_view properties,
                        Entry& out) {
  Entry e{};
  e.text.reserve(key.size() + 1 + value.size() + 1 + properties.size());
  e.text.append(key);
  e.text.push_back('=');
  encodeValue(value, e.text);
  e.key_length = static_cast<uint32_t>(key.size());
  e.value_offset = e.key_length + 1;
  const size_t value_length = e.text.size() - e.value_offset;
  if (!properties.empty()) {
    e.text.push_back(';');
    e.text.append(properties);
  }
  if (e.text.size() > kMaxStoredBytes) return false;
  e.value_length = static_cast<uint32_t>(value_length);
  e.properties_offset =
      static_cast<uint32_t>(properties.empty() ? e.text.size() : e.value_offset + value_length + 1);
  out = std::move(e);
  return true;
}

bool Baggage::set(std::string_view key, std::string_view value, std::string_view properties) {
  properties = trimOws(properties);
  if (!isValidKey(key) || (!properties.empty() && !isValidProperties(properties))) return false;
  Entry e{};
  if (!makeEntry(key, value, properties, e)) return false;

  // Grow geometrically up front, so nothing below can fail half-way.
  if (members_.size() == members_.capacity()) {
    members_.reserve(std::max<size_t>(8, 2 * members_.capacity()));
  }
  // key may point into one of our members (a view from member()): compare against our copy.
  const std::string_view own_key = keyOf(e);
  std::erase_if(members_, [&](const Entry& m) { return keyOf(m) == own_key; });
  members_.push_back(std::move(e));
  return true;
}

bool Baggage::merge(std::string_view key, std::string_view value, KeyMatch match) {
  if (!isValidKey(key)) return false;
  size_t last = members_.size();
  for (size_t i = members_.size(); i-- > 0;) {
    if (keysMatch(keyOf(members_[i]), key, match)) {
      last = i;
      break;
    }
  }
  if (last == members_.size()) return set(key, value);
  if (readsAs(member(last).raw_value, value)) return false;

  Entry e{};
  if (!makeEntry(keyOf(members_[last]), value, {}, e)) return false;
  members_[last] = std::move(e);
  // The other matches all lie before the last one. key may point into a member that moves:
  // compare against the last one's key, which stays put while those before it are removed.
  const std::string_view own_key = keyOf(members_[last]);
  const auto before = members_.begin() + static_cast<std::ptrdiff_t>(last);
  members_.erase(std::remove_if(members_.begin(), before,
                                [&](const Entry& m) { return keysMatch(keyOf(m), own_key, match); }),
                 before);
  return true;
}

bool Baggage::erase(std::string_view key) {
  // key may point into a member that erase_if moves: compare against a copy.
  const std::string own_key(key);
  return std::erase_if(members_, [&](const Entry& e) {
           return std::string_view(e.text).substr(0, e.key_length) == own_key;
         }) > 0;
}

void Baggage::clear() noexcept { members_.clear(); }

size_t Baggage::serializedLength() const noexcept {
  size_t length = members_.empty() ? 0 : members_.size() - 1;
  for (const Entry& e : members_) length += e.text.size();
  return length;
}

void Baggage::serialize(std::string& out) const {
  out.reserve(out.size() + serializedLength());
  for (size_t i = 0; i < members_.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(members_[i].text);
  }
}

std::string Baggage::toString() const {
  std::string out;
  serialize(out);
  return out;
}

std::string Baggage::decodeValue(std::string_view raw) {
  std::string bytes;
  bytes.reserve(raw.size());
  bool ascii = true;
  for (size_t i = 0; i < raw.size();) {
    const char c = decodeAt(raw, i);
    ascii = ascii && static_cast<uint8_t>(c) < 0x80;
    bytes.push_back(c);
  }
  if (ascii) return bytes;

  // Validate, and only rebuild when something is not UTF-8 (the rare case).
  size_t i = 0;
  while (i < bytes.size()) {
    const int n = utf8Sequence(bytes, i);
    if (n < 0) break;
    i += static_cast<size_t>(n);
  }
  if (i == bytes.size()) return bytes;

  std::string out(bytes, 0, i);
  out.reserve(bytes.size() + 8);
  while (i < bytes.size()) {
    const int n = utf8Sequence(bytes, i);
    if (n > 0) {
      out.append(bytes, i, static_cast<size_t>(n));
      i += static_cast<size_t>(n);
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD for each maximal invalid subpart
      i += static_cast<size_t>(-n);
    }
  }
  return out;
}

void Baggage::encodeValue(std::string_view value, std::string& out) {
  appendPercentEncoded(value, out, [](char c) { return is(c, kOctet) && c != '%'; });
}

}  // namespace tracecar::propagation
