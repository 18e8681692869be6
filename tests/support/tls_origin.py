#!/usr/bin/env python3
"""An HTTPS (HTTP/1.1) origin for the TLS tests: listens on 127.0.0.1, port 0, prints "PORT <n>"
once listening, and answers every request with JSON: method, target, headers (name/value pairs),
the TLS server name the client sent (SNI) and the ALPN protocol agreed. Standard library only;
exits after --max-seconds.

Usage: tls_origin.py --cert PEM --key PEM [--max-seconds N]
"""

import argparse
import http.server
import json
import socketserver
import ssl
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        tls = self.connection
        out = json.dumps({
            "method": self.command,
            "target": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "server_name": getattr(tls, "sni_seen", None),
            "alpn": tls.selected_alpn_protocol(),
            "body_length": len(body),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--max-seconds", type=float, default=300)
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["http/1.1"])

    def remember_sni(tls, name, _context):
        tls.sni_seen = name
    context.sni_callback = remember_sni

    server = Server(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    threading.Timer(args.max_seconds, server.shutdown).start()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
