#!/usr/bin/env python3
"""`tracecar run` with OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS: the list replaces the default
known methods for the spans and the request histograms alike. tracecar runs in front of
tests/support/origin_server.py with the console exporter writing to a file, driven by curl.

Usage: known_methods_run.py --tracecar PATH CASE   (CASE: see CASES below)
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "e2e"))

from e2e_support import check, metric_value, run_cases, wait_for  # noqa: E402

SERVER_COUNT = "http_server_request_duration_seconds_count"


def console_spans(path):
    """The spans of the console exporter's file: one OTLP/JSON export request a line."""
    try:
        with open(path) as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
    except OSError:
        return []
    spans = []
    for line in lines:
        for rs in json.loads(line).get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    attributes = {a["key"]: next(iter(a.get("value", {}).values()), None)
                                  for a in s.get("attributes", [])}
                    spans.append({"name": s.get("name"), "attributes": attributes})
    return spans


def known_methods_override(h):
    origin = h.origin()
    spans_path = os.path.join(h.dir, "spans.jsonl")
    tc = h.tracecar("sidecar", origin, ["--route", "/echo"],
                    env={"OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS": "GET,PURGE",
                         "OTEL_TRACES_EXPORTER": "console",
                         "TRACECAR_CONSOLE_EXPORT_PATH": spans_path})
    for method in ("PURGE", "POST"):
        check(h.status_of("-X", method, tc.url("/echo")) == 200, "%s /echo relayed" % method)

    def two_spans():
        found = console_spans(spans_path)
        return found if len(found) >= 2 else None
    spans = wait_for(two_spans, 15, "two spans in the console exporter's file")
    by_method = {}
    for s in spans:
        a = s["attributes"]
        by_method[a.get("http.request.method_original") or a.get("http.request.method")] = s
    check(set(by_method) == {"PURGE", "POST"}, "spans of PURGE and POST: %r" % spans)

    # A method of the list is reported as itself.
    purge = by_method["PURGE"]
    check(purge["attributes"].get("http.request.method") == "PURGE",
          "PURGE's http.request.method: %r" % purge["attributes"])
    check("http.request.method_original" not in purge["attributes"],
          "no method_original for a known method: %r" % purge["attributes"])
    check(purge["name"] == "PURGE /echo", "PURGE's span name %r" % purge["name"])
    # A full override: POST, a default, is not known any more.
    post = by_method["POST"]
    check(post["attributes"].get("http.request.method") == "_OTHER",
          "POST's http.request.method: %r" % post["attributes"])
    check(post["attributes"].get("http.request.method_original") == "POST",
          "POST's method_original: %r" % post["attributes"])
    check(post["name"] == "HTTP /echo", "POST's span name %r" % post["name"])

    # The histograms' method label follows the same list.
    text = h.metrics(tc)
    check(metric_value(text, SERVER_COUNT, {"http_request_method": "PURGE",
                                            "http_route": "/echo"}) == 1,
          "one PURGE in the server histogram:\n%s" % text)
    check(metric_value(text, SERVER_COUNT, {"http_request_method": "_OTHER",
                                            "http_route": "/echo"}) == 1,
          "POST counted as _OTHER:\n%s" % text)
    check(metric_value(text, SERVER_COUNT, {"http_request_method": "POST"}) is None,
          "no POST series:\n%s" % text)


CASES = {
    "known_methods_override": known_methods_override,
}


if __name__ == "__main__":
    sys.exit(run_cases(CASES, __doc__))
