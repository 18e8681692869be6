#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/header_map.h"

namespace tracecar::http {

// RFC 9113 section 7. A peer may send codes outside this list; they keep their value.
enum class H2ErrorCode : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kInternalError = 0x2,
  kFlowControlError = 0x3,
  kSettingsTimeout = 0x4,
  kStreamClosed = 0x5,
  kFrameSizeError = 0x6,
  kRefusedStream = 0x7,
  kCancel = 0x8,
  kCompressionError = 0x9,
  kConnectError = 0xa,
  kEnhanceYourCalm = 0xb,
  kInadequateSecurity = 0xc,
  kHttp11Required = 0xd,
};
std::string_view h2ErrorCodeName(H2ErrorCode code) noexcept;  // "NO_ERROR", ..., "UNKNOWN"

// What we advertise and enforce on one connection. Header sizes are RFC 9113 sizes: name +
// value + 32 per field, pseudo-header fields included.
struct H2Settings {
  uint32_t max_concurrent_streams = 1024;        // SETTINGS_MAX_CONCURRENT_STREAMS
  uint32_t max_header_list_bytes = 60 * 1024;    // SETTINGS_MAX_HEADER_LIST_SIZE, enforced
  // Regular fields (not pseudo-header fields) in one head, enforced like the byte limit (a
  // head over it is over the limits); 0: no limit. Trailers are not counted here.
  uint32_t max_header_fields = 0;
  uint32_t initial_window_size = 65535;          // SETTINGS_INITIAL_WINDOW_SIZE (per stream)
  uint32_t connection_window_size = 1024 * 1024;  // what the peer may send unconsumed, in all
  uint32_t header_table_size = 4096;  // SETTINGS_HEADER_TABLE_SIZE: the peer's encoder table
  uint32_t max_encoder_table_size = 4096;  // our encoder's table, whatever the peer allows

  // Flood limits: each one passed is answered with GOAWAY ENHANCE_YOUR_CALM and counted.
  // SETTINGS and PING ACKs owed to the peer but not yet taken by send(): a peer that keeps
  // sending them without reading its ACKs.
  uint32_t max_outbound_acks = 1000;
  uint32_t max_settings_entries = 32;  // in one SETTINGS frame
  uint32_t max_continuations = 8;      // CONTINUATION frames after one HEADERS
  // DATA frames without payload and without END_STREAM in a row (a DATA frame carrying bytes
  // ends the run).
  uint32_t max_empty_data_frames = 64;
  // Server: streams the peer reset before our response ended (CVE-2023-44487), once they are
  // more than this and more than half of the streams it opened.
  uint32_t max_premature_resets = 100;
};

// Per connection, for the owner's metrics.
struct H2Counters {
  uint64_t streams_opened = 0;      // by the peer (server) or by submitRequest (client)
  uint64_t headers_too_large = 0;   // header lists over max_header_list_bytes: 431 or reset
  uint64_t premature_resets = 0;    // server: peer resets before our response ended
  uint64_t rapid_reset_floods = 0;  // the counters below are 0 or 1: the first flood ends it
  uint64_t continuation_floods = 0;
  uint64_t settings_floods = 0;
  uint64_t ping_floods = 0;
  uint64_t empty_data_floods = 0;
  uint64_t protocol_errors = 0;  // connection errors other than floods (GOAWAY sent by us)
};

// One message head. Requests use method..protocol, responses status; headers holds the
// regular fields (lowercase names on receipt).
struct H2Head {
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  std::string protocol;  // :protocol of an extended CONNECT (RFC 8441)
  int status = 0;
  HeaderMap headers;
  size_t header_list_bytes = 0;  // received: RFC 9113 size of the whole block

  // As a new head, keeping the buffers already allocated.
  void clear() noexcept {
    method.clear();
    scheme.clear();
    authority.clear();
    path.clear();
    protocol.clear();
    status = 0;
    headers.clear();
    header_list_bytes = 0;
  }
};

// Why a stream ended.
enum class H2CloseCause : uint8_t {
  kDone,             // both sides ended it
  kResetByPeer,      // RST_STREAM received; the code is the peer's
  kResetLocally,     // we sent RST_STREAM: resetStream(), or the peer broke the stream's rules
  kHeadersTooLarge,  // client: the response's header list was over the limit (reset, CANCEL)
  kRefused,          // never processed by the peer (past its GOAWAY's last stream id): retryable
};
std::string_view h2CloseCauseName(H2CloseCause cause) noexcept;

// Events of an H2Session, per stream in order: onHeaders (a client may get 1xx heads before
// the final one), onData*, onTrailers?, onEndStream, then onStreamClose, which comes for every
// stream the owner knows of (server: once onHeaders came; client: every submitRequest), also
// after a reset. Connection events: onGoaway, onConnectionError (once; no event follows).
// The session must not be destroyed from inside a callback.
class H2SessionCallbacks {
 public:
  virtual ~H2SessionCallbacks() = default;
  // head stays valid during the call; move from it to keep it.
  virtual void onHeaders(int32_t stream_id, H2Head& head) = 0;
  // Body bytes. They count against the flow-control windows until the owner calls consume().
  virtual void onData(int32_t stream_id, std::string_view data) = 0;
  virtual void onTrailers(int32_t stream_id, HeaderMap& trailers) = 0;
  virtual void onEndStream(int32_t stream_id) = 0;
  virtual void onStreamClose(int32_t stream_id, H2ErrorCode code, H2CloseCause cause) = 0;
  // Streams above last_stream_id that we opened close next, as kRefused.
  virtual void onGoaway(int32_t last_stream_id, H2ErrorCode code,
                        std::string_view debug_data) = 0;
  // The connection failed (protocol error, flood, memory): send() holds the GOAWAY to write,
  // then the owner closes the connection.
  virtual void onConnectionError(std::string_view reason) = 0;
  // The peer's SETTINGS arrived (peerMaxConcurrentStreams() may have changed).
  virtual void onPeerSettings() {}
  // Server: a request's header list was over max_header_list_bytes. The session answered it 431
  // itself and no other event comes for the stream; the owner only counts it.
  virtual void onRequestHeadersTooLarge(int32_t /*stream_id*/) {}
};

// HTTP/2 over nghttp2, server or client: bytes in (receive), events out (callbacks), frames
// out into the owner's buffer (send). No I/O, no clock, never throws.
//
// Flow control is the owner's: received body bytes are acknowledged (WINDOW_UPDATE) only as it
// calls consume(), so a slow reader holds at most the windows' worth. Bodies to send are
// buffered per stream (submitData) and framed as the peer's windows allow; pendingData() tells
// the owner how much waits, so it can stop reading its source.
class H2Session {
 public:
  enum class Kind : uint8_t { kServer, kClient };

  static absl::StatusOr<std::unique_ptr<H2Session>> create(Kind kind,
                                                           H2SessionCallbacks& callbacks,
                                                           const H2Settings& settings = {});
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Bytes from the peer (a server's first ones being the client preface). Not OK when the
  // connection failed here or before (a flood, a bad preface); onConnectionError told why. A
  // protocol error nghttp2 answers itself is reported from send(), which writes its GOAWAY.
  absl::Status receive(std::string_view data) noexcept;
  // Appends every frame due to the peer to out. Call it after receive() and after submitting.
  absl::Status send(std::string& out) noexcept;
  bool wantsWrite() const noexcept;
  // Nothing more to read or write: a GOAWAY went both ways or one side failed and the streams
  // are done. The owner writes what send() gave, then closes.
  bool finished() const noexcept;
  bool failed() const noexcept { return failed_; }

  // Client: opens a stream. head: method, scheme, authority, path (or CONNECT's authority),
  // headers. With end_stream false, the body follows through submitData / submitTrailers.
  absl::StatusOr<int32_t> submitRequest(const H2Head& head, bool end_stream) noexcept;
  // Server: the response head (status, headers); a 1xx head may come before it.
  absl::Status submitResponse(int32_t stream_id, const H2Head& head, bool end_stream) noexcept;
  // Body bytes (copied) for a stream whose head was submitted without end_stream.
  absl::Status submitData(int32_t stream_id, std::string_view data, bool end_stream) noexcept;
  // Ends the stream with trailers, after the body submitted so far.
  absl::Status submitTrailers(int32_t stream_id, const HeaderMap& trailers) noexcept;
  absl::Status resetStream(int32_t stream_id, H2ErrorCode code) noexcept;
  // Server: the response does not need the rest of the request. Once the response's END_STREAM
  // went out, a request not ended yet is stopped with RST_STREAM NO_ERROR (RFC 9113 section
  // 8.1), so the stream does not stay half-open; it still closes as kDone.
  void stopRequestBody(int32_t stream_id) noexcept;
  // GOAWAY naming the last stream the peer opened that we processed: streams up to it go on,
  // later ones are refused. With kNoError this is a graceful drain.
  void sendGoaway(H2ErrorCode code = H2ErrorCode::kNoError) noexcept;
  // Server, first step of a graceful drain: GOAWAY with 2^31-1, then sendGoaway() after an RTT.
  void sendShutdownNotice() noexcept;
  // The owner has forwarded bytes onData gave (also valid after the stream closed).
  void consume(int32_t stream_id, size_t bytes) noexcept;

  size_t pendingData(int32_t stream_id) const noexcept;  // submitted, not yet framed
  size_t openStreams() const noexcept;                   // streams the owner knows of
  // Client, for a pool: the peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until its
  // SETTINGS came) and whether another request may go on this connection now.
  uint32_t peerMaxConcurrentStreams() const noexcept;
  bool canOpenStream() const noexcept;
  bool goawayReceived() const noexcept { return goaway_received_; }
  // A HEADERS frame came without END_HEADERS and its last CONTINUATION has not: until it does,
  // no other frame may come on the connection (RFC 9113 section 6.10), so the owner bounds it.
  bool receivingHeaderBlock() const noexcept;
  const H2Counters& counters() const noexcept { return counters_; }
  Kind kind() const noexcept { return kind_; }

  class Impl;  // nghttp2's callbacks

 private:
  H2Session(Kind kind, H2SessionCallbacks& callbacks, const H2Settings& settings);
  absl::Status init();

  Kind kind_;
  H2SessionCallbacks& callbacks_;
  H2Settings settings_;
  std::unique_ptr<Impl> impl_;
  H2Counters counters_;
  bool failed_ = false;
  bool goaway_received_ = false;
  friend class Impl;
};

// The 24-byte client connection preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", for a listener that
// serves HTTP/2 with prior knowledge and HTTP/1.1 on one port.
enum class H2Preface : uint8_t { kYes, kNo, kNeedMore };
H2Preface sniffH2Preface(std::string_view first_bytes) noexcept;
inline bool looksLikeH2Preface(std::string_view first_bytes) noexcept {
  return sniffH2Preface(first_bytes) == H2Preface::kYes;
}

}  // namespace tracecar::http
