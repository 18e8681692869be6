"""Helpers for the end-to-end tests: real tracecar processes, the origin server, the fake
collector, curl, and OTLP payloads decoded by protoc against the official schema.

Every process a Harness starts runs in its own session and is killed (SIGTERM, then SIGKILL)
when the harness closes, whatever happened in the test. It is also killed when the harness
itself dies without closing (ctest's timeout kills it), through setpriv's parent-death signal.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SUPPORT = os.path.join(os.path.dirname(HERE), "support")
TRACE_SERVICE_PROTO = "opentelemetry/proto/collector/trace/v1/trace_service.proto"
EXPORT_REQUEST = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"


class Failure(Exception):
    pass


class Skip(Exception):
    """A case that cannot run here (a program it needs is missing)."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def closed_port():
    """A loopback port nobody listens on (connecting to it is refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def die_with_parent():
    """A prefix for a command line that makes the command killed (SIGKILL) when the process
    that started it dies; empty where setpriv (util-linux) is missing."""
    return ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


class Process:
    def __init__(self, name, argv, env, directory):
        self.name = name
        self.stdout_path = os.path.join(directory, name + ".out")
        self.stderr_path = os.path.join(directory, name + ".err")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(die_with_parent() + list(argv), stdout=out,
                                          stderr=err, env=env,
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def printed_port(self, timeout=10):
        def find():
            m = re.search(r"^PORT (\d+)$", self.stdout(), re.M)
            if m:
                return int(m.group(1))
            if self.popen.poll() is not None:
                raise Failure("%s exited (%s): %s" % (self.name, self.popen.returncode,
                                                       self.stderr()))
            return None
        return wait_for(find, timeout, self.name + " to print its port")

    def signal(self, signum):
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("%s did not exit within %d s" % (self.name, timeout))

    def kill(self):
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(3)
        except (subprocess.TimeoutExpired, ProcessLookupError, PermissionError):
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.popen.wait(3)


class Tracecar:
    def __init__(self, process, ready):
        self.process = process
        self.inbound = ready["inbound"]
        self.outbound = ready["outbound"]
        self.admin = ready["admin"]

    def url(self, path, listener="inbound"):
        return "http://127.0.0.1:%d%s" % (getattr(self, listener), path)


class Harness:
    def __init__(self, tracecar_binary, protos_dir):
        self.tracecar_binary = tracecar_binary
        self.protos_dir = protos_dir
        self.dir = tempfile.mkdtemp(prefix="tracecar-e2e-")
        self.processes = []

    def close(self):
        for p in reversed(self.processes):
            p.kill()

    def dump_logs(self):
        for p in self.processes:
            for path in (p.stdout_path, p.stderr_path):
                try:
                    with open(path, "rb") as f:
                        text = f.read()[-4000:].decode("utf-8", "replace")
                except OSError:
                    continue
                if text.strip():
                    print("---- %s ----\n%s" % (os.path.basename(path), text))

    def start(self, name, argv, env=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        p = Process(name, argv, full_env, self.dir)
        self.processes.append(p)
        return p

    def origin(self, name="origin"):
        p = self.start(name, ["python3", os.path.join(SUPPORT, "origin_server.py"),
                              "--max-seconds", "300"])
        return p.printed_port()

    def collector(self, name="collector"):
        record = os.path.join(self.dir, name + "-record")
        os.makedirs(record)
        p = self.start(name, ["python3", os.path.join(SUPPORT, "fake_collector.py"),
                              "--record", record, "--max-seconds", "300"])
        return p.printed_port(), record

    def tracecar(self, name, app_port, args=(), env=None, collector_port=None, wrap=()):
        """app_port: the app's port on 127.0.0.1, or "host:port". wrap: a command tracecar's
        command line is appended to (it must exec it)."""
        ready = os.path.join(self.dir, name + ".ready")
        app = app_port if isinstance(app_port, str) else "127.0.0.1:%d" % app_port
        argv = list(wrap) + [self.tracecar_binary, "run", "--inbound", "127.0.0.1:0", "--outbound",
                "127.0.0.1:0", "--admin", "127.0.0.1:0", "--app", app,
                "--workers", "2", "--ready-file", ready] + list(args)
        full_env = {"OTEL_SERVICE_NAME": name, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        if collector_port is not None:
            full_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:%d" % collector_port
        full_env.update(env or {})
        p = self.start(name, argv, full_env)

        def is_ready():
            if p.popen.poll() is not None:
                raise Failure("%s exited (%s): %s" % (name, p.popen.returncode, p.stderr()))
            try:
                with open(ready) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
        return Tracecar(p, wait_for(is_ready, 15, name + " to listen"))

    def curl(self, *args, check_rc=True):
        r = subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args),
                           capture_output=True, timeout=30)
        if check_rc and r.returncode != 0:
            raise Failure("curl %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                       r.stderr.decode("utf-8", "replace")))
        return r.stdout.decode("utf-8", "replace")

    def status_of(self, *args):
        return int(self.curl("-o", "/dev/null", "-w", "%{http_code}", *args))

    # ---- collected spans ---------------------------------------------------------------------

    def spans(self, record_dir):
        """Every span the collector has recorded, decoded by protoc."""
        out = []
        names = sorted((n for n in os.listdir(record_dir) if n.endswith(".json")),
                       key=lambda n: int(n.split(".")[0]))
        for name in names:
            with open(os.path.join(record_dir, name)) as f:
                meta = json.load(f)
            check(meta.get("path") == "/v1/traces", "export to %s" % meta.get("path"))
            body = os.path.join(record_dir, name[:-5] + ".body")
            out.extend(decode_export_request(body, self.protos_dir))
        return out

    def wait_spans(self, record_dir, count, timeout=15, where=lambda s: True):
        def enough():
            found = [s for s in self.spans(record_dir) if where(s)]
            return found if len(found) >= count else None
        return wait_for(enough, timeout, "%d span(s) at the collector" % count)

    def raw_request(self, port, data, timeout=10):
        """Sends bytes on a fresh connection; returns everything read until the peer closes or
        stays quiet for a second after answering."""
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            s.settimeout(1.0)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    if chunks:
                        break
                    continue
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)

    def origin_requests(self, origin_port):
        return json.loads(self.curl("http://127.0.0.1:%d/stats" % origin_port))["requests"]

    def metrics(self, tracecar):
        return self.curl(tracecar.url("/metrics", "admin"))


def status_line(response):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return int(m.group(1)) if m else None


def metric_value(text, name, labels):
    """The value of the sample name{labels...} (labels: a dict that must all match)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


# ---- protoc text format ----------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<open>\{)|(?P<close>\})|(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:?'
                    r'|"(?P<string>(?:[^"\\]|\\.)*)"|(?P<scalar>[^\s{}"]+))', re.S)


def _unescape(text):
    out = bytearray()
    i = 0
    simple = {"n": 10, "r": 13, "t": 9, '"': 34, "'": 39, "\\": 92, "a": 7, "b": 8, "f": 12,
              "v": 11, "?": 63}
    raw = text.encode("utf-8")
    while i < len(raw):
        c = raw[i]
        if c != 92:
            out.append(c)
            i += 1
            continue
        n = chr(raw[i + 1])
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n in "01234567":
            j = i + 1
            while j < len(raw) and j < i + 4 and chr(raw[j]) in "01234567":
                j += 1
            out.append(int(raw[i + 1:j], 8) & 0xFF)
            i = j
        elif n == "x":
            j = i + 2
            while j < len(raw) and j < i + 4 and chr(raw[j]) in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(raw[i + 2:j], 16))
            i = j
        else:
            out.append(raw[i + 1])
            i += 2
    return bytes(out)


def parse_text_format(text):
    """protoc's text format as nested dicts of lists: {"field": [value or dict, ...]}."""
    pos = 0
    stack = [{}]
    pending = None
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise Failure("cannot parse protoc output at %r" % text[pos:pos + 40])
        pos = m.end()
        if m.group("open"):
            child = {}
            stack[-1].setdefault(pending, []).append(child)
            stack.append(child)
            pending = None
        elif m.group("close"):
            stack.pop()
        elif m.group("name") is not None and pending is None:
            pending = m.group("name")
        else:
            if m.group("string") is not None:
                value = _unescape(m.group("string"))
            else:
                value = m.group("name") if m.group("name") is not None else m.group("scalar")
            stack[-1].setdefault(pending, []).append(value)
            pending = None
    return stack[0]


def _attributes(items):
    out = {}
    for a in items or []:
        key = a["key"][0].decode("utf-8")
        value = a.get("value", [{}])[0]
        if "string_value" in value:
            out[key] = value["string_value"][0].decode("utf-8", "replace")
        elif "int_value" in value:
            out[key] = int(value["int_value"][0])
        elif "bool_value" in value:
            out[key] = value["bool_value"][0] == "true"
        elif "double_value" in value:
            out[key] = float(value["double_value"][0])
        else:
            out[key] = value
    return out


def decode_export_request(body_path, protos_dir):
    with open(body_path, "rb") as f:
        r = subprocess.run(["protoc", "--proto_path=" + protos_dir, "--decode=" + EXPORT_REQUEST,
                            os.path.join(protos_dir, TRACE_SERVICE_PROTO)], stdin=f,
                           capture_output=True, timeout=30)
    if r.returncode != 0:
        raise Failure("protoc could not decode %s: %s" % (body_path, r.stderr.decode()))
    message = parse_text_format(r.stdout.decode("utf-8"))
    spans = []
    for rs in message.get("resource_spans", []):
        resource = _attributes(rs.get("resource", [{}])[0].get("attributes"))
        for ss in rs.get("scope_spans", []):
            scope = ss.get("scope", [{}])[0]
            for s in ss.get("spans", []):
                status = s.get("status", [{}])[0]
                links = [{
                    "trace_id": l.get("trace_id", [b""])[0].hex(),
                    "span_id": l.get("span_id", [b""])[0].hex(),
                    "trace_state": l.get("trace_state", [b""])[0].decode("utf-8", "replace"),
                    "flags": int(l.get("flags", ["0"])[0]),
                } for l in s.get("links", [])]
                spans.append({
                    "service": resource.get("service.name"),
                    "scope": scope.get("name", [b""])[0].decode(),
                    "trace_id": s.get("trace_id", [b""])[0].hex(),
                    "span_id": s.get("span_id", [b""])[0].hex(),
                    "parent_span_id": s.get("parent_span_id", [b""])[0].hex(),
                    "name": s.get("name", [b""])[0].decode("utf-8", "replace"),
                    "kind": s.get("kind", ["SPAN_KIND_UNSPECIFIED"])[0],
                    "start": int(s.get("start_time_unix_nano", ["0"])[0]),
                    "end": int(s.get("end_time_unix_nano", ["0"])[0]),
                    "attributes": _attributes(s.get("attributes")),
                    "status": status.get("code", ["STATUS_CODE_UNSET"])[0],
                    "status_message": status.get("message", [b""])[0].decode("utf-8", "replace"),
                    "trace_state": s.get("trace_state", [b""])[0].decode("utf-8", "replace"),
                    "flags": int(s.get("flags", ["0"])[0]),
                    "links": links,
                })
    return spans


def ensure_protos(dest):
    if os.environ.get("TRACECAR_OTLP_PROTO_DIR"):
        return os.environ["TRACECAR_OTLP_PROTO_DIR"]
    subprocess.run(["bash", os.path.join(SUPPORT, "otlp_protos.sh"), dest], check=True,
                   timeout=300)
    return dest


def nginx_h2_origin(h, name, cert=None, key=None, body="h2 origin $request_uri $http_traceparent"):
    """nginx (Debian) on a free loopback port serving HTTP/2: h2c with prior knowledge, or h2 over
    TLS (ALPN) when cert and key are given. Every path answers 200 with body (nginx variables
    allowed) and a newline. Returns the port."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        raise Skip("nginx is missing (scripts/install-deps.sh installs it)")
    port = closed_port()
    prefix = os.path.join(h.dir, name)
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    listen = "listen 127.0.0.1:%d %shttp2;" % (port, "ssl " if cert else "")
    if cert:
        listen += " ssl_certificate %s; ssl_certificate_key %s;" % (cert, key)
    with open(conf, "w") as f:
        f.write("worker_processes 1;\ndaemon off;\nmaster_process off;\n"
                "pid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
                "events { worker_connections 256; }\nhttp {\n  access_log off;\n"
                "  client_body_temp_path %s/b; proxy_temp_path %s/p; fastcgi_temp_path %s/f;\n"
                "  uwsgi_temp_path %s/u; scgi_temp_path %s/s;\n"
                "  server { %s\n"
                "    location / { default_type text/plain;\n"
                "      return 200 \"%s\\n\"; } }\n}\n"
                % ((prefix,) * 7 + (listen, body)))
    h.start(name, [nginx, "-e", os.path.join(prefix, "error.log"), "-p", prefix + "/", "-c", conf])

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return None
    wait_for(listening, 10, name + " to listen")
    return port


def run_cases(cases, description):
    """The command line of an e2e test file: --tracecar PATH [--protos DIR] CASE (--protos: where
    the OTLP .proto files are, for cases that decode spans). Prints PASS, FAIL (with the logs of
    every process started) or SKIP and the case name, which ctest matches. Returns the exit
    code."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tracecar", required=True)
    parser.add_argument("--protos")
    parser.add_argument("case", choices=sorted(cases))
    args = parser.parse_args()
    harness = Harness(args.tracecar, ensure_protos(args.protos) if args.protos else None)
    started = time.monotonic()
    try:
        cases[args.case](harness)
    except Skip as e:
        harness.close()
        print("SKIP %s: %s" % (args.case, e))
        shutil.rmtree(harness.dir, ignore_errors=True)
        return 0
    except Failure as e:
        harness.close()
        harness.dump_logs()
        print("FAIL %s: %s" % (args.case, e))
        return 1
    finally:
        harness.close()
    shutil.rmtree(harness.dir, ignore_errors=True)  # kept for a failure's post-mortem
    print("PASS %s (%.1f s)" % (args.case, time.monotonic() - started))
    return 0
