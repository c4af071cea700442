// NetnsNetworkDriver: the VIP and member networks of provider.conf's [netns] group,
// each a local bridge whose first address the host holds (so the host reaches VIPs
// and members), with addresses handed out from the subnet's pool.
//
// Plugging an amphora (a NetnsComputeDriver namespace; the compute id is the
// namespace name) adds a veth: "ethN" inside with the allocated address and a MAC
// chosen here, "<prefix:4><8 hex>eN" on the host, enslaved to the network's bridge.
//
// Allocations live in <state_dir>/network.json (atomic rewrite under a lock, see
// netns_state.h), so a restarted provider neither hands out an address twice nor
// forgets what to unplug. Thread-safe; commands run outside the state lock. Several
// processes may share the state dir (the lock is also an flock); a port recorded whose
// veth is missing (the process plugging it died in between) is made by the next plug.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "drivers/netns_options.h"
#include "drivers/netns_state.h"
#include "drivers/network.h"

namespace banyan::provider::drivers {

class NetnsNetworkDriver : public NetworkDriver {
 public:
  static common::Result<std::unique_ptr<NetnsNetworkDriver>> create(const NetnsOptions& options);

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

  // Creates the bridge of every configured network now (the host can reach the
  // subnets before any amphora is plugged). Optional: plugging does it on demand.
  common::Result<void> ensureBridges();
  // Deletes every veth this driver plugged and the bridges it created, and forgets
  // every allocation. For test teardown and housekeeping.
  common::Result<void> cleanupAll();

 private:
  explicit NetnsNetworkDriver(NetnsConfig config);
  const NetnsNetwork* find(const std::string& id) const;
  common::Result<NetworkState> load(const StateFile::Guard& guard);
  common::Result<void> save(const StateFile::Guard& guard, const NetworkState& state);
  common::Result<void> ensureBridgeFor(const NetnsNetwork& net);
  // Picks a free address of `net` (or checks `requested`) against the state.
  common::Result<std::string> pickAddress(const NetworkState& state, const NetnsNetwork& net,
                                          const std::string& requested);
  // Shared by plugVip and plugNetwork: `owner` "vrrp" (with vip_port_id) or "member".
  common::Result<PluggedInterface> plug(const std::string& compute_id, const NetnsNetwork& net,
                                        const std::string& owner, const std::string& vip_port_id);
  common::Result<void> unplugWhere(const std::function<bool(const PortRecord&)>& match);
  PluggedInterface interfaceOf(const PortRecord& record) const;

  NetnsConfig config_;
  StateFile state_;
  std::mutex bridge_mu_;
  std::set<std::string> bridges_ready_;
};

}  // namespace banyan::provider::drivers
