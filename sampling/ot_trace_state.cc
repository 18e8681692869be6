#include "sampling/ot_trace_state.h"

#include <array>
#include <cstring>

#include "sampling/threshold.h"

namespace tracecar::sampling {

namespace {

constexpr std::string_view kThreshold = "th";
constexpr std::string_view kRandomness = "rv";

// Most sub-keys a 256-character value can hold ("a:;" * 86).
constexpr size_t kMaxSubKeys = kMaxOtValueLength / 2 + 1;

bool isLcAlpha(char c) noexcept { return c >= 'a' && c <= 'z'; }
bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }
bool isValueChar(char c) noexcept {
  return isLcAlpha(c) || isDigit(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-';
}

bool isValidSubKey(std::string_view key) noexcept {
  if (key.empty() || !isLcAlpha(key[0])) return false;
  for (char c : key.substr(1)) {
    if (!isLcAlpha(c) && !isDigit(c)) return false;
  }
  return true;
}

struct SubKey {
  std::string_view key;
  std::string_view value;
};

// Calls visit(key, value) for each sub-key; false (after visiting a prefix) when the value
// breaks the grammar.
template <typename Visit>
bool forEachSubKey(std::string_view value, Visit&& visit) noexcept {
  if (value.empty() || value.size() > kMaxOtValueLength) return false;
  std::array<std::string_view, kMaxSubKeys> seen;
  size_t count = 0;
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t end = value.find(';', pos);
    if (end == std::string_view::npos) end = value.size();
    const std::string_view member = value.substr(pos, end - pos);
    pos = end + 1;
    const size_t colon = member.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view key = member.substr(0, colon);
    const std::string_view sub_value = member.substr(colon + 1);
    if (!isValidSubKey(key)) return false;
    for (char c : sub_value) {
      if (!isValueChar(c)) return false;
    }
    for (size_t i = 0; i < count; ++i) {
      if (seen[i] == key) return false;  // keys must be unique
    }
    if (count == seen.size()) return false;
    seen[count++] = key;
    visit(SubKey{key, sub_value});
  }
  return true;
}

// Builds the new `ot` value into out: every sub-key but `th`, in order, then `th` when given.
// Returns the length, or 0 when nothing is left; kMaxOtValueLength + 1 when too long.
size_t rebuild(std::string_view value, const char* th, size_t th_length,
               char (&out)[kMaxOtValueLength + 1]) noexcept {
  size_t length = 0;
  bool overflow = false;
  const auto append = [&](std::string_view part) {
    if (overflow || length + part.size() > kMaxOtValueLength) {
      overflow = true;
      return;
    }
    std::memcpy(out + length, part.data(), part.size());
    length += part.size();
  };
  forEachSubKey(value, [&](const SubKey& sub) {
    if (sub.key == kThreshold) return;
    if (length > 0) append(";");
    append(sub.key);
    append(":");
    append(sub.value);
  });
  if (th != nullptr) {
    if (length > 0) append(";");
    append("th:");
    append(std::string_view(th, th_length));
  }
  return overflow ? kMaxOtValueLength + 1 : length;
}

}  // namespace

OtEntry parseOtValue(std::string_view value) noexcept {
  OtEntry entry;
  entry.present = true;
  OtEntry found;
  entry.well_formed = forEachSubKey(value, [&](const SubKey& sub) {
    if (sub.key == kThreshold) {
      found.has_threshold_key = true;
      found.threshold = parseThreshold(sub.value);
    } else if (sub.key == kRandomness) {
      found.randomness = parseRandomness(sub.value);
    }
  });
  if (entry.well_formed) {
    entry.has_threshold_key = found.has_threshold_key;
    entry.threshold = found.threshold;
    entry.randomness = found.randomness;
  }
  return entry;
}

OtEntry readOtEntry(const propagation::TraceState& trace_state) noexcept {
  const std::optional<std::string_view> value = trace_state.get(kOtKey);
  return value ? parseOtValue(*value) : OtEntry{};
}

bool setThreshold(propagation::TraceState& trace_state, uint64_t threshold) {
  char th[kMaxThresholdLength];
  const size_t th_length = formatThreshold(threshold, th);
  const std::string_view wanted(th, th_length);

  const std::optional<std::string_view> current = trace_state.get(kOtKey);
  std::string_view base;  // sub-keys to keep; none when there is no `ot` or it is malformed
  if (current) {
    const OtEntry entry = parseOtValue(*current);
    if (entry.well_formed) {
      base = *current;
      if (entry.has_threshold_key) {
        bool same = false;
        forEachSubKey(base, [&](const SubKey& sub) {
          if (sub.key == kThreshold && sub.value == wanted) same = true;
        });
        if (same) return false;
      }
    }
  }
  char out[kMaxOtValueLength + 1];
  const size_t length = rebuild(base, th, th_length, out);
  if (length > kMaxOtValueLength) return eraseThreshold(trace_state);
  return trace_state.set(kOtKey, std::string_view(out, length));
}

bool eraseThreshold(propagation::TraceState& trace_state) {
  const std::optional<std::string_view> current = trace_state.get(kOtKey);
  if (!current) return false;
  const OtEntry entry = parseOtValue(*current);
  if (!entry.well_formed || !entry.has_threshold_key) return false;
  char out[kMaxOtValueLength + 1];
  const size_t length = rebuild(*current, nullptr, 0, out);
  if (length == 0) return trace_state.erase(kOtKey);
  return trace_state.set(kOtKey, std::string_view(out, length));
}

}  // namespace tracecar::sampling
