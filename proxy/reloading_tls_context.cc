#include "proxy/reloading_tls_context.h"

#include <sys/stat.h>

#include <utility>

namespace tracecar::proxy {

absl::StatusOr<std::shared_ptr<ReloadingTlsContext>> ReloadingTlsContext::server(
    http::TlsServerConfig config) {
  std::vector<std::string> files{config.cert_file, config.key_file};
  if (!config.client_ca_file.empty()) files.push_back(config.client_ca_file);
  return make(std::move(files), [config = std::move(config)] {
    return http::TlsContext::server(config);
  });
}

absl::StatusOr<std::shared_ptr<ReloadingTlsContext>> ReloadingTlsContext::client(
    http::TlsClientConfig config) {
  std::vector<std::string> files;
  if (!config.ca_file.empty()) files.push_back(config.ca_file);
  if (!config.cert_file.empty()) files.push_back(config.cert_file);
  if (!config.key_file.empty()) files.push_back(config.key_file);
  return make(std::move(files), [config = std::move(config)] {
    return http::TlsContext::client(config);
  });
}

absl::StatusOr<std::shared_ptr<ReloadingTlsContext>> ReloadingTlsContext::make(
    std::vector<std::string> files, Build build) {
  std::shared_ptr<ReloadingTlsContext> self(
      new ReloadingTlsContext(std::move(files), std::move(build)));
  std::string error;
  if (!self->stamp(self->stamps_, error)) return absl::NotFoundError(error);
  absl::StatusOr<std::shared_ptr<http::TlsContext>> context = self->build_();
  if (!context.ok()) return context.status();
  self->current_.store(*std::move(context), std::memory_order_release);
  return self;
}

bool ReloadingTlsContext::stamp(std::vector<FileStamp>& stamps, std::string& error) const {
  stamps.clear();
  bool all = true;
  for (const std::string& path : files_) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      // A file that cannot be read stamps as all zeros: its return is a change.
      if (all) error = path + ": cannot be read";
      all = false;
      stamps.push_back(FileStamp{});
      continue;
    }
    stamps.push_back(FileStamp{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                               static_cast<uint64_t>(st.st_size),
                               static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                                   st.st_mtim.tv_nsec});
  }
  return all;
}

ReloadingTlsContext::Reload ReloadingTlsContext::reloadIfChanged(std::string& error) {
  std::vector<FileStamp> now;
  const bool readable = stamp(now, error);
  if (now == stamps_) return Reload::kUnchanged;
  stamps_ = std::move(now);
  // Mid-rotation a file may be missing for a moment: its return is the next change.
  if (!readable) return Reload::kFailed;
  absl::StatusOr<std::shared_ptr<http::TlsContext>> context = build_();
  if (!context.ok()) {
    error = std::string(context.status().message());
    return Reload::kFailed;
  }
  current_.store(*std::move(context), std::memory_order_release);
  return Reload::kReloaded;
}

}  // namespace tracecar::proxy
