#include "proxy/json.h"

#include <absl/status/status.h>

#include <charconv>
#include <cstdio>

namespace tracecar::proxy::json {

Value Value::string(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.text_ = std::move(s);
  return v;
}

Value Value::number(int64_t n) { return numberText(std::to_string(n)); }

Value Value::numberText(std::string text) {
  Value v;
  v.type_ = Type::kNumber;
  v.text_ = std::move(text);
  return v;
}

Value Value::array(std::vector<Value> items) {
  Value v;
  v.type_ = Type::kArray;
  v.items_ = std::move(items);
  return v;
}

Value Value::object(std::vector<Member> members) {
  Value v;
  v.type_ = Type::kObject;
  v.members_ = std::move(members);
  return v;
}

std::optional<int64_t> Value::integer() const noexcept {
  if (type_ != Type::kNumber) return std::nullopt;
  int64_t n = 0;
  const char* end = text_.data() + text_.size();
  const auto [ptr, ec] = std::from_chars(text_.data(), end, n);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return n;
}

const Value* Value::find(std::string_view key) const noexcept {
  if (type_ != Type::kObject) return nullptr;
  for (const Member& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

Value* Value::find(std::string_view key) noexcept {
  return const_cast<Value*>(static_cast<const Value*>(this)->find(key));
}

std::string_view Value::stringAt(std::string_view key) const noexcept {
  const Value* v = find(key);
  return v != nullptr && v->isString() ? std::string_view(v->text_) : std::string_view();
}

Value& Value::set(std::string_view key, Value value) {
  if (type_ == Type::kNull) type_ = Type::kObject;
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  members_.emplace_back(std::string(key), std::move(value));
  return members_.back().second;
}

Value& Value::push(Value value) {
  if (type_ == Type::kNull) type_ = Type::kArray;
  items_.push_back(std::move(value));
  return items_.back();
}

bool operator==(const Value& a, const Value& b) noexcept {
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case Value::Type::kNull: return true;
    case Value::Type::kBool: return a.bool_ == b.bool_;
    case Value::Type::kNumber:
    case Value::Type::kString: return a.text_ == b.text_;
    case Value::Type::kArray: return a.items_ == b.items_;
    case Value::Type::kObject: return a.members_ == b.members_;
  }
  return false;
}

namespace {

class Parser {
 public:
  Parser(std::string_view text, const ParseLimits& limits) : text_(text), limits_(limits) {}

  absl::StatusOr<Value> parseDocument() {
    Value value;
    skipBlanks();
    if (!parseValue(value, 0)) return error();
    skipBlanks();
    if (pos_ != text_.size()) {
      fail("unexpected text after the value");
      return error();
    }
    return value;
  }

 private:
  absl::Status error() const {
    size_t line = 1;
    size_t column = 1;
    for (size_t i = 0; i < error_pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return absl::InvalidArgumentError("line " + std::to_string(line) + ", column " +
                                      std::to_string(column) + ": " + error_);
  }

  bool fail(std::string message) {
    if (error_.empty()) {
      error_ = std::move(message);
      error_pos_ = pos_;
    }
    return false;
  }

  void skipBlanks() noexcept {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool parseValue(Value& out, size_t depth) {
    if (pos_ >= text_.size()) return fail("unexpected end of input, expected a value");
    switch (text_[pos_]) {
      case '{': return parseObject(out, depth + 1);
      case '[': return parseArray(out, depth + 1);
      case '"': {
        std::string s;
        if (!parseString(s)) return false;
        out = Value::string(std::move(s));
        return true;
      }
      case 't': out = Value(true); return literal("true");
      case 'f': out = Value(false); return literal("false");
      case 'n': out = Value(); return literal("null");
      default: return parseNumber(out);
    }
  }

  bool parseObject(Value& out, size_t depth) {
    if (depth > limits_.max_depth) return fail("nested too deeply");
    ++pos_;  // '{'
    out = Value::object();
    skipBlanks();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      skipBlanks();
      if (pos_ >= text_.size() || text_[pos_] != '"') return fail("expected a member name");
      const size_t key_pos = pos_;
      std::string key;
      if (!parseString(key)) return false;
      if (out.find(key) != nullptr) {
        pos_ = key_pos;
        return fail("duplicate member name \"" + key + "\"");
      }
      skipBlanks();
      if (pos_ >= text_.size() || text_[pos_] != ':') return fail("expected ':'");
      ++pos_;
      skipBlanks();
      Value value;
      if (!parseValue(value, depth)) return false;
      out.members().emplace_back(std::move(key), std::move(value));
      skipBlanks();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  bool parseArray(Value& out, size_t depth) {
    if (depth > limits_.max_depth) return fail("nested too deeply");
    ++pos_;  // '['
    out = Value::array();
    skipBlanks();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      skipBlanks();
      Value value;
      if (!parseValue(value, depth)) return false;
      out.items().push_back(std::move(value));
      skipBlanks();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }

  static bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }

  bool parseNumber(Value& out) {
    const size_t start = pos_;
    auto digits = [this] {
      const size_t from = pos_;
      while (pos_ < text_.size() && isDigit(text_[pos_])) ++pos_;
      return pos_ - from;
    };
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    if (pos_ >= text_.size() || !isDigit(text_[pos_])) {
      return fail(pos_ == start ? "expected a value" : "expected a digit");
    }
    if (text_[pos_] == '0') {
      ++pos_;
      if (pos_ < text_.size() && isDigit(text_[pos_])) return fail("leading zero in a number");
    } else {
      digits();
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return fail("expected a digit after '.'");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) return fail("expected a digit in the exponent");
    }
    out = Value::numberText(std::string(text_.substr(start, pos_ - start)));
    return true;
  }

  bool hex4(uint32_t& out) {
    if (text_.size() - pos_ < 4) return fail("truncated \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      uint32_t d;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        --pos_;
        return fail("invalid hex digit in a \\u escape");
      }
      out = out << 4 | d;
    }
    return true;
  }

  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | cp >> 6);
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | cp >> 12);
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | cp >> 18);
      out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // One UTF-8 sequence starting at pos_ (a lead byte >= 0x80), copied to out; refuses overlong
  // forms, surrogates and code points past U+10FFFF.
  bool copyUtf8(std::string& out) {
    const auto byte = [this](size_t i) { return static_cast<unsigned char>(text_[i]); };
    const unsigned char lead = byte(pos_);
    size_t length;
    uint32_t cp;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
      cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      cp = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      cp = lead & 0x07;
    } else {
      return fail("invalid UTF-8");
    }
    if (text_.size() - pos_ < length) return fail("invalid UTF-8");
    for (size_t i = 1; i < length; ++i) {
      const unsigned char c = byte(pos_ + i);
      if ((c & 0xC0) != 0x80) return fail("invalid UTF-8");
      cp = cp << 6 | (c & 0x3F);
    }
    if ((length == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (length == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return fail("invalid UTF-8");
    }
    out.append(text_.substr(pos_, length));
    pos_ += length;
    return true;
  }

  bool parseString(std::string& out) {
    ++pos_;  // '"'
    while (true) {
      if (pos_ >= text_.size()) return fail("unterminated string");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (static_cast<unsigned char>(c) >= 0x80) {
        if (!copyUtf8(out)) return false;
        continue;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= text_.size()) return fail("unterminated string");
      const char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("unpaired low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low;
            if (text_.substr(pos_, 2) != "\\u") return fail("unpaired high surrogate");
            pos_ += 2;
            if (!hex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return fail("unpaired high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          appendUtf8(out, cp);
          break;
        }
        default: --pos_; return fail("invalid escape");
      }
    }
  }

  std::string_view text_;
  const ParseLimits& limits_;
  size_t pos_ = 0;
  std::string error_;
  size_t error_pos_ = 0;
};

void serializeTo(std::string& out, const Value& value) {
  switch (value.type()) {
    case Value::Type::kNull: out += "null"; return;
    case Value::Type::kBool: out += value.boolean() ? "true" : "false"; return;
    case Value::Type::kNumber: out += value.text(); return;
    case Value::Type::kString: appendQuoted(out, value.text()); return;
    case Value::Type::kArray: {
      out += '[';
      bool first = true;
      for (const Value& item : value.items()) {
        if (!first) out += ',';
        first = false;
        serializeTo(out, item);
      }
      out += ']';
      return;
    }
    case Value::Type::kObject: {
      out += '{';
      bool first = true;
      for (const Value::Member& m : value.members()) {
        if (!first) out += ',';
        first = false;
        appendQuoted(out, m.first);
        out += ':';
        serializeTo(out, m.second);
      }
      out += '}';
      return;
    }
  }
}

}  // namespace

absl::StatusOr<Value> parse(std::string_view text, const ParseLimits& limits) {
  return Parser(text, limits).parseDocument();
}

void appendQuoted(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string serialize(const Value& value) {
  std::string out;
  serializeTo(out, value);
  return out;
}

}  // namespace tracecar::proxy::json
