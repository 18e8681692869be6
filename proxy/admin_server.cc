#include "proxy/admin_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <new>
#include <utility>

#include "exporter/log.h"
#include "http/http1_parser.h"
#include "proxy/data_path_headers.h"
#include "proxy/metrics.h"

namespace tracecar::proxy {
namespace {

constexpr std::string_view kComponent = "admin";
constexpr size_t kReadBufferSize = 64 * 1024;
constexpr int kBacklog = 128;
// After an answer that ends the connection, how long the rest of the request may still arrive
// (and be discarded) so that closing does not reset the connection before the client has read
// the answer.
constexpr std::chrono::milliseconds kMaxLinger{2000};

uv_stream_t* stream(uv_tcp_t* tcp) noexcept { return reinterpret_cast<uv_stream_t*>(tcp); }
uv_handle_t* handle(auto* h) noexcept { return reinterpret_cast<uv_handle_t*>(h); }

std::string uvError(int code) { return uv_strerror(code); }

struct ErrorAnswer {
  int status;
  std::string_view reason_phrase;
  std::string_view text;
  RejectReason reason;
};

ErrorAnswer errorAnswerFor(http::Http1Error error) noexcept {
  switch (error) {
    case http::Http1Error::kHeadersTooLarge:
      return {431, "Request Header Fields Too Large", "request header too large\n",
              RejectReason::kHeaderTooLarge};
    case http::Http1Error::kTooManyHeaders:
      return {431, "Request Header Fields Too Large", "too many header fields\n",
              RejectReason::kTooManyHeaders};
    case http::Http1Error::kUriTooLong:
      return {414, "URI Too Long", "request target too long\n", RejectReason::kUriTooLong};
    case http::Http1Error::kNone:
    case http::Http1Error::kInvalid:
    case http::Http1Error::kUnexpectedEof: break;
  }
  return {400, "Bad Request", "malformed request\n", RejectReason::kBadRequest};
}

}  // namespace

// One accepted connection: a TCP handle and a timer, closed together; the object deletes
// itself from the last close callback.
class AdminServer::Connection : private http::Http1ParserCallbacks {
 public:
  explicit Connection(AdminServer& server)
      : server_(server), parser_(http::Http1Parser::Kind::kRequest, *this, limits(server)) {}

  // Takes the accepted connection fd; over the limit, closes it at once.
  void accept(int fd, bool over_limit) noexcept {
    uv_tcp_init(server_.loop_, &tcp_);
    uv_timer_init(server_.loop_, &timer_);
    tcp_.data = this;
    timer_.data = this;
    handles_open_ = 2;
    if (const int rc = uv_tcp_open(&tcp_, fd); rc < 0) {
      ::close(fd);  // the handle did not take it
      log(LogLevel::kWarn, kComponent, "accept failed: " + uvError(rc));
      closeNow();
      return;
    }
    if (over_limit) {
      closeNow();
      return;
    }
    counted_ = true;
    last_active_ms_ = uv_now(server_.loop_);
    if (server_.sources_.metrics != nullptr) {
      server_.sources_.metrics->connectionOpened(Listener::kAdmin);
    }
    uv_tcp_nodelay(&tcp_, 1);
    startTimer(server_.options_.idle_timeout);
    if (const int rc = uv_read_start(stream(&tcp_), &Connection::onAlloc, &Connection::onRead);
        rc < 0) {
      closeNow();
    }
  }

  bool closing() const noexcept { return state_ == State::kClosing; }
  // Waiting for a request (idle or part-received): closing it loses no answer. Not one that
  // lingers after its last answer: closing that one under unread input could reset the
  // connection before the client read the answer; it ends by itself within kMaxLinger.
  bool evictable() const noexcept { return state_ == State::kReading; }
  // When it last received bytes or finished writing an answer (uv_now of the loop).
  uint64_t lastActive() const noexcept { return last_active_ms_; }

  // Closes both handles without another byte; no-op when already closing.
  void closeNow() noexcept {
    if (state_ == State::kClosing) return;
    state_ = State::kClosing;
    uv_close(handle(&tcp_), &Connection::onClosed);
    uv_close(handle(&timer_), &Connection::onClosed);
  }

  Connection* prev = nullptr;  // the server's list
  Connection* next = nullptr;

 private:
  enum class State : uint8_t {
    kReading,    // waiting for (the rest of) a request
    kWriting,    // an answer is being written; reading paused
    kLingering,  // answered and shut down our side; discarding input until the peer closes
    kClosing,
  };

  static http::Http1Limits limits(const AdminServer& server) {
    http::Http1Limits l;
    l.max_header_bytes = server.options_.max_header_bytes;
    l.max_header_count = 64;
    l.max_uri_length = std::min<size_t>(server.options_.max_header_bytes, 2048);
    return l;
  }

  void startTimer(std::chrono::milliseconds timeout) noexcept {
    uv_timer_start(&timer_, &Connection::onTimer, static_cast<uint64_t>(timeout.count()), 0);
  }

  // ---- libuv callbacks ----

  static void onAlloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) noexcept {
    auto* self = static_cast<Connection*>(h->data);
    *buf = uv_buf_init(self->server_.read_buffer_.get(), kReadBufferSize);
  }

  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    static_cast<Connection*>(s->data)->onReadImpl(nread, buf);
  }

  static void onWritten(uv_write_t* req, int status) noexcept {
    static_cast<Connection*>(req->data)->onWrittenImpl(status);
  }

  static void onShutdown(uv_shutdown_t* req, int status) noexcept {
    auto* self = static_cast<Connection*>(req->data);
    if (self->state_ == State::kClosing) return;
    if (status < 0 || self->peer_closed_) self->closeNow();
  }

  static void onTimer(uv_timer_t* timer) noexcept {
    static_cast<Connection*>(timer->data)->onTimerImpl();
  }

  static void onClosed(uv_handle_t* h) noexcept {
    auto* self = static_cast<Connection*>(h->data);
    if (--self->handles_open_ != 0) return;
    AdminServer& server = self->server_;
    if (self->counted_ && server.sources_.metrics != nullptr) {
      server.sources_.metrics->connectionClosed(Listener::kAdmin);
    }
    server.unlink(self);
    delete self;
    server.connectionGone();
  }

  void onReadImpl(ssize_t nread, const uv_buf_t* buf) noexcept {
    if (state_ == State::kClosing) return;
    if (nread < 0) {
      if (nread != UV_EOF || state_ == State::kLingering) {
        closeNow();
        return;
      }
      peer_closed_ = true;
      uv_read_stop(stream(&tcp_));
      // An answer being written is finished first; any whole request still buffered after it
      // is answered too.
      if (state_ == State::kReading) process();
      return;
    }
    if (nread == 0 || state_ == State::kLingering) return;
    last_active_ms_ = uv_now(server_.loop_);
    try {
      input_.append(buf->base, static_cast<size_t>(nread));
    } catch (const std::bad_alloc&) {
      closeNow();
      return;
    }
    process();
  }

  // Parses what is buffered and answers the next complete request, if any.
  void process() noexcept {
    while (state_ == State::kReading && !input_.empty()) {
      const size_t consumed = parser_.parse(input_);
      input_.erase(0, consumed);
      if (parser_.error() != http::Http1Error::kNone) {
        reject(errorAnswerFor(parser_.error()));
        return;
      }
      if (body_too_large_) {
        sendError(413, "Content Too Large", "request body too large\n");
        return;
      }
      if (!request_ready_) break;  // everything consumed; the request is not complete yet
      request_ready_ = false;
      parser_.resume();
      const bool tunnel = method_ == "CONNECT";
      if (parser_.upgraded() && !tunnel) parser_.resumeAfterUpgrade();  // answered without 101
      if (!host_error_.empty()) {
        reject({400, "Bad Request", host_error_, RejectReason::kBadRequest});
        return;
      }
      try {
        const bool close = tunnel || answer_before_body_;
        Answer answer = server_.answer(method_, target_, version_minor_, keep_alive_ && !close);
        send(std::move(answer.bytes), answer.close || close);
      } catch (const std::exception&) {
        sendError(500, "Internal Server Error", "internal error\n");
      }
    }
    if (state_ == State::kReading && peer_closed_) closeNow();
  }

  void reject(const ErrorAnswer& error) noexcept {
    if (server_.sources_.metrics != nullptr) {
      server_.sources_.metrics->requestRejected(Listener::kAdmin, error.reason);
    }
    sendError(error.status, error.reason_phrase, error.text);
  }

  void sendError(int status, std::string_view reason_phrase, std::string_view text) noexcept {
    std::string bytes;
    try {
      bytes = "HTTP/1.1 " + std::to_string(status) + " ";
      bytes += reason_phrase;
      bytes += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ";
      bytes += std::to_string(text.size());
      bytes += "\r\nConnection: close\r\n\r\n";
      bytes += text;
    } catch (const std::bad_alloc&) {
      closeNow();
      return;
    }
    send(std::move(bytes), true);
  }

  void send(std::string bytes, bool close_after) noexcept {
    writing_ = std::move(bytes);
    close_after_write_ = close_after;
    state_ = State::kWriting;
    if (!peer_closed_) uv_read_stop(stream(&tcp_));  // one answer at a time: no input piles up
    uv_buf_t buf = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
    write_req_.data = this;
    if (uv_write(&write_req_, stream(&tcp_), &buf, 1, &Connection::onWritten) < 0) closeNow();
  }

  void onWrittenImpl(int status) noexcept {
    if (state_ == State::kClosing) return;
    std::string().swap(writing_);  // a /metrics answer can be large: give the memory back
    if (status < 0) {
      closeNow();
      return;
    }
    if (close_after_write_) {
      linger();
      return;
    }
    state_ = State::kReading;
    last_active_ms_ = uv_now(server_.loop_);
    startTimer(server_.options_.idle_timeout);
    if (!peer_closed_ &&
        uv_read_start(stream(&tcp_), &Connection::onAlloc, &Connection::onRead) < 0) {
      closeNow();
      return;
    }
    process();
  }

  // Sends our FIN, then reads and discards until the peer's, so that unread request bytes do
  // not make the kernel reset the connection under the answer.
  void linger() noexcept {
    state_ = State::kLingering;
    input_.clear();
    if (peer_closed_) {
      closeNow();
      return;
    }
    shutdown_req_.data = this;
    if (uv_shutdown(&shutdown_req_, stream(&tcp_), &Connection::onShutdown) < 0 ||
        uv_read_start(stream(&tcp_), &Connection::onAlloc, &Connection::onRead) < 0) {
      closeNow();
      return;
    }
    startTimer(std::min(kMaxLinger, server_.options_.idle_timeout));
  }

  void onTimerImpl() noexcept {
    if (state_ == State::kReading && (parser_.inMessage() || !input_.empty())) {
      // A request started but did not complete in time.
      reject(
          {408, "Request Timeout", "request not received in time\n", RejectReason::kHeaderTimeout});
      if (state_ == State::kWriting) startTimer(server_.options_.idle_timeout);
      return;
    }
    closeNow();
  }

  // ---- Http1ParserCallbacks ----

  bool onHead(http::Http1Head& head) override {
    method_ = std::move(head.method);
    target_ = std::move(head.target);
    version_minor_ = head.version_minor;
    keep_alive_ = head.keep_alive;
    body_bytes_ = 0;
    host_error_ = {};
    // A client that waits for 100 (Continue) before its body: no page takes a body, so the
    // answer comes at once, and the connection closes after it instead of reading a body that
    // may never come (RFC 9110 section 10.1.1).
    answer_before_body_ = (head.chunked || head.content_length.value_or(0) > 0) &&
                          head.headers.hasToken("expect", "100-continue");
    if (answer_before_body_) {
      request_ready_ = true;
      parser_.pause();
    }
    const size_t hosts = head.headers.count("host");
    if (hosts > 1) {
      host_error_ = "more than one Host header\n";
    } else if (hosts == 0 && head.version_minor >= 1) {
      host_error_ = "missing Host header\n";
    } else if (hosts == 1 && !isValidHost(*head.headers.get("host"))) {
      host_error_ = "invalid Host header\n";
    }
    return false;
  }

  void onBody(std::string_view data) override {
    body_bytes_ += data.size();
    if (body_bytes_ > server_.options_.max_body_bytes) {
      body_too_large_ = true;
      parser_.pause();
    }
  }

  void onTrailers(http::HeaderMap& /*trailers*/) override {}

  void onMessageComplete() override {
    request_ready_ = true;
    parser_.pause();  // one request at a time: the rest waits until this one is answered
  }

  AdminServer& server_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_write_t write_req_{};
  uv_shutdown_t shutdown_req_{};
  int handles_open_ = 0;
  bool counted_ = false;  // in the open-connections gauge
  uint64_t last_active_ms_ = 0;
  State state_ = State::kReading;
  bool peer_closed_ = false;
  bool close_after_write_ = false;

  http::Http1Parser parser_;
  std::string input_;    // received, not yet parsed
  std::string writing_;  // the answer in flight

  // The request being received.
  std::string method_;
  std::string target_;
  int version_minor_ = 1;
  bool keep_alive_ = false;
  size_t body_bytes_ = 0;
  std::string_view host_error_;  // why the request's Host makes it a 400; empty when it is fine
  bool body_too_large_ = false;
  bool request_ready_ = false;
  bool answer_before_body_ = false;  // Expect: 100-continue with a body: answered before it
};

// ---- AdminServer ----

AdminServer::AdminServer(uv_loop_t* loop, AdminServerOptions options, AdminSources sources)
    : loop_(loop),
      options_(std::move(options)),
      sources_(std::move(sources)),
      read_buffer_(new char[kReadBufferSize]) {}

AdminServer::~AdminServer() {
  if (!closed()) {
    // The loop still points into this object: going on would corrupt memory.
    log(LogLevel::kError, kComponent, "admin server destroyed before its handles were closed");
    std::abort();
  }
}

absl::Status AdminServer::start() {
  if (listening_ || stopping_) return absl::FailedPreconditionError("admin server already started");
  sockaddr_storage address{};
  const bool v6 = options_.address.find(':') != std::string::npos;
  const int parsed = v6 ? uv_ip6_addr(options_.address.c_str(), options_.port,
                                      reinterpret_cast<sockaddr_in6*>(&address))
                        : uv_ip4_addr(options_.address.c_str(), options_.port,
                                      reinterpret_cast<sockaddr_in*>(&address));
  const std::string where =
      (v6 ? "[" + options_.address + "]" : options_.address) + ":" + std::to_string(options_.port);
  if (parsed < 0) {
    return absl::InvalidArgumentError("admin address " + where + ": not an IP address");
  }
  const int fd = listenOn(address, kBacklog);
  if (fd < 0) {
    stopping_ = true;
    return absl::UnavailableError("admin listener " + where + ": " + uvError(fd));
  }
  port_ = boundPort(fd);
  ++open_handles_;  // the listener's, until its handles have closed
  if (const int rc = listener_.start(
          loop_, fd, [this](int accepted) { onConnection(accepted); }, std::string(kComponent),
          [this] { handleClosed(); });
      rc < 0) {
    if (!listener_.closing()) --open_handles_;
    stopping_ = true;
    return absl::InternalError("admin listener " + where + ": " + uvError(rc));
  }
  listening_ = true;
  return absl::OkStatus();
}

void AdminServer::stop(std::function<void()> on_closed) {
  on_closed_ = std::move(on_closed);
  stopping_ = true;
  if (listening_) {
    listening_ = false;
    listener_.close();
  }
  for (Connection* c = connections_; c != nullptr; c = c->next) c->closeNow();
  if (open_handles_ == 0 && on_closed_) {
    auto done = std::move(on_closed_);
    done();
  }
}

void AdminServer::onConnection(int fd) noexcept {
  // At the limit, the open connection that has waited longest for a request makes way.
  size_t open = 0;
  Connection* oldest = nullptr;
  for (Connection* c = connections_; c != nullptr; c = c->next) {
    if (c->closing()) continue;
    ++open;
    // The list is newest first: on a tie the later one is the older.
    if (c->evictable() && (oldest == nullptr || c->lastActive() <= oldest->lastActive())) {
      oldest = c;
    }
  }
  bool refuse = stopping_;
  if (!refuse && open >= options_.max_connections) {
    if (oldest != nullptr) {
      oldest->closeNow();
    } else {
      refuse = true;
    }
  }
  auto* connection = new (std::nothrow) Connection(*this);
  if (connection == nullptr) {
    ::close(fd);
    return;
  }
  connection->next = connections_;
  if (connections_ != nullptr) connections_->prev = connection;
  connections_ = connection;
  ++open_handles_;
  ++connection_count_;
  connection->accept(fd, refuse);
}

void AdminServer::unlink(Connection* connection) noexcept {
  if (connection->prev != nullptr) connection->prev->next = connection->next;
  if (connection->next != nullptr) connection->next->prev = connection->prev;
  if (connections_ == connection) connections_ = connection->next;
}

void AdminServer::connectionGone() noexcept {
  --connection_count_;
  handleClosed();
}

void AdminServer::handleClosed() noexcept {
  if (--open_handles_ != 0 || !stopping_ || !on_closed_) return;
  auto done = std::move(on_closed_);
  done();  // may destroy this server
}

}  // namespace tracecar::proxy
