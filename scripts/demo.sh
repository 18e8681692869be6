#!/usr/bin/env bash
# The tracecar demo: two small services, each behind its own tracecar sidecar, one trace.
#
#   curl -> tracecar A (inbound) -> frontend.py --(HTTP proxy)--> tracecar A (outbound)
#                                                   -> tracecar B (inbound) -> backend.py
#
# Installs what the build needs (scripts/install-deps.sh), builds tracecar if needed (Release,
# in build/demo), starts everything on free loopback ports, sends a few requests (one of them
# fails: the backend answers 500), prints the resulting traces as trees from the console
# exporter's files, shows the /metrics URLs, and stays up until Ctrl-C, which stops everything
# it started.
#
# Usage: bash scripts/demo.sh   (the settings are environment variables)
#   DEMO_ONESHOT=1      exit after printing (CI)
#   TRACECAR_BIN=PATH   use this tracecar instead of building one
#   DEMO_SKIP_DEPS=1    do not run scripts/install-deps.sh
#   DEMO_KEEP=1         keep the spans and logs directory when the demo stops (it is kept
#                       anyway when the demo fails)
set -euo pipefail
source "$(dirname "$0")/args.sh"
no_arguments demo "$settings_hint" "$@"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo=$root/scripts/demo

if [[ -z ${DEMO_SKIP_DEPS:-} && -z ${TRACECAR_BIN:-} ]]; then
  bash "$root/scripts/install-deps.sh"
fi

tracecar=${TRACECAR_BIN:-$root/build/demo/proxy/tracecar}
if [[ -z ${TRACECAR_BIN:-} ]]; then
  echo "demo: building tracecar in build/demo (Release)..."
  cmake -S "$root" -B "$root/build/demo" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTRACECAR_TESTS=OFF -DTRACECAR_BENCH=OFF >/dev/null
  cmake --build "$root/build/demo" --target tracecar >/dev/null
fi
[[ -x $tracecar ]] || { echo "demo: no tracecar at $tracecar" >&2; exit 1; }

work=$(mktemp -d --tmpdir tracecar-demo.XXXXXX)
keep=${DEMO_KEEP:-}
pids=()
cleanup() {
  local status=$? pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n $keep || $status != 0 ]]; then
    echo "demo: spans and logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

# Eight free loopback ports, taken at once so they differ.
read -r app_a app_b a_in a_out a_admin b_in b_out b_admin < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(8)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()')

wait_http() {  # url, what
  local i
  for i in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  echo "demo: $2 did not come up; logs in $work" >&2
  exit 1
}

sidecar() {  # name, app port, inbound, outbound, admin, route
  OTEL_SERVICE_NAME=$1 OTEL_TRACES_EXPORTER=console OTEL_BSP_SCHEDULE_DELAY=200 \
    TRACECAR_CONSOLE_EXPORT_PATH=$work/$1.spans.jsonl \
    "$tracecar" run --workers 1 --app "127.0.0.1:$2" --inbound "127.0.0.1:$3" \
    --outbound "127.0.0.1:$4" --admin "127.0.0.1:$5" --route "$6" 2>"$work/$1.tracecar.log" &
  pids+=($!)
  wait_http "http://127.0.0.1:$5/readyz" "tracecar ($1)"
}

python3 "$demo/backend.py" "$app_b" 2>"$work/backend.log" &
pids+=($!)
sidecar backend "$app_b" "$b_in" "$b_out" "$b_admin" "/users/{id}"
sidecar frontend "$app_a" "$a_in" "$a_out" "$a_admin" "/profile/{id}"
# The frontend reaches the backend's sidecar through its own sidecar, its HTTP proxy.
no_proxy= NO_PROXY= python3 "$demo/frontend.py" "$app_a" "http://127.0.0.1:$b_in" \
  "http://127.0.0.1:$a_out" 2>"$work/frontend.log" &
pids+=($!)
wait_http "http://127.0.0.1:$app_a/" "the frontend"
wait_http "http://127.0.0.1:$app_b/" "the backend"

echo "demo: sending requests through tracecar (frontend sidecar at 127.0.0.1:$a_in)"
for user in 7 42 0; do
  printf '  curl http://127.0.0.1:%s/profile/%s -> ' "$a_in" "$user"
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 "http://127.0.0.1:$a_in/profile/$user"
done
echo

# 3 requests x 3 spans: frontend SERVER, frontend CLIENT, backend SERVER.
python3 "$demo/trace_tree.py" --expect 9 --wait 10 \
  "$work/frontend.spans.jsonl" "$work/backend.spans.jsonl"

cat <<EOF
metrics:  http://127.0.0.1:$a_admin/metrics  (frontend's sidecar)
          http://127.0.0.1:$b_admin/metrics  (backend's sidecar)
try:      curl http://127.0.0.1:$a_in/profile/3
spans:    $work/*.spans.jsonl (OTLP/JSON, one batch per line; removed when the demo stops
          unless DEMO_KEEP=1)
EOF

if [[ -n ${DEMO_ONESHOT:-} ]]; then
  exit 0
fi
echo "demo: running; Ctrl-C stops everything"
while true; do sleep 1; done
