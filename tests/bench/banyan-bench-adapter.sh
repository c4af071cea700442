#!/usr/bin/env bash
# `custom` proxy command for the shared benchmark harness (../shared/bench):
# converts the harness's JSON (contract: bench/README.md, "Plugging in a new
# proxy") into a banyan-proxy config document and runs banyan-proxy on it.
#
#   banyan-bench-adapter.sh HARNESS_JSON          run the proxy (harness: '... {config}')
#   banyan-bench-adapter.sh --convert IN [OUT]    only write the converted document
#                                                 (OUT default: next to IN), print its path
#
# Environment:
#   BANYAN_PROXY_BIN        proxy binary (default <repo>/build/dataplane/banyan-proxy)
#   BANYAN_BENCH_WRAP       1: stay the parent of the proxy (needed for reloads, see
#                           below); 0: exec the proxy; default: 1 when the harness JSON
#                           is reload.sh's (scenario "reload"), else 0
#   BANYAN_BENCH_DRAIN_MS   settings.drain_timeout_ms (default 2000: the harness
#                           SIGKILLs 5 s after SIGTERM, the proxy must be gone by then)
#   BANYAN_BENCH_LOG_LEVEL  passed as --log-level when set
#   BANYAN_BENCH_ARGS       more banyan-proxy options, split at spaces (e.g. --no-io-batching)
#
# Conversion: listener HTTP 127.0.0.1:8080 -> pool_http (HTTP, ROUND_ROBIN) and
# TCP 127.0.0.1:8090 -> pool_tcp (TCP); listener/pool ids are the harness names,
# member ids m1..mN numbered across the whole document (member ids key health
# and stats, so they must be unique in the document, not only in a pool).
# settings.workers = harness "threads"; access_log "" (peers run without logs);
# no X-Forwarded-* headers (peers add none); client/member data timeouts 60 s
# like the harness's haproxy (timeout client/server 60s).
# The TERMINATED_HTTPS listener (8443) -> pool_http: default_tls_certificate is
# the harness's pem_bundle (or certificate + private_key joined into one file next
# to the document), tls_versions from min_version (TLSv1.3 -> ["TLSv1.3"]), the
# harness's ALPN list (h2 first, as the peers have it: wrk offers only http/1.1,
# h2load picks h2), and tls_session_resumption from tls.session_resumption (false
# for tls-handshake: no tickets, no cache).
#
# Reloads: reload.sh rewrites the harness JSON and sends SIGHUP to our PID.
# banyan-proxy re-reads its own --config file on SIGHUP, so in wrap mode this
# script stays the parent: on HUP it re-converts (generation + 1, written to a
# temporary file and renamed, so the proxy never reads half a file) and forwards
# HUP; TERM/INT are forwarded as TERM, and the proxy is SIGKILLed if it is still
# there 4 s later (before the harness would SIGKILL only this script and leave
# the proxy holding the ports). The harness sums CPU over the process tree, so
# the sleeping bash parent costs nothing there; it does add ~3-4 MiB VmHWM to
# the RSS sum, which is why the plain (non-reload) runs exec the proxy instead.
set -euo pipefail

ME=banyan-bench-adapter
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
log() { echo "$ME: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v jq >/dev/null || die "jq is required (bench/install.sh installs it)"

# convert IN OUT GENERATION: harness JSON -> banyan-proxy config document.
convert() {
  local in=$1 out=$2 gen=$3 tmp
  tmp=$(mktemp "$out.XXXXXX")
  if ! jq --argjson gen "$gen" --argjson drain "${BANYAN_BENCH_DRAIN_MS:-2000}" \
      --arg bundle "$(tls_bundle "$in" "$out")" '
      def tls_fields:
        if .protocol == "TERMINATED_HTTPS" then
          { default_tls_certificate: $bundle,
            tls_versions: (if (.tls.min_version // "TLSv1.2") == "TLSv1.3"
                           then ["TLSv1.3"] else ["TLSv1.2", "TLSv1.3"] end),
            alpn_protocols: (.tls.alpn // ["h2", "http/1.1"]),
            tls_session_resumption: (.tls.session_resumption != false) }
        else {} end;
      def listener:
        { id: .name, protocol: .protocol, address: .address, additional_addresses: [],
          protocol_port: .port, admin_state_up: true, connection_limit: -1,
          timeout_client_data: 60000, timeout_member_connect: 5000,
          timeout_member_data: 60000, timeout_tcp_inspect: 0,
          insert_headers: {}, accept_proxy_protocol: "none", default_pool_id: .pool }
        + tls_fields;
      def member($n):
        { id: "m\($n)", address: .address, protocol_port: .protocol_port,
          weight: (.weight // 1), backup: false, admin_state_up: true };
      { generation: $gen,
        settings: { workers: (.threads // 1), access_log: "", drain_timeout_ms: $drain },
        listeners: [ .listeners[]
                     | select(.protocol == "HTTP" or .protocol == "TCP"
                              or (.protocol == "TERMINATED_HTTPS" and $bundle != ""))
                     | listener ],
        pools: ( [ .pools | to_entries[] ] as $ps
                 | [ range(0; $ps | length) as $i
                     | $ps[$i] as $p
                     | ([ $ps[0:$i][] | .value.members | length ] | add // 0) as $base
                     | { id: $p.key, protocol: $p.value.protocol,
                         lb_algorithm: ($p.value.lb_algorithm // "ROUND_ROBIN"),
                         admin_state_up: true,
                         members: [ $p.value.members | to_entries[]
                                    | .key as $k | .value | member($base + $k + 1) ] } ] ) }
    ' "$in" >"$tmp"; then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$out"
}

skipped_listeners() {
  jq -r '[.listeners[] | select(.protocol != "HTTP" and .protocol != "TCP"
                                and .protocol != "TERMINATED_HTTPS")
          | "\(.name) (\(.protocol) \(.address):\(.port))"] | join(", ")' "$1"
}

# tls_bundle IN OUT: the PEM bundle (certificate, chain, key) for the TLS
# listener: the harness's pem_bundle, else its certificate and key joined into
# <OUT dir>/banyan-tls-bundle.pem (0600); "" when the JSON has no TLS listener.
tls_bundle() {
  local in=$1 out=$2 pem cert key joined
  pem=$(jq -r '[.listeners[] | select(.protocol == "TERMINATED_HTTPS")][0].tls.pem_bundle // ""' "$in")
  if [ -n "$pem" ] && [ -r "$pem" ]; then realpath "$pem"; return 0; fi
  cert=$(jq -r '[.listeners[] | select(.protocol == "TERMINATED_HTTPS")][0].tls.certificate // ""' "$in")
  key=$(jq -r '[.listeners[] | select(.protocol == "TERMINATED_HTTPS")][0].tls.private_key // ""' "$in")
  if [ -z "$cert" ] || [ -z "$key" ] || [ ! -r "$cert" ] || [ ! -r "$key" ]; then echo ""; return 0; fi
  joined=$(cd "$(dirname "$out")" && pwd)/banyan-tls-bundle.pem
  (umask 077 && cat "$cert" "$key" >"$joined")
  echo "$joined"
}

if [ "${1:-}" = --convert ]; then
  in=${2:?usage: $0 --convert IN [OUT]}
  out=${3:-$(dirname "$in")/banyan-proxy.json}
  convert "$in" "$out" 1 || die "cannot convert $in"
  echo "$out"
  exit 0
fi

in=${1:-${BENCH_CONFIG:-}}
if [ -z "$in" ] || [ ! -r "$in" ]; then die "usage: $0 HARNESS_JSON (or --convert IN [OUT])"; fi
BIN=${BANYAN_PROXY_BIN:-$REPO/build/dataplane/banyan-proxy}
[ -x "$BIN" ] || die "banyan-proxy not found at $BIN (set BANYAN_PROXY_BIN)"
out=$(dirname "$in")/banyan-proxy.json

active=$(jq -r '.active_listener // "http"' "$in")
skipped=$(skipped_listeners "$in")
[ -z "$skipped" ] || log "skipping listener(s) $skipped: not supported by banyan-proxy"
scenario=$(jq -r '.scenario // ""' "$in")
if [ "$active" = tls ] && [ -z "$(tls_bundle "$in" "$out")" ]; then
  die "scenario $scenario needs the TLS listener, but the JSON names no readable certificate"
fi

gen=1
convert "$in" "$out" "$gen" || die "cannot convert $in"
args=(--config "$out")
[ -z "${BANYAN_BENCH_LOG_LEVEL:-}" ] || args+=(--log-level "$BANYAN_BENCH_LOG_LEVEL")
# shellcheck disable=SC2206  # split on purpose
[ -z "${BANYAN_BENCH_ARGS:-}" ] || args+=(${BANYAN_BENCH_ARGS})

wrap=${BANYAN_BENCH_WRAP:-}
if [ -z "$wrap" ]; then
  wrap=0
  [ "$(jq -r '.scenario // ""' "$in")" != reload ] || wrap=1
fi
if [ "$wrap" = 0 ]; then
  log "exec $BIN ${args[*]}"
  exec "$BIN" "${args[@]}"
fi

# ---- wrap mode: parent of the proxy, translating reloads -------------------------
"$BIN" "${args[@]}" &
child=$!
log "started $BIN ${args[*]} as pid $child (wrapper pid $$)"
terminating=0

on_hup() {
  [ "$terminating" = 0 ] || return 0
  if convert "$in" "$out" "$((gen + 1))"; then
    gen=$((gen + 1))
    kill -HUP "$child" 2>/dev/null || true
  else
    log "reload: cannot convert $in; proxy keeps generation $gen"
  fi
}
on_term() {
  [ "$terminating" = 0 ] || return 0
  terminating=1
  kill_at_us=$((${EPOCHREALTIME/./} + 4000000))
  kill -TERM "$child" 2>/dev/null || true
}
trap on_hup HUP
trap on_term TERM INT

# `wait` returns (status > 128) as soon as a trapped signal arrives, the trap
# runs, and we wait again: signals are forwarded without delay.
rc=0
while :; do
  if [ "$terminating" = 1 ]; then
    while kill -0 "$child" 2>/dev/null && ((${EPOCHREALTIME/./} < kill_at_us)); do
      sleep 0.05
    done
    if kill -0 "$child" 2>/dev/null; then
      log "proxy pid $child still running 4 s after SIGTERM; sending SIGKILL"
      kill -KILL "$child" 2>/dev/null || true
    fi
  fi
  set +e
  wait "$child"
  rc=$?
  set -e
  kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
