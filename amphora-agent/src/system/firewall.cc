#include "system/firewall.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>

#include <algorithm>

#include "banyan/common/logging.h"
#include "system/ip_prefix.h"
#include "system/nft_batch.h"

namespace banyan::agent::system {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

constexpr uint8_t kProtoVrrp = 112;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kNdNeighborSolicit = 135;
constexpr uint8_t kNdNeighborAdvert = 136;
constexpr size_t kMaxSlots = 65536;

struct ParsedListener {
  IpAddress vip;
  uint16_t port;
  uint8_t proto;
  std::vector<IpPrefix> allowed;  // empty = all
  std::string name;               // for rule comments
};

struct ParsedNat {
  IpAddress vip;
  uint16_t port;
  uint8_t proto;
  std::vector<std::pair<IpAddress, uint16_t>> members;
  std::vector<uint32_t> slots;
  uint32_t seed;
  bool snat;
  bool masquerade;
  IpAddress snat_address;
};

struct ParsedDsr {
  IpAddress vip;
  uint16_t port;
  uint8_t proto;
  std::string device;
  uint32_t ifindex = 0;  // resolved after validation
  std::vector<IpAddress> members;
  std::vector<uint32_t> slots;
  uint32_t seed;
  std::vector<IpPrefix> allowed;  // empty = all
  std::string where;              // "/l4_dsr/<i>", for errors found later
};

struct ParsedSpec {
  std::vector<IpAddress> vips;
  std::vector<ParsedListener> listeners;
  std::vector<IpPrefix> management;
  std::vector<IpPrefix> vrrp_peers;
  uint16_t agent_port;
  bool allow_vrrp;
  std::vector<ParsedNat> nat;
  std::vector<ParsedDsr> dsr;
};

Result<uint8_t> parseProtocol(const std::string& p, const std::string& where) {
  if (p == "tcp") return static_cast<uint8_t>(IPPROTO_TCP);
  if (p == "udp") return static_cast<uint8_t>(IPPROTO_UDP);
  if (p == "sctp") return static_cast<uint8_t>(IPPROTO_SCTP);
  return makeError(ErrorCode::kInvalidArgument, "protocol must be tcp, udp or sctp", where);
}

// The kernel's rule (dev_valid_name) is "not empty, shorter than IFNAMSIZ, not
// . or .., no '/', ':' or white space"; we also refuse quotes and control
// characters, which no interface we create carries and which would only make
// the name awkward in nft's output and our logs.
bool validDeviceName(const std::string& n) {
  if (n.empty() || n.size() >= IFNAMSIZ || n == "." || n == "..") return false;
  for (unsigned char c : n) {
    if (c <= ' ' || c >= 0x7f || c == '/' || c == ':' || c == '"' || c == '\'' || c == '\\')
      return false;
  }
  return true;
}

common::Error at(common::Error e, const std::string& where) {
  e.message += " (" + e.context + ")";
  e.context = where;
  return e;
}

Result<ParsedSpec> parse(const FirewallSpec& spec) {
  ParsedSpec out;
  out.agent_port = spec.agent_port;
  out.allow_vrrp = spec.allow_vrrp;
  if (spec.agent_port == 0)
    return makeError(ErrorCode::kInvalidArgument, "agent port must not be 0", "/agent_port");
  for (size_t i = 0; i < spec.vips.size(); ++i) {
    auto a = parseIpAddress(spec.vips[i]);
    if (!a) return at(a.error(), "/vips/" + std::to_string(i));
    out.vips.push_back(*a);
  }
  for (size_t i = 0; i < spec.listeners.size(); ++i) {
    const auto& l = spec.listeners[i];
    const std::string where = "/listeners/" + std::to_string(i);
    ParsedListener pl;
    auto vip = parseIpAddress(l.vip);
    if (!vip) return at(vip.error(), where + "/vip");
    if (std::find(out.vips.begin(), out.vips.end(), *vip) == out.vips.end()) {
      return makeError(ErrorCode::kInvalidArgument, "listener VIP is not one of the VIPs",
                       where + "/vip");
    }
    pl.vip = *vip;
    if (l.port == 0)
      return makeError(ErrorCode::kInvalidArgument, "port must not be 0", where + "/port");
    pl.port = l.port;
    auto proto = parseProtocol(l.protocol, where + "/protocol");
    if (!proto) return proto.error();
    pl.proto = *proto;
    for (size_t j = 0; j < l.allowed_cidrs.size(); ++j) {
      auto p = parseIpPrefix(l.allowed_cidrs[j]);
      if (!p) return at(p.error(), where + "/allowed_cidrs/" + std::to_string(j));
      pl.allowed.push_back(*p);
    }
    pl.name = "listener " + l.vip + " " + l.protocol + "/" + std::to_string(l.port);
    out.listeners.push_back(std::move(pl));
  }
  for (size_t i = 0; i < spec.management_cidrs.size(); ++i) {
    auto p = parseIpPrefix(spec.management_cidrs[i]);
    if (!p) return at(p.error(), "/management_cidrs/" + std::to_string(i));
    out.management.push_back(*p);
  }
  for (size_t i = 0; i < spec.vrrp_peers.size(); ++i) {
    auto p = parseIpPrefix(spec.vrrp_peers[i]);
    if (!p) return at(p.error(), "/vrrp_peers/" + std::to_string(i));
    out.vrrp_peers.push_back(*p);
  }
  for (size_t i = 0; i < spec.l4_nat.size(); ++i) {
    const auto& n = spec.l4_nat[i];
    const std::string where = "/l4_nat/" + std::to_string(i);
    ParsedNat pn;
    auto vip = parseIpAddress(n.vip);
    if (!vip) return at(vip.error(), where + "/vip");
    pn.vip = *vip;
    if (n.port == 0)
      return makeError(ErrorCode::kInvalidArgument, "port must not be 0", where + "/port");
    pn.port = n.port;
    auto proto = parseProtocol(n.protocol, where + "/protocol");
    if (!proto) return proto.error();
    pn.proto = *proto;
    if (n.members.empty())
      return makeError(ErrorCode::kInvalidArgument, "no members", where + "/members");
    for (size_t j = 0; j < n.members.size(); ++j) {
      auto a = parseIpAddress(n.members[j].address);
      const std::string mw = where + "/members/" + std::to_string(j);
      if (!a) return at(a.error(), mw + "/address");
      if (a->family != vip->family) {
        return makeError(ErrorCode::kInvalidArgument, "member and VIP families differ",
                         mw + "/address");
      }
      if (n.members[j].port == 0)
        return makeError(ErrorCode::kInvalidArgument, "port must not be 0", mw + "/port");
      pn.members.emplace_back(*a, n.members[j].port);
    }
    if (n.slots.size() > kMaxSlots) {
      return makeError(ErrorCode::kInvalidArgument, "too many slots", where + "/slots");
    }
    pn.slots = n.slots;
    if (pn.slots.empty()) {
      for (uint32_t j = 0; j < pn.members.size(); ++j) pn.slots.push_back(j);
    }
    for (size_t j = 0; j < pn.slots.size(); ++j) {
      if (pn.slots[j] >= pn.members.size()) {
        return makeError(ErrorCode::kInvalidArgument, "slot names no member",
                         where + "/slots/" + std::to_string(j));
      }
    }
    pn.seed = n.hash_seed;
    pn.snat = n.snat;
    pn.masquerade = n.snat_address.empty();
    if (n.snat && !n.snat_address.empty()) {
      auto s = parseIpAddress(n.snat_address);
      if (!s) return at(s.error(), where + "/snat_address");
      if (s->family != vip->family) {
        return makeError(ErrorCode::kInvalidArgument, "SNAT address and VIP families differ",
                         where + "/snat_address");
      }
      pn.snat_address = *s;
    }
    out.nat.push_back(std::move(pn));
  }
  for (size_t i = 0; i < spec.l4_dsr.size(); ++i) {
    const auto& d = spec.l4_dsr[i];
    const std::string where = "/l4_dsr/" + std::to_string(i);
    ParsedDsr pd;
    pd.where = where;
    auto vip = parseIpAddress(d.vip);
    if (!vip) return at(vip.error(), where + "/vip");
    pd.vip = *vip;
    if (d.port == 0)
      return makeError(ErrorCode::kInvalidArgument, "port must not be 0", where + "/port");
    pd.port = d.port;
    // fwd hashes on the source port: only protocols whose port sits where
    // TCP's does and that a member's plain socket serves (no SCTP multi-homing).
    if (d.protocol == "tcp") {
      pd.proto = IPPROTO_TCP;
    } else if (d.protocol == "udp") {
      pd.proto = IPPROTO_UDP;
    } else {
      return makeError(ErrorCode::kInvalidArgument, "protocol must be tcp or udp",
                       where + "/protocol");
    }
    if (!validDeviceName(d.device)) {
      return makeError(ErrorCode::kInvalidArgument,
                       "device must be an interface name (1-15 characters, no '/', ':', quotes "
                       "or white space)",
                       where + "/device");
    }
    pd.device = d.device;
    if (d.members.empty())
      return makeError(ErrorCode::kInvalidArgument, "no members", where + "/members");
    for (size_t j = 0; j < d.members.size(); ++j) {
      const std::string mw = where + "/members/" + std::to_string(j);
      auto a = parseIpAddress(d.members[j]);
      if (!a) return at(a.error(), mw);
      if (a->family != vip->family)
        return makeError(ErrorCode::kInvalidArgument, "member and VIP families differ", mw);
      // The amphora would ARP for its own address and never send the packet.
      if (*a == *vip) return makeError(ErrorCode::kInvalidArgument, "member is the VIP", mw);
      pd.members.push_back(*a);
    }
    if (d.slots.size() > kMaxSlots)
      return makeError(ErrorCode::kInvalidArgument, "too many slots", where + "/slots");
    pd.slots = d.slots;
    if (pd.slots.empty()) {
      for (uint32_t j = 0; j < pd.members.size(); ++j) pd.slots.push_back(j);
    }
    for (size_t j = 0; j < pd.slots.size(); ++j) {
      if (pd.slots[j] >= pd.members.size()) {
        return makeError(ErrorCode::kInvalidArgument, "slot names no member",
                         where + "/slots/" + std::to_string(j));
      }
    }
    pd.seed = d.hash_seed;
    for (size_t j = 0; j < d.allowed_cidrs.size(); ++j) {
      auto p = parseIpPrefix(d.allowed_cidrs[j]);
      if (!p) return at(p.error(), where + "/allowed_cidrs/" + std::to_string(j));
      pd.allowed.push_back(*p);
    }
    // Two entries for one vip/protocol/port: the first rule would take every
    // packet and the second would silently do nothing. Nor can a DSR port be
    // NATed: ingress runs first, the NAT rule would never see a packet.
    for (const auto& other : out.dsr) {
      if (other.vip == pd.vip && other.port == pd.port && other.proto == pd.proto) {
        return makeError(ErrorCode::kInvalidArgument,
                         "same VIP, protocol and port as " + other.where, where + "/port");
      }
    }
    for (size_t j = 0; j < out.nat.size(); ++j) {
      const auto& n = out.nat[j];
      if (n.vip == pd.vip && n.port == pd.port && n.proto == pd.proto) {
        return makeError(ErrorCode::kInvalidArgument,
                         "same VIP, protocol and port as /l4_nat/" + std::to_string(j),
                         where + "/port");
      }
    }
    out.dsr.push_back(std::move(pd));
  }
  return out;
}

// fwd takes the interface index: resolve the names in the caller's namespace
// (the agent's), after validation so a malformed spec is reported as such.
Result<void> resolveDevices(std::vector<ParsedDsr>& dsr) {
  for (auto& d : dsr) {
    d.ifindex = if_nametoindex(d.device.c_str());
    if (d.ifindex == 0) {
      return makeError(ErrorCode::kNotFound, "no interface named " + d.device, d.where + "/device");
    }
  }
  return {};
}

std::vector<uint8_t> bytesOf(const IpAddress& a) {
  return {a.bytes.begin(), a.bytes.begin() + a.size()};
}

void addFilter(nft::Batch& b, const ParsedSpec& s) {
  const uint16_t fam = NFPROTO_INET;
  const std::string t = kFirewallTable;
  std::vector<nft::Element> v4, v6;
  for (const auto& vip : s.vips) (vip.family == AF_INET ? v4 : v6).push_back({bytesOf(vip), {}});
  uint32_t vips4 = b.addSet({"vips4", nft::kTypeIpAddr, 4, 0, 0, 0, false}, v4);
  uint32_t vips6 = b.addSet({"vips6", nft::kTypeIp6Addr, 16, 0, 0, 0, false}, v6);

  b.addChain("input", NF_INET_LOCAL_IN, 0, "filter", NF_ACCEPT);
  b.addChain("mgmt_only");
  b.addChain("vrrp_in");
  b.addChain("vip_in");

  b.addRule(nft::RuleBuilder(fam, t, "input").iifname("lo").accept().release());
  // VRRP and the agent port are checked before conntrack's "established":
  // VRRP has no connections, and once we advertise to a host its adverts back
  // would count as replies and slip past the management check.
  if (s.allow_vrrp) {
    b.addRule(nft::RuleBuilder(fam, t, "input")
                  .l4proto(kProtoVrrp)
                  .jump("vrrp_in")
                  .comment("vrrp")
                  .release());
  } else {
    b.addRule(nft::RuleBuilder(fam, t, "input")
                  .l4proto(kProtoVrrp)
                  .counter()
                  .drop()
                  .comment("vrrp")
                  .release());
  }
  b.addRule(nft::RuleBuilder(fam, t, "input")
                .l4proto(IPPROTO_TCP)
                .dport(s.agent_port)
                .jump("mgmt_only")
                .comment("amphora agent")
                .release());
  b.addRule(nft::RuleBuilder(fam, t, "input").ctStateEstablishedOrRelated().accept().release());
  b.addRule(nft::RuleBuilder(fam, t, "input")
                .nfproto(AF_INET)
                .daddrInSet(AF_INET, "vips4", vips4)
                .jump("vip_in")
                .release());
  b.addRule(nft::RuleBuilder(fam, t, "input")
                .nfproto(AF_INET6)
                .daddrInSet(AF_INET6, "vips6", vips6)
                .jump("vip_in")
                .release());

  for (const auto& m : s.management) {
    b.addRule(nft::RuleBuilder(fam, t, "mgmt_only")
                  .nfproto(m.address.family)
                  .saddrIn(m)
                  .accept()
                  .release());
  }
  b.addRule(nft::RuleBuilder(fam, t, "mgmt_only").counter().drop().release());

  // The peers' adverts come from their VRRP addresses on the VIP network;
  // anything else falls through to the management check (and its drop).
  for (const auto& p : s.vrrp_peers) {
    b.addRule(nft::RuleBuilder(fam, t, "vrrp_in")
                  .nfproto(p.address.family)
                  .saddrIn(p)
                  .accept()
                  .release());
  }
  b.addRule(nft::RuleBuilder(fam, t, "vrrp_in").jump("mgmt_only").release());

  // Without neighbour discovery to the address itself an IPv6 VIP stops
  // answering as soon as the client's neighbour entry needs re-validation.
  for (uint8_t type : {kNdNeighborSolicit, kNdNeighborAdvert}) {
    b.addRule(nft::RuleBuilder(fam, t, "vip_in")
                  .nfproto(AF_INET6)
                  .l4proto(kProtoIcmpv6)
                  .icmpv6Type(type)
                  .accept()
                  .release());
  }
  for (const auto& l : s.listeners) {
    std::vector<IpPrefix> sources = l.allowed;
    if (sources.empty()) sources.push_back(IpPrefix{l.vip, 0});  // everyone of the VIP's family
    for (const auto& src : sources) {
      // An IPv4 CIDR cannot match traffic to an IPv6 VIP (and vice versa).
      if (src.address.family != l.vip.family) continue;
      b.addRule(nft::RuleBuilder(fam, t, "vip_in")
                    .nfproto(l.vip.family)
                    .daddrIs(l.vip)
                    .l4proto(l.proto)
                    .dport(l.port)
                    .saddrIn(src)
                    .accept()
                    .comment(l.name)
                    .release());
    }
  }
  b.addRule(nft::RuleBuilder(fam, t, "vip_in").counter().drop().release());
}

void addL4Nat(nft::Batch& b, const std::vector<ParsedNat>& nats) {
  if (nats.empty()) return;  // nat chains load nf_nat; do not ask for it unused
  const uint16_t fam = NFPROTO_INET;
  const std::string t = kFirewallTable;
  // dstnat/srcnat priorities, as `nft` names them.
  b.addChain("nat_prerouting", NF_INET_PRE_ROUTING, -100, "nat", NF_ACCEPT);
  b.addChain("nat_postrouting", NF_INET_POST_ROUTING, 100, "nat", NF_ACCEPT);
  for (size_t i = 0; i < nats.size(); ++i) {
    const auto& n = nats[i];
    const uint32_t addr_len = static_cast<uint32_t>(n.vip.size());
    const std::string map = "l4nat" + std::to_string(i);
    std::vector<nft::Element> elems;
    elems.reserve(n.slots.size());
    for (uint32_t slot = 0; slot < n.slots.size(); ++slot) {
      nft::Element e;
      e.key.resize(4);
      memcpy(e.key.data(), &slot, 4);  // host order: the hash result is a host-order integer
      const auto& [addr, port] = n.members[n.slots[slot]];
      e.data = bytesOf(addr);
      uint16_t be = htons(port);
      e.data.push_back(static_cast<uint8_t>(be & 0xff));
      e.data.push_back(static_cast<uint8_t>(be >> 8));
      e.data.push_back(0);  // the port is padded to a whole 4-byte register
      e.data.push_back(0);
      elems.push_back(std::move(e));
    }
    uint32_t addr_type = n.vip.family == AF_INET ? nft::kTypeIpAddr : nft::kTypeIp6Addr;
    uint32_t map_id =
        b.addSet({map, nft::kTypeInteger, 4, NFT_SET_MAP,
                  (addr_type << nft::kTypeBits) | nft::kTypeInetService, addr_len + 4, true},
                 elems);
    const std::string name = "l4 nat " + n.vip.toString() + " " + std::to_string(n.port);
    b.addRule(
        nft::RuleBuilder(fam, t, "nat_prerouting")
            .nfproto(n.vip.family)
            .daddrIs(n.vip)
            .l4proto(n.proto)
            .dport(n.port)
            .counter()
            .dnatByHash(n.vip.family, static_cast<uint32_t>(n.slots.size()), n.seed, map, map_id)
            .comment(name)
            .release());
    if (n.snat) {
      nft::RuleBuilder rb(fam, t, "nat_postrouting");
      rb.nfproto(n.vip.family).ctStatusDnat().ctOriginalDaddr(n.vip).l4proto(n.proto);
      if (n.masquerade)
        rb.masquerade();
      else
        rb.snatTo(n.snat_address);
      b.addRule(rb.comment(name).release());
    }
  }
}

void addL4Dsr(nft::Batch& b, const std::vector<ParsedDsr>& dsr) {
  const uint16_t fam = NFPROTO_NETDEV;
  const std::string t = kDsrTable;
  // One base chain per device (a netdev chain hooks exactly one interface),
  // in the order the devices first appear.
  std::vector<std::string> devices;
  for (const auto& d : dsr) {
    if (std::find(devices.begin(), devices.end(), d.device) == devices.end())
      devices.push_back(d.device);
  }
  for (const auto& dev : devices)
    b.addChain("in_" + dev, NF_NETDEV_INGRESS, 0, "filter", NF_ACCEPT, dev);
  for (size_t i = 0; i < dsr.size(); ++i) {
    const auto& d = dsr[i];
    const std::string chain = "in_" + d.device;
    const std::string map = "dsr" + std::to_string(i);
    std::vector<nft::Element> elems;
    elems.reserve(d.slots.size());
    for (uint32_t slot = 0; slot < d.slots.size(); ++slot) {
      nft::Element e;
      e.key.resize(4);
      memcpy(e.key.data(), &slot, 4);  // host order: the hash result is a host-order integer
      e.data = bytesOf(d.members[d.slots[slot]]);
      elems.push_back(std::move(e));
    }
    const uint32_t addr_type = d.vip.family == AF_INET ? nft::kTypeIpAddr : nft::kTypeIp6Addr;
    uint32_t map_id = b.addSet({map, nft::kTypeInteger, 4, NFT_SET_MAP, addr_type,
                                static_cast<uint32_t>(d.vip.size()), true},
                               elems);
    const std::string name = std::string("l4 dsr ") + d.vip.toString() + " " +
                             (d.proto == IPPROTO_TCP ? "tcp" : "udp") + "/" +
                             std::to_string(d.port);
    auto match = [&](nft::RuleBuilder& rb) -> nft::RuleBuilder& {
      return rb.etherProto(d.vip.family).daddrIs(d.vip).l4proto(d.proto).dport(d.port);
    };
    const auto fwd = [&](nft::RuleBuilder& rb) {
      rb.counter()
          .fwdByHash(d.vip.family, d.ifindex, static_cast<uint32_t>(d.slots.size()), d.seed, map,
                     map_id)
          .comment(name);
      b.addRule(rb.release());
    };
    if (d.allowed.empty()) {
      nft::RuleBuilder rb(fam, t, chain);
      fwd(match(rb));
      continue;
    }
    for (const auto& src : d.allowed) {
      // An IPv4 CIDR cannot match traffic to an IPv6 VIP (and vice versa).
      if (src.address.family != d.vip.family) continue;
      nft::RuleBuilder rb(fam, t, chain);
      match(rb).saddrIn(src);
      fwd(rb);
    }
    // The rest of vip:port is dropped here: letting it through would hand it
    // to the host's stack (and the inet table), which does not serve it.
    nft::RuleBuilder rb(fam, t, chain);
    match(rb).counter().drop().comment(name + " not allowed");
    b.addRule(rb.release());
  }
}

// Both tables, each as "add, delete" (delete if present: the kernel has no
// such verb) and, when wanted, "add + content": one transaction, applied by
// the kernel entirely or not at all.
void replaceTables(nft::Batch& b, const ParsedSpec* s) {
  b.addTable();
  b.deleteTable();
  if (s != nullptr) {
    b.addTable();
    addFilter(b, *s);
    addL4Nat(b, s->nat);
  }
  b.useTable(NFPROTO_NETDEV, kDsrTable);
  b.addTable();
  b.deleteTable();
  if (s != nullptr && !s->dsr.empty()) {
    b.addTable();
    addL4Dsr(b, s->dsr);
  }
}

Result<nft::Batch> build(const FirewallSpec& spec) {
  auto parsed = parse(spec);
  if (!parsed) return parsed.error();
  if (auto r = resolveDevices(parsed->dsr); !r) return r.error();
  nft::Batch b(NFPROTO_INET, kFirewallTable);
  replaceTables(b, &*parsed);
  return b;
}

}  // namespace

Result<void> applyFirewall(const FirewallSpec& spec) {
  auto b = build(spec);
  if (!b) {
    LB_WARN("firewall spec rejected where=%s why=%s", b.error().context.c_str(),
            b.error().message.c_str());
    return b.error();
  }
  auto r = b->commit();
  if (!r) {
    LB_ERROR("firewall apply failed, previous ruleset kept why=%s", r.error().message.c_str());
    return r;
  }
  LB_INFO(
      "firewall applied vips=%zu listeners=%zu management_cidrs=%zu vrrp=%s vrrp_peers=%zu "
      "l4_nat=%zu l4_dsr=%zu messages=%zu",
      spec.vips.size(), spec.listeners.size(), spec.management_cidrs.size(),
      spec.allow_vrrp ? "allowed" : "dropped", spec.vrrp_peers.size(), spec.l4_nat.size(),
      spec.l4_dsr.size(), b->messageCount());
  return {};
}

Result<void> removeFirewall() {
  nft::Batch b(NFPROTO_INET, kFirewallTable);
  replaceTables(b, nullptr);
  auto r = b.commit();
  if (r) LB_INFO("firewall removed tables=%s,%s", kFirewallTable, kDsrTable);
  return r;
}

Result<std::string> describeFirewall(const FirewallSpec& spec) {
  auto b = build(spec);
  if (!b) return b.error();
  return b->describe();
}

}  // namespace banyan::agent::system
