#!/usr/bin/env python3
"""The demo's frontend: a profile page that calls the backend (Python standard library only).

  GET /profile/{id}   calls GET {backend}/users/{id} through its sidecar's outbound listener
                      (used as an HTTP proxy, like HTTP_PROXY) and answers with a summary;
                      a failed backend call gives 502.

Like any service in a mesh, it copies the trace context of the request it serves onto the calls
it makes (here just the W3C headers), so its sidecar can put both spans in one trace.

Usage: frontend.py PORT BACKEND_URL PROXY_URL
"""

import json
import re
import sys
import urllib.error
import urllib.request

from common import JsonHandler, serve

CONTEXT_HEADERS = ("traceparent", "tracestate", "baggage")


class Handler(JsonHandler):
    backend = ""
    opener = None

    def do_GET(self):
        m = re.fullmatch(r"/profile/(\d+)", self.path.split("?")[0])
        if not m:
            return self.answer(404, {"error": "no such endpoint"})
        request = urllib.request.Request("%s/users/%s" % (self.backend, m.group(1)))
        for name in CONTEXT_HEADERS:
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        try:
            with self.opener.open(request, timeout=10) as response:
                user = json.load(response)
            self.answer(200, {"profile": user, "source": "backend"})
        except urllib.error.HTTPError as e:
            self.answer(502, {"error": "backend answered %d" % e.code})
        except (urllib.error.URLError, OSError) as e:
            self.answer(502, {"error": "backend unreachable: %s" % e})


if __name__ == "__main__":
    port, Handler.backend, proxy = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    Handler.opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
    serve(port, Handler)
