// DownstreamSession: the upstream side of an exchange (response relay, failures, tunnels).

#include <cstdio>
#include <string>

#include "proxy/downstream_session.h"
#include "proxy/http_semconv.h"
#include "proxy/upstream_pool.h"

namespace tracecar::proxy {
namespace {

struct FailureReply {
  int status;
  LocalReplyReason code;
  std::string_view reason;
};

FailureReply failureReply(UpstreamFailure failure) noexcept {
  return {semconv::localResponseStatus(failure), localReplyReasonOf(failure),
          semconv::failureReason(failure)};
}

void appendStatusLine(std::string& out, int status, std::string_view reason) {
  // The codec only passes three-digit status codes.
  const auto digit = [](int d) { return static_cast<char>('0' + d % 10); };
  const char line[] = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', digit(status / 100),
                       digit(status / 10), digit(status), ' '};
  out.append(line, sizeof line);
  out += reason;
  out += "\r\n";
}

}  // namespace

void DownstreamSession::releaseUpstream(bool reusable) noexcept {
  if (h2_upstream_ != nullptr) {
    // An HTTP/2 stream: ended quietly when complete, else reset; freed on the next turn (this
    // may run inside its callbacks).
    H2UpstreamForH1* exchange = h2_upstream_;
    h2_upstream_ = nullptr;
    if (exchange->retried()) ex_.stats.retried = true;
    exchange->release(reusable);
    context_.retire(exchange);
    if (timer_mode_ == TimerMode::kResponse) stopTimer();
  }
  UpstreamConnection* connection = upstream_;
  upstream_ = nullptr;
  if (connection != nullptr) context_.pool().release(connection, reusable);
}

void DownstreamSession::onUpstreamReady(UpstreamConnection& /*connection*/) noexcept {
  if (phase_ == Phase::kOpening && upstream_ != nullptr) {
    enterTunnel();
    return;
  }
  if (phase_ != Phase::kRequest || upstream_ == nullptr) return;
  if (ex_.terminate_connect) {
    ex_.awaiting_upstream = false;
    if (socket_ != nullptr) socket_->write("HTTP/1.1 200 Connection Established\r\n\r\n");
    ex_.stats.status = 200;
    ex_.response_started = true;
    notePeer(ex_.stats, upstream_->peerAddress(), upstream_->peerPort());
    // tracecar's own answer, once the connection is open: no HTTP was spoken to the upstream.
    observeOwnAnswer(observer_.get(), 200, "Connection Established", /*upgrade=*/true);
    enterTunnel();
    return;
  }
  sendRequestHead();
  if (ex_.awaiting_upstream) {
    ex_.awaiting_upstream = false;
    resumeParsing();
  }
}

void DownstreamSession::onH2UpstreamReady() noexcept {
  if (phase_ != Phase::kRequest || h2_upstream_ == nullptr) return;
  sendRequestHead();
  if (ex_.awaiting_upstream) {
    ex_.awaiting_upstream = false;
    resumeParsing();
  }
}

void DownstreamSession::onH2UpstreamResend(UpstreamFailure failure,
                                           http::HeaderMap& headers) noexcept {
  if (observer_ != nullptr) observer_->onResend(failure, ex_.stats, headers);
  forgetPeer(ex_.stats);  // the next attempt notes its own
}

void DownstreamSession::onH2UpstreamSubmitted(const H2UpstreamConnection& connection) noexcept {
  notePeer(ex_.stats, connection.peerAddress(), connection.peerPort());
}

void DownstreamSession::onUpstreamFailed(UpstreamFailure failure, bool retryable) noexcept {
  upstream_ = nullptr;
  releaseUpstream(false);  // an HTTP/2 stream that failed is over too
  if (phase_ == Phase::kOpening) {
    ex_.stats.upstream_failure = failure;
    refuseConnection(ConnectionRefusal::kUpstreamFailed);
    return;
  }
  if (phase_ == Phase::kTunnel) {
    // The upstream side of the tunnel broke: pass on what came, then close.
    ex_.stats.upstream_failure = failure;
    closeNow(true);
    return;
  }
  if (phase_ != Phase::kRequest) return;
  if (retryable && ex_.idempotent && !ex_.retried && ex_.head_sent && !ex_.body_started &&
      !ex_.response_started && !ex_.terminate_connect) {
    // A pooled connection the upstream had closed: nothing of the request is lost yet. The
    // upstream may still have acted on it, so only a method that may be repeated is sent again.
    ex_.retried = true;
    ex_.stats.retried = true;
    ex_.head_sent = false;
    DataPathCounters::add(context_.counters().upstream_retries);
    if (observer_ != nullptr) observer_->onResend(failure, ex_.stats, ex_.upstream_head);
    forgetPeer(ex_.stats);
    if (!ex_.awaiting_upstream) {
      ex_.awaiting_upstream = true;
      parser_.pause();
    }
    connectUpstream();
    return;
  }
  ex_.stats.upstream_failure = failure;
  if (observer_ != nullptr) observer_->onUpstreamFailure(failure);
  if (!ex_.response_started) {
    const FailureReply reply = failureReply(failure);
    // Out of descriptors, the client's connection is one to give back.
    sendLocalReply(reply.status, reply.reason, reply.code,
                   !ex_.request_complete || failure == UpstreamFailure::kFileDescriptors);
  } else {
    // The answer is cut short: closing tells the client so.
    ex_.stats.aborted = true;
    close_after_ = true;
  }
  if (!ex_.request_complete) parser_.pause();
  finishExchange();
}

void DownstreamSession::relayInterim(http::Http1Head& head) {
  // HTTP/1.0 clients never get interim answers (RFC 9110 section 15.2).
  if (!ex_.http11 || ex_.response_started || socket_ == nullptr) return;
  stripHopByHop(head.headers);
  head.headers.remove("content-length");  // never in a 1xx (RFC 9110 section 8.6)
  std::string out;
  appendStatusLine(out, head.status, head.reason);
  head.headers.serialize(out);
  out += "\r\n";
  socket_->write(out);
}

bool DownstreamSession::onUpstreamHead(http::Http1Head& head) {
  if (phase_ != Phase::kRequest) return false;
  const int status = head.status;
  if (status >= 100 && status < 200 && status != 101) {
    if (status == 100) ex_.continue_received = true;
    relayInterim(head);
    // The final head is still to come: a running response timeout counts again from here (an
    // HTTP/1.1 upstream's connection restarts its own).
    if (h2_upstream_ != nullptr && timer_mode_ == TimerMode::kResponse) armResponseTimer();
    return false;
  }
  if (timer_mode_ == TimerMode::kResponse) stopTimer();
  // A protocol switch nobody asked for, or to a protocol the client did not offer (RFC 9110
  // section 7.8): a failure of the upstream's, counted like the others.
  if (status == 101 &&
      (!ex_.upgrade_requested ||
       !upgradeOffered(ex_.upgrade_offer, head.headers.joined("upgrade")))) {
    releaseUpstream(false);
    DataPathCounters::add(context_.counters().upstream_failures);
    onUpstreamFailed(UpstreamFailure::kBadResponse, false);
    return true;
  }
  if (ex_.connect && status / 100 == 2) head.upgrade = true;
  const bool tunnel = status == 101 || (ex_.connect && status / 100 == 2);

  StreamStats& stats = ex_.stats;
  stats.status = status;
  stats.response_header_bytes = head.header_bytes;
  ex_.upstream_head.clear();  // no retry once an answer came
  if (observer_ != nullptr) observer_->onResponseHead(head);

  const std::string transfer_encoding = head.headers.joined("transfer-encoding");
  const bool no_body = tunnel || ex_.head_request || status == 204 || status == 304;
  const ResponseFraming framing =
      chooseResponseFraming(no_body, head.content_length, transfer_encoding, head.chunked,
                            ex_.http11, ex_.head_request);
  ex_.framing = framing.framing;
  ex_.tunnel_pending = tunnel;
  if (framing.close || !ex_.request_complete || context_.draining()) close_after_ = true;

  HopByHopOptions options;
  options.keep_upgrade = status == 101;
  stripHopByHop(head.headers, options);
  // Never in a 204 nor in a 2xx answer to CONNECT (RFC 9110 sections 8.6 and 9.3.6): an app that
  // sends one anyway must not make the client expect a body.
  // Nor in a 101 (section 8.6: no 1xx carries one).
  if (status == 204 || status == 101 || (ex_.connect && status / 100 == 2)) {
    head.headers.remove("content-length");
  }
  // The request head's buffer, emptied above (no retry once an answer came), serves the
  // response head.
  std::string& out = ex_.upstream_head;
  out.reserve(head.headers.byteSize() + head.reason.size() + 128);
  appendStatusLine(out, status, head.reason);
  head.headers.serialize(out);
  if (!framing.transfer_encoding.empty()) {
    out += "Transfer-Encoding: ";
    out += framing.transfer_encoding;
    out += "\r\n";
  }
  if (status == 101) {
    out += "Connection: upgrade\r\n";
  } else if (!tunnel && close_after_) {
    out += "Connection: close\r\n";
  } else if (!tunnel && !ex_.http11) {
    out += "Connection: keep-alive\r\n";
  }
  if (context_.settings().add_via) {
    out += ex_.h2_upstream ? "Via: 2 tracecar\r\n" : "Via: 1.1 tracecar\r\n";
  }
  out += "\r\n";
  if (socket_ != nullptr) socket_->write(out);
  out.clear();
  ex_.response_started = true;
  armH2BodyTimer();
  return ex_.head_request;
}

void DownstreamSession::onUpstreamBody(std::string_view data) {
  if (phase_ != Phase::kRequest || socket_ == nullptr) return;
  ex_.stats.response_body_bytes += data.size();
  switch (ex_.framing) {
    case BodyFraming::kChunked: {
      char size_line[24];
      const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
      socket_->write({std::string_view(size_line, static_cast<size_t>(n)), data, "\r\n"});
      break;
    }
    case BodyFraming::kLength:
    case BodyFraming::kClose:
      socket_->write(data);
      break;
    case BodyFraming::kNone:
      return;
  }
  if (socket_->overHighWater() && upstream_ != nullptr) upstream_->pauseReading();
  if (h2_upstream_ == nullptr) return;
  if (socket_->overHighWater()) {
    h2_upstream_->pauseReading();
    if (timer_mode_ == TimerMode::kResponse) stopTimer();  // the client is the slow one
  } else {
    armH2BodyTimer();  // only moves the deadline (DeadlineTimer)
  }
}

void DownstreamSession::onUpstreamTrailers(http::HeaderMap& trailers) {
  if (phase_ != Phase::kRequest || socket_ == nullptr) return;
  if (observer_ != nullptr) observer_->onResponseTrailers(trailers);
  if (ex_.framing != BodyFraming::kChunked) return;  // nowhere to put them
  stripTrailerFields(trailers);
  std::string out;
  appendLastChunk(out, &trailers);
  socket_->write(out);
  ex_.response_last_chunk = true;
}

void DownstreamSession::onUpstreamComplete() {
  if (phase_ != Phase::kRequest) return;
  if (ex_.tunnel_pending) {
    enterTunnel();
    return;
  }
  if (ex_.framing == BodyFraming::kChunked && !ex_.response_last_chunk && socket_ != nullptr) {
    socket_->write("0\r\n\r\n");
    ex_.response_last_chunk = true;
  }
  ex_.response_complete = true;
  ex_.stats.end_ns = uv_hrtime();
  releaseUpstream(ex_.request_complete);
  if (!ex_.request_complete) {
    // The answer came before the whole request: the rest of it is not read.
    close_after_ = true;
    parser_.pause();
  }
  finishExchange();
}

void DownstreamSession::onUpstreamWritable() noexcept {
  if (phase_ == Phase::kTunnel) {
    updateReading();
    return;
  }
  if (phase_ == Phase::kRequest && ex_.backpressure) {
    ex_.backpressure = false;
    // The client, held back until now, gets the whole timeout to send the rest.
    if (!ex_.response_started) armResponseTimer();
    resumeParsing();
  }
}

bool DownstreamSession::waitingForRequestBody() const noexcept {
  return phase_ == Phase::kRequest && (upstream_ != nullptr || h2_upstream_ != nullptr) &&
         ex_.head_sent && ex_.request_has_body && !ex_.request_complete &&
         !ex_.response_started && !ex_.awaiting_upstream && !ex_.backpressure &&
         (ex_.stats.request_body_bytes > 0 || !ex_.expects_continue || ex_.continue_received);
}

bool DownstreamSession::onRequestBodyStalled() noexcept {
  if (!waitingForRequestBody()) return false;
  // The timer that ran out (counted by the caller) is upstream_response's; the answer and its
  // reason say whose wait it was. The upstream's request is cut, so its connection (or stream)
  // goes, uncounted as a failure of the upstream's.
  releaseUpstream(false);
  reject({408, "request body timeout", LocalReplyReason::kRequestBodyTimeout}, true);
  return true;
}

// ---- tunnels ----

void DownstreamSession::enterTunnel() noexcept {
  if (upstream_ == nullptr) {
    closeNow(true);
    return;
  }
  phase_ = Phase::kTunnel;
  ex_.stats.tunnel = true;
  ex_.response_complete = true;
  if (!opaque_) DataPathCounters::add(context_.counters().tunnels);
  stopTimer();
  armTunnelIdle();
  parser_.pause();
  upstream_->enterTunnel();
  if (!input_.empty()) {
    // Bytes the client sent right after its request: the first of the tunnel.
    upstream_->write(input_);
    ex_.stats.tunnel_bytes_upstream += input_.size();
    countTunnelBytes(TunnelDirection::kToUpstream, input_.size());
    dropInput();
  }
  if (downstream_eof_) {
    tunnel_downstream_eof_ = true;
    upstream_->shutdownWrite();
  }
  updateReading();
}

void DownstreamSession::onUpstreamTunnelData(std::string_view data) noexcept {
  if (phase_ != Phase::kTunnel || socket_ == nullptr) return;
  socket_->write(data);
  ex_.stats.tunnel_bytes_downstream += data.size();
  countTunnelBytes(TunnelDirection::kToDownstream, data.size());
  if (socket_->overHighWater() && upstream_ != nullptr) upstream_->pauseReading();
}

void DownstreamSession::onUpstreamTunnelEof() noexcept {
  if (phase_ != Phase::kTunnel) return;
  tunnel_upstream_eof_ = true;
  if (socket_ != nullptr) socket_->shutdownWrite();
  maybeEndTunnel();
}

void DownstreamSession::maybeEndTunnel() noexcept {
  if (!tunnel_downstream_eof_ || !tunnel_upstream_eof_) return;
  // Both sides are done: let what is queued go out, then close both.
  if (upstream_ != nullptr) {
    UpstreamConnection* connection = upstream_;
    upstream_ = nullptr;
    connection->closeAfterFlush();
  }
  closeNow(true);
}

}  // namespace tracecar::proxy
