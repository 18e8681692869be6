#pragma once

#include <absl/status/status.h>
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "proxy/acceptor.h"
#include "proxy/inject_webhook.h"
#include "proxy/reloading_tls_context.h"

namespace CLI {
class App;
}  // namespace CLI
namespace tracecar::http {
class TlsContext;
}  // namespace tracecar::http

// `tracecar inject-webhook`: the HTTPS server the Kubernetes API server calls with an
// AdmissionReview for every pod to be created (MutatingWebhookConfiguration).
namespace tracecar::proxy {

struct InjectWebhookOptions {
  std::string listen = "0.0.0.0:8443";  // ADDRESS:PORT, [IPv6]:PORT; port 0 picks one
  std::string cert_file;                // PEM certificate chain
  std::string key_file;                 // PEM private key
  std::string template_file;            // the containers to inject (parseInjectionTemplate)
  // How often the certificate and key files are checked for a change (a renewed Secret): a new
  // pair is loaded for the following connections; a pair that does not load keeps the old one.
  std::chrono::milliseconds reload_interval{10000};
  std::chrono::milliseconds idle_timeout{30000};  // per request, from accept or last answer
  size_t max_body_bytes = 8 * 1024 * 1024;        // an AdmissionReview of a large pod fits
  size_t max_connections = 256;
  std::string ready_file;  // once listening: {"port":N,"pid":N}
};

// Adds the options of inject-webhook to command.
void addInjectWebhookOptions(CLI::App& command, InjectWebhookOptions& options);

// Loads the template and the certificate, serves until SIGTERM or SIGINT, then exits 0.
// 1 when the files cannot be loaded or the address cannot be bound, 2 for a bad option.
int runInjectWebhook(const InjectWebhookOptions& options);

// The server on a caller's loop:
//   POST /inject              AdmissionReview in, AdmissionReview out (application/json)
//   GET  /healthz, /readyz    200 "ok"
// Anything else: 404 (405 for another method on /inject). HTTP/1.1 over TLS only.
class InjectWebhookServer {
 public:
  InjectWebhookServer(uv_loop_t* loop, InjectWebhookOptions options, InjectionTemplate injection);
  ~InjectWebhookServer();
  InjectWebhookServer(const InjectWebhookServer&) = delete;
  InjectWebhookServer& operator=(const InjectWebhookServer&) = delete;

  // Loads the certificate and key, binds and listens.
  absl::Status start();
  uint16_t port() const noexcept { return port_; }
  // Checks the certificate files now (the timer does this every reload_interval); true when a
  // new pair was loaded.
  bool reloadIfChanged();
  // Closes the listener and every connection; on_closed runs once all handles are closed.
  void stop(std::function<void()> on_closed);

 private:
  class Connection;
  void onConnection(int fd) noexcept;
  static void onHandleClosed(uv_handle_t* handle) noexcept;
  void handleClosed() noexcept;
  void unlink(Connection* connection) noexcept;
  absl::Status loadCertificate();
  // The answer to one request, on the wire.
  std::string answer(std::string_view method, std::string_view target, std::string_view body,
                     bool keep_alive);

  uv_loop_t* const loop_;
  const InjectWebhookOptions options_;
  const InjectionTemplate injection_;
  std::shared_ptr<ReloadingTlsContext> tls_;
  static constexpr size_t kReadBufferSize = 64 * 1024;
  std::unique_ptr<char[]> read_buffer_{new char[kReadBufferSize]};  // reads are handled at once
  Acceptor listener_;  // pauses while file descriptors run out
  uv_timer_t reload_timer_{};
  bool listener_open_ = false;
  bool timer_open_ = false;
  uint16_t port_ = 0;
  size_t open_handles_ = 0;
  size_t connection_count_ = 0;
  bool stopping_ = false;
  Connection* connections_ = nullptr;
  std::function<void()> on_closed_;
};

}  // namespace tracecar::proxy
