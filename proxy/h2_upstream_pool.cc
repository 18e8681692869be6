#include "proxy/h2_upstream_pool.h"

#include <netdb.h>

#include <algorithm>
#include <new>
#include <utility>

#include "http/tcp_address.h"
#include "proxy/h2_worker.h"

namespace tracecar::proxy {
namespace {

using http::H2CloseCause;
using http::H2ErrorCode;

}  // namespace

// ---- H2UpstreamConnection: connecting ----

H2UpstreamConnection::H2UpstreamConnection(WorkerContext& context, H2UpstreamPool& pool,
                                           UpstreamTarget target)
    : context_(context), pool_(pool), target_(std::move(target)) {}

H2UpstreamConnection::~H2UpstreamConnection() {
  context_.cancel(*this);
  if (flush_pending_) context_.forgetFlush(*this);
  if (counted_open_) {
    DataPathCounters::add(context_.counters().upstream_connections_open, -1);
    DataPathCounters::add(pool_.counters().upstream_connections_open, -1);
  }
}

bool H2UpstreamConnection::accepting() const noexcept {
  if (draining_) return false;
  switch (state_) {
    case State::kResolving:
    case State::kConnecting:
    case State::kHandshake:
      return true;  // capacity is known once the peer's SETTINGS come
    case State::kReady:
      return session_ && session_->canOpenStream() &&
             session_->openStreams() + waiters_.size() < session_->peerMaxConcurrentStreams();
    default:
      return false;
  }
}

void H2UpstreamConnection::start(H2UpstreamStream& first) noexcept {
  addWaiter(first);
  if (uv_timer_init(context_.loop(), &timer_) == 0) {
    timer_.data = this;
    deadline_.bind(&timer_, &H2UpstreamConnection::onTimer);
    timer_open_ = true;
    timer_mode_ = TimerMode::kConnect;
    deadline_.arm(static_cast<uint64_t>(context_.settings().timeouts.upstream_connect.count()));
  }
  auto created = http::H2Session::create(http::H2Session::Kind::kClient, *this, pool_.settings());
  if (!created.ok() || !timer_open_) {
    pending_failure_ = UpstreamFailure::kOther;
    state_ = State::kClosing;
    context_.post(*this);  // fails the waiter on the next turn
    return;
  }
  session_ = std::move(*created);
  sockaddr_storage address{};
  if (uv_ip4_addr(target_.host.c_str(), target_.port,
                  reinterpret_cast<sockaddr_in*>(&address)) == 0 ||
      uv_ip6_addr(target_.host.c_str(), target_.port,
                  reinterpret_cast<sockaddr_in6*>(&address)) == 0) {
    try {
      addresses_.push_back(address);
    } catch (...) {
      pending_failure_ = UpstreamFailure::kOther;
      state_ = State::kClosing;
      context_.post(*this);
      return;
    }
    connectNext();
    return;
  }
  dns_req_.data = this;
  if (const int rc = http::resolveTcp(context_.loop(), &dns_req_,
                                      &H2UpstreamConnection::onResolved, target_.host,
                                      target_.port);
      rc < 0) {
    pending_failure_ = resolveFailureOf(rc);
    state_ = State::kClosing;
    context_.post(*this);
    return;
  }
  dns_pending_ = true;
}

void H2UpstreamConnection::addWaiter(H2UpstreamStream& stream) noexcept {
  try {
    waiters_.push_back(&stream);
  } catch (...) {
    // Out of memory: the stream never hears back; its response timer answers it.
  }
}

void H2UpstreamConnection::onResolved(uv_getaddrinfo_t* req, int status,
                                      addrinfo* result) noexcept {
  auto* self = static_cast<H2UpstreamConnection*>(req->data);
  self->dns_pending_ = false;
  if (self->state_ == State::kClosed || self->state_ == State::kClosing) {
    if (result != nullptr) uv_freeaddrinfo(result);
    self->maybeRetire();
    return;
  }
  if (status < 0) {
    self->fail(resolveFailureOf(status), false);
    return;
  }
  try {
    http::appendAddresses(result, self->addresses_);
  } catch (...) {
    // Try the addresses copied so far.
  }
  uv_freeaddrinfo(result);
  if (self->addresses_.empty()) {
    self->fail(UpstreamFailure::kResolveFailed, false);
    return;
  }
  self->connectNext();
}

void H2UpstreamConnection::connectNext() noexcept {
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
  // Every address failed at once: tell the waiters from a loop callback, not from acquire().
  pending_failure_ =
      loop ? UpstreamFailure::kLoopDetected : connectFailureOf(last_connect_error_);
  state_ = State::kClosing;
  context_.post(*this);
}

void H2UpstreamConnection::onSocketConnected(DataPathSocket& socket, int status) noexcept {
  if (&socket != socket_ || state_ != State::kConnecting) return;
  if (status < 0) {
    last_connect_error_ = status;
    socket_ = nullptr;
    socket.close();
    if (next_address_ < addresses_.size()) {
      connectNext();
    } else {
      fail(connectFailureOf(status), false);
    }
    return;
  }
  state_ = State::kHandshake;
  sockaddr_storage peer{};
  int length = sizeof peer;
  if (uv_tcp_getpeername(socket.tcp(), reinterpret_cast<sockaddr*>(&peer), &length) == 0) {
    try {
      http::IpPort where = http::ipPort(peer);
      peer_address_ = std::move(where.ip);
      peer_port_ = where.port;
    } catch (...) {
    }
  }
  DataPathCounters::add(context_.counters().upstream_connects);
  DataPathCounters::add(context_.counters().upstream_connections_open, 1);
  DataPathCounters::add(pool_.counters().upstream_connections_open, 1);
  counted_open_ = true;
  if (target_.tls) {
    std::unique_ptr<http::TlsSession> session = target_.newTlsSession("h2");
    if (session == nullptr) {
      fail(UpstreamFailure::kOther, false);
      return;
    }
    socket.startTls(std::move(session), TlsEnd::kUpstream);
  }
  // The connect timer keeps running until the peer's SETTINGS come (after the TLS handshake).
  socket.startReading();
  scheduleFlush();  // our preface and SETTINGS
}

// ---- requests ----

absl::StatusOr<int32_t> H2UpstreamConnection::submitRequest(const http::H2Head& head,
                                                            bool end_stream,
                                                            H2UpstreamStream& stream) noexcept {
  if (state_ != State::kReady || !session_) {
    return absl::FailedPreconditionError("HTTP/2 upstream not ready");
  }
  absl::StatusOr<int32_t> id = session_->submitRequest(head, end_stream);
  if (!id.ok()) return id;
  try {
    streams_.emplace(*id, OpenStream{&stream});
    served_ = true;
  } catch (...) {
    (void)session_->resetStream(*id, H2ErrorCode::kInternalError);
    return absl::ResourceExhaustedError("out of memory");
  }
  updateIdleTimer();
  scheduleFlush();
  return id;
}

absl::Status H2UpstreamConnection::submitData(int32_t id, std::string_view data,
                                              bool end_stream) noexcept {
  if (!session_) return absl::FailedPreconditionError("HTTP/2 upstream closed");
  // Marked before the attempt: bytes handed over are not kept for a second sending, whether
  // or not the session took them.
  if (!data.empty()) {
    if (auto it = streams_.find(id); it != streams_.end()) it->second.sent_past_head = true;
  }
  absl::Status status = session_->submitData(id, data, end_stream);
  if (status.ok()) {
    if (!data.empty()) {
      try {
        sending_.insert(id);
      } catch (...) {
      }
    }
    scheduleFlush();
  }
  return status;
}

absl::Status H2UpstreamConnection::submitTrailers(int32_t id,
                                                  const http::HeaderMap& trailers) noexcept {
  if (!session_) return absl::FailedPreconditionError("HTTP/2 upstream closed");
  if (auto it = streams_.find(id); it != streams_.end()) it->second.sent_past_head = true;
  absl::Status status = session_->submitTrailers(id, trailers);
  if (status.ok()) scheduleFlush();
  return status;
}

void H2UpstreamConnection::detach(int32_t id, H2ErrorCode code, size_t unconsumed) noexcept {
  if (streams_.erase(id) == 0) return;
  sending_.erase(id);
  if (session_) {
    if (unconsumed > 0) session_->consume(id, unconsumed);
    (void)session_->resetStream(id, code);
    scheduleFlush();
  }
  updateIdleTimer();
}

void H2UpstreamConnection::cancelWait(H2UpstreamStream& stream) noexcept {
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), &stream), waiters_.end());
  if (state_ == State::kReady) updateIdleTimer();
}

void H2UpstreamConnection::consume(int32_t id, size_t bytes) noexcept {
  if (!session_ || bytes == 0) return;
  session_->consume(id, bytes);
  scheduleFlush();
}

void H2UpstreamConnection::drain() noexcept {
  draining_ = true;
  if (state_ == State::kReady && streams_.empty() && waiters_.empty()) closeNow();
}

void H2UpstreamConnection::closeNow() noexcept {
  if (state_ == State::kClosed) return;
  fail(UpstreamFailure::kConnectionReset, state_ == State::kReady);
}

// ---- socket events ----

void H2UpstreamConnection::onSocketData(DataPathSocket& /*socket*/,
                                        std::string_view data) noexcept {
  if (!session_ || state_ == State::kClosed || state_ == State::kClosing) return;
  receiving_ = true;
  const absl::Status status = session_->receive(data);
  receiving_ = false;
  if (state_ == State::kClosed) return;
  afterReceive();
  if (!status.ok() && state_ != State::kClosed) scheduleFlush();  // our GOAWAY, then close
}

void H2UpstreamConnection::afterReceive() noexcept {
  std::vector<int32_t> committing;
  committing.swap(committing_);
  for (int32_t id : committing) {
    auto it = streams_.find(id);
    if (it != streams_.end()) it->second.stream->onUpstreamCommit();
  }
  if (state_ == State::kReady) dispatchWaiters();
  scheduleFlush();
}

void H2UpstreamConnection::onSocketEof(DataPathSocket& /*socket*/) noexcept {
  fail(UpstreamFailure::kConnectionReset, state_ == State::kReady);
}

void H2UpstreamConnection::onSocketError(DataPathSocket& socket, int status) noexcept {
  fail(socket.tlsFailed(status) ? UpstreamFailure::kTlsFailed : UpstreamFailure::kConnectionReset,
       state_ == State::kReady);
}

void H2UpstreamConnection::onSocketWritable(DataPathSocket& /*socket*/) noexcept {
  scheduleFlush();
}

void H2UpstreamConnection::onSocketClosed(DataPathSocket& socket) noexcept {
  --open_sockets_;
  if (&socket == socket_) socket_ = nullptr;
  maybeRetire();
}

// ---- session events ----

void H2UpstreamConnection::onHeaders(int32_t id, http::H2Head& head) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  if (head.status >= 200) committing_.push_back(id);
  it->second.stream->onUpstreamHeaders(head);
}

void H2UpstreamConnection::onData(int32_t id, std::string_view data) {
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    session_->consume(id, data.size());
    return;
  }
  it->second.stream->onUpstreamData(data);
}

void H2UpstreamConnection::onTrailers(int32_t id, http::HeaderMap& trailers) {
  auto it = streams_.find(id);
  if (it != streams_.end()) it->second.stream->onUpstreamTrailers(trailers);
}

void H2UpstreamConnection::onEndStream(int32_t id) {
  auto it = streams_.find(id);
  if (it != streams_.end()) it->second.stream->onUpstreamEnd();
}

void H2UpstreamConnection::onStreamClose(int32_t id, H2ErrorCode code, H2CloseCause cause) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  const OpenStream open = it->second;
  streams_.erase(it);
  sending_.erase(id);
  const bool refused = cause == H2CloseCause::kRefused ||
                       (cause == H2CloseCause::kResetByPeer && code == H2ErrorCode::kRefusedStream);
  open.stream->onUpstreamClose(code, cause, false, refused && !open.sent_past_head);
  updateIdleTimer();
}

void H2UpstreamConnection::onGoaway(int32_t /*last_stream_id*/, H2ErrorCode /*code*/,
                                    std::string_view /*debug_data*/) {
  // Streams past last_stream_id close as refused (and are retried elsewhere); the others go on.
  // No new request comes here: the pool opens another connection.
  DataPathCounters::add(pool_.counters().upstream_goaways);
  draining_ = true;
}

void H2UpstreamConnection::onConnectionError(std::string_view /*reason*/) {
  // send() holds our GOAWAY; the connection closes once it is written (afterReceive / flush).
}

void H2UpstreamConnection::onPeerSettings() {
  if (state_ != State::kHandshake) return;
  state_ = State::kReady;
  timer_mode_ = TimerMode::kNone;
  deadline_.disarm();
  // Waiters get their slot after this read is processed (afterReceive).
}

void H2UpstreamConnection::dispatchWaiters() noexcept {
  // Failed in the read just processed (a flood in the peer's first bytes): the waiters fail
  // with the connection once its GOAWAY is out. Sent to another connection to the same peer,
  // they would reconnect as long as the peer keeps failing.
  if (waiters_.empty() || (session_ && session_->failed())) return;
  std::vector<H2UpstreamStream*> waiters;
  waiters.swap(waiters_);
  size_t i = 0;
  for (; i < waiters.size(); ++i) {
    if (draining_ || !session_ || !session_->canOpenStream() ||
        session_->openStreams() >= session_->peerMaxConcurrentStreams()) {
      break;
    }
    waiters[i]->onUpstreamReady(*this);
    if (state_ != State::kReady) {
      ++i;
      break;
    }
  }
  // A connection that took none of its waiters and never took a stream refuses them from its
  // first frames (a GOAWAY at once, or SETTINGS_MAX_CONCURRENT_STREAMS 0): the peer's doing,
  // not its load. Another connection would be refused the same, as fast as it could be opened,
  // until the response timeout: the waiters fail here (502) instead.
  const bool refuses_streams =
      i == 0 && !served_ &&
      (draining_ || (session_ && session_->peerMaxConcurrentStreams() == 0));
  // The rest go to another connection (the peer allows fewer streams than were waiting).
  for (; i < waiters.size(); ++i) {
    H2UpstreamStream* stream = waiters[i];
    if (state_ == State::kClosed || state_ == State::kClosing) {
      stream->onUpstreamFailed(UpstreamFailure::kConnectionReset);
      continue;
    }
    if (refuses_streams) {
      stream->onUpstreamFailed(UpstreamFailure::kConnectionRefused);
      continue;
    }
    H2UpstreamConnection* other = pool_.acquire(target_, *stream);
    if (other == nullptr) {
      stream->onUpstreamFailed(UpstreamFailure::kOther);
    } else if (other->ready()) {
      stream->onUpstreamReady(*other);
    } else {
      stream->onUpstreamWaiting(*other);
    }
  }
  updateIdleTimer();
}

// ---- frames out ----

void H2UpstreamConnection::scheduleFlush() noexcept {
  if (flush_pending_ || state_ == State::kClosed) return;
  if (!context_.deferFlush(*this)) {
    context_.post(*this);
  }
  flush_pending_ = true;
}

void H2UpstreamConnection::flushBatch() noexcept {
  if (!flush_pending_) return;
  flush_pending_ = false;
  flush();
}

void H2UpstreamConnection::onTick() noexcept {
  if (state_ == State::kClosing) {
    fail(pending_failure_, false);
    return;
  }
  if (state_ == State::kReady && draining_ && streams_.empty() && waiters_.empty()) {
    if (session_) session_->sendGoaway(H2ErrorCode::kNoError);
    fail(UpstreamFailure::kConnectionReset, true);
    return;
  }
  if (flush_pending_) {
    flush_pending_ = false;
    context_.forgetFlush(*this);
    flush();
  }
}

void H2UpstreamConnection::flush() noexcept {
  if (!session_ || socket_ == nullptr || state_ == State::kClosed || state_ == State::kClosing ||
      state_ == State::kConnecting || state_ == State::kResolving) {
    return;
  }
  // A slow upstream: keep the frames in nghttp2 (bounded by our streams' buffers, which are
  // bounded by the downstream windows) rather than in the socket queue.
  if (!socket_->overHighWater()) {
    out_.clear();
    (void)session_->send(out_);
    if (!out_.empty()) socket_->write(out_);
    if (out_.capacity() > 64 * 1024) std::string().swap(out_);
    if (state_ == State::kClosed) return;
    if (!sending_.empty()) {
      std::vector<int32_t> ids(sending_.begin(), sending_.end());
      for (int32_t id : ids) {
        auto it = streams_.find(id);
        if (it == streams_.end()) {
          sending_.erase(id);
          continue;
        }
        const size_t pending = session_->pendingData(id);
        if (pending == 0) sending_.erase(id);
        it->second.stream->onUpstreamSendProgress(pending);
        if (state_ == State::kClosed) return;
      }
    }
  }
  if (session_->failed() || session_->finished()) {
    const bool failed = session_->failed();
    fail(failed ? UpstreamFailure::kBadResponse : UpstreamFailure::kConnectionReset, true);
  }
}

// ---- closing ----

void H2UpstreamConnection::fail(UpstreamFailure failure, bool connected) noexcept {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  countFloods();
  pool_.forget(this);
  if (dns_pending_) uv_cancel(reinterpret_cast<uv_req_t*>(&dns_req_));
  // Waiters never got a stream: they fail as a connection failure of this kind.
  std::vector<H2UpstreamStream*> waiters;
  waiters.swap(waiters_);
  OpenStreams streams;
  streams.swap(streams_);
  for (H2UpstreamStream* stream : waiters) stream->onUpstreamFailed(failure);
  for (auto& [id, open] : streams) {
    open.stream->onUpstreamClose(H2ErrorCode::kInternalError, H2CloseCause::kResetByPeer, true,
                                 false);
  }
  if (socket_ != nullptr) {
    if (connected && session_) {
      out_.clear();
      (void)session_->send(out_);  // a GOAWAY when one is due
      if (!out_.empty()) socket_->write(out_);
      socket_->closeAfterFlush();
    } else {
      socket_->close();
    }
  }
  if (timer_open_) {
    deadline_.stop();
    timer_open_ = false;
    timer_closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* handle) {
      auto* self = static_cast<H2UpstreamConnection*>(handle->data);
      self->timer_closing_ = false;
      self->maybeRetire();
    });
  }
  maybeRetire();
}

void H2UpstreamConnection::countFloods() noexcept {
  if (floods_counted_ || !session_) return;
  floods_counted_ = true;
  pool_.counters().add(pool_.counters().upstream, session_->counters());
}

void H2UpstreamConnection::updateIdleTimer() noexcept {
  if (!timer_open_ || state_ != State::kReady) return;
  if (streams_.empty() && waiters_.empty()) {
    if (draining_) {
      // Nothing left to carry: a drained or GOAWAY'd connection goes now.
      context_.post(*this);
      return;
    }
    timer_mode_ = TimerMode::kIdle;
    deadline_.arm(static_cast<uint64_t>(context_.settings().timeouts.upstream_idle.count()));
  } else if (timer_mode_ == TimerMode::kIdle) {
    timer_mode_ = TimerMode::kNone;
    deadline_.disarm();
  }
}

void H2UpstreamConnection::onTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<H2UpstreamConnection*>(timer->data);
  if (!self->deadline_.expired()) return;
  switch (self->timer_mode_) {
    case TimerMode::kConnect:
      self->context_.counters().timeout(DataPathTimeout::kUpstreamConnect);
      self->fail(UpstreamFailure::kConnectTimeout, false);
      break;
    case TimerMode::kIdle:
      self->context_.counters().timeout(DataPathTimeout::kUpstreamIdle);
      if (self->session_) self->session_->sendGoaway(H2ErrorCode::kNoError);
      self->fail(UpstreamFailure::kConnectionReset, true);
      break;
    case TimerMode::kNone:
      break;
  }
}

void H2UpstreamConnection::maybeRetire() noexcept {
  if (state_ != State::kClosed || retired_ || open_sockets_ > 0 || dns_pending_ ||
      timer_closing_) {
    return;
  }
  retired_ = true;
  context_.retire(this);
}

// ---- H2UpstreamPool ----

H2UpstreamPool::~H2UpstreamPool() { closeAll(); }

H2UpstreamConnection* H2UpstreamPool::acquire(const UpstreamTarget& target,
                                              H2UpstreamStream& stream) noexcept {
  try {
    std::vector<H2UpstreamConnection*>& list = by_target_.findOrAdd(target);
    for (H2UpstreamConnection* connection : list) {
      if (!connection->accepting()) continue;
      if (!connection->ready()) connection->addWaiter(stream);
      return connection;
    }
    auto* connection = new H2UpstreamConnection(context_, *this, target);
    list.push_back(connection);
    all_.insert(connection);
    connection->start(stream);
    return connection;
  } catch (...) {
    return nullptr;
  }
}

void H2UpstreamPool::forget(H2UpstreamConnection* connection) noexcept {
  all_.erase(connection);
  by_target_.remove(connection->target().poolKey(), connection);
}

void H2UpstreamPool::drain() noexcept {
  draining_ = true;
  std::vector<H2UpstreamConnection*> all(all_.begin(), all_.end());
  for (H2UpstreamConnection* connection : all) connection->drain();
}

void H2UpstreamPool::closeAll() noexcept {
  std::vector<H2UpstreamConnection*> all(all_.begin(), all_.end());
  for (H2UpstreamConnection* connection : all) connection->closeNow();
}

}  // namespace tracecar::proxy
