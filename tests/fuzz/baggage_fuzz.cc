// The input is parsed as one baggage field and, split at '\n', as several. Whatever is kept
// must fit the limits, serialize to what serializedLength() says, parse back to the same string
// with nothing dropped, and decode to valid UTF-8. Several fields must act as if joined by ','.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "propagation/baggage.h"

using tracecar::propagation::Baggage;
using tracecar::propagation::BaggageLimits;
using tracecar::propagation::BaggageReport;

namespace {

// RFC 3629, written apart from the implementation under test.
bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

bool sameReport(const BaggageReport& a, const BaggageReport& b) {
  return a.kept == b.kept && a.dropped_invalid == b.dropped_invalid &&
         a.dropped_member_limit == b.dropped_member_limit &&
         a.dropped_byte_limit == b.dropped_byte_limit;
}

void check(const Baggage& baggage, const BaggageReport& report, const BaggageLimits& limits) {
  if (report.kept != baggage.size() || baggage.size() > limits.max_members) __builtin_trap();
  const std::string out = baggage.toString();
  if (baggage.serializedLength() != out.size() || out.size() > limits.max_bytes) __builtin_trap();

  Baggage again;
  const BaggageReport again_report = again.parse(out, limits);
  if (again.toString() != out || again_report.dropped() != 0) __builtin_trap();

  for (size_t i = 0; i < baggage.size(); ++i) {
    const Baggage::Member m = baggage.member(i);
    if (!Baggage::isValidKey(m.key)) __builtin_trap();
    if (!isValidUtf8(Baggage::decodeValue(m.raw_value))) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const BaggageLimits limits;

  Baggage whole;
  check(whole, whole.parse(input, limits), limits);

  std::vector<std::string_view> fields;
  std::string joined;
  for (size_t start = 0; start <= input.size();) {
    const size_t end = std::min(input.find('\n', start), input.size());
    fields.push_back(input.substr(start, end - start));
    joined.append(input.substr(start, end - start)).push_back(',');
    start = end + 1;
  }
  Baggage split;
  const BaggageReport split_report = split.parse(fields, limits);
  check(split, split_report, limits);

  Baggage as_one;
  const BaggageReport joined_report = as_one.parse(joined, limits);
  if (as_one.toString() != split.toString() || !sameReport(joined_report, split_report)) {
    __builtin_trap();
  }

  // Re-setting a member with its decoded value and its properties keeps the value, and
  // enforce() brings the (possibly longer) list back within the limits.
  if (!split.empty()) {
    const Baggage::Member last = split.member(split.size() - 1);
    const std::string key(last.key);
    const std::string value = Baggage::decodeValue(last.raw_value);
    const std::string properties(last.properties);
    if (!split.set(key, value, properties)) __builtin_trap();
    if (split.value(key) != value) __builtin_trap();
    split.enforce(limits);
    if (split.size() > limits.max_members || split.serializedLength() > limits.max_bytes) {
      __builtin_trap();
    }
  }
  return 0;
}
