// The fixture of the protocol translation tests: tracecar's real WorkerPool (both listeners,
// sniffing HTTP/1.1 and h2c) in this process with spans collected and streams recorded, an
// in-process origin that speaks h2c with prior knowledge (and HTTP/1.1 only to switch to a
// byte echo after an Upgrade), and a blocking in-process HTTP/2 client for what nghttp cannot
// do (a reader that stalls).
#pragma once

#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <functional>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "http/h2_session.h"
#include "integration/proxy/h2_proxy_fixture.h"
#include "proxy/data_path_observers.h"
#include "proxy/worker.h"

namespace tracecar::integration {

using Fields = std::vector<std::pair<std::string, std::string>>;

inline std::optional<std::string> fieldOf(const Fields& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (http::HeaderMap::nameEquals(n, name)) return v;
  }
  return std::nullopt;
}

inline Fields fieldsOf(const http::HeaderMap& map) {
  Fields out;
  for (size_t i = 0; i < map.size(); ++i) {
    out.emplace_back(std::string(map.name(i)), std::string(map.value(i)));
  }
  return out;
}

// ---- observers: spans and recorded streams at once ----

class TeeObserver final : public proxy::StreamObserver {
 public:
  TeeObserver(std::unique_ptr<proxy::StreamObserver> a, std::unique_ptr<proxy::StreamObserver> b)
      : a_(std::move(a)), b_(std::move(b)) {}
  std::optional<proxy::LocalReply> onRequestHead(http::Http1Head& request,
                                                 const proxy::PeerInfo& peer) override {
    std::optional<proxy::LocalReply> first = a_->onRequestHead(request, peer);
    std::optional<proxy::LocalReply> second = b_->onRequestHead(request, peer);
    return first ? first : second;
  }
  void onResponseHead(const http::Http1Head& response) override {
    a_->onResponseHead(response);
    b_->onResponseHead(response);
  }
  void onUpstreamFailure(proxy::UpstreamFailure kind) override {
    a_->onUpstreamFailure(kind);
    b_->onUpstreamFailure(kind);
  }
  void onResponseTrailers(const http::HeaderMap& trailers) override {
    a_->onResponseTrailers(trailers);
    b_->onResponseTrailers(trailers);
  }
  void onUpstreamChosen(std::string_view authority) override {
    a_->onUpstreamChosen(authority);
    b_->onUpstreamChosen(authority);
  }
  void onResend(proxy::UpstreamFailure failure, const proxy::StreamStats& stats,
                std::string& h1_head) noexcept override {
    a_->onResend(failure, stats, h1_head);
    b_->onResend(failure, stats, h1_head);
  }
  void onResend(proxy::UpstreamFailure failure, const proxy::StreamStats& stats,
                http::HeaderMap& h2_headers) noexcept override {
    a_->onResend(failure, stats, h2_headers);
    b_->onResend(failure, stats, h2_headers);
  }
  void onComplete(const proxy::StreamStats& stats) override {
    a_->onComplete(stats);
    b_->onComplete(stats);
  }

 private:
  std::unique_ptr<proxy::StreamObserver> a_;
  std::unique_ptr<proxy::StreamObserver> b_;
};

// One worker's listener: the tracing observer (spans into sink) next to a recording one.
class TracingAndRecordingFactory final : public proxy::StreamObserverFactory {
 public:
  TracingAndRecordingFactory(proxy::ListenerRole role, SpanCollector& sink,
                             std::shared_ptr<proxy::StreamRecorder> recorder)
      : recording_(std::move(recorder)) {
    metrics_.setSamplingLabels(proxy::samplingLabelsOf(sampler_));
    proxy::WorkerMetrics& shard = metrics_.addShard();
    traced_ = std::make_unique<proxy::TracedStreamObserverFactory>(
        role, propagator_, nullptr, config_, sampler_, trust_, sink, shard);
  }
  std::unique_ptr<proxy::StreamObserver> create(proxy::ListenerRole role) override {
    return std::make_unique<TeeObserver>(traced_->create(role), recording_.create(role));
  }

 private:
  propagation::CompositePropagator propagator_;
  proxy::RequestTracingConfig config_;
  sampling::Sampler sampler_;
  sampling::TrustPolicy trust_;
  proxy::ProxyMetrics metrics_;
  std::unique_ptr<proxy::TracedStreamObserverFactory> traced_;
  proxy::RecordingStreamObserverFactory recording_;
};

// ---- the proxy ----

// A WorkerPool with one worker: the inbound listener sends every request to the app with
// app_protocol; the outbound listener (kUpstream mode) sends every request to the same app with
// the same protocol.
class TranslationProxy {
 public:
  TranslationProxy(uint16_t app_port, proxy::UpstreamProtocol protocol,
                   const std::function<void(proxy::DataPathSettings&)>& tweak = {}) {
    proxy::DataPathSettings s;
    s.inbound = {"127.0.0.1", 0};
    s.outbound = {"127.0.0.1", 0};
    s.outbound_ipv6_loopback = false;
    s.app = {"127.0.0.1", app_port};
    s.app_protocol = protocol;
    s.outbound_mode = proxy::DataPathSettings::OutboundMode::kUpstream;
    s.outbound_upstream = {"127.0.0.1", app_port};
    s.workers = 1;
    if (tweak) tweak(s);
    recorder_ = std::make_shared<proxy::StreamRecorder>();
    proxy::DataPathHooks hooks;
    hooks.observers = [this](size_t, proxy::ListenerRole role) {
      return std::make_unique<TracingAndRecordingFactory>(role, spans_, recorder_);
    };
    hooks.selectors = [app_port, protocol](size_t, proxy::ListenerRole role) {
      return selectorFor(role, app_port, protocol);
    };
    pool_ = std::make_unique<proxy::WorkerPool>(std::move(s), std::move(hooks));
    status_ = pool_->start();
  }
  ~TranslationProxy() {
    if (status_.ok()) pool_->stop(2s);
  }
  TranslationProxy(const TranslationProxy&) = delete;
  TranslationProxy& operator=(const TranslationProxy&) = delete;

  // The outbound listener's: every request to the app; none for the inbound one (it comes from
  // the settings, app_protocol included).
  static std::unique_ptr<proxy::UpstreamSelector> selectorFor(proxy::ListenerRole role,
                                                              uint16_t app_port,
                                                              proxy::UpstreamProtocol protocol) {
    if (role != proxy::ListenerRole::kOutbound) return nullptr;
    return std::make_unique<proxy::FixedUpstreamSelector>(
        proxy::UpstreamTarget{"127.0.0.1", app_port}, protocol);
  }

  const absl::Status& status() const { return status_; }
  uint16_t port(proxy::ListenerRole role = proxy::ListenerRole::kInbound) const {
    return pool_->port(role);
  }
  std::string url(std::string_view path,
                  proxy::ListenerRole role = proxy::ListenerRole::kInbound) const {
    return "http://127.0.0.1:" + std::to_string(port(role)) + std::string(path);
  }
  SpanCollector& spans() { return spans_; }
  proxy::StreamRecorder& recorder() { return *recorder_; }
  proxy::DataPathSnapshot counters() const { return pool_->snapshot(); }

  // Waits until n requests completed; their spans and records, in the order they completed
  // (spans) and arrived (records).
  bool waitForRequests(size_t n, std::chrono::milliseconds timeout = 10s) {
    return waitFor([&] { return spans_.size() >= n && recorder_->completed() >= n; }, timeout);
  }

 private:
  SpanCollector spans_;
  std::shared_ptr<proxy::StreamRecorder> recorder_;
  std::unique_ptr<proxy::WorkerPool> pool_;
  absl::Status status_;
};

// ---- blocking HTTP/2 over one socket ----

inline int connectLoopback(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  return fd;
}

inline bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// An H2Session driven by a poll loop on a blocking socket.
class BlockingH2 : public http::H2SessionCallbacks {
 public:
  ~BlockingH2() override {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0 && session_ != nullptr && !failed_; }

 protected:
  bool attach(int fd, http::H2Session::Kind kind, const http::H2Settings& settings) {
    fd_ = fd;
    auto created = http::H2Session::create(kind, *this, settings);
    if (!created.ok()) return false;
    session_ = std::move(*created);
    return true;
  }
  // Writes every frame due.
  bool flush() {
    out_.clear();
    (void)session_->send(out_);
    if (!out_.empty() && !writeAll(fd_, out_)) failed_ = true;
    return !failed_;
  }
  // Reads what came within timeout; false once the peer is gone.
  bool readOnce(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return !failed_;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      failed_ = true;
      return false;
    }
    (void)session_->receive(std::string_view(buf, static_cast<size_t>(n)));
    return true;
  }

  void onGoaway(int32_t, http::H2ErrorCode, std::string_view) override {}
  void onConnectionError(std::string_view) override { failed_ = true; }

  int fd_ = -1;
  std::unique_ptr<http::H2Session> session_;
  std::string out_;
  bool failed_ = false;
};

// An HTTP/2 client (h2c, prior knowledge) that reads only when told to.
class H2TestClient final : public BlockingH2 {
 public:
  struct Response {
    int status = 0;
    std::vector<int> interim;
    Fields headers;
    Fields trailers;
    std::string body;
    uint64_t body_bytes = 0;
    bool ended = false;  // END_STREAM came
    bool closed = false;
    http::H2ErrorCode code = http::H2ErrorCode::kNoError;
    http::H2CloseCause cause = http::H2CloseCause::kDone;
  };

  explicit H2TestClient(uint16_t port, const http::H2Settings& settings = {}) {
    const int fd = connectLoopback(port);
    if (fd >= 0) attach(fd, http::H2Session::Kind::kClient, settings);
  }

  // Sends a request; keep_body false: the response body is counted, not kept.
  int32_t submit(const http::H2Head& head, std::string_view body = {},
                 const Fields* trailers = nullptr, bool keep_body = true) {
    const bool end = body.empty() && trailers == nullptr;
    absl::StatusOr<int32_t> id = session_->submitRequest(head, end);
    if (!id.ok()) return -1;
    responses_[*id].status = 0;
    keep_body_[*id] = keep_body;
    if (!body.empty()) (void)session_->submitData(*id, body, trailers == nullptr);
    if (trailers != nullptr) {
      http::HeaderMap map;
      for (const auto& [n, v] : *trailers) map.add(n, v);
      (void)session_->submitTrailers(*id, map);
    }
    flush();
    return *id;
  }
  // Sends a request head alone; its body follows with sendData / sendTrailers.
  int32_t open(const http::H2Head& head) {
    absl::StatusOr<int32_t> id = session_->submitRequest(head, false);
    if (!id.ok()) return -1;
    responses_[*id].status = 0;
    keep_body_[*id] = true;
    flush();
    return *id;
  }
  void sendData(int32_t id, std::string_view data, bool end) {
    (void)session_->submitData(id, data, end);
    flush();
  }
  void sendTrailers(int32_t id, const Fields& trailers) {
    http::HeaderMap map;
    for (const auto& [n, v] : trailers) map.add(n, v);
    (void)session_->submitTrailers(id, map);
    flush();
  }
  // Exchanges frames until the stream's final response head arrived (true) or timeout.
  bool waitHead(int32_t id, std::chrono::milliseconds timeout = 10s) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (responses_[id].status == 0 && !responses_[id].closed) {
      if (std::chrono::steady_clock::now() > give_up || !flush()) return false;
      readOnce(20ms);
      flush();
    }
    return responses_[id].status != 0;
  }
  // Exchanges frames until the stream's response ended (true) or timeout.
  bool waitEnded(int32_t id, std::chrono::milliseconds timeout = 10s) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (!responses_[id].ended && !responses_[id].closed) {
      if (std::chrono::steady_clock::now() > give_up || !flush()) return false;
      readOnce(20ms);
      flush();
    }
    return responses_[id].ended;
  }
  // Exchanges frames until the stream's body is all framed (true), as the peer's windows let it
  // go, or timeout.
  bool waitSent(int32_t id, std::chrono::milliseconds timeout = 10s) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (session_->pendingData(id) > 0) {
      if (std::chrono::steady_clock::now() > give_up || !flush()) return false;
      readOnce(20ms);
      flush();
    }
    return true;
  }
  // Sends RST_STREAM for the stream.
  void reset(int32_t id, http::H2ErrorCode code) {
    (void)session_->resetStream(id, code);
    flush();
  }
  // Exchanges frames until the stream closed (true) or timeout.
  bool waitClosed(int32_t id, std::chrono::milliseconds timeout = 10s) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (!responses_[id].closed) {
      if (std::chrono::steady_clock::now() > give_up || !flush()) return false;
      if (!readOnce(20ms)) return responses_[id].closed;
      flush();
    }
    return true;
  }
  const Response& response(int32_t id) { return responses_[id]; }

 private:
  void onHeaders(int32_t id, http::H2Head& head) override {
    Response& r = responses_[id];
    if (head.status < 200) {
      r.interim.push_back(head.status);
      return;
    }
    r.status = head.status;
    r.headers = fieldsOf(head.headers);
  }
  void onData(int32_t id, std::string_view data) override {
    Response& r = responses_[id];
    r.body_bytes += data.size();
    if (keep_body_[id]) r.body.append(data);
    session_->consume(id, data.size());
  }
  void onTrailers(int32_t id, http::HeaderMap& trailers) override {
    responses_[id].trailers = fieldsOf(trailers);
  }
  void onEndStream(int32_t id) override { responses_[id].ended = true; }
  void onStreamClose(int32_t id, http::H2ErrorCode code, http::H2CloseCause cause) override {
    Response& r = responses_[id];
    r.closed = true;
    r.code = code;
    r.cause = cause;
  }

  std::map<int32_t, Response> responses_;
  std::map<int32_t, bool> keep_body_;
};

// ---- the h2c origin ----

// One request as the origin read it.
struct OriginRequest {
  std::string protocol;  // "h2" or "HTTP/1.1"
  int connection = 0;    // from 1, in accept order
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  Fields headers;
  std::string body;
  uint64_t body_bytes = 0;
  Fields trailers;
  bool ended = false;  // END_STREAM came
};

// An app that speaks HTTP/2 with prior knowledge only, on 127.0.0.1 port 0, one thread per
// connection. An HTTP/1.1 connection gets 101 and a byte echo for an Upgrade request, 505 for
// any other. HTTP/2 paths (query after "?"):
//   /hello            200, content-length 6, "hello\n" (HEAD: the head alone)
//   /echo [trailers]  200 with the request body, no content-length; with "trailers" in the
//                     query, trailers x-body-length and x-origin-trailer
//   /status/NNN       that status; a short body unless 1xx, 204 or 304
//   /big?size=N       content-length N, streamed as the windows allow
//   /drip?pieces=N&ms=M  200, content-length 10*N: 10 bytes with the head ("aaaaaaaaaa"), then
//                     the next ten ("bbbbbbbbbb"...) every M ms; with reset=1, RST_STREAM
//                     INTERNAL_ERROR M ms after the last piece instead of END_STREAM
//   /processing?count=N&ms=M&final_ms=F  N interim 102 heads, one every M ms, then 200
//                     "processed\n" F ms after the last (F defaults to M)
//   /short-body       200, content-length 10, a body of 5 bytes (malformed: RFC 9113 8.1.1)
//   /interim          103 with a link field, then 200 "after interim\n"
//   /refuse-first     RST_STREAM REFUSED_STREAM the first time (per origin), then 200
//   /never            no answer
//   /reset            RST_STREAM INTERNAL_ERROR
class H2cOrigin {
 public:
  H2cOrigin() {
    listen_fd_ = listenOnLoopback(port_);
    if (listen_fd_ < 0) return;
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~H2cOrigin() {
    stopping_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    for (std::thread& t : connections_) t.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  H2cOrigin(const H2cOrigin&) = delete;
  H2cOrigin& operator=(const H2cOrigin&) = delete;

  uint16_t port() const { return port_; }
  bool stopping() const { return stopping_; }
  std::vector<OriginRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  int connections() const { return accepted_; }
  // Streams the proxy reset (RST_STREAM) before they closed.
  int resets() const { return resets_; }
  void countReset() { ++resets_; }
  // True the first time only.
  bool refuseOnce() { return !refused_.exchange(true); }
  void record(OriginRequest request) {
    std::lock_guard lock(mutex_);
    requests_.push_back(std::move(request));
  }

 private:
  void acceptLoop();
  void serve(int fd, int connection);

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> resets_{0};
  std::atomic<bool> refused_{false};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // the acceptor's
  std::mutex mutex_;
  std::vector<OriginRequest> requests_;
};

// One HTTP/2 connection of the origin.
class OriginH2Connection final : public BlockingH2 {
 public:
  OriginH2Connection(H2cOrigin& origin, int fd, int connection)
      : origin_(origin), connection_(connection) {
    attach(fd, http::H2Session::Kind::kServer, {});
  }

  void run(std::string_view first_bytes) {
    if (!ok()) return;
    (void)session_->receive(first_bytes);
    answerEnded();
    while (!origin_.stopping() && !failed_) {
      topUp();
      if (!flush() || session_->finished()) break;
      if (!readOnce(20ms)) break;
      answerEnded();
    }
  }

 private:
  struct Stream {
    OriginRequest request;
    bool answered = false;
  };

  void onHeaders(int32_t id, http::H2Head& head) override {
    Stream& s = streams_[id];
    s.request.protocol = "h2";
    s.request.connection = connection_;
    s.request.method = head.method;
    s.request.scheme = head.scheme;
    s.request.authority = head.authority;
    s.request.path = head.path;
    s.request.headers = fieldsOf(head.headers);
    // Answered at once, before the request ends (its stream stays open on this side).
    if (head.path == "/early") ended_.push_back(id);
  }
  void onData(int32_t id, std::string_view data) override {
    Stream& s = streams_[id];
    s.request.body_bytes += data.size();
    if (s.request.body.size() < (1u << 20)) s.request.body.append(data);
    session_->consume(id, data.size());
  }
  void onTrailers(int32_t id, http::HeaderMap& trailers) override {
    streams_[id].request.trailers = fieldsOf(trailers);
  }
  void onEndStream(int32_t id) override {
    streams_[id].request.ended = true;
    ended_.push_back(id);
  }
  void onStreamClose(int32_t id, http::H2ErrorCode, http::H2CloseCause cause) override {
    if (cause == http::H2CloseCause::kResetByPeer) origin_.countReset();
    streams_.erase(id);
    big_.erase(id);
    drips_.erase(id);
    processing_.erase(id);
  }

  // Requests whose END_STREAM came in the last read are answered (outside nghttp2's callbacks).
  void answerEnded() {
    std::vector<int32_t> ended;
    ended.swap(ended_);
    for (int32_t id : ended) {
      auto it = streams_.find(id);
      if (it == streams_.end() || it->second.answered) continue;
      it->second.answered = true;
      origin_.record(it->second.request);
      answer(id, it->second.request);
    }
  }

  void answer(int32_t id, const OriginRequest& request) {
    const std::string path = request.path.substr(0, request.path.find('?'));
    const std::string query = request.path.find('?') == std::string::npos
                                  ? ""
                                  : request.path.substr(request.path.find('?') + 1);
    const bool head_only = request.method == "HEAD";
    http::H2Head head;
    head.headers.add("x-origin", "h2");
    if (path == "/hello") {
      head.status = 200;
      head.headers.add("content-type", "text/plain");
      head.headers.add("content-length", "6");
      if (head_only) {
        (void)session_->submitResponse(id, head, true);
        return;
      }
      (void)session_->submitResponse(id, head, false);
      (void)session_->submitData(id, "hello\n", true);
    } else if (path == "/fields") {
      // 200 with n more fields (x-f0: v...) and, with pad=V, an x-pad field of V bytes; no body.
      head.status = 200;
      for (int i = 0; i < queryNumber(query, "n", 0); ++i) {
        head.headers.add("x-f" + std::to_string(i), "v");
      }
      if (const int pad = queryNumber(query, "pad", 0); pad > 0) {
        head.headers.add("x-pad", std::string(static_cast<size_t>(pad), 'p'));
      }
      (void)session_->submitResponse(id, head, true);
    } else if (path == "/early") {
      head.status = 200;
      head.headers.add("content-length", "6");
      (void)session_->submitResponse(id, head, false);
      (void)session_->submitData(id, "early\n", true);
    } else if (path == "/echo") {
      head.status = 200;
      const bool trailers = query.find("trailers") != std::string::npos;
      if (request.body.empty() && !trailers) {
        (void)session_->submitResponse(id, head, true);
        return;
      }
      (void)session_->submitResponse(id, head, false);
      if (!request.body.empty()) (void)session_->submitData(id, request.body, !trailers);
      if (trailers) {
        http::HeaderMap map;
        map.add("x-body-length", std::to_string(request.body_bytes));
        map.add("x-origin-trailer", "yes");
        (void)session_->submitTrailers(id, map);
      }
    } else if (path.rfind("/status/", 0) == 0) {
      head.status = std::atoi(path.substr(8).c_str());
      if (head.status == 204 || head.status == 304 || head_only) {
        (void)session_->submitResponse(id, head, true);
        return;
      }
      const std::string body = "status " + std::to_string(head.status) + "\n";
      head.headers.add("content-length", std::to_string(body.size()));
      (void)session_->submitResponse(id, head, false);
      (void)session_->submitData(id, body, true);
    } else if (path == "/big") {
      const size_t at = query.find("size=");
      const uint64_t size = at == std::string::npos ? 1 << 20 : std::stoull(query.substr(at + 5));
      head.status = 200;
      head.headers.add("content-length", std::to_string(size));
      (void)session_->submitResponse(id, head, size == 0 || head_only);
      if (size > 0 && !head_only) big_[id] = size;
    } else if (path == "/drip") {
      const int pieces = std::max(1, queryNumber(query, "pieces", 2));
      head.status = 200;
      head.headers.add("content-length", std::to_string(10 * pieces));
      (void)session_->submitResponse(id, head, false);
      Drip& drip = drips_[id];
      drip.left = pieces;
      drip.every = std::chrono::milliseconds(queryNumber(query, "ms", 100));
      drip.next = std::chrono::steady_clock::now();
      drip.reset = queryNumber(query, "reset", 0) != 0;
    } else if (path == "/processing") {
      Processing& p = processing_[id];
      p.left = std::max(0, queryNumber(query, "count", 2));
      p.every = std::chrono::milliseconds(queryNumber(query, "ms", 100));
      p.last = std::chrono::milliseconds(
          queryNumber(query, "final_ms", queryNumber(query, "ms", 100)));
      p.next = std::chrono::steady_clock::now() + (p.left > 0 ? p.every : p.last);
    } else if (path == "/short-body") {
      head.status = 200;
      head.headers.add("content-length", "10");
      (void)session_->submitResponse(id, head, false);
      (void)session_->submitData(id, "short", true);
    } else if (path == "/interim") {
      http::H2Head early;
      early.status = 103;
      early.headers.add("link", "</style.css>; rel=preload");
      (void)session_->submitResponse(id, early, false);
      head.status = 200;
      (void)session_->submitResponse(id, head, false);
      (void)session_->submitData(id, "after interim\n", true);
    } else if (path == "/refuse-first") {
      if (origin_.refuseOnce()) {
        (void)session_->resetStream(id, http::H2ErrorCode::kRefusedStream);
      } else {
        head.status = 200;
        (void)session_->submitResponse(id, head, false);
        (void)session_->submitData(id, "second try\n", true);
      }
    } else if (path == "/never") {
      // No answer.
    } else if (path == "/reset") {
      (void)session_->resetStream(id, http::H2ErrorCode::kInternalError);
    } else {
      head.status = 404;
      (void)session_->submitResponse(id, head, false);
      (void)session_->submitData(id, "no such path\n", true);
    }
  }

  static int queryNumber(const std::string& query, const std::string& key, int fallback) {
    const size_t at = ("&" + query).find("&" + key + "=");
    return at == std::string::npos ? fallback : std::atoi(query.c_str() + at + key.size() + 1);
  }

  // Big bodies go out in 16 KiB pieces, never more than 64 KiB waiting in the session (the
  // origin's own buffers stay small next to what the tests measure in the proxy); drips when due.
  void topUp() {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = processing_.begin(); it != processing_.end();) {
      Processing& p = it->second;
      if (now < p.next) {
        ++it;
        continue;
      }
      http::H2Head head;
      if (p.left > 0) {
        head.status = 102;
        (void)session_->submitResponse(it->first, head, false);
        --p.left;
        p.next = now + (p.left > 0 ? p.every : p.last);
        ++it;
        continue;
      }
      head.status = 200;
      head.headers.add("content-length", "10");
      (void)session_->submitResponse(it->first, head, false);
      (void)session_->submitData(it->first, "processed\n", true);
      it = processing_.erase(it);
    }
    for (auto it = drips_.begin(); it != drips_.end();) {
      Drip& drip = it->second;
      if (now < drip.next) {
        ++it;
        continue;
      }
      if (drip.left == 0) {  // reset=1, after the last piece
        (void)session_->resetStream(it->first, http::H2ErrorCode::kInternalError);
        it = drips_.erase(it);
        continue;
      }
      const std::string piece(10, static_cast<char>('a' + drip.sent++ % 26));
      const bool last = --drip.left == 0;
      (void)session_->submitData(it->first, piece, last && !drip.reset);
      drip.next = now + drip.every;
      it = last && !drip.reset ? drips_.erase(it) : std::next(it);
    }
    static const std::string piece(16 * 1024, 'z');
    for (auto& [id, left] : big_) {
      while (left > 0 && session_->pendingData(id) < 64 * 1024) {
        const uint64_t n = std::min<uint64_t>(left, piece.size());
        left -= n;
        (void)session_->submitData(id, std::string_view(piece).substr(0, n), left == 0);
      }
    }
  }

  H2cOrigin& origin_;
  const int connection_;
  std::map<int32_t, Stream> streams_;
  std::map<int32_t, uint64_t> big_;  // body bytes still to submit
  struct Drip {
    int left = 0;  // pieces still to send
    int sent = 0;
    std::chrono::milliseconds every{0};
    std::chrono::steady_clock::time_point next;
    bool reset = false;
  };
  std::map<int32_t, Drip> drips_;
  struct Processing {
    int left = 0;  // 102 heads still to send
    std::chrono::milliseconds every{0};
    std::chrono::milliseconds last{0};  // from the last 102 to the final head
    std::chrono::steady_clock::time_point next;
  };
  std::map<int32_t, Processing> processing_;
  std::vector<int32_t> ended_;
};

inline void H2cOrigin::acceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int connection = ++accepted_;
    connections_.emplace_back([this, fd, connection] { serve(fd, connection); });
  }
}

inline void H2cOrigin::serve(int fd, int connection) {
  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  std::string first;
  // Reads into first until enough() or the client stops sending.
  const auto readUntil = [&](auto&& enough) {
    while (!enough() && !stopping_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      first.append(buf, static_cast<size_t>(n));
    }
  };
  readUntil([&] { return first.size() >= kPreface.size(); });
  if (first.rfind(kPreface, 0) == 0) {
    OriginH2Connection h2(*this, fd, connection);  // closes fd
    h2.run(first);
    return;
  }
  // HTTP/1.1: the head, then a protocol switch to an echo, or 505.
  readUntil([&] { return first.find("\r\n\r\n") != std::string::npos; });
  const size_t end = first.find("\r\n\r\n");
  if (end == std::string::npos) {
    ::close(fd);
    return;
  }
  OriginRequest request;
  request.protocol = "HTTP/1.1";
  request.connection = connection;
  const std::string head = first.substr(0, end);
  const size_t line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  request.method = line.substr(0, line.find(' '));
  request.path = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
  size_t at = line_end == std::string::npos ? head.size() : line_end + 2;
  while (at < head.size()) {
    size_t next = head.find("\r\n", at);
    if (next == std::string::npos) next = head.size();
    const std::string field = head.substr(at, next - at);
    const size_t colon = field.find(':');
    std::string value = field.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    request.headers.emplace_back(field.substr(0, colon), value);
    at = next + 2;
  }
  record(request);
  if (!fieldOf(request.headers, "upgrade")) {
    writeAll(fd,
             "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n");
    ::close(fd);
    return;
  }
  writeAll(fd,
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  if (first.size() > end + 4) writeAll(fd, std::string_view(first).substr(end + 4));
  while (!stopping_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    if (!writeAll(fd, std::string_view(buf, static_cast<size_t>(n)))) break;
  }
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

}  // namespace tracecar::integration
