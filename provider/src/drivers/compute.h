// ComputeDriver: the seam between the controller and whatever runs amphorae (STYLE.md
// §3). Shaped after Octavia's compute_base.ComputeBase: build, delete, status,
// get_amphora. Implementations: NetnsComputeDriver (an amphora is a network
// namespace on this host), NoopComputeDriver (nothing is started; API-only
// deployments and dry runs), later NovaComputeDriver.
//
// Every method may be called from several worker threads at once; implementations
// are thread-safe. Every method returns a Result: the environment is unreliable.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::provider::drivers {

// A file the amphora needs before its agent starts (its certificates, the CA that
// signs the controller's client certificate, ...). `path` is relative to the
// amphora's root: for netns the amphora's directory under the state dir, for Nova a
// path on the config drive. Absolute paths and ".." are refused.
struct PlacedFile {
  std::string path;
  std::string contents;
  unsigned mode = 0600;
};

struct AmphoraSpec {
  std::string amphora_id;  // the Octavia amphora id (a UUID)
  std::string lb_id;       // the load balancer it serves (for names, logs, listing)
  // The agent's config file contents (agent.conf). "{amphora_dir}" in it is replaced
  // by the amphora's root (netns: its directory), for absolute paths to `files`.
  std::string agent_config;
  std::vector<PlacedFile> files;
  // Files that depend on what build() chose, called once the compute id and the
  // management address are reserved and before the agent starts: the agent's server
  // certificate names its management address, which the controller cannot know
  // earlier. Same path rules as `files`.
  std::function<common::Result<std::vector<PlacedFile>>(const std::string& compute_id,
                                                        const std::string& lb_network_ip)>
      late_files;
};

// Octavia's compute statuses (constants.AMPHORA_*: BUILDING, ACTIVE, ERROR, DELETED).
enum class ComputeStatus { kBuilding, kActive, kError, kDeleted };
std::string_view toString(ComputeStatus status);

struct Instance {
  std::string compute_id;  // the driver's id; netns: the namespace name
  std::string amphora_id;
  std::string lb_id;
  std::string lb_network_ip;  // the management address the controller talks to
  ComputeStatus status = ComputeStatus::kBuilding;
};

class ComputeDriver {
 public:
  virtual ~ComputeDriver() = default;

  // Starts an amphora. Returns once it exists and its agent has been started; the
  // agent may still be BUILDING (poll status()). On error nothing is left behind.
  virtual common::Result<Instance> build(const AmphoraSpec& spec) = 0;
  // Stops and deletes the amphora and everything build() created for it. Removing an
  // unknown or already removed amphora succeeds (delete flows are retried).
  virtual common::Result<void> remove(const std::string& compute_id) = 0;
  // kDeleted for an unknown compute id, like Nova's 404 mapped by Octavia.
  virtual common::Result<ComputeStatus> status(const std::string& compute_id) = 0;
  // The instance with its current status; kNotFound when unknown.
  virtual common::Result<Instance> get(const std::string& compute_id) = 0;
  virtual common::Result<std::vector<Instance>> list() = 0;
  // The networks the controller reaches amphorae on (their management network), as
  // CIDRs. The controller writes them into agent.conf ([amphora_agent]
  // management_cidrs): the agent's firewall opens its API port (and VRRP) to these
  // only. Empty when unknown: the agent then leaves its port open to every source.
  virtual std::vector<std::string> managementCidrs() const { return {}; }
};

}  // namespace banyan::provider::drivers
