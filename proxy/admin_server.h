#pragma once

#include <absl/status/status.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/acceptor.h"

namespace prometheus {
class Collectable;
}
namespace tracecar::exporter {
class RecentSpans;
}

namespace tracecar::proxy {

class WorkerMetrics;

struct AdminServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal, no brackets
  uint16_t port = 15000;              // 0: any free port (see AdminServer::port())
  // With this many open, a new connection takes the place of the one that has waited longest
  // for its next request (idle, or with a request not yet complete); when none is waiting (all
  // writing an answer, or lingering after their last for at most 2 s), the new one is accepted
  // and closed at once. So idle or stalled clients cannot lock out the probes.
  size_t max_connections = 64;
  // A connection must complete a request and its answer within this time, counted from when it
  // was accepted or its previous answer was written; otherwise it is closed (408 when a request
  // was half-received). Bounds idle keep-alive connections and slow senders alike.
  std::chrono::milliseconds idle_timeout{30000};
  size_t max_header_bytes = 8 * 1024;
  size_t max_body_bytes = 16 * 1024;  // bodies are read and ignored; larger ones get 413
};

// What the server serves. Everything pointed to must outlive the server.
struct AdminSources {
  // /metrics: the families of each, serialized in order (their names must not overlap), e.g. a
  // prometheus::Registry and the ProxyMetrics.
  std::vector<const prometheus::Collectable*> collectables;
  // /debug/spans; without it, the page answers 404.
  const exporter::RecentSpans* recent_spans = nullptr;
  // Counts the admin listener's connections; the shard of the loop's thread.
  WorkerMetrics* metrics = nullptr;
};

// /readyz answers 200 only when kReady.
enum class Readiness : uint8_t { kStarting, kReady, kDraining };

// The admin HTTP/1.1 server on the main thread's loop:
//   GET /metrics       Prometheus text format 0.0.4
//   GET /healthz       200 "ok" while the loop turns
//   GET /readyz        200 "ready" once listeners are bound; 503 before and while draining
//   GET /debug/spans   the recently exported spans, newest first, as JSON
// HEAD is answered like GET without the body; other methods get 405, other paths 404. An
// HTTP/1.1 request without exactly one valid Host header gets 400 (RFC 9112, section 3.2). Answers
// carry Content-Length and keep the connection alive when the client allows it; a request that
// cannot be parsed gets 400 (or 431, 414) and the connection is closed.
//
// All methods but setReadiness() and readiness() belong to the loop's thread. The loop is the
// caller's: the server adds its handles to it and closes them in stop().
class AdminServer {
 public:
  AdminServer(uv_loop_t* loop, AdminServerOptions options, AdminSources sources);
  // Only when closed(): before start(), or once stop()'s on_closed has run (also after a
  // start() that failed: its listener handle still needs a loop turn to close).
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens; an error naming the address when that fails.
  absl::Status start();
  // The bound port (the real one when options.port was 0); 0 before start().
  uint16_t port() const noexcept { return port_; }

  // Any thread.
  void setReadiness(Readiness readiness) noexcept {
    readiness_.store(readiness, std::memory_order_relaxed);
  }
  Readiness readiness() const noexcept { return readiness_.load(std::memory_order_relaxed); }

  // Stops listening and closes every connection at once; on_closed runs (from a libuv callback,
  // or from inside stop() when nothing was open) once the last handle is closed.
  void stop(std::function<void()> on_closed = {});
  bool closed() const noexcept { return open_handles_ == 0; }

  size_t connectionCount() const noexcept { return connection_count_; }

  // The answer to one request, as it goes on the wire (for tests: exactly what a connection
  // would write). keep_alive: the client allows another request on the connection.
  struct Answer {
    std::string bytes;
    bool close = false;
  };
  Answer answer(std::string_view method, std::string_view target, int version_minor,
                bool keep_alive) const;

 private:
  class Connection;

  void onConnection(int fd) noexcept;
  void unlink(Connection* connection) noexcept;
  void connectionGone() noexcept;  // a connection closed its last handle
  void handleClosed() noexcept;

  std::string metricsText() const;
  std::string spansJson() const;

  uv_loop_t* const loop_;
  const AdminServerOptions options_;
  const AdminSources sources_;
  std::unique_ptr<char[]> read_buffer_;  // shared by the connections: reads are handled at once
  Acceptor listener_;  // pauses while file descriptors run out
  bool listening_ = false;
  bool stopping_ = false;
  uint16_t port_ = 0;
  size_t open_handles_ = 0;  // the listener and the connections, until their close callbacks
  size_t connection_count_ = 0;
  Connection* connections_ = nullptr;  // intrusive list, for stop()
  std::function<void()> on_closed_;
  std::atomic<Readiness> readiness_{Readiness::kStarting};
};

}  // namespace tracecar::proxy
