#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace tracecar::propagation {

// 128-bit trace id, big-endian bytes as written in hex on the wire.
struct TraceId {
  std::array<uint8_t, 16> bytes{};

  bool isValid() const noexcept;  // not all zero
  // The low 56 bits (bytes 9..15): the randomness consistent-probability sampling uses.
  uint64_t low56() const noexcept;
  std::string toHex() const;                          // 32 lowercase hex chars
  static bool fromHex(std::string_view hex32, TraceId& out) noexcept;  // lowercase only
  friend auto operator<=>(const TraceId&, const TraceId&) = default;
};

// 64-bit span id.
struct SpanId {
  std::array<uint8_t, 8> bytes{};

  bool isValid() const noexcept;
  uint64_t toU64() const noexcept;  // big-endian
  static SpanId fromU64(uint64_t v) noexcept;
  std::string toHex() const;                          // 16 lowercase hex chars
  static bool fromHex(std::string_view hex16, SpanId& out) noexcept;  // lowercase only
  friend auto operator<=>(const SpanId&, const SpanId&) = default;
};

// Fast per-thread id generator (xoshiro256++), seeded from the OS (getrandom). Every bit of a
// trace id is uniformly random, so the W3C random flag may be set on traces we start. Ids are
// never zero.
class IdGenerator {
 public:
  // The calling thread's generator, seeded on first use.
  static IdGenerator& forThisThread() noexcept;

  // A generator with a fixed seed, for tests and reproducible benchmarks.
  explicit IdGenerator(uint64_t seed) noexcept;

  TraceId newTraceId() noexcept;
  SpanId newSpanId() noexcept;
  uint64_t next() noexcept;

 private:
  IdGenerator() noexcept;  // seeded from the OS
  void seed(uint64_t s) noexcept;
  std::array<uint64_t, 4> state_{};
};

}  // namespace tracecar::propagation
