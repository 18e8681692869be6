#pragma once

#include <absl/status/statusor.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/tls.h"

namespace tracecar::proxy {

// What identifies one version of a file: a rotated certificate changes at least one of these
// (Kubernetes swaps a symlink, so the inode changes even when the size and time do not).
struct FileStamp {
  uint64_t device = 0, inode = 0, size = 0;
  int64_t mtime_ns = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

// A TLS context built from files and built again when one of them changes: sidecar certificates
// rotate. Any thread may take current() (no lock is taken; each connection keeps the context it
// started with); one thread calls reloadIfChanged.
class ReloadingTlsContext {
 public:
  static absl::StatusOr<std::shared_ptr<ReloadingTlsContext>> server(http::TlsServerConfig config);
  static absl::StatusOr<std::shared_ptr<ReloadingTlsContext>> client(http::TlsClientConfig config);
  ReloadingTlsContext(const ReloadingTlsContext&) = delete;
  ReloadingTlsContext& operator=(const ReloadingTlsContext&) = delete;

  std::shared_ptr<const http::TlsContext> current() const noexcept {
    return current_.load(std::memory_order_acquire);
  }

  enum class Reload : uint8_t { kUnchanged, kReloaded, kFailed };
  // Compares the files with what the context was built from and builds a new one when one of
  // them changed. On failure the previous context stays in use, error says why, and the files
  // are not tried again until they change again (a pair caught half-written is retried once
  // the writer is done).
  Reload reloadIfChanged(std::string& error);

  // The files the context is built from, in the order the configuration names them.
  const std::vector<std::string>& files() const noexcept { return files_; }

 private:
  using Build = std::function<absl::StatusOr<std::shared_ptr<http::TlsContext>>()>;
  ReloadingTlsContext(std::vector<std::string> files, Build build)
      : files_(std::move(files)), build_(std::move(build)) {}
  static absl::StatusOr<std::shared_ptr<ReloadingTlsContext>> make(std::vector<std::string> files,
                                                                   Build build);
  // The stamps of files_; false (and the first such file in error) when one cannot be read.
  bool stamp(std::vector<FileStamp>& stamps, std::string& error) const;

  std::vector<std::string> files_;
  Build build_;
  std::vector<FileStamp> stamps_;
  std::atomic<std::shared_ptr<const http::TlsContext>> current_;
};

}  // namespace tracecar::proxy
