#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/header_map.h"
#include "proxy/h2_upstream_pool.h"
#include "proxy/stream_observer.h"
#include "proxy/upstream_connection.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

// One HTTP/2 stream's request carried to an HTTP/1.1 upstream (the route's protocol is
// kHttp1): an exchange on a keep-alive connection of the worker's UpstreamPool. The stream
// gives the request as HTTP/1.1 bytes (appendH1RequestHead) and its body as it comes; the
// response comes back to it as the events of an HTTP/2 upstream stream (H2UpstreamStream):
// 1xx and final heads translated (h2ResponseFromH1), body, chunked trailers as trailers, the
// end of the message as onUpstreamEnd, then onUpstreamClose(kNoError, kDone). A failure is
// onUpstreamFailed with its kind (already counted in upstream_failures), at any point; nothing
// follows it. onUpstreamReady is never called.
//
// Flow control: request body bytes are held (held()) while the connection is not open yet and
// while its socket is over the high-water mark, and the stream acknowledges downstream only
// what is not held; onUpstreamSendProgress says when the hold ends. Response bytes the stream
// has not yet framed downstream (delivered, not consume()d) stop the upstream being read above
// the high-water mark, until they fall to the low-water mark.
//
// Lifetime: owned by the stream, which calls release() when it is done with it (no call comes
// after) and retires it (WorkerContext::retire): never deleted inside one of its callbacks.
class H1UpstreamForH2 final : private UpstreamConnectionCallbacks,
                              private Tickable,
                              public Retirable {
 public:
  // stats: the stream's; the exchange records upstream_reused and retried.
  H1UpstreamForH2(WorkerContext& context, H2UpstreamStream& stream, StreamStats& stats) noexcept
      : context_(context), stream_(stream), stats_(stats) {}
  ~H1UpstreamForH2() override;
  H1UpstreamForH2(const H1UpstreamForH2&) = delete;
  H1UpstreamForH2& operator=(const H1UpstreamForH2&) = delete;

  // Sends head to target on a pooled connection or a new one. chunked: the body goes chunked;
  // method: the request's (HEAD: the response has no body; only a method that may be repeated is
  // retried on a fresh connection). False when out of memory (nothing was started).
  bool start(const UpstreamTarget& target, std::string&& head, bool chunked,
             std::string_view method) noexcept;
  void sendBody(std::string_view data) noexcept;
  // Ends the request with trailer fields (dropped unless the body is chunked).
  void sendTrailers(const http::HeaderMap& trailers) noexcept;
  void endRequest() noexcept;

  // Request body bytes taken but not on their way yet.
  uint64_t held() const noexcept { return held_; }
  // The connection is open and the request head went on it.
  bool connected() const noexcept { return connected_; }
  // Response body bytes the downstream took.
  void consume(uint64_t bytes) noexcept;
  // The HTTP version the upstream answered with (1.0 or 1.1), once its final head came.
  uint8_t responseVersionMinor() const noexcept { return response_version_minor_; }

  // The stream is done: the connection goes back to the pool when the exchange is complete,
  // else it is closed. Nothing more comes to the stream.
  void release() noexcept;

 private:
  void onUpstreamReady(UpstreamConnection& connection) noexcept override;
  void onUpstreamFailed(UpstreamFailure failure, bool retryable) noexcept override;
  bool onUpstreamHead(http::Http1Head& head) override;
  void onUpstreamBody(std::string_view data) override;
  void onUpstreamTrailers(http::HeaderMap& trailers) override;
  void onUpstreamComplete() override;
  void onUpstreamTunnelData(std::string_view data) noexcept override;
  void onUpstreamTunnelEof() noexcept override;
  void onUpstreamWritable() noexcept override;
  void onTick() noexcept override;

  bool acquire(bool fresh_only) noexcept;
  // Request bytes to the connection, or kept until it is open. payload: body bytes among them.
  void send(std::string_view framing, std::string_view data, std::string_view tail,
            uint64_t payload) noexcept;
  void sendHeadAndPending() noexcept;
  // The request's last byte is taken: tells the connection once it is on its way.
  void completeRequest() noexcept;
  // Ends the exchange with a failure the stream hears of. counted: upstream_failures already
  // counts it.
  void failExchange(UpstreamFailure failure, bool counted) noexcept;

  WorkerContext& context_;
  H2UpstreamStream& stream_;
  StreamStats& stats_;
  UpstreamTarget target_;
  UpstreamConnection* connection_ = nullptr;  // attached, ready or connecting
  std::string head_;                          // kept until a response head comes, to retry
  std::string pending_;                       // request bytes waiting for the connection to open

  uint64_t held_ = 0;       // request body bytes taken and not on their way yet
  uint64_t delivered_ = 0;  // response body bytes given to the stream
  uint64_t consumed_ = 0;   // ... that the downstream took
  uint8_t response_version_minor_ = 1;

  bool chunked_ = false;
  bool head_request_ = false;
  bool connected_ = false;  // connection_ is ready: bytes go straight to it
  bool blocked_ = false;    // its socket was over the high-water mark after a write
  bool body_sent_ = false;  // body bytes (or the last chunk) reached the connection
  bool request_complete_ = false;
  bool response_started_ = false;  // a final head came
  bool response_complete_ = false;
  bool paused_ = false;          // reading the upstream is paused (downstream backpressure)
  bool commit_pending_ = false;  // the final head waits to be relayed (next loop turn)
  bool resume_pending_ = false;  // reading resumes on the next loop turn
  bool retried_ = false;
  bool idempotent_ = false;  // the request's method may be sent again
  bool released_ = false;
};

}  // namespace tracecar::proxy
