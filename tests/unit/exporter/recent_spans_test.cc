#include "exporter/recent_spans.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace tracecar::exporter {
namespace {

SpanRecord span(uint64_t start, uint64_t end, const char* name) {
  SpanRecord s;
  s.start_unix_nano = start;
  s.end_unix_nano = end;
  s.name = name;
  s.kind = SpanKind::kServer;
  s.status_code = StatusCode::kError;
  s.span_id.bytes[7] = static_cast<uint8_t>(start);
  return s;
}

TEST(RecentSpans, KeepsSummaryFieldsOldestFirst) {
  RecentSpans ring(4);
  ring.add(span(10, 25, "GET /a"));
  ring.add(span(20, 20, "GET /b"));
  const auto kept = ring.snapshot();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].name, "GET /a");
  EXPECT_EQ(kept[0].duration_ns, 15u);
  EXPECT_EQ(kept[0].start_unix_nano, 10u);
  EXPECT_EQ(kept[0].kind, SpanKind::kServer);
  EXPECT_EQ(kept[0].status, StatusCode::kError);
  EXPECT_EQ(kept[0].span_id.bytes[7], 10);
  EXPECT_EQ(kept[1].name, "GET /b");
}

TEST(RecentSpans, AtCapacityKeepsAllAndPastItDropsOldest) {
  RecentSpans ring(3);
  for (uint64_t i = 0; i < 3; ++i) ring.add(span(i, i + 1, "s"));
  ASSERT_EQ(ring.snapshot().size(), 3u);
  EXPECT_EQ(ring.snapshot().front().start_unix_nano, 0u);
  ring.add(span(3, 4, "s"));
  const auto kept = ring.snapshot();
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].start_unix_nano, 1u);
  EXPECT_EQ(kept[2].start_unix_nano, 3u);
  EXPECT_EQ(ring.totalAdded(), 4u);
}

TEST(RecentSpans, DefaultCapacityIs256) { EXPECT_EQ(RecentSpans().capacity(), 256u); }

TEST(RecentSpans, EndBeforeStartGivesZeroDuration) {
  RecentSpans ring(2);
  ring.add(span(50, 40, "s"));
  EXPECT_EQ(ring.snapshot()[0].duration_ns, 0u);
}

TEST(RecentSpans, AddsBatchSkippingNull) {
  RecentSpans ring(8);
  SpanRecord a = span(1, 2, "a");
  SpanRecord b = span(3, 4, "b");
  const SpanRecord* batch[] = {&a, nullptr, &b};
  ring.add(batch);
  EXPECT_EQ(ring.snapshot().size(), 2u);
}

// A batch keeps only what fits the ring, but leaves it as adding its spans one by one would:
// the same spans, the same total, the next one in the same slot.
TEST(RecentSpans, BatchLargerThanTheRingEqualsAddingOneByOne) {
  std::vector<SpanRecord> spans;
  for (uint64_t i = 0; i < 40; ++i) spans.push_back(span(i, i + 1, "s"));
  for (const size_t size : {1u, 5u, 10u, 13u, 40u}) {
    for (const size_t nulls : {0u, 3u}) {
      std::vector<const SpanRecord*> batch;
      for (size_t i = 0; i < size; ++i) {
        batch.push_back(&spans[i]);
        if (i % 4 == 1 && i / 4 < nulls) batch.push_back(nullptr);
      }
      RecentSpans batched(7);
      RecentSpans single(7);
      batched.add(spans[39]);
      single.add(spans[39]);
      batched.add(batch);
      for (const SpanRecord* s : batch) {
        if (s != nullptr) single.add(*s);
      }
      batched.add(spans[38]);
      single.add(spans[38]);
      const auto got = batched.snapshot();
      const auto want = single.snapshot();
      ASSERT_EQ(got.size(), want.size()) << size << " spans, " << nulls << " nulls";
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].start_unix_nano, want[i].start_unix_nano) << size << " spans, at " << i;
      }
      EXPECT_EQ(batched.totalAdded(), single.totalAdded());
    }
  }
}

TEST(RecentSpans, SnapshotWhileAddingFromAnotherThread) {
  RecentSpans ring(16);
  std::thread writer([&] {
    for (uint64_t i = 0; i < 20000; ++i) ring.add(span(i, i + 1, "w"));
  });
  for (int i = 0; i < 2000; ++i) {
    const auto kept = ring.snapshot();
    ASSERT_LE(kept.size(), 16u);
    for (size_t k = 1; k < kept.size(); ++k) {
      ASSERT_EQ(kept[k].start_unix_nano, kept[k - 1].start_unix_nano + 1);
    }
  }
  writer.join();
  EXPECT_EQ(ring.snapshot().back().start_unix_nano, 19999u);
}

}  // namespace
}  // namespace tracecar::exporter
