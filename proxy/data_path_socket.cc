#include "proxy/data_path_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "base/edge_triggered.h"

namespace tracecar::proxy {
namespace {

// A write queue keeps its memory between writes, up to this; beyond, it is given back once
// empty so idle connections stay small.
constexpr size_t kKeptCapacity = 16 * 1024;

void releaseIfLarge(std::string& s) noexcept {
  if (s.empty() && s.capacity() > kKeptCapacity) std::string().swap(s);
}

}  // namespace

DataPathSocket::DataPathSocket(WorkerContext& context, DataPathSocketCallbacks& callbacks) noexcept
    : context_(context), callbacks_(&callbacks) {}

DataPathSocket::~DataPathSocket() {
  context_.cancel(*this);
  if (batched_) context_.forgetFlush(*this);
  context_.counters().buffered(-static_cast<int64_t>(buffered()));
}

int DataPathSocket::init() noexcept {
  const int rc = uv_tcp_init(context_.loop(), &tcp_);
  if (rc == 0) tcp_.data = this;
  return rc;
}

int DataPathSocket::accept(const AcceptSource& from) noexcept {
  int rc = 0;
  if (from.server != nullptr) {
    rc = uv_accept(from.server, stream());
  } else if (rc = uv_tcp_open(&tcp_, from.fd); rc < 0) {
    ::close(from.fd);  // the handle did not take it
  }
  if (rc == 0) {
    connected_ = true;
    uv_tcp_nodelay(&tcp_, 1);
    watchEdgeTriggered();
  }
  return rc;
}

int DataPathSocket::connect(const sockaddr* address) noexcept {
  connect_req_.data = this;
  const int rc = uv_tcp_connect(&connect_req_, &tcp_, address, &DataPathSocket::onConnect);
  // libuv made the socket; it registers it with epoll on the loop's next turn.
  if (rc == 0) watchEdgeTriggered();
  return rc;
}

void DataPathSocket::watchEdgeTriggered() noexcept {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) == 0) {
    base::watchEdgeTriggered(fd);
    edge_triggered_fd_ = fd;
  }
}

void DataPathSocket::onConnect(uv_connect_t* req, int status) noexcept {
  auto* self = static_cast<DataPathSocket*>(req->data);
  if (status == UV_ECANCELED || self->closing_) return;
  if (status == 0) {
    self->connected_ = true;
    uv_tcp_nodelay(&self->tcp_, 1);
    self->flush();
  }
  self->callbacks_->onSocketConnected(*self, status);
}

int DataPathSocket::startReading() noexcept {
  if (reading_ || closing_) return 0;
  const int rc = uv_read_start(stream(), &DataPathSocket::onAlloc, &DataPathSocket::onRead);
  if (rc == 0) reading_ = true;
  return rc;
}

void DataPathSocket::stopReading() noexcept {
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

void DataPathSocket::onAlloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) noexcept {
  auto* self = static_cast<DataPathSocket*>(handle->data);
  *buf = uv_buf_init(self->context_.readBuffer(), WorkerContext::kReadBufferSize);
}

void DataPathSocket::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* self = static_cast<DataPathSocket*>(stream->data);
  if (nread == 0 || self->closing_) return;
  WorkerContext& context = self->context_;
  context.beginWriteBatch();
  if (nread > 0 && self->tls_ && !self->tls_early_.empty()) {
    // What startTls was given has not been fed yet (it waits for the next loop turn): these
    // bytes follow it.
    try {
      self->tls_early_.append(buf->base, static_cast<size_t>(nread));
    } catch (...) {
      self->failWrite(UV_ENOMEM);
    }
  } else if (nread > 0 && self->tls_) {
    self->receiveTls(std::string_view(buf->base, static_cast<size_t>(nread)));
  } else if (nread > 0) {
    self->callbacks_->onSocketData(*self, std::string_view(buf->base, static_cast<size_t>(nread)));
  } else {
    // libuv has stopped reading on EOF and on errors.
    self->stopReading();
    if (self->tls_) self->countTlsFailure();  // gone in the middle of the handshake
    if (nread == UV_EOF) {
      self->callbacks_->onSocketEof(*self);
    } else {
      self->callbacks_->onSocketError(*self, static_cast<int>(nread));
    }
  }
  context.endWriteBatch();
}

bool DataPathSocket::overHighWater() const noexcept {
  // With TLS, what waits for the handshake counts too: a peer that stalls the handshake must
  // not make us buffer the other side's bytes without bound.
  return waiting() > context_.settings().high_water_bytes;
}

void DataPathSocket::write(std::string_view data) noexcept { writeParts(&data, 1); }

void DataPathSocket::write(std::initializer_list<std::string_view> parts) noexcept {
  writeParts(parts.begin(), parts.size());
}

void DataPathSocket::writeParts(const std::string_view* parts, size_t count) noexcept {
  if (closing_ || write_failed_ || shutdown_requested_) return;
  if (tls_) {
    // Plaintext in, ciphertext out (held by the session until the handshake completes).
    for (size_t i = 0; i < count; ++i) {
      if (!parts[i].empty() && !tls_->send(parts[i])) {
        sendTlsOutput();  // an alert, perhaps
        failWrite(UV_EPROTO);
        return;
      }
    }
    sendTlsOutput();
    if (overHighWater()) over_high_water_ = true;
    return;
  }
  writeRaw(parts, count);
}

void DataPathSocket::writeRaw(const std::string_view* parts, size_t count) noexcept {
  if (closing_ || write_failed_ || shutdown_requested_) return;
  if (connected_ && !write_in_flight_) {
    if (deferParts(parts, count)) return;
    send(parts, count);
    return;
  }
  for (size_t i = 0; i < count; ++i) {
    if (!parts[i].empty()) queue(parts[i]);
  }
  flush();
}

bool DataPathSocket::deferParts(const std::string_view* parts, size_t count) noexcept {
  if (!context_.batchingWrites()) return false;
  size_t total = queued_.size();
  for (size_t i = 0; i < count; ++i) total += parts[i].size();
  // Past the high-water mark the bytes go out now, as they would without a batch.
  if (total > context_.settings().high_water_bytes) return false;
  if (!batched_) {
    if (!context_.deferFlush(*this)) return false;
    batched_ = true;
  }
  for (size_t i = 0; i < count; ++i) {
    if (!parts[i].empty()) queue(parts[i]);
  }
  return true;
}

void DataPathSocket::send(const std::string_view* parts, size_t count) noexcept {
  constexpr size_t kMaxBufs = 8;
  uv_buf_t bufs[kMaxBufs];
  unsigned n = 0;
  if (!queued_.empty()) bufs[n++] = uv_buf_init(queued_.data(), static_cast<unsigned>(queued_.size()));
  size_t i = 0;
  for (; i < count && n < kMaxBufs; ++i) {
    if (parts[i].empty()) continue;
    bufs[n++] = uv_buf_init(const_cast<char*>(parts[i].data()), static_cast<unsigned>(parts[i].size()));
  }
  // Parts beyond what fits in one call wait in the queue (after what was not taken).
  size_t skip = 0;
  if (n > 0) {
    const int w = uv_try_write(stream(), bufs, n);
    // Below zero: EAGAIN, or an error uv_write reports from its callback.
    if (w > 0) skip = static_cast<size_t>(w);
  }
  if (!queued_.empty()) {
    const size_t taken = std::min(skip, queued_.size());
    skip -= taken;
    if (taken > 0) {
      queued_.erase(0, taken);
      context_.counters().buffered(-static_cast<int64_t>(taken));
    }
  }
  for (size_t j = 0; j < count; ++j) {
    std::string_view part = parts[j];
    if (j < i) {
      const size_t drop = std::min(skip, part.size());
      skip -= drop;
      part.remove_prefix(drop);
    }
    if (!part.empty()) queue(part);
  }
  flush();
}

void DataPathSocket::flushBatch() noexcept {
  batched_ = false;
  if (closing_ || !connected_ || write_in_flight_) return;
  if (!queued_.empty() && !write_failed_) send(nullptr, 0);
  // A shutdown or close asked for while the bytes were held back.
  if (!closing_ && !write_in_flight_) afterWrite();
}

void DataPathSocket::queue(std::string_view data) noexcept {
  try {
    queued_.append(data);
  } catch (...) {
    failWrite(UV_ENOMEM);
    return;
  }
  context_.counters().buffered(static_cast<int64_t>(data.size()));
  if (overHighWater()) over_high_water_ = true;
}

void DataPathSocket::flush() noexcept {
  if (write_in_flight_ || queued_.empty() || !connected_ || closing_ || write_failed_) return;
  writing_.swap(queued_);
  uv_buf_t buf = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
  write_req_.data = this;
  const int rc = uv_write(&write_req_, stream(), &buf, 1, &DataPathSocket::onWritten);
  if (rc < 0) {
    failWrite(rc);
    return;
  }
  write_in_flight_ = true;
}

void DataPathSocket::onWritten(uv_write_t* req, int status) noexcept {
  auto* self = static_cast<DataPathSocket*>(req->data);
  self->write_in_flight_ = false;
  self->context_.counters().buffered(-static_cast<int64_t>(self->writing_.size()));
  self->writing_.clear();
  releaseIfLarge(self->writing_);
  if (self->closing_) return;
  if (status < 0) {
    self->write_failed_ = true;
    self->dropQueued();
    if (self->close_after_flush_) {
      self->close();
      return;
    }
    self->callbacks_->onSocketError(*self, status);
    return;
  }
  self->flush();
  WorkerContext& context = self->context_;
  context.beginWriteBatch();
  self->afterWrite();
  context.endWriteBatch();
}

void DataPathSocket::afterWrite() noexcept {
  if (buffered() == 0) {
    releaseIfLarge(queued_);
    if (close_after_flush_) {
      closeFlushed();
      return;
    }
    if (shutdown_requested_ && !shutdown_sent_) {
      shutdown_req_.data = this;
      if (uv_shutdown(&shutdown_req_, stream(), &DataPathSocket::onShutdown) == 0) {
        shutdown_sent_ = true;
      }
    }
  }
  if (over_high_water_ && waiting() <= context_.settings().low_water_bytes) {
    over_high_water_ = false;
    callbacks_->onSocketWritable(*this);
  }
}

void DataPathSocket::onShutdown(uv_shutdown_t* /*req*/, int /*status*/) noexcept {
  // A failed FIN (the peer reset) shows up on the read side.
}

void DataPathSocket::failWrite(int status) noexcept {
  if (write_failed_) return;
  write_failed_ = true;
  dropQueued();
  // Reported on the next loop turn: never from inside write().
  pending_error_ = status;
  context_.post(*this);
}

void DataPathSocket::onTick() noexcept {
  if (closing_) return;
  if (!tls_early_.empty() && pending_error_ == 0) {
    std::string early;
    early.swap(tls_early_);
    WorkerContext& context = context_;
    context.beginWriteBatch();
    receiveTls(early);
    context.endWriteBatch();
    return;
  }
  if (pending_error_ == 0) return;
  const int status = pending_error_;
  pending_error_ = 0;
  if (close_after_flush_) {
    close();
    return;
  }
  callbacks_->onSocketError(*this, status);
}

void DataPathSocket::startTls(std::unique_ptr<http::TlsSession> session, TlsEnd end,
                              std::string_view already_read) noexcept {
  tls_ = std::move(session);
  tls_end_ = end;
  tls_handshake_reported_ = false;
  tls_eof_reported_ = false;
  if (!tls_) return;
  if (tls_->state() == http::TlsSession::State::kFailed) {  // e.g. an unusable server name
    countTlsFailure();
    failWrite(UV_EPROTO);
    return;
  }
  tls_->start();  // a client's ClientHello; nothing for a server
  sendTlsOutput();
  if (!already_read.empty()) {
    try {
      tls_early_.assign(already_read);
    } catch (...) {
      failWrite(UV_ENOMEM);
      return;
    }
    context_.post(*this);
  }
}

void DataPathSocket::receiveTls(std::string_view ciphertext) noexcept {
  std::string& plaintext = context_.tlsPlaintext();
  plaintext.clear();
  const bool ok = tls_->receive(ciphertext, plaintext);
  sendTlsOutput();  // handshake messages, held data, alerts
  if (!ok) {
    plaintext.clear();
    countTlsFailure();
    stopReading();
    if (!closing_) callbacks_->onSocketError(*this, UV_EPROTO);
    return;
  }
  if (!tls_handshake_reported_ && tls_->state() != http::TlsSession::State::kHandshaking) {
    tls_handshake_reported_ = true;
    DataPathCounters::add(context_.counters().tls_handshakes[static_cast<size_t>(tls_end_)]);
    callbacks_->onSocketTlsHandshake(*this);
    if (closing_) return;
  }
  if (!plaintext.empty()) {
    // The worker's plaintext buffer, like its read buffer, is only written by a read.
    callbacks_->onSocketData(*this, plaintext);
    if (closing_) return;
  }
  if (tls_->state() == http::TlsSession::State::kClosed && !tls_eof_reported_) {
    // close_notify: the peer sends no more.
    tls_eof_reported_ = true;
    stopReading();
    callbacks_->onSocketEof(*this);
  }
}

void DataPathSocket::countTlsFailure() noexcept {
  if (tls_handshake_reported_) return;
  tls_handshake_reported_ = true;
  DataPathCounters::add(context_.counters().tls_handshake_failures[static_cast<size_t>(tls_end_)]);
}

void DataPathSocket::sendTlsOutput() noexcept {
  if (!tls_ || !tls_->hasOutgoing() || closing_ || write_failed_) return;
  std::string& out = context_.tlsCiphertext();
  out.clear();
  tls_->takeOutgoing(out);
  const std::string_view bytes(out);
  writeRaw(&bytes, 1);
  out.clear();
}

void DataPathSocket::dropQueued() noexcept {
  context_.counters().buffered(-static_cast<int64_t>(queued_.size()));
  queued_.clear();
  releaseIfLarge(queued_);
}

void DataPathSocket::sendBatchedNow() noexcept {
  if (batched_ && connected_ && !write_in_flight_ && !write_failed_ && !queued_.empty()) {
    send(nullptr, 0);
  }
}

void DataPathSocket::shutdownWrite() noexcept {
  if (shutdown_requested_ || closing_) return;
  if (tls_ && !write_failed_) {
    tls_->close();
    sendTlsOutput();
  }
  // Whoever ends the stream decides on what is left unwritten: nothing is held back any more.
  sendBatchedNow();
  shutdown_requested_ = true;
  if (connected_ && !write_in_flight_) afterWrite();
}

void DataPathSocket::closeAfterFlush() noexcept {
  if (closing_) return;
  if (tls_ && !write_failed_ && !shutdown_requested_) {
    tls_->close();
    sendTlsOutput();
  }
  sendBatchedNow();
  close_after_flush_ = true;
  if (write_failed_ || !connected_) {
    close();
  } else if (buffered() == 0) {
    closeFlushed();
  }
}

void DataPathSocket::closeFlushed() noexcept {
  // Closing with unread bytes makes the kernel reset the connection, and the reset destroys
  // what it has not sent yet (the last reply, a GOAWAY) before the peer reads it: what the peer
  // sent meanwhile is read and dropped first. A peer that goes on sending past the budget is
  // reset all the same.
  constexpr size_t kDrainBudget = 256 * 1024;
  uv_os_fd_t fd = -1;
  if (!closing_ && uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) == 0) {
    for (size_t drained = 0; drained < kDrainBudget;) {
      const ssize_t n =
          ::recv(fd, context_.readBuffer(), WorkerContext::kReadBufferSize, MSG_DONTWAIT);
      if (n <= 0) break;
      drained += static_cast<size_t>(n);
    }
  }
  close();
}

void DataPathSocket::close() noexcept {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  // Before libuv closes the descriptor, whose number the next socket or file may then get.
  if (edge_triggered_fd_ >= 0) base::unwatchEdgeTriggered(edge_triggered_fd_);
  edge_triggered_fd_ = -1;
  dropQueued();
  context_.cancel(*this);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &DataPathSocket::onClosed);
}

void DataPathSocket::onClosed(uv_handle_t* handle) noexcept {
  auto* self = static_cast<DataPathSocket*>(handle->data);
  self->callbacks_->onSocketClosed(*self);
  delete self;
}

}  // namespace tracecar::proxy
