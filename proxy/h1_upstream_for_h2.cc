#include "proxy/h1_upstream_for_h2.h"

#include <uv.h>

#include <utility>

#include "http/token.h"
#include "proxy/data_path_headers.h"
#include "proxy/protocol_translation.h"
#include "proxy/upstream_pool.h"

namespace tracecar::proxy {

H1UpstreamForH2::~H1UpstreamForH2() {
  release();
  context_.cancel(*this);
}

bool H1UpstreamForH2::start(const UpstreamTarget& target, std::string&& head, bool chunked,
                            std::string_view method) noexcept {
  try {
    target_ = target;
  } catch (...) {
    return false;
  }
  head_ = std::move(head);
  idempotent_ = http::isIdempotentMethod(method);
  chunked_ = chunked;
  head_request_ = method == "HEAD";
  return acquire(false);
}

bool H1UpstreamForH2::acquire(bool fresh_only) noexcept {
  connected_ = false;
  connection_ = context_.pool().acquire(target_, *this, fresh_only);
  if (connection_ == nullptr) return false;
  if (connection_->ready()) {
    stats_.upstream_reused = connection_->reused();
    sendHeadAndPending();
  }
  return true;
}

void H1UpstreamForH2::sendHeadAndPending() noexcept {
  connected_ = true;
  notePeer(stats_, connection_->peerAddress(), connection_->peerPort());
  if (pending_.empty()) {
    connection_->write(head_);
  } else {
    connection_->write({head_, pending_});
    body_sent_ = true;
    std::string().swap(pending_);
  }
  if (request_complete_) connection_->requestSent();
  if (connection_->overHighWater()) {
    blocked_ = true;
  } else if (held_ > 0) {
    held_ = 0;
    stream_.onUpstreamSendProgress(0);
  }
}

void H1UpstreamForH2::send(std::string_view framing, std::string_view data, std::string_view tail,
                           uint64_t payload) noexcept {
  if (released_ || request_complete_) return;
  if (!connected_) {
    try {
      pending_.append(framing);
      pending_.append(data);
      pending_.append(tail);
    } catch (...) {
      failExchange(UpstreamFailure::kOther, false);
      return;
    }
    held_ += payload;
    return;
  }
  connection_->write({framing, data, tail});
  body_sent_ = true;
  if (blocked_ || connection_->overHighWater()) {
    blocked_ = true;
    held_ += payload;
  }
}

void H1UpstreamForH2::sendBody(std::string_view data) noexcept {
  if (data.empty()) return;
  if (!chunked_) {
    send({}, data, {}, data.size());
    return;
  }
  std::string size_line;
  try {
    appendChunkHeader(size_line, data.size());
  } catch (...) {
    failExchange(UpstreamFailure::kOther, false);
    return;
  }
  send(size_line, data, "\r\n", data.size());
}

void H1UpstreamForH2::sendTrailers(const http::HeaderMap& trailers) noexcept {
  if (!chunked_) {
    endRequest();  // HTTP/1.1 has no place for trailers after a Content-Length body
    return;
  }
  std::string last;
  try {
    appendLastChunk(last, &trailers);
  } catch (...) {
    failExchange(UpstreamFailure::kOther, false);
    return;
  }
  send(last, {}, {}, 0);
  completeRequest();
}

void H1UpstreamForH2::endRequest() noexcept {
  if (chunked_) send("0\r\n\r\n", {}, {}, 0);
  completeRequest();
}

void H1UpstreamForH2::completeRequest() noexcept {
  request_complete_ = true;
  // Sent now, or with the head once connected (sendHeadAndPending).
  if (connected_ && connection_ != nullptr) connection_->requestSent();
}

void H1UpstreamForH2::consume(uint64_t bytes) noexcept {
  consumed_ += bytes;
  if (!paused_ || released_) return;
  if (delivered_ - consumed_ <= context_.settings().low_water_bytes && !resume_pending_) {
    resume_pending_ = true;
    context_.post(*this);  // never inside the downstream session's flush
  }
}

void H1UpstreamForH2::release() noexcept {
  if (released_) return;
  released_ = true;
  commit_pending_ = false;
  resume_pending_ = false;
  context_.cancel(*this);
  UpstreamConnection* connection = connection_;
  connection_ = nullptr;
  if (connection != nullptr) {
    context_.pool().release(connection, request_complete_ && response_complete_);
  }
}

void H1UpstreamForH2::failExchange(UpstreamFailure failure, bool counted) noexcept {
  if (released_) return;
  if (!counted) DataPathCounters::add(context_.counters().upstream_failures);
  response_complete_ = false;
  release();  // the connection, if any, is closed
  stream_.onUpstreamFailed(failure);
}

// ---- the connection's events ----

void H1UpstreamForH2::onUpstreamReady(UpstreamConnection& /*connection*/) noexcept {
  if (released_ || connection_ == nullptr) return;
  sendHeadAndPending();
}

void H1UpstreamForH2::onUpstreamFailed(UpstreamFailure failure, bool retryable) noexcept {
  connection_ = nullptr;  // gone
  if (released_) return;
  if (retryable && idempotent_ && !retried_ && !body_sent_ && !response_started_ &&
      !head_.empty()) {
    // A pooled connection the upstream had closed: nothing of the request is lost yet. The
    // upstream may still have acted on it, so only a method that may be repeated is sent again.
    retried_ = true;
    stats_.retried = true;
    DataPathCounters::add(context_.counters().upstream_retries);
    stream_.onUpstreamResend(failure, head_);
    forgetPeer(stats_);
    if (acquire(true)) return;
    failure = UpstreamFailure::kOther;
  }
  failExchange(failure, true);
}

bool H1UpstreamForH2::onUpstreamHead(http::Http1Head& head) {
  if (released_) return false;
  const int status = head.status;
  if (status == 101) {
    // Nothing asked to switch protocols: the answer cannot be relayed.
    failExchange(UpstreamFailure::kBadResponse, false);
    return true;
  }
  if (status < 200) {
    http::H2Head interim = h2ResponseFromH1(head);
    stream_.onUpstreamHeaders(interim);
    return false;
  }
  response_started_ = true;
  response_version_minor_ = head.version_minor;
  std::string().swap(head_);  // no retry once an answer came
  http::H2Head final_head = h2ResponseFromH1(head);
  stream_.onUpstreamHeaders(final_head);
  // Relayed once this read is processed: a response complete in it ends with its HEADERS.
  if (!released_) {
    commit_pending_ = true;
    context_.post(*this);
  }
  return head_request_;
}

void H1UpstreamForH2::onUpstreamBody(std::string_view data) {
  if (released_) return;
  delivered_ += data.size();
  stream_.onUpstreamData(data);
  if (released_ || connection_ == nullptr || paused_) return;
  if (delivered_ - consumed_ > context_.settings().high_water_bytes) {
    paused_ = true;
    connection_->pauseReading();
  }
}

void H1UpstreamForH2::onUpstreamTrailers(http::HeaderMap& trailers) {
  if (released_) return;
  stream_.onUpstreamTrailers(trailers);
}

void H1UpstreamForH2::onUpstreamComplete() {
  if (released_) return;
  response_complete_ = true;
  commit_pending_ = false;
  stream_.onUpstreamEnd();
  if (released_) return;
  release();
  stream_.onUpstreamClose(http::H2ErrorCode::kNoError, http::H2CloseCause::kDone, false, false);
}

void H1UpstreamForH2::onUpstreamTunnelData(std::string_view /*data*/) noexcept {}

void H1UpstreamForH2::onUpstreamTunnelEof() noexcept {}

void H1UpstreamForH2::onUpstreamWritable() noexcept {
  if (released_ || !blocked_) return;
  blocked_ = false;
  held_ = 0;
  stream_.onUpstreamSendProgress(0);
}

void H1UpstreamForH2::onTick() noexcept {
  if (released_) return;
  if (commit_pending_) {
    commit_pending_ = false;
    stream_.onUpstreamCommit();
  }
  if (resume_pending_ && !released_) {
    resume_pending_ = false;
    if (paused_ && connection_ != nullptr) {
      paused_ = false;
      connection_->resumeReading();
    }
  }
}

}  // namespace tracecar::proxy
