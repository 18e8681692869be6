#!/usr/bin/python3
"""A gRPC server for the HTTP/2 data path tests: generic handlers, no generated code.

Service test.Echo, every message raw bytes:
  Unary(b)            -> b
  ServerStream(n)     -> n messages "item-<i>" (n as ASCII), every 10 ms
  Status(code)        -> aborts with that code after sending initial metadata (trailers)
  TrailersOnly(code)  -> aborts with that code before anything (a trailers-only response)
  Sleep(seconds)      -> sleeps, then "done"
  Big(n)              -> n bytes
  Endless(_)          -> a message every 20 ms until the client cancels (counted)
  Stats(_)            -> JSON {"cancelled": <Endless calls ended by a cancel>}
Prints "PORT <n>" once listening; --stop-after-first-endless stops the server with a grace
period once an Endless call has sent 5 messages (a GOAWAY while a stream is open).
"""
import argparse
import json
import sys
import threading
import time
from concurrent import futures

import grpc

cancelled = 0
lock = threading.Lock()
server_ref = {}
args = None


def ident(b):
    return b


def unary(request, context):
    return request


def server_stream(request, context):
    n = int(request.decode() or "0")
    for i in range(n):
        yield ("item-%d" % i).encode()
        time.sleep(0.01)


def status(request, context):
    context.send_initial_metadata((("x-test", "status"),))
    code = int(request.decode())
    context.abort(grpc.StatusCode([c for c in grpc.StatusCode if c.value[0] == code][0]),
                  "status %d" % code)


def trailers_only(request, context):
    code = int(request.decode())
    context.abort(grpc.StatusCode([c for c in grpc.StatusCode if c.value[0] == code][0]),
                  "status %d" % code)


def sleep(request, context):
    time.sleep(float(request.decode()))
    return b"done"


def big(request, context):
    return b"x" * int(request.decode())


def endless(request, context):
    global cancelled
    i = 0
    finished = False
    try:
        while context.is_active():
            yield ("tick-%d" % i).encode()
            i += 1
            if i == 5 and args.stop_after_first_endless:
                threading.Thread(target=lambda: server_ref["server"].stop(10)).start()
            if args.stop_after_first_endless and i >= 40:
                finished = True
                return
            time.sleep(0.02)
    finally:
        # A cancel shows either as the call turning inactive between two messages or as the
        # generator being closed at its yield: both count.
        if not finished:
            with lock:
                cancelled += 1


def stats(request, context):
    with lock:
        return json.dumps({"cancelled": cancelled}).encode()


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--stop-after-first-endless", action="store_true")
    args = parser.parse_args()
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, ident, ident),
        "Status": grpc.unary_unary_rpc_method_handler(status, ident, ident),
        "TrailersOnly": grpc.unary_unary_rpc_method_handler(trailers_only, ident, ident),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep, ident, ident),
        "Big": grpc.unary_unary_rpc_method_handler(big, ident, ident),
        "Endless": grpc.unary_stream_rpc_method_handler(endless, ident, ident),
        "Stats": grpc.unary_unary_rpc_method_handler(stats, ident, ident),
    }
    options = [("grpc.max_send_message_length", 64 << 20),
               ("grpc.max_receive_message_length", 64 << 20)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=options)
    server_ref["server"] = server
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()
    server.wait_for_termination(timeout=args.max_seconds)


if __name__ == "__main__":
    main()
