#include "exporter/otlp_json_encoder.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <variant>

#include "propagation/hex.h"

namespace tracecar::exporter {

namespace {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  // Opens a member of the current object: the comma comes from what precedes it.
  void key(std::string_view name) {
    // One append for ,"name": : keys are short literals, and appends are the cost here.
    char buf[64];
    size_t n = 0;
    const char last = out_.back();
    if (last != '{' && last != '[') buf[n++] = ',';
    buf[n++] = '"';
    std::memcpy(buf + n, name.data(), name.size());
    n += name.size();
    buf[n++] = '"';
    buf[n++] = ':';
    out_.append(buf, n);
  }
  void beginObject(std::string_view name) {
    key(name);
    out_.push_back('{');
  }
  void beginArray(std::string_view name) {
    key(name);
    out_.push_back('[');
  }
  void beginElement() {  // an object inside an array
    separate();
    out_.push_back('{');
  }
  void end(char c) { out_.push_back(c); }

  void string(std::string_view name, std::string_view value) {
    key(name);
    quoted(value);
  }
  void stringElement(std::string_view value) {
    separate();
    quoted(value);
  }
  void boolean(std::string_view name, bool v) {
    key(name);
    out_.append(v ? "true" : "false");
  }
  void number(std::string_view name, uint64_t v) {
    key(name);
    digits(v);
  }
  // int64 and fixed64 are strings in proto3 JSON: JavaScript numbers cannot hold them.
  void int64String(std::string_view name, int64_t v) {
    key(name);
    out_.push_back('"');
    digits(v);
    out_.push_back('"');
  }
  void uint64String(std::string_view name, uint64_t v) {
    key(name);
    out_.push_back('"');
    digits(v);
    out_.push_back('"');
  }
  void dbl(std::string_view name, double v) {
    key(name);
    if (std::isnan(v)) {
      out_.append("\"NaN\"");
    } else if (std::isinf(v)) {
      out_.append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else {
      digits(v);
    }
  }
  void hexId(std::string_view name, const uint8_t* bytes, size_t len) {
    char buf[32];
    propagation::hex::encodeLower(bytes, len, buf);
    key(name);
    out_.push_back('"');
    out_.append(buf, 2 * len);
    out_.push_back('"');
  }

 private:
  void separate() {
    const char last = out_.back();
    if (last != '{' && last != '[') out_.push_back(',');
  }
  template <class T>
  void digits(T v) {
    char buf[32];
    const auto result = std::to_chars(buf, buf + sizeof(buf), v);
    out_.append(buf, result.ptr);
  }
  void quoted(std::string_view s) {
    out_.push_back('"');
    if (utf8::isValid(s)) {
      escaped(s);
    } else {
      utf8::forEachSanitizedRun(s, [this](std::string_view run) { escaped(run); });
    }
    out_.push_back('"');
  }
  // Whether any of 8 bytes is a control character, '"' or '\\' (bit tricks: a byte of x
  // is zero iff its bit 7 survives (x - 0x01..) & ~x).
  static bool wordNeedsEscape(const char* p) noexcept {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    uint64_t w = 0;
    std::memcpy(&w, p, 8);
    const uint64_t quote = w ^ (kOnes * '"');
    const uint64_t backslash = w ^ (kOnes * '\\');
    const uint64_t control = (w - kOnes * 0x20) & ~w;
    return (((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) | control) & kHigh;
  }
  void escaped(std::string_view run) {
    static constexpr char kHex[] = "0123456789abcdef";
    size_t start = 0;
    size_t i = 0;
    while (i < run.size()) {
      if (i + 8 <= run.size() && !wordNeedsEscape(run.data() + i)) {
        i += 8;
        continue;
      }
      const auto c = static_cast<unsigned char>(run[i++]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(run.data() + start, i - 1 - start);
      start = i;
      if (c == '"' || c == '\\') {
        out_.push_back('\\');
        out_.push_back(static_cast<char>(c));
      } else {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out_.append(esc, sizeof(esc));
      }
    }
    out_.append(run.data() + start, run.size() - start);
  }

  std::string& out_;
};

void anyValue(JsonWriter& w, const AttributeValue& value) {
  std::visit(
      [&w](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          w.string("stringValue", v);
        } else if constexpr (std::is_same_v<T, bool>) {
          w.boolean("boolValue", v);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          w.int64String("intValue", v);
        } else if constexpr (std::is_same_v<T, double>) {
          w.dbl("doubleValue", v);
        } else {
          w.beginObject("arrayValue");
          w.beginArray("values");
          for (const std::string& item : v) {
            w.beginElement();
            w.string("stringValue", item);
            w.end('}');
          }
          w.end(']');
          w.end('}');
        }
      },
      value);
}

void attributes(JsonWriter& w, const Attributes& attrs, std::string_view dropped_key) {
  if (!attrs.empty()) {
    w.beginArray("attributes");
    for (const Attribute& a : attrs.items()) {
      w.beginElement();
      w.string("key", a.key);
      w.beginObject("value");
      anyValue(w, a.value);
      w.end('}');
      w.end('}');
    }
    w.end(']');
  }
  if (attrs.dropped() != 0) w.number(dropped_key, attrs.dropped());
}

void span(JsonWriter& w, const SpanRecord& s) {
  w.hexId("traceId", s.trace_id.bytes.data(), s.trace_id.bytes.size());
  w.hexId("spanId", s.span_id.bytes.data(), s.span_id.bytes.size());
  if (!s.trace_state.empty()) w.string("traceState", s.trace_state);
  if (s.parent_span_id.isValid()) {
    w.hexId("parentSpanId", s.parent_span_id.bytes.data(), s.parent_span_id.bytes.size());
  }
  if (s.flags != 0) w.number("flags", s.flags);
  if (!s.name.empty()) w.string("name", s.name);
  if (s.kind != SpanKind::kUnspecified) w.number("kind", static_cast<uint64_t>(s.kind));
  if (s.start_unix_nano != 0) w.uint64String("startTimeUnixNano", s.start_unix_nano);
  if (s.end_unix_nano != 0) w.uint64String("endTimeUnixNano", s.end_unix_nano);
  attributes(w, s.attributes, "droppedAttributesCount");
  if (!s.events.empty()) {
    w.beginArray("events");
    for (const SpanEvent& e : s.events) {
      w.beginElement();
      if (e.time_unix_nano != 0) w.uint64String("timeUnixNano", e.time_unix_nano);
      if (!e.name.empty()) w.string("name", e.name);
      attributes(w, e.attributes, "droppedAttributesCount");
      w.end('}');
    }
    w.end(']');
  }
  if (s.dropped_events != 0) w.number("droppedEventsCount", s.dropped_events);
  if (!s.links.empty()) {
    w.beginArray("links");
    for (const SpanLink& l : s.links) {
      w.beginElement();
      w.hexId("traceId", l.trace_id.bytes.data(), l.trace_id.bytes.size());
      w.hexId("spanId", l.span_id.bytes.data(), l.span_id.bytes.size());
      if (!l.trace_state.empty()) w.string("traceState", l.trace_state);
      attributes(w, l.attributes, "droppedAttributesCount");
      if (l.flags != 0) w.number("flags", l.flags);
      w.end('}');
    }
    w.end(']');
  }
  if (s.dropped_links != 0) w.number("droppedLinksCount", s.dropped_links);
  if (s.status_code != StatusCode::kUnset || !s.status_message.empty()) {
    w.beginObject("status");
    if (!s.status_message.empty()) w.string("message", s.status_message);
    if (s.status_code != StatusCode::kUnset) {
      w.number("code", static_cast<uint64_t>(s.status_code));
    }
    w.end('}');
  }
}

// A small strict JSON scanner: enough to find two members of a response.
class JsonScanner {
 public:
  explicit JsonScanner(std::string_view in) : in_(in) {}

  void ws() noexcept {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool atEnd() noexcept {
    ws();
    return pos_ == in_.size();
  }
  bool peek(char c) noexcept {
    ws();
    return pos_ < in_.size() && in_[pos_] == c;
  }
  bool consume(char c) noexcept {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }

  // Calls member(key) for each member of an object; member must consume the value.
  template <class Member>
  bool object(Member&& member) {
    if (!consume('{')) return false;
    if (consume('}')) return true;
    std::string key;
    do {
      if (!string(&key) || !consume(':') || !member(key)) return false;
    } while (consume(','));
    return consume('}');
  }

  bool string(std::string* out) {
    if (!consume('"')) return false;
    if (out != nullptr) out->clear();
    while (pos_ < in_.size()) {
      const char c = in_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        if (out != nullptr) out->push_back(c);
        continue;
      }
      if (pos_ == in_.size()) return false;
      const char e = in_[pos_++];
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': break;
        default: return false;
      }
      if (plain != 0) {
        if (out != nullptr) out->push_back(plain);
        continue;
      }
      uint32_t cp = 0;
      if (!hex4(cp)) return false;
      if (cp >= 0xd800 && cp <= 0xdbff && in_.substr(pos_, 2) == "\\u") {
        const size_t save = pos_;
        pos_ += 2;
        uint32_t low = 0;
        if (!hex4(low)) return false;
        if (low >= 0xdc00 && low <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        } else {
          pos_ = save;  // not a pair: the high half alone becomes U+FFFD below
        }
      }
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
      if (out != nullptr) appendUtf8(*out, cp);
    }
    return false;
  }

  // A JSON integer, or a string holding one (proto3 JSON writes int64 either way).
  bool integer(int64_t& v) {
    ws();
    const bool quoted = consume('"');
    const char* begin = in_.data() + pos_;
    const auto [end, ec] = std::from_chars(begin, in_.data() + in_.size(), v);
    if (ec != std::errc()) return false;
    pos_ += static_cast<size_t>(end - begin);
    return !quoted || consume('"');
  }

  bool skipValue(int depth = 0) {
    if (depth > 64) return false;  // garbage must not exhaust the stack
    ws();
    if (pos_ == in_.size()) return false;
    const char c = in_[pos_];
    if (c == '"') return string(nullptr);
    if (c == '{') return object([this, depth](const std::string&) { return skipValue(depth + 1); });
    if (c == '[') {
      ++pos_;
      if (consume(']')) return true;
      do {
        if (!skipValue(depth + 1)) return false;
      } while (consume(','));
      return consume(']');
    }
    for (std::string_view literal : {"true", "false", "null"}) {
      if (in_.substr(pos_, literal.size()) == literal) {
        pos_ += literal.size();
        return true;
      }
    }
    double ignored = 0;
    const auto [end, ec] = std::from_chars(in_.data() + pos_, in_.data() + in_.size(), ignored);
    if (ec != std::errc()) return false;
    pos_ = static_cast<size_t>(end - in_.data());
    return true;
  }

 private:
  bool hex4(uint32_t& cp) noexcept {
    if (in_.size() - pos_ < 4) return false;
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = in_[pos_++];
      int d = -1;
      if (h >= '0' && h <= '9') d = h - '0';
      if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
      if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
      if (d < 0) return false;
      cp = (cp << 4) | static_cast<uint32_t>(d);
    }
    return true;
  }
  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

void OtlpJsonEncoder::encode(const Resource& resource, const InstrumentationScope& scope,
                             std::span<const SpanRecord* const> spans, std::string& out) {
  out.clear();
  out.push_back('{');
  JsonWriter w(out);
  w.beginArray("resourceSpans");
  w.beginElement();
  w.beginObject("resource");
  attributes(w, resource.attributes(), "droppedAttributesCount");
  w.end('}');
  w.beginArray("scopeSpans");
  w.beginElement();
  w.beginObject("scope");
  if (!scope.name.empty()) w.string("name", scope.name);
  if (!scope.version.empty()) w.string("version", scope.version);
  w.end('}');
  w.beginArray("spans");
  for (const SpanRecord* s : spans) {
    w.beginElement();
    span(w, *s);
    w.end('}');
  }
  w.end(']');  // spans
  w.end('}');
  w.end(']');  // scopeSpans
  w.end('}');
  w.end(']');  // resourceSpans
  w.end('}');
}

bool parseJsonPartialSuccess(std::string_view body, uint64_t& rejected_spans,
                             std::string& error_message) {
  rejected_spans = 0;
  error_message.clear();
  JsonScanner json(body);
  if (json.atEnd()) return true;
  const bool ok = json.object([&](const std::string& key) {
    if (key != "partialSuccess" && key != "partial_success") return json.skipValue();
    if (json.peek('n')) return json.skipValue();  // null
    return json.object([&](const std::string& member) {
      if (member == "rejectedSpans" || member == "rejected_spans") {
        int64_t n = 0;
        if (!json.integer(n)) return false;
        rejected_spans = n < 0 ? 0 : static_cast<uint64_t>(n);
        return true;
      }
      if (member == "errorMessage" || member == "error_message") {
        return json.string(&error_message);
      }
      return json.skipValue();
    });
  });
  return ok && json.atEnd();
}

}  // namespace tracecar::exporter
