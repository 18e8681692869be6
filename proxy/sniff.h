#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

// Protocol sniffing: what a downstream connection speaks, from its first bytes, decided once per
// connection before the HTTP/1.1 parser sees a byte (docs/transparent-mode.md).
namespace tracecar::proxy {

enum class SniffedProtocol : uint8_t {
  kHttp1,        // a request line: METHOD SP target SP HTTP/x.y
  kH2,           // the HTTP/2 client preface (h2c with prior knowledge)
  kTls,          // a TLS record header: handshake (0x16), version 3.x
  kServerFirst,  // the client sent nothing: it waits for the server to speak first
  kOther,        // anything else (database protocols, HTTP/0.9...)
  kCount
};
inline constexpr size_t kSniffedProtocolCount = static_cast<size_t>(SniffedProtocol::kCount);
// "http1", "h2", "tls", "server_first", "other": the protocol label on /metrics.
std::string_view sniffedProtocolName(SniffedProtocol protocol) noexcept;

// The protocol of a connection whose first bytes are first_bytes, or nullopt when they could still
// start more than one (more bytes needed). max_line bounds how far a request line is looked for:
// HTTP-looking bytes that long without a line end are taken for HTTP/1.x (the parser answers 414).
std::optional<SniffedProtocol> sniffProtocol(std::string_view first_bytes,
                                             size_t max_line) noexcept;

// The decision when no more bytes will come in time (a timeout or the client's FIN): HTTP/1.x when
// the bytes can still start a request line, else kOther. first_bytes is not empty.
SniffedProtocol sniffFinal(std::string_view first_bytes) noexcept;

}  // namespace tracecar::proxy
