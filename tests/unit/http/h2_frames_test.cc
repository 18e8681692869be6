// HTTP/2 sessions fed hand-built frames: literal bytes in, exact events and bytes out, and the
// flood defences.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "http/h2_session.h"
#include "support/h2_wire.h"
#include "unit/http/header_text.h"

namespace tracecar::http {
namespace {

using namespace h2wire;  // the frame vocabulary of every test here

// :method GET and :scheme http from the static table (indices 2 and 6), then literals.
std::string requestBlock(std::string_view path = "/") {
  return "\x82\x86" + literal(":path", path) + literal(":authority", "a.test");
}

std::string goaway(uint32_t last, uint32_t code) {
  return frame(kGoaway, 0, 0, be32(last) + be32(code));
}

// The client's first bytes: preface and an empty SETTINGS.
std::string clientStart() { return std::string(kPreface) + frame(kSettings, 0, 0, ""); }

struct Frame {
  uint8_t type;
  uint8_t flags;
  uint32_t stream;
  std::string payload;
};

std::vector<Frame> parseFrames(std::string_view bytes) {
  std::vector<Frame> out;
  while (bytes.size() >= 9) {
    auto u = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
    const size_t n = (size_t{u(0)} << 16) | (size_t{u(1)} << 8) | u(2);
    if (bytes.size() < 9 + n) break;
    const uint32_t stream =
        ((uint32_t{u(5)} << 24) | (uint32_t{u(6)} << 16) | (uint32_t{u(7)} << 8) | u(8)) &
        0x7fffffffU;
    out.push_back(Frame{u(3), u(4), stream, std::string(bytes.substr(9, n))});
    bytes.remove_prefix(9 + n);
  }
  EXPECT_TRUE(bytes.empty()) << "a partial frame at the end";
  return out;
}

class Events : public H2SessionCallbacks {
 public:
  void onHeaders(int32_t id, H2Head& head) override {
    std::string e = "headers " + std::to_string(id) + " " + head.method + " " + head.path;
    e += test_support::describe(head.headers);
    events.push_back(e);
    if (answer) session->submitResponse(id, response, true).IgnoreError();
  }
  void onData(int32_t id, std::string_view data) override {
    events.push_back("data " + std::to_string(id) + " " + std::string(data));
    session->consume(id, data.size());
  }
  void onTrailers(int32_t id, HeaderMap&) override {
    events.push_back("trailers " + std::to_string(id));
  }
  void onEndStream(int32_t id) override { events.push_back("end " + std::to_string(id)); }
  void onStreamClose(int32_t id, H2ErrorCode code, H2CloseCause cause) override {
    events.push_back("close " + std::to_string(id) + " " + std::string(h2ErrorCodeName(code)) +
                     " " + std::string(h2CloseCauseName(cause)));
  }
  void onGoaway(int32_t last, H2ErrorCode code, std::string_view) override {
    events.push_back("goaway " + std::to_string(last) + " " + std::string(h2ErrorCodeName(code)));
  }
  void onConnectionError(std::string_view reason) override {
    events.push_back("error " + std::string(reason));
    ++errors;
  }

  H2Session* session = nullptr;
  bool answer = false;
  H2Head response;
  std::vector<std::string> events;
  int errors = 0;
};

// A server session fed literal bytes.
struct Server {
  explicit Server(const H2Settings& settings = {}) {
    session = *H2Session::create(H2Session::Kind::kServer, events, settings);
    events.session = session.get();
    events.response.status = 200;
  }
  std::string out() {
    std::string bytes;
    EXPECT_TRUE(session->send(bytes).ok());
    return bytes;
  }
  Events events;
  std::unique_ptr<H2Session> session;
};

TEST(H2Preface, SniffsTheClientPreface) {
  EXPECT_EQ(sniffH2Preface(kPreface), H2Preface::kYes);
  EXPECT_EQ(sniffH2Preface(std::string(kPreface) + "\x00\x00"), H2Preface::kYes);
  EXPECT_EQ(sniffH2Preface(""), H2Preface::kNeedMore);
  EXPECT_EQ(sniffH2Preface("PRI * HTTP/2.0\r\n"), H2Preface::kNeedMore);
  EXPECT_EQ(sniffH2Preface("PRI * HTTP/1.1\r\n"), H2Preface::kNo);
  EXPECT_EQ(sniffH2Preface("GET / HTTP/1.1\r\n"), H2Preface::kNo);
  EXPECT_EQ(sniffH2Preface("P"), H2Preface::kNeedMore);
  EXPECT_EQ(sniffH2Preface("\x16\x03\x01"), H2Preface::kNo);  // a TLS ClientHello
  EXPECT_TRUE(looksLikeH2Preface(kPreface));
  EXPECT_FALSE(looksLikeH2Preface(kPreface.substr(0, 23)));
}

TEST(H2Frames, ServerGreetsWithItsSettingsAndConnectionWindow) {
  Server s;
  const std::string expected =
      frame(kSettings, 0, 0,
            setting(0x3, 1024) + setting(0x4, 65535) + setting(0x6, 61440) +
                setting(0x1, 4096)) +
      frame(kWindowUpdate, 0, 0, be32(1024 * 1024 - 65535));
  EXPECT_EQ(s.out(), expected);
}

TEST(H2Frames, ClientStartsWithThePrefaceAndRefusesPush) {
  Events events;
  auto client = *H2Session::create(H2Session::Kind::kClient, events);
  std::string out;
  ASSERT_TRUE(client->send(out).ok());
  ASSERT_EQ(out.substr(0, 24), kPreface);
  const std::vector<Frame> frames = parseFrames(std::string_view(out).substr(24));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, kSettings);
  EXPECT_EQ(frames[0].payload, setting(0x3, 1024) + setting(0x4, 65535) + setting(0x6, 61440) +
                                   setting(0x1, 4096) + setting(0x2, 0));
  EXPECT_EQ(frames[1].type, kWindowUpdate);
}

// RFC 9113 sections 8.2.1 and 8.2.2: a response with an uppercase field name or a
// connection-specific field is malformed: the stream is reset, nothing of it reaches the owner.
TEST(H2Frames, MalformedResponseFieldsResetTheStream) {
  for (const std::string& field :
       {literal("X-Upper", "v"), literal("connection", "close"), literal("keep-alive", "5"),
        literal("transfer-encoding", "chunked"), literal("upgrade", "h2c"),
        literal("proxy-connection", "close"), literal("te", "gzip")}) {
    SCOPED_TRACE(field);
    Events events;
    auto client = *H2Session::create(H2Session::Kind::kClient, events);
    events.session = client.get();
    H2Head request;
    request.method = "GET";
    request.scheme = "http";
    request.authority = "a.test";
    request.path = "/";
    const absl::StatusOr<int32_t> id = client->submitRequest(request, true);
    ASSERT_TRUE(id.ok());
    std::string out;
    ASSERT_TRUE(client->send(out).ok());
    // :status 200 is static table entry 8.
    const std::string block = "\x88" + literal("content-type", "text/plain") + field;
    ASSERT_TRUE(client
                    ->receive(frame(kSettings, 0, 0, "") +
                              frame(kHeaders, kEndHeaders | kEndStream, 1, block))
                    .ok());
    out.clear();
    ASSERT_TRUE(client->send(out).ok());
    EXPECT_EQ(events.events, (std::vector<std::string>{"close 1 PROTOCOL_ERROR reset_locally"}));
    bool reset_sent = false;
    for (const Frame& f : parseFrames(out)) {
      if (f.type == kRstStream && f.stream == 1) reset_sent = f.payload == be32(0x1);
    }
    EXPECT_TRUE(reset_sent);
  }
}

TEST(H2Frames, LiteralRequestGivesExactEvents) {
  Server s;
  const std::string block = requestBlock("/x?y=1") + literal("user-agent", "t/1");
  ASSERT_TRUE(s.session->receive(clientStart() + frame(kHeaders, kEndHeaders, 1, block)).ok());
  ASSERT_TRUE(s.session->receive(frame(kData, 0, 1, "hel")).ok());
  ASSERT_TRUE(s.session->receive(frame(kData, kEndStream, 1, "lo")).ok());
  EXPECT_EQ(s.events.events,
            (std::vector<std::string>{"headers 1 GET /x?y=1 [user-agent: t/1]", "data 1 hel",
                                      "data 1 lo", "end 1"}));
}

TEST(H2Frames, AHeaderBlockIsBeingReceivedUntilItsEndHeaders) {
  Server s;
  const std::string block = requestBlock() + literal("x-pad", std::string(300, 'p'));
  ASSERT_TRUE(s.session->receive(clientStart()).ok());
  EXPECT_FALSE(s.session->receivingHeaderBlock());
  const std::string pieces = blockInPieces(1, block, 2);
  const size_t second = 9 + block.size() / 3;  // where the first CONTINUATION starts
  ASSERT_TRUE(s.session->receive(pieces.substr(0, second)).ok());
  EXPECT_TRUE(s.session->receivingHeaderBlock());
  EXPECT_TRUE(s.events.events.empty());
  ASSERT_TRUE(s.session->receive(pieces.substr(second)).ok());
  EXPECT_FALSE(s.session->receivingHeaderBlock());
  EXPECT_EQ(s.events.events.size(), 2u);  // headers, end
}

// RFC 9113 section 8.1: a response complete before its request may stop the request.
TEST(H2Frames, StopRequestBodyResetsWithNoErrorOnceTheResponseEnded) {
  Server s;
  ASSERT_TRUE(s.session->receive(clientStart() + frame(kHeaders, kEndHeaders, 1, requestBlock()) +
                                 frame(kData, 0, 1, "part"))
                  .ok());
  (void)s.out();
  H2Head head;
  head.status = 504;
  ASSERT_TRUE(s.session->submitResponse(1, head, false).ok());
  ASSERT_TRUE(s.session->submitData(1, "late\n", true).ok());
  s.session->stopRequestBody(1);
  std::vector<Frame> frames = parseFrames(s.out());
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].type, kHeaders);
  EXPECT_EQ(frames[1].type, kData);
  EXPECT_EQ(frames[1].flags & kEndStream, kEndStream);
  EXPECT_EQ(frames[2].type, kRstStream);
  EXPECT_EQ(frames[2].payload, be32(0));  // NO_ERROR
  // The exchange was complete: the stream closes as done.
  EXPECT_EQ(s.events.events.back(), "close 1 NO_ERROR done");
  EXPECT_EQ(s.session->openStreams(), 0u);
}

TEST(H2Frames, StopRequestBodyAfterTheRequestEndedSendsNoReset) {
  Server s;
  ASSERT_TRUE(s.session->receive(clientStart() + frame(kHeaders, kEndHeaders, 1, requestBlock()) +
                                 frame(kData, kEndStream, 1, "all"))
                  .ok());
  (void)s.out();
  H2Head head;
  head.status = 200;
  ASSERT_TRUE(s.session->submitResponse(1, head, true).ok());
  s.session->stopRequestBody(1);
  std::vector<Frame> frames = parseFrames(s.out());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, kHeaders);
  EXPECT_EQ(s.events.events.back(), "close 1 NO_ERROR done");
}

TEST(H2Frames, HeaderListOverTheLimitWithABodyToComeIs431ThenResetNoError) {
  H2Settings settings;
  settings.max_header_list_bytes = 100;
  Server s(settings);
  const std::string block = requestBlock() + literal("x-pad", std::string(100, 'p'));
  ASSERT_TRUE(s.session->receive(clientStart() + frame(kHeaders, kEndHeaders, 1, block)).ok());
  std::vector<Frame> frames = parseFrames(s.out());
  ASSERT_GE(frames.size(), 2u);
  EXPECT_EQ(frames[frames.size() - 2].type, kHeaders);  // 431, END_STREAM
  EXPECT_EQ(frames.back().type, kRstStream);
  EXPECT_EQ(frames.back().payload, be32(0));
  EXPECT_TRUE(s.events.events.empty());  // the owner never hears of it
}

TEST(H2Frames, PingIsAnsweredWithTheSameOpaqueData) {
  Server s;
  s.out();
  ASSERT_TRUE(s.session->receive(clientStart() + frame(kPing, 0, 0, "12345678")).ok());
  EXPECT_EQ(s.out(), frame(kSettings, kAck, 0, "") + frame(kPing, kAck, 0, "12345678"));
}

TEST(H2Frames, NotAPrefaceIsAProtocolError) {
  Server s;
  s.out();
  EXPECT_FALSE(s.session->receive("GET / HTTP/1.1\r\nHost: a\r\n\r\n").ok());
  EXPECT_EQ(s.events.errors, 1);
  EXPECT_EQ(s.out(), goaway(0, 0x1));
  EXPECT_EQ(s.session->counters().protocol_errors, 1u);
  EXPECT_TRUE(s.session->finished());
}

TEST(H2Frames, AProtocolErrorFromNghttp2IsReported) {
  Server s;
  s.out();
  // DATA on stream 0 is a connection error (RFC 9113 section 6.1); nghttp2 queues the GOAWAY
  // and the error is reported as it goes out.
  EXPECT_TRUE(s.session->receive(clientStart() + frame(kData, 0, 0, "x")).ok());
  EXPECT_EQ(s.events.errors, 0);
  const std::vector<Frame> frames = parseFrames(s.out());
  EXPECT_EQ(s.events.events, std::vector<std::string>{"error HTTP/2 PROTOCOL_ERROR: DATA: stream_id == 0"});
  EXPECT_TRUE(s.session->failed());
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().type, kGoaway);
  EXPECT_EQ(frames.back().payload.substr(4, 4), be32(0x1));
  EXPECT_TRUE(s.session->finished());
  EXPECT_FALSE(s.session->receive(frame(kPing, 0, 0, "12345678")).ok());
  EXPECT_EQ(s.session->counters().protocol_errors, 1u);
}

// ---- floods ----

// After a flood the answer is exactly one GOAWAY ENHANCE_YOUR_CALM and more input is refused
// without producing anything: memory stays bounded whatever the peer keeps sending.
void expectCalm(Server& s, uint32_t last_stream) {
  EXPECT_TRUE(s.session->failed());
  EXPECT_EQ(s.events.errors, 1);
  EXPECT_EQ(s.out(), goaway(last_stream, 0xb));
  EXPECT_FALSE(s.session->receive(frame(kPing, 0, 0, "12345678")).ok());
  EXPECT_EQ(s.out(), "");
  EXPECT_TRUE(s.session->finished());
}

std::string openAndReset(uint32_t id) {
  return frame(kHeaders, kEndHeaders, id, requestBlock()) + frame(kRstStream, 0, id, be32(0x8));
}

TEST(H2Flood, RapidResetAtTheLimitIsTolerated) {
  Server s;
  std::string bytes = clientStart();
  for (uint32_t i = 0; i < 100; ++i) bytes += openAndReset(2 * i + 1);
  EXPECT_TRUE(s.session->receive(bytes).ok());
  EXPECT_EQ(s.session->counters().premature_resets, 100u);
  EXPECT_EQ(s.session->counters().rapid_reset_floods, 0u);
  EXPECT_FALSE(s.session->failed());
}

TEST(H2Flood, RapidResetPastTheLimitIsCalmedDown) {
  Server s;
  std::string bytes = clientStart();
  for (uint32_t i = 0; i < 101; ++i) bytes += openAndReset(2 * i + 1);
  for (uint32_t i = 101; i < 2000; ++i) bytes += openAndReset(2 * i + 1);  // never looked at
  EXPECT_FALSE(s.session->receive(bytes).ok());
  EXPECT_EQ(s.session->counters().premature_resets, 101u);
  EXPECT_EQ(s.session->counters().rapid_reset_floods, 1u);
  expectCalm(s, 201);
}

TEST(H2Flood, ResetsAmongManyAnsweredStreamsAreNotAFlood) {
  Server s;
  s.events.answer = true;
  std::string bytes = clientStart();
  for (uint32_t i = 0; i < 200; ++i) {
    bytes += frame(kHeaders, kEndHeaders | kEndStream, 2 * i + 1, requestBlock());
  }
  s.events.answer = true;
  ASSERT_TRUE(s.session->receive(bytes).ok());
  s.out();
  s.events.answer = false;
  bytes.clear();
  for (uint32_t i = 200; i < 301; ++i) bytes += openAndReset(2 * i + 1);
  EXPECT_TRUE(s.session->receive(bytes).ok());
  EXPECT_EQ(s.session->counters().premature_resets, 101u);
  EXPECT_EQ(s.session->counters().rapid_reset_floods, 0u);
}

TEST(H2Flood, EightContinuationsAreAccepted) {
  Server s;
  const std::string block = requestBlock() + literal("x-pad", std::string(300, 'p'));
  ASSERT_TRUE(s.session->receive(clientStart() + blockInPieces(1, block, 8)).ok());
  ASSERT_EQ(s.events.events.size(), 2u);
  EXPECT_EQ(s.events.events[1], "end 1");
  EXPECT_EQ(s.session->counters().continuation_floods, 0u);
}

TEST(H2Flood, NineContinuationsAreAFlood) {
  Server s;
  const std::string block = requestBlock() + literal("x-pad", std::string(300, 'p'));
  EXPECT_FALSE(s.session->receive(clientStart() + blockInPieces(1, block, 9)).ok());
  EXPECT_EQ(s.session->counters().continuation_floods, 1u);
  EXPECT_EQ(s.events.events.size(), 1u);  // the error only
  expectCalm(s, 1);
}

TEST(H2Flood, HeaderBlockFarOverTheLimitIsAFlood) {
  H2Settings settings;
  settings.max_header_list_bytes = 4096;
  settings.max_continuations = 1000;
  Server s(settings);
  std::string block = requestBlock();
  for (int i = 0; i < 8; ++i) block += literal("x-pad", std::string(4000, 'p'));
  // 4096 + one 16 KiB frame of slack: the block is cut in 1000-byte frames, so the flood is
  // seen at the CONTINUATION that passes 20480 bytes, not at the end.
  EXPECT_FALSE(s.session->receive(clientStart() + blockInPieces(1, block, block.size() / 1000)).ok());
  EXPECT_EQ(s.session->counters().continuation_floods, 1u);
  expectCalm(s, 1);
}

TEST(H2Flood, SettingsAcksOwedUpToTheLimitAreFine) {
  H2Settings settings;
  settings.max_outbound_acks = 10;
  Server s(settings);
  std::string bytes = clientStart();  // its SETTINGS is the first ACK owed
  for (int i = 0; i < 9; ++i) bytes += frame(kSettings, 0, 0, "");
  EXPECT_TRUE(s.session->receive(bytes).ok());
  EXPECT_EQ(s.session->counters().settings_floods, 0u);
  size_t acks = 0;
  for (const Frame& f : parseFrames(s.out())) acks += f.type == kSettings && f.flags == kAck;
  EXPECT_EQ(acks, 10u);
}

TEST(H2Flood, SettingsFloodPastTheLimit) {
  H2Settings settings;
  settings.max_outbound_acks = 10;
  Server s(settings);
  std::string bytes = clientStart();
  for (int i = 0; i < 10; ++i) bytes += frame(kSettings, 0, 0, "");
  EXPECT_FALSE(s.session->receive(bytes).ok());
  EXPECT_EQ(s.session->counters().settings_floods, 1u);
  EXPECT_EQ(s.session->counters().ping_floods, 0u);
  expectCalm(s, 0);
}

TEST(H2Flood, SettingsWithTooManyEntries) {
  Server ok;
  std::string entries;
  for (int i = 0; i < 32; ++i) entries += setting(0x3, 100);
  EXPECT_TRUE(ok.session->receive(clientStart() + frame(kSettings, 0, 0, entries)).ok());
  EXPECT_EQ(ok.session->counters().settings_floods, 0u);

  Server s;
  entries += setting(0x3, 100);  // 33
  EXPECT_FALSE(s.session->receive(clientStart() + frame(kSettings, 0, 0, entries)).ok());
  EXPECT_EQ(s.session->counters().settings_floods, 1u);
  expectCalm(s, 0);
}

TEST(H2Flood, PingsAnsweredAsTheyComeAreNoFlood) {
  H2Settings settings;
  settings.max_outbound_acks = 10;
  Server s(settings);
  ASSERT_TRUE(s.session->receive(clientStart()).ok());
  s.out();
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(s.session->receive(frame(kPing, 0, 0, "abcdefgh")).ok()) << i;
    ASSERT_EQ(s.out(), frame(kPing, kAck, 0, "abcdefgh"));
  }
  EXPECT_EQ(s.session->counters().ping_floods, 0u);
}

TEST(H2Flood, PingFloodPastTheLimit) {
  H2Settings settings;
  settings.max_outbound_acks = 10;
  Server at_limit(settings);
  std::string bytes = clientStart();  // one ACK owed
  for (int i = 0; i < 9; ++i) bytes += frame(kPing, 0, 0, "abcdefgh");
  EXPECT_TRUE(at_limit.session->receive(bytes).ok());
  EXPECT_EQ(at_limit.session->counters().ping_floods, 0u);

  Server s(settings);
  bytes += frame(kPing, 0, 0, "abcdefgh");
  for (int i = 0; i < 5000; ++i) bytes += frame(kPing, 0, 0, "abcdefgh");
  EXPECT_FALSE(s.session->receive(bytes).ok());
  EXPECT_EQ(s.session->counters().ping_floods, 1u);
  EXPECT_EQ(s.session->counters().settings_floods, 0u);
  expectCalm(s, 0);
}

TEST(H2Flood, EmptyDataFramesUpToTheLimitAreFine) {
  Server s;
  std::string bytes = clientStart() + frame(kHeaders, kEndHeaders, 1, requestBlock());
  for (int i = 0; i < 64; ++i) bytes += frame(kData, 0, 1, "");
  bytes += frame(kData, 0, 1, "x");  // payload ends the run
  for (int i = 0; i < 64; ++i) bytes += frame(kData, 0, 1, "");
  bytes += frame(kData, kEndStream, 1, "");  // END_STREAM is not part of a flood
  EXPECT_TRUE(s.session->receive(bytes).ok());
  EXPECT_EQ(s.session->counters().empty_data_floods, 0u);
  EXPECT_EQ(s.events.events.back(), "end 1");
}

TEST(H2Flood, EmptyDataFloodPastTheLimit) {
  Server s;
  std::string bytes = clientStart() + frame(kHeaders, kEndHeaders, 1, requestBlock());
  for (int i = 0; i < 65; ++i) bytes += frame(kData, 0, 1, "");
  EXPECT_FALSE(s.session->receive(bytes).ok());
  EXPECT_EQ(s.session->counters().empty_data_floods, 1u);
  expectCalm(s, 1);
}

}  // namespace
}  // namespace tracecar::http
