// NetworkDriver: the seam between the controller and the networks amphorae attach to
// (STYLE.md §3). Shaped after Octavia's network.base.AbstractNetworkDriver and its
// data models: allocate_vip/deallocate_vip, plug_vip/unplug_vip,
// plug_network/unplug_network, get_network/get_subnet, get_plugged_networks.
// Implementations: NetnsNetworkDriver (local bridges and veths), NoopNetworkDriver,
// later NeutronNetworkDriver.
//
// The VIP model follows Octavia's allowed-address-pairs driver: allocateVip reserves
// the VIP address (a "VIP port"); plugVip gives one amphora its own base ("VRRP")
// address on the VIP network. The VIP address itself is brought up inside the
// amphora by its agent (SINGLE) or keepalived (ACTIVE_STANDBY), never by the driver.
//
// Thread-safe; every method returns a Result.
#pragma once

#include <string>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::provider::drivers {

struct Subnet {
  std::string id;
  std::string network_id;
  std::string cidr;  // "203.0.113.0/24"
  int ip_version = 4;
  std::string gateway_ip;  // the host's address on the subnet
  std::string pool_start;  // allocation pool, inclusive
  std::string pool_end;
};

struct Network {
  std::string id;
  std::string name;
  std::vector<std::string> subnet_ids;
  int mtu = 1500;
};

struct Vip {
  std::string address;
  std::string port_id;
  std::string subnet_id;
  std::string network_id;
};

// One address handed out on a subnet (Octavia's neutron port with one fixed IP).
struct Port {
  std::string id;
  std::string network_id;
  std::string subnet_id;
  std::string address;
  std::string device_owner;  // "vip", "vrrp" (an amphora's base address), "member"
  std::string device_id;     // vip: the load balancer id; vrrp/member: the compute id
  std::string vip_port_id;   // vrrp: the VIP port it carries
  std::string interface;     // vrrp/member: the interface name inside the amphora
};

// What the amphora's agent needs to configure an interface (Octavia's
// AmphoraNetworkConfig / the agent's plug_vip and plug_network bodies).
struct PluggedInterface {
  std::string compute_id;
  std::string port_id;
  std::string network_id;
  std::string subnet_id;
  std::string interface;  // name inside the amphora ("eth1")
  std::string mac_address;
  std::string address;  // the amphora's own (base/VRRP or member-network) address
  std::string cidr;     // the subnet
  int prefix_length = 0;
  std::string gateway_ip;
  int mtu = 1500;
};

class NetworkDriver {
 public:
  virtual ~NetworkDriver() = default;

  virtual common::Result<Network> network(const std::string& network_id) = 0;
  virtual common::Result<Subnet> subnet(const std::string& subnet_id) = 0;
  virtual common::Result<std::vector<Subnet>> subnets() = 0;

  // Reserves a VIP on the subnet: `requested_address` ("" for any free one) must be
  // inside the allocation pool and free (kConflict when taken, kInvalidArgument when
  // outside the pool, kUnavailable when the pool is exhausted). Asking again for a load
  // balancer that already has a VIP on the subnet returns that VIP (flows re-run).
  virtual common::Result<Vip> allocateVip(const std::string& lb_id, const std::string& subnet_id,
                                          const std::string& requested_address) = 0;
  // Frees the VIP and every base address plugged for it (like Octavia deleting the
  // VRRP ports with the VIP port). Idempotent.
  virtual common::Result<void> deallocateVip(const Vip& vip) = 0;

  // Attaches the amphora to the VIP's network with a base address of its own.
  // Plugging the same amphora twice returns the existing interface.
  virtual common::Result<PluggedInterface> plugVip(const std::string& compute_id,
                                                   const Vip& vip) = 0;
  virtual common::Result<void> unplugVip(const std::string& compute_id, const Vip& vip) = 0;

  // Attaches the amphora to a member subnet with an address of its own. Idempotent.
  virtual common::Result<PluggedInterface> plugNetwork(const std::string& compute_id,
                                                       const std::string& subnet_id) = 0;
  virtual common::Result<void> unplugNetwork(const std::string& compute_id,
                                             const std::string& subnet_id) = 0;
  // Unplugs everything attached to the amphora (its compute instance is going away).
  virtual common::Result<void> unplugAll(const std::string& compute_id) = 0;

  // Octavia's get_plugged_networks: the amphora's interfaces (VIP and member subnets).
  virtual common::Result<std::vector<PluggedInterface>> pluggedInterfaces(
      const std::string& compute_id) = 0;
  // Every address handed out (VIPs, base addresses, member-network addresses).
  virtual common::Result<std::vector<Port>> listPorts() = 0;
};

}  // namespace banyan::provider::drivers
