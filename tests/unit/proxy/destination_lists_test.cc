#include "proxy/destination_lists.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

namespace tracecar::proxy {
namespace {

struct Conn {
  int id = 0;
};

using Lists = DestinationLists<Conn>;

size_t listCount(const Lists& lists) {
  size_t n = 0;
  lists.forEach([&n](const Lists::List&) { ++n; });
  return n;
}

size_t connectionCount(const Lists& lists) {
  size_t n = 0;
  lists.forEach([&n](const Lists::List& list) { n += list.size(); });
  return n;
}

TEST(DestinationLists, FindIsNullUntilAListIsAdded) {
  Lists lists;
  const UpstreamTarget a("a.example", 80);
  EXPECT_EQ(lists.find(a), nullptr);
  EXPECT_EQ(listCount(lists), 0u);
  Lists::List& list = lists.findOrAdd(a);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(lists.find(a), &list);
  EXPECT_EQ(listCount(lists), 1u);
}

TEST(DestinationLists, EachDestinationHasItsOwnListWhateverOrderTheyAreLookedUpIn) {
  Lists lists;
  const UpstreamTarget a("a.example", 80);
  const UpstreamTarget b("b.example", 80);
  const UpstreamTarget a_other_port("a.example", 81);
  Conn one{1}, two{2}, three{3};
  lists.findOrAdd(a).push_back(&one);
  lists.findOrAdd(b).push_back(&two);
  lists.findOrAdd(a_other_port).push_back(&three);
  // Alternate, so that each lookup misses the remembered one, then repeat one, so that it hits.
  for (int round = 0; round < 3; ++round) {
    ASSERT_NE(lists.find(a), nullptr);
    EXPECT_EQ(lists.find(a)->front(), &one);
    EXPECT_EQ(lists.find(b)->front(), &two);
    EXPECT_EQ(lists.find(a_other_port)->front(), &three);
    EXPECT_EQ(lists.find(a_other_port)->size(), 1u);
  }
  EXPECT_EQ(listCount(lists), 3u);
  EXPECT_EQ(connectionCount(lists), 3u);
}

TEST(DestinationLists, TlsAndServerNameMakeADifferentDestination) {
  Lists lists;
  UpstreamTarget plain("a.example", 443);
  UpstreamTarget tls = plain;
  auto context = ReloadingTlsContext::client(http::TlsClientConfig());
  ASSERT_TRUE(context.ok()) << context.status();
  tls.tls = *context;
  tls.server_name = "a.example";
  UpstreamTarget other_name = tls;
  other_name.server_name = "b.example";
  Conn one{1}, two{2}, three{3};
  lists.findOrAdd(plain).push_back(&one);
  lists.findOrAdd(tls).push_back(&two);
  lists.findOrAdd(other_name).push_back(&three);
  EXPECT_EQ(listCount(lists), 3u);
  EXPECT_EQ(lists.find(plain)->front(), &one);
  EXPECT_EQ(lists.find(tls)->front(), &two);
  EXPECT_EQ(lists.find(other_name)->front(), &three);
}

TEST(DestinationLists, RemoveTakesOutOnlyThatConnectionAndSaysWhetherItWasThere) {
  Lists lists;
  const UpstreamTarget a("a.example", 80);
  Conn one{1}, two{2}, stranger{3};
  lists.findOrAdd(a).push_back(&one);
  lists.findOrAdd(a).push_back(&two);
  EXPECT_FALSE(lists.remove(a.poolKey(), &stranger));
  EXPECT_FALSE(lists.remove(UpstreamTarget("b.example", 80).poolKey(), &one));
  EXPECT_TRUE(lists.remove(a.poolKey(), &one));
  EXPECT_FALSE(lists.remove(a.poolKey(), &one));
  ASSERT_NE(lists.find(a), nullptr);
  ASSERT_EQ(lists.find(a)->size(), 1u);
  EXPECT_EQ(lists.find(a)->front(), &two);
}

TEST(DestinationLists, AnEmptiedListGoesUnlessItIsTheRememberedOne) {
  Lists lists;
  const UpstreamTarget a("a.example", 80);
  const UpstreamTarget b("b.example", 80);
  Conn one{1}, two{2};
  lists.findOrAdd(a).push_back(&one);
  lists.findOrAdd(b).push_back(&two);  // b is remembered now
  EXPECT_TRUE(lists.remove(a.poolKey(), &one));
  EXPECT_EQ(listCount(lists), 1u);  // a's empty list went at once
  EXPECT_EQ(lists.find(a), nullptr);

  EXPECT_TRUE(lists.remove(b.poolKey(), &two));
  EXPECT_EQ(listCount(lists), 1u);  // b is remembered: its empty list stays
  ASSERT_NE(lists.find(b), nullptr);
  EXPECT_TRUE(lists.find(b)->empty());

  lists.findOrAdd(a);  // remembering a lets b's empty list go
  EXPECT_EQ(listCount(lists), 1u);
  EXPECT_EQ(lists.find(b), nullptr);
}

TEST(DestinationLists, ManyDestinationsSurviveTheMapGrowing) {
  // Inserts move the lists; the remembered one must be looked up again, not used stale.
  Lists lists;
  constexpr int kDestinations = 200;
  std::vector<Conn> conns(kDestinations);
  for (int i = 0; i < kDestinations; ++i) {
    conns[i].id = i;
    const UpstreamTarget t("host" + std::to_string(i) + ".example", 80);
    lists.findOrAdd(t).push_back(&conns[i]);
    ASSERT_EQ(lists.find(UpstreamTarget("host0.example", 80))->front(), &conns[0]);
  }
  for (int i = 0; i < kDestinations; ++i) {
    const UpstreamTarget t("host" + std::to_string(i) + ".example", 80);
    Lists::List* list = lists.find(t);
    ASSERT_NE(list, nullptr) << i;
    ASSERT_EQ(list->size(), 1u) << i;
    EXPECT_EQ(list->front()->id, i);
  }
  EXPECT_EQ(connectionCount(lists), static_cast<size_t>(kDestinations));
}

}  // namespace
}  // namespace tracecar::proxy
