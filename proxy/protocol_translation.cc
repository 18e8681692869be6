#include "proxy/protocol_translation.h"

#include <charconv>
#include <optional>
#include <utility>

namespace tracecar::proxy {
namespace {

using http::HeaderMap;

// A Content-Length value: 1*DIGIT (a list of equal values is refused by both codecs already).
std::optional<uint64_t> parseLength(std::string_view value) noexcept {
  if (value.empty()) return std::nullopt;
  uint64_t n = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (error != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return n;
}

}  // namespace

H1RequestBody chooseH1RequestBody(const HeaderMap& headers, bool ended, uint64_t buffered,
                                  bool has_trailers) noexcept {
  H1RequestBody body;
  if (headers.get("content-length")) {
    body.framing = H1RequestFraming::kLength;
    return body;
  }
  if (ended && !has_trailers) {
    // The whole body came with the head: its length is known.
    if (buffered == 0) return body;
    body.framing = H1RequestFraming::kLength;
    body.length = buffered;
    body.add_length = true;
    return body;
  }
  body.framing = H1RequestFraming::kChunked;
  return body;
}

void appendH1RequestHead(std::string& out, const http::Http1Head& request,
                         const H1RequestBody& body) {
  const HeaderMap& headers = request.headers;
  out.reserve(out.size() + request.method.size() + request.target.size() + headers.byteSize() + 96);
  out += request.method;
  out += ' ';
  out += request.target;
  out += " HTTP/1.1\r\n";
  bool cookies_done = false;
  bool te = false;
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string_view name = headers.name(i);
    if (HeaderMap::nameEquals(name, "cookie")) {
      // HTTP/2 may split cookies into several fields; HTTP/1.1 wants one (RFC 9113 8.2.3).
      if (cookies_done) continue;
      cookies_done = true;
      out += name;
      out += ": ";
      bool first = true;
      headers.forEach("cookie", [&](std::string_view value) {
        if (!first) out += "; ";
        out += value;
        first = false;
      });
      out += "\r\n";
      continue;
    }
    if (HeaderMap::nameEquals(name, "te")) te = true;
    out += name;
    out += ": ";
    out += headers.value(i);
    out += "\r\n";
  }
  switch (body.framing) {
    case H1RequestFraming::kNone:
      break;
    case H1RequestFraming::kLength:
      if (body.add_length) {
        out += "Content-Length: ";
        out += std::to_string(body.length);
        out += "\r\n";
      }
      break;
    case H1RequestFraming::kChunked:
      out += "Transfer-Encoding: chunked\r\n";
      break;
  }
  // TE is hop-by-hop in HTTP/1.1: its sender names it in Connection (RFC 9110 section 10.1.4).
  if (te) out += "Connection: te\r\n";
  out += "\r\n";
}

http::H2Head h2ResponseFromH1(http::Http1Head& response) {
  http::H2Head head;
  head.status = response.status;
  head.header_list_bytes = response.header_bytes;
  head.headers = std::move(response.headers);
  stripHopByHop(head.headers);
  if ((response.status >= 100 && response.status < 200) || response.status == 204) {
    head.headers.remove("content-length");
  }
  return head;
}

http::H2Head h2RequestFromH1(http::Http1Head& request, const RequestTargetParts& target,
                             bool te_trailers, std::string_view fallback_authority) {
  http::H2Head head;
  head.method = request.method;
  head.scheme = "http";
  switch (target.form) {
    case RequestTargetForm::kAbsolute: {
      head.authority = std::string(target.authority);
      const std::string_view path = target.path.substr(0, target.path.find('#'));
      if (path.empty()) {
        head.path = request.method == "OPTIONS" ? "*" : "/";
      } else if (path.front() != '/') {
        head.path = "/";  // "http://host?query"
        head.path += path;
      } else {
        head.path = std::string(path);
      }
      break;
    }
    case RequestTargetForm::kAsterisk:
      head.path = "*";
      break;
    case RequestTargetForm::kOrigin:
    case RequestTargetForm::kAuthority:
      head.path = request.target;
      break;
  }
  if (head.authority.empty()) {
    if (std::optional<std::string_view> host = request.headers.get("host")) {
      head.authority = std::string(*host);
    }
  }
  if (head.authority.empty()) head.authority = std::string(fallback_authority);
  head.headers = std::move(request.headers);
  head.headers.remove("host");
  if (te_trailers) head.headers.add("te", "trailers");
  return head;
}

http::Http1Head h1ResponseFromH2(http::H2Head& response) {
  http::Http1Head head;
  head.status = response.status;
  head.reason = std::string(statusReason(response.status));
  head.version_major = 2;
  head.version_minor = 0;
  head.header_bytes = response.header_list_bytes;
  head.keep_alive = true;
  head.headers = std::move(response.headers);
  if (std::optional<std::string_view> length = head.headers.get("content-length")) {
    head.content_length = parseLength(*length);
    if (!head.content_length) head.headers.remove("content-length");
  }
  return head;
}

std::string_view statusReason(int status) noexcept {
  // clang-format off
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 508: return "Loop Detected";
    case 511: return "Network Authentication Required";
    default: return "";
  }
  // clang-format on
}

}  // namespace tracecar::proxy
