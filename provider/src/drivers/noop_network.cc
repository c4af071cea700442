#include "drivers/noop_network.h"

#include <algorithm>
#include <set>

#include "drivers/host_net.h"

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::Result;

NoopNetworkDriver::NoopNetworkDriver(std::vector<NetnsNetwork> networks)
    : networks_(std::move(networks)) {}

NetnsNetwork NoopNetworkDriver::networkFor(const std::string& id) const {
  for (const auto& n : networks_) {
    if (n.id == id) return n;
  }
  NetnsNetwork made_up;
  made_up.id = id;
  made_up.bridge = "noop";
  made_up.cidr = Cidr::parse("203.0.113.0/24").value();
  made_up.pool = AllocationPool::forCidr(made_up.cidr).value();
  return made_up;
}

Result<Network> NoopNetworkDriver::network(const std::string& network_id) {
  NetnsNetwork n = networkFor(network_id);
  return Network{n.id, n.bridge, {n.id}, 1500};
}

Result<Subnet> NoopNetworkDriver::subnet(const std::string& subnet_id) {
  NetnsNetwork n = networkFor(subnet_id);
  return Subnet{n.id,
                n.id,
                n.cidr.toString(),
                n.cidr.network.isV6() ? 6 : 4,
                n.cidr.gateway().toString(),
                n.pool.start.toString(),
                n.pool.end.toString()};
}

Result<std::vector<Subnet>> NoopNetworkDriver::subnets() {
  std::vector<Subnet> out;
  for (const auto& n : networks_) out.push_back(subnet(n.id).value());
  return out;
}

Result<std::string> NoopNetworkDriver::pick(const NetnsNetwork& net, const std::string& requested) {
  std::set<std::string> used;
  for (const auto& [id, port] : ports_) {
    if (port.subnet_id == net.id) used.insert(port.address);
  }
  if (!requested.empty()) {
    auto a = IpAddress::parse(requested);
    if (!a || !net.pool.contains(*a)) {
      return makeError(ErrorCode::kInvalidArgument, "address outside the allocation pool",
                       requested);
    }
    if (used.count(a->toString()))
      return makeError(ErrorCode::kConflict, "address already allocated", requested);
    return a->toString();
  }
  for (IpAddress a = net.pool.start; net.pool.contains(a); a = a.plus(1)) {
    if (!used.count(a.toString())) return a.toString();
  }
  return makeError(ErrorCode::kUnavailable, "no free address on subnet " + net.id, net.id);
}

Result<Vip> NoopNetworkDriver::allocateVip(const std::string& lb_id, const std::string& subnet_id,
                                           const std::string& requested_address) {
  std::lock_guard<std::mutex> lock(mu_);
  NetnsNetwork net = networkFor(subnet_id);
  for (const auto& [id, port] : ports_) {
    if (port.device_owner == "vip" && port.device_id == lb_id && port.subnet_id == net.id &&
        (requested_address.empty() || requested_address == port.address)) {
      return Vip{port.address, port.id, net.id, net.id};
    }
  }
  auto address = pick(net, requested_address);
  if (!address) return address.error();
  Port port{randomUuid(), net.id, net.id, *address, "vip", lb_id, "", ""};
  ports_[port.id] = port;
  return Vip{port.address, port.id, net.id, net.id};
}

Result<void> NoopNetworkDriver::deallocateVip(const Vip& vip) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(ports_, [&](const auto& kv) {
    return kv.second.id == vip.port_id || kv.second.vip_port_id == vip.port_id;
  });
  return {};
}

PluggedInterface NoopNetworkDriver::plugLocked(const std::string& compute_id,
                                               const NetnsNetwork& net, const std::string& owner,
                                               const std::string& vip_port_id,
                                               const std::string& address) {
  int index = 1;
  std::set<std::string> used;
  for (const auto& [id, port] : ports_) {
    if (port.device_id == compute_id) used.insert(port.interface);
  }
  while (used.count("eth" + std::to_string(index))) ++index;
  Port port{randomUuid(), net.id,     net.id,      address,
            owner,        compute_id, vip_port_id, "eth" + std::to_string(index)};
  ports_[port.id] = port;
  return PluggedInterface{compute_id,
                          port.id,
                          net.id,
                          net.id,
                          port.interface,
                          randomMac(),
                          address,
                          net.cidr.toString(),
                          net.cidr.prefix_length,
                          net.cidr.gateway().toString(),
                          1500};
}

Result<PluggedInterface> NoopNetworkDriver::plugVip(const std::string& compute_id, const Vip& vip) {
  std::lock_guard<std::mutex> lock(mu_);
  NetnsNetwork net = networkFor(vip.subnet_id);
  auto address = pick(net, "");
  if (!address) return address.error();
  return plugLocked(compute_id, net, "vrrp", vip.port_id, *address);
}

Result<void> NoopNetworkDriver::unplugVip(const std::string& compute_id, const Vip& vip) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(ports_, [&](const auto& kv) {
    return kv.second.device_id == compute_id && kv.second.vip_port_id == vip.port_id;
  });
  return {};
}

Result<PluggedInterface> NoopNetworkDriver::plugNetwork(const std::string& compute_id,
                                                        const std::string& subnet_id) {
  std::lock_guard<std::mutex> lock(mu_);
  NetnsNetwork net = networkFor(subnet_id);
  auto address = pick(net, "");
  if (!address) return address.error();
  return plugLocked(compute_id, net, "member", "", *address);
}

Result<void> NoopNetworkDriver::unplugNetwork(const std::string& compute_id,
                                              const std::string& subnet_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(ports_, [&](const auto& kv) {
    return kv.second.device_id == compute_id && kv.second.device_owner == "member" &&
           kv.second.subnet_id == subnet_id;
  });
  return {};
}

Result<void> NoopNetworkDriver::unplugAll(const std::string& compute_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(ports_, [&](const auto& kv) { return kv.second.device_id == compute_id; });
  return {};
}

Result<std::vector<PluggedInterface>> NoopNetworkDriver::pluggedInterfaces(
    const std::string& compute_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PluggedInterface> out;
  for (const auto& [id, port] : ports_) {
    if (port.device_id != compute_id || port.device_owner == "vip") continue;
    NetnsNetwork net = networkFor(port.subnet_id);
    out.push_back(PluggedInterface{compute_id, port.id, net.id, net.id, port.interface, "",
                                   port.address, net.cidr.toString(), net.cidr.prefix_length,
                                   net.cidr.gateway().toString(), 1500});
  }
  return out;
}

Result<std::vector<Port>> NoopNetworkDriver::listPorts() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Port> out;
  for (const auto& [id, port] : ports_) out.push_back(port);
  return out;
}

}  // namespace banyan::provider::drivers
