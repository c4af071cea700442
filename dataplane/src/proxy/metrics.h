// The proxy's counters in the Prometheus text exposition format (version
// 0.0.4), under the names Octavia's prometheus-proxy gives them
// (octavia_loadbalancer_*, octavia_listener_*, octavia_pool_*, octavia_member_*),
// served by PROMETHEUS listeners at /metrics.
//
// renderMetrics is pure: it reads the snapshot's per-worker counter slots and
// member health atomics (relaxed loads, no locks) and the host usage it is
// given. readHostUsage is the adapter that reads /proc.
#pragma once

#include <optional>
#include <string>

#include "proxy/snapshot.h"

namespace banyan::dp::proxy {

// Octavia's octavia_loadbalancer_cpu / _memory (psutil in prometheus_proxy.py):
// 1-minute load average per CPU and used memory, both in percent.
struct HostUsage {
  std::optional<double> cpu_percent;
  std::optional<double> memory_percent;
};

// Reads /proc/loadavg (through getloadavg) and /proc/meminfo; a value that
// cannot be read stays empty and its metric is left out.
HostUsage readHostUsage();

// The whole exposition text. PROMETHEUS listeners are left out of the listener
// metrics and of the load balancer totals (Octavia does not count its metrics
// proxy either), so a scrape does not change what it reports.
std::string renderMetrics(const Snapshot& snap, const HostUsage& usage);

// Label value escaping of the text format: backslash, double quote and line feed.
std::string escapeLabelValue(std::string_view value);

}  // namespace banyan::dp::proxy
