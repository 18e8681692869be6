#include "exporter/otlp_grpc_connection.h"

#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <new>
#include <utility>

#include "exporter/log.h"
#include "http/tcp_address.h"
#include "http/tls.h"

namespace tracecar::exporter {
namespace {

constexpr size_t kReadBufferSize = 64 * 1024;

std::string uvError(int code) { return uv_strerror(code); }

uv_stream_t* stream(uv_tcp_t* tcp) noexcept { return reinterpret_cast<uv_stream_t*>(tcp); }

}  // namespace

absl::StatusOr<OtlpGrpcConnection*> OtlpGrpcConnection::open(
    uv_loop_t* loop, const OtlpHttpTarget& target, OtlpGrpcConnectionCallbacks& callbacks,
    uint64_t id) {
  OtlpGrpcConnection* connection = nullptr;
  try {
    connection = new OtlpGrpcConnection(loop, target, callbacks, id);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory opening a connection");
  }
  if (absl::Status status = connection->start(); !status.ok()) {
    delete connection;
    return status;
  }
  return connection;
}

OtlpGrpcConnection::OtlpGrpcConnection(uv_loop_t* loop, const OtlpHttpTarget& target,
                                       OtlpGrpcConnectionCallbacks& callbacks, uint64_t id)
    : loop_(loop),
      target_(target),
      callbacks_(callbacks),
      id_(id),
      read_buffer_(new char[kReadBufferSize]) {}

OtlpGrpcConnection::~OtlpGrpcConnection() = default;

absl::Status OtlpGrpcConnection::start() noexcept {
  auto session = http::H2Session::create(http::H2Session::Kind::kClient, *this);
  if (!session.ok()) return session.status();
  session_ = *std::move(session);
  if (target_.tls) {
    tls_ = http::TlsSession::client(target_.tls, target_.host);
    if (!tls_) return absl::InternalError("TLS: cannot create a session");
    tls_->start();
    tls_->takeOutgoing(queued_);
  }
  flushSession();  // the connection preface and our SETTINGS, first thing on the wire
  if (failed_) return absl::InternalError(failure_);
  dns_req_.data = this;
  const int rc = http::resolveTcp(loop_, &dns_req_, &OtlpGrpcConnection::onResolved,
                                  target_.host, target_.port);
  if (rc < 0) {
    return absl::UnavailableError("resolving " + target_.host + ": " + uvError(rc));
  }
  dns_pending_ = true;
  return absl::OkStatus();
}

bool OtlpGrpcConnection::reusable() const noexcept {
  return !failed_ && !dead_ && !released_ && !in_request_ && session_->canOpenStream();
}

void OtlpGrpcConnection::send(const http::H2Head& head, std::string_view body) noexcept {
  if (!reusable()) return;  // the owner checks reusable() first
  response_ = OtlpGrpcResponse();
  response_ended_ = false;
  absl::StatusOr<int32_t> id = session_->submitRequest(head, false);
  if (!id.ok()) {
    in_request_ = true;
    fail("starting the call: " + std::string(id.status().message()));
    return;
  }
  stream_ = *id;
  in_request_ = true;
  if (absl::Status st = session_->submitData(stream_, body, true); !st.ok()) {
    fail("sending the request: " + std::string(st.message()));
    return;
  }
  flushSession();
}

void OtlpGrpcConnection::flushSession() noexcept {
  if (failed_ || released_) return;
  frames_.clear();
  const absl::Status sent = session_->send(frames_);
  try {
    if (tls_) {
      if (!frames_.empty() && !tls_->send(frames_)) {
        fail(tls_->error().empty() ? std::string("TLS failed") : tls_->error());
        return;
      }
      tls_->takeOutgoing(queued_);
    } else {
      queued_.append(frames_);
    }
  } catch (const std::bad_alloc&) {
    fail("out of memory writing to the collector");
    return;
  }
  frames_.clear();
  if (!sent.ok()) {
    fail("HTTP/2: " + std::string(sent.message()));
    return;
  }
  flushWrites();
  if (session_->finished() && !failed_) {
    // Both sides are done with the connection (a GOAWAY and no stream left).
    if (in_request_) {
      fail("the collector ended the HTTP/2 connection");
    } else {
      closeQuietly();
    }
  }
}

void OtlpGrpcConnection::release() noexcept {
  if (released_) return;
  released_ = true;
  dead_ = true;
  // Canceled or not, its callback still comes and is the one to free the connection.
  if (dns_pending_) uv_cancel(reinterpret_cast<uv_req_t*>(&dns_req_));
  closeSocket(false);
  if (depth_ == 0) {
    ++depth_;
    leave();
  }
}

void OtlpGrpcConnection::leave() noexcept {
  if (--depth_ != 0 || !released_ || open_sockets_ != 0 || dns_pending_) return;
  OtlpGrpcConnectionCallbacks& callbacks = callbacks_;
  delete this;
  callbacks.onConnectionReleased();
}

// ---- connecting ----

void OtlpGrpcConnection::onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) noexcept {
  auto* self = static_cast<OtlpGrpcConnection*>(req->data);
  self->enter();
  self->onResolvedImpl(status, result);
  self->leave();
}

void OtlpGrpcConnection::onResolvedImpl(int status, addrinfo* result) noexcept {
  dns_pending_ = false;
  if (released_ || failed_) {
    if (result != nullptr) uv_freeaddrinfo(result);
    deliverFailure();  // a failure of send() while resolving waited for this callback
    return;
  }
  if (status < 0) {
    fail("resolving " + target_.host + ": " + uvError(status));
    return;
  }
  try {
    http::appendAddresses(result, addresses_);
  } catch (const std::bad_alloc&) {
    // Try the addresses copied so far.
  }
  uv_freeaddrinfo(result);
  if (addresses_.empty()) {
    fail("resolving " + target_.host + ": no address");
    return;
  }
  connectNext();
}

void OtlpGrpcConnection::connectNext() noexcept {
  while (next_address_ < addresses_.size()) {
    const sockaddr_storage& address = addresses_[next_address_++];
    auto* socket = new (std::nothrow) Socket;
    if (socket == nullptr) break;
    socket->owner = this;
    if (const int rc = uv_tcp_init(loop_, &socket->tcp); rc < 0) {
      last_connect_error_ = uvError(rc);
      delete socket;
      continue;
    }
    socket->tcp.data = socket;
    ++open_sockets_;
    socket_ = socket;
    uv_tcp_nodelay(&socket->tcp, 1);  // a request's tail must not wait for a delayed ACK
    connect_req_.data = this;
    const int rc = uv_tcp_connect(&connect_req_, &socket->tcp,
                                  reinterpret_cast<const sockaddr*>(&address),
                                  &OtlpGrpcConnection::onConnected);
    if (rc == 0) return;
    last_connect_error_ = uvError(rc) + " (" + http::describeAddress(address) + ")";
    closeSocket(false);
  }
  fail("cannot connect to " + target_.host + ": " +
       (last_connect_error_.empty() ? std::string("no usable address") : last_connect_error_));
}

void OtlpGrpcConnection::onConnected(uv_connect_t* req, int status) noexcept {
  auto* self = static_cast<OtlpGrpcConnection*>(req->data);
  self->enter();
  self->onConnectedImpl(status);
  self->leave();
}

void OtlpGrpcConnection::onConnectedImpl(int status) noexcept {
  if (status == UV_ECANCELED || released_ || failed_ || socket_ == nullptr) return;
  if (status < 0) {
    last_connect_error_ =
        uvError(status) + " (" + http::describeAddress(addresses_[next_address_ - 1]) + ")";
    closeSocket(false);
    connectNext();
    return;
  }
  connected_ = true;
  if (const int rc = uv_read_start(stream(&socket_->tcp), &OtlpGrpcConnection::onAlloc,
                                   &OtlpGrpcConnection::onRead);
      rc < 0) {
    fail("reading from the collector: " + uvError(rc));
    return;
  }
  flushWrites();
}

// ---- writing ----

void OtlpGrpcConnection::flushWrites() noexcept {
  if (write_in_flight_ || !connected_ || socket_ == nullptr || queued_.empty()) return;
  writing_.swap(queued_);
  queued_.clear();
  uv_buf_t buf = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
  write_req_.data = this;
  const int rc =
      uv_write(&write_req_, stream(&socket_->tcp), &buf, 1, &OtlpGrpcConnection::onWritten);
  if (rc < 0) {
    fail("writing to the collector: " + uvError(rc));
    return;
  }
  write_in_flight_ = true;
}

void OtlpGrpcConnection::onWritten(uv_write_t* req, int status) noexcept {
  auto* self = static_cast<OtlpGrpcConnection*>(req->data);
  self->enter();
  self->onWrittenImpl(status);
  self->leave();
}

void OtlpGrpcConnection::onWrittenImpl(int status) noexcept {
  write_in_flight_ = false;
  writing_.clear();
  if (status == UV_ECANCELED || released_ || failed_) return;
  if (status < 0) {
    fail("writing to the collector: " + uvError(status));
    return;
  }
  flushWrites();
}

// ---- reading ----

void OtlpGrpcConnection::onAlloc(uv_handle_t* handle, size_t /*suggested*/,
                                 uv_buf_t* buf) noexcept {
  auto* self = static_cast<Socket*>(handle->data)->owner;
  *buf = uv_buf_init(self->read_buffer_.get(), kReadBufferSize);
}

void OtlpGrpcConnection::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* self = static_cast<Socket*>(stream->data)->owner;
  self->enter();
  self->onReadImpl(nread, buf);
  self->leave();
}

void OtlpGrpcConnection::onReadImpl(ssize_t nread, const uv_buf_t* buf) noexcept {
  if (released_ || failed_ || nread == 0) return;
  if (nread == UV_EOF) {
    onEof();
    return;
  }
  if (nread < 0) {
    fail("reading from the collector: " + uvError(static_cast<int>(nread)));
    return;
  }
  const std::string_view data(buf->base, static_cast<size_t>(nread));
  if (!tls_) {
    feed(data);
    return;
  }
  const bool ok = tls_->receive(data, plaintext_);
  tls_->takeOutgoing(queued_);  // handshake messages, or an alert worth sending
  flushWrites();
  if (!ok) {
    fail(tls_->error().empty() ? std::string("TLS failed") : tls_->error());
    return;
  }
  if (failed_) return;
  if (!alpn_checked_ && tls_->state() == http::TlsSession::State::kOpen) {
    alpn_checked_ = true;
    if (tls_->alpnSelected() != "h2") {
      fail("the collector did not agree to HTTP/2 over TLS (ALPN h2)");
      return;
    }
  }
  if (!plaintext_.empty()) {
    feed(plaintext_);
    plaintext_.clear();
  }
  if (!failed_ && !released_ && !dead_ && tls_->state() == http::TlsSession::State::kClosed) {
    onEof();
  }
}

void OtlpGrpcConnection::feed(std::string_view data) noexcept {
  if (failed_ || released_) return;
  const absl::Status received = session_->receive(data);
  if (released_) return;
  if (!received.ok() && !failed_) {
    fail("HTTP/2: " + std::string(received.message()));
    return;
  }
  flushSession();  // WINDOW_UPDATE, SETTINGS and PING ACKs, or the GOAWAY of an error
}

void OtlpGrpcConnection::onEof() noexcept {
  if (!in_request_) {
    closeQuietly();  // an idle connection the collector closed: the next call opens another
    return;
  }
  fail("the collector closed the connection without answering");
}

// ---- HTTP/2 events ----

void OtlpGrpcConnection::readStatus(const http::HeaderMap& fields) {
  if (auto status = fields.get("grpc-status")) {
    int code = -1;
    const auto [end, ec] = std::from_chars(status->data(), status->data() + status->size(), code);
    if (ec == std::errc() && end == status->data() + status->size()) response_.grpc_status = code;
  }
  if (auto message = fields.get("grpc-message")) response_.grpc_message = std::string(*message);
  if (auto details = fields.get("grpc-status-details-bin")) {
    response_.status_details = std::string(*details);
  }
}

void OtlpGrpcConnection::onHeaders(int32_t stream_id, http::H2Head& head) {
  if (stream_id != stream_ || released_ || head.status < 200) return;
  response_.http_status = head.status;
  response_.content_type = std::string(head.headers.get("content-type").value_or(""));
  response_.grpc_encoding = std::string(head.headers.get("grpc-encoding").value_or(""));
  readStatus(head.headers);  // a trailers-only response carries the status here
}

void OtlpGrpcConnection::onData(int32_t stream_id, std::string_view data) {
  session_->consume(stream_id, data.size());  // kept or dropped, it is read
  if (stream_id != stream_ || released_) return;
  const size_t room =
      target_.max_body_bytes - std::min(target_.max_body_bytes, response_.body.size());
  if (data.size() > room) response_.body_truncated = true;
  response_.body.append(data.substr(0, room));
}

void OtlpGrpcConnection::onTrailers(int32_t stream_id, http::HeaderMap& trailers) {
  if (stream_id == stream_ && !released_) readStatus(trailers);
}

void OtlpGrpcConnection::onEndStream(int32_t stream_id) {
  if (stream_id == stream_) response_ended_ = true;
}

void OtlpGrpcConnection::onStreamClose(int32_t stream_id, http::H2ErrorCode code,
                                       http::H2CloseCause cause) {
  if (stream_id != stream_ || released_ || failed_) return;
  stream_ = 0;
  if (cause == http::H2CloseCause::kDone && response_ended_) {
    in_request_ = false;
    callbacks_.onResponse(response_);
    return;
  }
  fail("the call ended without an answer: stream " + std::string(http::h2CloseCauseName(cause)) +
       " (" + std::string(http::h2ErrorCodeName(code)) + ")");
}

void OtlpGrpcConnection::onGoaway(int32_t last_stream_id, http::H2ErrorCode code,
                                  std::string_view debug_data) {
  dead_ = true;  // the call in flight may still finish; the next one opens a new connection
  if (code != http::H2ErrorCode::kNoError || logEnabled(LogLevel::kDebug)) {
    log(code == http::H2ErrorCode::kNoError ? LogLevel::kDebug : LogLevel::kWarn, "exporter",
        "the collector sent GOAWAY " + std::string(http::h2ErrorCodeName(code)) +
            " (last stream " + std::to_string(last_stream_id) + ")" +
            (debug_data.empty() ? "" : ": " + logExcerpt(debug_data)));
  }
}

void OtlpGrpcConnection::onConnectionError(std::string_view reason) {
  fail("HTTP/2: " + std::string(reason));
}

// ---- closing ----

void OtlpGrpcConnection::fail(std::string reason) noexcept {
  if (failed_ || released_) return;
  failed_ = true;
  dead_ = true;
  failure_ = std::move(reason);
  // Reported from a libuv callback, never from inside send(): once the socket is closed, or
  // when the pending resolution completes.
  if (socket_ != nullptr) {
    closeSocket(true);
  } else if (!dns_pending_) {
    deliverFailure();
  }
}

void OtlpGrpcConnection::deliverFailure() noexcept {
  if (!in_request_ || released_) return;
  in_request_ = false;
  callbacks_.onConnectionFailure(failure_);
}

void OtlpGrpcConnection::closeQuietly() noexcept {
  dead_ = true;
  closeSocket(false);
}

void OtlpGrpcConnection::closeSocket(bool report_failure) noexcept {
  if (socket_ == nullptr) return;
  Socket* socket = socket_;
  socket_ = nullptr;
  connected_ = false;
  socket->report_failure = report_failure;
  uv_close(reinterpret_cast<uv_handle_t*>(&socket->tcp), &OtlpGrpcConnection::onSocketClosed);
}

void OtlpGrpcConnection::onSocketClosed(uv_handle_t* handle) noexcept {
  auto* socket = static_cast<Socket*>(handle->data);
  OtlpGrpcConnection* self = socket->owner;
  self->enter();
  self->onSocketClosedImpl(socket);
  self->leave();
}

void OtlpGrpcConnection::onSocketClosedImpl(Socket* socket) noexcept {
  const bool report = socket->report_failure;
  delete socket;
  --open_sockets_;
  if (report) deliverFailure();
}

}  // namespace tracecar::exporter
