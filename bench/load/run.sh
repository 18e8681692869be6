#!/usr/bin/env bash
# Load benchmark: tracecar and a peer proxy doing the same job without tracing, side by side,
# interleaved, and the figures that compare them. See docs/benchmarks.md.
#   h1: wrk through direct (the origin), nginx and tracecar (bench/load/h1.sh)
#   h2: h2load through direct (an h2c origin), haproxy and tracecar, HTTP/2 on both sides of
#       each proxy (bench/load/h2.sh)
#
# Usage: bash bench/load/run.sh
# Environment: SCENARIOS="h1 h2" (which ones, in this order)  DURATION=10 (seconds per run)
#              ROUNDS=2  WARMUP=2 (seconds)  CONNECTIONS="50 1" (h1: wrk connections)
#              H2_LOADS="10x10 1x1" (h2: h2load connections x concurrent streams each)
#              PROXY_CPU=0  LOAD_CPU=1  REQUEST_PATH=/users/42  TRACECAR_BIN=path (skip building tracecar)
#              BUILD_JOBS=N (parallel build jobs, default: all CPUs)
set -euo pipefail
source "$(dirname "$0")/../../scripts/args.sh"
no_arguments load-bench "$settings_hint" "$@"
cd "$(dirname "$0")/../.."

SCENARIOS=${SCENARIOS:-"h1 h2"}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-"50 1"}
H2_LOADS=${H2_LOADS:-"10x10 1x1"}
WARMUP=${WARMUP:-2}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
REQUEST_PATH=${REQUEST_PATH:-/users/42}

die() { echo "load-bench: $*" >&2; exit 1; }
for v in DURATION ROUNDS WARMUP PROXY_CPU LOAD_CPU; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION >= 1 && ROUNDS >= 1)) || die "DURATION and ROUNDS must be at least 1"
[[ -n ${SCENARIOS// /} ]] || die "SCENARIOS is empty (h1, h2 or both)"
for s in $SCENARIOS; do [[ $s == h1 || $s == h2 ]] || die "SCENARIOS: unknown scenario '$s' (h1, h2)"; done
[[ -z $(printf '%s\n' $SCENARIOS | sort | uniq -d) ]] || die "SCENARIOS: a scenario is named twice"
has_scenario() { [[ " $SCENARIOS " == *" $1 "* ]]; }
for c in $CONNECTIONS; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS: bad count '$c'"; done
for l in $H2_LOADS; do
  [[ $l =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die "H2_LOADS: bad level '$l' (connections x streams, e.g. 10x10)"
done
[[ $REQUEST_PATH == /* ]] || die "REQUEST_PATH must start with /"
taskset -c "$PROXY_CPU" true 2>/dev/null && taskset -c "$LOAD_CPU" true 2>/dev/null \
  || die "CPUs $PROXY_CPU and $LOAD_CPU must both be usable (this machine: $(nproc) CPUs)"
[[ $PROXY_CPU != "$LOAD_CPU" ]] || echo "load-bench: warning: the proxy and the load share CPU $PROXY_CPU" >&2

# Only the variables set below reach tracecar.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^OTEL_' || true)
unset TRACECAR_CONSOLE_EXPORT_PATH

# ---- dependencies and build ----------------------------------------------------------------
source bench/load/common.sh
bash scripts/install-deps.sh
wanted=()
has_scenario h1 && wanted+=(nginx wrk)
has_scenario h2 && wanted+=(nginx haproxy nghttp2-client)
ensure_packages load-bench "${wanted[@]}"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

build_tracecar
"$tracecar_bin" run --help 2>&1 | grep -q -- --ready-file \
  || die "$tracecar_bin has no 'run' command with --ready-file"

expected_total=0
if has_scenario h1; then
  h1_targets=(direct nginx tracecar)
  n_conns=$(wc -w <<<"$CONNECTIONS")
  expected=$((ROUNDS * n_conns * ${#h1_targets[@]} * (DURATION + 2) + ${#h1_targets[@]} * (WARMUP + 2) + 10))
  expected_total=$((expected_total + expected))
  echo "load-bench: ${ROUNDS} rounds x connections {${CONNECTIONS}} x {${h1_targets[*]}}, ${DURATION} s per run;" \
       "expected duration about ${expected} s"
fi
if has_scenario h2; then
  h2_targets=(direct haproxy tracecar)
  n_loads=$(wc -w <<<"$H2_LOADS")
  expected=$((ROUNDS * n_loads * ${#h2_targets[@]} * (WARMUP + DURATION + 3) + 10))
  expected_total=$((expected_total + expected))
  echo "load-bench: h2: ${ROUNDS} rounds x h2load connections x streams {${H2_LOADS}} x {${h2_targets[*]}}," \
       "${WARMUP} + ${DURATION} s per run; expected duration about ${expected} s"
fi
(($(wc -w <<<"$SCENARIOS") == 1)) || echo "load-bench: scenarios {${SCENARIOS}}: about ${expected_total} s in all"
tools=()
has_scenario h1 && tools+=(wrk)
has_scenario h2 && tools+=(h2load)
echo "load-bench: proxy under test on CPU ${PROXY_CPU}; $(IFS=/; echo "${tools[*]}"), origin and span sink on CPU ${LOAD_CPU};" \
     "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- processes -----------------------------------------------------------------------------
tmp=$(mktemp -d --tmpdir tracecar-load.XXXXXX)
sink_pid='' load_pid=''
tracecar_pid='' nginx_pid='' origin_pid=''                # h1
tracecar_h2_pid='' haproxy_pid='' origin_h2_pid=''        # h2

cleanup() {
  trap - EXIT INT TERM
  stop_pid "$load_pid" 2
  stop_pid "$tracecar_pid" 10
  stop_pid "$tracecar_h2_pid" 10
  stop_pid "$nginx_pid" 5
  stop_pid "$haproxy_pid" 5
  stop_pid "$origin_pid" 5
  stop_pid "$origin_h2_pid" 5
  stop_pid "$sink_pid" 5
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_http() {  # url, what, curl options...
  local url=$1 what=$2 i
  shift 2
  for ((i = 0; i < 100; i++)); do
    [[ $(curl -s "$@" -o /dev/null -w '%{http_code}' "$url" 2>/dev/null) == 200 ]] && return 0
    sleep 0.1
  done
  die "$what does not answer 200 at $url"
}

nginx_conf() {  # dir, server block
  local dir=$1
  mkdir -p "$dir/tmp"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
$2
}
EOF
}

start_nginx() {  # dir, CPU -> pid in $started_pid
  taskset -c "$2" "$NGINX" -e "$1/error.log" -p "$1/" -c "$1/nginx.conf" &
  started_pid=$!
}

taskset -c "$LOAD_CPU" "$span_sink_bin" >"$tmp/sink.out" &
sink_pid=$!
for ((i = 0; i < 100; i++)); do
  sink_port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$tmp/sink.out")
  [[ -n $sink_port ]] && break
  kill -0 "$sink_pid" 2>/dev/null || die "the span sink exited"
  sleep 0.1
done
[[ -n $sink_port ]] || die "the span sink did not start"

# name (files in $tmp), app port -> $started_pid, $started_port (inbound), $started_admin
start_tracecar() {
  local name=$1 i
  rm -f "$tmp/$name.ready"
  exec_tracecar "$sink_port" 127.0.0.1:0 "$2" "$tmp/$name.ready" taskset -c "$PROXY_CPU" \
    2>"$tmp/$name.log" &
  started_pid=$!
  for ((i = 0; i < 100; i++)); do
    [[ -s $tmp/$name.ready ]] && break
    kill -0 "$started_pid" 2>/dev/null || { cat "$tmp/$name.log" >&2; die "tracecar exited"; }
    sleep 0.1
  done
  [[ -s $tmp/$name.ready ]] || { cat "$tmp/$name.log" >&2; die "tracecar did not become ready"; }
  started_port=$(sed -n 's/.*"inbound": *\([0-9]*\).*/\1/p' "$tmp/$name.ready")
  started_admin=$(sed -n 's/.*"admin": *\([0-9]*\).*/\1/p' "$tmp/$name.ready")
}

# ---- measuring -----------------------------------------------------------------------------
children_of() {  # pid -> the pid and its children (nginx: master and worker)
  echo "$1" $(pgrep -P "$1" || true)
}

# utime + stime, then stime, of the given processes (all their threads), in clock ticks; then
# the time the threads that serve requests spent runnable but waiting for a CPU, in ns (the
# second field of /proc/PID/task/TID/schedstat): tracecar's workers (tc-worker-N), every thread
# of the other processes. As "total:system:wait".
cpu_ticks() {
  local pid stat total=0 sys=0 wait=0 task workers_only s
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a f <<<"${stat##*) }"
    total=$((total + f[11] + f[12]))
    sys=$((sys + f[12]))
    [[ $stat == *"(tracecar)"* ]] && workers_only=1 || workers_only=''
    for task in /proc/"$pid"/task/*; do
      [[ -z $workers_only || $(cat "$task/comm" 2>/dev/null) == tc-worker-* ]] || continue
      read -r -a s <"$task/schedstat" 2>/dev/null || continue
      wait=$((wait + s[1]))
    done
  done
  echo "$total:$sys:$wait"
}

status_kb() {  # field (VmRSS or VmHWM), pids -> the sum in kB
  local field=$1 pid total=0 v
  shift
  for pid in "$@"; do
    v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

cpu_seconds() {  # cpu_ticks before, after; which: 1 (all CPU time), 2 (system time) or 3 (wait)
  awk -v a="$1" -v b="$2" -v i="${3:-1}" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { split(a, x, ":"); split(b, y, ":")
             if (i == 3) printf "%.6f", (y[i] - x[i]) / 1e9; else printf "%.2f", (y[i] - x[i]) / hz }'
}

wall_seconds() {  # date +%s%N before, after
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}

# One run's row of a scenario's results file. Arguments: target, level (connections, or
# connections x streams), round, req/s, p50 us, p99 us, RSS kB, peak RSS kB, requests, non-2xx,
# failures (socket errors, failed streams). The CPU and wall time come from $ticks0/$ticks1 and
# $t0/$t1 of the run, the span figures from span_figures (empty for the other targets).
append_result() {
  local cpu_s sys_s wait_s wall_s
  cpu_s=$(cpu_seconds "$ticks0" "$ticks1")
  sys_s=$(cpu_seconds "$ticks0" "$ticks1" 2)
  wait_s=$(cpu_seconds "$ticks0" "$ticks1" 3)
  wall_s=$(wall_seconds "$t0" "$t1")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$cpu_s" "$wall_s" "$7" "$8" "$9" "${10}" "${11}" \
    "$proxy_requests" "$sent" "$delivered" "$dropped" "$rejected" "$sys_s" "$wait_s" >>"$results"
}

sink_count() { curl -sf "http://127.0.0.1:$sink_port/count" | cut -d' ' -f1; }

metrics() {  # admin port -> "server_requests spans_sampled exported dropped queue rejected"
  curl -sf "http://127.0.0.1:$1/metrics" | awk '
    /^#/ { next }
    /^http_server_request_duration_seconds_count/ { req += $NF }
    /^tracecar_spans_sampled_total\{.*kind="server"/ { sampled += $NF }
    /^tracecar_exporter_spans_exported_total/ { exported += $NF }
    /^tracecar_exporter_spans_dropped_total/ { dropped += $NF }
    /^tracecar_exporter_queue_length/ { queue += $NF }
    /^tracecar_requests_rejected_total\{.*listener="inbound"/ { rejected += $NF }
    END { printf "%d %d %d %d %d %d\n", req, sampled, exported, dropped, queue, rejected }'
}

# admin port: waits until the sink has every span tracecar sampled since $sampled_base and
# $sink_base (or 10 s), so that no run's spans spill into the next one's counts.
# span_figures ADMIN_PORT: after a tracecar run, from its metrics (m0: before the run) and the
# sink (sink_base: before the run): proxy_requests, sent, delivered, dropped, rejected.
span_figures() {
  settle_spans "$1"
  read -r -a m1 <<<"$(metrics "$1")"
  proxy_requests=$((m1[0] - m0[0]))
  sent=$((m1[1] - m0[1]))
  delivered=$(($(sink_count) - sink_base))
  dropped=$((m1[3] - m0[3]))
  rejected=$((m1[5] - m0[5]))
}

settle_spans() {
  local i m
  for ((i = 0; i < 100; i++)); do
    read -r -a m <<<"$(metrics "$1")"
    ((m[4] == 0)) && (($(sink_count) - sink_base >= m[1] - sampled_base)) && return 0
    sleep 0.1
  done
}

tracecar_warnings() {  # log file
  if grep -qi 'error\|warn' "$1"; then
    echo
    echo "tracecar logged warnings or errors during the benchmark:"
    grep -i 'error\|warn' "$1" | sort | uniq -c | sort -rn | head -n 10
  fi
}

# ---- scenarios -----------------------------------------------------------------------------
source bench/load/h1.sh
source bench/load/h2.sh
first=1
for scenario in $SCENARIOS; do
  ((first)) || echo
  first=0
  "scenario_$scenario"
done
