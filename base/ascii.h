// ASCII text helpers shared by every module (header-only, no dependencies): header and
// environment values are ASCII grammars, so locale-aware functions would be both slower and
// wrong here.
#pragma once

#include <string>
#include <string_view>

namespace tracecar::ascii {

// Optional whitespace (RFC 9110 OWS): space and horizontal tab.
constexpr bool isOws(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr std::string_view trimOws(std::string_view s) noexcept {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

constexpr char toLower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool equalsIgnoreCase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    // Only letters differ by case, and only in bit 0x20.
    const auto lower = static_cast<unsigned char>(x | 0x20);
    if (lower != (y | 0x20) || lower < 'a' || lower > 'z') return false;
  }
  return true;
}

// A control character: below 0x20, or DEL.
constexpr bool isControl(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

constexpr bool hasControl(std::string_view text) noexcept {
  for (const char c : text) {
    if (isControl(c)) return true;
  }
  return false;
}

// Appends text with every control character written as \xHH: a value printed on a line of its
// own can then neither end it (NUL) nor start another (LF).
inline void appendEscapingControls(std::string& out, std::string_view text) {
  constexpr char kHex[] = "0123456789abcdef";
  for (const char c : text) {
    if (!isControl(c)) {
      out.push_back(c);
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    out += "\\x";
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 0xf]);
  }
}

}  // namespace tracecar::ascii
