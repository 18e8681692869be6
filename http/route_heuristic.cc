#include "http/route_heuristic.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "http/route_template.h"

namespace tracecar::http {
namespace {

constexpr uint8_t kSafe = 0x01;  // unreserved: kept segments hold nothing else
constexpr uint8_t kDigit = 0x02;
constexpr uint8_t kUpper = 0x04;
constexpr uint8_t kLower = 0x08;
constexpr uint8_t kHex = 0x10;
constexpr uint8_t kSeparator = 0x20;  // unreserved punctuation: . _ ~ -
constexpr uint8_t kBase64Url = 0x40;  // letters, digits, - and _

constexpr std::array<uint8_t, 256> kClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = kSafe | kBase64Url | kDigit | kHex;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] = kSafe | kBase64Url | kLower;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] = kSafe | kBase64Url | kUpper;
  for (int c = 'a'; c <= 'f'; ++c) t[static_cast<size_t>(c)] |= kHex;
  for (int c = 'A'; c <= 'F'; ++c) t[static_cast<size_t>(c)] |= kHex;
  for (char c : std::string_view("._~-")) t[static_cast<uint8_t>(c)] = kSafe | kSeparator;
  t[static_cast<uint8_t>('-')] |= kBase64Url;
  t[static_cast<uint8_t>('_')] |= kBase64Url;
  return t;
}();

uint8_t classOf(char c) noexcept { return kClass[static_cast<uint8_t>(c)]; }

bool isUuid(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : (classOf(s[i]) & kHex) == 0) return false;
  }
  return true;
}

// 1-8 letters and digits, at least one a letter: "json", "png", "mp4"; not "0" in "1.0".
bool isExtension(std::string_view s) noexcept {
  if (s.empty() || s.size() > 8) return false;
  bool letter = false;
  for (char c : s) {
    const uint8_t cls = classOf(c);
    if ((cls & (kDigit | kUpper | kLower)) == 0) return false;
    letter |= (cls & (kUpper | kLower)) != 0;
  }
  return letter;
}

// "png", "tar.gz": one or more extensions separated by '.'.
bool isExtensionList(std::string_view s) noexcept {
  while (true) {
    const size_t dot = s.find('.');
    if (!isExtension(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

void appendSegment(std::string_view segment, std::string& out) {
  if (looksLikeId(segment)) {
    out += kIdSegment;
    return;
  }
  const size_t dot = segment.find('.');
  if (dot != std::string_view::npos && dot > 0 && isExtensionList(segment.substr(dot + 1)) &&
      looksLikeId(segment.substr(0, dot))) {
    out += kIdSegment;
    out += segment.substr(dot);
    return;
  }
  out += segment;
}

}  // namespace

bool looksLikeId(std::string_view s) noexcept {
  if (s.empty()) return false;
  if (s.size() > kMaxKeptSegmentLength) return true;
  size_t digits = 0;
  size_t separators = 0;
  size_t hex = 0;
  size_t run = 0;
  size_t longest_run = 0;
  size_t letter_pairs = 0;
  size_t case_changes = 0;
  size_t upper_pairs = 0;     // two capitals in a row
  size_t lone_lowers = 0;     // one lowercase letter between two capitals ("KqP")
  uint8_t previous = 0;
  uint8_t before_previous = 0;
  uint8_t all = 0xff;
  for (char c : s) {
    const uint8_t cls = classOf(c);
    if ((cls & kSafe) == 0) return true;
    if (cls & kDigit) {
      ++digits;
      longest_run = std::max(longest_run, ++run);
    } else {
      run = 0;
    }
    all &= cls;
    separators += (cls & kSeparator) != 0;
    hex += (cls & kHex) != 0;
    const uint8_t letter = cls & (kUpper | kLower);
    const uint8_t previous_letter = previous & (kUpper | kLower);
    if (letter && previous_letter) {
      ++letter_pairs;
      case_changes += letter != previous_letter;
      upper_pairs += letter == kUpper && previous_letter == kUpper;
      lone_lowers += letter == kUpper && previous_letter == kLower &&
                     (before_previous & (kUpper | kLower)) == kUpper;
    }
    before_previous = previous;
    previous = cls;
  }
  if (digits > 0 && digits + separators == s.size()) return true;
  if (longest_run >= 4) return true;
  if (s.size() >= 8 && hex == s.size() && digits > 0) return true;
  if (isUuid(s)) return true;
  // Random letters switch case at about half of the pairs, and half of those switches come as
  // two capitals in a row or a lone lowercase letter between capitals. camelCase words switch
  // case about as often once their words are short ("findAllByCustomerId"), but a capital
  // starts a word of two letters or more, so they have few of either.
  if (s.size() >= 16 && (all & kBase64Url) &&
      (digits > 0 || (case_changes * 3 > letter_pairs &&
                      (upper_pairs * 10 > letter_pairs || lone_lowers * 5 > letter_pairs)))) {
    return true;
  }
  return false;
}

void heuristicRoute(std::string_view path, std::string& out) {
  out.clear();
  path = stripQueryAndFragment(path);
  if (path.empty()) {
    out += '/';
    return;
  }
  if (path.front() != '/') {
    out += kOtherRoute;
    return;
  }
  const std::string_view rest = path.substr(1);
  size_t pos = 0;
  for (size_t count = 0;; ++count) {
    if (count == kMaxHeuristicSegments) {
      out += '/';
      out += kRestSegment;
      return;
    }
    const size_t slash = rest.find('/', pos);
    const size_t end = slash == std::string_view::npos ? rest.size() : slash;
    out += '/';
    appendSegment(rest.substr(pos, end - pos), out);
    if (slash == std::string_view::npos) return;
    pos = slash + 1;
  }
}

}  // namespace tracecar::http
