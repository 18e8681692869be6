// The admin server for real: a listening socket on a libuv loop in its own thread, asked by
// curl, checked by promtool, fed garbage over raw sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "exporter/exporter_counters.h"
#include "integration/proxy/admin_fixture.h"
#include "integration/support/mini_json.h"

namespace tracecar::proxy::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMs = 1000000;

TEST_F(AdminServerTest, HealthzAnswersOk) {
  startServer();
  const HttpAnswer answer = curl(port_, "/healthz");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "ok\n");
  EXPECT_EQ(answer.header("content-length"), "3");
  EXPECT_EQ(answer.header("content-type"), "text/plain; charset=utf-8");
}

TEST_F(AdminServerTest, ReadyzFollowsReadinessThroughDrain) {
  startServer();
  HttpAnswer answer = curl(port_, "/readyz");
  EXPECT_EQ(answer.status, 503);
  EXPECT_EQ(answer.body, "not ready\n");
  server_->setReadiness(Readiness::kReady);
  answer = curl(port_, "/readyz");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "ready\n");
  server_->setReadiness(Readiness::kDraining);
  answer = curl(port_, "/readyz");
  EXPECT_EQ(answer.status, 503);
  EXPECT_EQ(answer.body, "draining\n");
  // Health is not readiness.
  EXPECT_EQ(curl(port_, "/healthz").status, 200);
}

TEST_F(AdminServerTest, MetricsServesRecordedSeriesThatPromtoolAccepts) {
  ASSERT_TRUE(haveProgram("promtool")) << "promtool missing: run scripts/install-deps.sh";
  prometheus::BuildCounter()
      .Name("tracecar_registry_test_total")
      .Help("A family of the prometheus-cpp registry, served next to the proxy's.")
      .Register(registry_)
      .Add({{"source", "registry"}})
      .Increment(2);
  exporter::ExporterCounters counters;
  counters.observeLatency(3 * kMs);
  metrics_.setExporterCounters(&counters);
  worker_.recordRequest(HttpRole::kServer, {"GET", "/users/{id}", 200, ""}, 12 * kMs);
  worker_.recordRequest(HttpRole::kClient, {"GET", "/users/{id}", 503, "connect_timeout"}, kMs);
  worker_.recordRequest(HttpRole::kServer, {"GET", "/quote\"and\\slash", 404, ""}, kMs);
  worker_.requestRejected(Listener::kInbound, RejectReason::kBaggage);
  worker_.spanStarted(HttpRole::kServer, true);
  startServer();

  const HttpAnswer answer = curl(port_, "/metrics");
  ASSERT_EQ(answer.status, 200);
  EXPECT_EQ(answer.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(answer.header("content-length"), std::to_string(answer.body.size()));
  const std::string& text = answer.body;
  EXPECT_THAT(text, HasSubstr("http_server_request_duration_seconds_bucket{http_request_method="
                              "\"GET\",http_route=\"/users/{id}\",http_response_status_code="
                              "\"200\",le=\"0.025\"} 1"));
  EXPECT_THAT(text, HasSubstr("error_type=\"connect_timeout\""));
  EXPECT_THAT(text, HasSubstr("tracecar_requests_rejected_total{listener=\"inbound\","
                              "reason=\"431_baggage\"} 1"));
  EXPECT_THAT(text, HasSubstr("tracecar_registry_test_total{source=\"registry\"} 2"));
  EXPECT_THAT(text, HasSubstr("tracecar_exporter_export_duration_seconds_count 1"));
  // The admin connection serving this very scrape is counted.
  EXPECT_THAT(text, HasSubstr("tracecar_connections_open{listener=\"admin\"} 1"));

  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("tracecar-metrics-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file) << text;
  const CommandResult check = run("promtool check metrics < '" + file.string() + "'");
  std::filesystem::remove(file);
  EXPECT_EQ(check.exit_code, 0) << check.output << "\n--- metrics ---\n" << text;
}

TEST_F(AdminServerTest, HeadAnswersLikeGetWithoutTheBody) {
  startServer();
  const HttpAnswer head = curl(port_, "/metrics", "-I");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  ASSERT_TRUE(head.header("content-length").has_value());
  EXPECT_NE(head.header("content-length"), "0");
  // On one connection: the HEAD answer has the GET answer's length and no body, so the GET
  // answer that follows starts right after its head.
  RawClient client(port_);
  ASSERT_TRUE(client.connected());
  client.send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const HttpAnswer raw_head = parseAnswer(client.readAnswer(true));
  const HttpAnswer raw_get = parseAnswer(client.readAnswer());
  EXPECT_EQ(raw_head.status, 200);
  EXPECT_EQ(raw_head.header("content-length"), "3");
  EXPECT_TRUE(raw_head.body.empty());
  EXPECT_EQ(raw_get.status, 200);
  EXPECT_EQ(raw_get.body, "ok\n");
}

TEST_F(AdminServerTest, UnknownPathsAre404AndOtherMethods405) {
  startServer();
  HttpAnswer answer = curl(port_, "/nope");
  EXPECT_EQ(answer.status, 404);
  EXPECT_EQ(answer.header("content-length"), std::to_string(answer.body.size()));
  answer = curl(port_, "/metrics/");
  EXPECT_EQ(answer.status, 404);
  answer = curl(port_, "/metrics", "-X POST -d 'x=1'");
  EXPECT_EQ(answer.status, 405);
  EXPECT_EQ(answer.header("allow"), "GET, HEAD");
  answer = curl(port_, "/healthz", "-X DELETE");
  EXPECT_EQ(answer.status, 405);
  // A query string does not change the page.
  EXPECT_EQ(curl(port_, "/healthz?verbose=1").status, 200);
}

// A client that waits for 100 (Continue) before sending its body gets its answer at once (no
// page takes a body), and the connection closes: the body it may still send is not read as a
// request.
TEST_F(AdminServerTest, ABodyAwaitingContinueIsAnsweredAtOnce) {
  startServer();
  RawClient client(port_);
  ASSERT_TRUE(client.connected());
  client.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
              "Expect: 100-continue\r\n\r\n");
  const HttpAnswer answer = parseAnswer(client.readAnswer());
  EXPECT_EQ(answer.status, 405);
  EXPECT_EQ(answer.header("connection"), "close");
  EXPECT_EQ(client.readToEnd(), "");
  EXPECT_TRUE(client.closed());

  // Without the expectation the body is read (and skipped) as before.
  const HttpAnswer posted = curl(port_, "/metrics", "-X POST -d 'x=1' -H 'Expect:'");
  EXPECT_EQ(posted.status, 405);
}

TEST_F(AdminServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  startServer();
  const std::string url = "'http://127.0.0.1:" + std::to_string(port_);
  const CommandResult result =
      run("curl -sS --max-time 10 -o /dev/null -o /dev/null -o /dev/null "
          "-w '%{num_connects}\\n' " +
          url + "/healthz' " + url + "/metrics' " + url + "/readyz'");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "1\n0\n0\n");  // one connection, reused twice

  // Pipelined requests are answered in order, including one with a body to skip.
  RawClient client(port_);
  ASSERT_TRUE(client.connected());
  client.send(
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(parseAnswer(client.readAnswer()).status, 200);
  EXPECT_EQ(parseAnswer(client.readAnswer()).status, 405);
  EXPECT_EQ(parseAnswer(client.readAnswer()).status, 404);
  const HttpAnswer last = parseAnswer(client.readAnswer());
  EXPECT_EQ(last.status, 503);
  EXPECT_EQ(last.header("connection"), "close");
  EXPECT_EQ(client.readToEnd(), "");
  EXPECT_TRUE(client.closed());
}

TEST_F(AdminServerTest, Http10GetsKeepAliveOnlyWhenAsked) {
  startServer();
  RawClient client(port_);
  client.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  const HttpAnswer first = parseAnswer(client.readAnswer());
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.header("connection"), "keep-alive");
  client.send("GET /healthz HTTP/1.0\r\n\r\n");
  const HttpAnswer second = parseAnswer(client.readAnswer());
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.header("connection"), "close");
  client.readToEnd();
  EXPECT_TRUE(client.closed());
}

TEST_F(AdminServerTest, DebugSpansListsRecentSpansNewestFirst) {
  const exporter::SpanRecord server_span =
      testSpan(1, "GET /users/{id}", exporter::SpanKind::kServer, exporter::StatusCode::kUnset);
  const exporter::SpanRecord client_span =
      testSpan(2, "GET \"quoted\"\n", exporter::SpanKind::kClient, exporter::StatusCode::kError);
  recent_.add(server_span);
  recent_.add(client_span);
  startServer();
  const HttpAnswer answer = curl(port_, "/debug/spans");
  ASSERT_EQ(answer.status, 200);
  EXPECT_EQ(answer.header("content-type"), "application/json");
  const auto json = integration::parseJson(answer.body);
  ASSERT_TRUE(json.has_value()) << answer.body;
  EXPECT_EQ((*json)["total_added"].text, "2");
  const integration::Json& spans = (*json)["spans"];
  ASSERT_EQ(spans.items.size(), 2u);
  const integration::Json& newest = spans[0];
  EXPECT_EQ(newest["name"].text, "GET \"quoted\"\n");
  EXPECT_EQ(newest["kind"].text, "client");
  EXPECT_EQ(newest["status"].text, "error");
  EXPECT_EQ(newest["span_id"].text, "0000000000000002");
  const integration::Json& oldest = spans[1];
  EXPECT_EQ(oldest["trace_id"].text, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(oldest["span_id"].text, "0000000000000001");
  EXPECT_EQ(oldest["name"].text, "GET /users/{id}");
  EXPECT_EQ(oldest["kind"].text, "server");
  EXPECT_EQ(oldest["status"].text, "unset");
  EXPECT_EQ(oldest["start"].text, "2023-11-14T22:13:20.123456790Z");
  EXPECT_EQ(oldest["start_unix_nano"].text, "1700000000123456790");
  EXPECT_EQ(oldest["duration_ns"].text, "2500000");
}

// Each of these gets one answer and the connection closed; the server serves on afterwards.
TEST_F(AdminServerTest, GarbageGetsAnErrorAndTheConnectionClosed) {
  startServer();
  struct Case {
    std::string bytes;
    int status;
  };
  const std::vector<Case> cases{
      {"GARBAGE\r\n\r\n", 400},
      {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400},  // TLS hello
      {"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\nHost: x\n\n", 400},
      {"GET /healthz HTTP/9.9\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"GET /healthz HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", 431},
      {"GET /" + std::string(3000, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
           std::string(20000, 'b'),
       413},
      {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 404},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.bytes.substr(0, 60));
    RawClient client(port_);
    ASSERT_TRUE(client.connected());
    client.send(c.bytes);
    const std::string raw = client.readToEnd();
    EXPECT_TRUE(client.closed());
    const HttpAnswer answer = parseAnswer(raw);
    EXPECT_EQ(answer.status, c.status) << raw.substr(0, 200);
    EXPECT_EQ(answer.header("content-length"), std::to_string(answer.body.size()));
  }
  EXPECT_EQ(curl(port_, "/healthz").status, 200);
  const std::string text = scrape();
  EXPECT_THAT(text, HasSubstr("tracecar_requests_rejected_total{listener=\"admin\","
                              "reason=\"400_bad_request\"} 6"));
  EXPECT_THAT(text, HasSubstr("tracecar_requests_rejected_total{listener=\"admin\","
                              "reason=\"431_header_too_large\"} 1"));
  EXPECT_THAT(text, HasSubstr("tracecar_requests_rejected_total{listener=\"admin\","
                              "reason=\"414_uri_too_long\"} 1"));
}

TEST_F(AdminServerTest, RandomBytesNeverBreakTheServer) {
  AdminServerOptions options;
  options.idle_timeout = 500ms;
  startServer(options);
  std::mt19937 random(20261121);
  const std::string valid = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  constexpr std::string_view kHeaderish = "GET /:\r\n aZ0-";
  for (int i = 0; i < 200; ++i) {
    std::string bytes;
    if (i % 3 == 0) bytes = valid.substr(0, random() % valid.size());
    const size_t length = 1 + random() % 3000;
    for (size_t j = 0; j < length; ++j) {
      // Mostly header-like characters, so that parsing gets past the first byte.
      const uint32_t r = random();
      bytes.push_back(r % 4 == 0 ? static_cast<char>(r >> 8)
                                 : kHeaderish[(r >> 8) % kHeaderish.size()]);
    }
    RawClient client(port_, 3000ms);
    ASSERT_TRUE(client.connected());
    client.send(bytes);
    client.shutdownWrite();
    const std::string raw = client.readToEnd();
    EXPECT_TRUE(client.closed()) << i;
    if (!raw.empty()) {
      EXPECT_THAT(raw, StartsWith("HTTP/1.1 "));
    }
  }
  EXPECT_EQ(curl(port_, "/healthz").status, 200);
}

TEST_F(AdminServerTest, ClientClosingEarlyLeavesTheServerServing) {
  startServer();
  for (int i = 0; i < 20; ++i) {
    RawClient client(port_);
    client.send(i % 2 == 0 ? "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" : "GET /metr");
  }  // closed at once, some with an answer being written
  EXPECT_EQ(curl(port_, "/healthz").status, 200);
}

// Each served once, A first, far enough apart for the server's millisecond clock to tell them
// apart: all idle, A the longest.
std::vector<std::unique_ptr<RawClient>> heldIdle(uint16_t port, int count) {
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < count; ++i) {
    if (i > 0) std::this_thread::sleep_for(20ms);
    held.push_back(std::make_unique<RawClient>(port));
    held.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(parseAnswer(held.back()->readAnswer()).status, 200) << i;
  }
  return held;
}

TEST_F(AdminServerTest, AtTheLimitTheConnectionIdleLongestMakesWay) {
  AdminServerOptions options;
  options.max_connections = 3;
  startServer(options);
  auto held = heldIdle(port_, 3);  // at the limit: all three kept
  ASSERT_EQ(held.size(), 3u);
  std::this_thread::sleep_for(20ms);
  RawClient fourth(port_);  // one past it
  fourth.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(parseAnswer(fourth.readAnswer()).status, 200);
  EXPECT_EQ(held[0]->readToEnd(), "");
  EXPECT_TRUE(held[0]->closed());
  for (int i = 1; i < 3; ++i) {
    held[i]->send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(parseAnswer(held[i]->readAnswer()).status, 503) << i;  // still served
  }
}

// One lingering after its last answer (its FIN sent, the client's awaited) is left to end by
// itself, even when it is the oldest: the idle one goes.
TEST_F(AdminServerTest, AtTheLimitALingeringConnectionIsNotTheOneThatGoes) {
  AdminServerOptions options;
  options.max_connections = 2;
  startServer(options);
  RawClient lingering(port_);
  lingering.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(parseAnswer(lingering.readAnswer()).status, 200);  // we do not close our side
  std::this_thread::sleep_for(20ms);
  auto idle = heldIdle(port_, 1);
  std::this_thread::sleep_for(20ms);
  RawClient third(port_);
  third.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(parseAnswer(third.readAnswer()).status, 200);
  EXPECT_EQ(idle[0]->readToEnd(), "");
  EXPECT_TRUE(idle[0]->closed());
}

// When every connection at the limit is past waiting for a request (here both are lingering
// after their last answer), none is closed for a newcomer: the newcomer is closed at once,
// without an answer, and the next one after a lingering connection ends is served.
TEST_F(AdminServerTest, AtTheLimitWithNoneWaitingTheNewcomerIsClosed) {
  AdminServerOptions options;
  options.max_connections = 2;
  startServer(options);
  auto lingering = std::make_unique<RawClient>(port_);
  std::vector<std::unique_ptr<RawClient>> others;
  lingering->send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(parseAnswer(lingering->readAnswer()).status, 200);
  others.push_back(std::make_unique<RawClient>(port_));
  others.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(parseAnswer(others.back()->readAnswer()).status, 200);

  RawClient refused(port_);  // one past the limit
  refused.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(refused.readToEnd(), "");
  EXPECT_TRUE(refused.closed());

  lingering.reset();  // its end frees a place
  int status = 0;
  for (int attempt = 0; attempt < 100 && status != 200; ++attempt) {
    RawClient next(port_);
    next.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    status = parseAnswer(next.readAnswer()).status;
    if (status != 200) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(status, 200);
}

TEST_F(AdminServerTest, AtTheLimitTheOldestStalledRequestMakesWay) {
  AdminServerOptions options;
  options.max_connections = 3;
  startServer(options);
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 3; ++i) {
    stalled.push_back(std::make_unique<RawClient>(port_));
    stalled.back()->send("GET /healthz HTTP/1.1\r\nHo");
    // Apart on the server's millisecond clock; on a tie the one accepted first counts as older.
    std::this_thread::sleep_for(20ms);
  }
  RawClient probe(port_);
  probe.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(parseAnswer(probe.readAnswer()).status, 200);
  EXPECT_EQ(stalled[0]->readToEnd(), "");  // closed without an answer
  EXPECT_TRUE(stalled[0]->closed());
  stalled[2]->send("st: x\r\n\r\n");
  EXPECT_EQ(parseAnswer(stalled[2]->readAnswer()).status, 200);
}

TEST_F(AdminServerTest, Http11WithoutExactlyOneValidHostIs400) {
  startServer();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"GET /healthz HTTP/1.1\r\n\r\n", "missing Host header\n"},
      {"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host header\n"},
      {"GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n", "invalid Host header\n"},
  };
  for (const auto& [bytes, text] : cases) {
    SCOPED_TRACE(bytes);
    RawClient client(port_);
    client.send(bytes);
    const std::string raw = client.readToEnd();
    EXPECT_TRUE(client.closed());
    const HttpAnswer answer = parseAnswer(raw);
    EXPECT_EQ(answer.status, 400);
    EXPECT_EQ(answer.body, text);
  }
  // HTTP/1.0 needs none; an empty one is valid (RFC 9110, section 7.2).
  RawClient old(port_);
  old.send("GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_EQ(parseAnswer(old.readToEnd()).status, 200);
  RawClient empty(port_);
  empty.send("GET /healthz HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(parseAnswer(empty.readToEnd()).status, 200);
  EXPECT_THAT(scrape(), HasSubstr("tracecar_requests_rejected_total{listener=\"admin\","
                                  "reason=\"400_bad_request\"} 3"));
}

TEST_F(AdminServerTest, IdleConnectionsAndSlowHeadsTimeOut) {
  AdminServerOptions options;
  options.idle_timeout = 1000ms;
  startServer(options);
  // Each client sends as soon as it is connected: well within the timeout, however slow the
  // test thread.
  RawClient slow(port_);
  slow.send("GET /healthz HTTP/1.1\r\nHo");
  RawClient served(port_);
  served.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  RawClient idle(port_);
  EXPECT_EQ(parseAnswer(served.readAnswer()).status, 200);

  EXPECT_EQ(idle.readToEnd(), "");
  EXPECT_TRUE(idle.closed());
  const HttpAnswer timed_out = parseAnswer(slow.readToEnd());
  EXPECT_TRUE(slow.closed());
  EXPECT_EQ(timed_out.status, 408);
  // A served connection is idle again after its answer, and closed in turn.
  EXPECT_EQ(served.readToEnd(), "");
  EXPECT_TRUE(served.closed());
  EXPECT_THAT(scrape(), HasSubstr("tracecar_requests_rejected_total{listener=\"admin\","
                                  "reason=\"408_header_timeout\"} 1"));
}

TEST_F(AdminServerTest, StopClosesOpenConnections) {
  startServer();
  RawClient client(port_);
  client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(parseAnswer(client.readAnswer()).status, 200);
  stopServer();  // returns only once every handle is closed and the loop has ended
  EXPECT_EQ(client.readToEnd(), "");
  EXPECT_TRUE(client.closed());
  RawClient refused(port_);
  EXPECT_FALSE(refused.connected());
}

TEST_F(AdminServerTest, AdminConnectionsAreCounted) {
  startServer();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(curl(port_, "/healthz").status, 200);
  const std::string text = scrape();
  EXPECT_THAT(text, HasSubstr("tracecar_connections_total{listener=\"admin\"} 4"));
  EXPECT_THAT(text, HasSubstr("tracecar_connections_total{listener=\"inbound\"} 0"));
}

TEST(AdminServerStart, BindFailureNamesTheAddress) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    AdminServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    AdminServer first(&loop, options, {});
    ASSERT_TRUE(first.start().ok());
    options.port = first.port();
    AdminServer second(&loop, options, {});
    const absl::Status status = second.start();
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("127.0.0.1:" + std::to_string(first.port())));
    AdminServer bad(&loop, AdminServerOptions{.address = "not-an-ip"}, {});
    EXPECT_EQ(bad.start().code(), absl::StatusCode::kInvalidArgument);
    first.stop();
    second.stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_TRUE(first.closed());
    EXPECT_TRUE(second.closed());
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace tracecar::proxy::testing
