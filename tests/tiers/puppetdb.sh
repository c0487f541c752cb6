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

TIER=puppetdb
# shellcheck source=tests/tiers/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PDB_JAR=/usr/share/puppetdb/puppetdb.jar
PDB_ETC=/etc/puppetdb
START_DEADLINE=300   # seconds until PuppetDB must answer
POLL=1               # poll interval, seconds

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }

do_stop() {
  local dir=$1
  [[ -d $dir ]] || return 0
  stop_pid puppetdb "$dir/puppetdb.pid" "$dir"
  stop_pid postgres "$dir/postgres.pid" "$dir"
  rm -f "$dir/env"
}

ensure_packages() {
  local need=()
  dpkg-query -W -f='${Status}' puppetdb 2>/dev/null | grep -q 'install ok installed' || need+=(puppetdb)
  [[ -x $PG_BIN/initdb ]] || need+=(postgresql)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  ((${#need[@]} == 0)) && return 0
  echo "puppetdb puppetdb/dbconfig-install boolean false" | debconf-set-selections
  apt_install "${need[@]}"
}

DIR=""

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
  pg_start
  pg_port=$PG_PORT
  pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  if ((PG_FRESH)); then
    pg_psql postgres >>"$DIR/postgres.log" 2>&1 <<EOF
CREATE ROLE puppetdb LOGIN PASSWORD '$pw';
CREATE DATABASE puppetdb OWNER puppetdb TEMPLATE template0 ENCODING 'UTF8';
\c puppetdb
CREATE EXTENSION pg_trgm;
EOF
    touch "$DIR/pg.ready"
  else
    pg_psql postgres >>"$DIR/postgres.log" 2>&1 <<EOF
ALTER ROLE puppetdb PASSWORD '$pw';
EOF
  fi

  # ----------------------------------------------------------- PuppetDB
  local conf=$DIR/conf var=$DIR/var
  if ((PG_FRESH)); then rm -rf "$var"; fi
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
    "start took $(elapsed_since "$t0") s"
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
