#!/usr/bin/env python3
"""A scriptable OTLP/HTTP collector for the exporter's integration tests.

Listens on 127.0.0.1, port 0, speaking HTTP/1.1 with keep-alive (optionally over TLS), and
prints "PORT <n>" once listening. Each request consumes one action of --script (the last one
repeats):

  {"status": 200}                                 answer with that status
  {"status": 429, "retry_after": "1"}             ... and a Retry-After header
  {"status": 400, "body": "bad"}                  ... and a text/plain body
  {"partial": {"rejected": 3, "message": "..."}}  200 with a partial success, in the request's
                                                  format (protobuf or JSON)
  {"delay_ms": 3000, "status": 200}               wait before answering
  {"reset": true}                                 no answer: close with SO_LINGER 0 (RST)
  {"close": true, "status": 200}                  answer with Connection: close, then close
  {"hangup": true, "status": 200}                 answer as if keeping the connection alive,
                                                  then close it (an idle timeout, at once)
  {"status": 400, "rpc_message": "bad"}           ... a google.rpc.Status protobuf body
  {"early_ms": 500, "status": 200}                answer as soon as the head is read, then
                                                  read the body after that long (recorded
                                                  with what arrived; wire_bytes says how much)

With --record DIR, request N (from 1) is written to DIR/N.body (gzip-decoded) and DIR/N.json
(method, path, headers with lowercase names, connection number from 1, monotonic time); the
.json file appears after the .body file, so its presence means the request is fully recorded.

Python standard library only. Exits on SIGTERM, and by itself after --max-seconds.
"""

import argparse
import gzip
import http.server
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1  # negative int64 values are ten-byte varints
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field, payload):
    return varint((field << 3) | 2) + varint(len(payload)) + payload


def partial_success_protobuf(rejected, message):
    # ExportTraceServiceResponse { partial_success = 1 { rejected_spans = 1; error_message = 2 } }
    inner = b""
    if rejected:
        inner += varint(1 << 3) + varint(rejected)
    if message:
        inner += length_delimited(2, message.encode("utf-8"))
    return length_delimited(1, inner)


def partial_success_json(rejected, message):
    inner = {}
    if rejected:
        inner["rejectedSpans"] = str(rejected)
    if message:
        inner["errorMessage"] = message
    return json.dumps({"partialSuccess": inner}).encode("utf-8")


class State:
    def __init__(self, script, record_dir):
        self.script = script or [{"status": 200}]
        self.record_dir = record_dir
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = 0

    def next_request(self):
        with self.lock:
            index = min(self.requests, len(self.script) - 1)
            self.requests += 1
            return self.requests, self.script[index]

    def peek(self):
        """The action the next request will consume."""
        with self.lock:
            return self.script[min(self.requests, len(self.script) - 1)]

    def next_connection(self):
        with self.lock:
            self.connections += 1
            return self.connections

    def record(self, number, meta, body):
        if not self.record_dir:
            return
        base = os.path.join(self.record_dir, str(number))
        with open(base + ".body.tmp", "wb") as f:
            f.write(body)
        os.replace(base + ".body.tmp", base + ".body")
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f, sort_keys=True)
        os.replace(base + ".json.tmp", base + ".json")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-collector"
    sys_version = ""

    def setup(self):
        super().setup()
        self.connection_number = self.server.state.next_connection()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        sys.stderr.write("fake_collector: %s\n" % (format % args))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(length) if length else b""

    def do_POST(self):
        self.handle_request()

    def do_GET(self):
        self.handle_request()

    def handle_request(self):
        state = self.server.state
        if state.peek().get("early_ms") is not None:
            self.answer_early(state)
            return
        raw = self.read_body()
        body = raw
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(raw)
        number, action = state.next_request()
        self.record(state, number, raw, body)

        if action.get("delay_ms"):
            time.sleep(action["delay_ms"] / 1000.0)
        if action.get("reset"):
            self.reset()
            return

        is_json = self.headers.get("Content-Type", "").startswith("application/json")
        status = action.get("status", 200)
        content_type = "application/json" if is_json else "application/x-protobuf"
        if "partial" in action:
            partial = action["partial"]
            rejected = int(partial.get("rejected", 0))
            message = partial.get("message", "")
            if is_json:
                payload = partial_success_json(rejected, message)
            else:
                payload = partial_success_protobuf(rejected, message)
        elif "rpc_message" in action:
            # google.rpc.Status { code = 1; message = 2 }
            payload = varint(1 << 3) + varint(3) + length_delimited(
                2, action["rpc_message"].encode("utf-8"))
            content_type = "application/x-protobuf"
        elif "body" in action:
            payload = action["body"].encode("utf-8")
            content_type = "text/plain; charset=utf-8"
        elif 200 <= status < 300:
            payload = b"{}" if is_json else b""
        else:
            payload = b""
        # Bytes after the answer (hex), making it unreadable: "ff" is a broken varint.
        payload += bytes.fromhex(action.get("trailing", ""))

        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if "retry_after" in action:
                self.send_header("Retry-After", str(action["retry_after"]))
            if action.get("close"):
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
            if action.get("hangup"):
                self.close_connection = True
        except OSError:
            # The client gave up (a delay past its timeout): nothing to answer.
            self.close_connection = True

    def answer_early(self, state):
        number, action = state.next_request()
        length = int(self.headers.get("Content-Length", "0"))
        try:
            self.send_response(action.get("status", 200))
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            time.sleep(action["early_ms"] / 1000.0)
            raw = bytearray()
            while len(raw) < length:
                chunk = self.rfile.read1(length - len(raw))
                if not chunk:
                    break
                raw += chunk
        except OSError:
            raw = b""
        if len(raw) < length:
            self.close_connection = True  # the client gave the rest up
        self.record(state, number, bytes(raw), bytes(raw))

    def record(self, state, number, raw, body):
        """Records request number: raw is the body as it came, body as decoded."""
        meta = {
            "method": self.command,
            "path": self.path,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "connection": self.connection_number,
            "time": time.monotonic(),
            "wire_bytes": len(raw),
        }
        state.record(number, meta, body)

    def reset(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, state, tls_context):
        self.state = state
        self.tls_context = tls_context
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        # The handshake runs on the connection's thread, so a slow or failing client never
        # blocks the accept loop.
        try:
            request.settimeout(30)
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as error:
            sys.stderr.write("fake_collector: TLS handshake failed: %s\n" % error)
            return
        try:
            tls.settimeout(None)
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        sys.stderr.write("fake_collector: %s: %r\n" % (client_address, error))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", default='[{"status": 200}]')
    parser.add_argument("--record")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--client-ca")
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()

    script = json.loads(args.script)
    if not isinstance(script, list) or not script:
        parser.error("--script must be a non-empty JSON list")
    if args.record:
        os.makedirs(args.record, exist_ok=True)

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            tls_context.verify_mode = ssl.CERT_REQUIRED
            tls_context.load_verify_locations(args.client_ca)

    server = Server(("127.0.0.1", 0), State(script, args.record), tls_context)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write("PORT %d\n" % server.server_address[1])
    sys.stdout.flush()
    time.sleep(args.max_seconds)
    os._exit(0)


if __name__ == "__main__":
    main()
