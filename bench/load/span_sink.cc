// An OTLP/HTTP trace sink for the load benchmark: it only counts the spans it receives.
//
// Listens on 127.0.0.1 (port 0 unless --port N), HTTP/1.1 with keep-alive, and prints
// "PORT <n>" once listening. Every POST is answered 200 with an empty body after its spans are
// counted: the body is a protobuf ExportTraceServiceRequest (gzip-decoded when so encoded),
// walked on the wire format (ResourceSpans = 1 > ScopeSpans = 2 > Span = 2), so no schema is
// needed. GET /count answers "<spans> <export requests>\n". On SIGTERM or SIGINT it prints
// "spans <n> requests <n> bad <n>" and exits 0.
//
// Native (one thread, libuv, tracecar's HTTP/1.1 parser) so that counting a batch takes the
// load's CPU for microseconds, not the milliseconds an interpreted walk of 512 spans takes.
#include <uv.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/ascii.h"
#include "exporter/gzip.h"
#include "http/http1_parser.h"

namespace {

constexpr size_t kMaxBody = 64 << 20;

struct Totals {
  uint64_t spans = 0;
  uint64_t requests = 0;
  uint64_t bad = 0;  // bodies that did not parse as an ExportTraceServiceRequest
} g_totals;

// ---- protobuf wire walk ----

bool readVarint(std::string_view buf, size_t& pos, uint64_t& out) {
  out = 0;
  for (int shift = 0; shift < 64 && pos < buf.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(buf[pos++]);
    out |= uint64_t{byte & 0x7fU} << shift;
    if (byte < 0x80) return true;
  }
  return false;
}

// Calls field(number, payload) for each length-delimited field of buf and skips the others;
// false when buf is not a well-formed message.
template <class Field>
bool forEachField(std::string_view buf, Field&& field) {
  size_t pos = 0;
  while (pos < buf.size()) {
    uint64_t key = 0;
    if (!readVarint(buf, pos, key)) return false;
    switch (key & 7) {
      case 0: {
        uint64_t ignored = 0;
        if (!readVarint(buf, pos, ignored)) return false;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 2: {
        uint64_t length = 0;
        if (!readVarint(buf, pos, length) || length > buf.size() - pos) return false;
        if (!field(key >> 3, buf.substr(pos, length))) return false;
        pos += length;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        return false;
    }
  }
  return pos == buf.size();
}

std::optional<uint64_t> countSpans(std::string_view body) {
  uint64_t count = 0;
  const bool ok = forEachField(body, [&](uint64_t number, std::string_view resource_spans) {
    if (number != 1) return true;
    return forEachField(resource_spans, [&](uint64_t number2, std::string_view scope_spans) {
      if (number2 != 2) return true;
      return forEachField(scope_spans, [&](uint64_t number3, std::string_view) {
        if (number3 == 2) ++count;
        return true;
      });
    });
  });
  if (!ok) return std::nullopt;
  return count;
}

// ---- connections ----

class Connection final : public tracecar::http::Http1ParserCallbacks {
 public:
  explicit Connection(uv_loop_t* loop) { uv_tcp_init(loop, &tcp_); tcp_.data = this; }

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  void start() {
    if (uv_read_start(stream(), &Connection::onAlloc, &Connection::onRead) != 0) close();
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_),
             [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
  }

 private:
  struct Write {
    uv_write_t req{};
    std::string bytes;
    bool close_after = false;
    Connection* connection = nullptr;
  };

  static void onAlloc(uv_handle_t* /*handle*/, size_t /*suggested*/, uv_buf_t* buf) {
    static char buffer[256 * 1024];
    *buf = uv_buf_init(buffer, sizeof buffer);
  }

  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<Connection*>(s->data);
    if (nread < 0) {
      self->close();
      return;
    }
    std::string_view data(buf->base, static_cast<size_t>(nread));
    while (!data.empty() && !self->closing_) {
      const size_t used = self->parser_.parse(data);
      if (self->parser_.error() != tracecar::http::Http1Error::kNone) {
        self->reply(400, "", true);
        return;
      }
      if (used == 0) break;
      data.remove_prefix(used);
    }
  }

  bool onHead(tracecar::http::Http1Head& head) override {
    method_ = head.method;
    target_ = head.target;
    keep_alive_ = head.keep_alive;
    const std::optional<std::string_view> encoding = head.headers.get("content-encoding");
    gzip_ = encoding && tracecar::ascii::equalsIgnoreCase(*encoding, "gzip");
    body_.clear();
    too_big_ = false;
    return false;
  }

  void onBody(std::string_view data) override {
    if (too_big_ || body_.size() + data.size() > kMaxBody) {
      too_big_ = true;
      return;
    }
    body_.append(data);
  }

  void onTrailers(tracecar::http::HeaderMap& /*trailers*/) override {}

  void onMessageComplete() override {
    if (method_ == "GET" && target_.rfind("/count", 0) == 0) {
      reply(200,
            std::to_string(g_totals.spans) + " " + std::to_string(g_totals.requests) + "\n",
            !keep_alive_);
      return;
    }
    if (method_ == "POST") {
      ++g_totals.requests;
      std::optional<uint64_t> spans;
      if (!too_big_) {
        if (gzip_) {
          if (tracecar::exporter::gzipDecompress(body_, plain_, kMaxBody).ok()) {
            spans = countSpans(plain_);
          }
        } else {
          spans = countSpans(body_);
        }
      }
      if (spans) {
        g_totals.spans += *spans;
      } else {
        ++g_totals.bad;
      }
    }
    if (body_.capacity() > (1 << 20)) std::string().swap(body_);
    if (plain_.capacity() > (1 << 20)) std::string().swap(plain_);
    reply(200, "", !keep_alive_);
  }

  void reply(int status, const std::string& payload, bool close_after) {
    auto* w = new Write;
    w->connection = this;
    w->close_after = close_after;
    w->bytes = "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Bad Request") +
               "\r\nContent-Type: text/plain\r\nContent-Length: " +
               std::to_string(payload.size()) + "\r\n" +
               (close_after ? "Connection: close\r\n" : "") + "\r\n" + payload;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    if (close_after) uv_read_stop(stream());
    if (uv_write(&w->req, stream(), &buf, 1, [](uv_write_t* req, int write_status) {
          std::unique_ptr<Write> done(static_cast<Write*>(req->data));
          if (write_status != 0 || done->close_after) done->connection->close();
        }) != 0) {
      delete w;
      close();
    }
  }

  uv_tcp_t tcp_{};
  tracecar::http::Http1Parser parser_{tracecar::http::Http1Parser::Kind::kRequest, *this};
  std::string method_;
  std::string target_;
  std::string body_;
  std::string plain_;  // a gzip body, decoded
  bool keep_alive_ = true;
  bool gzip_ = false;
  bool too_big_ = false;
  bool closing_ = false;
};

void onConnection(uv_stream_t* server, int status) {
  if (status != 0) return;
  auto* c = new Connection(server->loop);
  if (uv_accept(server, c->stream()) != 0) {
    c->close();
    return;
  }
  uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(c->stream()), 1);
  c->start();
}

void onSignal(uv_signal_t* /*handle*/, int /*signum*/) {
  std::printf("spans %llu requests %llu bad %llu\n",
              static_cast<unsigned long long>(g_totals.spans),
              static_cast<unsigned long long>(g_totals.requests),
              static_cast<unsigned long long>(g_totals.bad));
  std::fflush(stdout);
  std::_Exit(0);  // open keep-alive connections need no goodbye
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: span_sink [--port N]\n"
          "An OTLP/HTTP trace sink that counts the spans it receives (127.0.0.1, port 0 by\n"
          "default). Prints \"PORT <n>\" once listening; GET /count answers \"<spans> "
          "<requests>\";\nSIGTERM or SIGINT prints the totals and exits.\n");
      return 0;
    } else {
      std::fprintf(stderr, "span_sink: unknown argument '%s' (try --help)\n", argv[i]);
      return 2;
    }
  }
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "span_sink: --port must be 0 to 65535\n");
    return 2;
  }
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server{};
  uv_tcp_init(loop, &server);
  sockaddr_in address{};
  uv_ip4_addr("127.0.0.1", port, &address);
  int rc = uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&address), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server), 512, onConnection);
  if (rc != 0) {
    std::fprintf(stderr, "span_sink: listening on 127.0.0.1:%d: %s\n", port, uv_strerror(rc));
    return 1;
  }
  sockaddr_storage bound{};
  int length = sizeof bound;
  uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&bound), &length);
  std::printf("PORT %d\n", ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port));
  std::fflush(stdout);
  uv_signal_t term{};
  uv_signal_t interrupt{};
  uv_signal_init(loop, &term);
  uv_signal_init(loop, &interrupt);
  uv_signal_start(&term, onSignal, SIGTERM);
  uv_signal_start(&interrupt, onSignal, SIGINT);
  return uv_run(loop, UV_RUN_DEFAULT);
}
