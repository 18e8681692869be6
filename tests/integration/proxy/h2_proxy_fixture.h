// The HTTP/2 data path's integration fixture: an H2DownstreamSession listener on 127.0.0.1
// port 0 on its own libuv loop in this process (WorkerContext, H2Worker, the tracing observer
// over a collecting span sink), real peers as child processes: nginx as an h2c origin, Python
// grpcio as gRPC server and client, nghttp and h2load as clients.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <uv.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "exporter/span.h"
#include "http/route_resolver.h"
#include "http/route_template.h"
#include "integration/proxy/data_path_fixture.h"
#include "integration/support/mini_json.h"
#include "integration/support/process.h"
#include "propagation/composite_propagator.h"
#include "proxy/downstream_session.h"
#include "proxy/h2_downstream_session.h"
#include "proxy/h2_worker.h"
#include "proxy/metrics.h"
#include "proxy/run_settings.h"
#include "proxy/traced_stream_observer.h"
#include "proxy/upstream_pool.h"
#include "proxy/upstream_selector.h"
#include "proxy/worker_context.h"
#include "sampling/sampler.h"
#include "sampling/trust_policy.h"

namespace tracecar::integration {

// Finished spans, from the proxy's loop thread.
class SpanCollector final : public proxy::SpanSink {
 public:
  void onSpanEnd(std::unique_ptr<exporter::SpanRecord>&& span) override {
    std::lock_guard<std::mutex> lock(mutex_);
    spans_.push_back(std::move(span));
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return spans_.size();
  }
  // Copies of the spans so far.
  std::vector<exporter::SpanRecord> spans() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<exporter::SpanRecord> out;
    for (const auto& span : spans_) out.push_back(*span);
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<exporter::SpanRecord>> spans_;
};

inline std::string spanAttribute(const exporter::SpanRecord& span, std::string_view key) {
  for (const exporter::Attribute& a : span.attributes.items()) {
    if (a.key != key) continue;
    if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
    if (const auto* i = std::get_if<int64_t>(&a.value)) return std::to_string(*i);
    return "<other>";
  }
  return "<absent>";
}

// The proxy: one worker loop with an HTTP/2 listener forwarding to one upstream.
class H2Proxy {
 public:
  struct Options {
    proxy::UpstreamTarget upstream;
    proxy::ListenerRole role = proxy::ListenerRole::kInbound;
    proxy::DataPathSettings settings;
    http::H2Settings downstream;
    http::H2Settings upstream_h2;
    // Each request to the authority it names (the outbound listener as an HTTP proxy), instead
    // of to upstream.
    bool route_by_authority = false;
  };

  explicit H2Proxy(Options options) : options_(std::move(options)) {
    std::promise<uint16_t> port;
    std::future<uint16_t> ready = port.get_future();
    thread_ = std::thread([this, p = std::move(port)]() mutable { run(p); });
    port_ = ready.get();
  }
  ~H2Proxy() { stop(); }
  H2Proxy(const H2Proxy&) = delete;
  H2Proxy& operator=(const H2Proxy&) = delete;

  uint16_t port() const { return port_; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  std::string authority() const { return "127.0.0.1:" + std::to_string(port_); }
  SpanCollector& spans() { return sink_; }

  // Runs f on the loop thread and waits for it.
  void onLoop(std::function<void(proxy::H2Worker&, proxy::DataPathCounters&)> f) {
    std::promise<void> done;
    std::future<void> finished = done.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      tasks_.push_back([&] {
        f(*worker_, counters_);
        done.set_value();
      });
    }
    uv_async_send(&async_);
    finished.wait();
  }
  template <class T>
  T read(std::function<T(proxy::H2Worker&, proxy::DataPathCounters&)> f) {
    T value{};
    onLoop([&](proxy::H2Worker& w, proxy::DataPathCounters& c) { value = f(w, c); });
    return value;
  }
  uint64_t localReplies(proxy::LocalReplyReason reason) {
    return read<uint64_t>([&](proxy::H2Worker&, proxy::DataPathCounters& c) {
      return c.local_replies[static_cast<size_t>(options_.role)][static_cast<size_t>(reason)]
          .load();
    });
  }
  size_t upstreamConnects() {
    return read<size_t>(
        [](proxy::H2Worker&, proxy::DataPathCounters& c) { return c.upstream_connects.load(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      tasks_.push_back([this] { shutdown(); });
    }
    uv_async_send(&async_);
    thread_.join();
  }

 private:
  void run(std::promise<uint16_t>& port) {
    uv_loop_init(&loop_);
    proxy::WorkerContext context(&loop_, options_.settings, counters_);
    context.init();
    proxy::UpstreamPool h1_pool(context);
    context.setPool(&h1_pool);
    proxy::H2Worker worker(context, options_.downstream, options_.upstream_h2);
    worker_ = &worker;

    propagation::CompositePropagator propagator;
    http::RouteResolver routes(*http::RouteMatcher::compile({"/users/{id}"}));
    proxy::RequestTracingConfig config;
    sampling::Sampler sampler;
    sampling::TrustPolicy trust;
    proxy::ProxyMetrics metrics;
    metrics.setSamplingLabels(proxy::samplingLabelsOf(sampler));
    proxy::WorkerMetrics& shard = metrics.addShard();
    proxy::TracedStreamObserverFactory observers(options_.role, propagator, &routes, config,
                                                 sampler, trust, sink_, shard);
    proxy::FixedUpstreamSelector fixed(options_.upstream);
    proxy::HostUpstreamSelector by_authority;
    listener_.role = options_.role;
    listener_.selector = options_.route_by_authority
                             ? static_cast<proxy::UpstreamSelector*>(&by_authority)
                             : static_cast<proxy::UpstreamSelector*>(&fixed);
    listener_.observers = &observers;

    uv_async_init(&loop_, &async_, [](uv_async_t* handle) {
      static_cast<H2Proxy*>(handle->data)->runTasks();
    });
    async_.data = this;
    uv_tcp_init(&loop_, &server_);
    server_.data = this;
    sockaddr_in address{};
    uv_ip4_addr("127.0.0.1", 0, &address);
    uv_tcp_bind(&server_, reinterpret_cast<const sockaddr*>(&address), 0);
    uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 128, [](uv_stream_t* server, int status) {
      if (status < 0) return;
      auto* self = static_cast<H2Proxy*>(server->data);
      proxy::H2DownstreamSession::accept(*self->worker_, self->listener_, server);
    });
    sockaddr_storage bound{};
    int length = sizeof bound;
    uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&bound), &length);
    port.set_value(ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port));

    context_ = &context;
    uv_run(&loop_, UV_RUN_DEFAULT);
    context_ = nullptr;
    worker_ = nullptr;
    uv_loop_close(&loop_);
  }

  void runTasks() {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();
  }

  void shutdown() {
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
    worker_->forceClose();
    context_->pool().closeAll();
    // Give the closes a few turns, then stop the loop's own handles.
    auto* timer = new uv_timer_t;
    uv_timer_init(&loop_, timer);
    timer->data = this;
    uv_timer_start(
        timer,
        [](uv_timer_t* t) {
          auto* self = static_cast<H2Proxy*>(t->data);
          self->context_->shutdown();
          uv_close(reinterpret_cast<uv_handle_t*>(&self->async_), nullptr);
          uv_close(reinterpret_cast<uv_handle_t*>(t),
                   [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        },
        50, 0);
  }

  Options options_;
  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_tcp_t server_{};
  std::thread thread_;
  uint16_t port_ = 0;
  proxy::DataPathCounters counters_;
  SpanCollector sink_;
  proxy::ListenerContext listener_;
  proxy::H2Worker* worker_ = nullptr;
  proxy::WorkerContext* context_ = nullptr;
  std::mutex mutex_;
  std::vector<std::function<void()>> tasks_;
  bool stopped_ = false;
};

// nginx serving h2c with prior knowledge on a free loopback port: / (a short text), /big (a
// 4 MiB file), /echo-headers (the traceparent it received).
class NginxOrigin {
 public:
  explicit NginxOrigin(int max_concurrent_streams = 128) {
    port_ = freePort();
    const std::string root = dir_.file("www");
    std::filesystem::create_directories(root);
    std::filesystem::create_directories(dir_.file("logs"));
    {
      std::ofstream index(root + "/index.html");
      index << "hello from nginx\n";
      std::ofstream big(root + "/big", std::ios::binary);
      const std::string chunk(1024 * 1024, 'b');
      for (int i = 0; i < 4; ++i) big << chunk;
    }
    std::ofstream conf(dir_.file("nginx.conf"));
    conf << "worker_processes 1;\n"
         << "daemon off;\n"
         << "master_process off;\n"
         << "pid " << dir_.file("nginx.pid") << ";\n"
         << "error_log " << dir_.file("logs/error.log") << " warn;\n"
         << "events { worker_connections 1024; }\n"
         << "http {\n"
         << "  access_log off;\n"
         << "  client_body_temp_path " << dir_.file("body") << ";\n"
         << "  proxy_temp_path " << dir_.file("proxy") << ";\n"
         << "  fastcgi_temp_path " << dir_.file("fastcgi") << ";\n"
         << "  uwsgi_temp_path " << dir_.file("uwsgi") << ";\n"
         << "  scgi_temp_path " << dir_.file("scgi") << ";\n"
         << "  server {\n"
         << "    listen 127.0.0.1:" << port_ << " http2;\n"
         << "    http2_max_concurrent_streams " << max_concurrent_streams << ";\n"
         << "    root " << root << ";\n"
         << "    location = / { add_header x-origin nginx; return 200 'hello from nginx\\n'; }\n"
         << "    location /echo-headers { return 200 '$http_traceparent\\n'; }\n"
         << "  }\n"
         << "}\n";
    conf.close();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int null_fd = ::open("/dev/null", O_WRONLY);
      ::dup2(null_fd, STDOUT_FILENO);
      ::dup2(null_fd, STDERR_FILENO);
      const std::string conf_path = dir_.file("nginx.conf");
      const std::string prefix = dir_.file("");
      ::execlp("nginx", "nginx", "-c", conf_path.c_str(), "-p", prefix.c_str(), nullptr);
      ::_exit(127);
    }
    // Ready once it accepts.
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < give_up) {
      RawConnection probe(port_);
      if (probe.ok()) {
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  ~NginxOrigin() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  NginxOrigin(const NginxOrigin&) = delete;
  NginxOrigin& operator=(const NginxOrigin&) = delete;

  bool ready() const { return ready_; }
  uint16_t port() const { return port_; }

 private:
  ScratchDir dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool ready_ = false;
};

// tests/support/grpc_test_server.py as a child process.
class GrpcServer {
 public:
  explicit GrpcServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"/usr/bin/python3",
                                     dataPathSupportDir() + "/grpc_test_server.py",
                                     "--max-seconds", "120"};
    args.insert(args.end(), extra.begin(), extra.end());
    const ReportingChild child = spawnReportingPort(args);
    pid_ = child.pid;
    port_ = child.port;
  }
  ~GrpcServer() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// Runs one scenario of tests/support/grpc_test_client.py; its JSON answer (empty on failure).
inline Json grpcClient(const std::string& target, std::vector<std::string> scenario,
                       std::string* err = nullptr) {
  std::vector<std::string> args = {"/usr/bin/python3",
                                   dataPathSupportDir() + "/grpc_test_client.py", "--target",
                                   target};
  args.insert(args.end(), scenario.begin(), scenario.end());
  const ProcessResult result = runProcess(args, 60s);
  if (err != nullptr) *err = result.err;
  return parseJson(result.out).value_or(Json{});
}

// Waits (up to timeout) until done() holds.
template <class Done>
bool waitFor(Done&& done, std::chrono::milliseconds timeout = 10s) {
  return eventually(std::forward<Done>(done), timeout);
}

}  // namespace tracecar::integration
