#pragma once

#include <uv.h>

#include <absl/status/status.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "proxy/data_path_counters.h"
#include "proxy/data_path_settings.h"
#include "proxy/downstream_session.h"
#include "proxy/h2_worker.h"
#include "proxy/listener_socket.h"
#include "proxy/original_destination.h"
#include "proxy/stream_observer.h"
#include "proxy/upstream_selector.h"
#include "proxy/worker_context.h"

namespace tracecar::proxy {

class UpstreamPool;

// What the rest of tracecar plugs into the data path, per worker and listener. Both are called
// on the worker's thread before it accepts anything, and what they make is used on that thread
// only.
struct DataPathHooks {
  // What observes each request (tracing, metrics); none: requests are not observed.
  std::function<std::unique_ptr<StreamObserverFactory>(size_t worker, ListenerRole role)>
      observers;
  // Where requests go; none: from the settings (makeUpstreamSelector).
  std::function<std::unique_ptr<UpstreamSelector>(size_t worker, ListenerRole role)> selectors;
  // Where each accepted connection was going, called on the workers' threads; none:
  // originalDestination (SO_ORIGINAL_DST).
  OriginalDestinationLookup original_destination;
};

// One data-path thread: its own libuv loop, its own listening sockets, sessions and upstream
// pool. Talks to other threads only through drain() (uv_async) and its counters.
class Worker {
 public:
  // One socket per listener (-1: disabled), then the outbound listener's second socket on [::1]
  // (-1: none).
  static constexpr size_t kOutboundIpv6Loopback = kListenerRoleCount;
  using ListenFds = std::array<int, kListenerRoleCount + 1>;

  // own: tracecar's listening addresses (loop prevention), shared read-only by every worker.
  Worker(size_t index, const DataPathSettings& settings, const DataPathHooks& hooks,
         const OwnListeners& own);
  ~Worker();  // after join()
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread, which takes the sockets (closing them when done) and listens on them;
  // returns once it listens, or why it could not.
  absl::Status start(ListenFds fds);
  // From any thread: stop accepting, close idle connections, let requests in flight finish
  // within timeout, then cut what is left and end the thread.
  void drain(std::chrono::milliseconds timeout);
  void join();

  size_t index() const noexcept { return index_; }
  const DataPathCounters& counters() const noexcept { return counters_; }

 private:
  void run(ListenFds fds) noexcept;
  static void onAsync(uv_async_t* async) noexcept;
  static void onDrainTimer(uv_timer_t* timer) noexcept;
  void beginDrain(std::chrono::milliseconds timeout) noexcept;
  void checkDrained() noexcept;
  void finish() noexcept;
  void reportStarted(absl::Status status);

  const size_t index_;
  const DataPathSettings& settings_;
  const DataPathHooks& hooks_;
  const OwnListeners& own_;
  DataPathCounters counters_;
  std::thread thread_;

  // Shared with other threads.
  std::mutex mutex_;
  std::condition_variable started_cv_;
  std::optional<absl::Status> started_;
  std::optional<std::chrono::milliseconds> drain_request_;
  bool async_ready_ = false;

  // The worker's thread only.
  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_timer_t drain_timer_{};
  std::unique_ptr<WorkerContext> context_;
  std::unique_ptr<UpstreamPool> pool_;
  std::unique_ptr<H2Worker> h2_;  // the HTTP/2 data path: sessions the sniffer hands over
  std::array<std::unique_ptr<UpstreamSelector>, kListenerRoleCount> selectors_;
  std::array<std::unique_ptr<StreamObserverFactory>, kListenerRoleCount> observers_;
  std::array<ListenerContext, kListenerRoleCount> listeners_{};
  OriginalDestinationLookup original_destination_;
  std::vector<std::unique_ptr<ListenerSocket>> sockets_;
  bool handles_open_ = false;
  bool draining_ = false;
  bool finished_ = false;
};

// The data path: N workers listening on the same ports.
class WorkerPool {
 public:
  explicit WorkerPool(DataPathSettings settings, DataPathHooks hooks = {});
  ~WorkerPool();  // stop(0) when still running
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Another listening address of this process (the admin listener), as bound: a redirected
  // connection to it is refused as a loop. Before start().
  void addOwnListener(const DataPathAddress& address) {
    settings_.other_own_listeners.push_back(address);
  }
  // Binds every listener (port 0: a free one, the same for every worker), starts the workers and
  // returns once all listen. On error nothing is left running.
  absl::Status start();
  // The listener start() could not open, when that is why it failed.
  std::optional<ListenerRole> failedListener() const noexcept { return failed_listener_; }
  // The port a listener is bound to; 0 when disabled or not started.
  uint16_t port(ListenerRole role) const noexcept {
    return ports_[static_cast<size_t>(role)];
  }
  // Graceful stop: see Worker::drain. Blocks until every worker has ended.
  void stop(std::chrono::milliseconds drain_timeout);
  // Asks every worker to drain and returns at once; stop() then waits.
  void requestStop(std::chrono::milliseconds drain_timeout);

  const DataPathSettings& settings() const noexcept { return settings_; }
  size_t size() const noexcept { return workers_.size(); }
  const DataPathCounters& counters(size_t worker) const { return workers_[worker]->counters(); }
  DataPathSnapshot snapshot() const noexcept;

 private:
  // Builds own_listeners_ from the bound listeners, the other ones and the local addresses.
  absl::Status buildOwnListeners();

  DataPathSettings settings_;
  DataPathHooks hooks_;
  OwnListeners own_listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::array<uint16_t, kListenerRoleCount> ports_{};
  std::optional<ListenerRole> failed_listener_;
  bool outbound_ipv6_loopback_ = false;  // the outbound listener also listens on [::1]
  bool running_ = false;
};

}  // namespace tracecar::proxy
