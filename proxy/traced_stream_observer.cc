#include "proxy/traced_stream_observer.h"

#include <chrono>
#include <string>

#include <uv.h>

#include "http/http1_parser.h"

namespace tracecar::proxy {
namespace {

// The fields that carry the span id tracecar injected: traceparent's parent-id, b3's and
// X-B3-SpanId's span id, uber-trace-id's span id (16 lowercase hex digits in each).
bool carriesSpanId(std::string_view name) noexcept {
  return http::HeaderMap::nameEquals(name, "traceparent") ||
         http::HeaderMap::nameEquals(name, "b3") ||
         http::HeaderMap::nameEquals(name, "x-b3-spanid") ||
         http::HeaderMap::nameEquals(name, "uber-trace-id");
}

// In a serialized HTTP/1.1 head: from replaced by to in the values of those fields.
void rewriteSpanId(std::string& head, std::string_view from, std::string_view to) {
  size_t line = head.find("\r\n");  // past the request line
  if (line == std::string::npos) return;
  line += 2;
  while (line < head.size()) {
    const size_t end = head.find("\r\n", line);
    if (end == std::string::npos || end == line) return;  // the empty line ends the head
    const size_t colon = head.find(':', line);
    if (colon < end && carriesSpanId(std::string_view(head).substr(line, colon - line))) {
      const size_t at = head.find(from, colon);
      if (at != std::string::npos && at + from.size() <= end) head.replace(at, from.size(), to);
    }
    line = end + 2;
  }
}

// The same in HTTP/2 fields.
void rewriteSpanId(http::HeaderMap& headers, std::string_view from, std::string_view to) {
  for (const std::string_view name : {"traceparent", "b3", "x-b3-spanid", "uber-trace-id"}) {
    const std::optional<std::string_view> value = headers.get(name);
    if (!value) continue;
    std::string rewritten(*value);
    const size_t at = rewritten.find(from);
    if (at == std::string::npos) continue;
    rewritten.replace(at, from.size(), to);
    headers.set(name, rewritten);
  }
}

Listener metricsListener(ListenerRole role) noexcept {
  return role == ListenerRole::kOutbound ? Listener::kOutbound : Listener::kInbound;
}

exporter::SpanKind spanKind(ListenerRole role) noexcept {
  return role == ListenerRole::kOutbound ? exporter::SpanKind::kClient
                                         : exporter::SpanKind::kServer;
}

HttpRole httpRole(exporter::SpanKind kind) noexcept {
  return kind == exporter::SpanKind::kClient ? HttpRole::kClient : HttpRole::kServer;
}

SamplingDecision samplingDecision(SamplingResult result) noexcept {
  switch (result) {
    case SamplingResult::kSampled:
      return SamplingDecision::kSampled;
    case SamplingResult::kRateLimited:
      return SamplingDecision::kRateLimited;
    case SamplingResult::kDropped:
    case SamplingResult::kCount:
      break;
  }
  return SamplingDecision::kDropped;
}

}  // namespace

uint64_t WallClockAnchor::unixAt(uint64_t monotonic_ns) noexcept {
  if (!set_ || static_cast<int64_t>(monotonic_ns - anchor_monotonic_ns_) >=
                   static_cast<int64_t>(kRenewAfterNs)) {
    anchor_monotonic_ns_ = monotonic_();
    anchor_unix_ns_ = wall_();
    set_ = true;
  }
  const int64_t offset = static_cast<int64_t>(monotonic_ns - anchor_monotonic_ns_);
  if (offset < 0 && static_cast<uint64_t>(-offset) > anchor_unix_ns_) return 0;
  return anchor_unix_ns_ + static_cast<uint64_t>(offset);
}

namespace {

uint64_t monotonicNanos() noexcept { return uv_hrtime(); }

uint64_t systemUnixNanos() noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

uint64_t unixNanosAt(uint64_t monotonic_ns) noexcept {
  thread_local WallClockAnchor anchor(monotonicNanos, systemUnixNanos);
  return anchor.unixAt(monotonic_ns);
}

std::optional<RejectReason> rejectReasonOf(LocalReplyReason reason) noexcept {
  switch (reason) {
    case LocalReplyReason::kHeadersTooLarge:
      return RejectReason::kHeaderTooLarge;
    case LocalReplyReason::kTooManyHeaders:
      return RejectReason::kTooManyHeaders;
    case LocalReplyReason::kUriTooLong:
      return RejectReason::kUriTooLong;
    case LocalReplyReason::kBadRequest:
      return RejectReason::kBadRequest;
    case LocalReplyReason::kBaggage:
      return RejectReason::kBaggage;
    case LocalReplyReason::kTracestate:
      return RejectReason::kTracestate;
    case LocalReplyReason::kHeaderTimeout:
      return RejectReason::kHeaderTimeout;
    case LocalReplyReason::kUpstreamRefused:
      return RejectReason::kUpstreamRefused;
    case LocalReplyReason::kUpstreamReset:
      return RejectReason::kUpstreamReset;
    case LocalReplyReason::kBadResponse:
      return RejectReason::kBadResponse;
    case LocalReplyReason::kResponseTooLarge:
      return RejectReason::kResponseTooLarge;
    case LocalReplyReason::kResolveFailed:
      return RejectReason::kResolveFailed;
    case LocalReplyReason::kUpstreamTls:
      return RejectReason::kUpstreamTls;
    case LocalReplyReason::kConnectTimeout:
      return RejectReason::kConnectTimeout;
    case LocalReplyReason::kResponseTimeout:
      return RejectReason::kResponseTimeout;
    case LocalReplyReason::kLoopDetected:
      return RejectReason::kLoopDetected;
    case LocalReplyReason::kNotImplemented:
      return RejectReason::kNotImplemented;
    case LocalReplyReason::kRequestBodyTimeout:
      return RejectReason::kRequestBodyTimeout;
    case LocalReplyReason::kFileDescriptors:
      return RejectReason::kFileDescriptors;
    case LocalReplyReason::kObserver:
    case LocalReplyReason::kCount:
      break;
  }
  return std::nullopt;
}

bool repliedBeforeObservers(LocalReplyReason reason) noexcept {
  switch (reason) {
    case LocalReplyReason::kHeadersTooLarge:
    case LocalReplyReason::kTooManyHeaders:
    case LocalReplyReason::kUriTooLong:
    case LocalReplyReason::kBadRequest:
    case LocalReplyReason::kHeaderTimeout:
    case LocalReplyReason::kNotImplemented:  // HTTP/2 CONNECT: answered before any observer
      return true;
    default:
      return false;
  }
}

std::optional<LocalReply> TracedStreamObserver::onRequestHead(http::Http1Head& request,
                                                              const PeerInfo& peer) {
  const exporter::SpanKind kind = spanKind(listener_);
  traced_ = tracer_.begin(kind, request, RequestTracer::Peer{peer.address, peer.port},
                          peer.tls ? "https" : "http", /*now_unix_nano=*/0);  // see onComplete
  begun_ = true;
  if (const std::optional<ContextRejection>& rejection = traced_.rejection()) {
    // Counted as a rejected request; nothing of it is forwarded, so no member counts as
    // dropped or cut to fit.
    return LocalReply{rejection->status_code, std::string(rejection->message),
                      rejection->reason == ContextRejection::Reason::kBaggage
                          ? LocalReplyReason::kBaggage
                          : LocalReplyReason::kTracestate};
  }
  metrics_.recordExtractReport(traced_.extractReport());
  if (traced_.samplingDecided()) {  // no span is started while the SDK is disabled
    metrics_.spanStarted(httpRole(kind), traced_.sampled());
    metrics_.samplingDecision(traced_.samplingRule(), samplingDecision(traced_.samplingResult()));
  }
  if (traced_.restartedUntrusted()) metrics_.untrustedContextRestarted();
  if (traced_.untrustedBaggageDropped() != 0) {
    metrics_.baggageMembersDropped(BaggageDropReason::kUntrusted,
                                   traced_.untrustedBaggageDropped());
  }
  return std::nullopt;
}

void TracedStreamObserver::onResponseHead(const http::Http1Head& response) {
  if (!begun_ || completed_) return;
  response_seen_ = true;
  traced_.onResponseHead(response);
}

void TracedStreamObserver::onUpstreamFailure(UpstreamFailure kind) {
  if (!begun_ || completed_) return;
  failed_ = true;
  traced_.onUpstreamFailure(kind);
}

template <class Head>
void TracedStreamObserver::resend(UpstreamFailure failure, const StreamStats& stats, Head& head) {
  if (!begun_ || completed_) return;
  try {
    // The first attempt's span began with the request: both times from the stream's monotonic
    // readings, turned into wall-clock time once, as onComplete does.
    const uint64_t now_ns = uv_hrtime();
    const uint64_t start_ns = stats.start_ns != 0 && stats.start_ns <= now_ns ? stats.start_ns
                                                                              : now_ns;
    const uint64_t now_unix = clock_(now_ns);
    const uint64_t elapsed = now_ns - start_ns;
    const std::optional<TracedRequest::Resend> ids =
        traced_.resend(failure, stats.upstream_address, stats.upstream_port,
                       now_unix > elapsed ? now_unix - elapsed : 0, now_unix);
    if (!ids) return;
    metrics_.spanStarted(httpRole(traced_.kind()), true);
    rewriteSpanId(head, ids->previous.toHex(), ids->next.toHex());
  } catch (const std::bad_alloc&) {
    // The next attempt goes with the context already written; its span may then be missing.
  }
}

void TracedStreamObserver::onResend(UpstreamFailure failure, const StreamStats& stats,
                                    std::string& h1_head) noexcept {
  resend(failure, stats, h1_head);
}

void TracedStreamObserver::onResend(UpstreamFailure failure, const StreamStats& stats,
                                    http::HeaderMap& h2_headers) noexcept {
  resend(failure, stats, h2_headers);
}

void TracedStreamObserver::onResponseTrailers(const http::HeaderMap& trailers) {
  if (!begun_ || completed_) return;
  traced_.onResponseTrailers(trailers);
}

void TracedStreamObserver::onComplete(const StreamStats& stats) {
  if (!begun_ || completed_) return;
  completed_ = true;
  const bool rejected = traced_.rejection().has_value();
  // A SERVER span records the status sent downstream, also when tracecar answered for a reason
  // other than a failed upstream (whose status the tracer derives from the failure). So does a
  // CLIENT span whose request tracecar refused before choosing an upstream (a destination it
  // will not reach, 400): that answer is the one the app got for its call.
  if (stats.local_reply && !rejected && !response_seen_ && !failed_ && stats.status != 0) {
    if (traced_.kind() == exporter::SpanKind::kServer) {
      traced_.onResponseHead(stats.status);
    } else if (stats.refused_for_destination) {
      traced_.onResponseHead(stats.status, 0, 0);  // no upstream spoke: no protocol version
    }
  }
  if (stats.local_reply && stats.local_reply_reason == LocalReplyReason::kRequestBodyTimeout) {
    traced_.onRequestBodyTimeout();
  }
  if (stats.upstream_tls) traced_.onUpstreamTls();
  if (!stats.upstream_address.empty()) {
    traced_.onUpstreamConnected(stats.upstream_address, stats.upstream_port);
  }
  // A tunnel ends when either side closes: that is its normal end.
  if (stats.aborted && !stats.tunnel) traced_.onAborted();
  // The span covers the stream, from its first byte: both times come from the stream's
  // monotonic readings, turned into wall-clock time once.
  const uint64_t end_ns = stats.end_ns != 0 ? stats.end_ns : uv_hrtime();
  const uint64_t start_ns = stats.start_ns != 0 && stats.start_ns <= end_ns ? stats.start_ns
                                                                            : end_ns;
  const uint64_t end_unix = clock_(end_ns);
  const uint64_t elapsed = end_ns - start_ns;
  const TracedRequest::Outcome outcome =
      traced_.end(end_unix > elapsed ? end_unix - elapsed : 0, end_unix);

  HttpRequestLabels labels;
  labels.method = outcome.method;
  labels.route = outcome.route;
  labels.status_code = outcome.status_code;
  // semconv: error.type is conditionally required on the duration metrics when the request
  // ended in error; for an error status it is that code, so it adds no series.
  labels.error_type = outcome.error_type;
  metrics_.recordRequest(httpRole(outcome.kind), labels, elapsed);

  if (stats.local_reply && !repliedBeforeObservers(stats.local_reply_reason)) {
    if (const std::optional<RejectReason> reason = rejectReasonOf(stats.local_reply_reason)) {
      metrics_.requestRejected(metricsListener(listener_), *reason);
    }
  }
}

TracedStreamObserverFactory::TracedStreamObserverFactory(
    ListenerRole listener, const propagation::CompositePropagator& propagator,
    http::RouteResolver* routes, const RequestTracingConfig& config,
    const sampling::Sampler& sampler, const sampling::TrustPolicy& trust, SpanSink& sink,
    WorkerMetrics& metrics, UnixClock clock, propagation::IdGenerator* ids)
    : listener_(listener),
      tracer_(propagator, routes, config, sampler, trust, sink, ids),
      metrics_(metrics),
      clock_(clock) {}

std::unique_ptr<StreamObserver> TracedStreamObserverFactory::create(ListenerRole /*listener*/) {
  // The tracer's routes are this factory's listener's, whatever the caller says.
  return std::make_unique<TracedStreamObserver>(tracer_, metrics_, listener_, clock_);
}

}  // namespace tracecar::proxy
