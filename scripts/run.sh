#!/usr/bin/env bash
# Starts the local VoxiHub stack (`make run`, after the build): nats-server with JetStream,
# a PostgreSQL cluster, the migrations, and the six services, all under ./.run/:
#
#   .run/nats/            JetStream store          .run/logs/<name>.log   every log
#   .run/pg/{data,sock}   PostgreSQL (port 5439, unix socket only; may be a symlink to
#                         /var/tmp/voxi-pg-<hash> when `postgres` cannot reach .run/)
#   .run/pids/<name>.pid  pidfiles                 .run/env               sourceable env
#
# Idempotent: what already runs (and is ready) is left alone, so a second run prints the
# same table. A service whose binary was rebuilt since it started is restarted.
#
# Usage: scripts/run.sh [BUILD_DIR]   (default: build)
# Environment: VOXI_LOG_LEVEL, VOXI_LOG_FORMAT pass through to the services;
#              RUN_READY_TIMEOUT (seconds, default 30) bounds the wait for /readyz.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VOXI_REPO"

BUILD_DIR=${1:-build}
BIN_DIR="$VOXI_REPO/$BUILD_DIR/bin"
RUN_DIR="$VOXI_REPO/.run"
LOG_DIR="$RUN_DIR/logs"
PID_DIR="$RUN_DIR/pids"
NATS_PORT=4222
NATS_MONITOR_PORT=8222
PG_PORT=5439
READY_TIMEOUT=${RUN_READY_TIMEOUT:-30}

# ---- preconditions ------------------------------------------------------------------------

missing=()
for svc in "${VOXI_SERVICES[@]}"; do
  [[ -x "$BIN_DIR/voxi-$svc" ]] || missing+=("$BUILD_DIR/bin/voxi-$svc")
done
((${#missing[@]} == 0)) || die "not built: ${missing[*]} (run \`make\` first, or \`make run\`)"
[[ -x "$PG_BIN/pg_ctl" ]] || die "$PG_BIN/pg_ctl not found (make deps installs postgresql)"
command -v curl >/dev/null || die "curl not found (make deps installs it)"

mkdir -p -- "$LOG_DIR" "$PID_DIR" "$RUN_DIR/nats"
chmod 0755 -- "$RUN_DIR" # postgres may need to traverse it

# ---- nats-server --------------------------------------------------------------------------

start_nats() {
  local pid
  if pid=$(pidfile_running "$PID_DIR/nats.pid" "$NATS_SERVER"); then
    log "nats-server already running (pid $pid)"
    wait_http_ok "http://127.0.0.1:$NATS_MONITOR_PORT/healthz" 15 "$LOG_DIR/nats.log" "$pid" \
      nats-server || die "nats-server (pid $pid) is running but not healthy"
    return 0
  fi
  rm -f -- "$PID_DIR/nats.pid"
  local port
  for port in "$NATS_PORT" "$NATS_MONITOR_PORT"; do
    if tcp_port_listening "$port"; then
      die "port $port is taken by $(port_owner "$port"), not by this repo's nats-server" \
        "(another checkout's \`make run\`? stop it first)"
    fi
  done
  log "starting nats-server on 127.0.0.1:$NATS_PORT (JetStream store .run/nats)"
  pid=$(nats_start "$LOG_DIR/nats.log" "$PID_DIR/nats.pid" "$RUN_DIR/nats" \
    "$NATS_PORT" "$NATS_MONITOR_PORT" 15) || die "nats-server failed to start (log: .run/logs/nats.log)"
}

# ---- PostgreSQL ---------------------------------------------------------------------------

# Decides where the cluster lives and prints that directory (a real path postgres can
# reach). Normally .run/pg; when `postgres` cannot traverse the repo's parents (a repo
# under /root, which is 0700) or the socket path would be too long, a per-repo directory
# in /var/tmp, with .run/pg a symlink to it.
resolve_pg_root() {
  local link="$RUN_DIR/pg" hash fallback target
  hash=$(printf '%s' "$VOXI_REPO" | sha256sum | cut -c1-12)
  fallback="/var/tmp/voxi-pg-$hash"

  if [[ -L "$link" ]]; then
    target=$(readlink -- "$link")
    [[ "$target" == "$fallback" ]] ||
      die ".run/pg points to $target, which is not this checkout's ($fallback): remove .run/pg"
    check_fallback_dir "$fallback"
    printf '%s\n' "$fallback"
    return 0
  fi
  if [[ -d "$link" ]]; then
    postgres_can_reach "$link" ||
      die "the postgres user cannot reach $link (a parent directory is not traversable):" \
        "remove .run/pg to let run.sh place the cluster under /var/tmp"
    printf '%s\n' "$link"
    return 0
  fi
  [[ ! -e "$link" ]] || die ".run/pg exists but is neither a directory nor a symlink"

  if postgres_can_reach "$RUN_DIR" && ((${#link} + 25 < 107)); then
    pg_prepare_root "$link" || die "cannot create $link"
    printf '%s\n' "$link"
    return 0
  fi
  log "the postgres user cannot reach $RUN_DIR (or the socket path is too long):" \
    "placing the cluster in $fallback (.run/pg links to it)"
  check_fallback_dir "$fallback"
  pg_prepare_root "$fallback" || die "cannot create $fallback"
  printf '%s\n' "$VOXI_REPO" >"$fallback/repo"
  ln -s -- "$fallback" "$link"
  printf '%s\n' "$fallback"
}

# /var/tmp is world-writable: refuse a fallback dir that someone else planted.
check_fallback_dir() {
  local dir=$1 owner
  [[ -e "$dir" ]] || return 0
  [[ -d "$dir" && ! -L "$dir" ]] || die "$dir exists and is not a directory: remove it"
  owner=$(stat -c %U -- "$dir")
  [[ "$owner" == postgres ]] || die "$dir is owned by $owner, not postgres: remove it"
  if [[ -r "$dir/repo" && "$(cat -- "$dir/repo")" != "$VOXI_REPO" ]]; then
    die "$dir belongs to checkout $(cat -- "$dir/repo"), not $VOXI_REPO"
  fi
}

start_postgres() {
  local pid
  if pid=$(pg_postmaster_pid "$PG_DATA"); then
    log "PostgreSQL already running (pid $pid)"
    "$PG_BIN/pg_isready" -q -h "$PG_SOCK" -p "$PG_PORT" -t 10 ||
      die "PostgreSQL (pid $pid) is running but not accepting connections on $PG_SOCK:$PG_PORT"
  else
    if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
      log "initialising PostgreSQL cluster in $PG_DATA"
      pg_init "$PG_DATA" || die "initdb failed"
    fi
    log "starting PostgreSQL on port $PG_PORT (socket $PG_SOCK)"
    pg_start "$PG_DATA" "$PG_SOCK" "$PG_PORT" "$PG_ROOT/server.log" 30 ||
      die "PostgreSQL failed to start (log: .run/logs/postgres.log)"
  fi
  ln -sfn -- "$PG_ROOT/server.log" "$LOG_DIR/postgres.log"

  local exists
  exists=$("$PG_BIN/psql" -h "$PG_SOCK" -p "$PG_PORT" -U voxi -d postgres -XAtq \
    -c "select 1 from pg_database where datname = 'voxi'") || die "cannot query PostgreSQL"
  if [[ "$exists" != 1 ]]; then
    log "creating database voxi"
    "$PG_BIN/createdb" -h "$PG_SOCK" -p "$PG_PORT" -U voxi voxi || die "createdb voxi failed"
  fi
}

# ---- environment --------------------------------------------------------------------------

write_env() {
  local name tmp="$RUN_DIR/env.tmp"
  {
    printf '# Written by scripts/run.sh: the environment of the local stack. Source it:\n'
    printf '#   source .run/env\n'
    for name in "${ENV_NAMES[@]}"; do
      printf 'export %s=%s\n' "$name" "$(shquote "${!name}")"
    done
  } >"$tmp"
  mv -f -- "$tmp" "$RUN_DIR/env"
}

# ---- services -----------------------------------------------------------------------------

declare -A SVC_PID=()

# Starts one service unless it already runs this repo's current binary.
start_service() {
  local svc=$1 bin="$BIN_DIR/voxi-$1" pidfile="$PID_DIR/$1.pid" log="$LOG_DIR/$1.log"
  local port=${VOXI_HEALTH_PORTS[$svc]} pid p
  if pid=$(pidfile_running "$pidfile" "$bin"); then
    if pid_exe_replaced "$pid"; then
      log "$svc (pid $pid) runs an older build of voxi-$svc: restarting it"
      stop_pidfile "$svc" "$pidfile" "$bin" 10 || die "could not stop $svc (pid $pid)"
    else
      SVC_PID[$svc]=$pid
      return 0
    fi
  fi
  rm -f -- "$pidfile"
  local ports=("$port")
  [[ "$svc" == gateway ]] && ports+=("$VOXI_GATEWAY_HTTP_PORT")
  for p in "${ports[@]}"; do
    if tcp_port_listening "$p"; then
      die "cannot start $svc: port $p is taken by $(port_owner "$p")"
    fi
  done
  if [[ "$svc" == media ]] && udp_port_in_use "$VOXI_SIP_PORT_DEFAULT"; then
    die "cannot start media: UDP port $VOXI_SIP_PORT_DEFAULT (SIP) is in use"
  fi
  pid=$(spawn_daemon "$log" "$pidfile" "$bin") || die "could not start $svc"
  log "started $svc (pid $pid)"
  SVC_PID[$svc]=$pid
}

# Waits for every service's /readyz within one shared deadline.
wait_services_ready() {
  local deadline=$(($(now_ms) + READY_TIMEOUT * 1000)) failed=() svc left
  for svc in "${VOXI_SERVICES[@]}"; do
    left=$(((deadline - $(now_ms) + 999) / 1000))
    ((left >= 0)) || left=0
    if ! wait_http_ok "http://127.0.0.1:${VOXI_HEALTH_PORTS[$svc]}/readyz" "$left" \
      "$LOG_DIR/$svc.log" "${SVC_PID[$svc]}" "$svc"; then
      failed+=("$svc")
    fi
  done
  if ((${#failed[@]})); then
    die "not ready: ${failed[*]} (see above; logs in .run/logs/;" \
      "\`make status\` shows the state, \`make stop\` stops what runs)"
  fi
}

print_table() {
  local svc
  printf '\nVoxiHub local stack is up.\n\n'
  printf '  %-10s %-8s %s\n' service pid 'side port (/healthz /readyz /metrics)'
  for svc in "${VOXI_SERVICES[@]}"; do
    printf '  %-10s %-8s %s\n' "$svc" "${SVC_PID[$svc]}" \
      "http://127.0.0.1:${VOXI_HEALTH_PORTS[$svc]}"
  done
  printf '\n'
  printf '  %-10s %s\n' 'API' "http://127.0.0.1:$VOXI_GATEWAY_HTTP_PORT"
  printf '  %-10s %s\n' 'NATS' "$VOXI_NATS_URL  (monitoring http://127.0.0.1:$NATS_MONITOR_PORT)"
  printf '  %-10s %s\n' 'Postgres' "$VOXI_DATABASE_URL"
  printf '  %-10s %s\n' 'SIP' "sip:127.0.0.1:$VOXI_SIP_PORT_DEFAULT (UDP and TCP)"
  printf '  %-10s %s\n' 'logs' "$LOG_DIR/"
  printf '  %-10s %s\n' 'env' "source $RUN_DIR/env"
  printf '\n  make status   |   make stop\n'
}

# ---- main ---------------------------------------------------------------------------------

start_nats

PG_ROOT=$(resolve_pg_root)
PG_DATA="$PG_ROOT/data"
PG_SOCK="$PG_ROOT/sock"
start_postgres

export VOXI_LOG_LEVEL=${VOXI_LOG_LEVEL:-info}
export VOXI_LOG_FORMAT=${VOXI_LOG_FORMAT:-logfmt}
export VOXI_NATS_URL="nats://127.0.0.1:$NATS_PORT"
export VOXI_HEALTH_ADDR=127.0.0.1
VOXI_DATABASE_URL=$(pg_conninfo "$PG_SOCK" "$PG_PORT" voxi)
export VOXI_DATABASE_URL
export VOXI_MIGRATIONS_DIR="$VOXI_REPO/migrations"
export VOXI_GATEWAY_HTTP_PORT=$VOXI_GATEWAY_HTTP_PORT_DEFAULT
ENV_NAMES=(VOXI_LOG_LEVEL VOXI_LOG_FORMAT VOXI_NATS_URL VOXI_HEALTH_ADDR VOXI_DATABASE_URL
  VOXI_MIGRATIONS_DIR VOXI_GATEWAY_HTTP_PORT)
for svc in "${VOXI_SERVICES[@]}"; do
  export "VOXI_${svc^^}_HEALTH_PORT=${VOXI_HEALTH_PORTS[$svc]}"
  ENV_NAMES+=("VOXI_${svc^^}_HEALTH_PORT")
done
write_env

log "applying migrations"
if ! timeout 60 "$BIN_DIR/voxi-registry" migrate >"$LOG_DIR/migrate.log" 2>&1; then
  log "error: voxi-registry migrate failed (or took over 60s)"
  show_log_tail "$LOG_DIR/migrate.log"
  exit 1
fi
grep -h 'migrations:' "$LOG_DIR/migrate.log" | tail -n 1 | sed "s/^/$LIB_PROG: /" >&2 || true

# First org and platform-admin key on an empty database; the key is printed only this once.
ADMIN_KEY_FILE="$RUN_DIR/admin_api_key"
if ! admin_out=$(timeout 60 "$BIN_DIR/voxi-auth" bootstrap --key-file "$ADMIN_KEY_FILE" \
  2>>"$LOG_DIR/bootstrap.log"); then
  log "error: voxi-auth bootstrap failed (or took over 60s)"
  show_log_tail "$LOG_DIR/bootstrap.log"
  exit 1
fi

for svc in "${VOXI_SERVICES[@]}"; do
  start_service "$svc"
done
wait_services_ready
bash "$VOXI_REPO/scripts/demo-agent.sh" || log "warning: the demo agent was not created (see above)"
print_table
if [[ "$admin_out" =~ ^vx_[0-9A-Za-z]+$ ]]; then
  printf '\n  platform-admin API key (shown this once): %s\n' "$admin_out"
  printf '  also written to %s (mode 0600)\n' "$ADMIN_KEY_FILE"
elif [[ -f "$ADMIN_KEY_FILE" ]]; then
  printf '\n  platform-admin API key: in %s\n' "$ADMIN_KEY_FILE"
else
  printf '\n  %s\n' "$admin_out"
fi
