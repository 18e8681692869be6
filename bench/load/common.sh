# Shared by bench/load/run.sh and bench/load/callgrind.sh (sourced from the repository root,
# after the sourcing script has defined die).

# ensure_packages PREFIX PACKAGE...: installs the Debian packages that are missing.
ensure_packages() {
  local prefix=$1 p
  shift
  local missing=()
  for p in $(printf '%s\n' "$@" | sort -u); do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || die "missing packages: ${missing[*]} (run as root to install them)"
  echo "$prefix: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build_tracecar: a Release build in build/bench of the span sink, and of tracecar unless
# TRACECAR_BIN names one; sets tracecar_bin and span_sink_bin.
build_tracecar() {
  local targets=(span_sink) build_log
  span_sink_bin=build/bench/bench/span_sink
  if [[ -n ${TRACECAR_BIN:-} ]]; then
    tracecar_bin=$TRACECAR_BIN
  else
    tracecar_bin=build/bench/proxy/tracecar
    targets+=(tracecar)
  fi
  build_log=$(mktemp)
  if ! { cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRACECAR_TESTS=OFF \
         && cmake --build build/bench -j "${BUILD_JOBS:-$(nproc)}" --target "${targets[@]}"; } >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    rm -f "$build_log"
    die "building ${targets[*]} (Release, build/bench) failed; TRACECAR_BIN=path runs a tracecar built elsewhere"
  fi
  rm -f "$build_log"
  [[ -x $tracecar_bin ]] || die "no tracecar executable at $tracecar_bin"
  [[ -x $span_sink_bin ]] || die "no span sink at $span_sink_bin"
}

# exec_tracecar SINK_PORT INBOUND APP_PORT READY_FILE [LAUNCHER...]: replaces the calling shell
# with tracecar as both benchmarks run it: 1 worker, 100% sampling, every span exported over
# OTLP/HTTP protobuf to the span sink, behind LAUNCHER (taskset, valgrind). Call it in the
# background (`exec_tracecar ... &`): $! is then tracecar itself.
exec_tracecar() {
  local sink=$1 inbound=$2 app=$3 ready=$4
  shift 4
  exec env OTEL_TRACES_EXPORTER=otlp \
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink" \
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
    OTEL_SERVICE_NAME=load-bench \
    OTEL_BSP_MAX_QUEUE_SIZE=8192 \
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512 \
    OTEL_BSP_SCHEDULE_DELAY=200 \
    "$@" "$tracecar_bin" run --workers 1 --inbound "$inbound" --outbound 127.0.0.1:0 \
    --admin 127.0.0.1:0 --app "127.0.0.1:$app" --ready-file "$ready"
}

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

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
