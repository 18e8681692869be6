// The HTTP/2 codec's share of one proxied request: a GET goes from a client session into the
// proxy's server session, on through its client session to an origin's server session, and the
// 200 with a small body comes back the same way, all in memory. The proxy's two sessions do
// what tracecar does with a stream: the request's fields go upstream with one field added, the
// response's fields go downstream as received. Figures, not tests: run scripts/bench.sh. Time
// per iteration is ns per request through the four sessions; new/req counts operator new calls
// per request (replaced in this program to count them; nghttp2's own allocations are not
// counted). For instruction counts, run it under valgrind --tool=callgrind
// --toggle-collect='*proxyOneRequest*' with --benchmark_min_time=0.01 and divide the total by
// the calls of proxyOneRequest.
#include "support/counting_allocator.h"  // g_allocations: operator new calls

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "http/h2_session.h"
#include "http/header_map.h"

namespace tracecar::http {
namespace {

using Kind = H2Session::Kind;

// Remembers the last head and counts body bytes; consumes what it gets at once.
class Endpoint : public H2SessionCallbacks {
 public:
  void onHeaders(int32_t id, H2Head& head) override {
    last_id = id;
    last_head = std::move(head);
    ++heads;
  }
  void onData(int32_t id, std::string_view data) override {
    body_bytes += data.size();
    if (session != nullptr) session->consume(id, data.size());
  }
  void onTrailers(int32_t, HeaderMap&) override {}
  void onEndStream(int32_t) override { ++ends; }
  void onStreamClose(int32_t, H2ErrorCode, H2CloseCause) override { ++closes; }
  void onGoaway(int32_t, H2ErrorCode, std::string_view) override {}
  void onConnectionError(std::string_view reason) override {
    std::fprintf(stderr, "h2_session_bench: connection error: %.*s\n",
                 static_cast<int>(reason.size()), reason.data());
    std::abort();
  }

  H2Session* session = nullptr;
  H2Head last_head;
  int32_t last_id = 0;
  uint64_t heads = 0;
  uint64_t ends = 0;
  uint64_t closes = 0;
  uint64_t body_bytes = 0;
};

std::unique_ptr<H2Session> open(Kind kind, Endpoint& endpoint) {
  absl::StatusOr<std::unique_ptr<H2Session>> session = H2Session::create(kind, endpoint);
  if (!session.ok()) std::abort();
  endpoint.session = session->get();
  return std::move(*session);
}

// Moves what from has for to, if anything.
bool carry(H2Session& from, H2Session& to, std::string& buffer) {
  buffer.clear();
  if (!from.send(buffer).ok()) std::abort();
  if (buffer.empty()) return false;
  if (!to.receive(buffer).ok()) std::abort();
  return true;
}

struct Proxy {
  Proxy() {
    client = open(Kind::kClient, client_events);
    downstream = open(Kind::kServer, downstream_events);
    upstream = open(Kind::kClient, upstream_events);
    origin = open(Kind::kServer, origin_events);
    settle();
    request.method = "GET";
    request.scheme = "http";
    request.authority = "127.0.0.1:8080";
    request.path = "/users/42";
    request.headers.add("user-agent", "h2load nghttp2/1.52.0");
    request.headers.add("accept-encoding", "gzip, deflate");
    response.status = 200;
    response.headers.add("server", "nginx/1.22.1");
    response.headers.add("date", "Sun, 22 Nov 2026 01:26:00 GMT");
    response.headers.add("content-type", "text/plain");
    response.headers.add("content-length", "22");
  }

  void settle() {
    for (int i = 0; i < 16; ++i) {
      bool moved = carry(*client, *downstream, buffer);
      moved = carry(*downstream, *client, buffer) || moved;
      moved = carry(*upstream, *origin, buffer) || moved;
      moved = carry(*origin, *upstream, buffer) || moved;
      if (!moved) return;
    }
  }

  Endpoint client_events;
  Endpoint downstream_events;
  Endpoint upstream_events;
  Endpoint origin_events;
  std::unique_ptr<H2Session> client;
  std::unique_ptr<H2Session> downstream;
  std::unique_ptr<H2Session> upstream;
  std::unique_ptr<H2Session> origin;
  H2Head request;
  H2Head response;
  std::string buffer;

  // A new trace id and span id, as a proxy makes for every request.
  std::string_view nextContext() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::memcpy(context, "00-", 3);
    for (size_t i = 3; i < 52; ++i) {
      random ^= random << 13;
      random ^= random >> 7;
      random ^= random << 17;
      context[i] = kHex[random & 15];
    }
    context[35] = '-';
    std::memcpy(context + 52, "-01", 3);
    return std::string_view(context, 55);
  }
  char context[55];
  uint64_t random = 0x2545f4914f6cdd1dULL;
};

[[gnu::noinline]] void proxyOneRequest(Proxy& p) {
  static constexpr std::string_view kBody = "hello from the origin\n";
  if (!p.client->submitRequest(p.request, true).ok()) std::abort();
  carry(*p.client, *p.downstream, p.buffer);

  // The proxy: the request head goes upstream with a field that changes every request.
  H2Head up = std::move(p.downstream_events.last_head);
  const int32_t down_id = p.downstream_events.last_id;
  up.headers.set("traceparent", p.nextContext());
  absl::StatusOr<int32_t> up_id = p.upstream->submitRequest(up, true);
  if (!up_id.ok()) std::abort();
  carry(*p.upstream, *p.origin, p.buffer);

  // The origin answers.
  const int32_t origin_id = p.origin_events.last_id;
  if (!p.origin->submitResponse(origin_id, p.response, false).ok()) std::abort();
  if (!p.origin->submitData(origin_id, kBody, true).ok()) std::abort();
  carry(*p.origin, *p.upstream, p.buffer);

  // The proxy relays the response head and body.
  H2Head back;
  back.status = p.upstream_events.last_head.status;
  back.headers = std::move(p.upstream_events.last_head.headers);
  if (!p.downstream->submitResponse(down_id, back, false).ok()) std::abort();
  if (!p.downstream->submitData(down_id, kBody, true).ok()) std::abort();
  carry(*p.upstream, *p.origin, p.buffer);  // WINDOW_UPDATEs, when due
  carry(*p.downstream, *p.client, p.buffer);
  carry(*p.client, *p.downstream, p.buffer);
}

void BM_H2ProxyRoundTrip(benchmark::State& state) {
  Proxy p;
  for (int i = 0; i < 100; ++i) proxyOneRequest(p);  // tables and buffers at their size
  const uint64_t allocations = g_allocations.load();
  for (auto _ : state) proxyOneRequest(p);
  state.counters["new/req"] =
      benchmark::Counter(static_cast<double>(g_allocations.load() - allocations) /
                         static_cast<double>(state.iterations()));
  if (p.client_events.closes != p.client_events.heads) std::abort();
}
BENCHMARK(BM_H2ProxyRoundTrip);

}  // namespace
}  // namespace tracecar::http
