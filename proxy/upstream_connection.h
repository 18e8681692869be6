#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"
#include "proxy/data_path_socket.h"
#include "proxy/deadline_timer.h"
#include "proxy/stream_observer.h"
#include "proxy/upstream_selector.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

class UpstreamConnection;
class UpstreamPool;

// What an upstream connection tells the session using it. Every call comes from a libuv
// callback of the connection, never from inside one of its methods. The response events come
// from the response parser, which turns a throw into a malformed-response failure.
class UpstreamConnectionCallbacks {
 public:
  virtual ~UpstreamConnectionCallbacks() = default;
  // A fresh connection is connected: write the request.
  virtual void onUpstreamReady(UpstreamConnection& connection) noexcept = 0;
  // The exchange failed and the connection is gone: drop the pointer. retryable: it was a
  // reused keep-alive connection and nothing of a response came.
  virtual void onUpstreamFailed(UpstreamFailure failure, bool retryable) noexcept = 0;
  // A response head: interim (1xx but 101) ones too. Returns true when the response has no
  // body (it answers HEAD); may set head.upgrade for a 2xx answer to CONNECT.
  virtual bool onUpstreamHead(http::Http1Head& head) = 0;
  virtual void onUpstreamBody(std::string_view data) = 0;
  virtual void onUpstreamTrailers(http::HeaderMap& trailers) = 0;
  // The final response is complete (after a 101 or CONNECT 2xx: call enterTunnel()).
  virtual void onUpstreamComplete() = 0;
  // After enterTunnel().
  virtual void onUpstreamTunnelData(std::string_view data) noexcept = 0;
  virtual void onUpstreamTunnelEof() noexcept = 0;
  // The write queue fell back to the low-water mark.
  virtual void onUpstreamWritable() noexcept = 0;
  // The response timeout ran out (and was counted) before a response head, while the request
  // body was still coming: true when the client is the one waited for (tracecar was reading its body, holding
  // none of it back for the upstream), after answering it 408 and letting the connection go;
  // false when the upstream is (504, as for any response timeout).
  virtual bool onRequestBodyStalled() noexcept { return false; }
};

// One HTTP/1.1 connection to an upstream, owned by the worker's UpstreamPool: resolves and
// connects (every address in turn, within the connect timeout), carries one exchange at a time
// for the session attached to it, parses responses with the response limits, and sits in the
// pool between exchanges, reading, so a close by the peer is noticed at once.
class UpstreamConnection final : private DataPathSocketCallbacks,
                                 private http::Http1ParserCallbacks,
                                 private Tickable,
                                 public Retirable {
 public:
  UpstreamConnection(WorkerContext& context, UpstreamPool& pool, UpstreamTarget target);
  ~UpstreamConnection() override;

  const UpstreamTarget& target() const noexcept { return target_; }
  // target().poolKey(), made once: the pool looks it up on every release.
  const std::string& poolKey() const noexcept { return pool_key_; }
  bool ready() const noexcept { return state_ == State::kActive || state_ == State::kTunnel; }
  bool reused() const noexcept { return reused_; }
  // The peer address once connected ("127.0.0.1"), and its port.
  const std::string& peerAddress() const noexcept { return peer_address_; }
  uint16_t peerPort() const noexcept { return peer_port_; }

  // Request bytes, as they are to be sent.
  void write(std::string_view data) noexcept;
  void write(std::initializer_list<std::string_view> parts) noexcept;
  bool overHighWater() const noexcept;
  // Response backpressure: stop reading (parsing) the upstream until resumeReading().
  void pauseReading() noexcept;
  void resumeReading() noexcept;
  // Starts (or restarts) the response-head timer: 504 when it fires.
  void armResponseTimer() noexcept;
  // The client has sent its whole request (its last body byte, or a head without a body). Only
  // then does the response timeout run between two pieces of a response body: an upstream that
  // answers before the request is over may be waiting for the rest of it.
  void requestSent() noexcept {
    request_sent_ = true;
    armBodyTimer();
  }
  // After a 101 or CONNECT 2xx (or at once for a CONNECT tracecar terminates): raw bytes both
  // ways from now on; bytes already read after the response head are delivered first.
  void enterTunnel() noexcept;
  void shutdownWrite() noexcept;
  // The end of a tunnel: closes once what is queued is written. No callback follows.
  void closeAfterFlush() noexcept;
  // May it carry another exchange once this one ends?
  bool reusable() const noexcept;

 private:
  friend class UpstreamPool;
  enum class State : uint8_t { kNew, kResolving, kConnecting, kActive, kIdle, kTunnel, kClosed };
  enum class TimerMode : uint8_t { kNone, kConnect, kResponse, kIdle };

  // For the pool.
  void start(UpstreamConnectionCallbacks& client) noexcept;
  void reattach(UpstreamConnectionCallbacks& client) noexcept;
  void park() noexcept;  // into the pool: idle
  void close(bool flush = false) noexcept;
  bool idle() const noexcept { return state_ == State::kIdle; }

  // Connecting.
  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) noexcept;
  void connectNext() noexcept;
  void onSocketConnected(DataPathSocket& socket, int status) noexcept override;

  // Socket events.
  void onSocketData(DataPathSocket& socket, std::string_view data) noexcept override;
  void onSocketEof(DataPathSocket& socket) noexcept override;
  void onSocketError(DataPathSocket& socket, int status) noexcept override;
  void onSocketWritable(DataPathSocket& socket) noexcept override;
  void onSocketClosed(DataPathSocket& socket) noexcept override;
  void onTick() noexcept override;

  // Response parsing.
  bool onHead(http::Http1Head& head) override;
  void onBody(std::string_view data) override;
  void onTrailers(http::HeaderMap& trailers) override;
  void onMessageComplete() override;
  void process(std::string_view fresh) noexcept;
  void updateReading() noexcept;
  void pendingFail(UpstreamFailure failure) noexcept;

  void fail(UpstreamFailure failure) noexcept;
  void startTimer(TimerMode mode, uint64_t timeout_ms) noexcept;
  void stopTimer() noexcept;
  // Between two pieces of a response body: the response timeout again, once the request is sent
  // and unless reading is held for the client.
  void armBodyTimer() noexcept;
  static void onTimer(uv_timer_t* timer) noexcept;
  static void onTimerClosed(uv_handle_t* handle) noexcept;
  void maybeRetire() noexcept;

  WorkerContext& context_;
  UpstreamPool& pool_;
  UpstreamTarget target_;
  std::string pool_key_;
  UpstreamConnectionCallbacks* client_ = nullptr;
  State state_ = State::kNew;
  http::Http1Parser parser_;

  DataPathSocket* socket_ = nullptr;
  int open_sockets_ = 0;
  uv_getaddrinfo_t dns_req_{};
  bool dns_pending_ = false;
  std::vector<sockaddr_storage> addresses_;
  size_t next_address_ = 0;
  int last_connect_error_ = 0;
  std::string peer_address_;
  uint16_t peer_port_ = 0;

  uv_timer_t timer_{};
  DeadlineTimer deadline_;  // timer_'s deadline for timer_mode_
  bool timer_open_ = false;
  TimerMode timer_mode_ = TimerMode::kNone;

  std::string input_;  // read but not parsed yet (backpressure)
  bool feeding_ = false;
  bool paused_by_client_ = false;
  bool reused_ = false;
  bool response_bytes_ = false;     // something of a response came in this exchange
  bool interim_ = false;            // the head being parsed is 1xx (not 101)
  bool keep_alive_ = false;         // the final response allows another exchange
  bool exchange_complete_ = false;  // the final response is complete
  bool write_failed_ = false;
  bool garbage_ = false;            // bytes after the final response: never reuse
  bool no_body_ = false;            // the final response has no body (HEAD...)
  bool in_body_ = false;            // its body is being read: the response timeout runs between
                                    // two pieces of it (not while the client holds reading)
  bool request_sent_ = false;       // the client's request is all sent (requestSent)
  bool pending_failure_ = false;    // a failure to report on the next loop turn
  UpstreamFailure failure_ = UpstreamFailure::kOther;
  bool retired_ = false;
};

}  // namespace tracecar::proxy
