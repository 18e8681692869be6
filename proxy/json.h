#pragma once

#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tracecar::proxy::json {

// A JSON value (RFC 8259). Objects keep their members in order, so that what is read and written
// back keeps its shape. Numbers keep their text as parsed (an integer stays an integer, a large
// one keeps every digit).
class Value {
 public:
  enum class Type : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  using Member = std::pair<std::string, Value>;

  Value() = default;  // null
  explicit Value(bool b) : type_(Type::kBool), bool_(b) {}
  static Value string(std::string s);
  static Value number(int64_t n);
  // text must be a JSON number; not checked.
  static Value numberText(std::string text);
  static Value array(std::vector<Value> items = {});
  static Value object(std::vector<Member> members = {});

  Type type() const noexcept { return type_; }
  bool isNull() const noexcept { return type_ == Type::kNull; }
  bool isBool() const noexcept { return type_ == Type::kBool; }
  bool isNumber() const noexcept { return type_ == Type::kNumber; }
  bool isString() const noexcept { return type_ == Type::kString; }
  bool isArray() const noexcept { return type_ == Type::kArray; }
  bool isObject() const noexcept { return type_ == Type::kObject; }

  bool boolean() const noexcept { return bool_; }
  // The string's value, or a number's text.
  const std::string& text() const noexcept { return text_; }
  // A number that is an integer in range; nullopt otherwise.
  std::optional<int64_t> integer() const noexcept;

  const std::vector<Value>& items() const noexcept { return items_; }
  std::vector<Value>& items() noexcept { return items_; }
  const std::vector<Member>& members() const noexcept { return members_; }
  std::vector<Member>& members() noexcept { return members_; }

  // Object member lookup (first of the name); nullptr when absent or not an object.
  const Value* find(std::string_view key) const noexcept;
  Value* find(std::string_view key) noexcept;
  // The member's string value, or empty when absent or not a string.
  std::string_view stringAt(std::string_view key) const noexcept;
  // Replaces the member's value, or appends the member. Makes a null value an empty object.
  Value& set(std::string_view key, Value value);
  // Appends to an array. Makes a null value an empty array.
  Value& push(Value value);

  friend bool operator==(const Value& a, const Value& b) noexcept;

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string text_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

struct ParseLimits {
  size_t max_depth = 128;  // nested arrays and objects
};

// Strict RFC 8259: one value with optional blanks around it; no comments, trailing commas,
// leading zeros, NaN or unescaped control characters; strings are valid UTF-8 and escapes valid
// (surrogates paired); duplicate object keys are refused. Errors say where:
// "line 3, column 7: expected ',' or '}'".
absl::StatusOr<Value> parse(std::string_view text, const ParseLimits& limits = {});

// Compact JSON. Strings are escaped as needed (quote, backslash, control characters); other
// characters are written as they are.
std::string serialize(const Value& value);
void appendQuoted(std::string& out, std::string_view s);

}  // namespace tracecar::proxy::json
