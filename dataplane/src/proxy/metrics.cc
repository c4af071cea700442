#include "proxy/metrics.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <vector>

#include "health/health_state.h"

namespace banyan::dp::proxy {
namespace {

// HAProxy's `maxconn` bound, which Octavia's max_connections reports.
constexpr int64_t kMaxMaxConn = 1000000;

constexpr const char* kClassLabels[kResponseClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};

// Octavia's octavia_member_status values.
enum MemberStatusValue { kMemberError = 0, kMemberOnline = 1, kMemberOffline = 2, kMemberDrain = 3 };

class Text {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // constant texts: no backslash or line feed to escape
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const char* name, const std::string& labels, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v));
    line(name, labels, buf);
  }
  void sampleSigned(const char* name, const std::string& labels, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    line(name, labels, buf);
  }
  void sampleDouble(const char* name, const std::string& labels, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.1f", v);
    line(name, labels, buf);
  }
  std::string take() { return std::move(out_); }

 private:
  void line(const char* name, const std::string& labels, const char* value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  std::string out_;
};

std::string label(const char* name, std::string_view value) {
  std::string s(name);
  s += "=\"";
  s += escapeLabelValue(value);
  s += '"';
  return s;
}

struct ListenerRow {
  std::string labels;
  CounterTotals t;
  int64_t limit = 0;
  int status = 1;
  bool http = false;
  bool has_policies = false;  // L7 policies in its document (enabled or not)
};

struct PolicyRow {
  std::string labels;  // listener, l7policy
  PolicyCounterTotals t;
};

struct MemberRow {
  std::string labels;
  CounterTotals t;
  int status = kMemberOnline;
  uint32_t weight = 0;
  bool http = false;
};

struct PoolRow {
  std::string labels;
  CounterTotals t;  // sums of its members' counters
  int status = 0;
  uint64_t active = 0, backup = 0;
  bool http = false;
};

int memberStatus(const MemberRt& m) {
  if (!m.cfg->admin_state_up) return kMemberOffline;
  if (m.health && !m.health->up()) return kMemberError;
  if (m.cfg->weight == 0) return kMemberDrain;
  return kMemberOnline;
}

bool carriesHttp(config::PoolProtocol p) {
  return p == config::PoolProtocol::kHttp || p == config::PoolProtocol::kProxy ||
         p == config::PoolProtocol::kProxyV2;
}

void addTotals(CounterTotals& into, const CounterTotals& t) {
  into.bytes_in += t.bytes_in;
  into.bytes_out += t.bytes_out;
  into.total_connections += t.total_connections;
  into.active_connections += t.active_connections;
  into.errors += t.errors;
  into.requests += t.requests;
  into.denied_connections += t.denied_connections;
  for (size_t i = 0; i < kResponseClasses; ++i) into.responses[i] += t.responses[i];
}

// Gauges are sums of signed per-worker slots; each worker opens and closes its
// own connections, so the sum is never negative, but a gauge must not be either.
uint64_t nonNegative(int64_t v) { return v < 0 ? 0 : static_cast<uint64_t>(v); }

}  // namespace

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

HostUsage readHostUsage() {
  HostUsage u;
  double load[1];
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (getloadavg(load, 1) == 1 && cpus > 0) u.cpu_percent = load[0] / static_cast<double>(cpus) * 100.0;
  if (FILE* f = fopen("/proc/meminfo", "re")) {
    char line[256];
    unsigned long long total = 0, available = 0;
    bool have_total = false, have_available = false;
    while (fgets(line, sizeof line, f)) {
      if (sscanf(line, "MemTotal: %llu kB", &total) == 1) have_total = true;
      if (sscanf(line, "MemAvailable: %llu kB", &available) == 1) have_available = true;
    }
    fclose(f);
    // psutil's virtual_memory().percent: (total - available) / total.
    if (have_total && have_available && total > 0 && available <= total)
      u.memory_percent = static_cast<double>(total - available) / static_cast<double>(total) * 100.0;
  }
  return u;
}

std::string renderMetrics(const Snapshot& snap, const HostUsage& usage) {
  std::vector<ListenerRow> listeners;
  std::vector<PolicyRow> policies;
  CounterTotals lb;
  int64_t max_connections = 0;
  for (const auto& l : snap.listeners) {
    if (!l.udp) max_connections += l.connection_limit;
    if (l.prometheus) continue;
    ListenerRow row;
    row.labels = label("listener", l.cfg->id);
    row.t = l.counters->sum();
    row.limit = l.connection_limit;
    // Octavia's listener operating status: DEGRADED when at connection_limit
    // (HAProxy's FULL), else ONLINE. Disabled listeners are not running at all.
    row.status = l.counters->shared_active.load(std::memory_order_relaxed) >= l.connection_limit ? 2 : 1;
    row.http = l.http;
    row.has_policies = !l.policy_stats.empty();
    addTotals(lb, row.t);
    for (const auto& ps : l.policy_stats)
      policies.push_back({row.labels + "," + label("l7policy", ps.cfg->id), ps.counters->sum()});
    listeners.push_back(std::move(row));
  }
  if (max_connections <= 0 || max_connections >= kMaxMaxConn) max_connections = kMaxMaxConn;

  std::vector<PoolRow> pools;
  std::vector<MemberRow> members;
  for (const auto& p : snap.pools) {
    if (!p.cfg->admin_state_up) continue;  // Octavia renders no backend for a disabled pool
    PoolRow pool;
    pool.labels = label("pool", p.cfg->id);
    pool.http = carriesHttp(p.cfg->protocol);
    for (const auto& m : p.members) {
      MemberRow row;
      row.labels = pool.labels + "," + label("member", m.cfg->id);
      row.t = m.counters->sum();
      row.status = memberStatus(m);
      row.weight = m.cfg->weight;
      row.http = pool.http;
      addTotals(pool.t, row.t);
      if (row.status == kMemberOnline) {
        pool.status = 1;
        ++(m.cfg->backup ? pool.backup : pool.active);
      }
      members.push_back(std::move(row));
    }
    pools.push_back(std::move(pool));
  }

  Text out;
  // ---- load balancer
  if (usage.cpu_percent) {
    out.family("octavia_loadbalancer_cpu", "gauge", "Load balancer CPU utilization (percentage).");
    out.sampleDouble("octavia_loadbalancer_cpu", "", *usage.cpu_percent);
  }
  if (usage.memory_percent) {
    out.family("octavia_loadbalancer_memory", "gauge",
               "Load balancer memory utilization (percentage).");
    out.sampleDouble("octavia_loadbalancer_memory", "", *usage.memory_percent);
  }
  out.family("octavia_loadbalancer_max_connections", "gauge",
             "Maximum number of concurrent connections.");
  out.sampleSigned("octavia_loadbalancer_max_connections", "", max_connections);
  out.family("octavia_loadbalancer_current_connections", "gauge",
             "Number of active sessions.");
  out.sample("octavia_loadbalancer_current_connections", "", nonNegative(lb.active_connections));
  out.family("octavia_loadbalancer_connections_total", "counter",
             "Total number of created sessions.");
  out.sample("octavia_loadbalancer_connections_total", "", lb.total_connections);
  out.family("octavia_loadbalancer_requests_total", "counter",
             "Total number of requests (TCP or HTTP).");
  out.sample("octavia_loadbalancer_requests_total", "", lb.requests);
  // TLS handshakes of the terminating listeners, from OpenSSL's own counts per
  // context: they start again when an apply rebuilds the contexts, as
  // HAProxy's do when Octavia reloads it.
  bool terminates = false;
  tls::HandshakeCounts handshakes;
  for (const auto& l : snap.listeners) {
    if (l.prometheus || !l.tls) continue;
    terminates = true;
    tls::HandshakeCounts c = l.tls->handshakes();
    handshakes.completed += c.completed;
    handshakes.resumed += c.resumed;
  }
  if (terminates) {
    out.family("octavia_loadbalancer_ssl_connections_total", "counter",
               "Total number of opened SSL connections.");
    out.sample("octavia_loadbalancer_ssl_connections_total", "", handshakes.completed);
    // HAProxy's spelling, which Octavia's metric name keeps.
    out.family("octavia_loadbalancer_frontent_ssl_reuse", "gauge", "SSL session reuse ratio (percent).");
    out.sampleDouble("octavia_loadbalancer_frontent_ssl_reuse", "",
                     handshakes.completed ? static_cast<double>(handshakes.resumed) * 100.0 /
                                                static_cast<double>(handshakes.completed)
                                          : 0.0);
  }

  // ---- listeners
  auto listenerFamily = [&](const char* name, const char* type, const char* help, auto value,
                            bool http_only = false) {
    bool any = false;
    for (const auto& l : listeners) any |= !http_only || l.http;
    if (!any) return;
    out.family(name, type, help);
    for (const auto& l : listeners)
      if (!http_only || l.http) out.sample(name, l.labels, value(l));
  };
  listenerFamily("octavia_listener_status", "gauge",
                 "Current status of the listener. 0=OFFLINE, 1=ONLINE, 2=DEGRADED.",
                 [](const ListenerRow& l) { return static_cast<uint64_t>(l.status); });
  listenerFamily("octavia_listener_current_sessions", "gauge", "Number of active sessions.",
                 [](const ListenerRow& l) { return nonNegative(l.t.active_connections); });
  listenerFamily("octavia_listener_limit_sessions", "gauge",
                 "Configured session limit.",
                 [](const ListenerRow& l) { return nonNegative(l.limit); });
  listenerFamily("octavia_listener_sessions_total", "counter", "Total number of sessions.",
                 [](const ListenerRow& l) { return l.t.total_connections; });
  listenerFamily("octavia_listener_connections_total", "counter",
                 "Total number of connections (sessions and connections denied by allowed_cidrs).",
                 [](const ListenerRow& l) { return l.t.total_connections + l.t.denied_connections; });
  listenerFamily("octavia_listener_bytes_in_total", "counter", "Current total of incoming bytes.",
                 [](const ListenerRow& l) { return l.t.bytes_in; });
  listenerFamily("octavia_listener_bytes_out_total", "counter", "Current total of outgoing bytes.",
                 [](const ListenerRow& l) { return l.t.bytes_out; });
  listenerFamily("octavia_listener_request_errors_total", "counter",
                 "Total number of request errors.",
                 [](const ListenerRow& l) { return l.t.errors; });
  listenerFamily("octavia_listener_denied_connections_total", "counter",
                 "Total number of requests denied by connection rules.",
                 [](const ListenerRow& l) { return l.t.denied_connections; });
  listenerFamily("octavia_listener_http_requests_total", "counter",
                 "Total number of HTTP requests received.",
                 [](const ListenerRow& l) { return l.t.requests; }, true);
  {
    bool any = false;
    for (const auto& l : listeners) any |= l.http;
    if (any) {
      out.family("octavia_listener_http_responses_total", "counter",
                 "Total number of HTTP responses.");
      for (const auto& l : listeners) {
        if (!l.http) continue;
        for (size_t c = 0; c < kResponseClasses; ++c)
          out.sample("octavia_listener_http_responses_total",
                     l.labels + "," + label("code", kClassLabels[c]), l.t.responses[c]);
      }
    }
  }

  // ---- pools
  auto poolFamily = [&](const char* name, const char* type, const char* help, auto value) {
    if (pools.empty()) return;
    out.family(name, type, help);
    for (const auto& p : pools) out.sample(name, p.labels, value(p));
  };
  poolFamily("octavia_pool_status", "gauge", "Current status of the pool. 0=OFFLINE, 1=ONLINE.",
             [](const PoolRow& p) { return static_cast<uint64_t>(p.status); });
  poolFamily("octavia_pool_current_sessions", "gauge", "Number of active sessions.",
             [](const PoolRow& p) { return nonNegative(p.t.active_connections); });
  poolFamily("octavia_pool_sessions_total", "counter", "Total number of sessions.",
             [](const PoolRow& p) { return p.t.total_connections; });
  poolFamily("octavia_pool_bytes_in_total", "counter", "Current total of incoming bytes.",
             [](const PoolRow& p) { return p.t.bytes_in; });
  poolFamily("octavia_pool_bytes_out_total", "counter", "Current total of outgoing bytes.",
             [](const PoolRow& p) { return p.t.bytes_out; });
  poolFamily("octavia_pool_response_errors_total", "counter",
             "Total number of response errors (and failed connections to members).",
             [](const PoolRow& p) { return p.t.errors; });
  poolFamily("octavia_pool_active_members", "gauge", "Current number of active members.",
             [](const PoolRow& p) { return p.active; });
  poolFamily("octavia_pool_backup_members", "gauge", "Current number of backup members.",
             [](const PoolRow& p) { return p.backup; });
  {
    bool any = false;
    for (const auto& p : pools) any |= p.http;
    if (any) {
      out.family("octavia_pool_http_responses_total", "counter", "Total number of HTTP responses.");
      for (const auto& p : pools) {
        if (!p.http) continue;
        for (size_t c = 0; c < kResponseClasses; ++c)
          out.sample("octavia_pool_http_responses_total",
                     p.labels + "," + label("code", kClassLabels[c]), p.t.responses[c]);
      }
    }
  }

  // ---- members
  auto memberFamily = [&](const char* name, const char* type, const char* help, auto value) {
    if (members.empty()) return;
    out.family(name, type, help);
    for (const auto& m : members) out.sample(name, m.labels, value(m));
  };
  memberFamily("octavia_member_status", "gauge",
               "Current status of the member. 0=ERROR, 1=ONLINE, 2=OFFLINE, 3=DRAIN.",
               [](const MemberRow& m) { return static_cast<uint64_t>(m.status); });
  memberFamily("octavia_member_current_sessions", "gauge", "Number of active sessions.",
               [](const MemberRow& m) { return nonNegative(m.t.active_connections); });
  memberFamily("octavia_member_sessions_total", "counter", "Total number of sessions.",
               [](const MemberRow& m) { return m.t.total_connections; });
  memberFamily("octavia_member_bytes_in_total", "counter", "Current total of incoming bytes.",
               [](const MemberRow& m) { return m.t.bytes_in; });
  memberFamily("octavia_member_bytes_out_total", "counter", "Current total of outgoing bytes.",
               [](const MemberRow& m) { return m.t.bytes_out; });
  memberFamily("octavia_member_response_errors_total", "counter",
               "Total number of response errors (and failed connections to the member).",
               [](const MemberRow& m) { return m.t.errors; });
  memberFamily("octavia_member_weight", "gauge", "Member weight.",
               [](const MemberRow& m) { return static_cast<uint64_t>(m.weight); });
  {
    bool any = false;
    for (const auto& m : members) any |= m.http;
    if (any) {
      out.family("octavia_member_http_responses_total", "counter",
                 "Total number of HTTP responses.");
      for (const auto& m : members) {
        if (!m.http) continue;
        for (size_t c = 0; c < kResponseClasses; ++c)
          out.sample("octavia_member_http_responses_total",
                     m.labels + "," + label("code", kClassLabels[c]), m.t.responses[c]);
      }
    }
  }

  // ---- Banyan's own: L7 policies and where L7 routing sent traffic
  {
    bool any_http = false, any_passthrough = false;
    for (const auto& l : listeners) {
      any_http |= l.has_policies && l.http;
      any_passthrough |= l.has_policies && !l.http;
    }
    if (any_http) {
      out.family("banyan_listener_l7_default_total", "counter",
                 "HTTP requests (HTTP/2 streams) no L7 policy took, sent to the default pool.");
      for (const auto& l : listeners)
        if (l.has_policies && l.http) out.sample("banyan_listener_l7_default_total", l.labels, l.t.l7_default);
    }
    if (any_passthrough) {
      auto sniFamily = [&](const char* name, const char* help, uint64_t CounterTotals::*field) {
        out.family(name, "counter", help);
        for (const auto& l : listeners)
          if (l.has_policies && !l.http) out.sample(name, l.labels, l.t.*field);
      };
      sniFamily("banyan_listener_sni_routed_total",
                "Connections an L7 policy sent to its pool by their TLS server name.",
                &CounterTotals::sni_routed);
      sniFamily("banyan_listener_sni_default_total",
                "Connections no L7 policy took, sent to the default pool.",
                &CounterTotals::sni_default);
      sniFamily("banyan_listener_sni_inspect_failed_total",
                "Connections whose TLS ClientHello was not read (not TLS, cut short, inspect timeout).",
                &CounterTotals::sni_inspect_failed);
    }
  }
  if (!policies.empty()) {
    out.family("banyan_l7policy_matched_total", "counter",
               "Requests, HTTP/2 streams and connections the L7 policy took.");
    for (const auto& p : policies) out.sample("banyan_l7policy_matched_total", p.labels, p.t.matched);
    out.family("banyan_l7policy_outcomes_total", "counter",
               "What came of what the L7 policy took: rejected (403 or closed), redirected, routed "
               "to its pool.");
    for (const auto& p : policies) {
      out.sample("banyan_l7policy_outcomes_total", p.labels + ",outcome=\"rejected\"", p.t.rejected);
      out.sample("banyan_l7policy_outcomes_total", p.labels + ",outcome=\"redirected\"",
                 p.t.redirected);
      out.sample("banyan_l7policy_outcomes_total", p.labels + ",outcome=\"routed\"", p.t.routed);
    }
  }

  // ---- Banyan's own
  out.family("banyan_config_generation", "gauge",
             "Generation of the configuration document the proxy runs.");
  out.sample("banyan_config_generation", "", snap.config ? snap.config->generation : 0);
  return out.take();
}

}  // namespace banyan::dp::proxy
