#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "http/tls.h"
#include "proxy/data_path_counters.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

class DataPathSocket;

// Events of a DataPathSocket, all from libuv callbacks (never from inside a DataPathSocket
// call).
class DataPathSocketCallbacks {
 public:
  virtual ~DataPathSocketCallbacks() = default;
  virtual void onSocketConnected(DataPathSocket& /*socket*/, int /*status*/) noexcept {}
  // Bytes read; they live in the worker's read buffer until this returns: copy what you keep.
  virtual void onSocketData(DataPathSocket& socket, std::string_view data) noexcept = 0;
  // The peer will send no more (reading has stopped; writing still works).
  virtual void onSocketEof(DataPathSocket& socket) noexcept = 0;
  // Reading or writing failed (reset...): nothing more will be written; close the socket.
  virtual void onSocketError(DataPathSocket& socket, int status) noexcept = 0;
  // What waits to be written went over the high-water mark and is now at the low one.
  virtual void onSocketWritable(DataPathSocket& socket) noexcept = 0;
  // After close(): the handle is closed; the socket is deleted when this returns.
  virtual void onSocketClosed(DataPathSocket& socket) noexcept = 0;
  // TLS (after startTls): the handshake completed; the agreed ALPN protocol is known. A failed
  // handshake is an onSocketError with UV_EPROTO instead (tlsError() says why).
  virtual void onSocketTlsHandshake(DataPathSocket& /*socket*/) noexcept {}
};

// Where a new downstream connection comes from: a descriptor accept4 returned (the data path's
// listeners accept by themselves, ListenerSocket), or a libuv listening stream with a
// connection waiting (uv_accept takes it).
struct AcceptSource {
  AcceptSource(uv_stream_t* listening) noexcept : server(listening) {}  // NOLINT: implicit
  static AcceptSource descriptor(int accepted) noexcept {
    AcceptSource source(nullptr);
    source.fd = accepted;
    return source;
  }
  uv_stream_t* server = nullptr;
  int fd = -1;
};

// A TCP connection on a worker's loop with a write queue that never blocks: write() tries the
// socket first and queues what it would not take. Writes that wait count in the worker's
// buffered-bytes gauge; the high-water mark is the producer's signal to stop reading its own
// peer (overHighWater()), onSocketWritable the signal to resume. While the worker has a write
// batch open (during a read callback), writes are gathered and sent together when it ends.
//
// With startTls, a TLS session sits between the connection and its owner: onSocketData gets
// plaintext, write() takes plaintext, shutdownWrite() and closeAfterFlush() send close_notify
// first, and the write queue and its high-water mark count ciphertext.
class DataPathSocket final : private Tickable, private BatchFlushable {
 public:
  DataPathSocket(WorkerContext& context, DataPathSocketCallbacks& callbacks) noexcept;
  DataPathSocket(const DataPathSocket&) = delete;
  DataPathSocket& operator=(const DataPathSocket&) = delete;

  // Makes the handle. On failure the socket has no handle: free it with discard().
  int init() noexcept;
  void discard() noexcept { delete this; }
  uv_tcp_t* tcp() noexcept { return &tcp_; }
  // Takes the connection: the descriptor, or the next connection of the listening stream.
  int accept(const AcceptSource& from) noexcept;
  // Starts connecting; onSocketConnected follows (status < 0 on failure). Writes before that
  // wait in the queue.
  int connect(const sockaddr* address) noexcept;

  int startReading() noexcept;
  void stopReading() noexcept;
  bool reading() const noexcept { return reading_; }

  void write(std::string_view data) noexcept;
  // The parts back to back, in one system call when the socket takes them at once.
  void write(std::initializer_list<std::string_view> parts) noexcept;
  size_t buffered() const noexcept { return writing_.size() + queued_.size(); }
  bool overHighWater() const noexcept;
  // What waits to go out: the write queue, and with TLS the plaintext held for the handshake.
  size_t waiting() const noexcept {
    return buffered() + (tls_ ? tls_->pendingPlaintext() : 0);
  }
  bool writeFailed() const noexcept { return write_failed_; }
  bool connected() const noexcept { return connected_; }

  // Sends FIN once everything queued is written.
  void shutdownWrite() noexcept;
  // Closes when everything queued is written (or writing failed), after reading and dropping
  // what the peer sent meanwhile (up to 256 KiB), so that the close does not reset the
  // connection under the bytes just written.
  void closeAfterFlush() noexcept;
  // Closes now; what is queued is dropped. onSocketClosed follows.
  void close() noexcept;
  bool closing() const noexcept { return closing_; }

  // Puts TLS on the connection: from now on what is read is decrypted and what is written is
  // encrypted. already_read: ciphertext the owner read before (a sniffed ClientHello), fed to
  // the session at once; events for it come on the next loop turn, never from inside this call.
  // A client session's ClientHello goes out now.
  // The handshake is counted in the worker's counters under end.
  void startTls(std::unique_ptr<http::TlsSession> session, TlsEnd end,
                std::string_view already_read = {}) noexcept;
  bool tls() const noexcept { return tls_ != nullptr; }
  // Is this error (from onSocketError) the TLS layer's: a failed handshake or record? The
  // session reports those as UV_EPROTO, which a plain TCP socket never gives.
  bool tlsFailed(int status) const noexcept { return status == UV_EPROTO && tls_ != nullptr; }
  bool tlsOpen() const noexcept {
    return tls_ != nullptr && tls_->state() == http::TlsSession::State::kOpen;
  }
  // The protocol ALPN agreed on ("h2", "http/1.1"); empty without TLS or agreement.
  std::string_view alpn() const noexcept { return tls_ ? tls_->alpnSelected() : std::string_view(); }
  // Why the TLS session failed; empty when it did not.
  std::string_view tlsError() const noexcept {
    return tls_ ? std::string_view(tls_->error()) : std::string_view();
  }

  // Hands the socket's events to another owner (a connection found to speak HTTP/2 goes from
  // the HTTP/1.1 session that sniffed it to an HTTP/2 one). From the next event on.
  void setCallbacks(DataPathSocketCallbacks& callbacks) noexcept { callbacks_ = &callbacks; }

 private:
  ~DataPathSocket() override;

  static void onAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void onWritten(uv_write_t* req, int status) noexcept;
  static void onConnect(uv_connect_t* req, int status) noexcept;
  static void onShutdown(uv_shutdown_t* req, int status) noexcept;
  static void onClosed(uv_handle_t* handle) noexcept;
  void onTick() noexcept override;
  void closeFlushed() noexcept;  // closeAfterFlush's close, once nothing is queued
  void flushBatch() noexcept override;
  // The connection's descriptor is watched edge-triggered (base/edge_triggered.h) until close.
  void watchEdgeTriggered() noexcept;

  uv_stream_t* stream() noexcept { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  void queue(std::string_view data) noexcept;
  // Holds parts back until the batch ends; false when they must be written now instead.
  bool deferParts(const std::string_view* parts, size_t count) noexcept;
  // What is queued, then parts: what the socket takes now, the rest through uv_write.
  // Only when connected and no write is in flight.
  void send(const std::string_view* parts, size_t count) noexcept;
  void writeParts(const std::string_view* parts, size_t count) noexcept;
  // Bytes as they go on the wire (ciphertext with TLS).
  void writeRaw(const std::string_view* parts, size_t count) noexcept;
  // Sends what a write batch holds back now instead of when the batch ends.
  void sendBatchedNow() noexcept;
  void flush() noexcept;
  void afterWrite() noexcept;
  void failWrite(int status) noexcept;
  void dropQueued() noexcept;
  // TLS: ciphertext in (events to the owner), ciphertext out (to the connection).
  void receiveTls(std::string_view ciphertext) noexcept;
  void sendTlsOutput() noexcept;
  void countTlsFailure() noexcept;  // once, and only while the handshake is not done

  WorkerContext& context_;
  DataPathSocketCallbacks* callbacks_;
  uv_tcp_t tcp_{};
  uv_write_t write_req_{};
  uv_connect_t connect_req_{};
  uv_shutdown_t shutdown_req_{};
  std::string writing_;  // handed to uv_write
  std::string queued_;   // waiting for the write in flight
  int pending_error_ = 0;
  int edge_triggered_fd_ = -1;  // see watchEdgeTriggered
  bool connected_ = false;
  bool reading_ = false;
  bool write_in_flight_ = false;
  bool write_failed_ = false;
  bool over_high_water_ = false;
  bool shutdown_requested_ = false;
  bool shutdown_sent_ = false;
  bool close_after_flush_ = false;
  bool closing_ = false;
  bool batched_ = false;  // waiting for the worker's write batch to end
  std::unique_ptr<http::TlsSession> tls_;
  // Ciphertext given to startTls, and any read after it before the next loop turn feeds it.
  std::string tls_early_;
  TlsEnd tls_end_ = TlsEnd::kInbound;
  bool tls_handshake_reported_ = false;
  bool tls_eof_reported_ = false;
};

}  // namespace tracecar::proxy
