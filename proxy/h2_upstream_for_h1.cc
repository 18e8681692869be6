#include "proxy/h2_upstream_for_h1.h"

#include <utility>

#include "proxy/h2_worker.h"
#include "proxy/protocol_translation.h"

namespace tracecar::proxy {

using http::H2CloseCause;
using http::H2ErrorCode;

H2UpstreamForH1::~H2UpstreamForH1() { release(false); }

bool H2UpstreamForH1::start(const UpstreamTarget& target, http::H2Head&& head) noexcept {
  try {
    target_ = target;
  } catch (...) {
    return false;
  }
  head_ = std::move(head);
  if (!acquire()) return false;
  reused_ = ready_;
  return true;
}

bool H2UpstreamForH1::acquire() noexcept {
  connection_ = pool_.acquire(target_, *this);
  if (connection_ == nullptr) return false;
  ready_ = connection_->ready();
  return true;
}

bool H2UpstreamForH1::submit(bool end_stream) noexcept {
  if (connection_ == nullptr || released_) return false;
  const bool end = end_stream || (end_requested_ && waiting_.empty() && !waiting_trailers_);
  absl::StatusOr<int32_t> id = connection_->submitRequest(head_, end, *this);
  if (!id.ok()) return false;
  id_ = *id;
  submitted_ = true;
  client_.onH2UpstreamSubmitted(*connection_);
  if (end) end_requested_ = true;
  if (!waiting_.empty()) {
    unframed_ += waiting_.size();
    (void)connection_->submitData(id_, waiting_, end_requested_ && !waiting_trailers_);
    std::string().swap(waiting_);
  }
  if (waiting_trailers_) {
    (void)connection_->submitTrailers(id_, *waiting_trailers_);
    waiting_trailers_.reset();
  }
  return true;
}

bool H2UpstreamForH1::sendHead(bool end_stream) noexcept {
  if (!ready_) return false;
  return submit(end_stream);
}

void H2UpstreamForH1::sendBody(std::string_view data) noexcept {
  if (released_ || end_requested_ || data.empty()) return;
  if (!submitted_) {
    // Waiting to be sent again after a refusal: kept (the session pauses at once) until then.
    try {
      waiting_.append(data);
    } catch (...) {
      fail(UpstreamFailure::kOther);
      return;
    }
    blocked_ = true;
    return;
  }
  if (!connection_->submitData(id_, data, false).ok()) return;  // the stream's close follows
  unframed_ += data.size();
  if (unframed_ > context_.settings().high_water_bytes) blocked_ = true;
}

void H2UpstreamForH1::sendTrailers(const http::HeaderMap& trailers) noexcept {
  if (released_ || end_requested_) return;
  end_requested_ = true;
  if (!submitted_) {
    try {
      waiting_trailers_ = std::make_unique<http::HeaderMap>(trailers);
    } catch (...) {
      fail(UpstreamFailure::kOther);
    }
    return;
  }
  (void)connection_->submitTrailers(id_, trailers);
}

void H2UpstreamForH1::endRequest() noexcept {
  if (released_ || end_requested_) return;
  end_requested_ = true;
  if (submitted_) (void)connection_->submitData(id_, {}, true);
}

void H2UpstreamForH1::resumeReading() noexcept {
  if (!paused_) return;
  paused_ = false;
  if (released_ || connection_ == nullptr || !submitted_ || unconsumed_ == 0) return;
  const uint64_t n = unconsumed_;
  unconsumed_ = 0;
  connection_->consume(id_, n);
}

void H2UpstreamForH1::fail(UpstreamFailure failure) noexcept {
  if (released_) return;
  release(false);
  DataPathCounters::add(context_.counters().upstream_failures);
  client_.onUpstreamFailed(failure, false);
}

void H2UpstreamForH1::release(bool complete) noexcept {
  if (released_) return;
  released_ = true;
  H2UpstreamConnection* connection = connection_;
  connection_ = nullptr;
  if (connection == nullptr) return;
  if (submitted_) {
    connection->detach(id_, complete ? H2ErrorCode::kNoError : H2ErrorCode::kCancel, unconsumed_);
    unconsumed_ = 0;
  } else {
    connection->cancelWait(*this);
  }
}

// ---- the HTTP/2 stream's events ----

void H2UpstreamForH1::onUpstreamWaiting(H2UpstreamConnection& connection) noexcept {
  if (!released_) connection_ = &connection;
}

void H2UpstreamForH1::onUpstreamReady(H2UpstreamConnection& connection) noexcept {
  if (released_) return;
  connection_ = &connection;
  ready_ = true;
  if (retried_) {
    // Sent again after a refusal: the session gave everything it had already.
    if (!submit(false)) fail(UpstreamFailure::kConnectionReset);
    return;
  }
  client_.onH2UpstreamReady();
}

void H2UpstreamForH1::onUpstreamFailed(UpstreamFailure failure) noexcept {
  connection_ = nullptr;
  fail(failure);
}

void H2UpstreamForH1::onUpstreamHeaders(http::H2Head& head) noexcept {
  if (released_) return;
  const bool interim = head.status < 200;
  if (head.status == 101) return;  // no meaning in HTTP/2 (nghttp2 refuses it already)
  try {
    if (!interim) {
      response_started_ = true;
      head_ = http::H2Head{};  // no retry once an answer came
    }
    http::Http1Head response = h1ResponseFromH2(head);
    (void)client_.onUpstreamHead(response);
  } catch (...) {
    fail(interim ? UpstreamFailure::kOther : UpstreamFailure::kBadResponse);
  }
}

void H2UpstreamForH1::onUpstreamData(std::string_view data) noexcept {
  if (released_) return;
  unconsumed_ += data.size();  // counted first: a release meanwhile credits these bytes too
  try {
    client_.onUpstreamBody(data);
  } catch (...) {
    fail(UpstreamFailure::kOther);
  }
  if (released_ || connection_ == nullptr || paused_) return;
  const uint64_t n = unconsumed_;
  unconsumed_ = 0;
  connection_->consume(id_, n);
}

void H2UpstreamForH1::onUpstreamTrailers(http::HeaderMap& trailers) noexcept {
  if (released_) return;
  try {
    client_.onUpstreamTrailers(trailers);
  } catch (...) {
    fail(UpstreamFailure::kOther);
  }
}

void H2UpstreamForH1::onUpstreamEnd() noexcept {
  if (released_) return;
  response_ended_ = true;
  // With the whole request framed, the stream closes right after this (at the latest with the
  // next frames out): the exchange completes then, so the release never resets a closed stream.
  if (end_requested_ && unframed_ == 0) {
    complete_on_close_ = true;
    return;
  }
  complete();
}

void H2UpstreamForH1::complete() noexcept {
  try {
    client_.onUpstreamComplete();
  } catch (...) {
    fail(UpstreamFailure::kOther);
  }
}

void H2UpstreamForH1::onUpstreamSendProgress(size_t pending) noexcept {
  unframed_ = pending;
  if (released_ || !blocked_ || unframed_ > context_.settings().low_water_bytes) return;
  blocked_ = false;
  client_.onUpstreamWritable();
}

void H2UpstreamForH1::onUpstreamClose(H2ErrorCode /*code*/, H2CloseCause cause, bool lost,
                                      bool retryable) noexcept {
  H2UpstreamConnection* connection = connection_;
  connection_ = nullptr;  // the connection forgot the stream
  if (!lost && connection != nullptr && unconsumed_ > 0) {
    // Response bytes still waiting for the client: the connection window needs them back.
    connection->consume(id_, unconsumed_);
    unconsumed_ = 0;
  }
  if (released_) return;
  if (response_ended_) {
    submitted_ = false;
    if (complete_on_close_) complete();
    return;
  }
  if (retryable && !response_started_ && !retried_) {
    // Never processed by the upstream, and only the head went: sent again, once, on another
    // connection.
    retried_ = true;
    submitted_ = false;
    ready_ = false;
    DataPathCounters::add(context_.counters().h2.refused_retries);
    client_.onH2UpstreamResend(UpstreamFailure::kConnectionReset, head_.headers);
    if (!acquire()) {
      fail(UpstreamFailure::kOther);
      return;
    }
    if (ready_ && !submit(false)) fail(UpstreamFailure::kConnectionReset);
    return;
  }
  submitted_ = false;
  // A stream reset on our side is one nghttp2 reset because the upstream broke the rules of a
  // response (the pool resets only streams it was told to drop, and those hear nothing more).
  fail(cause == H2CloseCause::kHeadersTooLarge ? UpstreamFailure::kResponseTooLarge
       : cause == H2CloseCause::kResetLocally  ? UpstreamFailure::kBadResponse
                                               : UpstreamFailure::kConnectionReset);
}

}  // namespace tracecar::proxy
