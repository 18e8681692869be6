// Hand-built HTTP/2 bytes for tests that talk to a session or a listener directly: the client
// preface, frames (RFC 9113 section 4.1) and header blocks of RFC 7541 literals.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tracecar::h2wire {

inline constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
enum : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
enum : uint8_t { kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4 };

inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// 24-bit length, type, flags, 31-bit stream id, payload.
inline std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  const auto n = static_cast<uint32_t>(payload.size());
  std::string f = {static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n),
                   static_cast<char>(type), static_cast<char>(flags)};
  f += be32(stream);
  f += payload;
  return f;
}

// One SETTINGS parameter: 16-bit id, 32-bit value.
inline std::string setting(uint16_t id, uint32_t value) {
  return std::string{static_cast<char>(id >> 8), static_cast<char>(id)} + be32(value);
}

// RFC 7541 section 5.1: an integer with an n-bit prefix.
inline std::string hpackInt(uint8_t first, int prefix_bits, size_t value) {
  const size_t max = (size_t{1} << prefix_bits) - 1;
  if (value < max) return std::string(1, static_cast<char>(first | value));
  std::string out(1, static_cast<char>(first | max));
  value -= max;
  while (value >= 128) {
    out += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
  return out;
}

// Section 6.2.2, literal without indexing, no Huffman: a new name, or a static-table name.
inline std::string literal(std::string_view name, std::string_view value) {
  return std::string(1, '\0') + hpackInt(0, 7, name.size()) + std::string(name) +
         hpackInt(0, 7, value.size()) + std::string(value);
}
inline std::string literalIndexedName(size_t static_index, std::string_view value) {
  return hpackInt(0x00, 4, static_index) + hpackInt(0, 7, value.size()) + std::string(value);
}

// A request's header block (END_STREAM) cut into a HEADERS frame and `continuations`
// CONTINUATION frames of about equal size, the last with END_HEADERS.
inline std::string blockInPieces(uint32_t id, std::string_view block, size_t continuations) {
  const size_t pieces = continuations + 1;
  const size_t step = block.size() / pieces;
  std::string out;
  for (size_t i = 0; i < pieces; ++i) {
    const size_t at = i * step;
    const size_t n = i + 1 == pieces ? block.size() - at : step;
    const auto flags =
        static_cast<uint8_t>((i + 1 == pieces ? kEndHeaders : 0) | (i == 0 ? kEndStream : 0));
    out += frame(i == 0 ? kHeaders : kContinuation, flags, id, block.substr(at, n));
  }
  return out;
}

}  // namespace tracecar::h2wire
