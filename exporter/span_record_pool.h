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
      delete slotAt(i);
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
      std::unique_ptr<SpanRecord> record(slotAt(tail));
      tail_.store(tail + 1, std::memory_order_release);
      if (head - tail > 1) {
        const std::vector<Attribute>& next = slotAt(tail + 1)->attributes.items();
        prefetchForWrite(next.data(), next.size() * sizeof(Attribute));
      }
      if (head - tail > 2) prefetchForWrite(slotAt(tail + 2), sizeof(SpanRecord));
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
    slotAt(head) = record.release();
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

  // The slot of a position (they count up forever; the ring wraps).
  SpanRecord*& slotAt(uint64_t position) const noexcept {
    return slots_[position & (capacity_ - 1)];
  }
  // Asks for bytes at address to be brought into the cache, to be written.
  static void prefetchForWrite(const void* address, size_t bytes) noexcept {
    constexpr size_t kLine = 64;
    const char* const start = static_cast<const char*>(address);
    for (size_t at = 0; at < bytes; at += kLine) __builtin_prefetch(start + at, 1);
  }

  const size_t capacity_;  // a power of two
  std::unique_ptr<SpanRecord*[]> slots_;
  alignas(64) std::atomic<uint64_t> head_{0};  // next slot give() fills
  alignas(64) std::atomic<uint64_t> tail_{0};  // next slot take() empties
};

}  // namespace tracecar::exporter
