#!/usr/bin/env bash
# Shows the state of the local stack (`make status`): one line per service (name, pid or
# "-", ready / not ready / down, side port), then nats-server and PostgreSQL.
# Exits 1 if any of the six services is not ready.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VOXI_REPO"

RUN_DIR="$VOXI_REPO/.run"
PID_DIR="$RUN_DIR/pids"
NATS_PORT=4222
NATS_MONITOR_PORT=8222
PG_PORT=5439

not_ready=0
row() { printf '%-10s %-8s %-10s %s\n' "$@"; }

# state_of URL PID: ready | not ready (<reason>) | down
readyz_state() {
  local url=$1 pid=$2 out code body
  if [[ -z "$pid" ]]; then
    echo down
    return
  fi
  out=$(curl -s --connect-timeout 1 --max-time 2 -w '\n%{http_code}' "$url" 2>/dev/null) || true
  code=${out##*$'\n'}
  body=${out%$'\n'*}
  body=${body//$'\n'/ }
  if [[ "$code" == 2?? ]]; then
    echo ready
  elif [[ "$code" == 000 || -z "$code" ]]; then
    echo "not ready (no answer)"
  else
    echo "not ready (HTTP $code${body:+ ${body:0:120}})"
  fi
}

row NAME PID STATE ADDRESS
for svc in "${VOXI_SERVICES[@]}"; do
  pid=$(read_pidfile "$PID_DIR/$svc.pid")
  if [[ -n "$pid" ]]; then
    exe=$(pid_exe "$pid")
    if ! pid_alive "$pid" || [[ "$(basename -- "$exe")" != "voxi-$svc" ]]; then
      pid=""
    fi
  fi
  url="http://127.0.0.1:${VOXI_HEALTH_PORTS[$svc]}"
  state=$(readyz_state "$url/readyz" "$pid")
  [[ "$state" == ready ]] || not_ready=$((not_ready + 1))
  extra=""
  [[ -n "$pid" ]] && pid_exe_replaced "$pid" && extra="  (binary rebuilt since start)"
  row "$svc" "${pid:--}" "${state%% (*}" "$url$extra"
  [[ "$state" == "not ready ("* ]] && printf '%-10s %s\n' "" "${state#not ready }"
done

# nats-server
pid=$(pidfile_running "$PID_DIR/nats.pid" "$NATS_SERVER" || true)
if [[ -z "$pid" ]]; then
  state=down
elif [[ "$(http_status "http://127.0.0.1:$NATS_MONITOR_PORT/healthz")" == 200 ]]; then
  state=ready
else
  state="not ready"
fi
row nats "${pid:--}" "$state" "nats://127.0.0.1:$NATS_PORT"

# PostgreSQL
pid="" state=down addr="port $PG_PORT"
if [[ -e "$RUN_DIR/pg/data" ]]; then
  pg_root=$(readlink -f -- "$RUN_DIR/pg")
  addr=$(pg_conninfo "$pg_root/sock" "$PG_PORT" voxi)
  if pid=$(pg_postmaster_pid "$pg_root/data" 2>/dev/null); then
    if "$PG_BIN/pg_isready" -q -h "$pg_root/sock" -p "$PG_PORT" -t 2; then
      state=ready
    else
      state="not ready"
    fi
  fi
fi
row postgres "${pid:--}" "$state" "$addr"

if ((not_ready > 0)); then
  printf '\n%d of %d services not ready (logs: .run/logs/; start: make run)\n' \
    "$not_ready" "${#VOXI_SERVICES[@]}"
  exit 1
fi
