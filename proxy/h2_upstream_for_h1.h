#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/h2_session.h"
#include "proxy/h2_upstream_pool.h"
#include "proxy/upstream_connection.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

// What an HTTP/1.1 session hears from the HTTP/2 stream carrying its request: the response as
// the events of an HTTP/1.1 upstream connection (onUpstreamHead with a head of version 2.0 and
// a reason phrase, 1xx heads too; onUpstreamBody, onUpstreamTrailers, onUpstreamComplete,
// onUpstreamFailed (never retryable), onUpstreamWritable; never onUpstreamReady nor the tunnel
// events), and when the request can go.
class H2UpstreamForH1Callbacks : public UpstreamConnectionCallbacks {
 public:
  // The connection can take the request now: send its head (H2UpstreamForH1::sendHead).
  virtual void onH2UpstreamReady() noexcept = 0;
  // The upstream refused the stream before processing it (failure), and the request goes again
  // on another connection with these fields, which the session may rewrite first.
  virtual void onH2UpstreamResend(UpstreamFailure /*failure*/,
                                  http::HeaderMap& /*headers*/) noexcept {}
  // The request's stream opened on connection (the first time, or again after a refusal).
  virtual void onH2UpstreamSubmitted(const H2UpstreamConnection& /*connection*/) noexcept {}
};

// One HTTP/1.1 request carried as a stream of an HTTP/2 upstream connection from the worker's
// H2UpstreamPool (the route's protocol is kHttp2). The session gives the head (h2RequestFromH1)
// and then the body and trailers as it parses them; the response comes back as HTTP/1.1 events
// (H2UpstreamForH1Callbacks). A stream the upstream refused before processing it (past its
// GOAWAY, or REFUSED_STREAM) is sent once more on another connection when no body byte was
// sent yet.
//
// Flow control: request body bytes the upstream session has not framed yet are over the
// high-water mark (overHighWater) until they fall to the low-water mark (onUpstreamWritable).
// Response body bytes are acknowledged to the upstream (WINDOW_UPDATE) as they are handed over,
// except while the session has paused reading (its socket over the high-water mark): those wait
// for resumeReading, so a slow client holds at most one stream window in tracecar.
//
// Lifetime: owned by the session, which calls release() when it is done with it (no call comes
// after) and retires it (WorkerContext::retire): never deleted inside one of its callbacks.
class H2UpstreamForH1 final : private H2UpstreamStream, public Retirable {
 public:
  H2UpstreamForH1(WorkerContext& context, H2UpstreamPool& pool,
                  H2UpstreamForH1Callbacks& client) noexcept
      : context_(context), pool_(pool), client_(client) {}
  ~H2UpstreamForH1() override;
  H2UpstreamForH1(const H2UpstreamForH1&) = delete;
  H2UpstreamForH1& operator=(const H2UpstreamForH1&) = delete;

  // Asks the pool for a connection to target. False when out of memory (nothing started).
  // Then ready() says whether sendHead may be called now; otherwise onH2UpstreamReady or
  // onUpstreamFailed follows.
  bool start(const UpstreamTarget& target, http::H2Head&& head) noexcept;
  bool ready() const noexcept { return ready_; }
  // The connection was open before this request.
  bool reused() const noexcept { return reused_; }
  // The request was sent again after the upstream refused its stream.
  bool retried() const noexcept { return retried_; }

  // Opens the stream; end_stream: the request has no body. False when it could not be opened
  // (then fail() it).
  bool sendHead(bool end_stream) noexcept;
  void sendBody(std::string_view data) noexcept;
  void sendTrailers(const http::HeaderMap& trailers) noexcept;  // ends the request
  void endRequest() noexcept;
  bool overHighWater() const noexcept { return blocked_; }

  // Response backpressure: response bytes are not acknowledged until resumeReading().
  void pauseReading() noexcept { paused_ = true; }
  void resumeReading() noexcept;

  // Ends the exchange with a failure the session hears of (onUpstreamFailed), counted in
  // upstream_failures; the stream is reset.
  void fail(UpstreamFailure failure) noexcept;
  // The session is done: the stream is reset (CANCEL) unless complete (request and response
  // ended). Nothing more comes to the session.
  void release(bool complete) noexcept;

 private:
  void onUpstreamReady(H2UpstreamConnection& connection) noexcept override;
  void onUpstreamWaiting(H2UpstreamConnection& connection) noexcept override;
  void onUpstreamFailed(UpstreamFailure failure) noexcept override;
  void onUpstreamHeaders(http::H2Head& head) noexcept override;
  void onUpstreamData(std::string_view data) noexcept override;
  void onUpstreamTrailers(http::HeaderMap& trailers) noexcept override;
  void onUpstreamEnd() noexcept override;
  void onUpstreamCommit() noexcept override {}
  void onUpstreamSendProgress(size_t pending) noexcept override;
  void onUpstreamClose(http::H2ErrorCode code, http::H2CloseCause cause, bool lost,
                       bool retryable) noexcept override;

  // A connection for the request (again, after a refused stream); false when out of memory.
  bool acquire() noexcept;
  // The response is over: the session hears onUpstreamComplete.
  void complete() noexcept;
  // Opens the stream with what the session gave so far; end_stream: the request has no body.
  bool submit(bool end_stream) noexcept;

  WorkerContext& context_;
  H2UpstreamPool& pool_;
  H2UpstreamForH1Callbacks& client_;
  UpstreamTarget target_;
  http::H2Head head_;  // kept until a response head comes, to send again after a refusal
  H2UpstreamConnection* connection_ = nullptr;  // waiting for it, or the stream is open on it
  int32_t id_ = 0;
  // What the session sent while the request waited to be sent again after a refusal.
  std::string waiting_;
  std::unique_ptr<http::HeaderMap> waiting_trailers_;

  uint64_t unframed_ = 0;    // request body bytes not framed yet by the upstream session
  uint64_t unconsumed_ = 0;  // response body bytes handed over and not acknowledged

  bool ready_ = false;  // connection_ can take the request now
  bool reused_ = false;
  bool submitted_ = false;      // the stream is open on connection_
  bool end_requested_ = false;  // the request ended (with the head, the last DATA or trailers)
  bool blocked_ = false;        // request bytes over the high-water mark
  bool paused_ = false;
  bool response_started_ = false;
  bool response_ended_ = false;
  bool complete_on_close_ = false;  // the response ended; complete once the stream closes
  bool retried_ = false;
  bool released_ = false;
};

}  // namespace tracecar::proxy
