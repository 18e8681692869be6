#!/usr/bin/env python3
"""How `tracecar run` starts, and says why when it cannot:
- TRACECAR_CONSOLE_EXPORT_PATH naming a FIFO that has no reader yet (a log shipper that starts
  after the sidecar): tracecar starts and serves at once, says it waits for a reader, and writes
  spans to the FIFO once one opens it;
- a listener whose address is in use is named (inbound or outbound), and exits 1;
- a ready file that cannot be written gives the system's reason, and exits 1.
tracecar runs in front of tests/support/origin_server.py, driven by curl.

Usage: run_startup.py --tracecar PATH CASE   (CASE: see CASES below)
"""

import errno
import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "e2e"))

from e2e_support import Failure, check, run_cases, wait_for  # noqa: E402


def read_available(fd, chunks):
    """What the FIFO holds now, appended to chunks; the text read so far."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                break
            raise
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def fifo_without_reader(h):
    origin = h.origin()
    fifo = os.path.join(h.dir, "spans.fifo")
    os.mkfifo(fifo)
    # h.tracecar waits for the ready file: open() on the FIFO must not block the start.
    tc = h.tracecar("sidecar", origin, ["--route", "/echo"],
                    env={"OTEL_TRACES_EXPORTER": "console", "TRACECAR_CONSOLE_EXPORT_PATH": fifo})
    check("is a FIFO with no reader yet; waiting for one" in tc.process.stderr(),
          "the wait is logged:\n%s" % tc.process.stderr())
    # The data path does not wait for the span sink.
    check(h.status_of(tc.url("/echo")) == 200, "a request relayed while no reader is there")

    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        chunks = []

        def span_line():
            # A request per look: the first batch after the reader opened the FIFO lands in it.
            h.status_of(tc.url("/echo"))
            text = read_available(reader, chunks)
            return text if "resourceSpans" in text and text.endswith("\n") else None
        text = wait_for(span_line, 15, "spans in the FIFO once a reader opened it")
        check('"name":"GET /echo"' in text, "the span of GET /echo: %r" % text[:400])
        check("a reader opened %s" % fifo in tc.process.stderr(),
              "the reader is logged:\n%s" % tc.process.stderr())
    finally:
        os.close(reader)

    tc.process.signal(signal.SIGTERM)
    check(tc.process.wait(30) == 0, "SIGTERM: exit 0")


def run_briefly(h, args=(), **listeners):
    """tracecar run with args, its listeners on free ports unless given (inbound="ADDR:PORT");
    its exit code and standard error."""
    argv = [h.tracecar_binary, "run", "--workers", "1"] + list(args)
    for role in ("inbound", "outbound", "admin"):
        argv += ["--" + role, listeners.get(role, "127.0.0.1:0")]
    try:
        r = subprocess.run(argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Failure("tracecar %s did not exit" % " ".join(args))
    return r.returncode, r.stderr.decode("utf-8", "replace")


def listener_in_use(h):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        for role in ("inbound", "outbound"):
            rc, err = run_briefly(h, **{role: "127.0.0.1:%d" % port})
            check(rc == 1, "%s in use: exit 1, got %d:\n%s" % (role, rc, err))
            check("%s listener: listening on 127.0.0.1:%d: the address is already in use"
                  % (role, port) in err, "the %s listener is named:\n%s" % (role, err))
    finally:
        taken.close()


def ready_file_unwritable(h):
    path = os.path.join(h.dir, "missing", "ready.json")
    rc, err = run_briefly(h, ["--ready-file", path])
    check(rc == 1, "an unwritable ready file: exit 1, got %d:\n%s" % (rc, err))
    check("cannot write the ready file %s: creating %s.tmp: No such file or directory"
          % (path, path) in err, "the reason is given:\n%s" % err)


CASES = {
    "fifo_without_reader": fifo_without_reader,
    "listener_in_use": listener_in_use,
    "ready_file_unwritable": ready_file_unwritable,
}


if __name__ == "__main__":
    sys.exit(run_cases(CASES, __doc__))
