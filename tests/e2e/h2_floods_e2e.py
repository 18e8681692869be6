#!/usr/bin/env python3
"""End-to-end HTTP/2 floods against the tracecar executable (docs/http2.md, "Floods through the
proxy"): raw sockets write hand-built frames (RFC 9113 section 4.1; header blocks of RFC 7541
literals) at tracecar's listeners while it forwards h2c to nginx, and the case watches tracecar's
resident memory (/proc/PID/status VmRSS), the GOAWAYs it answers and its /metrics.

Usage: h2_floods_e2e.py --tracecar PATH CASE   (CASE: see CASES below)
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

from e2e_support import Failure, Skip, check, metric_value, run_cases, wait_for
from tracecar_e2e import h2c_origin, nghttp

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
CANCEL, ENHANCE_YOUR_CALM = 0x8, 0xB
MAX_PREMATURE_RESETS = 100  # H2Settings::max_premature_resets, the default

FLOOD_SECONDS = 4
FLOODERS = 4  # connections flooding at once
STREAMS_PER_CONNECTION = 2000
# tracecar's resident memory may grow this much over its figure before the flood: a connection
# holds at most the limit's worth of streams, so the growth does not follow the flood's size.
RSS_GROWTH_LIMIT_KB = 32 * 1024


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream & 0x7FFFFFFF) + payload


def hpack_int(first, prefix_bits, value):
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = bytearray([first | top])
    value -= top
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(static_name_index, value):
    """Literal header field without indexing, its name from the static table."""
    value = value.encode()
    return hpack_int(0x00, 4, static_name_index) + hpack_int(0, 7, len(value)) + value


def get_block(authority, path):
    # :method GET (static 2) and :scheme http (6) indexed; :path (4) and :authority (1) literals.
    return b"\x82\x86" + literal(4, path) + literal(1, authority)


def rapid_reset_bytes(authority, streams):
    block = get_block(authority, "/flood")
    out = bytearray(PREFACE + frame(SETTINGS, 0, 0))
    for i in range(streams):
        stream = 2 * i + 1
        out += frame(HEADERS, END_HEADERS, stream, block)
        out += frame(RST_STREAM, 0, stream, struct.pack(">I", CANCEL))
    return bytes(out)


def read_goaways(sock, timeout):
    """Error codes of the GOAWAYs read until the peer closes (or timeout)."""
    codes = []
    buf = b""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            if buf[3] == GOAWAY and length >= 8:
                codes.append(int.from_bytes(buf[13:17], "big"))
            buf = buf[9 + length:]
    return codes


def flood_once(port, payload):
    """One connection: the whole flood in one write, then tracecar's answer. Returns the GOAWAY
    codes it got."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # tracecar closed the connection before reading it all: the answer came first
        return read_goaways(s, 10)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failure("no VmRSS for pid %d" % pid)


def rapid_reset_flood(h):
    """Thousands of streams opened and reset at once, on connection after connection for a few
    seconds: each connection is answered with one GOAWAY ENHANCE_YOUR_CALM and counted once,
    tracecar's memory stays bounded, and a normal request is served afterwards."""
    if shutil.which("promtool") is None:
        raise Skip("promtool is missing (scripts/install-deps.sh installs it)")
    origin = h2c_origin(h)
    authority = "127.0.0.1:%d" % origin
    # Under AddressSanitizer freed memory waits in a quarantine (256 MiB by default) that would
    # count as growth here: keep it small. Other builds ignore the variable.
    asan = ":".join(o for o in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=4") if o)
    tc = h.tracecar("sidecar", origin, env={"OTEL_TRACES_EXPORTER": "none", "ASAN_OPTIONS": asan})
    pid = tc.process.popen.pid
    body = nghttp("http://127.0.0.1:%d/before" % tc.inbound)
    check(body.startswith("h2 origin /before"), "served before the flood: %r" % body)
    baseline = rss_kb(pid)

    payload = rapid_reset_bytes(authority, STREAMS_PER_CONNECTION)
    lock = threading.Lock()
    results = {"connections": 0, "calm": 0, "other": []}
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            stop.wait(0.02)

    def flooder(listener_port, deadline):
        while time.monotonic() < deadline:
            codes = flood_once(listener_port, payload)
            with lock:
                results["connections"] += 1
                if codes == [ENHANCE_YOUR_CALM]:
                    results["calm"] += 1
                else:
                    results["other"].append(codes)

    sampler = threading.Thread(target=sample)
    sampler.start()
    deadline = time.monotonic() + FLOOD_SECONDS
    threads = [threading.Thread(target=flooder, args=(tc.inbound, deadline))
               for _ in range(FLOODERS)]
    # The outbound listener too (:authority names the origin), on one connection at a time.
    threads.append(threading.Thread(target=flooder, args=(tc.outbound, deadline)))
    for t in threads:
        t.start()
    # A normal request while the flood goes on.
    during = nghttp("http://127.0.0.1:%d/during" % tc.inbound)
    for t in threads:
        t.join(FLOOD_SECONDS + 60)
    stop.set()
    sampler.join(5)
    check(not any(t.is_alive() for t in threads + [sampler]), "the flooders ended")

    connections = results["connections"]
    print("%d flooding connections, %d streams written, VmRSS %d kB before, %d kB at most" %
          (connections, connections * STREAMS_PER_CONNECTION, baseline, peak[0]))
    check(connections >= 2 * FLOODERS, "the flood ran (%d connections)" % connections)
    check(not results["other"], "connections without exactly one GOAWAY ENHANCE_YOUR_CALM: %r"
          % results["other"][:5])
    check(during.startswith("h2 origin /during"), "served during the flood: %r" % during)
    check(peak[0] - baseline <= RSS_GROWTH_LIMIT_KB,
          "VmRSS grew by %d kB (limit %d kB)" % (peak[0] - baseline, RSS_GROWTH_LIMIT_KB))

    after = nghttp("http://127.0.0.1:%d/after" % tc.inbound)
    check(after.startswith("h2 origin /after"), "served after the flood: %r" % after)

    # Every flooding connection counted once, once tracecar has closed them all.
    def counted():
        text = h.metrics(tc)
        floods = metric_value(text, "tracecar_h2_floods_total",
                              {"side": "downstream", "kind": "rapid_reset"})
        return text if floods == connections else None
    text = wait_for(counted, 15, "%d rapid reset floods on /metrics" % connections)
    check(metric_value(text, "tracecar_h2_premature_resets_total", {"side": "downstream"})
          == connections * (MAX_PREMATURE_RESETS + 1), "premature resets: the limit's worth each")
    for kind in ("continuation", "settings", "ping", "empty_data"):
        check(metric_value(text, "tracecar_h2_floods_total",
                           {"side": "downstream", "kind": kind}) == 0, "no %s flood" % kind)
    check(metric_value(text, "tracecar_h2_floods_total",
                       {"side": "upstream", "kind": "rapid_reset"}) == 0, "no upstream flood")
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    check(r.returncode == 0, "promtool check metrics: %s%s" % (r.stdout.decode(),
                                                               r.stderr.decode()))


CASES = {
    "h2_rapid_reset_flood": rapid_reset_flood,
}


def main():
    return run_cases(CASES, __doc__)


if __name__ == "__main__":
    sys.exit(main())
