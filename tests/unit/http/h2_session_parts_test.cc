// The parts H2Session is built from: field checks, the per-session allocator, the store of
// submitted header lists, the tracker of fields that keep changing.
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "base/ascii.h"
#include "http/h2_session_impl.h"
#include "http/h2_session_memory.h"

namespace tracecar::http::h2_internal {
namespace {

const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// The checks we run on fields the owner added must accept and refuse exactly what nghttp2's do
// (on the name lowercased first, as we send it): every byte value, at every place in a word.
TEST(H2FieldChecks, NameCheckMatchesNghttp2OnEveryByte) {
  for (int b = 0; b < 256; ++b) {
    for (size_t at : {0, 1, 7, 8, 12}) {
      std::string name(13, 'n');
      name[at] = static_cast<char>(b);
      std::string lowered = name;
      for (char& c : lowered) c = ascii::toLower(c);
      std::string out(name.size(), '?');
      const bool ours = lowerValidName(name, out.data());
      // A leading ':' is never checked: such a name is a pseudo-header field, dropped before.
      if (at == 0 && b == ':') continue;
      EXPECT_EQ(ours, nghttp2_check_header_name(u8(lowered), lowered.size()) != 0)
          << "byte " << b << " at " << at;
      if (ours) {
        EXPECT_EQ(out, lowered);
      }
    }
  }
  char out[1];
  EXPECT_FALSE(lowerValidName("", out));
}

TEST(H2FieldChecks, ValueCheckMatchesNghttp2OnEveryByte) {
  for (int b = 0; b < 256; ++b) {
    for (size_t length : {1, 7, 8, 9, 16, 23, 55}) {
      for (size_t at = 0; at < length; ++at) {
        std::string value(length, 'v');
        value[at] = static_cast<char>(b);
        EXPECT_EQ(validValue(value), nghttp2_check_header_value(u8(value), value.size()) != 0)
            << "byte " << b << " at " << at << " of " << length;
      }
    }
  }
  EXPECT_TRUE(validValue(""));
  // Two bad bytes in one word, and a bad one right after a word of good ones.
  EXPECT_FALSE(validValue(std::string("ab\r\ncdefgh")));
  EXPECT_FALSE(validValue(std::string("abcdefgh\x7f", 9)));
  EXPECT_TRUE(validValue("tab\there and obs-text \xe2\x82\xac"));
}

TEST(H2Memory, BlocksKeepTheirBytesThroughReallocation) {
  H2Memory memory;
  nghttp2_mem* mem = memory.mem();
  std::vector<void*> blocks;
  for (size_t size : {0, 1, 8, 16, 17, 100, 1000, 1008, 1009, 5000}) {
    auto* p = static_cast<unsigned char*>(mem->malloc(size, mem->mem_user_data));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    for (size_t i = 0; i < size; ++i) p[i] = static_cast<unsigned char>(i * 7 + size);
    blocks.push_back(p);
    for (size_t grown : {size + 1, size * 3 + 40, size / 2 + 1}) {
      const size_t kept = std::min(size, grown);
      auto* q = static_cast<unsigned char*>(mem->realloc(p, grown, mem->mem_user_data));
      ASSERT_NE(q, nullptr);
      for (size_t i = 0; i < kept; ++i) {
        ASSERT_EQ(q[i], static_cast<unsigned char>(i * 7 + size)) << size << " -> " << grown;
      }
      p = q;
      size = kept;
    }
    blocks.back() = p;
  }
  auto* zeroed = static_cast<unsigned char*>(mem->calloc(10, 30, mem->mem_user_data));
  ASSERT_NE(zeroed, nullptr);
  for (size_t i = 0; i < 300; ++i) ASSERT_EQ(zeroed[i], 0) << i;
  mem->free(zeroed, mem->mem_user_data);
  EXPECT_EQ(mem->calloc(SIZE_MAX / 2, 4, mem->mem_user_data), nullptr);
  for (void* p : blocks) mem->free(p, mem->mem_user_data);
  mem->free(nullptr, mem->mem_user_data);
  void* from_null = mem->realloc(nullptr, 0, mem->mem_user_data);
  EXPECT_NE(from_null, nullptr);
  EXPECT_EQ(mem->realloc(from_null, 0, mem->mem_user_data), nullptr);  // freed, as realloc does
}

TEST(H2Memory, FreedBlocksAreReusedUpToTheCap) {
  H2Memory memory;
  void* first = memory.allocate(100);
  memory.release(first);
  EXPECT_EQ(memory.allocate(100), first);  // the same class comes back
  memory.release(first);
  // Far more than the cap: every block goes back somewhere, and allocation still works.
  std::vector<void*> many;
  for (int i = 0; i < 1000; ++i) many.push_back(memory.allocate(200));
  for (void* p : many) memory.release(p);
  for (int i = 0; i < 1000; ++i) many[static_cast<size_t>(i)] = memory.allocate(200);
  for (void* p : many) memory.release(p);
  EXPECT_LE(memory.cachedBytes(), H2Memory::kMaxCachedBytes);
  EXPECT_GT(memory.cachedBytes(), H2Memory::kMaxCachedBytes - 300);
  void* again = memory.allocate(200);  // from what stayed
  EXPECT_LT(memory.cachedBytes(), H2Memory::kMaxCachedBytes - 200);
  memory.release(again);
}

TEST(H2FieldStore, ReleasesTheListAPointerFallsIn) {
  H2Memory memory;
  H2FieldStore store(memory);
  char* a = store.take(10);
  std::memcpy(a, "0123456789", 10);
  store.keep(10);
  char* b = store.take(5);
  std::memcpy(b, "abcde", 5);
  store.keep(5);
  char* c = store.take(3);
  store.drop();  // never referenced
  EXPECT_EQ(store.inFlight(), 2u);
  EXPECT_FALSE(store.release(reinterpret_cast<const uint8_t*>(a + 10)));  // one past the end
  EXPECT_EQ(std::string(b, 5), "abcde");
  EXPECT_TRUE(store.release(reinterpret_cast<const uint8_t*>(a + 4)));
  EXPECT_FALSE(store.release(reinterpret_cast<const uint8_t*>(a + 4)));  // already gone
  EXPECT_EQ(std::string(b, 5), "abcde");
  EXPECT_TRUE(store.release(reinterpret_cast<const uint8_t*>(b)));
  EXPECT_EQ(store.inFlight(), 0u);
  (void)c;
  store.take(7);
  store.keep(7);  // still in flight when the store goes: given back then
}

TEST(ChurnTracker, FlagsANameOnlyFromItsSecondChangeInARow) {
  ChurnTracker churn;
  EXPECT_FALSE(churn.churning("x-id", "1"));
  EXPECT_FALSE(churn.churning("x-id", "2"));  // one change
  EXPECT_TRUE(churn.churning("x-id", "3"));   // two in a row
  EXPECT_TRUE(churn.churning("x-id", "4"));
  EXPECT_FALSE(churn.churning("x-id", "4"));  // the same value again
  EXPECT_FALSE(churn.churning("x-id", "5"));
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(churn.churning("accept", "text/html"));
    EXPECT_FALSE(churn.churning("user-agent", "a long user agent value, the same every time"));
  }
  // Values differing only past the first word, and long ones differing in one byte.
  const std::string base(300, 'v');
  std::string changed = base;
  EXPECT_FALSE(churn.churning("x-long", base));
  changed[150] = 'w';
  EXPECT_FALSE(churn.churning("x-long", changed));
  changed[299] = 'w';
  EXPECT_TRUE(churn.churning("x-long", changed));
}

}  // namespace
}  // namespace tracecar::http::h2_internal
