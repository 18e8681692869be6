#include "base/kept_blocks.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace tracecar::base {
namespace {

struct Small {
  static void* operator new(size_t size) { return KeptBlocks<Small, 4>::allocate(size); }
  static void operator delete(void* p, size_t size) noexcept {
    KeptBlocks<Small, 4>::release(p, size);
  }
  virtual ~Small() = default;
  int value = 0;
};

struct Bigger : Small {
  char more[64] = {};
};

using Shelf = KeptBlocks<Small, 4>;

TEST(KeptBlocksTest, AFreedBlockIsTheNextOneMade) {
  auto* first = new Small;
  void* const where = first;
  delete first;
  EXPECT_EQ(Shelf::keptOnThisThread(), kKeepFreedBlocks ? 1U : 0U);
  auto* second = new Small;
  if (kKeepFreedBlocks) {
    EXPECT_EQ(static_cast<void*>(second), where);
  }
  EXPECT_EQ(Shelf::keptOnThisThread(), 0U);
  delete second;
  delete new Small;  // leaves the shelf as the other tests find it: one block or none
}

TEST(KeptBlocksTest, KeepsAtMostNBlocks) {
  std::vector<Small*> made;
  for (int i = 0; i < 10; ++i) made.push_back(new Small);
  EXPECT_EQ(Shelf::keptOnThisThread(), 0U);
  for (Small* s : made) delete s;
  EXPECT_EQ(Shelf::keptOnThisThread(), kKeepFreedBlocks ? 4U : 0U);
  made.clear();
  for (int i = 0; i < 10; ++i) made.push_back(new Small);
  EXPECT_EQ(Shelf::keptOnThisThread(), 0U);
  for (Small* s : made) delete s;
}

TEST(KeptBlocksTest, ADerivedClassOfAnotherSizeIsNotKept) {
  std::vector<std::unique_ptr<Small>> emptied;  // takes whatever waits on the shelf
  while (Shelf::keptOnThisThread() > 0) emptied.emplace_back(new Small);
  std::unique_ptr<Small> derived = std::make_unique<Bigger>();
  derived.reset();  // through the virtual destructor, with Bigger's size
  EXPECT_EQ(Shelf::keptOnThisThread(), 0U);
}

TEST(KeptBlocksTest, EachThreadHasItsOwnShelf) {
  const size_t here = Shelf::keptOnThisThread();
  size_t there_before = 99;
  size_t there_after = 99;
  std::thread([&] {
    there_before = Shelf::keptOnThisThread();
    delete new Small;
    there_after = Shelf::keptOnThisThread();
  }).join();  // the thread's shelf frees its block as the thread ends
  EXPECT_EQ(there_before, 0U);
  EXPECT_EQ(there_after, kKeepFreedBlocks ? 1U : 0U);
  EXPECT_EQ(Shelf::keptOnThisThread(), here);
}

struct Interface {
  virtual ~Interface() = default;
};

struct Kept final : Interface, KeptInThread<Kept> {
  int payload[8] = {};
};

TEST(KeptBlocksTest, KeptInThreadGivesTheClassItsShelf) {
  std::unique_ptr<Interface> first = std::make_unique<Kept>();
  void* const where = first.get();
  first.reset();  // through Interface's virtual destructor
  EXPECT_EQ(KeptBlocks<Kept>::keptOnThisThread(), kKeepFreedBlocks ? 1U : 0U);
  std::unique_ptr<Interface> second = std::make_unique<Kept>();
  if (kKeepFreedBlocks) {
    EXPECT_EQ(static_cast<void*>(second.get()), where);
  }
}

}  // namespace
}  // namespace tracecar::base
