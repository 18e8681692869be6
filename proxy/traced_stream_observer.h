#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "base/kept_blocks.h"
#include "proxy/metrics.h"
#include "proxy/request_tracer.h"
#include "proxy/stream_observer.h"

namespace tracecar::http {
class RouteResolver;
}
namespace tracecar::propagation {
class CompositePropagator;
class IdGenerator;
}  // namespace tracecar::propagation

namespace tracecar::sampling {
class Sampler;
class TrustPolicy;
}  // namespace tracecar::sampling

namespace tracecar::proxy {

// Wall-clock nanoseconds since the Unix epoch: span timestamps. Tests pass a fake.
using UnixClock = uint64_t (*)() noexcept;
uint64_t systemUnixNanos() noexcept;

// The metrics reason of a local reply; nullopt for the ones metrics have no reason for (508 loop
// detected, other observer replies).
std::optional<RejectReason> rejectReasonOf(LocalReplyReason reason) noexcept;

// True for the local replies the data path gives before any observer exists (a head too large
// or malformed, a head too slow): run's metrics count those from DataPathCounters, and
// TracedStreamObserver counts every other one. Each rejection is counted exactly once.
bool repliedBeforeObservers(LocalReplyReason reason) noexcept;

// The StreamObserver of tracecar itself: one request's TracedRequest (a SERVER span on the
// inbound listener, a CLIENT span on the outbound one) and its metrics in the worker's shard.
//  - onRequestHead: RequestTracer::begin; a baggage or tracestate rejection becomes a 431
//    LocalReply; the extraction figures are recorded, and when not rejected the span start,
//    the sampling decision (by rule) and an untrusted context's restart.
//  - onResponseHead, onResponseTrailers, onUpstreamFailure: forwarded to the TracedRequest.
//  - onComplete: ends the span (queued when sampled) and records the request's duration with
//    its method, route, status and error type, sampled or not; and the local reply, if any.
// One is made and freed for every request: its memory stays with the thread for the next
// (base::KeptInThread).
class TracedStreamObserver final : public StreamObserver,
                                   public base::KeptInThread<TracedStreamObserver> {
 public:
  TracedStreamObserver(RequestTracer& tracer, WorkerMetrics& metrics, ListenerRole listener,
                       UnixClock clock) noexcept
      : tracer_(tracer), metrics_(metrics), listener_(listener), clock_(clock) {}

  std::optional<LocalReply> onRequestHead(http::Http1Head& request, const PeerInfo& peer) override;
  void onResponseHead(const http::Http1Head& response) override;
  void onUpstreamFailure(UpstreamFailure kind) override;
  void onResponseTrailers(const http::HeaderMap& trailers) override;
  void onComplete(const StreamStats& stats) override;

 private:
  RequestTracer& tracer_;
  WorkerMetrics& metrics_;
  const ListenerRole listener_;
  const UnixClock clock_;
  TracedRequest traced_;
  bool begun_ = false;
  bool response_seen_ = false;
  bool failed_ = false;
  bool completed_ = false;
};

// One per worker and listener (its RequestTracer is that worker's). Everything referenced must
// outlive the factory; propagator, routes, config, sampler, trust and sink are shared by every
// worker (routes, sink and the sampler's rate limit are thread-safe), metrics is the worker's
// own shard.
class TracedStreamObserverFactory final : public StreamObserverFactory {
 public:
  // routes: the listener's route resolver; null for none (the outbound listener's CLIENT spans
  // have no route). ids: null for the worker thread's generator.
  TracedStreamObserverFactory(ListenerRole listener,
                              const propagation::CompositePropagator& propagator,
                              http::RouteResolver* routes, const RequestTracingConfig& config,
                              const sampling::Sampler& sampler,
                              const sampling::TrustPolicy& trust, SpanSink& sink,
                              WorkerMetrics& metrics,
                              UnixClock clock = systemUnixNanos,
                              propagation::IdGenerator* ids = nullptr);

  std::unique_ptr<StreamObserver> create(ListenerRole listener) override;

 private:
  const ListenerRole listener_;
  RequestTracer tracer_;
  WorkerMetrics& metrics_;
  const UnixClock clock_;
};

}  // namespace tracecar::proxy
