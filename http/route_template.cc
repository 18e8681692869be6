#include "http/route_template.h"

#include <algorithm>
#include <array>
#include <limits>
#include <map>

#include "absl/status/status.h"

namespace tracecar::http {
namespace {

// RFC 3986 pchar without pct-encoded, which is checked on its own.
constexpr std::array<bool, 256> kPchar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=:@")) t[static_cast<uint8_t>(c)] = true;
  return t;
}();

bool isHexDigit(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool isNameStart(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isNameChar(char c) noexcept { return isNameStart(c) || (c >= '0' && c <= '9'); }

// Printable ASCII as is, anything else as \xHH: configuration text may hold any byte.
void appendEscaped(std::string_view in, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : in) {
    const auto b = static_cast<uint8_t>(c);
    if (b >= 0x20 && b < 0x7f && c != '"' && c != '\\') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0x0f]);
    }
  }
}

absl::Status templateError(std::string_view text, size_t pos, std::string_view what) {
  std::string message = "route template \"";
  appendEscaped(text, message);
  message += "\", position ";
  message += std::to_string(pos);
  message += ": ";
  message += what;
  return absl::InvalidArgumentError(message);
}

std::string quotedChar(char c) {
  std::string out = "'";
  appendEscaped(std::string_view(&c, 1), out);
  out += "'";
  return out;
}

// Validates one literal segment starting at text[start].
absl::Status checkLiteral(std::string_view text, size_t start, std::string_view segment) {
  for (size_t i = 0; i < segment.size(); ++i) {
    const char c = segment[i];
    const size_t pos = start + i;
    if (c == '{') return templateError(text, pos, "'{' may only open a whole segment");
    if (c == '}') return templateError(text, pos, "unbalanced '}'");
    if (c == '%') {
      if (i + 2 >= segment.size() || !isHexDigit(segment[i + 1]) || !isHexDigit(segment[i + 2])) {
        return templateError(text, pos, "'%' is not followed by two hex digits");
      }
      i += 2;
      continue;
    }
    if (!kPchar[static_cast<uint8_t>(c)]) {
      return templateError(text, pos, "character " + quotedChar(c) + " is not allowed in a path");
    }
  }
  return absl::OkStatus();
}

// Parses "{...}" starting at text[start] into out.
absl::Status parseParam(std::string_view text, size_t start, std::string_view segment, bool last,
                        std::span<const RouteSegment> earlier, RouteSegment& out) {
  const size_t close = segment.find('}');
  if (close == std::string_view::npos) {
    return templateError(text, start, "'{' has no matching '}'");
  }
  if (close != segment.size() - 1) {
    return templateError(text, start + close + 1, "a parameter must be a whole segment");
  }
  std::string_view name = segment.substr(1, segment.size() - 2);
  out.kind = RouteSegmentKind::kParam;
  if (name.ends_with("...")) {
    name.remove_suffix(3);
    out.kind = RouteSegmentKind::kCatchAll;
    if (!last) {
      return templateError(text, start, "a catch-all '{name...}' must be the last segment");
    }
  }
  if (name.empty()) return templateError(text, start + 1, "empty parameter name");
  for (size_t i = 0; i < name.size(); ++i) {
    if (!(i == 0 ? isNameStart(name[i]) : isNameChar(name[i]))) {
      return templateError(text, start + 1 + i,
                           "character " + quotedChar(name[i]) +
                               " is not allowed in a parameter name ([A-Za-z_][A-Za-z0-9_]*)");
    }
  }
  for (const RouteSegment& s : earlier) {
    if (s.kind != RouteSegmentKind::kLiteral && s.text == name) {
      return templateError(text, start, "duplicate parameter name '" + std::string(name) + "'");
    }
  }
  out.text = name;
  return absl::OkStatus();
}

// Shortest first, then bytewise: most lookups fail on the length alone.
bool literalLess(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

}  // namespace

absl::StatusOr<std::vector<RouteSegment>> parseRouteTemplate(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("route template \"\": empty template");
  if (text[0] != '/') return templateError(text, 0, "does not start with '/'");
  std::vector<RouteSegment> segments;
  size_t start = 1;
  while (true) {
    const size_t slash = text.find('/', start);
    const bool last = slash == std::string_view::npos;
    const size_t end = last ? text.size() : slash;
    const std::string_view segment = text.substr(start, end - start);
    if (segments.size() == kMaxRouteTemplateSegments) {
      return templateError(text, start,
                           "more than " + std::to_string(kMaxRouteTemplateSegments) + " segments");
    }
    RouteSegment parsed;
    if (segment.empty()) {
      if (!last) return templateError(text, start, "empty segment ('//')");
      parsed = {RouteSegmentKind::kLiteral, segment};
    } else if (segment == "*") {
      parsed = {RouteSegmentKind::kParam, {}};
    } else if (segment[0] == '{') {
      if (absl::Status s = parseParam(text, start, segment, last, segments, parsed); !s.ok()) {
        return s;
      }
    } else {
      if (absl::Status s = checkLiteral(text, start, segment); !s.ok()) return s;
      parsed = {RouteSegmentKind::kLiteral, segment};
    }
    segments.push_back(parsed);
    if (last) return segments;
    start = slash + 1;
  }
}

absl::StatusOr<RouteMatcher> RouteMatcher::compile(std::span<const std::string> templates) {
  std::vector<std::string_view> views(templates.begin(), templates.end());
  return compile(std::span<const std::string_view>(views));
}

absl::StatusOr<RouteMatcher> RouteMatcher::compile(std::span<const std::string_view> templates) {
  RouteMatcher m;
  size_t total = 0;
  for (std::string_view t : templates) total += t.size();
  if (total >= std::numeric_limits<uint32_t>::max() || templates.size() >= kNone) {
    return absl::InvalidArgumentError("route templates: too many, or too long");
  }
  m.text_.reserve(total);
  m.routes_.reserve(templates.size());
  for (std::string_view t : templates) {
    m.routes_.push_back({static_cast<uint32_t>(m.text_.size()), static_cast<uint32_t>(t.size())});
    m.text_ += t;
  }

  struct BuildNode {
    std::map<std::string_view, uint32_t> literals;  // views into m.text_
    uint32_t param_child = kNone;
    uint32_t terminal = kNone;
    uint32_t catch_all = kNone;
  };
  std::vector<BuildNode> build(1);
  for (uint32_t index = 0; index < m.routes_.size(); ++index) {
    absl::StatusOr<std::vector<RouteSegment>> segments =
        parseRouteTemplate(m.view(m.routes_[index]));
    if (!segments.ok()) return segments.status();
    uint32_t node = 0;
    for (const RouteSegment& s : *segments) {
      uint32_t next = kNone;
      if (s.kind == RouteSegmentKind::kCatchAll) {
        // Indices rise, so the first one to land here is the lowest.
        if (build[node].catch_all == kNone) build[node].catch_all = index;
        break;
      }
      if (s.kind == RouteSegmentKind::kParam) {
        next = build[node].param_child;
        if (next == kNone) {
          next = static_cast<uint32_t>(build.size());
          build[node].param_child = next;
          build.emplace_back();
        }
      } else {
        auto it = build[node].literals.find(s.text);
        if (it == build[node].literals.end()) {
          next = static_cast<uint32_t>(build.size());
          build[node].literals.emplace(s.text, next);
          build.emplace_back();
        } else {
          next = it->second;
        }
      }
      node = next;
    }
    if (segments->back().kind != RouteSegmentKind::kCatchAll && build[node].terminal == kNone) {
      build[node].terminal = index;
    }
  }

  m.nodes_.resize(build.size());
  for (size_t i = 0; i < build.size(); ++i) {
    Node& n = m.nodes_[i];
    n.edges_begin = static_cast<uint32_t>(m.edges_.size());
    for (const auto& [text, child] : build[i].literals) {
      m.edges_.push_back({{static_cast<uint32_t>(text.data() - m.text_.data()),
                           static_cast<uint32_t>(text.size())},
                          child});
    }
    n.edges_end = static_cast<uint32_t>(m.edges_.size());
    std::sort(m.edges_.begin() + n.edges_begin, m.edges_.end(), [&m](const Edge& a, const Edge& b) {
      return literalLess(m.view(a.text), m.view(b.text));
    });
    n.param_child = build[i].param_child;
    n.terminal = build[i].terminal;
    n.catch_all = build[i].catch_all;
  }
  // A child is always created after its parent, so one backward pass sees children first.
  for (size_t i = m.nodes_.size(); i-- > 0;) {
    Node& n = m.nodes_[i];
    uint32_t lowest = std::min(n.terminal, n.catch_all);
    if (n.param_child != kNone) lowest = std::min(lowest, m.nodes_[n.param_child].subtree_min);
    for (uint32_t e = n.edges_begin; e < n.edges_end; ++e) {
      lowest = std::min(lowest, m.nodes_[m.edges_[e].child].subtree_min);
    }
    n.subtree_min = lowest;
  }
  return m;
}

std::string_view RouteMatcher::route(size_t index) const noexcept {
  if (index >= routes_.size()) return {};
  return view(routes_[index]);
}

uint32_t RouteMatcher::findLiteral(const Node& node, std::string_view segment) const noexcept {
  const auto first = edges_.begin() + node.edges_begin;
  const auto last = edges_.begin() + node.edges_end;
  const auto it = std::lower_bound(first, last, segment, [this](const Edge& e, std::string_view s) {
    return literalLess(view(e.text), s);
  });
  if (it == last || view(it->text) != segment) return kNone;
  return it->child;
}

// Why this returns the lowest matching index: every template is one root-to-leaf walk of the
// trie, and a template matches exactly when that walk consumes the path segment by segment.
// At each node the only children that can continue a match are the literal child equal to the
// segment (at most one), the param child (when the segment is non-empty) and the catch-all (when
// the rest is non-empty); the search tries all of them. It skips a subtree only when the
// lowest index anywhere in it is no lower than the best match already found, so no lower
// matching index is ever skipped. pos is where the next segment starts in rest, or npos once
// every segment is consumed; each node is visited at most once (its depth fixes pos).
void RouteMatcher::search(uint32_t node_index, std::string_view rest, size_t pos,
                          uint32_t& best) const noexcept {
  const Node& node = nodes_[node_index];
  if (node.subtree_min >= best) return;
  if (pos == std::string_view::npos) {
    best = std::min(best, node.terminal);
    return;
  }
  if (pos < rest.size()) best = std::min(best, node.catch_all);
  const size_t slash = rest.find('/', pos);
  const std::string_view segment =
      rest.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
  const size_t next = slash == std::string_view::npos ? std::string_view::npos : slash + 1;

  uint32_t first = node.edges_begin == node.edges_end ? kNone : findLiteral(node, segment);
  uint32_t second = segment.empty() ? kNone : node.param_child;
  // The subtree holding the lower index goes first, so the other is more likely pruned.
  if (first == kNone ||
      (second != kNone && nodes_[second].subtree_min < nodes_[first].subtree_min)) {
    std::swap(first, second);
  }
  if (first != kNone) search(first, rest, next, best);
  if (second != kNone) search(second, rest, next, best);
}

std::optional<RouteMatch> RouteMatcher::match(std::string_view path) const noexcept {
  if (nodes_.empty()) return std::nullopt;
  path = stripQueryAndFragment(path);
  if (path.empty()) path = "/";
  if (path.front() != '/') return std::nullopt;
  uint32_t best = kNone;
  search(0, path.substr(1), 0, best);
  if (best == kNone) return std::nullopt;
  return RouteMatch{view(routes_[best]), best};
}

}  // namespace tracecar::http
