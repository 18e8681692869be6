// HTTP/1.1 parsing: the strict byte scan plus llhttp, per message on a keep-alive connection,
// for the request and the response of the load benchmark and for a browser-like request.
// Figures, not tests: run scripts/bench.sh --benchmark_filter=Http1. Time per iteration is ns
// per message.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "http/http1_parser.h"

namespace tracecar::http {
namespace {

// What h2load --h1 sends.
constexpr std::string_view kLoadRequest =
    "GET /users/42 HTTP/1.1\r\n"
    "Host: 127.0.0.1:15006\r\n"
    "user-agent: h2load nghttp2/1.52.0\r\n"
    "\r\n";

// What the load benchmark's origin (nginx) answers.
constexpr std::string_view kLoadResponse =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Sat, 21 Nov 2026 22:58:00 GMT\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 22\r\n"
    "Connection: keep-alive\r\n"
    "\r\n"
    "hello from the origin\n";

constexpr std::string_view kBrowserRequest =
    "GET /api/v1/users/42?expand=orders HTTP/1.1\r\n"
    "Host: shop.example:8080\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
    "tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\r\n"
    "baggage: userId=alice,isProduction=false,tenant=acme-corp\r\n"
    "\r\n";

class Sink final : public Http1ParserCallbacks {
 public:
  bool onHead(Http1Head& head) override {
    benchmark::DoNotOptimize(head.headers.size());
    return false;
  }
  void onBody(std::string_view data) override { benchmark::DoNotOptimize(data.data()); }
  void onTrailers(HeaderMap& trailers) override { benchmark::DoNotOptimize(trailers.size()); }
  void onMessageComplete() override { ++messages; }

  size_t messages = 0;
};

void parseRepeatedly(benchmark::State& state, Http1Parser::Kind kind, std::string_view message) {
  Sink sink;
  Http1Parser parser(kind, sink);
  const std::string bytes(message);  // a read buffer, as the data path has
  for (auto _ : state) {
    const size_t n = parser.parse(bytes);
    if (n != bytes.size() || parser.error() != Http1Error::kNone) {
      state.SkipWithError("the message did not parse");
      break;
    }
  }
  benchmark::DoNotOptimize(sink.messages);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * message.size()));
}

void BM_Http1LoadRequest(benchmark::State& state) {
  parseRepeatedly(state, Http1Parser::Kind::kRequest, kLoadRequest);
}
BENCHMARK(BM_Http1LoadRequest);

void BM_Http1LoadResponse(benchmark::State& state) {
  parseRepeatedly(state, Http1Parser::Kind::kResponse, kLoadResponse);
}
BENCHMARK(BM_Http1LoadResponse);

void BM_Http1BrowserRequest(benchmark::State& state) {
  parseRepeatedly(state, Http1Parser::Kind::kRequest, kBrowserRequest);
}
BENCHMARK(BM_Http1BrowserRequest);

}  // namespace
}  // namespace tracecar::http
