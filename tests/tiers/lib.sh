# Shared by the real-server tier scripts (sourced, not run): PID ownership checks, stopping by
# PID, free loopback ports and a private PostgreSQL 15 cluster. The caller sets TIER (its log
# prefix) and DIR (its state directory) before using these.

PG_BIN=/usr/lib/postgresql/15/bin

log() { printf '[%s-tier] %s\n' "$TIER" "$*" >&2; }

die() { log "$*"; false; }

# Is PID alive and does its command line mention our state dir? (A reused PID never is.)
ours() {
  local pid=$1 dir=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  local cmd
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmd == *"$dir/"* || $cmd == *"$dir" ]]
}

# stop_pid NAME PIDFILE DIR: TERM, wait (60 s), then KILL.
stop_pid() {
  local name=$1 pidfile=$2 dir=$3 pid i
  [[ -f $pidfile ]] || return 0
  pid=$(head -n1 "$pidfile" 2>/dev/null | tr -dc 0-9) || true
  if ours "$pid" "$dir"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60 * 5; i++)); do        # 60 s at 0.2 s
      ours "$pid" "$dir" || break
      # postgres: TERM is "smart" shutdown; after 10 s ask for "fast".
      [[ $name == postgres && $i -eq 50 ]] && kill -INT "$pid" 2>/dev/null || true
      sleep 0.2
    done
    if ours "$pid" "$dir"; then
      log "$name (pid $pid) still alive after 60 s, sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do ours "$pid" "$dir" || break; sleep 0.2; done
    fi
    # Let the parent (or init) reap it, so callers see the PID gone.
    for ((i = 0; i < 25; i++)); do [[ -e /proc/$pid ]] || break; sleep 0.2; done
  fi
  rm -f "$pidfile"
}

# apt_install PACKAGE...: one apt at a time across the tier scripts (CI starts them together,
# and dpkg allows one writer).
apt_install() {
  log "installing: $*"
  (
    flock 9
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
      --no-install-recommends "$@" >&2
  ) 9>/tmp/infradeck-tiers-apt.lock
}

# A free TCP port on 127.0.0.1, not among the arguments.
free_port() {
  local p
  for _ in $(seq 200); do
    if command -v python3 >/dev/null 2>&1; then
      p=$(python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    else
      p=$((20000 + RANDOM % 40000))
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    fi
    [[ " $* " == *" $p "* ]] && continue
    echo "$p"
    return 0
  done
  return 1
}

# pg_start: a private PostgreSQL 15 cluster in $DIR/pg on 127.0.0.1 (trust auth, its own socket
# dir, durability off: test data only). Sets PG_PORT, PG_SOCK and PG_FRESH (1 when the cluster was
# just created, so the caller creates its roles and databases, then touches $DIR/pg.ready).
pg_start() {
  local pg=$DIR/pg
  PG_SOCK=$DIR/pgsock
  mkdir -p "$PG_SOCK"
  chown postgres:postgres "$PG_SOCK"; chmod 700 "$PG_SOCK"
  touch "$DIR/postgres.log"; chown postgres:postgres "$DIR/postgres.log"
  FAIL_LOGS=("$DIR/postgres.log")
  PG_FRESH=0
  # Reuse a cluster only if an earlier start completed its setup.
  if [[ ! -f $pg/PG_VERSION || ! -f $DIR/pg.ready ]]; then
    PG_FRESH=1
    rm -rf "$pg"; mkdir -p "$pg"; chown postgres:postgres "$pg"; chmod 700 "$pg"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$pg" -A trust -E UTF8 --locale=C.UTF-8 \
      >>"$DIR/postgres.log" 2>&1
    echo "include_if_exists = 'tier.conf'" >>"$pg/postgresql.conf"
  fi
  PG_PORT=$(free_port "$@") || die "no free port"
  cat >"$pg/tier.conf" <<PGCONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
fsync = off
synchronous_commit = off
full_page_writes = off
PGCONF
  chown postgres:postgres "$pg/tier.conf"
  log "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg" -l "$DIR/postgres.log" -w -t 60 start \
    </dev/null >>"$DIR/postgres.log" 2>&1
  head -n1 "$pg/postmaster.pid" >"$DIR/postgres.pid"
  ours "$(cat "$DIR/postgres.pid")" "$DIR" || die "postgres pid not found"
}

# psql as the cluster's superuser: pg_psql DATABASE [psql args...]
pg_psql() {
  local db=$1; shift
  runuser -u postgres -- "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" \
    -U postgres -d "$db" "$@"
}

# Seconds since $1 (a `date +%s.%N` value), one decimal.
elapsed_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# --------------------------------------------------------------- failure

FAIL_LOGS=()
STARTED=0

# ERR trap of `start`: show the logs that explain it, stop what was started (the caller's
# do_stop), exit 1.
on_fail() {
  local rc=$? line=${1:-?}
  trap - ERR
  log "FAILED (line $line, rc $rc)"
  local f
  for f in "${FAIL_LOGS[@]}"; do
    if [[ -s $f ]]; then
      echo "----- last 40 lines of $f -----" >&2
      tail -n 40 "$f" >&2
    fi
  done
  if ((STARTED)) && [[ -n $DIR ]]; then do_stop "$DIR" || true; fi
  exit 1
}
