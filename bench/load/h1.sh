# The h1 scenario of the load benchmark, sourced by bench/load/run.sh (its helpers and
# settings): wrk (HTTP/1.1 keep-alive) through direct (the origin), nginx and tracecar.

h1_url_of() {
  case $1 in
    direct) echo "http://127.0.0.1:$origin_port$REQUEST_PATH" ;;
    nginx) echo "http://127.0.0.1:$nginx_port$REQUEST_PATH" ;;
    tracecar) echo "http://127.0.0.1:$tracecar_port$REQUEST_PATH" ;;
  esac
}

h1_proxy_pids() {  # target -> the processes of that proxy
  case $1 in
    tracecar) echo "$tracecar_pid" ;;
    nginx) children_of "$nginx_pid" ;;
    direct) children_of "$origin_pid" ;;
  esac
}

run_wrk() {  # target, connections, seconds -> wrk output in $tmp/wrk.out
  local status=0
  taskset -c "$LOAD_CPU" wrk -t1 -c"$2" -d"$3s" --latency "$(h1_url_of "$1")" >"$tmp/wrk.out" 2>&1 || status=$?
  ((status <= 128)) || exit 130  # wrk was interrupted: so are we
  ((status == 0)) || echo "wrk exited with status $status" >>"$tmp/wrk.out"
}

scenario_h1() {
  local target round conns results
  origin_port=$(free_port)
  nginx_conf "$tmp/origin" "  server {
    listen 127.0.0.1:$origin_port;
    location / { default_type text/plain; return 200 \"hello from the origin\\n\"; }
  }"
  start_nginx "$tmp/origin" "$LOAD_CPU"
  origin_pid=$started_pid

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
  start_nginx "$tmp/nginx" "$PROXY_CPU"
  nginx_pid=$started_pid

  start_tracecar tracecar "$origin_port"
  tracecar_pid=$started_pid tracecar_port=$started_port admin_port=$started_admin

  wait_http "http://127.0.0.1:$origin_port/" "the origin (nginx)"
  wait_http "http://127.0.0.1:$nginx_port/" "nginx"

  results=$tmp/results.tsv
  printf 'target\tconns\tround\trps\tp50_us\tp99_us\tcpu_s\twall_s\trss_kb\thwm_kb\twrk_requests\tnon2xx\tsocket_errors\tproxy_requests\tspans_sent\tspans_delivered\tspans_dropped\trejected\tsys_s\twait_s\n' >"$results"

  idle_tracecar=$(status_kb VmRSS $(h1_proxy_pids tracecar))
  idle_nginx=$(status_kb VmRSS $(h1_proxy_pids nginx))
  read -r -a m0 <<<"$(metrics "$admin_port")"
  sampled_base=${m0[1]}
  sink_base=$(sink_count)

  code=$(curl -s -o "$tmp/first.body" -w '%{http_code}' "$(h1_url_of tracecar)" || true)
  [[ $code == 200 ]] || die "through tracecar: status ${code:-none} for GET $REQUEST_PATH (expected 200); log: $(tail -n 5 "$tmp/tracecar.log")"

  echo "load-bench: warming up (${WARMUP} s each)"
  for target in "${h1_targets[@]}"; do
    ((WARMUP > 0)) && run_wrk "$target" 50 "$WARMUP"
    [[ $target == tracecar ]] && settle_spans "$admin_port"
    sleep 1
  done

  for ((round = 1; round <= ROUNDS; round++)); do
    for conns in $CONNECTIONS; do
      for target in "${h1_targets[@]}"; do
        pids=($(h1_proxy_pids "$target"))
        if [[ $target == tracecar ]]; then
          kill -0 "$tracecar_pid" 2>/dev/null || { tail -n 20 "$tmp/tracecar.log" >&2; die "tracecar is gone"; }
          read -r -a m0 <<<"$(metrics "$admin_port")"
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
        [[ $target != tracecar ]] || span_figures "$admin_port"
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
        append_result "$target" "$conns" "$round" "$rps" "$p50" "$p99" "$rss" "$hwm" "$total" \
          "$non2xx" "$sockerr"
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
  tracecar_warnings "$tmp/tracecar.log"

  stop_pid "$tracecar_pid" 10
  stop_pid "$nginx_pid" 5
  stop_pid "$origin_pid" 5
}
