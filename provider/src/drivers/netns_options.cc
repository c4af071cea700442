#include "drivers/netns_options.h"

#include <net/if.h>

#include <set>

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::OptionDecl;
using common::OptionType;
using common::Result;

namespace {

constexpr const char* kGroup = "netns";

bool validIfName(std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool validId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Result<NetnsNetwork> parseNetworkSpec(std::string_view spec, std::string_view default_bridge) {
  auto first = spec.find(':');
  auto second = first == std::string_view::npos ? first : spec.find(':', first + 1);
  if (second == std::string_view::npos) {
    return makeError(ErrorCode::kInvalidArgument, "a network is \"id:bridge:cidr\"",
                     std::string(spec));
  }
  NetnsNetwork net;
  net.id = std::string(spec.substr(0, first));
  net.bridge = std::string(spec.substr(first + 1, second - first - 1));
  if (net.bridge.empty()) net.bridge = std::string(default_bridge);
  if (!validId(net.id)) {
    return makeError(ErrorCode::kInvalidArgument, "network id must be letters, digits and '-'",
                     std::string(spec));
  }
  if (!validIfName(net.bridge)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "bridge name must be 1-15 letters, digits, '-', '_' or '.'",
                     std::string(spec));
  }
  auto cidr = Cidr::parse(spec.substr(second + 1));
  if (!cidr) return makeError(ErrorCode::kInvalidArgument, cidr.error().message, std::string(spec));
  net.cidr = *cidr;
  auto pool = AllocationPool::forCidr(net.cidr);
  if (!pool) return makeError(ErrorCode::kInvalidArgument, pool.error().message, std::string(spec));
  net.pool = *pool;
  return net;
}

Result<NetnsConfig> validateNetnsOptions(const NetnsOptions& options) {
  NetnsConfig config;
  config.options = options;
  const std::string& prefix = options.name_prefix;
  // The prefix goes into namespace and bridge names ("<prefix>-mgmt" must fit IFNAMSIZ).
  if (prefix.empty() || prefix.size() > 10 || !validIfName(prefix)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "name_prefix must be 1-10 letters, digits, '-', '_'", "[netns] name_prefix");
  }
  if (options.state_dir.empty() || options.state_dir[0] != '/') {
    return makeError(ErrorCode::kInvalidArgument, "state_dir must be an absolute path",
                     "[netns] state_dir");
  }
  // Amphorae start in their own directory: a relative program path would not resolve.
  for (const auto& [name, path] : {std::pair{"agent_binary", &options.agent_binary},
                                   std::pair{"proxy_binary", &options.proxy_binary}}) {
    if (path->empty() || (*path)[0] != '/') {
      return makeError(ErrorCode::kInvalidArgument, std::string(name) + " must be an absolute path",
                       std::string("[netns] ") + name);
    }
  }
  if (options.agent_binary.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "agent_binary is required",
                     "[netns] agent_binary");
  }
  if (options.mtu < 1280 || options.mtu > 65535) {
    return makeError(ErrorCode::kInvalidArgument, "mtu must be 1280-65535", "[netns] mtu");
  }
  if (options.health_port < 0 || options.health_port > 65535) {
    return makeError(ErrorCode::kInvalidArgument, "health_port must be 0-65535",
                     "[netns] health_port");
  }
  if (options.stop_grace_ms < 0) {
    return makeError(ErrorCode::kInvalidArgument, "stop_grace_ms must be >= 0",
                     "[netns] stop_grace_ms");
  }
  std::string mgmt_bridge =
      options.management_bridge.empty() ? prefix + "-mgmt" : options.management_bridge;
  auto mgmt = parseNetworkSpec("management:" + mgmt_bridge + ":" + options.management_cidr, "");
  if (!mgmt)
    return makeError(ErrorCode::kInvalidArgument, mgmt.error().message, "[netns] management_cidr");
  if (mgmt->cidr.network.isV6()) {
    return makeError(ErrorCode::kInvalidArgument, "the management subnet must be IPv4",
                     "[netns] management_cidr");
  }
  config.management = *mgmt;
  int index = 0;
  for (const auto& spec : options.vip_networks) {
    auto net = parseNetworkSpec(spec, prefix + "-vip" + std::to_string(index++));
    if (!net)
      return makeError(ErrorCode::kInvalidArgument, net.error().message, "[netns] vip_networks");
    config.vip_networks.push_back(*net);
  }
  index = 0;
  for (const auto& spec : options.member_networks) {
    auto net = parseNetworkSpec(spec, prefix + "-mem" + std::to_string(index++));
    if (!net)
      return makeError(ErrorCode::kInvalidArgument, net.error().message, "[netns] member_networks");
    config.member_networks.push_back(*net);
  }
  std::vector<const NetnsNetwork*> all{&config.management};
  for (const auto& n : config.vip_networks) all.push_back(&n);
  for (const auto& n : config.member_networks) all.push_back(&n);
  std::set<std::string> ids, bridges;
  for (size_t i = 0; i < all.size(); ++i) {
    if (!ids.insert(all[i]->id).second) {
      return makeError(ErrorCode::kInvalidArgument, "network id used twice", all[i]->id);
    }
    if (!bridges.insert(all[i]->bridge).second) {
      return makeError(ErrorCode::kInvalidArgument, "bridge used by two networks", all[i]->bridge);
    }
    for (size_t j = 0; j < i; ++j) {
      if (all[i]->cidr.overlaps(all[j]->cidr)) {
        return makeError(
            ErrorCode::kInvalidArgument,
            "subnets overlap: " + all[i]->cidr.toString() + " and " + all[j]->cidr.toString(),
            "[netns]");
      }
    }
  }
  return config;
}

void declareNetnsOptions(common::OptionSet& set) {
  NetnsOptions d;
  auto join = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
    return out;
  };
  set.declare({.group = kGroup,
               .name = "state_dir",
               .default_value = d.state_dir,
               .help = "Where the netns drivers keep their allocation state (compute.json, "
                       "network.json) and one directory per amphora (config, files, log)."});
  set.declare(
      {.group = kGroup,
       .name = "name_prefix",
       .default_value = d.name_prefix,
       .help = "Prefix of every namespace (<prefix>-amp-<8 hex>) and default bridge name."});
  set.declare({.group = kGroup,
               .name = "management_bridge",
               .default_value = "",
               .help = "Bridge of the management network; empty means <prefix>-mgmt."});
  set.declare({.group = kGroup,
               .name = "management_cidr",
               .default_value = d.management_cidr,
               .help = "IPv4 management subnet. The host takes the first address; amphorae get "
                       "the following ones. Must not overlap a network the host already has."});
  set.declare({.group = kGroup,
               .name = "vip_networks",
               .type = OptionType::kList,
               .default_value = join(d.vip_networks),
               .help = "VIP networks, each id:bridge:cidr (id is a UUID used for the network and "
                       "its subnet; an empty bridge means <prefix>-vipN)."});
  set.declare(
      {.group = kGroup,
       .name = "member_networks",
       .type = OptionType::kList,
       .default_value = join(d.member_networks),
       .help = "Member networks, each id:bridge:cidr (an empty bridge means <prefix>-memN)."});
  set.declare({.group = kGroup,
               .name = "mtu",
               .type = OptionType::kInt,
               .default_value = "1500",
               .help = "MTU of the veths plugged into amphorae.",
               .min = 1280,
               .max = 65535});
  set.declare({.group = kGroup,
               .name = "agent_binary",
               .default_value = d.agent_binary,
               .help = "The program started inside each amphora namespace."});
  set.declare({.group = kGroup,
               .name = "agent_args",
               .type = OptionType::kList,
               .default_value = join(d.agent_args),
               .help =
                   "Its arguments; {config}, {dir}, {amphora_id}, {compute_id}, {lb_network_ip} "
                   "and {proxy_binary} are replaced."});
  set.declare(
      {.group = kGroup,
       .name = "proxy_binary",
       .default_value = d.proxy_binary,
       .help = "banyan-proxy, passed to the agent as {proxy_binary} and BANYAN_PROXY_BINARY."});
  set.declare({.group = kGroup,
               .name = "health_port",
               .type = OptionType::kInt,
               .default_value = "0",
               .help = "When non-zero an amphora is ACTIVE only once its management address "
                       "accepts TCP connections on this port.",
               .min = 0,
               .max = 65535});
  set.declare({.group = kGroup,
               .name = "stop_grace_ms",
               .type = OptionType::kInt,
               .default_value = "2000",
               .help = "How long a stopping amphora's processes get between SIGTERM and SIGKILL.",
               .min = 0,
               .max = 600000});
}

Result<NetnsOptions> netnsOptionsFrom(const common::OptionSet& set) {
  NetnsOptions o;
  o.state_dir = set.getString(kGroup, "state_dir");
  o.name_prefix = set.getString(kGroup, "name_prefix");
  o.management_bridge = set.getString(kGroup, "management_bridge");
  o.management_cidr = set.getString(kGroup, "management_cidr");
  o.vip_networks = set.getList(kGroup, "vip_networks");
  o.member_networks = set.getList(kGroup, "member_networks");
  o.mtu = static_cast<int>(set.getInt(kGroup, "mtu"));
  o.agent_binary = set.getString(kGroup, "agent_binary");
  o.agent_args = set.getList(kGroup, "agent_args");
  o.proxy_binary = set.getString(kGroup, "proxy_binary");
  o.health_port = static_cast<int>(set.getInt(kGroup, "health_port"));
  o.stop_grace_ms = static_cast<int>(set.getInt(kGroup, "stop_grace_ms"));
  auto valid = validateNetnsOptions(o);
  if (!valid) return valid.error();
  return o;
}

}  // namespace banyan::provider::drivers
