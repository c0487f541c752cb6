#!/usr/bin/env bash
# VMware's vCenter simulator (govmomi 0.24.2 from Debian) with infradeck's REST shim
# (tests/tiers/vcsim/*.go), loopback only, for infradeck's integration tests.
#
#   tests/tiers/vcsim.sh build DIR   # installs Go + govmomi if missing, builds the binary
#   tests/tiers/vcsim.sh start DIR   # build, then one server on loopback (default VPX model)
#   tests/tiers/vcsim.sh stop DIR    # idempotent
#
# DIR/env names the binary (INFRADECK_VCSIM_BIN) and, after `start`, the server
# (INFRADECK_REAL_VCSIM_URL). The tests start their own server per test from the binary, each
# with its own estate (0.2 s, ~27 MB), so tests that change the estate run in parallel; the
# shared server is for people trying things by hand (`govc`, curl, `infradeck sync`).
# The binary is cached in $INFRADECK_TIER_CACHE (default ~/.cache/infradeck), keyed by the
# sources' hash.
set -Eeuo pipefail

TIER=vcsim
# shellcheck source=tests/tiers/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/vcsim" && pwd)
CACHE=${INFRADECK_TIER_CACHE:-$HOME/.cache/infradeck}
GOVMOMI=/usr/share/gocode/src/github.com/vmware/govmomi

usage() { echo "usage: $0 build|start|stop DIR" >&2; exit 2; }

do_stop() {
  local dir=$1
  [[ -d $dir ]] || return 0
  stop_pid vcsim "$dir/vcsim.pid" "$dir"
  rm -f "$dir/env"
}

ensure_packages() {
  local need=()
  command -v go >/dev/null 2>&1 || need+=(golang-go)
  [[ -d $GOVMOMI/simulator ]] || need+=(golang-github-vmware-govmomi-dev)
  ((${#need[@]} == 0)) || apt_install "${need[@]}"
}

# Builds (or reuses) the binary; sets BIN.
do_build() {
  ensure_packages
  local key
  key=$(cat "$SRC"/*.go | sha256sum | cut -c1-16)
  BIN=$CACHE/vcsim-$key/infradeck-vcsim
  if [[ ! -x $BIN ]]; then
    log "building $BIN"
    mkdir -p "$CACHE/vcsim-$key/gopath"
    # Debian's Go packages, offline: GOPATH mode over /usr/share/gocode, no module proxy.
    (cd "$SRC" && GO111MODULE=off GOPROXY=off GOFLAGS= \
      GOPATH="$CACHE/vcsim-$key/gopath:/usr/share/gocode" \
      GOCACHE="$CACHE/go-build" go build -o "$BIN.tmp" .)
    mv "$BIN.tmp" "$BIN"
  fi
  mkdir -p "$DIR"
  printf 'INFRADECK_VCSIM_BIN=%q\n' "$BIN" >"$DIR/env"
}

DIR=""

do_start() {
  local t0 i url
  t0=$(date +%s.%N)
  if [[ -f $DIR/vcsim.pid ]] && ours "$(cat "$DIR/vcsim.pid")" "$DIR"; then
    die "vcsim already running for $DIR (pid $(cat "$DIR/vcsim.pid")); stop it first"
  fi
  do_stop "$DIR"
  STARTED=1
  do_build
  FAIL_LOGS=("$DIR/vcsim.log")
  # The state dir on the command line lets `ours` recognise the process by PID.
  "$BIN" serve -tools-running -listen 127.0.0.1:0 -state "$DIR/" >"$DIR/vcsim.out" 2>"$DIR/vcsim.log" &
  echo $! >"$DIR/vcsim.pid"
  for ((i = 0; i < 100; i++)); do
    url=$(sed -n 's/^INFRADECK_VCSIM_URL=//p' "$DIR/vcsim.out" 2>/dev/null || true)
    [[ -n $url ]] && break
    ours "$(cat "$DIR/vcsim.pid")" "$DIR" || die "vcsim exited during start"
    sleep 0.1
  done
  [[ -n $url ]] || die "vcsim printed no URL within 10 s"
  curl -fsS -u user:pass -X POST "$url/api/session" >/dev/null || die "vcsim's REST shim does not answer at $url"
  printf 'INFRADECK_REAL_VCSIM_URL=%q\n' "$url" >>"$DIR/env"
  log "vcsim up at $url in $(elapsed_since "$t0") s (pid $(cat "$DIR/vcsim.pid"))"
  cat "$DIR/env"
}

[[ $# -eq 2 ]] || usage
DIR=$(realpath -m "$2")
case $1 in
  build) do_build; cat "$DIR/env" ;;
  start)
    trap 'on_fail $LINENO' ERR
    do_start
    ;;
  stop) do_stop "$DIR" ;;
  *) usage ;;
esac
