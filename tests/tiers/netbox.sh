#!/usr/bin/env bash
# The real NetBox 4.7.3 (PyPI `netbox`, Python 3.12 venv) with PostgreSQL 15 and Redis 7 on
# loopback, restored from a migrated schema dump, for infradeck's integration tests.
#
#   tests/tiers/netbox.sh start DIR   # prints INFRADECK_REAL_NETBOX_URL=... (and the rest of DIR/env)
#   tests/tiers/netbox.sh reset DIR   # NetBox back to the empty dump (~1 s): one per test
#   tests/tiers/netbox.sh stop DIR    # idempotent
#
# Migrations from an empty database take ~14 min, so the schema comes from
# netbox-4.7.3-seed.sql.gz beside this script (a `pg_dump` of a freshly migrated NetBox 4.7.3
# with one admin user and two API tokens, no inventory). It is restored once into `netbox_seed`;
# `netbox` is a copy of that template, and `reset` drops and re-copies it.
#
# The venv (~550 MB, ~2-3 min to build cold) is cached in $INFRADECK_TIER_CACHE (default
# ~/.cache/infradeck) and reused across runs. Python 3.12 is found at $INFRADECK_PYTHON312 or the
# machine image's pyenv build; without it the start fails with exit code 3 and says so.
#
# DIR holds everything else: pg/, pgsock/, redis/, netbox/ (NETBOX_ROOT), the logs, the pid
# files and env. Must run as root (runs postgres through runuser).
set -Eeuo pipefail

TIER=netbox
# shellcheck source=tests/tiers/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NETBOX_VERSION=4.7.3
SEED=$HERE/netbox-$NETBOX_VERSION-seed.sql.gz
CACHE=${INFRADECK_TIER_CACHE:-$HOME/.cache/infradeck}
VENV=$CACHE/netbox-$NETBOX_VERSION
START_DEADLINE=180   # seconds until NetBox must answer
# The dump's tokens and the pepper the v2 token's digest was made with (test-only values).
PEPPER='test-only-pepper-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ'
TOKEN_V1=0123456789abcdef0123456789abcdef01234567
TOKEN_V2=nbt_testkey0abcd.TestSecret0123456789TestSecret0123456789

usage() { echo "usage: $0 start|reset|stop DIR" >&2; exit 2; }

do_stop() {
  local dir=$1
  [[ -d $dir ]] || return 0
  stop_pid gunicorn "$dir/gunicorn.pid" "$dir"
  stop_pid redis "$dir/redis.pid" "$dir"
  stop_pid postgres "$dir/postgres.pid" "$dir"
  rm -f "$dir/env"
}

python312() {
  local p
  for p in "${INFRADECK_PYTHON312:-}" "$HOME/.pyenv/versions/3.12.1/bin/python3.12" /usr/bin/python3.12; do
    [[ -n $p && -x $p ]] && "$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null \
      && { echo "$p"; return 0; }
  done
  return 1
}

ensure_packages() {
  local need=()
  [[ -x $PG_BIN/initdb ]] || need+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  ((${#need[@]} == 0)) && return 0
  apt_install "${need[@]}"
}

# The venv, built once into a temporary name and renamed when complete (commands run through
# `$VENV/bin/python -m`, so a renamed venv works).
ensure_venv() {
  [[ -f $VENV/.infradeck-complete ]] && return 0
  local py build
  py=$(python312) || { log "no Python 3.12 (set INFRADECK_PYTHON312): NetBox $NETBOX_VERSION needs it"; exit 3; }
  mkdir -p "$CACHE"
  build=$VENV.build.$$
  rm -rf "$build"
  log "building the NetBox $NETBOX_VERSION venv with $py (2-3 min cold)"
  "$py" -m venv "$build"
  "$build/bin/python" -m pip install -q --disable-pip-version-check "netbox==$NETBOX_VERSION" gunicorn >&2
  touch "$build/.infradeck-complete"
  rm -rf "$VENV"
  mv "$build" "$VENV"
}

# spawn PIDFILE LOG COMMAND...: COMMAND in its own session, detached, output to LOG; PIDFILE gets
# COMMAND's own pid (setsid may fork, so $! would not be it).
spawn() {
  local pidfile=$1 logfile=$2 i
  shift 2
  : >"$pidfile"
  # shellcheck disable=SC2016
  setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
  disown
  for ((i = 0; i < 50; i++)); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  die "$1 did not start"
}

redis_cli() { redis-cli -h 127.0.0.1 -p "$(state redis_port)" "$@"; }

# Values `start` records for `reset`: state KEY
state() { sed -n "s/^$1=//p" "$DIR/state"; }

do_reset() {
  [[ -f $DIR/state ]] || die "no NetBox tier in $DIR (start it first)"
  PG_SOCK=$DIR/pgsock PG_PORT=$(state pg_port)
  # WITH (FORCE) ends connections NetBox may still hold (CONN_MAX_AGE is 0, so normally none).
  pg_psql postgres >>"$DIR/postgres.log" 2>&1 <<SQL
DROP DATABASE IF EXISTS netbox WITH (FORCE);
CREATE DATABASE netbox TEMPLATE netbox_seed;
SQL
  redis_cli flushall >/dev/null
}

do_start() {
  local t0 pid i
  t0=$(date +%s.%N)
  [[ -f $SEED ]] || die "missing $SEED"
  ensure_packages
  ensure_venv

  mkdir -p "$DIR"
  chmod 755 "$DIR"
  runuser -u postgres -- test -x "$DIR" || die "$DIR not traversable by postgres (parent dir permissions)"
  if [[ -f $DIR/gunicorn.pid ]] && ours "$(cat "$DIR/gunicorn.pid")" "$DIR"; then
    die "NetBox already running for $DIR (pid $(cat "$DIR/gunicorn.pid")); stop it first"
  fi
  do_stop "$DIR"
  STARTED=1

  # ------------------------------------------------------ PostgreSQL 15
  pg_start
  if ((PG_FRESH)); then
    log "restoring the migrated schema from $(basename "$SEED")"
    pg_psql postgres >>"$DIR/postgres.log" 2>&1 <<SQL
CREATE ROLE netbox LOGIN;
CREATE DATABASE netbox_seed OWNER netbox TEMPLATE template0 ENCODING 'UTF8';
SQL
    gzip -dc "$SEED" | runuser -u postgres -- "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
      -h "$PG_SOCK" -p "$PG_PORT" -U netbox -d netbox_seed >>"$DIR/postgres.log" 2>&1
    touch "$DIR/pg.ready"
  fi

  # -------------------------------------------------------------- Redis
  local redis_port
  redis_port=$(free_port "$PG_PORT") || die "no free port"
  mkdir -p "$DIR/redis"
  cat >"$DIR/redis/redis.conf" <<CONF
bind 127.0.0.1
port $redis_port
save ""
appendonly no
dir $DIR/redis
logfile $DIR/redis.log
# Keep the command line (it names this directory), so the PID check recognises the process.
set-proc-title no
CONF
  FAIL_LOGS=("$DIR/redis.log")
  log "starting Redis on 127.0.0.1:$redis_port"
  : >"$DIR/redis.pid"
  spawn "$DIR/redis.pid" "$DIR/redis.log" redis-server "$DIR/redis/redis.conf"
  for ((i = 0; i < 100; i++)); do
    redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    ours "$(cat "$DIR/redis.pid")" "$DIR" || die "Redis exited during startup"
    sleep 0.1
  done

  # ------------------------------------------------------------- NetBox
  cat >"$DIR/state" <<STATE
pg_port=$PG_PORT
redis_port=$redis_port
STATE
  do_reset
  local root=$DIR/netbox nb_port secret
  mkdir -p "$root/conf" "$root/media" "$root/reports" "$root/scripts"
  secret=$(od -An -N40 -tx1 /dev/urandom | tr -d ' \n')
  cat >"$root/conf/configuration.py" <<PY
ALLOWED_HOSTS = ['*']
DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'netbox',
    'USER': 'netbox', 'HOST': '127.0.0.1', 'PORT': $PG_PORT, 'CONN_MAX_AGE': 0}}
REDIS = {
    'tasks': {'HOST': '127.0.0.1', 'PORT': $redis_port, 'DATABASE': 0, 'SSL': False},
    'caching': {'HOST': '127.0.0.1', 'PORT': $redis_port, 'DATABASE': 1, 'SSL': False},
}
SECRET_KEY = '$secret'
API_TOKEN_PEPPERS = {1: '$PEPPER'}
CENSUS_REPORTING_ENABLED = False
RELEASE_CHECK_URL = None
LOGIN_REQUIRED = True
MEDIA_ROOT = '$root/media'
REPORTS_ROOT = '$root/reports'
SCRIPTS_ROOT = '$root/scripts'
PY
  nb_port=$(free_port "$PG_PORT" "$redis_port") || die "no free port"
  : >"$DIR/gunicorn.log"
  FAIL_LOGS=("$DIR/gunicorn.log")
  log "starting NetBox $NETBOX_VERSION (gunicorn) on 127.0.0.1:$nb_port"
  # The error log's path puts this directory on gunicorn's command line, for the PID check.
  # Three workers, as a NetBox host runs it (its gunicorn.py ships with five): NetBox spends
  # ~80 ms of CPU per object written, so one worker would cap any client at ~12 objects/s.
  (cd "$root" && NETBOX_ROOT=$root spawn "$DIR/gunicorn.pid" "$DIR/gunicorn.log" \
    "$VENV/bin/python" -m gunicorn --bind "127.0.0.1:$nb_port" --workers 3 --threads 2 \
      --timeout 120 --error-logfile "$DIR/gunicorn.log" netbox.wsgi)
  pid=$(cat "$DIR/gunicorn.pid")

  local base=http://127.0.0.1:$nb_port deadline code
  deadline=$(($(date +%s) + START_DEADLINE))
  while :; do
    ours "$pid" "$DIR" || die "NetBox (gunicorn pid $pid) exited during startup"
    code=$(curl -s --noproxy '*' -m 10 -o /dev/null -w '%{http_code}' \
      -H "Authorization: Token $TOKEN_V1" "$base/api/status/" || true)
    [[ $code == 200 ]] && break
    (($(date +%s) < deadline)) || die "NetBox not ready after ${START_DEADLINE}s (status: $code)"
    sleep 0.5
  done

  cat >"$DIR/env" <<ENV
INFRADECK_REAL_NETBOX_URL=$base
INFRADECK_REAL_NETBOX_TOKEN=$TOKEN_V2
INFRADECK_REAL_NETBOX_TOKEN_V1=$TOKEN_V1
INFRADECK_REAL_NETBOX_RESET="bash $HERE/netbox.sh reset $DIR"
ENV
  cat "$DIR/env"
  log "NetBox $NETBOX_VERSION ready; start took $(elapsed_since "$t0") s"
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
  reset) do_reset ;;
  stop) do_stop "$DIR" ;;
  *) usage ;;
esac
