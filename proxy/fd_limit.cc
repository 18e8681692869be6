#include "proxy/fd_limit.h"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "exporter/log.h"

namespace tracecar::proxy {
namespace {

// fs.nr_open: the highest RLIMIT_NOFILE the kernel accepts (1048576 unless changed).
rlim_t kernelCeiling() noexcept {
  rlim_t ceiling = 1 << 20;
  if (std::FILE* f = std::fopen("/proc/sys/fs/nr_open", "re")) {
    unsigned long long value = 0;
    if (std::fscanf(f, "%llu", &value) == 1 && value > 0) ceiling = static_cast<rlim_t>(value);
    std::fclose(f);
  }
  return ceiling;
}

}  // namespace

FileDescriptorLimit raiseFileDescriptorLimit() noexcept {
  FileDescriptorLimit result;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    result.error = std::strerror(errno);
    return result;
  }
  result.before = result.soft = limit.rlim_cur;
  // RLIM_INFINITY is the largest rlim_t: the kernel's ceiling then applies.
  const rlim_t wanted = std::min(limit.rlim_max, kernelCeiling());
  if (limit.rlim_cur != RLIM_INFINITY && wanted > limit.rlim_cur) {
    limit.rlim_cur = wanted;
    if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
      result.soft = wanted;
    } else {
      result.error = std::strerror(errno);
    }
  }
  return result;
}

uint64_t fileDescriptorLimit() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return limit.rlim_cur;
}

int64_t openFileDescriptors() noexcept {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    // At the limit, opening the directory is what fails.
    return errno == EMFILE ? static_cast<int64_t>(fileDescriptorLimit()) : -1;
  }
  int64_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the directory's own descriptor
}

void warnOutOfFileDescriptors(bool system_wide) noexcept {
  static LogThrottle throttle;
  if (!logEnabled(LogLevel::kWarn)) return;
  try {
    const std::string message =
        system_wide
            ? std::string("the system is out of file descriptors (ENFILE, fs.file-max): "
                          "upstream connections fail with 503 and new client connections wait "
                          "to be accepted")
            : "out of file descriptors (limit " + std::to_string(fileDescriptorLimit()) +
                  "): upstream connections fail with 503 and new client connections wait to be "
                  "accepted; raise the container's nofile limit (docs/data-path.md)";
    throttle.log(LogLevel::kWarn, "proxy", message);
  } catch (...) {
  }
}

}  // namespace tracecar::proxy
