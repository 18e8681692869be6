#!/usr/bin/env bash
# Builds the microbenchmarks (release, g++) and prints their figures.
# Usage: scripts/bench.sh [google-benchmark flags, e.g. --benchmark_filter=Traceparent]
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
             echo "Each benchmark's own flags: build/bench/bench/<name>_bench --help"; exit 0 ;;
esac
bash scripts/install-deps.sh
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRACECAR_TESTS=OFF >/dev/null
cmake --build build/bench -j "$(nproc)"
for b in build/bench/bench/*_bench; do
  echo "=== $(basename "$b")"
  "$b" "$@"
done
