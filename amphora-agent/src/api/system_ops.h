// What the REST API needs from the amphora's system module (amphora-agent/src/system/:
// rtnetlink, nftables, keepalived). The API validates requests and shapes answers; an
// implementation of this class does the work. The real one wraps the system module
// (wired in app/); NoopSystemOps is the dry-run choice and records what it was asked.
#pragma once

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
};

// Dry run: accepts everything, changes nothing, remembers the last request.
class NoopSystemOps final : public SystemOps {
 public:
  common::Result<std::string> plugVip(const VipPlug& plug) override;
  common::Result<std::string> plugNetwork(const NetworkPlug& plug) override;
  common::Result<void> applyVrrp(const VrrpSpec& spec) override;
  VrrpState vrrpState() override;
  std::string keepalivedVersion() override { return ""; }

  std::optional<VipPlug> lastVip() const;
  std::optional<NetworkPlug> lastNetwork() const;
  std::optional<VrrpSpec> lastVrrp() const;

 private:
  mutable std::mutex mu_;
  std::optional<VipPlug> vip_;
  std::optional<NetworkPlug> network_;
  std::optional<VrrpSpec> vrrp_;
};

}  // namespace banyan::agent::api
