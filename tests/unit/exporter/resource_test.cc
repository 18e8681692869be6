#include "exporter/resource.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tracecar::exporter {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

using Vars = std::map<std::string, std::string, std::less<>>;

struct Built {
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<std::string> warnings;
};

// lower_list: the lower layer's OTEL_RESOURCE_ATTRIBUTES, if any.
Built build(Vars vars, std::optional<std::string> lower_list = std::nullopt) {
  Built b;
  LowerLayer lower;
  if (lower_list) lower.value = mapEnvironment({{"OTEL_RESOURCE_ATTRIBUTES", *lower_list}});
  const Resource r = Resource::fromEnvironment(mapEnvironment(std::move(vars)), "0.1.0",
                                               b.warnings, lower);
  for (const Attribute& a : r.attributes().items()) {
    b.attributes.emplace_back(a.key, std::get<std::string>(a.value));
  }
  return b;
}

std::string valueOf(const Built& b, std::string_view key) {
  for (const auto& [k, v] : b.attributes) {
    if (k == key) return v;
  }
  return "<absent>";
}

TEST(Resource, DefaultsToUnknownServiceAndSdkAttributes) {
  const Built b = build({});
  EXPECT_THAT(b.attributes, ElementsAre(Pair("service.name", "unknown_service:tracecar"),
                                        Pair("telemetry.sdk.name", "tracecar"),
                                        Pair("telemetry.sdk.language", "cpp"),
                                        Pair("telemetry.sdk.version", "0.1.0")));
  EXPECT_THAT(b.warnings, IsEmpty());
}

TEST(Resource, OtelServiceNameSetsServiceName) {
  EXPECT_EQ(valueOf(build({{"OTEL_SERVICE_NAME", "checkout"}}), "service.name"), "checkout");
}

TEST(Resource, OtelServiceNameWinsOverResourceAttributes) {
  const Built b = build({{"OTEL_SERVICE_NAME", "checkout"},
                         {"OTEL_RESOURCE_ATTRIBUTES", "service.name=cart"}});
  EXPECT_EQ(valueOf(b, "service.name"), "checkout");
}

TEST(Resource, EmptyOtelServiceNameIsIgnored) {
  const Built b = build({{"OTEL_SERVICE_NAME", ""},
                         {"OTEL_RESOURCE_ATTRIBUTES", "service.name=cart"}});
  EXPECT_EQ(valueOf(b, "service.name"), "cart");
}

TEST(Resource, BlankVariablesAreIgnored) {
  const Built b = build({{"OTEL_SERVICE_NAME", " \t"},
                         {"K8S_POD_NAME", " "},
                         {"OTEL_RESOURCE_ATTRIBUTES", "service.name=cart"}});
  EXPECT_EQ(valueOf(b, "service.name"), "cart");
  EXPECT_EQ(valueOf(b, "k8s.pod.name"), "<absent>");
}

TEST(Resource, ResourceAttributesAreTrimmedAndPercentDecoded) {
  const Built b = build({{"OTEL_RESOURCE_ATTRIBUTES",
                          " deployment.environment = prod , team=a%20b%2Cc,k%3Dx=v,eq=a=b,"
                          "utf=%C3%A9,empty="}});
  EXPECT_EQ(valueOf(b, "deployment.environment"), "prod");
  EXPECT_EQ(valueOf(b, "team"), "a b,c");
  EXPECT_EQ(valueOf(b, "k=x"), "v");
  EXPECT_EQ(valueOf(b, "eq"), "a=b");
  EXPECT_EQ(valueOf(b, "utf"), "\xc3\xa9");
  EXPECT_EQ(valueOf(b, "empty"), "");
  EXPECT_THAT(b.warnings, IsEmpty());
}

// The resource SDK specification: "In case of any error, e.g. failure to decode, the entire
// environment variable value SHOULD be discarded and an error SHOULD be reported".
TEST(Resource, AnyMalformedPairDiscardsTheWholeVariableNamingEachOne) {
  const Built b = build({{"OTEL_RESOURCE_ATTRIBUTES",
                          "good=1,noequals,=nokey, =blank,bad=%zz,short=%4,invalid=%ff,last=2"}});
  EXPECT_EQ(valueOf(b, "good"), "<absent>");
  EXPECT_EQ(valueOf(b, "last"), "<absent>");
  EXPECT_EQ(b.attributes.size(), 4u);  // the defaults
  ASSERT_EQ(b.warnings.size(), 1u);
  EXPECT_THAT(b.warnings[0], HasSubstr("OTEL_RESOURCE_ATTRIBUTES: ignoring the whole value"));
  for (const char* named :
       {"noequals", "=nokey", " =blank", "bad=%zz", "short=%4", "invalid=%ff"}) {
    EXPECT_THAT(b.warnings[0], HasSubstr("\"" + std::string(named) + "\""));
  }
}

TEST(Resource, ADiscardedVariableLeavesTheLowerLayersAttributesAndServiceName) {
  const Built b = build({{"OTEL_RESOURCE_ATTRIBUTES", "service.name=x,bad,x=%zz"}},
                        "team=pay,service.name=from-file");
  EXPECT_EQ(valueOf(b, "team"), "pay");
  EXPECT_EQ(valueOf(b, "service.name"), "from-file");
  EXPECT_EQ(valueOf(b, "x"), "<absent>");
  ASSERT_EQ(b.warnings.size(), 1u);
  EXPECT_THAT(b.warnings[0], HasSubstr("\"bad\", \"x=%zz\""));
}

TEST(Resource, VariableAttributesWinOverTheLowerLayersPerKey) {
  const Built b = build({{"OTEL_RESOURCE_ATTRIBUTES", "team=orders"}, {"OTEL_SERVICE_NAME", "svc"}},
                        "team=pay,env=prod,service.name=from-file");
  EXPECT_EQ(valueOf(b, "team"), "orders");
  EXPECT_EQ(valueOf(b, "env"), "prod");
  EXPECT_EQ(valueOf(b, "service.name"), "svc");
  EXPECT_THAT(b.warnings, IsEmpty());
}

TEST(Resource, EmptyEntriesAreIgnoredSilently) {
  const Built b = build({{"OTEL_RESOURCE_ATTRIBUTES", "a=1,, ,b=2,"}});
  EXPECT_EQ(valueOf(b, "a"), "1");
  EXPECT_EQ(valueOf(b, "b"), "2");
  EXPECT_THAT(b.warnings, IsEmpty());
}

TEST(Resource, LaterDuplicateKeyWins) {
  EXPECT_EQ(valueOf(build({{"OTEL_RESOURCE_ATTRIBUTES", "a=1,a=2"}}), "a"), "2");
}

TEST(Resource, KubernetesAttributesComeFromDownwardApiVariables) {
  const Built b = build({{"K8S_POD_NAME", "web-5f7c"},
                         {"K8S_NAMESPACE_NAME", "shop"},
                         {"K8S_NODE_NAME", "node-3"},
                         {"K8S_POD_UID", "0c6f8c8e-1a2b-4c3d-9e8f-001122334455"},
                         {"K8S_CONTAINER_NAME", "web"}});
  EXPECT_EQ(valueOf(b, "k8s.pod.name"), "web-5f7c");
  EXPECT_EQ(valueOf(b, "k8s.namespace.name"), "shop");
  EXPECT_EQ(valueOf(b, "k8s.node.name"), "node-3");
  EXPECT_EQ(valueOf(b, "k8s.pod.uid"), "0c6f8c8e-1a2b-4c3d-9e8f-001122334455");
  EXPECT_EQ(valueOf(b, "k8s.container.name"), "web");
}

TEST(Resource, KubernetesAttributesAreLeftOutWhenUnsetOrEmpty) {
  const Built b = build({{"K8S_POD_NAME", ""}});
  EXPECT_EQ(b.attributes.size(), 4u);
}

TEST(Resource, PodNamespaceIsAcceptedForTheNamespace) {
  EXPECT_EQ(valueOf(build({{"POD_NAMESPACE", "shop"}}), "k8s.namespace.name"), "shop");
  EXPECT_EQ(valueOf(build({{"POD_NAMESPACE", "old"}, {"K8S_NAMESPACE_NAME", "new"}}),
                    "k8s.namespace.name"),
            "new");
}

TEST(Resource, ResourceAttributesOverrideKubernetesVariables) {
  const Built b = build({{"K8S_POD_NAME", "from-downward-api"},
                         {"OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=from-user"}});
  EXPECT_EQ(valueOf(b, "k8s.pod.name"), "from-user");
}

TEST(Resource, SdkVersionIsTheVersionGiven) {
  std::vector<std::string> warnings;
  const Resource r = Resource::fromEnvironment(mapEnvironment({}), "9.8.7", warnings);
  EXPECT_EQ(std::get<std::string>(*r.attributes().find("telemetry.sdk.version")), "9.8.7");
}

TEST(Resource, ManyResourceAttributesAreAllKept) {
  std::string list;
  for (int i = 0; i < 300; ++i) list += "k" + std::to_string(i) + "=v,";
  EXPECT_EQ(build({{"OTEL_RESOURCE_ATTRIBUTES", list}}).attributes.size(), 304u);
}

// A value that decodes to a control character makes the pair malformed, so the whole variable
// is discarded as the resource SDK specification asks; the warning shows the entry as written,
// control characters of the variable itself escaped.
TEST(Resource, ControlCharactersOnceDecodedDiscardTheVariable) {
  for (const char* list : {"a=%00b", "a=x%0Ay,b=1", "k%01=v", "a=%7F", "a=%09"}) {
    const Built b = build({{"OTEL_RESOURCE_ATTRIBUTES", list}});
    EXPECT_EQ(valueOf(b, "a"), "<absent>") << list;
    EXPECT_EQ(b.attributes.size(), 4u) << list;
    ASSERT_EQ(b.warnings.size(), 1u) << list;
    EXPECT_THAT(b.warnings[0], HasSubstr("ignoring the whole value"));
    EXPECT_THAT(b.warnings[0], HasSubstr("a key or value may not hold a control character"));
  }
  const Built raw = build({{"OTEL_RESOURCE_ATTRIBUTES", "a=x\x01y"}});
  ASSERT_EQ(raw.warnings.size(), 1u);
  EXPECT_THAT(raw.warnings[0], HasSubstr("\"a=x\\x01y\""));
  // A space is no control character.
  EXPECT_EQ(valueOf(build({{"OTEL_RESOURCE_ATTRIBUTES", "a=x%20y"}}), "a"), "x y");
}

// Each attribute's layer is recorded as the resource is built: a variable that repeats a
// built-in value is still the variable's.
TEST(Resource, RecordsTheLayerOfEachAttribute) {
  std::vector<std::string> warnings;
  LowerLayer lower;
  lower.value = mapEnvironment({{"OTEL_RESOURCE_ATTRIBUTES", "team=pay,service.name=file"}});
  const Resource r = Resource::fromEnvironment(
      mapEnvironment({{"OTEL_SERVICE_NAME", "unknown_service:tracecar"},
                      {"K8S_POD_NAME", "pod-1"},
                      {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod"}}),
      "0.1.0", warnings, lower);
  EXPECT_EQ(r.sourceOf("service.name").layer, Resource::Layer::kServiceName);
  EXPECT_EQ(r.sourceOf("telemetry.sdk.name").layer, Resource::Layer::kBuiltIn);
  EXPECT_EQ(r.sourceOf("k8s.pod.name").layer, Resource::Layer::kKubernetes);
  EXPECT_EQ(r.sourceOf("k8s.pod.name").variable, "K8S_POD_NAME");
  EXPECT_EQ(r.sourceOf("team").layer, Resource::Layer::kLower);
  EXPECT_EQ(r.sourceOf("deployment.environment").layer, Resource::Layer::kResourceAttributes);
  EXPECT_EQ(r.sourceOf("absent").layer, Resource::Layer::kBuiltIn);
}

TEST(InstrumentationScope, IsTracecarWithItsVersion) {
  const InstrumentationScope scope = tracecarScope("0.1.0");
  EXPECT_EQ(scope.name, "tracecar");
  EXPECT_EQ(scope.version, "0.1.0");
}

}  // namespace
}  // namespace tracecar::exporter
