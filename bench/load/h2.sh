# The h2 scenario of the load benchmark, sourced by bench/load/run.sh (its helpers and
# settings): h2load (cleartext HTTP/2 with prior knowledge) through direct (an h2c origin),
# haproxy and tracecar, each proxy speaking HTTP/2 to the origin as well.

h2_url_of() {
  case $1 in
    direct) echo "http://127.0.0.1:$origin_h2_port$REQUEST_PATH" ;;
    haproxy) echo "http://127.0.0.1:$haproxy_port$REQUEST_PATH" ;;
    tracecar) echo "http://127.0.0.1:$tracecar_h2_port$REQUEST_PATH" ;;
  esac
}

h2_proxy_pids() {  # target -> the processes of that proxy
  case $1 in
    tracecar) echo "$tracecar_h2_pid" ;;
    haproxy) children_of "$haproxy_pid" ;;
    direct) children_of "$origin_h2_pid" ;;
  esac
}

# The plain reverse proxy tracecar is compared with: HTTP/2 in and out, one thread, no log,
# every client's streams multiplexed over shared upstream connections (http-reuse always).
haproxy_conf() {  # file, listening port, origin port
  cat >"$1" <<EOF
global
  nbthread 1
  maxconn 1000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend h2
  bind 127.0.0.1:$2 proto h2
  default_backend origin
backend origin
  server origin 127.0.0.1:$3 proto h2
EOF
}

# target, connections, streams per connection, processes to measure -> h2load's summary in
# $tmp/h2load.out and its per-request log in $tmp/h2load.log; the processes' CPU ticks and the
# clock from the end of h2load's warm-up to its exit in $ticks0, $ticks1, $t0, $t1.
run_h2load() {
  local target=$1 clients=$2 streams=$3 status=0 warmup=()
  shift 3
  ((WARMUP > 0)) && warmup=(--warm-up-time "$WARMUP")
  rm -f "$tmp/h2load.log"
  taskset -c "$LOAD_CPU" h2load -t1 -c "$clients" -m "$streams" -D "$DURATION" "${warmup[@]}" \
    --log-file "$tmp/h2load.log" "$(h2_url_of "$target")" >"$tmp/h2load.out" 2>&1 &
  load_pid=$!
  sleep "$WARMUP"
  ticks0=$(cpu_ticks "$@")
  t0=$(date +%s%N)
  wait "$load_pid" || status=$?
  load_pid=''
  t1=$(date +%s%N)
  ticks1=$(cpu_ticks "$@")
  ((status <= 128)) || exit 130  # h2load was interrupted: so are we
  ((status == 0)) || echo "h2load exited with status $status" >>"$tmp/h2load.out"
}

# h2load's per-request log (start, status, microseconds to the end of the response; status -1:
# the stream failed) -> "p50 p99" in microseconds, nearest rank, over the answered requests.
h2_percentiles() {
  awk -F'\t' '$2 != -1 { print $3 }' "$1" | LC_ALL=C sort -n | awk '
    function rank(q,   r, k) { r = q * NR; k = int(r); if (k < r) k++; return k < 1 ? 1 : k }
    { v[NR] = $1 }
    END { if (NR == 0) print "0 0"; else print v[rank(0.50)], v[rank(0.99)] }'
}

scenario_h2() {
  local target round level clients streams results code
  origin_h2_port=$(free_port)
  nginx_conf "$tmp/origin-h2" "  server {
    listen 127.0.0.1:$origin_h2_port http2;
    location / { default_type text/plain; return 200 \"hello from the origin\\n\"; }
  }"
  start_nginx "$tmp/origin-h2" "$LOAD_CPU"
  origin_h2_pid=$started_pid

  haproxy_port=$(free_port)
  mkdir -p "$tmp/haproxy"
  haproxy_conf "$tmp/haproxy/haproxy.cfg" "$haproxy_port" "$origin_h2_port"
  taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$tmp/haproxy/haproxy.cfg" >"$tmp/haproxy/haproxy.log" 2>&1 &
  haproxy_pid=$!

  start_tracecar tracecar-h2 "$origin_h2_port"
  tracecar_h2_pid=$started_pid tracecar_h2_port=$started_port admin_h2_port=$started_admin

  wait_http "$(h2_url_of direct)" "the h2c origin (nginx)" --http2-prior-knowledge
  kill -0 "$haproxy_pid" 2>/dev/null || { cat "$tmp/haproxy/haproxy.log" >&2; die "haproxy exited"; }
  wait_http "$(h2_url_of haproxy)" "haproxy" --http2-prior-knowledge

  results=$tmp/results-h2.tsv
  printf 'target\tload\tround\trps\tp50_us\tp99_us\tcpu_s\twall_s\trss_kb\thwm_kb\trequests\tnon2xx\tfailed\tproxy_requests\tspans_sent\tspans_delivered\tspans_dropped\trejected\tsys_s\twait_s\n' >"$results"

  idle_tracecar=$(status_kb VmRSS $(h2_proxy_pids tracecar))
  idle_haproxy=$(status_kb VmRSS $(h2_proxy_pids haproxy))

  # One request first: HTTP/2 both ways through tracecar, or the figures are not the h2 ones.
  code=$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code} %{http_version}' \
         "$(h2_url_of tracecar)" || true)
  [[ $code == "200 2" ]] || die "through tracecar over h2c: '${code:-no answer}' for GET $REQUEST_PATH (expected '200 2'); log: $(tail -n 5 "$tmp/tracecar-h2.log")"
  curl -sf "http://127.0.0.1:$admin_h2_port/metrics" | grep -q '^tracecar_h2_upstream_connections_open [1-9]' \
    || die "tracecar did not open an HTTP/2 connection to the h2c origin"
  read -r -a m0 <<<"$(metrics "$admin_h2_port")"
  sampled_base=${m0[1]}
  sink_base=$(sink_count)
  settle_spans "$admin_h2_port"

  for ((round = 1; round <= ROUNDS; round++)); do
    for level in $H2_LOADS; do
      clients=${level%x*} streams=${level#*x}
      for target in "${h2_targets[@]}"; do
        pids=($(h2_proxy_pids "$target"))
        if [[ $target == tracecar ]]; then
          kill -0 "$tracecar_h2_pid" 2>/dev/null || { tail -n 20 "$tmp/tracecar-h2.log" >&2; die "tracecar is gone"; }
          read -r -a m0 <<<"$(metrics "$admin_h2_port")"
          sampled_base=${m0[1]}
          sink_base=$(sink_count)
        fi
        run_h2load "$target" "$clients" "$streams" "${pids[@]}"
        rss=$(status_kb VmRSS "${pids[@]}")
        hwm=$(status_kb VmHWM "${pids[@]}")
        proxy_requests='' sent='' delivered='' dropped='' rejected=''
        [[ $target != tracecar ]] || span_figures "$admin_h2_port"
        read -r rps total non2xx failed < <(awk '
          /^finished in / { rps = $4 }
          /^requests: / { gsub(",", ""); total = $8; failed = $12 + $14 }
          /^status codes: / { gsub(",", ""); non2xx = $5 + $7 + $9 }
          END { printf "%s %d %d %d\n", (rps == "" ? 0 : rps), total, non2xx, failed }' "$tmp/h2load.out")
        read -r p50 p99 < <(h2_percentiles "$tmp/h2load.log" 2>/dev/null || echo "0 0")
        if [[ $rps == 0 || $total == 0 ]]; then
          echo "load-bench: h2load through $target at $level produced no figures:" >&2
          cat "$tmp/h2load.out" >&2
        fi
        append_result "$target" "$level" "$round" "$rps" "$p50" "$p99" "$rss" "$hwm" "$total" \
          "$non2xx" "$failed"
        printf 'load-bench: h2 round %d, %5s connections x streams, %-8s %10s req/s  p99 %8s us\n' \
          "$round" "$level" "$target" "$rps" "$p99"
        rm -f "$tmp/h2load.log"
        sleep 1
      done
    done
  done

  echo
  echo "h2: h2load through direct, haproxy and tracecar; HTTP/2 with prior knowledge on both sides"
  python3 bench/load/report.py "$results" --scenario h2 --peer haproxy \
    --idle-rss-tracecar "$idle_tracecar" --idle-rss-peer "$idle_haproxy" \
    --load-average "$(cut -d' ' -f1-3 /proc/loadavg)" --duration "$DURATION" --rounds "$ROUNDS"
  tracecar_warnings "$tmp/tracecar-h2.log"

  stop_pid "$tracecar_h2_pid" 10
  stop_pid "$haproxy_pid" 5
  stop_pid "$origin_h2_pid" 5
}
