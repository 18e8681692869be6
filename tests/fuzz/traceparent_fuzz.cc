// Whatever parses must format back to a value that parses to the same ids and known flags,
// and formatting a version-00 value that parsed must give the input back exactly (with unknown
// flags cleared).
#include <cstdint>
#include <cstring>
#include <string_view>

#include "propagation/traceparent.h"

using tracecar::propagation::formatTraceparent;
using tracecar::propagation::kTraceparentLength;
using tracecar::propagation::parseTraceparent;
using tracecar::propagation::Traceparent;
using tracecar::propagation::TraceparentStatus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  Traceparent parsed;
  if (parseTraceparent(input, parsed) != TraceparentStatus::kValid) return 0;
  if (!parsed.trace_id.isValid() || !parsed.parent_id.isValid()) __builtin_trap();
  if ((parsed.flags & ~tracecar::propagation::trace_flags::kKnown) != 0) __builtin_trap();

  char out[kTraceparentLength];
  formatTraceparent(parsed.trace_id, parsed.parent_id, parsed.flags, out);
  Traceparent again;
  if (parseTraceparent(std::string_view(out, sizeof(out)), again) != TraceparentStatus::kValid) {
    __builtin_trap();
  }
  if (again.trace_id != parsed.trace_id || again.parent_id != parsed.parent_id ||
      again.flags != parsed.flags || again.version != 0) {
    __builtin_trap();
  }
  // Version, ids and separators are echoed byte for byte (flags may lose unknown bits).
  if (parsed.version == 0 && std::memcmp(out, data, 53) != 0) __builtin_trap();
  if (parsed.version != 0 && std::memcmp(out + 2, data + 2, 51) != 0) __builtin_trap();
  return 0;
}
