#!/usr/bin/env python3
"""The demo's backend: a tiny user service (Python standard library only).

  GET /users/{id}   {"id": ..., "name": ...}; id 0 fails with 500 (the demo's failing request)

Usage: backend.py PORT
"""

import re
import sys
import time

from common import JsonHandler, serve

NAMES = ["ada", "grace", "edsger", "barbara", "ken", "margaret", "dennis", "frances"]


class Handler(JsonHandler):
    def do_GET(self):
        m = re.fullmatch(r"/users/(\d+)", self.path.split("?")[0])
        if not m:
            return self.answer(404, {"error": "no such endpoint"})
        user = int(m.group(1))
        time.sleep(0.005 + 0.002 * (user % 5))  # a little work, so durations differ
        if user == 0:
            return self.answer(500, {"error": "user store unavailable"})
        self.answer(200, {"id": user, "name": NAMES[user % len(NAMES)]})


if __name__ == "__main__":
    serve(int(sys.argv[1]), Handler)
