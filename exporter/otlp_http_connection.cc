#include "exporter/otlp_http_connection.h"

#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <utility>

#include "exporter/log.h"
#include "http/tcp_address.h"
#include "http/tls.h"

namespace tracecar::exporter {
namespace {

constexpr size_t kReadBufferSize = 64 * 1024;

constexpr std::string_view kComponent = "exporter";
constexpr size_t kExcerptBytes = 200;  // of an untrusted text, in a log line

std::string uvError(int code) { return uv_strerror(code); }

bool isTokenChar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isToken(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), isTokenChar);
}

// A field value may hold visible characters, spaces and tabs, never CR, LF or NUL: a value
// from the environment must not be able to add a header line of its own.
bool isFieldValue(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

// Headers the transport writes itself.
bool isReservedHeader(std::string_view name) noexcept {
  for (std::string_view reserved : {"host", "content-length", "content-type", "content-encoding",
                                    "transfer-encoding", "connection", "keep-alive", "te",
                                    "upgrade", "expect", "trailer"}) {
    if (http::HeaderMap::nameEquals(name, reserved)) return true;
  }
  return false;
}

uv_stream_t* stream(uv_tcp_t* tcp) noexcept { return reinterpret_cast<uv_stream_t*>(tcp); }

}  // namespace

std::string logExcerpt(std::string_view text) {
  std::string out;
  const size_t n = std::min(text.size(), kExcerptBytes);
  out.reserve(n + 3);
  for (size_t i = 0; i < n; ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    out.push_back(u >= 0x20 && u < 0x7f ? text[i] : '.');
  }
  if (text.size() > n) out += "...";
  return out;
}

std::string otlpRequestHeadPrefix(const OtlpConfig& config, std::string_view version) {
  const bool json = config.protocol == OtlpProtocol::kHttpJson;
  bool user_agent_configured = false;
  std::string extra;
  for (const auto& [name, value] : config.headers) {
    if (!isToken(name) || !isFieldValue(value)) {
      log(LogLevel::kWarn, kComponent,
          "OTLP header \"" + logExcerpt(name) + "\" is not a valid HTTP field; not sent");
      continue;
    }
    if (isReservedHeader(name)) {
      log(LogLevel::kWarn, kComponent,
          "OTLP header \"" + name + "\" is set by the exporter itself; not sent");
      continue;
    }
    if (http::HeaderMap::nameEquals(name, "user-agent")) user_agent_configured = true;
    extra += name;
    extra += ": ";
    extra += value;
    extra += "\r\n";
  }

  std::string head = "POST " + config.endpoint.path + " HTTP/1.1\r\nHost: " +
                     config.endpoint.hostHeader() + "\r\nContent-Type: " +
                     (json ? "application/json" : "application/x-protobuf") + "\r\n";
  if (!user_agent_configured) {
    head += "User-Agent: tracecar";
    if (!version.empty()) {
      head += '/';
      head += version;
    }
    head += "\r\n";
  }
  if (config.compression == Compression::kGzip) head += "Content-Encoding: gzip\r\n";
  head += extra;
  return head;
}

absl::StatusOr<OtlpHttpConnection*> OtlpHttpConnection::open(
    uv_loop_t* loop, const OtlpHttpTarget& target, OtlpHttpConnectionCallbacks& callbacks,
    uint64_t id) {
  OtlpHttpConnection* connection = nullptr;
  try {
    connection = new OtlpHttpConnection(loop, target, callbacks, id);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory opening a connection");
  }
  if (absl::Status status = connection->start(); !status.ok()) {
    delete connection;
    return status;
  }
  return connection;
}

OtlpHttpConnection::OtlpHttpConnection(uv_loop_t* loop, const OtlpHttpTarget& target,
                                       OtlpHttpConnectionCallbacks& callbacks, uint64_t id)
    : loop_(loop),
      target_(target),
      callbacks_(callbacks),
      id_(id),
      read_buffer_(new char[kReadBufferSize]),
      parser_(http::Http1Parser::Kind::kResponse, *this) {}

OtlpHttpConnection::~OtlpHttpConnection() = default;

absl::Status OtlpHttpConnection::start() noexcept {
  if (target_.tls) {
    tls_ = http::TlsSession::client(target_.tls, target_.host);
    if (!tls_) return absl::InternalError("TLS: cannot create a session");
    tls_->start();
    tls_->takeOutgoing(queued_);
  }
  dns_req_.data = this;
  const int rc = http::resolveTcp(loop_, &dns_req_, &OtlpHttpConnection::onResolved,
                                  target_.host, target_.port);
  if (rc < 0) {
    return absl::UnavailableError("resolving " + target_.host + ": " + uvError(rc));
  }
  dns_pending_ = true;
  return absl::OkStatus();
}

bool OtlpHttpConnection::reusable() const noexcept {
  return !failed_ && !dead_ && !released_ && !in_request_ && !body_in_flight_;
}

void OtlpHttpConnection::send(std::string_view head, std::string_view body) noexcept {
  if (!reusable()) return;  // the owner checks reusable() first
  in_request_ = true;
  response_complete_ = false;
  response_.status = 0;
  response_.reason.clear();
  response_.content_type.clear();
  response_.content_encoding.clear();
  response_.retry_after.reset();
  response_.body.clear();
  response_.body_truncated = false;
  try {
    if (tls_) {
      if (!tls_->send(head) || !tls_->send(body)) {
        fail(tls_->error().empty() ? std::string("TLS failed") : tls_->error());
        return;
      }
      tls_->takeOutgoing(queued_);
    } else {
      queued_.append(head);
      queued_body_ = body;
    }
  } catch (const std::bad_alloc&) {
    fail("out of memory writing the request");
    return;
  }
  flushWrites();
}

void OtlpHttpConnection::release() noexcept {
  if (released_) return;
  released_ = true;
  dead_ = true;
  queued_body_ = {};  // the owner's buffer: not ours to read after this
  // Canceled or not, its callback still comes and is the one to free the connection.
  if (dns_pending_) uv_cancel(reinterpret_cast<uv_req_t*>(&dns_req_));
  closeSocket(false);
  if (depth_ == 0) {
    ++depth_;
    leave();
  }
}

void OtlpHttpConnection::leave() noexcept {
  if (--depth_ != 0 || !released_ || open_sockets_ != 0 || dns_pending_) return;
  OtlpHttpConnectionCallbacks& callbacks = callbacks_;
  delete this;
  callbacks.onConnectionReleased();
}

// ---- connecting ----

void OtlpHttpConnection::onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) noexcept {
  auto* self = static_cast<OtlpHttpConnection*>(req->data);
  self->enter();
  self->onResolvedImpl(status, result);
  self->leave();
}

void OtlpHttpConnection::onResolvedImpl(int status, addrinfo* result) noexcept {
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

void OtlpHttpConnection::connectNext() noexcept {
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
                                  &OtlpHttpConnection::onConnected);
    if (rc == 0) return;
    last_connect_error_ = uvError(rc) + " (" + http::describeAddress(address) + ")";
    closeSocket(false);
  }
  fail("cannot connect to " + target_.host + ": " +
       (last_connect_error_.empty() ? std::string("no usable address") : last_connect_error_));
}

void OtlpHttpConnection::onConnected(uv_connect_t* req, int status) noexcept {
  auto* self = static_cast<OtlpHttpConnection*>(req->data);
  self->enter();
  self->onConnectedImpl(status);
  self->leave();
}

void OtlpHttpConnection::onConnectedImpl(int status) noexcept {
  if (status == UV_ECANCELED || released_ || failed_ || socket_ == nullptr) return;
  if (status < 0) {
    last_connect_error_ =
        uvError(status) + " (" + http::describeAddress(addresses_[next_address_ - 1]) + ")";
    closeSocket(false);
    connectNext();
    return;
  }
  connected_ = true;
  if (const int rc = uv_read_start(stream(&socket_->tcp), &OtlpHttpConnection::onAlloc,
                                   &OtlpHttpConnection::onRead);
      rc < 0) {
    fail("reading from the collector: " + uvError(rc));
    return;
  }
  flushWrites();
}

// ---- writing ----

void OtlpHttpConnection::flushWrites() noexcept {
  if (write_in_flight_ || !connected_ || socket_ == nullptr) return;
  if (queued_.empty() && queued_body_.empty()) return;
  writing_.swap(queued_);
  queued_.clear();
  uv_buf_t bufs[2];
  unsigned count = 0;
  if (!writing_.empty()) {
    bufs[count++] = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
  }
  if (!queued_body_.empty()) {
    // libuv reads but never writes a buffer it is given to write.
    bufs[count++] = uv_buf_init(const_cast<char*>(queued_body_.data()),
                                static_cast<unsigned>(queued_body_.size()));
    queued_body_ = {};
    body_in_flight_ = true;
  }
  write_req_.data = this;
  const int rc =
      uv_write(&write_req_, stream(&socket_->tcp), bufs, count, &OtlpHttpConnection::onWritten);
  if (rc < 0) {
    fail("writing to the collector: " + uvError(rc));
    return;
  }
  write_in_flight_ = true;
}

void OtlpHttpConnection::onWritten(uv_write_t* req, int status) noexcept {
  auto* self = static_cast<OtlpHttpConnection*>(req->data);
  self->enter();
  self->onWrittenImpl(status);
  self->leave();
}

void OtlpHttpConnection::onWrittenImpl(int status) noexcept {
  write_in_flight_ = false;
  body_in_flight_ = false;
  writing_.clear();
  if (status == UV_ECANCELED || released_ || failed_) return;
  if (status < 0) {
    fail("writing to the collector: " + uvError(status));
    return;
  }
  flushWrites();
}

// ---- reading ----

void OtlpHttpConnection::onAlloc(uv_handle_t* handle, size_t /*suggested*/,
                                 uv_buf_t* buf) noexcept {
  auto* self = static_cast<Socket*>(handle->data)->owner;
  *buf = uv_buf_init(self->read_buffer_.get(), kReadBufferSize);
}

void OtlpHttpConnection::onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* self = static_cast<Socket*>(stream->data)->owner;
  self->enter();
  self->onReadImpl(nread, buf);
  self->leave();
}

void OtlpHttpConnection::onReadImpl(ssize_t nread, const uv_buf_t* buf) noexcept {
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
  if (!plaintext_.empty()) {
    feed(plaintext_);
    plaintext_.clear();
  }
  if (!failed_ && !released_ && !dead_ && tls_->state() == http::TlsSession::State::kClosed) {
    onEof();
  }
}

void OtlpHttpConnection::feed(std::string_view data) noexcept {
  while (!data.empty() && !failed_ && !released_) {
    if (!in_request_) {
      // Bytes nobody asked for: the connection can no longer be trusted to frame answers.
      closeQuietly();
      return;
    }
    const size_t consumed = parser_.parse(data);
    if (parser_.error() != http::Http1Error::kNone) {
      fail("malformed response from the collector: " + std::string(parser_.errorReason()));
      return;
    }
    data.remove_prefix(consumed);
    if (!response_complete_) {
      if (!data.empty()) {
        fail("malformed response from the collector: unexpected protocol switch");
        return;
      }
      break;
    }
    response_complete_ = false;
    in_request_ = false;
    parser_.resume();
    // An answer before the whole request was written: the rest of the body would reach the
    // collector as the start of the next request (and the caller may change it once answered).
    if (!response_keep_alive_ || !data.empty() || body_in_flight_ || !queued_body_.empty()) {
      closeQuietly();
    }
    callbacks_.onResponse(response_);
    return;
  }
}

void OtlpHttpConnection::onEof() noexcept {
  if (!in_request_) {
    // The collector closed an idle connection (its idle timeout): the next request opens another.
    closeQuietly();
    return;
  }
  parser_.finish();
  if (response_complete_) {
    response_complete_ = false;
    in_request_ = false;
    closeQuietly();
    callbacks_.onResponse(response_);
    return;
  }
  if (parser_.error() != http::Http1Error::kNone &&
      parser_.error() != http::Http1Error::kUnexpectedEof) {
    fail("malformed response from the collector: " + std::string(parser_.errorReason()));
    return;
  }
  fail(parser_.error() == http::Http1Error::kUnexpectedEof
           ? "the collector closed the connection in the middle of its answer"
           : "the collector closed the connection without answering");
}

bool OtlpHttpConnection::onHead(http::Http1Head& head) {
  response_.status = head.status;
  try {
    response_.reason = head.reason;
    response_.content_type = std::string(head.headers.get("content-type").value_or(""));
    response_.content_encoding = std::string(head.headers.get("content-encoding").value_or(""));
    if (auto retry_after = head.headers.get("retry-after")) {
      response_.retry_after = std::string(*retry_after);
    }
  } catch (const std::bad_alloc&) {
    // Headers only refine the answer; the status alone decides what happens.
  }
  response_keep_alive_ = head.keep_alive;
  return false;  // never a HEAD request
}

void OtlpHttpConnection::onBody(std::string_view data) {
  const size_t room = target_.max_body_bytes - std::min(target_.max_body_bytes, response_.body.size());
  if (data.size() > room) response_.body_truncated = true;
  try {
    response_.body.append(data.substr(0, room));
  } catch (const std::bad_alloc&) {
    response_.body_truncated = true;
  }
}

void OtlpHttpConnection::onTrailers(http::HeaderMap& /*trailers*/) {}

void OtlpHttpConnection::onMessageComplete() {
  // An interim answer (100 Continue and the like): the real one follows.
  if (response_.status >= 100 && response_.status < 200) {
    response_.status = 0;
    response_.body.clear();
    return;
  }
  response_complete_ = true;
  parser_.pause();  // what follows belongs to no request
}

// ---- closing ----

void OtlpHttpConnection::fail(std::string reason) noexcept {
  if (failed_ || released_) return;
  failed_ = true;
  dead_ = true;
  queued_body_ = {};  // never written now
  failure_ = std::move(reason);
  // Reported from a libuv callback, never from inside send(): once the socket is closed, or
  // when the pending resolution completes.
  if (socket_ != nullptr) {
    closeSocket(true);
  } else if (!dns_pending_) {
    deliverFailure();
  }
}

void OtlpHttpConnection::deliverFailure() noexcept {
  if (!in_request_ || released_) return;
  in_request_ = false;
  callbacks_.onConnectionFailure(failure_);
}

void OtlpHttpConnection::closeQuietly() noexcept {
  dead_ = true;
  queued_body_ = {};  // never written now
  closeSocket(false);
}

void OtlpHttpConnection::closeSocket(bool report_failure) noexcept {
  if (socket_ == nullptr) return;
  Socket* socket = socket_;
  socket_ = nullptr;
  connected_ = false;
  socket->report_failure = report_failure;
  uv_close(reinterpret_cast<uv_handle_t*>(&socket->tcp), &OtlpHttpConnection::onSocketClosed);
}

void OtlpHttpConnection::onSocketClosed(uv_handle_t* handle) noexcept {
  auto* socket = static_cast<Socket*>(handle->data);
  OtlpHttpConnection* self = socket->owner;
  self->enter();
  self->onSocketClosedImpl(socket);
  self->leave();
}

void OtlpHttpConnection::onSocketClosedImpl(Socket* socket) noexcept {
  const bool report = socket->report_failure;
  delete socket;
  --open_sockets_;
  if (report) deliverFailure();
}

absl::StatusOr<OtlpHttpTarget> otlpTarget(const OtlpConfig& config, size_t max_body_bytes,
                                          std::string_view alpn, std::string_view who) {
  const Endpoint& endpoint = config.endpoint;
  if (endpoint.scheme != "http" && endpoint.scheme != "https") {
    return absl::InvalidArgumentError(std::string(who) + ": unsupported scheme \"" +
                                      logExcerpt(endpoint.scheme) + "\"");
  }
  if (endpoint.host.empty() || endpoint.port == 0) {
    return absl::InvalidArgumentError(std::string(who) + ": the endpoint has no host or port");
  }
  OtlpHttpTarget target;
  target.host = endpoint.host;
  target.port = endpoint.port;
  target.max_body_bytes = max_body_bytes;
  if (endpoint.tls()) {
    http::TlsClientConfig tls;
    tls.ca_file = config.certificate;
    tls.cert_file = config.client_certificate;
    tls.key_file = config.client_key;
    tls.alpn = {std::string(alpn)};
    auto context = http::TlsContext::client(tls);
    if (!context.ok()) {
      return absl::Status(context.status().code(),
                          std::string(who) + ": " + std::string(context.status().message()));
    }
    target.tls = *std::move(context);
  }
  return target;
}

}  // namespace tracecar::exporter
