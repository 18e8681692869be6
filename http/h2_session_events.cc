// nghttp2's callbacks for H2Session: what arrives becomes events; floods are caught here.
#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "http/h2_session_impl.h"

namespace tracecar::http {

using namespace h2_internal;  // NOLINT: this file's own helpers

struct Glue {
  static H2Session::Impl& impl(void* user) noexcept { return *static_cast<H2Session::Impl*>(user); }

  static int beginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) noexcept {
    return impl(user).guarded([&] { return impl(user).onBeginFrame(hd); });
  }
  static int beginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept {
    return impl(user).guarded([&] { return impl(user).onBeginHeaders(frame); });
  }
  static int header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                    size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                    void* user) noexcept {
    return impl(user).guarded(
        [&] { return impl(user).onHeader(frame, view(name, namelen), view(value, valuelen)); });
  }
  static int frameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept {
    return impl(user).guarded([&] { return impl(user).onFrameRecv(frame); });
  }
  static int dataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                       void* user) noexcept {
    return impl(user).guarded([&] { return impl(user).onDataChunk(id, view(data, len)); });
  }
  static int streamClose(nghttp2_session*, int32_t id, uint32_t code, void* user) noexcept {
    return impl(user).guarded([&] {
      impl(user).closeStream(id, code);
      return 0;
    });
  }
  static int frameSend(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept {
    return impl(user).guarded([&] { return impl(user).onFrameSend(frame); });
  }
  static int frameNotSend(nghttp2_session*, const nghttp2_frame* frame, int, void* user) noexcept {
    return impl(user).guarded([&] { return impl(user).onFrameNotSend(frame); });
  }
  static int invalidFrame(nghttp2_session*, const nghttp2_frame*, int lib_error,
                          void* user) noexcept {
    H2Session::Impl& self = impl(user);
    if (lib_error == NGHTTP2_ERR_TOO_MANY_SETTINGS) {
      self.flood(H2Session::Impl::Flood::kSettings, "too many entries in one SETTINGS frame");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }
  static int error(nghttp2_session*, int lib_error, const char* msg, size_t len,
                   void* user) noexcept {
    H2Session::Impl& self = impl(user);
    try {
      self.last_error_.assign(msg, len);
    } catch (const std::bad_alloc&) {
    }
    if (lib_error == NGHTTP2_ERR_TOO_MANY_SETTINGS) {
      self.flood(H2Session::Impl::Flood::kSettings, "too many entries in one SETTINGS frame");
    }
    return 0;
  }
  static ssize_t read(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                      uint32_t* flags, nghttp2_data_source*, void* user) noexcept {
    H2Session::Impl& self = impl(user);
    try {
      return self.readBody(id, buf, length, flags);
    } catch (const std::exception&) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets this stream only
    }
  }
};


template <class F>
int H2Session::Impl::guarded(F&& f) noexcept {
  if (dead_) return NGHTTP2_ERR_CALLBACK_FAILURE;
  try {
    return f();
  } catch (const std::exception&) {
    die(H2ErrorCode::kInternalError, "out of memory");
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
}


nghttp2_data_provider H2Session::Impl::provider() noexcept {
  nghttp2_data_provider p;
  p.source.ptr = nullptr;
  p.read_callback = &Glue::read;
  return p;
}

absl::Status H2Session::Impl::init() {
  const H2Settings& cfg = s_.settings_;
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return absl::ResourceExhaustedError("nghttp2");
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, &Glue::beginFrame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &Glue::beginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Glue::header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Glue::frameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Glue::dataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Glue::streamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &Glue::frameSend);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, &Glue::frameNotSend);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, &Glue::invalidFrame);
  nghttp2_session_callbacks_set_error_callback2(cbs, &Glue::error);

  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return absl::ResourceExhaustedError("nghttp2");
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, cfg.max_encoder_table_size);
  nghttp2_option_set_max_outbound_ack(opt, cfg.max_outbound_acks);
  // Entries per SETTINGS are checked in onBeginFrame, so the flood is ours to answer and count.
  nghttp2_option_set_max_settings(opt, 16384 / 6);
  nghttp2_option_set_max_continuations(opt, cfg.max_continuations);
  nghttp2_option_set_no_closed_streams(opt, 1);  // no priority tree: closed streams go at once
  // A backstop under our own premature-reset check (which answers first, more precisely).
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);

  const int rv = s_.kind_ == Kind::kServer
                     ? nghttp2_session_server_new3(&session_, cbs, this, opt, memory_.mem())
                     : nghttp2_session_client_new3(&session_, cbs, this, opt, memory_.mem());
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) return absl::ResourceExhaustedError("nghttp2: " + std::string(nghttp2_strerror(rv)));

  std::vector<nghttp2_settings_entry> iv = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg.max_header_list_bytes},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, cfg.header_table_size},
  };
  if (s_.kind_ == Kind::kClient) iv.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  if (int e = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size()); e != 0) {
    return absl::InvalidArgumentError("HTTP/2 settings: " + std::string(nghttp2_strerror(e)));
  }
  if (cfg.connection_window_size > 65535) {
    const int e = nghttp2_session_set_local_window_size(
        session_, NGHTTP2_FLAG_NONE, 0, static_cast<int32_t>(cfg.connection_window_size));
    if (e != 0) {
      return absl::InvalidArgumentError("HTTP/2 window: " + std::string(nghttp2_strerror(e)));
    }
  }
  return absl::OkStatus();
}


// ---- events ----

int H2Session::Impl::onBeginFrame(const nghttp2_frame_hd* hd) {
  const H2Settings& cfg = s_.settings_;
  switch (hd->type) {
    case NGHTTP2_DATA:
      if (hd->length > 0) {
        empty_data_run_ = 0;
      } else if ((hd->flags & NGHTTP2_FLAG_END_STREAM) == 0 &&
                 ++empty_data_run_ > cfg.max_empty_data_frames) {
        flood(Flood::kEmptyData, "empty DATA frame flood");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    case NGHTTP2_HEADERS:
      rx_block_bytes_ = hd->length;
      rx_continuations_ = 0;
      rx_block_open_ = (hd->flags & NGHTTP2_FLAG_END_HEADERS) == 0;
      break;
    case NGHTTP2_CONTINUATION:
      rx_block_open_ = (hd->flags & NGHTTP2_FLAG_END_HEADERS) == 0;
      rx_block_bytes_ += hd->length;
      // A compressed block cannot be much larger than the list it decodes to: one frame of
      // slack over the limit, or too many frames, is a flood rather than a big request.
      if (++rx_continuations_ > cfg.max_continuations ||
          rx_block_bytes_ > size_t{cfg.max_header_list_bytes} + 16384) {
        flood(Flood::kContinuation, "CONTINUATION flood");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    case NGHTTP2_SETTINGS:
      if ((hd->flags & NGHTTP2_FLAG_ACK) == 0 && hd->length / 6 > cfg.max_settings_entries) {
        flood(Flood::kSettings, "too many entries in one SETTINGS frame");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    default:
      break;
  }
  return 0;
}

int H2Session::Impl::onBeginHeaders(const nghttp2_frame* frame) {
  const int32_t id = frame->hd.stream_id;
  rx_stream_ = id;
  rx_too_large_ = false;
  rx_head_.clear();
  rx_trailers_map_.clear();
  rx_trailers_ = false;
  if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    streams_.try_emplace(id, memory_);  // the peer opened it
    ++s_.counters_.streams_opened;
    return 0;
  }
  Stream* st = find(id);
  rx_trailers_ = st != nullptr && st->final_head;
  return 0;
}

int H2Session::Impl::onHeader(const nghttp2_frame* frame, std::string_view name,
                              std::string_view value) {
  if (frame->hd.stream_id != rx_stream_ || rx_too_large_) return 0;
  const size_t bytes_now = rx_head_.header_list_bytes + name.size() + value.size() +
                           kHeaderFieldOverhead;
  rx_head_.header_list_bytes = bytes_now;
  if (bytes_now > s_.settings_.max_header_list_bytes) {
    rx_too_large_ = true;
    rx_head_.headers.clear();
    rx_trailers_map_.clear();
    return 0;
  }
  // nghttp2 passes on only fields that passed its checks (lowercase names, valid values).
  if (rx_trailers_) {
    rx_trailers_map_.addVerified(name, value);
    return 0;
  }
  if (!name.empty() && name.front() == ':') {
    if (name == ":method") {
      rx_head_.method = value;
    } else if (name == ":scheme") {
      rx_head_.scheme = value;
    } else if (name == ":authority") {
      rx_head_.authority = value;
    } else if (name == ":path") {
      rx_head_.path = value;
    } else if (name == ":protocol") {
      rx_head_.protocol = value;
    } else if (name == ":status") {
      int status = 0;
      for (char c : value) status = status * 10 + (c - '0');  // nghttp2 checked: 3 digits
      rx_head_.status = status;
    }
    return 0;
  }
  rx_head_.headers.addVerified(name, value);
  if (s_.settings_.max_header_fields != 0 &&
      rx_head_.headers.size() > s_.settings_.max_header_fields) {
    rx_too_large_ = true;
    rx_head_.headers.clear();
  }
  return 0;
}

void H2Session::Impl::finishHeaderBlock(const nghttp2_frame* frame) {
  const int32_t id = frame->hd.stream_id;
  rx_stream_ = 0;
  Stream* st = find(id);
  if (st == nullptr || st->ignore) return;
  if (rx_too_large_) {
    ++s_.counters_.headers_too_large;
    if (s_.kind_ == Kind::kServer && !st->known) {
      // Answered here: the owner never hears of the stream.
      st->ignore = true;
      static const nghttp2_nv kNv[] = {{bytes(":status"), bytes("431"), 7, 3, kNoCopy},
                                       {bytes("content-length"), bytes("0"), 14, 1, kNoCopy}};
      nghttp2_submit_response(session_, id, kNv, std::size(kNv), nullptr);
      // Its body, if one follows, is not wanted.
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) st->stop_request = true;
      s_.callbacks_.onRequestHeadersTooLarge(id);
    } else {
      st->ignore = true;
      st->too_large_reset = true;
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, fromCode(H2ErrorCode::kCancel));
    }
    return;
  }
  if (rx_trailers_) {
    s_.callbacks_.onTrailers(id, rx_trailers_map_);
  } else {
    if (s_.kind_ == Kind::kServer) {
      if (!st->known) ++known_streams_;
      st->known = true;
      st->final_head = true;
    } else {
      st->final_head = rx_head_.status >= 200;
    }
    s_.callbacks_.onHeaders(id, rx_head_);
  }
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) s_.callbacks_.onEndStream(id);
}

int H2Session::Impl::onFrameRecv(const nghttp2_frame* frame) {
  const int32_t id = frame->hd.stream_id;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (id == rx_stream_) finishHeaderBlock(frame);
      break;
    case NGHTTP2_DATA:
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        Stream* st = find(id);
        if (st != nullptr && st->known && !st->ignore) s_.callbacks_.onEndStream(id);
      }
      break;
    case NGHTTP2_RST_STREAM: {
      Stream* st = find(id);
      if (st == nullptr) break;
      st->peer_reset = true;
      if (s_.kind_ == Kind::kServer && !st->local_ended) {
        H2Counters& c = s_.counters_;
        ++c.premature_resets;
        if (c.premature_resets > s_.settings_.max_premature_resets &&
            c.premature_resets * 2 > c.streams_opened) {
          flood(Flood::kRapidReset, "rapid reset: streams reset before their response");
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
      }
      break;
    }
    case NGHTTP2_GOAWAY:
      s_.goaway_received_ = true;
      goaway_last_stream_ = frame->goaway.last_stream_id;
      s_.callbacks_.onGoaway(frame->goaway.last_stream_id, toCode(frame->goaway.error_code),
                             view(frame->goaway.opaque_data, frame->goaway.opaque_data_len));
      break;
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
        ++settings_unsent_acks_;
        s_.callbacks_.onPeerSettings();
      }
      break;
    case NGHTTP2_PING:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) ++pings_unsent_acks_;
      break;
    default:
      break;
  }
  return 0;
}

int H2Session::Impl::onDataChunk(int32_t id, std::string_view data) {
  Stream* st = find(id);
  if (st == nullptr || !st->known || st->ignore) {
    nghttp2_session_consume(session_, id, data.size());  // nobody will: credit it now
    return 0;
  }
  s_.callbacks_.onData(id, data);
  return 0;
}

int H2Session::Impl::onFrameSend(const nghttp2_frame* frame) {
  releaseFields(frame);
  if (frame->hd.type == NGHTTP2_GOAWAY && !local_goaway_ &&
      frame->goaway.error_code != fromCode(H2ErrorCode::kNoError) && !s_.failed_) {
    // A GOAWAY we did not ask for: nghttp2 found a connection error while receiving.
    ++s_.counters_.protocol_errors;
    s_.failed_ = true;
    const std::string_view debug = view(frame->goaway.opaque_data, frame->goaway.opaque_data_len);
    reportFailure("HTTP/2 " + std::string(h2ErrorCodeName(toCode(frame->goaway.error_code))) +
                  (debug.empty() ? "" : ": ") + std::string(debug));
    return 0;
  }
  Stream* st = find(frame->hd.stream_id);
  if (st == nullptr) return 0;
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    st->local_ended = true;
    stopRequestIfAsked(frame->hd.stream_id, *st);
  } else if (frame->hd.type == NGHTTP2_RST_STREAM &&
             !(st->local_ended && frame->rst_stream.error_code == NGHTTP2_NO_ERROR)) {
    // A NO_ERROR reset after our END_STREAM only stops the request: the exchange was done.
    st->local_reset = true;
  }
  return 0;
}

int H2Session::Impl::onFrameNotSend(const nghttp2_frame* frame) {
  releaseFields(frame);
  // A request that never went out (GOAWAY came first): nghttp2 never opened the stream.
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    closeStream(frame->hd.stream_id, fromCode(H2ErrorCode::kRefusedStream));
  }
  return 0;
}

void H2Session::Impl::closeStream(int32_t id, uint32_t code) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  const Stream& st = it->second;
  const bool known = st.known;
  H2CloseCause cause = H2CloseCause::kDone;
  if (st.too_large_reset) {
    cause = H2CloseCause::kHeadersTooLarge;
  } else if (st.peer_reset) {
    cause = H2CloseCause::kResetByPeer;
  } else if (st.local_reset) {
    cause = H2CloseCause::kResetLocally;
  } else if (code == fromCode(H2ErrorCode::kRefusedStream)) {
    cause = H2CloseCause::kRefused;
  } else if (code != fromCode(H2ErrorCode::kNoError)) {
    cause = H2CloseCause::kResetLocally;
  }
  streams_.erase(it);
  if (rx_stream_ == id) rx_stream_ = 0;
  if (!known) return;
  --known_streams_;
  s_.callbacks_.onStreamClose(id, toCode(code), cause);
}

}  // namespace tracecar::http
