#include "proxy/upstream_connection.h"

#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

#include "http/tcp_address.h"
#include "proxy/upstream_pool.h"

namespace tracecar::proxy {

UpstreamConnection::UpstreamConnection(WorkerContext& context, UpstreamPool& pool,
                                       UpstreamTarget target)
    : context_(context),
      pool_(pool),
      target_(std::move(target)),
      pool_key_(target_.poolKey()),
      parser_(http::Http1Parser::Kind::kResponse, *this, context.settings().response_limits) {}

UpstreamConnection::~UpstreamConnection() {
  context_.cancel(*this);
  context_.counters().buffered(-static_cast<int64_t>(input_.size()));
}

// ---- connecting ----

void UpstreamConnection::start(UpstreamConnectionCallbacks& client) noexcept {
  client_ = &client;
  state_ = State::kResolving;
  if (uv_timer_init(context_.loop(), &timer_) == 0) {
    timer_.data = this;
    deadline_.bind(&timer_, &UpstreamConnection::onTimer);
    timer_open_ = true;
    startTimer(TimerMode::kConnect,
               static_cast<uint64_t>(context_.settings().timeouts.upstream_connect.count()));
  }
  sockaddr_storage address{};
  if (uv_ip4_addr(target_.host.c_str(), target_.port,
                  reinterpret_cast<sockaddr_in*>(&address)) == 0 ||
      uv_ip6_addr(target_.host.c_str(), target_.port,
                  reinterpret_cast<sockaddr_in6*>(&address)) == 0) {
    try {
      addresses_.push_back(address);
    } catch (...) {
      pendingFail(UpstreamFailure::kOther);
      return;
    }
    connectNext();
    return;
  }
  dns_req_.data = this;
  if (const int rc = http::resolveTcp(context_.loop(), &dns_req_, &UpstreamConnection::onResolved,
                                      target_.host, target_.port);
      rc < 0) {
    pendingFail(resolveFailureOf(rc));
    return;
  }
  dns_pending_ = true;
}

void UpstreamConnection::onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) noexcept {
  auto* self = static_cast<UpstreamConnection*>(req->data);
  self->dns_pending_ = false;
  if (self->state_ == State::kClosed) {
    if (result != nullptr) uv_freeaddrinfo(result);
    self->maybeRetire();
    return;
  }
  if (status < 0) {
    self->fail(resolveFailureOf(status));
    return;
  }
  try {
    http::appendAddresses(result, self->addresses_);
  } catch (...) {
    // Try the addresses copied so far.
  }
  uv_freeaddrinfo(result);
  if (self->addresses_.empty()) {
    self->fail(UpstreamFailure::kResolveFailed);
    return;
  }
  self->connectNext();
}

void UpstreamConnection::connectNext() noexcept {
  state_ = State::kConnecting;
  // Never connected to: a connection to one of tracecar's own listeners would come back to it.
  const bool loop = next_address_ == 0 && context_.dropOwnListeners(addresses_);
  while (next_address_ < addresses_.size()) {
    const sockaddr_storage& address = addresses_[next_address_++];
    auto* socket = new (std::nothrow) DataPathSocket(context_, *this);
    if (socket == nullptr) break;
    if (const int rc = socket->init(); rc < 0) {
      last_connect_error_ = rc;
      socket->discard();
      continue;
    }
    ++open_sockets_;
    socket_ = socket;
    const int rc = socket->connect(reinterpret_cast<const sockaddr*>(&address));
    if (rc == 0) return;
    last_connect_error_ = rc;
    socket_ = nullptr;
    socket->close();
  }
  pendingFail(loop ? UpstreamFailure::kLoopDetected : connectFailureOf(last_connect_error_));
}

void UpstreamConnection::onSocketConnected(DataPathSocket& socket, int status) noexcept {
  if (&socket != socket_ || state_ != State::kConnecting) return;
  if (status < 0) {
    last_connect_error_ = status;
    socket_ = nullptr;
    socket.close();
    connectNext();
    return;
  }
  stopTimer();
  state_ = State::kActive;
  sockaddr_storage peer{};
  int length = sizeof peer;
  if (uv_tcp_getpeername(socket.tcp(), reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
    http::IpPort where = http::ipPort(peer);
    peer_address_ = std::move(where.ip);
    peer_port_ = where.port;
  }
  DataPathCounters::add(context_.counters().upstream_connects);
  if (target_.tls) {
    // TLS origination: the request waits in the session until the handshake is done.
    std::unique_ptr<http::TlsSession> session = target_.newTlsSession("http/1.1");
    if (session == nullptr) {
      fail(UpstreamFailure::kOther);
      return;
    }
    socket.startTls(std::move(session), TlsEnd::kUpstream);
  }
  updateReading();
  if (client_ != nullptr) client_->onUpstreamReady(*this);
}

// ---- the exchange ----

void UpstreamConnection::write(std::string_view data) noexcept {
  if (socket_ == nullptr || write_failed_) return;
  if (state_ != State::kActive && state_ != State::kTunnel) return;
  socket_->write(data);
}

void UpstreamConnection::write(std::initializer_list<std::string_view> parts) noexcept {
  if (socket_ == nullptr || write_failed_) return;
  if (state_ != State::kActive && state_ != State::kTunnel) return;
  socket_->write(parts);
}

void UpstreamConnection::closeAfterFlush() noexcept { close(true); }

bool UpstreamConnection::overHighWater() const noexcept {
  return socket_ != nullptr && socket_->overHighWater();
}

void UpstreamConnection::pauseReading() noexcept {
  if (paused_by_client_) return;
  paused_by_client_ = true;
  if (in_body_) stopTimer();  // the upstream is not the one that is slow
  if (state_ == State::kActive) parser_.pause();
  if (!feeding_) updateReading();
}

void UpstreamConnection::resumeReading() noexcept {
  if (!paused_by_client_) return;
  paused_by_client_ = false;
  if (state_ == State::kActive && !exchange_complete_) {
    armBodyTimer();
    parser_.resume();
    // The rest of what was read, and a completion owed right after the last body byte.
    if (!feeding_) process({});
    return;
  }
  updateReading();
}

void UpstreamConnection::armResponseTimer() noexcept {
  if (state_ != State::kActive) return;
  startTimer(TimerMode::kResponse,
             static_cast<uint64_t>(context_.settings().timeouts.upstream_response.count()));
}

void UpstreamConnection::armBodyTimer() noexcept {
  if (in_body_ && request_sent_ && !paused_by_client_) armResponseTimer();
}

void UpstreamConnection::enterTunnel() noexcept {
  if (state_ != State::kActive) return;
  state_ = State::kTunnel;
  stopTimer();
  // Bytes read after the response head are delivered when process() returns to its caller;
  // outside process() there are none.
  if (!feeding_) updateReading();
}

void UpstreamConnection::shutdownWrite() noexcept {
  if (socket_ != nullptr) socket_->shutdownWrite();
}

bool UpstreamConnection::reusable() const noexcept {
  return state_ == State::kActive && exchange_complete_ && keep_alive_ && !write_failed_ &&
         !garbage_ && socket_ != nullptr && !socket_->closing() &&
         parser_.error() == http::Http1Error::kNone && !parser_.upgraded();
}

void UpstreamConnection::onSocketData(DataPathSocket& /*socket*/, std::string_view data) noexcept {
  switch (state_) {
    case State::kIdle:
      close();  // nobody asked: the connection can no longer be trusted to frame answers
      return;
    case State::kTunnel:
      if (client_ != nullptr) client_->onUpstreamTunnelData(data);
      return;
    case State::kActive:
      process(data);
      return;
    default:
      return;
  }
}

void UpstreamConnection::process(std::string_view fresh) noexcept {
  if (exchange_complete_ && !fresh.empty()) {
    // Bytes after the final answer, while the request is still being sent.
    garbage_ = true;
    if (socket_ != nullptr) socket_->stopReading();
    return;
  }
  if (!fresh.empty()) response_bytes_ = true;
  bool from_input = !input_.empty();
  if (from_input && !fresh.empty()) {
    try {
      input_.append(fresh);
    } catch (...) {
      fail(UpstreamFailure::kOther);
      return;
    }
    context_.counters().buffered(static_cast<int64_t>(fresh.size()));
  }
  const std::string_view data = from_input ? std::string_view(input_) : fresh;
  size_t consumed = 0;
  feeding_ = true;
  for (;;) {
    if (state_ != State::kActive || client_ == nullptr) break;
    consumed += parser_.parse(data.substr(consumed));
    if (parser_.error() != http::Http1Error::kNone) break;
    if (parser_.paused() || parser_.upgraded() || consumed == data.size()) break;
  }
  feeding_ = false;
  std::string_view rest = data.substr(consumed);

  if (state_ == State::kActive && client_ != nullptr &&
      parser_.error() != http::Http1Error::kNone) {
    const http::Http1Error error = parser_.error();
    fail(error == http::Http1Error::kHeadersTooLarge || error == http::Http1Error::kTooManyHeaders
             ? UpstreamFailure::kResponseTooLarge
         : error == http::Http1Error::kUnexpectedEof ? UpstreamFailure::kConnectionReset
                                                     : UpstreamFailure::kBadResponse);
    return;
  }
  std::string tunnel_bytes;
  if (state_ == State::kTunnel && !rest.empty()) {
    try {
      tunnel_bytes.assign(rest);
    } catch (...) {
      fail(UpstreamFailure::kOther);
      return;
    }
    rest = {};
  }
  if (state_ == State::kIdle && !rest.empty()) {
    rest = {};
    close();
  }
  if (state_ == State::kActive && exchange_complete_ && !rest.empty()) {
    garbage_ = true;
    rest = {};
  }
  if (state_ == State::kClosed) rest = {};

  // Keep what is left for the next round.
  context_.keepUnparsed(input_, rest, from_input);
  updateReading();
  if (!tunnel_bytes.empty() && client_ != nullptr) client_->onUpstreamTunnelData(tunnel_bytes);
}

void UpstreamConnection::updateReading() noexcept {
  if (socket_ == nullptr) return;
  bool want = false;
  switch (state_) {
    case State::kIdle:
      want = true;
      break;
    case State::kActive:
      want = !paused_by_client_ && !garbage_ && input_.empty();
      break;
    case State::kTunnel:
      want = !paused_by_client_;
      break;
    default:
      break;
  }
  if (want) {
    if (socket_->startReading() < 0) pendingFail(UpstreamFailure::kConnectionReset);
  } else {
    socket_->stopReading();
  }
}

bool UpstreamConnection::onHead(http::Http1Head& head) {
  if (client_ == nullptr) return false;
  interim_ = head.status >= 100 && head.status < 200 && head.status != 101;
  if (!interim_) stopTimer();
  const bool no_body = client_->onUpstreamHead(head);
  if (interim_) {
    // The final head is still to come: a running response timer counts again from here. An
    // exchange for an HTTP/2 client runs none before the head (its stream keeps that time).
    if (timer_mode_ == TimerMode::kResponse) armResponseTimer();
    return false;
  }
  no_body_ = no_body;
  // Without a body, what the head says (read by the parser before the client stripped the
  // Connection field from head.headers); llhttp's keep_alive counts on a body length here.
  keep_alive_ = no_body ? head.reusable : head.keep_alive;
  in_body_ = !no_body && !head.upgrade;
  armBodyTimer();
  return no_body;
}

void UpstreamConnection::onBody(std::string_view data) {
  armBodyTimer();  // only moves the deadline (DeadlineTimer)
  if (client_ != nullptr) client_->onUpstreamBody(data);
}

void UpstreamConnection::onTrailers(http::HeaderMap& trailers) {
  if (client_ != nullptr) client_->onUpstreamTrailers(trailers);
}

void UpstreamConnection::onMessageComplete() {
  if (interim_) {
    interim_ = false;
    return;
  }
  exchange_complete_ = true;
  if (in_body_) {
    in_body_ = false;
    stopTimer();
  }
  parser_.pause();  // what follows belongs to no request
  if (client_ != nullptr) client_->onUpstreamComplete();
}

void UpstreamConnection::onSocketEof(DataPathSocket& /*socket*/) noexcept {
  switch (state_) {
    case State::kIdle:
      close();
      return;
    case State::kTunnel:
      if (client_ != nullptr) client_->onUpstreamTunnelEof();
      return;
    case State::kActive:
      break;
    default:
      return;
  }
  if (exchange_complete_) {
    garbage_ = true;  // closed after its answer: fine, but not for another one
    return;
  }
  feeding_ = true;
  parser_.finish();  // completes a close-delimited body
  feeding_ = false;
  if (state_ == State::kClosed && !input_.empty()) {
    context_.counters().buffered(-static_cast<int64_t>(input_.size()));
    input_.clear();
  }
  if (state_ == State::kActive && !exchange_complete_) fail(UpstreamFailure::kConnectionReset);
}

void UpstreamConnection::onSocketError(DataPathSocket& socket, int status) noexcept {
  if (state_ == State::kIdle) {
    close();
    return;
  }
  // A failed handshake or record: nothing more can be read either.
  const bool tls_failed = socket.tlsFailed(status);
  if (state_ == State::kActive && !tls_failed && !write_failed_ && socket.writeFailed()) {
    // The upstream stopped taking the request; its answer may still be readable (an early 413).
    write_failed_ = true;
    if (exchange_complete_ || socket.reading() || paused_by_client_) return;
  }
  if (state_ == State::kActive && exchange_complete_) {
    garbage_ = true;
    return;
  }
  fail(tls_failed ? UpstreamFailure::kTlsFailed : UpstreamFailure::kConnectionReset);
}

void UpstreamConnection::onSocketWritable(DataPathSocket& /*socket*/) noexcept {
  if (client_ != nullptr) client_->onUpstreamWritable();
}

void UpstreamConnection::onSocketClosed(DataPathSocket& socket) noexcept {
  if (&socket == socket_) socket_ = nullptr;
  --open_sockets_;
  maybeRetire();
}

// ---- pool life ----

void UpstreamConnection::reattach(UpstreamConnectionCallbacks& client) noexcept {
  client_ = &client;
  state_ = State::kActive;
  reused_ = true;
  response_bytes_ = false;
  interim_ = false;
  keep_alive_ = false;
  exchange_complete_ = false;
  no_body_ = false;
  in_body_ = false;
  request_sent_ = false;
  paused_by_client_ = false;
  stopTimer();
  parser_.resume();
  DataPathCounters::add(context_.counters().upstream_reuses);
  updateReading();
}

void UpstreamConnection::park() noexcept {
  client_ = nullptr;
  state_ = State::kIdle;
  startTimer(TimerMode::kIdle,
             static_cast<uint64_t>(context_.settings().timeouts.upstream_idle.count()));
  updateReading();
}

void UpstreamConnection::pendingFail(UpstreamFailure failure) noexcept {
  if (pending_failure_) return;
  pending_failure_ = true;
  failure_ = failure;
  context_.post(*this);
}

void UpstreamConnection::onTick() noexcept {
  if (!pending_failure_) return;
  pending_failure_ = false;
  fail(failure_);
}

void UpstreamConnection::fail(UpstreamFailure failure) noexcept {
  if (state_ == State::kClosed) return;
  UpstreamConnectionCallbacks* client = client_;
  // A reused connection that broke before answering: the upstream had likely closed it while it
  // was idle. One that was merely slow is not sent the request again.
  const bool retryable =
      reused_ && !response_bytes_ && failure != UpstreamFailure::kResponseTimeout;
  close();
  if (client != nullptr) {
    DataPathCounters::add(context_.counters().upstream_failures);
    client->onUpstreamFailed(failure, retryable);
  }
}

void UpstreamConnection::close(bool flush) noexcept {
  if (state_ == State::kClosed) return;
  if (state_ == State::kIdle) pool_.removeIdle(this);
  state_ = State::kClosed;
  client_ = nullptr;
  pending_failure_ = false;
  context_.cancel(*this);
  if (dns_pending_) uv_cancel(reinterpret_cast<uv_req_t*>(&dns_req_));
  if (socket_ != nullptr) {
    if (flush) {
      socket_->closeAfterFlush();
    } else {
      socket_->close();
    }
    socket_ = nullptr;
  }
  if (!feeding_) {
    // (While parsing, process() drops what is left when the parser returns.)
    context_.counters().buffered(-static_cast<int64_t>(input_.size()));
    input_.clear();
  }
  if (timer_open_) {
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &UpstreamConnection::onTimerClosed);
  }
  maybeRetire();
}

void UpstreamConnection::maybeRetire() noexcept {
  if (state_ != State::kClosed || retired_ || open_sockets_ > 0 || dns_pending_ || timer_open_) {
    return;
  }
  retired_ = true;
  pool_.forget(this);
  context_.retire(this);
}

// ---- the timer ----

void UpstreamConnection::startTimer(TimerMode mode, uint64_t timeout_ms) noexcept {
  if (!timer_open_ || state_ == State::kClosed) return;
  timer_mode_ = mode;
  deadline_.arm(timeout_ms);
}

void UpstreamConnection::stopTimer() noexcept {
  if (!timer_open_) return;
  timer_mode_ = TimerMode::kNone;
  deadline_.disarm();
}

void UpstreamConnection::onTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<UpstreamConnection*>(timer->data);
  if (!self->deadline_.expired()) return;
  const TimerMode mode = self->timer_mode_;
  self->timer_mode_ = TimerMode::kNone;
  switch (mode) {
    case TimerMode::kConnect:
      self->context_.counters().timeout(DataPathTimeout::kUpstreamConnect);
      self->fail(UpstreamFailure::kConnectTimeout);
      return;
    case TimerMode::kResponse:
      self->context_.counters().timeout(DataPathTimeout::kUpstreamResponse);
      // (The client that takes the blame releases this connection: nothing of it is used after.)
      if (self->client_ != nullptr && !self->in_body_ && self->client_->onRequestBodyStalled()) {
        return;
      }
      self->fail(UpstreamFailure::kResponseTimeout);
      return;
    case TimerMode::kIdle:
      self->context_.counters().timeout(DataPathTimeout::kUpstreamIdle);
      self->close();
      return;
    case TimerMode::kNone:
      return;
  }
}

void UpstreamConnection::onTimerClosed(uv_handle_t* handle) noexcept {
  auto* self = static_cast<UpstreamConnection*>(handle->data);
  self->timer_open_ = false;
  self->maybeRetire();
}

}  // namespace tracecar::proxy
