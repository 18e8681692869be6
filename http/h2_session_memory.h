#pragma once

// Memory for one H2Session's nghttp2 session (nghttp2_mem), and the storage of the header lists
// it submits. Not for use outside http/.
#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

namespace tracecar::http::h2_internal {

// nghttp2 allocates and frees a dozen small blocks per stream (the stream, each frame queued,
// header lists, received header fields), and so do H2Session's stream table, body buffers and
// submitted header lists. This keeps freed blocks in per-size free lists for the next stream
// instead of returning them to malloc, up to kMaxCachedBytes per session (all freed with it).
// One session, one thread: no locking.
class H2Memory {
 public:
  H2Memory() noexcept;
  ~H2Memory();
  H2Memory(const H2Memory&) = delete;
  H2Memory& operator=(const H2Memory&) = delete;

  // For nghttp2_session_*_new3 (which copies it); this object must outlive the session.
  nghttp2_mem* mem() noexcept { return &mem_; }

  void* allocate(size_t size) noexcept;
  void release(void* block) noexcept;
  void* reallocate(void* block, size_t size) noexcept;
  size_t cachedBytes() const noexcept { return cached_bytes_; }

  // What a busy connection's streams free and take back between two reads: under h2load -c 10
  // -m 10 through the proxy, a 16 KiB cap still sent 1 allocation in 13 to malloc, 32 KiB 1 in 100.
  static constexpr size_t kMaxCachedBytes = 32 * 1024;

 private:
  // Class i holds blocks of 16 * (i + 1) bytes, their header included; larger blocks go
  // straight to malloc.
  static constexpr size_t kClasses = 64;
  struct FreeBlock {
    FreeBlock* next;
  };

  FreeBlock* free_[kClasses] = {};
  size_t cached_bytes_ = 0;
  nghttp2_mem mem_;
};

// Allocates a stream table's nodes from the session's H2Memory.
template <class T>
class H2Allocator {
 public:
  using value_type = T;
  explicit H2Allocator(H2Memory& memory) noexcept : memory_(&memory) {}
  template <class U>
  H2Allocator(const H2Allocator<U>& other) noexcept : memory_(other.memory()) {}  // NOLINT

  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
    void* p = memory_->allocate(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { memory_->release(p); }
  H2Memory* memory() const noexcept { return memory_; }

  template <class U>
  bool operator==(const H2Allocator<U>& other) const noexcept {
    return memory_ == other.memory();
  }

 private:
  H2Memory* memory_;
};

// The names and values of header lists submitted to nghttp2 with NGHTTP2_NV_FLAG_NO_COPY_*:
// each list's bytes stay here until nghttp2 reports its HEADERS frame sent or abandoned
// (on_frame_send / on_frame_not_send: its documented end of the references), or the session is
// deleted. The bytes come from the session's H2Memory, so a list costs no malloc once the
// session has run a while.
class H2FieldStore {
 public:
  explicit H2FieldStore(H2Memory& memory) noexcept : memory_(memory) {}
  ~H2FieldStore();
  H2FieldStore(const H2FieldStore&) = delete;
  H2FieldStore& operator=(const H2FieldStore&) = delete;

  // A buffer of at least size bytes for the next list; fill it, then keep() or drop() it.
  char* take(size_t size);
  // The list built in the last take() went to nghttp2 with used bytes of it.
  void keep(size_t used) noexcept;
  // It did not (nghttp2 refused it, or nothing in it is referenced).
  void drop() noexcept;
  // nghttp2 is done with the list one of whose bytes is at p; false when none holds p.
  bool release(const uint8_t* p) noexcept;
  size_t inFlight() const noexcept { return in_flight_.size(); }

 private:
  struct List {
    char* bytes;
    size_t used;
  };

  H2Memory& memory_;
  std::vector<List> in_flight_;
  char* current_ = nullptr;
};

}  // namespace tracecar::http::h2_internal
