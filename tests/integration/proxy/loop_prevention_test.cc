// The outbound listener never forwards a request to tracecar's own listeners, however their
// address is spelt: the check is made on the resolved addresses, for HTTP/1.1 and HTTP/2
// upstreams alike (docs/data-path.md).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "integration/proxy/data_path_fixture.h"
#include "integration/proxy/h2_translation_fixture.h"

namespace tracecar::integration {
namespace {

using proxy::ListenerRole;
using proxy::LocalReplyReason;

class LoopPreventionTest : public DataPathTest {
 protected:
  uint64_t loopReplies() const {
    return counters().localReplies(ListenerRole::kOutbound, LocalReplyReason::kLoopDetected);
  }
};

// Every one of these reaches the outbound listener itself; the literal 127.0.0.1 was the only
// one refused before the check moved to the resolved addresses.
TEST_F(LoopPreventionTest, EverySpellingOfTheOutboundListenersAddressIs508) {
  startProxyObserved(settings());
  const std::string port = std::to_string(outboundPort());
  const std::vector<std::string> hosts = {"127.1:" + port, "2130706433:" + port,
                                          "0.0.0.0:" + port, "[::ffff:127.0.0.1]:" + port,
                                          "127.0.0.1:" + port};
  for (const std::string& host : hosts) {
    RawConnection c(outboundPort());
    ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: " + host + "\r\n\r\n"));
    const std::optional<RawResponse> response = c.readResponse();
    ASSERT_TRUE(response) << host;
    EXPECT_EQ(response->status, 508) << host;
    EXPECT_EQ(response->body, "the request names this proxy as its destination\n") << host;
  }
  EXPECT_EQ(loopReplies(), hosts.size());
  // One request each: none came back into the listener.
  EXPECT_EQ(counters().requests_total[static_cast<size_t>(ListenerRole::kOutbound)],
            hosts.size());
  EXPECT_EQ(origin_.requests(), 0);
  ASSERT_TRUE(eventually([&] { return recorder_->completed() == hosts.size(); }));
  // A failure of its own kind, for the span's error.type, whether the name alone gave the loop
  // away (127.0.0.1) or its resolved addresses did.
  for (const proxy::RecordedStream& stream : recorder_->streams()) {
    ASSERT_EQ(stream.failures.size(), 1u);
    EXPECT_EQ(stream.failures[0], proxy::UpstreamFailure::kLoopDetected);
  }
}

TEST_F(LoopPreventionTest, AnAbsoluteFormTargetNamingTheListenerIs508) {
  startProxy();
  RawConnection c(outboundPort());
  const std::string authority = "127.1:" + std::to_string(outboundPort());
  ASSERT_TRUE(
      c.send("GET http://" + authority + "/echo HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 508);
  EXPECT_EQ(loopReplies(), 1u);
}

// The inbound listener is one of tracecar's own too: forwarding there would only bring the app's
// own call back to the app through both listeners.
TEST_F(LoopPreventionTest, TheInboundListenerIsRefusedToo) {
  startProxy();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: 127.1:" + std::to_string(inboundPort()) +
                     "\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 508);
  EXPECT_EQ(origin_.requests(), 0);
}

// Other addresses are forwarded as before.
TEST_F(LoopPreventionTest, AnotherPortOnLoopbackIsForwarded) {
  startProxy();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET /echo HTTP/1.1\r\nHost: 127.1:" + std::to_string(origin_.port()) +
                     "\r\n\r\n"));
  const std::optional<RawResponse> response = c.readResponse();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(loopReplies(), 0u);
}

// An HTTP/2 client on the outbound listener gets an HTTP/2 upstream (the same version): its
// connection is refused the same way, before any byte leaves (the loop this prevents grew memory
// by gigabytes a minute).
TEST_F(LoopPreventionTest, AnHttp2RequestNamingTheListenerIs508) {
  startProxy();
  H2TestClient client(outboundPort());
  http::H2Head head;
  head.method = "GET";
  head.scheme = "http";
  head.authority = "127.1:" + std::to_string(outboundPort());
  head.path = "/echo";
  const int32_t id = client.submit(head);
  ASSERT_TRUE(client.waitClosed(id));
  EXPECT_EQ(client.response(id).status, 508);
  EXPECT_EQ(client.response(id).body, "the request names this proxy as its destination\n");
  EXPECT_EQ(loopReplies(), 1u);
  EXPECT_EQ(counters().requests_total[static_cast<size_t>(ListenerRole::kOutbound)], 1u);
}

}  // namespace
}  // namespace tracecar::integration
