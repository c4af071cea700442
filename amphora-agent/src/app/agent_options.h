// banyan-agent's INI options (etc/banyan/agent.conf.sample is generated from these
// declarations with `banyan-agent --generate-sample-config`) and the typed settings
// read from them at startup.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "banyan/common/options.h"
#include "banyan/common/result.h"
#include "heartbeat/heartbeat_sender.h"

namespace banyan::agent::app {

void declareAgentOptions(common::OptionSet& options);

struct AgentSettings {
  std::string log_level;
  std::string bind_host;
  uint16_t bind_port = 9443;
  std::string agent_server_cert;
  std::string agent_server_key;
  std::string agent_server_ca;
  int agent_request_read_timeout = 180;
  size_t max_body_bytes = 0;
  std::string state_dir;
  std::string proxy_binary;
  std::string proxy_control_socket;
  std::string amphora_id;
  std::string system_driver;  // "kernel" or "noop"
  std::string keepalived_binary;
  std::vector<std::string> management_cidrs;  // canonical-free, validated CIDRs or addresses
  heartbeat::HeartbeatSettings heartbeat;
};

// Reads and cross-checks (amphora_id set, heartbeat targets parse); errors name the
// section and key.
common::Result<AgentSettings> readAgentSettings(const common::OptionSet& options);

}  // namespace banyan::agent::app
