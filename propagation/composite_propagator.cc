#include "propagation/composite_propagator.h"

#include <algorithm>
#include <optional>
#include <string>

#include "base/ascii.h"
#include "propagation/trace_context_propagator.h"

namespace tracecar::propagation {
namespace {

uint8_t bit(PropagatorKind kind) { return static_cast<uint8_t>(1u << static_cast<unsigned>(kind)); }

// Takes the context of a later propagator. The same trace and span already taken from W3C
// headers stays as it is: B3 and Jaeger cannot carry the random flag or a tracestate. A
// different one replaces it, and the tracestate, which belongs to the W3C context, goes.
// The same trace and parent, whichever propagator carried them.
bool sameContext(const SpanContext& a, const SpanContext& b) noexcept {
  return a.trace_id == b.trace_id && a.span_id == b.span_id;
}

// b3_debug: the context is B3's, with its debug flag.
void adopt(ExtractedContext& out, const SpanContext& context, PropagatorKind source,
           bool b3_debug = false) {
  const bool same = sameContext(out.span_context, context);
  // The same context again keeps B3's debug flag, whichever propagator found it first.
  b3_debug = b3_debug || (same && out.b3_debug);
  out.b3_debug = b3_debug;
  if (out.report.source == PropagatorKind::kTraceContext) {
    if (same) return;
    out.trace_state.clear();
  }
  out.span_context = context;
  out.report.source = source;
}

}  // namespace

absl::Status PropagationConfig::validate() const {
  if (tracestate_max_length < TraceState::kDefaultMaxLength) {
    return absl::InvalidArgumentError("tracestate max length " +
                                      std::to_string(tracestate_max_length) +
                                      " is below the W3C minimum of " +
                                      std::to_string(TraceState::kDefaultMaxLength) + " characters");
  }
  if (baggage_limits.max_members < BaggageLimits::kMinMembers) {
    return absl::InvalidArgumentError("baggage max members " +
                                      std::to_string(baggage_limits.max_members) +
                                      " is below the W3C minimum of " +
                                      std::to_string(BaggageLimits::kMinMembers));
  }
  if (baggage_limits.max_bytes < BaggageLimits::kMinBytes) {
    return absl::InvalidArgumentError("baggage max bytes " + std::to_string(baggage_limits.max_bytes) +
                                      " is below the W3C minimum of " +
                                      std::to_string(BaggageLimits::kMinBytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<PropagatorList> parsePropagatorList(std::string_view value) {
  PropagatorList out;
  if (ascii::trimOws(value).empty()) {
    out.kinds = PropagationConfig{}.propagators;
    return out;
  }
  const std::string original(value);
  bool saw_none = false;
  while (true) {
    const size_t comma = value.find(',');
    const std::string_view name = ascii::trimOws(value.substr(0, comma));
    std::optional<PropagatorKind> kind;
    if (ascii::equalsIgnoreCase(name, "tracecontext")) {
      kind = PropagatorKind::kTraceContext;
    } else if (ascii::equalsIgnoreCase(name, "baggage")) {
      kind = PropagatorKind::kBaggage;
    } else if (ascii::equalsIgnoreCase(name, "b3")) {
      kind = PropagatorKind::kB3;
    } else if (ascii::equalsIgnoreCase(name, "b3multi")) {
      kind = PropagatorKind::kB3Multi;
    } else if (ascii::equalsIgnoreCase(name, "jaeger")) {
      kind = PropagatorKind::kJaeger;
    } else if (ascii::equalsIgnoreCase(name, "none")) {
      saw_none = true;
    } else if (name.empty()) {
      return absl::InvalidArgumentError(
          "OTEL_PROPAGATORS: empty propagator name in \"" + original + "\"");
    } else {
      out.unknown.emplace_back(name);
    }
    if (kind && std::find(out.kinds.begin(), out.kinds.end(), *kind) == out.kinds.end()) {
      out.kinds.push_back(*kind);
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  // Unknown names are the caller's to judge; "none" twice is still none.
  if (saw_none && !out.kinds.empty()) {
    return absl::InvalidArgumentError(
        "OTEL_PROPAGATORS: \"none\" cannot be combined with other propagators");
  }
  out.none = saw_none;
  return out;
}

absl::StatusOr<std::vector<PropagatorKind>> parsePropagators(std::string_view value) {
  absl::StatusOr<PropagatorList> list = parsePropagatorList(value);
  if (!list.ok()) return list.status();
  if (!list->unknown.empty()) {
    return absl::InvalidArgumentError("OTEL_PROPAGATORS: unknown propagator \"" +
                                      list->unknown.front() + "\" (" +
                                      std::string(kKnownPropagators) + ")");
  }
  return std::move(list->kinds);
}

CompositePropagator::CompositePropagator(PropagationConfig config) : config_(std::move(config)) {
  for (PropagatorKind kind : config_.propagators) mask_ |= bit(kind);
}

PropagatorKind CompositePropagator::firstB3() const noexcept {
  for (PropagatorKind kind : config_.propagators) {
    if (kind == PropagatorKind::kB3 || kind == PropagatorKind::kB3Multi) return kind;
  }
  return PropagatorKind::kB3;
}

bool CompositePropagator::has(PropagatorKind kind) const noexcept {
  return (mask_ & bit(kind)) != 0;
}

void CompositePropagator::extract(ReaderRef carrier, ExtractedContext& out) const {
  out.clear();
  // W3C baggage first, whatever its place in the list, so Jaeger's uberctx- members merge
  // into it rather than being replaced by it.
  if (has(PropagatorKind::kBaggage)) {
    const auto& fields = collectFields(carrier, headers::kBaggage);
    if (!fields.empty()) out.report.baggage = out.baggage.parse(fields, config_.baggage_limits);
  }
  bool b3_done = false;
  for (PropagatorKind kind : config_.propagators) {
    switch (kind) {
      case PropagatorKind::kTraceContext: {
        SpanContext context;
        extractTraceContext(carrier, config_.tracestate_max_length, context, out.trace_state,
                            out.report);
        if (context.isValid()) {
          // B3's debug flag stays only with its own context.
          out.b3_debug = out.b3_debug && sameContext(out.span_context, context);
          out.span_context = context;
          out.report.source = PropagatorKind::kTraceContext;
        }
        break;
      }
      case PropagatorKind::kBaggage:
        break;  // done above
      case PropagatorKind::kB3:
      case PropagatorKind::kB3Multi: {
        if (b3_done) break;  // both names extract both encodings
        b3_done = true;
        const B3Result r = extractB3(carrier);
        out.report.b3 = r.status;
        if (r.status == B3Status::kValid) adopt(out, r.context, kind, r.debug);
        break;
      }
      case PropagatorKind::kJaeger: {
        const JaegerResult r = extractJaeger(carrier);
        out.report.jaeger = r.status;
        if (r.status == JaegerStatus::kValid) adopt(out, r.context, kind);
        size_t over_limit = 0;
        const size_t added = extractJaegerBaggage(
            carrier, out.baggage, config_.baggage_limits.max_members, &over_limit);
        out.report.baggage.dropped_member_limit += static_cast<uint32_t>(over_limit);
        if (added > 0) {
          const BaggageReport cut = out.baggage.enforce(config_.baggage_limits);
          out.report.baggage.dropped_member_limit += cut.dropped_member_limit;
          out.report.baggage.dropped_byte_limit += cut.dropped_byte_limit;
          out.report.baggage.kept = static_cast<uint32_t>(out.baggage.size());
        }
        break;
      }
    }
  }
}

void CompositePropagator::inject(WriterRef carrier, const SpanContext& context,
                                 const TraceState& trace_state, const Baggage& baggage,
                                 bool b3_debug) const {
  for (PropagatorKind kind : config_.propagators) {
    switch (kind) {
      case PropagatorKind::kTraceContext:
        injectTraceContext(carrier, context, trace_state);
        break;
      case PropagatorKind::kBaggage:
        if (baggage.empty()) {
          carrier.remove(headers::kBaggage);
        } else {
          thread_local std::string buffer;  // reused: no allocation per request once warm
          buffer.clear();
          baggage.serialize(buffer);
          carrier.set(headers::kBaggage, buffer);
        }
        break;
      case PropagatorKind::kB3:
      case PropagatorKind::kB3Multi: {
        const bool single = has(PropagatorKind::kB3);
        const bool multi = has(PropagatorKind::kB3Multi);
        // Both names configured: both encodings, written once (at the first of the two).
        if (single && multi && kind != firstB3()) break;
        injectB3(carrier, context,
                 single && multi ? B3InjectEncoding::kBoth
                 : single        ? B3InjectEncoding::kSingle
                                 : B3InjectEncoding::kMulti,
                 b3_debug);
        break;
      }
      case PropagatorKind::kJaeger:
        injectJaeger(carrier, context);
        injectJaegerBaggage(carrier, baggage);
        break;
    }
  }
}

}  // namespace tracecar::propagation
