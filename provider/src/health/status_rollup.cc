#include "health/status_rollup.h"

#include <algorithm>

namespace banyan::provider::health {

namespace {

template <typename T>
const T* findById(const std::vector<T>& items, const std::string& id) {
  auto it = std::find_if(items.begin(), items.end(), [&](const T& x) { return x.id == id; });
  return it == items.end() ? nullptr : &*it;
}

void note(RollUp& out, const char* kind, const std::string& id, const std::string& from, const std::string& to) {
  if (!to.empty() && to != from) out.changes.push_back({kind, id, from, to});
}

}  // namespace

RollUp rollUpHeartbeat(const LoadBalancerView& lb, const common::Heartbeat& hb) {
  RollUp out;
  const bool pending = lb.provisioning_status.rfind("PENDING", 0) == 0;
  if (!pending && lb.enabled) {
    size_t expected = std::count_if(lb.listeners.begin(), lb.listeners.end(),
                                    [](const ListenerView& l) { return l.enabled; });
    out.refresh_amphora_health = hb.listeners.size() == expected;
  }

  std::string lb_status = lb.enabled ? "ONLINE" : "OFFLINE";
  for (const auto& listener : lb.listeners) {
    const auto* seen = findById(hb.listeners, listener.id);
    std::string status;
    if (!seen) {
      // Missing while it should run: the amphora failed to start it.
      status = listener.enabled && lb.provisioning_status == "ACTIVE" ? "ERROR" : "OFFLINE";
    } else if (seen->status == "ONLINE") {
      status = "ONLINE";
    } else if (seen->status == "DEGRADED") {
      status = "DEGRADED";
      if (lb_status == "ONLINE") lb_status = "DEGRADED";
    }
    // Any other word is a newer agent's; leave the stored status alone.
    note(out, "listener", listener.id, listener.operating_status, status);
  }

  for (const auto& pool : lb.pools) {
    const auto* seen = findById(hb.pools, pool.id);
    if (!seen) {
      // A pool no listener uses is not in the heartbeat.
      note(out, "pool", pool.id, pool.operating_status, "OFFLINE");
      continue;
    }
    std::string pool_status;
    if (seen->status == "ONLINE") {
      pool_status = "ONLINE";
    } else if (seen->status == "ERROR") {
      pool_status = "ERROR";
      lb_status = "ERROR";
    }
    for (const auto& member : pool.members) {
      const auto* m = findById(seen->members, member.id);
      std::string member_status;
      if (!m) {
        if (member.operating_status != "NO_MONITOR") member_status = "OFFLINE";
      } else if (m->status == "ONLINE" || m->status == "DRAINING" || m->status == "OFFLINE" ||
                 m->status == "NO_MONITOR") {
        member_status = m->status;
      } else if (m->status == "ERROR") {
        member_status = "ERROR";
        if (pool_status == "ONLINE") {
          pool_status = "DEGRADED";
          if (lb_status == "ONLINE") lb_status = "DEGRADED";
        }
      }
      note(out, "member", member.id, member.operating_status, member_status);
    }
    note(out, "pool", pool.id, pool.operating_status, pool_status);
  }

  note(out, "loadbalancer", lb.id, lb.operating_status, lb_status);
  return out;
}

}  // namespace banyan::provider::health
