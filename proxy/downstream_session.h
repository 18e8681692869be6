#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/http1_parser.h"
#include "proxy/data_path_headers.h"
#include "proxy/data_path_counters.h"
#include "proxy/data_path_socket.h"
#include "proxy/deadline_timer.h"
#include "proxy/h2_upstream_for_h1.h"
#include "proxy/original_destination.h"
#include "proxy/reloading_tls_context.h"
#include "proxy/sniff.h"
#include "proxy/stream_observer.h"
#include "proxy/upstream_connection.h"
#include "proxy/upstream_selector.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

// What a session needs of the listener it came from; lives as long as the worker.
struct ListenerContext {
  ListenerRole role = ListenerRole::kInbound;
  UpstreamSelector* selector = nullptr;
  StreamObserverFactory* observers = nullptr;  // null: requests are not observed
  // Transparent mode: looks up where each accepted connection was going (null: nowhere, every
  // connection is taken as not redirected), and what counts as tracecar itself (loops).
  const OriginalDestinationLookup* original_destination = nullptr;
  const OwnListeners* own = nullptr;
  // TLS termination: connections that start with a TLS ClientHello are decrypted with this
  // context's current certificate (null: TLS passes through as an opaque tunnel).
  const ReloadingTlsContext* tls = nullptr;
};

// What an accepted connection says of itself: the peer's and the local address and port, and
// the fd (PeerInfo). A failed lookup leaves its fields as they were.
void readPeerInfo(DataPathSocket& socket, PeerInfo& peer) noexcept;
// Closes a connection that cannot be taken: the descriptor, or the next connection of the
// listening stream (accepted first: a libuv listener must accept it, or it stops polling).
void refuse(const AcceptSource& from) noexcept;

// One downstream connection. Once accepted, it looks up its original destination (refusing a
// loop) and sniffs its first bytes: the HTTP/2 client preface hands the connection to the
// worker's HTTP/2 data path (H2DownstreamSession::adopt); anything else but HTTP/1.x becomes an
// opaque byte tunnel to the selector's tunnelTarget. An HTTP/1.x connection parses requests (request limits), answers
// malformed ones itself, forwards the others one at a time through the upstream pool (pipelined
// requests wait their turn, so answers come in order), relays the responses with re-framed
// bodies, and turns into a byte tunnel after a 101 or a CONNECT 2xx. A request whose route's
// protocol is kHttp2 goes as a stream of the worker's HTTP/2 upstream pool instead
// (H2UpstreamForH1, docs/protocol-translation.md).
//
// Lifetime: made by the listener, registered in the worker's sessions; it deletes itself (on
// the next loop turn) once its socket and timer are closed.
class DownstreamSession final : private DataPathSocketCallbacks,
                                private http::Http1ParserCallbacks,
                                private H2UpstreamForH1Callbacks,
                                private Tickable,
                                public Retirable {
 public:
  // Accepts the next connection of server; false (and nothing left to free) on failure.
  static bool accept(WorkerContext& context, ListenerContext& listener, AcceptSource from);

  ~DownstreamSession() override;

  // Drain: close now when no request is in flight, else after its response.
  void drain() noexcept;
  // The end of the drain timeout: close now.
  void forceClose() noexcept;

 private:
  enum class Phase : uint8_t {
    kSniff,    // the first bytes decide what the connection speaks (kept in input_)
    kOpening,  // an opaque tunnel waits for its upstream connection (input_ waits too)
    kIdle,     // between requests (maybe inside a request head)
    kRequest,  // a request head was parsed; its exchange is in progress
    kTunnel,   // bytes both ways
    kClosing,  // the last answer is written; waiting for the peer to close (lingering)
    kClosed,
  };
  // kResponse: the response head of a request sent as an HTTP/2 stream (an HTTP/1.1
  // connection keeps that timer itself).
  enum class TimerMode : uint8_t {
    kNone,
    kIdle,
    kHeader,
    kClosing,
    kSniff,
    kResponse,
    kTunnelIdle
  };

  // The request in flight and its exchange.
  struct Exchange {
    bool head_request = false;
    bool idempotent = false;  // the method may be sent again (a failed reuse is retried)
    bool connect = false;
    bool upgrade_requested = false;
    std::string upgrade_offer;  // the request's Upgrade list, when it asked for one
    bool http11 = true;  // the downstream speaks HTTP/1.1 (else 1.0)
    bool te_trailers = false;
    bool request_chunked = false;
    bool request_has_body = false;
    bool expects_continue = false;  // Expect: 100-continue, from an HTTP/1.1 client
    bool continue_received = false;  // ... and the upstream's 100 came
    bool terminate_connect = false;
    bool preserve_target = false;
    bool h2_upstream = false;  // goes upstream as an HTTP/2 stream (route.protocol kHttp2)
    UpstreamTarget target;
    std::string upstream_head;  // kept until the response head, to retry; then its buffer
                                // serves the response head

    bool awaiting_upstream = false;  // parsing paused until a connection is ready
    bool backpressure = false;       // parsing paused: the upstream is over its high-water mark
    bool head_sent = false;
    bool body_started = false;  // request body bytes (or the last chunk) went upstream
    bool request_complete = false;
    bool request_last_chunk = false;
    bool retried = false;

    bool response_started = false;  // a final head (or a local reply) went downstream
    bool response_complete = false;
    bool tunnel_pending = false;  // 101 / CONNECT 2xx: a tunnel once the head is complete
    BodyFraming framing = BodyFraming::kNone;
    bool response_last_chunk = false;
    bool finished = false;
    StreamStats stats;
  };

  DownstreamSession(WorkerContext& context, ListenerContext& listener);
  bool open(const AcceptSource& from) noexcept;

  // Transparent mode and sniffing (downstream_session_sniff.cc).
  // Looks up the original destination; false when the connection is a loop (then refused).
  bool lookUpOriginalDestination(int fd) noexcept;
  void startSniffing() noexcept;
  void onSniffData(std::string_view data) noexcept;
  void onSniffEof() noexcept;
  // Ends sniffing: HTTP/1.x from here on (what input_ holds is parsed), or an opaque tunnel.
  void startHttp() noexcept;
  void openTunnel(SniffedProtocol protocol) noexcept;
  // An h2c connection goes to the worker's HTTP/2 data path; false when there is none (or no
  // memory), and the connection is tunnelled instead.
  bool handOverToH2() noexcept;
  // A ClientHello on a listener that terminates TLS: the bytes read so far go to a TLS session
  // and sniffing goes on with the plaintext.
  void startTlsTermination(std::string_view client_hello) noexcept;
  // Closes at once with a reset, never forwarded; counted.
  void refuseConnection(ConnectionRefusal why) noexcept;
  // Bytes went through the tunnel (opaque tunnels count them): its idle timer starts again.
  void countTunnelBytes(TunnelDirection direction, size_t n) noexcept;
  // The tunnel's idle timer (timeouts.tunnel_idle), from now.
  void armTunnelIdle() noexcept;

  // Downstream socket.
  void onSocketData(DataPathSocket& socket, std::string_view data) noexcept override;
  void onSocketEof(DataPathSocket& socket) noexcept override;
  void onSocketError(DataPathSocket& socket, int status) noexcept override;
  void onSocketWritable(DataPathSocket& socket) noexcept override;
  void onSocketClosed(DataPathSocket& socket) noexcept override;

  // Requests.
  void drive(std::string_view fresh) noexcept;
  void resumeParsing() noexcept;
  // Resumes the parser on what is buffered; closes once a client that closed its side is idle.
  void parseBuffered() noexcept;
  // The client closed its side before sending the whole request.
  bool requestTruncated() const noexcept;
  void onParseError() noexcept;
  bool onHead(http::Http1Head& head) override;
  void onBody(std::string_view data) override;
  void onTrailers(http::HeaderMap& trailers) override;
  void onMessageComplete() override;
  void startExchange(http::Http1Head& head) noexcept;
  bool buildUpstreamHead(http::Http1Head& head, const RequestTargetParts& target,
                         const std::string& transfer_encoding, bool had_host);
  void connectUpstream() noexcept;
  // The request as a stream of an HTTP/2 upstream connection (h2_upstream_).
  void connectH2Upstream(http::H2Head&& head) noexcept;
  void sendRequestHead() noexcept;
  void armResponseTimer() noexcept;
  // An HTTP/2 upstream's response body: the response timeout runs between its pieces once the
  // request is all sent, and not while the client holds reading (its socket over the mark).
  void armH2BodyTimer() noexcept;
  void reject(const LocalReply& reply, bool close = false) noexcept;
  // Answers an OPTIONS or TRACE request whose Max-Forwards reached 0 (tracecar is its last hop).
  void answerAsLastHop(const http::Http1Head& head) noexcept;
  // After an answer tracecar gave itself: ends the exchange now when the connection closes after
  // it; else the request's end does.
  void endAnsweredExchange() noexcept;
  void sendLocalReply(int status, std::string_view reason, LocalReplyReason code,
                      bool close) noexcept;
  void finishExchange() noexcept;
  void onTick() noexcept override;

  // Upstream.
  void onUpstreamReady(UpstreamConnection& connection) noexcept override;
  void onUpstreamFailed(UpstreamFailure failure, bool retryable) noexcept override;
  bool onUpstreamHead(http::Http1Head& head) override;
  void onUpstreamBody(std::string_view data) override;
  void onUpstreamTrailers(http::HeaderMap& trailers) override;
  void onUpstreamComplete() override;
  void onUpstreamTunnelData(std::string_view data) noexcept override;
  void onUpstreamTunnelEof() noexcept override;
  void onUpstreamWritable() noexcept override;
  bool onRequestBodyStalled() noexcept override;
  // Before the response head, with the request body still coming and read (none of it held back
  // for the upstream): the client is the one that is slow. A client that asked for 100 Continue,
  // has not had it and has sent no body byte yet is waiting for the upstream.
  bool waitingForRequestBody() const noexcept;
  void onH2UpstreamReady() noexcept override;
  void onH2UpstreamResend(UpstreamFailure failure, http::HeaderMap& headers) noexcept override;
  void onH2UpstreamSubmitted(const H2UpstreamConnection& connection) noexcept override;
  void relayInterim(http::Http1Head& head);
  void releaseUpstream(bool reusable) noexcept;

  // Tunnels.
  void enterTunnel() noexcept;
  void maybeEndTunnel() noexcept;

  // Closing.
  void closeGracefully() noexcept;
  void closeNow(bool flush) noexcept;
  void abortExchange() noexcept;
  void updateReading() noexcept;
  void keepInput(std::string_view rest, bool from_input) noexcept;
  void dropInput() noexcept;
  void startTimer(TimerMode mode, std::chrono::milliseconds timeout) noexcept;
  void stopTimer() noexcept;
  static void onTimer(uv_timer_t* timer) noexcept;
  static void onTimerClosed(uv_handle_t* handle) noexcept;
  void maybeRetire() noexcept;

  WorkerContext& context_;
  ListenerContext& listener_;
  DataPathSocket* socket_ = nullptr;
  uv_timer_t timer_{};
  DeadlineTimer deadline_;  // timer_'s deadline for timer_mode_
  bool timer_open_ = false;
  TimerMode timer_mode_ = TimerMode::kNone;
  http::Http1Parser parser_;
  PeerInfo peer_;

  Phase phase_ = Phase::kIdle;
  std::string input_;  // read, not parsed yet
  bool driving_ = false;
  bool drop_input_ = false;  // dropInput() was called while parsing
  bool downstream_eof_ = false;
  bool close_after_ = false;  // close once the exchange in flight ends
  bool tunnel_downstream_eof_ = false;
  bool tunnel_upstream_eof_ = false;
  bool counted_ = false;  // in connections_open
  bool retired_ = false;
  uint64_t request_start_ns_ = 0;
  SniffedProtocol protocol_ = SniffedProtocol::kHttp1;
  bool opaque_ = false;  // an opaque tunnel (not HTTP/1.x)

  Exchange ex_;
  std::unique_ptr<StreamObserver> observer_;
  UpstreamConnection* upstream_ = nullptr;
  H2UpstreamForH1* h2_upstream_ = nullptr;  // instead of upstream_ when ex_.h2_upstream
};

}  // namespace tracecar::proxy
