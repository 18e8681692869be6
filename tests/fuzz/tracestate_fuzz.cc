// Parses the input as tracestate, whole and split into header fields at '\n', and checks what
// must always hold: the field combination rule, round trips, mutation and truncation.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "propagation/tracestate.h"

namespace {

using tracecar::propagation::TraceState;
using tracecar::propagation::TraceStateStatus;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

void checkWellFormed(const TraceState& ts, TraceStateStatus status) {
  if (status != TraceStateStatus::kValid) {
    check(ts.empty() && ts.serializedLength() == 0);
    return;
  }
  check(!ts.empty() && ts.size() <= TraceState::kMaxMembers);
  for (size_t i = 0; i < ts.size(); ++i) {
    const TraceState::Member m = ts.member(i);
    check(TraceState::isValidKey(m.key) && TraceState::isValidValue(m.value));
    check(ts.get(m.key) == m.value);  // also proves the key is unique: get finds the first
    for (size_t j = 0; j < i; ++j) check(ts.member(j).key != m.key);
  }
  const std::string text = ts.toString();
  check(text.size() == ts.serializedLength());
  TraceState again;
  check(again.parse(text) == TraceStateStatus::kValid);
  check(again.toString() == text);
}

size_t entryLength(const TraceState::Member& m) { return m.key.size() + 1 + m.value.size(); }

void checkTruncate(const TraceState& original, size_t max_length) {
  TraceState cut = original;
  const size_t removed = cut.truncate(max_length);
  check(cut.serializedLength() <= max_length);
  check(removed == original.size() - cut.size());
  if (original.serializedLength() <= max_length) check(removed == 0);
  // Survivors keep their order; once a short entry went, no long entry may remain.
  bool short_removed = false;
  size_t next = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    const TraceState::Member m = original.member(i);
    if (next < cut.size() && cut.member(next).key == m.key) {
      check(cut.member(next).value == m.value);
      ++next;
    } else if (entryLength(m) <= TraceState::kLongEntryThreshold) {
      short_removed = true;
    }
  }
  check(next == cut.size());
  if (short_removed) {
    for (size_t i = 0; i < cut.size(); ++i) {
      check(entryLength(cut.member(i)) <= TraceState::kLongEntryThreshold);
    }
  }
}

void checkSet(const TraceState& original) {
  TraceState ts = original;
  const bool had = ts.get("fuzz").has_value();
  check(ts.set("fuzz", "v"));
  check(ts.member(0).key == "fuzz" && ts.member(0).value == "v");
  check(ts.size() == (had || original.size() == TraceState::kMaxMembers ? original.size()
                                                                         : original.size() + 1));
  check(ts.erase("fuzz") && !ts.get("fuzz").has_value());
  if (original.size() > 0) {
    const TraceState::Member last = original.member(original.size() - 1);
    TraceState moved = original;
    check(moved.set(last.key, last.value) && moved.member(0).key == last.key);
    check(moved.size() == original.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  TraceState whole;
  const TraceStateStatus whole_status = whole.parse(input);
  checkWellFormed(whole, whole_status);

  // Several header fields must behave exactly as if joined with ','.
  std::vector<std::string_view> fields;
  std::string joined(input);
  size_t start = 0;
  for (size_t i = 0; i <= size; ++i) {
    if (i == size || input[i] == '\n') {
      fields.push_back(input.substr(start, i - start));
      if (i < size) joined[i] = ',';
      start = i + 1;
    }
  }
  TraceState split;
  const TraceStateStatus split_status = split.parse(fields);
  checkWellFormed(split, split_status);
  TraceState combined;
  check(combined.parse(joined) == split_status);
  check(combined.toString() == split.toString());

  // A length to cut to, taken from the input: 0 .. 1023, around the 512 that matters.
  const size_t max_length =
      size == 0 ? 0 : ((size_t{data[0]} << 2) | (data[size - 1] & 3u)) % 1024;
  checkTruncate(split, max_length);
  checkTruncate(split, TraceState::kDefaultMaxLength);
  checkSet(split);
  return 0;
}
