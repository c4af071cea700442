// The agent's nftables table: `table inet banyan`, owned by the agent and
// replaced as a whole in ONE netlink transaction (delete-if-present + create +
// chains + sets + rules). The kernel applies a transaction completely or not at
// all, so a failure at any point leaves the previous ruleset in place, and
// traffic never sees a half-built table. The same transaction replaces
// `table netdev banyan_dsr` (L4DsrSpec below; absent without DSR entries).
// Nothing outside these two tables is touched.
//
// What the filter does (chain `input`, hooked at input, policy accept):
//   - loopback traffic is accepted;
//   - TCP to agent_port is accepted from management_cidrs only; VRRP (IP
//     protocol 112) from vrrp_peers and management_cidrs only (keepalived's
//     unicast peers are the other amphora's addresses on the VIP network, not
//     management addresses); both are dropped from anywhere else — checked per
//     packet, before conntrack, so a host we send VRRP to cannot answer past
//     the check;
//   - established/related traffic is accepted;
//   - to a VIP, only listener ports from the listener's allowed_cidrs pass
//     (empty allowed_cidrs = everyone), plus IPv6 neighbour discovery (without
//     it an IPv6 VIP is unreachable); everything else to a VIP is dropped;
//   - traffic to the host's other addresses is left alone.
// Forwarded traffic is not filtered here (the L4 NAT chains below change the
// destination before the input hook; members are reached by forwarding).
//
// Calls act on the calling thread's network namespace and are not synchronised
// with each other: the agent serialises applies (one API request at a time).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::agent::system {

// Building block for in-kernel L4 load balancing (a later issue wires it to L4
// listeners): DNAT of new flows to a VIP:port onto members chosen by a Jenkins
// hash of (source address, source port) looked up in a slot table — pass a
// Maglev table as `slots` so a member change moves the minimum of flows — and
// optionally SNAT (masquerade, or a fixed address) of those flows on the way
// out so members' replies come back through the amphora.
struct L4NatSpec {
  std::string vip;  // same family as every member
  uint16_t port = 0;
  std::string protocol = "tcp";  // tcp|udp|sctp
  struct Member {
    std::string address;
    uint16_t port = 0;
  };
  std::vector<Member> members;
  // slot -> index into members; the hash picks a slot. Empty: one slot per
  // member in order. At most 65536 slots.
  std::vector<uint32_t> slots;
  uint32_t hash_seed = 0;  // equal on both amphorae, or flows remap on failover
  bool snat = true;
  std::string snat_address;  // empty with snat: masquerade (the egress address)
};

// Building block for direct server return (IPVS's "DR" mode; a later issue
// wires it to L4 listeners): a packet from a client to vip:port is picked up
// at the ingress hook of `device`, a member is chosen by a Jenkins hash of
// (source address, source port) looked up in `slots` (pass a Maglev table),
// and the packet is sent out of `device` again, unchanged at layer 3 (the
// destination is still the VIP; only TTL / hop limit drop by one), to that
// member's MAC address as the kernel's neighbour table knows it. Stateless: no
// conntrack, nothing kept per flow, every packet of a flow hashes alike.
//
// The member answers the client directly, so it must hold the VIP on its
// loopback and not answer ARP for it (net.ipv4.conf.all.arp_ignore=1,
// arp_announce=2); IPv6 needs nothing more (a loopback address is not
// advertised by ND). The amphora needs an address of its own on the segment
// besides the VIP: its ARP requests for members must not come from the VIP,
// which the member holds and would drop as a martian source.
//
// allowed_cidrs is enforced here: these packets never reach the inet table's
// input chain. Only VIP + protocol + port is taken; other ports, ARP, ND and
// non-first IP fragments (no port to match) go on to the host as before.
struct L4DsrSpec {
  std::string vip;  // same family as every member
  uint16_t port = 0;
  std::string protocol = "tcp";      // tcp|udp
  std::string device;                // the VIP's interface: where packets come in and go out
  std::vector<std::string> members;  // addresses on device's L2 segment
  // slot -> index into members; the hash picks a slot. Empty: one slot per
  // member in order. At most 65536 slots.
  std::vector<uint32_t> slots;
  uint32_t hash_seed = 0;                  // equal on both amphorae, or flows remap on failover
  std::vector<std::string> allowed_cidrs;  // empty = everyone; others are dropped
};

struct FirewallSpec {
  std::vector<std::string> vips;
  struct Listener {
    std::string vip;
    uint16_t port = 0;
    std::string protocol = "tcp";            // tcp|udp|sctp
    std::vector<std::string> allowed_cidrs;  // empty = all
  };
  std::vector<Listener> listeners;
  std::vector<std::string> management_cidrs;
  // Where VRRP may come from besides management_cidrs: the peers' unicast
  // addresses (bare addresses or CIDRs). Ignored when allow_vrrp is false.
  std::vector<std::string> vrrp_peers;
  uint16_t agent_port = 9443;
  bool allow_vrrp = true;         // false: VRRP is dropped from everyone (SINGLE topology)
  std::vector<L4NatSpec> l4_nat;  // see L4NatSpec; empty for proxy-served listeners
  // See L4DsrSpec. Goes to `table netdev banyan_dsr` (one ingress chain per
  // device), in the same transaction as the inet table; no entries, no table.
  std::vector<L4DsrSpec> l4_dsr;
};

inline constexpr const char* kFirewallTable = "banyan";
inline constexpr const char* kDsrTable = "banyan_dsr";  // family netdev

// Validates the spec (kInvalidArgument names the bad field, e.g.
// "/listeners/0/allowed_cidrs/1"; kNotFound "/l4_dsr/0/device" when that
// interface does not exist in the calling thread's namespace) and then
// replaces both tables (inet banyan, netdev banyan_dsr) in one transaction.
common::Result<void> applyFirewall(const FirewallSpec& spec);
// Deletes both tables; absent already is success.
common::Result<void> removeFirewall();
// The same transaction applyFirewall would send, in libnftnl's textual form
// (one object per paragraph, rules with their expressions), without changing
// the kernel (it does look up DSR devices' interface indexes, as apply does,
// and fails the same way when one is missing). For tests and a debug endpoint.
common::Result<std::string> describeFirewall(const FirewallSpec& spec);

}  // namespace banyan::agent::system
