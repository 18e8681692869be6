#pragma once

#include <cstdint>
#include <string>

// File descriptors. A proxied connection holds two (the client's and the upstream's), so a
// sidecar meets the soft RLIMIT_NOFILE (often 1024) long before its hard one.
namespace tracecar::proxy {

struct FileDescriptorLimit {
  uint64_t soft = 0;    // after raising
  uint64_t before = 0;  // the soft limit tracecar was started with
  std::string error;    // why it could not be raised, if it could not
};

// Raises the soft limit to the hard one (at most fs.nr_open, the kernel's own ceiling), as a
// server holding many connections should; never lowers it.
FileDescriptorLimit raiseFileDescriptorLimit() noexcept;

// The soft limit now; 0 when unknown.
uint64_t fileDescriptorLimit() noexcept;

// Descriptors the process has open now (the entries of /proc/self/fd); -1 when unknown.
int64_t openFileDescriptors() noexcept;

// The data path could not open a descriptor (EMFILE, ENFILE): one warning per interval for the
// whole process, with the limit and what it means.
void warnOutOfFileDescriptors(bool system_wide) noexcept;

}  // namespace tracecar::proxy
