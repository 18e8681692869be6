#!/usr/bin/python3
"""A gRPC client for the HTTP/2 data path tests: runs one scenario against --target and prints
one JSON object on stdout. Generic stubs (channel.unary_unary...), raw bytes messages."""
import argparse
import json
import sys
import time

import grpc


def ident(b):
    return b


def code_of(error):
    return error.code().value[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("scenario")
    parser.add_argument("values", nargs="*")
    a = parser.parse_args()
    options = [("grpc.max_send_message_length", 64 << 20),
               ("grpc.max_receive_message_length", 64 << 20),
               ("grpc.enable_retries", 0)]
    channel = grpc.insecure_channel(a.target, options=options)
    unary = lambda m: channel.unary_unary("/test.Echo/" + m, ident, ident)
    out = {}
    if a.scenario == "unary":
        reply, call = unary("Unary").with_call(b"hello", timeout=20)
        out = {"reply": reply.decode(), "code": call.code().value[0]}
    elif a.scenario == "stream":
        n = int(a.values[0])
        items = [m.decode() for m in channel.unary_stream("/test.Echo/ServerStream", ident, ident)(
            str(n).encode(), timeout=20)]
        out = {"items": items}
    elif a.scenario in ("status", "trailers_only"):
        method = "Status" if a.scenario == "status" else "TrailersOnly"
        codes = {}
        for value in a.values:
            try:
                unary(method)(value.encode(), timeout=20)
                codes[value] = 0
            except grpc.RpcError as e:
                codes[value] = code_of(e)
        out = {"codes": codes}
    elif a.scenario == "deadline":
        # values: the client's deadline in seconds (default 0.5) against a 3-second Sleep
        deadline = float(a.values[0]) if a.values else 0.5
        try:
            unary("Sleep")(b"3", timeout=deadline)
            out = {"code": 0}
        except grpc.RpcError as e:
            out = {"code": code_of(e)}
    elif a.scenario == "big":
        n = int(a.values[0])
        payload = b"y" * n
        reply = unary("Unary")(payload, timeout=30)
        big = unary("Big")(str(n).encode(), timeout=30)
        out = {"echo": len(reply), "echo_ok": reply == payload, "big": len(big)}
    elif a.scenario == "cancel":
        call = channel.unary_stream("/test.Echo/Endless", ident, ident)(b"", timeout=20)
        got = 0
        for _ in call:
            got += 1
            if got == 3:
                call.cancel()
                break
        out = {"got": got}
        # The server notices the cancel asynchronously.
        for _ in range(100):
            stats = json.loads(unary("Stats")(b"", timeout=5).decode())
            if stats["cancelled"] >= 1:
                break
            time.sleep(0.05)
        out["cancelled"] = stats["cancelled"]
    elif a.scenario == "endless_until_end":
        got = 0
        code = 0
        try:
            for _ in channel.unary_stream("/test.Echo/Endless", ident, ident)(b"", timeout=20):
                got += 1
        except grpc.RpcError as e:
            code = code_of(e)
        out = {"got": got, "code": code}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
