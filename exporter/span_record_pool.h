#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "exporter/span.h"

namespace tracecar::exporter {

// Span records on their way back from the exporter thread to the one thread that fills them,
// so that a span costs no allocation once the pool is warm: without it every record (and the
// memory of its lists) is allocated on a worker and freed on the exporter thread, which is
// slow for both. A bounded single-producer single-consumer ring: give() on the exporter thread,
// take() on the owning thread. A record given to a full ring is deleted.
class SpanRecordPool {
 public:
  explicit SpanRecordPool(size_t capacity)
      : capacity_(roundUp(capacity)), slots_(std::make_unique<SpanRecord*[]>(capacity_)) {}
  SpanRecordPool(const SpanRecordPool&) = delete;
  SpanRecordPool& operator=(const SpanRecordPool&) = delete;
  ~SpanRecordPool() {
    for (uint64_t i = tail_.load(std::memory_order_relaxed);
         i != head_.load(std::memory_order_relaxed); ++i) {
      delete slots_[i & (capacity_ - 1)];
    }
  }

  // The owning thread: a record as new (home set to this pool), recycled when one is waiting.
  // A recycled record is emptied here rather than by give(): the owner is about to write the
  // same memory, so it is brought into the cache once, and the long strings it frees go back
  // to the allocator of the thread that makes them.
  //
  // A record comes back a batch after it was written, out of the nearer caches; the next ones are
  // prefetched, two steps ahead: the record after next (its first lines), and the next one's
  // attributes (whose address is in lines the take before this one prefetched). The owner makes
  // a span between two takes, time enough for them to arrive.
  std::unique_ptr<SpanRecord> take() {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    const uint64_t head = head_.load(std::memory_order_acquire);
    if (tail != head) {
      std::unique_ptr<SpanRecord> record(slots_[tail & (capacity_ - 1)]);
      tail_.store(tail + 1, std::memory_order_release);
      if (head - tail > 1) {
        const std::vector<Attribute>& next = slots_[(tail + 1) & (capacity_ - 1)]->attributes.items();
        const char* const items = reinterpret_cast<const char*>(next.data());
        const size_t bytes = next.size() * sizeof(Attribute);
        for (size_t at = 0; at < bytes; at += kLine) __builtin_prefetch(items + at, 1);
      }
      if (head - tail > 2) {
        const char* const after = reinterpret_cast<const char*>(slots_[(tail + 2) & (capacity_ - 1)]);
        for (size_t at = 0; at < sizeof(SpanRecord); at += kLine) __builtin_prefetch(after + at, 1);
      }
      record->clearForReuse();
      return record;
    }
    auto record = std::make_unique<SpanRecord>();
    record->home = this;
    return record;
  }

  // The exporter thread: keeps the record for take(), or deletes it when full. A record with
  // values past the sizes clearForReuse keeps is emptied here, so that a full ring holds no
  // more than that while it waits.
  void give(std::unique_ptr<SpanRecord> record) noexcept {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_.load(std::memory_order_acquire) >= capacity_) return;  // deleted
    if (record->holdsLargeValues()) record->clearForReuse();
    slots_[head & (capacity_ - 1)] = record.release();
    head_.store(head + 1, std::memory_order_release);
  }

  size_t capacity() const noexcept { return capacity_; }
  // Records waiting; exact when neither side is running.
  size_t size() const noexcept {
    return static_cast<size_t>(head_.load(std::memory_order_acquire) -
                               tail_.load(std::memory_order_acquire));
  }

 private:
  static size_t roundUp(size_t n) noexcept {
    size_t c = 1;
    while (c < n) c <<= 1;
    return c;
  }

  static constexpr size_t kLine = 64;
  const size_t capacity_;  // a power of two
  std::unique_ptr<SpanRecord*[]> slots_;
  alignas(64) std::atomic<uint64_t> head_{0};  // next slot give() fills
  alignas(64) std::atomic<uint64_t> tail_{0};  // next slot take() empties
};

}  // namespace tracecar::exporter
