#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tracecar::http {

// Route templates, as configured per service, e.g. "/users/{id}/orders" or "/static/{path...}".
//
// Syntax: a template starts with '/' and is split at every '/' into segments. A segment is
//   - a literal: one or more RFC 3986 pchars (unreserved, sub-delims, ':', '@', %XX). It is
//     compared byte for byte with the raw path segment: case-sensitive, and percent-escapes are
//     not decoded on either side ("%2F" inside a segment must never become a separator);
//   - "{name}" or "*": exactly one non-empty path segment (any bytes but '/');
//   - "{name...}": only as the last segment; the rest of the path, which must be non-empty
//     ("/files/{p...}" matches "/files/a" and "/files/a/b/", not "/files" nor "/files/");
//   - empty: only as the last segment, which is how a trailing slash is written. Trailing
//     slashes are significant: "/users/" and "/users" match different paths; "/" matches only
//     the root. An empty segment elsewhere ("//") is an error.
// A '*' inside a longer segment is a literal character. Names are [A-Za-z_][A-Za-z0-9_]* and
// unique within a template.
//
// Paths are matched on their raw bytes up to the first '?' or '#'. An empty path (before the
// query) is the root "/"; a path not starting with '/' matches nothing. "//" in a path is an
// empty segment, which no literal, "{name}" or "*" matches.

enum class RouteSegmentKind : uint8_t {
  kLiteral,
  kParam,     // {name} or *
  kCatchAll,  // {name...}
};

struct RouteSegment {
  RouteSegmentKind kind = RouteSegmentKind::kLiteral;
  std::string_view text;  // literal bytes, or the parameter name (empty for '*')
};

// Deeper templates are almost surely a mistake, and the bound keeps matching's recursion short.
inline constexpr size_t kMaxRouteTemplateSegments = 64;

// Parses one template. The segments view into text. Errors name the template and the 0-based
// byte position of the problem.
absl::StatusOr<std::vector<RouteSegment>> parseRouteTemplate(std::string_view text);

// The path of a request target: everything before the first '?' or '#'. (A plain loop:
// find_first_of("?#") is several times slower in libstdc++.)
inline std::string_view stripQueryAndFragment(std::string_view target) noexcept {
  size_t i = 0;
  while (i < target.size() && target[i] != '?' && target[i] != '#') ++i;
  return target.substr(0, i);
}

struct RouteMatch {
  std::string_view route;  // the template as configured, owned by the matcher
  uint32_t index = 0;      // its position in the configuration
};

// A set of templates compiled into a segment trie. match() returns the first template in
// configuration order that matches, in one depth-first walk of the trie, without allocating.
// Templates that can never win (shadowed by an earlier one) are accepted.
class RouteMatcher {
 public:
  RouteMatcher() = default;  // matches nothing

  static absl::StatusOr<RouteMatcher> compile(std::span<const std::string_view> templates);
  static absl::StatusOr<RouteMatcher> compile(std::span<const std::string> templates);
  static absl::StatusOr<RouteMatcher> compile(std::initializer_list<std::string_view> templates) {
    return compile(std::span<const std::string_view>(templates.begin(), templates.size()));
  }

  std::optional<RouteMatch> match(std::string_view path) const noexcept;

  size_t size() const noexcept { return routes_.size(); }
  bool empty() const noexcept { return routes_.empty(); }
  // The template at index, as configured; empty when out of range.
  std::string_view route(size_t index) const noexcept;

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Span {
    uint32_t offset = 0;  // into text_
    uint32_t length = 0;
  };
  // A literal edge out of a node.
  struct Edge {
    Span text;
    uint32_t child = kNone;
  };
  struct Node {
    uint32_t edges_begin = 0;  // [edges_begin, edges_end) in edges_, sorted by (length, bytes)
    uint32_t edges_end = 0;
    uint32_t param_child = kNone;
    uint32_t terminal = kNone;     // lowest index of the templates ending here
    uint32_t catch_all = kNone;    // lowest index of the templates ending here with {name...}
    uint32_t subtree_min = kNone;  // lowest index of any template in this subtree
  };

  std::string_view view(Span span) const noexcept {
    return std::string_view(text_.data() + span.offset, span.length);
  }
  uint32_t findLiteral(const Node& node, std::string_view segment) const noexcept;
  void search(uint32_t node, std::string_view rest, size_t pos, uint32_t& best) const noexcept;

  std::string text_;          // every template, concatenated
  std::vector<Span> routes_;  // in configuration order
  std::vector<Node> nodes_;   // nodes_[0] is the root
  std::vector<Edge> edges_;
};

}  // namespace tracecar::http
