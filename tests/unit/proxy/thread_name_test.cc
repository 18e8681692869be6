#include "base/thread_name.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace tracecar::base {
namespace {

std::string commOfThisThread() {
  std::ifstream in("/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

TEST(ThreadName, NamesTheCallingThread) {
  std::string seen;
  std::thread([&] {
    nameThisThread("tc-worker-3");
    seen = commOfThisThread();
  }).join();
  EXPECT_EQ(seen, "tc-worker-3");
}

TEST(ThreadName, KeepsFifteenBytesAndCutsTheRest) {
  std::string at_limit;
  std::string past_limit;
  std::thread([&] {
    nameThisThread("tc-worker-12345");  // 15 bytes
    at_limit = commOfThisThread();
    nameThisThread("tc-worker-123456");  // 16 bytes: Linux would refuse it whole
    past_limit = commOfThisThread();
  }).join();
  EXPECT_EQ(at_limit, "tc-worker-12345");
  EXPECT_EQ(past_limit, "tc-worker-12345");
}

}  // namespace
}  // namespace tracecar::base
