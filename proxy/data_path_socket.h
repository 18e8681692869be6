#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

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
};

// A TCP connection on a worker's loop with a write queue that never blocks: write() tries the
// socket first and queues what it would not take. Writes that wait count in the worker's
// buffered-bytes gauge; the high-water mark is the producer's signal to stop reading its own
// peer (overHighWater()), onSocketWritable the signal to resume. While the worker has a write
// batch open (during a read callback), writes are gathered and sent together when it ends.
class DataPathSocket final : private Tickable, private BatchFlushable {
 public:
  DataPathSocket(WorkerContext& context, DataPathSocketCallbacks& callbacks) noexcept;
  DataPathSocket(const DataPathSocket&) = delete;
  DataPathSocket& operator=(const DataPathSocket&) = delete;

  // Makes the handle. On failure the socket has no handle: free it with discard().
  int init() noexcept;
  void discard() noexcept { delete this; }
  uv_tcp_t* tcp() noexcept { return &tcp_; }
  // Takes the next connection of a listening stream.
  int accept(uv_stream_t* server) noexcept;
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
  bool writeFailed() const noexcept { return write_failed_; }
  bool connected() const noexcept { return connected_; }

  // Sends FIN once everything queued is written.
  void shutdownWrite() noexcept;
  // Closes when everything queued is written (or writing failed).
  void closeAfterFlush() noexcept;
  // Closes now; what is queued is dropped. onSocketClosed follows.
  void close() noexcept;
  bool closing() const noexcept { return closing_; }

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
  void flushBatch() noexcept override;

  uv_stream_t* stream() noexcept { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  void queue(std::string_view data) noexcept;
  // Holds parts back until the batch ends; false when they must be written now instead.
  bool deferParts(const std::string_view* parts, size_t count) noexcept;
  // What is queued, then parts: what the socket takes now, the rest through uv_write.
  // Only when connected and no write is in flight.
  void send(const std::string_view* parts, size_t count) noexcept;
  void writeParts(const std::string_view* parts, size_t count) noexcept;
  // Sends what a write batch holds back now instead of when the batch ends.
  void sendBatchedNow() noexcept;
  void flush() noexcept;
  void afterWrite() noexcept;
  void failWrite(int status) noexcept;
  void dropQueued() noexcept;

  WorkerContext& context_;
  DataPathSocketCallbacks* callbacks_;
  uv_tcp_t tcp_{};
  uv_write_t write_req_{};
  uv_connect_t connect_req_{};
  uv_shutdown_t shutdown_req_{};
  std::string writing_;  // handed to uv_write
  std::string queued_;   // waiting for the write in flight
  int pending_error_ = 0;
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
};

}  // namespace tracecar::proxy
