// The controller: turns one job from the queue into work on amphorae, networks and the
// database (DESIGN.md, data flow step 3).
//
// Every flow converges rather than replays: a load balancer create, a failover and a
// restart after a crash all run the same idempotent steps ("every role of the topology
// has an amphora; it is built, answers, has the VIP and the member networks plugged, and
// runs the rendered config"), each noticing what already exists. So a job whose worker
// died mid-flow is simply run again by the next claimant, and nothing is created twice.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "banyan/common/result.h"
#include "controller/flow.h"
#include "store/store.h"

namespace banyan::provider::amphora {
class AgentClient;
class Pki;
}  // namespace banyan::provider::amphora

namespace banyan::provider::certs {
class CertManager;
}  // namespace banyan::provider::certs

namespace banyan::provider::drivers {
class ComputeDriver;
class NetworkDriver;
}  // namespace banyan::provider::drivers

namespace banyan::provider::controller {

class AmphoraClient;

struct ControllerOptions {
  std::string loadbalancer_topology = "SINGLE";  // [controller_worker]; a flavor may override
  uint16_t agent_port = 9443;                    // [haproxy_amphora] bind_port
  // How long a new amphora may take until its agent answers (Octavia: amp_active_wait_sec
  // x amp_active_retries), and how often to ask meanwhile.
  std::chrono::milliseconds amp_active_wait{60000};
  std::chrono::milliseconds agent_poll_interval{50};
  // What every new amphora's agent.conf says.
  std::vector<std::string> controller_ip_port_list;  // where heartbeats go
  int heartbeat_interval = 10;
  std::string heartbeat_key;
  std::string amphora_proxy_binary = "/usr/bin/banyan-proxy";
  std::string amphora_system_driver = "kernel";
  std::string amphora_log_level = "info";
  // Key of the member cookies the proxies issue for HTTP_COOKIE persistence; shared by
  // every amphora, so a failover keeps sessions where they were.
  std::string session_cookie_secret;
  int spare_amphora_pool_size = 0;  // [house_keeping]
  // Reads the certificates listeners and pools reference ([certificates]); the config
  // push places them on every amphora first. Null: a load balancer that uses any fails
  // its push ("no certificate manager").
  std::shared_ptr<certs::CertManager> cert_manager;
  // How long a fetched certificate is reused, per (project, reference), before the
  // cert manager is asked again; 0 turns the cache off. Barbican secrets never change
  // once stored (a new certificate is a new reference), so every push of a load balancer
  // would otherwise re-read each of them; a local_cert_manager file replaced in place
  // is seen once its entry expires. A reference that vanished is also noticed only then.
  std::chrono::seconds certificate_cache_ttl{0};
  // The cache's clock; null: std::chrono::steady_clock. Tests pass a manual one.
  std::function<std::chrono::steady_clock::time_point()> clock;
  RetryPolicy retry;
};

// The agent.conf of a new amphora ({amphora_dir} is the compute driver's to replace).
// MANAGEMENT_CIDRS (the compute driver's management network) becomes
// [amphora_agent] management_cidrs, which the agent's firewall opens its port to; the
// line is left out when empty (the agent then keeps its port open to every source).
std::string agentConfigText(const ControllerOptions& options, const std::string& amphora_id,
                            const std::vector<std::string>& management_cidrs);

class Controller {
 public:
  Controller(store::Store& store, drivers::ComputeDriver& compute, drivers::NetworkDriver& network,
             amphora::AgentClient& agent, amphora::Pki& pki, ControllerOptions options,
             Sleeper& sleeper = realSleeper());
  // The same through the agent seam (controller/amphora_client.h); AGENT must outlive
  // the controller. Unit tests pass a fake.
  Controller(store::Store& store, drivers::ComputeDriver& compute, drivers::NetworkDriver& network,
             AmphoraClient& agent, amphora::Pki& pki, ControllerOptions options, Sleeper& sleeper = realSleeper());
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  enum class Outcome {
    kDone,         // the job ended (its objects are ACTIVE, removed or ERROR): finish it
    kInterrupted,  // hooks.after_step said stop: leave the job to the next claimant
  };
  // Runs the job's flow and writes the statuses it ends with. Errors only when even
  // the final status write failed (the job is then retried later).
  common::Result<Outcome> runJob(const store::Job& job, const FlowHooks& hooks = {});

  // Builds spare amphorae until spare_amphora_pool_size are READY (or building);
  // returns how many it built.
  common::Result<int> fillSparePool();

  // Rotates the server certificate of every amphora whose certificate expires within
  // `within`; returns how many it rotated.
  common::Result<int> rotateCertificates(std::chrono::hours within);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace banyan::provider::controller
