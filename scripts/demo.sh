#!/usr/bin/env bash
# `make demo`: two scripted calls to the local stack's demo agent (see scripts/demo.py),
# printing transcripts and per-turn latencies. Needs `make run` up (it creates the agent).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VOXI_REPO"
command -v sipp >/dev/null || die "sipp not found (make deps installs sip-tester)"
command -v flite >/dev/null || die "flite not found (make deps installs it)"
[[ -f .run/env ]] || die "the local stack is not running: \`make run\` first"
bash scripts/demo-agent.sh
# shellcheck disable=SC1091
source .run/env
exec /usr/bin/python3 scripts/demo.py "$VOXI_NATS_URL" "127.0.0.1:$VOXI_SIP_PORT_DEFAULT"
