#include "propagation/jaeger.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "base/ascii.h"
#include "propagation/hex.h"
#include "propagation/percent_encoding.h"

namespace tracecar::propagation {

namespace {

constexpr std::string_view kUberTraceId = "uber-trace-id";
constexpr std::string_view kBaggagePrefix = "uberctx-";

constexpr uint8_t kJaegerSampled = 0x01;
constexpr uint8_t kJaegerDebug = 0x02;

// Splits "a:b:c:d" or "a%3Ab%3Ac%3Ad" into exactly four parts. One value uses one style: as
// in OpenTelemetry's Jaeger propagators, a value holding ':' is not URL-decoded, so a "%3A"
// in it is not a separator (and then fails as a non-hex digit).
bool splitFields(std::string_view value, std::array<std::string_view, 4>& parts) noexcept {
  const bool colons = value.find(':') != std::string_view::npos;
  size_t n = 0;
  size_t start = 0;
  size_t i = 0;
  while (i < value.size()) {
    size_t separator = 0;
    if (colons) {
      if (value[i] == ':') separator = 1;
    } else if (value[i] == '%' && value.size() - i >= 3 && value[i + 1] == '3' &&
               (value[i + 2] == 'A' || value[i + 2] == 'a')) {
      separator = 3;
    }
    if (separator == 0) {
      ++i;
      continue;
    }
    if (n == parts.size() - 1) return false;  // a fifth field
    parts[n++] = value.substr(start, i - start);
    i += separator;
    start = i;
  }
  if (n != parts.size() - 1) return false;
  parts[n] = value.substr(start);
  return true;
}

// 1 to 2*out_len hex digits of either case, as a big-endian number right-aligned in out.
bool parseHexNumber(std::string_view digits, uint8_t* out, size_t out_len) noexcept {
  if (digits.empty() || digits.size() > 2 * out_len) return false;
  std::fill(out, out + out_len, uint8_t{0});
  size_t nibble = 0;  // counted from the least significant end
  for (size_t i = digits.size(); i-- > 0; ++nibble) {
    const int8_t v = hex::kAnyCaseTable[static_cast<uint8_t>(digits[i])];
    if (v < 0) return false;
    uint8_t& byte = out[out_len - 1 - nibble / 2];
    byte = static_cast<uint8_t>(byte | (nibble % 2 == 0 ? v : v << 4));
  }
  return true;
}

JaegerResult invalid() noexcept {
  JaegerResult r;
  r.status = JaegerStatus::kInvalid;
  return r;
}

bool isUnreserved(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_' || c == '.' || c == '~';
}

// URL-decodes %XX (either case); a '%' without two hex digits stays literal, '+' stays '+'
// (jaeger clients percent-encode spaces as %20).
std::string urlDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && in.size() - i >= 3) {
      const int8_t hi = hex::kAnyCaseTable[static_cast<uint8_t>(in[i + 1])];
      const int8_t lo = hex::kAnyCaseTable[static_cast<uint8_t>(in[i + 2])];
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>((hi << 4) | lo));
        i += 2;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

void urlEncode(std::string_view in, std::string& out) {
  appendPercentEncoded(in, out, isUnreserved);
}

}  // namespace

std::string_view toString(JaegerStatus status) noexcept {
  switch (status) {
    case JaegerStatus::kValid: return "valid";
    case JaegerStatus::kAbsent: return "absent";
    case JaegerStatus::kInvalid: return "invalid";
  }
  return "unknown";
}

JaegerResult parseUberTraceId(std::string_view value) noexcept {
  std::array<std::string_view, 4> parts;
  if (!splitFields(value, parts)) return invalid();

  SpanContext context;
  SpanId parent;
  uint8_t flags = 0;
  if (!parseHexNumber(parts[0], context.trace_id.bytes.data(), 16) ||
      !parseHexNumber(parts[1], context.span_id.bytes.data(), 8) ||
      !parseHexNumber(parts[2], parent.bytes.data(), 8) || !parseHexNumber(parts[3], &flags, 1)) {
    return invalid();
  }
  // A zero parent is how every current client says "no parent" (the field is deprecated).
  if (!context.isValid()) return invalid();

  JaegerResult result;
  result.status = JaegerStatus::kValid;
  result.debug = (flags & kJaegerDebug) != 0;
  const bool sampled = (flags & kJaegerSampled) != 0 || result.debug;
  context.flags = sampled ? trace_flags::kSampled : uint8_t{0};
  context.is_remote = true;
  result.context = context;
  return result;
}

JaegerResult extractJaeger(ReaderRef carrier) {
  JaegerResult result;
  size_t count = 0;
  carrier.forEach(kUberTraceId, [&](std::string_view value) {
    if (++count == 1) result = parseUberTraceId(value);
  });
  if (count > 1) return invalid();
  return result;
}

size_t extractJaegerBaggage(ReaderRef carrier, Baggage& baggage, size_t max_members,
                            size_t* dropped) {
  size_t changed = 0;
  std::string key;
  // Keys refused past the limit, counted once each however many fields (of any case) carry
  // them; reused, so a warm thread does not allocate.
  thread_local std::vector<std::string> refused;
  refused.clear();
  carrier.forEachField([&](std::string_view name, std::string_view value) {
    if (name.size() <= kBaggagePrefix.size()) return;  // also skips the empty key
    for (size_t i = 0; i < kBaggagePrefix.size(); ++i) {
      if (ascii::toLower(name[i]) != kBaggagePrefix[i]) return;
    }
    // Header names are case-insensitive (and lowercase on HTTP/2), so keys are too.
    key.assign(name.substr(kBaggagePrefix.size()));
    std::transform(key.begin(), key.end(), key.begin(), ascii::toLower);
    if (!Baggage::isValidKey(key)) return;
    // Past the member limit only existing keys may change: bounds the work of a hostile
    // request with thousands of uberctx- fields.
    constexpr Baggage::KeyMatch kAnyCase = Baggage::KeyMatch::kIgnoreCase;
    if (baggage.size() >= max_members && !baggage.contains(key, kAnyCase)) {
      if (dropped != nullptr) refused.push_back(key);
      return;
    }
    // A header name loses the key's case, so it names the W3C members of any case. A member
    // that a hop sent in both formats comes back with the same value and stays as received.
    if (baggage.merge(key, urlDecode(value), kAnyCase)) ++changed;
  });
  if (dropped != nullptr && !refused.empty()) {
    std::sort(refused.begin(), refused.end());
    *dropped += static_cast<size_t>(std::unique(refused.begin(), refused.end()) - refused.begin());
  }
  return changed;
}

void injectJaeger(WriterRef carrier, const SpanContext& context) {
  if (!context.isValid()) return;  // nothing to propagate; leave the carrier as it is
  // {32 hex}:{16 hex}:0:{2 hex}
  char buf[32 + 1 + 16 + 3 + 2];
  hex::encodeLower(context.trace_id.bytes.data(), 16, buf);
  buf[32] = ':';
  hex::encodeLower(context.span_id.bytes.data(), 8, buf + 33);
  buf[49] = ':';
  buf[50] = '0';
  buf[51] = ':';
  buf[52] = '0';
  buf[53] = context.sampled() ? '1' : '0';
  carrier.set(kUberTraceId, std::string_view(buf, sizeof(buf)));
}

void injectJaegerBaggage(WriterRef carrier, const Baggage& baggage) {
  std::string name;
  std::string value;
  for (size_t i = 0; i < baggage.size(); ++i) {
    const Baggage::Member member = baggage.member(i);
    name.assign(kBaggagePrefix);
    for (char c : member.key) name.push_back(ascii::toLower(c));
    value.clear();
    urlEncode(Baggage::decodeValue(member.raw_value), value);
    carrier.set(name, value);
  }
}

}  // namespace tracecar::propagation
