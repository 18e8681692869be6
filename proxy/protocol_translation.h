#pragma once

// Pure helpers for requests that change HTTP version on their way upstream (an HTTP/2 stream
// to an HTTP/1.1 upstream, an HTTP/1.1 request to an HTTP/2 upstream): heads both ways and
// framing decisions. No I/O, no libuv.

#include <cstdint>
#include <string>
#include <string_view>

#include "http/h2_session.h"
#include "http/http1_parser.h"
#include "proxy/data_path_headers.h"

namespace tracecar::proxy {

// ---- an HTTP/2 stream to an HTTP/1.1 upstream ----

// How the body of an HTTP/2 request is framed in HTTP/1.1.
enum class H1RequestFraming : uint8_t {
  kNone,     // no body: no framing field
  kLength,   // Content-Length (the client's, or the whole body when it came with the head)
  kChunked,  // Transfer-Encoding: chunked; request trailers become chunked trailers
};
struct H1RequestBody {
  H1RequestFraming framing = H1RequestFraming::kNone;
  uint64_t length = 0;  // kLength: the value to add when the request has no content-length
  bool add_length = false;
};
// headers: the request's regular fields. ended: END_STREAM already came, after buffered body
// bytes (and trailers when has_trailers).
H1RequestBody chooseH1RequestBody(const http::HeaderMap& headers, bool ended, uint64_t buffered,
                                  bool has_trailers) noexcept;

// "METHOD target HTTP/1.1", the fields (several cookie fields joined with "; ", RFC 9113
// section 8.2.3), the framing field, "Connection: te" when TE is sent, and the empty line.
// request is the protocol-neutral head of the stream: :path as target, :authority as Host.
void appendH1RequestHead(std::string& out, const http::Http1Head& request,
                         const H1RequestBody& body);

// The HTTP/2 head of an HTTP/1.1 response (final or 1xx): the status, the fields without the
// hop-by-hop ones (Connection and what it names, Keep-Alive, Proxy-Connection, TE,
// Transfer-Encoding, Upgrade), and without Content-Length where HTTP/2 forbids one (1xx, 204).
// The fields are moved out of response.
http::H2Head h2ResponseFromH1(http::Http1Head& response);

// ---- an HTTP/1.1 request to an HTTP/2 upstream ----

// The HTTP/2 head of an HTTP/1.1 request whose hop-by-hop fields are already removed: :method,
// :scheme http, :authority from the absolute-form target or Host (fallback_authority when
// there is neither), :path in origin-form ("*" for OPTIONS *), the fields without Host, and
// "te: trailers" when the client accepts trailers. The fields are moved out of request.
http::H2Head h2RequestFromH1(http::Http1Head& request, const RequestTargetParts& target,
                             bool te_trailers, std::string_view fallback_authority);

// The HTTP/1.1 head of an HTTP/2 response (final or 1xx): the status with its reason phrase,
// version 2.0 (what the upstream spoke), the fields, Content-Length when the response has one.
// The fields are moved out of response.
http::Http1Head h1ResponseFromH2(http::H2Head& response);

// The reason phrase of a status code (RFC 9110 section 15), "" for one it does not define.
std::string_view statusReason(int status) noexcept;

}  // namespace tracecar::proxy
