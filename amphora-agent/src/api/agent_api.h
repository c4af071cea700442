// banyan-agent's REST API (docs/agent-api.md), served over mutual TLS by
// common/http_server.h. This class turns requests into calls on the agent's parts
// and shapes the answers; it owns nothing it is given. handle() is called from the
// server's thread pool and is thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/firewall_plan.h"
#include "api/system_ops.h"
#include "apply/config_apply.h"
#include "banyan/common/http_server.h"
#include "banyan/common/result.h"
#include "certs/certs.h"
#include "heartbeat/heartbeat_sender.h"
#include "proxy_control/proxy_control.h"

namespace banyan::agent::api {

inline constexpr char kApiVersion[] = "1.0";

struct ApiOptions {
  std::string amphora_id;
  std::string state_dir;          // disk usage in /details; agent-config.json and vrrp.json live here
  std::string agent_server_cert;  // rewritten by PUT /1.0/certificate
  std::string agent_server_key;   // may equal agent_server_cert (one PEM with both)
  std::string agent_version;
  uint16_t agent_port = 9443;                 // the API's port, which the firewall keeps open
  std::vector<std::string> management_cidrs;  // [amphora_agent] management_cidrs
};

struct ApiDeps {
  apply::ConfigApplier& applier;
  certs::CertStore& certs;
  const proxy_control::ProxyControl& control;
  heartbeat::HeartbeatSender& heartbeat;
  SystemOps& system;
};

// What PUT /1.0/agent-config sets, and what agent-config.json in state_dir keeps.
struct AgentConfig {
  heartbeat::HeartbeatSettings heartbeat;
  // Pushed by the controller: replaces [amphora_agent] management_cidrs of agent.conf
  // (so an amphora whose agent.conf predates the option gets one). nullopt: never
  // pushed, agent.conf's stands. An empty list opens the agent port to everyone, as an
  // empty option does.
  std::optional<std::vector<std::string>> management_cidrs;
};

// The persisted PUT /1.0/agent-config document: {"controller_ip_port_list": [...],
// "heartbeat_interval": seconds, "heartbeat_key": "...", "management_cidrs": [...]};
// absent fields keep BASE's. Errors are kInvalidArgument with a JSON pointer.
common::Result<AgentConfig> mergeAgentConfig(const AgentConfig& base, std::string_view json);
// The heartbeat part alone (the agent's start reads agent-config.json with this).
common::Result<heartbeat::HeartbeatSettings> mergeAgentConfig(const heartbeat::HeartbeatSettings& base,
                                                              std::string_view json);
// management_cidrs is written only when set: a document without it leaves
// agent.conf's option in force after a restart.
std::string agentConfigJson(const AgentConfig& config, bool include_key);
std::string agentConfigJson(const heartbeat::HeartbeatSettings& settings, bool include_key);

class AgentApi {
 public:
  AgentApi(ApiOptions options, ApiDeps deps);

  // Given once the server is up (the server needs the handler first).
  void setTlsReloader(std::function<common::Result<void>()> reload);

  common::HttpResponse handle(const common::HttpRequest& request);

  // Applies the firewall for the stored proxy document and VRRP settings (agent
  // start): AGENT_PORT is the port the API really listens on (bind_port may be 0).
  common::Result<void> restoreFirewall(uint16_t agent_port);

  std::string agentConfigPath() const { return options_.state_dir + "/agent-config.json"; }
  std::string vrrpPath() const { return options_.state_dir + "/vrrp.json"; }

 private:
  common::HttpResponse info();
  common::HttpResponse details();
  common::HttpResponse getConfig();
  common::HttpResponse putConfig(const common::HttpRequest& request);
  common::HttpResponse certificate(const common::HttpRequest& request, const std::string& name);
  common::HttpResponse putAgentConfig(const common::HttpRequest& request);
  common::HttpResponse getAgentConfig();
  common::HttpResponse rotateServerCertificate(const common::HttpRequest& request);
  common::HttpResponse putVrrp(const common::HttpRequest& request);
  common::HttpResponse getVrrp();
  common::HttpResponse plugVip(const common::HttpRequest& request, const std::string& ip);
  common::HttpResponse plugNetwork(const common::HttpRequest& request);

  // The firewall: plans from the inputs below, applied only when they change. Called
  // with firewall_mu_ held.
  FirewallInputs firewallInputs() const;
  common::Result<FirewallPlan> storedPlan(const FirewallInputs& inputs);
  common::Result<void> applyFirewallPlan(const FirewallPlan& plan);
  // Puts PREVIOUS back after a later step failed; logs when even that fails.
  void restoreFirewallPlan(const std::optional<FirewallPlan>& previous, const char* why);

  ApiOptions options_;
  ApiDeps deps_;
  // The management CIDRs in force: agent.conf's, unless PUT /1.0/agent-config set
  // some (kept in agent-config.json, read back at construction). Written with
  // firewall_mu_ held.
  std::vector<std::string> management_cidrs_;
  bool management_cidrs_pushed_ = false;
  std::mutex mu_;  // serializes agent-config, certificate rotation and vrrp writes
  std::function<common::Result<void>()> reload_tls_;
  // Serializes everything that changes the firewall (config and VRRP PUTs, start).
  // Taken after mu_ where both are needed.
  std::mutex firewall_mu_;
  bool vrrp_active_ = false;
  std::vector<std::string> vrrp_peers_;
  std::optional<FirewallPlan> firewall_;  // what the kernel has; nullopt = unknown
  // Guards firewall_ for readers that must not wait for an apply (/details); writers
  // hold firewall_mu_ too.
  mutable std::mutex firewall_view_mu_;
  void setFirewall(std::optional<FirewallPlan> plan);
};

}  // namespace banyan::agent::api
