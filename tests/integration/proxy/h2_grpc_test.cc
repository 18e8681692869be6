// gRPC through H2DownstreamSession: Python grpcio as server and client (unary, server
// streaming, status codes, trailers-only responses, deadlines, large messages, cancellation,
// GOAWAY both ways), and the spans they make.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <string>

#include "integration/proxy/h2_proxy_fixture.h"

namespace tracecar::integration {
namespace {

using exporter::SpanKind;
using exporter::StatusCode;

H2Proxy::Options optionsFor(uint16_t upstream_port,
                            proxy::ListenerRole role = proxy::ListenerRole::kInbound) {
  H2Proxy::Options options;
  options.upstream = {"127.0.0.1", upstream_port};
  options.role = role;
  return options;
}

// The spans of one gRPC method, by rpc.method.
std::vector<exporter::SpanRecord> spansOf(H2Proxy& proxy, std::string_view method) {
  std::vector<exporter::SpanRecord> out;
  for (exporter::SpanRecord& span : proxy.spans().spans()) {
    if (spanAttribute(span, "rpc.method") == method) out.push_back(std::move(span));
  }
  return out;
}

TEST(H2GrpcTest, UnaryCallMakesAGrpcServerSpan) {
  GrpcServer server;
  ASSERT_NE(server.port(), 0);
  H2Proxy proxy(optionsFor(server.port()));
  std::string err;
  const Json reply = grpcClient(proxy.authority(), {"unary"}, &err);
  EXPECT_EQ(reply["reply"].text, "hello") << err;
  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == 1; }));
  const exporter::SpanRecord span = proxy.spans().spans()[0];
  EXPECT_EQ(span.kind, SpanKind::kServer);
  EXPECT_EQ(span.name, "test.Echo/Unary");
  EXPECT_EQ(spanAttribute(span, "rpc.system"), "grpc");
  EXPECT_EQ(spanAttribute(span, "rpc.service"), "test.Echo");
  EXPECT_EQ(spanAttribute(span, "rpc.method"), "Unary");
  EXPECT_EQ(spanAttribute(span, "rpc.grpc.status_code"), "0");
  EXPECT_EQ(spanAttribute(span, "http.route"), "/test.Echo/Unary");
  EXPECT_EQ(spanAttribute(span, "http.response.status_code"), "200");
  EXPECT_EQ(span.status_code, StatusCode::kUnset);
}

TEST(H2GrpcTest, ServerStreamingCallIsOneSpanCoveringTheStream) {
  GrpcServer server;
  H2Proxy proxy(optionsFor(server.port()));
  const Json reply = grpcClient(proxy.authority(), {"stream", "25"});
  ASSERT_EQ(reply["items"].items.size(), 25u);
  EXPECT_EQ(reply["items"][24].text, "item-24");
  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == 1; }));
  const exporter::SpanRecord span = proxy.spans().spans()[0];
  EXPECT_EQ(spanAttribute(span, "rpc.method"), "ServerStream");
  EXPECT_EQ(spanAttribute(span, "rpc.grpc.status_code"), "0");
  // 25 messages 10 ms apart: the span lasts the whole stream.
  EXPECT_GE(span.end_unix_nano - span.start_unix_nano, 200'000'000u);
}

TEST(H2GrpcTest, StatusCodesFromTrailersAndTrailersOnlyResponses) {
  GrpcServer server;
  H2Proxy proxy(optionsFor(server.port()));
  const std::vector<std::string> codes = {"2", "3", "5", "13", "14"};
  std::vector<std::string> trailers = {"status"};
  trailers.insert(trailers.end(), codes.begin(), codes.end());
  std::vector<std::string> trailers_only = {"trailers_only"};
  trailers_only.insert(trailers_only.end(), codes.begin(), codes.end());
  const Json a = grpcClient(proxy.authority(), trailers);
  const Json b = grpcClient(proxy.authority(), trailers_only);
  for (const std::string& code : codes) {
    EXPECT_EQ(a["codes"][code].text, code) << "status " << code;
    EXPECT_EQ(b["codes"][code].text, code) << "trailers-only " << code;
  }
  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == 2 * codes.size(); }));
  const std::map<std::string, StatusCode> expected = {{"2", StatusCode::kError},
                                                      {"3", StatusCode::kUnset},
                                                      {"5", StatusCode::kUnset},
                                                      {"13", StatusCode::kError},
                                                      {"14", StatusCode::kError}};
  for (std::string_view method : {"Status", "TrailersOnly"}) {
    const std::vector<exporter::SpanRecord> spans = spansOf(proxy, method);
    ASSERT_EQ(spans.size(), codes.size()) << method;
    for (const exporter::SpanRecord& span : spans) {
      const std::string code = spanAttribute(span, "rpc.grpc.status_code");
      ASSERT_TRUE(expected.count(code)) << method << " " << code;
      EXPECT_EQ(span.status_code, expected.at(code)) << method << " " << code;
      if (expected.at(code) == StatusCode::kError) {
        EXPECT_NE(spanAttribute(span, "error.type"), "<absent>");
      }
    }
  }
}

TEST(H2GrpcTest, ClientSpansAreErrorForAnyNonOkCode) {
  GrpcServer server;
  H2Proxy proxy(optionsFor(server.port(), proxy::ListenerRole::kOutbound));
  const Json reply = grpcClient(proxy.authority(), {"trailers_only", "5"});
  EXPECT_EQ(reply["codes"]["5"].text, "5");
  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == 1; }));
  const exporter::SpanRecord span = proxy.spans().spans()[0];
  EXPECT_EQ(span.kind, SpanKind::kClient);
  EXPECT_EQ(span.name, "test.Echo/TrailersOnly");
  EXPECT_EQ(spanAttribute(span, "rpc.grpc.status_code"), "5");
  EXPECT_EQ(span.status_code, StatusCode::kError);
  EXPECT_EQ(spanAttribute(span, "error.type"), "NOT_FOUND");
  EXPECT_EQ(spanAttribute(span, "network.peer.address"), "127.0.0.1");
  EXPECT_EQ(spanAttribute(span, "network.peer.port"), std::to_string(server.port()));
}

TEST(H2GrpcTest, DeadlineExceededReachesTheClientAndEndsTheSpan) {
  GrpcServer server;
  H2Proxy proxy(optionsFor(server.port()));
  const Json reply = grpcClient(proxy.authority(), {"deadline"});
  EXPECT_EQ(reply["code"].text, "4");  // DEADLINE_EXCEEDED
  // The server sees grpc-timeout too: the stream ends with its DEADLINE_EXCEEDED trailers or
  // with the client's RST_STREAM, whichever comes first; one span either way.
  ASSERT_TRUE(waitFor([&] { return proxy.spans().size() == 1; }));
  const std::string code = spanAttribute(proxy.spans().spans()[0], "rpc.grpc.status_code");
  EXPECT_TRUE(code == "4" || code == "<absent>") << code;
}

TEST(H2GrpcTest, SlowResponseIsAnswered504) {
  GrpcServer server;
  H2Proxy::Options options = optionsFor(server.port());
  options.settings.timeouts.upstream_response = 200ms;
  H2Proxy proxy(options);
  // The client waits longer than the server sleeps: only the proxy's timeout can end the call.
  const Json reply = grpcClient(proxy.authority(), {"deadline", "10"});
  EXPECT_EQ(reply["code"].text, "14");  // UNAVAILABLE: grpc's reading of an HTTP 504
  EXPECT_EQ(proxy.localReplies(proxy::LocalReplyReason::kResponseTimeout), 1u);
}

TEST(H2GrpcTest, LargeMessagesBothWaysThroughFlowControl) {
  GrpcServer server;
  H2Proxy proxy(optionsFor(server.port()));
  const std::string size = std::to_string(6 * 1024 * 1024);
  std::string err;
  const Json reply = grpcClient(proxy.authority(), {"big", size}, &err);
  EXPECT_EQ(reply["echo"].text, size) << err;
  EXPECT_TRUE(reply["echo_ok"].boolean);
  EXPECT_EQ(reply["big"].text, size);
}

TEST(H2GrpcTest, ClientCancelIsRelayedToTheServerAsRstStream) {
  GrpcServer server;
  H2Proxy proxy(optionsFor(server.port()));
  const Json reply = grpcClient(proxy.authority(), {"cancel"});
  EXPECT_EQ(reply["got"].text, "3");
  EXPECT_EQ(reply["cancelled"].text, "1");
  EXPECT_GE(proxy.read<uint64_t>([](proxy::H2Worker& w, proxy::DataPathCounters&) {
              return w.counters().resets_to_upstream.load();
            }),
            1u);
}

TEST(H2GrpcTest, UpstreamGoawayLetsTheOpenStreamFinish) {
  GrpcServer server({"--stop-after-first-endless"});
  H2Proxy proxy(optionsFor(server.port()));
  const Json reply = grpcClient(proxy.authority(), {"endless_until_end"});
  EXPECT_EQ(reply["got"].text, "40");
  EXPECT_EQ(reply["code"].text, "0");
  EXPECT_GE(proxy.read<uint64_t>([](proxy::H2Worker& w, proxy::DataPathCounters&) {
              return w.counters().upstream_goaways.load();
            }),
            1u);
}

TEST(H2GrpcTest, DrainSendsGoawayAndTheStreamInFlightFinishes) {
  GrpcServer server;
  H2Proxy proxy(optionsFor(server.port()));
  auto call = std::async(std::launch::async,
                         [&] { return grpcClient(proxy.authority(), {"stream", "60"}); });
  ASSERT_TRUE(waitFor([&] {
    return proxy.read<size_t>([](proxy::H2Worker& w, proxy::DataPathCounters&) {
             return w.sessions().size();
           }) == 1;
  }));
  // The stream is open (its head was read) before the drain starts.
  ASSERT_TRUE(waitFor([&] {
    return proxy.read<uint64_t>([](proxy::H2Worker&, proxy::DataPathCounters& c) {
             uint64_t heads = 0;
             for (const auto& n : c.requests_total) heads += n.load();
             return heads;
           }) >= 1;
  }));
  proxy.onLoop([](proxy::H2Worker& w, proxy::DataPathCounters&) { w.drain(); });
  const Json reply = call.get();
  EXPECT_EQ(reply["items"].items.size(), 60u);
  EXPECT_TRUE(waitFor([&] {
    return proxy.read<size_t>([](proxy::H2Worker& w, proxy::DataPathCounters&) {
             return w.sessions().size();
           }) == 0;
  }));
}

}  // namespace
}  // namespace tracecar::integration
