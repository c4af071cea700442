#!/usr/bin/env bash
# banyan-proxy (`custom` in the harness) against the better of HAProxy and nginx,
# per scenario, from saved BENCH lines (compare.sh / run.sh output):
#   tests/bench/vs-best-peer.sh RESULTS_FILE [PROXY (custom)]
# Medians over repeats. "best" is chosen per metric: the higher req per
# proxy-CPU-second, the lower p99, the lower peak RSS. Ratios are banyan / best:
# efficiency > 1 and p99/RSS < 1 mean banyan-proxy is ahead. MAX_OTHER_CPU_S=X
# drops runs with more than X CPU-seconds used by other tenants (as summarize.sh).
set -euo pipefail
f=${1:?usage: vs-best-peer.sh RESULTS_FILE [PROXY]}
me=${2:-custom}

grep -o 'BENCH .*' "$f" | awk -v maxo="${MAX_OTHER_CPU_S:-}" '
  { split("", kv)
    for (i = 2; i <= NF; i++) { n = index($i, "="); if (n) kv[substr($i, 1, n - 1)] = substr($i, n + 1) }
    if (maxo != "" && kv["proxy"] != "direct" && kv["other_cpu_s"] + 0 > maxo + 0) next
    kv["fail"] = kv["errors"] + kv["non2xx"]
    split("rps req_per_proxy_cpu_s p99_ms proxy_cpu_pct proxy_rss_peak_kb fail", m, " ")
    for (j in m) if ((m[j] in kv) && kv[m[j]] != "NA") print kv["scenario"], kv["proxy"], m[j], kv[m[j]] }' |
  sort -k1,1 -k2,2 -k3,3 -k4,4g |
  awk -v me="$me" '
  function flush() { if (key == "") return
    split(key, K, " ")
    med[key] = (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
    mx[key] = v[cnt]; n[K[1] " " K[2]] = cnt }
  { k = $1 " " $2 " " $3
    if (k != key) { flush(); key = k; cnt = 0 }
    v[++cnt] = $4; seen[$1] = 1 }
  END { flush()
    print "| scenario | n | banyan req/s | banyan CPU % | banyan req per CPU-s | best peer (eff) | peer req per CPU-s | eff ratio | banyan p99 ms | best peer (p99) | peer p99 ms | p99 ratio | banyan errors+non2xx (max) | banyan RSS MiB | best peer RSS MiB | RSS ratio |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    ns = split("http-keepalive http-close tls-keepalive tls-handshake tls-resume tcp h2 large-body", sc, " ")
    for (si = 1; si <= ns; si++) { s = sc[si]
      if (!((s " " me " rps") in med)) continue
      be = ""; bp = ""; br = ""; bev = ""; bpv = ""; brv = ""
      split("haproxy nginx", peers, " ")
      for (pi = 1; pi <= 2; pi++) { p = peers[pi]
        k = s " " p " req_per_proxy_cpu_s"; if ((k in med) && (bev == "" || med[k] > bev)) { bev = med[k]; be = p }
        k = s " " p " p99_ms";              if ((k in med) && (bpv == "" || med[k] < bpv)) { bpv = med[k]; bp = p }
        k = s " " p " proxy_rss_peak_kb";   if ((k in med) && (brv == "" || med[k] < brv)) { brv = med[k]; br = p } }
      e = med[s " " me " req_per_proxy_cpu_s"]; q = med[s " " me " p99_ms"]; r = med[s " " me " proxy_rss_peak_kb"]
      printf "| %s | %d | %.0f | %.0f | %.0f | %s | %s | %s | %.2f | %s | %s | %s | %d | %.1f | %s | %s |\n", s, n[s " " me],
        med[s " " me " rps"], med[s " " me " proxy_cpu_pct"], e,
        be == "" ? "-" : be, bev == "" ? "-" : sprintf("%.0f", bev), (bev > 0 ? sprintf("%.2f", e / bev) : "-"),
        q, bp == "" ? "-" : bp, bpv == "" ? "-" : sprintf("%.2f", bpv), (bpv > 0 ? sprintf("%.2f", q / bpv) : "-"),
        mx[s " " me " fail"], r / 1024, brv == "" ? "-" : sprintf("%.1f", brv / 1024), (brv > 0 ? sprintf("%.2f", r / brv) : "-")
    }
  }'
echo
echo "Medians over repeats; ratio = banyan-proxy / best peer (eff: higher is better; p99 and RSS: lower is better)."
