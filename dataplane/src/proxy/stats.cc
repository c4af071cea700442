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
    for (size_t i = 0; i < kResponseClasses; ++i)
      t.responses[i] += s.responses[i].load(std::memory_order_relaxed);
  }
  return t;
}

std::shared_ptr<Counters> CounterRegistry::get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = map_[id];
  if (!slot) slot = std::make_shared<Counters>(workers_);
  return slot;
}

void CounterRegistry::collect() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = map_.begin(); it != map_.end();) {
    if (it->second.use_count() == 1)
      it = map_.erase(it);
    else
      ++it;
  }
}

}  // namespace banyan::dp::proxy
