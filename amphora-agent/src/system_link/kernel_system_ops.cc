#include "system_link/kernel_system_ops.h"

#include "apply/config_apply.h"
#include "banyan/common/logging.h"
#include "system/announce.h"
#include "system/firewall.h"
#include "system/keepalived.h"
#include "system/netlink.h"

namespace banyan::agent::system_link {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

std::string prefixOf(const std::string& cidr) {
  auto slash = cidr.find('/');
  return slash == std::string::npos ? "" : cidr.substr(slash);
}

// The NIC Nova hot-plugged, found by MAC. Not there yet is a 404 with Octavia's
// words: the controller retries on exactly this.
Result<system::InterfaceInfo> nicFor(const std::string& mac) {
  auto nic = system::findInterfaceByMac(mac);
  if (!nic && nic.error().code == ErrorCode::kNotFound) {
    return makeError(ErrorCode::kNotFound, "No suitable network interface found", mac);
  }
  return nic;
}

Result<void> bringUp(const system::InterfaceInfo& nic, int mtu) {
  if (mtu > 0 && nic.mtu != mtu) {
    if (auto r = system::setLinkMtu(nic.name, mtu); !r) return r;
  }
  return system::setLinkUp(nic.name);
}

std::vector<system::VipNetwork::HostRoute> routesOf(const std::vector<api::HostRoute>& in) {
  std::vector<system::VipNetwork::HostRoute> out;
  for (const auto& r : in) out.push_back({r.destination, r.nexthop});
  return out;
}

}  // namespace

KernelSystemOps::KernelSystemOps(KernelSystemOptions options) : options_(std::move(options)) {}
KernelSystemOps::~KernelSystemOps() = default;

Result<std::string> KernelSystemOps::plugVip(const api::VipPlug& plug) {
  std::lock_guard<std::mutex> lock(mu_);
  auto nic = nicFor(plug.mac_address);
  if (!nic) return nic.error();
  if (auto r = bringUp(nic.value(), plug.mtu); !r) return r.error();
  // ACTIVE_STANDBY: the VRRP address is static and keepalived owns the VIP; SINGLE:
  // the VIP itself is static.
  if (!plug.vrrp_ip.empty()) {
    if (auto r = system::addAddress(nic->name, plug.vrrp_ip + prefixOf(plug.subnet_cidr)); !r) return r.error();
  }
  system::VipNetwork vip;
  vip.interface = nic->name;
  vip.vip = plug.vip;
  vip.subnet_cidr = plug.subnet_cidr;
  vip.gateway = plug.gateway;
  vip.host_routes = routesOf(plug.host_routes);
  vip.add_vip_address = plug.vrrp_ip.empty();
  if (auto r = system::applyVipNetwork(vip); !r) return r.error();
  for (const auto& extra : plug.additional_vips) {
    system::VipNetwork more = vip;
    more.vip = extra.ip_address;
    more.subnet_cidr = extra.subnet_cidr;
    more.gateway = extra.gateway;
    more.host_routes = routesOf(extra.host_routes);
    if (auto r = system::applyVipNetwork(more); !r) return r.error();
  }
  if (plug.vrrp_ip.empty()) {
    // SINGLE: nobody else announces the VIP (keepalived does in ACTIVE_STANDBY). After
    // a failover the network's neighbour caches still name the dead amphora's MAC and
    // would keep it until they expire (up to a minute); one announcement moves them.
    if (auto r = system::announceAddress(nic->name, plug.vip); !r) {
      LB_WARN("VIP announcement failed. vip=%s interface=%s error=%s", plug.vip.c_str(), nic->name.c_str(),
              r.error().message.c_str());
    }
  }
  return nic->name;
}

Result<std::string> KernelSystemOps::plugNetwork(const api::NetworkPlug& plug) {
  std::lock_guard<std::mutex> lock(mu_);
  auto nic = nicFor(plug.mac_address);
  if (!nic) return nic.error();
  if (auto r = bringUp(nic.value(), plug.mtu); !r) return r.error();
  for (const auto& ip : plug.fixed_ips) {
    if (auto r = system::addAddress(nic->name, ip.ip_address + prefixOf(ip.subnet_cidr)); !r) return r.error();
    for (const auto& hr : ip.host_routes) {
      system::Route route;
      route.destination = hr.destination;
      route.gateway = hr.nexthop;
      route.interface = nic->name;
      if (auto r = system::addRoute(route); !r) return r.error();
    }
  }
  return nic->name;
}

Result<void> KernelSystemOps::applyVrrp(const api::VrrpSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  system::VrrpConfig config;
  config.interface = spec.interface;
  config.vip = spec.vip;
  config.vip_prefix = spec.vip_prefix;
  config.virtual_router_id = spec.virtual_router_id;
  config.priority = spec.priority;
  config.advert_interval_s = spec.advert_interval_s;
  config.local_address = spec.local_address;
  config.peer_addresses = spec.peer_addresses;
  config.auth_pass = spec.auth_pass;
  config.nopreempt = spec.nopreempt;
  config.check_command = options_.check_command;
  if (auto v = system::validateVrrpConfig(config); !v) {
    return makeError(ErrorCode::kInvalidArgument, v.error().message, v.error().context);
  }
  if (!keepalived_) keepalived_ = std::make_unique<system::Keepalived>(options_.runtime_dir, options_.keepalived_binary);
  return keepalived_->apply(config);
}

Result<void> KernelSystemOps::applyFirewall(const api::FirewallPlan& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  system::FirewallSpec spec;
  spec.vips = plan.vips;
  for (const auto& l : plan.listeners) spec.listeners.push_back({l.vip, l.port, l.protocol, l.allowed_cidrs});
  spec.management_cidrs = plan.management_cidrs;
  spec.vrrp_peers = plan.vrrp_peers;
  spec.agent_port = plan.agent_port;
  spec.allow_vrrp = plan.allow_vrrp;
  return system::applyFirewall(spec);
}

api::VrrpState KernelSystemOps::vrrpState() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!keepalived_) keepalived_ = std::make_unique<system::Keepalived>(options_.runtime_dir, options_.keepalived_binary);
  switch (keepalived_->state()) {
    case system::VrrpState::kMaster:
      return api::VrrpState::kMaster;
    case system::VrrpState::kBackup:
      return api::VrrpState::kBackup;
    case system::VrrpState::kFault:
      return api::VrrpState::kFault;
    case system::VrrpState::kUnknown:
      break;
  }
  return api::VrrpState::kUnknown;
}

std::string KernelSystemOps::keepalivedVersion() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!version_read_) {
    version_read_ = true;
    // "Keepalived v2.2.7 (01/16,2022)" on stderr.
    auto run = apply::runProcess({options_.keepalived_binary, "--version"}, 5000);
    if (run) {
      auto v = run->output.find(" v");
      if (v != std::string::npos) {
        auto end = run->output.find_first_of(" \n", v + 2);
        keepalived_version_ = run->output.substr(v + 2, end == std::string::npos ? std::string::npos : end - v - 2);
      }
    }
  }
  return keepalived_version_;
}

}  // namespace banyan::agent::system_link
