#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "exporter/span.h"

namespace tracecar::exporter {

// Bounded multi-producer single-consumer queue of finished spans, after Dmitry Vyukov's bounded
// queue: every slot carries a sequence number that says whose turn it is (the producer of lap
// k or the consumer of lap k), so producers only contend on one counter and never wait for each
// other. Slots are allocated once; tryPush never blocks and never allocates.
//
// Sequences count in half steps so that a capacity of 1 works too: 2p means "free for position
// p", 2p + 1 "holds position p". Slot i starts at 2i. A producer that claimed position p (slot
// p % capacity) writes when the sequence is 2p and publishes 2p + 1; the consumer reads
// position p at 2p + 1 and frees the slot for the next lap with 2(p + capacity).
//
// The queue can be closed: the flag lives in the claim counter itself, so a push either claimed
// its position before the close (and will be published) or fails; nothing slips in afterwards.
class SpanQueue {
 public:
  enum class PushResult : uint8_t { kPushed, kFull, kClosed };

  explicit SpanQueue(size_t capacity)
      : capacity_(capacity == 0 ? 1 : capacity),
        mask_((capacity_ & (capacity_ - 1)) == 0 ? capacity_ - 1 : 0),
        slots_(static_cast<Slot*>(std::calloc(capacity_, sizeof(Slot)))) {
    // Zeroed memory is an empty queue (see Slot): a large queue takes fresh pages from the
    // system that nothing touches until the slots are used, so an idle sidecar does not pay for
    // them.
    if (!slots_) throw std::bad_alloc();
  }
  SpanQueue(const SpanQueue&) = delete;
  SpanQueue& operator=(const SpanQueue&) = delete;

  ~SpanQueue() {
    // Whatever is still published belongs to the queue.
    uint64_t pos = dequeue_pos_.load(std::memory_order_relaxed);
    for (;;) {
      const size_t i = index(pos);
      if (sequence(i, std::memory_order_acquire) != 2 * pos + 1) break;
      delete slots_[i].span;
      ++pos;
    }
  }

  // Any thread. On kPushed the queue has taken ownership of span; otherwise span is untouched.
  PushResult tryPush(std::unique_ptr<SpanRecord>& span) noexcept {
    uint64_t pos = enqueue_pos_.load(std::memory_order_relaxed);
    for (;;) {
      if ((pos & kClosedBit) != 0) return PushResult::kClosed;
      const size_t i = index(pos);
      const uint64_t seq = sequence(i, std::memory_order_acquire);
      const auto diff = static_cast<int64_t>(seq - 2 * pos);
      if (diff == 0) {
        // The CAS compares the closed bit too: a close that raced us makes it fail.
        if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          slots_[i].span = span.release();
          setSequence(i, 2 * pos + 1, std::memory_order_release);
          return PushResult::kPushed;
        }
      } else if (diff < 0) {
        // The slot still holds the item of the previous lap: the queue is full.
        return PushResult::kFull;
      } else {
        // Another producer took this position: catch up.
        pos = enqueue_pos_.load(std::memory_order_relaxed);
      }
    }
  }

  // Consumer thread only. Appends up to max published spans, oldest first, to out (give out the
  // capacity beforehand so that this does not allocate). Stops at the first claimed slot that
  // its producer has not published yet. Returns how many it appended.
  size_t popBatch(std::vector<std::unique_ptr<SpanRecord>>& out, size_t max) {
    uint64_t pos = dequeue_pos_.load(std::memory_order_relaxed);
    size_t n = 0;
    while (n < max) {
      const size_t i = index(pos);
      if (sequence(i, std::memory_order_acquire) != 2 * pos + 1) break;
      out.emplace_back(slots_[i].span);
      slots_[i].span = nullptr;
      setSequence(i, 2 * (pos + capacity_), std::memory_order_release);
      ++pos;
      ++n;
      // Per item, so that a throwing emplace_back can never make us pop a slot twice.
      dequeue_pos_.store(pos, std::memory_order_release);
    }
    return n;
  }

  // Refuses every later push. Idempotent. Returns the number of positions ever claimed, which
  // is final from now on.
  uint64_t close() noexcept {
    return enqueue_pos_.fetch_or(kClosedBit, std::memory_order_acq_rel) & ~kClosedBit;
  }
  bool closed() const noexcept {
    return (enqueue_pos_.load(std::memory_order_acquire) & kClosedBit) != 0;
  }

  // Positions claimed by producers so far (pushed, or being published right now).
  uint64_t claimed() const noexcept {
    return enqueue_pos_.load(std::memory_order_acquire) & ~kClosedBit;
  }
  // Positions the consumer has taken so far.
  uint64_t popped() const noexcept { return dequeue_pos_.load(std::memory_order_acquire); }

  // Spans waiting; exact when no push or pop is running, an estimate otherwise.
  size_t size() const noexcept {
    // Reading the consumer's position first keeps the difference from going negative.
    const uint64_t tail = popped();
    const uint64_t head = claimed();
    const uint64_t n = head - tail;
    return n > capacity_ ? capacity_ : static_cast<size_t>(n);
  }
  size_t capacity() const noexcept { return capacity_; }

 private:
  static constexpr uint64_t kClosedBit = uint64_t{1} << 63;

  // Plain words, made by calloc, the sequence read and written through std::atomic_ref. It is
  // kept as an offset from slot i's first sequence, 2i, so that all zeros is the empty queue.
  struct Slot {
    uint64_t sequence_offset;
    SpanRecord* span;  // owned while published
  };
  static_assert(alignof(Slot) >= std::atomic_ref<uint64_t>::required_alignment);
  static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);
  struct FreeSlots {
    void operator()(Slot* slots) const noexcept { std::free(slots); }
  };

  uint64_t sequence(size_t i, std::memory_order order) const noexcept {
    return std::atomic_ref<uint64_t>(slots_[i].sequence_offset).load(order) + 2 * uint64_t{i};
  }
  void setSequence(size_t i, uint64_t value, std::memory_order order) noexcept {
    std::atomic_ref<uint64_t>(slots_[i].sequence_offset).store(value - 2 * uint64_t{i}, order);
  }

  size_t index(uint64_t pos) const noexcept {
    // Capacity is OTEL_BSP_MAX_QUEUE_SIZE, any positive number: mask when we can, divide if not.
    return mask_ != 0 || capacity_ == 1 ? static_cast<size_t>(pos & mask_)
                                        : static_cast<size_t>(pos % capacity_);
  }

  const size_t capacity_;
  const size_t mask_;  // capacity - 1 when capacity is a power of two, else 0
  std::unique_ptr<Slot[], FreeSlots> slots_;
  // Producers hammer the claim counter; keep the consumer's position off its cache line.
  alignas(64) std::atomic<uint64_t> enqueue_pos_{0};
  alignas(64) std::atomic<uint64_t> dequeue_pos_{0};
};

}  // namespace tracecar::exporter
