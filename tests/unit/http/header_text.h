// Header fields written and read as text, for the HTTP and proxy tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

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

// A header map of these fields, in order.
inline HeaderMap makeHeaders(const std::vector<std::pair<std::string, std::string>>& fields) {
  HeaderMap headers;
  for (const auto& [name, value] : fields) headers.add(name, value);
  return headers;
}

// The fields as they go out in an HTTP/1.1 head: "name: value\r\n" each.
inline std::string serialize(const HeaderMap& headers) {
  std::string out;
  headers.serialize(out);
  return out;
}

}  // namespace tracecar::http::test_support
