#!/usr/bin/env python3
"""An HTTP/1.1 origin server for the data path's integration tests.

Listens on --host (default 127.0.0.1), port 0, with keep-alive, one thread per connection, and
prints "PORT <n>" once listening. Python standard library only; exits after --max-seconds.

Every request line read counts as a request (GET /stats excepted), so a test can check that
nothing reached the origin. Endpoints (query parameters in brackets):

  /stats                      {"requests": n, "connections": m, "targets": [...]}, not counted
  /echo [nobody=1, slow_ms=M] the request as JSON: method, target, version, headers (name/value
                              pairs as received), body (latin-1; left out with nobody=1),
                              body_length, body_sha256, trailers, connection (id from 1),
                              request_number (on this connection, from 1). Sends 100 Continue
                              first when asked to. slow_ms: sleep M ms per 64 KiB read.
  /status/NNN [close=1] [cl=1]  that status; a short body unless 1xx, 204, 304 or HEAD; cl=1
                              adds a Content-Length to a 204 (which must have none)
  /chunked [chunks=N, size=S, trailer=1]
                              a chunked body of N chunks of S bytes; trailer X-Checksum (sha256)
  /big [size=N]               Content-Length N, bytes 0..255 repeated
  /sleep [ms=N]               answers after N ms
  /duplex                     answers at once (chunked), then sends each piece of the request's
                              Content-Length body back as a chunk as it comes
  /drip [pieces=N, ms=M]      Content-Length 10*N; 10 bytes with the head, then 10 more every M ms
  /processing [count=N, ms=M, final_ms=F]
                              N interim 102 Processing heads, one every M ms, then 200
                              "processed\n" F ms after the last (F defaults to M)
  /close-mid                  promises 100 bytes, sends 10, closes
  /reset                      no answer: closes with SO_LINGER 0 (RST)
  /hangup                     answers as if keeping the connection alive, then closes it
  /drop-next                  answers; the next request on the same connection is read and the
                              connection closed without an answer
  /close-delimited [size=N]   HTTP/1.1 body delimited by closing the connection
  /http10 [size=N]            an HTTP/1.0 answer without Content-Length
  /hop                        an answer carrying hop-by-hop fields
  /head-size [total=N]        an answer whose head (status line to final CRLF) is N bytes
  /head-count [count=N]       an answer with exactly N header fields
  /expect-417                 answers 417 at once without reading the body, then closes
  /ws                         101 to an Upgrade request, then echoes bytes until EOF
  /switch                     101 whatever the request, then echoes bytes until EOF
  CONNECT (any target)        200, then echoes bytes until EOF
"""

import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

PATTERN = bytes(range(256)) * 256  # 64 KiB


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = set()
        self.targets = []

    def record(self, cid, target):
        with self.lock:
            self.requests += 1
            self.connections.add(cid)
            self.targets.append(target)

    def snapshot(self):
        with self.lock:
            return {
                "requests": self.requests,
                "connections": len(self.connections),
                "targets": list(self.targets[-200:]),
            }


STATS = Stats()


class Closed(Exception):
    pass


class Connection:
    def __init__(self, sock, cid):
        self.sock = sock
        self.cid = cid
        self.buf = b""
        self.requests = 0
        self.drop_next = False

    def more(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > (1 << 20):
                raise Closed()
            self.more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n, slow_ms=0):
        out = []
        while n > 0:
            if not self.buf:
                self.more()
                if slow_ms:
                    time.sleep(slow_ms / 1000.0)
            piece = self.buf[:n]
            self.buf = self.buf[len(piece):]
            out.append(piece)
            n -= len(piece)
        return b"".join(out)

    def head(self):
        line = self.line()
        while line == b"":
            line = self.line()
        parts = line.decode("latin-1").split(" ")
        if len(parts) != 3:
            raise Closed()
        method, target, version = parts
        headers = []
        while True:
            field = self.line()
            if field == b"":
                break
            name, _, value = field.decode("latin-1").partition(":")
            headers.append([name, value.strip()])
        return method, target, version, headers

    def body(self, headers, slow_ms=0):
        te = header(headers, "transfer-encoding")
        if te and te.lower().endswith("chunked"):
            chunks = []
            while True:
                size = int(self.line().decode("latin-1").split(";")[0], 16)
                if size == 0:
                    break
                chunks.append(self.exact(size, slow_ms))
                self.exact(2)
            trailers = []
            while True:
                field = self.line()
                if field == b"":
                    break
                name, _, value = field.decode("latin-1").partition(":")
                trailers.append([name, value.strip()])
            return b"".join(chunks), trailers
        length = int(header(headers, "content-length") or "0")
        return self.exact(length, slow_ms), []

    def send(self, data):
        self.sock.sendall(data)


def header(headers, name):
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def has_token(headers, name, token):
    for n, v in headers:
        if n.lower() == name and token in [t.strip().lower() for t in v.split(",")]:
            return True
    return False


def reason(status):
    return {100: "Continue", 101: "Switching Protocols", 200: "OK", 204: "No Content",
            304: "Not Modified", 400: "Bad Request", 404: "Not Found", 413: "Content Too Large",
            417: "Expectation Failed", 500: "Internal Server Error",
            503: "Service Unavailable"}.get(status, "Whatever")


def respond(conn, status, body=b"", headers=(), head_only=False, close=False):
    lines = ["HTTP/1.1 %d %s" % (status, reason(status))]
    lines += ["%s: %s" % (n, v) for n, v in headers]
    if not (100 <= status < 200 or status == 204):
        lines.append("Content-Length: %d" % len(body))
    if close:
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if not head_only and status not in (204, 304) and not (100 <= status < 200):
        data += body
    conn.send(data)


def echo_bytes(conn):
    if conn.buf:
        conn.send(conn.buf)
        conn.buf = b""
    while True:
        data = conn.sock.recv(65536)
        if not data:
            break
        conn.sock.sendall(data)
    try:
        conn.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def handle_request(conn):
    """Serves one request; returns False when the connection must end."""
    method, target, version, headers = conn.head()
    url = urlsplit(target)
    path = url.path
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    if path != "/stats":
        STATS.record(conn.cid, method + " " + target)
    conn.requests += 1
    head_only = method == "HEAD"
    close = has_token(headers, "connection", "close") or version == "HTTP/1.0"

    if conn.drop_next:
        conn.drop_next = False
        return False

    if method == "CONNECT":
        conn.send(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        echo_bytes(conn)
        return False

    expect = header(headers, "expect")
    if path == "/expect-417":
        respond(conn, 417, b"no\n", close=True)
        return False
    if expect and expect.lower() == "100-continue":
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    if path == "/duplex":
        # The answer's head at once, then each piece of the (Content-Length) body back as a chunk.
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        left = int(header(headers, "content-length") or "0")
        while left > 0:
            if not conn.buf:
                conn.more()
            piece = conn.buf[:left]
            conn.buf = conn.buf[len(piece):]
            left -= len(piece)
            conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        return not close

    slow_ms = int(query.get("slow_ms", "0"))
    body, trailers = conn.body(headers, slow_ms)

    if path == "/stats":
        respond(conn, 200, json.dumps(STATS.snapshot()).encode(),
                [("Content-Type", "application/json")], head_only, close)
    elif path == "/echo":
        out = {
            "method": method, "target": target, "version": version, "headers": headers,
            "body_length": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
            "trailers": trailers, "connection": conn.cid, "request_number": conn.requests,
        }
        if query.get("nobody") != "1":
            out["body"] = body.decode("latin-1")
        respond(conn, 200, json.dumps(out).encode(), [("Content-Type", "application/json")],
                head_only, close)
    elif path.startswith("/status/"):
        status = int(path[len("/status/"):])
        if query.get("close") == "1":
            close = True
        body = ("status %d\n" % status).encode()
        # cl=1: a Content-Length even where none belongs (1xx, 204), as a careless app sends it
        extra = [("Content-Length", str(len(body)))] if query.get("cl") == "1" and (
            status < 200 or status == 204) else []
        respond(conn, status, body, extra, head_only, close)
    elif path == "/chunked":
        chunks = int(query.get("chunks", "3"))
        size = int(query.get("size", "5"))
        with_trailer = query.get("trailer") == "1"
        head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        if with_trailer:
            head += "Trailer: X-Checksum\r\n"
        conn.send((head + "\r\n").encode())
        if head_only:
            return not close
        digest = hashlib.sha256()
        for i in range(chunks):
            piece = bytes([0x61 + i % 26]) * size
            digest.update(piece)
            conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        tail = b"0\r\n"
        if with_trailer:
            tail += b"X-Checksum: " + digest.hexdigest().encode() + b"\r\n"
        conn.send(tail + b"\r\n")
    elif path == "/big":
        size = int(query.get("size", "1048576"))
        conn.send(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n"
                   % (size, "Connection: close\r\n" if close else "")).encode())
        if not head_only:
            left = size
            while left > 0:
                piece = PATTERN[:min(left, len(PATTERN))]
                conn.send(piece)
                left -= len(piece)
    elif path == "/sleep":
        time.sleep(int(query.get("ms", "1000")) / 1000.0)
        respond(conn, 200, b"slept\n", [], head_only, close)
    elif path == "/drip":
        pieces = int(query.get("pieces", "3"))
        pause = int(query.get("ms", "100")) / 1000.0
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 * pieces))
        if head_only:
            return not close
        for i in range(pieces):
            if i > 0:
                time.sleep(pause)
            conn.send(bytes([0x61 + i % 26]) * 10)
    elif path == "/processing":
        count = int(query.get("count", "2"))
        pause = int(query.get("ms", "100")) / 1000.0
        final_pause = int(query.get("final_ms", query.get("ms", "100"))) / 1000.0
        for _ in range(count):
            time.sleep(pause)
            conn.send(b"HTTP/1.1 102 Processing\r\n\r\n")
        time.sleep(final_pause)
        respond(conn, 200, b"processed\n", [], head_only, close)
    elif path == "/close-mid":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        return False
    elif path == "/reset":
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False
    elif path == "/hangup":
        respond(conn, 200, b"bye\n", [], head_only)
        return False
    elif path == "/drop-next":
        conn.drop_next = True
        respond(conn, 200, b"next one is dropped\n", [], head_only)
    elif path in ("/close-delimited", "/http10"):
        size = int(query.get("size", "1000"))
        version_line = "HTTP/1.0" if path == "/http10" else "HTTP/1.1"
        conn.send((version_line + " 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
                  .encode())
        if not head_only:
            left = size
            while left > 0:
                piece = PATTERN[:min(left, len(PATTERN))]
                conn.send(piece)
                left -= len(piece)
        return False
    elif path == "/hop":
        respond(conn, 200, b"hop\n",
                [("Connection", "X-Hop-Response"), ("X-Hop-Response", "1"),
                 ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
                 ("Upgrade", "h2c"), ("X-End-To-End", "1")], head_only, close)
    elif path == "/head-size":
        total = int(query.get("total", "200"))
        fixed = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: \r\n\r\n"
        pad = total - len(fixed)
        conn.send(("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: " + "p" * max(pad, 0) +
                   "\r\n\r\n").encode())
    elif path == "/head-count":
        count = int(query.get("count", "10"))
        lines = ["HTTP/1.1 200 OK", "Content-Length: 0"]
        lines += ["X-F%d: v" % i for i in range(count - 1)]
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode())
    elif path == "/switch":
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
        echo_bytes(conn)
        return False
    elif path == "/ws":
        if not has_token(headers, "connection", "upgrade") or not header(headers, "upgrade"):
            respond(conn, 400, b"not an upgrade\n", [], head_only, close)
            return not close
        # ?proto= switches to another protocol than the one offered; ?cl=1 adds a Content-Length.
        proto = query.get("proto", "websocket").encode()
        extra = b"Content-Length: 0\r\n" if query.get("cl") == "1" else b""
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + proto + b"\r\n"
                  b"Connection: Upgrade\r\n" + extra + b"\r\n")
        echo_bytes(conn)
        return False
    else:
        respond(conn, 404, b"no such endpoint\n", [], head_only, close)
    return not close


def serve(sock, cid):
    conn = Connection(sock, cid)
    try:
        while handle_request(conn):
            pass
    except (Closed, OSError, ValueError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, 0))
    listener.listen(128)
    print("PORT %d" % listener.getsockname()[1], flush=True)

    def expire():
        time.sleep(args.max_seconds)
        os._exit(0)

    threading.Thread(target=expire, daemon=True).start()
    cid = 0
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid += 1
        threading.Thread(target=serve, args=(sock, cid), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
