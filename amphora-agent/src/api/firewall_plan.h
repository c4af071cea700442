// What the agent's firewall should be, derived from what the controller pushed: the
// proxy document (PUT /1.0/config: listeners, their VIPs, ports and allowed_cidrs),
// agent.conf ([amphora_agent] management_cidrs, the API port) and the VRRP settings
// (PUT /1.0/vrrp: the peers). Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/system_ops.h"
#include "banyan/common/result.h"

namespace banyan::agent::api {

struct FirewallInputs {
  uint16_t agent_port = 9443;
  // Where the controller reaches the agent from. Empty: the agent port (and VRRP)
  // stay open to every source rather than lock the controller out of an amphora
  // whose agent.conf predates the option; mutual TLS still guards the API.
  std::vector<std::string> management_cidrs;
  bool vrrp = false;                    // a PUT /1.0/vrrp is in force
  std::vector<std::string> vrrp_peers;  // its peer_addresses
};

// The plan for DOCUMENT (a proxy document the agent is about to apply or has
// stored). Every listener address and additional address is a VIP; a listener
// becomes one rule set per address with its protocol's transport (tcp for HTTP, TCP,
// HTTPS, TERMINATED_HTTPS and PROMETHEUS; udp for UDP; sctp for SCTP) and its
// allowed_cidrs. Wildcard addresses (0.0.0.0, ::) add nothing: there is no VIP to
// guard, the proxy still enforces allowed_cidrs itself. Duplicates are merged.
// kInvalidArgument with a JSON pointer into DOCUMENT for what the firewall cannot
// follow (an address or CIDR that is not one, host bits set past the prefix).
common::Result<FirewallPlan> firewallPlanFor(std::string_view document,
                                             const FirewallInputs& inputs);

}  // namespace banyan::agent::api
