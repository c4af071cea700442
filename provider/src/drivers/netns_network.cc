#include "drivers/netns_network.h"

#include <fcntl.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>

#include "banyan/common/logging.h"
#include "drivers/host_net.h"
#include "drivers/netlink.h"
#include "drivers/process.h"

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

std::string shortName(const std::string& prefix) {
  return prefix.substr(0, std::min<size_t>(4, prefix.size()));
}

// The 8 hex digits that end a netns compute id ("bny-amp-1a2b3c4d").
std::string computeSuffix(const std::string& compute_id) {
  return compute_id.size() >= 8 ? compute_id.substr(compute_id.size() - 8) : compute_id;
}

Subnet subnetOf(const NetnsNetwork& net) {
  Subnet s;
  s.id = net.id;
  s.network_id = net.id;
  s.cidr = net.cidr.toString();
  s.ip_version = net.cidr.network.isV6() ? 6 : 4;
  s.gateway_ip = net.cidr.gateway().toString();
  s.pool_start = net.pool.start.toString();
  s.pool_end = net.pool.end.toString();
  return s;
}

}  // namespace

NetnsNetworkDriver::NetnsNetworkDriver(NetnsConfig config)
    // Fsynced: VIP addresses are stored by the controller and must not be handed out
    // twice after a host reboot.
    : config_(std::move(config)), state_(config_.options.state_dir + "/network.json", true) {}

Result<std::unique_ptr<NetnsNetworkDriver>> NetnsNetworkDriver::create(
    const NetnsOptions& options) {
  auto config = validateNetnsOptions(options);
  if (!config) return config.error();
  if (auto ok = makeDirs(options.state_dir, 0700); !ok) return ok.error();
  auto driver = std::unique_ptr<NetnsNetworkDriver>(new NetnsNetworkDriver(std::move(*config)));
  auto guard = driver->state_.lock();
  if (!guard) return guard.error();
  auto state = driver->load(*guard);
  if (!state) return state.error();
  return driver;
}

const NetnsNetwork* NetnsNetworkDriver::find(const std::string& id) const {
  for (const auto& n : config_.vip_networks) {
    if (n.id == id) return &n;
  }
  for (const auto& n : config_.member_networks) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

Result<NetworkState> NetnsNetworkDriver::load(const StateFile::Guard& guard) {
  auto text = state_.read(guard);
  if (!text) return text.error();
  auto state = networkStateFromJson(*text);
  if (!state) return makeError(state.error().code, state.error().message, state_.path());
  return state;
}

Result<void> NetnsNetworkDriver::save(const StateFile::Guard& guard, const NetworkState& state) {
  return state_.write(guard, toJson(state));
}

Result<Network> NetnsNetworkDriver::network(const std::string& network_id) {
  const NetnsNetwork* net = find(network_id);
  if (net == nullptr) return makeError(ErrorCode::kNotFound, "network not found", network_id);
  return Network{net->id, net->bridge, {net->id}, config_.options.mtu};
}

Result<Subnet> NetnsNetworkDriver::subnet(const std::string& subnet_id) {
  const NetnsNetwork* net = find(subnet_id);
  if (net == nullptr) return makeError(ErrorCode::kNotFound, "subnet not found", subnet_id);
  return subnetOf(*net);
}

Result<std::vector<Subnet>> NetnsNetworkDriver::subnets() {
  std::vector<Subnet> out;
  for (const auto& n : config_.vip_networks) out.push_back(subnetOf(n));
  for (const auto& n : config_.member_networks) out.push_back(subnetOf(n));
  return out;
}

Result<std::string> NetnsNetworkDriver::pickAddress(const NetworkState& state,
                                                    const NetnsNetwork& net,
                                                    const std::string& requested) {
  std::set<IpAddress> used;
  for (const auto& r : state.ports) {
    if (r.port.subnet_id != net.id) continue;
    if (auto a = IpAddress::parse(r.port.address)) used.insert(*a);
  }
  if (!requested.empty()) {
    auto address = IpAddress::parse(requested);
    if (!address) return makeError(ErrorCode::kInvalidArgument, "not an IP address", requested);
    if (!net.cidr.contains(*address) || !net.pool.contains(*address)) {
      return makeError(ErrorCode::kInvalidArgument,
                       "address " + address->toString() + " is outside the allocation pool " +
                           net.pool.start.toString() + "-" + net.pool.end.toString() +
                           " of subnet " + net.id,
                       requested);
    }
    if (used.count(*address)) {
      return makeError(
          ErrorCode::kConflict,
          "address " + address->toString() + " is already allocated on subnet " + net.id,
          requested);
    }
    return address->toString();
  }
  for (IpAddress a = net.pool.start; net.pool.contains(a); a = a.plus(1)) {
    if (!used.count(a)) return a.toString();
  }
  return makeError(ErrorCode::kUnavailable,
                   "no free address on subnet " + net.id + " (" + net.cidr.toString() + "): all " +
                       std::to_string(net.pool.size()) + " addresses of the pool are allocated",
                   net.id);
}

Result<Vip> NetnsNetworkDriver::allocateVip(const std::string& lb_id, const std::string& subnet_id,
                                            const std::string& requested_address) {
  const NetnsNetwork* net = find(subnet_id);
  if (net == nullptr) return makeError(ErrorCode::kNotFound, "subnet not found", subnet_id);
  auto guard = state_.lock();
  if (!guard) return guard.error();
  auto state = load(*guard);
  if (!state) return state.error();
  // A flow that runs again after a crash asks again: hand back the VIP it already has.
  for (const auto& r : state->ports) {
    if (r.port.device_owner == "vip" && r.port.device_id == lb_id && r.port.subnet_id == net->id &&
        (requested_address.empty() || requested_address == r.port.address)) {
      return Vip{r.port.address, r.port.id, net->id, net->id};
    }
  }
  auto address = pickAddress(*state, *net, requested_address);
  if (!address) return address.error();
  PortRecord record;
  record.port.id = randomUuid();
  record.port.network_id = net->id;
  record.port.subnet_id = net->id;
  record.port.address = *address;
  record.port.device_owner = "vip";
  record.port.device_id = lb_id;
  state->ports.push_back(record);
  if (auto ok = save(*guard, *state); !ok) return ok.error();
  LB_INFO("VIP allocated lb=%s vip=%s subnet=%s port=%s", lb_id.c_str(), address->c_str(),
          net->id.c_str(), record.port.id.c_str());
  return Vip{*address, record.port.id, net->id, net->id};
}

Result<void> NetnsNetworkDriver::deallocateVip(const Vip& vip) {
  std::string port_id = vip.port_id;
  if (port_id.empty()) {
    // Look the port up by address, as Octavia does for a VIP without a port id.
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    for (const auto& r : state->ports) {
      if (r.port.device_owner == "vip" && r.port.subnet_id == vip.subnet_id &&
          r.port.address == vip.address) {
        port_id = r.port.id;
      }
    }
    if (port_id.empty()) return {};
  }
  // The amphorae's base addresses on this VIP go with it (Octavia deletes the VRRP ports).
  if (auto ok = unplugWhere([&](const PortRecord& r) { return r.port.vip_port_id == port_id; });
      !ok) {
    return ok;
  }
  auto guard = state_.lock();
  if (!guard) return guard.error();
  auto state = load(*guard);
  if (!state) return state.error();
  auto removed =
      std::erase_if(state->ports, [&](const PortRecord& r) { return r.port.id == port_id; });
  if (removed == 0) return {};
  if (auto ok = save(*guard, *state); !ok) return ok;
  LB_INFO("VIP deallocated vip=%s port=%s", vip.address.c_str(), port_id.c_str());
  return {};
}

Result<void> NetnsNetworkDriver::ensureBridgeFor(const NetnsNetwork& net) {
  std::lock_guard<std::mutex> lock(bridge_mu_);
  if (bridges_ready_.count(net.bridge) && linkExists(net.bridge)) return {};
  bool created = false;
  if (auto ok = ensureBridge(net.bridge, net.cidr, config_.options.mtu, created); !ok) return ok;
  if (created) {
    LB_INFO("network bridge created bridge=%s cidr=%s network=%s", net.bridge.c_str(),
            net.cidr.toString().c_str(), net.id.c_str());
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    if (std::find(state->bridges.begin(), state->bridges.end(), net.bridge) ==
        state->bridges.end()) {
      state->bridges.push_back(net.bridge);
    }
    if (auto ok = save(*guard, *state); !ok) return ok;
  }
  bridges_ready_.insert(net.bridge);
  return {};
}

Result<void> NetnsNetworkDriver::ensureBridges() {
  for (const auto& n : config_.vip_networks) {
    if (auto ok = ensureBridgeFor(n); !ok) return ok;
  }
  for (const auto& n : config_.member_networks) {
    if (auto ok = ensureBridgeFor(n); !ok) return ok;
  }
  return {};
}

PluggedInterface NetnsNetworkDriver::interfaceOf(const PortRecord& record) const {
  PluggedInterface out;
  out.compute_id = record.port.device_id;
  out.port_id = record.port.id;
  out.network_id = record.port.network_id;
  out.subnet_id = record.port.subnet_id;
  out.interface = record.port.interface;
  out.mac_address = record.mac_address;
  out.address = record.port.address;
  out.mtu = config_.options.mtu;
  if (const NetnsNetwork* net = find(record.port.subnet_id)) {
    out.cidr = net->cidr.toString();
    out.prefix_length = net->cidr.prefix_length;
    out.gateway_ip = net->cidr.gateway().toString();
  }
  return out;
}

Result<PluggedInterface> NetnsNetworkDriver::plug(const std::string& compute_id,
                                                  const NetnsNetwork& net, const std::string& owner,
                                                  const std::string& vip_port_id) {
  if (!validNamespaceName(compute_id)) {
    return makeError(ErrorCode::kInvalidArgument, "not a netns compute id", compute_id);
  }
  if (!namespaceExists(compute_id)) {
    return makeError(ErrorCode::kNotFound, "amphora namespace not found", compute_id);
  }
  if (auto ok = ensureBridgeFor(net); !ok) return ok.error();
  PortRecord record;
  bool resumed = false;
  {
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    std::set<std::string> interfaces;
    for (const auto& r : state->ports) {
      if (r.port.device_id != compute_id) continue;
      // Plugging twice answers with what is there: flows retry their steps.
      if (r.port.device_owner == owner && r.port.subnet_id == net.id &&
          r.port.vip_port_id == vip_port_id) {
        if (linkExists(r.host_veth)) return interfaceOf(r);
        // Recorded but never made: the process plugging it was killed between the two
        // (a worker SIGKILLed mid-flow, whose job another worker runs again). Make the
        // veth now with the recorded name, MAC and address: the agent finds the
        // interface by that MAC.
        record = r;
        resumed = true;
        break;
      }
      interfaces.insert(r.port.interface);
    }
    if (!resumed) {
      auto address = pickAddress(*state, net, "");
      if (!address) return address.error();
      int index = 1;  // eth0 is the management interface
      while (interfaces.count("eth" + std::to_string(index))) ++index;
      if (index > 99) return makeError(ErrorCode::kUnavailable, "too many interfaces", compute_id);
      record.port.id = randomUuid();
      record.port.network_id = net.id;
      record.port.subnet_id = net.id;
      record.port.address = *address;
      record.port.device_owner = owner;
      record.port.device_id = compute_id;
      record.port.vip_port_id = vip_port_id;
      record.port.interface = "eth" + std::to_string(index);
      record.host_veth = shortName(config_.options.name_prefix) + computeSuffix(compute_id) + "e" +
                         std::to_string(index);
      record.mac_address = randomMac();
      state->ports.push_back(record);
      if (auto ok = save(*guard, *state); !ok) return ok.error();
    }
  }
  Result<void> host = [&]() -> Result<void> {
    int ns_fd = ::open(("/run/netns/" + compute_id).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0)
      return makeError(ErrorCode::kNotFound, "amphora namespace not found", compute_id);
    auto nl = RtNetlink::open();
    Result<void> r = nl ? Result<void>() : Result<void>(nl.error());
    int bridge = static_cast<int>(if_nametoindex(net.bridge.c_str()));
    if (r && bridge == 0) r = makeError(ErrorCode::kUnavailable, "bridge missing", net.bridge);
    if (r) {
      r = (*nl)->addVeth({record.host_veth, config_.options.mtu, bridge, record.port.interface,
                          record.mac_address, ns_fd});
    }
    close(ns_fd);
    return r;
  }();
  Result<void> inside;
  if (host) {
    IpAddress address = *IpAddress::parse(record.port.address);
    inside = inNamespace(compute_id, [&]() -> Result<void> {
      auto nl = RtNetlink::open();
      if (!nl) return nl.error();
      if (auto ok = (*nl)->addAddress(record.port.interface, address, net.cidr.prefix_length); !ok)
        return ok;
      return (*nl)->setUp(record.port.interface);
    });
  }
  if (!host || !inside) {
    common::Error error = host ? inside.error() : host.error();
    (void)deleteLink(record.host_veth);
    auto guard = state_.lock();
    if (guard) {
      if (auto state = load(*guard)) {
        std::erase_if(state->ports,
                      [&](const PortRecord& r) { return r.port.id == record.port.id; });
        (void)save(*guard, *state);
      }
    }
    LB_ERROR("plug failed compute=%s network=%s: %s", compute_id.c_str(), net.id.c_str(),
             error.message.c_str());
    return error;
  }
  LB_INFO("amphora plugged compute=%s network=%s interface=%s address=%s owner=%s",
          compute_id.c_str(), net.id.c_str(), record.port.interface.c_str(),
          record.port.address.c_str(), owner.c_str());
  return interfaceOf(record);
}

Result<PluggedInterface> NetnsNetworkDriver::plugVip(const std::string& compute_id,
                                                     const Vip& vip) {
  const NetnsNetwork* net = find(vip.subnet_id);
  if (net == nullptr) return makeError(ErrorCode::kNotFound, "subnet not found", vip.subnet_id);
  {
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    bool known = std::any_of(state->ports.begin(), state->ports.end(), [&](const PortRecord& r) {
      return r.port.id == vip.port_id && r.port.device_owner == "vip";
    });
    if (!known) return makeError(ErrorCode::kNotFound, "VIP port not allocated", vip.port_id);
  }
  return plug(compute_id, *net, "vrrp", vip.port_id);
}

Result<PluggedInterface> NetnsNetworkDriver::plugNetwork(const std::string& compute_id,
                                                         const std::string& subnet_id) {
  const NetnsNetwork* net = find(subnet_id);
  if (net == nullptr) return makeError(ErrorCode::kNotFound, "subnet not found", subnet_id);
  return plug(compute_id, *net, "member", "");
}

Result<void> NetnsNetworkDriver::unplugWhere(const std::function<bool(const PortRecord&)>& match) {
  std::vector<PortRecord> victims;
  {
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    for (const auto& r : state->ports) {
      if (!r.host_veth.empty() && match(r)) victims.push_back(r);
    }
  }
  Result<void> first;
  std::vector<std::string> done;
  for (const auto& v : victims) {
    // Deleting the host end removes the amphora's end too. If the amphora is already
    // gone, so is the veth: nothing to do but forget the address.
    if (auto ok = deleteLink(v.host_veth); !ok) {
      if (first.ok()) first = ok;
      continue;
    }
    done.push_back(v.port.id);
    LB_INFO("amphora unplugged compute=%s network=%s interface=%s address=%s",
            v.port.device_id.c_str(), v.port.network_id.c_str(), v.port.interface.c_str(),
            v.port.address.c_str());
  }
  if (done.empty()) return first;
  auto guard = state_.lock();
  if (!guard) return guard.error();
  auto state = load(*guard);
  if (!state) return state.error();
  std::erase_if(state->ports, [&](const PortRecord& r) {
    return std::find(done.begin(), done.end(), r.port.id) != done.end();
  });
  if (auto ok = save(*guard, *state); !ok) return ok;
  return first;
}

Result<void> NetnsNetworkDriver::unplugVip(const std::string& compute_id, const Vip& vip) {
  return unplugWhere([&](const PortRecord& r) {
    return r.port.device_id == compute_id && r.port.device_owner == "vrrp" &&
           r.port.vip_port_id == vip.port_id;
  });
}

Result<void> NetnsNetworkDriver::unplugNetwork(const std::string& compute_id,
                                               const std::string& subnet_id) {
  return unplugWhere([&](const PortRecord& r) {
    return r.port.device_id == compute_id && r.port.device_owner == "member" &&
           r.port.subnet_id == subnet_id;
  });
}

Result<void> NetnsNetworkDriver::unplugAll(const std::string& compute_id) {
  return unplugWhere([&](const PortRecord& r) { return r.port.device_id == compute_id; });
}

Result<std::vector<PluggedInterface>> NetnsNetworkDriver::pluggedInterfaces(
    const std::string& compute_id) {
  auto guard = state_.lock();
  if (!guard) return guard.error();
  auto state = load(*guard);
  if (!state) return state.error();
  std::vector<PluggedInterface> out;
  for (const auto& r : state->ports) {
    if (!r.host_veth.empty() && r.port.device_id == compute_id) out.push_back(interfaceOf(r));
  }
  return out;
}

Result<std::vector<Port>> NetnsNetworkDriver::listPorts() {
  auto guard = state_.lock();
  if (!guard) return guard.error();
  auto state = load(*guard);
  if (!state) return state.error();
  std::vector<Port> out;
  for (const auto& r : state->ports) out.push_back(r.port);
  return out;
}

Result<void> NetnsNetworkDriver::cleanupAll() {
  std::lock_guard<std::mutex> bridge_lock(bridge_mu_);  // lock order: bridges, then state
  bridges_ready_.clear();
  auto guard = state_.lock();
  if (!guard) return guard.error();
  auto state = load(*guard);
  if (!state) return state.error();
  Result<void> first;
  NetworkState left;
  for (const auto& r : state->ports) {
    if (r.host_veth.empty()) continue;
    if (auto ok = deleteLink(r.host_veth); !ok) {
      if (first.ok()) first = ok;
      left.ports.push_back(r);
    }
  }
  deleteLinks(state->bridges, left.bridges, first);
  if (auto ok = save(*guard, left); !ok && first.ok()) first = ok;
  return first;
}

}  // namespace banyan::provider::drivers
