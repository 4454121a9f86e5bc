# shellcheck shell=bash
# Shared helpers for scripts/run.sh, stop.sh, status.sh and testenv.sh. Source it:
#
#   source "$(dirname "$0")/lib.sh"
#
# Conventions: every wait is bounded and, on failure, says what it waited for and shows
# the tail of the relevant log; processes are tracked by pidfile and checked by pid and
# executable (a stale pidfile whose pid now belongs to another program is ignored).
# Functions return non-zero on failure instead of exiting, so callers decide; `die` exits.

# ---- paths and defaults -------------------------------------------------------------------

VOXI_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
NATS_CONF=${NATS_CONF:-$VOXI_REPO/deploy/nats/nats.conf}

# shellcheck disable=SC2034 # used by the scripts that source this file
VOXI_SERVICES=(gateway auth registry webhooks media providers)
# shellcheck disable=SC2034
declare -A VOXI_HEALTH_PORTS=(
  [gateway]=9101 [auth]=9102 [registry]=9103 [webhooks]=9104 [media]=9105 [providers]=9106
)
# shellcheck disable=SC2034
VOXI_GATEWAY_HTTP_PORT_DEFAULT=8080
# shellcheck disable=SC2034
VOXI_SIP_PORT_DEFAULT=5060

LIB_PROG=${LIB_PROG:-$(basename "${0:-voxi}" .sh)}

# ---- messages -----------------------------------------------------------------------------

log() { printf '%s: %s\n' "$LIB_PROG" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$LIB_PROG" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$LIB_PROG" "$*" >&2
  exit 1
}

# show_log_tail FILE [LINES]: prints the end of a log to stderr (follows symlinks). For logs
# that spawn_daemon appends to, only what the latest start wrote.
show_log_tail() {
  local file=$1 lines=${2:-30} from
  if [[ -r "$file" ]]; then
    from=$(grep -n '^==== .*: starting ' -- "$file" 2>/dev/null | tail -n 1 | cut -d: -f1)
    printf -- '---- last lines of %s ----\n' "$file" >&2
    tail -n "+${from:-1}" -- "$file" | tail -n "$lines" >&2 || true
    printf -- '---- end of %s ----\n' "$file" >&2
  else
    printf -- '(no log at %s)\n' "$file" >&2
  fi
}

# now_ms: wall clock in milliseconds (bash 5 EPOCHREALTIME, locale-independent).
now_ms() {
  local t=${EPOCHREALTIME//[!0-9]/}
  echo $((10#$t / 1000))
}

# ---- processes ----------------------------------------------------------------------------

# pid_alive PID: true if the process exists and is not a zombie.
pid_alive() {
  local pid=$1 stat state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state%% *}
  [[ "$state" != Z && "$state" != X ]]
}

# pid_exe PID: the executable's path, without the " (deleted)" suffix Linux adds when the
# file was replaced (a rebuilt binary). Prints nothing if unknown.
pid_exe() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 0
  printf '%s\n' "${exe% (deleted)}"
}

# pid_exe_replaced PID: true if the running executable was deleted or replaced on disk.
pid_exe_replaced() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  [[ "$exe" == *" (deleted)" ]]
}

# read_pidfile FILE: prints the pid stored in FILE (first line), or nothing.
read_pidfile() {
  local file=$1 pid=""
  [[ -r "$file" ]] || return 0
  IFS= read -r pid <"$file" || true
  [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
  return 0
}

# pidfile_running FILE [EXE]: prints the pid and succeeds if FILE names a live process
# (and, when EXE is given, one running that executable).
pidfile_running() {
  local file=$1 want=${2:-} pid exe
  pid=$(read_pidfile "$file")
  [[ -n "$pid" ]] && pid_alive "$pid" || return 1
  if [[ -n "$want" ]]; then
    exe=$(pid_exe "$pid")
    [[ "$exe" == "$(readlink -f -- "$want" 2>/dev/null || printf '%s' "$want")" ]] || return 1
  fi
  printf '%s\n' "$pid"
}

# wait_pid_gone PID TIMEOUT_S: waits until the process is gone; false on timeout.
wait_pid_gone() {
  local pid=$1 deadline=$(($(now_ms) + $2 * 1000))
  while pid_alive "$pid"; do
    (($(now_ms) < deadline)) || return 1
    sleep 0.05
  done
  # Reap it if it is our child (harmless otherwise).
  wait "$pid" 2>/dev/null || true
  return 0
}

# stop_pid NAME PID [TIMEOUT_S=10]: SIGTERM, wait (bounded), then SIGKILL and wait again.
# Succeeds once the pid is gone; fails (with a message) only if it survives SIGKILL.
stop_pid() {
  local name=$1 pid=$2 timeout=${3:-10}
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if wait_pid_gone "$pid" "$timeout"; then
    return 0
  fi
  warn "$name (pid $pid) did not exit within ${timeout}s of SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  if wait_pid_gone "$pid" 5; then
    return 0
  fi
  log "error: $name (pid $pid) is still alive after SIGKILL"
  return 1
}

# stop_pidfile NAME PIDFILE [EXE] [TIMEOUT_S]: stops the process a pidfile names (if it is
# alive and runs EXE, replaced binaries included) and removes the pidfile. Prints a line.
stop_pidfile() {
  local name=$1 file=$2 want=${3:-} timeout=${4:-10} pid exe
  pid=$(read_pidfile "$file")
  if [[ -z "$pid" ]] || ! pid_alive "$pid"; then
    rm -f -- "$file"
    return 0
  fi
  if [[ -n "$want" ]]; then
    exe=$(pid_exe "$pid")
    if [[ "$exe" != "$(readlink -f -- "$want" 2>/dev/null || printf '%s' "$want")" ]]; then
      warn "$file names pid $pid, which runs ${exe:-something else}, not $want: leaving it alone"
      rm -f -- "$file"
      return 0
    fi
  fi
  if stop_pid "$name" "$pid" "$timeout"; then
    log "stopped $name (pid $pid)"
    rm -f -- "$file"
    return 0
  fi
  return 1
}

# spawn_daemon LOGFILE PIDFILE CMD [ARGS...]: starts CMD in its own session (so it
# survives the caller, make, and Ctrl-C in the caller's terminal), stdin from /dev/null,
# stdout+stderr appended to LOGFILE. The process writes its own pid to PIDFILE before
# exec, so the pidfile holds the real pid whatever setsid does. Prints the pid.
spawn_daemon() {
  local logfile=$1 pidfile=$2 pid="" deadline
  shift 2
  rm -f -- "$pidfile"
  printf '==== %s: starting %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >>"$logfile"
  # shellcheck disable=SC2016 # $$ and $@ expand in the child shell
  setsid bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
    </dev/null >>"$logfile" 2>&1 &
  deadline=$(($(now_ms) + 5000))
  while :; do
    pid=$(read_pidfile "$pidfile")
    [[ -n "$pid" ]] && break
    if (($(now_ms) >= deadline)); then
      log "error: $1 did not start (no pidfile $pidfile after 5s)"
      show_log_tail "$logfile"
      return 1
    fi
    sleep 0.02
  done
  printf '%s\n' "$pid"
}

# ---- ports --------------------------------------------------------------------------------

# tcp_port_in_use PORT: true if any TCP socket (listening, connected or closing) uses PORT
# locally: stricter than tcp_port_listening, for picking a port nobody touches.
tcp_port_in_use() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Htan "sport = :$port" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# tcp_port_listening PORT: true if something listens on TCP PORT (any address).
tcp_port_listening() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# udp_port_in_use PORT
udp_port_in_use() {
  command -v ss >/dev/null 2>&1 || return 1
  [[ -n "$(ss -Huan "sport = :$1" 2>/dev/null)" ]]
}

# port_owner PORT: a short description of who listens on a TCP port (for messages).
port_owner() {
  local out
  out=$(ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n 1)
  printf '%s\n' "${out:-unknown process}"
}

# find_free_port [EXCLUDE...]: prints a TCP port in 21000-31999 that no socket uses and
# that is not among EXCLUDE (ports the caller already picked but has not bound yet). Stays
# below the kernel's ephemeral range (32768+) and clear of the RTP range 20000-20999.
find_free_port() {
  local port tries=0 ex taken
  while ((tries++ < 200)); do
    port=$((21000 + (RANDOM * 32768 + RANDOM) % 11000))
    taken=0
    for ex in "$@"; do [[ "$ex" == "$port" ]] && taken=1; done
    ((taken)) && continue
    tcp_port_in_use "$port" && continue
    printf '%s\n' "$port"
    return 0
  done
  log "error: found no free TCP port in 21000-31999 after 200 tries"
  return 1
}

# ---- HTTP ---------------------------------------------------------------------------------

# http_status URL: prints the HTTP status code (000 when nothing answered).
http_status() {
  curl -s -o /dev/null -w '%{http_code}' --connect-timeout 1 --max-time 2 "$1" 2>/dev/null || true
}

# shquote STRING: STRING in single quotes, safe to paste into a shell.
shquote() {
  local q="'\\''"
  printf "'%s'\n" "${1//\'/$q}"
}

# wait_http_ok URL TIMEOUT_S [LOGFILE] [PID] [WHAT]: waits until URL answers 2xx. Fails
# early if PID is given and the process dies. On failure prints the last status and body
# (a /readyz 503 carries the reason) and the tail of LOGFILE.
wait_http_ok() {
  local url=$1 timeout=$2 logfile=${3:-} pid=${4:-} what=${5:-$1}
  local deadline=$(($(now_ms) + timeout * 1000)) body code
  while :; do
    body=$(curl -s --connect-timeout 1 --max-time 2 -w '\n%{http_code}' "$url" 2>/dev/null) || true
    code=${body##*$'\n'}
    [[ "$code" == 2?? ]] && return 0
    if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
      log "error: $what: process $pid exited while waiting for $url"
      [[ -n "$logfile" ]] && show_log_tail "$logfile"
      return 1
    fi
    if (($(now_ms) >= deadline)); then
      body=${body%$'\n'*}
      log "error: $what: $url not OK after ${timeout}s (last answer: HTTP ${code:-000}${body:+ $body})"
      [[ -n "$logfile" ]] && show_log_tail "$logfile"
      return 1
    fi
    sleep 0.1
  done
}

# ---- nats-server --------------------------------------------------------------------------

# nats_start LOGFILE PIDFILE STOREDIR PORT MONITOR_PORT [TIMEOUT_S=15]: starts nats-server
# with JetStream on 127.0.0.1 and waits for its /healthz (which includes JetStream).
# Prints the pid.
nats_start() {
  local logfile=$1 pidfile=$2 store=$3 port=$4 mport=$5 timeout=${6:-15} pid
  [[ -x "$NATS_SERVER" ]] || {
    log "error: $NATS_SERVER not found (install nats-server: make deps)"
    return 1
  }
  mkdir -p -- "$store"
  pid=$(spawn_daemon "$logfile" "$pidfile" "$NATS_SERVER" -c "$NATS_CONF" \
    -js -sd "$store" -a 127.0.0.1 -p "$port" -m "$mport") || return 1
  if ! wait_http_ok "http://127.0.0.1:$mport/healthz" "$timeout" "$logfile" "$pid" nats-server; then
    stop_pid nats-server "$pid" 5 || true
    rm -f -- "$pidfile"
    return 1
  fi
  printf '%s\n' "$pid"
}

# ---- PostgreSQL ---------------------------------------------------------------------------
# initdb refuses root: the cluster belongs to the `postgres` user (see PITFALLS.md), so the
# data dir, socket dir, log and every directory above them must be reachable by it.

as_postgres() { runuser -u postgres -- "$@"; }

# postgres_can_reach DIR: true if the postgres user can traverse into DIR.
postgres_can_reach() {
  id postgres >/dev/null 2>&1 || return 1
  as_postgres test -x "$1" 2>/dev/null
}

# pg_prepare_root ROOT: creates ROOT (owned by postgres, 0700) with sock/ in it.
pg_prepare_root() {
  local root=$1
  id postgres >/dev/null 2>&1 || {
    log "error: no 'postgres' user: install postgresql (make deps)"
    return 1
  }
  install -d -o postgres -g postgres -m 0700 -- "$root" "$root/sock"
}

# pg_init DATA: runs initdb (superuser voxi, trust auth) unless DATA holds a cluster.
pg_init() {
  local data=$1 initlog
  [[ -s "$data/PG_VERSION" ]] && return 0
  initlog="$(dirname "$data")/initdb.log"
  install -d -o postgres -g postgres -m 0700 -- "$data"
  if ! as_postgres "$PG_BIN/initdb" -D "$data" -U voxi --auth=trust -E UTF8 \
    --locale=C.UTF-8 --no-sync >"$initlog" 2>&1; then
    log "error: initdb failed for $data"
    show_log_tail "$initlog"
    return 1
  fi
}

# pg_postmaster_pid DATA: prints the postmaster pid if DATA's server is running (the pid
# in postmaster.pid is alive and runs PostgreSQL's binary).
pg_postmaster_pid() {
  local data=$1 pid
  pid=$(read_pidfile "$data/postmaster.pid")
  [[ -n "$pid" ]] && pid_alive "$pid" || return 1
  [[ "$(pid_exe "$pid")" == "$(readlink -f "$PG_BIN/postgres")" ]] || return 1
  printf '%s\n' "$pid"
}

# pg_start DATA SOCKDIR PORT LOGFILE [TIMEOUT_S=30] [EXTRA_OPTS]: starts the cluster on a
# unix socket only (listen_addresses='') and waits until it accepts connections.
pg_start() {
  local data=$1 sock=$2 port=$3 logfile=$4 timeout=${5:-30} extra=${6:-}
  if [[ "$sock" == *[[:space:]]* || "$data" == *[[:space:]]* ]]; then
    log "error: PostgreSQL paths may not contain spaces: $data $sock"
    return 1
  fi
  if ((${#sock} + 20 > 107)); then
    log "error: socket path $sock/.s.PGSQL.$port is too long for a unix socket"
    return 1
  fi
  if [[ -e "$data/postmaster.pid" ]] && ! pg_postmaster_pid "$data" >/dev/null; then
    # Left by a killed server, and its pid may have been reused: PostgreSQL would refuse.
    rm -f -- "$data/postmaster.pid"
  fi
  touch -- "$logfile" && chown postgres:postgres -- "$logfile"
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t "$timeout" \
    -o "-k $sock -p $port -c listen_addresses='' $extra" start </dev/null >/dev/null 2>&1; then
    log "error: PostgreSQL did not start within ${timeout}s (data $data, socket $sock, port $port)"
    show_log_tail "$logfile"
    return 1
  fi
  if ! "$PG_BIN/pg_isready" -q -h "$sock" -p "$port" -t 5; then
    log "error: PostgreSQL started but does not answer on $sock port $port"
    show_log_tail "$logfile"
    return 1
  fi
}

# pg_stop DATA [TIMEOUT_S=30]: fast shutdown; falls back to SIGQUIT then SIGKILL of the
# postmaster. Succeeds when no postmaster for DATA remains.
pg_stop() {
  local data=$1 timeout=${2:-30} pid
  pid=$(pg_postmaster_pid "$data") || return 0
  as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t "$timeout" stop </dev/null >/dev/null 2>&1 || true
  if wait_pid_gone "$pid" 2; then
    return 0
  fi
  warn "PostgreSQL (pid $pid) did not stop with pg_ctl -m fast; sending SIGQUIT"
  kill -QUIT "$pid" 2>/dev/null || true
  wait_pid_gone "$pid" 5 && return 0
  kill -KILL "$pid" 2>/dev/null || true
  wait_pid_gone "$pid" 5 && return 0
  log "error: PostgreSQL postmaster $pid is still alive"
  return 1
}

# pg_conninfo SOCKDIR PORT DBNAME: a libpq conninfo string for the local cluster.
pg_conninfo() {
  printf 'host=%s port=%s user=voxi dbname=%s\n' "$1" "$2" "$3"
}
