#!/usr/bin/env bash
# Side-by-side benchmark of banyan-proxy against direct / HAProxy / nginx with the
# shared harness (../shared/bench, see its README.md). Builds nothing.
#   tests/bench/run-bench.sh [PATH/TO/banyan-proxy]     (default build/dataplane/banyan-proxy)
# Steps (each can be switched off):
#   1. bench/install.sh, only if a tool is missing
#   2. RUN_COMPARE=1   compare.sh $REPS over BENCH_SCENARIOS for BENCH_PROXIES
#   3. RUN_RELOAD=1    reload.sh custom keepalive, custom close, haproxy-sf-x keepalive
#   4. RUN_IDLE=0      tests/bench/idle-conns.sh (10k idle connections, RSS)
#   5. RUN_SCALING=0   tests/bench/scaling.sh (1 vs 2 worker threads)
# Environment: REPS (3), BENCH_SCENARIOS (every harness scenario: "http-keepalive
# http-close tls-keepalive tls-handshake tls-resume tcp h2 large-body"), BENCH_PROXIES ("direct haproxy
# nginx custom"), BENCH_DIR (shared harness, default <repo>/../shared/bench),
# BENCH_OUT (results folder, default <build dir of the binary>/bench), RELOADS (20),
# and every knob of the harness (BENCH_DURATION, BENCH_NICE, BENCH_QUIET_MAX_WAIT, ...).
# Results: BENCH/RELOAD lines in $BENCH_OUT/{compare,reload}-<UTC>.log, generated
# configs and logs in $BENCH_OUT/work (BENCH_WORK).
set -euo pipefail
# shellcheck source=tests/bench/bench-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-env.sh" run-bench "${1:-}"

# ---- 1. tools -------------------------------------------------------------------
missing=
for t in haproxy nginx wrk h2load jq openssl taskset ss curl; do
  command -v "$t" >/dev/null || missing+=" $t"
done
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=" libnginx-mod-stream"
if [ -n "$missing" ]; then
  log "missing:$missing; running $BENCH_DIR/install.sh"
  "$BENCH_DIR/install.sh"
fi

TS=$(date -u +%Y%m%dT%H%M%SZ)
ADAPTER=$HERE/banyan-bench-adapter.sh
CUSTOM_CMD="$(printf '%q' "$ADAPTER") {config}"
export BENCH_CUSTOM_CMD=${BENCH_CUSTOM_CMD:-$CUSTOM_CMD}
COMPARE_LOG=$BENCH_OUT/compare-$TS.log
RELOAD_LOG=$BENCH_OUT/reload-$TS.log
status=0
log "banyan-proxy: $BIN ($("$BIN" --version 2>/dev/null | head -1 || echo "version unknown"))"
log "harness: $BENCH_DIR; results: $BENCH_OUT; work: $BENCH_WORK"

# ---- 2. side-by-side compare --------------------------------------------------------
if [ "${RUN_COMPARE:-1}" = 1 ]; then
  BENCH_PROXIES=${BENCH_PROXIES:-"direct haproxy nginx custom"} \
  BENCH_SCENARIOS=${BENCH_SCENARIOS:-"http-keepalive http-close tls-keepalive tls-handshake tls-resume tcp h2 large-body"} \
  BENCH_RESULTS=$COMPARE_LOG \
    "$BENCH_DIR/compare.sh" "${REPS:-3}" || { status=1; log "compare.sh failed"; }
  if [ -s "$COMPARE_LOG" ]; then
    echo
    echo "## banyan-proxy (custom) vs the better of haproxy/nginx"
    "$HERE/vs-best-peer.sh" "$COMPARE_LOG" || true
  fi
fi

# ---- 3. reload under load ------------------------------------------------------------
if [ "${RUN_RELOAD:-1}" = 1 ]; then
  for c in keepalive close; do
    log "reload.sh custom $c"
    BENCH_RESULTS=$RELOAD_LOG "$BENCH_DIR/reload.sh" custom "$BENCH_CUSTOM_CMD" "$c" ||
      { status=1; log "reload.sh custom $c failed (proxy log: $BENCH_WORK/reload/stdout.log)"; }
    cp -f "$BENCH_WORK/reload/stdout.log" "$BENCH_OUT/reload-$TS-custom-$c.proxy.log" 2>/dev/null || true
  done
  log "reload.sh haproxy-sf-x keepalive (same-run reference)"
  BENCH_RESULTS=$RELOAD_LOG "$BENCH_DIR/reload.sh" haproxy-sf-x keepalive ||
    { status=1; log "reload.sh haproxy-sf-x failed"; }
fi

# ---- 4./5. optional extras ---------------------------------------------------------
if [ "${RUN_IDLE:-0}" = 1 ]; then
  IDLE_RESULTS=$BENCH_OUT/idle-$TS.log "$HERE/idle-conns.sh" "$BIN" || { status=1; log "idle-conns.sh failed"; }
fi
if [ "${RUN_SCALING:-0}" = 1 ]; then
  BENCH_RESULTS=$BENCH_OUT/scaling-$TS.log "$HERE/scaling.sh" "$BIN" || { status=1; log "scaling.sh failed"; }
fi

echo
echo "Results in $BENCH_OUT:"
for f in "$COMPARE_LOG" "$RELOAD_LOG" "$BENCH_OUT/idle-$TS.log" "$BENCH_OUT/scaling-$TS.log"; do
  if [ -s "$f" ]; then echo "  $f"; fi
done
if [ -s "$RELOAD_LOG" ]; then
  echo
  grep -o 'RELOAD .*' "$RELOAD_LOG" | awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "  %-13s %-9s failed=%s (connect %s read %s write %s timeout %s non2xx %s) requests=%s reload_ms_median=%s\n",
      v["mode"], v["client"], v["failed"], v["err_connect"], v["err_read"], v["err_write"], v["err_timeout"], v["non2xx"],
      v["requests"], v["reload_ms_median"] }'
fi
echo "Re-print the table: $BENCH_DIR/summarize.sh $COMPARE_LOG; vs best peer: $HERE/vs-best-peer.sh $COMPARE_LOG"
exit "$status"
