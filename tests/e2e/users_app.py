#!/usr/bin/env python3
"""A tiny HTTP/1.1 app for the e2e tests whose paths match the route template /users/{id}.

Listens on 127.0.0.1, port 0, prints "PORT <n>" once listening, exits after --max-seconds.

  GET /users/<id>              200, {"id": "<id>"}
  GET /users/<id>?status=NNN   that status, {"id": "<id>", "status": NNN}
  anything else                404
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = url.path.split("/")
        if len(parts) == 3 and parts[1] == "users" and parts[2]:
            status = int(query.get("status", "200"))
            body = json.dumps({"id": parts[2], "status": status}).encode() + b"\n"
        else:
            status = 404
            body = b"no such endpoint\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)

    def expire():
        time.sleep(args.max_seconds)
        os._exit(0)

    threading.Thread(target=expire, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
