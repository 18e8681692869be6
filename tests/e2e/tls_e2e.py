#!/usr/bin/env python3
"""End-to-end tests of TLS in `tracecar run` (docs/tls.md), with real processes on loopback:
termination on the inbound listener with ALPN (curl over HTTP/1.1 and HTTP/2), TLS that is not
terminated passing through untouched, origination to configured destinations (certificate,
SNI and name checked), and certificate files loaded again when they change. The PKI is made at
test time by tests/support/make_certs.sh.

Usage: tls_e2e.py --tracecar PATH --protos DIR CASE   (CASE: see CASES below)
"""

import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time

from e2e_support import (SUPPORT, Failure, Skip, check, metric_value, nginx_h2_origin, run_cases,
                         wait_for)
from tracecar_e2e import h2c_origin, nghttp, traceparent_parts

ROUTES = ["--route", "/echo", "--route", "/users/{id}"]


def pki(h):
    """The test PKI in the harness directory: ca, server (localhost, 127.0.0.1), other-ca and
    other-server, wronghost."""
    if shutil.which("openssl") is None:
        raise Skip("openssl is missing (Debian openssl)")
    directory = os.path.join(h.dir, "pki")
    r = subprocess.run(["bash", os.path.join(SUPPORT, "make_certs.sh"), directory],
                       capture_output=True, timeout=120)
    if r.returncode != 0:
        raise Failure("make_certs.sh failed: %s" % r.stderr.decode("utf-8", "replace"))
    return lambda name: os.path.join(directory, name)


def echoed_header(echo, name):
    """A header of a request as an origin echoed it (JSON already decoded), or None."""
    for key, value in echo["headers"]:
        if key.lower() == name:
            return value
    return None


def write_config(h, name, text):
    path = os.path.join(h.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def tls_origin(h, pem, name="tls-origin"):
    p = h.start(name, ["python3", os.path.join(SUPPORT, "tls_origin.py"), "--cert",
                       pem("server.pem"), "--key", pem("server.key"), "--max-seconds", "300"])
    return p.printed_port()


def nginx_h2_tls(h, pem):
    """nginx serving HTTP/2 over TLS (ALPN h2) with the test server certificate: every path
    answers 200 with the path, the traceparent and the TLS server name it received."""
    return nginx_h2_origin(h, "nginx-h2-tls", pem("server.pem"), pem("server.key"),
                           "h2 tls origin $request_uri $http_traceparent $ssl_server_name")


def handshakes(text, end, result):
    return metric_value(text, "tracecar_tls_handshakes_total", {"end": end, "result": result})


def https(h, tc, path, *args):
    return h.curl("--resolve", "localhost:%d:127.0.0.1" % tc.inbound,
                  "https://localhost:%d%s" % (tc.inbound, path), *args)


def tls_termination(h):
    """--tls-cert/--tls-key: TLS on the inbound listener is terminated (ALPN http/1.1 and h2),
    the app gets plain HTTP with the trace context, SERVER spans say https; plain HTTP still
    works on the same port; a client that rejects the certificate is a failed handshake."""
    pem = pki(h)
    origin = h.origin()
    collector, record = h.collector()
    tls_args = ["--tls-cert", pem("server.pem"), "--tls-key", pem("server.key")]
    tc = h.tracecar("frontend", origin, ROUTES + tls_args, collector_port=collector)

    # upstreams.app_protocol "same": ALPN offers only http/1.1, so a client that would pick h2
    # does not reach an app that may not speak it.
    out = https(h, tc, "/echo?q=1", "--cacert", pem("ca.pem"), "-w", "\n%{http_version}")
    text, version = out.rsplit("\n", 1)
    check(version == "1.1", "ALPN agreed on http/1.1: curl spoke HTTP/%s" % version)
    echo = json.loads(text)
    check(echo["version"] == "HTTP/1.1", "the app got HTTP/1.1: %r" % echo["version"])
    traceparent = echoed_header(echo, "traceparent")
    check(traceparent is not None, "the app got a traceparent")
    span = h.wait_spans(record, 1)[0]
    check(span["kind"] == "SPAN_KIND_SERVER", "SERVER span: %r" % span["kind"])
    check(span["attributes"].get("url.scheme") == "https",
          "url.scheme https: %r" % span["attributes"].get("url.scheme"))
    trace_id, parent_id, _ = traceparent_parts(traceparent)
    check(trace_id == span["trace_id"] and parent_id == span["span_id"],
          "the app's parent is the SERVER span")

    # A body bigger than any buffer, both ways, byte-exact through the TLS layer.
    blob = os.path.join(h.dir, "blob")
    data = os.urandom(3 * 1024 * 1024 + 17)
    with open(blob, "wb") as f:
        f.write(data)
    echo = json.loads(https(h, tc, "/echo?nobody=1", "--cacert", pem("ca.pem"),
                            "--data-binary", "@" + blob))
    check(echo["body_length"] == len(data) and
          echo["body_sha256"] == hashlib.sha256(data).hexdigest(), "the body arrived intact")
    big = os.path.join(h.dir, "big")
    https(h, tc, "/big?size=5000000", "--cacert", pem("ca.pem"), "-o", big)
    check(os.path.getsize(big) == 5000000, "a 5 MB answer arrived whole")

    # A request sent a second after its connection's handshake: the span (and the duration
    # metric) start with the request, not with the ClientHello.
    context = ssl.create_default_context(cafile=pem("ca.pem"))
    context.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", tc.inbound), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            time.sleep(1.0)
            s.sendall(b"GET /echo?late=1 HTTP/1.1\r\nHost: localhost\r\n"
                      b"Connection: close\r\n\r\n")
            while s.recv(65536):
                pass
    late = h.wait_spans(record, 1, where=lambda s: s["attributes"].get("url.query") ==
                        "late=REDACTED")[0]
    check(late["end"] - late["start"] < 500 * 1000 * 1000,
          "the span starts with the request: %.3f s" % ((late["end"] - late["start"]) / 1e9))

    # Plain HTTP on the same port is sniffed as before.
    plain = json.loads(h.curl(tc.url("/echo")))
    check(echoed_header(plain, "traceparent") is not None, "plain HTTP still traced")

    # A client that does not trust the certificate: the handshake fails, nothing is forwarded.
    before = h.origin_requests(origin)
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve",
                        "localhost:%d:127.0.0.1" % tc.inbound,
                        "https://localhost:%d/echo" % tc.inbound],
                       capture_output=True, timeout=30)
    check(r.returncode != 0, "curl without the CA must refuse the certificate")
    check(h.origin_requests(origin) == before, "nothing reached the app")

    def counted():
        text = h.metrics(tc)
        ok, failed = handshakes(text, "inbound", "ok"), handshakes(text, "inbound", "failed")
        return (ok, failed) if ok == 4 and failed == 1 else None
    wait_for(counted, 10, "handshakes ok and one failed on /metrics")
    text = h.metrics(tc)
    check(metric_value(text, "tracecar_sniffed_connections_total",
                       {"listener": "inbound", "protocol": "tls"}) == 0,
          "terminated TLS is not counted as passed through")

    # HTTP/2 chosen by ALPN, to an app declared to speak HTTP/2 (h2c).
    h2_app = h2c_origin(h)
    tc2 = h.tracecar("frontend-h2", h2_app, ROUTES + tls_args + ["--app-protocol", "h2"],
                     collector_port=collector)
    body, version = https(h, tc2, "/users/7", "--http2", "--cacert", pem("ca.pem"),
                          "-w", "\n%{http_version}").rsplit("\n", 1)
    check(version == "2", "ALPN chose h2: curl spoke HTTP/%s" % version)
    check(body.startswith("h2 origin /users/7 00-"), "the h2c app answered: %r" % body)
    # An app that speaks only HTTP/1.1, declared so: ALPN offers h2 and the streams of an HTTP/2
    # client are translated (docs/protocol-translation.md).
    tc3 = h.tracecar("frontend-h1", origin, ROUTES + tls_args + ["--app-protocol", "http1"],
                     collector_port=collector)
    body, version = https(h, tc3, "/echo", "--http2", "--cacert", pem("ca.pem"),
                          "-w", "\n%{http_version}").rsplit("\n", 1)
    check(version == "2", "ALPN chose h2 for a translated app: HTTP/%s" % version)
    echo = json.loads(body)
    check(echo["version"] == "HTTP/1.1" and echoed_header(echo, "traceparent") is not None,
          "the HTTP/1.1 app got the request with its context: %r" % echo["version"])

    server = h.wait_spans(record, 1, where=lambda s: s["name"] == "GET /users/{id}")[0]
    check(server["attributes"].get("network.protocol.version") == "2" and
          server["attributes"].get("url.scheme") == "https",
          "h2 SERVER span: %r" % server["attributes"])


def tls_passthrough(h):
    """Without a certificate configured, TLS is never terminated: it passes through to the app as
    opaque bytes (the client sees the app's own certificate) and is counted, with no span."""
    pem = pki(h)
    app = tls_origin(h, pem)
    collector, record = h.collector()
    tc = h.tracecar("passthrough", app, ROUTES, collector_port=collector)
    echo = json.loads(https(h, tc, "/echo", "--cacert", pem("ca.pem")))
    check(echo["server_name"] == "localhost", "the app saw the client's SNI: %r" % echo)
    check(echoed_header(echo, "traceparent") is None,
          "nothing was added inside TLS tracecar does not terminate")
    text = h.metrics(tc)
    check(metric_value(text, "tracecar_sniffed_connections_total",
                       {"listener": "inbound", "protocol": "tls"}) == 1, "one TLS connection")
    check(metric_value(text, "tracecar_opaque_tunnels_total",
                       {"listener": "inbound", "protocol": "tls"}) == 1, "one opaque tunnel")
    check(handshakes(text, "inbound", "ok") == 0, "no handshake of tracecar's own")
    time.sleep(0.5)  # a span would have been exported by now (schedule delay 100 ms)
    check(h.spans(record) == [], "no span for a connection tracecar cannot see into")


def tls_origination(h):
    """upstreams.destinations[].tls: the app calls http://localhost:PORT through the outbound
    listener and tracecar speaks TLS to the destination (port rewritten, SNI sent, the
    certificate verified against the CA file); a destination whose name does not match the
    certificate fails the handshake and is answered 502."""
    pem = pki(h)
    app_origin = h.origin()
    secure = tls_origin(h, pem)
    h2_secure = nginx_h2_tls(h, pem)
    collector, record = h.collector()
    config = write_config(h, "origination.yaml", """
upstreams:
  outbound: host
  destinations:
    - match: localhost:1443
      tls:
        port: %d
        ca_file: %s
    - match: 127.0.0.1:1444
      tls:
        port: %d
        server_name: wrong.example
        ca_file: %s
    - match: localhost:2443
      tls:
        port: %d
        ca_file: %s
    - match: 127.0.0.1:1445
      tls:
        port: %d
        server_name: %s
        ca_file: %s
""" % (secure, pem("ca.pem"), secure, pem("ca.pem"), h2_secure, pem("ca.pem"), secure, "a" * 256,
       pem("ca.pem")))
    tc = h.tracecar("client", app_origin, ROUTES + ["--config", config],
                    collector_port=collector)
    echo = json.loads(h.curl("-x", "http://127.0.0.1:%d" % tc.outbound,
                             "http://localhost:1443/echo?x=1"))
    check(echo["server_name"] == "localhost", "SNI localhost: %r" % echo["server_name"])
    check(echo["alpn"] == "http/1.1", "ALPN http/1.1: %r" % echo["alpn"])
    check(echoed_header(echo, "traceparent") is not None, "the destination got the context")
    client = h.wait_spans(record, 1)[0]
    check(client["kind"] == "SPAN_KIND_CLIENT", "CLIENT span: %r" % client["kind"])
    check(client["attributes"].get("http.response.status_code") == 200,
          "status 200: %r" % client["attributes"])
    check(client["attributes"].get("url.scheme") == "https" and
          client["attributes"].get("url.full", "").startswith("https://localhost:1443/echo"),
          "the request that went out was https: %r" % client["attributes"])

    before = len(h.spans(record))
    status = h.status_of("-x", "http://127.0.0.1:%d" % tc.outbound, "http://127.0.0.1:1444/echo")
    check(status == 502, "a certificate that does not match the server name: 502, got %d" % status)
    failed = h.wait_spans(record, before + 1)[-1]
    check(failed["status"] == "STATUS_CODE_ERROR" and
          failed["attributes"].get("error.type") == "tls_handshake_failed",
          "the CLIENT span is an error of TLS: %r" % failed)
    check(metric_value(h.metrics(tc), "tracecar_requests_rejected_total",
                       {"listener": "outbound", "reason": "502_tls_failed"}) == 1,
          "the 502 is counted as 502_tls_failed")
    text = h.metrics(tc)
    check(handshakes(text, "upstream", "ok") == 1, "one upstream handshake ok")
    check(handshakes(text, "upstream", "failed") == 1, "one upstream handshake failed")

    # HTTP/2 from the app (h2c to the outbound listener), HTTP/2 over TLS to the destination:
    # ALPN offers h2.
    body = nghttp("-H", ":authority: localhost:2443", "http://127.0.0.1:%d/items/3" % tc.outbound)
    check(body.startswith("h2 tls origin /items/3 00-") and body.split()[-1] == "localhost",
          "h2 over TLS with SNI localhost: %r" % body)
    check(handshakes(h.metrics(tc), "upstream", "ok") == 2, "a second upstream handshake")

    # A server name TLS cannot carry (SNI holds at most 255 bytes): the session fails before
    # its first byte, and the request is answered 502 at once, not left to time out.
    started = time.monotonic()
    status = h.status_of("-x", "http://127.0.0.1:%d" % tc.outbound, "http://127.0.0.1:1445/echo")
    check(status == 502, "an unusable server name: 502, got %d" % status)
    check(time.monotonic() - started < 5, "answered at once, not after a timeout")
    check(metric_value(h.metrics(tc), "tracecar_requests_rejected_total",
                       {"listener": "outbound", "reason": "502_tls_failed"}) == 2,
          "counted as 502_tls_failed")


def tls_reload(h):
    """The certificate files are checked every tls.reload_interval: a new pair is served to new
    connections without a restart; a broken one is refused and the previous pair stays."""
    pem = pki(h)
    origin = h.origin()
    cert = os.path.join(h.dir, "live.pem")
    key = os.path.join(h.dir, "live.key")
    shutil.copy(pem("server.pem"), cert)
    shutil.copy(pem("server.key"), key)
    config = write_config(h, "reload.yaml", """
tls:
  inbound:
    cert_file: %s
    key_file: %s
  reload_interval: 200ms
""" % (cert, key))
    tc = h.tracecar("reloading", origin, ROUTES + ["--config", config])
    https(h, tc, "/echo", "--cacert", pem("ca.pem"))

    # Rotate: write new files and rename them into place, as a secret volume does.
    shutil.copy(pem("other-server.pem"), cert + ".new")
    shutil.copy(pem("other-server.key"), key + ".new")
    os.rename(key + ".new", key)
    os.rename(cert + ".new", cert)

    def rotated():
        r = subprocess.run(["curl", "-sS", "--max-time", "5", "--cacert", pem("other-ca.pem"),
                            "--resolve", "localhost:%d:127.0.0.1" % tc.inbound,
                            "https://localhost:%d/echo" % tc.inbound],
                           capture_output=True, timeout=30)
        return r.returncode == 0 or None
    wait_for(rotated, 10, "the rotated certificate to be served")
    text = h.metrics(tc)
    check(metric_value(text, "tracecar_tls_certificate_reloads_total", {"result": "ok"}) == 1,
          "one reload counted")

    # A broken certificate: refused, counted, the previous pair is still served.
    with open(cert + ".new", "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    os.rename(cert + ".new", cert)

    def refused():
        value = metric_value(h.metrics(tc), "tracecar_tls_certificate_reloads_total",
                             {"result": "failed"})
        return value if value and value >= 1 else None
    wait_for(refused, 10, "the broken certificate to be refused")
    https(h, tc, "/echo", "--cacert", pem("other-ca.pem"))
    check("kept the previous certificate" in tc.process.stderr(), "the refusal is logged")


CASES = {f.__name__: f for f in (tls_termination, tls_passthrough, tls_origination, tls_reload)}


def main():
    return run_cases(CASES, __doc__)


if __name__ == "__main__":
    sys.exit(main())
