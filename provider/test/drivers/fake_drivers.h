// FakeComputeDriver and FakeNetworkDriver: in-memory doubles of the driver seams for
// unit tests of the controller (STYLE.md §9: fakes, not mocks). They behave like the
// noop drivers, count every call, and can be scripted: fail the next call of a method
// ("quota exceeded" on build), or report a given status for an amphora.
// Thread-safe. Unit tests only; integration tests use the netns drivers.
// (They live here until provider/test/fakes/ exists; link banyan_provider_drivers_fakes.)
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "drivers/compute.h"
#include "drivers/network.h"
#include "drivers/noop_compute.h"
#include "drivers/noop_network.h"

namespace banyan::provider::drivers {

// Scripted failures and call counts, keyed by method name ("build", "plugVip", ...).
class FakeScript {
 public:
  void failNext(const std::string& method, common::Error error);
  int calls(const std::string& method) const;
  // Counts the call; returns the scripted error if one is queued for it.
  bool take(const std::string& method, common::Error& error);

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::deque<common::Error>> failures_;
  std::map<std::string, int> calls_;
};

class FakeComputeDriver : public ComputeDriver {
 public:
  FakeScript& script() { return script_; }
  // From now on status()/get()/list() report `status` for this amphora.
  void setStatus(const std::string& compute_id, ComputeStatus status);

  common::Result<Instance> build(const AmphoraSpec& spec) override;
  common::Result<void> remove(const std::string& compute_id) override;
  common::Result<ComputeStatus> status(const std::string& compute_id) override;
  common::Result<Instance> get(const std::string& compute_id) override;
  common::Result<std::vector<Instance>> list() override;

 private:
  Instance overridden(Instance instance);
  FakeScript script_;
  NoopComputeDriver inner_;
  std::mutex mu_;
  std::map<std::string, ComputeStatus> statuses_;
};

class FakeNetworkDriver : public NetworkDriver {
 public:
  explicit FakeNetworkDriver(std::vector<NetnsNetwork> networks = {})
      : inner_(std::move(networks)) {}
  FakeScript& script() { return script_; }

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
  FakeScript script_;
  NoopNetworkDriver inner_;
};

}  // namespace banyan::provider::drivers
