#!/usr/bin/env python3
"""End-to-end tests of `tracecar run` with real processes on loopback: tracecar in front of
tests/support/origin_server.py, exporting to tests/support/fake_collector.py, driven by curl and
raw sockets. Spans are checked by decoding the recorded OTLP/protobuf payloads with protoc
against the official schema.

Usage: tracecar_e2e.py --tracecar PATH --protos DIR CASE   (CASE: see CASES below)
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from e2e_support import (Failure, Harness, check, closed_port, ensure_protos, metric_value,
                         status_line, wait_for)

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
    trace_id, parent_id, _ = traceparent_parts(echoed_header(echo, "traceparent"))
    check(trace_id == s["trace_id"] and parent_id == s["span_id"],
          "the upstream's parent is the CLIENT span")

    # CLIENT: a 4xx is an error.
    check(h.status_of("-x", "http://127.0.0.1:%d" % tc.outbound,
                      "http://127.0.0.1:%d/status/503" % origin) == 503, "503 relayed")
    s = h.wait_spans(record, 1, where=lambda s: s["attributes"].get(
        "http.response.status_code") == 503)[0]
    check(s["status"] == "STATUS_CODE_ERROR" and s["attributes"].get("error.type") == "503",
          "CLIENT 5xx is an Error with error.type 503: %s %r" % (s["status"], s["attributes"]))


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


def sigterm_drain(h):
    origin = h.origin()
    collector, record = h.collector()
    # A schedule delay far longer than the test: only the shutdown flush can export the spans.
    tc = h.tracecar("sidecar", origin, ROUTES, collector_port=collector,
                    env={"OTEL_BSP_SCHEDULE_DELAY": "600000"})
    results = {}

    def request(i):
        try:
            results[i] = h.curl("-o", "/dev/null", "-w", "%{http_code}",
                                tc.url("/sleep?ms=1500"))
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = repr(e)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: h.origin_requests(origin) >= 3, 10, "the requests to reach the app")
    tc.process.signal(signal.SIGTERM)
    readyz = wait_for(lambda: h.curl("-s", "-w", " %{http_code}", tc.url("/readyz", "admin"),
                                     check_rc=False) or None, 5, "/readyz")
    check(readyz.endswith(" 503"), "/readyz while draining: %r" % readyz)
    for t in threads:
        t.join(30)
    check(all(results.get(i) == "200" for i in range(3)), "in-flight requests: %r" % results)
    rc = tc.process.wait(30)
    check(rc == 0, "exit status %s: %s" % (rc, tc.process.stderr()))
    spans = h.spans(record)
    check(len(spans) == 3, "the 3 spans flushed at shutdown, got %d" % len(spans))
    check("drained" in tc.process.stderr(), "drain logged")


def run_config_errors(h):
    r = subprocess.run([h.tracecar_binary, "run", "--inbound", "0.0.0.0", "--route", "/users/{id",
                        "--admin", "127.0.0.1:0"], capture_output=True, timeout=30,
                       env=dict(os.environ, OTEL_PROPAGATORS="xray"))
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
    "sigterm_drain": sigterm_drain,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracecar", required=True)
    parser.add_argument("--protos", required=True)
    parser.add_argument("case", choices=sorted(CASES))
    args = parser.parse_args()
    harness = Harness(args.tracecar, ensure_protos(args.protos))
    started = time.monotonic()
    try:
        CASES[args.case](harness)
    except Failure as e:
        harness.close()
        harness.dump_logs()
        print("FAIL %s: %s" % (args.case, e))
        return 1
    finally:
        harness.close()
    shutil.rmtree(harness.dir, ignore_errors=True)  # kept for a failure's post-mortem
    print("PASS %s (%.1f s)" % (args.case, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
