// Traffic counters per listener and per member. Each worker thread writes only
// its own slot (a relaxed store, no lock, no shared cache line); readers sum
// the slots. Counter objects are keyed by id and live across config applies, so
// totals survive a reload, as Octavia's listener statistics do.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace banyan::dp::proxy {

// HTTP response status classes, as HAProxy's exporter labels them.
enum ResponseClass : size_t { k1xx, k2xx, k3xx, k4xx, k5xx, kOtherStatus, kResponseClasses };
inline size_t responseClass(int status) {
  return status >= 100 && status < 600 ? static_cast<size_t>(status / 100 - 1) : kOtherStatus;
}

struct alignas(64) CounterSlot {
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> total_connections{0};
  std::atomic<int64_t> active_connections{0};
  std::atomic<uint64_t> errors{0};  // listener: request_errors; member: response_errors
  // HTTP: requests started (listener) and responses by status class (listener:
  // every response sent, member: every response head received).
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> responses[kResponseClasses] = {};
  // Listener: connections closed at accept because the source is outside allowed_cidrs.
  std::atomic<uint64_t> denied_connections{0};
};

inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void bump(std::atomic<int64_t>& c, int64_t n) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct CounterTotals {
  uint64_t bytes_in = 0, bytes_out = 0, total_connections = 0, errors = 0;
  int64_t active_connections = 0;
  uint64_t requests = 0, denied_connections = 0;
  uint64_t responses[kResponseClasses] = {};
};

class Counters {
 public:
  explicit Counters(size_t workers) : slots_(workers) {}
  CounterSlot& slot(size_t worker) { return slots_[worker]; }
  CounterTotals sum() const;
  // Shared across workers: connections open on every worker (connection_limit
  // for listeners, LEAST_CONNECTIONS for members).
  std::atomic<int64_t> shared_active{0};
  // Listeners only: bit w set while worker w stopped accepting at connection_limit.
  std::atomic<uint64_t> paused_workers{0};

 private:
  std::vector<CounterSlot> slots_;
};

// Id -> Counters, used at apply time and by the stats reader (takes a lock).
class CounterRegistry {
 public:
  explicit CounterRegistry(size_t workers) : workers_(workers) {}
  std::shared_ptr<Counters> get(const std::string& id);
  void collect();  // forget counters no snapshot holds

 private:
  size_t workers_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Counters>> map_;
};

}  // namespace banyan::dp::proxy
