#!/usr/bin/env bash
# Memory held by idle client connections: opens IDLE_CONNS (10000) connections to
# the HTTP listener (127.0.0.1:8080) of banyan-proxy, HAProxy and nginx, and
# reports the proxy's RSS (VmRSS summed over its process tree) before and after.
#   tests/bench/idle-conns.sh [PATH/TO/banyan-proxy]
# Variants (IDLE_VARIANTS, default both):
#   idle     connect, send nothing (a client that has not sent its request yet)
#   request  one keep-alive GET / answered, then idle (a keep-alive client between
#            requests; the proxy may keep per-connection buffers/upstream state)
# Environment: IDLE_CONNS (10000), IDLE_PROXIES ("banyan haproxy nginx"),
# IDLE_SETTLE_S (2), BENCH_DIR, BENCH_WORK (default <build>/bench/work), BENCH_PROXY_CPUS
# (1), BENCH_CLIENT_CPUS (0), IDLE_RESULTS (append the IDLE lines to this file).
# Proxies are started pinned and single-threaded like the harness does, with the
# harness's haproxy/nginx configs raised to allow the connection count. All on
# 127.0.0.0/8; every process started here is stopped by PID.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BIN=${1:-${BANYAN_PROXY_BIN:-$REPO/build/dataplane/banyan-proxy}}
export BENCH_DIR=${BENCH_DIR:-$REPO/../shared/bench}
if [ -z "${BENCH_WORK:-}" ]; then
  case "$BIN" in
    */dataplane/banyan-proxy) BENCH_WORK=$(dirname "$(dirname "$BIN")")/bench/work ;;
    *) BENCH_WORK=$REPO/build/bench/work ;;
  esac
fi
export BENCH_WORK
# shellcheck source=/dev/null
source "$BENCH_DIR/lib/common.sh"   # backends, haproxy/nginx configs, stop_pid, tree_pids

N=${IDLE_CONNS:-10000}
read -r -a VARIANTS <<<"${IDLE_VARIANTS:-idle request}"
read -r -a PROXIES <<<"${IDLE_PROXIES:-banyan haproxy nginx}"
SETTLE=${IDLE_SETTLE_S:-2}
d=$BENCH_WORK/idle
mkdir -p "$d"

# Every process (proxy and client) needs N descriptors plus upstream ones.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
if ((hard < N + 200)); then die "ulimit -Hn is $hard: too low for $N connections"; fi
ulimit -n "$hard"
NOFILE=$hard

ensure_certs; ensure_content

PROXY_PID=
CLIENT_PID=
cleanup() {
  exec 3>&- 2>/dev/null || true
  stop_pid "$CLIENT_PID"; CLIENT_PID=
  stop_pid "$PROXY_PID"; PROXY_PID=
  backends_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM
backends_start   # the request variant needs members; the idle one ignores them

tree_rss_kb() {  # VmRSS summed over the tree of $1
  local p v sum=0
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || true
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
tree_fds() {  # open descriptors over the tree of $1 (accepted connections show up here)
  local p sum=0
  for p in $(tree_pids "$1"); do
    sum=$((sum + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
  done
  echo "$sum"
}

start_proxy() {  # $1 = banyan|haproxy|nginx; sets PROXY_PID
  local p=$1 pd=$d/$1
  mkdir -p "$pd"
  for port in $PORT_HTTP $PORT_TLS $PORT_TCP; do port_free "$port" || die "port $port in use"; done
  case "$p" in
    banyan)
      [ -x "$BIN" ] || die "no banyan-proxy at $BIN"
      custom_conf "$pd/config.json" idle http
      "$HERE/banyan-bench-adapter.sh" --convert "$pd/config.json" "$pd/banyan-proxy.json" >/dev/null
      taskset -c "$BENCH_PROXY_CPUS" "$BIN" --config "$pd/banyan-proxy.json" >"$pd/stdout.log" 2>&1 &
      PROXY_PID=$! ;;
    haproxy)
      haproxy_conf "$pd/haproxy.cfg"
      # Same config as the harness's, with room for N connections (+ upstream).
      # haproxy sizes maxsock as 2 x maxconn, above the 20000 hard fd limit here,
      # and refuses to start unless `no strict-limits`; only about N + 20 fds are used.
      sed -i "s/^    maxconn 9000$/    maxconn $((N + 100))\n    no strict-limits/" "$pd/haproxy.cfg"
      "$HAPROXY_BIN" -c -q -f "$pd/haproxy.cfg" || die "haproxy config check failed"
      taskset -c "$BENCH_PROXY_CPUS" "$HAPROXY_BIN" -db -f "$pd/haproxy.cfg" >"$pd/stdout.log" 2>&1 &
      PROXY_PID=$! ;;
    nginx)
      mkdir -p "$BENCH_WORK/nginx"
      nginx_proxy_conf "$pd/nginx.conf"
      sed -i -e "s/^worker_rlimit_nofile 19000;/worker_rlimit_nofile $NOFILE;/" \
             -e "s/worker_connections 9000;/worker_connections $((NOFILE - 100));/" "$pd/nginx.conf"
      taskset -c "$BENCH_PROXY_CPUS" "$NGINX_BIN" -p "$pd" -c "$pd/nginx.conf" -g 'daemon off;' >"$pd/stdout.log" 2>&1 &
      PROXY_PID=$! ;;
    *) die "unknown proxy $p" ;;
  esac
  if ! wait_port "$PROXY_ADDR" "$PORT_HTTP" 15 "$PROXY_PID"; then
    tail -20 "$pd/stdout.log" >&2 || true
    die "$p did not listen on $PROXY_ADDR:$PORT_HTTP"
  fi
}

declare -a LINES=()
for p in "${PROXIES[@]}"; do
  for v in "${VARIANTS[@]}"; do
    log "idle-conns: $p, $N connections, variant $v"
    start_proxy "$p"
    sleep 1
    # One request first so lazily created state (upstream pools, buffers) is in
    # the baseline of both variants alike.
    curl -s -o /dev/null --max-time 5 "http://$PROXY_ADDR:$PORT_HTTP/" || log "warm-up request failed"
    sleep 0.5
    rss0=$(tree_rss_kb "$PROXY_PID"); fds0=$(tree_fds "$PROXY_PID")
    out=$d/client-$p-$v.out
    rm -f "$d/hold.fifo"; mkfifo "$d/hold.fifo"
    taskset -c "$BENCH_CLIENT_CPUS" python3 "$HERE/idle_clients.py" --host "$PROXY_ADDR" --port "$PORT_HTTP" \
      --conns "$N" --mode "$v" <"$d/hold.fifo" >"$out" 2>"$out.err" &
    CLIENT_PID=$!
    exec 3>"$d/hold.fifo"   # the client holds its connections until fd 3 is closed
    for ((i = 0; i < 1800; i++)); do
      grep -q '^READY' "$out" 2>/dev/null && break
      kill -0 "$CLIENT_PID" 2>/dev/null || break
      sleep 0.1
    done
    ready=$(grep '^READY' "$out" || true)
    [ -n "$ready" ] || { cat "$out.err" >&2; die "client did not get ready ($p $v)"; }
    sleep "$SETTLE"
    rss1=$(tree_rss_kb "$PROXY_PID"); fds1=$(tree_fds "$PROXY_PID")
    estab=$(ss -Htn state established "( sport = :$PORT_HTTP )" 2>/dev/null | wc -l)
    exec 3>&-
    wait "$CLIENT_PID" || true
    CLIENT_PID=
    done_=$(grep '^DONE' "$out" || echo "DONE alive=NA")
    alive=${done_#DONE alive=}
    kill -0 "$PROXY_PID" 2>/dev/null || log "WARNING: $p exited during the run"
    stop_pid "$PROXY_PID"; PROXY_PID=
    rm -f "$d/hold.fifo"
    delta=$((rss1 - rss0))
    per=$(awk -v d="$delta" -v n="$N" 'BEGIN { printf "%.0f", d * 1024 / n }')
    line="IDLE proxy=$p variant=$v conns=$N ${ready#READY } alive_at_end=$alive server_established=$estab"
    line+=" proxy_fds_before=$fds0 proxy_fds_after=$fds1 rss_before_kb=$rss0 rss_after_kb=$rss1 rss_delta_kb=$delta"
    line+=" bytes_per_conn=$per cpus=$BENCH_PROXY_CPUS"
    echo "$line"
    LINES+=("$line")
    [ -z "${IDLE_RESULTS:-}" ] || echo "$(date -u +%FT%TZ) $line" >>"$IDLE_RESULTS"
  done
done

echo
echo "| proxy | variant | conns open (alive at end) | failed | proxy fds after | RSS before MiB | RSS after MiB | delta MiB | bytes per conn |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${LINES[@]}" | awk '{ split("", v); for (i = 2; i <= NF; i++) { n = index($i, "="); v[substr($i, 1, n - 1)] = substr($i, n + 1) }
  printf "| %s | %s | %s (%s) | %s | %s | %.1f | %.1f | %.1f | %s |\n", v["proxy"], v["variant"], v["open"], v["alive_at_end"],
    v["failed"], v["proxy_fds_after"], v["rss_before_kb"] / 1024, v["rss_after_kb"] / 1024, v["rss_delta_kb"] / 1024, v["bytes_per_conn"] }'
echo
echo "RSS = VmRSS summed over the proxy's processes (nginx: master + worker). bytes per conn = delta / conns."
