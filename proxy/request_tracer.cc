#include "proxy/request_tracer.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "exporter/batch_processor.h"
#include "http/http1_parser.h"
#include "proxy/header_map_carrier.h"
#include "sampling/ot_trace_state.h"
#include "sampling/sampler.h"
#include "sampling/trust_policy.h"

namespace tracecar::proxy {
namespace {

using exporter::SpanKind;

constexpr std::string_view kJaegerBaggagePrefix = "uberctx-";
// Room for the attributes an HTTP span usually ends with, so the list grows once.
constexpr size_t kExpectedAttributes = 16;

// The first value of each header the span attributes read, found in one pass.
struct InterestingHeaders {
  std::string_view host;
  std::string_view user_agent;
  std::string_view forwarded;
  std::string_view x_forwarded_for;
  std::string_view x_forwarded_host;
  std::string_view x_forwarded_proto;
  bool has_host = false;
  bool has_user_agent = false;
};

InterestingHeaders scanHeaders(const http::HeaderMap& headers) {
  InterestingHeaders out;
  const auto take = [](std::string_view value, std::string_view& slot) {
    if (slot.empty()) slot = value;
  };
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string_view name = headers.name(i);
    const std::string_view value = headers.value(i);
    switch (name.size()) {
      case 4:
        if (!out.has_host && http::HeaderMap::nameEquals(name, "host")) {
          out.host = value;
          out.has_host = true;
        }
        break;
      case 9:
        if (http::HeaderMap::nameEquals(name, "forwarded")) take(value, out.forwarded);
        break;
      case 10:
        if (!out.has_user_agent && http::HeaderMap::nameEquals(name, "user-agent")) {
          out.user_agent = value;
          out.has_user_agent = true;
        }
        break;
      case 15:
        if (http::HeaderMap::nameEquals(name, "x-forwarded-for")) take(value, out.x_forwarded_for);
        break;
      case 16:
        if (http::HeaderMap::nameEquals(name, "x-forwarded-host")) {
          take(value, out.x_forwarded_host);
        }
        break;
      case 17:
        if (http::HeaderMap::nameEquals(name, "x-forwarded-proto")) {
          take(value, out.x_forwarded_proto);
        }
        break;
      default:
        break;
    }
  }
  return out;
}

// Only the two schemes HTTP has: a forwarded proto is client-controlled text.
bool isHttpScheme(std::string_view scheme) {
  return semconv::defaultPort(scheme).has_value();
}

// A gRPC request: content-type application/grpc[+...] and an origin-form path naming a method.
bool isGrpc(const RequestTracer::Head& request, const semconv::RequestTarget& target) {
  if (target.form != semconv::TargetForm::kOrigin || target.has_query) return false;
  const std::optional<std::string_view> content_type = request.headers.get("content-type");
  return content_type && semconv::isGrpcContentType(*content_type) &&
         semconv::parseGrpcPath(target.path).has_value();
}

}  // namespace

std::unique_ptr<exporter::SpanRecord> BatchProcessorSink::newRecord() {
  return processor_.newRecord();
}

void BatchProcessorSink::onSpanEnd(std::unique_ptr<exporter::SpanRecord>&& span) {
  processor_.onEnd(std::move(span));
}

std::string_view toString(ContextHeaderPolicy policy) noexcept {
  return policy == ContextHeaderPolicy::kReject ? "reject" : "truncate";
}

absl::StatusOr<ContextHeaderPolicy> parseContextHeaderPolicy(std::string_view value) {
  if (value == "truncate") return ContextHeaderPolicy::kTruncate;
  if (value == "reject") return ContextHeaderPolicy::kReject;
  return absl::InvalidArgumentError("unknown header policy \"" + std::string(value) +
                                    "\" (known: truncate, reject)");
}

std::string_view toString(SamplingResult result) noexcept {
  switch (result) {
    case SamplingResult::kSampled:
      return "sampled";
    case SamplingResult::kRateLimited:
      return "rate_limited";
    case SamplingResult::kDropped:
    case SamplingResult::kCount:
      break;
  }
  return "dropped";
}

std::string_view toString(ContextRejection::Reason reason) noexcept {
  return reason == ContextRejection::Reason::kTracestate ? "tracestate" : "baggage";
}

// ---- TracedRequest ---------------------------------------------------------------------------

void TracedRequest::onResponseHead(int status_code, uint8_t version_major,
                                   uint8_t version_minor) {
  status_code_ = status_code;
  if (record_ && kind_ == SpanKind::kClient) {
    // The version the upstream answered in is the one actually spoken to it.
    const std::string_view version = semconv::protocolVersion(version_major, version_minor);
    if (!version.empty()) {
      record_->attributes.setStaticString(semconv::attr::kNetworkProtocolVersion, version,
                                          tracer_->config_.attribute_limits);
    }
  }
}

void TracedRequest::onResponseHead(const http::Http1Head& response) {
  onResponseHead(response.status, response.version_major, response.version_minor);
  if (grpc_) {
    if (const std::optional<std::string_view> status = response.headers.get("grpc-status")) {
      grpc_->status = semconv::parseGrpcStatus(*status);
    }
  }
}

void TracedRequest::onResponseTrailers(const http::HeaderMap& trailers) {
  if (!grpc_) return;
  if (const std::optional<std::string_view> status = trailers.get("grpc-status")) {
    grpc_->status = semconv::parseGrpcStatus(*status);
  }
}

void TracedRequest::onUpstreamTls() {
  if (!record_ || kind_ != SpanKind::kClient) return;
  exporter::Attributes& attributes = record_->attributes;
  const exporter::AttributeLimits& limits = tracer_->config_.attribute_limits;
  attributes.setStaticString(semconv::attr::kUrlScheme, "https", limits);
  const auto* full = attributes.find(semconv::attr::kUrlFull);
  const auto* text = full != nullptr ? std::get_if<std::string>(full) : nullptr;
  if (text != nullptr && text->starts_with("http://")) {
    std::string https = "https://" + text->substr(7);
    attributes.setStatic(semconv::attr::kUrlFull, std::move(https), limits);
  }
}

void TracedRequest::onUpstreamChosen(std::string_view authority) {
  if (!record_ || kind_ != SpanKind::kClient || hostless_scheme_.empty()) return;
  const std::string_view scheme = hostless_scheme_;
  hostless_scheme_ = {};
  std::string path = std::move(hostless_url_);
  hostless_url_ = {};
  const std::optional<semconv::HostPort> server = semconv::parseHostPort(authority);
  if (!server) return;
  exporter::Attributes& attributes = record_->attributes;
  const exporter::AttributeLimits& limits = tracer_->config_.attribute_limits;
  attributes.setStaticString(semconv::attr::kServerAddress, server->host, limits);
  if (const std::optional<uint16_t> port =
          server->port ? server->port : semconv::defaultPort(scheme)) {
    attributes.setStaticInt(semconv::attr::kServerPort, *port, limits);
  }
  if (!path.starts_with('/')) return;
  std::string absolute(scheme);
  absolute += "://";
  absolute += authority;
  absolute += path;
  attributes.setStatic(semconv::attr::kUrlFull, std::move(absolute), limits);
}

void TracedRequest::onUpstreamConnected(std::string_view address, uint16_t port) {
  if (!record_ || kind_ != SpanKind::kClient) return;
  const exporter::AttributeLimits& limits = tracer_->config_.attribute_limits;
  if (!address.empty()) {
    record_->attributes.setStaticString(semconv::attr::kNetworkPeerAddress, address, limits);
    if (port != 0) record_->attributes.setStaticInt(semconv::attr::kNetworkPeerPort, port, limits);
  }
}

void TracedRequest::onUpstreamFailure(semconv::UpstreamFailure failure) {
  if (!failure_) failure_ = failure;
}

std::optional<TracedRequest::Resend> TracedRequest::resend(semconv::UpstreamFailure failure,
                                                           std::string_view peer_address,
                                                           uint16_t peer_port,
                                                           uint64_t start_unix_nano,
                                                           uint64_t now_unix_nano) {
  if (!record_ || kind_ != SpanKind::kClient || ended_ || tracer_ == nullptr) return std::nullopt;
  const exporter::AttributeLimits& limits = tracer_->config_.attribute_limits;
  // The next attempt's span: everything the request said, before this attempt added its end.
  std::unique_ptr<exporter::SpanRecord> next = tracer_->sink_.newRecord();
  exporter::SpanRecordPool* const home = next->home;
  *next = *record_;
  next->home = home;
  propagation::IdGenerator& ids =
      tracer_->ids_ != nullptr ? *tracer_->ids_ : propagation::IdGenerator::forThisThread();
  next->span_id = ids.newSpanId();
  next->start_unix_nano = now_unix_nano;
  next->attributes.setStaticInt(semconv::attr::kHttpRequestResendCount, resend_count_ + 1,
                                limits);

  exporter::SpanRecord& done = *record_;
  if (resend_count_ == 0) done.start_unix_nano = start_unix_nano;
  done.end_unix_nano = std::max(now_unix_nano, done.start_unix_nano);
  if (!peer_address.empty()) {
    done.attributes.setStaticString(semconv::attr::kNetworkPeerAddress, peer_address, limits);
    if (peer_port != 0) {
      done.attributes.setStaticInt(semconv::attr::kNetworkPeerPort, peer_port, limits);
    }
  }
  done.attributes.setStaticString(semconv::attr::kErrorType, semconv::errorType(failure), limits);
  done.status_code = exporter::StatusCode::kError;
  done.status_message = semconv::failureReason(failure);

  const Resend ids_changed{context_.span_id, next->span_id};
  context_.span_id = next->span_id;
  ++resend_count_;
  tracer_->sink_.onSpanEnd(std::move(record_));
  record_ = std::move(next);
  return ids_changed;
}

TracedRequest::Outcome TracedRequest::end(uint64_t start_unix_nano, uint64_t end_unix_nano) {
  start_unix_nano_ = start_unix_nano;
  // A resent request's span started at its resend.
  if (record_ && resend_count_ == 0) record_->start_unix_nano = start_unix_nano;
  return end(end_unix_nano);
}

TracedRequest::Outcome TracedRequest::end(uint64_t now_unix_nano) {
  Outcome out;
  out.kind = kind_;
  out.method = method_.name;
  out.route = route_;
  out.sampled = sampled();
  out.rejected = rejection_.has_value();
  out.duration_ns = now_unix_nano > start_unix_nano_ ? now_unix_nano - start_unix_nano_ : 0;
  if (rejection_) {
    // No span, but the metrics' error_type as for any answer: a CLIENT 431 is an error.
    out.status_code = rejection_->status_code;
    if (semconv::spanStatusForHttpStatus(kind_, out.status_code) == exporter::StatusCode::kError) {
      out.error_type = semconv::statusCodeErrorType(out.status_code);
    }
    return out;
  }
  if (ended_ || tracer_ == nullptr) return out;
  ended_ = true;

  int status_code = status_code_;
  if (status_code == 0 && failure_ && kind_ == SpanKind::kServer) {
    status_code = semconv::localResponseStatus(*failure_);
  }
  exporter::StatusCode span_status = exporter::StatusCode::kUnset;
  if (failure_) {
    span_status = exporter::StatusCode::kError;
    out.error_type = semconv::errorType(*failure_);
  } else if (status_code != 0 && aborted_) {
    span_status = exporter::StatusCode::kError;
    out.error_type = semconv::kResponseIncomplete;
    out.incomplete = true;
  } else if (status_code != 0) {
    span_status = semconv::spanStatusForHttpStatus(kind_, status_code);
    if (span_status == exporter::StatusCode::kError) {
      out.error_type = semconv::statusCodeErrorType(status_code);
    }
  } else {
    // Ended with neither an answer nor a named failure (e.g. the downstream went away).
    span_status = exporter::StatusCode::kError;
    out.error_type = request_body_timeout_ ? semconv::kRequestBodyTimeout : semconv::kOtherValue;
  }
  out.status_code = status_code;
  // gRPC carries its outcome in grpc-status: it decides when HTTP said nothing worse.
  const std::optional<int> grpc_status = grpc_ ? grpc_->status : std::nullopt;
  if (grpc_status && span_status != exporter::StatusCode::kError) {
    span_status = semconv::spanStatusForGrpcStatus(kind_, *grpc_status);
    if (span_status == exporter::StatusCode::kError) {
      out.error_type = semconv::grpcStatusName(*grpc_status);
    }
  }

  if (record_) {
    const exporter::AttributeLimits& limits = tracer_->config_.attribute_limits;
    exporter::Attributes& attributes = record_->attributes;
    if (status_code != 0) {
      attributes.setStaticInt(semconv::attr::kHttpResponseStatusCode, status_code, limits);
    }
    if (grpc_status) {
      attributes.setStaticInt(semconv::attr::kRpcGrpcStatusCode, *grpc_status, limits);
    }
    if (!out.error_type.empty()) {
      attributes.setStaticString(semconv::attr::kErrorType, out.error_type, limits);
    }
    record_->status_code = span_status;
    // The description only when the status code does not already say it.
    if (failure_) {
      record_->status_message = status_code_ != 0 ? semconv::failureReasonAfterHead(*failure_)
                                                  : semconv::failureReason(*failure_);
    } else if (out.incomplete) {
      record_->status_message = "ended before the whole response was delivered";
    } else if (status_code == 0 && request_body_timeout_) {
      record_->status_message = "the client stopped sending the request body";
    }
    record_->end_unix_nano = std::max(now_unix_nano, record_->start_unix_nano);
    tracer_->sink_.onSpanEnd(std::move(record_));
  }
  return out;
}

// ---- RequestTracer ---------------------------------------------------------------------------

uint64_t RequestTracer::steadyNanos() noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

RequestTracer::RequestTracer(const propagation::CompositePropagator& propagator,
                             http::RouteResolver* routes, const RequestTracingConfig& config,
                             const sampling::Sampler& sampler, const sampling::TrustPolicy& trust,
                             SpanSink& sink, propagation::IdGenerator* ids, MonotonicClock clock)
    : propagator_(propagator),
      routes_(routes),
      config_(config),
      sink_(sink),
      ids_(ids),
      sampler_(sampler),
      trust_(trust),
      clock_(clock) {
  const propagation::PropagationConfig& limits = propagator.config();
  baggage_reject_message_ = "baggage over the limit of " +
                            std::to_string(limits.baggage_limits.max_members) + " members or " +
                            std::to_string(limits.baggage_limits.max_bytes) + " bytes";
  tracestate_reject_message_ = "tracestate over the limit of " +
                               std::to_string(propagation::TraceState::kMaxMembers) +
                               " members or " + std::to_string(limits.tracestate_max_length) +
                               " characters";
}

std::optional<ContextRejection> RequestTracer::checkPolicies(
    const propagation::ExtractReport& report) const {
  if (config_.baggage_policy == ContextHeaderPolicy::kReject &&
      report.baggage.dropped_member_limit + report.baggage.dropped_byte_limit > 0) {
    return ContextRejection{ContextRejection::Reason::kBaggage, 431, baggage_reject_message_};
  }
  if (config_.tracestate_policy == ContextHeaderPolicy::kReject &&
      (report.tracestate_entries_truncated > 0 ||
       report.tracestate == propagation::TraceStateStatus::kTooManyMembers)) {
    return ContextRejection{ContextRejection::Reason::kTracestate, 431,
                            tracestate_reject_message_};
  }
  return std::nullopt;
}

TracedRequest RequestTracer::begin(SpanKind kind, http::Http1Head& request, const Peer& peer,
                                   std::string_view scheme, uint64_t now_unix_nano) {
  return begin(kind,
               Head{request.method, request.target, request.version_major,
                    request.version_minor, request.headers},
               peer, scheme, now_unix_nano);
}

TracedRequest RequestTracer::begin(SpanKind kind, const Head& request, const Peer& peer,
                                   std::string_view scheme, uint64_t now_unix_nano) {
  TracedRequest traced;
  traced.tracer_ = this;
  traced.kind_ = kind;
  traced.start_unix_nano_ = now_unix_nano;
  traced.method_ = semconv::normalizeMethod(request.method, config_.known_methods);

  propagator_.extract(HeaderMapReader(request.headers), extracted_);
  traced.report_ = extracted_.report;
  // A rejected request is never forwarded and makes no span; it does not reach the route
  // resolver either, so it cannot use up heuristic route slots.
  if ((traced.rejection_ = checkPolicies(extracted_.report))) return traced;

  const semconv::RequestTarget target =
      semconv::splitRequestTarget(request.target, request.method == "CONNECT");
  const bool grpc = isGrpc(request, target);
  if (grpc) {
    traced.grpc_ = std::make_unique<TracedRequest::Grpc>();
    traced.grpc_->rpc_name = kind != SpanKind::kServer;
  }
  if (kind == SpanKind::kServer && routes_ != nullptr) {
    if (target.form == semconv::TargetForm::kOrigin ||
        target.form == semconv::TargetForm::kAbsolute) {
      const std::string_view path = target.path.empty() ? std::string_view("/") : target.path;
      // A gRPC method's path is its route as it stands. The resolver admits that path itself
      // under the heuristic routes' cap, so that clients cannot mint routes past it (any client
      // can say application/grpc); a configured template wins.
      const http::ResolvedRoute route =
          grpc ? routes_->resolveLiteral(path) : routes_->resolve(path, route_scratch_);
      traced.route_ = route.route;
      traced.route_source_ = route.source;
      if (grpc && route.source == http::RouteSource::kHeuristic) {
        traced.grpc_->rpc_name = true;
        traced.route_source_ = http::RouteSource::kTemplate;  // recorded as http.route
      }
    }
  }

  // Only the inbound listener's downstream can be outside the pod; the outbound listener's is
  // the app itself.
  const propagation::SpanContext& incoming = extracted_.span_context;
  const bool trusted = kind != SpanKind::kServer || trust_.trustsEveryone() ||
                       trust_.trusts(peer.address);
  if (!trusted && config_.drop_untrusted_baggage && !extracted_.baggage.empty()) {
    traced.untrusted_baggage_dropped_ = static_cast<uint32_t>(extracted_.baggage.size());
    extracted_.baggage.clear();
  }
  if (config_.sdk_disabled) {
    // No span of ours: the caller's context goes on as it came, within the limits. With no
    // trace of ours to steer, an untrusted context is not restarted either.
    traced.context_ = incoming;
    traced.report_.tracestate_entries_truncated +=
        extracted_.trace_state.truncate(propagator_.config().tracestate_max_length);
    if (!incoming.isValid() && propagator_.has(propagation::PropagatorKind::kTraceContext)) {
      // No valid context goes on: neither an invalid traceparent nor a tracestate it would
      // have carried (W3C: a tracestate is read only with a valid traceparent).
      request.headers.remove(propagation::headers::kTraceparent);
      request.headers.remove(propagation::headers::kTracestate);
    }
    injectContext(request.headers, traced.context_, extracted_.trace_state, extracted_.b3_debug);
    return traced;
  }
  traced.restarted_untrusted_ = !trusted && incoming.isValid();
  static const propagation::SpanContext kNoParent;
  const propagation::SpanContext& parent = traced.restarted_untrusted_ ? kNoParent : incoming;
  // A restarted trace starts from an empty tracestate: the caller's is neither forwarded nor
  // read by the sampler.
  restart_trace_state_.clear();
  propagation::TraceState& trace_state =
      traced.restarted_untrusted_ ? restart_trace_state_ : extracted_.trace_state;

  propagation::IdGenerator& ids =
      ids_ != nullptr ? *ids_ : propagation::IdGenerator::forThisThread();
  traced.context_ = parent.isValid() ? propagation::startChildSpan(parent, ids, false)
                                     : propagation::startRootSpan(ids, false);
  if (parent.isValid()) traced.parent_span_id_ = parent.span_id;
  sampling::SamplingParams params{parent,
                                  traced.context_.trace_id,
                                  trace_state,
                                  traced.method_.name,
                                  traced.route_,
                                  sampler_.rateLimiter() != nullptr ? clock_() : 0};
  // The sampler may write its ot entry (th, rv): into a list of 32 without one, that drops the
  // rightmost entry.
  const bool full_without_ot = trace_state.size() == propagation::TraceState::kMaxMembers &&
                               !trace_state.get(sampling::kOtKey).has_value();
  const sampling::Decision decision = sampler_.decide(params);
  if (full_without_ot && trace_state.get(sampling::kOtKey).has_value()) {
    ++traced.report_.tracestate_entries_evicted;
  }
  // The limit holds for what goes on.
  traced.report_.tracestate_entries_truncated +=
      trace_state.truncate(propagator_.config().tracestate_max_length);
  traced.sampling_decided_ = true;
  traced.sampling_rule_ = decision.rule;
  traced.sampling_result_ = decision.sampled       ? SamplingResult::kSampled
                            : decision.rate_limited ? SamplingResult::kRateLimited
                                                    : SamplingResult::kDropped;
  if (decision.sampled) {
    traced.context_.flags |= propagation::trace_flags::kSampled;
    // Before the headers change: the record copies what it reads from them.
    traced.record_ = startRecord(traced, request, target, peer, scheme, parent, trace_state);
    if (traced.restarted_untrusted_) {
      exporter::SpanLink link;
      link.trace_id = incoming.trace_id;
      link.span_id = incoming.span_id;
      if (!extracted_.trace_state.empty()) extracted_.trace_state.serialize(link.trace_state);
      link.flags = incoming.flags | exporter::span_flags::kHasIsRemote |
                   (incoming.is_remote ? exporter::span_flags::kIsRemote : 0u);
      traced.record_->links.push_back(std::move(link));
    }
  }

  // The upstream gets our span as its parent. B3's debug flag goes on with the trace it came
  // with, never into a restarted one.
  injectContext(request.headers, traced.context_, trace_state,
                extracted_.b3_debug && !traced.restarted_untrusted_);
  return traced;
}

void RequestTracer::injectContext(http::HeaderMap& headers, const propagation::SpanContext& context,
                                  const propagation::TraceState& trace_state, bool b3_debug) {
  // Only the context that fits the limits: the uberctx- fields go first so that members dropped
  // from the baggage are not forwarded.
  HeaderMapCarrier carrier(headers);
  if (propagator_.has(propagation::PropagatorKind::kJaeger)) {
    headers.removePrefix(kJaegerBaggagePrefix);
  }
  propagator_.inject(carrier, context, trace_state, extracted_.baggage, b3_debug);
}

std::unique_ptr<exporter::SpanRecord> RequestTracer::startRecord(
    TracedRequest& traced, const Head& request, const semconv::RequestTarget& target,
    const Peer& peer, std::string_view scheme, const propagation::SpanContext& parent,
    const propagation::TraceState& trace_state) const {
  namespace attr = semconv::attr;
  auto record = sink_.newRecord();
  record->trace_id = traced.context_.trace_id;
  record->span_id = traced.context_.span_id;
  record->parent_span_id = traced.parent_span_id_;
  record->flags = traced.context_.flags | exporter::span_flags::kHasIsRemote |
                  (parent.isValid() && parent.is_remote ? exporter::span_flags::kIsRemote : 0u);
  record->kind = traced.kind_;
  record->start_unix_nano = traced.start_unix_nano_;
  if (!trace_state.empty()) trace_state.serialize(record->trace_state);
  const std::optional<semconv::GrpcMethod> grpc =
      traced.grpc_ ? semconv::parseGrpcPath(target.path) : std::nullopt;
  if (grpc && traced.grpc_->rpc_name) {
    // RPC spans are named "{rpc.service}/{rpc.method}".
    record->name.append(grpc->service).append("/").append(grpc->method);
  } else {
    semconv::appendSpanName(traced.method_,
                            traced.kind_ == SpanKind::kServer ? traced.route_ : "", record->name);
  }

  const exporter::AttributeLimits& limits = config_.attribute_limits;
  exporter::Attributes& attributes = record->attributes;
  attributes.reserve(kExpectedAttributes);
  // Every key here is a semantic-convention constant: static storage, no copy.
  const auto setString = [&](std::string_view key, std::string_view value) {
    attributes.setStaticString(key, value, limits);
  };
  const auto setInt = [&](std::string_view key, int64_t value) {
    attributes.setStaticInt(key, value, limits);
  };

  setString(attr::kHttpRequestMethod, traced.method_.name);
  if (grpc) {
    setString(attr::kRpcSystem, semconv::kGrpcSystem);
    setString(attr::kRpcService, grpc->service);
    setString(attr::kRpcMethod, grpc->method);
  }
  if (traced.method_.other) setString(attr::kHttpRequestMethodOriginal, request.method);

  const InterestingHeaders headers = scanHeaders(request.headers);
  const bool target_has_authority = target.form == semconv::TargetForm::kAbsolute ||
                                    target.form == semconv::TargetForm::kAuthority;
  // url.path, "/" for an empty one.
  const auto setPath = [&] {
    setString(attr::kUrlPath, target.path.empty() ? std::string_view("/") : target.path);
  };

  if (traced.kind_ == SpanKind::kServer) {
    semconv::ForwardedElement forwarded;
    std::string_view forwarded_proto;
    if (config_.use_forwarded_headers) {
      forwarded = semconv::parseForwarded(headers.forwarded);
      forwarded_proto = !forwarded.proto.empty()
                            ? forwarded.proto
                            : semconv::firstListElement(headers.x_forwarded_proto);
    }
    // The scheme of the original client request when a proxy said so, else this hop's.
    std::string_view url_scheme = scheme;
    if (isHttpScheme(forwarded_proto)) {
      url_scheme = forwarded_proto;
    } else if (target.form == semconv::TargetForm::kAbsolute && isHttpScheme(target.scheme)) {
      url_scheme = target.scheme;  // another scheme ("ftp://") is no HTTP scheme of this hop
    }
    url_scheme = semconv::canonicalScheme(url_scheme);

    if (target.form != semconv::TargetForm::kAuthority) setPath();
    if (target.has_query) {
      std::string query;
      semconv::appendRedactedQuery(target.query, config_.query_redaction, query);
      attributes.setStatic(attr::kUrlQuery, std::move(query), limits);
    }
    if (!url_scheme.empty()) setString(attr::kUrlScheme, url_scheme);
    if (traced.route_source_ == http::RouteSource::kTemplate && !traced.route_.empty()) {
      setString(attr::kHttpRoute, traced.route_);
    }
    const std::string_view version =
        semconv::protocolVersion(request.version_major, request.version_minor);
    if (!version.empty()) setString(attr::kNetworkProtocolVersion, version);

    // The original host: a proxy's Forwarded host or X-Forwarded-Host, else the target's
    // authority (absolute-form overrides Host in HTTP/1.1), else Host. A forwarded value that
    // is not a host (userinfo, say: the data path refuses it in Host and the target) is passed
    // over.
    std::optional<semconv::HostPort> server;
    if (!forwarded.host.empty()) {
      server = semconv::parseHostPort(forwarded.host);
    } else if (config_.use_forwarded_headers && !headers.x_forwarded_host.empty()) {
      server = semconv::parseHostPort(semconv::firstListElement(headers.x_forwarded_host));
    }
    if (!server) {
      server = semconv::parseHostPort(target_has_authority ? target.authority : headers.host);
    }
    if (server) {
      setString(attr::kServerAddress, server->host);
      if (const std::optional<uint16_t> port = server->port ? server->port
                                                            : semconv::defaultPort(url_scheme)) {
        setInt(attr::kServerPort, *port);
      }
    }

    std::optional<std::string_view> client;
    if (config_.use_forwarded_headers) {
      client = semconv::nodeAddress(forwarded.for_node);
      if (!client && !headers.x_forwarded_for.empty()) {
        client = semconv::nodeAddress(semconv::firstListElement(headers.x_forwarded_for));
      }
    }
    if (!client && !peer.address.empty()) client = peer.address;
    if (client) setString(attr::kClientAddress, *client);
    if (!peer.address.empty()) {
      setString(attr::kNetworkPeerAddress, peer.address);
      if (peer.port != 0) setInt(attr::kNetworkPeerPort, peer.port);
    }
    if (headers.has_user_agent) setString(attr::kUserAgentOriginal, headers.user_agent);
  } else {
    const std::string_view url_scheme = semconv::canonicalScheme(
        target.form == semconv::TargetForm::kAbsolute ? target.scheme : scheme);
    const std::string_view authority = target_has_authority ? target.authority : headers.host;
    // No host named (url.full only a path): the upstream chosen says where it went.
    if (authority.empty()) traced.hostless_scheme_ = url_scheme == "https" ? "https" : "http";
    if (const std::optional<semconv::HostPort> server = semconv::parseHostPort(authority)) {
      setString(attr::kServerAddress, server->host);
      if (const std::optional<uint16_t> port = server->port ? server->port
                                                            : semconv::defaultPort(url_scheme)) {
        setInt(attr::kServerPort, *port);
      }
    }
    const bool has_path = target.form != semconv::TargetForm::kAuthority &&
                          target.form != semconv::TargetForm::kAsterisk;
    std::string full;
    const size_t query_at = semconv::appendUrlFull(
        url_scheme, target.has_userinfo, authority, has_path ? target.path : std::string_view(),
        target.has_query ? std::optional<std::string_view>(target.query) : std::nullopt,
        config_.query_redaction, full);
    if (config_.client_url_attributes) {
      if (has_path) setPath();
      // url.query: the query as url.full has it, redacted once for both.
      if (query_at != std::string::npos) {
        attributes.setStatic(attr::kUrlQuery, full.substr(query_at), limits);
      }
      if (!url_scheme.empty()) setString(attr::kUrlScheme, url_scheme);
      if (headers.has_user_agent) setString(attr::kUserAgentOriginal, headers.user_agent);
    }
    if (authority.empty()) {
      traced.hostless_url_ = std::move(full);
    } else {
      attributes.setStatic(attr::kUrlFull, std::move(full), limits);
    }
  }
  return record;
}

}  // namespace tracecar::proxy
