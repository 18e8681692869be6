#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tracecar::propagation {

// Appends in to out with every byte for which keep(byte) is false written as %XX (uppercase).
template <class KeepPredicate>
void appendPercentEncoded(std::string_view in, std::string& out, KeepPredicate keep) {
  static constexpr char kUpper[] = "0123456789ABCDEF";
  for (char c : in) {
    if (keep(c)) {
      out.push_back(c);
    } else {
      const auto b = static_cast<uint8_t>(c);
      out.push_back('%');
      out.push_back(kUpper[b >> 4]);
      out.push_back(kUpper[b & 0x0f]);
    }
  }
}

inline int hexDigitValue(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Replaces out with in, every %XX (hex digits of either case) decoded. False, out unspecified,
// when a '%' is not followed by two hex digits.
inline bool percentDecode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hexDigitValue(in[i + 1]);
    const int lo = hexDigitValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>((hi << 4) | lo));
    i += 2;
  }
  return true;
}

}  // namespace tracecar::propagation
