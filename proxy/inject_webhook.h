#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <string_view>
#include <vector>

#include "proxy/json.h"

// The sidecar injector's decisions: what to add to a pod, as a JSON Patch inside an
// AdmissionReview answer. Pure: no I/O (the HTTPS server is inject_webhook_server.h).
namespace tracecar::proxy {

// The pod annotations the injector reads.
inline constexpr std::string_view kInjectAnnotation = "tracecar.io/inject";
inline constexpr std::string_view kRoutesAnnotation = "tracecar.io/routes";
inline constexpr std::string_view kSamplerAnnotation = "tracecar.io/sampler";
inline constexpr std::string_view kExcludeInboundPortsAnnotation =
    "tracecar.io/exclude-inbound-ports";
inline constexpr std::string_view kExcludeOutboundPortsAnnotation =
    "tracecar.io/exclude-outbound-ports";
inline constexpr std::string_view kExcludeOutboundCidrsAnnotation =
    "tracecar.io/exclude-outbound-cidrs";

// What gets injected: the two containers exactly as the chart's _helpers.tpl renders them with
// the chart's values (the file the chart's ConfigMap holds):
//   {"initContainer": {...}, "sidecar": {...}}
// The sidecar goes to initContainers (a native sidecar) when it has restartPolicy "Always", else
// to containers. Annotations only replace the flags they name in each container's args
// (`--exclude-*` in the init container, `--route` and `--sampling-rules` in the sidecar) and the
// sidecar's OTEL_SERVICE_NAME variable; everything else is the chart's.
struct InjectionTemplate {
  json::Value init_container;
  json::Value sidecar;
  std::string init_name;  // the containers' names: a pod that has either is already injected
  std::string sidecar_name;
  bool native_sidecar = true;
};

// Errors name the key that is wrong.
absl::StatusOr<InjectionTemplate> parseInjectionTemplate(std::string_view text);

// The answer to one AdmissionReview request body.
struct ReviewResult {
  std::string body;  // the AdmissionReview answer, JSON
  bool injected = false;
  std::string pod;      // "namespace/name" (or generateName), for the log; empty when unknown
  std::string skipped;  // why nothing was injected (empty when injected): for the log
  std::vector<std::string> warnings;
};

// Always allows the pod: bad input (not JSON, not an AdmissionReview for a pod, bad annotation
// values) is answered allowed with a warning, and no patch.
ReviewResult review(const InjectionTemplate& injection, std::string_view request_body);

// The JSON Patch (RFC 6902) operations that add the containers to a pod, and the warnings for
// annotation values that stopped the injection (then the patch is empty). Exposed for tests.
struct PodPatch {
  json::Value operations;  // an array; empty when nothing is to be done
  std::string skipped;
  std::vector<std::string> warnings;
};
PodPatch patchFor(const InjectionTemplate& injection, const json::Value& pod);

// The service name for a pod: its "app" label, "app.kubernetes.io/name" label, name, or
// generateName without its trailing '-'; empty when none.
std::string serviceNameFor(const json::Value& pod);

std::string base64Encode(std::string_view data);

}  // namespace tracecar::proxy
