#!/usr/bin/env python3
"""Runs scripts/demo.sh in oneshot mode against a built tracecar and checks what it prints: one
trace tree per request, the frontend's SERVER span at the root, its CLIENT span under it and the
backend's SERVER span under that; the failing request marked ERROR; the /metrics URLs. Also checks
that the demo left none of its processes running, and removed its spans and logs directory (kept
with DEMO_KEEP=1); then runs it as a user does, until it says it is running, and presses Ctrl-C
(SIGINT to its process group): it must stop everything it started and exit 0.

Usage: demo_test.py --demo scripts/demo.sh --tracecar PATH
"""

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time


def fail(message, output=""):
    print(output)
    print("FAIL demo: " + message)
    sys.exit(1)


def run_demo(args, **extra_env):
    env = dict(os.environ, DEMO_ONESHOT="1", TRACECAR_BIN=args.tracecar, DEMO_SKIP_DEPS="1",
               **extra_env)
    try:
        r = subprocess.run(["bash", args.demo], env=env, capture_output=True, timeout=150,
                           start_new_session=True)
    except subprocess.TimeoutExpired:
        fail("the demo did not finish within 150 s")
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0:
        fail("exit status %d: %s" % (r.returncode, r.stderr.decode("utf-8", "replace")), out)
    return out, r.stderr.decode("utf-8", "replace")


def run_interactive(args):
    """The demo without DEMO_ONESHOT, stopped with Ctrl-C once it says it is running."""
    env = dict(os.environ, TRACECAR_BIN=args.tracecar, DEMO_SKIP_DEPS="1")
    env.pop("DEMO_ONESHOT", None)
    env.pop("DEMO_KEEP", None)
    p = subprocess.Popen(["bash", args.demo], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in p.stdout] and None,
                     daemon=True).start()
    out = []
    deadline = time.monotonic() + 150
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                fail("the demo did not say it was running within 150 s", "".join(out))
            out.append(line.decode("utf-8", "replace"))
            if out[-1].startswith("demo: running"):
                break
        os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            fail("the demo did not stop within 30 s of Ctrl-C", "".join(out))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    err = p.stderr.read().decode("utf-8", "replace")
    text = "".join(out)
    if rc != 0:
        fail("exit status %d after Ctrl-C: %s" % (rc, err), text)
    time.sleep(0.5)
    left = [pid for pid in
            subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True).stdout.decode().split()
            if not is_zombie(pid)]
    if left:
        fail("Ctrl-C left processes of the demo running: %s" % " ".join(left), text)
    if os.path.exists(spans_dir(text)):
        fail("Ctrl-C left %s behind" % spans_dir(text), text)


def is_zombie(pid):
    """A process that has exited and waits for its parent (init, once orphaned) to reap it: it
    runs nothing and holds nothing but its entry in the process table. Under AddressSanitizer,
    the leak check's helper process is left so when tracecar exits during the check (the demo
    stops it with a second signal while it is exiting)."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True  # gone already


def spans_dir(out):
    found = re.search(r"^spans: +(/\S+)/\*\.spans\.jsonl", out, re.MULTILINE)
    if not found:
        fail("the spans files are not shown", out)
    return found.group(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", required=True)
    parser.add_argument("--tracecar", required=True)
    args = parser.parse_args()
    out, _ = run_demo(args)

    traces = [t for t in out.split("\n\n") if t.startswith("trace ")]
    if len(traces) != 3:
        fail("want 3 trace trees, got %d" % len(traces), out)
    pattern = [(2, "frontend", "server", "GET /profile/{id}"),
               (6, "frontend", "client", "GET"),
               (10, "backend", "server", "GET /users/{id}")]
    errors = 0
    for trace in traces:
        lines = trace.splitlines()[1:]
        if len(lines) != 3:
            fail("want 3 spans per trace", out)
        for line, (indent, service, kind, name) in zip(lines, pattern):
            fields = re.split(r"\s{2,}", line.strip())
            if len(line) - len(line.lstrip()) != indent or fields[:3] != [service, kind, name]:
                fail("unexpected tree line %r" % line, out)
            if not re.search(r"\d+\.\d\d ms", line):
                fail("no duration in %r" % line, out)
        errors += "ERROR" in trace
    if errors != 1 or "502  ERROR" not in out or "500  ERROR" not in out:
        fail("want exactly one failed trace (502 at the frontend, 500 from the backend)", out)
    if len(re.findall(r"http://127\.0\.0\.1:\d+/metrics", out)) != 2:
        fail("the /metrics URLs are not shown", out)

    leftovers = subprocess.run(["pgrep", "-f", re.escape(os.path.dirname(args.demo)) + "/demo/"],
                               capture_output=True).stdout.decode().split()
    if leftovers:
        fail("processes left running: %s" % " ".join(leftovers), out)
    if os.path.exists(spans_dir(out)):
        fail("the demo left %s behind" % spans_dir(out), out)

    kept_out, kept_err = run_demo(args, DEMO_KEEP="1")
    kept = spans_dir(kept_out)
    try:
        if "kept in " + kept not in kept_err:
            fail("with DEMO_KEEP=1 the demo does not say where the files are: " + kept_err)
        for name in ("frontend.spans.jsonl", "backend.spans.jsonl"):
            path = os.path.join(kept, name)
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                fail("with DEMO_KEEP=1, %s is missing or empty" % path, kept_out)
    finally:
        shutil.rmtree(kept, ignore_errors=True)

    run_interactive(args)
    print(out)
    print("PASS demo")


if __name__ == "__main__":
    main()
