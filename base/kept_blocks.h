#pragma once

#include <array>
#include <cstddef>
#include <new>

#include "base/asan.h"

namespace tracecar::base {

// AddressSanitizer must see every free to find a use after it: keep nothing under it.
#ifdef TRACECAR_ASAN
inline constexpr bool kKeepFreedBlocks = false;
#else
inline constexpr bool kKeepFreedBlocks = true;
#endif

// A per-thread shelf of freed blocks the size of T, for objects made and destroyed once per
// request or stream: T's class operator new and delete call allocate and release, so a warm
// thread reuses the last ones instead of going to the allocator. At most N blocks wait on each
// thread's shelf (the rest go back to the heap); blocks of any other size (a derived class) are
// not kept. A block freed on another thread than the one that made it joins that thread's shelf.
template <class T, size_t N = 64>
class KeptBlocks {
 public:
  static void* allocate(size_t size) {
    if constexpr (kKeepFreedBlocks) {
      Shelf& shelf = shelfOfThisThread();
      if (size == sizeof(T) && shelf.count > 0) return shelf.blocks[--shelf.count];
    }
    return ::operator new(size);
  }

  static void release(void* block, size_t size) noexcept {
    if constexpr (kKeepFreedBlocks) {
      Shelf& shelf = shelfOfThisThread();
      if (size == sizeof(T) && shelf.count < N) {
        shelf.blocks[shelf.count++] = block;
        return;
      }
    }
    ::operator delete(block);
  }

  // Blocks waiting on this thread's shelf (for tests).
  static size_t keptOnThisThread() noexcept { return shelfOfThisThread().count; }

 private:
  struct Shelf {
    std::array<void*, N> blocks{};
    size_t count = 0;
    Shelf() = default;
    Shelf(const Shelf&) = delete;
    Shelf& operator=(const Shelf&) = delete;
    ~Shelf() {
      for (size_t i = 0; i < count; ++i) ::operator delete(blocks[i]);
      count = 0;
    }
  };

  static Shelf& shelfOfThisThread() noexcept {
    thread_local Shelf shelf;
    return shelf;
  }
};

// A base that gives T (the class deriving from it) the class operator new and delete of a
// KeptBlocks<T> shelf. Deleting through a pointer to another base with a virtual destructor
// reaches them too.
template <class T>
class KeptInThread {
 public:
  static void* operator new(size_t size) { return KeptBlocks<T>::allocate(size); }
  static void operator delete(void* block, size_t size) noexcept {
    KeptBlocks<T>::release(block, size);
  }
};

}  // namespace tracecar::base
