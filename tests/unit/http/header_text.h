// Header fields as one line of text, for the HTTP tests' event logs.
#pragma once

#include <string>

#include "http/header_map.h"

namespace tracecar::http::test_support {

// " [name: value]" for each field, in order.
inline std::string describe(const HeaderMap& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    out += " [" + std::string(fields.name(i)) + ": " + std::string(fields.value(i)) + "]";
  }
  return out;
}

}  // namespace tracecar::http::test_support
