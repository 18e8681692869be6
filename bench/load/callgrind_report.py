#!/usr/bin/env python3
"""Prints instructions per request from callgrind profiles taken by bench/load/callgrind.sh.

Input: the callgrind files of one proxy (one per thread, --separate-threads=yes), counted over a
known number of requests. Output: instructions per request for each thread, then for each busy
thread the share of each library and the functions that spend the most (self cost).
Functions without a symbol (static functions of a stripped library) show as library + address.
"""

import argparse
import collections
import re
import subprocess

LINE = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)(?: \[(.*)\])?$")


def self_costs(path):
    """-> (total, [(cost, function, object)], entry frames) from callgrind_annotate's self cost
    listing."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", path],
                          check=True, capture_output=True, text=True).stdout
    total = 0
    rows = []
    listing = False
    for line in text.splitlines():
        if line.strip().endswith("PROGRAM TOTALS"):
            total = int(line.split()[0].replace(",", ""))
        elif "file:function" in line:
            listing = True
        elif listing:
            m = LINE.match(line)
            if m:
                rows.append((int(m.group(1).replace(",", "")), m.group(2), m.group(3) or "?"))
    # Frames that were open when the counters were zeroed show the whole count as their own:
    # they are the thread's entry points, not where it spends.
    entry = [r[1] for r in rows if r[0] >= 0.99 * total]
    rows = [r for r in rows if r[0] < 0.99 * total]
    return total, rows, entry


def short_function(function, obj):
    name = function.split(":", 1)[1] if ":" in function else function
    name = name.replace("(anonymous namespace)::", "")
    if name.startswith("void "):
        name = name[5:]
    if name.startswith("0x"):
        return "%s %s" % (obj.rsplit("/", 1)[-1], name.lstrip("0x").lstrip("0") or "0")
    # Drop argument lists and template arguments: the name is enough to find the code.
    out = []
    depth = 0
    for ch in name:
        if ch in "(<":
            if depth == 0:
                out.append("()" if ch == "(" else "<>")
            depth += 1
        elif ch in ")>":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    name = "".join(out).replace("()()", "()")
    for prefix in ("tracecar::", "std::"):
        name = name.replace(prefix, "")
    return name.replace(" const", "").strip()


def library(function, obj):
    base = obj.rsplit("/", 1)[-1]
    if base.startswith("libc.so"):
        if "malloc" in function or "arena.c" in function:
            return "libc malloc/free"
        if "/string/" in function or "mem" in function.split(":")[-1]:
            return "libc memcpy/memcmp/..."
        return "libc other"
    if base.startswith("libstdc++"):
        return "libstdc++ (operator new/delete, ...)"
    return re.sub(r"\.so[.\d]*$", "", base)


def thread_role(entry):
    text = " ".join(entry)
    if "Worker::run" in text:
        return "worker"
    if "BatchProcessor" in text:
        return "exporter"
    if "main" in text:
        return "main"
    return "other"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("requests", type=int)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    n = args.requests

    threads = []
    for path in args.files:
        total, rows, entry = self_costs(path)
        if total >= n:  # idle threads (timers, signals) are left out
            threads.append((total, thread_role(entry), path, rows))
    threads.sort(key=lambda t: -t[0])
    grand = sum(t[0] for t in threads)

    print("%s: instructions per request (%d requests), by thread" % (args.name, n))
    for total, role, _, _ in threads:
        print("  %-9s %9s" % (role, "{:,.0f}".format(total / n)))
    print("  %-9s %9s" % ("all", "{:,.0f}".format(grand / n)))

    for total, role, _, rows in threads:
        if total < 0.02 * grand:
            continue
        print()
        print("%s, %s thread: by library (self instructions per request, share of the thread)"
              % (args.name, role))
        by_lib = collections.Counter()
        for cost, function, obj in rows:
            by_lib[library(function, obj)] += cost
        for lib, cost in by_lib.most_common():
            if cost >= 0.005 * total:
                print("  %5.1f%%  %8s  %s" % (100.0 * cost / total, "{:,.0f}".format(cost / n), lib))
        print("%s, %s thread: top %d functions (self)" % (args.name, role, args.top))
        for cost, function, obj in sorted(rows, reverse=True)[:args.top]:
            print("  %5.1f%%  %8s  %s" % (100.0 * cost / total, "{:,.0f}".format(cost / n),
                                          short_function(function, obj)))


if __name__ == "__main__":
    main()
