// Options of the netns compute and network drivers: the [netns] group of
// provider.conf (docs/netns-drivers.md lists each option with its default).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/options.h"
#include "banyan/common/result.h"
#include "drivers/address.h"

namespace banyan::provider::drivers {

// The defaults name the documentation ranges: VIPs in 203.0.113.0/24, members in the
// lower half of 198.51.100.0/24 and amphora management in its upper half. 192.0.2.0/24
// is left alone, since lab hosts often use it for their real uplink. The subnets must
// not overlap a network the host already has; the drivers refuse to start when they do.
inline constexpr std::string_view kDefaultVipNetworkId = "00000000-0000-4000-8000-203000113000";
inline constexpr std::string_view kDefaultMemberNetworkId = "00000000-0000-4000-8000-198051100000";

struct NetnsOptions {
  std::string state_dir = "/var/lib/banyan/netns";
  // Namespaces are "<prefix>-amp-<8 hex>"; default bridges "<prefix>-mgmt", "<prefix>-vip0", ...
  std::string name_prefix = "bny";
  std::string management_bridge;  // "" = "<prefix>-mgmt"
  std::string management_cidr = "198.51.100.128/25";
  // "id:bridge:cidr" each; id is a UUID naming both the network and its one subnet.
  // A bridge of "" (as in "id::cidr") means "<prefix>-vipN" / "<prefix>-memN".
  std::vector<std::string> vip_networks = {std::string(kDefaultVipNetworkId) + "::203.0.113.0/24"};
  std::vector<std::string> member_networks = {std::string(kDefaultMemberNetworkId) +
                                              "::198.51.100.0/25"};
  int mtu = 1500;
  // The amphora's program and its arguments. In arguments, {config} is the agent
  // config file, {dir} the amphora's directory, {amphora_id}, {compute_id},
  // {lb_network_ip} and {proxy_binary} what they say.
  std::string agent_binary = "/usr/bin/banyan-agent";
  std::vector<std::string> agent_args = {"--config-file", "{config}"};
  std::string proxy_binary = "/usr/bin/banyan-proxy";
  // When non-zero, an amphora is ACTIVE only once its management address accepts TCP
  // connections on this port (the agent's API port, 9443); BUILDING before.
  int health_port = 0;
  int stop_grace_ms = 2000;  // SIGTERM, then SIGKILL after this long
};

// One configured network (and its subnet) after validation.
struct NetnsNetwork {
  std::string id;
  std::string bridge;
  Cidr cidr;
  AllocationPool pool;
};

// Parses "id:bridge:cidr" (the cidr may be IPv6 and contain colons).
common::Result<NetnsNetwork> parseNetworkSpec(std::string_view spec,
                                              std::string_view default_bridge);

// Checks every option (bridge names fit IFNAMSIZ, prefixes parse and do not overlap
// each other, ids are unique) and expands the defaults.
struct NetnsConfig {
  NetnsOptions options;
  NetnsNetwork management;
  std::vector<NetnsNetwork> vip_networks;
  std::vector<NetnsNetwork> member_networks;
};
common::Result<NetnsConfig> validateNetnsOptions(const NetnsOptions& options);

// Declares the [netns] group on an OptionSet, and reads it back.
void declareNetnsOptions(common::OptionSet& set);
common::Result<NetnsOptions> netnsOptionsFrom(const common::OptionSet& set);

}  // namespace banyan::provider::drivers
