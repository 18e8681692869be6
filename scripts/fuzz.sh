#!/usr/bin/env bash
# Fuzzes every libFuzzer target for a bounded time each (default 60 s), with clang 14,
# ASan and UBSan. Crashes are written to build/fuzz/<target>-crash-*; the run fails on any.
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]
set -euo pipefail
source "$(dirname "$0")/args.sh"
case ${1:-} in
  -h|--help) print_usage; exit 0 ;;
esac
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: seconds per target must be a positive whole number, got '$seconds'" >&2; exit 2; }
for t in "$@"; do
  [[ -f tests/fuzz/$t.cc ]] || { echo "fuzz: no target '$t' (tests/fuzz/*_fuzz.cc)" >&2; exit 2; }
done

bash scripts/install-deps.sh
cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DTRACECAR_SANITIZE=ON -DTRACECAR_FUZZ=ON -DTRACECAR_BENCH=OFF >/dev/null
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$f" .cc)"); done
fi
cmake --build build/fuzz -j "$(nproc)" --target "${targets[@]}"

failed=0
for t in "${targets[@]}"; do
  work=build/fuzz/corpus/$t
  mkdir -p "$work"
  echo "=== $t: ${seconds}s"
  if ! build/fuzz/tests/fuzz/"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="build/fuzz/$t-" "$work" "tests/fuzz/corpus/$t"; then
    echo "=== $t: FAILED (see build/fuzz/$t-*)"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $((${#targets[@]} - failed)) passed, $failed failed"
((failed == 0))
