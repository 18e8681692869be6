#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "exporter/span.h"
#include "http/header_map.h"
#include "http/route_resolver.h"
#include "propagation/composite_propagator.h"
#include "propagation/context.h"
#include "propagation/ids.h"
#include "propagation/span_context.h"
#include "proxy/http_semconv.h"

namespace tracecar::exporter {
class BatchProcessor;
}
namespace tracecar::http {
struct Http1Head;
}
namespace tracecar::sampling {
class Sampler;
class TrustPolicy;
}  // namespace tracecar::sampling

namespace tracecar::proxy {

// Where finished, sampled spans go. The worker's one is a BatchProcessorSink; tests collect.
class SpanSink {
 public:
  virtual ~SpanSink() = default;
  // An empty record for a span the calling thread starts.
  virtual std::unique_ptr<exporter::SpanRecord> newRecord() {
    return std::make_unique<exporter::SpanRecord>();
  }
  virtual void onSpanEnd(std::unique_ptr<exporter::SpanRecord>&& span) = 0;
};

// Hands spans to the exporter thread's queue (never blocks; a full queue drops and counts).
class BatchProcessorSink final : public SpanSink {
 public:
  explicit BatchProcessorSink(exporter::BatchProcessor& processor) noexcept
      : processor_(processor) {}
  // Recycled through the processor once exported (BatchProcessor::newRecord).
  std::unique_ptr<exporter::SpanRecord> newRecord() override;
  void onSpanEnd(std::unique_ptr<exporter::SpanRecord>&& span) override;

 private:
  exporter::BatchProcessor& processor_;
};

// What to do with a baggage or tracestate header over its limits (see PropagationConfig).
enum class ContextHeaderPolicy : uint8_t {
  kTruncate,  // drop whole members (counted) and forward the rest
  kReject,    // answer 431 and never forward the request
};
std::string_view toString(ContextHeaderPolicy policy) noexcept;  // "truncate" | "reject"
absl::StatusOr<ContextHeaderPolicy> parseContextHeaderPolicy(std::string_view value);

// The tracing settings every worker shares; immutable once the workers run.
struct RequestTracingConfig {
  ContextHeaderPolicy baggage_policy = ContextHeaderPolicy::kTruncate;
  ContextHeaderPolicy tracestate_policy = ContextHeaderPolicy::kTruncate;
  semconv::QueryRedaction query_redaction;
  semconv::KnownMethods known_methods;
  exporter::AttributeLimits attribute_limits;
  // SERVER spans take url.scheme, server.address/port and client.address from Forwarded and
  // X-Forwarded-* when present, as the semantic conventions ask. Off: only the connection, the
  // request target and Host are believed.
  bool use_forwarded_headers = true;
  // Drop the baggage of requests from sources trust_incoming_context does not trust (SERVER
  // spans only); off: it is forwarded as received, within the limits.
  bool drop_untrusted_baggage = false;
  // CLIENT spans also record url.scheme, url.path, url.query (redacted as for SERVER spans) and
  // user_agent.original, which the semantic conventions leave opt-in for clients (url.full
  // carries the first three).
  bool client_url_attributes = false;
  // OTEL_SDK_DISABLED: no span is started, sampled or exported. The incoming context goes on
  // as it came (the caller's span stays the next hop's parent; none is injected when none
  // came), as a no-op SDK with the configured propagators would carry it; the baggage and
  // tracestate limits, the routes and the request metrics still apply.
  bool sdk_disabled = false;
};

// How a request's sampling decision is counted (tracecar_sampling_decisions_total).
enum class SamplingResult : uint8_t { kSampled, kDropped, kRateLimited, kCount };
std::string_view toString(SamplingResult result) noexcept;  // "sampled" | "dropped" | ...

// Why begin() refused a request: a context header over its limits under the reject policy.
struct ContextRejection {
  enum class Reason : uint8_t { kBaggage, kTracestate };
  Reason reason = Reason::kBaggage;
  int status_code = 431;
  std::string_view message;  // one line, owned by the RequestTracer
};
std::string_view toString(ContextRejection::Reason reason) noexcept;  // "baggage" | "tracestate"

class RequestTracer;

// The tracing state of one request, from its head to its end. Made by RequestTracer::begin;
// lives in the stream and is used on the worker that made it. Call end() exactly once (also
// after a rejection), then drop it; a moved-from object must not be used.
class TracedRequest {
 public:
  // What the metrics of a finished request need. Views are to static storage, to the
  // configuration or to the route resolver: valid as long as the RequestTracer.
  struct Outcome {
    exporter::SpanKind kind = exporter::SpanKind::kServer;
    std::string_view method;      // http.request.method: a known method or "_OTHER"
    std::string_view route;       // "" when none (CLIENT spans, CONNECT, "*", rejections)
    int status_code = 0;          // sent (SERVER) or received (CLIENT); 0 when none
    std::string_view error_type;  // "" when the request did not fail
    bool incomplete = false;      // error_type is kResponseIncomplete
    uint64_t duration_ns = 0;
    bool sampled = false;
    bool rejected = false;        // refused by begin(): never forwarded, no span
  };

  TracedRequest() = default;
  TracedRequest(TracedRequest&&) noexcept = default;
  TracedRequest& operator=(TracedRequest&&) noexcept = default;

  // Set when the request must be answered with rejection()->status_code and not forwarded.
  const std::optional<ContextRejection>& rejection() const noexcept { return rejection_; }
  exporter::SpanKind kind() const noexcept { return kind_; }
  // The span this request started (invalid after a rejection): the next hop's parent. While
  // the SDK is disabled, the incoming context (invalid when none came).
  const propagation::SpanContext& spanContext() const noexcept { return context_; }
  // The incoming parent's span id; invalid (all zero) for a new trace.
  const propagation::SpanId& parentSpanId() const noexcept { return parent_span_id_; }
  bool sampled() const noexcept { return sampling_decided_ && context_.sampled(); }
  // The sampling decision: what decided (an index into Sampler::ruleLabel()) and the result.
  uint16_t samplingRule() const noexcept { return sampling_rule_; }
  SamplingResult samplingResult() const noexcept { return sampling_result_; }
  // False when no sampling decision was made (the SDK is disabled, or begin() refused the
  // request): nothing to count.
  bool samplingDecided() const noexcept { return sampling_decided_; }
  // The incoming context came from an untrusted source and the trace was restarted (it is the
  // new span's link).
  bool restartedUntrusted() const noexcept { return restarted_untrusted_; }
  // Baggage members dropped because their source is not trusted (drop_untrusted_baggage).
  size_t untrustedBaggageDropped() const noexcept { return untrusted_baggage_dropped_; }
  // What extraction saw (baggage and tracestate members dropped, statuses) for metrics.
  const propagation::ExtractReport& extractReport() const noexcept { return report_; }
  std::string_view method() const noexcept { return method_.name; }
  std::string_view route() const noexcept { return route_; }
  // Where route() came from; meaningful only when route() is not empty.
  http::RouteSource routeSource() const noexcept { return route_source_; }

  // The final response head (or a 101 / a 2xx to CONNECT; not 1xx interim responses). For a
  // SERVER span, a response tracecar makes itself counts too. The last call wins.
  void onResponseHead(int status_code, uint8_t version_major = 1, uint8_t version_minor = 1);
  void onResponseHead(const http::Http1Head& response);
  // The response's trailers: a gRPC request's grpc-status (a trailers-only response carries it
  // in the head instead, which onResponseHead reads).
  void onResponseTrailers(const http::HeaderMap& trailers);
  // A gRPC request (content-type application/grpc, path /package.Service/Method)?
  bool grpc() const noexcept { return grpc_ != nullptr; }
  // CLIENT spans: the upstream connection's peer (network.peer.address/port).
  void onUpstreamConnected(std::string_view address, uint16_t port);
  // CLIENT spans: tracecar spoke TLS to the upstream (the app spoke plain HTTP to it), so the
  // request that went out was https: url.scheme and url.full say so.
  void onUpstreamTls();
  // CLIENT spans of requests that named no host: server.address, server.port and url.full
  // from the upstream chosen for them ("host:port").
  void onUpstreamChosen(std::string_view authority);
  // The exchange with the upstream failed: the span ends with status Error and error.type
  // naming the failure (the first reported wins). A SERVER span that had no response head yet
  // records semconv::localResponseStatus(failure) as its status code: answer with that.
  void onUpstreamFailure(semconv::UpstreamFailure failure);
  // The exchange ended before the whole response was delivered. Without an upstream failure
  // the span ends with status Error and error.type semconv::kResponseIncomplete once a status
  // code was recorded (with none, error.type is _OTHER as before).
  void onAborted() noexcept { aborted_ = true; }
  // CLIENT spans: the request failed on the attempt just made (failure, before any answer) and
  // goes again on a fresh connection. The semantic conventions make a span per attempt: the
  // span so far ends now as that attempt's (from start_unix_nano, the request's start, or the
  // previous resend), status Error, error.type naming failure, network.peer.* the peer it went
  // to; a new span (a new id, the same parent and attributes, http.request.resend_count) goes on
  // with the request from now_unix_nano, and becomes the context the next hop sees. Returns the
  // two span ids, for the caller to rewrite the context fields already written for the first
  // attempt; nullopt when no span is recorded (not sampled, a SERVER span, the SDK disabled):
  // nothing changes then.
  struct Resend {
    propagation::SpanId previous;
    propagation::SpanId next;
  };
  std::optional<Resend> resend(semconv::UpstreamFailure failure, std::string_view peer_address,
                               uint16_t peer_port, uint64_t start_unix_nano,
                               uint64_t now_unix_nano);
  // tracecar cut the request because its client stopped sending the body (a 408 of its own).
  // A CLIENT span, which records no status code the upstream did not send, then ends with
  // status Error and error.type semconv::kRequestBodyTimeout.
  void onRequestBodyTimeout() noexcept { request_body_timeout_ = true; }

  // Finishes the span, hands it to the sink when sampled, and says what metrics need.
  Outcome end(uint64_t now_unix_nano);
  // The same, with the span's start time set here rather than by begin(): for callers that
  // learn when the request started only once it is over.
  Outcome end(uint64_t start_unix_nano, uint64_t end_unix_nano);

 private:
  friend class RequestTracer;

  RequestTracer* tracer_ = nullptr;
  std::unique_ptr<exporter::SpanRecord> record_;  // only when sampled
  propagation::SpanContext context_;
  propagation::SpanId parent_span_id_;
  propagation::ExtractReport report_;
  std::optional<ContextRejection> rejection_;
  std::optional<semconv::UpstreamFailure> failure_;
  // gRPC requests only: the grpc-status received and how the span is named. (route_, like
  // any route, is owned by the listener's resolver.)
  struct Grpc {
    std::optional<int> status;
    // The span is named "{rpc.service}/{rpc.method}": a CLIENT span (the app's own call), or a
    // SERVER span whose method path was admitted under the route cap. Otherwise any client could
    // mint span names past the cap by sending content-type application/grpc.
    bool rpc_name = false;
  };
  std::unique_ptr<Grpc> grpc_;
  semconv::HttpMethod method_;
  std::string_view route_;
  uint64_t start_unix_nano_ = 0;
  int status_code_ = 0;
  uint32_t resend_count_ = 0;  // http.request.resend_count of the span now recorded
  exporter::SpanKind kind_ = exporter::SpanKind::kServer;
  http::RouteSource route_source_ = http::RouteSource::kOverflow;
  uint16_t sampling_rule_ = 0;
  SamplingResult sampling_result_ = SamplingResult::kDropped;
  bool restarted_untrusted_ = false;
  bool sampling_decided_ = false;
  uint32_t untrusted_baggage_dropped_ = 0;
  bool ended_ = false;
  bool aborted_ = false;
  bool request_body_timeout_ = false;
  // A CLIENT span whose request named no host: url.full waits for onUpstreamChosen, with this
  // scheme and this path and query (redacted); without an upstream chosen it is left out, a
  // path alone not being a URL.
  std::string_view hostless_scheme_;
  std::string hostless_url_;
};

// The tracing half of proxied requests, one per worker (not thread-safe; no I/O). begin() runs
// when a request head arrives: it extracts the incoming context, applies the baggage and
// tracestate policies, resolves the route, applies the trust policy, starts the span, decides
// sampling, and rewrites the request's headers for the upstream (the new context injected,
// tracestate with the sampler's `ot` edit, baggage within its limits). Unsampled requests
// allocate nothing here once the worker's buffers have grown; sampled ones the SpanRecord and
// its strings.
//
// Trust (SERVER spans only: the outbound listener's downstream is the pod's own app, always
// believed): a valid incoming context from a peer the TrustPolicy does not trust is not
// continued. The span starts a new trace with no parent, the sampler sees no parent and an empty
// tracestate (so neither the sampled flag nor an `rv` from outside can steer it), the caller's
// tracestate is not forwarded, and the incoming context becomes the span's one link.
class RequestTracer {
 public:
  // The request head begin() reads; headers are rewritten in place for the upstream.
  struct Head {
    std::string_view method;
    std::string_view target;
    uint8_t version_major = 1;
    uint8_t version_minor = 1;
    http::HeaderMap& headers;
  };
  // The downstream peer of the connection (client.address and network.peer.* of SERVER spans).
  struct Peer {
    std::string_view address;  // IP address, IPv6 without brackets; "" when unknown
    uint16_t port = 0;         // 0 when unknown
  };

  // A monotonic clock in nanoseconds, read only when the sampler has a rate limit.
  using MonotonicClock = uint64_t (*)() noexcept;
  static uint64_t steadyNanos() noexcept;

  // Everything referenced must outlive the tracer; sampler and trust are shared read-only by
  // every worker. routes may be null (no route: CLIENT-only listeners); ids null means the
  // calling thread's generator.
  RequestTracer(const propagation::CompositePropagator& propagator, http::RouteResolver* routes,
                const RequestTracingConfig& config, const sampling::Sampler& sampler,
                const sampling::TrustPolicy& trust, SpanSink& sink,
                propagation::IdGenerator* ids = nullptr, MonotonicClock clock = steadyNanos);
  RequestTracer(const RequestTracer&) = delete;
  RequestTracer& operator=(const RequestTracer&) = delete;

  // kind is SERVER (inbound listener) or CLIENT (outbound); scheme is that of the downstream
  // connection for SERVER spans ("http"/"https") and of the upstream for CLIENT spans.
  TracedRequest begin(exporter::SpanKind kind, const Head& request, const Peer& peer,
                      std::string_view scheme, uint64_t now_unix_nano);
  TracedRequest begin(exporter::SpanKind kind, http::Http1Head& request, const Peer& peer,
                      std::string_view scheme, uint64_t now_unix_nano);

  const RequestTracingConfig& config() const noexcept { return config_; }

 private:
  friend class TracedRequest;

  std::optional<ContextRejection> checkPolicies(const propagation::ExtractReport& report) const;
  // Rewrites the request's context headers for the upstream: context, trace_state and the
  // extracted baggage, through the configured propagators.
  void injectContext(http::HeaderMap& headers, const propagation::SpanContext& context,
                     const propagation::TraceState& trace_state, bool b3_debug);
  // Also notes in traced what the span still waits for (hostless_scheme_).
  std::unique_ptr<exporter::SpanRecord> startRecord(TracedRequest& traced,
                                                    const Head& request,
                                                    const semconv::RequestTarget& target,
                                                    const Peer& peer, std::string_view scheme,
                                                    const propagation::SpanContext& parent,
                                                    const propagation::TraceState& trace_state)
      const;

  const propagation::CompositePropagator& propagator_;
  http::RouteResolver* routes_;
  const RequestTracingConfig& config_;
  SpanSink& sink_;
  propagation::IdGenerator* ids_;
  const sampling::Sampler& sampler_;
  const sampling::TrustPolicy& trust_;
  MonotonicClock clock_;
  std::string baggage_reject_message_;
  std::string tracestate_reject_message_;
  // Reused by every request of this worker.
  propagation::ExtractedContext extracted_;
  propagation::TraceState restart_trace_state_;  // a restarted trace's own tracestate
  std::string route_scratch_;
};

}  // namespace tracecar::proxy
