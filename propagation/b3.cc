#include "propagation/b3.h"

#include <array>
#include <cstddef>

#include "base/ascii.h"
#include "propagation/hex.h"

namespace tracecar::propagation {

namespace {

namespace headers {
constexpr std::string_view kSingle = "b3";
constexpr std::string_view kTraceId = "x-b3-traceid";
constexpr std::string_view kSpanId = "x-b3-spanid";
constexpr std::string_view kParentSpanId = "x-b3-parentspanid";
constexpr std::string_view kSampled = "x-b3-sampled";
constexpr std::string_view kFlags = "x-b3-flags";
}  // namespace headers

enum class Sampling : uint8_t { kDeny, kAccept, kDebug };

// 32 or 16 lowercase hex; a 64-bit id fills the low 8 bytes.
bool parseTraceId(std::string_view s, TraceId& out) noexcept {
  TraceId id;
  if (s.size() == 32) {
    if (!hex::decodeLower(s.data(), id.bytes.data(), 16)) return false;
  } else if (s.size() == 16) {
    if (!hex::decodeLower(s.data(), id.bytes.data() + 8, 8)) return false;
  } else {
    return false;
  }
  if (!id.isValid()) return false;
  out = id;
  return true;
}

bool parseSpanId(std::string_view s, SpanId& out) noexcept {
  SpanId id;
  if (s.size() != 16 || !hex::decodeLower(s.data(), id.bytes.data(), 8)) return false;
  if (!id.isValid()) return false;
  out = id;
  return true;
}

// The single header's SamplingState: exactly "1", "0" or "d".
bool parseSamplingState(std::string_view s, Sampling& out) noexcept {
  if (s.size() != 1) return false;
  switch (s[0]) {
    case '0': out = Sampling::kDeny; return true;
    case '1': out = Sampling::kAccept; return true;
    case 'd': out = Sampling::kDebug; return true;
    default: return false;
  }
}

// X-B3-Sampled: "1"/"0", and "true"/"false" (any case) as old Finagle/Zipkin clients send.
bool parseMultiSampled(std::string_view s, bool& sampled) noexcept {
  if (s == "1" || ascii::equalsIgnoreCase(s, "true")) {
    sampled = true;
  } else if (s == "0" || ascii::equalsIgnoreCase(s, "false")) {
    sampled = false;
  } else {
    return false;
  }
  return true;
}

B3Result invalid() noexcept {
  B3Result r;
  r.status = B3Status::kInvalid;
  return r;
}

uint8_t flagsFor(bool sampled, bool debug) noexcept {
  return (sampled || debug) ? trace_flags::kSampled : uint8_t{0};
}

B3Result extractSingle(ReaderRef carrier) {
  B3Result result;
  size_t count = 0;
  // Parsed inside the visitor: no view is kept past it (the carrier contract allows it).
  carrier.forEach(headers::kSingle, [&](std::string_view value) {
    if (++count == 1) result = parseB3Single(value);
  });
  if (count > 1) return invalid();
  return result;
}

// One multi header: how many fields carried it and whether the (first) one parsed.
template <class T>
struct Field {
  size_t count = 0;
  bool ok = false;
  T value{};
  bool present() const noexcept { return count > 0; }
};

template <class T, class Parse>
Field<T> readField(ReaderRef carrier, std::string_view name, Parse parse) {
  Field<T> field;
  carrier.forEach(name, [&](std::string_view value) {
    if (++field.count == 1) field.ok = parse(value, field.value);
  });
  return field;
}

B3Result extractMulti(ReaderRef carrier) {
  const auto trace_id = readField<TraceId>(carrier, headers::kTraceId, parseTraceId);
  const auto span_id = readField<SpanId>(carrier, headers::kSpanId, parseSpanId);
  const auto sampled = readField<bool>(carrier, headers::kSampled, parseMultiSampled);
  const auto debug = readField<bool>(carrier, headers::kFlags, [](std::string_view s, bool& d) {
    // py_zipkin sends "X-B3-Flags: 0" on every request; only "1" means debug.
    if (s != "0" && s != "1") return false;
    d = s == "1";
    return true;
  });

  if (trace_id.count > 1 || span_id.count > 1 || sampled.count > 1 || debug.count > 1) {
    return invalid();
  }
  if ((sampled.present() && !sampled.ok) || (debug.present() && !debug.ok)) return invalid();
  if (trace_id.present() != span_id.present()) return invalid();

  B3Result result;
  result.debug = debug.present() && debug.value;
  const bool accept = sampled.present() && sampled.value;
  if (trace_id.present()) {
    if (!trace_id.ok || !span_id.ok) return invalid();
    result.status = B3Status::kValid;
    result.context.trace_id = trace_id.value;
    result.context.span_id = span_id.value;
    result.context.is_remote = true;
    result.context.flags = flagsFor(accept, result.debug);
    return result;
  }
  // No ids: "X-B3-Sampled: 0" alone is the B3 way to say "don't trace this".
  if (sampled.present() || result.debug) {
    result.status = B3Status::kSamplingOnly;
    result.context.flags = flagsFor(accept, result.debug);
  }
  return result;
}

}  // namespace

std::string_view toString(B3Status status) noexcept {
  switch (status) {
    case B3Status::kValid: return "valid";
    case B3Status::kAbsent: return "absent";
    case B3Status::kInvalid: return "invalid";
    case B3Status::kSamplingOnly: return "sampling_only";
  }
  return "unknown";
}

B3Result parseB3Single(std::string_view value) noexcept {
  // At most four '-'-separated parts: trace, span, sampling state, parent.
  std::array<std::string_view, 4> parts;
  size_t n = 0;
  size_t start = 0;
  for (;;) {
    const size_t dash = value.find('-', start);
    if (n == parts.size()) return invalid();
    parts[n++] = value.substr(start, dash == std::string_view::npos ? dash : dash - start);
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }

  B3Result result;
  Sampling sampling = Sampling::kDeny;
  if (n == 1) {
    if (!parseSamplingState(parts[0], sampling)) return invalid();
    result.status = B3Status::kSamplingOnly;
    result.debug = sampling == Sampling::kDebug;
    result.context.flags = flagsFor(sampling == Sampling::kAccept, result.debug);
    return result;
  }

  TraceId trace_id;
  SpanId span_id;
  if (!parseTraceId(parts[0], trace_id) || !parseSpanId(parts[1], span_id)) return invalid();
  // An absent sampling state defers the decision; we record that as not sampled.
  if (n >= 3 && !parseSamplingState(parts[2], sampling)) return invalid();
  if (n == 4) {
    // The parent id only has to be well formed; B3 propagation never uses its value.
    if (parts[3].size() != 16 || !hex::isLowerHex(parts[3])) return invalid();
  }

  result.status = B3Status::kValid;
  result.debug = sampling == Sampling::kDebug;
  result.context.trace_id = trace_id;
  result.context.span_id = span_id;
  result.context.flags = flagsFor(sampling == Sampling::kAccept, result.debug);
  result.context.is_remote = true;
  return result;
}

B3Result extractB3(ReaderRef carrier) {
  const B3Result single = extractSingle(carrier);
  if (single.status == B3Status::kValid) return single;
  const B3Result multi = extractMulti(carrier);
  if (multi.status == B3Status::kValid) return multi;
  // A well-formed sampling decision in "b3" beats broken multi headers.
  if (single.status == B3Status::kSamplingOnly) return single;
  if (single.status == B3Status::kInvalid || multi.status == B3Status::kInvalid) return invalid();
  return multi;
}

void injectB3(WriterRef carrier, const SpanContext& context, B3InjectEncoding encoding,
              bool debug) {
  if (!context.isValid()) return;  // nothing to propagate; leave the carrier as it is
  debug = debug && context.sampled();
  const char sampled = context.sampled() ? '1' : '0';
  if (encoding != B3InjectEncoding::kMulti) {
    // {32 hex}-{16 hex}-{1|0}
    char buf[32 + 1 + 16 + 1 + 1];
    hex::encodeLower(context.trace_id.bytes.data(), 16, buf);
    buf[32] = '-';
    hex::encodeLower(context.span_id.bytes.data(), 8, buf + 33);
    buf[49] = '-';
    buf[50] = debug ? 'd' : sampled;
    carrier.set(headers::kSingle, std::string_view(buf, sizeof(buf)));
  } else {
    carrier.remove(headers::kSingle);
  }
  if (encoding != B3InjectEncoding::kSingle) {
    char trace[32];
    char span[16];
    hex::encodeLower(context.trace_id.bytes.data(), 16, trace);
    hex::encodeLower(context.span_id.bytes.data(), 8, span);
    carrier.set(headers::kTraceId, std::string_view(trace, sizeof(trace)));
    carrier.set(headers::kSpanId, std::string_view(span, sizeof(span)));
    if (debug) {
      carrier.remove(headers::kSampled);
      carrier.set(headers::kFlags, "1");
    } else {
      carrier.set(headers::kSampled, std::string_view(&sampled, 1));
      carrier.remove(headers::kFlags);  // a stale one would contradict x-b3-sampled
    }
  } else {
    carrier.remove(headers::kTraceId);
    carrier.remove(headers::kSpanId);
    carrier.remove(headers::kSampled);
    carrier.remove(headers::kFlags);
  }
  // The parent of the span we send is not ours to name.
  carrier.remove(headers::kParentSpanId);
}

}  // namespace tracecar::propagation
