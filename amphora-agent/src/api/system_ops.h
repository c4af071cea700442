// What the REST API needs from the amphora's system module (amphora-agent/src/system/:
// rtnetlink, nftables, keepalived). The API validates requests and shapes answers; an
// implementation of this class does the work. The real one wraps the system module
// (wired in app/); NoopSystemOps is the dry-run choice and records what it was asked.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::agent::api {

struct HostRoute {
  std::string destination;  // CIDR
  std::string nexthop;      // IP
};

// PUT /1.0/plug/vip/{ip}: Octavia's net_info.
// An address on a subnet, with that subnet's routes: a VIP's additional VIPs and a
// member network's fixed IPs have the same shape (Octavia's agent API).
struct SubnetAddress {
  std::string ip_address;
  std::string subnet_cidr;
  std::string gateway;  // "" = none
  std::vector<HostRoute> host_routes;
};
struct VipPlug {
  std::string vip;          // from the path
  std::string subnet_cidr;
  std::string gateway;      // "" = none
  std::string mac_address;  // the NIC to configure
  std::string vrrp_ip;      // "" = none (SINGLE topology)
  int mtu = 0;              // 0 = leave as is
  std::vector<HostRoute> host_routes;
  std::vector<SubnetAddress> additional_vips;
};

// PUT /1.0/plug/network: Octavia's port_info.
struct NetworkPlug {
  std::string mac_address;
  std::vector<SubnetAddress> fixed_ips;
  int mtu = 0;
};

// PUT /1.0/vrrp: the keepalived instance of an ACTIVE_STANDBY amphora.
struct VrrpSpec {
  std::string interface;
  std::string vip;
  int vip_prefix = 32;
  int virtual_router_id = 1;
  int priority = 100;  // 100 MASTER, 90 BACKUP as Octavia renders it
  int advert_interval_s = 1;
  std::string local_address;
  std::vector<std::string> peer_addresses;
  std::string auth_pass;  // secret
  bool nopreempt = true;
};

// The agent's nftables table (system/firewall.h), as derived from the proxy document,
// agent.conf and the VRRP settings by firewallPlanFor() (api/firewall_plan.h).
struct FirewallListener {
  std::string vip;
  uint16_t port = 0;
  std::string protocol = "tcp";            // tcp|udp|sctp
  std::vector<std::string> allowed_cidrs;  // empty = every source
  bool operator==(const FirewallListener&) const = default;
};
struct FirewallPlan {
  std::vector<std::string> vips;  // traffic to these is dropped unless a listener takes it
  std::vector<FirewallListener> listeners;
  std::vector<std::string> management_cidrs;  // the agent port (and VRRP) from here only
  std::vector<std::string> vrrp_peers;        // VRRP also from these
  uint16_t agent_port = 9443;
  bool allow_vrrp = false;  // false: VRRP dropped from everyone (SINGLE)
  bool operator==(const FirewallPlan&) const = default;
};

enum class VrrpState { kMaster, kBackup, kFault, kUnknown };
const char* vrrpStateName(VrrpState state);

// Errors map to HTTP: kInvalidArgument 400, kNotFound 404 (e.g. "No suitable network
// interface found": the controller retries), kConflict 409, anything else 500.
class SystemOps {
 public:
  virtual ~SystemOps() = default;
  // Returns the interface name that now carries the VIP.
  virtual common::Result<std::string> plugVip(const VipPlug& plug) = 0;
  virtual common::Result<std::string> plugNetwork(const NetworkPlug& plug) = 0;
  virtual common::Result<void> applyVrrp(const VrrpSpec& spec) = 0;
  virtual VrrpState vrrpState() = 0;
  virtual std::string keepalivedVersion() = 0;  // "" when unknown
  // Replaces the agent's firewall as a whole, atomically: on failure the previous
  // rules stay. kInvalidArgument names the field of PLAN.
  virtual common::Result<void> applyFirewall(const FirewallPlan& plan) = 0;
};

// Dry run: accepts everything, changes nothing, remembers the last request.
class NoopSystemOps final : public SystemOps {
 public:
  common::Result<std::string> plugVip(const VipPlug& plug) override;
  common::Result<std::string> plugNetwork(const NetworkPlug& plug) override;
  common::Result<void> applyVrrp(const VrrpSpec& spec) override;
  VrrpState vrrpState() override;
  std::string keepalivedVersion() override { return ""; }
  common::Result<void> applyFirewall(const FirewallPlan& plan) override;

  std::optional<VipPlug> lastVip() const;
  std::optional<NetworkPlug> lastNetwork() const;
  std::optional<VrrpSpec> lastVrrp() const;
  // Every plan applyFirewall was given, oldest first.
  std::vector<FirewallPlan> firewallHistory() const;

 private:
  mutable std::mutex mu_;
  std::optional<VipPlug> vip_;
  std::optional<NetworkPlug> network_;
  std::optional<VrrpSpec> vrrp_;
  std::vector<FirewallPlan> firewall_;
};

}  // namespace banyan::agent::api
