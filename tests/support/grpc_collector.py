#!/usr/bin/python3
"""A scriptable OTLP/gRPC collector for the exporter's integration tests.

A real grpcio server (Debian's python3-grpcio) implementing
opentelemetry.proto.collector.trace.v1.TraceService/Export with the official schema: the .proto
files in --protos are compiled with `protoc --python_out` at start-up and the service is a
generic handler over the generated classes (no grpc_tools). Listens on 127.0.0.1 port 0 (TLS
with --tls-cert/--tls-key) and prints "PORT <n>" once ready.

Each call consumes one action of --script, a JSON list (the last action repeats):
  {"code": 0}                                  OK
  {"code": 0, "rejected": 1, "error_message": "m"}   OK with partial success
  {"code": 14, "message": "later"}             any status, grpc-message as given
  {"code": 8, "retry_delay": [1, 2]}           status with grpc-status-details-bin holding a
                                               google.rpc.Status with RetryInfo{seconds, nanos}
  {"code": 8, "details": true}                 google.rpc.Status without RetryInfo
  {"sleep": 3.0, ...}                          wait that long before answering

Each call is recorded in --record: N.json (metadata, deadline left, time, decoded spans) and
N.body (the request message's bytes as received).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
PROTOS = [
    "opentelemetry/proto/common/v1/common.proto",
    "opentelemetry/proto/resource/v1/resource.proto",
    "opentelemetry/proto/trace/v1/trace.proto",
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
]


def compile_protos(proto_dir):
    # The generated modules are needed only until they are imported: the directory goes before
    # the server starts, so a collector that is killed leaves nothing behind.
    with tempfile.TemporaryDirectory(prefix="tracecar-grpc-py-") as out:
        subprocess.run(["protoc", "-I", proto_dir, "--python_out", out] + PROTOS, check=True)
        sys.path.insert(0, out)
        try:
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402
        finally:
            sys.path.remove(out)
    return trace_service_pb2


# Hand-written protobuf encoding for google.rpc.Status and RetryInfo (their .proto files are not
# part of the OTLP package).
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_bytes(number, value):
    return varint((number << 3) | 2) + varint(len(value)) + value


def rpc_status(code, message, retry_delay):
    out = field_varint(1, code) + field_bytes(2, message.encode())
    if retry_delay is not None:
        seconds, nanos = retry_delay
        duration = field_varint(1, seconds) + field_varint(2, nanos)
        retry_info = field_bytes(1, duration)
        any_msg = field_bytes(1, b"type.googleapis.com/google.rpc.RetryInfo") + field_bytes(
            2, retry_info)
        out += field_bytes(3, any_msg)
    # An unrelated detail the client must skip.
    other = field_bytes(1, b"type.googleapis.com/google.rpc.DebugInfo") + field_bytes(2, b"")
    out += field_bytes(3, other)
    return out


class Collector:
    def __init__(self, pb2, script, record):
        self.pb2 = pb2
        self.script = script
        self.record = record
        self.lock = threading.Lock()
        self.calls = 0

    def export(self, raw, context):
        with self.lock:
            self.calls += 1
            n = self.calls
            action = self.script[min(n, len(self.script)) - 1]
        request = self.pb2.ExportTraceServiceRequest.FromString(raw)
        spans = []
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    spans.append({
                        "name": span.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "kind": int(span.kind),
                        "scope": ss.scope.name,
                    })
        meta = {
            "metadata": {k: (v if isinstance(v, str) else v.hex())
                         for k, v in context.invocation_metadata()},
            "time_remaining": context.time_remaining(),
            "time": time.monotonic(),
            "peer": context.peer(),
            "spans": spans,
        }
        base = os.path.join(self.record, str(n))
        with open(base + ".body", "wb") as f:
            f.write(raw)
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")

        if action.get("sleep"):
            time.sleep(action["sleep"])
        code = action.get("code", 0)
        if code == 0:
            response = self.pb2.ExportTraceServiceResponse().SerializeToString()
            if "rejected" in action:
                # partial_success = 1 { rejected_spans = 1; error_message = 2 }, by hand: the
                # 0.38 schema predates the field.
                partial = field_varint(1, action["rejected"]) + field_bytes(
                    2, action.get("error_message", "").encode())
                response += field_bytes(1, partial)
            return response
        message = action.get("message", "")
        if "retry_delay" in action or action.get("details"):
            details = rpc_status(code, message, action.get("retry_delay"))
            context.set_trailing_metadata((("grpc-status-details-bin", details),))
        status = next(s for s in grpc.StatusCode if s.value[0] == code)
        context.abort(status, message)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", default='[{"code": 0}]')
    parser.add_argument("--record", required=True)
    parser.add_argument("--protos", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--max-seconds", type=float, default=90)
    args = parser.parse_args()

    pb2 = compile_protos(args.protos)
    collector = Collector(pb2, json.loads(args.script), args.record)
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Export": grpc.unary_unary_rpc_method_handler(
            collector.export, request_deserializer=None, response_serializer=None),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    if args.tls_cert:
        with open(args.tls_key, "rb") as k, open(args.tls_cert, "rb") as c:
            credentials = grpc.ssl_server_credentials(((k.read(), c.read()),))
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("PORT %d" % port, flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait(args.max_seconds)
    server.stop(0)


if __name__ == "__main__":
    main()
