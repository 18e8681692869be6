#pragma once

#include <absl/container/flat_hash_map.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "http/h2_session.h"
#include "proxy/data_path_socket.h"
#include "proxy/deadline_timer.h"
#include "proxy/destination_lists.h"
#include "proxy/upstream_failure.h"
#include "proxy/upstream_selector.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

class H2UpstreamConnection;
class H2UpstreamPool;
struct H2PathCounters;

// One request on an upstream HTTP/2 connection, as its downstream stream sees it. Every call
// comes from a libuv callback of the connection (never from inside one of its methods). After
// onUpstreamClose or onUpstreamFailed nothing more comes.
class H2UpstreamStream {
 public:
  virtual ~H2UpstreamStream() = default;
  // The connection the pool gave (not ready then) can take this request now: submit it.
  virtual void onUpstreamReady(H2UpstreamConnection& connection) noexcept = 0;
  // The stream waits on connection from now on (a connection that could not take it handed it
  // on to another one to the same peer): cancelWait goes there.
  virtual void onUpstreamWaiting(H2UpstreamConnection& connection) noexcept = 0;
  // No stream was opened: the connection could not be made or failed before.
  virtual void onUpstreamFailed(UpstreamFailure failure) noexcept = 0;
  // The response head (1xx heads too), body, trailers, END_STREAM.
  virtual void onUpstreamHeaders(http::H2Head& head) noexcept = 0;
  virtual void onUpstreamData(std::string_view data) noexcept = 0;
  virtual void onUpstreamTrailers(http::HeaderMap& trailers) noexcept = 0;
  virtual void onUpstreamEnd() noexcept = 0;
  // The end of one batch of bytes read from the upstream: a final head that came in it without
  // END_STREAM is relayed now (a head with END_STREAM is a trailers-only response).
  virtual void onUpstreamCommit() noexcept = 0;
  // The request body submitted so far that still waits to be framed (called after frames went
  // to the socket): what is no longer waiting may be acknowledged to the downstream.
  virtual void onUpstreamSendProgress(size_t pending) noexcept = 0;
  // The stream closed. lost: the whole connection failed (reset, closed, protocol error).
  // retryable: the peer never processed it (refused: past its GOAWAY's last stream id, or reset
  // with REFUSED_STREAM) and nothing but its head went (no body byte, no trailers), so the same
  // request may go again on another connection; whether it does (once, before any response) is
  // the stream's choice.
  virtual void onUpstreamClose(http::H2ErrorCode code, http::H2CloseCause cause, bool lost,
                               bool retryable) noexcept = 0;
  // An HTTP/1.1 exchange for the stream (H1UpstreamForH2) failed on a pooled connection before
  // any answer (failure), and its request head goes again on a fresh one; the stream may
  // rewrite it first.
  virtual void onUpstreamResend(UpstreamFailure /*failure*/, std::string& /*h1_head*/) noexcept {}
};

// One multiplexed HTTP/2 connection (h2c, prior knowledge) to one upstream destination, owned
// by the worker's H2UpstreamPool. Resolves and connects (each address in turn, within the
// connect timeout), takes requests once the peer's SETTINGS came, as many at a time as its
// SETTINGS_MAX_CONCURRENT_STREAMS allows, stops taking new ones after a GOAWAY (the pool opens
// another), and closes once it is finished, failed, or idle for upstream_idle.
class H2UpstreamConnection final : private DataPathSocketCallbacks,
                                   private http::H2SessionCallbacks,
                                   private Tickable,
                                   private BatchFlushable,
                                   public Retirable {
 public:
  H2UpstreamConnection(WorkerContext& context, H2UpstreamPool& pool, UpstreamTarget target);
  ~H2UpstreamConnection() override;

  const UpstreamTarget& target() const noexcept { return target_; }
  // Requests may be submitted (the peer's SETTINGS came and the connection is not closing).
  bool ready() const noexcept { return state_ == State::kReady; }
  // May the pool give this connection another request?
  bool accepting() const noexcept;
  const std::string& peerAddress() const noexcept { return peer_address_; }
  uint16_t peerPort() const noexcept { return peer_port_; }
  // Streams in flight, and requests waiting for the connection.
  size_t streams() const noexcept { return streams_.size(); }

  // Opens a stream (ready() only). end_stream: the request has no body.
  absl::StatusOr<int32_t> submitRequest(const http::H2Head& head, bool end_stream,
                                        H2UpstreamStream& stream) noexcept;
  absl::Status submitData(int32_t id, std::string_view data, bool end_stream) noexcept;
  absl::Status submitTrailers(int32_t id, const http::HeaderMap& trailers) noexcept;
  // Resets the stream (when code is not kNoError or the stream is still open) and forgets its
  // callbacks: nothing more comes for it. unconsumed: response bytes delivered and never
  // acknowledged, credited back to the connection window.
  void detach(int32_t id, http::H2ErrorCode code, size_t unconsumed) noexcept;
  // A request waiting for the connection gave up.
  void cancelWait(H2UpstreamStream& stream) noexcept;
  // Response bytes the downstream took: acknowledged to the upstream (WINDOW_UPDATE).
  void consume(int32_t id, size_t bytes) noexcept;

  // Drain: no new requests; close once the streams in flight are done.
  void drain() noexcept;
  void closeNow() noexcept;

 private:
  friend class H2UpstreamPool;
  enum class State : uint8_t { kResolving, kConnecting, kHandshake, kReady, kClosing, kClosed };
  enum class TimerMode : uint8_t { kNone, kConnect, kIdle };

  void start(H2UpstreamStream& first) noexcept;
  void addWaiter(H2UpstreamStream& stream) noexcept;

  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) noexcept;
  void connectNext() noexcept;
  void onSocketConnected(DataPathSocket& socket, int status) noexcept override;
  void onSocketData(DataPathSocket& socket, std::string_view data) noexcept override;
  void onSocketEof(DataPathSocket& socket) noexcept override;
  void onSocketError(DataPathSocket& socket, int status) noexcept override;
  void onSocketWritable(DataPathSocket& socket) noexcept override;
  void onSocketClosed(DataPathSocket& socket) noexcept override;

  void onHeaders(int32_t id, http::H2Head& head) override;
  void onData(int32_t id, std::string_view data) override;
  void onTrailers(int32_t id, http::HeaderMap& trailers) override;
  void onEndStream(int32_t id) override;
  void onStreamClose(int32_t id, http::H2ErrorCode code, http::H2CloseCause cause) override;
  void onGoaway(int32_t last_stream_id, http::H2ErrorCode code,
                std::string_view debug_data) override;
  void onConnectionError(std::string_view reason) override;
  void onPeerSettings() override;

  // Frames out: gathered with the worker's write batch, or on the next loop turn.
  void scheduleFlush() noexcept;
  void flush() noexcept;
  void flushBatch() noexcept override;
  void onTick() noexcept override;
  // After a read: commits heads, hands waiting requests a slot, closes a finished connection.
  void afterReceive() noexcept;
  void dispatchWaiters() noexcept;
  // Every stream and waiter learns the connection is gone; then the socket closes.
  void fail(UpstreamFailure failure, bool connected) noexcept;
  void updateIdleTimer() noexcept;
  void countFloods() noexcept;
  static void onTimer(uv_timer_t* timer) noexcept;
  void maybeRetire() noexcept;

  WorkerContext& context_;
  H2UpstreamPool& pool_;
  UpstreamTarget target_;
  State state_ = State::kResolving;
  std::unique_ptr<http::H2Session> session_;
  struct OpenStream {
    H2UpstreamStream* stream = nullptr;
    bool sent_past_head = false;  // a body byte or the trailers were submitted
  };
  // Open addressing: a stream costs no allocation of its own. Values move when the table
  // grows: hold no reference to one across a call that may open a stream.
  using OpenStreams = absl::flat_hash_map<int32_t, OpenStream>;
  OpenStreams streams_;
  std::vector<H2UpstreamStream*> waiters_;
  std::vector<int32_t> committing_;     // got a final head in the read being processed
  std::unordered_set<int32_t> sending_;  // have request body bytes waiting to be framed
  std::string out_;

  DataPathSocket* socket_ = nullptr;
  int open_sockets_ = 0;
  uv_getaddrinfo_t dns_req_{};
  bool dns_pending_ = false;
  std::vector<sockaddr_storage> addresses_;
  size_t next_address_ = 0;
  std::string peer_address_;
  uint16_t peer_port_ = 0;

  uv_timer_t timer_{};
  DeadlineTimer deadline_;
  bool timer_open_ = false;
  bool timer_closing_ = false;
  TimerMode timer_mode_ = TimerMode::kNone;
  UpstreamFailure pending_failure_ = UpstreamFailure::kConnectionRefused;  // for kClosing
  int last_connect_error_ = UV_ECONNREFUSED;  // the last address's libuv status

  bool flush_pending_ = false;
  bool receiving_ = false;
  bool draining_ = false;
  bool served_ = false;  // a stream was ever opened here
  bool counted_open_ = false;
  bool floods_counted_ = false;
  bool retired_ = false;
};

// The HTTP/2 upstream connections of one worker, by destination ("host:port").
class H2UpstreamPool {
 public:
  H2UpstreamPool(WorkerContext& context, H2PathCounters& counters,
                 const http::H2Settings& settings = {}) noexcept
      : context_(context), counters_(counters), settings_(settings) {}
  ~H2UpstreamPool();
  H2UpstreamPool(const H2UpstreamPool&) = delete;
  H2UpstreamPool& operator=(const H2UpstreamPool&) = delete;

  // A connection for one request to target. When it comes back ready() with room, submit on it
  // now; otherwise the stream waits and hears onUpstreamReady or onUpstreamFailed. Null only when
  // out of memory.
  H2UpstreamConnection* acquire(const UpstreamTarget& target, H2UpstreamStream& stream) noexcept;
  // Drain: idle connections close now, the others once their streams are done.
  void drain() noexcept;
  void closeAll() noexcept;
  bool empty() const noexcept { return all_.empty(); }
  size_t connections() const noexcept { return all_.size(); }
  H2PathCounters& counters() noexcept { return counters_; }
  const http::H2Settings& settings() const noexcept { return settings_; }

 private:
  friend class H2UpstreamConnection;
  void forget(H2UpstreamConnection* connection) noexcept;

  WorkerContext& context_;
  H2PathCounters& counters_;
  http::H2Settings settings_;
  DestinationLists<H2UpstreamConnection> by_target_;
  std::unordered_set<H2UpstreamConnection*> all_;
  bool draining_ = false;
};

}  // namespace tracecar::proxy
