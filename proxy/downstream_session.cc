#include "proxy/downstream_session.h"

#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <new>
#include <utility>
#include <variant>

#include "http/tcp_address.h"
#include "http/token.h"
#include "proxy/h2_worker.h"
#include "proxy/protocol_translation.h"
#include "proxy/upstream_pool.h"

namespace tracecar::proxy {
namespace {


constexpr size_t kKeptHeadCapacity = 4096;

struct ErrorReply {
  int status;
  LocalReplyReason code;
};

ErrorReply parseErrorReply(http::Http1Error error) noexcept {
  switch (error) {
    case http::Http1Error::kHeadersTooLarge:
      return {431, LocalReplyReason::kHeadersTooLarge};
    case http::Http1Error::kTooManyHeaders:
      return {431, LocalReplyReason::kTooManyHeaders};
    case http::Http1Error::kUriTooLong:
      return {414, LocalReplyReason::kUriTooLong};
    default:
      return {400, LocalReplyReason::kBadRequest};
  }
}

}  // namespace

void refuse(const AcceptSource& from) noexcept {
  if (from.server == nullptr) {
    ::close(from.fd);
    return;
  }
  uv_stream_t* server = from.server;
  auto* tcp = new (std::nothrow) uv_tcp_t;
  if (tcp == nullptr) return;
  if (uv_tcp_init(server->loop, tcp) != 0) {
    delete tcp;
    return;
  }
  uv_accept(server, reinterpret_cast<uv_stream_t*>(tcp));
  uv_close(reinterpret_cast<uv_handle_t*>(tcp),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_tcp_t*>(handle); });
}

void readPeerInfo(DataPathSocket& socket, PeerInfo& peer) noexcept {
  try {
    sockaddr_storage address{};
    int length = sizeof address;
    if (uv_tcp_getpeername(socket.tcp(), reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      http::IpPort where = http::ipPort(address);
      peer.address = std::move(where.ip);
      peer.port = where.port;
    }
    length = sizeof address;
    if (uv_tcp_getsockname(socket.tcp(), reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      http::IpPort where = http::ipPort(address);
      peer.local_address = std::move(where.ip);
      peer.local_port = where.port;
    }
  } catch (...) {
    // Peer details only inform observers.
  }
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(socket.tcp()), &fd) == 0) peer.fd = fd;
}

bool DownstreamSession::accept(WorkerContext& context, ListenerContext& listener,
                               AcceptSource from) {
  auto* session = new (std::nothrow) DownstreamSession(context, listener);
  if (session == nullptr) {
    refuse(from);
    return false;
  }
  return session->open(from);
}

DownstreamSession::DownstreamSession(WorkerContext& context, ListenerContext& listener)
    : context_(context),
      listener_(listener),
      parser_(http::Http1Parser::Kind::kRequest, *this, context.settings().request_limits) {
  peer_.listener = listener.role;
}

DownstreamSession::~DownstreamSession() {
  if (h2_upstream_ != nullptr) {
    // Not inside one of its callbacks here: it can go at once.
    h2_upstream_->release(false);
    delete h2_upstream_;
  }
  context_.cancel(*this);
  context_.sessions().erase(this);
  context_.counters().buffered(-static_cast<int64_t>(input_.size()));
  if (counted_) {
    DataPathCounters::add(context_.counters().connections_open[static_cast<size_t>(listener_.role)],
                          -1);
  }
}

bool DownstreamSession::open(const AcceptSource& from) noexcept {
  try {
    context_.sessions().insert(this);
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
  if (uv_timer_init(context_.loop(), &timer_) == 0) {
    timer_.data = this;
    deadline_.bind(&timer_, &DownstreamSession::onTimer);
    timer_open_ = true;
  }
  if (socket->accept(from) != 0 || !timer_open_) {
    closeNow(false);
    return false;
  }
  readPeerInfo(*socket, peer_);
  const int fd = peer_.fd;

  const auto role = static_cast<size_t>(listener_.role);
  DataPathCounters::add(context_.counters().connections_open[role], 1);
  DataPathCounters::add(context_.counters().connections_total[role]);
  counted_ = true;
  if (!lookUpOriginalDestination(fd)) return true;
  startSniffing();
  return true;
}

// ---- the downstream socket ----

void DownstreamSession::onSocketData(DataPathSocket& /*socket*/, std::string_view data) noexcept {
  switch (phase_) {
    case Phase::kSniff:
      onSniffData(data);
      return;
    case Phase::kOpening:
      // The tunnel's first bytes, sent once its upstream is connected.
      drive(data);
      updateReading();
      return;
    case Phase::kTunnel:
      if (upstream_ == nullptr) return;
      upstream_->write(data);
      ex_.stats.tunnel_bytes_upstream += data.size();
      countTunnelBytes(TunnelDirection::kToUpstream, data.size());
      if (upstream_->overHighWater()) updateReading();
      return;
    case Phase::kClosing:
    case Phase::kClosed:
      return;  // lingering: what the peer still sends is dropped
    case Phase::kIdle:
      if (timer_mode_ != TimerMode::kHeader) {
        request_start_ns_ = uv_hrtime();
        startTimer(TimerMode::kHeader, context_.settings().timeouts.header_read);
      }
      break;
    case Phase::kRequest:
      break;
  }
  drive(data);
  updateReading();
}

void DownstreamSession::onSocketEof(DataPathSocket& /*socket*/) noexcept {
  downstream_eof_ = true;
  switch (phase_) {
    case Phase::kSniff:
      onSniffEof();
      return;
    case Phase::kOpening:
      return;  // the tunnel passes the FIN on once open
    case Phase::kClosing:
      closeNow(true);
      return;
    case Phase::kIdle:
      // Requests already read are still answered (the next turn parses them).
      if (input_.empty() || !parser_.paused()) closeNow(true);
      return;
    case Phase::kTunnel:
      tunnel_downstream_eof_ = true;
      if (upstream_ != nullptr) upstream_->shutdownWrite();
      maybeEndTunnel();
      return;
    case Phase::kRequest:
      // A half-closed client still gets its answers, unless its request was cut short: that
      // shows once the parser has taken every byte and still waits for more.
      if (requestTruncated()) {
        ex_.stats.aborted = true;
        closeNow(false);
      }
      return;
    case Phase::kClosed:
      return;
  }
}

void DownstreamSession::onSocketError(DataPathSocket& /*socket*/, int /*status*/) noexcept {
  if (phase_ == Phase::kClosed) return;
  ex_.stats.aborted = true;
  closeNow(false);
}

void DownstreamSession::onSocketWritable(DataPathSocket& /*socket*/) noexcept {
  switch (phase_) {
    case Phase::kRequest:
    case Phase::kTunnel:
      if (upstream_ != nullptr) upstream_->resumeReading();
      if (h2_upstream_ != nullptr) {
        h2_upstream_->resumeReading();
        armH2BodyTimer();
      }
      return;
    case Phase::kClosing:
      if (socket_ != nullptr && socket_->buffered() == 0) {
        startTimer(TimerMode::kClosing, context_.settings().timeouts.linger);
      }
      return;
    default:
      return;
  }
}

void DownstreamSession::onSocketClosed(DataPathSocket& /*socket*/) noexcept {
  socket_ = nullptr;
  if (phase_ != Phase::kClosed) closeNow(false);
  maybeRetire();
}

// ---- parsing requests ----

void DownstreamSession::drive(std::string_view fresh) noexcept {
  const bool holding = phase_ == Phase::kSniff || phase_ == Phase::kOpening;
  if (phase_ != Phase::kIdle && phase_ != Phase::kRequest && !holding) return;
  const bool from_input = !input_.empty() || driving_ || holding;
  if (from_input && !fresh.empty()) {
    try {
      input_.append(fresh);
    } catch (...) {
      ex_.stats.aborted = true;
      closeNow(false);
      return;
    }
    context_.counters().buffered(static_cast<int64_t>(fresh.size()));
  }
  if (driving_ || holding) return;
  const std::string_view data = from_input ? std::string_view(input_) : fresh;
  size_t consumed = 0;
  driving_ = true;
  for (;;) {
    consumed += parser_.parse(data.substr(consumed));
    if (parser_.error() != http::Http1Error::kNone) break;
    if (phase_ != Phase::kIdle && phase_ != Phase::kRequest) break;
    if (parser_.paused() || parser_.upgraded() || consumed == data.size()) break;
  }
  driving_ = false;
  if (parser_.error() != http::Http1Error::kNone &&
      (phase_ == Phase::kIdle || phase_ == Phase::kRequest)) {
    drop_input_ = false;
    dropInput();
    onParseError();
    return;
  }
  const bool keep = !drop_input_ && (phase_ == Phase::kIdle || phase_ == Phase::kRequest);
  drop_input_ = false;
  keepInput(keep ? data.substr(consumed) : std::string_view(), from_input);
  if (requestTruncated()) {
    ex_.stats.aborted = true;
    closeNow(false);
  }
}

bool DownstreamSession::requestTruncated() const noexcept {
  return downstream_eof_ && phase_ == Phase::kRequest && !ex_.request_complete &&
         !parser_.paused() && input_.empty();
}

void DownstreamSession::resumeParsing() noexcept {
  if (phase_ != Phase::kRequest) return;
  if (ex_.awaiting_upstream || ex_.backpressure || ex_.request_complete) return;
  parseBuffered();
}

void DownstreamSession::parseBuffered() noexcept {
  parser_.resume();
  drive({});
  // A client that closed its side has no request left to send.
  if (downstream_eof_ && phase_ == Phase::kIdle) {
    closeNow(true);
    return;
  }
  updateReading();
}

void DownstreamSession::onParseError() noexcept {
  const http::Http1Error error = parser_.error();
  const ErrorReply reply = parseErrorReply(error);
  if (phase_ == Phase::kRequest) {
    // The request broke after its head was forwarded (bad chunk framing, trailers too large).
    releaseUpstream(false);
    if (error == http::Http1Error::kUnexpectedEof) {
      ex_.stats.aborted = true;
      closeNow(false);
      return;
    }
    if (!ex_.response_started) {
      sendLocalReply(reply.status, parser_.errorReason(), reply.code, true);
    } else {
      ex_.stats.aborted = true;
      close_after_ = true;
    }
    finishExchange();
    return;
  }
  if (error == http::Http1Error::kUnexpectedEof) {
    closeNow(true);
    return;
  }
  std::string out;
  try {
    appendLocalReply(out, reply.status, parser_.errorReason(), true, false);
  } catch (...) {
    closeNow(false);
    return;
  }
  context_.counters().localReply(listener_.role, reply.code);
  if (socket_ != nullptr) socket_->write(out);
  closeGracefully();
}

bool DownstreamSession::onHead(http::Http1Head& head) {
  startExchange(head);
  return false;
}

void DownstreamSession::startExchange(http::Http1Head& head) noexcept {
  stopTimer();
  phase_ = Phase::kRequest;
  std::string head_buffer = std::move(ex_.upstream_head);  // its capacity serves the next head
  ex_ = Exchange{};
  ex_.upstream_head = std::move(head_buffer);
  ex_.upstream_head.clear();
  StreamStats& stats = ex_.stats;
  stats.listener = listener_.role;
  stats.start_ns = request_start_ns_ != 0 ? request_start_ns_ : uv_hrtime();
  request_start_ns_ = 0;
  stats.request_header_bytes = head.header_bytes;
  DataPathCounters::add(
      context_.counters().requests_total[static_cast<size_t>(listener_.role)]);

  ex_.head_request = head.method == "HEAD";
  ex_.idempotent = http::isIdempotentMethod(head.method);
  ex_.connect = head.method == "CONNECT";
  ex_.http11 = head.version_minor >= 1;
  // RFC 9110 section 7.8: an Upgrade in an HTTP/1.0 request is ignored (it goes no further).
  ex_.upgrade_requested = head.upgrade && !ex_.connect && ex_.http11;
  if (ex_.upgrade_requested) ex_.upgrade_offer = head.headers.joined("upgrade");
  ex_.request_chunked = head.chunked;
  ex_.request_has_body = head.chunked || head.content_length.value_or(0) > 0;
  ex_.expects_continue =
      ex_.http11 && ex_.request_has_body && head.headers.hasToken("expect", "100-continue");
  if (!head.keep_alive || context_.draining()) close_after_ = true;

  auto badRequest = [this](std::string_view reason) {
    reject({400, std::string(reason), LocalReplyReason::kBadRequest}, true);
  };
  http::H2Head h2_head;  // the head when the request goes upstream as HTTP/2
  try {
    // What the codec leaves to its user (RFC 9112 section 3.2): malformed, so the connection
    // closes after the answer.
    const size_t hosts = head.headers.count("host");
    if (hosts > 1) return badRequest("more than one Host header");
    if (hosts == 0 && ex_.http11) return badRequest("missing Host header");
    if (hosts == 1 && !isValidHost(*head.headers.get("host"))) {
      return badRequest("invalid Host header");
    }
    // RFC 9110 section 9.3.6: a CONNECT request has no content. A length or a coding would
    // leave the upstream waiting for bytes that tracecar takes for the tunnel, or for the
    // next request when the CONNECT is refused: two readings of one message.
    if (ex_.connect &&
        (head.content_length.value_or(0) > 0 || head.headers.count("transfer-encoding") > 0)) {
      return badRequest("CONNECT with a body");
    }
    std::optional<RequestTargetParts> parts = parseRequestTarget(head.method, head.target);
    if (!parts) return badRequest("invalid request target");

    // Hop-by-hop fields go before anyone looks at the request. The client addressed tracecar
    // itself as its proxy when it used absolute-form or CONNECT on the outbound listener:
    // Proxy-Authorization was meant for tracecar, which checks none, and must not leak on.
    const std::string transfer_encoding = head.headers.joined("transfer-encoding");
    HopByHopOptions options;
    options.keep_upgrade = ex_.upgrade_requested;
    options.keep_proxy_authorization = !(listener_.role == ListenerRole::kOutbound &&
                                         parts->form != RequestTargetForm::kOrigin &&
                                         !peer_.redirected);
    ex_.te_trailers = stripHopByHop(head.headers, options).te_trailers;
    if (!ex_.http11) dropContinueExpectation(head.headers);

    if (listener_.observers != nullptr) observer_ = listener_.observers->create(listener_.role);
    if (observer_ != nullptr) {
      if (std::optional<LocalReply> reply = observer_->onRequestHead(head, peer_)) {
        return reject(*reply);
      }
      parts = parseRequestTarget(head.method, head.target);  // the observer may have changed it
      if (!parts) return badRequest("invalid request target");
    }
    if (applyMaxForwards(head.method, head.headers) == MaxForwardsStep::kAnswer) {
      return answerAsLastHop(head);
    }

    std::variant<UpstreamRoute, LocalReply> choice =
        listener_.selector->select(head, *parts, peer_);
    if (auto* reply = std::get_if<LocalReply>(&choice)) {
      noteSelectorRefusal(*reply, ex_.stats, observer_.get());
      return reject(*reply);
    }
    UpstreamRoute& route = std::get<UpstreamRoute>(choice);
    ex_.target = std::move(route.target);
    ex_.stats.upstream_tls = ex_.target.tls != nullptr;
    if (observer_ != nullptr && hosts == 0 && parts->form == RequestTargetForm::kOrigin) {
      observer_->onUpstreamChosen(ex_.target.key());
    }
    ex_.terminate_connect = route.terminate_connect && ex_.connect;
    ex_.preserve_target = route.preserve_target;
    // Protocol switches and tunnels stay HTTP/1.1 whatever the route says; so does everything
    // on a worker without an HTTP/2 data path.
    ex_.h2_upstream = route.protocol == UpstreamProtocol::kHttp2 && !ex_.connect &&
                      !ex_.upgrade_requested && context_.h2() != nullptr;
    if (ex_.h2_upstream) {
      if (context_.settings().add_via) head.headers.add("via", "1.1 tracecar");
      h2_head = h2RequestFromH1(head, *parts, ex_.te_trailers, ex_.target.key());
      if (ex_.stats.upstream_tls) h2_head.scheme = "https";
    } else if (!ex_.terminate_connect) {
      buildUpstreamHead(head, *parts, transfer_encoding, hosts == 1);
    }
  } catch (...) {
    return reject({500, "out of memory", LocalReplyReason::kObserver});
  }
  if (ex_.h2_upstream) {
    connectH2Upstream(std::move(h2_head));
    return;
  }
  connectUpstream();
}

bool DownstreamSession::buildUpstreamHead(http::Http1Head& head, const RequestTargetParts& target,
                                          const std::string& transfer_encoding, bool had_host) {
  std::string& out = ex_.upstream_head;
  out.clear();
  const bool absolute = target.form == RequestTargetForm::kAbsolute && !ex_.preserve_target;
  if (absolute) {
    head.headers.set("Host", target.authority);
  } else if (!had_host) {
    head.headers.set("Host", ex_.target.key());  // HTTP/1.0 without Host: HTTP/1.1 needs one
  }
  out.reserve(head.target.size() + head.headers.byteSize() + 128);
  out += head.method;
  out += ' ';
  if (absolute) {
    std::string_view path = target.path.substr(0, target.path.find('#'));
    if (path.empty()) {
      out += head.method == "OPTIONS" ? "*" : "/";
    } else {
      if (path.front() != '/') out += '/';
      out += path;
    }
  } else {
    out += head.target;
  }
  out += " HTTP/1.1\r\n";
  head.headers.serialize(out);
  if (ex_.request_chunked) {
    out += "Transfer-Encoding: ";
    out += transfer_encoding;
    out += "\r\n";
  }
  if (ex_.te_trailers) out += "TE: trailers\r\n";
  if (ex_.upgrade_requested && ex_.te_trailers) {
    out += "Connection: upgrade, te\r\n";
  } else if (ex_.upgrade_requested) {
    out += "Connection: upgrade\r\n";
  } else if (ex_.te_trailers) {
    out += "Connection: te\r\n";
  }
  if (context_.settings().add_via) out += "Via: 1.1 tracecar\r\n";
  out += "\r\n";
  return true;
}

void DownstreamSession::connectUpstream() noexcept {
  upstream_ = context_.pool().acquire(ex_.target, *this, ex_.terminate_connect || ex_.retried);
  if (upstream_ == nullptr) {
    reject({502, "cannot open an upstream connection", LocalReplyReason::kUpstreamRefused});
    return;
  }
  if (!upstream_->ready()) {
    ex_.awaiting_upstream = true;
    parser_.pause();
    return;
  }
  ex_.stats.upstream_reused = upstream_->reused();
  sendRequestHead();
}

void DownstreamSession::connectH2Upstream(http::H2Head&& head) noexcept {
  auto* exchange = new (std::nothrow) H2UpstreamForH1(context_, context_.h2()->pool(), *this);
  if (exchange == nullptr || !exchange->start(ex_.target, std::move(head))) {
    delete exchange;  // nothing was registered anywhere
    reject({502, "cannot open an upstream connection", LocalReplyReason::kUpstreamRefused});
    return;
  }
  h2_upstream_ = exchange;
  ex_.stats.upstream_reused = exchange->reused();
  armResponseTimer();  // also answers a request the pool could not queue
  if (!exchange->ready()) {
    ex_.awaiting_upstream = true;
    parser_.pause();
    return;
  }
  sendRequestHead();
}

void DownstreamSession::sendRequestHead() noexcept {
  if (h2_upstream_ != nullptr) {
    ex_.head_sent = true;
    armResponseTimer();
    if (!h2_upstream_->sendHead(!ex_.request_has_body)) {
      h2_upstream_->fail(UpstreamFailure::kConnectionReset);
    }
    return;
  }
  notePeer(ex_.stats, upstream_->peerAddress(), upstream_->peerPort());
  upstream_->write(ex_.upstream_head);
  ex_.head_sent = true;
  upstream_->armResponseTimer();
  if (ex_.request_complete) upstream_->requestSent();  // a retry, on a fresh connection
}

void DownstreamSession::armH2BodyTimer() noexcept {
  if (h2_upstream_ == nullptr || !ex_.response_started || ex_.response_complete ||
      !ex_.request_complete || ex_.tunnel_pending || ex_.framing == BodyFraming::kNone ||
      socket_ == nullptr || socket_->overHighWater()) {
    return;
  }
  startTimer(TimerMode::kResponse, context_.settings().timeouts.upstream_response);
}

void DownstreamSession::armResponseTimer() noexcept {
  if (h2_upstream_ != nullptr) {
    startTimer(TimerMode::kResponse, context_.settings().timeouts.upstream_response);
  } else if (upstream_ != nullptr) {
    upstream_->armResponseTimer();
  }
}

void DownstreamSession::reject(const LocalReply& reply, bool close) noexcept {
  // A request with a body, or one that asked to switch protocols, is not read further.
  close = close || ex_.request_has_body || ex_.connect || ex_.upgrade_requested;
  sendLocalReply(reply.status, reply.reason, reply.code, close);
  endAnsweredExchange();
}

void DownstreamSession::endAnsweredExchange() noexcept {
  if (close_after_) {
    parser_.pause();
    finishExchange();
  }
  // Otherwise the request (no body) completes in this same parse and onMessageComplete ends
  // the exchange.
}

void DownstreamSession::answerAsLastHop(const http::Http1Head& head) noexcept {
  // A request with a body, or one that asked to switch protocols, is not read further.
  if (ex_.request_has_body || ex_.upgrade_requested) close_after_ = true;
  std::string out;
  try {
    appendLastHopAnswer(out, lastHopAnswer(head), close_after_);
  } catch (...) {
    return reject({500, "out of memory", LocalReplyReason::kObserver});
  }
  ex_.stats.status = 200;
  observeOwnAnswer(observer_.get(), 200);
  if (socket_ != nullptr) socket_->write(out);
  ex_.response_started = true;
  ex_.response_complete = true;
  endAnsweredExchange();
}

void DownstreamSession::sendLocalReply(int status, std::string_view reason, LocalReplyReason code,
                                       bool close) noexcept {
  if (close) close_after_ = true;
  std::string out;
  try {
    appendLocalReply(out, status, reason, close_after_, ex_.head_request);
  } catch (...) {
    close_after_ = true;
    out.clear();
  }
  // Counted before the answer leaves, so whoever reads the answer sees the count.
  context_.counters().localReply(listener_.role, code);
  if (socket_ != nullptr) socket_->write(out);
  ex_.stats.local_reply = true;
  ex_.stats.local_reply_reason = code;
  ex_.stats.status = status;
  ex_.response_started = true;
  ex_.response_complete = true;
}

void DownstreamSession::onBody(std::string_view data) {
  if (phase_ != Phase::kRequest) return;
  ex_.stats.request_body_bytes += data.size();
  if (h2_upstream_ != nullptr && ex_.head_sent) {
    h2_upstream_->sendBody(data);
    ex_.body_started = true;
    if (!ex_.response_started) armResponseTimer();
    if (h2_upstream_ != nullptr && h2_upstream_->overHighWater()) {
      ex_.backpressure = true;
      parser_.pause();
    }
    return;
  }
  if (upstream_ == nullptr || !ex_.head_sent) return;
  if (ex_.request_chunked) {
    char size_line[24];
    const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
    upstream_->write({std::string_view(size_line, static_cast<size_t>(n)), data, "\r\n"});
  } else {
    upstream_->write(data);
  }
  ex_.body_started = true;
  if (!ex_.response_started) upstream_->armResponseTimer();
  if (upstream_->overHighWater()) {
    ex_.backpressure = true;
    parser_.pause();
  }
}

void DownstreamSession::onTrailers(http::HeaderMap& trailers) {
  stripTrailerFields(trailers);
  if (phase_ == Phase::kRequest && h2_upstream_ != nullptr && ex_.head_sent) {
    ex_.request_last_chunk = true;
    ex_.body_started = true;
    h2_upstream_->sendTrailers(trailers);
    return;
  }
  if (phase_ != Phase::kRequest || upstream_ == nullptr || !ex_.head_sent) return;
  if (!ex_.request_chunked) return;
  std::string out;
  appendLastChunk(out, &trailers);
  upstream_->write(out);
  ex_.request_last_chunk = true;
  ex_.body_started = true;
}

void DownstreamSession::onMessageComplete() {
  parser_.pause();  // one request at a time: the next waits for this one's answer
  // The parser reads no more of this connection (a Connection: close in the trailers, which the
  // head could not tell): the answer is the last.
  if (parser_.closed()) close_after_ = true;
  if (phase_ != Phase::kRequest) return;
  ex_.request_complete = true;
  if (upstream_ != nullptr && ex_.head_sent && ex_.request_chunked && !ex_.request_last_chunk) {
    upstream_->write("0\r\n\r\n");
    ex_.request_last_chunk = true;
    ex_.body_started = true;
  }
  if (h2_upstream_ != nullptr && ex_.head_sent && !ex_.request_last_chunk) {
    ex_.request_last_chunk = true;
    h2_upstream_->endRequest();
  }
  if (upstream_ != nullptr && ex_.head_sent) upstream_->requestSent();
  if (ex_.response_complete) {
    finishExchange();
    return;
  }
  if ((upstream_ != nullptr || h2_upstream_ != nullptr) && ex_.head_sent && !ex_.response_started) {
    armResponseTimer();
  }
  armH2BodyTimer();
}

void DownstreamSession::finishExchange() noexcept {
  if (ex_.finished) return;
  ex_.finished = true;
  ex_.backpressure = false;
  if (ex_.stats.end_ns == 0) ex_.stats.end_ns = uv_hrtime();
  if (upstream_ != nullptr || h2_upstream_ != nullptr) {
    releaseUpstream(ex_.request_complete && ex_.response_complete);
  }
  if (observer_ != nullptr) {
    std::unique_ptr<StreamObserver> observer = std::move(observer_);
    observer->onComplete(ex_.stats);
  }
  // A small head buffer is kept for the next request; a big one goes.
  if (ex_.upstream_head.capacity() > kKeptHeadCapacity) std::string().swap(ex_.upstream_head);
  if (phase_ == Phase::kRequest) phase_ = Phase::kIdle;
  if (phase_ != Phase::kIdle) return;
  if (close_after_ || context_.draining() || (downstream_eof_ && input_.empty())) {
    closeGracefully();
    return;
  }
  // The next pipelined request, on the next loop turn (never inside the upstream's callbacks).
  context_.post(*this);
}

void DownstreamSession::onTick() noexcept {
  if (phase_ != Phase::kIdle) return;
  if (parser_.upgraded()) parser_.resumeAfterUpgrade();  // the upgrade was refused
  if (!input_.empty() || parser_.inMessage()) {
    request_start_ns_ = uv_hrtime();
    startTimer(TimerMode::kHeader, context_.settings().timeouts.header_read);
  } else {
    startTimer(TimerMode::kIdle, context_.settings().timeouts.downstream_idle);
  }
  parseBuffered();
}

}  // namespace tracecar::proxy
