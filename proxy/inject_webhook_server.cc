#include "proxy/inject_webhook_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <new>
#include <sstream>
#include <utility>

#include "exporter/log.h"
#include "http/http1_parser.h"
#include "http/tls.h"

namespace tracecar::proxy {
namespace {

constexpr std::string_view kComponent = "inject-webhook";

uv_stream_t* stream(uv_tcp_t* tcp) noexcept { return reinterpret_cast<uv_stream_t*>(tcp); }
uv_handle_t* handle(auto* h) noexcept { return reinterpret_cast<uv_handle_t*>(h); }

// "0.0.0.0:8443", "[::]:8443".
absl::Status parseListen(const std::string& text, sockaddr_storage& out) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("--listen: \"" + text + "\": want ADDRESS:PORT");
  }
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [ptr, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
      port > 65535) {
    return absl::InvalidArgumentError("--listen: \"" + text + "\": the port must be 0-65535");
  }
  int rc;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    rc = uv_ip6_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in6*>(&out));
  } else {
    rc = uv_ip4_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in*>(&out));
  }
  if (rc != 0) {
    return absl::InvalidArgumentError("--listen: \"" + text +
                                      "\": not an IP address (IPv6 goes in brackets)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string httpAnswer(int status, std::string_view reason, std::string_view content_type,
                       std::string_view body, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

}  // namespace

// One TLS connection: a TCP handle and a timer; deletes itself when both are closed.
class InjectWebhookServer::Connection : private http::Http1ParserCallbacks {
 public:
  Connection(InjectWebhookServer& server, std::shared_ptr<const http::TlsContext> tls)
      : server_(server), parser_(http::Http1Parser::Kind::kRequest, *this, limits()) {
    tls_ = http::TlsSession::server(std::move(tls));
  }

  // Takes the accepted connection fd; refuse: closes it at once.
  void accept(int fd, bool refuse) noexcept {
    uv_tcp_init(server_.loop_, &tcp_);
    uv_timer_init(server_.loop_, &timer_);
    tcp_.data = this;
    timer_.data = this;
    if (uv_tcp_open(&tcp_, fd) != 0) {
      ::close(fd);  // the handle did not take it
      closeNow();
      return;
    }
    if (refuse || tls_ == nullptr) {
      closeNow();
      return;
    }
    uv_timer_start(&timer_, &Connection::onTimer,
                   static_cast<uint64_t>(server_.options_.idle_timeout.count()), 0);
    if (uv_read_start(stream(&tcp_), &Connection::onAlloc, &Connection::onRead) != 0) closeNow();
  }

  void closeNow() noexcept {
    if (closing_) return;
    closing_ = true;
    uv_close(handle(&tcp_), &Connection::onClosed);
    uv_close(handle(&timer_), &Connection::onClosed);
  }

  Connection* prev = nullptr;
  Connection* next = nullptr;

 private:
  struct Write {
    uv_write_t req;
    std::string bytes;
    Connection* connection;
  };

  static http::Http1Limits limits() {
    http::Http1Limits l;
    l.max_header_bytes = 16 * 1024;
    l.max_header_count = 64;
    l.max_uri_length = 4096;
    return l;
  }

  static void onAlloc(uv_handle_t* h, size_t /*suggested*/, uv_buf_t* buf) noexcept {
    auto* self = static_cast<Connection*>(h->data);
    *buf = uv_buf_init(self->server_.read_buffer_.get(), kReadBufferSize);
  }

  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<Connection*>(s->data);
    if (self->closing_) return;
    if (nread < 0) {
      self->closeNow();
      return;
    }
    self->received(std::string_view(buf->base, static_cast<size_t>(nread)));
  }

  static void onTimer(uv_timer_t* timer) noexcept {
    static_cast<Connection*>(timer->data)->closeNow();
  }

  static void onWritten(uv_write_t* req, int status) noexcept {
    auto* write = static_cast<Write*>(req->data);
    Connection* self = write->connection;
    delete write;
    --self->writes_pending_;
    if (self->closing_) return;
    if (status < 0 || (self->close_after_write_ && self->writes_pending_ == 0)) self->closeNow();
  }

  static void onClosed(uv_handle_t* h) noexcept {
    auto* self = static_cast<Connection*>(h->data);
    if (++self->handles_closed_ != 2) return;
    InjectWebhookServer& server = self->server_;
    server.unlink(self);
    delete self;
    --server.connection_count_;
    server.handleClosed();
  }

  void received(std::string_view ciphertext) noexcept {
    try {
      std::string plaintext;
      const bool ok = tls_->receive(ciphertext, plaintext);
      flush();
      if (!ok) {
        log(LogLevel::kDebug, kComponent, "TLS failed: " + tls_->error());
        close_after_write_ = true;
        if (writes_pending_ == 0) closeNow();
        return;
      }
      input_ += plaintext;
      process();
    } catch (const std::exception&) {
      closeNow();
    }
  }

  void process() {
    while (!close_after_write_ && !input_.empty()) {
      const size_t consumed = parser_.parse(input_);
      input_.erase(0, consumed);
      if (parser_.error() != http::Http1Error::kNone) {
        respond(httpAnswer(400, "Bad Request", "text/plain", "malformed request\n", false), true);
        return;
      }
      if (body_too_large_) {
        respond(httpAnswer(413, "Content Too Large", "text/plain", "request body too large\n",
                           false),
                true);
        return;
      }
      if (!request_ready_) break;
      request_ready_ = false;
      parser_.resume();
      const bool keep_alive = keep_alive_ && !parser_.upgraded();
      respond(server_.answer(method_, target_, body_, keep_alive), !keep_alive);
      body_.clear();
    }
  }

  void respond(std::string bytes, bool close_after) {
    tls_->send(bytes);
    if (close_after) {
      close_after_write_ = true;
      tls_->close();
    }
    flush();
    if (close_after && writes_pending_ == 0) closeNow();
    uv_timer_start(&timer_, &Connection::onTimer,
                   static_cast<uint64_t>(server_.options_.idle_timeout.count()), 0);
  }

  // Writes the ciphertext the TLS session has for the peer.
  void flush() {
    if (!tls_->hasOutgoing() || closing_) return;
    auto* write = new Write{};
    tls_->takeOutgoing(write->bytes);
    write->connection = this;
    write->req.data = write;
    uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
    if (uv_write(&write->req, stream(&tcp_), &buf, 1, &Connection::onWritten) != 0) {
      delete write;
      closeNow();
      return;
    }
    ++writes_pending_;
  }

  // ---- Http1ParserCallbacks ----
  bool onHead(http::Http1Head& head) override {
    method_ = std::move(head.method);
    target_ = std::move(head.target);
    keep_alive_ = head.keep_alive;
    body_.clear();
    return false;
  }
  void onBody(std::string_view data) override {
    if (body_.size() + data.size() > server_.options_.max_body_bytes) {
      body_too_large_ = true;
      parser_.pause();
      return;
    }
    body_.append(data);
  }
  void onTrailers(http::HeaderMap& /*trailers*/) override {}
  void onMessageComplete() override {
    request_ready_ = true;
    parser_.pause();
  }

  InjectWebhookServer& server_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  int handles_closed_ = 0;
  bool closing_ = false;
  bool close_after_write_ = false;
  size_t writes_pending_ = 0;
  std::unique_ptr<http::TlsSession> tls_;
  http::Http1Parser parser_;
  std::string input_;
  std::string method_;
  std::string target_;
  std::string body_;
  bool keep_alive_ = false;
  bool body_too_large_ = false;
  bool request_ready_ = false;
};

InjectWebhookServer::InjectWebhookServer(uv_loop_t* loop, InjectWebhookOptions options,
                                         InjectionTemplate injection)
    : loop_(loop), options_(std::move(options)), injection_(std::move(injection)) {}

InjectWebhookServer::~InjectWebhookServer() = default;

absl::Status InjectWebhookServer::loadCertificate() {
  absl::StatusOr<std::shared_ptr<ReloadingTlsContext>> context =
      ReloadingTlsContext::server({.cert_file = options_.cert_file,
                                   .key_file = options_.key_file,
                                   .client_ca_file = {},
                                   .alpn = {"http/1.1"}});
  if (!context.ok()) return context.status();
  tls_ = *std::move(context);
  return absl::OkStatus();
}

bool InjectWebhookServer::reloadIfChanged() {
  std::string error;
  switch (tls_->reloadIfChanged(error)) {
    case ReloadingTlsContext::Reload::kReloaded:
      log(LogLevel::kInfo, kComponent, "loaded the certificate " + options_.cert_file);
      return true;
    case ReloadingTlsContext::Reload::kFailed:
      log(LogLevel::kWarn, kComponent, "certificate not reloaded, keeping the previous one: " + error);
      return false;
    case ReloadingTlsContext::Reload::kUnchanged:
      break;
  }
  return false;
}

absl::Status InjectWebhookServer::start() {
  if (absl::Status s = loadCertificate(); !s.ok()) return s;
  sockaddr_storage address{};
  if (absl::Status s = parseListen(options_.listen, address); !s.ok()) return s;
  const int fd = listenOn(address, 128);
  if (fd < 0) {
    stopping_ = true;
    return absl::UnavailableError("listen " + options_.listen + ": " + uv_strerror(fd));
  }
  port_ = boundPort(fd);
  ++open_handles_;  // the listener's, until its handles have closed
  if (const int rc = listener_.start(
          loop_, fd, [this](int accepted) { onConnection(accepted); }, std::string(kComponent),
          [this] { handleClosed(); });
      rc < 0) {
    if (!listener_.closing()) --open_handles_;
    stopping_ = true;
    return absl::UnavailableError("listen " + options_.listen + ": " + uv_strerror(rc));
  }
  listener_open_ = true;
  uv_timer_init(loop_, &reload_timer_);
  reload_timer_.data = this;
  ++open_handles_;
  timer_open_ = true;
  const auto interval = static_cast<uint64_t>(options_.reload_interval.count());
  uv_timer_start(
      &reload_timer_,
      [](uv_timer_t* t) noexcept {
        try {
          static_cast<InjectWebhookServer*>(t->data)->reloadIfChanged();
        } catch (const std::exception&) {
        }
      },
      interval, interval);
  return absl::OkStatus();
}

void InjectWebhookServer::onConnection(int fd) noexcept {
  auto* connection = new (std::nothrow) Connection(*this, tls_->current());
  if (connection == nullptr) {
    ::close(fd);
    return;
  }
  connection->next = connections_;
  if (connections_ != nullptr) connections_->prev = connection;
  connections_ = connection;
  ++open_handles_;
  ++connection_count_;
  connection->accept(fd, stopping_ || connection_count_ > options_.max_connections);
}

void InjectWebhookServer::unlink(Connection* connection) noexcept {
  if (connection->prev != nullptr) connection->prev->next = connection->next;
  if (connection->next != nullptr) connection->next->prev = connection->prev;
  if (connections_ == connection) connections_ = connection->next;
}

void InjectWebhookServer::onHandleClosed(uv_handle_t* h) noexcept {
  static_cast<InjectWebhookServer*>(h->data)->handleClosed();
}

void InjectWebhookServer::handleClosed() noexcept {
  if (--open_handles_ != 0 || !stopping_ || !on_closed_) return;
  auto done = std::move(on_closed_);
  done();
}

void InjectWebhookServer::stop(std::function<void()> on_closed) {
  on_closed_ = std::move(on_closed);
  stopping_ = true;
  if (listener_open_) {
    listener_open_ = false;
    listener_.close();
  }
  if (timer_open_) {
    timer_open_ = false;
    uv_close(handle(&reload_timer_), &InjectWebhookServer::onHandleClosed);
  }
  for (Connection* c = connections_; c != nullptr; c = c->next) c->closeNow();
  if (open_handles_ == 0 && on_closed_) {
    auto done = std::move(on_closed_);
    done();
  }
}

std::string InjectWebhookServer::answer(std::string_view method, std::string_view target,
                                        std::string_view body, bool keep_alive) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/healthz" || path == "/readyz") {
    if (method != "GET" && method != "HEAD") {
      return httpAnswer(405, "Method Not Allowed", "text/plain", "use GET\n", keep_alive);
    }
    return httpAnswer(200, "OK", "text/plain", method == "HEAD" ? "" : "ok\n", keep_alive);
  }
  if (path != "/inject") {
    return httpAnswer(404, "Not Found", "text/plain", "not found; POST /inject\n", keep_alive);
  }
  if (method != "POST") {
    return httpAnswer(405, "Method Not Allowed", "text/plain", "use POST\n", keep_alive);
  }
  const ReviewResult result = review(injection_, body);
  for (const std::string& warning : result.warnings) log(LogLevel::kWarn, kComponent, warning);
  const std::string pod = result.pod.empty() ? "" : " " + result.pod;
  log(LogLevel::kInfo, kComponent,
      result.injected ? "injected pod" + pod : "not injected" + pod + ": " + result.skipped);
  return httpAnswer(200, "OK", "application/json", result.body, keep_alive);
}

// ---- the command ----

void addInjectWebhookOptions(CLI::App& command, InjectWebhookOptions& options) {
  command.add_option("--listen", options.listen, "HTTPS listen address, ADDRESS:PORT")
      ->capture_default_str();
  command.add_option("--tls-cert", options.cert_file, "PEM certificate (chain) to serve")
      ->required()
      ->type_name("FILE");
  command.add_option("--tls-key", options.key_file, "PEM private key of the certificate")
      ->required()
      ->type_name("FILE");
  command
      .add_option("--template", options.template_file,
                  "the containers to inject, as the chart renders them (JSON: "
                  "{\"initContainer\": {...}, \"sidecar\": {...}})")
      ->required()
      ->type_name("FILE");
  command
      .add_option_function<double>(
          "--reload-interval",
          [&options](double seconds) {
            if (!(seconds >= 0.1 && seconds <= 3600)) {
              throw CLI::ValidationError("--reload-interval", "must be 0.1 to 3600 seconds");
            }
            options.reload_interval =
                std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
          },
          "seconds between checks of the certificate files for a change (default 10)")
      ->type_name("SECONDS");
  command.add_option("--ready-file", options.ready_file,
                     "once listening, write {\"port\":N,\"pid\":N} here")
      ->type_name("PATH");
}

int runInjectWebhook(const InjectWebhookOptions& options) {
  auto text = readFile(options.template_file);
  if (!text.ok()) {
    std::fprintf(stderr, "tracecar inject-webhook: --template: %s\n",
                 std::string(text.status().message()).c_str());
    return 1;
  }
  auto injection = parseInjectionTemplate(*text);
  if (!injection.ok()) {
    std::fprintf(stderr, "tracecar inject-webhook: %s: %s\n", options.template_file.c_str(),
                 std::string(injection.status().message()).c_str());
    return 1;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto server = std::make_unique<InjectWebhookServer>(&loop, options, std::move(*injection));
  if (absl::Status s = server->start(); !s.ok()) {
    std::fprintf(stderr, "tracecar inject-webhook: %s\n", std::string(s.message()).c_str());
    server->stop([] {});
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return absl::IsInvalidArgument(s) && s.message().substr(0, 8) == "--listen" ? 2 : 1;
  }
  log(LogLevel::kInfo, kComponent,
      "listening on " + options.listen + " (port " + std::to_string(server->port()) +
          "), POST /inject; template " + options.template_file);
  if (!options.ready_file.empty()) {
    const std::string tmp = options.ready_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w"); f != nullptr) {
      std::fprintf(f, "{\"port\":%u,\"pid\":%d}\n", server->port(), static_cast<int>(getpid()));
      std::fclose(f);
      std::rename(tmp.c_str(), options.ready_file.c_str());
    }
  }

  struct Stopper {
    InjectWebhookServer* server;
    uv_signal_t term{}, interrupt{};
  } stopper{server.get()};
  auto onSignal = [](uv_signal_t* signal, int signum) noexcept {
    auto* s = static_cast<Stopper*>(signal->data);
    log(LogLevel::kInfo, kComponent, "signal " + std::to_string(signum) + ": stopping");
    uv_close(reinterpret_cast<uv_handle_t*>(&s->term), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&s->interrupt), nullptr);
    s->server->stop({[] {}});
  };
  for (uv_signal_t* signal : {&stopper.term, &stopper.interrupt}) {
    uv_signal_init(&loop, signal);
    signal->data = &stopper;
  }
  uv_signal_start(&stopper.term, onSignal, SIGTERM);
  uv_signal_start(&stopper.interrupt, onSignal, SIGINT);
  uv_run(&loop, UV_RUN_DEFAULT);
  server.reset();
  uv_loop_close(&loop);
  return 0;
}

}  // namespace tracecar::proxy
