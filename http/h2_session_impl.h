#pragma once

// The nghttp2 side of H2Session, shared by h2_session.cc (bytes, submissions) and
// h2_session_events.cc (nghttp2's callbacks). Not for use outside http/.
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/h2_session.h"

namespace tracecar::http {
namespace h2_internal {

inline constexpr int32_t kMaxStreamId = 0x7fffffff;
inline constexpr size_t kHeaderFieldOverhead = 32;  // RFC 9113 section 6.5.2

inline H2ErrorCode toCode(uint32_t code) noexcept { return static_cast<H2ErrorCode>(code); }
inline uint32_t fromCode(H2ErrorCode code) noexcept { return static_cast<uint32_t>(code); }

inline std::string_view view(const uint8_t* data, size_t size) noexcept {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

inline uint8_t* bytes(const char* data) noexcept {
  return reinterpret_cast<uint8_t*>(const_cast<char*>(data));
}

// GOAWAY (RFC 9113 section 6.8) without debug data.
inline std::string h2GoawayFrame(int32_t last_stream_id, uint32_t code) {
  const auto last = static_cast<uint32_t>(last_stream_id) & 0x7fffffffU;
  const unsigned char frame[17] = {
      0, 0, 8, 0x7, 0, 0, 0, 0, 0,
      static_cast<unsigned char>(last >> 24), static_cast<unsigned char>(last >> 16),
      static_cast<unsigned char>(last >> 8), static_cast<unsigned char>(last),
      static_cast<unsigned char>(code >> 24), static_cast<unsigned char>(code >> 16),
      static_cast<unsigned char>(code >> 8), static_cast<unsigned char>(code)};
  return std::string(reinterpret_cast<const char*>(frame), sizeof(frame));
}

inline char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// RFC 9113 section 8.2.2: fields that only mean something to one HTTP/1.1 connection.
inline bool connectionSpecific(std::string_view name, std::string_view value) noexcept {
  constexpr std::string_view kNames[] = {"connection", "proxy-connection", "keep-alive",
                                         "transfer-encoding", "upgrade"};
  for (std::string_view n : kNames) {
    if (HeaderMap::nameEquals(name, n)) return true;
  }
  return HeaderMap::nameEquals(name, "te") && !HeaderMap::nameEquals(value, "trailers");
}


}  // namespace h2_internal

class H2Session::Impl {
 public:
  struct Stream {
    std::string out;  // body bytes submitted, not yet framed (from out_offset)
    size_t out_offset = 0;
    std::unique_ptr<HeaderMap> trailers_out;  // sent once out is drained
    bool has_body = false;       // the head went without END_STREAM: a data provider pulls
    bool end_submitted = false;  // submitData(end) or submitTrailers: nothing more comes
    bool deferred = false;       // the provider said DEFERRED: resume when data comes
    bool known = false;          // the owner knows it: onStreamClose is due
    bool ignore = false;         // deliver nothing more (answered 431, or reset by us)
    bool final_head = false;     // server: request head; client: a response >= 200
    bool local_ended = false;    // our END_STREAM went out
    bool peer_reset = false;
    bool local_reset = false;
    bool too_large_reset = false;
  };

  explicit Impl(H2Session& owner) noexcept : s_(owner) {}
  ~Impl() {
    if (session_ != nullptr) nghttp2_session_del(session_);
  }

  absl::Status init();
  absl::Status receive(std::string_view data) noexcept;
  absl::Status send(std::string& out) noexcept;
  bool wantsWrite() const noexcept {
    return dead_ ? !final_frames_.empty() : nghttp2_session_want_write(session_) != 0;
  }
  bool finished() const noexcept {
    if (dead_) return final_frames_.empty();
    return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
  }

  absl::StatusOr<int32_t> submitRequest(const H2Head& head, bool end_stream) noexcept;
  absl::Status submitResponse(int32_t id, const H2Head& head, bool end_stream) noexcept;
  absl::Status submitData(int32_t id, std::string_view data, bool end_stream) noexcept;
  absl::Status submitTrailers(int32_t id, const HeaderMap& trailers) noexcept;
  absl::Status resetStream(int32_t id, H2ErrorCode code) noexcept;
  void sendGoaway(H2ErrorCode code) noexcept;
  void sendShutdownNotice() noexcept;
  void consume(int32_t id, size_t bytes) noexcept;
  size_t pendingData(int32_t id) const noexcept;
  size_t openStreams() const noexcept { return known_streams_; }
  uint32_t peerMaxConcurrentStreams() const noexcept {
    return nghttp2_session_get_remote_settings(session_,
                                               NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  }
  bool dead() const noexcept { return dead_; }

 private:
  enum class Flood : uint8_t { kRapidReset, kContinuation, kSettings, kPing, kEmptyData };

  Stream* find(int32_t id) noexcept {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : &it->second;
  }
  // Builds nva_ from a head (pseudo-header fields first) or from trailers.
  absl::Status buildFields(const H2Head* head, const HeaderMap& fields, bool request);
  nghttp2_data_provider provider() noexcept;
  void flood(Flood kind, std::string_view reason) noexcept;
  void die(H2ErrorCode code, std::string reason) noexcept;
  void reportFailure(std::string reason) noexcept;
  void finishHeaderBlock(const nghttp2_frame* frame);
  void closeStream(int32_t id, uint32_t code);

  // nghttp2 events, each behind a noexcept wrapper that turns an exception into a failure.
  int onBeginFrame(const nghttp2_frame_hd* hd);
  int onBeginHeaders(const nghttp2_frame* frame);
  int onHeader(const nghttp2_frame* frame, std::string_view name, std::string_view value);
  int onFrameRecv(const nghttp2_frame* frame);
  int onDataChunk(int32_t id, std::string_view data);
  int onFrameSend(const nghttp2_frame* frame);
  int onFrameNotSend(const nghttp2_frame* frame);
  ssize_t readBody(int32_t id, uint8_t* buf, size_t length, uint32_t* flags);
  template <class F>
  int guarded(F&& f) noexcept;

  friend struct Glue;

  H2Session& s_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, Stream> streams_;
  size_t known_streams_ = 0;

  // The header block being received (blocks never interleave).
  int32_t rx_stream_ = 0;
  bool rx_trailers_ = false;
  bool rx_too_large_ = false;
  size_t rx_block_bytes_ = 0;  // compressed: HEADERS + CONTINUATION payloads
  uint32_t rx_continuations_ = 0;
  H2Head rx_head_;
  HeaderMap rx_trailers_map_;

  // Flood bookkeeping.
  uint32_t empty_data_run_ = 0;
  uint32_t settings_unsent_acks_ = 0;  // SETTINGS and PINGs received since the last send()
  uint32_t pings_unsent_acks_ = 0;

  int32_t goaway_last_stream_ = h2_internal::kMaxStreamId;
  bool local_goaway_ = false;
  bool dead_ = false;            // nghttp2 abandoned: final_frames_ is all we send
  bool failure_reported_ = false;
  std::string final_frames_;
  std::string last_error_;  // nghttp2's reason for a connection error

  // Scratch for submissions.
  std::string nv_bytes_;
  std::vector<nghttp2_nv> nva_;
};


}  // namespace tracecar::http
