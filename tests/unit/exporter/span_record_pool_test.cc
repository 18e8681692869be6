#include "exporter/span_record_pool.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "exporter/otlp_proto_encoder.h"
#include "exporter/resource.h"
#include "support/counting_allocator.h"

namespace tracecar::exporter {
namespace {

std::string encoded(const SpanRecord& span) {
  const SpanRecord* spans[] = {&span};
  std::string out;
  OtlpProtoEncoder().encode(Resource{}, InstrumentationScope{}, spans, out);
  return out;
}

// Every field set to something other than its default.
void fill(SpanRecord& s) {
  s.trace_id.bytes.fill(1);
  s.span_id.bytes.fill(2);
  s.parent_span_id.bytes.fill(3);
  s.trace_state = "vendor=value-long-enough-to-allocate";
  s.flags = 0x301;
  s.name = "GET /a/very/long/route/{id}/that/allocates";
  s.kind = SpanKind::kServer;
  s.start_unix_nano = 10;
  s.end_unix_nano = 20;
  s.attributes.setStaticString("user_agent.original", "a user agent longer than fifteen bytes");
  s.attributes.setStaticInt("http.response.status_code", 200);
  s.attributes.set("x", int64_t{1}, AttributeLimits{.count = 2});
  s.attributes.set("dropped", int64_t{1}, AttributeLimits{.count = 2});
  s.events.push_back(SpanEvent{"event", 15, {}});
  s.dropped_events = 4;
  s.links.push_back(SpanLink{});
  s.dropped_links = 5;
  s.status_code = StatusCode::kError;
  s.status_message = "a status message long enough to allocate";
}

TEST(SpanRecordTest, ClearedRecordIsANewOneWithItsMemoryKept) {
  SpanRecord used;
  fill(used);
  ASSERT_NE(encoded(used), encoded(SpanRecord{}));
  SpanRecordPool pool(4);
  used.home = &pool;
  const size_t name_capacity = used.name.capacity();
  const size_t attribute_capacity = used.attributes.items().capacity();
  used.clearForReuse();
  EXPECT_EQ(encoded(used), encoded(SpanRecord{}));
  EXPECT_EQ(used.attributes.dropped(), 0u);
  EXPECT_EQ(used.attributes.find("x"), nullptr);
  EXPECT_TRUE(used.events.empty());
  EXPECT_TRUE(used.links.empty());
  EXPECT_EQ(used.name.capacity(), name_capacity);
  EXPECT_EQ(used.attributes.items().capacity(), attribute_capacity);
  EXPECT_EQ(used.attributes.spareStrings(), 1u);  // the user agent's buffer
  EXPECT_EQ(used.home, &pool);  // stays where it belongs
}

// The values of a span made as the last one was (the data path's spans): the record's strings
// and attribute list are reused, and so are the buffers of its long string values.
void refill(SpanRecord& s) {
  s.trace_state = "vendor=value-long-enough-to-allocate";
  s.name = "GET /a/very/long/route/{id}/that/allocates";
  s.attributes.setStaticString("user_agent.original", "a user agent longer than fifteen bytes");
  s.attributes.setStaticString("url.path", "/short");
  s.attributes.setStaticString("url.full", "http://example.com/a/path/long/enough/to/allocate");
  s.attributes.setStaticInt("http.response.status_code", 200);
}

TEST(SpanRecordTest, ARefilledRecordAllocatesNothing) {
  SpanRecord record;
  refill(record);
  record.clearForReuse();
  EXPECT_EQ(record.attributes.spareStrings(), 2u);
  const size_t before = g_allocations.load();
  refill(record);
  EXPECT_EQ(g_allocations.load() - before, 0u);
  EXPECT_EQ(record.attributes.spareStrings(), 0u);
  const AttributeValue* full = record.attributes.find("url.full");
  ASSERT_NE(full, nullptr);
  EXPECT_EQ(std::get<std::string>(*full), "http://example.com/a/path/long/enough/to/allocate");
  EXPECT_EQ(std::get<std::string>(*record.attributes.find("url.path")), "/short");
}

TEST(SpanRecordTest, KeepsAFewSmallBuffersOnly) {
  SpanRecord record;
  const std::string huge(Attributes::kSpareStringCapacity + 1, 'h');
  record.attributes.setStaticString("huge", huge);
  for (const char* key : {"a1", "a2", "a3", "a4", "a5", "a6"}) {
    record.attributes.setStaticString(key, "a value longer than fifteen bytes");
  }
  record.clearForReuse();
  EXPECT_EQ(record.attributes.spareStrings(), Attributes::kSpareStrings);
  EXPECT_TRUE(record.attributes.empty());
  // A value longer than a kept buffer still arrives whole.
  record.attributes.setStaticString("huge", huge);
  EXPECT_EQ(std::get<std::string>(*record.attributes.find("huge")), huge);
}

// A span's own encoding: its buffer is kept for the next span up to kKeptEncodedCapacity bytes
// (at the limit), and freed past it (one past).
TEST(SpanRecordTest, KeepsTheEncodingsBufferUpToItsLimit) {
  for (const size_t capacity :
       {SpanRecord::kKeptEncodedCapacity, SpanRecord::kKeptEncodedCapacity + 1}) {
    SpanRecord record;
    fill(record);
    record.encoded.reserve(capacity);
    record.encoded.assign(capacity, 'e');
    const bool past = record.encoded.capacity() > SpanRecord::kKeptEncodedCapacity;
    ASSERT_EQ(past, capacity > SpanRecord::kKeptEncodedCapacity) << "reserve rounded up";
    record.events.clear();
    record.links.clear();
    record.attributes.clear();
    EXPECT_EQ(record.holdsLargeValues(), past);
    record.clearForReuse();
    EXPECT_TRUE(record.encoded.empty());
    EXPECT_FALSE(record.holdsLargeValues());
    if (past) {
      EXPECT_LT(record.encoded.capacity(), 64u);
    } else {
      EXPECT_EQ(record.encoded.capacity(), capacity);
    }
  }
}

TEST(SpanRecordTest, SaysWhenItHoldsMoreThanClearingKeeps) {
  const std::string at_limit(Attributes::kSpareStringCapacity, 'a');
  const std::string past_limit(Attributes::kSpareStringCapacity + 1, 'a');
  SpanRecord record;
  record.attributes.setStaticString("url.full", at_limit);
  record.attributes.setStaticInt("http.response.status_code", 200);
  EXPECT_FALSE(record.holdsLargeValues());
  record.attributes.setStaticString("user_agent.original", past_limit);
  EXPECT_TRUE(record.holdsLargeValues());
  record.clearForReuse();
  EXPECT_FALSE(record.holdsLargeValues());

  record.attributes.set("x.owned", std::string(past_limit));
  EXPECT_TRUE(record.holdsLargeValues());
  record.clearForReuse();
  record.attributes.set("x.array", StringArray{"a"});
  EXPECT_TRUE(record.holdsLargeValues());
  record.clearForReuse();
  record.events.push_back(SpanEvent{"event", 15, {}});
  EXPECT_TRUE(record.holdsLargeValues());
  record.clearForReuse();
  EXPECT_FALSE(record.holdsLargeValues());
}

// A record is emptied by the thread that takes it back, unless it holds more than emptying
// keeps: then the pool empties it as it gets it, so that waiting records hold little.
TEST(SpanRecordPoolTest, EmptiesOnlyLargeRecordsWhenGiven) {
  SpanRecordPool pool(4);
  std::unique_ptr<SpanRecord> small = pool.take();
  small->attributes.setStaticString("url.path", "/users/42");
  std::unique_ptr<SpanRecord> large = pool.take();
  large->attributes.setStaticString("url.full", std::string(4096, 'u'));
  const SpanRecord* const small_waiting = small.get();
  const SpanRecord* const large_waiting = large.get();
  pool.give(std::move(small));
  pool.give(std::move(large));
  // Still owned by the pool, and nobody else runs: what they hold while they wait.
  EXPECT_EQ(small_waiting->attributes.size(), 1u);
  EXPECT_TRUE(large_waiting->attributes.empty());
  EXPECT_EQ(encoded(*pool.take()), encoded(SpanRecord{}));
  EXPECT_EQ(encoded(*pool.take()), encoded(SpanRecord{}));
}

TEST(SpanRecordPoolTest, AllocatesWhenEmptyAndHandsBackWhatWasGiven) {
  SpanRecordPool pool(2);
  std::unique_ptr<SpanRecord> a = pool.take();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->home, &pool);
  fill(*a);
  SpanRecord* const address = a.get();
  pool.give(std::move(a));
  EXPECT_EQ(pool.size(), 1u);
  std::unique_ptr<SpanRecord> again = pool.take();
  EXPECT_EQ(again.get(), address);
  EXPECT_EQ(encoded(*again), encoded(SpanRecord{}));
  EXPECT_EQ(again->home, &pool);
  EXPECT_EQ(pool.size(), 0u);
}

// At its capacity a record given is deleted (ASan's leak check sees any that is not); the
// pool frees what it still holds when it goes.
TEST(SpanRecordPoolTest, KeepsAtMostItsCapacity) {
  SpanRecordPool pool(3);  // rounded up to 4
  EXPECT_EQ(pool.capacity(), 4u);
  std::vector<std::unique_ptr<SpanRecord>> records;
  for (int i = 0; i < 6; ++i) records.push_back(pool.take());
  for (auto& r : records) pool.give(std::move(r));
  EXPECT_EQ(pool.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NE(pool.take(), nullptr);
  EXPECT_EQ(pool.size(), 0u);
  pool.give(pool.take());
  EXPECT_EQ(pool.size(), 1u);
}

// One thread gives while the owner takes: every record comes back exactly once or is made new.
TEST(SpanRecordPoolTest, OneGiverOneTakerLoseNothing) {
  SpanRecordPool pool(8);
  constexpr int kRounds = 20000;
  std::vector<std::unique_ptr<SpanRecord>> handed(kRounds);
  std::atomic<int> ready{0};
  std::thread giver([&] {
    for (int i = 0; i < kRounds; ++i) {
      while (ready.load(std::memory_order_acquire) <= i) std::this_thread::yield();
      pool.give(std::move(handed[static_cast<size_t>(i)]));
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    std::unique_ptr<SpanRecord> r = pool.take();
    ASSERT_EQ(r->start_unix_nano, 0u);  // cleared before it came back
    r->start_unix_nano = static_cast<uint64_t>(i) + 1;
    handed[static_cast<size_t>(i)] = std::move(r);
    ready.store(i + 1, std::memory_order_release);
  }
  giver.join();
}

}  // namespace
}  // namespace tracecar::exporter
