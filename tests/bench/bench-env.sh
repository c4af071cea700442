# shellcheck shell=bash
# Shared setup of the benchmark scripts: sourced with the script's own log tag
# and the optional binary argument. Sets and exports BANYAN_PROXY_BIN, BENCH_DIR
# (the shared harness), BENCH_OUT (results, in the build folder the binary comes
# from) and BENCH_WORK.
#   source "$(dirname "${BASH_SOURCE[0]}")/bench-env.sh" TAG [BIN]
BENCH_TAG=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
log() { echo "[$BENCH_TAG $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

BIN=${2:-${BANYAN_PROXY_BIN:-$REPO/build/dataplane/banyan-proxy}}
[ -x "$BIN" ] || die "no banyan-proxy at $BIN (build it: cmake --build build --target banyan-proxy)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
export BANYAN_PROXY_BIN=$BIN

export BENCH_DIR=${BENCH_DIR:-$REPO/../shared/bench}
[ -x "$BENCH_DIR/run.sh" ] || die "shared bench harness not found at $BENCH_DIR (set BENCH_DIR)"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)

if [ -z "${BENCH_OUT:-}" ]; then
  case "$BIN" in
    */dataplane/banyan-proxy) BENCH_OUT=$(dirname "$(dirname "$BIN")")/bench ;;
    *) BENCH_OUT=$REPO/build/bench ;;
  esac
fi
mkdir -p "$BENCH_OUT"
export BENCH_OUT
export BENCH_WORK=${BENCH_WORK:-$BENCH_OUT/work}
mkdir -p "$BENCH_WORK"
