#include "http/header_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>
#include <vector>

// Counts heap allocations (and remembers the largest) to prove lookups allocate nothing and that
// compaction bounds the buffer.
#include "support/counting_allocator.h"

namespace tracecar::http {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

Fields fields(const HeaderMap& map) {
  Fields out;
  for (size_t i = 0; i < map.size(); ++i) out.emplace_back(map.name(i), map.value(i));
  return out;
}

HeaderMap sample() {
  HeaderMap map;
  map.add("Host", "example.com");
  map.add("Accept", "text/html");
  map.add("X-Trace", "one");
  map.add("accept", "application/json");
  map.add("x-trace", "two");
  return map;
}

TEST(HeaderMapTest, KeepsArrivalOrderAndSpelling) {
  const HeaderMap map = sample();
  EXPECT_EQ(map.size(), 5u);
  EXPECT_FALSE(map.empty());
  EXPECT_EQ(fields(map), (Fields{{"Host", "example.com"},
                                 {"Accept", "text/html"},
                                 {"X-Trace", "one"},
                                 {"accept", "application/json"},
                                 {"x-trace", "two"}}));
}

TEST(HeaderMapTest, EmptyMapFindsNothing) {
  const HeaderMap map;
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.get("host"), std::nullopt);
  EXPECT_EQ(map.count("host"), 0u);
  EXPECT_FALSE(map.hasToken("connection", "close"));
  EXPECT_EQ(map.byteSize(), 0u);
}

TEST(HeaderMapTest, GetReturnsFirstFieldCaseInsensitively) {
  const HeaderMap map = sample();
  EXPECT_EQ(map.get("ACCEPT"), "text/html");
  EXPECT_EQ(map.get("x-TRACE"), "one");
  EXPECT_EQ(map.get("missing"), std::nullopt);
}

TEST(HeaderMapTest, CountAndForEachSeeEveryFieldInOrder) {
  const HeaderMap map = sample();
  EXPECT_EQ(map.count("accept"), 2u);
  EXPECT_EQ(map.count("host"), 1u);
  std::vector<std::string> seen;
  map.forEach("X-TRACE", [&](std::string_view v) { seen.emplace_back(v); });
  EXPECT_EQ(seen, (std::vector<std::string>{"one", "two"}));
}

TEST(HeaderMapTest, EmptyValueIsAField) {
  HeaderMap map;
  map.add("X-Empty", "");
  EXPECT_EQ(map.get("x-empty"), "");
  EXPECT_EQ(map.byteSize(), std::string("X-Empty: \r\n").size());
}

TEST(HeaderMapTest, NameEqualsFoldsOnlyAsciiLetters) {
  EXPECT_TRUE(HeaderMap::nameEquals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(HeaderMap::nameEquals("content-length", "content-lengt"));
  EXPECT_FALSE(HeaderMap::nameEquals("content-length", "content_length"));
  // Pairs that differ only in bit 0x20 but are not letters.
  EXPECT_FALSE(HeaderMap::nameEquals("[", "{"));
  EXPECT_FALSE(HeaderMap::nameEquals("@", "`"));
  EXPECT_FALSE(HeaderMap::nameEquals("^", "~"));
  EXPECT_FALSE(HeaderMap::nameEquals("\xc1", "\xe1"));
  EXPECT_TRUE(HeaderMap::nameEquals("", ""));
}

TEST(HeaderMapTest, SetReplacesEveryFieldAtThePlaceOfTheFirst) {
  HeaderMap map = sample();
  map.set("ACCEPT", "*/*");
  EXPECT_EQ(
      fields(map),
      (Fields{{"Host", "example.com"}, {"Accept", "*/*"}, {"X-Trace", "one"}, {"x-trace", "two"}}));
}

TEST(HeaderMapTest, SetAppendsWhenAbsent) {
  HeaderMap map = sample();
  map.set("Via", "1.1 tracecar");
  EXPECT_EQ(map.size(), 6u);
  EXPECT_EQ(map.name(5), "Via");
  EXPECT_EQ(map.value(5), "1.1 tracecar");
}

TEST(HeaderMapTest, RemoveDropsEveryFieldOfName) {
  HeaderMap map = sample();
  EXPECT_EQ(map.remove("X-TRACE"), 2u);
  EXPECT_EQ(map.remove("x-trace"), 0u);
  EXPECT_EQ(
      fields(map),
      (Fields{{"Host", "example.com"}, {"Accept", "text/html"}, {"accept", "application/json"}}));
}

TEST(HeaderMapTest, RemovePrefixIsCaseInsensitive) {
  HeaderMap map = sample();
  map.add("X", "short");
  EXPECT_EQ(map.removePrefix("x-"), 2u);
  EXPECT_EQ(fields(map), (Fields{{"Host", "example.com"},
                                 {"Accept", "text/html"},
                                 {"accept", "application/json"},
                                 {"X", "short"}}));
  EXPECT_EQ(map.removePrefix("ACC"), 2u);
  EXPECT_EQ(map.removePrefix("Hostname"), 0u);
}

TEST(HeaderMapTest, RemovingEverythingEmptiesTheMap) {
  HeaderMap map = sample();
  EXPECT_EQ(map.removePrefix(""), 5u);
  EXPECT_TRUE(map.empty());
  map.add("Host", "again");
  EXPECT_EQ(fields(map), (Fields{{"Host", "again"}}));
}

TEST(HeaderMapTest, ClearEmptiesAndMapStaysUsable) {
  HeaderMap map = sample();
  map.clear();
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.get("host"), std::nullopt);
  map.add("A", "1");
  EXPECT_EQ(fields(map), (Fields{{"A", "1"}}));
}

TEST(HeaderMapTest, HasTokenReadsCommaListsWithOws) {
  HeaderMap map;
  map.add("Connection", "keep-alive , Upgrade");
  map.add("connection", "\tTE,,close\t");
  map.add("Transfer-Encoding", "gzip, chunked");
  EXPECT_TRUE(map.hasToken("connection", "upgrade"));
  EXPECT_TRUE(map.hasToken("connection", "KEEP-ALIVE"));
  EXPECT_TRUE(map.hasToken("Connection", "te"));
  EXPECT_TRUE(map.hasToken("Connection", "close"));
  EXPECT_TRUE(map.hasToken("transfer-encoding", "chunked"));
  EXPECT_FALSE(map.hasToken("connection", "alive"));
  EXPECT_FALSE(map.hasToken("connection", "keep"));
  EXPECT_FALSE(map.hasToken("connection", "clos"));
  EXPECT_FALSE(map.hasToken("connection", ""));
  EXPECT_FALSE(map.hasToken("upgrade", "close"));
}

TEST(HeaderMapTest, ByteSizeMatchesSerialize) {
  const HeaderMap map = sample();
  std::string out = "GET / HTTP/1.1\r\n";
  const size_t before = out.size();
  map.serialize(out);
  EXPECT_EQ(out.size() - before, map.byteSize());
  EXPECT_EQ(out.substr(before),
            "Host: example.com\r\nAccept: text/html\r\nX-Trace: one\r\n"
            "accept: application/json\r\nx-trace: two\r\n");
}

TEST(HeaderMapTest, SerializeAfterRemovalsAndSetsWritesExactlyTheFields) {
  HeaderMap map = sample();
  map.remove("x-trace");
  map.set("HOST", "example.org:8080");
  map.add("Empty", "");
  std::string out = "HEAD";
  map.serialize(out);
  EXPECT_EQ(out, "HEADHost: example.org:8080\r\nAccept: text/html\r\naccept: application/json\r\n"
                 "Empty: \r\n");
  EXPECT_EQ(out.size() - 4, map.byteSize());

  HeaderMap none;
  std::string untouched = "x";
  none.serialize(untouched);
  EXPECT_EQ(untouched, "x");
  map.clear();
  map.serialize(untouched);
  EXPECT_EQ(untouched, "x");
}

// A map with removed fields' bytes still in its buffer, moved from or assigned over: every map
// afterwards counts exactly the bytes serialize writes.
TEST(HeaderMapTest, MovedFromAndAssignedMapsCountWhatTheyHold) {
  HeaderMap source = sample();
  source.remove("accept");  // dead bytes in the buffer
  HeaderMap moved(std::move(source));
  EXPECT_EQ(source.byteSize(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
  source.add("After", "move");
  std::string out;
  source.serialize(out);
  EXPECT_EQ(out, "After: move\r\n");
  EXPECT_EQ(source.byteSize(), out.size());

  HeaderMap target;
  target = std::move(moved);
  EXPECT_EQ(moved.byteSize(), 0u);  // NOLINT(bugprone-use-after-move)
  moved.add("Again", "1");
  out.clear();
  moved.serialize(out);
  EXPECT_EQ(out, "Again: 1\r\n");

  HeaderMap copy = sample();
  copy.remove("host");
  copy = target;  // over a map with dead bytes of its own
  out.clear();
  copy.serialize(out);
  EXPECT_EQ(out, "Host: example.com\r\nX-Trace: one\r\nx-trace: two\r\n");
  EXPECT_EQ(copy.byteSize(), out.size());
}

TEST(HeaderMapTest, AddAndSetAcceptViewsOfTheirOwnBytes) {
  HeaderMap map;
  map.add("Source", std::string(100, 's'));
  for (int i = 0; i < 50; ++i) {
    // Each add may grow the buffer while name and value point into it.
    map.add(map.name(0), *map.get("source"));
  }
  EXPECT_EQ(map.count("source"), 51u);
  map.forEach("source", [](std::string_view v) { EXPECT_EQ(v, std::string(100, 's')); });
  map.set("Copy", map.value(3));
  map.set("source", map.value(map.size() - 1));
  EXPECT_EQ(fields(map),
            (Fields{{"Source", std::string(100, 's')}, {"Copy", std::string(100, 's')}}));
}

TEST(HeaderMapTest, RepeatedSetCompactsDeadBytes) {
  HeaderMap map;
  map.add("Host", "example.com");
  const std::string big(1000, 'v');
  g_largest_allocation = 0;
  for (int i = 0; i < 10000; ++i) {
    map.set("X-Big", big + std::to_string(i));
    map.add("X-Temp", big);
    map.remove("x-temp");
  }
  // 10 MB went through the map; compaction keeps the buffer within a few live values.
  EXPECT_LT(g_largest_allocation.load(), 16u * 1024);
  EXPECT_EQ(fields(map), (Fields{{"Host", "example.com"}, {"X-Big", big + "9999"}}));
}

TEST(HeaderMapTest, LookupsDoNotAllocate) {
  const HeaderMap map = sample();
  size_t hits = 0;
  const size_t before = g_allocations.load();
  hits += map.get("x-trace").has_value() ? 1 : 0;
  hits += map.count("ACCEPT");
  map.forEach("accept", [&](std::string_view) { ++hits; });
  hits += map.hasToken("accept", "text/html") ? 1 : 0;
  hits += map.byteSize() > 0 ? 1 : 0;
  hits += HeaderMap::nameEquals("a", "A") ? 1 : 0;
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(hits, 8u);
}

TEST(HeaderMapTest, ClearedMapRefillsWithoutAllocating) {
  HeaderMap map = sample();
  map.clear();
  const size_t before = g_allocations.load();
  map.add("Host", "example.com");
  map.add("Accept", "text/html");
  EXPECT_EQ(g_allocations.load(), before);
}

TEST(HeaderMapTest, AFewFieldsCostOneAllocation) {
  const size_t before = g_allocations.load();
  HeaderMap map;
  for (int i = 0; i < 8; ++i) map.add("x-field-" + std::to_string(i), "value");
  EXPECT_EQ(g_allocations.load() - before, 1u);
  HeaderMap moved = std::move(map);
  EXPECT_EQ(g_allocations.load() - before, 1u);
  EXPECT_EQ(moved.size(), 8u);
}

TEST(HeaderMapTest, ManyFieldsGrowPastTheInlineRoom) {
  HeaderMap map;
  Fields expected;
  for (int i = 0; i < 100; ++i) {
    const std::string name = "X-" + std::to_string(i);
    const std::string value(static_cast<size_t>(i), 'v');
    map.add(name, value);
    expected.emplace_back(name, value);
  }
  EXPECT_EQ(fields(map), expected);
  HeaderMap copy = map;
  HeaderMap moved = std::move(map);
  EXPECT_EQ(fields(copy), expected);
  EXPECT_EQ(fields(moved), expected);
  copy = moved;
  const HeaderMap& same = copy;
  copy = same;  // self-assignment keeps the map
  EXPECT_EQ(fields(copy), expected);
  HeaderMap small;
  small.add("a", "1");
  copy = small;
  EXPECT_EQ(fields(copy), (Fields{{"a", "1"}}));
  moved = std::move(small);
  EXPECT_EQ(fields(moved), (Fields{{"a", "1"}}));
}

TEST(HeaderMapTest, MovingTheMapKeepsViewsOfItsBytes) {
  HeaderMap map;
  map.add("Host", "example.com");
  const std::string_view host = *map.get("host");
  HeaderMap moved = std::move(map);
  EXPECT_EQ(host, "example.com");
  EXPECT_EQ(host.data(), moved.get("host")->data());
}

TEST(HeaderMapTest, VerifiedMarkFollowsTheFieldUntilItsValueChanges) {
  HeaderMap map;
  map.addVerified("accept", "*/*");
  map.add("X-Own", "1");
  map.addVerified("x-trace", "a");
  map.addVerified("x-trace", "b");
  EXPECT_TRUE(map.verified(0));
  EXPECT_FALSE(map.verified(1));
  HeaderMap copy = map;
  EXPECT_TRUE(copy.verified(0));
  EXPECT_FALSE(copy.verified(1));
  EXPECT_TRUE(copy.verified(3));
  EXPECT_EQ(copy.name(0), "accept");
  map.remove("x-own");
  EXPECT_TRUE(map.verified(0));
  EXPECT_TRUE(map.verified(1));
  map.set("x-trace", "c");  // a value nobody checked
  EXPECT_EQ(fields(map), (Fields{{"accept", "*/*"}, {"x-trace", "c"}}));
  EXPECT_TRUE(map.verified(0));
  EXPECT_FALSE(map.verified(1));
  // Compaction moves the bytes, not the marks.
  const std::string big(1000, 'z');
  for (int i = 0; i < 20; ++i) {
    map.add("x-temp", big);
    map.remove("x-temp");
  }
  EXPECT_TRUE(map.verified(0));
  EXPECT_FALSE(map.verified(1));
  EXPECT_EQ(fields(map), (Fields{{"accept", "*/*"}, {"x-trace", "c"}}));
}

TEST(HeaderMapTest, CopyAssigningIntoARoomyMapAllocatesNothing) {
  const HeaderMap source = sample();
  HeaderMap target;
  target = source;
  target.add("x-more", std::string(300, 'm'));  // grows past what source needs
  const size_t before = g_allocations.load();
  for (int i = 0; i < 10; ++i) {
    target = source;
    target.set("x-trace", "three");
  }
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(fields(target), (Fields{{"Host", "example.com"},
                                    {"Accept", "text/html"},
                                    {"X-Trace", "three"},
                                    {"accept", "application/json"}}));
}

TEST(HeaderMapTest, ReserveMakesRoomUpFront) {
  HeaderMap map;
  map.reserve(20, 1000);
  const std::string value(40, 'v');
  const size_t before = g_allocations.load();
  for (int i = 0; i < 20; ++i) map.add("name" + std::to_string(i), value);
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_EQ(map.size(), 20u);
  EXPECT_EQ(map.fieldBytes(), 20 * 40 + 10 * 5 + 10 * 6);
}

}  // namespace
}  // namespace tracecar::http
