#include "exporter/otlp_proto_encoder.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>
#include <variant>

namespace tracecar::exporter {

namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

constexpr size_t varintSize(uint64_t v) noexcept {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Writes front to back in one pass. A nested message's length goes before its body but is known
// only after it: the writer reserves as many bytes as the caller expects the length to take and,
// when the body's length needs another number of bytes, moves the body once. Lengths come out
// as the shortest varint, the bytes as a sizing pass would have written them.
class Writer {
 public:
  // Writes over out from its start, growing it as needed. Its size is the last batch's: with a
  // little of its spare capacity, a batch of that size again fits without growing.
  // minimum_size: the least room to start with (a batch's buffer starts large, a span's small).
  explicit Writer(std::string& out, size_t minimum_size = kMinimumSize) : out_(out) {
    out_.resize(std::max(minimum_size, std::min(out_.capacity(), out_.size() + kSlack)));
    base_ = out_.data();
    cap_ = out_.size();
  }

  // length_bytes: how many bytes the length will most likely take (1 below 128, 2 below 16384).
  template <class Body>
  [[gnu::always_inline]] void message(uint32_t field, size_t length_bytes, Body&& body) {
    tag(field, kLengthDelimited, length_bytes);
    size_t start = pos_ + length_bytes;
    pos_ = start;
    body();
    const size_t len = pos_ - start;
    const size_t need = varintSize(len);
    if (need != length_bytes) {
      if (need > length_bytes) ensure(need - length_bytes);
      std::memmove(base_ + start + need - length_bytes, base_ + start, len);
      start = start + need - length_bytes;
      pos_ = start + len;
    }
    char* p = base_ + start - need;
    putAt(p, len);
  }
  template <class Body>
  [[gnu::always_inline]] void message(uint32_t field, Body&& body) {
    message(field, 1, std::forward<Body>(body));
  }
  [[gnu::always_inline]] void string(uint32_t field, std::string_view s) {
    if (!utf8::isValid(s)) [[unlikely]] {
      sanitizedString(field, s);
      return;
    }
    wellFormedString(field, s);
  }
  // s is known to be well-formed UTF-8.
  [[gnu::always_inline]] void wellFormedString(uint32_t field, std::string_view s) {
    ensure(kMaxTagAndLength + s.size());
    tag(field, kLengthDelimited);
    put(s.size());
    raw(s.data(), s.size());
  }
  [[gnu::noinline]] void sanitizedString(uint32_t field, std::string_view s) {
    const size_t len = utf8::sanitizedSize(s);
    ensure(kMaxTagAndLength + len);
    tag(field, kLengthDelimited);
    put(len);
    utf8::forEachSanitizedRun(s, [this](std::string_view run) { raw(run.data(), run.size()); });
  }
  void bytes(uint32_t field, const uint8_t* data, size_t len) {
    ensure(kMaxTagAndLength + len);
    tag(field, kLengthDelimited);
    put(len);
    raw(data, len);
  }
  // Bytes encoded before, such as a nested message's body (a span's own encoding).
  void bytes(uint32_t field, std::string_view data) {
    bytes(field, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  void varint(uint32_t field, uint64_t v) {
    ensure(kMaxTagAndLength);
    tag(field, kVarint);
    put(v);
  }
  void fixed64(uint32_t field, uint64_t v) {
    ensure(kMaxTag + 8);
    tag(field, kFixed64);
    littleEndian(v);
  }
  void fixed32(uint32_t field, uint32_t v) {
    ensure(kMaxTag + 4);
    tag(field, kFixed32);
    littleEndian(v);
  }

  // Cuts out to what was written.
  void finish() { out_.resize(pos_); }

 private:
  static constexpr size_t kMaxTag = 5;            // field numbers < 2^29
  static constexpr size_t kMaxTagAndLength = 15;  // and a 64-bit varint
  static constexpr size_t kMinimumSize = 4096;
  static constexpr size_t kSlack = 256;  // room the last writes ask for beyond what they write

  // Room for n more bytes; out_ grows (and moves) when short.
  void ensure(size_t n) {
    if (cap_ - pos_ < n) [[unlikely]] {
      grow(n);
    }
  }
  [[gnu::noinline]] void grow(size_t n) {
    // A quarter more: resize zero-fills what it adds, and std::string doubles its capacity
    // whenever it has to reallocate anyway.
    out_.resize(std::max(cap_ + cap_ / 4, pos_ + n));
    base_ = out_.data();
    cap_ = out_.size();
  }
  // The tag, and room for what follows it (at least extra bytes).
  void tag(uint32_t field, WireType type, size_t extra) {
    ensure(kMaxTag + extra);
    put((uint64_t{field} << 3) | type);
  }
  void tag(uint32_t field, WireType type) { put((uint64_t{field} << 3) | type); }
  void put(uint64_t v) {
    char* p = base_ + pos_;
    pos_ += static_cast<size_t>(putAt(p, v) - p);
  }
  static char* putAt(char* p, uint64_t v) {
    while (v >= 0x80) {
      *p++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<char>(v);
    return p;
  }
  template <class T>
  void littleEndian(T v) {
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(base_ + pos_, &v, sizeof v);
      pos_ += sizeof v;
    } else {
      for (size_t i = 0; i < sizeof v; ++i) base_[pos_++] = static_cast<char>(v >> (8 * i));
    }
  }
  void raw(const void* data, size_t len) {
    char* const out = base_ + pos_;
    const auto* in = static_cast<const char*>(data);
    // Keys and most values are short: two overlapping loads and stores, reading only bytes of
    // the source, instead of a call to memcpy.
    if (len >= 8 && len <= 16) {
      copyOverlapping<uint64_t>(out, in, len);
    } else if (len > 16 && len <= 32) {
      copyOverlapping<Bytes16>(out, in, len);
    } else if (len >= 4 && len < 8) {
      copyOverlapping<uint32_t>(out, in, len);
    } else if (len != 0) {
      std::memcpy(out, in, len);
    }
    pos_ += len;
  }
  struct Bytes16 {
    uint64_t a, b;
  };
  // len is between sizeof(T) and twice that.
  template <class T>
  [[gnu::always_inline]] static void copyOverlapping(char* out, const char* in, size_t len) {
    T head;
    T tail;
    std::memcpy(&head, in, sizeof(T));
    std::memcpy(&tail, in + len - sizeof(T), sizeof(T));
    std::memcpy(out, &head, sizeof(T));
    std::memcpy(out + len - sizeof(T), &tail, sizeof(T));
  }

  std::string& out_;
  char* base_ = nullptr;
  size_t pos_ = 0;
  size_t cap_ = 0;
};

// The message layout.

template <class Out>
void anyValue(Out& o, const AttributeValue& value) {
  // A oneof member is written even when it holds its default: "" and false are values too.
  std::visit(
      [&o](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          o.string(1, v);
        } else if constexpr (std::is_same_v<T, bool>) {
          o.varint(2, v ? 1 : 0);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          o.varint(3, static_cast<uint64_t>(v));
        } else if constexpr (std::is_same_v<T, double>) {
          o.fixed64(4, std::bit_cast<uint64_t>(v));
        } else {
          o.message(5, [&o, &v] {
            for (const std::string& item : v) o.message(1, [&o, &item] { o.string(1, item); });
          });
        }
      },
      value);
}

template <class Out>
void keyValues(Out& o, uint32_t field, const Attributes& attributes) {
  for (const Attribute& a : attributes.items()) {
    o.message(field, [&o, &a] {
      // A static name is one of the program's own constants, well-formed (AttributeKey).
      if (a.key.isStatic()) {
        if (!a.key.empty()) o.wellFormedString(1, a.key);
      } else {
        o.string(1, a.key);
      }
      o.message(2, [&o, &a] { anyValue(o, a.value); });
    });
  }
}

template <class Out>
void event(Out& o, const SpanEvent& e) {
  if (e.time_unix_nano != 0) o.fixed64(1, e.time_unix_nano);
  if (!e.name.empty()) o.string(2, e.name);
  keyValues(o, 3, e.attributes);
  if (e.attributes.dropped() != 0) o.varint(4, e.attributes.dropped());
}

template <class Out>
void link(Out& o, const SpanLink& l) {
  o.bytes(1, l.trace_id.bytes.data(), l.trace_id.bytes.size());
  o.bytes(2, l.span_id.bytes.data(), l.span_id.bytes.size());
  if (!l.trace_state.empty()) o.string(3, l.trace_state);
  keyValues(o, 4, l.attributes);
  if (l.attributes.dropped() != 0) o.varint(5, l.attributes.dropped());
  if (l.flags != 0) o.fixed32(6, l.flags);
}

template <class Out>
void span(Out& o, const SpanRecord& s) {
  o.bytes(1, s.trace_id.bytes.data(), s.trace_id.bytes.size());
  o.bytes(2, s.span_id.bytes.data(), s.span_id.bytes.size());
  if (!s.trace_state.empty()) o.string(3, s.trace_state);
  if (s.parent_span_id.isValid()) {
    o.bytes(4, s.parent_span_id.bytes.data(), s.parent_span_id.bytes.size());
  }
  if (!s.name.empty()) o.string(5, s.name);
  if (s.kind != SpanKind::kUnspecified) o.varint(6, static_cast<uint64_t>(s.kind));
  if (s.start_unix_nano != 0) o.fixed64(7, s.start_unix_nano);
  if (s.end_unix_nano != 0) o.fixed64(8, s.end_unix_nano);
  keyValues(o, 9, s.attributes);
  if (s.attributes.dropped() != 0) o.varint(10, s.attributes.dropped());
  for (const SpanEvent& e : s.events) o.message(11, [&o, &e] { event(o, e); });
  if (s.dropped_events != 0) o.varint(12, s.dropped_events);
  for (const SpanLink& l : s.links) o.message(13, [&o, &l] { link(o, l); });
  if (s.dropped_links != 0) o.varint(14, s.dropped_links);
  if (s.status_code != StatusCode::kUnset || !s.status_message.empty()) {
    o.message(15, [&o, &s] {
      if (!s.status_message.empty()) o.string(2, s.status_message);
      if (s.status_code != StatusCode::kUnset) o.varint(3, static_cast<uint64_t>(s.status_code));
    });
  }
  if (s.flags != 0) o.fixed32(16, s.flags);
}

// batch_length_bytes: how many bytes the two messages holding every span most likely take for
// their length.
template <class Out>
void request(Out& o, const Resource& resource, const InstrumentationScope& scope,
             std::span<const SpanRecord* const> spans, size_t batch_length_bytes) {
  constexpr size_t kSpanLengthBytes = 2;  // a server span takes a few hundred bytes
  o.message(1, batch_length_bytes, [&] {  // ExportTraceServiceRequest.resource_spans
    o.message(1, [&] {                    // ResourceSpans.resource
      keyValues(o, 1, resource.attributes());
      if (resource.attributes().dropped() != 0) o.varint(2, resource.attributes().dropped());
    });
    o.message(2, batch_length_bytes, [&] {  // ResourceSpans.scope_spans
      o.message(1, [&] {                    // ScopeSpans.scope
        if (!scope.name.empty()) o.string(1, scope.name);
        if (!scope.version.empty()) o.string(2, scope.version);
      });
      for (const SpanRecord* s : spans) {
        if (!s->encoded.empty()) {
          o.bytes(2, s->encoded);
        } else {
          o.message(2, kSpanLengthBytes, [&o, s] { span(o, *s); });
        }
      }
    });
  });
}

// A bounds-checked reader of protobuf wire format.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool done() const noexcept { return pos_ == in_.size(); }
  bool varint(uint64_t& v) noexcept {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == in_.size()) return false;
      const auto b = static_cast<uint8_t>(in_[pos_++]);
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return shift < 63 || b <= 1;  // a 10th byte holds only one bit
    }
    return false;
  }
  bool lengthDelimited(std::string_view& out) noexcept {
    uint64_t len = 0;
    if (!varint(len) || len > in_.size() - pos_) return false;
    out = in_.substr(pos_, len);
    pos_ += len;
    return true;
  }
  bool skip(uint32_t wire_type) noexcept {
    uint64_t ignored = 0;
    std::string_view ignored_bytes;
    switch (wire_type) {
      case kVarint: return varint(ignored);
      case kFixed64: return advance(8);
      case kFixed32: return advance(4);
      case kLengthDelimited: return lengthDelimited(ignored_bytes);
      default: return false;  // groups (3, 4) are long gone from OTLP; 6 and 7 do not exist
    }
  }
  bool tag(uint32_t& field, uint32_t& wire_type) noexcept {
    uint64_t t = 0;
    if (!varint(t) || (t >> 3) == 0 || (t >> 3) > 0x1fffffff) return false;
    field = static_cast<uint32_t>(t >> 3);
    wire_type = static_cast<uint32_t>(t & 7);
    return true;
  }

 private:
  bool advance(size_t n) noexcept {
    if (in_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

bool parsePartialSuccess(std::string_view body, uint64_t& rejected, std::string& message) {
  Reader r(body);
  while (!r.done()) {
    uint32_t field = 0;
    uint32_t type = 0;
    if (!r.tag(field, type)) return false;
    if (field == 1 && type == kVarint) {
      uint64_t v = 0;
      if (!r.varint(v)) return false;
      rejected = static_cast<int64_t>(v) < 0 ? 0 : v;  // int64 on the wire
    } else if (field == 2 && type == kLengthDelimited) {
      std::string_view s;
      if (!r.lengthDelimited(s)) return false;
      message.assign(s);
    } else if (!r.skip(type)) {
      return false;
    }
  }
  return true;
}

}  // namespace

void OtlpProtoEncoder::encode(const Resource& resource, const InstrumentationScope& scope,
                              std::span<const SpanRecord* const> spans, std::string& out) {
  // Batches are much alike: the last one's size (still out's) is the best guess of this one's.
  const size_t batch_length_bytes = std::max<size_t>(3, varintSize(out.size()));
  Writer writer(out);
  request(writer, resource, scope, spans, batch_length_bytes);
  writer.finish();
}

void OtlpProtoEncoder::encodeSpan(const SpanRecord& s, std::string& out) {
  constexpr size_t kSpanMinimumSize = 512;  // a server span takes a few hundred bytes
  Writer writer(out, kSpanMinimumSize);
  span(writer, s);
  writer.finish();
}

bool parseExportTraceServiceResponse(std::string_view body, uint64_t& rejected_spans,
                                     std::string& error_message) {
  rejected_spans = 0;
  error_message.clear();
  Reader r(body);
  while (!r.done()) {
    uint32_t field = 0;
    uint32_t type = 0;
    if (!r.tag(field, type)) return false;
    if (field == 1 && type == kLengthDelimited) {
      std::string_view partial;
      if (!r.lengthDelimited(partial)) return false;
      if (!parsePartialSuccess(partial, rejected_spans, error_message)) return false;
    } else if (!r.skip(type)) {
      return false;
    }
  }
  return true;
}

}  // namespace tracecar::exporter
