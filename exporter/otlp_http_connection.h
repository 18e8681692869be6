#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/otlp_config.h"
#include "http/http1_parser.h"

namespace tracecar::http {
class TlsContext;
class TlsSession;
}  // namespace tracecar::http

namespace tracecar::exporter {

// What the exporter needs of one answer from the collector.
struct OtlpHttpResponse {
  int status = 0;
  std::string reason;
  std::string content_type;
  std::string content_encoding;
  std::optional<std::string> retry_after;
  std::string body;             // the first max_body_bytes of the body
  bool body_truncated = false;  // the body was longer
};

// The request line and the headers every export carries: all but Content-Length, which differs
// per batch. Configured headers that are not valid HTTP fields (a CR or LF in a value would add
// a header line of its own), or that the transport writes itself, are left out with a warning.
// User-Agent is tracecar/<version> unless one is configured.
std::string otlpRequestHeadPrefix(const OtlpConfig& config, std::string_view version);

// The start of untrusted text, printable ASCII only (others become '.'), for a log line.
std::string logExcerpt(std::string_view text);

class OtlpHttpConnectionCallbacks {
 public:
  virtual ~OtlpHttpConnectionCallbacks() = default;
  // The complete answer to the request in flight.
  virtual void onResponse(const OtlpHttpResponse& response) = 0;
  // The request in flight will get no answer (DNS, connect, TLS, reset, malformed or missing
  // response); the connection is dead.
  virtual void onConnectionFailure(std::string_view reason) = 0;
  // A released connection has closed its last handle and freed itself.
  virtual void onConnectionReleased() = 0;
};

// Where and how to connect.
struct OtlpHttpTarget {
  std::string host;  // DNS name or IP literal (no brackets): resolved, and the TLS server name
  uint16_t port = 0;
  std::shared_ptr<const http::TlsContext> tls;  // null: plain TCP
  size_t max_body_bytes = 64 * 1024;
};

// The target of config's endpoint, for either transport: an http or https URL with a host and
// a port, and for https a TLS client context with config's files offering alpn. Errors start
// with who (e.g. "OTLP/HTTP exporter").
absl::StatusOr<OtlpHttpTarget> otlpTarget(const OtlpConfig& config, size_t max_body_bytes,
                                          std::string_view alpn, std::string_view who);

// One HTTP/1.1 client connection to the collector on a libuv loop: resolves the host (on every
// open, so a collector that moved is found), tries its addresses in order, then speaks TLS
// over memory BIOs when asked. One request at a time; kept alive between requests.
//
// Lifetime: the owner creates it with open() and gives it up with release(); it then closes
// its handles, deletes itself once the last one is closed (from that handle's libuv callback,
// or inside release() when nothing was left open) and reports onConnectionReleased. No
// callback is made from inside open() or send().
class OtlpHttpConnection : private http::Http1ParserCallbacks {
 public:
  // Starts resolving. An error (and nothing to release) when that cannot even start.
  static absl::StatusOr<OtlpHttpConnection*> open(uv_loop_t* loop, const OtlpHttpTarget& target,
                                                  OtlpHttpConnectionCallbacks& callbacks,
                                                  uint64_t id);

  // Sends one request: head (up to and including the blank line) then body. The head is copied;
  // so is the body over TLS, but over plain TCP it is written from where it lies (a batch is
  // hundreds of kilobytes): the caller keeps it unchanged until the answer or the failure is
  // reported or the connection is released. The answer, or the failure, comes through the
  // callbacks. Only when reusable().
  void send(std::string_view head, std::string_view body) noexcept;

  // Can carry a request now: not failed, not closed by the collector, none in flight, no body
  // being written (an answer that came before the whole body was written closes it).
  bool reusable() const noexcept;
  // Which of this exporter's connections it is (from 1), for logs.
  uint64_t id() const noexcept { return id_; }

  // Closes the connection; no callback but onConnectionReleased after this.
  void release() noexcept;

 private:
  struct Socket {
    uv_tcp_t tcp{};
    OtlpHttpConnection* owner = nullptr;
    bool report_failure = false;  // its close ends the request in flight with failure_
  };

  OtlpHttpConnection(uv_loop_t* loop, const OtlpHttpTarget& target,
                     OtlpHttpConnectionCallbacks& callbacks, uint64_t id);
  ~OtlpHttpConnection() override;

  absl::Status start() noexcept;
  void connectNext() noexcept;
  void onResolvedImpl(int status, addrinfo* result) noexcept;
  void onConnectedImpl(int status) noexcept;
  void onWrittenImpl(int status) noexcept;
  void onReadImpl(ssize_t nread, const uv_buf_t* buf) noexcept;
  void onSocketClosedImpl(Socket* socket) noexcept;
  void onEof() noexcept;
  void feed(std::string_view data) noexcept;
  void queueOutgoing(std::string_view data) noexcept;
  void flushWrites() noexcept;
  void fail(std::string reason) noexcept;
  void deliverFailure() noexcept;
  void closeQuietly() noexcept;
  void closeSocket(bool report_failure) noexcept;
  void enter() noexcept { ++depth_; }
  void leave() noexcept;  // may delete this: the last thing a libuv callback does

  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) noexcept;
  static void onConnected(uv_connect_t* req, int status) noexcept;
  static void onWritten(uv_write_t* req, int status) noexcept;
  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void onSocketClosed(uv_handle_t* handle) noexcept;

  // Http1ParserCallbacks.
  bool onHead(http::Http1Head& head) override;
  void onBody(std::string_view data) override;
  void onTrailers(http::HeaderMap& trailers) override;
  void onMessageComplete() override;

  uv_loop_t* const loop_;
  const OtlpHttpTarget target_;
  OtlpHttpConnectionCallbacks& callbacks_;
  const uint64_t id_;

  uv_getaddrinfo_t dns_req_{};
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  bool dns_pending_ = false;
  std::vector<sockaddr_storage> addresses_;
  size_t next_address_ = 0;
  std::string last_connect_error_;
  Socket* socket_ = nullptr;  // the socket connecting or connected
  int open_sockets_ = 0;      // including those still closing
  bool connected_ = false;

  std::unique_ptr<http::TlsSession> tls_;
  std::unique_ptr<char[]> read_buffer_;
  std::string plaintext_;  // decrypted, waiting for the parser
  std::string queued_;     // bytes to write once the current write is done
  // Plain TCP: the request body, written after queued_ (on whichever of the addresses connects).
  std::string_view queued_body_;
  std::string writing_;    // bytes of the write in flight (then the body, if any)
  bool write_in_flight_ = false;
  bool body_in_flight_ = false;  // the write in flight reads the owner's body

  http::Http1Parser parser_;
  OtlpHttpResponse response_;
  bool response_complete_ = false;
  bool response_keep_alive_ = true;

  bool in_request_ = false;
  bool failed_ = false;  // dead after a failure (failure_ says why)
  bool dead_ = false;    // closed by the collector, or not fit for another request
  bool released_ = false;
  std::string failure_;
  int depth_ = 0;  // libuv callbacks of ours on the stack
};

}  // namespace tracecar::exporter
