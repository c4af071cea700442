// NoopNetworkDriver: allocates addresses and port ids in memory and plugs nothing,
// like Octavia's noop network driver. It knows the networks it is given (for example
// the [netns] vip_networks and member_networks) and, as Octavia's noop driver does,
// answers any other id with a made-up subnet (203.0.113.0/24), so an API-only
// deployment accepts whatever subnet ids its users send. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "drivers/netns_options.h"
#include "drivers/network.h"

namespace banyan::provider::drivers {

class NoopNetworkDriver : public NetworkDriver {
 public:
  explicit NoopNetworkDriver(std::vector<NetnsNetwork> networks = {});

  common::Result<Network> network(const std::string& network_id) override;
  common::Result<Subnet> subnet(const std::string& subnet_id) override;
  common::Result<std::vector<Subnet>> subnets() override;
  common::Result<Vip> allocateVip(const std::string& lb_id, const std::string& subnet_id,
                                  const std::string& requested_address) override;
  common::Result<void> deallocateVip(const Vip& vip) override;
  common::Result<PluggedInterface> plugVip(const std::string& compute_id, const Vip& vip) override;
  common::Result<void> unplugVip(const std::string& compute_id, const Vip& vip) override;
  common::Result<PluggedInterface> plugNetwork(const std::string& compute_id,
                                               const std::string& subnet_id) override;
  common::Result<void> unplugNetwork(const std::string& compute_id,
                                     const std::string& subnet_id) override;
  common::Result<void> unplugAll(const std::string& compute_id) override;
  common::Result<std::vector<PluggedInterface>> pluggedInterfaces(
      const std::string& compute_id) override;
  common::Result<std::vector<Port>> listPorts() override;

 private:
  NetnsNetwork networkFor(const std::string& id) const;  // configured, or made up
  common::Result<std::string> pick(const NetnsNetwork& net, const std::string& requested);
  PluggedInterface plugLocked(const std::string& compute_id, const NetnsNetwork& net,
                              const std::string& owner, const std::string& vip_port_id,
                              const std::string& address);

  std::vector<NetnsNetwork> networks_;
  std::mutex mu_;
  std::map<std::string, Port> ports_;  // by port id
};

}  // namespace banyan::provider::drivers
