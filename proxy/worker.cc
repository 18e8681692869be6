#include "proxy/worker.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <system_error>
#include <utility>

#include "base/thread_name.h"
#include "exporter/log.h"
#include "proxy/upstream_pool.h"

namespace tracecar::proxy {
namespace {

void closeFds(Worker::ListenFds& fds) noexcept {
  for (int& fd : fds) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

}  // namespace

Worker::Worker(size_t index, const DataPathSettings& settings, const DataPathHooks& hooks,
               const OwnListeners& own)
    : index_(index), settings_(settings), hooks_(hooks), own_(own) {}

Worker::~Worker() { join(); }

absl::Status Worker::start(ListenFds fds) {
  try {
    thread_ = std::thread([this, fds] { run(fds); });
  } catch (const std::system_error& error) {
    closeFds(fds);
    return absl::ResourceExhaustedError(std::string("starting a worker thread: ") + error.what());
  }
  std::unique_lock lock(mutex_);
  started_cv_.wait(lock, [&] { return started_.has_value(); });
  return *started_;
}

void Worker::reportStarted(absl::Status status) {
  std::lock_guard lock(mutex_);
  started_ = std::move(status);
  started_cv_.notify_all();
}

void Worker::drain(std::chrono::milliseconds timeout) {
  std::lock_guard lock(mutex_);
  drain_request_ = timeout;
  if (async_ready_) uv_async_send(&async_);
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run(ListenFds fds) noexcept {
  base::nameThisThread("tc-worker-" + std::to_string(index_));
  // A write to a peer that reset must fail with EPIPE, not kill the process (libuv writes with
  // write(2)). Blocked here, the signal stays with this thread and is never delivered.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);

  if (const int rc = uv_loop_init(&loop_); rc < 0) {
    closeFds(fds);
    reportStarted(absl::InternalError(std::string("worker loop: ") + uv_strerror(rc)));
    return;
  }
  absl::Status status;
  try {
    original_destination_ =
        hooks_.original_destination ? hooks_.original_destination : &originalDestination;
    context_ = std::make_unique<WorkerContext>(&loop_, settings_, counters_);
    pool_ = std::make_unique<UpstreamPool>(*context_);
    context_->setPool(pool_.get());
    context_->setOwnListeners(&own_);
    h2_ = std::make_unique<H2Worker>(*context_);
    context_->setH2(h2_.get());
    context_->setOnRetired([this] { checkDrained(); });
    if (const int rc = context_->init(); rc < 0) {
      status = absl::InternalError(std::string("worker loop: ") + uv_strerror(rc));
    }
    if (status.ok()) {
      uv_async_init(&loop_, &async_, &Worker::onAsync);
      async_.data = this;
      uv_timer_init(&loop_, &drain_timer_);
      drain_timer_.data = this;
      handles_open_ = true;
    }
    for (size_t r = 0; r < kListenerRoleCount && status.ok(); ++r) {
      if (fds[r] < 0) continue;
      const auto role = static_cast<ListenerRole>(r);
      if (hooks_.selectors) selectors_[r] = hooks_.selectors(index_, role);
      if (!selectors_[r]) selectors_[r] = makeUpstreamSelector(settings_, role);
      if (hooks_.observers) observers_[r] = hooks_.observers(index_, role);
      listeners_[r] = ListenerContext{
          role, selectors_[r].get(), observers_[r].get(), &original_destination_, &own_,
          role == ListenerRole::kInbound ? settings_.inbound_tls.get() : nullptr};
      sockets_.push_back(std::make_unique<ListenerSocket>(*context_, listeners_[r]));
      const int fd = fds[r];
      fds[r] = -1;
      if (const int rc = sockets_.back()->start(fd); rc < 0) {
        status = absl::UnavailableError(std::string(listenerRoleName(role)) +
                                        " listener: " + uv_strerror(rc));
      }
    }
    const size_t outbound = static_cast<size_t>(ListenerRole::kOutbound);
    if (status.ok() && fds[kOutboundIpv6Loopback] >= 0 && selectors_[outbound]) {
      sockets_.push_back(std::make_unique<ListenerSocket>(*context_, listeners_[outbound]));
      const int fd = fds[kOutboundIpv6Loopback];
      fds[kOutboundIpv6Loopback] = -1;
      if (const int rc = sockets_.back()->start(fd); rc < 0) {
        status = absl::UnavailableError(std::string("outbound listener [::1]: ") + uv_strerror(rc));
      }
    }
  } catch (const std::exception& error) {
    status = absl::InternalError(std::string("starting a worker: ") + error.what());
  }
  closeFds(fds);
  const bool ok = status.ok();
  if (context_ != nullptr && ok) {
    std::lock_guard lock(mutex_);
    async_ready_ = true;
    if (drain_request_) uv_async_send(&async_);
  }
  reportStarted(std::move(status));
  if (!ok) {
    // Close whatever was opened; the loop then ends.
    for (auto& socket : sockets_) socket->close();
    finished_ = true;
    if (handles_open_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
    }
    if (context_ != nullptr) context_->shutdown();
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  pool_.reset();
  context_.reset();
  sockets_.clear();
  if (uv_loop_close(&loop_) == UV_EBUSY) {
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
}

void Worker::onAsync(uv_async_t* async) noexcept {
  auto* self = static_cast<Worker*>(async->data);
  std::optional<std::chrono::milliseconds> timeout;
  {
    std::lock_guard lock(self->mutex_);
    timeout = self->drain_request_;
    self->drain_request_.reset();
  }
  if (timeout) self->beginDrain(*timeout);
}

void Worker::beginDrain(std::chrono::milliseconds timeout) noexcept {
  if (finished_) return;
  if (!draining_) {
    draining_ = true;
    context_->setDraining();
    for (auto& socket : sockets_) socket->close();
    const std::vector<DownstreamSession*> sessions(context_->sessions().begin(),
                                                   context_->sessions().end());
    for (DownstreamSession* session : sessions) session->drain();
    pool_->closeIdle();
    h2_->drain();
  }
  // A later request may shorten the deadline.
  const uint64_t due = static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 0));
  const uint64_t left = uv_is_active(reinterpret_cast<uv_handle_t*>(&drain_timer_))
                            ? uv_timer_get_due_in(&drain_timer_)
                            : due;
  uv_timer_start(&drain_timer_, &Worker::onDrainTimer, std::min(due, left), 0);
  checkDrained();
}

void Worker::onDrainTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Worker*>(timer->data);
  const std::vector<DownstreamSession*> sessions(self->context_->sessions().begin(),
                                                 self->context_->sessions().end());
  for (DownstreamSession* session : sessions) session->forceClose();
  self->pool_->closeAll();
  self->h2_->forceClose();
  self->checkDrained();
}

void Worker::checkDrained() noexcept {
  if (!draining_ || finished_) return;
  if (!context_->sessions().empty() || !pool_->empty() || !h2_->idle()) return;
  finish();
}

void Worker::finish() noexcept {
  finished_ = true;
  {
    std::lock_guard lock(mutex_);
    async_ready_ = false;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  uv_timer_stop(&drain_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  context_->shutdown();
}

// ---- the pool ----

WorkerPool::WorkerPool(DataPathSettings settings, DataPathHooks hooks)
    : settings_(std::move(settings)), hooks_(std::move(hooks)) {}

WorkerPool::~WorkerPool() {
  if (running_) stop(std::chrono::milliseconds(0));
}

absl::Status WorkerPool::start() {
  if (running_) return absl::FailedPreconditionError("the data path is already running");
  failed_listener_.reset();
  const size_t n = std::max<size_t>(settings_.workers, 1);
  std::vector<Worker::ListenFds> fds(n);
  for (auto& worker_fds : fds) worker_fds.fill(-1);
  auto closeAll = [&] {
    for (auto& worker_fds : fds) closeFds(worker_fds);
  };
  for (size_t r = 0; r < kListenerRoleCount; ++r) {
    const auto role = static_cast<ListenerRole>(r);
    const bool enabled =
        role == ListenerRole::kInbound ? settings_.inbound_enabled : settings_.outbound_enabled;
    if (!enabled) continue;
    DataPathAddress address =
        role == ListenerRole::kInbound ? settings_.inbound : settings_.outbound;
    for (size_t w = 0; w < n; ++w) {
      absl::StatusOr<int> fd = openListenSocket(address, settings_.listen_backlog, w == 0);
      if (!fd.ok()) {
        closeAll();
        ports_.fill(0);
        failed_listener_ = role;
        return fd.status();
      }
      fds[w][r] = *fd;
      if (w == 0) {
        address.port = boundPort(*fd);
        ports_[r] = address.port;
      }
    }
  }
  const size_t outbound = static_cast<size_t>(ListenerRole::kOutbound);
  outbound_ipv6_loopback_ = false;
  if (settings_.outbound_ipv6_loopback && ports_[outbound] != 0 &&
      settings_.outbound.host == "127.0.0.1") {
    // Best effort: a host without IPv6 (or with the port taken on ::1) has the IPv4 one only.
    outbound_ipv6_loopback_ = true;
    for (size_t w = 0; w < n && outbound_ipv6_loopback_; ++w) {
      absl::StatusOr<int> fd = openListenSocket(DataPathAddress{"::1", ports_[outbound]},
                                                settings_.listen_backlog, w == 0);
      if (fd.ok()) {
        fds[w][Worker::kOutboundIpv6Loopback] = *fd;
        continue;
      }
      log(LogLevel::kInfo, "proxy",
          "the outbound listener listens on 127.0.0.1:" + std::to_string(ports_[outbound]) +
              " only: " + std::string(fd.status().message()));
      outbound_ipv6_loopback_ = false;
      for (auto& worker_fds : fds) {
        int& extra = worker_fds[Worker::kOutboundIpv6Loopback];
        if (extra >= 0) ::close(extra);
        extra = -1;
      }
    }
  }
  if (absl::Status status = buildOwnListeners(); !status.ok()) {
    closeAll();
    ports_.fill(0);
    return status;
  }
  workers_.clear();
  for (size_t w = 0; w < n; ++w) {
    workers_.push_back(std::make_unique<Worker>(w, settings_, hooks_, own_listeners_));
    absl::Status status = workers_.back()->start(fds[w]);
    fds[w].fill(-1);  // the worker owns them now
    if (!status.ok()) {
      closeAll();
      for (auto& worker : workers_) worker->drain(std::chrono::milliseconds(0));
      for (auto& worker : workers_) worker->join();
      workers_.clear();
      ports_.fill(0);
      return status;
    }
  }
  running_ = true;
  return absl::OkStatus();
}

absl::Status WorkerPool::buildOwnListeners() {
  own_listeners_ = OwnListeners();
  for (size_t r = 0; r < kListenerRoleCount; ++r) {
    if (ports_[r] == 0) continue;
    const DataPathAddress& address =
        static_cast<ListenerRole>(r) == ListenerRole::kInbound ? settings_.inbound
                                                               : settings_.outbound;
    if (absl::Status status = own_listeners_.add(address.host, ports_[r]); !status.ok()) {
      return status;
    }
  }
  if (outbound_ipv6_loopback_) {
    const size_t outbound = static_cast<size_t>(ListenerRole::kOutbound);
    if (absl::Status status = own_listeners_.add("::1", ports_[outbound]); !status.ok()) {
      return status;
    }
  }
  for (const DataPathAddress& address : settings_.other_own_listeners) {
    if (absl::Status status = own_listeners_.add(address.host, address.port); !status.ok()) {
      return status;
    }
  }
  // A wildcard listener answers on every local address; without the list, loopback still counts.
  if (absl::Status status = own_listeners_.loadLocalAddresses(); !status.ok()) {
    log(LogLevel::kWarn, "proxy", std::string(status.message()));
  }
  return absl::OkStatus();
}

void WorkerPool::requestStop(std::chrono::milliseconds drain_timeout) {
  for (auto& worker : workers_) worker->drain(drain_timeout);
}

void WorkerPool::stop(std::chrono::milliseconds drain_timeout) {
  requestStop(drain_timeout);
  for (auto& worker : workers_) worker->join();
  running_ = false;
}

DataPathSnapshot WorkerPool::snapshot() const noexcept {
  DataPathSnapshot out;
  for (const auto& worker : workers_) out.add(worker->counters());
  return out;
}

}  // namespace tracecar::proxy
