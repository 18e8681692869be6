#!/usr/bin/env bash
# Smoke test of the container image: builds it with scripts/image.sh (the debootstrap base takes
# minutes the first time), then inside the image runs `tracecar --version` and one request
# through `tracecar run` to an app on the host (host network), whose span must be exported.
# Runs only with TRACECAR_IMAGE_TEST=1 (and root); otherwise prints SKIP.
# Usage: smoke_test.sh TRACECAR_BINARY
set -euo pipefail
binary=${1:?usage: smoke_test.sh TRACECAR_BINARY}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [[ ${TRACECAR_IMAGE_TEST:-} != 1 ]]; then
  echo "SKIP image: set TRACECAR_IMAGE_TEST=1 to build the image (debootstrap, minutes) and run it"
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
  echo "SKIP image: needs root, buildah and debootstrap"
  exit 0
fi

fail() { echo "FAIL image: $*"; exit 1; }
start=$(date +%s)
tag=$(bash "$repo/scripts/image.sh" --binary "$binary") || fail "scripts/image.sh failed"
built=$(date +%s)
eval "$(bash "$repo/scripts/image.sh" --print-env)"

work=$(mktemp -d /tmp/tracecar-image-test.XXXXXX)
chmod 777 "$work"
container=""
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n $container ]] && buildah rm "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

container=$(buildah from "$tag")
version=$(buildah run --network host "$container" -- /usr/local/bin/tracecar --version) ||
  fail "tracecar --version failed in the image"
[[ $version == "$("$binary" --version)" ]] || fail "version in the image: $version"

# The app: a one-file HTTP server on the host that answers with the traceparent it got.
cat >"$work/app.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("traceparent=%s\n" % self.headers.get("traceparent")).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_port)); s.serve_forever()
PY
/usr/bin/python3 "$work/app.py" "$work/app.port" & pids+=($!)
for _ in $(seq 50); do [[ -s $work/app.port ]] && break; sleep 0.1; done
app_port=$(cat "$work/app.port")

# The sidecar in the image (its own user, 1337), host network and host PIDs so that the test
# can reach its port and stop it.
buildah run --network host --pid host -v "$work:/out" \
  --env OTEL_TRACES_EXPORTER=console --env TRACECAR_CONSOLE_EXPORT_PATH=/out/spans.jsonl \
  --env OTEL_BSP_SCHEDULE_DELAY=100 --env OTEL_SERVICE_NAME=image-smoke "$container" -- \
  /usr/local/bin/tracecar run --inbound 127.0.0.1:0 --outbound 127.0.0.1:0 --admin 127.0.0.1:0 \
  --app "127.0.0.1:$app_port" --ready-file /out/ready.json >"$work/sidecar.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/ready.json ]] && break; sleep 0.1; done
[[ -s $work/ready.json ]] || fail "tracecar run did not start in the image: $(cat "$work/sidecar.log")"
inbound=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inbound"])' "$work/ready.json")
pid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$work/ready.json")
pids+=("$pid")
answer=$(curl -s --max-time 5 "http://127.0.0.1:$inbound/users/7") || fail "request through the image failed"
[[ $answer == traceparent=00-* ]] || fail "the app got no traceparent: $answer"
trace_id=${answer:15:32}
for _ in $(seq 100); do grep -q "$trace_id" "$work/spans.jsonl" 2>/dev/null && break; sleep 0.1; done
grep -q "$trace_id" "$work/spans.jsonl" 2>/dev/null || fail "no span for trace $trace_id: $(cat "$work/sidecar.log")"
echo "image: $tag built in $((built - start)) s; --version and one traced request passed"
echo "PASS image"
