#pragma once

#include <cstddef>
#include <string_view>

// RFC 9110 tokens: methods, header field names, parameter names.
namespace tracecar::http {

// RFC 9110 tchar.
constexpr bool isTokenChar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

// What tracecar takes for a method: 1 to kMaxMethodLength of A-Z, '-' and '_'. RFC 9110 allows
// any token, but every registered method is uppercase letters and '-' ("UPDATEREDIRECTREF", 17,
// is the longest); lowercase words are left to the text protocols that use them (memcached's
// "get k"), which the sniffer must not take for HTTP, and the parser takes the same methods, so
// that a request is treated alike wherever on its connection it comes.
inline constexpr size_t kMaxMethodLength = 20;
constexpr bool isMethodChar(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

// RFC 9110 section 9.2.2: a method whose intended effect is the same however many times the
// request is made (GET, HEAD, OPTIONS, TRACE, PUT, DELETE). A proxy retries no other request
// on its own (RFC 9112 section 9.3.1). Methods are case-sensitive.
constexpr bool isIdempotentMethod(std::string_view method) noexcept {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

}  // namespace tracecar::http
