#include "proxy/run.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/thread_name.h"
#include "exporter/batch_processor.h"
#include "exporter/console_exporter.h"
#include "exporter/exporter_counters.h"
#include "exporter/log.h"
#include "exporter/otlp_exporter_factory.h"
#include "exporter/recent_spans.h"
#include "exporter/resource.h"
#include "http/route_resolver.h"
#include "propagation/composite_propagator.h"
#include "proxy/admin_server.h"
#include "proxy/fd_limit.h"
#include "proxy/metrics.h"
#include "proxy/request_tracer.h"
#include "proxy/run_metrics.h"
#include "proxy/run_settings.h"
#include "proxy/traced_stream_observer.h"
#include "proxy/version.h"
#include "proxy/worker.h"
#include "sampling/sampler.h"

namespace tracecar::proxy {
namespace {

// libuv starts its thread pool (name resolution) on first use, and a new thread inherits the
// name of the thread that starts it: start it here, from the main thread named for the pool, so
// that `top -H` tells the pool from the exporter or a worker. A failure here changes nothing:
// the pool then starts on first use as before.
void startLibuvThreadPool() {
  char own_name[16] = {};
  if (pthread_getname_np(pthread_self(), own_name, sizeof own_name) != 0) return;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return;
  base::nameThisThread("tc-uv-pool");
  uv_work_t work{};
  if (uv_queue_work(&loop, &work, [](uv_work_t*) {}, [](uv_work_t*, int) {}) == 0) {
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  base::nameThisThread(own_name);
}

constexpr std::string_view kComponent = "tracecar";

void logInfo(const std::string& message) { log(LogLevel::kInfo, kComponent, message); }

std::string describeFileDescriptorLimit(const FileDescriptorLimit& fds) {
  std::string text = "file descriptor limit: " + std::to_string(fds.soft);
  if (fds.soft != fds.before) text += " (raised from " + std::to_string(fds.before) + ")";
  if (!fds.error.empty()) text += " (could not raise it: " + fds.error + ")";
  return text;
}
void logError(const std::string& message) { log(LogLevel::kError, kComponent, message); }

// OTEL_TRACES_EXPORTER=none: sampled spans are counted (tracecar_spans_sampled_total) and
// dropped here.
class DiscardingSpanSink final : public SpanSink {
 public:
  void onSpanEnd(std::unique_ptr<exporter::SpanRecord>&& span) override { span.reset(); }
};

std::string addressText(const std::string& host, uint16_t port) {
  return HostPort{host, port}.toString();
}

std::string describeExporter(const exporter::ExporterSettings& settings,
                             const exporter::BatchConfig& batch) {
  switch (settings.kind) {
    case exporter::ExporterKind::kOtlp:
      return "otlp " + std::string(exporter::protocolName(settings.otlp.protocol)) + " to " +
             settings.otlp.endpoint.url() + " (batches of up to " +
             std::to_string(batch.max_export_batch_size) + " spans, " +
             (batch.schedule_delay.count() == 0
                  ? std::string("as soon as spans are queued")
                  : "at least every " + formatDuration(batch.schedule_delay)) +
             ")";
    case exporter::ExporterKind::kConsole:
      return "console (OTLP/JSON lines) to " +
             (settings.console_path.empty() ? std::string("standard output")
                                            : settings.console_path);
    case exporter::ExporterKind::kNone:
      break;
  }
  return "none (spans are counted, not exported)";
}

// Everything `tracecar run` starts, in the order it is built; destroyed in reverse.
class Runner {
 public:
  Runner(ProxyConfig config, Origins origins, RunOptions options, sampling::Sampler sampler)
      : config_(std::move(config)),
        origins_(std::move(origins)),
        options_(std::move(options)),
        propagator_(config_.propagation),
        inbound_routes_(config_.tracing.route_matcher, config_.tracing.route_cardinality_limit),
        tracing_config_(requestTracingConfigFrom(config_)),
        sampler_(std::move(sampler)) {}
  ~Runner() {
    if (drain_thread_.joinable()) drain_thread_.join();
  }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  int run();

 private:
  absl::Status startExporter();
  // The TLS files and the exporter's; each one that cannot be loaded is logged.
  bool loadFiles();
  void buildDataPath();
  static void onReloadTimer(uv_timer_t* timer) noexcept;
  void reloadTls();
  // Empty when written (or not asked for); else why not, with the system's reason.
  std::string writeReadyFile() const;
  void closeLoopHandles();
  void beginStop(int signum);

  static void onSignal(uv_signal_t* handle, int signum) noexcept;
  static void onStopped(uv_async_t* handle) noexcept;

  const ProxyConfig config_;
  const Origins origins_;  // to name the setting of a file that cannot be loaded
  const RunOptions options_;
  propagation::CompositePropagator propagator_;
  http::RouteResolver inbound_routes_;
  const RequestTracingConfig tracing_config_;
  // Shared read-only by every worker (the rate limit is one atomic word).
  const sampling::Sampler sampler_;

  exporter::ExporterCounters exporter_counters_;
  exporter::RecentSpans recent_spans_;
  std::unique_ptr<exporter::BatchProcessor> processor_;
  std::unique_ptr<SpanSink> sink_;

  ProxyMetrics metrics_;
  std::vector<WorkerMetrics*> worker_shards_;
  WorkerMetrics* admin_shard_ = nullptr;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<RunMetrics> run_metrics_;

  DataPathTls tls_;
  std::vector<std::shared_ptr<ReloadingTlsContext>> tls_files_;  // checked by the reload timer
  std::atomic<uint64_t> tls_reloads_{0};
  std::atomic<uint64_t> tls_reload_failures_{0};
  uv_timer_t reload_timer_{};

  uv_loop_t loop_{};
  std::unique_ptr<AdminServer> admin_;
  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  // SIGHUP (a closed terminal, a supervisor's "reload") stops as SIGTERM does: there is nothing
  // to reload, and dying at once would lose the queued spans.
  uv_signal_t sighup_{};
  uv_async_t stopped_{};
  bool handles_open_ = false;
  bool stopping_ = false;
  std::thread drain_thread_;
};

absl::Status Runner::startExporter() {
  const exporter::ExporterSettings& settings = config_.exporter.settings;
  // A disabled SDK makes no span: nothing to export, no export thread.
  if (settings.kind == exporter::ExporterKind::kNone || config_.tracing.sdk_disabled) {
    sink_ = std::make_unique<DiscardingSpanSink>();
    metrics_.setExporterCounters(&exporter_counters_);
    return absl::OkStatus();
  }
  const exporter::Resource& resource = config_.tracing.resource;
  const exporter::InstrumentationScope scope = exporter::tracecarScope(kVersion);
  std::string failure;
  exporter::BatchProcessor::ExporterFactory factory =
      [&](uv_loop_t* loop) -> std::unique_ptr<exporter::SpanExporter> {
    if (settings.kind == exporter::ExporterKind::kOtlp) {
      absl::StatusOr<std::unique_ptr<exporter::SpanExporter>> made =
          exporter::makeOtlpExporter(loop, settings.otlp, resource, scope, exporter_counters_);
      if (!made.ok()) {
        failure = "OTLP exporter: " + std::string(made.status().message());
        return nullptr;
      }
      return std::move(*made);
    }
    exporter::ConsoleExporter::EncodeFunction encode =
        exporter::ConsoleExporter::otlpJson(resource, scope);
    if (settings.console_path.empty()) {
      return std::make_unique<exporter::ConsoleExporter>(std::move(encode));
    }
    std::string error;
    std::unique_ptr<exporter::ConsoleExporter> console =
        exporter::ConsoleExporter::toFile(settings.console_path, std::move(encode), error);
    if (!console) failure = "console exporter: " + error;
    return console;
  };
  try {
    processor_ = std::make_unique<exporter::BatchProcessor>(config_.exporter.batch, factory,
                                                            exporter_counters_, &recent_spans_);
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(failure.empty() ? std::string(e.what()) : failure);
  }
  sink_ = std::make_unique<BatchProcessorSink>(*processor_);
  exporter::BatchProcessor* processor = processor_.get();
  metrics_.setExporterCounters(&exporter_counters_, [processor] { processor->refreshCounters(); });
  return absl::OkStatus();
}

bool Runner::loadFiles() {
  std::vector<std::string> errors;
  tls_ = loadDataPathTls(config_, origins_, errors);
  // The exporter's, checked here to be reported as validate reports them: the exporter thread
  // would otherwise find the first only.
  checkExporterFiles(config_, origins_, errors);
  for (const std::string& error : errors) logError(error);
  tls_files_ = tls_.all();
  return errors.empty();
}

void Runner::onReloadTimer(uv_timer_t* timer) noexcept {
  try {
    static_cast<Runner*>(timer->data)->reloadTls();
  } catch (const std::exception&) {
  }
}

void Runner::reloadTls() {
  for (const std::shared_ptr<ReloadingTlsContext>& context : tls_files_) {
    std::string error;
    switch (context->reloadIfChanged(error)) {
      case ReloadingTlsContext::Reload::kReloaded:
        tls_reloads_.fetch_add(1, std::memory_order_relaxed);
        logInfo("TLS: loaded " + context->files().front() + " again after it changed");
        break;
      case ReloadingTlsContext::Reload::kFailed:
        tls_reload_failures_.fetch_add(1, std::memory_order_relaxed);
        log(LogLevel::kWarn, kComponent, "TLS: kept the previous certificate: " + error);
        break;
      case ReloadingTlsContext::Reload::kUnchanged:
        break;
    }
  }
}

void Runner::buildDataPath() {
  const DataPathSettings settings = dataPathSettingsFrom(config_, tls_);
  metrics_.setSamplingLabels(samplingLabelsOf(sampler_));
  // The histograms' method label follows the spans' http.request.method.
  metrics_.setKnownMethods(tracing_config_.known_methods);
  // One shard per worker (its only writer) and one for the admin listener on this thread.
  for (size_t i = 0; i < std::max<size_t>(settings.workers, 1); ++i) {
    worker_shards_.push_back(&metrics_.addShard());
  }
  admin_shard_ = &metrics_.addShard();

  DataPathHooks hooks;
  hooks.observers = [this](size_t worker,
                           ListenerRole role) -> std::unique_ptr<StreamObserverFactory> {
    if (worker >= worker_shards_.size()) return nullptr;  // never: one shard per worker
    http::RouteResolver* routes = role == ListenerRole::kInbound ? &inbound_routes_ : nullptr;
    return std::make_unique<TracedStreamObserverFactory>(
        role, propagator_, routes, tracing_config_, sampler_,
        config_.tracing.trust_incoming_context, *sink_, *worker_shards_[worker]);
  };
  pool_ = std::make_unique<WorkerPool>(settings, std::move(hooks));
  WorkerPool* pool = pool_.get();
  run_metrics_ = std::make_unique<RunMetrics>(metrics_, [this, pool] {
    DataPathSnapshot snapshot = pool->snapshot();
    snapshot.tls_reloads = tls_reloads_.load(std::memory_order_relaxed);
    snapshot.tls_reload_failures = tls_reload_failures_.load(std::memory_order_relaxed);
    return snapshot;
  });
}

std::string Runner::writeReadyFile() const {
  if (options_.ready_file.empty()) return "";
  const std::string temporary = options_.ready_file + ".tmp";
  const std::string text = "{\"inbound\":" + std::to_string(pool_->port(ListenerRole::kInbound)) +
                           ",\"outbound\":" +
                           std::to_string(pool_->port(ListenerRole::kOutbound)) +
                           ",\"admin\":" + std::to_string(admin_->port()) +
                           ",\"pid\":" + std::to_string(uv_os_getpid()) + "}\n";
  const auto failed = [this](const std::string& path, std::string_view what) {
    return "cannot write the ready file " + options_.ready_file + ": " + std::string(what) + " " +
           path + ": " + std::strerror(errno);
  };
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed(temporary, "creating");
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string error = failed(temporary, "writing");
      ::close(fd);
      ::unlink(temporary.c_str());
      return error;
    }
    written += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return failed(temporary, "writing");
  if (std::rename(temporary.c_str(), options_.ready_file.c_str()) != 0) {
    std::string error = failed(temporary, "renaming");
    ::unlink(temporary.c_str());
    return error;
  }
  return "";
}

void Runner::closeLoopHandles() {
  if (!handles_open_) return;
  handles_open_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&stopped_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&reload_timer_), nullptr);
}

const char* signalName(int signum) noexcept {
  switch (signum) {
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "SIGTERM";
  }
}

void Runner::onSignal(uv_signal_t* handle, int signum) noexcept {
  static_cast<Runner*>(handle->data)->beginStop(signum);
}

void Runner::beginStop(int signum) {
  if (stopping_) {
    log(LogLevel::kWarn, kComponent,
        std::string("second ") + signalName(signum) + ": exiting now");
    std::_Exit(128 + signum);
  }
  stopping_ = true;
  admin_->setReadiness(Readiness::kDraining);
  logInfo(std::string(signalName(signum)) +
          ": draining (in-flight requests get up to " + formatDuration(config_.timeouts.drain) +
          "), then flushing spans; a second signal exits at once");
  // The drain blocks; the loop keeps serving /readyz (draining) and /metrics meanwhile.
  try {
    drain_thread_ = std::thread([this] {
      base::nameThisThread("tc-drain");
      pool_->stop(config_.timeouts.drain);
      if (processor_ && !processor_->shutdown(config_.exporter.batch.export_timeout)) {
        log(LogLevel::kWarn, kComponent,
            "some spans could not be exported at shutdown: the collector failed or did not "
            "answer in time (the exporter's errors above say which)");
      }
      uv_async_send(&stopped_);
    });
  } catch (const std::exception& e) {
    logError(std::string("cannot start the drain: ") + e.what());
    std::_Exit(1);
  }
}

void Runner::onStopped(uv_async_t* handle) noexcept {
  Runner* self = static_cast<Runner*>(handle->data);
  if (self->drain_thread_.joinable()) self->drain_thread_.join();
  logInfo("drained; exiting");
  self->admin_->stop();
  self->closeLoopHandles();
}

int Runner::run() {
  const FileDescriptorLimit fds = raiseFileDescriptorLimit();
  startLibuvThreadPool();
  if (!loadFiles()) return 1;
  if (absl::Status status = startExporter(); !status.ok()) {
    logError(std::string(status.message()));
    return 1;
  }
  buildDataPath();

  if (int rc = uv_loop_init(&loop_); rc != 0) {
    logError(std::string("cannot start the main loop: ") + uv_strerror(rc));
    return 1;
  }
  AdminServerOptions admin_options;
  admin_options.address = config_.listeners.admin.host;
  admin_options.port = config_.listeners.admin.port;
  AdminSources sources;
  sources.collectables = {run_metrics_.get()};
  sources.recent_spans = &recent_spans_;
  sources.metrics = admin_shard_;
  admin_ = std::make_unique<AdminServer>(&loop_, admin_options, std::move(sources));

  int exit_code = 0;
  absl::Status started = admin_->start();
  if (started.ok()) {
    // A redirected connection to the admin port is tracecar itself too.
    pool_->addOwnListener(DataPathAddress{admin_options.address, admin_->port()});
    started = pool_->start();
  }
  if (!started.ok()) {
    // The admin listener's error names it; a data-path one is named here.
    std::string which;
    if (const std::optional<ListenerRole> role = pool_->failedListener()) {
      which = *role == ListenerRole::kInbound ? "inbound listener: " : "outbound listener: ";
    }
    logError(which + std::string(started.message()));
    exit_code = 1;
  } else {
    const DataPathSettings& settings = pool_->settings();
    logInfo(std::string("tracecar ") + kVersion + " running with " +
            std::to_string(pool_->size()) + (pool_->size() == 1 ? " worker" : " workers"));
    logInfo(describeFileDescriptorLimit(fds));
    logInfo("inbound listener " +
            addressText(settings.inbound.host, pool_->port(ListenerRole::kInbound)) + " -> " +
            (settings.inbound_mode == DataPathSettings::InboundMode::kApp
                 ? "app " + addressText(settings.app.host, settings.app.port)
                 : "app " + addressText(settings.app.host, settings.app.port) +
                       " (a redirected connection: " + settings.app.host +
                       " at the port it was sent to)"));
    if (config_.tls.inbound.enabled()) {
      logInfo("inbound TLS terminated with " + config_.tls.inbound.cert_file +
              (config_.tls.inbound.client_ca_file.empty()
                   ? ""
                   : " (client certificates from " + config_.tls.inbound.client_ca_file + ")") +
              "; other TLS passes through");
    }
    for (const DestinationConfig& destination : config_.upstreams.destinations) {
      std::string what = "destination " + destination.match + ": protocol " +
                         std::string(toString(destination.protocol));
      if (destination.tls) {
        what += ", TLS originated";
        if (destination.tls->port) what += " to port " + std::to_string(*destination.tls->port);
        if (!destination.tls->verify) what += " (certificate NOT verified)";
      }
      logInfo(what);
    }
    std::string outbound_target;
    switch (settings.outbound_mode) {
      case DataPathSettings::OutboundMode::kUpstream:
        outbound_target =
            addressText(settings.outbound_upstream.host, settings.outbound_upstream.port);
        break;
      case DataPathSettings::OutboundMode::kHost:
        outbound_target = "the host each request names";
        break;
      case DataPathSettings::OutboundMode::kOriginalDestination:
        outbound_target =
            "the original destination (a connection not redirected: the host each request "
            "names)";
        break;
    }
    logInfo("outbound listener " +
            addressText(settings.outbound.host, pool_->port(ListenerRole::kOutbound)) + " -> " +
            outbound_target);
    logInfo("admin listener http://" + addressText(admin_options.address, admin_->port()) +
            " (/metrics /healthz /readyz /debug/spans)");
    if (config_.tracing.sdk_disabled) {
      logInfo("OTEL_SDK_DISABLED: no span is made or exported; the incoming context goes on as "
              "it came");
    } else {
      logInfo("exporter: " +
              describeExporter(config_.exporter.settings, config_.exporter.batch));
      logInfo("sampler: " + sampler_.describe());
    }
    logInfo("trust_incoming_context: " + config_.tracing.trust_incoming_context.toString() +
            (config_.tracing.drop_untrusted_baggage ? " (untrusted baggage dropped)" : ""));

    uv_signal_init(&loop_, &sigterm_);
    uv_signal_init(&loop_, &sigint_);
    uv_signal_init(&loop_, &sighup_);
    uv_async_init(&loop_, &stopped_, onStopped);
    uv_timer_init(&loop_, &reload_timer_);
    sigterm_.data = sigint_.data = sighup_.data = stopped_.data = this;
    reload_timer_.data = this;
    handles_open_ = true;
    if (!tls_files_.empty()) {
      const auto interval = static_cast<uint64_t>(config_.tls.reload_interval.count());
      uv_timer_start(&reload_timer_, &Runner::onReloadTimer, interval, interval);
      // Certificate files are watched, but must not keep the loop alive on their own.
      uv_unref(reinterpret_cast<uv_handle_t*>(&reload_timer_));
    }
    uv_signal_start(&sigterm_, onSignal, SIGTERM);
    uv_signal_start(&sigint_, onSignal, SIGINT);
    uv_signal_start(&sighup_, onSignal, SIGHUP);

    // Last: a caller that sees the file finds the signals handled and every line above logged.
    if (const std::string error = writeReadyFile(); !error.empty()) {
      logError(error);
      exit_code = 1;
      pool_->stop(std::chrono::milliseconds(0));
      closeLoopHandles();
    } else {
      admin_->setReadiness(Readiness::kReady);
    }
  }
  if (exit_code != 0) admin_->stop();
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (drain_thread_.joinable()) drain_thread_.join();
  if (processor_) processor_->shutdown(config_.exporter.batch.export_timeout);
  admin_.reset();
  uv_loop_close(&loop_);
  return exit_code;
}

}  // namespace

int runProxy(const ConfigFlags& flags, const RunOptions& options) {
  LoadedConfig loaded = loadConfig(flags);
  for (const std::string& warning : loaded.warnings) {
    log(LogLevel::kWarn, "config", warning);
  }
  if (!loaded.ok()) {
    for (const std::string& error : loaded.errors) std::fprintf(stderr, "%s\n", error.c_str());
    std::fprintf(stderr, "tracecar: %zu configuration error%s\n", loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s");
    return 2;
  }
  absl::StatusOr<sampling::Sampler> sampler = samplerFrom(loaded.config);
  if (!sampler.ok()) {  // never: loadConfig checked it
    std::fprintf(stderr, "sampling: %s\n", std::string(sampler.status().message()).c_str());
    return 2;
  }
  Runner runner(std::move(loaded.config), std::move(loaded.origins), options,
                *std::move(sampler));
  return runner.run();
}

}  // namespace tracecar::proxy
