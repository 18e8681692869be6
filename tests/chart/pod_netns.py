"""Runs an injected pod's containers in a network namespace, as the kubelet would.

The pod's first init container (init-iptables) and its sidecar are started with exactly the
args the injector produced (only the downward-API variables are resolved here, and the console
exporter is chosen through the environment). A client in a second namespace then calls the
app on the pod IP, and the span the sidecar exports must show that request.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

CLIENT_IP, POD_IP = "192.0.2.1", "192.0.2.2"
APP_UID, PROXY_UID = 1000, 1337
STEP_TIMEOUT = 15

# The app: answers every GET with the traceparent it received (tracecar adds one).
APP = r"""
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("app saw traceparent=%s\n" % self.headers.get("traceparent")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
"""

FAKE_POD = {"metadata.name": "users-6f7c9d-x2x7q", "metadata.namespace": "shop",
            "spec.nodeName": "node-1", "metadata.uid": "0c4f1a56-1f5e-4c43-9b1d-8b8f5e0c2a11",
            "metadata.labels['app']": "users"}


def resolve_env(container):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            env[e["name"]] = FAKE_POD[e["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def run_injected_pod(args, pod, check, Skip):
    if os.geteuid() != 0:
        raise Skip("needs root (network namespaces and iptables)")
    for tool in ("ip", "iptables-restore", "setpriv", "curl"):
        if shutil.which(tool) is None:
            raise Skip("%s is not installed" % tool)
    init = pod["spec"]["initContainers"][0]
    sidecars = [c for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]
                if c["name"] == "tracecar"]
    check(len(sidecars) == 1, "no sidecar in the pod")
    sidecar = sidecars[0]
    app_port = pod["spec"]["containers"][0]["ports"][0]["containerPort"]

    work = tempfile.mkdtemp(prefix="tracecar-chart-pod-")
    os.chmod(work, 0o777)
    tag = str(os.getpid())
    client_ns, pod_ns = "tcch-c-" + tag, "tcch-p-" + tag
    created, procs = [], []

    def ip(*a):
        r = subprocess.run(["ip"] + list(a), capture_output=True, text=True, timeout=STEP_TIMEOUT)
        check(r.returncode == 0, "ip %s: %s" % (" ".join(a), r.stderr.strip()))

    def in_ns(ns, argv, uid=None, **kw):
        prefix = ["ip", "netns", "exec", ns]
        if uid is not None:
            prefix += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"]
        return prefix + argv

    try:
        tracecar = os.path.join(work, "tracecar")
        shutil.copy(args.tracecar, tracecar)
        os.chmod(tracecar, 0o755)
        app = os.path.join(work, "app.py")
        with open(app, "w") as f:
            f.write(APP)
        for ns in (client_ns, pod_ns):
            ip("netns", "add", ns)
            created.append(ns)
        ip("-n", client_ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
           "netns", pod_ns)
        for ns, addr in ((client_ns, CLIENT_IP), (pod_ns, POD_IP)):
            ip("-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", "eth0", "up")

        # 1. The init container, as root (its securityContext), to completion.
        check(init["securityContext"]["runAsUser"] == 0, "init container runs as root")
        r = subprocess.run(in_ns(pod_ns, [tracecar] + init["args"]), capture_output=True,
                           text=True, timeout=STEP_TIMEOUT, env=resolve_env(init))
        check(r.returncode == 0, "init container %r exited %d: %s" %
              (init["args"], r.returncode, r.stderr.strip()))

        # 2. The app, as an ordinary user.
        procs.append(subprocess.Popen(in_ns(pod_ns, ["/usr/bin/python3", app, str(app_port)],
                                            uid=APP_UID),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        # 3. The sidecar with the injected command line, as its securityContext's user.
        uid = sidecar["securityContext"]["runAsUser"]
        check(uid == PROXY_UID, "sidecar uid %r" % uid)
        spans = os.path.join(work, "spans.jsonl")
        env = resolve_env(sidecar)
        env.update({"OTEL_TRACES_EXPORTER": "console", "TRACECAR_CONSOLE_EXPORT_PATH": spans,
                    "OTEL_BSP_SCHEDULE_DELAY": "100"})
        log = open(os.path.join(work, "sidecar.log"), "w+")
        sidecar_proc = subprocess.Popen(in_ns(pod_ns, [tracecar] + sidecar["args"], uid=uid),
                                        env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(sidecar_proc)

        def sidecar_output():
            log.seek(0)
            return log.read()

        # 4. The readiness probe, from outside the pod as the kubelet sends it.
        probe = sidecar["readinessProbe"]["httpGet"]
        url = "http://%s:%d%s" % (POD_IP, probe["port"], probe["path"])
        deadline = time.time() + STEP_TIMEOUT
        while True:
            check(sidecar_proc.poll() is None, "sidecar exited: %s" % sidecar_output())
            r = subprocess.run(in_ns(client_ns, ["curl", "-s", "-o", "/dev/null", "-w",
                                                 "%{http_code}", "--max-time", "1", url]),
                               capture_output=True, text=True, timeout=STEP_TIMEOUT)
            if r.stdout == "200":
                break
            check(time.time() < deadline, "readiness probe %s never answered 200 (%s): %s" %
                  (url, r.stdout, sidecar_output()))
            time.sleep(0.1)

        # 5. A request from another pod to the app's port on the pod IP.
        deadline = time.time() + STEP_TIMEOUT
        while True:
            r = subprocess.run(in_ns(client_ns, ["curl", "-s", "--max-time", "3",
                                                 "http://%s:%d/users/42" % (POD_IP, app_port)]),
                               capture_output=True, text=True, timeout=STEP_TIMEOUT)
            if r.returncode == 0 and r.stdout.startswith("app saw"):
                break
            check(time.time() < deadline, "request to the pod failed (%d): %r %s" %
                  (r.returncode, r.stdout, sidecar_output()))
            time.sleep(0.2)
        check("traceparent=00-" in r.stdout,
              "the app got no traceparent: the request did not go through tracecar: %r" % r.stdout)
        trace_id = r.stdout.split("traceparent=00-")[1][:32]

        # 6. The SERVER span of that request, with the route from the pod's annotation and
        # the pod's resource attributes.
        deadline = time.time() + STEP_TIMEOUT
        found = None
        while found is None:
            if os.path.exists(spans):
                with open(spans) as f:
                    for line in f:
                        found = found or find_span(json.loads(line), trace_id)
            if found is None:
                check(time.time() < deadline, "no span for trace %s: %s" %
                      (trace_id, sidecar_output()))
                time.sleep(0.1)
        span, resource = found
        check(span["name"] == "GET /users/{id}", "span name %r" % span["name"])
        check(span["kind"] in (2, "SPAN_KIND_SERVER"), "span kind %r" % span["kind"])
        for key, want in (("service.name", "users"), ("k8s.pod.name", "users-6f7c9d-x2x7q"),
                          ("k8s.namespace.name", "shop"), ("k8s.node.name", "node-1"),
                          ("k8s.pod.uid", FAKE_POD["metadata.uid"])):
            check(resource.get(key) == want, "resource %s: %r, want %r" %
                  (key, resource.get(key), want))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=STEP_TIMEOUT)
        shutil.rmtree(work, ignore_errors=True)


def find_span(export, trace_id):
    """(span, resource attributes) of the span with this trace id in an OTLP/JSON export."""
    for rs in export.get("resourceSpans", []):
        resource = {a["key"]: next(iter(a["value"].values()))
                    for a in rs.get("resource", {}).get("attributes", [])}
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                if span.get("traceId", "").lower() == trace_id:
                    return span, resource
    return None
