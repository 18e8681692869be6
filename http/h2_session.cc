#include "http/h2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "base/ascii.h"
#include "http/h2_session_impl.h"

namespace tracecar::http {

using namespace h2_internal;  // NOLINT: this file's own helpers

std::string_view h2ErrorCodeName(H2ErrorCode code) noexcept {
  constexpr std::string_view kNames[] = {
      "NO_ERROR",       "PROTOCOL_ERROR",    "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
      "SETTINGS_TIMEOUT", "STREAM_CLOSED",   "FRAME_SIZE_ERROR", "REFUSED_STREAM",
      "CANCEL",         "COMPRESSION_ERROR", "CONNECT_ERROR",  "ENHANCE_YOUR_CALM",
      "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};
  const uint32_t i = fromCode(code);
  return i < std::size(kNames) ? kNames[i] : "UNKNOWN";
}

std::string_view h2CloseCauseName(H2CloseCause cause) noexcept {
  switch (cause) {
    case H2CloseCause::kDone: return "done";
    case H2CloseCause::kResetByPeer: return "reset_by_peer";
    case H2CloseCause::kResetLocally: return "reset_locally";
    case H2CloseCause::kHeadersTooLarge: return "headers_too_large";
    case H2CloseCause::kRefused: return "refused";
  }
  return "unknown";
}

H2Preface sniffH2Preface(std::string_view first_bytes) noexcept {
  constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  const size_t n = std::min(first_bytes.size(), kPreface.size());
  if (first_bytes.substr(0, n) != kPreface.substr(0, n)) return H2Preface::kNo;
  return n == kPreface.size() ? H2Preface::kYes : H2Preface::kNeedMore;
}


// ---- bytes in, bytes out ----

absl::Status H2Session::Impl::receive(std::string_view data) noexcept {
  if (dead_ || s_.failed_) return absl::FailedPreconditionError("HTTP/2 connection failed");
  const ssize_t rv = nghttp2_session_mem_recv(session_, bytes(data.data()), data.size());
  if (dead_) {
    reportFailure(last_error_);
  } else if (rv < 0) {
    switch (rv) {
      case NGHTTP2_ERR_FLOODED:
        // ACKs piled up unsent: blame whichever frame kind queued more of them.
        if (settings_unsent_acks_ >= pings_unsent_acks_) {
          flood(Flood::kSettings, "SETTINGS flood: too many ACKs owed");
        } else {
          flood(Flood::kPing, "PING flood: too many ACKs owed");
        }
        break;
      case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
        flood(Flood::kContinuation, "CONTINUATION flood: too many frames in one header block");
        break;
      case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
        ++s_.counters_.protocol_errors;
        die(H2ErrorCode::kProtocolError, "not an HTTP/2 client preface");
        break;
      default:
        ++s_.counters_.protocol_errors;
        die(H2ErrorCode::kInternalError,
            "HTTP/2: " + std::string(nghttp2_strerror(static_cast<int>(rv))));
        break;
    }
    reportFailure(last_error_);
  }
  if (dead_) return absl::InvalidArgumentError(last_error_);
  return absl::OkStatus();
}

absl::Status H2Session::Impl::send(std::string& out) noexcept {
  try {
    if (dead_) {
      out += final_frames_;
      final_frames_.clear();
      return absl::OkStatus();
    }
    settings_unsent_acks_ = 0;
    pings_unsent_acks_ = 0;
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        die(H2ErrorCode::kInternalError,
            "HTTP/2 send: " + std::string(nghttp2_strerror(static_cast<int>(n))));
        reportFailure(last_error_);
        out += final_frames_;
        final_frames_.clear();
        return absl::InternalError(last_error_);
      }
      if (n == 0) break;
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (dead_) break;  // a callback failed while framing
    }
    if (dead_) {
      reportFailure(last_error_);
      out += final_frames_;
      final_frames_.clear();
    }
  } catch (const std::bad_alloc&) {
    die(H2ErrorCode::kInternalError, "out of memory");
    reportFailure(last_error_);
    return absl::ResourceExhaustedError("HTTP/2 send: out of memory");
  }
  return absl::OkStatus();
}

void H2Session::Impl::flood(Flood kind, std::string_view reason) noexcept {
  if (dead_) return;
  H2Counters& c = s_.counters_;
  switch (kind) {
    case Flood::kRapidReset: ++c.rapid_reset_floods; break;
    case Flood::kContinuation: ++c.continuation_floods; break;
    case Flood::kSettings: ++c.settings_floods; break;
    case Flood::kPing: ++c.ping_floods; break;
    case Flood::kEmptyData: ++c.empty_data_floods; break;
  }
  die(H2ErrorCode::kEnhanceYourCalm, std::string(reason));
}

// Abandons nghttp2 (whatever it still had queued) for one GOAWAY of ours.
void H2Session::Impl::die(H2ErrorCode code, std::string reason) noexcept {
  if (dead_) return;
  dead_ = true;
  s_.failed_ = true;
  last_error_ = std::move(reason);
  try {
    final_frames_ = h2GoawayFrame(nghttp2_session_get_last_proc_stream_id(session_), fromCode(code));
  } catch (const std::bad_alloc&) {
    // Closed without a GOAWAY.
  }
}

void H2Session::Impl::reportFailure(std::string reason) noexcept {
  if (failure_reported_) return;
  failure_reported_ = true;
  try {
    s_.callbacks_.onConnectionError(reason);
  } catch (const std::exception&) {
  }
}


// ---- submissions ----

namespace h2_internal {
namespace {

uint64_t load64(const char* p) noexcept {
  uint64_t v = 0;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// A hash of text, 8 bytes at a time (the last 8 overlapping the ones before).
inline uint64_t fingerprint(std::string_view text) noexcept {
  constexpr uint64_t kMultiplier = 0x9e3779b97f4a7c15ULL;
  const char* p = text.data();
  const size_t n = text.size();
  uint64_t h = n * kMultiplier;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) h = (h ^ load64(p + i)) * kMultiplier;
    h = (h ^ load64(p + n - 8)) * kMultiplier;
  } else {
    uint64_t word = 0;
    for (size_t i = 0; i < n; ++i) word = word << 8 | static_cast<unsigned char>(p[i]);
    h = (h ^ word) * kMultiplier;
  }
  return h ^ h >> 29;
}

}  // namespace

bool ChurnTracker::churning(std::string_view name, std::string_view value) noexcept {
  const uint64_t name_key = fingerprint(name);
  const uint64_t value_key = fingerprint(value);
  static_assert(kSlots == 16);
  Slot& slot = slots_[name_key >> 60];
  if (slot.name_key != name_key) {
    slot = Slot{name_key, value_key, 0};
    return false;
  }
  if (slot.value_key == value_key) {
    slot.changes = 0;
    return false;
  }
  slot.value_key = value_key;
  if (slot.changes < 2) ++slot.changes;
  return slot.changes >= 2;
}

}  // namespace h2_internal

absl::Status H2Session::Impl::buildFields(const H2Head* request, int status,
                                          const HeaderMap& fields) {
  size_t room = fields.fieldBytes() + 3;  // + 3: the status digits
  if (request != nullptr) {
    if (request->method.empty()) {
      return absl::InvalidArgumentError("HTTP/2 request without a method");
    }
    room += request->method.size() + request->scheme.size() + request->authority.size() +
            request->path.size() + request->protocol.size();
  }
  if (nva_.size() < fields.size() + 5) nva_.resize(fields.size() + 5);  // grows, never shrinks
  nghttp2_nv* const nv = nva_.data();
  size_t count = 0;
  char* const out = fields_.take(room);
  size_t used = 0;
  const auto copy = [&](std::string_view text) noexcept {
    char* at = out + used;
    if (!text.empty()) std::memcpy(at, text.data(), text.size());
    used += text.size();
    return bytes(at);
  };
  // Pseudo-header names are literals: they outlive every frame.
  const auto pseudo = [&](std::string_view name, std::string_view value) noexcept {
    nv[count++] = nghttp2_nv{bytes(name.data()), copy(value), name.size(), value.size(), kNoCopy};
  };
  if (request != nullptr) {
    pseudo(":method", request->method);
    if (!request->scheme.empty()) pseudo(":scheme", request->scheme);
    if (!request->authority.empty()) pseudo(":authority", request->authority);
    if (!request->path.empty()) pseudo(":path", request->path);
    if (!request->protocol.empty()) pseudo(":protocol", request->protocol);
  } else if (status != 0) {
    const char digits[3] = {static_cast<char>('0' + status / 100 % 10),
                            static_cast<char>('0' + status / 10 % 10),
                            static_cast<char>('0' + status % 10)};
    pseudo(":status", std::string_view(digits, 3));
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string_view name = fields.name(i);
    const std::string_view value = fields.value(i);
    if (name.empty() || name.front() == ':' || connectionSpecific(name, value)) continue;
    uint8_t* name_out = nullptr;
    if (fields.verified(i)) {
      // Received over HTTP/2 and checked by nghttp2 then: lowercase and valid as it is.
      name_out = copy(name);
    } else {
      // Added or changed by the owner, or from HTTP/1.1: lowercase it and check it.
      name_out = bytes(out + used);
      const bool valid = lowerValidName(name, out + used);
      used += name.size();
      if (!valid || !validValue(value)) {
        fields_.drop();
        std::string lowered(name);
        for (char& c : lowered) c = ascii::toLower(c);
        return absl::InvalidArgumentError("invalid HTTP/2 header field \"" + lowered + "\"");
      }
    }
    const std::string_view sent_name(reinterpret_cast<const char*>(name_out), name.size());
    const uint8_t flags = churn_.churning(sent_name, value)
                              ? static_cast<uint8_t>(kNoCopy | NGHTTP2_NV_FLAG_NO_INDEX)
                              : kNoCopy;
    nv[count++] = nghttp2_nv{name_out, copy(value), name.size(), value.size(), flags};
  }
  nva_count_ = count;
  nva_bytes_ = used;
  return absl::OkStatus();
}

void H2Session::Impl::keepFields(bool submitted) noexcept {
  // A list without fields (empty trailers) points nowhere into the buffer.
  if (submitted && nva_count_ != 0) {
    fields_.keep(nva_bytes_);
  } else {
    fields_.drop();
  }
}

void H2Session::Impl::releaseFields(const nghttp2_frame* frame) noexcept {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.nvlen == 0) return;
  // The first field's value is ours for a head (a pseudo-header field), its name for trailers.
  const nghttp2_nv& first = frame->headers.nva[0];
  if (first.valuelen != 0 && fields_.release(first.value)) return;
  if (first.namelen != 0) fields_.release(first.name);
}

absl::StatusOr<int32_t> H2Session::Impl::submitRequest(const H2Head& head,
                                                       bool end_stream) noexcept {
  if (s_.kind_ != Kind::kClient) return absl::FailedPreconditionError("not an HTTP/2 client");
  if (dead_ || s_.failed_ || s_.goaway_received_ || local_goaway_) {
    return absl::FailedPreconditionError("HTTP/2 connection is closing");
  }
  try {
    if (absl::Status st = buildFields(&head, 0, head.headers); !st.ok()) return st;
    const nghttp2_data_provider p = provider();
    const int32_t id = nghttp2_submit_request(session_, nullptr, nva_.data(), nva_count_,
                                              end_stream ? nullptr : &p, nullptr);
    keepFields(id >= 0);
    if (id < 0) return absl::UnavailableError("HTTP/2 request: " + std::string(nghttp2_strerror(id)));
    Stream& st = streams_.try_emplace(id, memory_).first->second;
    st.known = true;
    st.has_body = !end_stream;
    st.end_submitted = end_stream;
    ++known_streams_;
    ++s_.counters_.streams_opened;
    return id;
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("HTTP/2 request: out of memory");
  }
}

absl::Status H2Session::Impl::submitResponse(int32_t id, const H2Head& head,
                                             bool end_stream) noexcept {
  if (s_.kind_ != Kind::kServer) return absl::FailedPreconditionError("not an HTTP/2 server");
  Stream* st = find(id);
  if (st == nullptr || dead_) return absl::NotFoundError("no such HTTP/2 stream");
  if (head.status < 100 || head.status > 999) return absl::InvalidArgumentError("bad status");
  try {
    if (absl::Status e = buildFields(nullptr, head.status, head.headers); !e.ok()) return e;
    int rv = 0;
    if (head.status < 200) {
      rv = nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id, nullptr, nva_.data(), nva_count_,
                                  nullptr);
    } else {
      const nghttp2_data_provider p = provider();
      rv = nghttp2_submit_response(session_, id, nva_.data(), nva_count_, end_stream ? nullptr : &p);
      st->has_body = !end_stream;
      st->end_submitted = end_stream;
    }
    keepFields(rv == 0);
    if (rv != 0) return absl::InternalError("HTTP/2 response: " + std::string(nghttp2_strerror(rv)));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("HTTP/2 response: out of memory");
  }
  return absl::OkStatus();
}

absl::Status H2Session::Impl::submitData(int32_t id, std::string_view data,
                                         bool end_stream) noexcept {
  Stream* st = find(id);
  if (st == nullptr || dead_) return absl::NotFoundError("no such HTTP/2 stream");
  if (!st->has_body || st->end_submitted) {
    return absl::FailedPreconditionError("HTTP/2 stream takes no more body");
  }
  try {
    if (st->out_offset > 0 && st->out_offset * 2 >= st->out.size()) {
      st->out.erase(0, st->out_offset);
      st->out_offset = 0;
    }
    st->out.append(data);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("HTTP/2 body: out of memory");
  }
  st->end_submitted = end_stream;
  if (st->deferred) {
    st->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return absl::OkStatus();
}

absl::Status H2Session::Impl::submitTrailers(int32_t id, const HeaderMap& trailers) noexcept {
  Stream* st = find(id);
  if (st == nullptr || dead_) return absl::NotFoundError("no such HTTP/2 stream");
  if (!st->has_body || st->end_submitted) {
    return absl::FailedPreconditionError("HTTP/2 stream already ended");
  }
  try {
    st->trailers_out = std::make_unique<HeaderMap>(trailers);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("HTTP/2 trailers: out of memory");
  }
  st->end_submitted = true;
  if (st->deferred) {
    st->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return absl::OkStatus();
}

absl::Status H2Session::Impl::resetStream(int32_t id, H2ErrorCode code) noexcept {
  Stream* st = find(id);
  if (st == nullptr || dead_) return absl::NotFoundError("no such HTTP/2 stream");
  st->ignore = true;
  const int rv = nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, fromCode(code));
  if (rv != 0) return absl::InternalError("HTTP/2 reset: " + std::string(nghttp2_strerror(rv)));
  return absl::OkStatus();
}

void H2Session::Impl::stopRequestBody(int32_t id) noexcept {
  Stream* st = find(id);
  if (st == nullptr || dead_ || s_.kind_ != Kind::kServer) return;
  st->stop_request = true;
  if (st->local_ended) stopRequestIfAsked(id, *st);
}

void H2Session::Impl::stopRequestIfAsked(int32_t id, Stream& st) noexcept {
  if (!st.stop_request || st.peer_reset || st.local_reset) return;
  st.stop_request = false;
  // 1: the client ended its request already; the stream closes by itself.
  if (nghttp2_session_get_stream_remote_close(session_, id) != 0) return;
  (void)nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id,
                                  fromCode(H2ErrorCode::kNoError));
}

void H2Session::Impl::sendGoaway(H2ErrorCode code) noexcept {
  if (dead_) return;
  local_goaway_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), fromCode(code),
                        nullptr, 0);
}

void H2Session::Impl::sendShutdownNotice() noexcept {
  if (dead_ || s_.kind_ != Kind::kServer) return;
  nghttp2_submit_shutdown_notice(session_);
}

void H2Session::Impl::consume(int32_t id, size_t bytes) noexcept {
  if (dead_ || bytes == 0) return;
  nghttp2_session_consume(session_, id, bytes);
}

size_t H2Session::Impl::pendingData(int32_t id) const noexcept {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.out.size() - it->second.out_offset;
}

ssize_t H2Session::Impl::readBody(int32_t id, uint8_t* buf, size_t length, uint32_t* flags) {
  Stream* st = find(id);
  if (st == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const size_t n = std::min(length, st->out.size() - st->out_offset);
  if (n > 0) std::memcpy(buf, st->out.data() + st->out_offset, n);
  st->out_offset += n;
  if (st->out_offset == st->out.size()) {
    st->out.clear();
    st->out_offset = 0;
    if (st->end_submitted) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (st->trailers_out) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        const std::unique_ptr<HeaderMap> trailers = std::move(st->trailers_out);
        if (!buildFields(nullptr, 0, *trailers).ok()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        const int rv = nghttp2_submit_trailer(session_, id, nva_.data(), nva_count_);
        keepFields(rv == 0);
        if (rv != 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
    } else if (n == 0) {
      st->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}


// ---- H2Session ----

H2Session::H2Session(Kind kind, H2SessionCallbacks& callbacks, const H2Settings& settings)
    : kind_(kind), callbacks_(callbacks), settings_(settings) {}

H2Session::~H2Session() = default;

absl::StatusOr<std::unique_ptr<H2Session>> H2Session::create(Kind kind,
                                                             H2SessionCallbacks& callbacks,
                                                             const H2Settings& settings) {
  try {
    std::unique_ptr<H2Session> session(new H2Session(kind, callbacks, settings));
    session->impl_ = std::make_unique<Impl>(*session);
    if (absl::Status st = session->impl_->init(); !st.ok()) return st;
    return session;
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("HTTP/2 session: out of memory");
  }
}

absl::Status H2Session::receive(std::string_view data) noexcept { return impl_->receive(data); }
absl::Status H2Session::send(std::string& out) noexcept { return impl_->send(out); }
bool H2Session::wantsWrite() const noexcept { return impl_->wantsWrite(); }
bool H2Session::finished() const noexcept { return impl_->finished(); }

absl::StatusOr<int32_t> H2Session::submitRequest(const H2Head& head, bool end_stream) noexcept {
  return impl_->submitRequest(head, end_stream);
}
absl::Status H2Session::submitResponse(int32_t stream_id, const H2Head& head,
                                       bool end_stream) noexcept {
  return impl_->submitResponse(stream_id, head, end_stream);
}
absl::Status H2Session::submitData(int32_t stream_id, std::string_view data,
                                   bool end_stream) noexcept {
  return impl_->submitData(stream_id, data, end_stream);
}
absl::Status H2Session::submitTrailers(int32_t stream_id, const HeaderMap& trailers) noexcept {
  return impl_->submitTrailers(stream_id, trailers);
}
absl::Status H2Session::resetStream(int32_t stream_id, H2ErrorCode code) noexcept {
  return impl_->resetStream(stream_id, code);
}
void H2Session::sendGoaway(H2ErrorCode code) noexcept { impl_->sendGoaway(code); }
void H2Session::sendShutdownNotice() noexcept { impl_->sendShutdownNotice(); }
void H2Session::stopRequestBody(int32_t stream_id) noexcept { impl_->stopRequestBody(stream_id); }
bool H2Session::receivingHeaderBlock() const noexcept { return impl_->receivingHeaderBlock(); }
void H2Session::consume(int32_t stream_id, size_t bytes) noexcept {
  impl_->consume(stream_id, bytes);
}
size_t H2Session::pendingData(int32_t stream_id) const noexcept {
  return impl_->pendingData(stream_id);
}
size_t H2Session::openStreams() const noexcept { return impl_->openStreams(); }
uint32_t H2Session::peerMaxConcurrentStreams() const noexcept {
  return impl_->peerMaxConcurrentStreams();
}
bool H2Session::canOpenStream() const noexcept {
  return kind_ == Kind::kClient && !failed_ && !goaway_received_ && !impl_->dead() &&
         impl_->openStreams() < peerMaxConcurrentStreams();
}

}  // namespace tracecar::http

