// The admin server's pages: what each request gets, independent of the connection it came on.
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <ctime>

#include "exporter/recent_spans.h"
#include "exporter/span.h"
#include "proxy/admin_server.h"

namespace tracecar::proxy {
namespace {

enum class Page : uint8_t { kMetrics, kHealthz, kReadyz, kSpans, kNone };

// The path of an origin-form or absolute-form request target, without query or fragment.
std::string_view pathOf(std::string_view target) noexcept {
  if (!target.starts_with('/')) {
    const size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return {};  // authority-form, asterisk-form
    const size_t slash = target.find('/', scheme_end + 3);
    if (slash == std::string_view::npos) return "/";
    target.remove_prefix(slash);
  }
  return target.substr(0, target.find_first_of("?#"));
}

Page pageOf(std::string_view path) noexcept {
  if (path == "/metrics") return Page::kMetrics;
  if (path == "/healthz") return Page::kHealthz;
  if (path == "/readyz") return Page::kReadyz;
  if (path == "/debug/spans") return Page::kSpans;
  return Page::kNone;
}

std::string_view reasonPhrase(int status) noexcept {
  switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
  }
}

constexpr std::string_view kTextType = "text/plain; charset=utf-8";
constexpr std::string_view kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJsonType = "application/json";

std::string_view kindName(exporter::SpanKind kind) noexcept {
  switch (kind) {
    case exporter::SpanKind::kInternal: return "internal";
    case exporter::SpanKind::kServer: return "server";
    case exporter::SpanKind::kClient: return "client";
    case exporter::SpanKind::kProducer: return "producer";
    case exporter::SpanKind::kConsumer: return "consumer";
    case exporter::SpanKind::kUnspecified: break;
  }
  return "unspecified";
}

std::string_view statusName(exporter::StatusCode status) noexcept {
  switch (status) {
    case exporter::StatusCode::kOk: return "ok";
    case exporter::StatusCode::kError: return "error";
    case exporter::StatusCode::kUnset: break;
  }
  return "unset";
}

// A JSON string: quotes, backslashes and control characters escaped, ill-formed UTF-8 replaced.
void appendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  exporter::utf8::forEachSanitizedRun(text, [&out](std::string_view run) {
    for (char c : run) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (u < 0x20) {
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\u%04x", u);
        out += escaped;
      } else {
        out.push_back(c);
      }
    }
  });
  out.push_back('"');
}

// "2026-11-21T10:00:00.123456789Z"
std::string rfc3339(uint64_t unix_nano) {
  const auto seconds = static_cast<time_t>(unix_nano / 1000000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[48];
  const size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(text + n, sizeof text - n, ".%09uZ", static_cast<unsigned>(unix_nano % 1000000000));
  return text;
}

}  // namespace

AdminServer::Answer AdminServer::answer(std::string_view method, std::string_view target,
                                        int version_minor, bool keep_alive) const {
  const Page page = pageOf(pathOf(target));
  const bool head = method == "HEAD";
  int status = 200;
  std::string_view type = kTextType;
  std::string body;
  bool allow = false;
  if (page == Page::kNone) {
    status = 404;
    body = "not found\n";
  } else if (method != "GET" && !head) {
    status = 405;
    body = "method not allowed\n";
    allow = true;
  } else {
    switch (page) {
      case Page::kMetrics:
        type = kMetricsType;
        body = metricsText();
        break;
      case Page::kHealthz: body = "ok\n"; break;
      case Page::kReadyz:
        switch (readiness()) {
          case Readiness::kReady: body = "ready\n"; break;
          case Readiness::kStarting:
            status = 503;
            body = "not ready\n";
            break;
          case Readiness::kDraining:
            status = 503;
            body = "draining\n";
            break;
        }
        break;
      case Page::kSpans:
        if (sources_.recent_spans == nullptr) {
          status = 404;
          body = "no recent spans are kept\n";
        } else {
          type = kJsonType;
          body = spansJson();
        }
        break;
      case Page::kNone: break;
    }
  }

  Answer answer;
  answer.close = !keep_alive;
  std::string& out = answer.bytes;
  out.reserve(160 + (head ? 0 : body.size()));
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reasonPhrase(status);
  out += "\r\nContent-Type: ";
  out += type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\n";
  if (allow) out += "Allow: GET, HEAD\r\n";
  if (answer.close) {
    out += "Connection: close\r\n";
  } else if (version_minor == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head) out += body;
  return answer;
}

std::string AdminServer::metricsText() const {
  std::vector<prometheus::MetricFamily> families;
  for (const prometheus::Collectable* collectable : sources_.collectables) {
    if (collectable == nullptr) continue;
    std::vector<prometheus::MetricFamily> more = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

std::string AdminServer::spansJson() const {
  const uint64_t total = sources_.recent_spans->totalAdded();
  const std::vector<exporter::SpanSummary> spans = sources_.recent_spans->snapshot();
  std::string out = "{\"total_added\":" + std::to_string(total) + ",\"spans\":[";
  bool first = true;
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) {  // newest first
    const exporter::SpanSummary& s = *it;
    if (!first) out += ',';
    first = false;
    out += "{\"trace_id\":\"";
    out += s.trace_id.toHex();
    out += "\",\"span_id\":\"";
    out += s.span_id.toHex();
    out += "\",\"name\":";
    appendJsonString(out, s.name);
    out += ",\"kind\":\"";
    out += kindName(s.kind);
    out += "\",\"status\":\"";
    out += statusName(s.status);
    out += "\",\"start\":\"";
    out += rfc3339(s.start_unix_nano);
    out += "\",\"start_unix_nano\":\"";  // a string, as in OTLP JSON: past 2^53
    out += std::to_string(s.start_unix_nano);
    out += "\",\"duration_ns\":";
    out += std::to_string(s.duration_ns);
    out += '}';
  }
  out += "]}\n";
  return out;
}

}  // namespace tracecar::proxy
