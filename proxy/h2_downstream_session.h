#pragma once

#include <absl/container/flat_hash_map.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/h2_session.h"
#include "proxy/data_path_socket.h"
#include "proxy/deadline_timer.h"
#include "proxy/downstream_session.h"
#include "proxy/h2_worker.h"
#include "proxy/stream_observer.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

// One downstream HTTP/2 connection (h2c with prior knowledge), server side. Each stream is one
// request: its head becomes a protocol-neutral head (method, :path as the target, :authority as
// Host, version 2.0) for the listener's StreamObserver (spans, limits, context rejection) and
// UpstreamSelector, and it goes to the upstream over HTTP/2 on the worker's H2UpstreamPool, or,
// when the route's protocol is kHttp1, as an HTTP/1.1 exchange from the worker's UpstreamPool
// (H1UpstreamForH2, docs/protocol-translation.md).
// Response heads, bodies and trailers come back on the stream; RST_STREAM is relayed both
// ways; tracecar's own answers (observer replies, 502/503/504) end that stream only.
//
// Flow control is end to end: bytes received on one side are acknowledged (consume) only as
// the other side's HTTP/2 session frames them, and a session does not frame while its socket is
// over the high-water mark, so a slow reader on either side holds at most its windows' worth.
//
// Lifetime: registered in the H2Worker's sessions; deletes itself (on the next loop turn) once
// its socket and timer are closed.
class H2DownstreamSession final : private DataPathSocketCallbacks,
                                  private http::H2SessionCallbacks,
                                  private Tickable,
                                  private BatchFlushable,
                                  public Retirable {
 public:
  // Accepts the next connection of server, which must speak HTTP/2 with prior knowledge; false
  // (and nothing left to free) on failure.
  static bool accept(H2Worker& worker, ListenerContext& listener, AcceptSource from);

  // Takes over a connection whose first bytes a sniffer already read (already_read: every byte
  // read so far, starting with the client preface). The session is returned; the caller then
  // points the socket's events at socketCallbacks() (DataPathSocket::setCallbacks) and lets go
  // of the socket. The connection stays counted once: the caller's count passes to the session.
  // peer is the connection's PeerInfo (listener, addresses, fd). Null when out of memory (the
  // socket is then untouched).
  static H2DownstreamSession* adopt(H2Worker& worker, ListenerContext& listener,
                                    DataPathSocket& socket, const PeerInfo& peer,
                                    std::string_view already_read);
  DataPathSocketCallbacks& socketCallbacks() noexcept { return *this; }

  ~H2DownstreamSession() override;

  // Graceful drain: GOAWAY (a shutdown notice first, then the last stream id), the streams in
  // flight finish, then the connection closes.
  void drain() noexcept;
  // The end of the drain timeout: close now; streams in flight are reset.
  void forceClose() noexcept;

 private:
  class Stream;
  friend class Stream;

  H2DownstreamSession(H2Worker& worker, ListenerContext& listener);
  bool open(const AcceptSource& from) noexcept;
  bool start(std::string_view already_read, bool count_connection = true) noexcept;
  void countConnection() noexcept;

  // Socket events.
  void onSocketData(DataPathSocket& socket, std::string_view data) noexcept override;
  void onSocketEof(DataPathSocket& socket) noexcept override;
  void onSocketError(DataPathSocket& socket, int status) noexcept override;
  void onSocketWritable(DataPathSocket& socket) noexcept override;
  void onSocketClosed(DataPathSocket& socket) noexcept override;
  void receive(std::string_view data) noexcept;

  // Session events.
  void onHeaders(int32_t id, http::H2Head& head) override;
  void onData(int32_t id, std::string_view data) override;
  void onTrailers(int32_t id, http::HeaderMap& trailers) override;
  void onEndStream(int32_t id) override;
  void onStreamClose(int32_t id, http::H2ErrorCode code, http::H2CloseCause cause) override;
  void onGoaway(int32_t last_stream_id, http::H2ErrorCode code,
                std::string_view debug_data) override;
  void onConnectionError(std::string_view reason) override;
  void onRequestHeadersTooLarge(int32_t id) override;

  Stream* find(int32_t id) noexcept;
  // Frames out: with the worker's write batch, or on the next loop turn.
  void scheduleFlush() noexcept;
  void flush() noexcept;
  void flushBatch() noexcept override;
  void onTick() noexcept override;
  // Response bytes of stream wait in the session to be framed: flush() reports their progress.
  void markResponding(Stream& stream) noexcept;
  void unmarkResponding(Stream& stream) noexcept;

  // Per-stream deadlines (response timeout) and the connection's idle and drain deadlines share
  // one timer set to the earliest.
  void armDeadline(uint64_t at_ms) noexcept;
  static void onTimer(uv_timer_t* timer) noexcept;
  void onDeadline() noexcept;
  void updateIdle() noexcept;
  // The GOAWAY after which no new stream is served (drain, idle). Once it went and no stream is
  // left, the connection closes when nghttp2 is done, or after timeouts.linger at the latest: a
  // client may keep a stream half-received (a header block never finished) or never close.
  void sendFinalGoaway() noexcept;
  void lingerAfterGoaway() noexcept;
  // The connection cannot go on (a header block too slow, the linger after the final GOAWAY):
  // its streams are reset, the GOAWAY (when asked) is written, then it closes.
  void endConnection(bool goaway) noexcept;

  void abortStreams() noexcept;
  void closeConnection() noexcept;
  void maybeRetire() noexcept;

  WorkerContext& context_;
  H2Worker& worker_;
  ListenerContext& listener_;
  DataPathSocket* socket_ = nullptr;
  bool own_socket_ = true;  // false: adopted, the socket's owner forwards its events
  std::unique_ptr<http::H2Session> session_;
  PeerInfo peer_;

  // Open addressing: a stream costs no map node (the Stream itself does not move).
  absl::flat_hash_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::vector<std::unique_ptr<Stream>> finished_;  // freed on the next loop turn
  std::vector<int32_t> starting_;                  // heads received in the read being processed
  std::vector<int32_t> responding_;  // streams marked responding, each once
  std::vector<int32_t> responding_walk_;  // flush()'s copy of responding_
  bool walking_responding_ = false;
  std::string out_;

  uv_timer_t timer_{};
  DeadlineTimer deadline_;
  bool timer_open_ = false;
  bool timer_closing_ = false;
  uint64_t timer_due_ms_ = 0;  // loop time the timer is armed for (0: not armed)
  uint64_t idle_at_ms_ = 0;    // the connection has no stream since; 0 when it has some
  uint64_t goaway_at_ms_ = 0;  // drain: when the final GOAWAY goes
  uint64_t header_block_due_ms_ = 0;  // a header block left open must be complete by then
  uint64_t linger_at_ms_ = 0;  // after the final GOAWAY, no stream left: closed then

  bool flush_pending_ = false;
  bool receiving_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool final_goaway_ = false;
  bool ending_ = false;  // endConnection(): closes at the next flush
  bool counted_ = false;
  bool floods_counted_ = false;
  bool retired_ = false;
};

}  // namespace tracecar::proxy
