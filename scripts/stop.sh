#!/usr/bin/env bash
# Stops the local stack that scripts/run.sh started (`make stop`): SIGTERM to the six
# services at once (they drain and exit within 5 s), a bounded wait, SIGKILL for any
# straggler, then nats-server and PostgreSQL (pg_ctl stop -m fast). Only processes named
# by .run/pids/*.pid (and the cluster in .run/pg) are touched, each checked by pid and
# executable. Safe when nothing runs. Exits non-zero only if a process survives.
#
# Usage: scripts/stop.sh
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VOXI_REPO"

RUN_DIR="$VOXI_REPO/.run"
PID_DIR="$RUN_DIR/pids"
SERVICE_TIMEOUT=${STOP_SERVICE_TIMEOUT:-10}

if [[ ! -d "$RUN_DIR" ]]; then
  log "nothing to stop (no .run/)"
  exit 0
fi

status=0
stopped=0

# ---- services: SIGTERM all, then wait with one shared bound --------------------------------

declare -A pids=()
for svc in "${VOXI_SERVICES[@]}"; do
  pidfile="$PID_DIR/$svc.pid"
  pid=$(read_pidfile "$pidfile")
  if [[ -z "$pid" ]] || ! pid_alive "$pid"; then
    rm -f -- "$pidfile"
    continue
  fi
  # The pidfile may name a rebuilt binary (exe shows as deleted) but must be voxi-<svc>
  # from this repo; anything else means the pid was reused: leave that process alone.
  exe=$(pid_exe "$pid")
  if [[ "$(basename -- "$exe")" != "voxi-$svc" || "$exe" != "$VOXI_REPO"/* ]]; then
    warn "$pidfile names pid $pid, which runs ${exe:-an unknown program}: not ours, leaving it"
    rm -f -- "$pidfile"
    continue
  fi
  kill -TERM "$pid" 2>/dev/null || true
  pids[$svc]=$pid
done

deadline=$(($(now_ms) + SERVICE_TIMEOUT * 1000))
for svc in "${VOXI_SERVICES[@]}"; do
  pid=${pids[$svc]:-}
  [[ -n "$pid" ]] || continue
  left=$(((deadline - $(now_ms) + 999) / 1000))
  ((left >= 0)) || left=0
  if wait_pid_gone "$pid" "$left"; then
    log "stopped $svc (pid $pid)"
  else
    warn "$svc (pid $pid) did not exit within ${SERVICE_TIMEOUT}s of SIGTERM: sending SIGKILL" \
      "(see .run/logs/$svc.log)"
    kill -KILL "$pid" 2>/dev/null || true
    if wait_pid_gone "$pid" 5; then
      log "killed $svc (pid $pid)"
    else
      log "error: $svc (pid $pid) is still alive after SIGKILL"
      status=1
      continue
    fi
  fi
  stopped=$((stopped + 1))
  rm -f -- "$PID_DIR/$svc.pid"
done

# ---- nats-server --------------------------------------------------------------------------

if pidfile_running "$PID_DIR/nats.pid" "$NATS_SERVER" >/dev/null; then
  if stop_pidfile nats-server "$PID_DIR/nats.pid" "$NATS_SERVER" 10; then
    stopped=$((stopped + 1))
  else
    status=1
  fi
else
  stop_pidfile nats-server "$PID_DIR/nats.pid" "$NATS_SERVER" 10 # warns about a reused pid
fi

# ---- PostgreSQL ---------------------------------------------------------------------------

if [[ -e "$RUN_DIR/pg/data" ]]; then
  PG_DATA=$(readlink -f -- "$RUN_DIR/pg/data")
  if pid=$(pg_postmaster_pid "$PG_DATA"); then
    if pg_stop "$PG_DATA" 30; then
      log "stopped PostgreSQL (pid $pid)"
      stopped=$((stopped + 1))
    else
      status=1
    fi
  fi
fi

# ---- leftovers: stray pidfiles from older runs ----------------------------------------------

shopt -s nullglob
for pidfile in "$PID_DIR"/*.pid; do
  pid=$(read_pidfile "$pidfile")
  if [[ -n "$pid" ]] && pid_alive "$pid"; then
    warn "$pidfile names live pid $pid ($(pid_exe "$pid")), which stop.sh does not manage"
  else
    rm -f -- "$pidfile"
  fi
done

if ((status != 0)); then
  die "some processes could not be stopped (see above)"
fi
if ((stopped == 0)); then
  log "nothing was running"
else
  log "local stack stopped"
fi
