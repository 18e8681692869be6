#!/usr/bin/env python3
"""Two pods with tracecar in transparent mode, end to end.

Pods A (192.0.2.1, 2001:db8::1) and B (192.0.2.2, 2001:db8::2) as network namespaces joined by
a veth pair (netns_test.Pods). In each: the rules of `tracecar init-iptables` installed as an init
container would (root, before anything else), an app (pod_app.py, uid 1000), a collector
(tests/support/fake_collector.py, OTLP/HTTP JSON, recording what it gets) and `tracecar run`
as uid 1337 with --inbound [::]:15006 --outbound 127.0.0.1:15001 and the default outbound mode
(original_destination). The apps never hear of tracecar.

Usage: transparent_test.py --tracecar PATH --probe PATH --support DIR CASE
Prints "PASS CASE", "SKIP CASE: why" or "FAIL CASE: what".
"""

import argparse
import glob
import json
import os
import select
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns_test  # noqa: E402
from netns_test import A_V4, A_V6, B_V4, B_V6, APP_UID, PROXY_UID, STEP_TIMEOUT  # noqa: E402
from netns_test import Failure, Skip, check, expect_reply  # noqa: E402

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
EXCLUDED = 9100  # excluded from interception: A's outbound rules and B's inbound rules
SPAN_SERVER, SPAN_CLIENT = 2, 3


class TransparentPods(netns_test.Pods):
    def __init__(self, args, case):
        super().__init__(args.tracecar, args.probe, case)
        self.support = args.support
        self.app = os.path.join(self.work, "pod_app.py")
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pod_app.py"),
                    self.app)
        os.chmod(self.app, 0o755)
        self.records = {}
        self.before = {}

    def ns(self, pod):
        return self.a if pod == "a" else self.b

    def start(self, ns, argv, uid=None, ready="READY", env=None, log=None):
        prefix = ["ip", "netns", "exec", ns]
        if uid is not None:
            # A change of user clears the parent-death signal: set it again after.
            prefix += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
                       "--pdeathsig", "KILL"]
        if env:
            prefix += ["env"] + ["%s=%s" % item for item in sorted(env.items())]
        # A log file rather than a pipe nobody reads for a process that talks a lot.
        err = open(log, "w") if log else subprocess.PIPE
        # Killed with this script if it dies without cleaning up (ctest's timeout).
        proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--"] + prefix + argv,
                                stdout=subprocess.PIPE, stderr=err, text=True)
        if log:
            err.close()
        self.servers.append(proc)
        if ready is None:
            return proc, ""
        ready_fds, _, _ = select.select([proc.stdout], [], [], STEP_TIMEOUT)
        line = proc.stdout.readline() if ready_fds else ""
        check(line.startswith(ready), "%s did not start: %r %s" %
              (" ".join(argv[:3]), line, proc.stderr.read() if proc.poll() is not None else ""))
        return proc, line

    def save_ns(self, ns):
        out = []
        for tool in ("iptables-save", "ip6tables-save"):
            result = self.run(ns, [tool, "-t", "nat"])
            check(result.returncode == 0, "%s: %s" % (tool, result.stderr.strip()))
            out.append(netns_test.normalise_save(result.stdout))
        return out

    def init_pod(self, pod, *args):
        ns = self.ns(pod)
        self.before[pod] = self.save_ns(ns)
        result = self.run(ns, [self.tracecar, "init-iptables"] + list(args))
        check(result.returncode == 0, "init-iptables in %s: %s" % (pod, result.stderr.strip()))

    def start_pod(self, pod):
        ns = self.ns(pod)
        for mode, port in (("http", 8080), ("echo", 9000), ("greet", 9025), ("http", EXCLUDED)):
            self.start(ns, [PYTHON, self.app, mode, str(port)], uid=APP_UID)
        self.start(ns, [PYTHON, self.app, "tls", "9443", os.path.join(self.work, "certs",
                                                                      "server.pem"),
                        os.path.join(self.work, "certs", "server.key")], uid=APP_UID)
        record = os.path.join(self.work, "spans-" + pod)
        os.mkdir(record)
        self.records[pod] = record
        _, line = self.start(ns, [PYTHON, os.path.join(self.support, "fake_collector.py"),
                                  "--record", record, "--max-seconds", "120"], ready="PORT")
        collector = int(line.split()[1])
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d" % collector,
               "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_BSP_SCHEDULE_DELAY": "50",
               "OTEL_SERVICE_NAME": "pod-" + pod}
        ready_dir = os.path.join(self.work, "run-" + pod)
        os.mkdir(ready_dir)
        os.chown(ready_dir, PROXY_UID, PROXY_UID)
        ready_file = os.path.join(ready_dir, "ready.json")
        log = os.path.join(self.work, "tracecar-%s.log" % pod)
        proc, _ = self.start(ns, [self.tracecar, "run", "--inbound", "[::]:15006", "--outbound",
                                  "127.0.0.1:15001", "--workers", "2", "--ready-file",
                                  ready_file], uid=PROXY_UID, ready=None, env=env, log=log)
        deadline = time.monotonic() + STEP_TIMEOUT
        while not os.path.exists(ready_file):
            if proc.poll() is not None:
                with open(log) as f:
                    raise Failure("tracecar in %s exited: %s" % (pod, f.read()))
            check(time.monotonic() < deadline, "tracecar in %s never got ready" % pod)
            time.sleep(0.05)

    def up(self, *init_args):
        certs = os.path.join(self.work, "certs")
        result = subprocess.run(["bash", os.path.join(self.support, "make_certs.sh"), certs],
                                capture_output=True, text=True, timeout=60)
        check(result.returncode == 0, "make_certs.sh: " + result.stderr)
        for path in [certs] + glob.glob(os.path.join(certs, "*")):
            os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
        self.init_pod("a", "--exclude-outbound-ports", str(EXCLUDED), *init_args)
        self.init_pod("b", "--exclude-inbound-ports", str(EXCLUDED), *init_args)
        self.start_pod("a")
        self.start_pod("b")

    def app_run(self, pod, *argv):
        result = self.run(self.ns(pod), [PYTHON, self.app] + list(argv), uid=APP_UID)
        check(result.returncode == 0, "%s in %s: %s" % (argv[0], pod, result.stderr.strip()))
        return result.stdout.strip()

    def get(self, pod, path, port=8080):
        """GET from inside the pod as root, on loopback (never redirected)."""
        result = self.run(self.ns(pod), ["curl", "-sS", "--max-time", "10",
                                         "http://127.0.0.1:%d%s" % (port, path)])
        check(result.returncode == 0, "GET %s in %s: %s" % (path, pod, result.stderr.strip()))
        return result.stdout

    def metric(self, pod, name, **labels):
        text = self.get(pod, "/metrics", port=15000)
        want = ",".join('%s="%s"' % item for item in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + "{") and line.split("}")[0][len(name) + 1:] == want:
                return float(line.split()[-1])
        return 0.0

    def spans(self, pod):
        out = []
        for path in sorted(glob.glob(os.path.join(self.records[pod], "*.body"))):
            with open(path) as f:
                body = json.load(f)
            for resource in body.get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    out.extend(scope.get("spans", []))
        return out

    def cleanup_and_compare(self):
        for pod in ("a", "b"):
            result = self.run(self.ns(pod), [self.tracecar, "init-iptables", "--cleanup"])
            check(result.returncode == 0, "cleanup in %s: %s" % (pod, result.stderr))
            after = self.save_ns(self.ns(pod))
            check(after == self.before[pod], "cleanup in %s left:\n%s\nbefore:\n%s" %
                  (pod, after, self.before[pod]))


def call(pods, host):
    body = json.loads(pods.get("a", "/call?to=%s" % host))
    check(body["status"] == 200, "A -> %s: %r" % (host, body))
    return body


def wait_for_spans(pods, pod, kind, count):
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        found = [s for s in pods.spans(pod) if s.get("kind") == kind]
        if len(found) >= count:
            return found
        check(time.monotonic() < deadline, "pod %s exported %d spans of kind %d, want %d" %
              (pod, len(found), kind, count))
        time.sleep(0.1)


def case_http_trace(pods, family=4):
    pods.up()
    host = "%s:8080" % B_V4 if family == 4 else "[%s]:8080" % B_V6
    body = call(pods, host)
    # A's app saw the address it called; B's app the Host it was sent and its own port.
    expect_reply(body["peer"], host, "A's app: the peer of its connection")
    callee = body["callee"]
    expect_reply(callee["host"], host, "B's app: Host")
    check(callee["local"].endswith(":8080"), "B's app reached on %s" % callee["local"])
    check("traceparent" in callee["headers"], "no traceparent reached B's app: %r" % callee)
    client = wait_for_spans(pods, "a", SPAN_CLIENT, 1)[0]
    server = wait_for_spans(pods, "b", SPAN_SERVER, 1)[0]
    expect_reply(server["traceId"], client["traceId"], "one trace")
    expect_reply(server.get("parentSpanId"), client["spanId"], "B's SERVER span's parent")
    expect_reply(callee["headers"]["traceparent"].split("-")[2], server["spanId"],
                 "the parent id B's app got")
    check(not [s for s in pods.spans("a") if s.get("kind") == SPAN_SERVER],
          "A's app was called on loopback: no SERVER span in A")
    pods.cleanup_and_compare()


def case_http_trace_ipv6(pods):
    case_http_trace(pods, family=6)


def case_opaque(pods):
    pods.up()
    for host in (B_V4, B_V6):
        expect_reply(pods.app_run("a", "echo-client", host, "9000", "300000"),
                     "OK " + ("%s:9000" if ":" not in host else "[%s]:9000") % host,
                     "raw TCP echo to %s" % host)
        expect_reply(pods.app_run("a", "tls-client", host, "9443",
                                  os.path.join(pods.work, "certs", "ca.pem"), "100000")[:2],
                     "OK", "TLS to %s" % host)
    expect_reply(pods.app_run("a", "greet-client", B_V4, "9025"), "OK", "server speaks first")
    for pod, listener in (("a", "outbound"), ("b", "inbound")):
        for protocol, count in (("other", 2), ("tls", 2), ("server_first", 1)):
            got = pods.metric(pod, "tracecar_opaque_tunnels_total", listener=listener,
                              protocol=protocol)
            check(got == count, "pod %s: %s %s tunnels: %s, want %d" %
                  (pod, listener, protocol, got, count))
    sent = pods.metric("a", "tracecar_opaque_tunnel_bytes_total", direction="to_upstream",
                       listener="outbound", protocol="other")
    check(sent == 600000, "A's outbound tunnel bytes: %s" % sent)
    pods.cleanup_and_compare()


def case_excluded(pods):
    pods.up()
    before = pods.metric("a", "tracecar_connections_total", listener="outbound")
    body = call(pods, "%s:%d" % (B_V4, EXCLUDED))
    # Straight from A's app to B's: B's app sees A's address, not tracecar's loopback.
    check(body["callee"]["client"].startswith(A_V4 + ":"), "excluded port: %r" % body)
    check(pods.metric("a", "tracecar_connections_total", listener="outbound") == before,
          "A's tracecar saw the excluded connection")
    check(pods.metric("b", "tracecar_connections_total", listener="inbound") == 0,
          "B's tracecar saw the excluded connection")
    # Through tracecar, the app's peer is tracecar on loopback.
    body = call(pods, "%s:8080" % B_V4)
    check(body["callee"]["client"].startswith("127.0.0.1:"), "intercepted: %r" % body)
    pods.cleanup_and_compare()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracecar", required=True)
    parser.add_argument("--probe", required=True)
    parser.add_argument("--support", required=True)
    parser.add_argument("case", choices=sorted(CASES))
    args = parser.parse_args()
    reason = netns_test.skip_reason()
    if reason is None and shutil.which("curl") is None:
        reason = "curl is not installed"
    if reason:
        print("SKIP %s: %s" % (args.case, reason))
        return 0
    started = time.monotonic()
    try:
        with TransparentPods(args, "tm" + args.case) as pods:
            CASES[args.case](pods)
    except Failure as e:
        print("FAIL %s: %s" % (args.case, e))
        return 1
    except Skip as e:
        print("SKIP %s: %s" % (args.case, e))
        return 0
    except (OSError, subprocess.SubprocessError, KeyError, ValueError) as e:
        print("FAIL %s: %r" % (args.case, e))
        return 1
    print("PASS %s (%.1f s)" % (args.case, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
