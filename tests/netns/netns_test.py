#!/usr/bin/env python3
"""Transparent interception with real network namespaces as pods.

Pod A (192.0.2.1/24, 2001:db8::1/64) and pod B (192.0.2.2/24, 2001:db8::2/64) are joined by a
veth pair. `tracecar init-iptables` runs in pod B; original_dst_probe (built from
proxy/original_destination.h) stands in for B's inbound (15006), outbound (15001) and admin
(15000) listeners and its app (8080, 8081), and for A's servers (9090, 9091). Every probe server
answers a connection with the original destination it recovered, so each check is one line.

Usage: netns_test.py --tracecar PATH --probe PATH CASE
Prints "PASS CASE", "SKIP CASE: why" (not root, no `ip netns`, no iptables or setpriv) or
"FAIL CASE: what".
"""

import argparse
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

A_V4, A_V6, A_MAC = "192.0.2.1", "2001:db8::1", "02:00:00:00:02:01"
B_V4, B_V6, B_MAC = "192.0.2.2", "2001:db8::2", "02:00:00:00:02:02"
APP_UID = 1000   # the app in pod B: anything but the proxy uid
PROXY_UID = 1337
STEP_TIMEOUT = 10  # seconds for any one command
B_SERVERS = ["inbound:15006", "outbound:15001", "admin:15000", "app:8080", "app2:8081"]
# 7000 stands for a listener tracecar has but the rules do not know of (a mismatched port):
# a connection redirected from it must be recognised as tracecar itself.
B_OWN = "15006,15001,15000,7000"
A_SERVERS = ["peer:9090", "peer2:9091"]


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def expect_reply(got, want, what):
    check(got == want, "%s: want %r, got %r" % (what, want, got))


def normalise_save(text):
    """iptables-save output without its timestamp comments and with packet counters zeroed."""
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    return "\n".join(re.sub(r"\[\d+:\d+\]$", "[0:0]", l) for l in lines)


class Pods:
    """Two namespaces, deleted (with every process started in them) when the block ends."""

    def __init__(self, tracecar, probe, case):
        self.work = tempfile.mkdtemp(prefix="tracecar-netns-")
        os.chmod(self.work, 0o755)
        # Copies the app's uid can run, wherever the build tree is.
        self.tracecar = os.path.join(self.work, "tracecar")
        self.probe = os.path.join(self.work, "original_dst_probe")
        shutil.copy(tracecar, self.tracecar)
        shutil.copy(probe, self.probe)
        for path in (self.tracecar, self.probe):
            os.chmod(path, 0o755)
        tag = "%s-%d" % (case.replace("_", "")[:12], os.getpid())
        self.a = "tcar-a-" + tag
        self.b = "tcar-b-" + tag
        self.servers = []
        self.created = []

    def __enter__(self):
        try:
            for ns in (self.a, self.b):
                self.ip("netns", "add", ns)
                self.created.append(ns)
            # Made inside A with its peer in B: nothing appears in the root namespace.
            self.ip("-n", self.a, "link", "add", "eth0", "address", A_MAC, "type", "veth",
                    "peer", "name", "eth0", "address", B_MAC, "netns", self.b)
            pods = ((self.a, A_V4, A_V6, B_V6, B_MAC), (self.b, B_V4, B_V6, A_V6, A_MAC))
            for ns, v4, v6, peer_v6, peer_mac in pods:
                self.ip("-n", ns, "addr", "add", v4 + "/24", "dev", "eth0")
                self.ip("-n", ns, "addr", "add", v6 + "/64", "dev", "eth0", "nodad")
                self.ip("-n", ns, "link", "set", "lo", "up")
                self.ip("-n", ns, "link", "set", "eth0", "up")
                # A fixed neighbour entry: the first IPv6 neighbour exchange on a fresh link can
                # cost a SYN retransmission (a second).
                self.ip("-n", ns, "neigh", "replace", peer_v6, "lladdr", peer_mac, "dev", "eth0",
                        "nud", "permanent")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for proc in self.servers:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self.servers = []
        for ns in self.created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=STEP_TIMEOUT)
        self.created = []
        shutil.rmtree(self.work, ignore_errors=True)

    def ip(self, *args):
        result = subprocess.run(["ip"] + list(args), capture_output=True, text=True,
                                timeout=STEP_TIMEOUT)
        check(result.returncode == 0,
              "ip %s: %s" % (" ".join(args), result.stderr.strip()))

    def run(self, ns, argv, uid=None, gid=None):
        prefix = ["ip", "netns", "exec", ns]
        if uid is not None:
            gid = uid if gid is None else gid
            prefix += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups"]
        return subprocess.run(prefix + argv, capture_output=True, text=True, timeout=STEP_TIMEOUT)

    def init(self, *args, uid=None, path=None):
        argv = [self.tracecar, "init-iptables"] + list(args)
        if path is not None:
            argv = ["/usr/bin/env", "PATH=" + path] + argv
        return self.run(self.b, argv, uid=uid)

    def init_ok(self, *args):
        result = self.init(*args)
        check(result.returncode == 0, "init-iptables %s exited %d: %s" %
              (" ".join(args), result.returncode, result.stderr.strip()))
        return result

    def save(self, family=4):
        tool = "iptables-save" if family == 4 else "ip6tables-save"
        result = self.run(self.b, [tool, "-t", "nat"])
        check(result.returncode == 0, "%s: %s" % (tool, result.stderr.strip()))
        return normalise_save(result.stdout)

    def serve(self, ns, specs, own=None):
        argv = ["ip", "netns", "exec", ns, self.probe, "serve"] + specs
        if own:
            argv += ["--own", own]
        # Killed with this script if it dies without cleaning up (ctest's timeout).
        proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--"] + argv,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.servers.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], STEP_TIMEOUT)
        line = proc.stdout.readline() if ready else ""
        check(line.strip() == "READY",
              "probe server in %s did not start: %r %s" % (ns, line, proc.stderr.read()
                                                           if proc.poll() is not None else ""))

    def serve_all(self):
        self.serve(self.b, B_SERVERS, B_OWN)
        self.serve(self.a, A_SERVERS)

    def connect(self, ns, host, port, uid=None, gid=None):
        result = self.run(ns, [self.probe, "connect", host, str(port)], uid=uid, gid=gid)
        return result.stdout.strip()

    def from_a(self, host, port):
        return self.connect(self.a, host, port)

    def from_app(self, host, port, gid=None):
        return self.connect(self.b, host, port, uid=APP_UID, gid=gid)


def inbound(address):
    return "inbound orig=%s own=no" % address


def outbound(address):
    return "outbound orig=%s own=no" % address


def case_inbound_redirect(pods):
    pods.init_ok()
    pods.serve_all()
    expect_reply(pods.from_a(B_V4, 8080), inbound(B_V4 + ":8080"), "A -> B:8080 (IPv4)")
    expect_reply(pods.from_a(B_V6, 8080), inbound("[%s]:8080" % B_V6), "A -> B:8080 (IPv6)")
    expect_reply(pods.from_a(B_V4, 8081), inbound(B_V4 + ":8081"), "A -> B:8081")
    # tracecar's own ports are never redirected.
    expect_reply(pods.from_a(B_V4, 15000), "admin orig=none", "A -> B admin port")
    expect_reply(pods.from_a(B_V6, 15001), "outbound orig=none", "A -> B outbound port")
    expect_reply(pods.from_a(B_V4, 15006), "inbound orig=none", "A -> B inbound port")


def case_outbound_redirect(pods):
    pods.init_ok()
    pods.serve_all()
    expect_reply(pods.from_app(A_V4, 9090), outbound(A_V4 + ":9090"), "app -> A:9090 (IPv4)")
    expect_reply(pods.from_app(A_V6, 9091), outbound("[%s]:9091" % A_V6),
                 "app -> A:9091 (IPv6)")
    # Root is an app process too: only the proxy uid is exempt.
    expect_reply(pods.connect(pods.b, A_V4, 9090), outbound(A_V4 + ":9090"), "root -> A:9090")


def case_proxy_uid_bypass(pods):
    pods.init_ok("--proxy-gid", "2000")
    pods.serve_all()
    for host in (A_V4, A_V6):
        expect_reply(pods.connect(pods.b, host, 9090, uid=PROXY_UID), "peer orig=none",
                     "proxy uid -> %s:9090" % host)
    expect_reply(pods.from_app(A_V4, 9090, gid=2000), "peer orig=none", "proxy gid -> A:9090")
    expect_reply(pods.from_app(A_V4, 9090), outbound(A_V4 + ":9090"), "app -> A:9090")
    # The proxy reaching the app through the pod IP is not redirected either.
    expect_reply(pods.connect(pods.b, B_V4, 8080, uid=PROXY_UID), "app orig=none",
                 "proxy uid -> own pod IP")


def case_exclusions(pods):
    pods.init_ok("--exclude-inbound-ports", "8081", "--exclude-outbound-ports", "9091",
                 "--exclude-outbound-cidrs", A_V6 + "/128")
    pods.serve_all()
    expect_reply(pods.from_a(B_V4, 8081), "app2 orig=none", "A -> B:8081 excluded inbound")
    expect_reply(pods.from_a(B_V6, 8081), "app2 orig=none", "A -> B:8081 excluded (IPv6)")
    expect_reply(pods.from_a(B_V4, 8080), inbound(B_V4 + ":8080"), "A -> B:8080")
    expect_reply(pods.from_app(A_V4, 9091), "peer2 orig=none", "app -> A:9091 excluded port")
    expect_reply(pods.from_app(A_V6, 9090), "peer orig=none", "app -> excluded IPv6 CIDR")
    expect_reply(pods.from_app(A_V4, 9090), outbound(A_V4 + ":9090"), "app -> A:9090 (IPv4)")


def case_inbound_ports(pods):
    pods.init_ok("--inbound-ports", "8080")
    pods.serve_all()
    expect_reply(pods.from_a(B_V4, 8080), inbound(B_V4 + ":8080"), "A -> B:8080 listed")
    expect_reply(pods.from_a(B_V6, 8081), "app2 orig=none", "A -> B:8081 not listed")
    expect_reply(pods.from_app(A_V4, 9090), outbound(A_V4 + ":9090"), "outbound unchanged")


def case_loopback(pods):
    pods.init_ok("--exclude-inbound-ports", "8081")
    pods.serve_all()
    expect_reply(pods.from_app("127.0.0.1", 8080), "app orig=none", "app -> 127.0.0.1")
    expect_reply(pods.from_app("::1", 8080), "app orig=none", "app -> ::1")
    # The app calling its own pod IP goes through lo: an inbound request, never an outbound one.
    expect_reply(pods.from_app(B_V4, 8080), inbound(B_V4 + ":8080"), "app -> own pod IP")
    expect_reply(pods.from_app(B_V6, 8080), inbound("[%s]:8080" % B_V6), "app -> own pod IPv6")
    expect_reply(pods.from_app(B_V4, 8081), "app2 orig=none", "app -> own IP, excluded port")
    expect_reply(pods.from_app(B_V4, 15000), "admin orig=none", "app -> own IP, admin port")


def case_loop_prevention(pods):
    pods.init_ok()
    pods.serve_all()
    expect_reply(pods.from_a(B_V4, 7000), "inbound orig=%s:7000 own=yes" % B_V4,
                 "A -> a port tracecar listens on")
    expect_reply(pods.from_a(B_V6, 7000), "inbound orig=[%s]:7000 own=yes" % B_V6,
                 "A -> a port tracecar listens on (IPv6)")


def case_idempotent(pods):
    pods.init_ok()
    once = (pods.save(4), pods.save(6))
    pods.init_ok()
    twice = (pods.save(4), pods.save(6))
    check(once == twice, "second run changed the rules:\n%s\n---\n%s" % (once[0], twice[0]))
    for family, text in zip((4, 6), once):
        for jump in ("-A PREROUTING -p tcp -j TRACECAR_INBOUND",
                     "-A OUTPUT -p tcp -j TRACECAR_OUTPUT"):
            check(text.count(jump) == 1, "IPv%d: %r appears %d times" %
                  (family, jump, text.count(jump)))
    # New options replace the rules rather than adding to them.
    pods.init_ok("--exclude-inbound-ports", "8081")
    changed = pods.save(4)
    check("--dport 8081 -j RETURN" in changed, "the new exclusion is missing:\n" + changed)
    check(changed.count("-j TRACECAR_INBOUND") == once[0].count("-j TRACECAR_INBOUND"),
          "rerun with other options duplicated jumps:\n" + changed)
    pods.init_ok()
    check((pods.save(4), pods.save(6)) == once, "back to the defaults differs from the first run")


def case_cleanup(pods):
    # Rules that are not ours must survive the cleanup.
    for tool in ("iptables", "ip6tables"):
        for rule in (["-N", "OTHER"], ["-A", "OTHER", "-j", "RETURN"],
                     ["-A", "OUTPUT", "-p", "udp", "-j", "OTHER"]):
            result = pods.run(pods.b, [tool, "-t", "nat"] + rule)
            check(result.returncode == 0, "%s %s: %s" % (tool, rule, result.stderr))
    before = (pods.save(4), pods.save(6))
    pods.init_ok()
    pods.init_ok()
    check(pods.save(4) != before[0], "init-iptables installed nothing")
    result = pods.init_ok("--cleanup")
    check("# IPv4: removed" in result.stdout and "# IPv6: removed" in result.stdout,
          "cleanup output: " + result.stdout)
    after = (pods.save(4), pods.save(6))
    check(after == before, "cleanup left a difference:\nbefore:\n%s\n%s\nafter:\n%s\n%s" %
          (before + after))
    result = pods.init_ok("--cleanup")
    check("no tracecar rules to remove" in result.stdout, "second cleanup: " + result.stdout)
    check((pods.save(4), pods.save(6)) == before, "second cleanup changed something")


def case_dry_run(pods):
    before = (pods.save(4), pods.save(6))
    result = pods.init_ok("--dry-run", "--exclude-outbound-cidrs", "10.0.0.0/8,fd00::/8")
    check((pods.save(4), pods.save(6)) == before, "--dry-run changed the rules")
    sections = result.stdout.split("# IPv6: ")
    check(len(sections) == 2, "dry run output:\n" + result.stdout)
    # What the dry run prints is exactly what iptables-save then shows of ours.
    pods.init_ok("--exclude-outbound-cidrs", "10.0.0.0/8,fd00::/8")
    for family, section in zip((4, 6), sections):
        printed = {l for l in section.splitlines() if "TRACECAR" in l and not l.startswith("#")}
        saved = {l for l in pods.save(family).splitlines() if "TRACECAR" in l}
        check(printed == saved, "IPv%d dry run vs installed:\n%s\n---\n%s" %
              (family, sorted(printed), sorted(saved)))
    installed = (pods.save(4), pods.save(6))
    result = pods.init_ok("--cleanup", "--dry-run")
    check("-X TRACECAR_OUTPUT" in result.stdout, "cleanup dry run: " + result.stdout)
    check((pods.save(4), pods.save(6)) == installed, "--cleanup --dry-run changed the rules")


def case_ipv6_off(pods):
    before6 = pods.save(6)
    pods.init_ok("--ipv6", "off")
    check("TRACECAR" in pods.save(4), "IPv4 rules missing")
    check(pods.save(6) == before6, "--ipv6 off touched ip6tables")
    result = pods.init("--ipv6", "maybe")
    check(result.returncode == 2 and "--ipv6: \"maybe\"" in result.stderr,
          "bad --ipv6: %d %s" % (result.returncode, result.stderr))


def case_ipv6_auto(pods):
    # A PATH with the IPv4 tools only: ip6tables "does not work here".
    ipv4_only = os.path.join(pods.work, "ipv4-only")
    os.mkdir(ipv4_only)
    os.chmod(ipv4_only, 0o755)
    for tool in ("iptables-save", "iptables-restore"):
        os.symlink(shutil.which(tool), os.path.join(ipv4_only, tool))
    # B has a global IPv6 address: IPv6 is in use, so its rules are required.
    result = pods.init(path=ipv4_only)
    check(result.returncode == 1 and "ip6tables-save: not found in PATH" in result.stderr,
          "IPv6 in use without ip6tables: exit %d, %s" % (result.returncode, result.stderr))
    result = pods.init("--cleanup", path=ipv4_only)
    check(result.returncode == 0 and "# IPv6: skipped" in result.stdout,
          "cleanup without ip6tables: exit %d, %s %s" % (result.returncode, result.stdout,
                                                         result.stderr))
    check("TRACECAR" not in pods.save(4), "cleanup left IPv4 rules")
    # Without a global IPv6 address the IPv6 rules are optional.
    pods.ip("-n", pods.b, "addr", "del", B_V6 + "/64", "dev", "eth0")
    result = pods.init(path=ipv4_only)
    check(result.returncode == 0 and "# IPv6: skipped (no global IPv6 address" in result.stdout,
          "IPv4-only pod without ip6tables: exit %d, %s %s" % (result.returncode, result.stdout,
                                                               result.stderr))
    check("TRACECAR" in pods.save(4) and "TRACECAR" not in pods.save(6), "wrong families")
    result = pods.init("--ipv6", "on", path=ipv4_only)
    check(result.returncode == 1, "--ipv6 on without ip6tables exited %d" % result.returncode)
    # ... and installed when ip6tables works.
    pods.init_ok()
    check("TRACECAR" in pods.save(6), "auto with a working ip6tables skipped IPv6")


def case_errors(pods):
    before = (pods.save(4), pods.save(6))
    result = pods.init("--exclude-outbound-cidrs", "10.0.0.0/33")
    check(result.returncode == 2, "bad CIDR exited %d" % result.returncode)
    check("--exclude-outbound-cidrs: \"10.0.0.0/33\"" in result.stderr, result.stderr)
    result = pods.init("--no-such-option")
    check(result.returncode == 2, "unknown option exited %d" % result.returncode)
    result = pods.init(uid=APP_UID)
    check(result.returncode == 1, "without CAP_NET_ADMIN exited %d" % result.returncode)
    check("CAP_NET_ADMIN" in result.stderr, "no privilege message: " + result.stderr)
    result = pods.init(path="/nonexistent")
    check(result.returncode == 1, "without iptables exited %d" % result.returncode)
    check("iptables-save: not found in PATH" in result.stderr, result.stderr)
    check((pods.save(4), pods.save(6)) == before, "a failed run changed the rules")
    # Without CAP_NET_ADMIN the dry run still works: it reads nothing.
    result = pods.init("--dry-run", uid=APP_UID)
    check(result.returncode == 0 and "*nat" in result.stdout, "unprivileged dry run failed")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def help_documents_every_option(tracecar):
    """Needs no namespace and no privilege: every option is in --help with its default."""
    result = subprocess.run([tracecar, "init-iptables", "--help"], capture_output=True,
                            text=True, timeout=STEP_TIMEOUT)
    check(result.returncode == 0, "--help exited %d" % result.returncode)
    for option in ("--inbound-port PORT=15006", "--outbound-port PORT=15001",
                   "--admin-port PORT=15000", "--proxy-uid UID=1337", "--proxy-gid GID",
                   "--inbound-ports PORTS=*", "--exclude-inbound-ports PORTS",
                   "--exclude-outbound-ports PORTS", "--exclude-outbound-cidrs CIDRS",
                   "--ipv6 auto|on|off=auto", "--dry-run", "--cleanup"):
        check(option in result.stdout, "--help lacks %r:\n%s" % (option, result.stdout))
    check(result.stdout.count("(default: none)") == 4, "a default is missing:\n" + result.stdout)
    result = subprocess.run([tracecar, "init-iptables", "--inbound-port", "0"],
                            capture_output=True, text=True, timeout=STEP_TIMEOUT)
    check(result.returncode == 2 and "--inbound-port" in result.stderr,
          "port 0: exit %d, %s" % (result.returncode, result.stderr))


UNPRIVILEGED_CASES = {"help": help_documents_every_option}


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables)"
    for program in ("ip", "iptables-save", "iptables-restore", "ip6tables-save", "setpriv"):
        if shutil.which(program) is None:
            return program + " is not installed"
    probe = "tcar-probe-%d" % os.getpid()
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                            timeout=STEP_TIMEOUT)
    if result.returncode != 0:
        return "ip netns add failed: " + result.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=STEP_TIMEOUT)
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracecar", required=True)
    parser.add_argument("--probe", required=True)
    parser.add_argument("case", choices=sorted(list(CASES) + list(UNPRIVILEGED_CASES)))
    args = parser.parse_args()
    if args.case in UNPRIVILEGED_CASES:
        try:
            UNPRIVILEGED_CASES[args.case](args.tracecar)
        except Failure as e:
            print("FAIL %s: %s" % (args.case, e))
            return 1
        print("PASS %s" % args.case)
        return 0
    reason = skip_reason()
    if reason:
        print("SKIP %s: %s" % (args.case, reason))
        return 0
    started = time.monotonic()
    try:
        with Pods(args.tracecar, args.probe, args.case) as pods:
            CASES[args.case](pods)
    except Failure as e:
        print("FAIL %s: %s" % (args.case, e))
        return 1
    except Skip as e:
        print("SKIP %s: %s" % (args.case, e))
        return 0
    except (OSError, subprocess.SubprocessError) as e:
        print("FAIL %s: %r" % (args.case, e))
        return 1
    print("PASS %s (%.1f s)" % (args.case, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
