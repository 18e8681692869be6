#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tracecar::propagation::hex {

// -1 for anything but 0-9 a-f: W3C and B3 ids are lowercase only.
inline constexpr std::array<int8_t, 256> kLowerTable = [] {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[static_cast<size_t>(c)] = static_cast<int8_t>(c - 'a' + 10);
  return t;
}();

// Same, also accepting A-F (Jaeger's ids are parsed as numbers, case-insensitively).
inline constexpr std::array<int8_t, 256> kAnyCaseTable = [] {
  std::array<int8_t, 256> t = kLowerTable;
  for (int c = 'A'; c <= 'F'; ++c) t[static_cast<size_t>(c)] = static_cast<int8_t>(c - 'A' + 10);
  return t;
}();

inline constexpr char kDigits[] = "0123456789abcdef";

// Decodes 2*out_len lowercase hex characters from in. False on any other character.
inline bool decodeLower(const char* in, uint8_t* out, size_t out_len) noexcept {
  uint8_t bad = 0;
  for (size_t i = 0; i < out_len; ++i) {
    const int8_t hi = kLowerTable[static_cast<uint8_t>(in[2 * i])];
    const int8_t lo = kLowerTable[static_cast<uint8_t>(in[2 * i + 1])];
    bad |= static_cast<uint8_t>(hi | lo);  // negative values set the top bit
    out[i] = static_cast<uint8_t>((hi << 4) | (lo & 0x0f));
  }
  return (bad & 0x80) == 0;
}

inline void encodeLower(const uint8_t* in, size_t in_len, char* out) noexcept {
  for (size_t i = 0; i < in_len; ++i) {
    out[2 * i] = kDigits[in[i] >> 4];
    out[2 * i + 1] = kDigits[in[i] & 0x0f];
  }
}

inline bool isLowerHex(std::string_view s) noexcept {
  for (char c : s) {
    if (kLowerTable[static_cast<uint8_t>(c)] < 0) return false;
  }
  return true;
}

}  // namespace tracecar::propagation::hex
