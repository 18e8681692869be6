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

#include "exporter/otlp_http_connection.h"
#include "http/h2_session.h"

namespace tracecar::exporter {

// What the exporter needs of one gRPC answer.
struct OtlpGrpcResponse {
  int http_status = 0;
  std::string content_type;
  std::optional<int> grpc_status;  // from the trailers, or a trailers-only response's headers
  std::string grpc_message;        // as received (percent-encoded)
  std::string status_details;      // grpc-status-details-bin as received (base64)
  std::string grpc_encoding;       // of the response message
  std::string body;                // the first max_body_bytes of the DATA
  bool body_truncated = false;
};

class OtlpGrpcConnectionCallbacks {
 public:
  virtual ~OtlpGrpcConnectionCallbacks() = default;
  // The stream in flight ended with its trailers (or a trailers-only response).
  virtual void onResponse(const OtlpGrpcResponse& response) = 0;
  // The request in flight will get no answer (DNS, connect, TLS, ALPN, reset stream, GOAWAY,
  // connection error); the connection is dead.
  virtual void onConnectionFailure(std::string_view reason) = 0;
  // A released connection has closed its last handle and freed itself.
  virtual void onConnectionReleased() = 0;
};

// One HTTP/2 client connection to the collector on a libuv loop (h2c with prior knowledge, or
// TLS with ALPN h2), carrying one unary call at a time and kept for the next batch until the
// collector sends GOAWAY or something fails. Connecting and lifetime are as OtlpHttpConnection:
// open(), then release(); it deletes itself once its last handle closed and reports
// onConnectionReleased. No callback is made from inside open() or send().
class OtlpGrpcConnection : private http::H2SessionCallbacks {
 public:
  static absl::StatusOr<OtlpGrpcConnection*> open(uv_loop_t* loop, const OtlpHttpTarget& target,
                                                  OtlpGrpcConnectionCallbacks& callbacks,
                                                  uint64_t id);

  // Starts one call: head (pseudo-header fields and metadata) and the whole body, copied.
  void send(const http::H2Head& head, std::string_view body) noexcept;

  // Can carry a call now: not failed, no GOAWAY, none in flight.
  bool reusable() const noexcept;
  uint64_t id() const noexcept { return id_; }
  void release() noexcept;

 private:
  struct Socket {
    uv_tcp_t tcp{};
    OtlpGrpcConnection* owner = nullptr;
    bool report_failure = false;
  };

  OtlpGrpcConnection(uv_loop_t* loop, const OtlpHttpTarget& target,
                     OtlpGrpcConnectionCallbacks& callbacks, uint64_t id);
  ~OtlpGrpcConnection() override;

  absl::Status start() noexcept;
  void connectNext() noexcept;
  void onResolvedImpl(int status, addrinfo* result) noexcept;
  void onConnectedImpl(int status) noexcept;
  void onWrittenImpl(int status) noexcept;
  void onReadImpl(ssize_t nread, const uv_buf_t* buf) noexcept;
  void onSocketClosedImpl(Socket* socket) noexcept;
  void onEof() noexcept;
  void feed(std::string_view data) noexcept;
  void flushSession() noexcept;  // frames from the session to the socket
  void flushWrites() noexcept;
  void fail(std::string reason) noexcept;
  void deliverFailure() noexcept;
  void closeQuietly() noexcept;
  void closeSocket(bool report_failure) noexcept;
  void enter() noexcept { ++depth_; }
  void leave() noexcept;  // may delete this

  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) noexcept;
  static void onConnected(uv_connect_t* req, int status) noexcept;
  static void onWritten(uv_write_t* req, int status) noexcept;
  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void onSocketClosed(uv_handle_t* handle) noexcept;

  // H2SessionCallbacks.
  void onHeaders(int32_t stream_id, http::H2Head& head) override;
  void onData(int32_t stream_id, std::string_view data) override;
  void onTrailers(int32_t stream_id, http::HeaderMap& trailers) override;
  void onEndStream(int32_t stream_id) override;
  void onStreamClose(int32_t stream_id, http::H2ErrorCode code,
                     http::H2CloseCause cause) override;
  void onGoaway(int32_t last_stream_id, http::H2ErrorCode code,
                std::string_view debug_data) override;
  void onConnectionError(std::string_view reason) override;
  void readStatus(const http::HeaderMap& fields);

  uv_loop_t* const loop_;
  const OtlpHttpTarget target_;
  OtlpGrpcConnectionCallbacks& callbacks_;
  const uint64_t id_;

  uv_getaddrinfo_t dns_req_{};
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  bool dns_pending_ = false;
  std::vector<sockaddr_storage> addresses_;
  size_t next_address_ = 0;
  std::string last_connect_error_;
  Socket* socket_ = nullptr;
  int open_sockets_ = 0;
  bool connected_ = false;

  std::unique_ptr<http::TlsSession> tls_;
  bool alpn_checked_ = false;
  std::unique_ptr<http::H2Session> session_;
  std::unique_ptr<char[]> read_buffer_;
  std::string plaintext_;
  std::string frames_;   // from the session, on their way to TLS or the socket
  std::string queued_;   // bytes to write once the current write is done
  std::string writing_;  // bytes of the write in flight
  bool write_in_flight_ = false;

  int32_t stream_ = 0;  // the call in flight
  OtlpGrpcResponse response_;
  bool response_ended_ = false;

  bool in_request_ = false;
  bool failed_ = false;
  bool dead_ = false;  // GOAWAY received or closed: no new call
  bool released_ = false;
  std::string failure_;
  int depth_ = 0;
};

}  // namespace tracecar::exporter
