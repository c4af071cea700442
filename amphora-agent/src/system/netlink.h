// rtnetlink for the amphora: addresses, links, routes and policy rules in the
// CURRENT network namespace of the calling thread (the agent runs inside the
// amphora's namespace; tests enter one with setns() on a thread of their own).
//
// Every call opens its own NETLINK_ROUTE socket, so the functions are safe to
// call from any thread and never share kernel state between namespaces.
// Add operations are idempotent (an existing address/route/rule is success);
// remove operations of something already absent are success too, so a retried
// API call or a replayed plug converges instead of failing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::agent::system {

struct InterfaceAddress {
  std::string address;  // "192.0.2.5", "2001:db8::5"
  int prefix_len = 0;
  bool operator==(const InterfaceAddress&) const = default;
};

struct InterfaceInfo {
  int index = 0;
  std::string name;
  std::string mac;  // "fa:16:3e:00:00:01" (lower case); empty for loopback-like links
  int mtu = 0;
  bool up = false;  // administratively up (IFF_UP)
  std::vector<InterfaceAddress> addresses;
};

// Routing tables: kMainTable is what `ip route` shows; Octavia puts the VIP's
// source routing in table 1 (kVipTable) selected by a `from <vip>` rule.
inline constexpr uint32_t kMainTable = 254;
inline constexpr uint32_t kVipTable = 1;

struct Route {
  std::string destination;  // CIDR ("198.51.100.0/24"), or "default" / "0.0.0.0/0" / "::/0"
  std::string gateway;      // empty: directly connected (scope link)
  std::string interface;    // required when gateway is empty or onlink
  std::string source;       // preferred source address (ip route ... src X); optional
  uint32_t table = kMainTable;
  bool onlink = false;  // gateway reachable on the link even outside its subnets
  uint32_t metric = 0;  // 0: kernel default
};

struct Rule {
  std::string from;  // CIDR or address ("203.0.113.5" = /32)
  uint32_t table = kVipTable;
  uint32_t priority = 100;
};

// All links with their IPv4/IPv6 addresses, ordered by interface index.
common::Result<std::vector<InterfaceInfo>> listInterfaces();
common::Result<InterfaceInfo> findInterfaceByMac(const std::string& mac);
// For GET /interface/{ip}: the link holding this address (any prefix length).
common::Result<InterfaceInfo> findInterfaceByAddress(const std::string& ip);

common::Result<void> setLinkUp(const std::string& ifname);
common::Result<void> setLinkDown(const std::string& ifname);
common::Result<void> setLinkMtu(const std::string& ifname, int mtu);
// Renaming needs the link down (the kernel refuses otherwise); this brings it
// down, renames, and leaves it down.
common::Result<void> renameLink(const std::string& ifname, const std::string& new_name);

// cidr: "192.0.2.5/24"; the prefix decides the connected route. IPv6 addresses
// go through duplicate address detection unless skip_dad (a VIP moved by VRRP
// must be usable at once, and keepalived sets it the same way).
common::Result<void> addAddress(const std::string& ifname, const std::string& cidr,
                                bool skip_dad = false);
common::Result<void> removeAddress(const std::string& ifname, const std::string& cidr);

common::Result<void> addRoute(const Route& route);
common::Result<void> removeRoute(const Route& route);

common::Result<void> addRule(const Rule& rule);
common::Result<void> removeRule(const Rule& rule);

// What Octavia's agent does on POST /plug/vip for an amphora without keepalived
// (SINGLE topology), expressed in primitives: the VIP address, the subnet route,
// a default route via the gateway in the main table, and the same in kVipTable
// with a `from vip` rule so that replies from the VIP leave by the VIP's subnet
// even if the main table prefers another interface. In ACTIVE_STANDBY keepalived
// owns the VIP address, so add_vip_address is false there.
struct VipNetwork {
  std::string interface;
  std::string vip;          // address only
  std::string subnet_cidr;  // the VIP's subnet
  std::string gateway;      // optional
  struct HostRoute {
    std::string destination;
    std::string nexthop;
  };
  std::vector<HostRoute> host_routes;
  uint32_t table = kVipTable;
  uint32_t rule_priority = 100;
  bool add_vip_address = true;
};
common::Result<void> applyVipNetwork(const VipNetwork& spec);

}  // namespace banyan::agent::system
