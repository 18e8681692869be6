#include "http/route_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/route_cardinality_limiter.h"
#include "http/route_heuristic.h"
#include "http/route_resolver.h"

// Counts heap allocations, to prove the per-request paths allocate nothing.
#include "support/counting_allocator.h"

namespace tracecar::http {
namespace {

using ::testing::HasSubstr;

RouteMatcher compiled(std::vector<std::string_view> templates) {
  absl::StatusOr<RouteMatcher> m =
      RouteMatcher::compile(std::span<const std::string_view>(templates));
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : RouteMatcher();
}

// The matched template, or "" when none.
std::string matchOf(const RouteMatcher& m, std::string_view path) {
  std::optional<RouteMatch> r = m.match(path);
  return r ? std::string(r->route) : std::string();
}

std::string heuristic(std::string_view path) {
  std::string out;
  heuristicRoute(path, out);
  return out;
}

// ---- Template parsing ----

TEST(RouteTemplateParse, AcceptsEveryFormOfSegment) {
  for (std::string_view t : {"/", "/users", "/users/", "/users/{id}", "/files/{path...}", "/a/*/b",
                             "/a*b", "/caf%C3%A9", "/v1/things:search", "/@me", "/{a}/{b}/{c...}",
                             "/_x/{_id9}", "/*/", "/-._~!$&'()*+,;=:@"}) {
    EXPECT_TRUE(parseRouteTemplate(t).ok()) << t << ": " << parseRouteTemplate(t).status();
  }
}

TEST(RouteTemplateParse, ReportsKindsAndNames) {
  absl::StatusOr<std::vector<RouteSegment>> s = parseRouteTemplate("/users/{id}/*/files/{rest...}");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 5u);
  EXPECT_EQ((*s)[0].kind, RouteSegmentKind::kLiteral);
  EXPECT_EQ((*s)[0].text, "users");
  EXPECT_EQ((*s)[1].kind, RouteSegmentKind::kParam);
  EXPECT_EQ((*s)[1].text, "id");
  EXPECT_EQ((*s)[2].kind, RouteSegmentKind::kParam);
  EXPECT_EQ((*s)[2].text, "");
  EXPECT_EQ((*s)[4].kind, RouteSegmentKind::kCatchAll);
  EXPECT_EQ((*s)[4].text, "rest");
}

TEST(RouteTemplateParse, TrailingSlashIsAnEmptyLastSegment) {
  absl::StatusOr<std::vector<RouteSegment>> root = parseRouteTemplate("/");
  ASSERT_TRUE(root.ok());
  ASSERT_EQ(root->size(), 1u);
  EXPECT_EQ((*root)[0].text, "");
  absl::StatusOr<std::vector<RouteSegment>> s = parseRouteTemplate("/users/");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[1].kind, RouteSegmentKind::kLiteral);
  EXPECT_EQ((*s)[1].text, "");
}

struct BadTemplate {
  std::string_view text;
  size_t position;
  std::string_view reason;
};

TEST(RouteTemplateParse, RejectsBadTemplatesNamingTemplateAndPosition) {
  const BadTemplate cases[] = {
      {"users", 0, "does not start with '/'"},
      {"/a/{id", 3, "no matching '}'"},
      {"/a/{", 3, "no matching '}'"},
      {"/a/id}", 5, "unbalanced '}'"},
      {"/a/{id}x", 7, "whole segment"},
      {"/{a{b}}", 6, "whole segment"},
      {"/a/x{id}", 4, "'{' may only open a whole segment"},
      {"/{rest...}/a", 1, "must be the last segment"},
      {"/{rest...}/", 1, "must be the last segment"},
      {"/{id}/{id}", 6, "duplicate parameter name 'id'"},
      {"/{id}/{id...}", 6, "duplicate parameter name 'id'"},
      {"/{}", 2, "empty parameter name"},
      {"/{...}", 2, "empty parameter name"},
      {"/{9id}", 2, "not allowed in a parameter name"},
      {"/{a-b}", 3, "not allowed in a parameter name"},
      {"/a//b", 3, "empty segment"},
      {"//", 1, "empty segment"},
      {"/a b", 2, "' ' is not allowed in a path"},
      {"/a?b", 2, "'?' is not allowed in a path"},
      {"/a#b", 2, "'#' is not allowed in a path"},
      {"/a%2", 2, "'%' is not followed by two hex digits"},
      {"/a%zz", 2, "'%' is not followed by two hex digits"},
      {"/caf\xC3\xA9", 4, "'\\xc3' is not allowed in a path"},
  };
  for (const BadTemplate& c : cases) {
    absl::StatusOr<std::vector<RouteSegment>> s = parseRouteTemplate(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(s.status().message());
    if (c.text.find('\xC3') == std::string_view::npos) {
      EXPECT_THAT(message, HasSubstr("\"" + std::string(c.text) + "\"")) << c.text;
    }
    EXPECT_THAT(message, HasSubstr("position " + std::to_string(c.position) + ":")) << c.text;
    EXPECT_THAT(message, HasSubstr(c.reason)) << c.text;
  }
}

TEST(RouteTemplateParse, RejectsEmptyTemplate) {
  absl::StatusOr<std::vector<RouteSegment>> s = parseRouteTemplate("");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("empty template"));
}

TEST(RouteTemplateParse, SegmentCountAtTheLimitAndOnePast) {
  std::string at_limit;
  for (size_t i = 0; i < kMaxRouteTemplateSegments; ++i) at_limit += "/a";
  EXPECT_TRUE(parseRouteTemplate(at_limit).ok());
  const std::string past = at_limit + "/a";
  absl::StatusOr<std::vector<RouteSegment>> s = parseRouteTemplate(past);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("more than 64 segments"));
}

TEST(RouteTemplateParse, CompileReportsTheBadTemplate) {
  absl::StatusOr<RouteMatcher> m = RouteMatcher::compile({"/ok", "/also/{ok}", "/bad/{x"});
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("\"/bad/{x\", position 5"));
}

// ---- Matching ----

TEST(RouteMatcherTest, LiteralMatchesExactlyAndCaseSensitively) {
  const RouteMatcher m = compiled({"/users"});
  EXPECT_EQ(matchOf(m, "/users"), "/users");
  EXPECT_EQ(matchOf(m, "/Users"), "");
  EXPECT_EQ(matchOf(m, "/user"), "");
  EXPECT_EQ(matchOf(m, "/users/x"), "");
  EXPECT_EQ(matchOf(m, "/usersx"), "");
}

TEST(RouteMatcherTest, ParamMatchesOneNonEmptySegment) {
  const RouteMatcher m = compiled({"/users/{id}", "/a/*/c"});
  EXPECT_EQ(matchOf(m, "/users/42"), "/users/{id}");
  EXPECT_EQ(matchOf(m, "/users/a%2Fb"), "/users/{id}");
  EXPECT_EQ(matchOf(m, "/users"), "");
  EXPECT_EQ(matchOf(m, "/users/"), "");
  EXPECT_EQ(matchOf(m, "/users/42/x"), "");
  EXPECT_EQ(matchOf(m, "/a/b/c"), "/a/*/c");
  EXPECT_EQ(matchOf(m, "/a//c"), "");
}

TEST(RouteMatcherTest, CatchAllMatchesANonEmptyRest) {
  const RouteMatcher m = compiled({"/files/{path...}"});
  EXPECT_EQ(matchOf(m, "/files/a"), "/files/{path...}");
  EXPECT_EQ(matchOf(m, "/files/a/b/c"), "/files/{path...}");
  EXPECT_EQ(matchOf(m, "/files/a/"), "/files/{path...}");
  EXPECT_EQ(matchOf(m, "/files//x"), "/files/{path...}");
  EXPECT_EQ(matchOf(m, "/files"), "");
  EXPECT_EQ(matchOf(m, "/files/"), "");
  EXPECT_EQ(matchOf(m, "/file/a"), "");
}

TEST(RouteMatcherTest, RootTemplateAndRootCatchAll) {
  const RouteMatcher root = compiled({"/"});
  EXPECT_EQ(matchOf(root, "/"), "/");
  EXPECT_EQ(matchOf(root, "/a"), "");
  const RouteMatcher all = compiled({"/{any...}"});
  EXPECT_EQ(matchOf(all, "/a"), "/{any...}");
  EXPECT_EQ(matchOf(all, "//"), "/{any...}");
  EXPECT_EQ(matchOf(all, "/"), "");
}

TEST(RouteMatcherTest, FirstTemplateInConfigurationOrderWins) {
  const RouteMatcher param_first = compiled({"/users/{id}", "/users/me"});
  EXPECT_EQ(param_first.match("/users/me")->index, 0u);
  const RouteMatcher literal_first = compiled({"/users/me", "/users/{id}"});
  EXPECT_EQ(literal_first.match("/users/me")->index, 0u);
  EXPECT_EQ(literal_first.match("/users/42")->index, 1u);
  // The winner sits under the param branch although a literal branch also matches.
  const RouteMatcher deep = compiled({"/a/b/x", "/a/{x}/c", "/a/b/{y}", "/a/b/c"});
  EXPECT_EQ(deep.match("/a/b/c")->index, 1u);
  EXPECT_EQ(deep.match("/a/b/d")->index, 2u);
  const RouteMatcher catch_all_first = compiled({"/{rest...}", "/a/b"});
  EXPECT_EQ(catch_all_first.match("/a/b")->index, 0u);
  const RouteMatcher catch_all_last = compiled({"/a/{rest...}", "/a/b", "/{rest...}"});
  EXPECT_EQ(catch_all_last.match("/a/b")->index, 0u);
  EXPECT_EQ(catch_all_last.match("/b")->index, 2u);
  const RouteMatcher duplicate = compiled({"/a", "/a"});
  EXPECT_EQ(duplicate.match("/a")->index, 0u);
}

TEST(RouteMatcherTest, TrailingSlashIsSignificant) {
  const RouteMatcher bare = compiled({"/users"});
  EXPECT_EQ(matchOf(bare, "/users/"), "");
  const RouteMatcher slash = compiled({"/users/", "/items/{id}/"});
  EXPECT_EQ(matchOf(slash, "/users/"), "/users/");
  EXPECT_EQ(matchOf(slash, "/users"), "");
  EXPECT_EQ(matchOf(slash, "/items/7/"), "/items/{id}/");
  EXPECT_EQ(matchOf(slash, "/items/7"), "");
}

TEST(RouteMatcherTest, QueryAndFragmentAreIgnored) {
  const RouteMatcher m = compiled({"/users/{id}", "/"});
  EXPECT_EQ(matchOf(m, "/users/42?expand=orders"), "/users/{id}");
  EXPECT_EQ(matchOf(m, "/users/42#top"), "/users/{id}");
  EXPECT_EQ(matchOf(m, "/users?next=/users/42"), "");
  EXPECT_EQ(matchOf(m, "/?a=b"), "/");
}

TEST(RouteMatcherTest, EmptyPathIsTheRoot) {
  EXPECT_EQ(matchOf(compiled({"/"}), ""), "/");
  EXPECT_EQ(matchOf(compiled({"/"}), "?q=1"), "/");
  EXPECT_EQ(matchOf(compiled({"/a", "/{x...}"}), ""), "");
}

TEST(RouteMatcherTest, DoubleSlashIsAnEmptySegment) {
  const RouteMatcher m = compiled({"/a/{x}/b", "/a/b", "/a/{rest...}"});
  EXPECT_EQ(matchOf(m, "/a//b"), "/a/{rest...}");
  EXPECT_EQ(matchOf(compiled({"/a/b"}), "//a/b"), "");
}

TEST(RouteMatcherTest, MatchesRawBytesWithoutDecoding) {
  const RouteMatcher m = compiled({"/caf%C3%A9", "/{one}"});
  EXPECT_EQ(matchOf(m, "/caf%C3%A9"), "/caf%C3%A9");
  EXPECT_EQ(matchOf(m, "/caf%c3%a9"), "/{one}");
  EXPECT_EQ(matchOf(m, "/a%2Fb"), "/{one}");
}

TEST(RouteMatcherTest, PathsNotInOriginFormMatchNothing) {
  const RouteMatcher m = compiled({"/{rest...}", "/"});
  EXPECT_FALSE(m.match("http://example.com/a").has_value());
  EXPECT_FALSE(m.match("*").has_value());
  EXPECT_FALSE(m.match("example.com:443").has_value());
}

TEST(RouteMatcherTest, EmptyMatcherMatchesNothing) {
  EXPECT_FALSE(RouteMatcher().match("/").has_value());
  const RouteMatcher none = compiled({});
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(none.match("/a").has_value());
}

TEST(RouteMatcherTest, ReturnsTheConfiguredStringAndIndex) {
  std::vector<std::string> templates = {"/a", "/users/{id}", "/b"};
  absl::StatusOr<RouteMatcher> m = RouteMatcher::compile(std::span<const std::string>(templates));
  ASSERT_TRUE(m.ok());
  templates.clear();  // the matcher owns its copy
  std::optional<RouteMatch> r = m->match("/users/9");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->route, "/users/{id}");
  EXPECT_EQ(r->index, 1u);
  EXPECT_EQ(m->route(1), "/users/{id}");
  EXPECT_EQ(m->route(3), "");
  EXPECT_EQ(m->size(), 3u);
}

TEST(RouteMatcherTest, MatchingAllocatesNothing) {
  const RouteMatcher m = compiled({"/api/v1/users", "/api/v1/users/{id}",
                                   "/api/v1/users/{id}/orders", "/static/{path...}", "/"});
  const size_t before = g_allocations.load();
  size_t hits = 0;
  for (std::string_view path : {"/api/v1/users/42/orders?x=1", "/static/a/b/c.js", "/nope", "/"}) {
    hits += m.match(path).has_value();
  }
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(hits, 3u);
}

// ---- Trie against a brute-force reference ----

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (true) {
    const size_t slash = path.find('/', start);
    out.emplace_back(path.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return out;
    start = slash + 1;
  }
}

// Does one template match, by the rules of route_template.h, checked the slow obvious way.
bool referenceMatches(const std::vector<RouteSegment>& tpl, std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  if (path.empty()) path = "/";
  if (path[0] != '/') return false;
  const std::vector<std::string> segs = splitPath(path);
  for (size_t i = 0; i < tpl.size(); ++i) {
    if (tpl[i].kind == RouteSegmentKind::kCatchAll) {
      std::string rest;
      for (size_t j = i; j < segs.size(); ++j) rest += (j > i ? "/" : "") + segs[j];
      return i < segs.size() && !rest.empty();
    }
    if (i >= segs.size()) return false;
    if (tpl[i].kind == RouteSegmentKind::kLiteral ? segs[i] != tpl[i].text : segs[i].empty()) {
      return false;
    }
  }
  return tpl.size() == segs.size();
}

std::optional<uint32_t> referenceMatch(const std::vector<std::vector<RouteSegment>>& templates,
                                       std::string_view path) {
  for (size_t i = 0; i < templates.size(); ++i) {
    if (referenceMatches(templates[i], path)) return static_cast<uint32_t>(i);
  }
  return std::nullopt;
}

// A tiny alphabet, so that templates overlap and shadow each other a lot.
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  size_t below(size_t n) { return rng_() % n; }

  std::string literal() {
    static constexpr std::string_view kWords[] = {"a", "b", "ab", "c"};
    return std::string(kWords[below(std::size(kWords))]);
  }

  std::string templateText() {
    if (below(20) == 0) return "/";
    std::string t;
    const size_t depth = 1 + below(4);
    for (size_t i = 0; i < depth; ++i) {
      t += '/';
      const size_t r = below(10);
      if (i + 1 == depth && r == 0) {
        t += "{rest...}";
      } else if (r < 3) {
        t += r == 1 ? "*" : "{p" + std::to_string(i) + "}";
      } else {
        t += literal();
      }
    }
    if (below(8) == 0 && t.find("...") == std::string::npos) t += '/';
    return t;
  }

  std::string path() {
    std::string p;
    const size_t depth = below(6);
    for (size_t i = 0; i < depth; ++i) {
      p += '/';
      const size_t r = below(12);
      if (r == 0) continue;  // empty segment
      p += r == 1 ? std::string("x") : literal();
    }
    if (p.empty() && below(2) == 0) p = "/";
    if (below(10) == 0) p += "/";
    if (below(10) == 0) p += "?q=/a/b";
    return p;
  }

 private:
  std::mt19937 rng_;
};

TEST(RouteMatcherProperty, TrieAgreesWithBruteForceOnRandomTemplatesAndPaths) {
  Generator gen(20240611);
  size_t hits = 0;
  size_t checked = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> texts;
    const size_t count = 1 + gen.below(30);
    for (size_t i = 0; i < count; ++i) texts.push_back(gen.templateText());
    absl::StatusOr<RouteMatcher> m = RouteMatcher::compile(std::span<const std::string>(texts));
    ASSERT_TRUE(m.ok()) << m.status();
    std::vector<std::vector<RouteSegment>> parsed;
    for (const std::string& t : texts) parsed.push_back(*parseRouteTemplate(t));
    for (int p = 0; p < 200; ++p) {
      const std::string path = gen.path();
      const std::optional<uint32_t> expected = referenceMatch(parsed, path);
      const std::optional<RouteMatch> got = m->match(path);
      ASSERT_EQ(got.has_value(), expected.has_value()) << "round " << round << " path " << path;
      if (expected) {
        ASSERT_EQ(got->index, *expected) << "round " << round << " path " << path;
        ASSERT_EQ(got->route, texts[*expected]);
        ++hits;
      }
      ++checked;
    }
  }
  // The generator must exercise both outcomes for the comparison to mean something.
  EXPECT_GT(hits, checked / 5);
  EXPECT_LT(hits, checked * 4 / 5);
}

// ---- Heuristic route ----

TEST(RouteHeuristic, RootAndEmptyPath) {
  EXPECT_EQ(heuristic("/"), "/");
  EXPECT_EQ(heuristic(""), "/");
  EXPECT_EQ(heuristic("?q=1"), "/");
}

TEST(RouteHeuristic, NumbersBecomeId) {
  EXPECT_EQ(heuristic("/users/42"), "/users/{id}");
  EXPECT_EQ(heuristic("/users/42/orders/7"), "/users/{id}/orders/{id}");
  EXPECT_EQ(heuristic("/d/2024-01-31"), "/d/{id}");
  EXPECT_EQ(heuristic("/v/1.5"), "/v/{id}");
}

TEST(RouteHeuristic, UuidsOfEitherCaseBecomeId) {
  EXPECT_EQ(heuristic("/o/123e4567-e89b-12d3-a456-426614174000"), "/o/{id}");
  EXPECT_EQ(heuristic("/o/123E4567-E89B-12D3-A456-426614174000/items"), "/o/{id}/items");
  EXPECT_EQ(heuristic("/o/abcdefab-cdef-abcd-efab-cdefabcdefab"), "/o/{id}");
  EXPECT_EQ(heuristic("/o/abcdefab-cdef-abcd-efab-cdefabcdefag"),
            "/o/abcdefab-cdef-abcd-efab-cdefabcdefag");
}

TEST(RouteHeuristic, HexOfEightOrMoreWithADigitBecomesId) {
  EXPECT_EQ(heuristic("/commits/9fceb02d0ae598e95dc970b74767f19372d61af8"), "/commits/{id}");
  EXPECT_EQ(heuristic("/x/a1b2c3d4"), "/x/{id}");
  EXPECT_EQ(heuristic("/x/A1B2C3D4"), "/x/{id}");
  EXPECT_EQ(heuristic("/x/a1b2c3d"), "/x/a1b2c3d");    // seven
  EXPECT_EQ(heuristic("/x/deadbeef"), "/x/deadbeef");  // no digit: could be a word
}

TEST(RouteHeuristic, TokensBecomeId) {
  EXPECT_EQ(heuristic("/s/aZ3kLm9QpR2sT8vW"), "/s/{id}");
  EXPECT_EQ(heuristic("/s/xKqPzRtLmNvBwYcD"), "/s/{id}");  // no digit, but case flips
  EXPECT_EQ(heuristic("/s/QwERtyUIopASdfGH"), "/s/{id}");  // and capitals in pairs
  EXPECT_EQ(heuristic("/s/QwERtyUIopASdfG"), "/s/QwERtyUIopASdfG");  // 15
  EXPECT_EQ(heuristic("/s/user1234"), "/s/{id}");          // a run of four digits
  EXPECT_EQ(heuristic("/s/ORD-000123"), "/s/{id}");
  EXPECT_EQ(heuristic("/s/abcdefghijklmno1"), "/s/{id}");            // 16 with a digit
  EXPECT_EQ(heuristic("/s/abcdefghijklmn1"), "/s/abcdefghijklmn1");  // 15
  EXPECT_EQ(heuristic("/s/my-article-title-2"), "/s/{id}");
  EXPECT_EQ(heuristic("/s/aZ3kLm9QpR2sT8vW.png"), "/s/{id}.png");
}

TEST(RouteHeuristic, WordsAreKept) {
  for (std::string_view p :
       {"/api/v1/users/me/settings", "/api/v2beta1/x", "/hash/sha256", "/auth/oauth2/token",
        "/rpc/getUserProfileSettings", "/js/XMLHttpRequestHandler", "/u/user123",
        "/api/findAllByCustomerId", "/api/getUserProfileById", "/api/listOrderItemsByUserId",
        "/api/checkIfUserIsInGroup", "/api/getHTTPResponseById", "/api/exportToPdfOrCsv",
        "/a.b/c_d/e~f/g-h", "/docs/readme.md", "/v1.2", "/..", "/x/"}) {
    EXPECT_EQ(heuristic(p), p);
  }
}

TEST(RouteHeuristic, EmptySegmentsAndTrailingSlashAreKept) {
  EXPECT_EQ(heuristic("/users/42/"), "/users/{id}/");
  EXPECT_EQ(heuristic("//"), "//");
  EXPECT_EQ(heuristic("/a//42"), "/a//{id}");
}

TEST(RouteHeuristic, IdStemKeepsItsExtension) {
  EXPECT_EQ(heuristic("/img/9f8e7d6c5b.png"), "/img/{id}.png");
  EXPECT_EQ(heuristic("/users/42.json"), "/users/{id}.json");
  EXPECT_EQ(heuristic("/a/42.tar.gz"), "/a/{id}.tar.gz");
  EXPECT_EQ(heuristic("/js/jquery-3.6.0.min.js"), "/js/jquery-3.6.0.min.js");
  EXPECT_EQ(heuristic("/f/.htaccess"), "/f/.htaccess");
}

TEST(RouteHeuristic, SegmentLengthAtTheLimitAndOnePast) {
  const std::string at_limit(kMaxKeptSegmentLength, 'a');
  EXPECT_EQ(heuristic("/" + at_limit), "/" + at_limit);
  EXPECT_EQ(heuristic("/" + at_limit + "a"), "/{id}");
}

TEST(RouteHeuristic, SegmentCountAtTheLimitAndOnePast) {
  EXPECT_EQ(heuristic("/a/b/1/d/e/f/g/h"), "/a/b/{id}/d/e/f/g/h");
  EXPECT_EQ(heuristic("/a/b/1/d/e/f/g/h/i"), "/a/b/{id}/d/e/f/g/h/{rest...}");
  EXPECT_EQ(heuristic("/a/b/c/d/e/f/g/h/"), "/a/b/c/d/e/f/g/h/{rest...}");
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "/x";
  EXPECT_EQ(heuristic(deep), "/x/x/x/x/x/x/x/x/{rest...}");
}

TEST(RouteHeuristic, EscapesAndUnsafeBytesBecomeId) {
  EXPECT_EQ(heuristic("/search/caf%C3%A9"), "/search/{id}");
  EXPECT_EQ(heuristic("/a%20b/c"), "/{id}/c");
  EXPECT_EQ(heuristic("/caf\xC3\xA9"), "/{id}");
  EXPECT_EQ(heuristic("/u/someone@example.com"), "/u/{id}");
  EXPECT_EQ(heuristic("/x;jsessionid=ABC"), "/{id}");
  EXPECT_EQ(heuristic("/v1/things:search"), "/v1/{id}");
  EXPECT_EQ(heuristic("/{id}/%7B"), "/{id}/{id}");
  EXPECT_EQ(heuristic(std::string_view("/a\0b", 4)), "/{id}");
}

TEST(RouteHeuristic, QueryFragmentAndNonPaths) {
  EXPECT_EQ(heuristic("/users/42?token=abc123def456"), "/users/{id}");
  EXPECT_EQ(heuristic("/users#42"), "/users");
  EXPECT_EQ(heuristic("http://example.com/users/42"), kOtherRoute);
  EXPECT_EQ(heuristic("*"), kOtherRoute);
}

TEST(RouteHeuristic, ReusedOutputStopsAllocating) {
  std::string out;
  const std::string deep = "/" + std::string(64, 'a') + "/b/c/d/e/f/g/h/i/j/k";
  heuristicRoute(deep, out);
  const size_t before = g_allocations.load();
  for (std::string_view p :
       {std::string_view(deep), std::string_view("/users/42"), std::string_view("/")}) {
    heuristicRoute(p, out);
  }
  heuristicRoute(deep, out);
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_LE(out.size(),
            kMaxHeuristicSegments * (kMaxKeptSegmentLength + 1) + 1 + kRestSegment.size());
}

// ---- Cardinality limiter ----

TEST(RouteCardinalityLimiterTest, AdmitsUpToTheCapThenReportsOther) {
  RouteCardinalityLimiter limiter(3);
  EXPECT_EQ(limiter.admit("/a"), "/a");
  EXPECT_EQ(limiter.admit("/b"), "/b");
  EXPECT_EQ(limiter.admit("/c"), "/c");  // at the cap
  EXPECT_EQ(limiter.size(), 3u);
  EXPECT_EQ(limiter.admit("/d"), kOtherRoute);  // one past
  EXPECT_EQ(limiter.admit("/a"), "/a");
  EXPECT_EQ(limiter.admit("/c"), "/c");
  EXPECT_EQ(limiter.size(), 3u);
  EXPECT_TRUE(limiter.contains("/b"));
  EXPECT_FALSE(limiter.contains("/d"));
}

TEST(RouteCardinalityLimiterTest, DefaultCapIsOneHundred) {
  RouteCardinalityLimiter limiter;
  EXPECT_EQ(limiter.maxRoutes(), 100u);
  for (int i = 0; i < 100; ++i) {
    const std::string r = "/r/" + std::to_string(i);
    EXPECT_EQ(limiter.admit(r), r);
  }
  EXPECT_EQ(limiter.admit("/r/100"), kOtherRoute);
  EXPECT_EQ(limiter.admit("/r/99"), "/r/99");
}

TEST(RouteCardinalityLimiterTest, OtherRouteNeverTakesASlot) {
  RouteCardinalityLimiter limiter(1);
  EXPECT_EQ(limiter.admit(kOtherRoute), kOtherRoute);
  EXPECT_EQ(limiter.size(), 0u);
  EXPECT_EQ(limiter.admit("/a"), "/a");
}

TEST(RouteCardinalityLimiterTest, ZeroCapReportsEverythingAsOther) {
  RouteCardinalityLimiter limiter(0);
  EXPECT_EQ(limiter.admit("/a"), kOtherRoute);
  EXPECT_EQ(limiter.size(), 0u);
}

TEST(RouteCardinalityLimiterTest, ReturnedRouteIsOwnedByTheLimiter) {
  RouteCardinalityLimiter limiter(2);
  std::string scratch = "/users/{id}";
  const std::string_view kept = limiter.admit(scratch);
  scratch.assign("/overwritten");
  EXPECT_EQ(kept, "/users/{id}");
  EXPECT_EQ(limiter.admit("/users/{id}").data(), kept.data());
}

TEST(RouteCardinalityLimiterTest, LookupsOfAdmittedRoutesAndOverflowAllocateNothing) {
  RouteCardinalityLimiter limiter(2);
  limiter.admit("/a");
  limiter.admit("/b");
  const size_t before = g_allocations.load();
  EXPECT_EQ(limiter.admit("/a"), "/a");
  EXPECT_EQ(limiter.admit("/zzz"), kOtherRoute);
  EXPECT_EQ(g_allocations.load(), before);
}

TEST(RouteCardinalityLimiterTest, ConcurrentAdmissionAdmitsExactlyTheCap) {
  constexpr size_t kCap = 100;
  constexpr size_t kRoutes = 400;
  constexpr size_t kThreads = 4;
  RouteCardinalityLimiter limiter(kCap);
  std::vector<std::string> routes;
  for (size_t i = 0; i < kRoutes; ++i) routes.push_back("/r/" + std::to_string(i));
  std::vector<std::vector<std::string_view>> results(kThreads,
                                                     std::vector<std::string_view>(kRoutes));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<size_t> order(kRoutes);
      for (size_t i = 0; i < kRoutes; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<uint32_t>(7 + t)));
      while (!go.load()) std::this_thread::yield();
      for (int pass = 0; pass < 3; ++pass) {
        for (size_t i : order) results[t][i] = limiter.admit(routes[i]);
      }
    });
  }
  go.store(true);
  for (std::thread& th : threads) th.join();

  EXPECT_EQ(limiter.size(), kCap);
  std::set<std::string_view> admitted;
  for (size_t t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < kRoutes; ++i) {
      const std::string_view r = results[t][i];
      ASSERT_TRUE(r == routes[i] || r == kOtherRoute) << r;
      // Linearizable: a route is reported as itself exactly when it ends up admitted.
      EXPECT_EQ(r == routes[i], limiter.contains(routes[i])) << routes[i];
      if (r != kOtherRoute) admitted.insert(r);
    }
  }
  EXPECT_EQ(admitted.size(), kCap);
}

// ---- Resolver ----

TEST(RouteResolverTest, TemplatesFirstThenHeuristicUnderTheCap) {
  RouteResolver resolver(compiled({"/users/{id}", "/healthz"}), 1);
  std::string scratch;
  for (int i = 0; i < 10; ++i) {
    const ResolvedRoute r = resolver.resolve("/users/" + std::to_string(i), scratch);
    EXPECT_EQ(r.route, "/users/{id}");
    EXPECT_EQ(r.source, RouteSource::kTemplate);
  }
  EXPECT_EQ(resolver.resolve("/healthz", scratch).template_index, 1u);
  EXPECT_EQ(resolver.limiter().size(), 0u);  // templates do not count toward the cap

  const ResolvedRoute first = resolver.resolve("/orders/42", scratch);
  EXPECT_EQ(first.route, "/orders/{id}");
  EXPECT_EQ(first.source, RouteSource::kHeuristic);
  EXPECT_NE(first.route.data(), scratch.data());
  EXPECT_EQ(resolver.resolve("/orders/43", scratch).source, RouteSource::kHeuristic);
  const ResolvedRoute past = resolver.resolve("/carts/42", scratch);
  EXPECT_EQ(past.route, kOtherRoute);
  EXPECT_EQ(past.source, RouteSource::kOverflow);
}

}  // namespace
}  // namespace tracecar::http
