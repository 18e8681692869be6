#!/usr/bin/env python3
"""The apps of transparent_test.py's pods: plain programs that know nothing of tracecar.

  http PORT             HTTP server on [::]:PORT (IPv4 too). GET /info answers what it saw
                        (Host, headers, client and local address); GET /call?to=HOST:PORT calls
                        http://HOST:PORT/info with the headers it got and answers both sides.
  echo PORT             TCP server: echoes until the client's FIN, then sends its own.
  greet PORT            TCP server that speaks first ("220 ready"), then echoes.
  tls PORT CERT KEY     TLS server: echoes until the client closes.
  echo-client HOST PORT N       sends N binary bytes, FIN, reads the echo: "OK <peer>" when exact
  greet-client HOST PORT        waits for the greeting, sends a line, reads it back
  tls-client HOST PORT CA N     TLS (verifying "localhost" with CA), N bytes back and forth

Servers print READY once listening. Python standard library only.
"""

import http.client
import http.server
import json
import socket
import socketserver
import ssl
import sys
import threading
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
              "upgrade", "host", "content-length"}


def dual_stack(port):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    sock.listen(64)
    return sock


def plain(address):
    """'::ffff:127.0.0.1' -> '127.0.0.1'; IPv6 in brackets with the port."""
    host, port = address[0], address[1]
    if host.startswith("::ffff:"):
        host = host[7:]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/info":
            self.answer({"host": self.headers.get("Host"),
                         "headers": {k.lower(): v for k, v in self.headers.items()},
                         "client": plain(self.client_address),
                         "local": plain(self.connection.getsockname())})
            return
        if url.path == "/call":
            to = urllib.parse.parse_qs(url.query)["to"][0]
            host, _, port = to.rpartition(":")
            host = host.strip("[]")
            forwarded = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("GET", "/info", headers=forwarded)
            peer = plain(conn.sock.getpeername())
            response = conn.getresponse()
            body = json.loads(response.read())
            conn.close()
            self.answer({"status": response.status, "peer": peer, "callee": body})
            return
        self.send_error(404)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve_stream(port, handle, wrap=None):
    listener = dual_stack(port)
    print("READY", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle_safely, args=(conn, handle, wrap), daemon=True).start()


def handle_safely(conn, handle, wrap):
    try:
        if wrap is not None:
            conn = wrap(conn)
        handle(conn)
    except OSError:
        pass
    finally:
        conn.close()


def echo(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            conn.shutdown(socket.SHUT_WR)
            return
        conn.sendall(data)


def greet(conn):
    conn.sendall(b"220 ready\r\n")
    echo(conn)


def tls_echo(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def pattern(n):
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def connect(host, port):
    return socket.create_connection((host, int(port)), timeout=10)


def echo_client(host, port, n):
    data = pattern(int(n))
    sock = connect(host, port)
    peer = plain(sock.getpeername())
    writer = threading.Thread(target=lambda: (sock.sendall(data), sock.shutdown(socket.SHUT_WR)))
    writer.start()
    got = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    writer.join()
    print(("OK %s" % peer) if bytes(got) == data else "MISMATCH %d of %d" % (len(got), len(data)))


def greet_client(host, port):
    sock = connect(host, port)
    greeting = sock.recv(100)
    sock.sendall(b"QUIT\r\n")
    back = b""
    while len(back) < 6:
        chunk = sock.recv(100)
        if not chunk:
            break
        back += chunk
    print("OK" if greeting == b"220 ready\r\n" and back == b"QUIT\r\n" else
          "MISMATCH %r %r" % (greeting, back))


def tls_client(host, port, ca, n):
    context = ssl.create_default_context(cafile=ca)
    data = pattern(int(n))
    with context.wrap_socket(connect(host, port), server_hostname="localhost") as sock:
        sock.sendall(data)
        got = bytearray()
        while len(got) < len(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        print(("OK %s" % sock.version()) if bytes(got) == data else
              "MISMATCH %d of %d" % (len(got), len(data)))


def main(argv):
    mode = argv[1]
    if mode == "http":
        server = Server(("::", int(argv[2])), Handler)
        print("READY", flush=True)
        server.serve_forever()
    elif mode == "echo":
        serve_stream(int(argv[2]), echo)
    elif mode == "greet":
        serve_stream(int(argv[2]), greet)
    elif mode == "tls":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(argv[3], argv[4])
        serve_stream(int(argv[2]), tls_echo,
                     lambda conn: context.wrap_socket(conn, server_side=True))
    elif mode == "echo-client":
        echo_client(*argv[2:5])
    elif mode == "greet-client":
        greet_client(*argv[2:4])
    elif mode == "tls-client":
        tls_client(*argv[2:6])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
