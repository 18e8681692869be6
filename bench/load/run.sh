#!/usr/bin/env bash
# Load benchmark: wrk through direct (the origin), nginx and tracecar, interleaved, and the
# figures that compare them. See docs/benchmarks.md.
#
# Usage: bash bench/load/run.sh
# Environment: DURATION=10 (seconds per run)  ROUNDS=2  CONNECTIONS="50 1"  WARMUP=2 (seconds)
#              PROXY_CPU=0  LOAD_CPU=1  REQUEST_PATH=/users/42  TRACECAR_BIN=path (skip the build)
#              BUILD_JOBS=N (parallel build jobs, default: all CPUs)
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-"50 1"}
WARMUP=${WARMUP:-2}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
REQUEST_PATH=${REQUEST_PATH:-/users/42}
TARGETS=(direct nginx tracecar)

die() { echo "load-bench: $*" >&2; exit 1; }
for v in DURATION ROUNDS WARMUP PROXY_CPU LOAD_CPU; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION >= 1 && ROUNDS >= 1)) || die "DURATION and ROUNDS must be at least 1"
for c in $CONNECTIONS; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS: bad count '$c'"; done
[[ $REQUEST_PATH == /* ]] || die "REQUEST_PATH must start with /"
taskset -c "$PROXY_CPU" true 2>/dev/null && taskset -c "$LOAD_CPU" true 2>/dev/null \
  || die "CPUs $PROXY_CPU and $LOAD_CPU must both be usable (this machine: $(nproc) CPUs)"
[[ $PROXY_CPU != "$LOAD_CPU" ]] || echo "load-bench: warning: the proxy and the load share CPU $PROXY_CPU" >&2

# Only the variables set below reach tracecar.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^OTEL_' || true)
unset TRACECAR_CONSOLE_EXPORT_PATH

# ---- dependencies and build ----------------------------------------------------------------
bash scripts/install-deps.sh
missing=()
for p in nginx wrk; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || die "missing packages: ${missing[*]} (run as root to install them)"
  echo "load-bench: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ -n ${TRACECAR_BIN:-} ]]; then
  tracecar_bin=$TRACECAR_BIN
else
  tracecar_bin=build/bench/proxy/tracecar
  build_log=$(mktemp)
  if ! { cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRACECAR_TESTS=OFF \
         && cmake --build build/bench -j "${BUILD_JOBS:-$(nproc)}" --target tracecar; } >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    rm -f "$build_log"
    die "building tracecar (Release, build/bench) failed; TRACECAR_BIN=path runs a tracecar built elsewhere"
  fi
  rm -f "$build_log"
fi
[[ -x $tracecar_bin ]] || die "no tracecar executable at $tracecar_bin"
"$tracecar_bin" run --help 2>&1 | grep -q -- --ready-file \
  || die "$tracecar_bin has no 'run' command with --ready-file"

n_conns=$(wc -w <<<"$CONNECTIONS")
expected=$((ROUNDS * n_conns * ${#TARGETS[@]} * (DURATION + 2) + ${#TARGETS[@]} * (WARMUP + 2) + 10))
echo "load-bench: ${ROUNDS} rounds x connections {${CONNECTIONS}} x {${TARGETS[*]}}, ${DURATION} s per run;" \
     "expected duration about ${expected} s"
echo "load-bench: proxy under test on CPU ${PROXY_CPU}; wrk, origin and span sink on CPU ${LOAD_CPU};" \
     "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- processes -----------------------------------------------------------------------------
tmp=$(mktemp -d /tmp/tracecar-load.XXXXXX)
tracecar_pid='' nginx_pid='' origin_pid='' sink_pid=''

stop_pid() {  # pid, seconds to wait before SIGKILL
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  trap - EXIT INT TERM
  stop_pid "$tracecar_pid" 10
  stop_pid "$nginx_pid" 5
  stop_pid "$origin_pid" 5
  stop_pid "$sink_pid" 5
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {  # url, what
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null) == 200 ]] && return 0
    sleep 0.1
  done
  die "$2 does not answer 200 at $1"
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

origin_port=$(free_port)
nginx_conf "$tmp/origin" "  server {
    listen 127.0.0.1:$origin_port;
    location / { default_type text/plain; return 200 \"hello from the origin\\n\"; }
  }"
taskset -c "$LOAD_CPU" "$NGINX" -e "$tmp/origin/error.log" -p "$tmp/origin/" -c "$tmp/origin/nginx.conf" &
origin_pid=$!

nginx_port=$(free_port)
nginx_conf "$tmp/nginx" "  upstream origin {
    server 127.0.0.1:$origin_port;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }"
taskset -c "$PROXY_CPU" "$NGINX" -e "$tmp/nginx/error.log" -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" &
nginx_pid=$!

taskset -c "$LOAD_CPU" python3 bench/load/span_sink.py >"$tmp/sink.out" &
sink_pid=$!
for ((i = 0; i < 100; i++)); do
  sink_port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$tmp/sink.out")
  [[ -n $sink_port ]] && break
  kill -0 "$sink_pid" 2>/dev/null || die "the span sink exited"
  sleep 0.1
done
[[ -n $sink_port ]] || die "the span sink did not start"

OTEL_TRACES_EXPORTER=otlp \
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" \
OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
OTEL_SERVICE_NAME=load-bench \
OTEL_BSP_MAX_QUEUE_SIZE=65536 \
OTEL_BSP_MAX_EXPORT_BATCH_SIZE=2048 \
OTEL_BSP_SCHEDULE_DELAY=200 \
  taskset -c "$PROXY_CPU" "$tracecar_bin" run --workers 1 --inbound 127.0.0.1:0 \
  --outbound 127.0.0.1:0 --admin 127.0.0.1:0 --app "127.0.0.1:$origin_port" \
  --ready-file "$tmp/tracecar.ready" 2>"$tmp/tracecar.log" &
tracecar_pid=$!
for ((i = 0; i < 100; i++)); do
  [[ -s $tmp/tracecar.ready ]] && break
  kill -0 "$tracecar_pid" 2>/dev/null || { cat "$tmp/tracecar.log" >&2; die "tracecar exited"; }
  sleep 0.1
done
[[ -s $tmp/tracecar.ready ]] || { cat "$tmp/tracecar.log" >&2; die "tracecar did not become ready"; }
tracecar_port=$(sed -n 's/.*"inbound": *\([0-9]*\).*/\1/p' "$tmp/tracecar.ready")
admin_port=$(sed -n 's/.*"admin": *\([0-9]*\).*/\1/p' "$tmp/tracecar.ready")

wait_http "http://127.0.0.1:$origin_port/" "the origin (nginx)"
wait_http "http://127.0.0.1:$nginx_port/" "nginx"

# ---- measuring -----------------------------------------------------------------------------
proxy_pids() {  # target -> the processes of that proxy
  case $1 in
    tracecar) echo "$tracecar_pid" ;;
    nginx) echo "$nginx_pid" $(pgrep -P "$nginx_pid" || true) ;;
    direct) echo "$origin_pid" $(pgrep -P "$origin_pid" || true) ;;
  esac
}

cpu_ticks() {  # utime + stime of the given processes (all their threads), in clock ticks
  local pid stat total=0
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a f <<<"${stat##*) }"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
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

sink_count() { curl -sf "http://127.0.0.1:$sink_port/count" | cut -d' ' -f1; }

metrics() {  # -> "server_requests spans_sampled exported dropped queue rejected"
  curl -sf "http://127.0.0.1:$admin_port/metrics" | awk '
    /^#/ { next }
    /^http_server_request_duration_seconds_count/ { req += $NF }
    /^tracecar_spans_sampled_total\{.*kind="server"/ { sampled += $NF }
    /^tracecar_exporter_spans_exported_total/ { exported += $NF }
    /^tracecar_exporter_spans_dropped_total/ { dropped += $NF }
    /^tracecar_exporter_queue_length/ { queue += $NF }
    /^tracecar_requests_rejected_total\{.*listener="inbound"/ { rejected += $NF }
    END { printf "%d %d %d %d %d %d\n", req, sampled, exported, dropped, queue, rejected }'
}

url_of() {
  case $1 in
    direct) echo "http://127.0.0.1:$origin_port$REQUEST_PATH" ;;
    nginx) echo "http://127.0.0.1:$nginx_port$REQUEST_PATH" ;;
    tracecar) echo "http://127.0.0.1:$tracecar_port$REQUEST_PATH" ;;
  esac
}

# Waits until the sink has every span tracecar sampled (or 10 s), so that no run's spans
# spill into the next one's counts.
settle_spans() {
  local i m
  for ((i = 0; i < 100; i++)); do
    read -r -a m <<<"$(metrics)"
    ((m[4] == 0)) && (($(sink_count) - sink_base >= m[1] - sampled_base)) && return 0
    sleep 0.1
  done
}

results=$tmp/results.tsv
printf 'target\tconns\tround\trps\tp50_us\tp99_us\tcpu_s\twall_s\trss_kb\thwm_kb\twrk_requests\tnon2xx\tsocket_errors\tproxy_requests\tspans_sent\tspans_delivered\tspans_dropped\trejected\n' >"$results"

idle_tracecar=$(status_kb VmRSS $(proxy_pids tracecar))
idle_nginx=$(status_kb VmRSS $(proxy_pids nginx))
read -r -a m0 <<<"$(metrics)"
sampled_base=${m0[1]}
sink_base=$(sink_count)

code=$(curl -s -o "$tmp/first.body" -w '%{http_code}' "$(url_of tracecar)" || true)
[[ $code == 200 ]] || die "through tracecar: status ${code:-none} for GET $REQUEST_PATH (expected 200); log: $(tail -n 5 "$tmp/tracecar.log")"

run_wrk() {  # target, connections, seconds -> wrk output in $tmp/wrk.out
  local status=0
  taskset -c "$LOAD_CPU" wrk -t1 -c"$2" -d"$3s" --latency "$(url_of "$1")" >"$tmp/wrk.out" 2>&1 || status=$?
  ((status <= 128)) || exit 130  # wrk was interrupted: so are we
  ((status == 0)) || echo "wrk exited with status $status" >>"$tmp/wrk.out"
}

echo "load-bench: warming up (${WARMUP} s each)"
for target in "${TARGETS[@]}"; do
  ((WARMUP > 0)) && run_wrk "$target" 50 "$WARMUP"
  [[ $target == tracecar ]] && settle_spans
  sleep 1
done

for ((round = 1; round <= ROUNDS; round++)); do
  for conns in $CONNECTIONS; do
    for target in "${TARGETS[@]}"; do
      pids=($(proxy_pids "$target"))
      if [[ $target == tracecar ]]; then
        kill -0 "$tracecar_pid" 2>/dev/null || { tail -n 20 "$tmp/tracecar.log" >&2; die "tracecar is gone"; }
        read -r -a m0 <<<"$(metrics)"
        sampled_base=${m0[1]}
        sink_base=$(sink_count)
      fi
      ticks0=$(cpu_ticks "${pids[@]}")
      t0=$(date +%s%N)
      run_wrk "$target" "$conns" "$DURATION"
      t1=$(date +%s%N)
      ticks1=$(cpu_ticks "${pids[@]}")
      rss=$(status_kb VmRSS "${pids[@]}")
      hwm=$(status_kb VmHWM "${pids[@]}")
      proxy_requests='' sent='' delivered='' dropped='' rejected=''
      if [[ $target == tracecar ]]; then
        settle_spans
        read -r -a m1 <<<"$(metrics)"
        proxy_requests=$((m1[0] - m0[0]))
        sent=$((m1[1] - m0[1]))
        delivered=$(($(sink_count) - sink_base))
        dropped=$((m1[3] - m0[3]))
        rejected=$((m1[5] - m0[5]))
      fi
      read -r rps p50 p99 total non2xx sockerr < <(awk '
        function us(v) {
          if (v ~ /us$/) return v + 0
          if (v ~ /ms$/) return v * 1000
          if (v ~ /s$/) return v * 1000000
          return v
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        / requests in / { total = $1 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { gsub(",", ""); sockerr = $4 + $6 + $8 + $10 }
        END { printf "%s %s %s %s %d %d\n", (rps == "" ? 0 : rps), (p50 == "" ? 0 : p50),
                     (p99 == "" ? 0 : p99), (total == "" ? 0 : total), non2xx, sockerr }' "$tmp/wrk.out")
      if [[ $rps == 0 ]]; then
        echo "load-bench: wrk through $target with $conns connections produced no figures:" >&2
        cat "$tmp/wrk.out" >&2
      fi
      cpu_s=$(awk -v a="$ticks0" -v b="$ticks1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
      wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$target" "$conns" "$round" "$rps" "$p50" "$p99" "$cpu_s" "$wall_s" "$rss" "$hwm" \
        "$total" "$non2xx" "$sockerr" "$proxy_requests" "$sent" "$delivered" "$dropped" "$rejected" >>"$results"
      printf 'load-bench: round %d, %2d connections, %-8s %10s req/s  p99 %8s us\n' \
        "$round" "$conns" "$target" "$rps" "$p99"
      sleep 1
    done
  done
done

echo
python3 bench/load/report.py "$results" --idle-rss-tracecar "$idle_tracecar" \
  --idle-rss-nginx "$idle_nginx" --load-average "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --duration "$DURATION" --rounds "$ROUNDS"
if grep -qi 'error\|warn' "$tmp/tracecar.log"; then
  echo
  echo "tracecar logged warnings or errors during the benchmark:"
  grep -i 'error\|warn' "$tmp/tracecar.log" | sort | uniq -c | sort -rn | head -n 10
fi
