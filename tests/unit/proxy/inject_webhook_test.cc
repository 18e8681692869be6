#include "proxy/inject_webhook.h"

#include <gtest/gtest.h>

#include <string>

namespace tracecar::proxy {
namespace {

using json::Value;

// What the chart renders, trimmed to what the injector looks at.
constexpr std::string_view kTemplate = R"({
  "initContainer": {"name": "tracecar-init", "image": "tracecar:1",
    "args": ["init-iptables", "--proxy-uid", "1337", "--exclude-inbound-ports", "22"]},
  "sidecar": {"name": "tracecar", "image": "tracecar:1", "restartPolicy": "Always",
    "args": ["run", "--admin", "0.0.0.0:15000", "--route", "/default/{id}"],
    "env": [{"name": "K8S_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "OTEL_SERVICE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}]}
})";

InjectionTemplate injection(std::string_view text = kTemplate) {
  auto t = parseInjectionTemplate(text);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : InjectionTemplate{};
}

Value pod(std::string_view annotations = "{}", std::string_view extra_spec = "") {
  const std::string text = std::string(R"({"metadata": {"generateName": "shop-7d9f-", "namespace": "prod",
    "labels": {"app": "shop"}, "annotations": )") +
                           std::string(annotations) + R"(}, "spec": {)" +
                           std::string(extra_spec) +
                           R"("containers": [{"name": "app", "image": "shop:1"}]}})";
  auto v = json::parse(text);
  EXPECT_TRUE(v.ok()) << v.status();
  return *v;
}

std::vector<std::string> args(const Value& container) {
  std::vector<std::string> out;
  for (const Value& a : container.find("args")->items()) out.push_back(a.text());
  return out;
}

std::string envValue(const Value& container, std::string_view name) {
  for (const Value& e : container.find("env")->items()) {
    if (e.stringAt("name") == name) return std::string(e.stringAt("value"));
  }
  return "(absent)";
}

TEST(InjectWebhookTest, NativeSidecarGoesToInitContainersAfterTheIptablesStep) {
  const PodPatch patch = patchFor(injection(), pod());
  ASSERT_TRUE(patch.warnings.empty());
  ASSERT_EQ(patch.operations.items().size(), 1u);
  const Value& op = patch.operations.items()[0];
  EXPECT_EQ(op.stringAt("op"), "add");
  EXPECT_EQ(op.stringAt("path"), "/spec/initContainers");
  const auto& list = op.find("value")->items();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].stringAt("name"), "tracecar-init");
  EXPECT_EQ(list[1].stringAt("name"), "tracecar");
  // No annotation: the chart's args as they are; the service name from the app label.
  EXPECT_EQ(args(list[1]), (std::vector<std::string>{"run", "--admin", "0.0.0.0:15000", "--route",
                                                     "/default/{id}"}));
  EXPECT_EQ(envValue(list[1], "OTEL_SERVICE_NAME"), "shop");
}

TEST(InjectWebhookTest, ExistingInitContainersComeAfterOurs) {
  const PodPatch patch =
      patchFor(injection(), pod("{}", R"("initContainers": [{"name": "migrate"}],)"));
  ASSERT_EQ(patch.operations.items().size(), 2u);
  // Applied in order: the sidecar at 0, then the init container at 0 before it.
  EXPECT_EQ(patch.operations.items()[0].stringAt("path"), "/spec/initContainers/0");
  EXPECT_EQ(patch.operations.items()[0].find("value")->stringAt("name"), "tracecar");
  EXPECT_EQ(patch.operations.items()[1].stringAt("path"), "/spec/initContainers/0");
  EXPECT_EQ(patch.operations.items()[1].find("value")->stringAt("name"), "tracecar-init");
}

TEST(InjectWebhookTest, RegularSidecarGoesToContainers) {
  std::string text(kTemplate);
  text.replace(text.find(R"("restartPolicy": "Always",)"), 26, "");
  const InjectionTemplate t = injection(text);
  EXPECT_FALSE(t.native_sidecar);
  const PodPatch patch = patchFor(t, pod());
  ASSERT_EQ(patch.operations.items().size(), 2u);
  EXPECT_EQ(patch.operations.items()[0].stringAt("path"), "/spec/initContainers");
  EXPECT_EQ(patch.operations.items()[1].stringAt("path"), "/spec/containers/-");
}

TEST(InjectWebhookTest, AnnotationsReplaceTheChartFlags) {
  const PodPatch patch = patchFor(injection(), pod(R"({
      "tracecar.io/routes": "/users/{id}, /files/{path...}",
      "tracecar.io/sampler": "/healthz=never, *=10%",
      "tracecar.io/exclude-inbound-ports": "5432,9000-9010",
      "tracecar.io/exclude-outbound-ports": "3306",
      "tracecar.io/exclude-outbound-cidrs": "169.254.169.254/32"})"));
  ASSERT_TRUE(patch.warnings.empty()) << patch.warnings[0];
  const auto& list = patch.operations.items()[0].find("value")->items();
  EXPECT_EQ(args(list[0]),
            (std::vector<std::string>{"init-iptables", "--proxy-uid", "1337",
                                      "--exclude-inbound-ports", "5432,9000-9010",
                                      "--exclude-outbound-ports", "3306",
                                      "--exclude-outbound-cidrs", "169.254.169.254/32"}));
  EXPECT_EQ(args(list[1]),
            (std::vector<std::string>{"run", "--admin", "0.0.0.0:15000", "--route", "/users/{id}",
                                      "--route", "/files/{path...}", "--sampling-rules",
                                      "/healthz=never, *=10%"}));
}

TEST(InjectWebhookTest, EmptyAnnotationRemovesTheChartDefault) {
  const PodPatch patch = patchFor(
      injection(), pod(R"({"tracecar.io/routes": "", "tracecar.io/exclude-inbound-ports": ""})"));
  const auto& list = patch.operations.items()[0].find("value")->items();
  EXPECT_EQ(args(list[0]), (std::vector<std::string>{"init-iptables", "--proxy-uid", "1337"}));
  EXPECT_EQ(args(list[1]), (std::vector<std::string>{"run", "--admin", "0.0.0.0:15000"}));
}

TEST(InjectWebhookTest, InjectFalseLeavesThePodAlone) {
  const PodPatch patch = patchFor(injection(), pod(R"({"tracecar.io/inject": "false"})"));
  EXPECT_TRUE(patch.operations.items().empty());
  EXPECT_TRUE(patch.warnings.empty());
}

TEST(InjectWebhookTest, BadInjectValueWarnsAndDoesNotInject) {
  const PodPatch patch = patchFor(injection(), pod(R"({"tracecar.io/inject": "yes"})"));
  EXPECT_TRUE(patch.operations.items().empty());
  ASSERT_EQ(patch.warnings.size(), 1u);
  EXPECT_EQ(patch.warnings[0],
            "tracecar.io/inject: \"yes\": expected \"true\" or \"false\"; not injected");
}

TEST(InjectWebhookTest, BadAnnotationValuesWarnAndDoNotInject) {
  const PodPatch patch = patchFor(injection(), pod(R"({
      "tracecar.io/exclude-inbound-ports": "99999",
      "tracecar.io/exclude-outbound-cidrs": "10.0.0.0/33",
      "tracecar.io/routes": "/users/{id",
      "tracecar.io/sampler": "/x=sometimes"})"));
  EXPECT_TRUE(patch.operations.items().empty());
  ASSERT_EQ(patch.warnings.size(), 4u);
  EXPECT_NE(patch.warnings[0].find("tracecar.io/routes: \"/users/{id\""), std::string::npos);
  EXPECT_NE(patch.warnings[1].find("tracecar.io/sampler"), std::string::npos);
  EXPECT_NE(patch.warnings[2].find("tracecar.io/exclude-inbound-ports"), std::string::npos);
  EXPECT_NE(patch.warnings[3].find("tracecar.io/exclude-outbound-cidrs"), std::string::npos);
  EXPECT_NE(patch.warnings[3].find("; not injected"), std::string::npos);
}

TEST(InjectWebhookTest, AlreadyInjectedPodIsLeftAlone) {
  const InjectionTemplate t = injection();
  const PodPatch first = patchFor(t, pod());
  Value injected = pod();
  injected.find("spec")->set("initContainers", *first.operations.items()[0].find("value"));
  const PodPatch second = patchFor(t, injected);
  EXPECT_TRUE(second.operations.items().empty());
  EXPECT_TRUE(second.warnings.empty());
  EXPECT_EQ(second.skipped, "already injected");
}

TEST(InjectWebhookTest, HostNetworkPodIsNotInjected) {
  const PodPatch patch = patchFor(injection(), pod("{}", R"("hostNetwork": true,)"));
  EXPECT_TRUE(patch.operations.items().empty());
  EXPECT_EQ(patch.warnings.size(), 1u);
}

TEST(InjectWebhookTest, ServiceNameFallsBackToNameThenGenerateName) {
  EXPECT_EQ(serviceNameFor(*json::parse(R"({"metadata": {"labels": {"app.kubernetes.io/name": "a"}, "name": "p"}})")), "a");
  EXPECT_EQ(serviceNameFor(*json::parse(R"({"metadata": {"name": "p"}})")), "p");
  EXPECT_EQ(serviceNameFor(*json::parse(R"({"metadata": {"generateName": "web-5f-"}})")), "web-5f");
  EXPECT_EQ(serviceNameFor(*json::parse(R"({"metadata": {}})")), "");
}

TEST(InjectWebhookTest, ReviewAnswersWithBase64JsonPatch) {
  const std::string request = R"({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
    "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
      "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
      "object": )" + json::serialize(pod()) + "}}";
  const ReviewResult result = review(injection(), request);
  EXPECT_TRUE(result.injected);
  auto answer = json::parse(result.body);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->stringAt("apiVersion"), "admission.k8s.io/v1");
  EXPECT_EQ(answer->stringAt("kind"), "AdmissionReview");
  const Value* response = answer->find("response");
  EXPECT_EQ(response->stringAt("uid"), "705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_TRUE(response->find("allowed")->boolean());
  EXPECT_EQ(response->stringAt("patchType"), "JSONPatch");
  EXPECT_EQ(response->stringAt("patch"),
            base64Encode(json::serialize(patchFor(injection(), pod()).operations)));
  EXPECT_EQ(response->find("warnings"), nullptr);
}

TEST(InjectWebhookTest, BadInputIsAllowedWithAWarning) {
  for (const std::string_view body :
       {std::string_view("not json"), std::string_view(R"({"request": {"uid": "u1",
          "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
          "operation": "CREATE", "object": {}}})")}) {
    const ReviewResult result = review(injection(), body);
    EXPECT_FALSE(result.injected);
    auto answer = json::parse(result.body);
    ASSERT_TRUE(answer.ok());
    const Value* response = answer->find("response");
    EXPECT_TRUE(response->find("allowed")->boolean());
    EXPECT_EQ(response->find("patch"), nullptr);
    ASSERT_NE(response->find("warnings"), nullptr);
    EXPECT_EQ(response->find("warnings")->items()[0].text().rfind("tracecar: ", 0), 0u);
  }
}

TEST(InjectWebhookTest, UpdatesAreAllowedWithoutPatchOrWarning) {
  const std::string request = R"({"request": {"uid": "u", "kind": {"group": "", "kind": "Pod"},
      "operation": "UPDATE", "object": )" + json::serialize(pod()) + "}}";
  const ReviewResult result = review(injection(), request);
  EXPECT_FALSE(result.injected);
  EXPECT_TRUE(result.warnings.empty());
}

TEST(InjectWebhookTest, TemplateErrorsNameTheKey) {
  EXPECT_EQ(parseInjectionTemplate(R"({"sidecar": {"name": "a"}})").status().message(),
            "initContainer: missing");
  EXPECT_EQ(parseInjectionTemplate(R"({"initContainer": {"name": "a", "args": [1]},
                                       "sidecar": {"name": "b"}})")
                .status()
                .message(),
            "initContainer.args: every item must be a string");
  EXPECT_EQ(
      parseInjectionTemplate(R"({"initContainer": {"name": "a"}, "sidecar": {"name": "a"}})")
          .status()
          .message(),
      "initContainer.name and sidecar.name must differ");
}

TEST(InjectWebhookTest, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
}

}  // namespace
}  // namespace tracecar::proxy
