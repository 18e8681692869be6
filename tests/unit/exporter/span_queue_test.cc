#include "exporter/span_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace tracecar::exporter {
namespace {

// Spans are told apart by start_unix_nano.
std::unique_ptr<SpanRecord> tagged(uint64_t tag) {
  auto span = std::make_unique<SpanRecord>();
  span->start_unix_nano = tag;
  return span;
}

std::vector<uint64_t> popAll(SpanQueue& queue, size_t max = 1000) {
  std::vector<std::unique_ptr<SpanRecord>> out;
  out.reserve(max);
  queue.popBatch(out, max);
  std::vector<uint64_t> tags;
  for (const auto& s : out) tags.push_back(s->start_unix_nano);
  return tags;
}

TEST(SpanQueue, PopsSpansInPushOrder) {
  SpanQueue queue(8);
  for (uint64_t i = 0; i < 5; ++i) {
    auto span = tagged(i);
    ASSERT_EQ(queue.tryPush(span), SpanQueue::PushResult::kPushed);
    EXPECT_EQ(span, nullptr);
  }
  EXPECT_EQ(queue.size(), 5u);
  EXPECT_EQ(popAll(queue), (std::vector<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(queue.size(), 0u);
}

TEST(SpanQueue, RefusesPushAtCapacityAndLeavesSpanWithCaller) {
  SpanQueue queue(8);
  for (uint64_t i = 0; i < 8; ++i) {
    auto span = tagged(i);
    ASSERT_EQ(queue.tryPush(span), SpanQueue::PushResult::kPushed);
  }
  auto extra = tagged(99);
  EXPECT_EQ(queue.tryPush(extra), SpanQueue::PushResult::kFull);
  ASSERT_NE(extra, nullptr);
  EXPECT_EQ(extra->start_unix_nano, 99u);
  EXPECT_EQ(queue.size(), 8u);
}

TEST(SpanQueue, PopBatchTakesAtMostMax) {
  SpanQueue queue(16);
  for (uint64_t i = 0; i < 10; ++i) {
    auto span = tagged(i);
    queue.tryPush(span);
  }
  EXPECT_EQ(popAll(queue, 4), (std::vector<uint64_t>{0, 1, 2, 3}));
  EXPECT_EQ(popAll(queue, 4), (std::vector<uint64_t>{4, 5, 6, 7}));
  EXPECT_EQ(popAll(queue, 4), (std::vector<uint64_t>{8, 9}));
  EXPECT_TRUE(popAll(queue, 4).empty());
}

class SpanQueueCapacity : public ::testing::TestWithParam<size_t> {};

// Capacities that are not powers of two use division; 1 is the degenerate ring.
TEST_P(SpanQueueCapacity, ReusesSlotsOverManyLaps) {
  const size_t capacity = GetParam();
  SpanQueue queue(capacity);
  uint64_t next_push = 0;
  uint64_t next_pop = 0;
  for (int lap = 0; lap < 50; ++lap) {
    while (true) {
      auto span = tagged(next_push);
      if (queue.tryPush(span) != SpanQueue::PushResult::kPushed) break;
      ++next_push;
    }
    EXPECT_EQ(queue.size(), capacity);
    // Take a part, so that the ring's start moves around.
    for (uint64_t tag : popAll(queue, capacity / 2 + 1)) EXPECT_EQ(tag, next_pop++);
  }
  for (uint64_t tag : popAll(queue, capacity)) EXPECT_EQ(tag, next_pop++);
  EXPECT_EQ(next_pop, next_push);
}

INSTANTIATE_TEST_SUITE_P(Capacities, SpanQueueCapacity, ::testing::Values(1, 2, 5, 8, 13, 2048),
                         [](const ::testing::TestParamInfo<size_t>& param_info) {
                           return "Capacity" + std::to_string(param_info.param);
                         });

TEST(SpanQueue, CloseRefusesLaterPushesAndKeepsQueuedSpans) {
  SpanQueue queue(8);
  for (uint64_t i = 0; i < 3; ++i) {
    auto span = tagged(i);
    queue.tryPush(span);
  }
  EXPECT_EQ(queue.close(), 3u);
  EXPECT_TRUE(queue.closed());
  EXPECT_EQ(queue.close(), 3u);  // idempotent
  auto late = tagged(7);
  EXPECT_EQ(queue.tryPush(late), SpanQueue::PushResult::kClosed);
  EXPECT_NE(late, nullptr);
  EXPECT_EQ(queue.claimed(), 3u);
  EXPECT_EQ(popAll(queue), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(queue.popped(), 3u);
}

TEST(SpanQueue, DestructorFreesSpansStillQueued) {
  // LeakSanitizer (the sanitizer build) fails this test if the queue leaks them.
  SpanQueue queue(4);
  for (uint64_t i = 0; i < 3; ++i) {
    auto span = tagged(i);
    queue.tryPush(span);
  }
  popAll(queue, 1);
}

// Producers tag spans with (producer << 32 | n). Every push that returned true must be popped
// exactly once, each producer's spans in its own order; the ring is small so it fills often.
void stress(int producers, uint64_t per_producer, size_t capacity) {
  SpanQueue queue(capacity);
  std::vector<std::vector<uint8_t>> accepted(producers, std::vector<uint8_t>(per_producer, 0));
  std::vector<std::vector<uint8_t>> seen(producers, std::vector<uint8_t>(per_producer, 0));
  std::atomic<int> running{producers};
  std::atomic<bool> go{false};

  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      while (!go.load()) std::this_thread::yield();
      for (uint64_t n = 0; n < per_producer; ++n) {
        auto span = tagged((static_cast<uint64_t>(p) << 32) | n);
        const auto result = queue.tryPush(span);
        ASSERT_NE(result, SpanQueue::PushResult::kClosed);
        accepted[p][n] = result == SpanQueue::PushResult::kPushed ? 1 : 0;
        if (n % 64 == 0) std::this_thread::yield();  // let the consumer catch up now and then
      }
      running.fetch_sub(1);
    });
  }

  std::vector<int64_t> last(producers, -1);
  std::vector<std::unique_ptr<SpanRecord>> out;
  out.reserve(capacity);
  uint64_t duplicates = 0;
  uint64_t out_of_order = 0;
  go.store(true);
  for (;;) {
    const bool finished = running.load() == 0;  // read before popping: nothing comes after
    out.clear();
    queue.popBatch(out, capacity);
    for (const auto& span : out) {
      const auto p = static_cast<int>(span->start_unix_nano >> 32);
      const uint64_t n = span->start_unix_nano & 0xffffffffu;
      if (seen[p][n]++ != 0) ++duplicates;
      if (static_cast<int64_t>(n) <= last[p]) ++out_of_order;
      last[p] = static_cast<int64_t>(n);
    }
    if (finished && out.empty() && queue.size() == 0) break;
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(out_of_order, 0u);
  uint64_t lost = 0;
  uint64_t phantom = 0;
  uint64_t total_accepted = 0;
  for (int p = 0; p < producers; ++p) {
    for (uint64_t n = 0; n < per_producer; ++n) {
      total_accepted += accepted[p][n];
      if (accepted[p][n] != 0 && seen[p][n] == 0) ++lost;
      if (accepted[p][n] == 0 && seen[p][n] != 0) ++phantom;
    }
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(phantom, 0u);
  EXPECT_GT(total_accepted, 0u);
  EXPECT_EQ(queue.claimed(), total_accepted);
  EXPECT_EQ(queue.popped(), total_accepted);
}

TEST(SpanQueueStress, TwoProducersLoseAndDuplicateNothing) { stress(2, 100000, 64); }
TEST(SpanQueueStress, FourProducersLoseAndDuplicateNothing) { stress(4, 50000, 64); }
TEST(SpanQueueStress, FourProducersOddCapacity) { stress(4, 50000, 37); }

// Producers racing a close: every push either lands before the close (and is popped) or
// reports kClosed; the count close() returns is exactly what gets popped.
TEST(SpanQueueStress, CloseDuringPushesIsExact) {
  constexpr int kProducers = 3;
  SpanQueue queue(1 << 16);
  std::atomic<uint64_t> pushed{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int n = 0; n < 20000; ++n) {
        auto span = tagged(static_cast<uint64_t>(n));
        const auto result = queue.tryPush(span);
        if (result == SpanQueue::PushResult::kClosed) return;
        if (result == SpanQueue::PushResult::kPushed) pushed.fetch_add(1);
      }
    });
  }
  go.store(true);
  while (queue.claimed() < 1000) std::this_thread::yield();
  const uint64_t final_count = queue.close();
  for (auto& t : threads) t.join();
  EXPECT_EQ(final_count, pushed.load());
  std::vector<std::unique_ptr<SpanRecord>> out;
  out.reserve(1 << 16);
  queue.popBatch(out, 1 << 16);
  EXPECT_EQ(out.size(), final_count);
}

}  // namespace
}  // namespace tracecar::exporter
