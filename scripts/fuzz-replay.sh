#!/usr/bin/env bash
# Replays every saved fuzz corpus (tests/fuzz/corpus/<target>/) through its target.
set -euo pipefail
build=${1:-build-asan}
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
n=0
for bin in "$build"/tests/fuzz/fuzz_*; do
  [[ -x "$bin" ]] || continue
  target=$(basename "$bin"); target=${target#fuzz_}
  "$bin" "tests/fuzz/corpus/$target"
  n=$((n + 1))
done
[[ $n -gt 0 ]] || { echo "fuzz-replay: no fuzz targets in $build" >&2; exit 1; }
echo "fuzz-replay ($build): $n targets replayed"
