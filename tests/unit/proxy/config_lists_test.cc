// The list settings of the file (routes, tracing.propagators, tracing.known_methods,
// tracing.trust_incoming_context, sampling.rules) and --sampling-rules: every bad element is an
// error of its own, at its index or position, whatever else is wrong in the list.
#include "proxy/config_lists.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/config.h"

namespace tracecar::proxy {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

LoadedConfig load(const std::string& yaml, ConfigFlags flags = {}) {
  ConfigInputs inputs;
  inputs.env = exporter::mapEnvironment({});
  inputs.cpu.cgroup_root = "/nonexistent/cgroup";
  inputs.cpu.proc_self_cgroup = "/nonexistent/proc/self/cgroup";
  inputs.cpu.available_cpus = 2;
  inputs.file_text = yaml;
  flags.config_file = "test.yaml";
  return loadConfig(flags, inputs);
}

TEST(ElementErrors, NamesEveryBadElementByPosition) {
  const ElementCheck digits = [](std::string_view element) -> std::string {
    return element.find_first_not_of("0123456789") == std::string_view::npos ? "" : "not digits";
  };
  EXPECT_THAT(elementErrors("1, x, 2,, y", digits),
              ElementsAre("element 2 (`x`): not digits", "element 4 (``): empty element",
                          "element 5 (`y`): not digits"));
  EXPECT_THAT(elementErrors(" 12 ", digits), IsEmpty());
  // One element: the check's message as it is.
  EXPECT_THAT(elementErrors("x", digits), ElementsAre("not digits"));
  // A check that names the element as a list's first has its position corrected.
  const ElementCheck positioned = [](std::string_view element) {
    return "element 1 (`" + std::string(element) + "`): bad";
  };
  EXPECT_THAT(elementErrors("a,b", positioned),
              ElementsAre("element 1 (`a`): bad", "element 2 (`b`): bad"));
}

// A value of the wrong type among the elements no longer hides the others' errors.
TEST(ConfigLists, RoutesReportEveryBadElementBesideANonString) {
  const LoadedConfig loaded = load("routes:\n  - /a/{id\n  - nosl\n  - {x: 1}\n  - /ok\n");
  EXPECT_THAT(loaded.errors,
              ElementsAre("test.yaml:2:5: routes[0]: route template \"/a/{id\", position 3: '{' "
                          "has no matching '}'",
                          "test.yaml:3:5: routes[1]: route template \"nosl\", position 0: does "
                          "not start with '/'",
                          "test.yaml:4:5: routes[2]: must be a non-empty string, got a map"));
  EXPECT_TRUE(loaded.config.tracing.routes.empty());
}

TEST(ConfigLists, ListFormsReportEveryBadElementBesideANonString) {
  const LoadedConfig loaded = load(
      "tracing:\n"
      "  propagators: [b3, xray, [], ot]\n"
      "  trust_incoming_context:\n    - 10.0.0.0/33\n    - {a: 1}\n    - bogus\n"
      "  known_methods: [GET, \"P T\", {}, \"X Y\"]\n"
      "sampling:\n  rules:\n    - /a=sometimes\n    - []\n    - bad\n");
  EXPECT_THAT(
      loaded.errors,
      ElementsAre(
          "test.yaml:2:21: tracing.propagators[1]: unknown propagator \"xray\" (known: "
          "tracecontext, baggage, b3, b3multi, jaeger, none)",
          "test.yaml:2:27: tracing.propagators[2]: must be a non-empty string, got a list",
          "test.yaml:2:31: tracing.propagators[3]: unknown propagator \"ot\" (known: "
          "tracecontext, baggage, b3, b3multi, jaeger, none)",
          "test.yaml:4:7: tracing.trust_incoming_context[0]: `10.0.0.0/33`: prefix length `33` "
          "must be a number from 0 to 32",
          "test.yaml:5:7: tracing.trust_incoming_context[1]: must be a non-empty string, got a "
          "map",
          "test.yaml:6:7: tracing.trust_incoming_context[2]: `bogus`: `bogus` is not an IPv4 or "
          "IPv6 address",
          "test.yaml:7:24: tracing.known_methods[1]: \"P T\" is not a valid method name",
          "test.yaml:7:31: tracing.known_methods[2]: must be a non-empty string, got a map",
          "test.yaml:7:35: tracing.known_methods[3]: \"X Y\" is not a valid method name",
          "test.yaml:10:7: sampling.rules[0]: `/a=sometimes`: unknown sampler `sometimes`; "
          "expected always, never, a ratio in [0, 1] or a percent",
          "test.yaml:11:7: sampling.rules[1]: must be a non-empty string, got a list",
          "test.yaml:12:7: sampling.rules[2]: `bad`: expected `[METHODS ]ROUTE=SAMPLER`"));
}

// The one-string forms: every element, by its position.
TEST(ConfigLists, CommaSeparatedStringsReportEveryBadElement) {
  const LoadedConfig loaded = load(
      "tracing:\n"
      "  trust_incoming_context: \"10.0.0.0/33, bogus, 1.2.3.4/8\"\n"
      "  propagators: \"bogus, foo\"\n"
      "  known_methods: \"GET, P T, ,X Y\"\n"
      "sampling:\n  rules: \"/a=sometimes, bad, *=always\"\n");
  EXPECT_THAT(
      loaded.errors,
      ElementsAre(
          "test.yaml:2:27: tracing.trust_incoming_context: element 1 (`10.0.0.0/33`): prefix "
          "length `33` must be a number from 0 to 32",
          "test.yaml:2:27: tracing.trust_incoming_context: element 2 (`bogus`): `bogus` is not "
          "an IPv4 or IPv6 address",
          "test.yaml:2:27: tracing.trust_incoming_context: element 3 (`1.2.3.4/8`): `1.2.3.4/8` "
          "has bits set below its /8 prefix",
          "test.yaml:3:16: tracing.propagators: element 1 (`bogus`): unknown propagator "
          "\"bogus\" (known: tracecontext, baggage, b3, b3multi, jaeger, none)",
          "test.yaml:3:16: tracing.propagators: element 2 (`foo`): unknown propagator \"foo\" "
          "(known: tracecontext, baggage, b3, b3multi, jaeger, none)",
          "test.yaml:4:18: tracing.known_methods: element 2 (`P T`): \"P T\" is not a valid "
          "method name",
          "test.yaml:4:18: tracing.known_methods: element 3 (``): empty element",
          "test.yaml:4:18: tracing.known_methods: element 4 (`X Y`): \"X Y\" is not a valid "
          "method name",
          "test.yaml:6:10: sampling.rules: element 1 (`/a=sometimes`): unknown sampler "
          "`sometimes`; expected always, never, a ratio in [0, 1] or a percent",
          "test.yaml:6:10: sampling.rules: element 2 (`bad`): expected `[METHODS ]ROUTE=SAMPLER`"));
}

// Checked as a whole once every element passes: always and never stand alone.
TEST(ConfigLists, WholeListRulesStillApply) {
  EXPECT_THAT(load("tracing:\n  trust_incoming_context: \"10.0.0.0/8, never\"\n").errors,
              ElementsAre("test.yaml:2:27: tracing.trust_incoming_context: element 2 (`never`): "
                          "always and never stand alone, not in a list of networks"));
  EXPECT_THAT(load("tracing:\n  propagators: [b3, none]\n").errors,
              ElementsAre("test.yaml:2:3: tracing.propagators: \"none\" cannot be combined with "
                          "other propagators"));
  const LoadedConfig good = load(
      "tracing:\n  trust_incoming_context: \"10.0.0.0/8, ::1\"\n  known_methods: \"GET, PURGE\"\n"
      "sampling:\n  rules: [\"/a=never, /b=always\", \"*=0.5\"]\n");
  ASSERT_TRUE(good.ok()) << good.errors.front();
  EXPECT_EQ(good.config.sampling.rules.size(), 3u);
  EXPECT_EQ(good.config.tracing.trust_incoming_context.networks().size(), 2u);
}

TEST(ConfigLists, SamplingRulesFlagReportsEveryBadRule) {
  ConfigFlags flags;
  flags.sampling_rules = "/a=sometimes, bad, *=always";
  const LoadedConfig loaded = load("", flags);
  EXPECT_THAT(loaded.errors,
              ElementsAre("--sampling-rules: element 1 (`/a=sometimes`): unknown sampler "
                          "`sometimes`; expected always, never, a ratio in [0, 1] or a percent",
                          "--sampling-rules: element 2 (`bad`): expected "
                          "`[METHODS ]ROUTE=SAMPLER`"));
  EXPECT_THAT(samplingRuleErrors(" "), IsEmpty());  // no rules
}

}  // namespace
}  // namespace tracecar::proxy
