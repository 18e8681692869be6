#!/usr/bin/env bash
# Builds the microbenchmarks (release, g++) and prints their figures.
# Usage: scripts/bench.sh [google-benchmark flags, e.g. --benchmark_filter=Traceparent]
set -euo pipefail
source "$(dirname "$0")/args.sh"
case ${1:-} in
  -h|--help) print_usage
             echo "Each benchmark's own flags: build/bench/bench/<name>_bench --help"; exit 0 ;;
esac
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRACECAR_TESTS=OFF >/dev/null
cmake --build build/bench -j "$(nproc)"
for b in build/bench/bench/*_bench; do
  echo "=== $(basename "$b")"
  "$b" "$@"
done
