#!/usr/bin/env bash
# Worker-thread scaling of banyan-proxy on http-keepalive with the shared harness:
#   tests/bench/scaling.sh [PATH/TO/banyan-proxy]
# Runs (REPS times, interleaved) settings.workers = 1 pinned to CPU "1" and
# workers = 2 on CPUs "0,1", and prints req/s, proxy CPU % and req per proxy
# CPU-second for each.
# CAVEAT: this machine has 2 cores and the client (wrk) and the member nginx are
# pinned to CPU 0. With 2 workers the proxy shares CPU 0 with them, so req/s can
# barely rise (client+members already fill CPU 0 at ~40k req/s) and may fall;
# the run shows whether a second worker costs efficiency (req per CPU-second),
# not how far banyan-proxy scales. Measure scaling on a machine with spare cores
# (BENCH_CLIENT_CPUS / BENCH_BACKEND_CPUS on other cores) for real numbers.
# Environment: REPS (1), SCALING_SCENARIO (http-keepalive), SCALING_PEERS (""; e.g.
# "haproxy nginx" to run them at the same thread counts: nbthread / worker_processes),
# BENCH_OUT, BENCH_RESULTS (default $BENCH_OUT/scaling-<UTC>.log), harness knobs.
set -euo pipefail
# shellcheck source=tests/bench/bench-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-env.sh" scaling "${1:-}"
export BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_OUT/scaling-$(date -u +%Y%m%dT%H%M%SZ).log}
SCEN=${SCALING_SCENARIO:-http-keepalive}
CMD="$(printf '%q' "$HERE/banyan-bench-adapter.sh") {config}"
read -r -a PEERS <<<"${SCALING_PEERS:-}"

echo "# scaling.sh $(date -u +%FT%TZ) scenario=$SCEN nproc=$(nproc) client_cpus=${BENCH_CLIENT_CPUS:-0} backend_cpus=${BENCH_BACKEND_CPUS:-0}" >>"$BENCH_RESULTS"
for ((rep = 1; rep <= ${REPS:-1}; rep++)); do
  for threads in 1 2; do
    cpus=1; [ "$threads" = 2 ] && cpus=0,1
    for p in custom "${PEERS[@]}"; do
      log "rep $rep: $p, $threads thread(s) on CPUs $cpus"
      args=("$p"); [ "$p" = custom ] && args+=("$CMD")
      BENCH_REP=$rep BENCH_PROXY_THREADS=$threads BENCH_PROXY_CPUS=$cpus \
        "$BENCH_DIR/run.sh" "${args[@]}" "$SCEN" >/dev/null || log "run failed: $p threads=$threads"
    done
  done
done

echo
echo "| proxy | threads | proxy CPUs | n | req/s (median) | proxy CPU % | req per proxy-CPU-s | p99 ms | errors+non2xx | cpu0 busy % | cpu1 busy % |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
grep -o 'BENCH .*' "$BENCH_RESULTS" | awk '
  { split("", v); for (i = 2; i <= NF; i++) { n = index($i, "="); v[substr($i, 1, n - 1)] = substr($i, n + 1) }
    split(v["cpus"], c, "proxy:")
    print v["proxy"], v["threads"], c[2], v["rps"], v["proxy_cpu_pct"], v["req_per_proxy_cpu_s"], v["p99_ms"],
          v["errors"] + v["non2xx"], v["cpu0_busy_pct"], v["cpu1_busy_pct"] }' |
  sort -k1,1 -k2,2n | awk '
  # median of column c over rows 1..n (insertion sort; a handful of repeats)
  function med(c,   i, j, t, a) { for (i = 1; i <= n; i++) a[i] = x[i, c]
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function flush() { if (key == "") return
    printf "| %s | %s | %s | %d | %.0f | %.0f | %.0f | %.2f | %d | %.0f | %.0f |\n", P, T, C, n,
      med(4), med(5), med(6), med(7), med(8), med(9), med(10) }
  { k = $1 " " $2
    if (k != key) { flush(); key = k; n = 0; P = $1; T = $2; C = $3 }
    n++; for (c = 4; c <= 10; c++) x[n, c] = $c }
  END { flush() }'
echo
echo "Medians over repeats; proxy custom = banyan-proxy."
echo "CAVEAT: 2 cores; with 2 workers the proxy shares CPU 0 with wrk and the members."
echo "Raw lines: $BENCH_RESULTS"
