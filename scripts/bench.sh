#!/usr/bin/env bash
# Runs every benchmark binary of one build ($build/tests/bench/bench_*, built from
# tests/bench/bench_*.c by `make`) and saves each one's output in $build/bench/<name>.txt.
# Benchmarks print figures; they never pass or fail on time. A benchmark that crashes or
# exits non-zero fails this script.
#
#   scripts/bench.sh [build]        (make bench)
set -uo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."

mapfile -t benches < <(find "$build/tests/bench" -maxdepth 1 -type f -executable -name 'bench_*' \
  2>/dev/null | sort)
if [[ ${#benches[@]} -eq 0 ]]; then
  echo "bench: no benchmarks under $build/tests/bench (run make first)" >&2
  exit 1
fi
mkdir -p "$build/bench"
failed=0
for b in "${benches[@]}"; do
  name=$(basename "$b")
  out="$build/bench/$name.txt"
  echo "== $name"
  {
    echo "# $name $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || true)"
    echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    "$b"
  } | tee "$out"
  rc=${PIPESTATUS[0]}
  if [[ $rc -ne 0 ]]; then
    echo "bench: $name exited with $rc" >&2
    failed=1
  fi
done
# webhooks: a real voxi-webhooks with NATS and Postgres from testenv.sh (tests/bench/bench_webhooks.py)
echo "== bench_webhooks"
bash scripts/testenv.sh /usr/bin/python3 tests/bench/bench_webhooks.py "$build" | tee "$build/bench/bench_webhooks.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "bench: bench_webhooks failed" >&2; failed=1; }
# control-plane API: wrk against an authenticated GET and a bare route of one gateway, with
# auth, registry, NATS and Postgres from testenv.sh (tests/bench/bench_api.py)
echo "== bench_api"
bash scripts/testenv.sh /usr/bin/python3 tests/bench/bench_api.py "$build" | tee "$build/bench/bench_api.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "bench: bench_api failed" >&2; failed=1; }
# providers: engine latencies of a real voxi-providers with its own nats-server
# (tests/bench/bench_providers.py)
echo "== bench_providers"
/usr/bin/python3 tests/bench/bench_providers.py "$build" | tee "$build/bench/bench_providers.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "bench: bench_providers failed" >&2; failed=1; }
# media worker: concurrent G.711 / Opus calls under a CPU budget and call setups per second,
# one voxi-media with its own nats-server, load from tests/tools/voxi_rtp_load
# (tests/bench/bench_media.py)
echo "== bench_media"
/usr/bin/python3 tests/bench/bench_media.py "$build" | tee "$build/bench/bench_media.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "bench: bench_media failed" >&2; failed=1; }
# agent runtime: barge-in reaction and turn overhead on recordings, 1 and 200 concurrent calls
# (tests/bench/bench_agent.py starts its own NATS, Postgres, registry, providers and media)
echo "== bench_agent"
/usr/bin/python3 tests/bench/bench_agent.py "$build" | tee "$build/bench/bench_agent.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "bench: bench_agent failed" >&2; failed=1; }
# VAD: md_vad against the WebRTC VAD on a generated labelled set (tests/bench/vad/README.md)
echo "== bench_vad"
make --no-print-directory BUILD="$build" SAN=$([[ $build == build-asan ]] && echo 1 || echo 0) bench-vad ||
  { echo "bench: bench_vad failed" >&2; failed=1; }
echo "bench: output saved under $build/bench/"
exit $failed
