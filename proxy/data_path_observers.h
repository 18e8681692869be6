#pragma once

// Two StreamObservers: one that does nothing, and one that records what it sees (for tests and
// for wiring checks), optionally rejecting or rewriting requests.

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/http1_parser.h"
#include "proxy/stream_observer.h"

namespace tracecar::proxy {

class NoopStreamObserver final : public StreamObserver {
 public:
  std::optional<LocalReply> onRequestHead(http::Http1Head& /*request*/,
                                          const PeerInfo& /*peer*/) override {
    return std::nullopt;
  }
  void onResponseHead(const http::Http1Head& /*response*/) override {}
  void onUpstreamFailure(UpstreamFailure /*kind*/) override {}
  void onComplete(const StreamStats& /*stats*/) override {}
};

class NoopStreamObserverFactory final : public StreamObserverFactory {
 public:
  std::unique_ptr<StreamObserver> create(ListenerRole /*listener*/) override {
    return std::make_unique<NoopStreamObserver>();
  }
};

// One request as a RecordingStreamObserver saw it.
struct RecordedStream {
  ListenerRole listener = ListenerRole::kInbound;
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> request_headers;  // after the observer
  PeerInfo peer;
  int response_status = 0;  // of onResponseHead; 0 when none
  std::vector<UpstreamFailure> failures;
  std::optional<StreamStats> stats;  // set by onComplete
  int calls_after_complete = 0;      // must stay 0
};

// What every worker's recording observers share; thread-safe.
class StreamRecorder {
 public:
  struct Options {
    // A request carrying this header (any value) is answered with reply.
    std::string reject_header;
    LocalReply reply;
    // Added to every forwarded request, e.g. to check that observer rewrites go upstream.
    std::string inject_name;
    std::string inject_value;
  };

  StreamRecorder() = default;
  explicit StreamRecorder(Options options) : options_(std::move(options)) {}

  const Options& options() const noexcept { return options_; }
  // Snapshot of every stream seen, in the order their heads arrived.
  std::vector<RecordedStream> streams() const {
    std::lock_guard lock(mutex_);
    return streams_;
  }
  size_t completed() const {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const RecordedStream& s : streams_) n += s.stats.has_value() ? 1 : 0;
    return n;
  }

  size_t begin(RecordedStream stream) {
    std::lock_guard lock(mutex_);
    streams_.push_back(std::move(stream));
    return streams_.size() - 1;
  }
  template <class Update>
  void update(size_t index, Update&& update) {
    std::lock_guard lock(mutex_);
    update(streams_[index]);
  }

 private:
  Options options_;
  mutable std::mutex mutex_;
  std::vector<RecordedStream> streams_;
};

class RecordingStreamObserver final : public StreamObserver {
 public:
  RecordingStreamObserver(std::shared_ptr<StreamRecorder> recorder, ListenerRole listener)
      : recorder_(std::move(recorder)), listener_(listener) {}

  std::optional<LocalReply> onRequestHead(http::Http1Head& request,
                                          const PeerInfo& peer) override {
    const StreamRecorder::Options& options = recorder_->options();
    if (!options.inject_name.empty()) request.headers.add(options.inject_name, options.inject_value);
    RecordedStream stream;
    stream.listener = listener_;
    stream.method = request.method;
    stream.target = request.target;
    stream.peer = peer;
    for (size_t i = 0; i < request.headers.size(); ++i) {
      stream.request_headers.emplace_back(request.headers.name(i), request.headers.value(i));
    }
    index_ = recorder_->begin(std::move(stream));
    if (!options.reject_header.empty() && request.headers.get(options.reject_header)) {
      return options.reply;
    }
    return std::nullopt;
  }
  void onResponseHead(const http::Http1Head& response) override {
    const int status = response.status;
    recorder_->update(index_, [&](RecordedStream& s) {
      s.response_status = status;
      if (s.stats) ++s.calls_after_complete;
    });
  }
  void onUpstreamFailure(UpstreamFailure kind) override {
    recorder_->update(index_, [&](RecordedStream& s) {
      s.failures.push_back(kind);
      if (s.stats) ++s.calls_after_complete;
    });
  }
  void onComplete(const StreamStats& stats) override {
    recorder_->update(index_, [&](RecordedStream& s) {
      if (s.stats) ++s.calls_after_complete;
      s.stats = stats;
    });
  }

 private:
  std::shared_ptr<StreamRecorder> recorder_;
  ListenerRole listener_;
  size_t index_ = 0;
};

class RecordingStreamObserverFactory final : public StreamObserverFactory {
 public:
  explicit RecordingStreamObserverFactory(std::shared_ptr<StreamRecorder> recorder)
      : recorder_(std::move(recorder)) {}
  std::unique_ptr<StreamObserver> create(ListenerRole listener) override {
    return std::make_unique<RecordingStreamObserver>(recorder_, listener);
  }

 private:
  std::shared_ptr<StreamRecorder> recorder_;
};

}  // namespace tracecar::proxy
