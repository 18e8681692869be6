#!/usr/bin/env python3
"""Prints the load benchmark's figures from the runs recorded by bench/load/run.sh.

Input: a tab-separated file, one line per load run (header first). Output: every run, the mean
of each (load level, target) over the rounds, and tracecar against the peer proxy with the
targets. The p99 ratio is the median of the rounds' ratios: the two proxies of one round ran
seconds apart, and a virtual machine's stall of some milliseconds in one run moves that run's
p99 tenfold, and with it a mean over the rounds. The h1 scenario's level is wrk's connection
count (column `conns`); the h2 scenario's is h2load's clients x streams per client (column
`load`, e.g. `10x10`).
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


def level_order(level):
    """Busiest first: 50 before 1 connections, 10x10 before 1x1."""
    product = 1
    for part in str(level).split("x"):
        product *= int(part)
    return (product, str(level))


def level_text(level):
    if isinstance(level, int):
        return "%2d connections" % level
    clients, streams = level.split("x")
    return "%s connection%s x %s stream%s" % (clients, "" if clients == "1" else "s",
                                              streams, "" if streams == "1" else "s")


def load(path):
    runs = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            run = {k: (v if k in ("target", "load") else number(v)) for k, v in row.items()}
            # h1 rows carry wrk's connection count and its counters; h2 rows h2load's.
            run["level"] = int(run["conns"]) if "conns" in run else run["load"]
            run.setdefault("wrk_requests", run.get("requests"))
            run.setdefault("socket_errors", None)
            run.setdefault("failed", None)
            run.setdefault("wait_s", None)
            run["round"] = int(run["round"])
            run["per_core"] = per_core(run)
            runs.append(run)
    return runs


def cpu_split(runs):
    """CPU time per request, in microseconds, as user + system (from clock ticks: a rough split
    whose sum is the per-core figure's inverse)."""
    requests = sum(r["rps"] * r["wall_s"] for r in runs)
    if not requests or any(r.get("sys_s") is None for r in runs):
        return "-"
    cpu = sum(r["cpu_s"] for r in runs)
    sys_s = sum(r["sys_s"] for r in runs)
    return "%.2f+%.2f" % ((cpu - sys_s) * 1e6 / requests, sys_s * 1e6 / requests)


def wait_per_request(runs):
    """Time the serving threads waited for a CPU while runnable, in microseconds per request."""
    requests = sum(r["rps"] * r["wall_s"] for r in runs)
    if not requests or any(r.get("wait_s") is None for r in runs):
        return None
    return sum(r["wait_s"] for r in runs) * 1e6 / requests


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
    if run["failed"]:
        parts.append("%d failed" % run["failed"])
    if run.get("rejected"):
        parts.append("%d rejected" % run["rejected"])
    if run.get("spans_dropped"):
        parts.append("%d spans dropped" % run["spans_dropped"])
    return ", ".join(parts) or "-"


def wait_text(ours, theirs, peer):
    a, b = wait_per_request(ours), wait_per_request(theirs)
    if a is None or b is None:
        return ""
    return "; CPU wait per request: tracecar %.2f us, %s %.2f us" % (a, peer, b)


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--scenario", choices=("h1", "h2"), default="h1")
    parser.add_argument("--peer", default="nginx", help="the peer proxy's target name")
    parser.add_argument("--idle-rss-tracecar", type=int, required=True, help="kB")
    parser.add_argument("--idle-rss-peer", "--idle-rss-nginx", dest="idle_rss_peer", type=int,
                        required=True, help="kB, all processes")
    parser.add_argument("--load-average", default="")
    parser.add_argument("--duration", default="")
    parser.add_argument("--rounds", default="")
    args = parser.parse_args()
    runs = load(args.results)
    peer = args.peer
    level_header = "conns" if args.scenario == "h1" else "load"

    print("Every run (CPU: the proxy's processes, all threads; for direct, the origin's; "
          "RSS: now / peak, all processes)")
    rows = []
    for r in runs:
        rows.append([r["target"], r["level"], r["round"], "%.0f" % r["rps"], ms(r["p50_us"]),
                     ms(r["p99_us"]), "%.2f" % r["cpu_s"], "%.0f" % r["per_core"],
                     "%s/%s" % (mib(r["rss_kb"]), mib(r["hwm_kb"])), "%d" % r["wrk_requests"],
                     spans_text(r), errors_text(r)])
    print(table(["target", level_header, "round", "req/s", "p50 ms", "p99 ms", "CPU s",
                 "req/s/core", "RSS MiB", "requests", "spans got/sent", "errors"], rows))

    levels = sorted({r["level"] for r in runs}, key=level_order, reverse=True)
    targets = []
    for r in runs:
        if r["target"] not in targets:
            targets.append(r["target"])

    def runs_of(target, level):
        return [r for r in runs if r["target"] == target and r["level"] == level]

    def mean(target, level, key):
        values = [r[key] for r in runs_of(target, level)]
        return statistics.fmean(values) if values else 0.0

    print()
    print("Mean over %s rounds of %s s" % (args.rounds, args.duration))
    rows = []
    for level in levels:
        for target in targets:
            rs = runs_of(target, level)
            if not rs:
                continue
            sent = sum(r["spans_sent"] or 0 for r in rs)
            got = sum(r["spans_delivered"] or 0 for r in rs)
            rows.append([target, level, "%.0f" % mean(target, level, "rps"),
                         ms(mean(target, level, "p50_us")), ms(mean(target, level, "p99_us")),
                         "%.2f" % statistics.fmean(r["cpu_s"] / r["wall_s"] for r in rs),
                         "%.0f" % mean(target, level, "per_core"), cpu_split(rs),
                         "-" if wait_per_request(rs) is None else "%.2f" % wait_per_request(rs),
                         mib(max(r["hwm_kb"] for r in rs)),
                         "%d/%d" % (got, sent) if target == "tracecar" else "-"])
    print(table(["target", level_header, "req/s", "p50 ms", "p99 ms", "CPU cores", "req/s/core",
                 "CPU us/req user+sys", "CPU wait us/req", "peak RSS MiB", "spans got/sent"],
                rows))
    print("(CPU wait: time the threads that serve requests were runnable but waiting for the CPU;"
          " tracecar's workers, every thread of the others)")

    print()
    if args.scenario == "h1":
        print("tracecar / %s (targets with 1 worker: req/s per core >= 1.0x, p99 <= 1.0x, every "
              "span delivered, idle RSS <= 10 MB)" % peer)
    else:
        print("tracecar / %s (target, each with 1 worker thread: req/s per core >= 1.0x with "
              "every span delivered; p99 and idle RSS for information)" % peer)
    for level in levels:
        if not runs_of("tracecar", level) or not runs_of(peer, level):
            continue
        core_ratio = mean("tracecar", level, "per_core") / (mean(peer, level, "per_core") or 1)
        ours = {r["round"]: r["p99_us"] for r in runs_of("tracecar", level)}
        theirs = {r["round"]: r["p99_us"] for r in runs_of(peer, level)}
        per_round = [ours[n] / theirs[n] for n in sorted(ours) if n in theirs and theirs[n]]
        p99_ratio = statistics.median(per_round) if per_round else 0.0
        p99_mean_ratio = mean("tracecar", level, "p99_us") / (mean(peer, level, "p99_us") or 1)
        rps_ratio = mean("tracecar", level, "rps") / (mean(peer, level, "rps") or 1)
        rs = runs_of("tracecar", level)
        sent = sum(r["spans_sent"] or 0 for r in rs)
        got = sum(r["spans_delivered"] or 0 for r in rs)
        if args.scenario == "h1":
            print("  %s: req/s per core %.2fx (%s)  p99 %.2fx (%s)  req/s %.2fx  "
                  "spans %d/%d delivered (%s)" % (
                      level_text(level), core_ratio, "met" if core_ratio >= 1.0 else "NOT met",
                      p99_ratio, "met" if p99_ratio <= 1.0 else "NOT met", rps_ratio,
                      got, sent, "met" if sent and got >= sent else "NOT met"))
        else:
            # Every request tracecar served has its span sampled, and every one reached the sink.
            served = sum(r["proxy_requests"] or 0 for r in rs)
            every_span = sent and got >= sent and sent == served
            print("  %s: req/s per core %.2fx (%s)  req/s %.2fx  p99 %.2fx  "
                  "spans %d/%d delivered for %d requests (%s)" % (
                      level_text(level), core_ratio, "met" if core_ratio >= 1.0 else "NOT met",
                      rps_ratio, p99_ratio, got, sent, served,
                      "met" if every_span else "NOT met"))
        print("      p99 per round %s (ratio of the means %.2fx)%s" % (
            " ".join("%.2f" % x for x in per_round), p99_mean_ratio,
            wait_text(rs, runs_of(peer, level), peer)))
    idle = args.idle_rss_tracecar * 1024
    print("  idle RSS: tracecar %.1f MB (%.1f MiB), target 10 MB: %s; %s %.1f MB%s" % (
        idle / 1e6, args.idle_rss_tracecar / 1024.0,
        "met" if idle <= RSS_TARGET_BYTES else "NOT met", peer,
        args.idle_rss_peer * 1024 / 1e6, " (master + worker)" if peer == "nginx" else ""))
    if args.load_average:
        print("  load average at the end: %s" % args.load_average)


if __name__ == "__main__":
    main()
