#include "proxy/worker_context.h"

#include <algorithm>
#include <utility>

#include "proxy/original_destination.h"

namespace tracecar::proxy {

bool WorkerContext::dropOwnListeners(std::vector<sockaddr_storage>& addresses) const noexcept {
  if (own_listeners_ == nullptr || addresses.empty()) return false;
  std::erase_if(addresses, [this](const sockaddr_storage& address) {
    return own_listeners_->contains(address);
  });
  return addresses.empty();
}

WorkerContext::WorkerContext(uv_loop_t* loop, const DataPathSettings& settings,
                             DataPathCounters& counters)
    : loop_(loop),
      settings_(settings),
      counters_(counters),
      read_buffer_(new char[kReadBufferSize]) {}

WorkerContext::~WorkerContext() {
  for (Retirable* object : graveyard_) delete object;
}

int WorkerContext::init() noexcept {
  const int rc = uv_idle_init(loop_, &idle_);
  if (rc < 0) return rc;
  idle_.data = this;
  idle_open_ = true;
  return 0;
}

void WorkerContext::shutdown() noexcept {
  shutdown_ = true;
  if (in_turn_) return;  // the turn running now closes the handle when it ends
  runNextTurn();
}

void WorkerContext::closeIdle() noexcept {
  if (!idle_open_) return;
  idle_open_ = false;
  idle_active_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
}

void WorkerContext::keepUnparsed(std::string& input, std::string_view rest,
                                 bool from_input) noexcept {
  const auto before = static_cast<int64_t>(input.size());
  try {
    if (from_input) {
      input.erase(0, input.size() - rest.size());
    } else {
      input.assign(rest);
    }
  } catch (...) {
    input.clear();
  }
  if (input.empty() && input.capacity() > kReadBufferSize) std::string().swap(input);
  counters_.buffered(static_cast<int64_t>(input.size()) - before);
}

void WorkerContext::post(Tickable& t) noexcept {
  if (std::find(ticks_.begin(), ticks_.end(), &t) != ticks_.end()) return;
  try {
    ticks_.push_back(&t);
  } catch (...) {
    return;  // out of memory: the work is lost, as any allocation failure would lose it
  }
  arm();
}

void WorkerContext::cancel(Tickable& t) noexcept {
  ticks_.erase(std::remove(ticks_.begin(), ticks_.end(), &t), ticks_.end());
  // Due in the batch running now: its owner is going away.
  std::replace(running_.begin(), running_.end(), &t, static_cast<Tickable*>(nullptr));
}

bool WorkerContext::deferFlush(BatchFlushable& f) noexcept {
  if (batch_depth_ == 0) return false;
  try {
    batched_.push_back(&f);
  } catch (...) {
    return false;
  }
  return true;
}

void WorkerContext::forgetFlush(BatchFlushable& f) noexcept {
  std::replace(batched_.begin(), batched_.end(), &f, static_cast<BatchFlushable*>(nullptr));
  std::replace(flushing_.begin(), flushing_.end(), &f, static_cast<BatchFlushable*>(nullptr));
}

void WorkerContext::endWriteBatch() noexcept {
  if (batch_depth_ == 0 || --batch_depth_ > 0 || in_flush_) return;
  // Writes made while flushing (from callbacks) go out at once: the batch is closed.
  in_flush_ = true;
  while (!batched_.empty()) {
    flushing_.clear();
    flushing_.swap(batched_);
    for (size_t i = 0; i < flushing_.size(); ++i) {
      if (BatchFlushable* f = flushing_[i]; f != nullptr) f->flushBatch();
    }
  }
  flushing_.clear();
  in_flush_ = false;
}

void WorkerContext::retire(Retirable* object) noexcept {
  try {
    graveyard_.push_back(object);
  } catch (...) {
    delete object;  // out of memory: delete now rather than leak
    return;
  }
  arm();
}

void WorkerContext::arm() noexcept {
  if (idle_active_ || !idle_open_) return;
  if (uv_idle_start(&idle_, &WorkerContext::onIdle) == 0) idle_active_ = true;
}

void WorkerContext::onIdle(uv_idle_t* handle) noexcept {
  static_cast<WorkerContext*>(handle->data)->runNextTurn();
}

void WorkerContext::runNextTurn() noexcept {
  in_turn_ = true;
  // Work posted while running waits for the next turn.
  running_.clear();
  running_.swap(ticks_);
  for (size_t i = 0; i < running_.size(); ++i) {
    if (Tickable* t = running_[i]; t != nullptr) t->onTick();
  }
  running_.clear();
  std::vector<Retirable*> graveyard;
  graveyard.swap(graveyard_);
  for (Retirable* object : graveyard) delete object;
  if (ticks_.empty() && graveyard_.empty() && idle_active_) {
    uv_idle_stop(&idle_);
    idle_active_ = false;
  }
  in_turn_ = false;
  if (!graveyard.empty() && on_retired_) on_retired_();
  // Objects retired after this are freed by the destructor.
  if (shutdown_) closeIdle();
}

}  // namespace tracecar::proxy
