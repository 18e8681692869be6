#!/usr/bin/env python3
"""End-to-end tests of `tracecar run` with real processes on loopback: tracecar in front of
tests/support/origin_server.py, exporting to tests/support/fake_collector.py, driven by curl and
raw sockets. Spans are checked by decoding the recorded OTLP/protobuf payloads with protoc
against the official schema.

Usage: tracecar_e2e.py --tracecar PATH --protos DIR CASE   (CASE: see CASES below)
"""

import http.client
import json
import math
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from e2e_support import (HERE, Failure, Skip, check, closed_port, metric_value, nginx_h2_origin,
                         run_cases, status_line, wait_for)

ROUTES = ["--route", "/status/{code}", "--route", "/echo"]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def traceparent_parts(value):
    version, trace_id, parent_id, flags = value.split("-")
    return trace_id, parent_id, flags


def echoed_header(echo_json, name):
    for key, value in json.loads(echo_json)["headers"]:
        if key.lower() == name:
            return value
    return None


def inbound_span(h):
    origin = h.origin()
    collector, record = h.collector()
    tc = h.tracecar("sidecar", origin, ROUTES, collector_port=collector)

    echo = h.curl("-H", "traceparent: 00-%s-%s-01" % (TRACE, PARENT),
                  "-H", "User-Agent: e2e-client/1", tc.url("/echo?user=42&token=s3cret"))
    spans = h.wait_spans(record, 1)
    check(len(spans) == 1, "one span, got %d" % len(spans))
    s = spans[0]
    check(s["kind"] == "SPAN_KIND_SERVER", "kind %s" % s["kind"])
    check(s["name"] == "GET /echo", "name %r" % s["name"])
    check(s["service"] == "sidecar", "service.name %r" % s["service"])
    check(s["trace_id"] == TRACE and s["parent_span_id"] == PARENT,
          "continues the incoming trace: %s / %s" % (s["trace_id"], s["parent_span_id"]))
    a = s["attributes"]
    expected = {"http.request.method": "GET", "url.path": "/echo",
                "url.query": "user=REDACTED&token=REDACTED", "url.scheme": "http",
                "http.route": "/echo", "http.response.status_code": 200,
                "network.protocol.version": "1.1", "server.address": "127.0.0.1",
                "server.port": tc.inbound, "client.address": "127.0.0.1",
                "user_agent.original": "e2e-client/1"}
    for key, value in expected.items():
        check(a.get(key) == value, "%s: want %r, got %r" % (key, value, a.get(key)))
    check(s["status"] == "STATUS_CODE_UNSET", "status %s" % s["status"])
    check(s["end"] >= s["start"] > 0, "timestamps")

    # The app got the context with this span as its parent.
    trace_id, parent_id, flags = traceparent_parts(echoed_header(echo, "traceparent"))
    check(trace_id == TRACE and parent_id == s["span_id"] and flags == "01",
          "app's traceparent %s-%s-%s, span %s" % (trace_id, parent_id, flags, s["span_id"]))

    # A route template names the span; a 404 from the app leaves a SERVER span unset.
    check(h.status_of(tc.url("/status/404")) == 404, "404 relayed")
    s = h.wait_spans(record, 1, where=lambda s: s["name"] == "GET /status/{code}")[0]
    check(s["attributes"]["http.route"] == "/status/{code}", "route")
    check(s["trace_id"] != TRACE and s["parent_span_id"] == "", "no context: a new trace")
    check(s["status"] == "STATUS_CODE_UNSET", "SERVER 4xx stays unset")

    # Its threads are named (top -H, perf): two workers, the exporter and libuv's pool.
    pid = tc.process.popen.pid
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            names.append(f.read().strip())
    for want in ("tc-worker-0", "tc-worker-1", "tc-exporter"):
        check(names.count(want) == 1, "one thread named %s, threads: %s" % (want, sorted(names)))
    # libuv 1.50 and later name their pool threads themselves.
    pool = [n for n in names if n in ("tc-uv-pool", "libuv-worker")]
    check(len(pool) >= 1, "libuv's pool named, threads: %s" % sorted(names))


def outbound_span(h):
    origin = h.origin()
    collector, record = h.collector()
    tc = h.tracecar("sidecar", 1, ROUTES, collector_port=collector)  # the app is not used

    target = "http://127.0.0.1:%d/echo?k=v" % origin
    echo = h.curl("-x", "http://127.0.0.1:%d" % tc.outbound, target)
    s = h.wait_spans(record, 1)[0]
    check(s["kind"] == "SPAN_KIND_CLIENT", "kind %s" % s["kind"])
    check(s["name"] == "GET", "CLIENT span name %r" % s["name"])
    a = s["attributes"]
    expected = {"http.request.method": "GET", "url.full": "http://127.0.0.1:%d/echo?k=REDACTED"
                % origin, "server.address": "127.0.0.1", "server.port": origin,
                "http.response.status_code": 200, "network.protocol.version": "1.1"}
    for key, value in expected.items():
        check(a.get(key) == value, "%s: want %r, got %r" % (key, value, a.get(key)))
    opt_in = ("url.scheme", "url.path", "url.query", "user_agent.original")
    check(not any(key in a for key in opt_in), "no opt-in URL attributes by default: %r" % a)
    trace_id, parent_id, _ = traceparent_parts(echoed_header(echo, "traceparent"))
    check(trace_id == s["trace_id"] and parent_id == s["span_id"],
          "the upstream's parent is the CLIENT span")

    # CLIENT: a 4xx and a 5xx are errors, with the status code as error.type.
    for code in (404, 503):
        check(h.status_of("-x", "http://127.0.0.1:%d" % tc.outbound,
                          "http://127.0.0.1:%d/status/%d" % (origin, code)) == code,
              "%d relayed" % code)
        s = h.wait_spans(record, 1, where=lambda s, code=code: s["attributes"].get(
            "http.response.status_code") == code)[0]
        check(s["status"] == "STATUS_CODE_ERROR" and s["attributes"].get("error.type") == str(code),
              "CLIENT %d is an Error with error.type %d: %s %r"
              % (code, code, s["status"], s["attributes"]))

    # tracing.client_url_attributes: the opt-in ones too, the query redacted as in url.full.
    collector2, record2 = h.collector("collector-url")
    config = os.path.join(h.dir, "client-url.yaml")
    with open(config, "w") as f:
        f.write("tracing:\n  client_url_attributes: true\n")
    tc2 = h.tracecar("sidecar-url", 1, ROUTES + ["--config", config], collector_port=collector2)
    h.curl("-x", "http://127.0.0.1:%d" % tc2.outbound, "-A", "legacy-app/2.1", target)
    a = h.wait_spans(record2, 1)[0]["attributes"]
    expected = {"url.scheme": "http", "url.path": "/echo", "url.query": "k=REDACTED",
                "user_agent.original": "legacy-app/2.1",
                "url.full": "http://127.0.0.1:%d/echo?k=REDACTED" % origin}
    for key, value in expected.items():
        check(a.get(key) == value, "with client_url_attributes, %s: want %r, got %r"
              % (key, value, a.get(key)))


def two_hop_chain(h):
    collector, record = h.collector()
    origin_b = h.origin("origin-b")
    b = h.tracecar("sidecar-b", origin_b, ROUTES, collector_port=collector)
    a = h.tracecar("sidecar-a", 1, ROUTES, collector_port=collector)

    # App A calls app B through its sidecar's outbound listener, as its HTTP proxy.
    echo = h.curl("-x", "http://127.0.0.1:%d" % a.outbound,
                  "http://127.0.0.1:%d/echo" % b.inbound)
    spans = h.wait_spans(record, 2)
    check(len(spans) == 2, "two spans, got %d" % len(spans))
    client = [s for s in spans if s["kind"] == "SPAN_KIND_CLIENT"]
    server = [s for s in spans if s["kind"] == "SPAN_KIND_SERVER"]
    check(len(client) == 1 and len(server) == 1, "one CLIENT and one SERVER span")
    client, server = client[0], server[0]
    check(client["service"] == "sidecar-a" and server["service"] == "sidecar-b", "services")
    check(client["trace_id"] == server["trace_id"], "ONE trace: %s vs %s"
          % (client["trace_id"], server["trace_id"]))
    check(client["parent_span_id"] == "", "A started the trace")
    check(server["parent_span_id"] == client["span_id"],
          "B's SERVER span (parent %s) is the child of A's CLIENT span %s"
          % (server["parent_span_id"], client["span_id"]))
    check(server["name"] == "GET /echo", "B's span name %r" % server["name"])
    trace_id, parent_id, _ = traceparent_parts(echoed_header(echo, "traceparent"))
    check(trace_id == client["trace_id"] and parent_id == server["span_id"],
          "app B's parent is B's SERVER span")
    # Causal order only: the end of B's span may be taken after A's, once B's write completes.
    check(client["start"] <= server["start"], "A's CLIENT span starts before B's SERVER span")


def metrics_promtool(h):
    origin = h.origin()
    tc = h.tracecar("sidecar", origin, ROUTES, env={"OTEL_TRACES_EXPORTER": "none"})
    for path in ("/status/200", "/status/201", "/echo", "/status/200"):
        h.curl(tc.url(path))
    h.curl("-x", "http://127.0.0.1:%d" % tc.outbound, "http://127.0.0.1:%d/echo" % origin)
    h.raw_request(tc.inbound, b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    text = h.metrics(tc)
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    check(r.returncode == 0, "promtool check metrics: %s%s" % (r.stdout.decode(),
                                                               r.stderr.decode()))
    server = "http_server_request_duration_seconds_count"
    check(metric_value(text, server, {"http_request_method": "GET", "http_route": "/status/{code}",
                                      "http_response_status_code": "200"}) == 2,
          "two GET /status/{code} 200")
    check(metric_value(text, server, {"http_request_method": "GET", "http_route": "/status/{code}",
                                      "http_response_status_code": "201"}) == 1, "one 201")
    check(metric_value(text, "http_client_request_duration_seconds_count",
                       {"http_request_method": "GET", "http_response_status_code": "200"}) == 1,
          "one outbound request")
    check(metric_value(text, "tracecar_connections_total", {"listener": "inbound"}) >= 5,
          "inbound connections counted")
    check(metric_value(text, "tracecar_requests_rejected_total",
                       {"listener": "inbound", "reason": "400_bad_request"}) == 1,
          "the malformed request counted")
    check(metric_value(text, "tracecar_spans_started_total", {"kind": "server"}) == 4,
          "SERVER spans started")
    check(h.curl(tc.url("/readyz", "admin")).strip() == "ready", "ready")


def header_limits(h):
    origin = h.origin()
    tc = h.tracecar("sidecar", origin, ROUTES, env={"OTEL_TRACES_EXPORTER": "none"})

    def head_with_fields(count):
        lines = ["GET /echo?nobody=1 HTTP/1.1", "Host: app"]
        lines += ["X-Field-%d: v" % i for i in range(count - 1)]
        lines += ["Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def head_of_size(total):
        start = b"GET /echo?nobody=1 HTTP/1.1\r\nHost: app\r\nConnection: close\r\nX-Pad: "
        pad = total - len(start) - 4
        return start + b"p" * pad + b"\r\n\r\n"

    def target_of_length(length):
        prefix = "/echo?nobody=1&pad="
        return prefix + "x" * (length - len(prefix))

    cases = [
        ("100 header fields", head_with_fields(99), 200),  # + Connection: close = 100
        ("101 header fields", head_with_fields(100), 431),
        ("61440-byte head", head_of_size(61440), 200),
        ("61441-byte head", head_of_size(61441), 431),
        ("8192-char target", ("GET %s HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
                              % target_of_length(8192)).encode(), 200),
        ("8193-char target", ("GET %s HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
                              % target_of_length(8193)).encode(), 414),
    ]
    for name, request, want in cases:
        before = h.origin_requests(origin)
        got = status_line(h.raw_request(tc.inbound, request))
        check(got == want, "%s: want %d, got %s" % (name, want, got))
        forwarded = h.origin_requests(origin) - before
        check(forwarded == (1 if want == 200 else 0),
              "%s: %d request(s) reached the app" % (name, forwarded))
    text = h.metrics(tc)
    for reason in ("431_header_too_large", "431_too_many_headers", "414_uri_too_long"):
        check(metric_value(text, "tracecar_requests_rejected_total",
                           {"listener": "inbound", "reason": reason}) == 1, reason + " counted")


def malformed_requests(h):
    origin = h.origin()
    tc = h.tracecar("sidecar", origin, ROUTES, env={"OTEL_TRACES_EXPORTER": "none"})
    cases = {
        "conflicting Content-Length":
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "Content-Length with Transfer-Encoding":
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "obs-fold": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
        "bare LF": b"GET /echo HTTP/1.1\nHost: a\n\n",
        "bare CR": b"GET /echo HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        "invalid header character": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Bad\x01: v\r\n\r\n",
        "two Host headers": b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "no Host in HTTP/1.1": b"GET /echo HTTP/1.1\r\nX: y\r\n\r\n",
    }
    for name, request in cases.items():
        before = h.origin_requests(origin)
        response = h.raw_request(tc.inbound, request)
        check(status_line(response) == 400, "%s: want 400, got %r" % (name, response[:60]))
        check(h.origin_requests(origin) == before, "%s: reached the app" % name)
    check(metric_value(h.metrics(tc), "tracecar_requests_rejected_total",
                       {"listener": "inbound", "reason": "400_bad_request"}) == len(cases),
          "every malformed request counted")


def upstream_refused(h):
    collector, record = h.collector()
    tc = h.tracecar("sidecar", closed_port(), ROUTES, collector_port=collector)
    response = h.curl("-i", tc.url("/status/200"))
    check(response.startswith("HTTP/1.1 502"), "want 502, got %r" % response[:40])
    s = h.wait_spans(record, 1)[0]
    check(s["kind"] == "SPAN_KIND_SERVER", "kind")
    check(s["status"] == "STATUS_CODE_ERROR", "status %s" % s["status"])
    check(s["attributes"].get("error.type") == "connection_refused",
          "error.type %r" % s["attributes"].get("error.type"))
    check(s["attributes"].get("http.response.status_code") == 502, "502 recorded")
    check(s["status_message"] != "", "a status message")
    text = h.metrics(tc)
    check(metric_value(text, "tracecar_requests_rejected_total",
                       {"listener": "inbound", "reason": "502_refused"}) == 1, "502 counted")
    check(metric_value(text, "http_server_request_duration_seconds_count",
                       {"http_request_method": "GET", "http_route": "/status/{code}",
                        "http_response_status_code": "502",
                        "error_type": "connection_refused"}) == 1, "histogram error_type")


def requests_in_flight(h, count, sleep_ms):
    """A sidecar whose spans only the shutdown flush can export, with count requests to a slow
    app in flight: (tracecar, span record, {i: status or error}, threads)."""
    origin = h.origin()
    collector, record = h.collector()
    # A schedule delay far longer than the test: only the shutdown flush can export the spans.
    tc = h.tracecar("sidecar", origin, ROUTES, collector_port=collector,
                    env={"OTEL_BSP_SCHEDULE_DELAY": "600000"})
    results = {}

    def request(i):
        try:
            results[i] = h.curl("-o", "/dev/null", "-w", "%{http_code}",
                                tc.url("/sleep?ms=%d" % sleep_ms))
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = repr(e)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    wait_for(lambda: h.origin_requests(origin) >= count, 10, "the requests to reach the app")
    return tc, record, results, threads


def sigterm_drain(h):
    tc, record, results, threads = requests_in_flight(h, 3, 5000)
    tc.process.signal(signal.SIGTERM)
    # The signal is handled on tracecar's loop, a moment after it was sent: /readyz may still
    # answer 200 at first; it must turn 503 while the requests are in flight.
    def not_ready():
        answer = h.curl("-s", "-w", " %{http_code}", tc.url("/readyz", "admin"), check_rc=False)
        return answer if answer and answer.endswith(" 503") else None
    wait_for(not_ready, 5, "/readyz to answer 503 while draining")
    check(all(results.get(i) is None for i in range(3)), "answered before the drain: %r" % results)
    for t in threads:
        t.join(30)
    check(all(results.get(i) == "200" for i in range(3)), "in-flight requests: %r" % results)
    rc = tc.process.wait(30)
    check(rc == 0, "exit status %s: %s" % (rc, tc.process.stderr()))
    spans = h.spans(record)
    check(len(spans) == 3, "the 3 spans flushed at shutdown, got %d" % len(spans))
    check("drained" in tc.process.stderr(), "drain logged")


def sighup_drains(h):
    """SIGHUP stops tracecar as SIGTERM does: the request in flight finishes, the spans go out."""
    tc, record, results, threads = requests_in_flight(h, 1, 2000)
    tc.process.signal(signal.SIGHUP)
    threads[0].join(30)
    check(results.get(0) == "200", "the request in flight: %r" % results)
    rc = tc.process.wait(30)
    check(rc == 0, "exit status %s: %s" % (rc, tc.process.stderr()))
    check(len(h.spans(record)) == 1, "the span flushed at shutdown")
    check("SIGHUP: draining" in tc.process.stderr(), "drain logged: %s" % tc.process.stderr())


def split_response(text):
    """curl -i output: (status, {lower-case name: value}, body) of the last response."""
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return (int(m.group(1)) if m else None), headers, body


def check_local_answer(response, want):
    status, headers, body = split_response(response)
    check(status == want, "want %d, got %r" % (want, response[:60]))
    check(headers.get("content-type", "").startswith("text/plain"),
          "a text/plain local answer, got %r" % headers.get("content-type"))
    check(body.endswith("\n") and body.count("\n") == 1 and body.strip() != "",
          "a one-line reason as the body, got %r" % body)
    return body.strip()


def prometheus_scrapes_tracecar(h):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        raise Skip("the prometheus binary is missing (scripts/install-deps.sh installs it)")
    app = h.start("users-app", ["python3", os.path.join(HERE, "users_app.py"),
                                "--max-seconds", "300"]).printed_port()
    tc = h.tracecar("sidecar", app, ["--route", "/users/{id}"],
                    env={"OTEL_TRACES_EXPORTER": "none"})

    directory = os.path.join(h.dir, "prometheus")
    os.makedirs(directory)
    config = os.path.join(directory, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n"
                "  scrape_interval: 1s\n"
                "  scrape_timeout: 1s\n"
                "  evaluation_interval: 1s\n"
                "scrape_configs:\n"
                "  - job_name: tracecar\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % tc.admin)
    port = closed_port()
    server = h.start("prometheus", [prometheus, "--config.file=" + config,
                                    "--storage.tsdb.path=" + os.path.join(directory, "data"),
                                    "--web.listen-address=127.0.0.1:%d" % port])
    last = {}

    def query(expr):
        if server.popen.poll() is not None:
            raise Failure("prometheus exited (%s): %s" % (server.popen.returncode,
                                                          server.stderr()[-2000:]))
        out = h.curl("--max-time", "2", "-G", "http://127.0.0.1:%d/api/v1/query" % port,
                     "--data-urlencode", "query=" + expr, check_rc=False)
        last[expr] = out
        try:
            answer = json.loads(out)
        except ValueError:
            return None
        return answer["data"]["result"] if answer.get("status") == "success" else None

    def target_up():
        result = query('up{job="tracecar"}')
        return bool(result) and result[0]["value"][1] == "1"

    # Prometheus starts, then scrapes the running tracecar before any request went through.
    wait_for(target_up, 30, "prometheus to scrape tracecar's admin /metrics (up == 1)")
    series = "http_server_request_duration_seconds_count"
    before = query(series) or []
    check(not [s for s in before if s["metric"].get("http_route") == "/users/{id}"],
          "no /users/{id} series before any request: %r" % before)

    for user, status in (("1", 200), ("2", 200), ("3", 500), ("4", 200), ("5", 500)):
        suffix = "" if status == 200 else "?status=%d" % status
        got = h.status_of(tc.url("/users/%s%s" % (user, suffix)))
        check(got == status, "/users/%s: want %d, got %d" % (user, status, got))

    want = {"200": "3", "500": "2"}
    instance = "127.0.0.1:%d" % tc.admin

    def counts():
        found = {}
        for s in query(series) or []:
            m = s["metric"]
            if (m.get("job") == "tracecar" and m.get("instance") == instance
                    and m.get("http_request_method") == "GET"
                    and m.get("http_route") == "/users/{id}"
                    # error.type: the status code of an error answer, none for a 200
                    and m.get("error_type", "200") == m.get("http_response_status_code")):
                found[m.get("http_response_status_code")] = s["value"][1]
        return found if found == want else None

    started = time.monotonic()
    try:
        wait_for(counts, 30, "prometheus to show GET /users/{id} 200 x3 and 500 x2")
    except Failure as e:
        raise Failure("%s; last answer: %s" % (e, last.get(series)))
    print("prometheus showed the series %.1f s after the requests" % (time.monotonic() - started))
    # The scraped histogram is a histogram to Prometheus too: buckets with the same labels.
    inf = query('http_server_request_duration_seconds_bucket{http_route="/users/{id}",'
                'http_response_status_code="500",le="+Inf"}')
    check(inf and inf[0]["value"][1] == "2", "+Inf bucket of the 500s: %r" % inf)


def upstream_slow_is_504(h):
    origin = h.origin()
    collector, record = h.collector()
    config = os.path.join(h.dir, "slow-upstream.yaml")
    with open(config, "w") as f:
        f.write("timeouts:\n  upstream_response: 500ms\n")
    tc = h.tracecar("sidecar", origin, ["--config", config, "--route", "/sleep"],
                    collector_port=collector)
    started = time.monotonic()
    response = h.curl("-i", tc.url("/sleep?ms=5000"))
    elapsed = time.monotonic() - started
    reason = check_local_answer(response, 504)
    check(0.45 <= elapsed < 4.5, "answered after %.2f s, timeout 500 ms, app sleeps 5 s" % elapsed)
    check(h.origin_requests(origin) == 1, "the request reached the app")
    s = h.wait_spans(record, 1)[0]
    check(s["kind"] == "SPAN_KIND_SERVER", "kind %s" % s["kind"])
    check(s["name"] == "GET /sleep", "name %r" % s["name"])
    check(s["status"] == "STATUS_CODE_ERROR", "status %s" % s["status"])
    a = s["attributes"]
    check(a.get("error.type") == "response_timeout", "error.type %r" % a.get("error.type"))
    check(a.get("http.response.status_code") == 504,
          "http.response.status_code %r" % a.get("http.response.status_code"))
    check(s["status_message"] != "", "a status message")
    text = h.metrics(tc)
    check(metric_value(text, "tracecar_requests_rejected_total",
                       {"listener": "inbound", "reason": "504_response_timeout"}) == 1,
          "504_response_timeout counted")
    check(metric_value(text, "http_server_request_duration_seconds_count",
                       {"http_request_method": "GET", "http_route": "/sleep",
                        "http_response_status_code": "504",
                        "error_type": "response_timeout"}) == 1, "histogram error_type")
    print("504 reason: %r" % reason)


def upstream_reset_is_502(h):
    origin = h.origin()
    collector, record = h.collector()
    tc = h.tracecar("sidecar", origin, ROUTES + ["--route", "/reset"], collector_port=collector)
    reason = check_local_answer(h.curl("-i", tc.url("/reset")), 502)
    check(h.origin_requests(origin) == 1,
          "one request reached the app (a fresh connection is not retried), got %d"
          % h.origin_requests(origin))
    s = h.wait_spans(record, 1)[0]
    check(s["kind"] == "SPAN_KIND_SERVER", "kind %s" % s["kind"])
    check(s["name"] == "GET /reset", "name %r" % s["name"])
    check(s["status"] == "STATUS_CODE_ERROR", "status %s" % s["status"])
    a = s["attributes"]
    check(a.get("error.type") == "connection_reset", "error.type %r" % a.get("error.type"))
    check(a.get("http.response.status_code") == 502,
          "http.response.status_code %r" % a.get("http.response.status_code"))
    check(s["status_message"] != "", "a status message")
    text = h.metrics(tc)
    check(metric_value(text, "tracecar_requests_rejected_total",
                       {"listener": "inbound", "reason": "502_reset"}) == 1, "502_reset counted")
    check(metric_value(text, "http_server_request_duration_seconds_count",
                       {"http_request_method": "GET", "http_route": "/reset",
                        "http_response_status_code": "502",
                        "error_type": "connection_reset"}) == 1, "histogram error_type")
    # The sidecar still serves the next request.
    check(h.status_of(tc.url("/status/200")) == 200, "a request after the reset")
    print("502 reason: %r" % reason)


def file_descriptor_limit(h):
    """A soft nofile limit below the hard one is raised at start. At its limit tracecar answers
    503 with a reason, marks the span, counts it, warns once, and serves again once descriptors
    are free."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise Skip("prlimit (util-linux) is not installed")
    origin = h.origin()
    collector, record = h.collector()
    raised = h.tracecar("raised", origin, ROUTES, collector_port=collector,
                        wrap=[prlimit, "--nofile=64:4096", "--"])
    check(metric_value(h.metrics(raised), "process_max_fds", {}) == 4096,
          "soft limit raised to the hard one")
    check("file descriptor limit: 4096 (raised from 64)" in raised.process.stderr(),
          "the limit in the log: %s" % raised.process.stderr())

    if os.environ.get("TRACECAR_SANITIZED") == "1":
        # UndefinedBehaviorSanitizer checks a virtual call's object by writing its vtable's
        # prefix to a pipe (sanitizer_common's IsAccessibleMemoryRange); with no descriptor left
        # the pipe fails and the check reports a valid object as having an invalid vptr.
        raise Skip("a sanitizer build cannot run at its file descriptor limit (the soft limit's "
                   "raise was checked)")
    limit = 64
    # The app by name: each upstream connection is looked up first, and at the limit the lookup
    # fails for want of a descriptor too, which is the same 503 (not a name that did not resolve).
    tc = h.tracecar("capped", "localhost:%d" % origin, ROUTES, collector_port=collector,
                    wrap=[prlimit, "--nofile=%d:%d" % (limit, limit), "--"])
    # The exporter's connection first, while descriptors are left for it.
    check(h.status_of(tc.url("/status/200")) == 200, "a request before the limit")
    h.wait_spans(record, 1, where=lambda s: s["service"] == "capped")
    base = metric_value(h.metrics(tc), "process_open_fds", {})
    check(base is not None and 0 < base < limit, "open descriptors %r" % base)
    # More clients than descriptors left, each with a request: tracecar accepts until none is
    # left, the rest wait in the backlog; a request that then needs an upstream connection
    # cannot have one, and its connection is closed after the answer, which frees one.
    clients = []
    answers = {}
    started = time.monotonic()
    try:
        for _ in range(limit + 16):
            c = socket.create_connection(("127.0.0.1", tc.inbound), timeout=5)
            clients.append(c)
        for c in clients:
            c.sendall(b"GET /status/200 HTTP/1.1\r\nHost: capped\r\n\r\n")
            c.setblocking(False)
            answers[c] = b""
        # Every answer (a closed connection ends one), for at most 20 s.
        waiting = set(clients)
        deadline = time.monotonic() + 20
        while waiting and time.monotonic() < deadline:
            readable, _, _ = select.select(list(waiting), [], [], 0.5)
            for c in readable:
                try:
                    chunk = c.recv(4096)
                except OSError:
                    chunk = b""
                answers[c] += chunk
                if not chunk or answers[c].endswith(b"\n") and b"\r\n\r\n" in answers[c]:
                    waiting.discard(c)
                    c.close()
    finally:
        for c in clients:
            c.close()
    elapsed = time.monotonic() - started
    answers = list(answers.values())
    statuses = sorted(set(status_line(a) for a in answers), key=str)
    refused = [a for a in answers if status_line(a) == 503]
    check(refused, "some 503: %r" % statuses)
    check(all(a.endswith(b"\r\n\r\ntracecar is out of file descriptors\n") for a in refused),
          "the reason: %r" % refused[0])
    check(all(b"\r\nconnection: close\r\n" in a.lower() for a in refused),
          "a 503 for want of descriptors closes the connection: %r" % refused[0])
    check(set(statuses) <= {200, 503}, "nothing but 200 or 503: %r" % statuses)
    # Descriptors free again: served, counted, and the spans (exported now) say why.
    wait_for(lambda: h.status_of(tc.url("/status/200")) == 200, 10, "a request after the flood")
    wait_for(lambda: metric_value(h.metrics(tc), "tracecar_connections_open",
                                  {"listener": "inbound"}) == 0, 10, "the flood's connections closed")
    counted = metric_value(h.metrics(tc), "tracecar_requests_rejected_total",
                           {"listener": "inbound", "reason": "503_file_descriptors"})
    check(counted >= len(refused), "every 503 counted: %r of %d" % (counted, len(refused)))
    spans = h.wait_spans(record, int(counted), timeout=30,
                         where=lambda s: s["attributes"].get("error.type") == "too_many_open_files")
    check(len(spans) == counted, "a span for each: %d of %r" % (len(spans), counted))
    check(all(s["attributes"].get("http.response.status_code") == 503 and
              s["status"] == "STATUS_CODE_ERROR" for s in spans), "503 spans are errors")
    # One warning, then at most one per 10 s, saying how many it stands for.
    warnings = [line for line in tc.process.stderr().splitlines()
                if "out of file descriptors (limit %d)" % limit in line]
    check(1 <= len(warnings) <= 1 + elapsed // 10, "warnings in %.1f s: %r" % (elapsed, warnings))
    check(all("held back since the last one" in w for w in warnings[1:]), "%r" % warnings)
    print("%d of %d requests refused with 503, %d answered 200, in %.1f s" % (
        len(refused), len(answers), len([a for a in answers if status_line(a) == 200]), elapsed))


def exported_spans_settled(h, tc, record, timeout=20):
    """Every span tracecar sampled, once the exporter has delivered them all, decoded once."""
    def settled():
        text = h.metrics(tc)
        sampled = metric_value(text, "tracecar_spans_sampled_total", {"kind": "server"}) or 0
        exported = metric_value(text, "tracecar_exporter_spans_exported_total", {}) or 0
        return (sampled, exported) if exported >= sampled else None
    sampled, _ = wait_for(settled, timeout, "the exporter to deliver every sampled span")
    spans = h.spans(record)
    check(len(spans) == sampled, "%d spans at the collector, %d sampled" % (len(spans), sampled))
    return spans


def sampling_ratio(h):
    """traceidratio 0.25 ignores the incoming sampled flag and decides by the trace id (the
    consistent-probability rule R >= T, T = 0xc0000000000000): 4,000 requests with fresh random
    trace ids and sampled=1. The exported share is within 5 sigma of 25 %, each request's
    decision is exactly the one its trace id dictates, the app receives the decision in the
    traceparent flags, and `ot=th:c` in tracestate exactly when sampled."""
    origin = h.origin()
    collector, record = h.collector()
    tc = h.tracecar("sidecar", origin, ROUTES, collector_port=collector,
                    env={"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25",
                         "OTEL_BSP_MAX_QUEUE_SIZE": "8192"})
    check("sampler: traceidratio ratio=0.25" in tc.process.stderr(),
          "the sampler is logged at startup: %r" % tc.process.stderr()[-2000:])
    n = 4000
    threshold = 0xc0000000000000
    rng = random.Random(20240601)
    conn = http.client.HTTPConnection("127.0.0.1", tc.inbound, timeout=10)
    want_sampled = set()
    got_sampled = set()
    for i in range(n):
        trace_id = "%032x" % rng.getrandbits(128)
        if (int(trace_id, 16) & ((1 << 56) - 1)) >= threshold:
            want_sampled.add(trace_id)
        conn.request("GET", "/echo?nobody=1", headers={
            "traceparent": "00-%s-%016x-01" % (trace_id, rng.getrandbits(64) | 1),
            "tracestate": "congo=t61rcWkgMzE"})
        response = conn.getresponse()
        body = response.read()
        check(response.status == 200, "request %d: status %d" % (i, response.status))
        got_trace, _, flags = traceparent_parts(echoed_header(body, "traceparent"))
        check(got_trace == trace_id, "request %d continues its trace" % i)
        tracestate = echoed_header(body, "tracestate")
        if flags == "01":
            got_sampled.add(trace_id)
            check(tracestate == "ot=th:c,congo=t61rcWkgMzE",
                  "sampled request %d: tracestate %r" % (i, tracestate))
        else:
            check(flags == "00", "request %d: flags %s" % (i, flags))
            check(tracestate == "congo=t61rcWkgMzE",
                  "dropped request %d: tracestate %r" % (i, tracestate))
    conn.close()
    check(got_sampled == want_sampled,
          "the decisions follow the trace ids: %d sampled, %d expected, %d differ"
          % (len(got_sampled), len(want_sampled), len(got_sampled ^ want_sampled)))

    spans = exported_spans_settled(h, tc, record)
    exported = {s["trace_id"] for s in spans}
    check(exported == got_sampled, "exported exactly the sampled traces (%d vs %d)"
          % (len(exported), len(got_sampled)))
    check(all(s["trace_state"] == "ot=th:c,congo=t61rcWkgMzE" for s in spans),
          "every exported span records th:c")
    sigma = math.sqrt(n * 0.25 * 0.75)
    check(abs(len(spans) - n * 0.25) <= 5 * sigma,
          "exported %d of %d: outside 25 %% +- 5 sigma (%.0f)" % (len(spans), n, 5 * sigma))
    text = h.metrics(tc)
    labels = {"sampler": "traceidratio", "rule": "default"}
    check(metric_value(text, "tracecar_sampling_decisions_total",
                       dict(labels, decision="sampled")) == len(spans), "sampled counted")
    check(metric_value(text, "tracecar_sampling_decisions_total",
                       dict(labels, decision="dropped")) == n - len(spans), "dropped counted")
    print("exported %d of %d (%.2f %%)" % (len(spans), n, 100.0 * len(spans) / n))


def untrusted_restart(h):
    """A context from a peer outside trust_incoming_context (127.0.0.1 is not in
    192.0.2.0/24) is not continued: a new trace, no parent, the caller's tracestate dropped,
    the incoming context kept as the span's link; its sampled flag cannot force sampling."""
    origin = h.origin()
    collector, record = h.collector()
    config = os.path.join(h.dir, "untrusted.yaml")
    with open(config, "w") as f:
        f.write("tracing:\n  trust_incoming_context: [192.0.2.0/24]\n"
                "  drop_untrusted_baggage: true\n"
                "sampling:\n  record_always_on_threshold: true\n")
    tc = h.tracecar("sidecar", origin, ROUTES + ["--config", config], collector_port=collector)
    echo = h.curl("-H", "traceparent: 00-%s-%s-01" % (TRACE, PARENT),
                  "-H", "tracestate: congo=t61rcWkgMzE", "-H", "baggage: uid=mallory",
                  tc.url("/echo?nobody=1"))
    s = h.wait_spans(record, 1)[0]
    check(s["trace_id"] != TRACE, "a new trace id, got the caller's")
    check(s["parent_span_id"] == "", "no parent: %r" % s["parent_span_id"])
    check(s["trace_state"] == "ot=th:0", "the span's tracestate %r" % s["trace_state"])
    check(len(s["links"]) == 1, "one link, got %r" % s["links"])
    link = s["links"][0]
    check(link["trace_id"] == TRACE and link["span_id"] == PARENT,
          "the link is the incoming context: %r" % link)
    check(link["trace_state"] == "congo=t61rcWkgMzE", "the link keeps the caller's tracestate")
    trace_id, parent_id, flags = traceparent_parts(echoed_header(echo, "traceparent"))
    check(trace_id == s["trace_id"] and parent_id == s["span_id"] and flags == "03",
          "the app's traceparent continues the new trace: %s-%s-%s" % (trace_id, parent_id, flags))
    check(echoed_header(echo, "tracestate") == "ot=th:0",
          "the app's tracestate %r" % echoed_header(echo, "tracestate"))
    check(echoed_header(echo, "baggage") is None, "untrusted baggage dropped")

    text = h.metrics(tc)
    check(metric_value(text, "tracecar_untrusted_context_restarts_total", {}) == 1,
          "the restart counted")
    check(metric_value(text, "tracecar_baggage_members_dropped_total",
                       {"reason": "untrusted"}) == 1, "the dropped baggage counted")
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    check(r.returncode == 0, "promtool check metrics: %s%s" % (r.stdout.decode(),
                                                               r.stderr.decode()))


def sampling_rules(h):
    """Rules by route template and method, first match wins, counted by rule; `never` roots
    reach the app unsampled and without `th`."""
    origin = h.origin()
    collector, record = h.collector()
    tc = h.tracecar("sidecar", origin, ROUTES + ["--sampling-rules",
                                                 "GET /status/*=never, /echo=always, *=0%"],
                    collector_port=collector)
    for _ in range(3):
        check(h.status_of(tc.url("/status/200")) == 200, "200 relayed")
    echo = h.curl("-X", "POST", tc.url("/echo?nobody=1"))
    check(traceparent_parts(echoed_header(echo, "traceparent"))[2] == "03", "/echo sampled")
    check(echoed_header(echo, "tracestate") is None,
          "an always rule adds no tracestate unless record_always_on_threshold is set")
    check(h.status_of("-X", "POST", tc.url("/status/201")) == 201, "201 relayed")
    spans = exported_spans_settled(h, tc, record)
    check([s["name"] for s in spans] == ["POST /echo"], "only /echo exported: %r"
          % [s["name"] for s in spans])
    text = h.metrics(tc)
    labels = {"sampler": "parentbased_always_on"}
    for rule, decision, want in (("GET /status/*", "dropped", 3), ("/echo", "sampled", 1),
                                 ("default", "dropped", 1), ("default", "sampled", 0)):
        got = metric_value(text, "tracecar_sampling_decisions_total",
                           dict(labels, rule=rule, decision=decision))
        check(got == want, "%s %s: want %d, got %r" % (rule, decision, want, got))


def h2c_origin(h):
    """nginx serving h2c with prior knowledge on a free port: every path answers 200 with the
    path and the traceparent it received."""
    return nginx_h2_origin(h, "nginx-h2")


def nghttp(*args):
    if shutil.which("nghttp") is None:
        raise Skip("nghttp is missing (Debian nghttp2-client; scripts/install-deps.sh installs it)")
    r = subprocess.run(["nghttp", "-t", "10"] + list(args), capture_output=True, timeout=30)
    if r.returncode != 0:
        raise Failure("nghttp %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                     r.stderr.decode("utf-8", "replace")))
    return r.stdout.decode("utf-8", "replace")


def h2c_and_h1_same_port(h):
    """The listeners sniff each connection: HTTP/2 with prior knowledge and HTTP/1.1 share one
    port, each forwarded in the protocol it came in, each with its span."""
    h2_origin = h2c_origin(h)
    h1_origin = h.origin()
    collector, record = h.collector()
    tc = h.tracecar("sidecar", h2_origin, ROUTES, collector_port=collector)

    # Inbound: h2c to the app (which speaks h2c only).
    body = nghttp("http://127.0.0.1:%d/users/7?x=1" % tc.inbound)
    check(body.startswith("h2 origin /users/7?x=1 00-"), "the app answered over HTTP/2: %r" % body)
    server = h.wait_spans(record, 1)[0]
    check(server["kind"] == "SPAN_KIND_SERVER" and server["name"] == "GET /users/{id}",
          "SERVER span %r %r" % (server["kind"], server["name"]))
    check(server["attributes"].get("network.protocol.version") == "2",
          "network.protocol.version %r" % server["attributes"].get("network.protocol.version"))
    trace_id, parent_id, _ = traceparent_parts(body.split()[3])
    check(trace_id == server["trace_id"] and parent_id == server["span_id"],
          "the app's parent is the SERVER span")

    # Outbound, one port: HTTP/1.1 as the app's proxy to an HTTP/1.1 origin, and h2c naming
    # the h2c origin in :authority.
    echo = h.curl("-x", "http://127.0.0.1:%d" % tc.outbound, "http://127.0.0.1:%d/echo" % h1_origin)
    check(echoed_header(echo, "traceparent") is not None, "HTTP/1.1 forwarded with context")
    body = nghttp("-H", ":authority: 127.0.0.1:%d" % h2_origin,
                  "http://127.0.0.1:%d/items/9" % tc.outbound)
    check(body.startswith("h2 origin /items/9 00-"), "h2c forwarded to the h2c origin: %r" % body)
    clients = h.wait_spans(record, 2, where=lambda s: s["kind"] == "SPAN_KIND_CLIENT")
    versions = sorted(s["attributes"].get("network.protocol.version") for s in clients)
    check(versions == ["1.1", "2"], "CLIENT spans by protocol: %r" % versions)

    text = h.metrics(tc)
    for listener in ("inbound", "outbound"):
        check(metric_value(text, "tracecar_sniffed_connections_total",
                           {"listener": listener, "protocol": "h2"}) == 1,
              "one h2 connection sniffed on %s" % listener)
    check(metric_value(text, "tracecar_sniffed_connections_total",
                       {"listener": "outbound", "protocol": "http1"}) == 1,
          "one HTTP/1.1 connection sniffed on outbound")
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    check(r.returncode == 0, "promtool check metrics: %s%s" % (r.stdout.decode(),
                                                               r.stderr.decode()))


def exporter_address_fallback(h):
    # The collector's name resolves to ::1 first, where nothing listens, then to 127.0.0.1: the
    # exporter's request must reach the second address whole (head and body), not just its head.
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise Skip("needs root and unshare (util-linux) to give tracecar its own /etc/hosts")
    origin = h.origin()
    collector, record = h.collector()
    hosts = os.path.join(h.dir, "hosts")
    with open(hosts, "w") as f:
        f.write("::1 collector-fallback.test\n127.0.0.1 collector-fallback.test\n")
    # A mount namespace of its own: the bind mount is private to tracecar.
    wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', hosts]
    endpoint = "http://collector-fallback.test:%d" % collector
    tc = h.tracecar("fallback", origin, ROUTES, wrap=wrap,
                    env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                         "OTEL_EXPORTER_OTLP_TIMEOUT": "3000"})
    for i in range(3):
        check(h.status_of(tc.url("/echo?n=%d" % i)) == 200, "request %d answered" % i)
    spans = h.wait_spans(record, 3)
    check(len(spans) == 3, "three spans through the second address, got %d" % len(spans))
    with open(os.path.join(record, "1.json")) as f:
        first = json.load(f)
    check(first["wire_bytes"] == int(first["headers"]["content-length"]),
          "the first request's body came whole: %d of %s bytes"
          % (first["wire_bytes"], first["headers"]["content-length"]))


def baggage_of(members, total_bytes):
    """A baggage value of that many members and exactly total_bytes bytes."""
    keys = ["k%d" % i for i in range(members)]
    room = total_bytes - sum(len(k) + 1 for k in keys) - (members - 1)  # "k=", the commas
    sizes = [room // members] * members
    sizes[-1] += room - sum(sizes)
    value = ",".join("%s=%s" % (k, "v" * n) for k, n in zip(keys, sizes))
    assert len(value) == total_bytes, (len(value), total_bytes)
    return value


def tracestate_of(total_chars, members=4):
    """A tracestate value of that many entries and exactly total_chars characters."""
    keys = ["t%d" % i for i in range(members)]
    room = total_chars - sum(len(k) + 1 for k in keys) - (members - 1)
    sizes = [room // members] * members
    sizes[-1] += room - sum(sizes)
    value = ",".join("%s=%s" % (k, "x" * n) for k, n in zip(keys, sizes))
    assert len(value) == total_chars, (len(value), total_chars)
    return value


def propagation_limits(h):
    """The baggage and tracestate limits through a running sidecar, at each limit and one past
    it: truncate (the default) forwards whole members and counts what it dropped; reject, set in
    the configuration file, answers 431 and forwards nothing."""
    origin = h.origin()
    traceparent = "traceparent: 00-%s-%s-01" % (TRACE, PARENT)
    truncating = h.tracecar("truncate", origin, ROUTES)
    config = os.path.join(h.dir, "reject.yaml")
    with open(config, "w") as f:
        f.write("limits:\n  baggage: {policy: reject}\n  tracestate: {policy: reject}\n")
    rejecting = h.tracecar("reject", origin, ROUTES + ["--config", config])

    def send(tc, header):
        return h.curl("-i", "-H", traceparent, "-H", header, tc.url("/echo?nobody=1"))

    def forwarded(response, name):
        status, _, body = split_response(response)
        check(status == 200, "want 200, got %r" % response[:60])
        return echoed_header(body, name)

    cases = [  # header, at the limit (True) or one past it
        ("baggage: " + baggage_of(64, 640), True, "64 members"),
        ("baggage: " + baggage_of(65, 650), False, "65 members"),
        ("baggage: " + baggage_of(8, 8192), True, "8,192 bytes"),
        ("baggage: " + baggage_of(8, 8193), False, "8,193 bytes"),
        ("tracestate: " + tracestate_of(512), True, "512 characters of tracestate"),
        ("tracestate: " + tracestate_of(513), False, "513 characters of tracestate"),
    ]
    for header, within, what in cases:
        name, value = header.split(": ", 1)
        got = forwarded(send(truncating, header), name)
        if within:
            check(got == value, "truncate, %s: forwarded whole, got %r" % (what, (got or "")[:80]))
        else:
            sent = value.split(",")
            kept = (got or "").split(",")
            check(got is not None and kept == sent[:len(kept)] and len(kept) == len(sent) - 1,
                  "truncate, %s: the last member dropped, the rest forwarded as sent; got %d "
                  "of %d members" % (what, len(kept), len(sent)))
        before = h.origin_requests(origin)
        response = send(rejecting, header)
        if within:
            check(forwarded(response, name) == value, "reject, %s: forwarded whole" % what)
        else:
            check_local_answer(response, 431)
            check(h.origin_requests(origin) == before, "reject, %s: reached the app" % what)

    text = h.metrics(truncating)
    check(metric_value(text, "tracecar_baggage_members_dropped_total",
                       {"reason": "member_limit"}) == 1, "truncate: the 65th member counted")
    check(metric_value(text, "tracecar_baggage_members_dropped_total",
                       {"reason": "byte_limit"}) == 1, "truncate: the member past 8,192 bytes")
    check(metric_value(text, "tracecar_tracestate_members_dropped_total",
                       {"reason": "length_limit"}) == 1, "truncate: the tracestate entry counted")
    check(metric_value(text, "tracecar_requests_rejected_total",
                       {"listener": "inbound", "reason": "431_baggage"}) == 0, "truncate: no 431")
    text = h.metrics(rejecting)
    check(metric_value(text, "tracecar_requests_rejected_total",
                       {"listener": "inbound", "reason": "431_baggage"}) == 2,
          "reject: two baggage headers answered 431")
    check(metric_value(text, "tracecar_requests_rejected_total",
                       {"listener": "inbound", "reason": "431_tracestate"}) == 1,
          "reject: one tracestate answered 431")
    check(metric_value(text, "tracecar_baggage_members_dropped_total",
                       {"reason": "member_limit"}) == 0 and
          metric_value(text, "tracecar_tracestate_members_dropped_total",
                       {"reason": "length_limit"}) == 0,
          "reject: no member of a refused request counted as dropped to fit")


def timeouts_and_pools_on_metrics(h):
    """Each timer that fires, and the upstream pool's figures, show on /metrics."""
    origin = h.origin()
    config = os.path.join(h.dir, "short-timeouts.yaml")
    with open(config, "w") as f:
        f.write("timeouts:\n  request_header: 300ms\n  downstream_idle: 400ms\n"
                "  upstream_idle: 400ms\n")
    tc = h.tracecar("sidecar", origin, ROUTES + ["--config", config])

    def value(text, name, labels=None):
        got = metric_value(text, name, labels or {})
        check(got is not None, "%s%r is not on /metrics" % (name, labels or {}))
        return got

    # Two requests on one connection (so one worker): one fresh upstream connection, one reuse.
    out = h.curl("-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} ",
                 tc.url("/status/200"), tc.url("/status/200"))
    check(out.split() == ["200", "200"], "two answers: %r" % out)
    text = h.metrics(tc)
    check(value(text, "tracecar_upstream_connections_opened_total") == 1, "one upstream connect")
    check(value(text, "tracecar_upstream_connection_reuses_total") == 1, "one reuse")
    check(value(text, "tracecar_upstream_connections_open") == 1, "the pooled connection is open")
    check(value(text, "tracecar_upstream_connections_idle") == 1, "and idle in the pool")
    for timeout in ("request_header", "downstream_idle", "upstream_connect", "upstream_response",
                    "upstream_idle", "drain"):
        check(value(text, "tracecar_timeouts_total", {"timeout": timeout}) == 0,
              "%s at 0 before it fires" % timeout)

    # A request head that never ends: 408 after request_header.
    response = h.raw_request(tc.inbound, b"GET /status/200 HTTP/1.1\r\nHost: a\r\n")
    check_local_answer(response.decode("latin-1"), 408)
    # A kept-alive client that sends nothing more: closed after downstream_idle.
    with socket.create_connection(("127.0.0.1", tc.inbound), timeout=10) as c:
        c.sendall(b"GET /status/200 HTTP/1.1\r\nHost: a\r\n\r\n")
        started = time.monotonic()
        received = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            received += chunk
        idle = time.monotonic() - started
    check(status_line(received) == 200, "the kept-alive request answered: %r" % received[:40])
    check(0.3 <= idle < 5,
          "the idle connection closed after %.2f s (downstream_idle 400 ms)" % idle)

    def fired():
        text = h.metrics(tc)
        done = (value(text, "tracecar_timeouts_total", {"timeout": "request_header"}) == 1
                and value(text, "tracecar_timeouts_total", {"timeout": "downstream_idle"}) >= 1
                and value(text, "tracecar_timeouts_total", {"timeout": "upstream_idle"}) >= 1
                and value(text, "tracecar_upstream_connections_idle") == 0)
        return text if done else None
    text = wait_for(fired, 10, "the request_header, downstream_idle and upstream_idle timeouts "
                    "on /metrics, and the idle pool emptied")
    check(value(text, "tracecar_requests_rejected_total",
                {"listener": "inbound", "reason": "408_header_timeout"}) == 1, "the 408 counted")
    check(value(text, "tracecar_upstream_connections_open") == 0, "no upstream connection left")
    check(value(text, "tracecar_buffered_bytes") == 0, "nothing held between requests")
    check(value(text, "tracecar_buffered_bytes_peak") > 0, "the peak of what was held")
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    check(r.returncode == 0, "promtool check metrics: %s%s" % (r.stdout.decode(),
                                                               r.stderr.decode()))


def sdk_disabled(h):
    """OTEL_SDK_DISABLED=true: no span is made or exported. The caller's context reaches the app
    as it came (its span stays the app's parent), a request without one gets none, and the
    request metrics are still recorded."""
    origin = h.origin()
    collector, record = h.collector()
    tc = h.tracecar("sidecar", origin, ROUTES, env={"OTEL_SDK_DISABLED": "TRUE"},
                    collector_port=collector)
    incoming = "00-%s-%s-01" % (TRACE, PARENT)
    echo = h.curl("-H", "traceparent: " + incoming, "-H", "tracestate: congo=t61rcWkgMzE",
                  "-H", "baggage: uid=alice;p=1", tc.url("/echo"))
    for name, want in (("traceparent", incoming), ("tracestate", "congo=t61rcWkgMzE"),
                       ("baggage", "uid=alice;p=1")):
        check(echoed_header(echo, name) == want,
              "the app's %s: want %r, got %r" % (name, want, echoed_header(echo, name)))
    echo = h.curl(tc.url("/echo"))
    check(echoed_header(echo, "traceparent") is None,
          "no context came, none injected: %r" % echoed_header(echo, "traceparent"))

    text = h.metrics(tc)
    check(metric_value(text, "http_server_request_duration_seconds_count",
                       {"http_route": "/echo", "http_response_status_code": "200"}) == 2,
          "both requests in the server histogram")
    check(not metric_value(text, "tracecar_spans_started_total", {"kind": "server"}),
          "no span started")
    check(not metric_value(text, "tracecar_sampling_decisions_total", {}), "no sampling decision")
    # Stopping flushes whatever was queued: nothing was.
    tc.process.signal(signal.SIGTERM)
    rc = tc.process.wait(30)
    check(rc == 0, "exit status %s: %s" % (rc, tc.process.stderr()))
    check(h.spans(record) == [], "nothing exported: %r" % h.spans(record))


def run_config_errors(h):
    r = subprocess.run([h.tracecar_binary, "run", "--inbound", "0.0.0.0", "--route", "/users/{id",
                        "--admin", "127.0.0.1:0"], capture_output=True, timeout=30,
                       env=dict(os.environ, OTEL_PROPAGATORS="none,b3"))
    err = r.stderr.decode("utf-8", "replace")
    check(r.returncode == 2, "exit status %d: %s" % (r.returncode, err))
    for needle in ("--inbound:", "--route:", "OTEL_PROPAGATORS", "3 configuration errors"):
        check(needle in err, "%r not in %r" % (needle, err))


CASES = {
    "run_config_errors": run_config_errors,
    "inbound_span": inbound_span,
    "outbound_span": outbound_span,
    "two_hop_chain": two_hop_chain,
    "metrics_promtool": metrics_promtool,
    "header_limits": header_limits,
    "malformed_requests": malformed_requests,
    "upstream_refused": upstream_refused,
    "file_descriptor_limit": file_descriptor_limit,
    "sigterm_drain": sigterm_drain,
    "sighup_drains": sighup_drains,
    "prometheus_scrapes_tracecar": prometheus_scrapes_tracecar,
    "upstream_slow_is_504": upstream_slow_is_504,
    "upstream_reset_is_502": upstream_reset_is_502,
    "sampling_ratio": sampling_ratio,
    "untrusted_restart": untrusted_restart,
    "sampling_rules": sampling_rules,
    "h2c_and_h1_same_port": h2c_and_h1_same_port,
    "exporter_address_fallback": exporter_address_fallback,
    "propagation_limits": propagation_limits,
    "timeouts_and_pools_on_metrics": timeouts_and_pools_on_metrics,
    "sdk_disabled": sdk_disabled,
}


def main():
    return run_cases(CASES, __doc__)


if __name__ == "__main__":
    sys.exit(main())
