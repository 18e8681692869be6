#!/usr/bin/env python3
"""The demo's backend: a tiny user service (Python standard library only).

  GET /users/{id}   {"id": ..., "name": ...}; id 0 fails with 500 (the demo's failing request)

Usage: backend.py PORT
"""

import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMES = ["ada", "grace", "edsger", "barbara", "ken", "margaret", "dennis", "frances"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        m = re.fullmatch(r"/users/(\d+)", self.path.split("?")[0])
        if not m:
            return self.answer(404, {"error": "no such endpoint"})
        user = int(m.group(1))
        time.sleep(0.005 + 0.002 * (user % 5))  # a little work, so durations differ
        if user == 0:
            return self.answer(500, {"error": "user store unavailable"})
        self.answer(200, {"id": user, "name": NAMES[user % len(NAMES)]})

    def answer(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
