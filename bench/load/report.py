#!/usr/bin/env python3
"""Prints the load benchmark's figures from the runs recorded by bench/load/run.sh.

Input: a tab-separated file, one line per wrk run (header first). Output: every run, the mean
of each (connections, target) over the rounds, and tracecar against nginx with the targets.
"""

import argparse
import csv
import statistics

RSS_TARGET_BYTES = 10_000_000  # "10 MB idle"


def number(value):
    return float(value) if value not in ("", None) else None


def per_core(run):
    cores = run["cpu_s"] / run["wall_s"] if run["wall_s"] else 0
    return run["rps"] / cores if cores else 0.0


def load(path):
    runs = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            run = {k: (v if k == "target" else number(v)) for k, v in row.items()}
            run["conns"] = int(run["conns"])
            run["round"] = int(run["round"])
            run["per_core"] = per_core(run)
            runs.append(run)
    return runs


def ms(us):
    return "%.3f" % (us / 1000.0)


def mib(kb):
    return "%.1f" % (kb / 1024.0)


def spans_text(run):
    if run["spans_sent"] is None:
        return "-"
    return "%d/%d" % (run["spans_delivered"], run["spans_sent"])


def errors_text(run):
    parts = []
    if run["non2xx"]:
        parts.append("%d non-2xx" % run["non2xx"])
    if run["socket_errors"]:
        parts.append("%d socket" % run["socket_errors"])
    if run.get("rejected"):
        parts.append("%d rejected" % run["rejected"])
    if run.get("spans_dropped"):
        parts.append("%d spans dropped" % run["spans_dropped"])
    return ", ".join(parts) or "-"


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--idle-rss-tracecar", type=int, required=True, help="kB")
    parser.add_argument("--idle-rss-nginx", type=int, required=True, help="kB, all processes")
    parser.add_argument("--load-average", default="")
    parser.add_argument("--duration", default="")
    parser.add_argument("--rounds", default="")
    args = parser.parse_args()
    runs = load(args.results)

    print("Every run (CPU: the proxy's processes, all threads; for direct, the origin's; "
          "RSS: now / peak, all processes)")
    rows = []
    for r in runs:
        rows.append([r["target"], r["conns"], r["round"], "%.0f" % r["rps"], ms(r["p50_us"]),
                     ms(r["p99_us"]), "%.2f" % r["cpu_s"], "%.0f" % r["per_core"],
                     "%s/%s" % (mib(r["rss_kb"]), mib(r["hwm_kb"])), "%d" % r["wrk_requests"],
                     spans_text(r), errors_text(r)])
    print(table(["target", "conns", "round", "req/s", "p50 ms", "p99 ms", "CPU s", "req/s/core",
                 "RSS MiB", "requests", "spans got/sent", "errors"], rows))

    conns_levels = sorted({r["conns"] for r in runs}, reverse=True)
    targets = []
    for r in runs:
        if r["target"] not in targets:
            targets.append(r["target"])

    def runs_of(target, conns):
        return [r for r in runs if r["target"] == target and r["conns"] == conns]

    def mean(target, conns, key):
        values = [r[key] for r in runs_of(target, conns)]
        return statistics.fmean(values) if values else 0.0

    print()
    print("Mean over %s rounds of %s s" % (args.rounds, args.duration))
    rows = []
    for conns in conns_levels:
        for target in targets:
            rs = runs_of(target, conns)
            if not rs:
                continue
            sent = sum(r["spans_sent"] or 0 for r in rs)
            got = sum(r["spans_delivered"] or 0 for r in rs)
            rows.append([target, conns, "%.0f" % mean(target, conns, "rps"),
                         ms(mean(target, conns, "p50_us")), ms(mean(target, conns, "p99_us")),
                         "%.2f" % statistics.fmean(r["cpu_s"] / r["wall_s"] for r in rs),
                         "%.0f" % mean(target, conns, "per_core"),
                         mib(max(r["hwm_kb"] for r in rs)),
                         "%d/%d" % (got, sent) if target == "tracecar" else "-"])
    print(table(["target", "conns", "req/s", "p50 ms", "p99 ms", "CPU cores", "req/s/core",
                 "peak RSS MiB", "spans got/sent"], rows))

    print()
    print("tracecar / nginx (targets with 1 worker: req/s per core >= 1.0x, p99 <= 1.0x, every "
          "span delivered, idle RSS <= 10 MB)")
    for conns in conns_levels:
        if not runs_of("tracecar", conns) or not runs_of("nginx", conns):
            continue
        core_ratio = mean("tracecar", conns, "per_core") / (mean("nginx", conns, "per_core") or 1)
        p99_ratio = mean("tracecar", conns, "p99_us") / (mean("nginx", conns, "p99_us") or 1)
        rps_ratio = mean("tracecar", conns, "rps") / (mean("nginx", conns, "rps") or 1)
        rs = runs_of("tracecar", conns)
        sent = sum(r["spans_sent"] or 0 for r in rs)
        got = sum(r["spans_delivered"] or 0 for r in rs)
        print("  %2d connections: req/s per core %.2fx (%s)  p99 %.2fx (%s)  req/s %.2fx  "
              "spans %d/%d delivered (%s)" % (
                  conns, core_ratio, "met" if core_ratio >= 1.0 else "NOT met",
                  p99_ratio, "met" if p99_ratio <= 1.0 else "NOT met", rps_ratio,
                  got, sent, "met" if sent and got >= sent else "NOT met"))
    idle = args.idle_rss_tracecar * 1024
    print("  idle RSS: tracecar %.1f MB (%.1f MiB), target 10 MB: %s; nginx %.1f MB "
          "(master + worker)" % (idle / 1e6, args.idle_rss_tracecar / 1024.0,
                                 "met" if idle <= RSS_TARGET_BYTES else "NOT met",
                                 args.idle_rss_nginx * 1024 / 1e6))
    if args.load_average:
        print("  load average at the end: %s" % args.load_average)


if __name__ == "__main__":
    main()
