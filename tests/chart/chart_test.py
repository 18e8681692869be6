#!/usr/bin/env python3
"""Tests of charts/tracecar, rendered by tests/chart/render (text/template + Sprig, as Helm).

Usage: chart_test.py --render PATH --chart DIR --tracecar PATH --certs-script PATH CASE

Cases:
  render_default    every document parses as YAML; the expected objects; failurePolicy Ignore;
                    the generated certificate matches the caBundle and names the Service
  overrides         values files and --set land where they should (regular sidecar, preStop,
                    routes, exclusions, certManager, selectors)
  required          an empty image.repository fails with a clear message
  schema            values.schema.json accepts values.yaml and refuses bad values
  static_injection  the helper templates a user includes give the same containers as the
                    injector does for the equivalent annotations
  cert_reload       a renewed certificate is served without a restart; a broken one is not
  webhook           a real AdmissionReview to `tracecar inject-webhook` (TLS) with the chart's
                    injection.json; the JSON Patch applied to the pod gives the expected commands
  netns             the patched pod's init container and sidecar command lines, started in a
                    network namespace with an app: a request to the pod IP is traced (root only)

Prints "PASS CASE", "SKIP CASE: why" or "FAIL CASE: what".
"""

import argparse
import base64
import copy
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
STEP_TIMEOUT = 20


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def render(args, *extra, expect_error=False):
    cmd = [args.render, "--chart", args.chart] + list(extra)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    if expect_error:
        check(result.returncode != 0, "render %s succeeded; want an error" % " ".join(extra))
        return result.stderr
    check(result.returncode == 0, "render %s: %s" % (" ".join(extra), result.stderr.strip()))
    docs = []
    for doc in yaml.safe_load_all(result.stdout):
        if doc is not None:
            check(isinstance(doc, dict) and "kind" in doc and "apiVersion" in doc,
                  "a rendered document is not a Kubernetes object: %r" % (doc,))
            docs.append(doc)
    return docs


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


def injection_of(docs):
    cms = [d for d in docs if d["kind"] == "ConfigMap"]
    check(len(cms) == 1, "want one ConfigMap, got %d" % len(cms))
    return json.loads(cms[0]["data"]["injection.json"])


def values_file(content):
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    yaml.safe_dump(content, f)
    f.close()
    return f.name


# ---- cases ----

def case_render_default(args):
    docs = render(args, "--release", "obs", "--namespace", "tracing")
    kinds = by_kind(docs)
    for kind in ("ServiceAccount", "ConfigMap", "Service", "Deployment", "Secret",
                 "MutatingWebhookConfiguration"):
        check(len(kinds.get(kind, [])) == 1, "want one %s, got %d" % (kind, len(kinds.get(kind, []))))
    check("Role" not in kinds and "ClusterRole" not in kinds, "the injector needs no RBAC role")
    check(kinds["ServiceAccount"][0].get("automountServiceAccountToken") is False,
          "the injector's token must not be mounted")
    hook = kinds["MutatingWebhookConfiguration"][0]["webhooks"][0]
    check(hook["failurePolicy"] == "Ignore", "failurePolicy: %r" % hook["failurePolicy"])
    check(hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"], "webhook")
    check(hook["clientConfig"]["service"] == {"name": "obs-tracecar-injector",
                                              "namespace": "tracing", "path": "/inject",
                                              "port": 443}, "service: %r" % hook["clientConfig"])
    check(hook["rules"][0]["resources"] == ["pods"] and hook["rules"][0]["operations"] == ["CREATE"],
          "rules: %r" % hook["rules"])
    check(hook["namespaceSelector"] == {"matchLabels": {"tracecar.io/inject": "enabled"}},
          "namespaceSelector: %r" % hook.get("namespaceSelector"))
    # The serving certificate verifies against the caBundle for the Service's DNS name.
    secret = kinds["Secret"][0]
    ca = base64.b64decode(hook["clientConfig"]["caBundle"])
    check(base64.b64decode(secret["data"]["ca.crt"]) == ca, "Secret ca.crt != caBundle")
    work = tempfile.mkdtemp()
    try:
        with open(os.path.join(work, "ca.pem"), "wb") as f:
            f.write(ca)
        with open(os.path.join(work, "tls.crt"), "wb") as f:
            f.write(base64.b64decode(secret["data"]["tls.crt"]))
        result = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(work, "ca.pem"),
                                 "-verify_hostname", "obs-tracecar-injector.tracing.svc",
                                 os.path.join(work, "tls.crt")], capture_output=True, text=True)
        check(result.returncode == 0, "certificate: %s" % (result.stdout + result.stderr).strip())
    finally:
        shutil.rmtree(work)
    deployment = kinds["Deployment"][0]
    pod = deployment["spec"]["template"]
    check(pod["metadata"]["labels"].get("tracecar.io/inject") == "false",
          "the injector's own pods must opt out")
    container = pod["spec"]["containers"][0]
    check(container["args"][0] == "inject-webhook" and "--template" in container["args"],
          "injector args: %r" % container["args"])
    injection = injection_of(docs)
    check(injection["sidecar"]["restartPolicy"] == "Always", "native sidecar by default")
    check(injection["sidecar"]["securityContext"]["runAsUser"] == 1337, "sidecar uid")
    caps = injection["initContainer"]["securityContext"]["capabilities"]["add"]
    check(sorted(caps) == ["NET_ADMIN", "NET_RAW"], "init capabilities: %r" % caps)
    notes = subprocess.run([args.render, "--chart", args.chart, "--notes", "--kube-version",
                            "v1.28.3"], capture_output=True, text=True)
    check(notes.returncode == 0 and "native sidecars need 1.29" in notes.stdout,
          "NOTES on 1.28: %s" % (notes.stdout + notes.stderr))


def case_overrides(args):
    vf = values_file({
        "sidecar": {"native": False, "routes": ["/users/{id}"], "samplingRules": "*=10%",
                    "inboundAddress": "[::]",
                    "otlpEndpoint": "http://collector:4318", "preStopSleepSeconds": 7,
                    "env": [{"name": "X", "value": "x1"}]},
        "interception": {"excludeInboundPorts": "22", "excludeOutboundCidrs": "10.0.0.0/8",
                         "ipv6": "auto"},
        "injector": {"namespaceSelector": {"matchLabels": {"team": "a",
                                                           "tracecar.io/inject": None}}},
    })
    try:
        docs = render(args, "--values", vf, "--set", "image.tag=9.9.9",
                      "--set", "injector.replicas=3")
    finally:
        os.unlink(vf)
    injection = injection_of(docs)
    sidecar, init = injection["sidecar"], injection["initContainer"]
    check("restartPolicy" not in sidecar, "regular sidecar has no restartPolicy")
    check(sidecar["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "7"],
          "preStop: %r" % sidecar.get("lifecycle"))
    check(sidecar["image"] == "localhost/tracecar:9.9.9", "image: %r" % sidecar["image"])
    a = sidecar["args"]
    check(a[a.index("--route") + 1] == "/users/{id}", "routes: %r" % a)
    check(a[a.index("--sampling-rules") + 1] == "*=10%", "sampling rules: %r" % a)
    check(a[a.index("--inbound") + 1] == "[::]:15006", "dual-stack inbound: %r" % a)
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    check(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://collector:4318" and env.get("X") == "x1",
          "env: %r" % env)
    i = init["args"]
    check(i[i.index("--exclude-inbound-ports") + 1] == "22", "init args: %r" % i)
    check(i[i.index("--exclude-outbound-cidrs") + 1] == "10.0.0.0/8", "init args: %r" % i)
    check(i[i.index("--ipv6") + 1] == "auto", "init args: %r" % i)
    kinds = by_kind(docs)
    check(kinds["Deployment"][0]["spec"]["replicas"] == 3, "replicas")
    hook = kinds["MutatingWebhookConfiguration"][0]["webhooks"][0]
    check(hook["namespaceSelector"] == {"matchLabels": {"team": "a"}}, "namespaceSelector")

    docs = render(args, "--set", "certManager.enabled=true", "--namespace", "obs")
    kinds = by_kind(docs)
    check("Secret" not in kinds, "cert-manager: the chart must not make the Secret")
    check(len(kinds.get("Certificate", [])) == 2 and len(kinds.get("Issuer", [])) == 2,
          "cert-manager: want a CA and a serving Certificate, and two Issuers")
    mwc = kinds["MutatingWebhookConfiguration"][0]
    check(mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] ==
          "obs/tracecar-injector", "inject-ca-from: %r" % mwc["metadata"])
    check("caBundle" not in mwc["webhooks"][0]["clientConfig"], "caBundle with cert-manager")
    serving = [c for c in kinds["Certificate"] if c["metadata"]["name"] == "tracecar-injector"][0]
    check(serving["spec"]["secretName"] == "tracecar-injector-tls" and
          "tracecar-injector.obs.svc" in serving["spec"]["dnsNames"], "Certificate: %r" % serving)

    docs = render(args, "--set", "certManager.enabled=true",
                  "--set", "certManager.issuerRef={name: corp-ca, kind: ClusterIssuer}")
    kinds = by_kind(docs)
    check("Issuer" not in kinds and len(kinds["Certificate"]) == 1, "an existing issuer")
    check(kinds["Certificate"][0]["spec"]["issuerRef"] == {"name": "corp-ca",
                                                          "kind": "ClusterIssuer"}, "issuerRef")


def case_required(args):
    err = render(args, "--set", "image.repository=", expect_error=True)
    check("image.repository is required" in err, "error: %r" % err)
    err = render(args, "--set", "certManager.enabled=true",
                 "--set", "certManager.issuerRef={kind: ClusterIssuer}", expect_error=True)
    check("certManager.issuerRef.name is required" in err, "error: %r" % err)


def case_schema(args):
    try:
        import jsonschema
    except ImportError:
        raise Skip("python3-jsonschema is not installed")
    with open(os.path.join(args.chart, "values.schema.json")) as f:
        schema = json.load(f)
    with open(os.path.join(args.chart, "values.yaml")) as f:
        values = yaml.safe_load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)
    bad = [
        ("sidecar", "native", "yes"),
        ("sidecar", "adminPort", 70000),
        ("interception", "ipv6", "maybe"),
        ("sidecar", "inboundAddress", "10.0.0.1"),
        ("injector", "timeoutSeconds", 60),
        ("sidecar", "routes", "/users/{id}"),
        ("image", "tag", ""),
    ]
    for section, key, value in bad:
        v = copy.deepcopy(values)
        v[section][key] = value
        try:
            jsonschema.validate(v, schema)
        except jsonschema.ValidationError:
            continue
        raise Failure("schema accepts %s.%s=%r" % (section, key, value))
    v = copy.deepcopy(values)
    v["sidecar"]["nativ"] = True
    try:
        jsonschema.validate(v, schema)
        raise Failure("schema accepts an unknown key sidecar.nativ")
    except jsonschema.ValidationError:
        pass


def case_static_injection(args):
    """A user's pod template with the helpers equals what the injector makes."""
    user_template = os.path.join(HERE, "static_pod.yaml")
    work = tempfile.mkdtemp()
    try:
        chart = os.path.join(work, "chart")
        shutil.copytree(args.chart, chart)
        shutil.copy(user_template, os.path.join(chart, "templates", "zz-static-pod.yaml"))
        result = subprocess.run([args.render, "--chart", chart], capture_output=True, text=True,
                                timeout=STEP_TIMEOUT)
        check(result.returncode == 0, "render: %s" % result.stderr.strip())
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        static = [d for d in docs if d["kind"] == "Pod"][0]
        injection = injection_of(docs)
    finally:
        shutil.rmtree(work)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "shop", "labels": {"app": "shop"},
                        "annotations": {"tracecar.io/routes": "/users/{id},/orders/{id}",
                                        "tracecar.io/exclude-inbound-ports": "22"}},
           "spec": {"containers": copy.deepcopy(static["spec"]["containers"])}}
    injected = apply_patch(pod, review_with_webhook(args, injection, pod))
    want = static["spec"]["initContainers"]
    got = injected["spec"]["initContainers"]
    # The injector sets the service name from the label; the static template reads the label
    # through the downward API. Everything else must be identical.
    for c in got:
        for e in c.get("env", []):
            if e["name"] == "OTEL_SERVICE_NAME":
                check(e == {"name": "OTEL_SERVICE_NAME", "value": "shop"}, "service name %r" % e)
                e.clear()
                e.update({"name": "OTEL_SERVICE_NAME",
                          "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}})
    check(got == want, "static and injected initContainers differ:\nstatic:   %s\ninjected: %s" %
          (json.dumps(want, sort_keys=True), json.dumps(got, sort_keys=True)))


# ---- the webhook ----

class Webhook:
    """A running `tracecar inject-webhook` with the test PKI and an injection file."""

    def __init__(self, args, injection, extra=()):
        self.work = tempfile.mkdtemp(prefix="tracecar-chart-")
        self.certs = os.path.join(self.work, "certs")
        subprocess.run(["bash", args.certs_script, self.certs], check=True, timeout=60)
        self.tls = os.path.join(self.work, "tls")
        os.mkdir(self.tls)
        shutil.copy(os.path.join(self.certs, "server.pem"), os.path.join(self.tls, "tls.crt"))
        shutil.copy(os.path.join(self.certs, "server.key"), os.path.join(self.tls, "tls.key"))
        template = os.path.join(self.work, "injection.json")
        with open(template, "w") as f:
            json.dump(injection, f)
        ready = os.path.join(self.work, "ready.json")
        self.log = open(os.path.join(self.work, "webhook.log"), "w+")
        self.proc = subprocess.Popen(
            [args.tracecar, "inject-webhook", "--listen", "127.0.0.1:0",
             "--tls-cert", os.path.join(self.tls, "tls.crt"),
             "--tls-key", os.path.join(self.tls, "tls.key"),
             "--template", template, "--ready-file", ready] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while not os.path.exists(ready):
            check(self.proc.poll() is None, "inject-webhook exited: %s" % self.output())
            check(time.time() < deadline, "inject-webhook did not start")
            time.sleep(0.05)
        with open(ready) as f:
            self.port = json.load(f)["port"]

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def review(self, body, ca="ca.pem"):
        context = ssl.create_default_context(cafile=os.path.join(self.certs, ca))
        request = urllib.request.Request("https://localhost:%d/inject" % self.port,
                                         data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            check(response.status == 200, "status %d" % response.status)
            return json.loads(response.read())

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)


def admission_review(pod, uid="b1a5c0de-0000-4000-8000-000000000001"):
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "request": {"uid": uid, "kind": {"group": "", "version": "v1",
                                                        "kind": "Pod"},
                                   "resource": {"group": "", "version": "v1",
                                                "resource": "pods"},
                                   "namespace": "shop", "operation": "CREATE",
                                   "object": pod}}).encode()


def review_with_webhook(args, injection, pod):
    hook = Webhook(args, injection)
    try:
        answer = hook.review(admission_review(pod))
    finally:
        hook.close()
    response = answer["response"]
    check(response["allowed"] is True, "not allowed: %r" % response)
    check(response.get("patchType") == "JSONPatch", "no patch: %r" % response)
    return json.loads(base64.b64decode(response["patch"]))


def apply_patch(doc, operations):
    """RFC 6902 `add`, the only operation the injector uses."""
    doc = copy.deepcopy(doc)
    for op in operations:
        check(op["op"] == "add", "unexpected operation %r" % op)
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        target = doc
        for p in parts[:-1]:
            target = target[int(p)] if isinstance(target, list) else target[p]
        last = parts[-1]
        if isinstance(target, list):
            if last == "-":
                target.append(op["value"])
            else:
                target.insert(int(last), op["value"])
        else:
            target[last] = op["value"]
    return doc


SAMPLE_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"generateName": "users-6f7c9d-", "namespace": "shop",
                 "labels": {"app": "users"},
                 "annotations": {"tracecar.io/routes": "/users/{id}",
                                 "tracecar.io/sampler": "/healthz=never, *=always",
                                 "tracecar.io/exclude-inbound-ports": "22"}},
    "spec": {"initContainers": [{"name": "migrate", "image": "users:1"}],
             "containers": [{"name": "users", "image": "users:1",
                             "ports": [{"containerPort": 8080}]}]},
}


def injected_sample(args, extra_values=()):
    docs = render(args, *extra_values)
    injection = injection_of(docs)
    operations = review_with_webhook(args, injection, SAMPLE_POD)
    return apply_patch(SAMPLE_POD, operations)


def case_webhook(args):
    pod = injected_sample(args)
    names = [c["name"] for c in pod["spec"]["initContainers"]]
    check(names == ["tracecar-init", "tracecar", "migrate"], "initContainers: %r" % names)
    init, sidecar = pod["spec"]["initContainers"][0], pod["spec"]["initContainers"][1]
    check(init["args"] == ["init-iptables", "--proxy-uid", "1337", "--inbound-port", "15006",
                           "--outbound-port", "15001", "--admin-port", "15000", "--ipv6", "off",
                           "--exclude-inbound-ports", "22"], "init args: %r" % init["args"])
    check(sidecar["restartPolicy"] == "Always", "native sidecar")
    check(sidecar["args"] == ["run", "--inbound", "0.0.0.0:15006", "--outbound",
                              "127.0.0.1:15001", "--admin", "0.0.0.0:15000", "--route",
                              "/users/{id}", "--sampling-rules", "/healthz=never, *=always"],
          "sidecar args: %r" % sidecar["args"])
    env = {e["name"]: e for e in sidecar["env"]}
    check(env["OTEL_SERVICE_NAME"].get("value") == "users", "service name: %r" % env)
    for name, path in (("K8S_POD_NAME", "metadata.name"), ("K8S_NAMESPACE_NAME",
                       "metadata.namespace"), ("K8S_NODE_NAME", "spec.nodeName"),
                       ("K8S_POD_UID", "metadata.uid")):
        check(env[name]["valueFrom"]["fieldRef"]["fieldPath"] == path, "%s: %r" % (name, env))
    check(sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 15000} and
          sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 15000}, "probes")

    # Idempotent: the injected pod is allowed without a patch.
    docs = render(args)
    hook = Webhook(args, injection_of(docs))
    try:
        answer = hook.review(admission_review(pod))["response"]
        check(answer["allowed"] is True and "patch" not in answer and "warnings" not in answer,
              "re-review: %r" % answer)
        bad = copy.deepcopy(SAMPLE_POD)
        bad["metadata"]["annotations"]["tracecar.io/exclude-outbound-ports"] = "0"
        answer = hook.review(admission_review(bad))["response"]
        check(answer["allowed"] is True and "patch" not in answer, "bad annotation: %r" % answer)
        check(any("tracecar.io/exclude-outbound-ports" in w for w in answer["warnings"]),
              "bad annotation warning: %r" % answer)
    finally:
        hook.close()

    pod = injected_sample(args, ("--set", "sidecar.native=false"))
    check([c["name"] for c in pod["spec"]["initContainers"]] == ["tracecar-init", "migrate"],
          "regular: initContainers %r" % pod["spec"]["initContainers"])
    check([c["name"] for c in pod["spec"]["containers"]] == ["users", "tracecar"],
          "regular: containers %r" % pod["spec"]["containers"])


def case_cert_reload(args):
    """A renewed certificate (the Secret's files replaced) is served without a restart."""
    hook = Webhook(args, injection_of(render(args)), ("--reload-interval", "0.2"))
    try:
        body = admission_review(SAMPLE_POD)
        check(hook.review(body)["response"]["allowed"], "first review")
        # Replaced the way the kubelet updates a Secret volume: new files renamed into place.
        for src, dst in (("other-server.pem", "tls.crt"), ("other-server.key", "tls.key")):
            shutil.copy(os.path.join(hook.certs, src), os.path.join(hook.tls, dst + ".new"))
            os.rename(os.path.join(hook.tls, dst + ".new"), os.path.join(hook.tls, dst))
        deadline = time.time() + 10
        while True:
            try:
                hook.review(body, ca="other-ca.pem")
                break
            except (ssl.SSLError, OSError):
                check(time.time() < deadline, "the new certificate was never served: %s" %
                      hook.output())
                time.sleep(0.1)
        check(hook.proc.poll() is None, "the injector restarted")
        # A broken pair keeps the previous certificate.
        with open(os.path.join(hook.tls, "tls.key"), "w") as f:
            f.write("not a key\n")
        deadline = time.time() + 10
        while ("certificate not reloaded, keeping the previous one" not in hook.output()
               and time.time() < deadline):
            time.sleep(0.1)
        check("certificate not reloaded, keeping the previous one" in hook.output(),
              "no warning for a broken pair: %s" % hook.output())
        hook.review(body, ca="other-ca.pem")  # still served with the previous certificate
    finally:
        hook.close()


def case_netns(args):
    from pod_netns import run_injected_pod
    run_injected_pod(args, injected_sample(args), check, Skip)


CASES = {
    "render_default": case_render_default,
    "overrides": case_overrides,
    "required": case_required,
    "schema": case_schema,
    "static_injection": case_static_injection,
    "webhook": case_webhook,
    "cert_reload": case_cert_reload,
    "netns": case_netns,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--render", required=True)
    parser.add_argument("--chart", required=True)
    parser.add_argument("--tracecar", required=True)
    parser.add_argument("--certs-script", required=True)
    parser.add_argument("case", choices=sorted(CASES))
    args = parser.parse_args()
    sys.dont_write_bytecode = True  # nothing written into the source tree
    sys.path.insert(0, HERE)
    try:
        CASES[args.case](args)
    except Skip as e:
        print("SKIP %s: %s" % (args.case, e))
        return 0
    except Failure as e:
        print("FAIL %s: %s" % (args.case, e))
        return 1
    print("PASS %s" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
