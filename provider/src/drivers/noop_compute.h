// NoopComputeDriver: remembers amphorae in memory and starts nothing, like Octavia's
// noop compute driver. For API-only deployments and dry runs (STYLE.md §3); every
// amphora is ACTIVE at once with a management address from the configured subnet.
// Thread-safe. Tests that need scripted failures want a fake, not this.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "drivers/address.h"
#include "drivers/compute.h"

namespace banyan::provider::drivers {

class NoopComputeDriver : public ComputeDriver {
 public:
  // Management addresses come from `management_cidr` (never configured anywhere).
  explicit NoopComputeDriver(const std::string& management_cidr = "192.0.2.0/24");

  common::Result<Instance> build(const AmphoraSpec& spec) override;
  common::Result<void> remove(const std::string& compute_id) override;
  common::Result<ComputeStatus> status(const std::string& compute_id) override;
  common::Result<Instance> get(const std::string& compute_id) override;
  common::Result<std::vector<Instance>> list() override;

 private:
  std::mutex mu_;
  AllocationPool pool_;
  IpAddress next_;  // where the next allocation starts looking
  std::map<std::string, Instance> instances_;
};

}  // namespace banyan::provider::drivers
