#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tracecar::propagation {

// Appends in to out with every byte for which keep(byte) is false written as %XX (uppercase).
template <class KeepPredicate>
void appendPercentEncoded(std::string_view in, std::string& out, KeepPredicate keep) {
  static constexpr char kUpper[] = "0123456789ABCDEF";
  for (char c : in) {
    if (keep(c)) {
      out.push_back(c);
    } else {
      const auto b = static_cast<uint8_t>(c);
      out.push_back('%');
      out.push_back(kUpper[b >> 4]);
      out.push_back(kUpper[b & 0x0f]);
    }
  }
}

}  // namespace tracecar::propagation
