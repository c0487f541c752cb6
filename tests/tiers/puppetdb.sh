#!/usr/bin/env bash
# Real PuppetDB 7.12.1 (Debian package `puppetdb`) on a private PostgreSQL 15
# cluster, loopback only, for infradeck's integration tests.
#
#   tests/tiers/puppetdb.sh start DIR   # prints INFRADECK_REAL_PUPPETDB_URL=...
#   tests/tiers/puppetdb.sh stop DIR    # idempotent
#
# DIR holds everything: pg/ (cluster), conf/ (PuppetDB config), var/ (vardir),
# postgres.log, puppetdb.log (+ puppetdb.stdout.log), postgres.pid,
# puppetdb.pid, env. Must run as root (uses runuser for postgres/puppetdb).
set -Eeuo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
PDB_JAR=/usr/share/puppetdb/puppetdb.jar
PDB_ETC=/etc/puppetdb
START_DEADLINE=300   # seconds until PuppetDB must answer
POLL=1               # poll interval, seconds

log() { printf '[puppetdb-tier] %s\n' "$*" >&2; }

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# ---------------------------------------------------------------- helpers

# Is PID alive and does its command line mention our state dir?
ours() {
  local pid=$1 dir=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  local cmd
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmd == *"$dir/"* ]]
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

do_stop() {
  local dir=$1
  [[ -d $dir ]] || return 0
  stop_pid puppetdb "$dir/puppetdb.pid" "$dir"
  stop_pid postgres "$dir/postgres.pid" "$dir"
  rm -f "$dir/env"
}

# A free TCP port on 127.0.0.1 (not in $1 if given).
free_port() {
  local avoid=${1:-} p
  if command -v python3 >/dev/null 2>&1; then
    for _ in 1 2 3 4 5; do
      p=$(python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
      [[ $p != "$avoid" ]] && { echo "$p"; return 0; }
    done
  fi
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    [[ $p == "$avoid" ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

ensure_packages() {
  local need=()
  dpkg-query -W -f='${Status}' puppetdb 2>/dev/null | grep -q 'install ok installed' || need+=(puppetdb)
  [[ -x $PG_BIN/initdb ]] || need+=(postgresql)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  ((${#need[@]} == 0)) && return 0
  log "installing: ${need[*]}"
  echo "puppetdb puppetdb/dbconfig-install boolean false" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}

# --------------------------------------------------------------- failure

DIR=""
FAIL_LOGS=()
STARTED=0

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

die() { log "$*"; false; }

# ----------------------------------------------------------------- start

do_start() {
  local t0 pg_port pdb_port pw pid i
  t0=$(date +%s.%N)
  ensure_packages
  [[ -f $PDB_JAR ]] || die "missing $PDB_JAR"
  local bootstrap=$PDB_ETC/bootstrap.cfg
  [[ -f $bootstrap ]] || bootstrap=$(dpkg -L puppetdb | grep -m1 'bootstrap\.cfg$')
  [[ -f $bootstrap ]] || die "no bootstrap.cfg in package puppetdb"

  mkdir -p "$DIR"
  chmod 755 "$DIR"
  runuser -u postgres -- test -x "$DIR" || die "$DIR not traversable by postgres (parent dir permissions)"
  runuser -u puppetdb -- test -x "$DIR" || die "$DIR not traversable by puppetdb (parent dir permissions)"
  if [[ -f $DIR/puppetdb.pid ]] && ours "$(cat "$DIR/puppetdb.pid")" "$DIR"; then
    die "PuppetDB already running for $DIR (pid $(cat "$DIR/puppetdb.pid")); stop it first"
  fi
  do_stop "$DIR"   # clean leftovers (stale pid files, a lone postgres)
  STARTED=1

  # ------------------------------------------------------ PostgreSQL 15
  local pg=$DIR/pg sock=$DIR/pgsock
  mkdir -p "$sock"
  chown postgres:postgres "$sock"; chmod 700 "$sock"
  touch "$DIR/postgres.log"; chown postgres:postgres "$DIR/postgres.log"
  FAIL_LOGS=("$DIR/postgres.log")
  local fresh=0
  # Reuse a cluster only if an earlier start completed its setup.
  if [[ ! -f $pg/PG_VERSION || ! -f $DIR/pg.ready ]]; then
    fresh=1
    rm -rf "$pg"; mkdir -p "$pg"; chown postgres:postgres "$pg"; chmod 700 "$pg"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$pg" -A trust -E UTF8 --locale=C.UTF-8 \
      >>"$DIR/postgres.log" 2>&1
    echo "include_if_exists = 'tier.conf'" >>"$pg/postgresql.conf"
  fi
  pg_port=$(free_port) || die "no free port"
  cat >"$pg/tier.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  chown postgres:postgres "$pg/tier.conf"
  log "starting PostgreSQL 15 on 127.0.0.1:$pg_port"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg" -l "$DIR/postgres.log" -w -t 60 start \
    </dev/null >>"$DIR/postgres.log" 2>&1
  head -n1 "$pg/postmaster.pid" >"$DIR/postgres.pid"
  ours "$(cat "$DIR/postgres.pid")" "$DIR" || die "postgres pid not found"

  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$pg_port" -U postgres)
  pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  if ((fresh)); then
    runuser -u postgres -- "${psql[@]}" -d postgres >>"$DIR/postgres.log" 2>&1 <<EOF
CREATE ROLE puppetdb LOGIN PASSWORD '$pw';
CREATE DATABASE puppetdb OWNER puppetdb TEMPLATE template0 ENCODING 'UTF8';
\c puppetdb
CREATE EXTENSION pg_trgm;
EOF
    touch "$DIR/pg.ready"
  else
    runuser -u postgres -- "${psql[@]}" -d postgres >>"$DIR/postgres.log" 2>&1 <<EOF
ALTER ROLE puppetdb PASSWORD '$pw';
EOF
  fi

  # ----------------------------------------------------------- PuppetDB
  local conf=$DIR/conf var=$DIR/var
  if ((fresh)); then rm -rf "$var"; fi
  rm -rf "$conf"; mkdir -p "$conf" "$var"
  cp "$bootstrap" "$DIR/bootstrap.cfg"
  cp "$PDB_ETC/conf.d/auth.conf" "$conf/auth.conf"
  pdb_port=$(free_port "$pg_port") || die "no free port"
  cat >"$conf/config.ini" <<EOF
[global]
vardir = $var
logging-config = $DIR/logback.xml

[command-processing]
threads = 1

[puppetdb]
disable-update-checking = true
EOF
  cat >"$conf/database.ini" <<EOF
[database]
subname = //127.0.0.1:$pg_port/puppetdb
username = puppetdb
password = $pw
EOF
  cat >"$conf/jetty.ini" <<EOF
[jetty]
host = 127.0.0.1
port = $pdb_port
EOF
  cat >"$DIR/logback.xml" <<EOF
<configuration>
  <appender name="F1" class="ch.qos.logback.core.FileAppender">
    <file>$DIR/puppetdb.log</file>
    <append>true</append>
    <encoder><pattern>%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5p [%c{2}] %m%n</pattern></encoder>
  </appender>
  <logger name="org.springframework.jms.connection" level="warn"/>
  <logger name="puppetlabs.trapperkeeper.services.status.status-debug-logging" level="info" additivity="false">
    <appender-ref ref="F1"/>
  </logger>
  <root level="info"><appender-ref ref="F1"/></root>
</configuration>
EOF
  : >"$DIR/puppetdb.log"; : >"$DIR/puppetdb.stdout.log"
  printf 0 >"$DIR/restart"
  : >"$DIR/puppetdb.pid"
  chown -R puppetdb:puppetdb "$conf" "$var"
  chmod 750 "$conf"; chmod 640 "$conf/database.ini"
  chown puppetdb:puppetdb "$DIR/puppetdb.log" "$DIR/restart" "$DIR/puppetdb.pid"
  chmod 644 "$DIR/bootstrap.cfg" "$DIR/logback.xml"
  FAIL_LOGS=("$DIR/puppetdb.log" "$DIR/puppetdb.stdout.log")

  log "starting PuppetDB on 127.0.0.1:$pdb_port"
  # Extra JVM flags, e.g. PUPPETDB_TIER_JAVA_OPTS="-XX:TieredStopAtLevel=1".
  local java_extra=()
  read -r -a java_extra <<<"${PUPPETDB_TIER_JAVA_OPTS:-}"
  # sh records its own pid and execs java, so puppetdb.pid is java's pid.
  # shellcheck disable=SC2016
  setsid runuser -u puppetdb -- sh -c 'd=$1; shift; cd "$d" && echo $$ >"$d/puppetdb.pid" && exec "$@"' sh "$DIR" \
    java -Xmx512m "${java_extra[@]}" -Djava.security.egd=/dev/urandom -XX:OnOutOfMemoryError="kill -9 %p" \
      -Djava.io.tmpdir="$var" \
      -cp "$PDB_JAR" clojure.main -m puppetlabs.puppetdb.core services \
      --config "$conf" --bootstrap-config "$DIR/bootstrap.cfg" --restart-file "$DIR/restart" \
    </dev/null >>"$DIR/puppetdb.stdout.log" 2>&1 &
  disown
  for ((i = 0; i < 50; i++)); do [[ -s $DIR/puppetdb.pid ]] && break; sleep 0.1; done
  pid=$(tr -dc 0-9 <"$DIR/puppetdb.pid")
  [[ -n $pid ]] || die "PuppetDB did not record its pid"

  local base=http://127.0.0.1:$pdb_port deadline code status
  local curl=(curl -s --noproxy '*' -m 5)
  deadline=$(($(date +%s) + START_DEADLINE))
  while :; do
    ours "$pid" "$DIR" || die "PuppetDB (pid $pid) exited during startup"
    code=$("${curl[@]}" -o /dev/null -w '%{http_code}' "$base/pdb/meta/v1/version" || true)
    if [[ $code == 200 ]]; then
      status=$("${curl[@]}" "$base/status/v1/services/puppetdb-status" || true)
      grep -Eq '"state" *: *"running"' <<<"$status" && break
    fi
    (($(date +%s) < deadline)) || die "PuppetDB not ready after ${START_DEADLINE}s (version: $code)"
    sleep "$POLL"
  done

  echo "INFRADECK_REAL_PUPPETDB_URL=$base" >"$DIR/env"
  cat "$DIR/env"
  log "PuppetDB $("${curl[@]}" "$base/pdb/meta/v1/version" | tr -d '\n') ready;" \
    "start took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
}

# ------------------------------------------------------------------ main

[[ $# -eq 2 ]] || usage
[[ $(id -u) -eq 0 ]] || { echo "$0: must run as root" >&2; exit 2; }
DIR=$(realpath -m -- "$2")
case $1 in
  start)
    trap 'on_fail $LINENO' ERR
    do_start
    ;;
  stop) do_stop "$DIR" ;;
  *) usage ;;
esac
