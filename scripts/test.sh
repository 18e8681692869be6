#!/usr/bin/env bash
# Runs every test of tracecar on a Debian bookworm machine: installs what is missing, then
#   1. builds everything with g++ (warnings are errors) and runs the test suite;
#   2. builds everything with clang 14 under AddressSanitizer + UndefinedBehaviorSanitizer,
#      with the libFuzzer targets, and runs the test suite again, fuzzers included (briefly).
# Each suite's tests get a TMPDIR of their own; anything left in it fails the run.
# Usage: scripts/test.sh            (FUZZ_SECONDS=N to fuzz each target longer; default 15)
set -euo pipefail
source "$(dirname "$0")/args.sh"
no_arguments test "$settings_hint" "$@"
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

jobs=$(nproc)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run_suite() {  # name, build dir, cmake args...
  local name=$1 dir=$2
  shift 2
  echo "=== $name: configure and build ($dir)"
  cmake -S . -B "$dir" -G Ninja "$@" >"$logs/$name.configure" || { cat "$logs/$name.configure"; return 1; }
  cmake --build "$dir" -j "$jobs"
  echo "=== $name: tests"
  # The tests run with a TMPDIR of their own; whatever is left in it afterwards is a test that
  # did not clean up after itself, and fails the run.
  local rc=0 tmp
  tmp=$(mktemp -d --tmpdir "tracecar-test-$name.XXXXXX")
  chmod 1777 "$tmp"
  TMPDIR=$tmp ctest --test-dir "$dir" --output-on-failure -j "$jobs" 2>&1 | tee "$logs/$name.ctest" || rc=$?
  if [[ -n $(ls -A "$tmp") ]]; then
    { echo "$name: the tests left these behind in TMPDIR:"; ls -A "$tmp" | sed 's/^/  /'; } \
      | tee "$logs/$name.leftovers"
    rc=1
  fi
  rm -rf "$tmp"
  return $rc
}

status=0
run_suite gcc build/gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ || status=1
run_suite asan build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DTRACECAR_SANITIZE=ON -DTRACECAR_FUZZ=ON -DTRACECAR_BENCH=OFF \
  -DTRACECAR_FUZZ_SECONDS="${FUZZ_SECONDS:-15}" || status=1

# One closing line over both suites: "<passed> passed, <failed> failed".
passed=0
failed=0
for f in "$logs"/*.ctest; do
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$f" | tail -1 || true)
  if [[ -z $line ]]; then status=1; continue; fi
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  bad=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
  passed=$((passed + total - bad))
  failed=$((failed + bad))
done
((failed == 0)) || status=1
# Name every failed test again here, so the last lines of a run say what failed.
for f in "$logs"/*.ctest; do
  sed -n '/The following tests FAILED:/,/^$/p' "$f" | sed "s|^|$(basename "$f" .ctest): |"
done
cat "$logs"/*.leftovers 2>/dev/null || true
echo "tests: $passed passed, $failed failed"
exit $status
