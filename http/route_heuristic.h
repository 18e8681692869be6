#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tracecar::http {

// A route for a path that matched no configured template: segments that look like identifiers
// become "{id}", the rest are kept, so "/users/42/orders" gives "/users/{id}/orders".
//
// Paths are split at '/' like templates (raw bytes, up to the first '?' or '#'; an empty
// path is "/"; empty segments and a trailing slash are kept). A segment becomes "{id}" when
//   - it is longer than kMaxKeptSegmentLength bytes, or
//   - it holds any byte outside [A-Za-z0-9._~-]: percent-escapes, sub-delims, ':', '@' (so
//     emails), non-ASCII. Such a segment is rarely a fixed word and never safe to echo, or
//   - it is numeric: digits and [._~-] only, with at least one digit ("42", "1.5", "2024-01-31"),
//   - it is a UUID: 8-4-4-4-12 hex digits, either case, or
//   - it is hex: >= 8 hex digits, either case, at least one of them a decimal digit, or
//   - it holds a run of >= 4 decimal digits ("user1234", "ORD-000123"), or
//   - it is a long token: >= 16 bytes of base64url ([A-Za-z0-9_-]) with a decimal digit, or
//     with letters that switch case often (more than a third of adjacent letter pairs) and
//     often two capitals in a row (more than a tenth of the pairs) or a lone lowercase letter
//     between capitals (more than a fifth), as random base64url does. camelCase words, even of
//     short words ("findAllByCustomerId", "getHTTPResponseById"), do not.
// A segment "<stem>.<ext>" whose stem (up to the first '.') is an id by the rules above and
// whose ext is one or more '.'-separated parts of 1-8 letters and digits, each with a letter,
// becomes "{id}.<ext>" ("/img/9f8e7d6c5b.png" -> "/img/{id}.png", "42.tar.gz" -> "{id}.tar.gz").
// Segments past the first kMaxHeuristicSegments become one "{rest...}". A path that does not
// start with '/' (absolute-form, authority-form, "*") gives kOtherRoute.
inline constexpr size_t kMaxHeuristicSegments = 8;
inline constexpr size_t kMaxKeptSegmentLength = 64;
inline constexpr std::string_view kIdSegment = "{id}";
inline constexpr std::string_view kRestSegment = "{rest...}";
// Any route we cannot or will not name: over the cardinality cap, or not a path.
inline constexpr std::string_view kOtherRoute = "/{other}";

// Writes the route of path into out (cleared first). Its length is bounded
// (kMaxHeuristicSegments kept segments, each at most kMaxKeptSegmentLength bytes), so a reused
// out stops allocating once it has grown.
void heuristicRoute(std::string_view path, std::string& out);

// Does this whole segment become "{id}"? (The extension rule is applied by heuristicRoute.)
bool looksLikeId(std::string_view segment) noexcept;

}  // namespace tracecar::http
