#include "proxy/h2_downstream_session.h"

#include <algorithm>
#include <array>
#include <new>
#include <optional>
#include <utility>
#include <variant>

#include "base/ascii.h"
#include "base/kept_blocks.h"
#include "http/http1_parser.h"
#include "http/tcp_address.h"
#include "proxy/data_path_headers.h"
#include "proxy/h1_upstream_for_h2.h"
#include "proxy/h2_upstream_pool.h"
#include "proxy/http_semconv.h"
#include "proxy/protocol_translation.h"

namespace tracecar::proxy {
namespace {

using http::H2CloseCause;
using http::H2ErrorCode;

// The drain's shutdown notice goes first; the final GOAWAY follows after about one round trip.
constexpr uint64_t kDrainGoawayDelayMs = 200;

}  // namespace

// ---- one stream ----

// A stream is made and freed for every request, and is larger than what malloc keeps per thread
// for quick reuse: freed streams' memory stays with the thread for the next ones.
class H2DownstreamSession::Stream final : public H2UpstreamStream,
                                         public base::KeptInThread<H2DownstreamSession::Stream> {
 public:
  Stream(H2DownstreamSession& session, int32_t id, http::H2Head&& head)
      : s_(session), id_(id), head_(std::move(head)) {
    stats_.listener = session.listener_.role;
    stats_.start_ns = uv_hrtime();
    stats_.request_header_bytes = head_.header_list_bytes;
  }
  ~Stream() override {
    // Not inside one of the exchange's callbacks here: it can go at once.
    if (h1_ != nullptr) {
      h1_->release();
      delete h1_;
    }
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int32_t id() const noexcept { return id_; }
  uint64_t deadline() const noexcept { return deadline_ms_; }

  bool marked_responding = false;  // listed in s_.responding_

  // The request head is complete (with END_STREAM when it has no body): observe, route, send.
  void start() noexcept {
    try {
      startOrThrow();
    } catch (...) {
      localReply(502, "out of memory", LocalReplyReason::kUpstreamReset);
    }
  }

  void onDownstreamData(std::string_view data) noexcept {
    stats_.request_body_bytes += data.size();
    received_ += data.size();
    if (discard_) {
      consumeDownstream(received_);
      return;
    }
    if (h1_ != nullptr) {
      forwarded_ += data.size();
      h1_->sendBody(data);
      if (h1_ != nullptr) consumeDownstream(forwarded_ - h1_->held());
      armResponseTimer();
      return;
    }
    if (submitted_ && upstream_ != nullptr) {
      forwarded_ += data.size();
      (void)upstream_->submitData(upstream_id_, data, false);
      armResponseTimer();
      return;
    }
    try {
      body_.append(data);  // until the upstream takes the request: at most one stream window
    } catch (...) {
      localReply(502, "out of memory", LocalReplyReason::kUpstreamReset);
    }
  }

  void onDownstreamTrailers(http::HeaderMap& trailers) noexcept {
    if (discard_) return;
    // The configured field count holds for the trailers as for the head (an HTTP/1.1 client's
    // parser counts them the same way); their bytes are the codec's, like the head's.
    if (trailers.size() > s_.context_.settings().request_limits.max_header_count) {
      refuseTrailers();
      return;
    }
    stripTrailerFields(trailers);
    if (h1_ != nullptr) {
      request_trailers_sent_ = true;
      h1_->sendTrailers(trailers);
      return;
    }
    if (submitted_ && upstream_ != nullptr) {
      (void)upstream_->submitTrailers(upstream_id_, trailers);
      request_trailers_sent_ = true;
      return;
    }
    try {
      trailers_ = std::make_unique<http::HeaderMap>(std::move(trailers));
    } catch (...) {
    }
  }

  void onDownstreamEnd() noexcept {
    request_ended_ = true;
    if (!discard_ && h1_ != nullptr) {
      if (!request_trailers_sent_) h1_->endRequest();
      armResponseTimer();
      return;
    }
    armBodyTimer();
    if (discard_ || !submitted_ || upstream_ == nullptr || request_trailers_sent_) return;
    (void)upstream_->submitData(upstream_id_, {}, true);
    armResponseTimer();
  }

  // Response bytes framed downstream: acknowledge them to the upstream.
  void onDownstreamSendProgress(size_t pending) noexcept {
    const uint64_t taken = response_forwarded_ - std::min<uint64_t>(pending, response_forwarded_);
    if (taken > response_consumed_ && upstream_ != nullptr && submitted_) {
      upstream_->consume(upstream_id_, taken - response_consumed_);
    } else if (taken > response_consumed_ && h1_ != nullptr) {
      h1_->consume(taken - response_consumed_);
    }
    response_consumed_ = std::max(response_consumed_, taken);
    armBodyTimer();
  }

  void onDownstreamClose(H2ErrorCode code, H2CloseCause cause) noexcept {
    if (closed_) return;
    closed_ = true;
    deadline_ms_ = 0;
    // Request body bytes never forwarded (held for an upstream that could not take them yet, or
    // dropped with it) go back to the client's connection window: the stream no longer counts
    // them, but the connection does.
    consumeDownstream(received_);
    // Every response byte relayed was framed for the client (before dropping the upstream
    // credits the rest back).
    const bool all_framed = response_consumed_ >= response_forwarded_;
    dropH1();  // its connection goes back to the pool when the exchange was complete
    const bool reset_by_client = cause == H2CloseCause::kResetByPeer;
    if (upstream_ != nullptr && submitted_ && reset_by_client) {
      DataPathCounters::add(s_.worker_.counters().resets_to_upstream);
    }
    const bool done = response_ended_ && cause == H2CloseCause::kDone;
    dropUpstream(done ? H2ErrorCode::kNoError : (reset_by_client ? code : H2ErrorCode::kCancel));
    stats_.end_ns = uv_hrtime();
    // Delivered: the response ended and the stream closed normally, or was reset after the
    // whole response was framed for the client (a client done with its answer that drops the
    // rest of its upload, a drain, tracecar stopping a request answered early).
    const bool delivered = response_ended_ && (cause == H2CloseCause::kDone || all_framed);
    if (!delivered) stats_.aborted = true;
    if (observer_) {
      observer_->onComplete(stats_);
      observer_.reset();
    }
  }

  // H2UpstreamStream.
  void onUpstreamReady(H2UpstreamConnection& connection) noexcept override {
    upstream_ = &connection;
    submit();
  }

  void onUpstreamWaiting(H2UpstreamConnection& connection) noexcept override {
    upstream_ = &connection;
  }

  void onUpstreamResend(UpstreamFailure failure, std::string& h1_head) noexcept override {
    if (observer_) observer_->onResend(failure, stats_, h1_head);
  }

  void onUpstreamFailed(UpstreamFailure failure) noexcept override {
    upstream_ = nullptr;
    // An HTTP/1.1 exchange counted its failure; a head it had not relayed yet is dropped.
    const bool counted = h1_ != nullptr;
    if (counted) pending_head_ = false;
    dropH1();
    fail(failure, counted);
  }

  void onUpstreamHeaders(http::H2Head& head) noexcept override {
    if (discard_) return;
    if (head.status < 200) {
      if (head.status == 100) continue_received_ = true;
      // 101 has no meaning in HTTP/2 and nghttp2 refuses it upstream already.
      if (!response_started_ && !pending_head_) {
        http::H2Head interim;
        interim.status = head.status;
        interim.headers = std::move(head.headers);
        (void)s_.session_->submitResponse(id_, interim, false);
        s_.scheduleFlush();
      }
      // The final head is still to come: a running response timeout counts again from here,
      // as it does for an HTTP/1.1 client (a 102 Processing keeps a long request alive).
      if (deadline_ms_ != 0) armResponseTimer();
      return;
    }
    deadline_ms_ = 0;
    stats_.response_header_bytes = head.header_list_bytes;
    stats_.status = head.status;
    response_.status = head.status;
    // The version the upstream answered in.
    response_.version_major = h1_ != nullptr ? 1 : 2;
    response_.version_minor = h1_ != nullptr ? h1_->responseVersionMinor() : 0;
    response_.headers = std::move(head.headers);
    pending_head_ = true;
    if (observer_) {
      try {
        observer_->onResponseHead(response_);
      } catch (...) {
      }
    }
    armBodyTimer();
  }

  void onUpstreamData(std::string_view data) noexcept override {
    if (discard_) {
      consumeUpstream(data.size());
      return;
    }
    flushHead(false);
    deadline_ms_ = 0;  // armed again once the client's side has taken it (onDownstreamSendProgress)
    response_forwarded_ += data.size();
    stats_.response_body_bytes += data.size();
    (void)s_.session_->submitData(id_, data, false);
    s_.markResponding(*this);
    s_.scheduleFlush();
  }

  void onUpstreamTrailers(http::HeaderMap& trailers) noexcept override {
    if (discard_) return;
    flushHead(false);
    if (observer_) {
      try {
        observer_->onResponseTrailers(trailers);
      } catch (...) {
      }
    }
    stripTrailerFields(trailers);
    (void)s_.session_->submitTrailers(id_, trailers);
    response_ended_ = true;
    deadline_ms_ = 0;
    s_.scheduleFlush();
  }

  void onUpstreamEnd() noexcept override {
    if (discard_ || response_ended_) return;
    if (pending_head_) {
      flushHead(true);  // a trailers-only response stays one HEADERS frame
    } else if (response_started_) {
      (void)s_.session_->submitData(id_, {}, true);
    }
    response_ended_ = true;
    deadline_ms_ = 0;
    s_.scheduleFlush();
  }

  void onUpstreamCommit() noexcept override { flushHead(false); }

  void onUpstreamSendProgress(size_t pending) noexcept override {
    const uint64_t taken = forwarded_ - std::min<uint64_t>(pending, forwarded_);
    // The request head's own bytes never counted: only body bytes are acknowledged.
    if (taken > consumed_) {
      consumeDownstream(taken);
      // Body bytes went on: the timeout counts again from here (and a client that was held
      // back gets all of it to send the rest).
      armResponseTimer();
    }
  }

  void onUpstreamClose(H2ErrorCode code, H2CloseCause cause, bool lost,
                       bool retryable) noexcept override {
    dropH1();  // an HTTP/1.1 exchange closes once its response is complete
    H2UpstreamConnection* connection = upstream_;
    upstream_ = nullptr;
    const uint64_t unconsumed = response_forwarded_ - response_consumed_;
    if (!lost && connection != nullptr && unconsumed > 0) {
      // The upstream stream is gone: what waits here is bounded by its window; credit it now.
      connection->consume(upstream_id_, unconsumed);
      response_consumed_ = response_forwarded_;
    }
    if (discard_ || closed_) return;
    if (response_ended_) {
      consumeDownstream(received_);  // a request body the upstream no longer reads
      discard_ = !request_ended_;
      if (discard_) {
        s_.session_->stopRequestBody(id_);
        s_.scheduleFlush();
      }
      return;
    }
    if (retryable && !response_started_ && !retried_) {
      // Never processed by the upstream, and only the head went: sent again, once, on another
      // connection.
      retried_ = true;
      stats_.retried = true;
      submitted_ = false;
      pending_head_ = false;
      DataPathCounters::add(s_.worker_.counters().refused_retries);
      if (observer_) {
        observer_->onResend(UpstreamFailure::kConnectionReset, stats_, upstream_head_.headers);
      }
      forgetPeer(stats_);
      acquire();
      return;
    }
    const UpstreamFailure failure = upstreamCloseFailure(cause);
    if (!response_started_) {
      pending_head_ = false;
      fail(failure);
      return;
    }
    // The response had begun: the client sees the stream reset, with the upstream's code when
    // the upstream reset it.
    if (observer_) observer_->onUpstreamFailure(failure);
    stats_.upstream_failure = failure;
    DataPathCounters::add(s_.context_.counters().upstream_failures);
    discard_ = true;
    consumeDownstream(received_);
    const bool relayed = cause == H2CloseCause::kResetByPeer && !lost;
    if (relayed) DataPathCounters::add(s_.worker_.counters().resets_to_downstream);
    (void)s_.session_->resetStream(id_, relayed ? code : H2ErrorCode::kInternalError);
    s_.scheduleFlush();
  }

  // Why an upstream stream that closed before its response ended failed. The pool resets only
  // streams it was told to drop (which then hear nothing), so a stream reset on our side here is
  // one nghttp2 reset because the upstream broke the rules of a response (a bad or missing
  // :status, a body longer or shorter than its content-length, invalid fields).
  static UpstreamFailure upstreamCloseFailure(H2CloseCause cause) noexcept {
    switch (cause) {
      case H2CloseCause::kHeadersTooLarge: return UpstreamFailure::kResponseTooLarge;
      case H2CloseCause::kResetLocally: return UpstreamFailure::kBadResponse;
      default: return UpstreamFailure::kConnectionReset;
    }
  }

  // The response head did not come in time, or its body stopped coming (armBodyTimer).
  // client_stalled: waitingForRequestBody(), taken for every stream that timed out before any
  // of them is answered (an answer gives back the bytes its stream held, which would make a
  // stream that was held back look like a client that stalled).
  void onResponseTimeout(bool client_stalled) noexcept {
    deadline_ms_ = 0;
    if (discard_ || closed_ || response_ended_) return;
    if (response_started_ || pending_head_) {
      bodyTimedOut();
      return;
    }
    s_.context_.counters().timeout(DataPathTimeout::kUpstreamResponse);
    if (client_stalled) {
      // The client stopped sending its body while tracecar was taking all of it: the wait was
      // for the client. The upstream's request is cut, uncounted as a failure of the upstream's.
      localReply(408, "request body timeout", LocalReplyReason::kRequestBodyTimeout);
      return;
    }
    dropH1();
    dropUpstream(H2ErrorCode::kCancel);
    fail(UpstreamFailure::kResponseTimeout);
  }

  // Before the response head, with the request body still coming and nothing of it held back:
  // the client is the one that is slow. Held back means request body bytes received and not
  // yet acknowledged, on this stream (its window) or on any other of the connection (the
  // connection's window, which this stream's DATA needs too). A client that asked for 100
  // Continue, has not had it and has sent no body byte yet is waiting for the upstream.
  bool waitingForRequestBody() const noexcept {
    const bool sent = h1_ != nullptr ? h1_->connected() : submitted_ && upstream_ != nullptr;
    if (!sent || request_ended_ ||
        response_started_ || pending_head_ ||
        (received_ == 0 && expects_continue_ && !continue_received_)) {
      return false;
    }
    for (const auto& [id, stream] : s_.streams_) {
      if (stream->received_ != stream->consumed_) return false;
    }
    return true;
  }

 private:
  void startOrThrow() {
    const ListenerContext& listener = s_.listener_;
    // The protocol-neutral head the observer and the selector read.
    request_.method = std::move(head_.method);
    request_.version_major = 2;
    request_.version_minor = 0;
    request_.headers = std::move(head_.headers);
    expects_continue_ = !request_ended_ && request_.headers.hasToken("expect", "100-continue");
    const bool connect = request_.method == "CONNECT";
    request_.target = connect ? head_.authority : std::move(head_.path);
    if (connect || !head_.protocol.empty()) {
      localReply(501, "CONNECT over HTTP/2 is not supported", LocalReplyReason::kNotImplemented);
      return;
    }
    // What the HTTP/1.1 parser refuses before anyone sees the request is refused here too, with
    // the same answers and counts: no observer exists yet, so no span carries any of it.
    if (std::optional<LocalReply> refusal = checkHead()) {
      localReply(refusal->status, refusal->reason, refusal->code);
      return;
    }
    const std::optional<RequestTargetParts> parts =
        parseRequestTarget(request_.method, request_.target);
    // RFC 9113 section 8.3.1: :path is origin-form (or "*" for OPTIONS); the authority is
    // :authority's alone. nghttp2 checks the leading '/' only for the http and https schemes.
    if (!parts || (parts->form != RequestTargetForm::kOrigin &&
                   parts->form != RequestTargetForm::kAsterisk)) {
      localReply(400, "invalid :path", LocalReplyReason::kBadRequest);
      return;
    }
    if (listener.observers != nullptr) observer_ = listener.observers->create(listener.role);
    if (observer_) {
      if (std::optional<LocalReply> reply = observer_->onRequestHead(request_, s_.peer_)) {
        localReply(reply->status, reply->reason, reply->code);
        return;
      }
    }
    if (applyMaxForwards(request_.method, request_.headers) == MaxForwardsStep::kAnswer) {
      answerAsLastHop();
      return;
    }
    if (listener.selector == nullptr) {
      localReply(502, "no upstream", LocalReplyReason::kUpstreamRefused);
      return;
    }
    std::variant<UpstreamRoute, LocalReply> routed =
        listener.selector->select(request_, *parts, s_.peer_);
    if (LocalReply* reply = std::get_if<LocalReply>(&routed)) {
      noteSelectorRefusal(*reply, stats_, observer_.get());
      localReply(reply->status, reply->reason, reply->code);
      return;
    }
    UpstreamRoute& route = std::get<UpstreamRoute>(routed);
    target_ = std::move(route.target);
    stats_.upstream_tls = target_.tls != nullptr;
    if (route.protocol == UpstreamProtocol::kHttp1) {
      startH1();
      return;
    }

    // The head for the upstream: Host becomes :authority again.
    upstream_head_.method = std::move(request_.method);
    upstream_head_.scheme = stats_.upstream_tls ? "https"
                            : head_.scheme.empty() ? "http"
                                                   : std::move(head_.scheme);
    if (std::optional<std::string_view> host = request_.headers.get("host")) {
      upstream_head_.authority = std::string(*host);
    }
    request_.headers.remove("host");
    upstream_head_.path = std::move(request_.target);
    upstream_head_.headers = std::move(request_.headers);
    acquire();
  }

  // The configured request limits (the header list's bytes are the codec's: it answers 431
  // itself past them), then the authority. On success the head's Host is the authority:
  // :authority when present (RFC 9113 section 8.3.1), else the host field.
  std::optional<LocalReply> checkHead() {
    const http::Http1Limits& limits = s_.context_.settings().request_limits;
    if (request_.target.size() > limits.max_uri_length) {
      return LocalReply{414, "request target too long", LocalReplyReason::kUriTooLong};
    }
    // Cookie crumbs (RFC 9113 section 8.2.3) are one field, as an HTTP/1.1 hop joins them.
    size_t fields = request_.headers.size();
    if (const size_t cookies = request_.headers.count("cookie"); cookies > 1) {
      fields -= cookies - 1;
    }
    if (fields > limits.max_header_count) {
      return LocalReply{431, "too many header fields", LocalReplyReason::kTooManyHeaders};
    }
    // At most one: nghttp2 resets a stream with two host fields (PROTOCOL_ERROR).
    const size_t hosts = request_.headers.count("host");
    std::string_view authority = head_.authority;
    if (hosts == 1) {
      const std::string_view host = *request_.headers.get("host");
      // Two targets for one request: which one a hop believes is the client's choice.
      if (!authority.empty() && !ascii::equalsIgnoreCase(host, authority)) {
        return LocalReply{400, "host differs from :authority", LocalReplyReason::kBadRequest};
      }
      if (authority.empty()) authority = host;
    }
    // Userinfo included: credentials never go on, nor into a span.
    if (!authority.empty() && !parseAuthority(authority).has_value()) {
      return LocalReply{400, "invalid :authority", LocalReplyReason::kBadRequest};
    }
    if (hosts == 0 && !authority.empty()) {
      request_.headers.add("host", authority);
    } else if (hosts == 1 && !head_.authority.empty()) {
      request_.headers.set("host", head_.authority);
    }
    return std::nullopt;
  }

  // The request goes to an HTTP/1.1 upstream: a request line from :method and :path, Host from
  // :authority, the body with Content-Length when its length is known, else chunked.
  void startH1() {
    if (!request_.headers.get("host")) request_.headers.add("host", target_.key());
    const H1RequestBody body =
        chooseH1RequestBody(request_.headers, request_ended_, body_.size(), trailers_ != nullptr);
    std::string head;
    appendH1RequestHead(head, request_, body);
    h1_ = new H1UpstreamForH2(s_.context_, *this, stats_);
    armResponseTimer();
    if (!h1_->start(target_, std::move(head), body.framing == H1RequestFraming::kChunked,
                    request_.method)) {
      dropH1();
      fail(UpstreamFailure::kOther);
      return;
    }
    if (!body_.empty()) {
      forwarded_ += body_.size();
      h1_->sendBody(body_);
      std::string().swap(body_);
    }
    if (h1_ != nullptr && trailers_) {
      request_trailers_sent_ = true;
      h1_->sendTrailers(*trailers_);
      trailers_.reset();
    } else if (h1_ != nullptr && request_ended_) {
      h1_->endRequest();
    }
    if (h1_ != nullptr) consumeDownstream(forwarded_ - h1_->held());
  }

  // The HTTP/1.1 exchange ends: nothing more comes from it; it is freed on the next turn.
  void dropH1() noexcept {
    if (h1_ == nullptr) return;
    H1UpstreamForH2* exchange = h1_;
    h1_ = nullptr;
    exchange->release();
    s_.context_.retire(exchange);
  }

  void acquire() noexcept {
    H2UpstreamConnection* connection = s_.worker_.pool().acquire(target_, *this);
    if (connection == nullptr) {
      fail(UpstreamFailure::kOther);
      return;
    }
    upstream_ = connection;
    armResponseTimer();
    if (connection->ready()) submit();
  }

  void submit() noexcept {
    if (upstream_ == nullptr || discard_) return;
    const bool end = request_ended_ && body_.empty() && !trailers_;
    notePeer(stats_, upstream_->peerAddress(), upstream_->peerPort());
    absl::StatusOr<int32_t> id = upstream_->submitRequest(upstream_head_, end, *this);
    if (!id.ok()) {
      upstream_ = nullptr;
      fail(UpstreamFailure::kConnectionReset);
      return;
    }
    submitted_ = true;
    upstream_id_ = *id;
    if (!body_.empty()) {
      forwarded_ += body_.size();
      (void)upstream_->submitData(upstream_id_, body_, request_ended_ && !trailers_);
      std::string().swap(body_);
    }
    if (trailers_) {
      (void)upstream_->submitTrailers(upstream_id_, *trailers_);
      request_trailers_sent_ = true;
      trailers_.reset();
    }
    armResponseTimer();
  }

  void flushHead(bool end) noexcept {
    if (!pending_head_) return;
    pending_head_ = false;
    response_started_ = true;
    http::H2Head head;
    head.status = response_.status;
    head.headers = std::move(response_.headers);
    if (!s_.session_->submitResponse(id_, head, end).ok()) {
      (void)s_.session_->resetStream(id_, H2ErrorCode::kInternalError);
    }
    if (end) response_ended_ = true;
    s_.scheduleFlush();
  }

  // Trailers over the field count: the request never ends upstream (its stream is cancelled,
  // an HTTP/1.1 upstream connection closed); the client gets 431, or once the response has
  // begun, RST_STREAM ENHANCE_YOUR_CALM.
  void refuseTrailers() noexcept {
    // An upstream head already taken (relayed or about to be) is what the span has recorded.
    if (!response_started_ && !pending_head_) {
      localReply(431, "too many trailer fields", LocalReplyReason::kTooManyHeaders);
      return;
    }
    discard_ = true;
    if (!response_ended_) stats_.aborted = true;
    dropH1();
    dropUpstream(H2ErrorCode::kCancel);
    (void)s_.session_->resetStream(id_, H2ErrorCode::kEnhanceYourCalm);
    s_.scheduleFlush();
  }

  // Before any response went downstream: tracecar answers; after: the stream is reset.
  // counted: upstream_failures already counts it.
  void fail(UpstreamFailure failure, bool counted = false) noexcept {
    if (closed_ || discard_) return;
    stats_.upstream_failure = failure;
    if (!counted) DataPathCounters::add(s_.context_.counters().upstream_failures);
    if (observer_) observer_->onUpstreamFailure(failure);
    if (!response_started_) {
      localReply(semconv::localResponseStatus(failure),
                 semconv::failureReason(failure), localReplyReasonOf(failure));
      return;
    }
    discard_ = true;
    (void)s_.session_->resetStream(id_, H2ErrorCode::kInternalError);
    s_.scheduleFlush();
  }

  void localReply(int status, std::string_view reason, LocalReplyReason code) noexcept {
    if (closed_ || response_started_) return;
    s_.context_.counters().localReply(s_.listener_.role, code);
    stats_.local_reply = true;
    stats_.local_reply_reason = code;
    answerHere(status, [reason] {
      std::string body(reason);
      body += '\n';
      return OwnAnswer{"text/plain; charset=utf-8", std::move(body)};
    });
  }

  // An OPTIONS or TRACE request whose Max-Forwards reached 0: tracecar is its last hop.
  void answerAsLastHop() noexcept {
    if (closed_ || response_started_) return;
    observeOwnAnswer(observer_.get(), 200);
    answerHere(200, [this] {
      LastHopAnswer answer = lastHopAnswer(request_);
      return OwnAnswer{answer.content_type, std::move(answer.content)};
    });
  }

  // What tracecar answers itself: a content type (empty: none) and the content.
  using OwnAnswer = std::pair<std::string_view, std::string>;

  // An answer tracecar gives itself, its content from make(): the stream's upstream side (if
  // any) dropped, the head and content (none when empty) submitted, the rest of the request
  // refused. A failure to make or submit it resets the stream.
  template <class Make>
  void answerHere(int status, Make&& make) noexcept {
    stats_.status = status;
    response_started_ = true;
    response_ended_ = true;
    discard_ = true;
    deadline_ms_ = 0;
    consumeDownstream(received_);
    dropH1();
    dropUpstream(H2ErrorCode::kCancel);
    try {
      const OwnAnswer answer = make();
      const auto& [content_type, content] = answer;
      http::H2Head head;
      head.status = status;
      if (!content_type.empty()) head.headers.add("content-type", content_type);
      head.headers.add("content-length", std::to_string(content.size()));
      if (s_.session_->submitResponse(id_, head, content.empty()).ok()) {
        if (!content.empty()) (void)s_.session_->submitData(id_, content, true);
        // The rest of the request goes nowhere: the client is told to stop once the answer is
        // out, so the stream does not stay half-open (and the connection can idle out).
        if (!request_ended_) s_.session_->stopRequestBody(id_);
      }
    } catch (...) {
      (void)s_.session_->resetStream(id_, H2ErrorCode::kInternalError);
    }
    s_.scheduleFlush();
  }

  // An HTTP/2 upstream's response body (an HTTP/1.1 one has its own timer, in its connection):
  // the response timeout runs between its pieces once the request has ended and each piece
  // relayed so far is framed for the client. A client that reads slowly holds the upstream
  // back through flow control; that wait is not the upstream's.
  void armBodyTimer() noexcept {
    if (h1_ != nullptr || upstream_ == nullptr || !submitted_ || discard_ || closed_ ||
        response_ended_ || !request_ended_ || !(response_started_ || pending_head_) ||
        response_forwarded_ != response_consumed_) {
      return;
    }
    startResponseDeadline();
  }

  // The body stopped coming: the upstream stream is cancelled and the client's reset.
  void bodyTimedOut() noexcept {
    s_.context_.counters().timeout(DataPathTimeout::kUpstreamResponse);
    flushHead(false);  // a head not relayed yet goes first: the answer had begun
    dropUpstream(H2ErrorCode::kCancel);
    consumeDownstream(received_);
    fail(UpstreamFailure::kResponseTimeout);
  }

  // Leaves the upstream: its stream is reset with code (the response bytes it sent and the client
  // has not taken are credited back to the connection), or the wait for a connection ends.
  void dropUpstream(H2ErrorCode code) noexcept {
    if (upstream_ == nullptr) return;
    if (submitted_) {
      upstream_->detach(upstream_id_, code, response_forwarded_ - response_consumed_);
      response_consumed_ = response_forwarded_;
    } else {
      upstream_->cancelWait(*this);
    }
    upstream_ = nullptr;
  }

  // deadline_ms_ = timeouts.upstream_response from now.
  void startResponseDeadline() noexcept {
    const auto timeout =
        static_cast<uint64_t>(s_.context_.settings().timeouts.upstream_response.count());
    deadline_ms_ = uv_now(s_.context_.loop()) + timeout;
    s_.armDeadline(deadline_ms_);
  }

  void armResponseTimer() noexcept {
    if (response_started_ || pending_head_ || discard_) return;
    startResponseDeadline();
  }

  void consumeDownstream(uint64_t upto) noexcept {
    if (upto <= consumed_) return;
    s_.session_->consume(id_, upto - consumed_);
    consumed_ = upto;
    s_.scheduleFlush();
  }

  void consumeUpstream(size_t n) noexcept {
    response_forwarded_ += n;
    response_consumed_ += n;
    if (upstream_ != nullptr && submitted_) {
      upstream_->consume(upstream_id_, n);
    } else if (h1_ != nullptr) {
      h1_->consume(n);
    }
  }

  H2DownstreamSession& s_;
  const int32_t id_;
  http::H2Head head_;       // as received
  http::Http1Head request_;  // the protocol-neutral head the observer and selector see
  http::H2Head upstream_head_;
  http::Http1Head response_;  // the final response head until it is relayed
  UpstreamTarget target_;
  std::unique_ptr<StreamObserver> observer_;
  StreamStats stats_;

  H2UpstreamConnection* upstream_ = nullptr;  // waiting for it, or the stream is open on it
  // The route speaks HTTP/1.1: the exchange in progress (instead of upstream_).
  H1UpstreamForH2* h1_ = nullptr;
  int32_t upstream_id_ = 0;
  std::string body_;  // request body received before the upstream stream opened
  std::unique_ptr<http::HeaderMap> trailers_;

  uint64_t received_ = 0;   // request body bytes received from the downstream
  uint64_t forwarded_ = 0;  // ... handed to the upstream session
  uint64_t consumed_ = 0;   // ... acknowledged to the downstream
  uint64_t response_forwarded_ = 0;  // response body bytes handed to the downstream session
  uint64_t response_consumed_ = 0;   // ... acknowledged to the upstream
  uint64_t deadline_ms_ = 0;         // response timeout (loop time); 0: none

  bool submitted_ = false;
  bool request_ended_ = false;
  bool request_trailers_sent_ = false;
  bool pending_head_ = false;
  bool response_started_ = false;
  bool response_ended_ = false;
  bool discard_ = false;  // answered or failed: nothing more goes either way
  bool retried_ = false;
  bool closed_ = false;
  bool expects_continue_ = false;  // Expect: 100-continue, on a request with a body
  bool continue_received_ = false;  // ... and the upstream's 100 came
};

// ---- the connection ----

bool H2DownstreamSession::accept(H2Worker& worker, ListenerContext& listener,
                                 AcceptSource from) {
  auto* session = new (std::nothrow) H2DownstreamSession(worker, listener);
  if (session == nullptr) {
    refuse(from);
    return false;
  }
  return session->open(from);
}

H2DownstreamSession* H2DownstreamSession::adopt(H2Worker& worker, ListenerContext& listener,
                                                DataPathSocket& socket, const PeerInfo& peer,
                                                std::string_view already_read) {
  auto* session = new (std::nothrow) H2DownstreamSession(worker, listener);
  if (session == nullptr) return nullptr;
  try {
    worker.sessions().insert(session);
    session->peer_ = peer;
  } catch (...) {
    delete session;
    return nullptr;
  }
  session->socket_ = &socket;
  session->own_socket_ = false;
  if (!session->start(already_read, false)) return session;  // closing; its socket events still come
  return session;
}

H2DownstreamSession::H2DownstreamSession(H2Worker& worker, ListenerContext& listener)
    : context_(worker.context()), worker_(worker), listener_(listener) {
  peer_.listener = listener.role;
}

H2DownstreamSession::~H2DownstreamSession() {
  context_.cancel(*this);
  if (flush_pending_) context_.forgetFlush(*this);
  worker_.sessions().erase(this);
  if (counted_) {
    DataPathCounters::add(context_.counters().connections_open[static_cast<size_t>(listener_.role)],
                          -1);
  }
}

bool H2DownstreamSession::open(const AcceptSource& from) noexcept {
  try {
    worker_.sessions().insert(this);
  } catch (...) {
    refuse(from);
    delete this;
    return false;
  }
  auto* socket = new (std::nothrow) DataPathSocket(context_, *this);
  if (socket == nullptr || socket->init() != 0) {
    if (socket != nullptr) socket->discard();
    refuse(from);
    delete this;
    return false;
  }
  socket_ = socket;
  if (socket->accept(from) != 0) {
    closeConnection();
    return false;
  }
  readPeerInfo(*socket, peer_);
  const auto role = static_cast<size_t>(listener_.role);
  DataPathCounters::add(context_.counters().sniffed[role][static_cast<size_t>(SniffedProtocol::kH2)]);
  return start({});
}

bool H2DownstreamSession::start(std::string_view already_read, bool count_connection) noexcept {
  if (count_connection) {
    countConnection();
  } else {
    counted_ = true;  // the session that accepted the connection counted it; it ends here
  }
  if (uv_timer_init(context_.loop(), &timer_) == 0) {
    timer_.data = this;
    deadline_.bind(&timer_, &H2DownstreamSession::onTimer);
    timer_open_ = true;
  }
  auto created = http::H2Session::create(http::H2Session::Kind::kServer, *this,
                                         worker_.downstreamSettings());
  if (!created.ok() || !timer_open_) {
    closeConnection();
    return false;
  }
  session_ = std::move(*created);
  updateIdle();
  if (own_socket_) socket_->startReading();
  scheduleFlush();  // our SETTINGS
  if (!already_read.empty()) receive(already_read);
  return !closed_;
}

void H2DownstreamSession::countConnection() noexcept {
  const auto role = static_cast<size_t>(listener_.role);
  DataPathCounters::add(context_.counters().connections_open[role], 1);
  DataPathCounters::add(context_.counters().connections_total[role]);
  counted_ = true;
}

H2DownstreamSession::Stream* H2DownstreamSession::find(int32_t id) noexcept {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

// ---- socket events ----

void H2DownstreamSession::onSocketData(DataPathSocket& /*socket*/,
                                       std::string_view data) noexcept {
  receive(data);
}

void H2DownstreamSession::receive(std::string_view data) noexcept {
  if (closed_ || !session_) return;
  receiving_ = true;
  const absl::Status status = session_->receive(data);
  receiving_ = false;
  std::vector<int32_t> starting;
  starting.swap(starting_);
  for (int32_t id : starting) {
    if (Stream* stream = find(id)) stream->start();
  }
  // A header block left open blocks the whole connection: it gets timeouts.request_header, as
  // an HTTP/1.1 request head does.
  if (!session_->receivingHeaderBlock()) {
    header_block_due_ms_ = 0;
  } else if (header_block_due_ms_ == 0) {
    header_block_due_ms_ =
        uv_now(context_.loop()) +
        static_cast<uint64_t>(context_.settings().timeouts.header_read.count());
    armDeadline(header_block_due_ms_);
  }
  updateIdle();
  (void)status;  // a failed session's GOAWAY goes out with the flush, then it closes
  scheduleFlush();
}

void H2DownstreamSession::onSocketEof(DataPathSocket& /*socket*/) noexcept {
  // The client is gone (HTTP/2 never half-closes a connection): its streams are reset.
  abortStreams();
  closeConnection();
}

void H2DownstreamSession::onSocketError(DataPathSocket& /*socket*/, int /*status*/) noexcept {
  abortStreams();
  closeConnection();
}

void H2DownstreamSession::onSocketWritable(DataPathSocket& /*socket*/) noexcept {
  scheduleFlush();
}

void H2DownstreamSession::onSocketClosed(DataPathSocket& socket) noexcept {
  if (&socket == socket_) socket_ = nullptr;
  if (closed_ && timer_open_) {
    closeConnection();  // the linger timer is no longer needed
    return;
  }
  maybeRetire();
}

// ---- session events ----

void H2DownstreamSession::onHeaders(int32_t id, http::H2Head& head) {
  DataPathCounters::add(context_.counters().requests_total[static_cast<size_t>(listener_.role)]);
  auto stream = std::make_unique<Stream>(*this, id, std::move(head));
  streams_[id] = std::move(stream);
  starting_.push_back(id);
  idle_at_ms_ = 0;
  linger_at_ms_ = 0;
}

void H2DownstreamSession::onRequestHeadersTooLarge(int32_t /*id*/) {
  // The codec answered 431: counted as the HTTP/1.1 parser's answer to a head over the limit.
  context_.counters().localReply(listener_.role, LocalReplyReason::kHeadersTooLarge);
}

void H2DownstreamSession::onData(int32_t id, std::string_view data) {
  if (Stream* stream = find(id)) {
    stream->onDownstreamData(data);
  } else {
    session_->consume(id, data.size());
  }
}

void H2DownstreamSession::onTrailers(int32_t id, http::HeaderMap& trailers) {
  if (Stream* stream = find(id)) stream->onDownstreamTrailers(trailers);
}

void H2DownstreamSession::onEndStream(int32_t id) {
  if (Stream* stream = find(id)) stream->onDownstreamEnd();
}

void H2DownstreamSession::onStreamClose(int32_t id, H2ErrorCode code, H2CloseCause cause) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  std::unique_ptr<Stream> stream = std::move(it->second);
  streams_.erase(it);
  unmarkResponding(*stream);
  starting_.erase(std::remove(starting_.begin(), starting_.end(), id), starting_.end());
  stream->onDownstreamClose(code, cause);
  finished_.push_back(std::move(stream));  // may be on the stack: freed on the next turn
  context_.post(*this);
  if (!receiving_) updateIdle();
}

void H2DownstreamSession::onGoaway(int32_t /*last_stream_id*/, H2ErrorCode /*code*/,
                                   std::string_view /*debug_data*/) {
  // The client is leaving: its open streams finish; the connection closes when they are done.
}

void H2DownstreamSession::onConnectionError(std::string_view /*reason*/) {
  // A flood or a protocol error: send() holds the GOAWAY; the flush writes it and closes.
}

// ---- frames out ----

void H2DownstreamSession::markResponding(Stream& stream) noexcept {
  if (stream.marked_responding) return;
  try {
    responding_.push_back(stream.id());
    stream.marked_responding = true;
  } catch (...) {
  }
}

void H2DownstreamSession::unmarkResponding(Stream& stream) noexcept {
  if (!stream.marked_responding) return;
  stream.marked_responding = false;
  // In flush()'s walk the id is in responding_walk_, where find() no longer finds the stream.
  const auto it = std::find(responding_.begin(), responding_.end(), stream.id());
  if (it == responding_.end()) return;
  *it = responding_.back();
  responding_.pop_back();
}

void H2DownstreamSession::scheduleFlush() noexcept {
  if (flush_pending_ || closed_) return;
  if (!context_.deferFlush(*this)) context_.post(*this);
  flush_pending_ = true;
}

void H2DownstreamSession::flushBatch() noexcept {
  if (!flush_pending_) return;
  flush_pending_ = false;
  flush();
}

void H2DownstreamSession::onTick() noexcept {
  finished_.clear();
  if (flush_pending_) {
    flush_pending_ = false;
    context_.forgetFlush(*this);
    flush();
  }
}

void H2DownstreamSession::flush() noexcept {
  if (closed_ || !session_ || socket_ == nullptr) return;
  // A slow client: frames wait in nghttp2 (bounded by the upstream windows) rather than in the
  // socket queue; the upstream is acknowledged only for what went out. A failed session yields
  // only its GOAWAY, which goes out whatever the queue holds: a flood from a client that does
  // not read is seen exactly when the queue is over the mark.
  if (!socket_->overHighWater() || session_->failed()) {
    out_.clear();
    (void)session_->send(out_);
    if (!out_.empty()) socket_->write(out_);
    if (out_.capacity() > 64 * 1024) std::string().swap(out_);
    if (closed_) return;
    if (!responding_.empty() && !walking_responding_) {
      // Streams marked again while the walk runs go into responding_ afresh.
      walking_responding_ = true;
      responding_walk_.swap(responding_);
      for (const int32_t id : responding_walk_) {
        Stream* stream = find(id);
        if (stream == nullptr) continue;
        const size_t pending = session_->pendingData(id);
        stream->marked_responding = false;
        if (pending > 0) markResponding(*stream);
        stream->onDownstreamSendProgress(pending);
      }
      responding_walk_.clear();
      walking_responding_ = false;
    }
  }
  if (ending_ || session_->failed() || session_->finished()) {
    if (!floods_counted_) {
      floods_counted_ = true;
      worker_.counters().add(worker_.counters().downstream, session_->counters());
    }
    abortStreams();
    closed_ = true;
    if (socket_ != nullptr && !socket_->closing()) {
      socket_->closeAfterFlush();
      // A client that never reads would keep what is queued forever: it gets the linger time
      // to take it, then the connection is cut.
      if (socket_ != nullptr && !socket_->closing() && timer_open_) {
        armDeadline(uv_now(context_.loop()) +
                    static_cast<uint64_t>(context_.settings().timeouts.linger.count()));
        return;
      }
    }
    closeConnection();
  }
}

// ---- deadlines ----

void H2DownstreamSession::armDeadline(uint64_t at_ms) noexcept {
  if (!timer_open_ || at_ms == 0) return;
  if (timer_due_ms_ != 0 && timer_due_ms_ <= at_ms && deadline_.armed()) return;
  const uint64_t now = uv_now(context_.loop());
  timer_due_ms_ = at_ms;
  deadline_.arm(at_ms > now ? at_ms - now : 0);
}

void H2DownstreamSession::onTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<H2DownstreamSession*>(timer->data);
  if (!self->deadline_.expired()) return;
  self->timer_due_ms_ = 0;
  self->context_.beginWriteBatch();
  self->onDeadline();
  self->context_.endWriteBatch();
}

void H2DownstreamSession::onDeadline() noexcept {
  if (closed_) {
    closeConnection();  // the linger after a failed session is over
    return;
  }
  const uint64_t now = uv_now(context_.loop());
  uint64_t next = 0;
  const auto consider = [&](uint64_t at) {
    if (at != 0 && (next == 0 || at < next)) next = at;
  };
  std::vector<Stream*> expired;
  for (auto& [id, stream] : streams_) {
    if (stream->deadline() != 0 && stream->deadline() <= now) {
      expired.push_back(stream.get());
    } else {
      consider(stream->deadline());
    }
  }
  std::vector<bool> client_stalled;
  client_stalled.reserve(expired.size());
  for (Stream* stream : expired) client_stalled.push_back(stream->waitingForRequestBody());
  for (size_t i = 0; i < expired.size(); ++i) expired[i]->onResponseTimeout(client_stalled[i]);
  if (header_block_due_ms_ != 0 && header_block_due_ms_ <= now) {
    header_block_due_ms_ = 0;
    context_.counters().timeout(DataPathTimeout::kHeaderRead);
    endConnection(true);
    return;
  }
  consider(header_block_due_ms_);
  if (linger_at_ms_ != 0 && linger_at_ms_ <= now && streams_.empty()) {
    linger_at_ms_ = 0;
    endConnection(false);
    return;
  }
  consider(linger_at_ms_);
  if (goaway_at_ms_ != 0 && goaway_at_ms_ <= now) {
    goaway_at_ms_ = 0;
    sendFinalGoaway();
  }
  consider(goaway_at_ms_);
  if (idle_at_ms_ != 0 && streams_.empty()) {
    const auto idle = static_cast<uint64_t>(context_.settings().timeouts.downstream_idle.count());
    if (idle_at_ms_ + idle <= now) {
      context_.counters().timeout(DataPathTimeout::kDownstreamIdle);
      idle_at_ms_ = 0;
      sendFinalGoaway();
    } else {
      consider(idle_at_ms_ + idle);
    }
  }
  consider(linger_at_ms_);
  if (next != 0) armDeadline(next);
}

void H2DownstreamSession::sendFinalGoaway() noexcept {
  session_->sendGoaway(H2ErrorCode::kNoError);
  final_goaway_ = true;
  lingerAfterGoaway();
  scheduleFlush();
}

void H2DownstreamSession::lingerAfterGoaway() noexcept {
  if (closed_ || !final_goaway_ || !streams_.empty() || linger_at_ms_ != 0) return;
  linger_at_ms_ = uv_now(context_.loop()) +
                  static_cast<uint64_t>(context_.settings().timeouts.linger.count());
  armDeadline(linger_at_ms_);
}

void H2DownstreamSession::endConnection(bool goaway) noexcept {
  if (closed_ || ending_ || !session_) return;
  ending_ = true;
  if (goaway) session_->sendGoaway(H2ErrorCode::kNoError);
  scheduleFlush();
}

void H2DownstreamSession::updateIdle() noexcept {
  lingerAfterGoaway();
  if (closed_ || !streams_.empty() || idle_at_ms_ != 0) return;
  idle_at_ms_ = uv_now(context_.loop());
  armDeadline(idle_at_ms_ +
              static_cast<uint64_t>(context_.settings().timeouts.downstream_idle.count()));
}

// ---- closing ----

void H2DownstreamSession::drain() noexcept {
  if (closed_ || draining_ || !session_) return;
  draining_ = true;
  if (streams_.empty()) {
    sendFinalGoaway();
  } else {
    session_->sendShutdownNotice();
    goaway_at_ms_ = uv_now(context_.loop()) + kDrainGoawayDelayMs;
    armDeadline(goaway_at_ms_);
  }
  scheduleFlush();
}

void H2DownstreamSession::forceClose() noexcept {
  context_.counters().timeout(DataPathTimeout::kDrain);
  abortStreams();
  closeConnection();
}

void H2DownstreamSession::abortStreams() noexcept {
  while (!streams_.empty()) {
    auto it = streams_.begin();
    std::unique_ptr<Stream> stream = std::move(it->second);
    streams_.erase(it);
    unmarkResponding(*stream);
    stream->onDownstreamClose(H2ErrorCode::kCancel, H2CloseCause::kResetByPeer);
    finished_.push_back(std::move(stream));
  }
  starting_.clear();
  context_.post(*this);
}

void H2DownstreamSession::closeConnection() noexcept {
  if (session_ && !floods_counted_) {
    floods_counted_ = true;
    worker_.counters().add(worker_.counters().downstream, session_->counters());
  }
  closed_ = true;
  if (socket_ != nullptr && !socket_->closing()) socket_->close();
  if (timer_open_) {
    deadline_.stop();
    timer_open_ = false;
    timer_closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* handle) {
      auto* self = static_cast<H2DownstreamSession*>(handle->data);
      self->timer_closing_ = false;
      self->maybeRetire();
    });
  }
  maybeRetire();
}

void H2DownstreamSession::maybeRetire() noexcept {
  if (!closed_ || retired_ || socket_ != nullptr || timer_open_ || timer_closing_) return;
  retired_ = true;
  context_.retire(this);
}

}  // namespace tracecar::proxy
