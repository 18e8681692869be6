#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "propagation/header_carrier.h"

namespace tracecar::propagation::testing {

// An ordered list of header fields, names matched case-insensitively, as HTTP/1 does.
class TestCarrier {
 public:
  TestCarrier() = default;
  TestCarrier(std::initializer_list<std::pair<std::string, std::string>> fields)
      : fields_(fields) {}

  void add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
  }

  void forEach(std::string_view name, FieldValueVisitor visit) const {
    for (const auto& [n, v] : fields_) {
      if (equalsIgnoreCase(n, name)) visit(v);
    }
  }
  void forEachField(FieldVisitor visit) const {
    for (const auto& [n, v] : fields_) visit(n, v);
  }
  void set(std::string_view name, std::string_view value) {
    remove(name);
    fields_.emplace_back(std::string(name), std::string(value));
  }
  void remove(std::string_view name) {
    std::erase_if(fields_, [&](const auto& f) { return equalsIgnoreCase(f.first, name); });
  }

  // The single value of name; "" when absent. Fails the caller's expectations via count().
  std::string get(std::string_view name) const {
    std::string out;
    forEach(name, [&](std::string_view v) { out = std::string(v); });
    return out;
  }
  size_t count(std::string_view name) const {
    size_t n = 0;
    forEach(name, [&](std::string_view) { ++n; });
    return n;
  }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  static bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      char x = a[i], y = b[i];
      if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
      if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
      if (x != y) return false;
    }
    return true;
  }
  std::vector<std::pair<std::string, std::string>> fields_;
};

static_assert(HeaderCarrier<TestCarrier>);

}  // namespace tracecar::propagation::testing
