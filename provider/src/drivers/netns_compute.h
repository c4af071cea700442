// NetnsComputeDriver: an amphora is a Linux network namespace on this host, joined to
// the management bridge by a veth, running the configured agent program. Booting one
// takes a few `ip` commands and a fork: milliseconds.
//
// Layout: namespace "<prefix>-amp-<8 hex>" (also the compute id); inside it "lo" and
// "eth0" with the management address; on the host the veth's other end
// "<prefix:4><8 hex>e0" on the management bridge, whose gateway address (.1) the host
// holds so the controller reaches every agent. Files live in
// <state_dir>/amphorae/<compute id>/ (agent.conf, the spec's files, agent.log); the
// agent runs with that directory as its working directory.
//
// State (<state_dir>/compute.json) records each amphora and the agent's PID + start
// time, so a restarted provider can report on and remove amphorae it built earlier.
// Thread-safe: the state lock is held only to allocate and record, never while
// commands run, so builds proceed in parallel. Several processes may share one state
// dir (separate `worker` and `housekeeping` processes): the file lock serializes them,
// and an agent this process started but another one stopped is still reaped here
// (reapChildren()), so a long-running worker collects no zombies.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "drivers/compute.h"
#include "drivers/netns_options.h"
#include "drivers/netns_state.h"

namespace banyan::provider::drivers {

class NetnsComputeDriver : public ComputeDriver {
 public:
  // Validates the options and creates the state dir; touches no network yet (the
  // management bridge is made by the first build()).
  static common::Result<std::unique_ptr<NetnsComputeDriver>> create(const NetnsOptions& options);

  common::Result<Instance> build(const AmphoraSpec& spec) override;
  common::Result<void> remove(const std::string& compute_id) override;
  common::Result<ComputeStatus> status(const std::string& compute_id) override;
  common::Result<Instance> get(const std::string& compute_id) override;
  common::Result<std::vector<Instance>> list() override;
  // The management subnet (amphorae's eth0; the host's address on its bridge).
  std::vector<std::string> managementCidrs() const override;

  // Removes every amphora the state knows, then the bridges this driver created.
  // For test teardown and housekeeping; returns the first error but tries everything.
  common::Result<void> cleanupAll();

  // Creates the management bridge and the host's address on it now (build() does it
  // on demand): the health manager binds that address before any amphora exists.
  common::Result<void> ensureManagementBridge();

  const NetnsConfig& config() const { return config_; }
  // The directory holding an amphora's files.
  std::string amphoraDir(const std::string& compute_id) const;

 private:
  explicit NetnsComputeDriver(NetnsConfig config);
  common::Result<ComputeState> load(const StateFile::Guard& guard);
  common::Result<void> save(const StateFile::Guard& guard, const ComputeState& state);
  common::Result<void> startAmphora(const AmphoraSpec& spec, AmphoraRecord& record);
  common::Result<void> teardown(const AmphoraRecord& record);
  ComputeStatus statusOf(const AmphoraRecord& record);
  Instance instanceOf(const AmphoraRecord& record);
  // Reaps the agents this process started that have exited: only their parent can, and
  // another process sharing the state dir may have been the one that stopped them.
  void reapChildren();

  NetnsConfig config_;
  StateFile state_;
  std::mutex bridge_mu_;
  // Builds running in this process. A reserved record (no PID yet) that is not among
  // them was left by a process that died mid-build: it is in ERROR, not BUILDING.
  std::mutex building_mu_;
  std::set<std::string> building_;
  std::mutex children_mu_;
  std::map<pid_t, uint64_t> children_;  // agents this process started and has not reaped: PID -> start time
  bool bridge_ready_ = false;
};

}  // namespace banyan::provider::drivers
