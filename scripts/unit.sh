#!/usr/bin/env bash
# Runs every unit test binary of one build (build/ or build-asan/) and summarises.
# Servers the tests need (NATS, Postgres) come from scripts/testenv.sh around this script.
set -uo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
[[ -f tests/lsan.supp ]] && export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"

mapfile -t tests < <(find "$build/tests/unit" -type f -executable 2>/dev/null | sort)
if [[ ${#tests[@]} -eq 0 ]]; then
  echo "unit: no test binaries under $build/tests/unit" >&2
  exit 1
fi
passed=0 failed=0 failed_names=()
for t in "${tests[@]}"; do
  if "$t"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_names+=("$t")
  fi
done
echo "unit ($build): $passed binaries passed, $failed failed ${failed_names[*]:-}"
[[ $failed -eq 0 ]]
