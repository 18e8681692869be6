#!/usr/bin/env bash
# Instructions per request, counted by callgrind, for tracecar and haproxy proxying HTTP/2 as in
# the h2 scenario of run.sh (h2load -> proxy -> an h2c nginx origin; tracecar samples every
# request and exports every span to the span sink), and the functions they go to. Instruction
# counts do not depend on what else the machine is doing. See docs/benchmarks.md.
#
# Usage: bash bench/load/callgrind.sh
# Environment: TARGETS="tracecar haproxy"  REQUESTS=20000 (counted, after a tenth as many that
#              are not)  CLIENTS=10  STREAMS=10 (h2load -c, -m)  TOP=25 (functions listed)
#              REQUEST_PATH=/users/42  TRACECAR_BIN=path (skip building tracecar)
#              KEEP=dir (copy the callgrind files there, for callgrind_annotate or kcachegrind)
set -euo pipefail
source "$(dirname "$0")/../../scripts/args.sh"
no_arguments callgrind-bench "$settings_hint" "$@"
cd "$(dirname "$0")/../.."

TARGETS=${TARGETS:-"tracecar haproxy"}
REQUESTS=${REQUESTS:-20000}
CLIENTS=${CLIENTS:-10}
STREAMS=${STREAMS:-10}
TOP=${TOP:-25}
REQUEST_PATH=${REQUEST_PATH:-/users/42}

die() { echo "callgrind-bench: $*" >&2; exit 1; }
for v in REQUESTS CLIENTS STREAMS TOP; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number, got '${!v}'"
done
for t in $TARGETS; do [[ $t == tracecar || $t == haproxy ]] || die "TARGETS: unknown target '$t'"; done
[[ $REQUEST_PATH == /* ]] || die "REQUEST_PATH must start with /"
while read -r v; do unset "$v"; done < <(compgen -e | grep '^OTEL_' || true)
unset TRACECAR_CONSOLE_EXPORT_PATH

# ---- dependencies and build ----------------------------------------------------------------
source bench/load/common.sh
bash scripts/install-deps.sh
ensure_packages callgrind-bench valgrind nginx haproxy nghttp2-client
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

build_tracecar

# ---- processes -----------------------------------------------------------------------------
source bench/load/h2.sh  # haproxy_conf: the haproxy of run.sh's h2 scenario
tmp=$(mktemp -d --tmpdir tracecar-callgrind.XXXXXX)
origin_pid='' sink_pid='' proxy_pid=''

cleanup() {
  trap - EXIT INT TERM
  stop_pid "$proxy_pid" 30
  stop_pid "$origin_pid" 5
  stop_pid "$sink_pid" 5
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_h2() {  # port, what, seconds (valgrind starts slowly)
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    [[ $(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}' \
         "http://127.0.0.1:$1$REQUEST_PATH" 2>/dev/null) == 200 ]] && return 0
    [[ -z $proxy_pid ]] || kill -0 "$proxy_pid" 2>/dev/null || break
    sleep 0.2
  done
  die "$2 does not answer 200 over h2c on port $1"
}

h2load_n() {  # port, requests -> dies unless every request succeeded
  local out
  out=$(h2load -c "$CLIENTS" -m "$STREAMS" -n "$2" "http://127.0.0.1:$1$REQUEST_PATH" 2>&1) || true
  grep -q "^requests: $2 total, $2 started, $2 done, $2 succeeded" <<<"$out" \
    || { echo "$out" >&2; die "h2load: not every request succeeded"; }
}

sink_count() { curl -sf "http://127.0.0.1:$sink_port/count" | cut -d' ' -f1; }

spans_sampled() {  # admin port
  curl -sf "http://127.0.0.1:$1/metrics" \
    | awk '/^tracecar_spans_sampled_total\{.*kind="server"/ { n += $NF } END { print n + 0 }'
}

wait_spans() {  # admin port: until the sink has every span tracecar sampled (at most 120 s)
  local i
  for ((i = 0; i < 600; i++)); do
    (($(sink_count) >= $(spans_sampled "$1"))) && return 0
    sleep 0.2
  done
  die "the sink did not get every span"
}

origin_port=$(free_port)
mkdir -p "$tmp/origin/tmp"
cat >"$tmp/origin/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/origin/nginx.pid;
error_log $tmp/origin/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/origin/tmp/body;
  proxy_temp_path $tmp/origin/tmp/proxy;
  fastcgi_temp_path $tmp/origin/tmp/fastcgi;
  uwsgi_temp_path $tmp/origin/tmp/uwsgi;
  scgi_temp_path $tmp/origin/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$origin_port http2;
    location / { default_type text/plain; return 200 "hello from the origin\n"; }
  }
}
EOF
"$NGINX" -e "$tmp/origin/error.log" -p "$tmp/origin/" -c "$tmp/origin/nginx.conf" &
origin_pid=$!
"$span_sink_bin" >"$tmp/sink.out" &
sink_pid=$!
for ((i = 0; i < 100; i++)); do
  sink_port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$tmp/sink.out")
  [[ -n $sink_port ]] && break
  sleep 0.1
done
[[ -n $sink_port ]] || die "the span sink did not start"
wait_h2 "$origin_port" "the h2c origin (nginx)" 10

echo "callgrind-bench: {${TARGETS}} under callgrind, h2load -c $CLIENTS -m $STREAMS:" \
     "$((REQUESTS / 10)) requests, then $REQUESTS counted"
for target in $TARGETS; do
  out=$tmp/$target
  mkdir -p "$out"
  port=$(free_port)
  admin_port=''
  callgrind=(valgrind --tool=callgrind --separate-threads=yes "--callgrind-out-file=$out/$target.%p")
  if [[ $target == tracecar ]]; then
    exec_tracecar "$sink_port" "127.0.0.1:$port" "$origin_port" "$out/ready" "${callgrind[@]}" \
      >"$out/log" 2>&1 &
  else
    haproxy_conf "$out/haproxy.cfg" "$port" "$origin_port"
    "${callgrind[@]}" "$HAPROXY" -db -f "$out/haproxy.cfg" >"$out/log" 2>&1 &
  fi
  proxy_pid=$!
  wait_h2 "$port" "$target under callgrind" 120
  if [[ $target == tracecar ]]; then
    admin_port=$(sed -n 's/.*"admin": *\([0-9]*\).*/\1/p' "$out/ready")
  fi

  h2load_n "$port" $((REQUESTS / 10))
  [[ -z $admin_port ]] || wait_spans "$admin_port"
  callgrind_control -z "$proxy_pid" >/dev/null 2>&1 || die "callgrind_control could not zero $target's counters"
  h2load_n "$port" "$REQUESTS"
  [[ -z $admin_port ]] || wait_spans "$admin_port"  # the exporter's work for them is counted too
  callgrind_control -d "$proxy_pid" >/dev/null 2>&1 || die "callgrind_control could not dump $target's counters"
  stop_pid "$proxy_pid" 30
  proxy_pid=''

  echo
  # Part 1 of each thread's profile is the dump above; the counts at exit are left out.
  python3 bench/load/callgrind_report.py "$target" "$REQUESTS" --top "$TOP" "$out/$target".*.1-*
  if [[ -n ${KEEP:-} ]]; then
    mkdir -p "$KEEP"
    cp "$out/$target".*.1-* "$KEEP"/
    echo "(callgrind files in $KEEP: $(cd "$out" && echo "$target".*.1-*))"
  fi
done
