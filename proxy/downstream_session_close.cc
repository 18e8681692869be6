// DownstreamSession: drain, closing, timers, and the input kept between reads.

#include <string>

#include "proxy/downstream_session.h"
#include "proxy/upstream_pool.h"

namespace tracecar::proxy {
namespace {

uint64_t ms(std::chrono::milliseconds d) noexcept { return static_cast<uint64_t>(d.count()); }

}  // namespace

// ---- drain, closing, timers ----

void DownstreamSession::drain() noexcept {
  switch (phase_) {
    case Phase::kSniff:
    case Phase::kIdle:
      closeNow(true);  // nothing in flight (at most a partial head, never forwarded)
      return;
    case Phase::kRequest:
      close_after_ = true;
      return;
    default:
      return;
  }
}

void DownstreamSession::forceClose() noexcept {
  if (phase_ == Phase::kClosed) return;
  context_.counters().timeout(DataPathTimeout::kDrain);
  ex_.stats.aborted = true;
  closeNow(false);
}

void DownstreamSession::closeGracefully() noexcept {
  if (phase_ == Phase::kClosing || phase_ == Phase::kClosed) return;
  if (upstream_ != nullptr || h2_upstream_ != nullptr) releaseUpstream(false);
  phase_ = Phase::kClosing;
  parser_.pause();
  dropInput();
  if (downstream_eof_ || socket_ == nullptr) {
    closeNow(true);
    return;
  }
  // FIN after the last byte, then wait a little for the peer's FIN: closing with unread bytes
  // would reset the connection and could destroy the answer before the peer reads it.
  socket_->shutdownWrite();
  const DataPathTimeouts& timeouts = context_.settings().timeouts;
  startTimer(TimerMode::kClosing,
             socket_->buffered() == 0 ? timeouts.linger : timeouts.downstream_idle);
  updateReading();
}

void DownstreamSession::closeNow(bool flush) noexcept {
  if (phase_ == Phase::kClosed) return;
  if (upstream_ != nullptr || h2_upstream_ != nullptr) releaseUpstream(false);
  if (observer_ != nullptr && !ex_.finished) {
    ex_.finished = true;
    if (!ex_.response_complete) ex_.stats.aborted = true;
    if (ex_.stats.end_ns == 0) ex_.stats.end_ns = uv_hrtime();
    std::unique_ptr<StreamObserver> observer = std::move(observer_);
    observer->onComplete(ex_.stats);
  }
  phase_ = Phase::kClosed;
  parser_.pause();
  dropInput();
  context_.cancel(*this);
  if (socket_ != nullptr) {
    if (flush) {
      socket_->closeAfterFlush();
    } else {
      socket_->close();
    }
  }
  if (timer_open_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) {
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &DownstreamSession::onTimerClosed);
  }
  maybeRetire();
}

void DownstreamSession::maybeRetire() noexcept {
  if (phase_ != Phase::kClosed || socket_ != nullptr || timer_open_ || retired_) return;
  retired_ = true;
  context_.retire(this);
}

void DownstreamSession::updateReading() noexcept {
  if (socket_ == nullptr || socket_->closing() || downstream_eof_) return;
  bool want = false;
  switch (phase_) {
    case Phase::kSniff:
    case Phase::kOpening:
    case Phase::kIdle:
      want = input_.size() < context_.settings().high_water_bytes;
      break;
    case Phase::kRequest:
      want = !ex_.backpressure && input_.size() < context_.settings().high_water_bytes;
      break;
    case Phase::kTunnel:
      want = upstream_ == nullptr || !upstream_->overHighWater();
      break;
    case Phase::kClosing:
      want = true;
      break;
    case Phase::kClosed:
      break;
  }
  if (!want) {
    socket_->stopReading();
  } else if (socket_->startReading() < 0) {
    closeNow(false);
  }
}

void DownstreamSession::startTimer(TimerMode mode, std::chrono::milliseconds timeout) noexcept {
  if (!timer_open_ || phase_ == Phase::kClosed) return;
  timer_mode_ = mode;
  deadline_.arm(ms(timeout));
}

void DownstreamSession::stopTimer() noexcept {
  timer_mode_ = TimerMode::kNone;
  if (timer_open_) deadline_.disarm();
}

void DownstreamSession::onTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<DownstreamSession*>(timer->data);
  if (!self->deadline_.expired()) return;
  const TimerMode mode = self->timer_mode_;
  self->timer_mode_ = TimerMode::kNone;
  switch (mode) {
    case TimerMode::kIdle:
      self->context_.counters().timeout(DataPathTimeout::kDownstreamIdle);
      self->closeNow(true);
      return;
    case TimerMode::kTunnelIdle:
      self->context_.counters().timeout(DataPathTimeout::kTunnelIdle);
      self->closeNow(true);
      return;
    case TimerMode::kSniff:
      // The client said nothing: a server-first protocol.
      if (self->phase_ == Phase::kSniff && self->input_.empty()) {
        self->openTunnel(SniffedProtocol::kServerFirst);
      }
      return;
    case TimerMode::kHeader: {
      if (self->phase_ == Phase::kSniff) {
        // Bytes came, but never enough to tell what they are.
        const SniffedProtocol protocol = sniffFinal(self->input_);
        if (protocol != SniffedProtocol::kHttp1) {
          self->openTunnel(protocol);
          return;
        }
        self->startHttp();
        self->drive({});
      }
      if (self->phase_ != Phase::kIdle) return;
      self->context_.counters().timeout(DataPathTimeout::kHeaderRead);
      self->context_.counters().localReply(self->listener_.role, LocalReplyReason::kHeaderTimeout);
      std::string out;
      try {
        appendLocalReply(out, 408, "request header read timeout", true, false);
      } catch (...) {
        out.clear();
      }
      if (self->socket_ != nullptr) self->socket_->write(out);
      self->closeGracefully();
      return;
    }
    case TimerMode::kClosing:
      self->closeNow(false);
      return;
    case TimerMode::kResponse:
      // An HTTP/2 upstream stream gave no response head in time (504), or its body stopped
      // coming (the client's connection is closed), as for HTTP/1.1.
      if (self->phase_ == Phase::kRequest && self->h2_upstream_ != nullptr &&
          !self->ex_.response_complete) {
        self->context_.counters().timeout(DataPathTimeout::kUpstreamResponse);
        if (self->onRequestBodyStalled()) return;
        self->h2_upstream_->fail(UpstreamFailure::kResponseTimeout);
      }
      return;
    case TimerMode::kNone:
      return;
  }
}

void DownstreamSession::onTimerClosed(uv_handle_t* handle) noexcept {
  auto* self = static_cast<DownstreamSession*>(handle->data);
  self->timer_open_ = false;
  self->maybeRetire();
}

// ---- unparsed input ----

void DownstreamSession::keepInput(std::string_view rest, bool from_input) noexcept {
  context_.keepUnparsed(input_, rest, from_input);
}

void DownstreamSession::dropInput() noexcept {
  if (driving_) {
    drop_input_ = true;  // the parser is reading it: dropped when drive() returns
    return;
  }
  context_.counters().buffered(-static_cast<int64_t>(input_.size()));
  input_.clear();
  if (input_.capacity() > WorkerContext::kReadBufferSize) std::string().swap(input_);
}

}  // namespace tracecar::proxy
