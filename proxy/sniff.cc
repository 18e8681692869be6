#include "proxy/sniff.h"

#include <cstring>

#include "http/h2_session.h"
#include "http/token.h"

namespace tracecar::proxy {
namespace {

using http::isTokenChar;
using http::kMaxMethodLength;  // the parser's longest method (http/token.h)

enum class Line : uint8_t { kRequestLine, kPrefix, kNo };

// Does bytes start with a request line ("method SP target SP HTTP/d.d" CRLF), a prefix of one, or
// neither? Only the method and the version are checked: the parser judges the rest. The method
// is any token (RFC 9110), not only the uppercase ones the parser takes: a line that ends like a
// request line is a request, which the parser then refuses (400) rather than let it through as
// an opaque tunnel past the limits and the trust boundary; text protocols' lowercase commands
// ("get k") do not end that way.
Line requestLine(std::string_view bytes, size_t max_line) noexcept {
  // RFC 9112 section 2.2: a server ignores empty lines before the request line, and so does
  // the parser. Many of them are a request line too long in coming: the parser judges it.
  size_t empty = 0;
  while (empty < bytes.size() && (bytes[empty] == '\r' || bytes[empty] == '\n')) ++empty;
  if (empty > max_line) return Line::kRequestLine;
  bytes.remove_prefix(empty);
  max_line -= empty;
  size_t method = 0;
  while (method < bytes.size() && isTokenChar(bytes[method])) {
    if (++method > kMaxMethodLength) return Line::kNo;
  }
  if (method == bytes.size()) return Line::kPrefix;
  if (method == 0 || bytes[method] != ' ') return Line::kNo;
  const auto* newline =
      static_cast<const char*>(std::memchr(bytes.data(), '\n', bytes.size()));
  if (newline == nullptr) return bytes.size() > max_line ? Line::kRequestLine : Line::kPrefix;
  std::string_view line(bytes.data(), static_cast<size_t>(newline - bytes.data()));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // " HTTP/d.d" at the end; the parser answers versions it does not take with 400.
  constexpr size_t kVersion = 9;
  if (line.size() < method + 1 + kVersion) return Line::kNo;
  const std::string_view version = line.substr(line.size() - kVersion);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  // In any case: "http/1.1" is a request the parser refuses, not bytes to pass through.
  const auto upper = [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; };
  if (version[0] != ' ' || upper(version[1]) != 'H' || upper(version[2]) != 'T' ||
      upper(version[3]) != 'T' || upper(version[4]) != 'P' || version[5] != '/' ||
      !digit(version[6]) || version[7] != '.' || !digit(version[8])) {
    return Line::kNo;
  }
  return Line::kRequestLine;
}

}  // namespace

std::string_view sniffedProtocolName(SniffedProtocol protocol) noexcept {
  switch (protocol) {
    case SniffedProtocol::kHttp1: return "http1";
    case SniffedProtocol::kH2: return "h2";
    case SniffedProtocol::kTls: return "tls";
    case SniffedProtocol::kServerFirst: return "server_first";
    case SniffedProtocol::kOther: return "other";
    case SniffedProtocol::kCount: break;
  }
  return "other";
}

std::optional<SniffedProtocol> sniffProtocol(std::string_view first_bytes,
                                             size_t max_line) noexcept {
  if (first_bytes.empty()) return std::nullopt;
  if (first_bytes[0] == 0x16) {
    if (first_bytes.size() < 2) return std::nullopt;
    return first_bytes[1] == 0x03 ? SniffedProtocol::kTls : SniffedProtocol::kOther;
  }
  // "PRI * HTTP/2.0" would pass for a request line: the preface is checked first.
  switch (http::sniffH2Preface(first_bytes)) {
    case http::H2Preface::kYes:
      return SniffedProtocol::kH2;
    case http::H2Preface::kNeedMore:
      return std::nullopt;
    case http::H2Preface::kNo:
      break;
  }
  switch (requestLine(first_bytes, max_line)) {
    case Line::kRequestLine:
      return SniffedProtocol::kHttp1;
    case Line::kPrefix:
      return std::nullopt;
    case Line::kNo:
      break;
  }
  return SniffedProtocol::kOther;
}

SniffedProtocol sniffFinal(std::string_view first_bytes) noexcept {
  if (std::optional<SniffedProtocol> decided = sniffProtocol(first_bytes, first_bytes.size())) {
    return *decided;
  }
  if (first_bytes[0] == 0x16) return SniffedProtocol::kOther;
  // A part of the preface or of a request line: the HTTP/1.1 parser answers it (408, 400).
  return SniffedProtocol::kHttp1;
}

}  // namespace tracecar::proxy
