#include "http/h2_session_memory.h"

#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>

#include "base/asan.h"
#ifdef TRACECAR_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace tracecar::http::h2_internal {
namespace {

// Under AddressSanitizer a cached block is poisoned (all but its free-list link), so a use after
// release is reported as it would be after free().
#ifdef TRACECAR_ASAN
void poison(void* block, size_t size) noexcept { ASAN_POISON_MEMORY_REGION(block, size); }
void unpoison(void* block, size_t size) noexcept { ASAN_UNPOISON_MEMORY_REGION(block, size); }
#else
void poison(void*, size_t) noexcept {}
void unpoison(void*, size_t) noexcept {}
#endif

// In front of every block: its class (or kLarge) and, for a large block, its usable size. Its 16
// bytes keep the block aligned as malloc's are.
struct alignas(16) BlockHeader {
  size_t cls;
  size_t size;
};
constexpr size_t kLarge = ~size_t{0};
constexpr size_t kUnit = 16;  // block sizes are multiples of it

BlockHeader* headerOf(void* block) noexcept { return static_cast<BlockHeader*>(block) - 1; }

void* nghttpMalloc(size_t size, void* user) { return static_cast<H2Memory*>(user)->allocate(size); }
void nghttpFree(void* block, void* user) { static_cast<H2Memory*>(user)->release(block); }
void* nghttpCalloc(size_t n, size_t size, void* user) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* block = static_cast<H2Memory*>(user)->allocate(n * size);
  if (block != nullptr) std::memset(block, 0, n * size);
  return block;
}
void* nghttpRealloc(void* block, size_t size, void* user) {
  return static_cast<H2Memory*>(user)->reallocate(block, size);
}

}  // namespace

H2Memory::H2Memory() noexcept
    : mem_{this, &nghttpMalloc, &nghttpFree, &nghttpCalloc, &nghttpRealloc} {}

H2Memory::~H2Memory() {
  for (FreeBlock*& head : free_) {
    while (head != nullptr) {
      FreeBlock* next = head->next;
      std::free(headerOf(head));
      head = next;
    }
  }
}

void* H2Memory::allocate(size_t size) noexcept {
  if (size <= kClasses * kUnit - sizeof(BlockHeader)) {
    // Class 0 would leave no room for the free list's link.
    const size_t cls = size <= kUnit ? 1 : (size + sizeof(BlockHeader) - 1) / kUnit;
    if (FreeBlock* block = free_[cls]) {
      free_[cls] = block->next;
      cached_bytes_ -= (cls + 1) * kUnit;
      unpoison(block, (cls + 1) * kUnit - sizeof(BlockHeader));
      return block;
    }
    auto* header = static_cast<BlockHeader*>(std::malloc((cls + 1) * kUnit));
    if (header == nullptr) return nullptr;
    header->cls = cls;
    return header + 1;
  }
  if (size > SIZE_MAX - sizeof(BlockHeader)) return nullptr;
  auto* header = static_cast<BlockHeader*>(std::malloc(size + sizeof(BlockHeader)));
  if (header == nullptr) return nullptr;
  header->cls = kLarge;
  header->size = size;
  return header + 1;
}

void H2Memory::release(void* block) noexcept {
  if (block == nullptr) return;
  BlockHeader* header = headerOf(block);
  const size_t cls = header->cls;
  if (cls == kLarge || cached_bytes_ + (cls + 1) * kUnit > kMaxCachedBytes) {
    std::free(header);
    return;
  }
  auto* free_block = static_cast<FreeBlock*>(block);
  free_block->next = free_[cls];
  free_[cls] = free_block;
  cached_bytes_ += (cls + 1) * kUnit;
  poison(free_block + 1, (cls + 1) * kUnit - sizeof(BlockHeader) - sizeof(FreeBlock));
}

void* H2Memory::reallocate(void* block, size_t size) noexcept {
  if (block == nullptr) return allocate(size);
  if (size == 0) {
    release(block);
    return nullptr;
  }
  const BlockHeader* header = headerOf(block);
  const bool large = header->cls == kLarge;
  const size_t usable = large ? header->size : (header->cls + 1) * kUnit - sizeof(BlockHeader);
  if (size <= usable && !large) return block;
  void* moved = allocate(size);
  if (moved == nullptr) return nullptr;
  std::memcpy(moved, block, usable < size ? usable : size);
  release(block);
  return moved;
}

// ---- H2FieldStore ----

H2FieldStore::~H2FieldStore() {
  drop();
  for (const List& list : in_flight_) memory_.release(list.bytes);
}

char* H2FieldStore::take(size_t size) {
  drop();
  // Room first, so that keep() cannot fail.
  if (in_flight_.size() == in_flight_.capacity()) in_flight_.reserve(2 * in_flight_.size() + 8);
  current_ = static_cast<char*>(memory_.allocate(size == 0 ? 1 : size));
  if (current_ == nullptr) throw std::bad_alloc();
  return current_;
}

void H2FieldStore::keep(size_t used) noexcept {
  in_flight_.push_back(List{current_, used});
  current_ = nullptr;
}

void H2FieldStore::drop() noexcept {
  memory_.release(current_);
  current_ = nullptr;
}

bool H2FieldStore::release(const uint8_t* p) noexcept {
  const std::less<const char*> before;
  const auto* c = reinterpret_cast<const char*>(p);
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    const List list = in_flight_[i];
    if (before(c, list.bytes) || !before(c, list.bytes + list.used)) continue;
    in_flight_[i] = in_flight_.back();
    in_flight_.pop_back();
    memory_.release(list.bytes);
    return true;
  }
  return false;
}

}  // namespace tracecar::http::h2_internal
