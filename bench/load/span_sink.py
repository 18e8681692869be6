#!/usr/bin/env python3
"""An OTLP/HTTP trace sink for the load benchmark: it only counts the spans it receives.

Listens on 127.0.0.1 (port 0 unless --port), HTTP/1.1 with keep-alive, and prints "PORT <n>"
once listening. Every POST is answered 200 with an empty body after its spans are counted:
the body is a protobuf ExportTraceServiceRequest (gzip-decoded when so encoded), walked by
hand on the wire format (ResourceSpans = 1 > ScopeSpans = 2 > Span = 2), so no schema or
protobuf package is needed. GET /count answers "<spans> <export requests>\n". On SIGTERM or
SIGINT it prints "spans <n> requests <n> bad <n>" and exits.

Python standard library only; one thread, asyncio.
"""

import argparse
import asyncio
import gzip
import os
import signal
import sys

MAX_BODY = 64 << 20


class Totals:
    spans = 0
    requests = 0
    bad = 0  # bodies that did not parse as an ExportTraceServiceRequest


def read_varint(buf, pos, end):
    result = 0
    shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def fields(buf, pos, end):
    """Yields (field number, start, end) of each length-delimited field; skips the others."""
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        wire = key & 7
        if wire == 2:
            length, pos = read_varint(buf, pos, end)
            if pos + length > end:
                raise ValueError("field past the end")
            yield key >> 3, pos, pos + length
            pos += length
        elif wire == 0:
            _, pos = read_varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
    if pos != end:
        raise ValueError("truncated message")


def count_spans(body):
    count = 0
    for number, start, end in fields(body, 0, len(body)):
        if number != 1:  # resource_spans
            continue
        for number2, start2, end2 in fields(body, start, end):
            if number2 != 2:  # scope_spans
                continue
            for number3, _, _ in fields(body, start2, end2):
                if number3 == 2:  # spans
                    count += 1
    return count


async def read_body(reader, headers):
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readline()
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ValueError("body too large")
    return await reader.readexactly(length) if length else b""


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await read_body(reader, headers)
            payload = b""
            if method == "GET" and target.startswith("/count"):
                payload = b"%d %d\n" % (Totals.spans, Totals.requests)
            elif method == "POST":
                Totals.requests += 1
                try:
                    if headers.get("content-encoding", "").lower() == "gzip":
                        body = gzip.decompress(body)
                    Totals.spans += count_spans(body)
                except (ValueError, OSError, EOFError):
                    Totals.bad += 1
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         b"%s\r\n%s" % (len(payload), b"Connection: close\r\n" if close else b"",
                                        payload))
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


def report_and_exit():
    sys.stdout.write("spans %d requests %d bad %d\n" % (Totals.spans, Totals.requests, Totals.bad))
    sys.stdout.flush()
    os._exit(0)  # open keep-alive connections need no goodbye


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = await asyncio.start_server(serve, "127.0.0.1", args.port, limit=1 << 16)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    sys.stdout.write("PORT %d\n" % server.sockets[0].getsockname()[1])
    sys.stdout.flush()
    await stop
    report_and_exit()


if __name__ == "__main__":
    asyncio.run(main())
