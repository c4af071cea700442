#include "system/firewall.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
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

struct ParsedSpec {
  std::vector<IpAddress> vips;
  std::vector<ParsedListener> listeners;
  std::vector<IpPrefix> management;
  std::vector<IpPrefix> vrrp_peers;
  uint16_t agent_port;
  bool allow_vrrp;
  std::vector<ParsedNat> nat;
};

Result<uint8_t> parseProtocol(const std::string& p, const std::string& where) {
  if (p == "tcp") return static_cast<uint8_t>(IPPROTO_TCP);
  if (p == "udp") return static_cast<uint8_t>(IPPROTO_UDP);
  if (p == "sctp") return static_cast<uint8_t>(IPPROTO_SCTP);
  return makeError(ErrorCode::kInvalidArgument, "protocol must be tcp, udp or sctp", where);
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
  return out;
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

Result<nft::Batch> build(const FirewallSpec& spec) {
  auto parsed = parse(spec);
  if (!parsed) return parsed.error();
  nft::Batch b(NFPROTO_INET, kFirewallTable);
  b.addTable();
  b.deleteTable();
  b.addTable();
  addFilter(b, *parsed);
  addL4Nat(b, parsed->nat);
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
  LB_INFO("firewall applied vips=%zu listeners=%zu management_cidrs=%zu vrrp=%s vrrp_peers=%zu l4_nat=%zu "
          "messages=%zu",
          spec.vips.size(), spec.listeners.size(), spec.management_cidrs.size(),
          spec.allow_vrrp ? "allowed" : "dropped", spec.vrrp_peers.size(), spec.l4_nat.size(),
          b->messageCount());
  return {};
}

Result<void> removeFirewall() {
  nft::Batch b(NFPROTO_INET, kFirewallTable);
  b.addTable();
  b.deleteTable();
  auto r = b.commit();
  if (r) LB_INFO("firewall removed table=%s", kFirewallTable);
  return r;
}

Result<std::string> describeFirewall(const FirewallSpec& spec) {
  auto b = build(spec);
  if (!b) return b.error();
  return b->describe();
}

}  // namespace banyan::agent::system
