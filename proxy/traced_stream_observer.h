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

// Span timestamps: wall-clock nanoseconds since the Unix epoch for a time of the monotonic clock
// (uv_hrtime() nanoseconds, as in StreamStats). Tests pass a fake.
using UnixClock = uint64_t (*)(uint64_t monotonic_ns) noexcept;

// Wall-clock times for monotonic ones, from a reading of both clocks taken together (the
// anchor) and taken again once a monotonic time a second or more past it is asked for: the data
// path reads the monotonic clock anyway, and this spares two wall-clock reads per request. A
// step of the wall clock shows in span timestamps within a second; durations are the monotonic
// clock's. One per thread (not thread-safe).
class WallClockAnchor {
 public:
  using Read = uint64_t (*)() noexcept;
  static constexpr uint64_t kRenewAfterNs = 1'000'000'000;

  WallClockAnchor(Read monotonic, Read wall) noexcept : monotonic_(monotonic), wall_(wall) {}
  uint64_t unixAt(uint64_t monotonic_ns) noexcept;

 private:
  Read monotonic_;
  Read wall_;
  uint64_t anchor_monotonic_ns_ = 0;
  uint64_t anchor_unix_ns_ = 0;
  bool set_ = false;
};

// The calling thread's WallClockAnchor over uv_hrtime() and the system clock.
uint64_t unixNanosAt(uint64_t monotonic_ns) noexcept;

// The metrics reason of a local reply; nullopt for the ones metrics have no reason for (other
// observer replies).
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
  void onUpstreamChosen(std::string_view authority) override {
    if (begun_) traced_.onUpstreamChosen(authority);
  }
  void onResponseTrailers(const http::HeaderMap& trailers) override;
  void onResend(UpstreamFailure failure, const StreamStats& stats,
                std::string& h1_head) noexcept override;
  void onResend(UpstreamFailure failure, const StreamStats& stats,
                http::HeaderMap& h2_headers) noexcept override;
  void onComplete(const StreamStats& stats) override;

 private:
  // onResend for either form of the head.
  template <class Head>
  void resend(UpstreamFailure failure, const StreamStats& stats, Head& head);

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
                              UnixClock clock = unixNanosAt,
                              propagation::IdGenerator* ids = nullptr);

  std::unique_ptr<StreamObserver> create(ListenerRole listener) override;

 private:
  const ListenerRole listener_;
  RequestTracer tracer_;
  WorkerMetrics& metrics_;
  const UnixClock clock_;
};

}  // namespace tracecar::proxy
