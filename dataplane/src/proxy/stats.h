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
#include <string_view>
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
  // Listener, L7 routing. l7_default: HTTP requests (and HTTP/2 streams) no L7
  // policy took, sent to the default pool. Passthrough (TCP, HTTPS) listeners
  // with policies: connections a REDIRECT_TO_POOL policy sent to its pool
  // (sni_routed), that no policy took (sni_default), and, of either or of a
  // policy's rejects, those whose ClientHello was not read (sni_inspect_failed:
  // not TLS, cut short, or the inspect time ran out).
  std::atomic<uint64_t> l7_default{0};
  std::atomic<uint64_t> sni_routed{0};
  std::atomic<uint64_t> sni_default{0};
  std::atomic<uint64_t> sni_inspect_failed{0};
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
  uint64_t l7_default = 0, sni_routed = 0, sni_default = 0, sni_inspect_failed = 0;
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

// One L7 policy: what it took (HTTP requests, HTTP/2 streams, passed-through
// connections) whatever its action, and what came of it. Same slot discipline
// as Counters: each worker writes only its slot.
struct alignas(64) PolicyCounterSlot {
  std::atomic<uint64_t> matched{0};
  std::atomic<uint64_t> rejected{0};    // REJECT: 403 answered, or the connection closed
  std::atomic<uint64_t> redirected{0};  // REDIRECT_TO_URL / REDIRECT_PREFIX answered
  std::atomic<uint64_t> routed{0};      // REDIRECT_TO_POOL: sent to its pool
};

struct PolicyCounterTotals {
  uint64_t matched = 0, rejected = 0, redirected = 0, routed = 0;
};

class PolicyCounters {
 public:
  explicit PolicyCounters(size_t workers) : slots_(workers) {}
  PolicyCounterSlot& slot(size_t worker) { return slots_[worker]; }
  PolicyCounterTotals sum() const;

 private:
  std::vector<PolicyCounterSlot> slots_;
};

// Id -> counter object (Counters, PolicyCounters), used at apply time and by
// the stats reader (takes a lock; never on the request path).
template <typename T>
class KeyedCounterRegistry {
 public:
  explicit KeyedCounterRegistry(size_t workers) : workers_(workers) {}

  std::shared_ptr<T> get(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = map_[id];
    if (!slot) slot = std::make_shared<T>(workers_);
    return slot;
  }

  // Forgets counters no snapshot holds.
  void collect() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = map_.begin(); it != map_.end();) {
      if (it->second.use_count() == 1)
        it = map_.erase(it);
      else
        ++it;
    }
  }

  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return map_.size();
  }
  size_t workers() const { return workers_; }

 private:
  size_t workers_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<T>> map_;
};

using CounterRegistry = KeyedCounterRegistry<Counters>;
// Keyed by policyCounterKey(listener id, policy id): a policy id is unique
// within its listener (the document is checked for that), and a policy never
// moves to another listener in Octavia.
using PolicyCounterRegistry = KeyedCounterRegistry<PolicyCounters>;

inline std::string policyCounterKey(std::string_view listener_id, std::string_view policy_id) {
  std::string key(listener_id);
  key.push_back('\0');
  key.append(policy_id);
  return key;
}

}  // namespace banyan::dp::proxy
