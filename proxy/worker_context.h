#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "proxy/data_path_counters.h"
#include "proxy/data_path_settings.h"

namespace tracecar::proxy {

class DownstreamSession;
class UpstreamPool;
class OwnListeners;
class H2Worker;

// Work to run on the next turn of the worker's loop (never inside the caller's stack).
class Tickable {
 public:
  virtual ~Tickable() = default;
  virtual void onTick() noexcept = 0;
};

// Output held back while a write batch is open, sent when the outermost batch ends.
class BatchFlushable {
 public:
  virtual ~BatchFlushable() = default;
  virtual void flushBatch() noexcept = 0;
};

// An object the worker deletes on the next loop turn, once nothing on the stack can still
// reach it.
class Retirable {
 public:
  virtual ~Retirable() = default;
};

// What every object of one worker shares: its loop, settings, counters, read buffer, upstream
// pool, the next-turn queue and the deferred deletions. Used on the worker's thread only.
class WorkerContext {
 public:
  static constexpr size_t kReadBufferSize = 64 * 1024;

  WorkerContext(uv_loop_t* loop, const DataPathSettings& settings, DataPathCounters& counters);
  ~WorkerContext();
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;

  int init() noexcept;  // the next-turn handle
  // Closes the next-turn handle after running what is queued; the loop can then end.
  void shutdown() noexcept;

  uv_loop_t* loop() const noexcept { return loop_; }
  const DataPathSettings& settings() const noexcept { return settings_; }
  DataPathCounters& counters() noexcept { return counters_; }
  // One buffer for every read of the worker: a reader copies what it keeps.
  char* readBuffer() noexcept { return read_buffer_.get(); }
  // TLS sockets' scratch: the plaintext of one read (handed to its reader, who copies what it
  // keeps), and the ciphertext of one write on its way to the write queue.
  std::string& tlsPlaintext() noexcept { return tls_plaintext_; }
  std::string& tlsCiphertext() noexcept { return tls_ciphertext_; }
  // Keeps rest as a reader's unparsed input and counts the change in buffered bytes: rest is a
  // tail of input when from_input, else bytes from elsewhere (the read buffer). Out of memory
  // drops the input.
  void keepUnparsed(std::string& input, std::string_view rest, bool from_input) noexcept;

  UpstreamPool& pool() noexcept { return *pool_; }
  void setPool(UpstreamPool* pool) noexcept { pool_ = pool; }
  // tracecar's own listening addresses: an upstream connection to one of them would come back
  // into the proxy (a loop), so none is made (UpstreamFailure::kLoopDetected). Checked on the
  // resolved addresses, so that no spelling of a listener's address (127.1, 2130706433,
  // [::ffff:127.0.0.1], a name that resolves to loopback) gets past it. Null: no check.
  void setOwnListeners(const OwnListeners* own) noexcept { own_listeners_ = own; }
  // Removes the addresses of own listeners from an upstream's addresses, before connecting to
  // them; true when there were some and every one was such: the upstream is tracecar itself.
  bool dropOwnListeners(std::vector<sockaddr_storage>& addresses) const noexcept;
  // The worker's HTTP/2 data path; null where there is none (h2c is then tunnelled).
  H2Worker* h2() noexcept { return h2_; }
  void setH2(H2Worker* h2) noexcept { h2_ = h2; }

  // t.onTick() on the next loop turn; posting twice before it runs runs it once.
  void post(Tickable& t) noexcept;
  void cancel(Tickable& t) noexcept;
  // Deletes the object on the next loop turn, after the posted work.
  void retire(Retirable* object) noexcept;

  // Between beginWriteBatch and the matching endWriteBatch (nested calls count), writes are
  // gathered per socket and sent together when the outermost batch ends: what one read
  // produces for a peer goes out in one system call.
  void beginWriteBatch() noexcept { ++batch_depth_; }
  void endWriteBatch() noexcept;
  bool batchingWrites() const noexcept { return batch_depth_ > 0; }
  // f.flushBatch() when the batch ends. False when it cannot be recorded (write now instead).
  bool deferFlush(BatchFlushable& f) noexcept;
  void forgetFlush(BatchFlushable& f) noexcept;

  // Downstream sessions alive on this worker (for drain).
  std::unordered_set<DownstreamSession*>& sessions() noexcept { return sessions_; }

  bool draining() const noexcept { return draining_; }
  void setDraining() noexcept { draining_ = true; }
  // Called after each next-turn run that deleted something (the worker checks whether a drain
  // is complete).
  void setOnRetired(std::function<void()> on_retired) { on_retired_ = std::move(on_retired); }

 private:
  static void onIdle(uv_idle_t* handle) noexcept;
  void runNextTurn() noexcept;
  void arm() noexcept;
  void closeIdle() noexcept;

  uv_loop_t* loop_;
  const DataPathSettings& settings_;
  DataPathCounters& counters_;
  std::unique_ptr<char[]> read_buffer_;
  std::string tls_plaintext_;
  std::string tls_ciphertext_;
  UpstreamPool* pool_ = nullptr;
  const OwnListeners* own_listeners_ = nullptr;
  H2Worker* h2_ = nullptr;
  uv_idle_t idle_{};
  bool idle_open_ = false;
  bool idle_active_ = false;
  std::vector<Tickable*> ticks_;
  std::vector<Tickable*> running_;  // the batch being run
  std::vector<Retirable*> graveyard_;
  std::vector<BatchFlushable*> batched_;
  std::vector<BatchFlushable*> flushing_;  // the batch being sent
  unsigned batch_depth_ = 0;
  bool in_flush_ = false;
  std::unordered_set<DownstreamSession*> sessions_;
  std::function<void()> on_retired_;
  bool draining_ = false;
  bool in_turn_ = false;
  bool shutdown_ = false;
};

}  // namespace tracecar::proxy
