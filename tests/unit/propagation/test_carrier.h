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

  // "name: value" lines separated by '\n' (spaces after the colon skipped); a line without a
  // colon is a value of default_name. Fuzz targets turn their input into headers with this.
  static TestCarrier fromHeaderLines(std::string_view input, std::string_view default_name) {
    TestCarrier carrier;
    while (!input.empty()) {
      const size_t eol = input.find('\n');
      const std::string_view line = input.substr(0, eol);
      input = eol == std::string_view::npos ? std::string_view() : input.substr(eol + 1);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        carrier.add(std::string(default_name), std::string(line));
        continue;
      }
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      carrier.add(std::string(line.substr(0, colon)), std::string(value));
    }
    return carrier;
  }

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
