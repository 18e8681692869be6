#include "sampling/rules.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tracecar::sampling {
namespace {

TEST(ParseRules, ExampleFromTheDocs) {
  const auto rules = parseRules("/healthz=never, GET /checkout/*=always, *=0.1");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 3u);
  EXPECT_EQ((*rules)[0], (RuleSpec{"/healthz", {}, {RootKind::kAlwaysOff, 1.0, false}}));
  EXPECT_EQ((*rules)[1], (RuleSpec{"/checkout/*", {"GET"}, {RootKind::kAlwaysOn, 1.0, false}}));
  EXPECT_EQ((*rules)[2], (RuleSpec{"*", {}, {RootKind::kRatio, 0.1, false}}));
}

TEST(ParseRules, MethodListsPercentagesAndLimit) {
  const auto rules = parseRules("  GET|HEAD   /a = 25% ,POST /b/*=0.5+limit,*=always +limit ");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 3u);
  EXPECT_EQ((*rules)[0], (RuleSpec{"/a", {"GET", "HEAD"}, {RootKind::kRatio, 0.25, false}}));
  EXPECT_EQ((*rules)[1], (RuleSpec{"/b/*", {"POST"}, {RootKind::kRatio, 0.5, true}}));
  EXPECT_EQ((*rules)[2], (RuleSpec{"*", {}, {RootKind::kAlwaysOn, 1.0, true}}));
}

TEST(ParseRules, EmptyTextIsNoRules) {
  EXPECT_TRUE(parseRules("")->empty());
  EXPECT_TRUE(parseRules("   ")->empty());
}

struct BadCase {
  std::string text;
  std::string message;  // a substring of the error
};

class ParseRulesRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseRulesRejects, NamingTheElement) {
  const auto rules = parseRules(GetParam().text);
  ASSERT_FALSE(rules.ok()) << GetParam().text;
  EXPECT_NE(std::string(rules.status().message()).find(GetParam().message), std::string::npos)
      << rules.status();
}

INSTANTIATE_TEST_SUITE_P(
    Errors, ParseRulesRejects,
    ::testing::Values(
        BadCase{"/a=sometimes", "element 1 (`/a=sometimes`): unknown sampler `sometimes`"},
        BadCase{"/a=always, /b", "element 2 (`/b`): expected `[METHODS ]ROUTE=SAMPLER`"},
        BadCase{"/a=always,,/b=never", "element 2 (``): empty element"},
        BadCase{"/a=always,", "element 2"},
        BadCase{"/a=1.5", "outside [0, 1]"}, BadCase{"/a=101%", "outside [0, 1]"},
        BadCase{"/a=-0.5", "outside [0, 1]"}, BadCase{"/a=nan", "unknown sampler"},
        BadCase{"a=always", "must be `*` or start with `/`"},
        BadCase{"=always", "must be `*` or start with `/`"},
        BadCase{"/a*=always", "only as a final `/*`"},
        BadCase{"/a/*/b=always", "only as a final `/*`"},
        BadCase{"GET /a b=always", "holds a space"},
        BadCase{"GET|/a=always", "must be `*` or start with `/`"},
        BadCase{"GET| /a=always", "empty method name"},
        BadCase{"G(T /a=always", "not an HTTP method token"},
        BadCase{"/a=+limit", "unknown sampler"}));

TEST(FormatRules, RoundTrips) {
  const std::string text = "/healthz=never, GET|HEAD /checkout/*=always, POST /x=0.125+limit, "
                           "*=0.1";
  const auto rules = parseRules(text);
  ASSERT_TRUE(rules.ok());
  EXPECT_EQ(formatRules(*rules), text);
  EXPECT_EQ(*parseRules(formatRules(*rules)), *rules);
  EXPECT_EQ(ruleLabel((*rules)[1]), "GET|HEAD /checkout/*");
}

struct RouteCase {
  std::string pattern;
  std::string route;
  bool matches;
};

class RouteMatching : public ::testing::TestWithParam<RouteCase> {};

TEST_P(RouteMatching, FollowsThePattern) {
  EXPECT_EQ(routeMatches(GetParam().pattern, GetParam().route), GetParam().matches)
      << GetParam().pattern << " vs " << GetParam().route;
}

INSTANTIATE_TEST_SUITE_P(
    Patterns, RouteMatching,
    ::testing::Values(RouteCase{"*", "", true}, RouteCase{"*", "/anything", true},
                      RouteCase{"/healthz", "/healthz", true},
                      RouteCase{"/healthz", "/healthz/", false},
                      RouteCase{"/healthz", "/health", false},
                      RouteCase{"/checkout/*", "/checkout", true},
                      RouteCase{"/checkout/*", "/checkout/", true},
                      RouteCase{"/checkout/*", "/checkout/{id}/items", true},
                      RouteCase{"/checkout/*", "/checkouts", false},
                      RouteCase{"/checkout/*", "/check", false},
                      RouteCase{"/checkout/*", "", false}, RouteCase{"/*", "/x", true},
                      RouteCase{"/*", "", false}, RouteCase{"/users/{id}", "/users/{id}", true},
                      RouteCase{"/users/{id}", "/users/42", false}));

}  // namespace
}  // namespace tracecar::sampling
