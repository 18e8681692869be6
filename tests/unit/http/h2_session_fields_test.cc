// H2Session's header lists on the way out: fields received over HTTP/2 go out as they came,
// fields the owner added or changed are checked, the bytes nghttp2 sends are the session's own
// copy, and a field whose value keeps changing stays out of the HPACK table.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/h2_session.h"
#include "unit/http/h2_session_pair.h"

namespace tracecar::http {
namespace {

using namespace h2_test;  // NOLINT: the pair and its helpers

class H2FieldsRoundTrip : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(WholeOrByteAtATime, H2FieldsRoundTrip, ::testing::Bool());

// A head received on one connection goes out on another as the proxy sends it: its fields were
// checked when they came, and come out the same.
TEST(H2SessionFields, ReceivedFieldsGoOutUnchangedOnAnotherConnection) {
  Pair in;
  Pair out;
  H2Head req = request("GET", "/relay");
  req.headers.add("X-Mixed-Case", "value one");
  req.headers.add("accept", "*/*");
  req.headers.add("x-empty", "");
  ASSERT_TRUE(in.client->submitRequest(req, true).ok());
  in.pump();
  H2Head relayed = std::move(in.server_events.received.at(1));
  ASSERT_EQ(relayed.headers.size(), 3u);
  for (size_t i = 0; i < relayed.headers.size(); ++i) EXPECT_TRUE(relayed.headers.verified(i));
  relayed.headers.set("x-added", "by the proxy");
  ASSERT_TRUE(out.client->submitRequest(relayed, true).ok());
  out.pump();
  EXPECT_EQ(out.server_events.events.front(),
            "headers 1 GET http example.test /relay [x-mixed-case: value one] [accept: */*] "
            "[x-empty: ] [x-added: by the proxy]");

  // The response's fields go back the same way, with a 1xx head first.
  H2Head early = response(103);
  early.headers.add("link", "</a.css>; rel=preload");
  H2Head answer = response(200);
  answer.headers.add("Content-Type", "text/plain");
  ASSERT_TRUE(out.server->submitResponse(1, early, false).ok());
  ASSERT_TRUE(out.server->submitResponse(1, answer, true).ok());
  out.pump();
  H2Head back = std::move(out.client_events.received.at(1));
  ASSERT_TRUE(in.server->submitResponse(1, back, true).ok());
  in.pump();
  EXPECT_EQ(in.client_events.only("headers"),
            std::vector<std::string>{"headers 1 200 [content-type: text/plain]"});
}

// A field that came checked is checked again once the owner changes its value.
TEST(H2SessionFields, AReceivedFieldChangedByTheOwnerIsCheckedAgain) {
  Pair in;
  H2Head req = request("GET", "/");
  req.headers.add("x-field", "fine");
  ASSERT_TRUE(in.client->submitRequest(req, true).ok());
  in.pump();
  H2Head relayed = in.server_events.received.at(1);
  relayed.headers.set("x-field", "not\r\nfine");
  EXPECT_FALSE(relayed.headers.verified(0));
  Pair out;
  absl::StatusOr<int32_t> id = out.client->submitRequest(relayed, true);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().message(), "invalid HTTP/2 header field \"x-field\"");
  relayed.headers.set("x-field", "fine again");
  EXPECT_TRUE(out.client->submitRequest(relayed, true).ok());
}

// nghttp2 sends the names and values from our own copy, not the caller's head, which may be
// gone by then.
TEST_P(H2FieldsRoundTrip, HeadsSubmittedFromTemporariesAreSentIntact) {
  Pair p;
  constexpr int kRequests = 40;
  for (int i = 0; i < kRequests; ++i) {
    auto head = std::make_unique<H2Head>(request("POST", "/item/" + std::to_string(i)));
    head->headers.add("X-Index", std::to_string(i));
    head->headers.add("x-filler", std::string(static_cast<size_t>(10 + i * 7), 'f'));
    auto id = p.client->submitRequest(*head, false);
    ASSERT_TRUE(id.ok());
    head->headers.clear();
    head->headers.add("x-overwritten", std::string(400, '!'));
    head.reset();
    HeaderMap trailers;
    trailers.add("x-trailer", "t" + std::to_string(i));
    ASSERT_TRUE(p.client->submitData(*id, "body", false).ok());
    ASSERT_TRUE(p.client->submitTrailers(*id, trailers).ok());
  }
  p.pump(GetParam());
  ASSERT_EQ(p.server_events.only("headers").size(), static_cast<size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) {
    const int32_t id = 1 + 2 * i;
    const std::string n = std::to_string(i);
    EXPECT_EQ(p.server_events.only("headers " + std::to_string(id) + " ").at(0),
              "headers " + std::to_string(id) + " POST http example.test /item/" + n +
                  " [x-index: " + n +
                  "] [x-filler: " + std::string(static_cast<size_t>(10 + i * 7), 'f') + "]");
    EXPECT_EQ(p.server_events.only("trailers " + std::to_string(id) + " ").at(0),
              "trailers " + std::to_string(id) + " [x-trailer: t" + n + "]");
    // An interim head and the final one queued together, each from a temporary.
    {
      H2Head early = response(100);
      early.headers.add("x-early", "e" + n);
      ASSERT_TRUE(p.server->submitResponse(id, early, false).ok());
    }
    {
      H2Head final_head = response(200);
      final_head.headers.add("x-final", "f" + n);
      ASSERT_TRUE(p.server->submitResponse(id, final_head, false).ok());
    }
    HeaderMap none;
    ASSERT_TRUE(p.server->submitTrailers(id, none).ok());  // an empty trailer list
  }
  p.pump(GetParam());
  for (int i = 0; i < kRequests; ++i) {
    const std::string id = std::to_string(1 + 2 * i);
    const std::string n = std::to_string(i);
    EXPECT_EQ(p.client_events.only("headers " + id + " "),
              (std::vector<std::string>{"headers " + id + " 100 [x-early: e" + n + "]",
                                        "headers " + id + " 200 [x-final: f" + n + "]"}));
    EXPECT_EQ(p.client_events.only("close " + id + " "),
              std::vector<std::string>{"close " + id + " NO_ERROR done"});
  }
  EXPECT_EQ(p.client->openStreams(), 0u);
  EXPECT_EQ(p.server->openStreams(), 0u);
}

// A field whose value changes on every request (a request id) goes out without indexing, so it
// does not push the fields that stay the same out of the HPACK table.
TEST(H2SessionFields, AFieldThatKeepsChangingDoesNotEvictStableOnes) {
  H2Settings client_settings;
  client_settings.max_encoder_table_size = 200;  // room for one of the two fields below
  Pair p({}, client_settings);
  const std::string stable(100, 'a');
  uint64_t random = 0x9e3779b97f4a7c15ULL;
  size_t last_bytes = 0;
  for (int i = 0; i < 20; ++i) {
    std::string id_value;
    for (int k = 0; k < 100; ++k) {
      random ^= random << 13;
      random ^= random >> 7;
      random ^= random << 17;
      id_value += "0123456789abcdef"[random & 15];
    }
    H2Head req = request("GET", "/");
    req.headers.add("x-stable", stable);
    req.headers.add("x-request-id", id_value);
    ASSERT_TRUE(p.client->submitRequest(req, true).ok());
    const size_t before = p.c2s_bytes;
    p.pump();
    last_bytes = p.c2s_bytes - before;
    EXPECT_EQ(p.server_events.only("headers " + std::to_string(1 + 2 * i) + " ").at(0),
              "headers " + std::to_string(1 + 2 * i) + " GET http example.test / [x-stable: " +
                  stable + "] [x-request-id: " + id_value + "]");
    ASSERT_TRUE(p.server->submitResponse(1 + 2 * i, response(204), true).ok());
    p.pump();
  }
  // The HEADERS frame: x-stable indexed (a byte or two), the request id as a literal (about 75
  // bytes, Huffman-coded); with both literal it would be about 140.
  EXPECT_LT(last_bytes, 110u);
}

}  // namespace
}  // namespace tracecar::http
