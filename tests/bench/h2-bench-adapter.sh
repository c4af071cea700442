#!/usr/bin/env bash
# `custom` proxy command for the shared harness's h2 scenario
# (../shared/bench, scenario `h2`: h2load over TLS 1.3 with ALPN h2 to
# 127.0.0.1:8443, HTTP/1.1 members).
#
#   h2-bench-adapter.sh HARNESS_JSON
#
# banyan-bench-adapter.sh --convert writes the banyan-proxy document (same
# conversion as every other scenario); this script then puts "h2" back at the
# head of the TERMINATED_HTTPS listener's alpn_protocols (that adapter leaves it
# out for the HTTP/1.1 scenarios) and execs the proxy, so the measured process
# tree is banyan-proxy alone. Environment: BANYAN_PROXY_BIN, BANYAN_BENCH_LOG_LEVEL
# as for banyan-bench-adapter.sh.
set -euo pipefail

ME=h2-bench-adapter
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
die() { echo "$ME: ERROR: $*" >&2; exit 1; }
command -v jq >/dev/null || die "jq is required (bench/install.sh installs it)"

in=${1:-${BENCH_CONFIG:-}}
[ -n "$in" ] && [ -r "$in" ] || die "usage: $0 HARNESS_JSON"
BIN=${BANYAN_PROXY_BIN:-$REPO/build/dataplane/banyan-proxy}
[ -x "$BIN" ] || die "banyan-proxy not found at $BIN (set BANYAN_PROXY_BIN)"

base=$(dirname "$in")/banyan-proxy-h1.json
out=$(dirname "$in")/banyan-proxy.json
"$HERE/banyan-bench-adapter.sh" --convert "$in" "$base" >/dev/null || die "cannot convert $in"
jq '(.listeners[] | select(.protocol == "TERMINATED_HTTPS") | .alpn_protocols) = ["h2", "http/1.1"]' \
  "$base" >"$out.tmp" || die "cannot add h2 to $base"
mv "$out.tmp" "$out"
args=(--config "$out")
[ -z "${BANYAN_BENCH_LOG_LEVEL:-}" ] || args+=(--log-level "$BANYAN_BENCH_LOG_LEVEL")
echo "$ME: exec $BIN ${args[*]}" >&2
exec "$BIN" "${args[@]}"
