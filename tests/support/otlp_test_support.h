// Shared by the OTLP encoder tests: the official schema via protoc, text-format flattening and
// a realistic span batch.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/resource.h"
#include "exporter/span.h"
#include "support/scratch_dir.h"

namespace tracecar::exporter::testing {

// The directory holding opentelemetry/proto/...: $TRACECAR_OTLP_PROTO_DIR, or otlp-protos next
// to the test executable, fetched by tests/support/otlp_protos.sh on first use. Empty on failure.
inline std::string otlpProtoDir() {
  if (const char* dir = std::getenv("TRACECAR_OTLP_PROTO_DIR")) return dir;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe");
  const std::string dest = (exe.parent_path() / "otlp-protos").string();
  const std::string script =
      (std::filesystem::path(__FILE__).parent_path() / "otlp_protos.sh").string();
  const std::string command = "bash '" + script + "' '" + dest + "'";
  if (std::system(command.c_str()) != 0) return {};
  return dest;
}

struct ProtocResult {
  int status = -1;
  std::string out;
  std::string err;
};

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// protoc --decode=<message> of payload against the official schema.
inline ProtocResult protocDecode(
    std::string_view payload,
    std::string_view message = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest") {
  ProtocResult result;
  const std::string dir = otlpProtoDir();
  if (dir.empty()) {
    result.err = "could not fetch the OTLP .proto files (npm pack failed?)";
    return result;
  }
  const test_support::ScratchDir scratch("tracecar-protoc");
  if (scratch.path().empty()) {
    result.err = "could not make a scratch directory";
    return result;
  }
  const std::string in = scratch.file("payload");
  {
    std::ofstream f(in, std::ios::binary);
    f.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  }
  const std::string command = "protoc --proto_path='" + dir + "' --decode=" +
                              std::string(message) + " '" + dir +
                              "/opentelemetry/proto/collector/trace/v1/trace_service.proto' < '" +
                              in + "' > '" + in + ".out' 2> '" + in + ".err'";
  const int rc = std::system(command.c_str());
  result.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  result.out = readFile(in + ".out");
  result.err = readFile(in + ".err");
  return result;
}

// Turns protoc's text format into one "path.to.field: value" line per field, so tests compare
// field by field: "resource_spans {\n  resource {\n    x: 1" gives "resource_spans.resource.x: 1".
inline std::vector<std::string> flattenTextFormat(std::string_view text) {
  std::vector<std::string> lines;
  std::vector<std::string> path;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty()) continue;
    if (line == "}") {
      if (!path.empty()) path.pop_back();
      continue;
    }
    if (line.size() > 2 && line.substr(line.size() - 2) == " {") {
      path.emplace_back(line.substr(0, line.size() - 2));
      continue;
    }
    std::string full;
    for (const std::string& p : path) full += p + ".";
    lines.push_back(full + std::string(line));
  }
  return lines;
}

// Bytes as protoc's text format prints them (C escapes, octal for the unprintable).
inline std::string cEscaped(std::string_view bytes) {
  std::string out;
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '"': out += "\\\""; break;
      case '\'': out += "\\'"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out.push_back(static_cast<char>(c));
        } else {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\%03o", c);
          out += buf;
        }
    }
  }
  return out;
}

template <size_t N>
std::string cEscaped(const std::array<uint8_t, N>& bytes) {
  return cEscaped(std::string_view(reinterpret_cast<const char*>(bytes.data()), N));
}

inline TraceId traceIdFromHex(std::string_view hex) {
  TraceId id;
  TraceId::fromHex(hex, id);
  return id;
}
inline SpanId spanIdFromHex(std::string_view hex) {
  SpanId id;
  SpanId::fromHex(hex, id);
  return id;
}

// A server span as the proxy makes it: 12 attributes of every type, an event, a link, an
// error status, sampled with a remote parent.
inline SpanRecord realisticServerSpan() {
  SpanRecord s;
  s.trace_id = traceIdFromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  s.span_id = spanIdFromHex("00f067aa0ba902b7");
  s.parent_span_id = spanIdFromHex("53995c3f42cd8ad8");
  s.trace_state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
  s.flags = 0x01 | span_flags::kHasIsRemote | span_flags::kIsRemote;
  s.name = "GET /api/v1/users/{id}";
  s.kind = SpanKind::kServer;
  s.start_unix_nano = 1700000000123456789ULL;
  s.end_unix_nano = 1700000000173456789ULL;
  s.attributes.set("http.request.method", std::string("GET"));
  s.attributes.set("url.path", std::string("/api/v1/users/42"));
  s.attributes.set("url.scheme", std::string("https"));
  s.attributes.set("http.route", std::string("/api/v1/users/{id}"));
  s.attributes.set("http.response.status_code", int64_t{503});
  s.attributes.set("server.address", std::string("users.default.svc.cluster.local"));
  s.attributes.set("server.port", int64_t{8080});
  s.attributes.set("client.address", std::string("10.1.2.3"));
  s.attributes.set("user_agent.original", std::string("curl/8.4.0"));
  s.attributes.set("http.request.header.accept", StringArray{"application/json", "text/*"});
  s.attributes.set("tracecar.upstream.retried", false);
  s.attributes.set("tracecar.sample_ratio", 0.25);
  SpanEvent e;
  e.name = "upstream reset";
  e.time_unix_nano = 1700000000170000000ULL;
  e.attributes.set("tracecar.attempt", int64_t{-1});
  s.events.push_back(std::move(e));
  SpanLink l;
  l.trace_id = traceIdFromHex("0af7651916cd43dd8448eb211c80319c");
  l.span_id = spanIdFromHex("b7ad6b7169203331");
  l.trace_state = "rojo=1";
  l.flags = 0x01 | span_flags::kHasIsRemote;
  l.attributes.set("link.reason", std::string("retry"));
  s.links.push_back(std::move(l));
  s.status_code = StatusCode::kError;
  s.status_message = "upstream \"users\" answered 503";
  return s;
}

// A root span: no parent, no flags, no status, only dropped counts.
inline SpanRecord rootSpan() {
  SpanRecord s;
  s.trace_id = traceIdFromHex("5b8efff798038103d269b633813fc60c");
  s.span_id = spanIdFromHex("eee19b7ec3c1b174");
  s.name = "health";
  s.kind = SpanKind::kInternal;
  s.start_unix_nano = 1;
  s.end_unix_nano = 2;
  const AttributeLimits one{1, 16};
  s.attributes.set("a", std::string("é and more than sixteen characters"), one);
  s.attributes.set("b", int64_t{1}, one);
  s.attributes.set("c", int64_t{2}, one);
  s.dropped_events = 1;
  s.dropped_links = 3;
  return s;
}

inline Resource testResource() {
  std::vector<std::string> warnings;
  return Resource::fromEnvironment(
      mapEnvironment({{"OTEL_SERVICE_NAME", "checkout"}, {"K8S_POD_NAME", "checkout-7d9f"}}),
      "0.1.0", warnings);
}

}  // namespace tracecar::exporter::testing
