#!/usr/bin/env python3
"""Prints the traces in console-exporter files (one OTLP/JSON ExportTraceServiceRequest per
line) as indented trees: service, span kind and name, duration, status.

Usage: trace_tree.py [--expect N] [--wait SECONDS] FILE...
  --expect N   wait (up to --wait seconds, default 10) until the files hold N spans
"""

import argparse
import json
import sys
import time

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def attribute_value(value):
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    return value


def load(paths):
    spans = []
    for path in paths:
        try:
            with open(path) as f:
                lines = f.readlines()
        except OSError:
            continue
        for line in lines:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError:
                continue  # a line still being written
            for rs in request.get("resourceSpans", []):
                resource = {a["key"]: attribute_value(a["value"])
                            for a in rs.get("resource", {}).get("attributes", [])}
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        s["service"] = resource.get("service.name", "?")
                        s["attrs"] = {a["key"]: attribute_value(a["value"])
                                      for a in s.get("attributes", [])}
                        spans.append(s)
    return spans


def describe(span):
    start, end = int(span.get("startTimeUnixNano", 0)), int(span.get("endTimeUnixNano", 0))
    status = span.get("status", {})
    code = status.get("code", 0)
    http_status = span["attrs"].get("http.response.status_code")
    if code == 2:
        text = "ERROR"
        reason = span["attrs"].get("error.type") or status.get("message")
        if reason:
            text += " (%s)" % reason
    else:
        text = "ok" if code == 1 else "unset"
    if http_status is not None:
        text = "%s  %s" % (http_status, text)
    return "%-9s %-7s %-22s %9.2f ms  %s" % (span["service"], KINDS.get(span.get("kind", 0), "?"),
                                            span.get("name", ""), (end - start) / 1e6, text)


def print_trees(spans, out=sys.stdout):
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s["traceId"], []).append(s)
    traces = sorted(by_trace.items(),
                    key=lambda item: min(int(s.get("startTimeUnixNano", 0)) for s in item[1]))
    for trace_id, members in traces:
        ids = {s["spanId"] for s in members}
        children = {}
        for s in members:
            parent = s.get("parentSpanId", "")
            children.setdefault(parent if parent in ids else None, []).append(s)
        errors = sum(1 for s in members if s.get("status", {}).get("code") == 2)
        print("trace %s  (%d span%s%s)" % (trace_id, len(members), "" if len(members) == 1 else "s",
                                           ", %d error%s" % (errors, "" if errors == 1 else "s")
                                           if errors else ""), file=out)

        def walk(span, depth):
            print("  " + "    " * depth + describe(span), file=out)
            for child in sorted(children.get(span["spanId"], []),
                                key=lambda c: int(c.get("startTimeUnixNano", 0))):
                walk(child, depth + 1)

        for root in sorted(children.get(None, []), key=lambda r: int(r.get("startTimeUnixNano", 0))):
            walk(root, 0)
        print(file=out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--wait", type=float, default=10)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    deadline = time.monotonic() + args.wait
    spans = load(args.files)
    while len(spans) < args.expect and time.monotonic() < deadline:
        time.sleep(0.1)
        spans = load(args.files)
    if not spans:
        print("no spans found in %s" % ", ".join(args.files))
        return 1
    print_trees(spans)
    if len(spans) < args.expect:
        print("(expected %d spans, found %d)" % (args.expect, len(spans)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
