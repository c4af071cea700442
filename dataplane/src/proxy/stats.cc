#include "proxy/stats.h"

namespace banyan::dp::proxy {

CounterTotals Counters::sum() const {
  CounterTotals t;
  for (const auto& s : slots_) {
    t.bytes_in += s.bytes_in.load(std::memory_order_relaxed);
    t.bytes_out += s.bytes_out.load(std::memory_order_relaxed);
    t.total_connections += s.total_connections.load(std::memory_order_relaxed);
    t.active_connections += s.active_connections.load(std::memory_order_relaxed);
    t.errors += s.errors.load(std::memory_order_relaxed);
    t.requests += s.requests.load(std::memory_order_relaxed);
    t.denied_connections += s.denied_connections.load(std::memory_order_relaxed);
    t.l7_default += s.l7_default.load(std::memory_order_relaxed);
    t.sni_routed += s.sni_routed.load(std::memory_order_relaxed);
    t.sni_default += s.sni_default.load(std::memory_order_relaxed);
    t.sni_inspect_failed += s.sni_inspect_failed.load(std::memory_order_relaxed);
    for (size_t i = 0; i < kResponseClasses; ++i)
      t.responses[i] += s.responses[i].load(std::memory_order_relaxed);
  }
  return t;
}

PolicyCounterTotals PolicyCounters::sum() const {
  PolicyCounterTotals t;
  for (const auto& s : slots_) {
    t.matched += s.matched.load(std::memory_order_relaxed);
    t.rejected += s.rejected.load(std::memory_order_relaxed);
    t.redirected += s.redirected.load(std::memory_order_relaxed);
    t.routed += s.routed.load(std::memory_order_relaxed);
  }
  return t;
}

}  // namespace banyan::dp::proxy
