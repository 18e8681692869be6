#pragma once

// The nghttp2 side of H2Session, shared by h2_session.cc (bytes, submissions) and
// h2_session_events.cc (nghttp2's callbacks). Not for use outside http/.
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/h2_session.h"
#include "http/h2_session_memory.h"
#include "http/token.h"

namespace tracecar::http {
namespace h2_internal {

inline constexpr int32_t kMaxStreamId = 0x7fffffff;
inline constexpr size_t kHeaderFieldOverhead = 32;  // RFC 9113 section 6.5.2
// Fields submitted from storage that outlives the frame (H2FieldStore, or static text).
inline constexpr uint8_t kNoCopy = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;

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

// RFC 9113 section 8.2.1 field syntax, as nghttp2_check_header_name / _value check it (a test
// compares them on every byte): name maps a name byte to its lowercase form, or to 0 when it is
// not a tchar; value says which bytes a value may hold (HTAB, SP, VCHAR, obs-text).
struct FieldByteTables {
  char name[256] = {};
  bool value[256] = {};
  constexpr FieldByteTables() {
    for (int b = 0; b < 256; ++b) {
      const auto c = static_cast<char>(b);
      if (isTokenChar(c)) name[b] = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
      value[b] = b == '\t' || (b >= 0x20 && b != 0x7f);
    }
  }
};
inline constexpr FieldByteTables kFieldBytes;

// Copies name to out in lowercase; false when it is empty or holds a byte no name may hold.
inline bool lowerValidName(std::string_view name, char* out) noexcept {
  bool ok = !name.empty();
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = kFieldBytes.name[static_cast<unsigned char>(name[i])];
    ok &= c != 0;
    out[i] = c;
  }
  return ok;
}

inline bool validValueBytes(const char* p, size_t n) noexcept {
  bool ok = true;
  for (size_t i = 0; i < n; ++i) ok &= kFieldBytes.value[static_cast<unsigned char>(p[i])];
  return ok;
}

// Eight bytes at a time: a word holding no byte under 0x20 and no DEL is valid as it is (bytes
// of 0x80 and up are obs-text); one that does is checked byte by byte (HTAB is valid).
inline bool validValue(std::string_view value) noexcept {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  const char* p = value.data();
  const size_t n = value.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, sizeof(w));
    const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHighs;
    const uint64_t del = w ^ (kOnes * 0x7f);
    const uint64_t is_del = (del - kOnes) & ~del & kHighs;
    if ((below_space | is_del) != 0 && !validValueBytes(p + i, 8)) return false;
  }
  return validValueBytes(p + i, n - i);
}

// RFC 9113 section 8.2.2: fields that only mean something to one HTTP/1.1 connection.
inline bool connectionSpecific(std::string_view name, std::string_view value) noexcept {
  constexpr auto is = HeaderMap::nameEquals;
  switch (name.size()) {
    case 2: return is(name, "te") && !is(value, "trailers");
    case 7: return is(name, "upgrade");
    case 10: return is(name, "connection") || is(name, "keep-alive");
    case 16: return is(name, "proxy-connection");
    case 17: return is(name, "transfer-encoding");
    default: return false;
  }
}

// Remembers, per field name, whether its value keeps changing from one header list to the next
// on a connection. Such a field (a request id, a trace context) only churns the peer-facing HPACK
// dynamic table: each new value would evict entries that were still useful, and the encoder's
// lookups would walk every stale version of the name. It goes out as a literal never indexed.
class ChurnTracker {
 public:
  // Notes name's value (name as sent: lowercase); true when the value sent under that name has
  // now changed twice or more in a row.
  bool churning(std::string_view name, std::string_view value) noexcept;

 private:
  struct Slot {
    uint64_t name_key = 0;
    uint64_t value_key = 0;
    uint32_t changes = 0;  // in a row
  };
  static constexpr size_t kSlots = 16;  // names are hashed to a slot; a collision only forgets
  Slot slots_[kSlots];
};

}  // namespace h2_internal

class H2Session::Impl {
 public:
  // Body bytes in the session's memory: no malloc per stream.
  using BodyBuffer =
      std::basic_string<char, std::char_traits<char>, h2_internal::H2Allocator<char>>;

  struct Stream {
    explicit Stream(h2_internal::H2Memory& memory) noexcept
        : out(h2_internal::H2Allocator<char>(memory)) {}
    BodyBuffer out;  // body bytes submitted, not yet framed (from out_offset)
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
    bool stop_request = false;  // stopRequestBody(): RST_STREAM NO_ERROR after our END_STREAM
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
  void stopRequestBody(int32_t id) noexcept;
  void sendGoaway(H2ErrorCode code) noexcept;
  void sendShutdownNotice() noexcept;
  bool receivingHeaderBlock() const noexcept { return rx_block_open_; }
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
  // Builds nva_ from a head (pseudo-header fields first: a request's, or :status when status is
  // not 0) or from trailers, pointing into a buffer of fields_ that nghttp2 will not copy. On
  // success, the caller submits nva_ and then calls keepFields(submitted).
  absl::Status buildFields(const H2Head* request, int status, const HeaderMap& fields);
  void keepFields(bool submitted) noexcept;
  // nghttp2 is done with a HEADERS frame we submitted: its buffer can go.
  void releaseFields(const nghttp2_frame* frame) noexcept;
  nghttp2_data_provider provider() noexcept;
  void flood(Flood kind, std::string_view reason) noexcept;
  void die(H2ErrorCode code, std::string reason) noexcept;
  void reportFailure(std::string reason) noexcept;
  void finishHeaderBlock(const nghttp2_frame* frame);
  // The stream's END_STREAM went out: a request still open is stopped if the owner asked.
  void stopRequestIfAsked(int32_t id, Stream& st) noexcept;
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

  using StreamTable =
      std::unordered_map<int32_t, Stream, std::hash<int32_t>, std::equal_to<int32_t>,
                         h2_internal::H2Allocator<std::pair<const int32_t, Stream>>>;

  H2Session& s_;
  // Declared before everything nghttp2 or the stream table allocate from it: it goes last.
  h2_internal::H2Memory memory_;
  h2_internal::H2FieldStore fields_{memory_};  // outlives session_ (deleted in ~Impl)
  nghttp2_session* session_ = nullptr;
  StreamTable streams_{0, std::hash<int32_t>(), std::equal_to<int32_t>(),
                       StreamTable::allocator_type(memory_)};
  size_t known_streams_ = 0;

  // The header block being received (blocks never interleave).
  int32_t rx_stream_ = 0;
  bool rx_trailers_ = false;
  bool rx_too_large_ = false;
  size_t rx_block_bytes_ = 0;  // compressed: HEADERS + CONTINUATION payloads
  uint32_t rx_continuations_ = 0;
  bool rx_block_open_ = false;  // the last HEADERS / CONTINUATION lacked END_HEADERS
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
  h2_internal::ChurnTracker churn_;
  std::vector<nghttp2_nv> nva_;  // the first nva_count_ are the list built last
  size_t nva_count_ = 0;
  size_t nva_bytes_ = 0;  // bytes of the fields_ buffer they point into
};


}  // namespace tracecar::http
