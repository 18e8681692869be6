#pragma once

// Pure helpers of the data path: hop-by-hop fields, request targets, framing, local replies.
// No I/O, no libuv.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/header_map.h"
#include "http/http1_parser.h"

namespace tracecar::proxy {

// What the hop-by-hop fields of a message said, read before they are removed.
struct HopByHopInfo {
  bool te_trailers = false;  // TE lists "trailers": the peer accepts trailer fields
};

struct HopByHopOptions {
  bool keep_upgrade = false;              // the message asks for (or grants) a protocol switch
  bool keep_proxy_authorization = true;   // false when tracecar is the proxy it is meant for
};

// Removes the hop-by-hop fields of RFC 9110 section 7.6.1: Connection and every field it names,
// Proxy-Connection, Keep-Alive, TE, Transfer-Encoding (the caller re-frames the body), Upgrade
// (unless kept), Proxy-Authorization (unless kept), Proxy-Authenticate is end-to-end to the
// client and stays. Fields that frame the message or route it (Host, Content-Length) are never
// removed, even when Connection names them.
HopByHopInfo stripHopByHop(http::HeaderMap& headers, const HopByHopOptions& options = {});

// RFC 9110 section 10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0
// request. Forwarded as it came, it would ask an HTTP/1.1 upstream for an interim answer that
// tracecar may not relay to the client (section 15.2): the expectation is removed, any other
// member of Expect stays. Returns whether anything was removed.
bool dropContinueExpectation(http::HeaderMap& headers);

// Removes from a trailer section, before it goes on, the fields that must not travel there
// (RFC 9110 section 6.5.1: framing, routing, connection control; the hop-by-hop fields of
// section 7.6.1; Proxy-Authorization and Proxy-Authenticate) and the trace context fields
// (traceparent, tracestate, baggage, b3, x-b3-*, uber-trace-id, uberctx-*), which tracecar writes
// in the header section only. Everything else (grpc-status, checksums...) stays. Returns how
// many went.
// Never throws: out of memory to compact the map, the fields are still gone.
size_t stripTrailerFields(http::HeaderMap& trailers) noexcept;

// An authority "host[:port]"; the host of an IPv6 literal without its brackets.
struct Authority {
  std::string_view host;
  uint16_t port = 0;
  bool has_port = false;
  bool ipv6 = false;
};
// nullopt for an empty host, a bad port, userinfo ("user@host"), or characters outside the
// URI's host grammar.
std::optional<Authority> parseAuthority(std::string_view text) noexcept;

// The four request-target forms of RFC 9112 section 3.2.
enum class RequestTargetForm : uint8_t { kOrigin, kAbsolute, kAuthority, kAsterisk };

struct RequestTargetParts {
  RequestTargetForm form = RequestTargetForm::kOrigin;
  std::string_view scheme;     // absolute-form, lowercase compare with schemeIs
  std::string_view authority;  // absolute-form and authority-form
  std::string_view path;       // origin-form of the target: "/x?y" ("/" when absent)
};
// nullopt when the target has none of the forms (or authority-form outside CONNECT, CONNECT in
// another form, "*" outside OPTIONS).
std::optional<RequestTargetParts> parseRequestTarget(std::string_view method,
                                                     std::string_view target) noexcept;
bool schemeIs(std::string_view scheme, std::string_view lowercase) noexcept;

// Is value a valid Host field value (RFC 9110 section 7.2: uri-host [ ":" port ], possibly
// empty)?
bool isValidHost(std::string_view value) noexcept;

// The reason phrase tracecar writes for its own answers ("Bad Gateway").
std::string_view reasonPhrase(int status) noexcept;

// "HTTP/1.1 <status> <phrase>", text/plain, reason + "\n" as the body (left out for HEAD), and
// Connection: close when close.
void appendLocalReply(std::string& out, int status, std::string_view reason, bool close,
                      bool head_request);

// Max-Forwards (RFC 9110 section 7.6.2), which only OPTIONS and TRACE heed: kAnswer when the
// request carries Max-Forwards: 0 (tracecar is its last hop and answers it itself); otherwise a
// valid value is decremented in place and kForward returned. Other methods, and a value that is
// not one number, are left as they are.
enum class MaxForwardsStep : uint8_t { kForward, kAnswer };
MaxForwardsStep applyMaxForwards(std::string_view method, http::HeaderMap& headers);

// The answer of the last hop to an OPTIONS or TRACE request: for OPTIONS no content; for TRACE
// the request head as tracecar would have forwarded it (message/http, RFC 9110 section 9.3.8),
// without the fields that carry credentials (Authorization, Proxy-Authorization, Cookie).
struct LastHopAnswer {
  std::string_view content_type;  // empty: no content
  std::string content;
};
LastHopAnswer lastHopAnswer(const http::Http1Head& request);
// "HTTP/1.1 200 OK", then the answer's Content-Type, Content-Length, Connection: close when
// close, and its content.
void appendLastHopAnswer(std::string& out, const LastHopAnswer& answer, bool close);

// "<size in hex>\r\n"
void appendChunkHeader(std::string& out, size_t size);
// The last chunk, the trailer fields, the final CRLF.
void appendLastChunk(std::string& out, const http::HeaderMap* trailers);

// How a response body goes downstream.
enum class BodyFraming : uint8_t {
  kNone,     // no body (HEAD, 1xx, 204, 304, tunnels)
  kLength,   // Content-Length as received
  kChunked,  // chunked, re-encoded chunk by chunk (received chunked, or close-delimited)
  kClose,    // delimited by closing the connection (HTTP/1.0 clients)
};
struct ResponseFraming {
  BodyFraming framing = BodyFraming::kNone;
  // The Transfer-Encoding value to send, "" for none: the received codings ending in chunked.
  std::string transfer_encoding;
  bool close = false;  // the downstream connection must close after this response
};
// Decides the downstream framing of a response. transfer_encoding is what the upstream sent
// ("" when none); no_body says the response has no body whatever it says (HEAD, 1xx, 204, 304).
// RFC 9110 section 7.8: does a 101's Upgrade list (chosen) name protocols the request's Upgrade
// list (offered) named, and only those? Protocol names compare case-insensitively. An empty
// chosen list is no.
bool upgradeOffered(std::string_view offered, std::string_view chosen) noexcept;
// Does the Transfer-Encoding list name chunked anywhere (case-insensitive, parameters ignored)?
bool hasChunkedCoding(std::string_view transfer_encoding) noexcept;
ResponseFraming chooseResponseFraming(bool no_body, std::optional<uint64_t> content_length,
                                      std::string_view transfer_encoding, bool upstream_chunked,
                                      bool downstream_http11, bool head_request);

}  // namespace tracecar::proxy
