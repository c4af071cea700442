// Operating status from a heartbeat: what the health manager writes back for one load
// balancer when its amphora reports in. Pure: the caller loads the load balancer's view
// from the store, applies the changes, and records the amphora's health when told to.
//
// The rules are Octavia's health manager's (amphorae/drivers/health/heartbeat_udp.py),
// applied to a heartbeat whose statuses banyan-agent already words as operating
// statuses (docs/heartbeat.md): listener ONLINE (accepting) or DEGRADED (full); pool
// ONLINE (up) or ERROR (down); member ONLINE, ERROR, DRAINING, OFFLINE or NO_MONITOR.
#pragma once

#include <string>
#include <vector>

#include "banyan/common/heartbeat.h"

namespace banyan::provider::health {

struct MemberView {
  std::string id;
  std::string operating_status;
};

struct PoolView {
  std::string id;
  std::string operating_status;
  std::vector<MemberView> members;
};

struct ListenerView {
  std::string id;
  bool enabled = true;
  std::string operating_status;
};

struct LoadBalancerView {
  std::string id;
  bool enabled = true;
  std::string provisioning_status;
  std::string operating_status;
  std::vector<ListenerView> listeners;
  std::vector<PoolView> pools;
};

struct StatusChange {
  std::string kind;  // "loadbalancer", "listener", "pool", "member"
  std::string id;
  std::string from;
  std::string to;
  bool operator==(const StatusChange&) const = default;
};

struct RollUp {
  // False when the heartbeat lists a different number of listeners than the load
  // balancer has enabled (a config is still landing): the amphora's last-seen time is
  // not refreshed, so an amphora stuck on an old config ends up failed over.
  bool refresh_amphora_health = true;
  std::vector<StatusChange> changes;  // only real changes, children before parents
};

RollUp rollUpHeartbeat(const LoadBalancerView& lb, const common::Heartbeat& heartbeat);

}  // namespace banyan::provider::health
