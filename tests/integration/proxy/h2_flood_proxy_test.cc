// HTTP/2 floods through tracecar's own listeners (docs/http2.md, "Floods through the proxy"): the
// data path (a WorkerPool, one worker, both listeners on 127.0.0.1 port 0, sniffing h2c next to
// HTTP/1.1) in front of an HTTP/2 origin in this process. Raw clients write hand-built frames
// (RFC 9113 section 4.1; header blocks of RFC 7541 literals) for each flood at its limit and one
// past it, on the inbound and the outbound listener, and longer floods check what tracecar holds
// while they last. Origins that flood tracecar's upstream connections check the other side.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "http/h2_session.h"
#include "integration/proxy/data_path_fixture.h"
#include "proxy/worker.h"
#include "support/h2_wire.h"

namespace tracecar::integration {
namespace {

using namespace std::chrono_literals;
using proxy::ListenerRole;
using Snapshot = proxy::DataPathSnapshot;
using Clock = std::chrono::steady_clock;
using namespace h2wire;  // the frame vocabulary of every test here

// ---- frames and header blocks ----

constexpr uint32_t kCancel = 0x8;
constexpr uint32_t kEnhanceYourCalm = 0xb;
constexpr size_t kFrameHeaderBytes = 9;
constexpr size_t kPingFrameBytes = kFrameHeaderBytes + 8;
// RFC 7541 Appendix A: ":status: 200" is static entry 8, which an encoder sends as one byte.
constexpr char kStatus200 = '\x88';

std::string repeated(const std::string& unit, size_t n) {
  std::string out;
  out.reserve(unit.size() * n);
  for (size_t i = 0; i < n; ++i) out += unit;
  return out;
}

std::string ping() { return frame(kPing, 0, 0, "tracecar"); }

// :method GET or POST and :scheme http are static entries 2, 3 and 6 (section 6.1, indexed);
// :path and :authority literals on static names 4 and 1.
std::string requestBlock(std::string_view method, std::string_view authority,
                         std::string_view path = "/") {
  return std::string(method == "POST" ? "\x83" : "\x82") + "\x86" + literalIndexedName(4, path) +
         literalIndexedName(1, authority);
}

std::string get(uint32_t id, std::string_view authority, std::string_view path = "/") {
  return frame(kHeaders, kEndHeaders | kEndStream, id, requestBlock("GET", authority, path));
}

std::string openAndReset(uint32_t id, std::string_view authority) {
  return frame(kHeaders, kEndHeaders, id, requestBlock("GET", authority)) +
         frame(kRstStream, 0, id, be32(kCancel));
}

// A GET whose header block is cut into a HEADERS and `continuations` CONTINUATION frames.
std::string getInPieces(uint32_t id, std::string_view authority, size_t continuations) {
  return blockInPieces(id, requestBlock("GET", authority) + literal("x-pad", std::string(300, 'p')),
                       continuations);
}

struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream = 0;
  std::string payload;

  uint32_t word(size_t at) const {
    if (payload.size() < at + 4) return 0xffffffffU;
    auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(payload[i])); };
    return (u(at) << 24) | (u(at + 1) << 16) | (u(at + 2) << 8) | u(at + 3);
  }
  bool is(uint8_t t, uint8_t f) const { return type == t && (flags & f) == f; }
  uint32_t goawayCode() const { return word(4); }
};

// ---- a blocking socket with deadlines ----

class Wire : public RawConnection {
 public:
  // A client of 127.0.0.1:port; receive_buffer > 0 shrinks SO_RCVBUF (a client that reads late).
  explicit Wire(uint16_t port, int receive_buffer = 0)
      : RawConnection(port, "127.0.0.1", receive_buffer) {
    limitSends();
  }
  // An accepted connection.
  static std::unique_ptr<Wire> adopt(int fd) { return std::unique_ptr<Wire>(new Wire(fd)); }

  // What arrives within timeout; empty at EOF, on an error or when nothing came.
  std::string receiveSome(std::chrono::milliseconds timeout) {
    if (buffer_.empty()) fill(Clock::now() + timeout);
    std::string out;
    out.swap(buffer_);
    return out;
  }

  std::optional<Frame> readFrame(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (buffer_.size() >= kFrameHeaderBytes) {
        auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(buffer_[i])); };
        const size_t length = (u(0) << 16) | (u(1) << 8) | u(2);
        if (buffer_.size() >= kFrameHeaderBytes + length) {
          Frame f;
          f.type = static_cast<uint8_t>(u(3));
          f.flags = static_cast<uint8_t>(u(4));
          f.stream = ((u(5) << 24) | (u(6) << 16) | (u(7) << 8) | u(8)) & 0x7fffffffU;
          f.payload = buffer_.substr(kFrameHeaderBytes, length);
          buffer_.erase(0, kFrameHeaderBytes + length);
          return f;
        }
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }

 private:
  explicit Wire(int fd) : RawConnection(fd) { limitSends(); }

  // send() gives up on a peer that takes nothing for 10 s.
  void limitSends() {
    const timeval limit{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  }
};

// Calls on_frame for each frame until it returns false, the peer closes or timeout passes; true
// when the peer closed.
bool readFrames(Wire& wire, const std::function<bool(const Frame&)>& on_frame,
                std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    std::optional<Frame> f = wire.readFrame(left);
    if (!f) return wire.eof();
    if (!on_frame(*f)) return false;
  }
}

// The client preface and an empty SETTINGS; returns once tracecar acknowledged them (its own
// SETTINGS come first and are acknowledged), so that no ACK is owed when the test's frames go.
bool handshake(Wire& wire, std::string_view extra_settings = {}, std::string_view then = {}) {
  if (!wire.send(std::string(kPreface) + frame(kSettings, 0, 0, extra_settings) +
                 std::string(then))) {
    return false;
  }
  bool acked = false;
  readFrames(wire, [&](const Frame& f) {
    if (f.is(kSettings, 0) && (f.flags & kAck) == 0) wire.send(frame(kSettings, kAck, 0, ""));
    acked = f.is(kSettings, kAck);
    return !acked;
  });
  return acked;
}

// What one connection got back.
struct Seen {
  size_t settings_acks = 0;
  size_t ping_acks = 0;
  std::vector<uint32_t> goaway_codes;
  bool status_200 = false;  // on the stream looked at
  std::string body;
  bool ended = false;   // that stream's END_STREAM came
  bool reset = false;   // ... or its RST_STREAM
  bool closed = false;  // tracecar closed the connection

  void add(const Frame& f, uint32_t stream) {
    if (f.is(kSettings, kAck)) ++settings_acks;
    if (f.is(kPing, kAck)) ++ping_acks;
    if (f.type == kGoaway) goaway_codes.push_back(f.goawayCode());
    if (stream == 0 || f.stream != stream) return;
    if (f.type == kHeaders && !f.payload.empty()) status_200 = f.payload[0] == kStatus200;
    if (f.type == kData) body += f.payload;
    if ((f.type == kHeaders || f.type == kData) && (f.flags & kEndStream)) ended = true;
    if (f.type == kRstStream) reset = true;
  }
};

// Frames until the stream ends (or is reset), a GOAWAY comes, or the connection closes.
Seen readResponse(Wire& wire, uint32_t stream) {
  Seen seen;
  seen.closed = readFrames(wire, [&](const Frame& f) {
    seen.add(f, stream);
    return !seen.ended && !seen.reset && f.type != kGoaway;
  });
  return seen;
}

// Every frame until tracecar closes the connection.
Seen readToEnd(Wire& wire, std::chrono::milliseconds timeout = 10s) {
  Seen seen;
  seen.closed = readFrames(
      wire,
      [&](const Frame& f) {
        seen.add(f, 0);
        return true;
      },
      timeout);
  return seen;
}

// ---- an HTTP/2 origin over tracecar's own codec ----

constexpr std::string_view kOriginBody = "hello from the h2 origin\n";
constexpr size_t kBigBody = 4 * 1024 * 1024;

// h2c with prior knowledge on 127.0.0.1, one thread per connection. Answers each request once its
// END_STREAM came: 200 with kOriginBody, or kBigBody bytes for /big. Counts the request heads.
class H2Origin {
 public:
  H2Origin() {
    fd_ = listenOnLoopback(port_);
    if (fd_ < 0) return;
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~H2Origin() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    for (std::thread& t : connections_) t.join();
    if (fd_ >= 0) ::close(fd_);
  }
  H2Origin(const H2Origin&) = delete;
  H2Origin& operator=(const H2Origin&) = delete;

  uint16_t port() const { return port_; }
  int heads() const { return heads_.load(); }

 private:
  class Handler final : public http::H2SessionCallbacks {
   public:
    explicit Handler(std::atomic<int>& heads) : heads_(heads) {}
    http::H2Session* session = nullptr;

    void onHeaders(int32_t id, http::H2Head& head) override {
      ++heads_;
      if (head.path == "/big") big_.push_back(id);
    }
    void onData(int32_t id, std::string_view data) override { session->consume(id, data.size()); }
    void onTrailers(int32_t, http::HeaderMap&) override {}
    void onEndStream(int32_t id) override {
      http::H2Head head;
      head.status = 200;
      head.headers.add("content-type", "text/plain");
      (void)session->submitResponse(id, head, false);
      const bool big = std::find(big_.begin(), big_.end(), id) != big_.end();
      (void)session->submitData(id, big ? std::string(kBigBody, 'b') : std::string(kOriginBody),
                                true);
    }
    void onStreamClose(int32_t, http::H2ErrorCode, http::H2CloseCause) override {}
    void onGoaway(int32_t, http::H2ErrorCode, std::string_view) override {}
    void onConnectionError(std::string_view) override {}

   private:
    std::atomic<int>& heads_;
    std::vector<int32_t> big_;
  };

  void acceptLoop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      connections_.emplace_back([this, client] { serve(client); });
    }
  }

  void serve(int fd) {
    std::unique_ptr<Wire> wire = Wire::adopt(fd);
    Handler handler(heads_);
    auto created = http::H2Session::create(http::H2Session::Kind::kServer, handler);
    if (!created.ok()) return;
    std::unique_ptr<http::H2Session> session = std::move(*created);
    handler.session = session.get();
    while (!stop_) {
      std::string out;
      (void)session->send(out);
      if (!out.empty() && !wire->send(out)) return;
      if (session->finished()) return;
      const std::string in = wire->receiveSome(20ms);
      if (in.empty()) {
        if (wire->eof()) return;
        continue;
      }
      (void)session->receive(in);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> heads_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // the acceptor's until it is joined
};

// ---- a well-behaved client over tracecar's own codec ----

struct Answer {
  int status = 0;  // the final status; 0 when none came
  std::string body;
  bool closed = false;  // the stream closed
  http::H2CloseCause cause = http::H2CloseCause::kDone;
  http::H2ErrorCode code = http::H2ErrorCode::kNoError;
};

// One GET on a fresh connection.
class GetClient final : private http::H2SessionCallbacks {
 public:
  Answer run(uint16_t port, const std::string& authority, const std::string& path) {
    Wire wire(port);
    if (!wire.ok()) return answer_;
    auto created = http::H2Session::create(http::H2Session::Kind::kClient, *this);
    if (!created.ok()) return answer_;
    session_ = std::move(*created);
    http::H2Head head;
    head.method = "GET";
    head.scheme = "http";
    head.authority = authority;
    head.path = path;
    if (!session_->submitRequest(head, true).ok()) return answer_;
    const auto deadline = Clock::now() + 15s;
    while (!answer_.closed && !failed_ && Clock::now() < deadline) {
      std::string out;
      (void)session_->send(out);
      if (!out.empty() && !wire.send(out)) break;
      const std::string in = wire.receiveSome(100ms);
      if (in.empty()) {
        if (wire.eof()) break;
        continue;
      }
      (void)session_->receive(in);
    }
    return answer_;
  }

 private:
  void onHeaders(int32_t, http::H2Head& head) override {
    if (head.status >= 200) answer_.status = head.status;
  }
  void onData(int32_t id, std::string_view data) override {
    answer_.body += data;
    session_->consume(id, data.size());
  }
  void onTrailers(int32_t, http::HeaderMap&) override {}
  void onEndStream(int32_t) override {}
  void onStreamClose(int32_t, http::H2ErrorCode code, http::H2CloseCause cause) override {
    answer_.closed = true;
    answer_.code = code;
    answer_.cause = cause;
  }
  void onGoaway(int32_t, http::H2ErrorCode, std::string_view) override {}
  void onConnectionError(std::string_view) override { failed_ = true; }

  std::unique_ptr<http::H2Session> session_;
  Answer answer_;
  bool failed_ = false;
};

Answer h2Get(uint16_t port, const std::string& authority, const std::string& path = "/") {
  GetClient client;
  return client.run(port, authority, path);
}

// ---- tracecar ----

template <class Done>
bool eventually(Done&& done, std::chrono::milliseconds timeout = 10s) {
  const auto give_up = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > give_up) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// The data path with its defaults (docs/http2.md: the limits every worker runs with) in front of
// an origin.
class Proxy {
 public:
  explicit Proxy(uint16_t app_port) {
    proxy::DataPathSettings s;
    s.inbound = {"127.0.0.1", 0};
    s.outbound = {"127.0.0.1", 0};
    s.app = {"127.0.0.1", app_port};
    s.workers = 1;
    high_water_ = s.high_water_bytes;
    pool_ = std::make_unique<proxy::WorkerPool>(std::move(s));
    status_ = pool_->start();
  }
  ~Proxy() {
    if (status_.ok()) pool_->stop(2s);
  }
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  const absl::Status& status() const { return status_; }
  uint16_t port(ListenerRole role) const { return pool_->port(role); }
  Snapshot snapshot() const { return pool_->snapshot(); }
  size_t highWater() const { return high_water_; }
  int64_t open(ListenerRole role) const {
    return snapshot().connections_open[static_cast<size_t>(role)];
  }
  // Connections close on the worker's thread: wait until none is left on the listener.
  bool allClosed(ListenerRole role) const {
    return eventually([&] { return open(role) == 0; });
  }

 private:
  std::unique_ptr<proxy::WorkerPool> pool_;
  absl::Status status_;
  size_t high_water_ = 0;
};

// An origin and tracecar in front of it. The outbound listener goes where :authority says (its
// connections are not redirected), so every request names the origin.
struct Bed {
  H2Origin origin;
  Proxy proxy{origin.port()};
  std::string authority = "127.0.0.1:" + std::to_string(origin.port());

  bool ok() const { return origin.port() != 0 && proxy.status().ok(); }
  Answer get(ListenerRole role, const std::string& path = "/") {
    return h2Get(proxy.port(role), authority, path);
  }
};

enum class Flood : uint8_t {
  kRapidReset,
  kContinuation,
  kSettingsAcks,     // SETTINGS frames whose ACKs are owed
  kSettingsEntries,  // one SETTINGS frame with too many entries
  kPing,
  kEmptyData,
};

const char* floodName(Flood f) {
  switch (f) {
    case Flood::kRapidReset: return "RapidReset";
    case Flood::kContinuation: return "Continuation";
    case Flood::kSettingsAcks: return "SettingsAcks";
    case Flood::kSettingsEntries: return "SettingsEntries";
    case Flood::kPing: return "Ping";
    case Flood::kEmptyData: return "EmptyData";
  }
  return "?";
}

uint64_t floodCount(const Snapshot::H2Side& side, Flood f) {
  switch (f) {
    case Flood::kRapidReset: return side.rapid_reset_floods;
    case Flood::kContinuation: return side.continuation_floods;
    case Flood::kSettingsAcks:
    case Flood::kSettingsEntries: return side.settings_floods;
    case Flood::kPing: return side.ping_floods;
    case Flood::kEmptyData: return side.empty_data_floods;
  }
  return 0;
}

uint64_t allFloods(const Snapshot::H2Side& side) {
  return side.rapid_reset_floods + side.continuation_floods + side.settings_floods +
         side.ping_floods + side.empty_data_floods;
}

const Snapshot::H2Side& downstream(const Snapshot& s) {
  return s.h2_sides[Snapshot::kH2Downstream];
}
const Snapshot::H2Side& upstream(const Snapshot& s) { return s.h2_sides[Snapshot::kH2Upstream]; }

// One flood at its limit (then a request that must be served) or one past it.
struct Scenario {
  std::string bytes;
  uint32_t served = 0;       // at the limit: the stream whose response comes after the flood
  size_t settings_acks = 0;  // ACKs the flood is owed
  size_t ping_acks = 0;
  int max_streams = 0;  // request heads the flood may open (and send on to the origin)
};

Scenario scenario(Flood kind, bool past, std::string_view authority) {
  const http::H2Settings limits;  // the defaults every worker runs with
  const uint32_t extra = past ? 1 : 0;
  Scenario s;
  switch (kind) {
    case Flood::kRapidReset: {
      const uint32_t n = limits.max_premature_resets + extra;
      for (uint32_t i = 0; i < n; ++i) s.bytes += openAndReset(2 * i + 1, authority);
      s.max_streams = static_cast<int>(n);
      s.served = 2 * n + 1;
      break;
    }
    case Flood::kContinuation:
      s.bytes = getInPieces(1, authority, limits.max_continuations + extra);
      s.served = 1;
      s.max_streams = past ? 0 : 1;
      break;
    case Flood::kSettingsAcks:
      s.settings_acks = limits.max_outbound_acks + extra;
      s.bytes = repeated(frame(kSettings, 0, 0, ""), s.settings_acks);
      s.served = 1;
      break;
    case Flood::kSettingsEntries:
      s.bytes =
          frame(kSettings, 0, 0, repeated(setting(0x3, 100), limits.max_settings_entries + extra));
      s.settings_acks = 1;
      s.served = 1;
      break;
    case Flood::kPing:
      s.ping_acks = limits.max_outbound_acks + extra;
      s.bytes = repeated(ping(), s.ping_acks);
      s.served = 1;
      break;
    case Flood::kEmptyData:
      s.bytes = frame(kHeaders, kEndHeaders, 1, requestBlock("POST", authority)) +
                repeated(frame(kData, 0, 1, ""), limits.max_empty_data_frames + extra);
      if (!past) s.bytes += frame(kData, kEndStream, 1, "");
      s.served = 1;
      s.max_streams = 1;
      break;
  }
  // Floods that carry no request of their own are followed by one at the limit.
  const bool own_request = kind == Flood::kContinuation || kind == Flood::kEmptyData;
  if (!past && !own_request) s.bytes += get(s.served, authority);
  if (past) s.served = 0;
  return s;
}

std::string roleName(ListenerRole role) {
  return role == ListenerRole::kInbound ? "Inbound" : "Outbound";
}

// ---- each flood at its limit and one past it, on both listeners ----

class H2FloodLimitTest : public ::testing::TestWithParam<std::tuple<ListenerRole, Flood>> {};

TEST_P(H2FloodLimitTest, AtTheLimitTheConnectionGoesOnAndTheRequestIsServed) {
  const ListenerRole role = std::get<0>(GetParam());
  const Flood kind = std::get<1>(GetParam());
  Bed bed;
  ASSERT_TRUE(bed.ok());
  const Snapshot before = bed.proxy.snapshot();
  {
    Wire client(bed.proxy.port(role));
    ASSERT_TRUE(handshake(client));
    const Scenario at = scenario(kind, false, bed.authority);
    ASSERT_TRUE(client.send(at.bytes));
    const Seen seen = readResponse(client, at.served);
    EXPECT_TRUE(seen.goaway_codes.empty());
    EXPECT_TRUE(seen.ended);
    EXPECT_FALSE(seen.reset);
    EXPECT_TRUE(seen.status_200);
    EXPECT_EQ(seen.body, kOriginBody);
    EXPECT_EQ(seen.settings_acks, at.settings_acks);
    EXPECT_EQ(seen.ping_acks, at.ping_acks);
  }
  ASSERT_TRUE(bed.proxy.allClosed(role));
  const Snapshot after = bed.proxy.snapshot();
  EXPECT_EQ(allFloods(downstream(after)), allFloods(downstream(before)));
  EXPECT_EQ(downstream(after).protocol_errors, downstream(before).protocol_errors);
  if (kind == Flood::kRapidReset) {
    EXPECT_EQ(downstream(after).premature_resets - downstream(before).premature_resets,
              http::H2Settings{}.max_premature_resets);
  }
}

TEST_P(H2FloodLimitTest, OnePastTheLimitIsOneGoawayEnhanceYourCalmAndOneCount) {
  const ListenerRole role = std::get<0>(GetParam());
  const Flood kind = std::get<1>(GetParam());
  Bed bed;
  ASSERT_TRUE(bed.ok());
  const Snapshot before = bed.proxy.snapshot();
  const Scenario past = scenario(kind, true, bed.authority);
  {
    Wire client(bed.proxy.port(role));
    ASSERT_TRUE(handshake(client));
    ASSERT_TRUE(client.send(past.bytes));
    const Seen seen = readToEnd(client);
    EXPECT_TRUE(seen.closed);
    ASSERT_EQ(seen.goaway_codes.size(), 1u);
    EXPECT_EQ(seen.goaway_codes[0], kEnhanceYourCalm);
    // ACKs the codec had queued are dropped with it.
    EXPECT_EQ(seen.ping_acks, 0u);
    EXPECT_EQ(seen.settings_acks, 0u);
  }
  ASSERT_TRUE(bed.proxy.allClosed(role));
  const Snapshot after = bed.proxy.snapshot();
  EXPECT_EQ(floodCount(downstream(after), kind) - floodCount(downstream(before), kind), 1u);
  EXPECT_EQ(allFloods(downstream(after)) - allFloods(downstream(before)), 1u);
  EXPECT_EQ(allFloods(upstream(after)), allFloods(upstream(before)));
  EXPECT_EQ(downstream(after).protocol_errors, downstream(before).protocol_errors);
  // What the flood made tracecar hold: no stream beyond what the limit lets through, and
  // nothing queued past the high-water mark.
  const auto r = static_cast<size_t>(role);
  EXPECT_LE(after.requests_total[r] - before.requests_total[r],
            static_cast<uint64_t>(past.max_streams));
  EXPECT_LE(bed.origin.heads(), past.max_streams);
  EXPECT_LE(after.buffered_bytes_peak, static_cast<int64_t>(bed.proxy.highWater()));
  EXPECT_EQ(after.buffered_bytes, 0);
  // The listener still serves.
  const Answer next = bed.get(role);
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, kOriginBody);
}

const Flood kAllFloods[] = {Flood::kRapidReset,      Flood::kContinuation, Flood::kSettingsAcks,
                            Flood::kSettingsEntries, Flood::kPing,         Flood::kEmptyData};

INSTANTIATE_TEST_SUITE_P(
    Floods, H2FloodLimitTest,
    ::testing::Combine(::testing::Values(ListenerRole::kInbound, ListenerRole::kOutbound),
                       ::testing::ValuesIn(kAllFloods)),
    [](const ::testing::TestParamInfo<std::tuple<ListenerRole, Flood>>& param) {
      return roleName(std::get<0>(param.param)) + floodName(std::get<1>(param.param));
    });

// ---- floods that go on: what tracecar holds while they last ----

class H2LongFloodTest : public ::testing::TestWithParam<ListenerRole> {};

// The attacker saw one GOAWAY ENHANCE_YOUR_CALM, every connection of the listener is closed, and
// the downstream side counted one flood, of kind, and no other. after: the snapshot then.
void expectCalmed(Bed& bed, const Seen& seen, ListenerRole role, const Snapshot& before,
                  Flood kind, Snapshot& after) {
  ASSERT_EQ(seen.goaway_codes.size(), 1u);
  EXPECT_EQ(seen.goaway_codes[0], kEnhanceYourCalm);
  ASSERT_TRUE(bed.proxy.allClosed(role));
  after = bed.proxy.snapshot();
  EXPECT_EQ(floodCount(downstream(after), kind) - floodCount(downstream(before), kind), 1u);
  EXPECT_EQ(allFloods(downstream(after)) - allFloods(downstream(before)), 1u);
}

TEST_P(H2LongFloodTest, RapidResetOfThousandsOfStreamsIsCutAtTheLimit) {
  const ListenerRole role = GetParam();
  const auto r = static_cast<size_t>(role);
  const uint32_t limit = http::H2Settings{}.max_premature_resets;
  Bed bed;
  ASSERT_TRUE(bed.ok());
  Wire attacker(bed.proxy.port(role));
  ASSERT_TRUE(handshake(attacker));
  const Snapshot before = bed.proxy.snapshot();
  // 5000 streams opened and reset, in writes of 250, while another client makes a request.
  std::thread flood([&] {
    uint32_t id = 1;
    for (int batch = 0; batch < 20; ++batch) {
      std::string bytes;
      for (int i = 0; i < 250; ++i, id += 2) bytes += openAndReset(id, bed.authority);
      if (!attacker.send(bytes)) return;  // tracecar has closed the connection
    }
  });
  const Answer during = bed.get(role);
  flood.join();
  EXPECT_EQ(during.status, 200);
  EXPECT_EQ(during.body, kOriginBody);

  const Seen seen = readToEnd(attacker);
  EXPECT_TRUE(seen.closed);
  Snapshot after;
  ASSERT_NO_FATAL_FAILURE(expectCalmed(bed, seen, role, before, Flood::kRapidReset, after));
  // The reset that passed the limit ended the connection: nothing after it was looked at.
  EXPECT_EQ(downstream(after).premature_resets - downstream(before).premature_resets, limit + 1);
  // Streams opened by the flood (every head beyond the other client's one request), and those
  // that reached the origin, stay within the limit.
  EXPECT_LE(after.requests_total[r] - before.requests_total[r], uint64_t{limit} + 1 + 1);
  EXPECT_LE(bed.origin.heads(), static_cast<int>(limit) + 1 + 1);
  EXPECT_LE(after.buffered_bytes_peak, static_cast<int64_t>(bed.proxy.highWater()));
  EXPECT_EQ(after.buffered_bytes, 0);
  EXPECT_EQ(bed.get(role).status, 200);
}

TEST_P(H2LongFloodTest, ContinuationFloodOfMegabytesIsCutBeforeItsBlockIsHeld) {
  const ListenerRole role = GetParam();
  const auto r = static_cast<size_t>(role);
  Bed bed;
  ASSERT_TRUE(bed.ok());
  Wire attacker(bed.proxy.port(role));
  ASSERT_TRUE(handshake(attacker));
  const Snapshot before = bed.proxy.snapshot();
  // A header block that never ends: 16 KiB frames of small literal fields, up to 16 MiB.
  const std::string fields = repeated(literal("x-flood", std::string(100, 'f')), 145);
  bool cut =
      !attacker.send(frame(kHeaders, kEndStream, 1, requestBlock("GET", bed.authority) + fields));
  for (int i = 0; i < 1024 && !cut; ++i) cut = !attacker.send(frame(kContinuation, 0, 1, fields));
  EXPECT_TRUE(cut) << "tracecar read 16 MiB of one header block";
  Snapshot after;
  ASSERT_NO_FATAL_FAILURE(
      expectCalmed(bed, readToEnd(attacker), role, before, Flood::kContinuation, after));
  EXPECT_EQ(after.requests_total[r], before.requests_total[r]);  // the head never completed
  EXPECT_EQ(bed.origin.heads(), 0);
  EXPECT_LE(after.buffered_bytes_peak, static_cast<int64_t>(bed.proxy.highWater()));
  EXPECT_EQ(bed.get(role).status, 200);
}

TEST_P(H2LongFloodTest, EndlessEmptyDataIsCutAtTheLimit) {
  const ListenerRole role = GetParam();
  const auto r = static_cast<size_t>(role);
  Bed bed;
  ASSERT_TRUE(bed.ok());
  Wire attacker(bed.proxy.port(role));
  ASSERT_TRUE(handshake(attacker));
  const Snapshot before = bed.proxy.snapshot();
  bool cut = !attacker.send(frame(kHeaders, kEndHeaders, 1, requestBlock("POST", bed.authority)));
  const std::string empties = repeated(frame(kData, 0, 1, ""), 1000);
  for (int i = 0; i < 1000 && !cut; ++i) cut = !attacker.send(empties);  // up to 1M frames
  EXPECT_TRUE(cut) << "tracecar read a million empty DATA frames";
  Snapshot after;
  ASSERT_NO_FATAL_FAILURE(
      expectCalmed(bed, readToEnd(attacker), role, before, Flood::kEmptyData, after));
  EXPECT_LE(after.requests_total[r] - before.requests_total[r], 1u);
  EXPECT_LE(bed.origin.heads(), 1);
  EXPECT_LE(after.buffered_bytes_peak, static_cast<int64_t>(bed.proxy.highWater()));
  EXPECT_EQ(bed.get(role).status, 200);
}

INSTANTIATE_TEST_SUITE_P(Listeners, H2LongFloodTest,
                         ::testing::Values(ListenerRole::kInbound, ListenerRole::kOutbound),
                         [](const ::testing::TestParamInfo<ListenerRole>& param) {
                           return roleName(param.param);
                         });

// PING or SETTINGS from a client that does not read: while its socket is over the high-water
// mark tracecar frames nothing, so the ACKs pile up in the codec until there are too many.
// Windows wide open, then a 4 MiB response the attacker does not read: tracecar's queue to it
// passes the high-water mark and stays there. Then the flood, until tracecar counts it.
void floodWithoutReading(Bed& bed, Wire& attacker, Flood kind) {
  ASSERT_TRUE(
      handshake(attacker, setting(0x4, 0x7fffffff),
                frame(kWindowUpdate, 0, 0, be32(0x7fff0000)) + get(1, bed.authority, "/big")));
  ASSERT_TRUE(eventually([&] {
    return bed.proxy.snapshot().buffered_bytes > static_cast<int64_t>(bed.proxy.highWater());
  })) << "the response did not fill tracecar's queue";
  const std::string batch =
      repeated(kind == Flood::kPing ? ping() : frame(kSettings, 0, 0, ""), 100);
  const auto flooded = [&] { return floodCount(downstream(bed.proxy.snapshot()), kind) > 0; };
  for (int i = 0; i < 1000 && !flooded(); ++i) {  // up to 100000 frames
    if (!attacker.send(batch)) break;
  }
  ASSERT_TRUE(eventually(flooded));
}

class H2AckFloodTest : public ::testing::TestWithParam<std::tuple<ListenerRole, Flood>> {};

TEST_P(H2AckFloodTest, FromAClientThatDoesNotReadStaysWithinTheHighWaterMark) {
  const ListenerRole role = std::get<0>(GetParam());
  const Flood kind = std::get<1>(GetParam());
  const http::H2Settings limits;
  Bed bed;
  ASSERT_TRUE(bed.ok());
  Wire attacker(bed.proxy.port(role), /*receive_buffer=*/4096);
  floodWithoutReading(bed, attacker, kind);
  if (HasFatalFailure()) return;
  // While it lasted tracecar queued at most its high-water mark, then one more flush: response
  // data (at most one upstream stream window) and the ACKs one read may owe.
  const int64_t bound = static_cast<int64_t>(bed.proxy.highWater() + 65535 +
                                             limits.max_outbound_acks * kPingFrameBytes + 1024);
  EXPECT_LE(bed.proxy.snapshot().buffered_bytes_peak, bound);
  // Another client is served meanwhile.
  EXPECT_EQ(bed.get(role).status, 200);
  // The attacker reads at last: what was queued for it, and then the end.
  const Seen seen = readToEnd(attacker, 30s);
  EXPECT_TRUE(seen.closed);
  EXPECT_LE(seen.goaway_codes.size(), 1u);
  ASSERT_TRUE(bed.proxy.allClosed(role));
  const Snapshot after = bed.proxy.snapshot();
  EXPECT_EQ(floodCount(downstream(after), kind), 1u);
  EXPECT_EQ(allFloods(downstream(after)), 1u);
  EXPECT_EQ(after.buffered_bytes, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Floods, H2AckFloodTest,
    ::testing::Combine(::testing::Values(ListenerRole::kInbound, ListenerRole::kOutbound),
                       ::testing::Values(Flood::kPing, Flood::kSettingsAcks)),
    [](const ::testing::TestParamInfo<std::tuple<ListenerRole, Flood>>& param) {
      return roleName(std::get<0>(param.param)) + floodName(std::get<1>(param.param));
    });

// A flood from a client that does not read is seen exactly when the queue is over the
// high-water mark: its GOAWAY is written all the same, after the ACKs.
TEST(H2AckFloodAftermathTest, AClientThatDoesNotReadGetsTheGoawayWhenItReads) {
  Bed bed;
  ASSERT_TRUE(bed.ok());
  Wire attacker(bed.proxy.port(ListenerRole::kInbound), /*receive_buffer=*/4096);
  floodWithoutReading(bed, attacker, Flood::kPing);
  if (HasFatalFailure()) return;
  const Seen seen = readToEnd(attacker, 30s);
  EXPECT_TRUE(seen.closed);
  ASSERT_EQ(seen.goaway_codes.size(), 1u);
  EXPECT_EQ(seen.goaway_codes[0], kEnhanceYourCalm);
}

// After a flood the connection waits for its queue to drain (DataPathSocket::closeAfterFlush)
// for the linger time only: a client that never reads loses the connection and what is queued.
TEST(H2AckFloodAftermathTest, AClientThatNeverReadsIsCutAfterTheLinger) {
  Bed bed;
  ASSERT_TRUE(bed.ok());
  Wire attacker(bed.proxy.port(ListenerRole::kInbound), /*receive_buffer=*/4096);
  floodWithoutReading(bed, attacker, Flood::kPing);
  if (HasFatalFailure()) return;
  const std::chrono::milliseconds linger = proxy::DataPathTimeouts{}.linger;
  EXPECT_TRUE(eventually([&] { return bed.proxy.open(ListenerRole::kInbound) == 0; }, linger + 5s));
  EXPECT_EQ(bed.proxy.snapshot().buffered_bytes, 0);
}

// ---- origins that flood tracecar's upstream connections ----

// Accepts tracecar's upstream connections one after the other, floods each, and records what
// tracecar answered.
class FloodingOrigin {
 public:
  enum class Mode : uint8_t {
    kPingsAfterTheRequest,            // PINGs, well past max_outbound_acks, once the request came
    kSettingsEntriesAfterTheRequest,  // a SETTINGS frame of max_settings_entries + 1 entries
    kEmptyDataAfterTheHead,           // a 200 head, then empty DATA frames without end
    kPingsWithItsSettings,            // its SETTINGS and the PINGs in one write, at once
    kGoawayWithItsSettings,           // its SETTINGS and a GOAWAY (last stream 0) at once
    kNoStreamsInItsSettings,          // SETTINGS_MAX_CONCURRENT_STREAMS 0
  };

  explicit FloodingOrigin(Mode mode) : mode_(mode) {
    fd_ = listenOnLoopback(port_);
    if (fd_ < 0) return;
    thread_ = std::thread([this] { run(); });
  }
  ~FloodingOrigin() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  FloodingOrigin(const FloodingOrigin&) = delete;
  FloodingOrigin& operator=(const FloodingOrigin&) = delete;

  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  int calmGoaways() const { return calm_goaways_.load(); }
  int otherGoaways() const { return other_goaways_.load(); }

 private:
  void run() {
    // Bounded: a data path that kept reconnecting would stop being served here.
    while (!stop_ && connections_ < 1000) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      ++connections_;
      std::unique_ptr<Wire> wire = Wire::adopt(client);
      serve(*wire);
    }
  }

  void serve(Wire& wire) {
    if (wire.readExactly(kPreface.size(), 10s) != std::string(kPreface)) return;
    const http::H2Settings limits;
    // Three times the limit in one write: however tracecar's reads cut it, one of them is over.
    const std::string pings = repeated(ping(), 3 * limits.max_outbound_acks);
    if (mode_ == Mode::kGoawayWithItsSettings) {
      wire.send(frame(kSettings, 0, 0, "") + frame(kGoaway, 0, 0, be32(0) + be32(0)));
    } else if (mode_ == Mode::kNoStreamsInItsSettings) {
      wire.send(frame(kSettings, 0, 0, setting(0x3, 0)));
    } else if (mode_ == Mode::kPingsWithItsSettings) {
      wire.send(frame(kSettings, 0, 0, "") + pings);
    } else {
      wire.send(frame(kSettings, 0, 0, "") + frame(kSettings, kAck, 0, ""));
      uint32_t stream = 0;
      readFrames(wire, [&](const Frame& f) {
        if (f.type == kHeaders) stream = f.stream;
        return stream == 0;
      });
      if (stream == 0) return;
      switch (mode_) {
        case Mode::kPingsAfterTheRequest: wire.send(pings); break;
        case Mode::kSettingsEntriesAfterTheRequest:
          wire.send(
              frame(kSettings, 0, 0, repeated(setting(0x3, 100), limits.max_settings_entries + 1)));
          break;
        case Mode::kEmptyDataAfterTheHead: {
          bool open = wire.send(frame(kHeaders, kEndHeaders, stream, std::string(1, kStatus200)));
          const std::string empties = repeated(frame(kData, 0, stream, ""), 1000);
          for (int i = 0; i < 1000 && open && !stop_; ++i) open = wire.send(empties);
          break;
        }
        case Mode::kPingsWithItsSettings:
        case Mode::kGoawayWithItsSettings:
        case Mode::kNoStreamsInItsSettings: break;
      }
    }
    readFrames(wire, [&](const Frame& f) {
      if (f.type != kGoaway) return !stop_;
      ++(f.goawayCode() == kEnhanceYourCalm ? calm_goaways_ : other_goaways_);
      return !stop_;
    });
  }

  const Mode mode_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> calm_goaways_{0};
  std::atomic<int> other_goaways_{0};
  std::thread thread_;
};

struct UpstreamBed {
  explicit UpstreamBed(FloodingOrigin::Mode mode) : origin(mode), proxy(origin.port()) {}
  bool ok() const { return origin.port() != 0 && proxy.status().ok(); }
  Answer get() {
    return h2Get(proxy.port(ListenerRole::kInbound), "127.0.0.1:" + std::to_string(origin.port()));
  }

  FloodingOrigin origin;
  Proxy proxy;
};

// Each request gets its own connection, flooded and answered by tracecar itself (reason: how
// its data path counts the 502); the data path goes on.
void expectUpstreamFloodAnswered(UpstreamBed& bed, Flood kind, proxy::LocalReplyReason reason) {
  constexpr int kRequests = 2;
  for (int i = 1; i <= kRequests; ++i) {
    const Answer answer = bed.get();
    EXPECT_EQ(answer.status, 502) << "request " << i;
    EXPECT_TRUE(answer.closed);
    ASSERT_TRUE(eventually([&] { return bed.origin.calmGoaways() == i; })) << "request " << i;
    ASSERT_TRUE(eventually(
        [&] { return floodCount(upstream(bed.proxy.snapshot()), kind) == uint64_t(i); }));
  }
  EXPECT_EQ(bed.origin.connections(), kRequests);  // one each: no connection after a flood
  EXPECT_EQ(bed.origin.otherGoaways(), 0);
  const Snapshot s = bed.proxy.snapshot();
  EXPECT_EQ(allFloods(upstream(s)), uint64_t{kRequests});
  EXPECT_EQ(allFloods(downstream(s)), 0u);
  EXPECT_EQ(s.localReplies(ListenerRole::kInbound, reason), uint64_t{kRequests});
  ASSERT_TRUE(eventually([&] { return bed.proxy.snapshot().h2_upstream_connections_open == 0; }));
  EXPECT_EQ(bed.proxy.snapshot().buffered_bytes, 0);
}

TEST(H2UpstreamFloodTest, PingFloodIsCalmedCountedAndAnswered502) {
  UpstreamBed bed(FloodingOrigin::Mode::kPingsAfterTheRequest);
  ASSERT_TRUE(bed.ok());
  expectUpstreamFloodAnswered(bed, Flood::kPing, proxy::LocalReplyReason::kUpstreamReset);
}

TEST(H2UpstreamFloodTest, SettingsWithTooManyEntriesIsCalmedCountedAndAnswered502) {
  UpstreamBed bed(FloodingOrigin::Mode::kSettingsEntriesAfterTheRequest);
  ASSERT_TRUE(bed.ok());
  expectUpstreamFloodAnswered(bed, Flood::kSettingsEntries,
                              proxy::LocalReplyReason::kUpstreamReset);
}

// The connection fails in the read that made it ready: the request waiting for it fails with
// it, rather than going to another connection to the same peer, again and again.
TEST(H2UpstreamFloodTest, FloodInItsFirstBytesIsAnswered502WithoutReconnecting) {
  UpstreamBed bed(FloodingOrigin::Mode::kPingsWithItsSettings);
  ASSERT_TRUE(bed.ok());
  expectUpstreamFloodAnswered(bed, Flood::kPing, proxy::LocalReplyReason::kBadResponse);
}

// An upstream that refuses every stream from its first frames (a GOAWAY at once, or no stream
// allowed): the request fails with 502 on that connection, instead of going to another one to
// the same peer, and another, as fast as they open, until the response timeout.
TEST(H2UpstreamFloodTest, AnUpstreamRefusingEveryStreamIsAnswered502WithoutReconnecting) {
  for (const auto mode : {FloodingOrigin::Mode::kGoawayWithItsSettings,
                          FloodingOrigin::Mode::kNoStreamsInItsSettings}) {
    const bool goaway = mode == FloodingOrigin::Mode::kGoawayWithItsSettings;
    UpstreamBed bed(mode);
    ASSERT_TRUE(bed.ok());
    const Answer answer = bed.get();
    EXPECT_EQ(answer.status, 502) << goaway;
    const Snapshot s = bed.proxy.snapshot();
    EXPECT_EQ(s.upstream_connects, 1u) << goaway;
    EXPECT_EQ(s.localReplies(ListenerRole::kInbound, proxy::LocalReplyReason::kUpstreamRefused),
              1u)
        << goaway;
    if (goaway) {
      // A second request: a new connection (the first was going away), refused the same way.
      EXPECT_EQ(bed.get().status, 502);
      EXPECT_EQ(bed.proxy.snapshot().upstream_connects, 2u);
    }
  }
}

TEST(H2UpstreamFloodTest, EndlessEmptyDataAfterTheHeadResetsTheStream) {
  UpstreamBed bed(FloodingOrigin::Mode::kEmptyDataAfterTheHead);
  ASSERT_TRUE(bed.ok());
  for (int i = 1; i <= 2; ++i) {
    // The head was relayed before the flood was seen: the client sees the stream reset.
    const Answer answer = bed.get();
    EXPECT_TRUE(answer.closed);
    EXPECT_EQ(answer.cause, http::H2CloseCause::kResetByPeer);
    EXPECT_EQ(answer.code, http::H2ErrorCode::kInternalError);
    EXPECT_TRUE(answer.body.empty());
    ASSERT_TRUE(eventually([&] { return bed.origin.calmGoaways() == i; }));
    ASSERT_TRUE(eventually(
        [&] { return upstream(bed.proxy.snapshot()).empty_data_floods == uint64_t(i); }));
  }
  EXPECT_EQ(bed.origin.connections(), 2);
  EXPECT_EQ(allFloods(upstream(bed.proxy.snapshot())), 2u);
}

}  // namespace
}  // namespace tracecar::integration
