#!/usr/bin/env bash
# Runs a command with throwaway servers for tests that need them (`make test` wraps the
# unit tests in it):
#
#   scripts/testenv.sh CMD [ARGS...]
#
# Starts a nats-server (JetStream on, free port, temporary store) and a PostgreSQL cluster
# (temporary, owned by `postgres`, free port, unix socket only), exports
#
#   VOXI_TEST_NATS_URL=nats://127.0.0.1:<port>
#   VOXI_TEST_NATS_MONITOR_URL=http://127.0.0.1:<port>
#   VOXI_TEST_PG_DSN="host=<sockdir> port=<port> user=voxi dbname=postgres"
#
# runs CMD, then stops both servers and deletes the temporary directory, also when CMD
# fails or the run is interrupted (Ctrl-C, SIGTERM). Exits with CMD's status.
# The temporary directory lives under $TESTENV_TMPDIR (default /var/tmp), which the
# postgres user can reach whatever the repo's location.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if (($# == 0)); then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

TMP_PARENT=${TESTENV_TMPDIR:-/var/tmp}
TMP=""
NATS_PID=""
PG_DATA=""
CLEANED=0

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  ((CLEANED)) && return 0
  CLEANED=1
  trap - INT TERM HUP
  set +e
  if [[ -n "$NATS_PID" ]]; then
    stop_pid nats-server "$NATS_PID" 10 || { ((rc)) || rc=1; }
  fi
  if [[ -n "$PG_DATA" ]]; then
    pg_stop "$PG_DATA" 30 || { ((rc)) || rc=1; }
  fi
  if [[ -n "$TMP" && -d "$TMP" ]]; then
    if [[ -n "${TESTENV_KEEP:-}" ]]; then
      log "keeping $TMP (TESTENV_KEEP is set)"
    else
      rm -rf -- "$TMP"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

[[ -d "$TMP_PARENT" ]] || die "$TMP_PARENT does not exist (set TESTENV_TMPDIR)"
TMP=$(mktemp -d "$TMP_PARENT/voxi-testenv.XXXXXXXX")
chmod 0755 -- "$TMP"
postgres_can_reach "$TMP" || die "the postgres user cannot reach $TMP (set TESTENV_TMPDIR)"

# ---- nats-server ----
nats_port=$(find_free_port)
nats_mport=$(find_free_port "$nats_port")
NATS_PID=$(nats_start "$TMP/nats.log" "$TMP/nats.pid" "$TMP/nats" "$nats_port" "$nats_mport" 15) ||
  die "nats-server did not start"

# ---- PostgreSQL ----
pg_port=$(find_free_port "$nats_port" "$nats_mport")
pg_prepare_root "$TMP/pg" || die "cannot create $TMP/pg"
PG_DATA="$TMP/pg/data"
pg_init "$PG_DATA" || die "initdb failed"
# Durability is pointless for a throwaway cluster: trade it for speed.
pg_start "$PG_DATA" "$TMP/pg/sock" "$pg_port" "$TMP/pg/server.log" 30 \
  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" ||
  die "PostgreSQL did not start"

export VOXI_TEST_NATS_URL="nats://127.0.0.1:$nats_port"
export VOXI_TEST_NATS_MONITOR_URL="http://127.0.0.1:$nats_mport"
VOXI_TEST_PG_DSN=$(pg_conninfo "$TMP/pg/sock" "$pg_port" postgres)
export VOXI_TEST_PG_DSN

set +e
"$@"
rc=$?
set -e
exit "$rc"
