#include "propagation/ids.h"

#include <sys/random.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "propagation/hex.h"

namespace tracecar::propagation {

bool TraceId::isValid() const noexcept {
  uint8_t any = 0;
  for (uint8_t b : bytes) any |= b;
  return any != 0;
}

uint64_t TraceId::low56() const noexcept {
  uint64_t v = 0;
  for (size_t i = 9; i < 16; ++i) v = (v << 8) | bytes[i];
  return v;
}

std::string TraceId::toHex() const {
  std::string out(32, '0');
  hex::encodeLower(bytes.data(), bytes.size(), out.data());
  return out;
}

bool TraceId::fromHex(std::string_view hex32, TraceId& out) noexcept {
  return hex32.size() == 32 && hex::decodeLower(hex32.data(), out.bytes.data(), 16);
}

bool SpanId::isValid() const noexcept {
  uint8_t any = 0;
  for (uint8_t b : bytes) any |= b;
  return any != 0;
}

uint64_t SpanId::toU64() const noexcept {
  uint64_t v = 0;
  for (uint8_t b : bytes) v = (v << 8) | b;
  return v;
}

SpanId SpanId::fromU64(uint64_t v) noexcept {
  SpanId id;
  for (size_t i = 0; i < 8; ++i) id.bytes[7 - i] = static_cast<uint8_t>(v >> (8 * i));
  return id;
}

std::string SpanId::toHex() const {
  std::string out(16, '0');
  hex::encodeLower(bytes.data(), bytes.size(), out.data());
  return out;
}

bool SpanId::fromHex(std::string_view hex16, SpanId& out) noexcept {
  return hex16.size() == 16 && hex::decodeLower(hex16.data(), out.bytes.data(), 8);
}

namespace {

uint64_t splitmix64(uint64_t& x) noexcept {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

uint64_t osSeed() noexcept {
  uint64_t seed = 0;
  size_t got = 0;
  auto* p = reinterpret_cast<char*>(&seed);
  while (got < sizeof(seed)) {
    const ssize_t n = getrandom(p + got, sizeof(seed) - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      break;
    }
  }
  if (got < sizeof(seed)) {
    // getrandom is unavailable (very old kernel or seccomp): mix what differs between threads.
    seed ^= static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    seed ^= std::hash<std::thread::id>{}(std::this_thread::get_id());
  }
  return seed;
}

}  // namespace

IdGenerator& IdGenerator::forThisThread() noexcept {
  thread_local IdGenerator generator;
  return generator;
}

IdGenerator::IdGenerator() noexcept { seed(osSeed()); }
IdGenerator::IdGenerator(uint64_t s) noexcept { seed(s); }

void IdGenerator::seed(uint64_t s) noexcept {
  for (auto& word : state_) word = splitmix64(s);
}

uint64_t IdGenerator::next() noexcept {
  // xoshiro256++
  const uint64_t result = rotl(state_[0] + state_[3], 23) + state_[0];
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

TraceId IdGenerator::newTraceId() noexcept {
  TraceId id;
  do {
    const uint64_t hi = next();
    const uint64_t lo = next();
    for (size_t i = 0; i < 8; ++i) {
      id.bytes[7 - i] = static_cast<uint8_t>(hi >> (8 * i));
      id.bytes[15 - i] = static_cast<uint8_t>(lo >> (8 * i));
    }
  } while (!id.isValid());
  return id;
}

SpanId IdGenerator::newSpanId() noexcept {
  uint64_t v;
  do {
    v = next();
  } while (v == 0);
  return SpanId::fromU64(v);
}

}  // namespace tracecar::propagation
