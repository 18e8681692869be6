// HTTP/2 through H2DownstreamSession with real peers: nghttp and h2load as clients, nginx as the
// h2c origin.
#include <gtest/gtest.h>

#include <string>

#include "integration/proxy/h2_proxy_fixture.h"

namespace tracecar::integration {
namespace {

using proxy::LocalReplyReason;

H2Proxy::Options optionsFor(uint16_t upstream_port) {
  H2Proxy::Options options;
  options.upstream = {"127.0.0.1", upstream_port};
  return options;
}

TEST(H2ProxyTest, NghttpGetThroughNginxMakesServerSpanAndInjectsTraceparent) {
  NginxOrigin nginx;
  ASSERT_TRUE(nginx.ready());
  H2Proxy proxy(optionsFor(nginx.port()));

  const ProcessResult plain = runProcess({"nghttp", "-t", "10", proxy.url("/")}, 30s);
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, "hello from nginx\n");

  const ProcessResult echoed = runProcess({"nghttp", "-t", "10", proxy.url("/echo-headers")}, 30s);
  EXPECT_EQ(echoed.exit_code, 0) << echoed.err;
  ASSERT_EQ(echoed.out.size(), 56u) << echoed.out;  // a traceparent and a newline
  EXPECT_EQ(echoed.out.substr(0, 3), "00-");

  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == 2; }));
  const std::vector<exporter::SpanRecord> spans = proxy.spans().spans();
  const exporter::SpanRecord& span = spans[0];
  EXPECT_EQ(span.kind, exporter::SpanKind::kServer);
  EXPECT_EQ(span.name, "GET /");
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  EXPECT_EQ(spanAttribute(span, "network.protocol.version"), "2");
  EXPECT_EQ(spanAttribute(span, "url.path"), "/");
  EXPECT_EQ(spanAttribute(span, "server.address"), "127.0.0.1");
  // The traceparent nginx saw names the second span as its parent.
  EXPECT_NE(echoed.out.find(spans[1].span_id.toHex()), std::string::npos);
  EXPECT_EQ(proxy.upstreamConnects(), 1u);  // both requests on one upstream connection
}

TEST(H2ProxyTest, ManyConcurrentStreamsShareOneUpstreamConnection) {
  NginxOrigin nginx;
  ASSERT_TRUE(nginx.ready());
  H2Proxy proxy(optionsFor(nginx.port()));
  const ProcessResult load =
      runProcess({"h2load", "-n", "400", "-c", "2", "-m", "50", proxy.url("/")}, 60s);
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_NE(load.out.find("400 succeeded"), std::string::npos) << load.out;
  EXPECT_NE(load.out.find("400 2xx"), std::string::npos) << load.out;
  EXPECT_EQ(proxy.upstreamConnects(), 1u);
  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == 400; }));
}

TEST(H2ProxyTest, UpstreamMaxConcurrentStreamsOfOneOpensMoreConnections) {
  NginxOrigin nginx(/*max_concurrent_streams=*/1);
  ASSERT_TRUE(nginx.ready());
  H2Proxy proxy(optionsFor(nginx.port()));
  const ProcessResult load =
      runProcess({"h2load", "-n", "60", "-c", "1", "-m", "10", proxy.url("/big")}, 60s);
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_NE(load.out.find("60 succeeded"), std::string::npos) << load.out;
  EXPECT_GE(proxy.upstreamConnects(), 2u);
}

// Streams to two origins, alternating: each goes on the connection to its own origin (the pool
// remembers the destination it looked up last, and must not hand it the other's).
TEST(H2ProxyTest, StreamsToTwoOriginsAlternatingEachUseTheirOwnConnection) {
  NginxOrigin first;
  NginxOrigin second;
  ASSERT_TRUE(first.ready());
  ASSERT_TRUE(second.ready());
  H2Proxy::Options options;
  options.role = proxy::ListenerRole::kOutbound;
  options.route_by_authority = true;
  H2Proxy proxy(std::move(options));
  for (int i = 0; i < 6; ++i) {
    const uint16_t port = i % 2 == 0 ? first.port() : second.port();
    const ProcessResult r = runProcess(
        {"nghttp", "-t", "10", "-H", ":authority: 127.0.0.1:" + std::to_string(port),
         proxy.url("/")},
        30s);
    ASSERT_EQ(r.exit_code, 0) << i << ": " << r.err;
    EXPECT_EQ(r.out, "hello from nginx\n") << i;
  }
  EXPECT_EQ(proxy.upstreamConnects(), 2u);  // one per origin, each reused twice
  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == 6; }));
  const std::vector<exporter::SpanRecord> spans = proxy.spans().spans();
  for (size_t i = 0; i < spans.size(); ++i) {
    const uint16_t port = i % 2 == 0 ? first.port() : second.port();
    EXPECT_EQ(spanAttribute(spans[i], "server.port"), std::to_string(port)) << i;
  }
}

TEST(H2ProxyTest, LargeBodyArrivesWholeAndBufferingStaysBounded) {
  NginxOrigin nginx;
  ASSERT_TRUE(nginx.ready());
  H2Proxy proxy(optionsFor(nginx.port()));
  const ProcessResult big = runProcess({"nghttp", "-t", "20", proxy.url("/big")}, 30s);
  ASSERT_EQ(big.exit_code, 0) << big.err;
  EXPECT_EQ(big.out.size(), 4u * 1024 * 1024);
  const int64_t peak = proxy.read<int64_t>([](proxy::H2Worker&, proxy::DataPathCounters& c) {
    return c.buffered_bytes_peak.load();
  });
  EXPECT_LT(peak, 4 * 64 * 1024);
}

TEST(H2ProxyTest, RefusedUpstreamIsAnswered502OnThatStream) {
  const RefusingPort app;
  ASSERT_NE(app.port(), 0);
  H2Proxy proxy(optionsFor(app.port()));
  const ProcessResult result = runProcess({"nghttp", "-v", "-t", "10", proxy.url("/")}, 30s);
  EXPECT_NE(result.out.find(":status: 502"), std::string::npos) << result.out;
  EXPECT_EQ(proxy.localReplies(LocalReplyReason::kUpstreamRefused), 1u);
  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == 1; }));
  const exporter::SpanRecord span = proxy.spans().spans()[0];
  EXPECT_EQ(span.status_code, exporter::StatusCode::kError);
  EXPECT_EQ(spanAttribute(span, "error.type"), "connection_refused");
}

TEST(H2ProxyTest, UpstreamThatNeverSpeaksHttp2IsAConnectTimeout503) {
  // A listening socket nobody accepts from: the connection completes, no SETTINGS ever come.
  uint16_t port = 0;
  const int fd = listenOnLoopback(port);
  ASSERT_GE(fd, 0);
  H2Proxy::Options options = optionsFor(port);
  options.settings.timeouts.upstream_connect = 300ms;
  H2Proxy proxy(options);
  const ProcessResult result = runProcess({"nghttp", "-v", "-t", "10", proxy.url("/")}, 30s);
  EXPECT_NE(result.out.find(":status: 503"), std::string::npos) << result.out;
  EXPECT_EQ(proxy.localReplies(LocalReplyReason::kConnectTimeout), 1u);
  ::close(fd);
}

}  // namespace
}  // namespace tracecar::integration
