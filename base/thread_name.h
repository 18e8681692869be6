#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace tracecar::base {

// Names the calling thread as `top -H`, `ps -L`, /proc/PID/task/TID/comm and perf show it.
// Linux keeps at most 15 bytes; a longer name is cut there. Naming is best effort: a failure
// changes nothing else.
inline void nameThisThread(std::string_view name) {
  constexpr size_t kMaxBytes = 15;
  const std::string cut(name.substr(0, kMaxBytes));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace tracecar::base
