// A real Prometheus server scrapes the admin server, and its query API shows the series the
// test recorded, with their labels.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "integration/proxy/admin_fixture.h"
#include "integration/support/mini_json.h"

extern char** environ;

namespace tracecar::proxy::testing {
namespace {

constexpr uint64_t kMs = 1000000;
constexpr auto kScrapeDeadline = 30s;

// A Prometheus server in a temporary directory, stopped and cleaned up on destruction.
class PrometheusServer {
 public:
  explicit PrometheusServer(uint16_t target_port) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tracecar-prometheus-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return;  // started() says it did not start
    dir_ = pattern;
    port_ = freePort();
    std::ofstream(dir_ / "prometheus.yml") << "global:\n"
                                              "  scrape_interval: 1s\n"
                                              "  scrape_timeout: 1s\n"
                                              "  evaluation_interval: 1s\n"
                                              "scrape_configs:\n"
                                              "  - job_name: tracecar\n"
                                              "    static_configs:\n"
                                              "      - targets: ['127.0.0.1:"
                                           << target_port << "']\n";
    const std::string config = "--config.file=" + (dir_ / "prometheus.yml").string();
    const std::string storage = "--storage.tsdb.path=" + (dir_ / "data").string();
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
    const std::string log = (dir_ / "prometheus.log").string();

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    std::vector<std::string> args{"prometheus", config, storage, listen};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (::posix_spawnp(&pid_, "prometheus", &actions, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
  }

  ~PrometheusServer() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  bool started() const { return pid_ > 0; }
  uint16_t port() const { return port_; }

  std::string log() const {
    std::ifstream in(dir_ / "prometheus.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // SIGTERM, then SIGKILL if it has not exited within 10 s.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
    pid_ = -1;
  }

 private:
  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

bool hasLabels(const integration::Json& metric,
               const std::vector<std::pair<std::string, std::string>>& labels) {
  for (const auto& [name, value] : labels) {
    if (metric[name].text != value) return false;
  }
  return true;
}

TEST_F(AdminServerTest, RealPrometheusScrapesTheHistogramSeries) {
  ASSERT_TRUE(haveProgram("prometheus")) << "prometheus missing: run scripts/install-deps.sh";
  ASSERT_TRUE(haveProgram("curl")) << "curl missing: run scripts/install-deps.sh";
  for (int i = 0; i < 3; ++i) {
    worker_.recordRequest(HttpRole::kServer, {"GET", "/users/{id}", 200, ""}, 20 * kMs);
  }
  worker_.recordRequest(HttpRole::kServer, {"POST", "/orders", 503, ""}, 2 * kMs);
  worker_.recordRequest(HttpRole::kClient, {"GET", "/users/{id}", 504, "response_timeout"},
                        5000 * kMs);
  startServer();
  server_->setReadiness(Readiness::kReady);

  const auto started = std::chrono::steady_clock::now();
  PrometheusServer prometheus(port_);
  ASSERT_TRUE(prometheus.started());
  const std::string query =
      "curl -sS --max-time 2 'http://127.0.0.1:" + std::to_string(prometheus.port()) +
      "/api/v1/query?query=";

  // Prometheus needs a moment to start, then up to a scrape interval to scrape.
  bool seen = false;
  std::string last;
  while (!seen && std::chrono::steady_clock::now() - started < kScrapeDeadline) {
    const CommandResult result = run(query + "http_server_request_duration_seconds_count'");
    last = result.output;
    const auto json = integration::parseJson(result.output);
    if (result.exit_code == 0 && json && (*json)["status"].text == "success") {
      for (const integration::Json& series : (*json)["data"]["result"].items) {
        if (hasLabels(series["metric"], {{"job", "tracecar"},
                                         {"http_request_method", "GET"},
                                         {"http_route", "/users/{id}"},
                                         {"http_response_status_code", "200"}}) &&
            series["value"][1].text == "3") {
          seen = true;
        }
      }
    }
    if (!seen) std::this_thread::sleep_for(250ms);
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::cout << "prometheus showed the series after " << waited.count() << " ms\n";
  RecordProperty("prometheus_first_series_ms", static_cast<int>(waited.count()));
  ASSERT_TRUE(seen) << "last answer: " << last << "\n--- prometheus log ---\n" << prometheus.log();

  // The other series of the same scrape, with their labels.
  const auto json = integration::parseJson(
      run(query + "http_client_request_duration_seconds_bucket%7Ble%3D%225%22%7D'").output);
  ASSERT_TRUE(json.has_value());
  const integration::Json& client = (*json)["data"]["result"][0];
  EXPECT_TRUE(hasLabels(client["metric"], {{"http_request_method", "GET"},
                                           {"http_route", "/users/{id}"},
                                           {"http_response_status_code", "504"},
                                           {"error_type", "response_timeout"}}))
      << run(query + "http_client_request_duration_seconds_bucket'").output;
  EXPECT_EQ(client["value"][1].text, "1");
  const auto up = integration::parseJson(run(query + "up'").output);
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ((*up)["data"]["result"][0]["value"][1].text, "1");
  prometheus.stop();
}

}  // namespace
}  // namespace tracecar::proxy::testing
