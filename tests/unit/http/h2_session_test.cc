#include "http/h2_session.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "unit/http/h2_session_pair.h"

namespace tracecar::http {
namespace {

using namespace h2_test;  // NOLINT: the pair and its helpers

class H2RoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(H2RoundTrip, RequestAndResponseWithHeadersAndBody) {
  Pair p;
  H2Head req = request("GET", "/users/7?x=1");
  req.headers.add("Accept", "text/plain");  // mixed case goes out lowercase
  req.headers.add("Connection", "keep-alive");  // HTTP/1.1 only: never sent
  req.headers.add("te", "trailers");
  auto id = p.client->submitRequest(req, true);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 1);
  p.pump(GetParam());
  EXPECT_EQ(p.server_events.events,
            (std::vector<std::string>{
                "headers 1 GET http example.test /users/7?x=1 [accept: text/plain] [te: trailers]",
                "end 1"}));
  H2Head resp = response(200);
  resp.headers.add("content-type", "text/plain");
  ASSERT_TRUE(p.server->submitResponse(1, resp, false).ok());
  ASSERT_TRUE(p.server->submitData(1, "hello ", false).ok());
  p.pump(GetParam());
  ASSERT_TRUE(p.server->submitData(1, "world", true).ok());
  p.pump(GetParam());
  EXPECT_EQ(p.client_events.events,
            (std::vector<std::string>{"headers 1 200 [content-type: text/plain]",
                                      "data 1 hello world", "end 1",
                                      "close 1 NO_ERROR done"}));
  EXPECT_EQ(p.server_events.events.back(), "close 1 NO_ERROR done");
  EXPECT_EQ(p.server->openStreams(), 0u);
  EXPECT_EQ(p.client->openStreams(), 0u);
  EXPECT_EQ(p.server->counters().streams_opened, 1u);
  EXPECT_EQ(p.client->counters().streams_opened, 1u);
  EXPECT_FALSE(p.client->failed());
  EXPECT_FALSE(p.server->failed());
}

TEST_P(H2RoundTrip, BodiesInManyChunksBothWays) {
  Pair p;
  auto id = p.client->submitRequest(request("POST", "/upload"), false);
  ASSERT_TRUE(id.ok());
  std::string sent;
  for (int i = 0; i < 50; ++i) {
    const std::string chunk = "chunk-" + std::to_string(i) + ";";
    sent += chunk;
    ASSERT_TRUE(p.client->submitData(*id, chunk, i == 49).ok());
    if (i % 7 == 0) p.pump(GetParam());
  }
  p.pump(GetParam());
  EXPECT_EQ(p.server_events.bodies[1], sent);
  EXPECT_EQ(p.server_events.only("end"), std::vector<std::string>{"end 1"});

  ASSERT_TRUE(p.server->submitResponse(1, response(201), false).ok());
  std::string answer;
  for (int i = 0; i < 40; ++i) {
    const std::string chunk(static_cast<size_t>(100 + i), static_cast<char>('a' + i % 26));
    answer += chunk;
    ASSERT_TRUE(p.server->submitData(1, chunk, false).ok());
  }
  ASSERT_TRUE(p.server->submitData(1, "", true).ok());
  p.pump(GetParam());
  EXPECT_EQ(p.client_events.bodies[1], answer);
  EXPECT_EQ(p.client_events.only("close"), std::vector<std::string>{"close 1 NO_ERROR done"});
}

TEST_P(H2RoundTrip, TrailersBothWays) {
  Pair p;
  auto id = p.client->submitRequest(request("POST", "/svc/Method"), false);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(p.client->submitData(*id, "abc", false).ok());
  HeaderMap request_trailers;
  request_trailers.add("x-checksum", "42");
  ASSERT_TRUE(p.client->submitTrailers(*id, request_trailers).ok());
  EXPECT_FALSE(p.client->submitData(*id, "late", false).ok());
  p.pump(GetParam());
  EXPECT_EQ(p.server_events.events,
            (std::vector<std::string>{"headers 1 POST http example.test /svc/Method",
                                      "data 1 abc", "trailers 1 [x-checksum: 42]", "end 1"}));

  ASSERT_TRUE(p.server->submitResponse(1, response(200), false).ok());
  HeaderMap trailers;
  trailers.add("grpc-status", "0");
  trailers.add("Grpc-Message", "ok");
  ASSERT_TRUE(p.server->submitTrailers(1, trailers).ok());  // no body at all
  p.pump(GetParam());
  EXPECT_EQ(p.client_events.events,
            (std::vector<std::string>{"headers 1 200",
                                      "trailers 1 [grpc-status: 0] [grpc-message: ok]", "end 1",
                                      "close 1 NO_ERROR done"}));
}

INSTANTIATE_TEST_SUITE_P(WholeOrByteAtATime, H2RoundTrip, ::testing::Bool());

TEST(H2Session, InformationalHeadBeforeTheFinalOne) {
  Pair p;
  ASSERT_TRUE(p.client->submitRequest(request("GET", "/"), true).ok());
  p.pump();
  ASSERT_TRUE(p.server->submitResponse(1, response(103), false).ok());
  ASSERT_TRUE(p.server->submitResponse(1, response(204), true).ok());
  p.pump();
  EXPECT_EQ(p.client_events.events,
            (std::vector<std::string>{"headers 1 103", "headers 1 204", "end 1",
                                      "close 1 NO_ERROR done"}));
}

TEST(H2Session, ClientResetReachesTheServerAsResetByPeer) {
  Pair p;
  auto id = p.client->submitRequest(request("POST", "/slow"), false);
  ASSERT_TRUE(id.ok());
  p.pump();
  ASSERT_TRUE(p.client->resetStream(*id, H2ErrorCode::kCancel).ok());
  p.pump();
  EXPECT_EQ(p.server_events.events,
            (std::vector<std::string>{"headers 1 POST http example.test /slow",
                                      "close 1 CANCEL reset_by_peer"}));
  EXPECT_EQ(p.client_events.events,
            (std::vector<std::string>{"close 1 CANCEL reset_locally"}));
  EXPECT_EQ(p.server->counters().premature_resets, 1u);
  EXPECT_FALSE(p.server->submitResponse(1, response(200), true).ok());  // gone
}

TEST(H2Session, ServerResetReachesTheClientAsResetByPeer) {
  Pair p;
  auto id = p.client->submitRequest(request("GET", "/"), true);
  ASSERT_TRUE(id.ok());
  p.pump();
  ASSERT_TRUE(p.server->resetStream(1, H2ErrorCode::kRefusedStream).ok());
  p.pump();
  EXPECT_EQ(p.client_events.events,
            (std::vector<std::string>{"close 1 REFUSED_STREAM reset_by_peer"}));
  EXPECT_EQ(p.server_events.only("close"),
            std::vector<std::string>{"close 1 REFUSED_STREAM reset_locally"});
  EXPECT_EQ(p.server->counters().premature_resets, 0u);
}

TEST(H2Session, GracefulGoawayLetsOpenStreamsFinishAndRefusesLaterOnes) {
  Pair p;
  ASSERT_TRUE(p.client->submitRequest(request("GET", "/a"), true).ok());
  p.pump();
  p.server->sendGoaway();
  // Sent before the GOAWAY arrives: past its last stream id, so never processed.
  auto late = p.client->submitRequest(request("GET", "/b"), true);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(*late, 3);
  p.pump();
  EXPECT_TRUE(p.client->goawayReceived());
  EXPECT_FALSE(p.client->canOpenStream());
  EXPECT_FALSE(p.client->submitRequest(request("GET", "/c"), true).ok());
  EXPECT_EQ(p.client_events.events,
            (std::vector<std::string>{"goaway 1 NO_ERROR", "close 3 REFUSED_STREAM refused"}));
  EXPECT_FALSE(p.server->finished());
  ASSERT_TRUE(p.server->submitResponse(1, response(200), false).ok());
  ASSERT_TRUE(p.server->submitData(1, "bye", true).ok());
  p.pump();
  EXPECT_EQ(p.client_events.only("close 1"), std::vector<std::string>{"close 1 NO_ERROR done"});
  EXPECT_EQ(p.client_events.bodies[1], "bye");
  EXPECT_EQ(p.server_events.only("headers"),
            std::vector<std::string>{"headers 1 GET http example.test /a"});
  EXPECT_TRUE(p.server->finished());
  EXPECT_TRUE(p.client->finished());
}

TEST(H2Session, ShutdownNoticeThenGoaway) {
  Pair p;
  ASSERT_TRUE(p.client->submitRequest(request("GET", "/a"), true).ok());
  p.pump();
  p.server->sendShutdownNotice();
  p.pump();
  EXPECT_EQ(p.client_events.events, std::vector<std::string>{"goaway 2147483647 NO_ERROR"});
  // Still allowed: the notice refuses nothing yet.
  ASSERT_TRUE(p.server->submitResponse(1, response(200), true).ok());
  p.server->sendGoaway();
  p.pump();
  EXPECT_EQ(p.client_events.only("goaway").back(), "goaway 1 NO_ERROR");
  EXPECT_EQ(p.client_events.only("close"), std::vector<std::string>{"close 1 NO_ERROR done"});
}

TEST(H2Session, ASlowReaderHoldsTheSenderToTheWindow) {
  Pair p;
  p.server_events.auto_consume = false;
  auto id = p.client->submitRequest(request("POST", "/big"), false);
  ASSERT_TRUE(id.ok());
  const std::string body(200000, 'x');
  ASSERT_TRUE(p.client->submitData(*id, body, true).ok());
  p.pump();
  // The stream window (65535) is all that crossed; the rest waits in the client.
  EXPECT_EQ(p.server_events.bodies[1].size(), 65535u);
  EXPECT_EQ(p.client->pendingData(*id), body.size() - 65535u);
  const size_t quiet_bytes = p.c2s_bytes;
  p.pump();
  EXPECT_EQ(p.c2s_bytes, quiet_bytes);  // nothing moves without consume()

  for (int i = 0; i < 100 && p.server_events.bodies[1].size() < body.size(); ++i) {
    p.server->consume(1, p.server_events.unconsumed[1]);
    p.server_events.unconsumed[1] = 0;
    p.pump();
  }
  EXPECT_EQ(p.server_events.bodies[1], body);
  EXPECT_EQ(p.client->pendingData(*id), 0u);
  EXPECT_EQ(p.server_events.only("end"), std::vector<std::string>{"end 1"});
}

TEST(H2Session, ConnectionWindowBoundsAllStreamsTogether) {
  H2Settings server;
  server.initial_window_size = 40000;
  server.connection_window_size = 100000;
  Pair p(server);
  p.server_events.auto_consume = false;
  const std::string body(60000, 'y');
  for (int i = 0; i < 4; ++i) {
    auto id = p.client->submitRequest(request("POST", "/"), false);
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(p.client->submitData(*id, body, true).ok());
  }
  p.pump();
  size_t received = 0;
  for (const auto& [id, b] : p.server_events.bodies) {
    EXPECT_LE(b.size(), 40000u) << id;
    received += b.size();
  }
  EXPECT_EQ(received, 100000u);
}

TEST(H2Session, PeerMaxConcurrentStreamsIsVisibleToTheClient) {
  H2Settings server;
  server.max_concurrent_streams = 2;
  Pair p(server);
  p.pump();
  EXPECT_EQ(p.client->peerMaxConcurrentStreams(), 2u);
  EXPECT_EQ(p.client_events.peer_settings, 1);
  ASSERT_TRUE(p.client->submitRequest(request("GET", "/1"), true).ok());
  EXPECT_TRUE(p.client->canOpenStream());
  ASSERT_TRUE(p.client->submitRequest(request("GET", "/2"), true).ok());
  EXPECT_FALSE(p.client->canOpenStream());
  p.pump();
  ASSERT_TRUE(p.server->submitResponse(1, response(200), true).ok());
  p.pump();
  EXPECT_TRUE(p.client->canOpenStream());
}

// Request fields other than x-big: :method GET (42) :scheme http (43) :authority example.test
// (54) :path / (38); x-big adds 5 + n + 32.
constexpr size_t kRequestBaseBytes = 42 + 43 + 54 + 38 + 37;

TEST(H2Session, HeaderListAtTheLimitIsAccepted) {
  H2Settings server;
  server.max_header_list_bytes = 4096;
  Pair p(server);
  H2Head req = request("GET", "/");
  req.headers.add("x-big", std::string(4096 - kRequestBaseBytes, 'v'));
  ASSERT_TRUE(p.client->submitRequest(req, true).ok());
  p.pump();
  ASSERT_EQ(p.server_events.only("headers").size(), 1u);
  EXPECT_EQ(p.server_events.heads[1], 4096u);
  EXPECT_EQ(p.server->counters().headers_too_large, 0u);
}

TEST(H2Session, HeaderListOverTheLimitIsAnswered431) {
  H2Settings server;
  server.max_header_list_bytes = 4096;
  Pair p(server);
  H2Head req = request("POST", "/");
  req.headers.add("x-big", std::string(4096 - kRequestBaseBytes + 1, 'v'));
  auto id = p.client->submitRequest(req, false);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(p.client->submitData(*id, std::string(1000, 'b'), true).ok());
  p.pump();
  EXPECT_TRUE(p.server_events.events.empty());  // answered without the owner
  EXPECT_EQ(p.server->counters().headers_too_large, 1u);
  EXPECT_EQ(p.client_events.only("headers"),
            std::vector<std::string>{"headers 1 431 [content-length: 0]"});
  EXPECT_EQ(p.client_events.only("close").size(), 1u);
  // The connection goes on.
  ASSERT_TRUE(p.client->submitRequest(request("GET", "/ok"), true).ok());
  p.pump();
  EXPECT_EQ(p.server_events.only("headers"),
            std::vector<std::string>{"headers 3 GET http example.test /ok"});
}

TEST(H2Session, DefaultLimitIs60KiB) {
  Pair p;
  H2Head req = request("GET", "/");
  req.headers.add("x-big", std::string(60 * 1024 - kRequestBaseBytes + 1, 'v'));
  ASSERT_TRUE(p.client->submitRequest(req, true).ok());
  p.pump();
  EXPECT_EQ(p.server->counters().headers_too_large, 1u);
  EXPECT_EQ(p.client_events.only("headers"),
            std::vector<std::string>{"headers 1 431 [content-length: 0]"});
}

TEST(H2Session, ResponseHeaderListOverTheClientLimitResetsTheStream) {
  H2Settings client;
  client.max_header_list_bytes = 1024;
  Pair p({}, client);
  ASSERT_TRUE(p.client->submitRequest(request("GET", "/"), true).ok());
  p.pump();
  H2Head resp = response(200);
  resp.headers.add("x-big", std::string(2000, 'r'));
  ASSERT_TRUE(p.server->submitResponse(1, resp, false).ok());
  ASSERT_TRUE(p.server->submitData(1, "body", false).ok());  // still open when the reset comes
  p.pump();
  EXPECT_EQ(p.client_events.events,
            std::vector<std::string>{"close 1 CANCEL headers_too_large"});
  EXPECT_EQ(p.client->counters().headers_too_large, 1u);
  EXPECT_EQ(p.server_events.only("close"),
            std::vector<std::string>{"close 1 CANCEL reset_by_peer"});
}

// max_header_fields counts a head's regular fields: at the limit the head comes, one past it
// the stream is reset as for one over the byte limit.
TEST(H2Session, ResponseFieldsPastTheClientCountResetTheStream) {
  H2Settings client;
  client.max_header_fields = 3;
  for (const int fields : {3, 4}) {
    Pair p({}, client);
    ASSERT_TRUE(p.client->submitRequest(request("GET", "/"), true).ok());
    p.pump();
    H2Head resp = response(200);
    for (int i = 0; i < fields; ++i) resp.headers.add("x-f" + std::to_string(i), "v");
    ASSERT_TRUE(p.server->submitResponse(1, resp, false).ok());
    ASSERT_TRUE(p.server->submitData(1, "body", false).ok());
    p.pump();
    if (fields == 3) {
      EXPECT_EQ(p.client_events.only("headers").size(), 1u);
      EXPECT_EQ(p.client->counters().headers_too_large, 0u);
    } else {
      EXPECT_EQ(p.client_events.events,
                std::vector<std::string>{"close 1 CANCEL headers_too_large"});
      EXPECT_EQ(p.client->counters().headers_too_large, 1u);
    }
  }
}

TEST(H2Session, TrailersOverTheLimitResetTheStream) {
  H2Settings server;
  server.max_header_list_bytes = 1024;
  Pair p(server);
  auto id = p.client->submitRequest(request("POST", "/"), false);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(p.client->submitData(*id, "abc", false).ok());
  HeaderMap trailers;
  trailers.add("x-big", std::string(1000, 't'));
  ASSERT_TRUE(p.client->submitTrailers(*id, trailers).ok());
  p.pump();
  EXPECT_EQ(p.server_events.events,
            (std::vector<std::string>{"headers 1 POST http example.test /", "data 1 abc",
                                      "close 1 CANCEL headers_too_large"}));
  EXPECT_EQ(p.server->counters().headers_too_large, 1u);
  EXPECT_EQ(p.client_events.only("close"),
            std::vector<std::string>{"close 1 CANCEL reset_by_peer"});
}

TEST(H2Session, SubmitsThatCannotWorkAreRefused) {
  Pair p;
  EXPECT_FALSE(p.server->submitRequest(request("GET", "/"), true).ok());
  EXPECT_FALSE(p.client->submitResponse(1, response(200), true).ok());
  EXPECT_FALSE(p.server->submitResponse(1, response(200), true).ok());  // no stream 1
  H2Head bad = request("GET", "/");
  bad.headers.add("x-bad", "a\r\nb");
  EXPECT_FALSE(p.client->submitRequest(bad, true).ok());
  auto id = p.client->submitRequest(request("GET", "/"), true);
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(p.client->submitData(*id, "body", true).ok());  // the head ended it
}

TEST(H2Session, ManyStreamsInterleaved) {
  Pair p;
  std::vector<int32_t> ids;
  for (int i = 0; i < 20; ++i) {
    auto id = p.client->submitRequest(request("POST", "/" + std::to_string(i)), false);
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  for (int round = 0; round < 3; ++round) {
    for (int32_t id : ids) {
      ASSERT_TRUE(p.client->submitData(id, std::to_string(id) + ",", round == 2).ok());
    }
    p.pump();
  }
  for (int32_t id : ids) {
    const std::string s = std::to_string(id) + ",";
    EXPECT_EQ(p.server_events.bodies[id], s + s + s);
    ASSERT_TRUE(p.server->submitResponse(id, response(200), false).ok());
    ASSERT_TRUE(p.server->submitData(id, "r" + std::to_string(id), true).ok());
  }
  p.pump(true);
  for (int32_t id : ids) EXPECT_EQ(p.client_events.bodies[id], "r" + std::to_string(id));
  EXPECT_EQ(p.client_events.only("close").size(), ids.size());
  EXPECT_EQ(p.server->openStreams(), 0u);
}

}  // namespace
}  // namespace tracecar::http
