// The HTTP/1.1 data path with tracing as `tracecar run` wires it, in this process: the proxy on
// port 0 with the real observers (TracedStreamObserverFactory), a real origin, and the spans
// exported by a BatchProcessor with the OTLP/HTTP exporter to the fake collector, whose bodies
// the official schema decodes (protoc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "exporter/batch_processor.h"
#include "exporter/otlp_http_exporter.h"
#include "http/route_resolver.h"
#include "http/route_template.h"
#include "integration/proxy/data_path_fixture.h"
#include "integration/support/fake_collector.h"
#include "propagation/composite_propagator.h"
#include "proxy/metrics.h"
#include "proxy/request_tracer.h"
#include "proxy/run_settings.h"
#include "proxy/traced_stream_observer.h"
#include "sampling/sampler.h"
#include "sampling/trust_policy.h"
#include "support/otlp_test_support.h"

namespace tracecar::integration {
namespace {

constexpr std::string_view kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kParentId = "00f067aa0ba902b7";

// One span as protoc printed it: its fields and its attributes ("key" -> the value as protoc
// prints it, quotes included for strings).
struct DecodedSpan {
  std::map<std::string, std::string> fields;
  std::map<std::string, std::string> attributes;
};

// An id given in hex, as protoc prints the bytes field that holds it.
std::string printedId(std::string_view hex) {
  using exporter::testing::cEscaped;
  return "\"" +
         (hex.size() == 32 ? cEscaped(exporter::testing::traceIdFromHex(hex).bytes)
                           : cEscaped(exporter::testing::spanIdFromHex(hex).bytes)) +
         "\"";
}

// Every span of every request the collector recorded, decoded against the official schema.
std::vector<DecodedSpan> decodedSpans(const FakeCollector& collector) {
  constexpr std::string_view kSpan = "resource_spans.scope_spans.spans.";
  std::vector<DecodedSpan> spans;
  for (const RecordedRequest& request : collector.requests()) {
    const exporter::testing::ProtocResult decoded = exporter::testing::protocDecode(request.body);
    EXPECT_EQ(decoded.status, 0) << decoded.err;
    std::string key;
    for (const std::string& line : exporter::testing::flattenTextFormat(decoded.out)) {
      if (!line.starts_with(kSpan)) continue;
      const std::string_view field = std::string_view(line).substr(kSpan.size());
      const size_t colon = field.find(": ");
      if (colon == std::string_view::npos) continue;
      const std::string name(field.substr(0, colon));
      const std::string value(field.substr(colon + 2));
      if (name == "trace_id") spans.emplace_back();  // protoc prints a span's trace_id first
      if (spans.empty()) continue;
      if (name == "attributes.key") {
        key = value.substr(1, value.size() - 2);
      } else if (name.starts_with("attributes.value.")) {
        spans.back().attributes[key] = value;
      } else {
        spans.back().fields[name] = value;  // "name", "kind", "status.code"...
      }
    }
  }
  return spans;
}

class DataPathTracedTest : public DataPathTest {
 protected:
  void SetUp() override {
    DataPathTest::SetUp();
    ASSERT_NE(collector_.port(), 0) << collector_.log();
    metrics_.setSamplingLabels(proxy::samplingLabelsOf(sampler_));
    exporter::BatchConfig batch;
    batch.schedule_delay = std::chrono::milliseconds(50);
    exporter::OtlpConfig otlp;
    otlp.endpoint = {"http", "127.0.0.1", collector_.port(), "/v1/traces"};
    otlp.timeout = std::chrono::milliseconds(5000);
    processor_ = std::make_unique<exporter::BatchProcessor>(
        batch,
        [otlp, this](uv_loop_t* loop) -> std::unique_ptr<exporter::SpanExporter> {
          auto created = exporter::OtlpHttpExporter::create(
              loop, otlp, exporter::testing::testResource(), exporter::tracecarScope("0.1.0"),
              export_counters_);
          if (!created.ok()) throw std::runtime_error(std::string(created.status().message()));
          return std::move(*created);
        },
        export_counters_);
    sink_ = std::make_unique<proxy::BatchProcessorSink>(*processor_);
  }
  void TearDown() override {
    DataPathTest::TearDown();  // the workers first: they hand spans to the processor
    pool_.reset();             // and their observers use what this fixture holds
    if (processor_) processor_->shutdown(std::chrono::seconds(5));
  }

  void startTraced() { startTraced(settings()); }
  void startTraced(proxy::DataPathSettings s) {
    proxy::DataPathHooks hooks;
    hooks.observers = [this](size_t, proxy::ListenerRole role)
        -> std::unique_ptr<proxy::StreamObserverFactory> {
      return std::make_unique<proxy::TracedStreamObserverFactory>(
          role, propagator_, role == proxy::ListenerRole::kInbound ? &routes_ : nullptr, config_,
          sampler_, trust_, *sink_, metrics_.addShard());
    };
    startProxy(std::move(s), std::move(hooks));
  }

  // Exports what the workers have ended and decodes what the collector received.
  std::vector<DecodedSpan> exported(size_t want) {
    std::vector<DecodedSpan> spans;
    EXPECT_TRUE(eventually(
        [&] {
          processor_->flush(std::chrono::seconds(2));
          spans = decodedSpans(collector_);
          return spans.size() >= want;
        },
        std::chrono::seconds(10)))
        << "got " << spans.size() << " spans, want " << want;
    return spans;
  }

  FakeCollector collector_;
  exporter::ExporterCounters export_counters_;
  std::unique_ptr<exporter::BatchProcessor> processor_;
  std::unique_ptr<proxy::BatchProcessorSink> sink_;
  propagation::CompositePropagator propagator_;
  http::RouteResolver routes_{*http::RouteMatcher::compile({"/users/{id}", "/echo"})};
  proxy::RequestTracingConfig config_;
  sampling::Sampler sampler_;
  sampling::TrustPolicy trust_;
  proxy::ProxyMetrics metrics_;
};

TEST_F(DataPathTracedTest, InboundRequestContinuesTheTraceAndItsServerSpanReachesTheCollector) {
  startTraced();
  const std::string traceparent =
      "traceparent: 00-" + std::string(kTraceId) + "-" + std::string(kParentId) + "-01";
  const ProcessResult r = curl({"-H", traceparent, "-H", "baggage: tenant=acme", "-H",
                                "User-Agent: data-path-test", inboundUrl("/echo?nobody=1&k=v")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::optional<Json> echo = parseJson(r.out);
  ASSERT_TRUE(echo.has_value()) << r.out;
  const std::optional<std::string> forwarded = echoedHeader(*echo, "traceparent");
  ASSERT_TRUE(forwarded.has_value());
  ASSERT_EQ(forwarded->size(), 55u) << *forwarded;
  EXPECT_EQ(forwarded->substr(3, 32), kTraceId);  // the trace continues
  const std::string server_span_id = forwarded->substr(36, 16);
  EXPECT_NE(server_span_id, kParentId);  // with the span just started as the app's parent
  EXPECT_EQ(echoedHeader(*echo, "baggage"), "tenant=acme");

  const std::vector<DecodedSpan> spans = exported(1);
  ASSERT_EQ(spans.size(), 1u);
  const DecodedSpan& s = spans[0];
  EXPECT_EQ(s.fields.at("name"), "\"GET /echo\"");
  EXPECT_EQ(s.fields.at("kind"), "SPAN_KIND_SERVER");
  EXPECT_EQ(s.fields.at("trace_id"), printedId(kTraceId));
  EXPECT_EQ(s.fields.at("span_id"), printedId(server_span_id));
  EXPECT_EQ(s.fields.at("parent_span_id"), printedId(kParentId));
  EXPECT_EQ(s.attributes.at("http.request.method"), "\"GET\"");
  EXPECT_EQ(s.attributes.at("http.route"), "\"/echo\"");
  EXPECT_EQ(s.attributes.at("url.path"), "\"/echo\"");
  EXPECT_EQ(s.attributes.at("url.query"), "\"nobody=REDACTED&k=REDACTED\"");
  EXPECT_EQ(s.attributes.at("url.scheme"), "\"http\"");
  EXPECT_EQ(s.attributes.at("http.response.status_code"), "200");
  EXPECT_EQ(s.attributes.at("network.protocol.version"), "\"1.1\"");
  EXPECT_EQ(s.attributes.at("server.address"), "\"127.0.0.1\"");
  EXPECT_EQ(s.attributes.at("server.port"), std::to_string(inboundPort()));
  EXPECT_EQ(s.attributes.at("client.address"), "\"127.0.0.1\"");
  EXPECT_EQ(s.attributes.at("user_agent.original"), "\"data-path-test\"");
  EXPECT_EQ(s.attributes.count("error.type"), 0u);
  EXPECT_EQ(s.fields.count("status.code"), 0u);  // unset for a 200
  EXPECT_EQ(export_counters_.spans_exported.load(), 1u);
}

TEST_F(DataPathTracedTest, RequestWithoutContextStartsATraceAndA5xxIsAnError) {
  startTraced();
  const ProcessResult r = curl({"-o", "/dev/null", "-w", "%{http_code}", inboundUrl("/users/7")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "404");  // the origin knows no /users/7: a 4xx leaves a SERVER span unset
  const ProcessResult failed =
      curl({"-o", "/dev/null", "-w", "%{http_code}", inboundUrl("/status/503")});
  EXPECT_EQ(failed.out, "503");

  const std::vector<DecodedSpan> spans = exported(2);
  ASSERT_EQ(spans.size(), 2u);
  std::map<std::string, const DecodedSpan*> by_name;
  for (const DecodedSpan& s : spans) by_name[s.fields.at("name")] = &s;
  ASSERT_EQ(by_name.count("\"GET /users/{id}\""), 1u);
  const DecodedSpan& not_found = *by_name.at("\"GET /users/{id}\"");
  EXPECT_EQ(not_found.fields.count("parent_span_id"), 0u);  // a new trace: no parent
  EXPECT_NE(not_found.fields.at("trace_id"), "\"\"");  // a trace id of its own
  EXPECT_EQ(not_found.attributes.at("http.response.status_code"), "404");
  EXPECT_EQ(not_found.fields.count("status.code"), 0u);
  // /status/503 matches no template: a heuristic span name, no http.route, an Error.
  ASSERT_EQ(by_name.count("\"GET /status/{id}\""), 1u);
  const DecodedSpan& error = *by_name.at("\"GET /status/{id}\"");
  EXPECT_EQ(error.attributes.count("http.route"), 0u);
  EXPECT_EQ(error.attributes.at("error.type"), "\"503\"");
  EXPECT_EQ(error.fields.at("status.code"), "STATUS_CODE_ERROR");
}

// A client gone after the response head: the span keeps the status code and is an Error, and
// the request metrics say why.
TEST_F(DataPathTracedTest, AClientGoneMidBodyMakesTheSpanAnErrorWithItsStatusKept) {
  startTraced();
  {
    RawConnection c(inboundPort());
    ASSERT_TRUE(c.send("GET /drip?pieces=3&ms=300 HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(c.readExactly(12), "HTTP/1.1 200");
    c.reset();
  }
  const std::vector<DecodedSpan> spans = exported(1);
  ASSERT_EQ(spans.size(), 1u);
  const DecodedSpan& s = spans[0];
  EXPECT_EQ(s.attributes.at("http.response.status_code"), "200");
  EXPECT_EQ(s.attributes.at("error.type"), "\"response_incomplete\"");
  EXPECT_EQ(s.fields.at("status.code"), "STATUS_CODE_ERROR");
  EXPECT_EQ(s.fields.at("status.message"), "\"ended before the whole response was delivered\"");
  const std::string text = prometheus::TextSerializer().Serialize(metrics_.Collect());
  EXPECT_THAT(text, ::testing::HasSubstr("error_type=\"response_incomplete\""));
}

// A client that stops sending its request body: the SERVER span records the 408 it got (a 4xx:
// status Unset); the CLIENT span of an outbound request, which the upstream never answered,
// is an Error named request_body_timeout, on the span and in the client histogram.
TEST_F(DataPathTracedTest, ARequestBodyThatStopsComingIsA408ServerSpanAndATimedOutClientSpan) {
  proxy::DataPathSettings s = settings();
  s.timeouts.upstream_response = 300ms;
  s.outbound_mode = proxy::DataPathSettings::OutboundMode::kUpstream;
  s.outbound_upstream = {"127.0.0.1", origin_.port()};
  startTraced(std::move(s));
  for (const uint16_t port : {inboundPort(), outboundPort()}) {
    RawConnection c(port);
    ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n0123456789"));
    const std::optional<RawResponse> r = c.readResponse(false, 10s);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 408);
  }
  const std::vector<DecodedSpan> spans = exported(2);
  ASSERT_EQ(spans.size(), 2u);
  for (const DecodedSpan& span : spans) {
    if (span.fields.at("kind") == "SPAN_KIND_SERVER") {
      EXPECT_EQ(span.attributes.at("http.response.status_code"), "408");
      EXPECT_EQ(span.attributes.count("error.type"), 0u);
      EXPECT_EQ(span.fields.count("status.code"), 0u) << "Unset";
    } else {
      EXPECT_EQ(span.fields.at("kind"), "SPAN_KIND_CLIENT");
      EXPECT_EQ(span.attributes.count("http.response.status_code"), 0u);
      EXPECT_EQ(span.attributes.at("error.type"), "\"request_body_timeout\"");
      EXPECT_EQ(span.fields.at("status.code"), "STATUS_CODE_ERROR");
      EXPECT_EQ(span.fields.at("status.message"), "\"the client stopped sending the request body\"");
    }
  }
  const std::string text = prometheus::TextSerializer().Serialize(metrics_.Collect());
  EXPECT_THAT(text, ::testing::HasSubstr("error_type=\"request_body_timeout\""));
  EXPECT_THAT(text, ::testing::HasSubstr("reason=\"408_request_body_timeout\""));
}

// An HTTP/1.0 request that names no host goes to the configured upstream: its CLIENT span
// says so, with an absolute url.full.
TEST_F(DataPathTracedTest, HostlessOutboundRequestIsRecordedWithTheUpstreamItWentTo) {
  proxy::DataPathSettings s = settings();
  s.outbound_mode = proxy::DataPathSettings::OutboundMode::kUpstream;
  s.outbound_upstream = {"127.0.0.1", origin_.port()};
  startTraced(std::move(s));
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET /echo?q=1 HTTP/1.0\r\n\r\n"));
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);

  const std::vector<DecodedSpan> spans = exported(1);
  ASSERT_EQ(spans.size(), 1u);
  const DecodedSpan& span = spans[0];
  EXPECT_EQ(span.fields.at("kind"), "SPAN_KIND_CLIENT");
  const std::string port = std::to_string(origin_.port());
  EXPECT_EQ(span.attributes.at("url.full"), "\"http://127.0.0.1:" + port + "/echo?q=REDACTED\"");
  EXPECT_EQ(span.attributes.at("server.address"), "\"127.0.0.1\"");
  EXPECT_EQ(span.attributes.at("server.port"), port);
}

TEST_F(DataPathTracedTest, OutboundRequestIsAClientSpanThatParentsTheUpstreamsContext) {
  startTraced();
  const ProcessResult r = curl({"-x", "http://127.0.0.1:" + std::to_string(outboundPort()),
                                originUrl("/echo?nobody=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::optional<Json> echo = parseJson(r.out);
  ASSERT_TRUE(echo.has_value()) << r.out;
  const std::optional<std::string> forwarded = echoedHeader(*echo, "traceparent");
  ASSERT_TRUE(forwarded.has_value());

  const std::vector<DecodedSpan> spans = exported(1);
  ASSERT_EQ(spans.size(), 1u);
  const DecodedSpan& s = spans[0];
  EXPECT_EQ(s.fields.at("kind"), "SPAN_KIND_CLIENT");
  EXPECT_EQ(s.fields.at("name"), "\"GET\"");
  EXPECT_EQ(s.fields.at("trace_id"), printedId(forwarded->substr(3, 32)));
  EXPECT_EQ(s.fields.at("span_id"), printedId(forwarded->substr(36, 16)));
  EXPECT_EQ(s.attributes.at("url.full"),
            "\"http://127.0.0.1:" + std::to_string(origin_.port()) + "/echo?nobody=REDACTED\"");
  EXPECT_EQ(s.attributes.at("server.port"), std::to_string(origin_.port()));
  EXPECT_EQ(s.attributes.at("http.response.status_code"), "200");
  // Where the request went: the upstream connection's peer.
  EXPECT_EQ(s.attributes.at("network.peer.address"), "\"127.0.0.1\"");
  EXPECT_EQ(s.attributes.at("network.peer.port"), std::to_string(origin_.port()));
}

// An HTTP/1.0 request that names no host, on a listener that goes where requests say: nowhere to
// go, 400. Its CLIENT span has no url.full (a path alone is not a URL) and no server.address.
TEST_F(DataPathTracedTest, AHostlessOutboundRequestWithNowhereToGoHasNoUrlFull) {
  startTraced();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET /nohost?q=1 HTTP/1.0\r\n\r\n"));
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);

  const std::vector<DecodedSpan> spans = exported(1);
  ASSERT_EQ(spans.size(), 1u);
  const DecodedSpan& span = spans[0];
  EXPECT_EQ(span.fields.at("kind"), "SPAN_KIND_CLIENT");
  EXPECT_EQ(span.attributes.count("url.full"), 0u);
  EXPECT_EQ(span.attributes.count("server.address"), 0u);
  EXPECT_EQ(span.attributes.at("http.response.status_code"), "400");
}

// A CONNECT the outbound listener carries out itself: the CLIENT span names the connection it
// opened (network.peer.*) and the 200 the app got, with no protocol version (no HTTP was spoken
// to the upstream).
TEST_F(DataPathTracedTest, AConnectTheOutboundListenerOpensRecordsItsPeer) {
  startTraced();
  const std::string port = std::to_string(origin_.port());
  {
    RawConnection c(outboundPort());
    ASSERT_TRUE(c.send("CONNECT 127.0.0.1:" + port + " HTTP/1.1\r\nHost: 127.0.0.1:" + port +
                       "\r\n\r\n"));
    const std::optional<RawResponse> r = c.readResponse(/*head_request=*/true);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
  }  // closed: the tunnel ends, and with it the span

  const std::vector<DecodedSpan> spans = exported(1);
  ASSERT_EQ(spans.size(), 1u);
  const DecodedSpan& span = spans[0];
  EXPECT_EQ(span.fields.at("kind"), "SPAN_KIND_CLIENT");
  EXPECT_EQ(span.fields.at("name"), "\"CONNECT\"");
  EXPECT_EQ(span.attributes.at("network.peer.address"), "\"127.0.0.1\"");
  EXPECT_EQ(span.attributes.at("network.peer.port"), port);
  EXPECT_EQ(span.attributes.at("server.port"), port);
  EXPECT_EQ(span.attributes.at("http.response.status_code"), "200");
  EXPECT_EQ(span.attributes.count("network.protocol.version"), 0u);
}

// Max-Forwards (RFC 9110 section 7.6.2): tracecar is an intermediary on both listeners. An
// OPTIONS or TRACE at 0 is answered by tracecar (the app never sees it; TRACE gets its head
// reflected, credentials left out) and recorded with that 200; above 0 it goes on, one lower.
TEST_F(DataPathTracedTest, MaxForwardsIsCountedDownAndAnsweredAtZero) {
  startTraced();
  RawConnection c(inboundPort());
  ASSERT_TRUE(c.send("OPTIONS * HTTP/1.1\r\nHost: app\r\nMax-Forwards: 0\r\n\r\n"));
  std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "");
  ASSERT_TRUE(c.send("TRACE /t HTTP/1.1\r\nHost: app\r\nMax-Forwards: 0\r\n"
                     "Authorization: Bearer secret\r\nX-Seen: yes\r\n\r\n"));
  r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.rfind("TRACE /t HTTP/1.1\r\n", 0), 0u) << r->body;
  EXPECT_NE(r->body.find("X-Seen: yes\r\n"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("secret"), std::string::npos) << r->body;
  EXPECT_EQ(origin_.requests(), 0);  // neither reached the app

  const ProcessResult forwarded =
      curl({"-X", "TRACE", "-H", "Max-Forwards: 5", inboundUrl("/echo?nobody=1")});
  ASSERT_EQ(forwarded.exit_code, 0) << forwarded.err;
  const Json echo = parseJson(forwarded.out).value_or(Json{});
  EXPECT_EQ(echo["method"].text, "TRACE");
  EXPECT_EQ(echoedHeader(echo, "max-forwards"), "4");

  const std::vector<DecodedSpan> spans = exported(3);
  ASSERT_EQ(spans.size(), 3u);
  for (const DecodedSpan& span : spans) {
    EXPECT_EQ(span.fields.at("kind"), "SPAN_KIND_SERVER");
    EXPECT_EQ(span.attributes.at("http.response.status_code"), "200");
  }
}

// An outbound request tracecar refuses once its head is read (a destination it will not reach)
// is a CLIENT span and a client histogram series with the 400 the app got, not a failure
// without a status.
TEST_F(DataPathTracedTest, AnOutboundRequestRefusedForItsDestinationRecordsThe400) {
  startTraced();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("GET ftp://127.0.0.1:" + std::to_string(origin_.port()) +
                     "/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);

  const std::vector<DecodedSpan> spans = exported(1);
  ASSERT_EQ(spans.size(), 1u);
  const DecodedSpan& span = spans[0];
  EXPECT_EQ(span.fields.at("kind"), "SPAN_KIND_CLIENT");
  EXPECT_EQ(span.attributes.at("http.response.status_code"), "400");
  EXPECT_EQ(span.attributes.at("error.type"), "\"400\"");
  EXPECT_EQ(span.attributes.count("network.peer.address"), 0u);  // no connection was made
  EXPECT_EQ(span.attributes.count("network.protocol.version"), 0u);  // nothing was heard back
  const std::string text = prometheus::TextSerializer().Serialize(metrics_.Collect());
  EXPECT_NE(text.find("http_client_request_duration_seconds_count{http_request_method=\"GET\","
                      "http_response_status_code=\"400\",error_type=\"400\"} 1"),
            std::string::npos)
      << text;
}

// Semantic conventions: a span per attempt. An outbound request whose pooled connection the
// upstream had closed goes again on a fresh one: the first attempt is a CLIENT span of its own
// (Error, connection_reset), the second carries http.request.resend_count and is the parent
// the upstream was told of.
TEST_F(DataPathTracedTest, ARetriedOutboundRequestIsASpanPerAttempt) {
  startTraced();
  const std::string proxy = "http://127.0.0.1:" + std::to_string(outboundPort());
  ASSERT_EQ(curl({"-x", proxy, originUrl("/drop-next")}).exit_code, 0);
  // The origin reads the next request on that connection and closes it without an answer.
  const ProcessResult r = curl({"-x", proxy, originUrl("/echo?nobody=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(counters().upstream_retries, 1u);
  const std::optional<std::string> forwarded =
      echoedHeader(parseJson(r.out).value_or(Json{}), "traceparent");
  ASSERT_TRUE(forwarded.has_value()) << r.out;

  const std::vector<DecodedSpan> spans = exported(3);
  ASSERT_EQ(spans.size(), 3u);
  std::vector<const DecodedSpan*> echo;
  for (const DecodedSpan& span : spans) {
    if (span.attributes.at("url.full").find("/echo") != std::string::npos) echo.push_back(&span);
  }
  ASSERT_EQ(echo.size(), 2u);
  const DecodedSpan& first = echo[0]->attributes.count("http.request.resend_count") ? *echo[1]
                                                                                     : *echo[0];
  const DecodedSpan& second = &first == echo[0] ? *echo[1] : *echo[0];
  EXPECT_EQ(first.fields.at("status.code"), "STATUS_CODE_ERROR");
  EXPECT_EQ(first.attributes.at("error.type"), "\"connection_reset\"");
  EXPECT_EQ(first.attributes.count("http.response.status_code"), 0u);
  EXPECT_EQ(first.attributes.at("network.peer.address"), "\"127.0.0.1\"");
  EXPECT_EQ(second.attributes.at("http.request.resend_count"), "1");
  EXPECT_EQ(second.attributes.at("http.response.status_code"), "200");
  EXPECT_EQ(second.attributes.count("error.type"), 0u);
  EXPECT_EQ(second.fields.at("trace_id"), first.fields.at("trace_id"));
  EXPECT_NE(second.fields.at("span_id"), first.fields.at("span_id"));
  // The upstream saw the second attempt's span as its parent.
  EXPECT_EQ(second.fields.at("span_id"), printedId(forwarded->substr(36, 16)));
  EXPECT_EQ(second.fields.at("trace_id"), printedId(forwarded->substr(3, 32)));
}

// An upstream that answers one request on its first connection, reads the next and closes, and
// listens no more: the retry is refused. The second attempt's span then names no peer (no
// connection was made), not the first attempt's.
class OnceThenGone {
 public:
  OnceThenGone() {
    uint16_t port = 0;
    listen_fd_ = listenOnLoopback(port);
    port_ = port;
    thread_ = std::thread([this] {
      // CLOEXEC: a curl started meanwhile must not hold the connection open.
      const int fd = ::accept4(listen_fd_.load(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      const timeval bound{10, 0};  // a test that went wrong ends, not hangs
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
      const auto readHead = [fd] {
        std::string got;
        char buf[4096];
        while (got.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = ::read(fd, buf, sizeof buf);
          if (n <= 0) return false;
          got.append(buf, static_cast<size_t>(n));
        }
        return true;
      };
      if (readHead()) {
        static constexpr std::string_view kAnswer =
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (void)!::write(fd, kAnswer.data(), kAnswer.size());
        if (readHead()) {
          const int listening = listen_fd_.exchange(-1);  // no more connections: refused
          if (listening >= 0) ::close(listening);
        }
      }
      ::close(fd);
    });
  }
  ~OnceThenGone() {
    if (const int listening = listen_fd_.load(); listening >= 0) ::shutdown(listening, SHUT_RDWR);
    thread_.join();
    if (const int listening = listen_fd_.exchange(-1); listening >= 0) ::close(listening);
  }
  OnceThenGone(const OnceThenGone&) = delete;
  OnceThenGone& operator=(const OnceThenGone&) = delete;
  uint16_t port() const { return port_; }

 private:
  std::atomic<int> listen_fd_{-1};
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(DataPathTracedTest, AResendThatFindsNoUpstreamNamesNoPeer) {
  OnceThenGone upstream;
  ASSERT_NE(upstream.port(), 0);
  startTraced();
  const std::string proxy = "http://127.0.0.1:" + std::to_string(outboundPort());
  const std::string url = "http://127.0.0.1:" + std::to_string(upstream.port());
  ASSERT_EQ(curl({"-x", proxy, url + "/first"}).out, "ok");
  const ProcessResult r = curl({"-x", proxy, "-o", "/dev/null", "-w", "%{http_code}",
                                url + "/second"});
  EXPECT_EQ(r.out, "502");
  EXPECT_EQ(counters().upstream_retries, 1u);

  const std::vector<DecodedSpan> spans = exported(3);
  ASSERT_EQ(spans.size(), 3u);
  std::vector<const DecodedSpan*> second;
  for (const DecodedSpan& span : spans) {
    if (span.attributes.at("url.full").find("/second") != std::string::npos) {
      second.push_back(&span);
    }
  }
  ASSERT_EQ(second.size(), 2u);
  const bool resend_last = second[1]->attributes.count("http.request.resend_count") == 1;
  const DecodedSpan& attempt = resend_last ? *second[0] : *second[1];
  const DecodedSpan& resent = resend_last ? *second[1] : *second[0];
  EXPECT_EQ(attempt.attributes.at("error.type"), "\"connection_reset\"");
  EXPECT_EQ(attempt.attributes.at("network.peer.port"), std::to_string(upstream.port()));
  EXPECT_EQ(resent.attributes.at("http.request.resend_count"), "1");
  EXPECT_EQ(resent.attributes.at("error.type"), "\"connection_refused\"");
  EXPECT_EQ(resent.attributes.count("network.peer.address"), 0u);
  EXPECT_EQ(resent.attributes.count("network.peer.port"), 0u);
}

// A request body that breaks after the head went upstream is no answer from the upstream: the
// CLIENT span records no status code (the 400 went from tracecar to the app).
TEST_F(DataPathTracedTest, ABadBodyAfterTheHeadWentIsNoUpstreamAnswer) {
  startTraced();
  RawConnection c(outboundPort());
  ASSERT_TRUE(c.send("POST http://127.0.0.1:" + std::to_string(origin_.port()) +
                     "/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
  const std::optional<RawResponse> r = c.readResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  const std::vector<DecodedSpan> spans = exported(1);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].attributes.count("http.response.status_code"), 0u);
  EXPECT_EQ(spans[0].fields.at("status.code"), "STATUS_CODE_ERROR");
}

}  // namespace
}  // namespace tracecar::integration
