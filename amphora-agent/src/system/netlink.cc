#include "system/netlink.h"

// clang-format off
#include <net/if.h>  // before linux/*: glibc and the kernel both define IFF_*
// clang-format on
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <vector>

#include "banyan/common/logging.h"
#include "system/ip_prefix.h"

namespace banyan::agent::system {

using common::Error;
using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

std::atomic<uint32_t> g_seq{1};
// Dumps arrive in chunks of at most a page or two; 32 KiB holds any chunk.
constexpr size_t kRecvBufferSize = 32768;

Error errnoError(const std::string& what, int err, const std::string& context = {}) {
  ErrorCode code = ErrorCode::kUnavailable;
  if (err == ENODEV || err == ENOENT || err == ESRCH) code = ErrorCode::kNotFound;
  if (err == EINVAL || err == ERANGE || err == EAFNOSUPPORT) code = ErrorCode::kInvalidArgument;
  if (err == EEXIST || err == EBUSY) code = ErrorCode::kConflict;
  return makeError(code, what + ": " + strerror(err), context);
}

// One request on a fresh NETLINK_ROUTE socket, bound in the calling thread's
// namespace. `on_msg` sees each data message of a dump; for other requests the
// kernel's ACK (or error) ends the exchange. Returns 0 or the kernel's errno.
using MsgFn = std::function<void(const nlmsghdr*)>;

int talk(nlmsghdr* nlh, const MsgFn& on_msg = {}) {
  mnl_socket* nl = mnl_socket_open(NETLINK_ROUTE);
  if (nl == nullptr) return errno;
  struct Closer {
    mnl_socket* s;
    ~Closer() { mnl_socket_close(s); }
  } closer{nl};
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) return errno;
  uint32_t portid = mnl_socket_get_portid(nl);
  uint32_t seq = g_seq.fetch_add(1);
  nlh->nlmsg_seq = seq;
  bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  if (!dump) nlh->nlmsg_flags |= NLM_F_ACK;
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return errno;

  std::vector<char> buf(kRecvBufferSize);
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    const auto* fn = static_cast<const MsgFn*>(data);
    if (*fn) (*fn)(m);
    return MNL_CB_OK;
  };
  while (true) {
    ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n < 0) return errno;
    int ret = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, cb,
                         const_cast<MsgFn*>(&on_msg));
    if (ret < 0) return errno;
    if (ret == MNL_CB_STOP) return 0;
  }
}

// mnl_attr_for_each assigns void* to the cursor, which C++ refuses.
template <typename Fn>
void forEachAttr(const nlmsghdr* m, size_t offset, Fn&& fn) {
  const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(m));
  for (auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(m, offset));
       mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char*>(a)));
       a = mnl_attr_next(a)) {
    fn(a);
  }
}

Result<int> ifIndex(const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
    return makeError(ErrorCode::kInvalidArgument, "bad interface name", ifname);
  }
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) return makeError(ErrorCode::kNotFound, "no such interface", ifname);
  return static_cast<int>(idx);
}

struct MsgBuf {
  std::vector<char> bytes = std::vector<char>(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* start(uint16_t type, uint16_t flags) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(bytes.data());
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    return nlh;
  }
};

void putAddr(nlmsghdr* nlh, uint16_t type, const IpAddress& a) {
  mnl_attr_put(nlh, type, a.size(), a.bytes.data());
}

std::string macString(const uint8_t* p, size_t len) {
  std::string out;
  char b[4];
  for (size_t i = 0; i < len; ++i) {
    snprintf(b, sizeof b, "%02x", p[i]);
    if (i) out += ':';
    out += b;
  }
  return out;
}

Result<void> changeLink(const std::string& ifname, unsigned flags, unsigned change, int mtu,
                        const std::string& new_name) {
  auto idx = ifIndex(ifname);
  if (!idx) return idx.error();
  MsgBuf mb;
  nlmsghdr* nlh = mb.start(RTM_NEWLINK, 0);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = *idx;
  ifm->ifi_flags = flags;
  ifm->ifi_change = change;
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  if (!new_name.empty()) mnl_attr_put_strz(nlh, IFLA_IFNAME, new_name.c_str());
  int err = talk(nlh);
  if (err != 0) return errnoError("changing link failed", err, ifname);
  return {};
}

// "default" and the all-zero prefixes mean the default route.
Result<IpPrefix> parseDestination(const Route& r) {
  std::string d = r.destination;
  if (d == "default" || d.empty()) {
    if (r.gateway.empty())
      return parseIpPrefix(r.source.find(':') != std::string::npos ? "::/0" : "0.0.0.0/0");
    return parseIpPrefix(r.gateway.find(':') != std::string::npos ? "::/0" : "0.0.0.0/0");
  }
  return parseIpPrefix(d);
}

Result<void> routeRequest(const Route& r, bool add) {
  auto dst = parseDestination(r);
  if (!dst) return dst.error();
  int family = dst->address.family;
  MsgBuf mb;
  nlmsghdr* nlh =
      mb.start(add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<unsigned char>(family);
  rtm->rtm_dst_len = static_cast<unsigned char>(dst->prefix_len);
  rtm->rtm_table = r.table < 256 ? static_cast<unsigned char>(r.table)
                                 : static_cast<unsigned char>(RT_TABLE_UNSPEC);
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_type = RTN_UNICAST;
  // A delete matches any scope (as `ip route del` does); an add is link scope
  // when there is no gateway, like a connected route.
  rtm->rtm_scope = static_cast<unsigned char>(
      !add ? RT_SCOPE_NOWHERE : (r.gateway.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE));
  if (r.onlink) rtm->rtm_flags |= RTNH_F_ONLINK;
  if (dst->prefix_len > 0) putAddr(nlh, RTA_DST, dst->network());
  mnl_attr_put_u32(nlh, RTA_TABLE, r.table);
  if (!r.gateway.empty()) {
    auto gw = parseIpAddress(r.gateway);
    if (!gw) return gw.error();
    if (gw->family != family) {
      return makeError(ErrorCode::kInvalidArgument, "gateway family differs from destination",
                       r.gateway);
    }
    putAddr(nlh, RTA_GATEWAY, *gw);
  }
  if (!r.source.empty()) {
    auto src = parseIpAddress(r.source);
    if (!src) return src.error();
    if (src->family != family) {
      return makeError(ErrorCode::kInvalidArgument, "source family differs from destination",
                       r.source);
    }
    putAddr(nlh, RTA_PREFSRC, *src);
  }
  if (!r.interface.empty()) {
    auto idx = ifIndex(r.interface);
    if (!idx) {
      if (!add && idx.error().code == ErrorCode::kNotFound) return {};  // its routes went with it
      return idx.error();
    }
    mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(*idx));
  } else if (add && (r.gateway.empty() || r.onlink)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "a route without gateway (or onlink) needs an interface", r.destination);
  }
  if (r.metric != 0) mnl_attr_put_u32(nlh, RTA_PRIORITY, r.metric);
  int err = talk(nlh);
  if (!add && err == ESRCH) return {};
  if (err != 0)
    return errnoError(add ? "adding route failed" : "removing route failed", err, r.destination);
  return {};
}

Result<void> ruleRequest(const Rule& r, bool add) {
  auto from = parseIpPrefix(r.from);
  if (!from) return from.error();
  MsgBuf mb;
  // EXCL: without it the kernel appends a duplicate rule on every call.
  nlmsghdr* nlh = mb.start(add ? RTM_NEWRULE : RTM_DELRULE, add ? NLM_F_CREATE | NLM_F_EXCL : 0);
  auto* frh = static_cast<fib_rule_hdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(fib_rule_hdr)));
  frh->family = static_cast<uint8_t>(from->address.family);
  frh->src_len = static_cast<uint8_t>(from->prefix_len);
  frh->table =
      r.table < 256 ? static_cast<uint8_t>(r.table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
  frh->action = FR_ACT_TO_TBL;
  if (from->prefix_len > 0) putAddr(nlh, FRA_SRC, from->network());
  mnl_attr_put_u32(nlh, FRA_TABLE, r.table);
  mnl_attr_put_u32(nlh, FRA_PRIORITY, r.priority);
  int err = talk(nlh);
  if (add && err == EEXIST) return {};
  if (!add && err == ENOENT) return {};
  if (err != 0) return errnoError(add ? "adding rule failed" : "removing rule failed", err, r.from);
  return {};
}

Result<void> addressRequest(const std::string& ifname, const std::string& cidr, bool add,
                            bool skip_dad) {
  auto p = parseIpPrefix(cidr);
  if (!p) return p.error();
  auto idx = ifIndex(ifname);
  if (!idx) {
    if (!add && idx.error().code == ErrorCode::kNotFound) return {};
    return idx.error();
  }
  MsgBuf mb;
  // REPLACE makes a repeated add succeed (and refresh flags) instead of EEXIST.
  nlmsghdr* nlh = mb.start(add ? RTM_NEWADDR : RTM_DELADDR, add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(p->address.family);
  ifa->ifa_prefixlen = static_cast<uint8_t>(p->prefix_len);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(*idx);
  if (p->address.family == AF_INET) putAddr(nlh, IFA_LOCAL, p->address);
  putAddr(nlh, IFA_ADDRESS, p->address);
  if (add && skip_dad && p->address.family == AF_INET6) {
    ifa->ifa_flags = IFA_F_NODAD;
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  }
  int err = talk(nlh);
  if (!add && err == EADDRNOTAVAIL) return {};
  if (err != 0)
    return errnoError(add ? "adding address failed" : "removing address failed", err, cidr);
  return {};
}

}  // namespace

Result<std::vector<InterfaceInfo>> listInterfaces() {
  std::map<int, InterfaceInfo> links;
  MsgBuf mb;
  nlmsghdr* nlh = mb.start(RTM_GETLINK, NLM_F_DUMP);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  int err = talk(nlh, [&](const nlmsghdr* m) {
    if (m->nlmsg_type != RTM_NEWLINK) return;
    const auto* im = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(m));
    InterfaceInfo info;
    info.index = im->ifi_index;
    info.up = (im->ifi_flags & IFF_UP) != 0;
    forEachAttr(m, sizeof(ifinfomsg), [&](const nlattr* a) {
      switch (mnl_attr_get_type(a)) {
        case IFLA_IFNAME:
          if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0) info.name = mnl_attr_get_str(a);
          break;
        case IFLA_MTU:
          if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
            info.mtu = static_cast<int>(mnl_attr_get_u32(a));
          break;
        case IFLA_ADDRESS: {
          auto len = mnl_attr_get_payload_len(a);
          const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(a));
          bool all_zero = std::all_of(p, p + len, [](uint8_t b) { return b == 0; });
          if (!all_zero) info.mac = macString(p, len);
          break;
        }
        default:
          break;
      }
    });
    links[info.index] = std::move(info);
  });
  if (err != 0) return errnoError("listing links failed", err);

  MsgBuf ab;
  nlh = ab.start(RTM_GETADDR, NLM_F_DUMP);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_UNSPEC;
  err = talk(nlh, [&](const nlmsghdr* m) {
    if (m->nlmsg_type != RTM_NEWADDR) return;
    const auto* am = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(m));
    size_t want = am->ifa_family == AF_INET ? 4 : am->ifa_family == AF_INET6 ? 16 : 0;
    if (want == 0) return;
    const void* local = nullptr;
    const void* address = nullptr;
    forEachAttr(m, sizeof(ifaddrmsg), [&](const nlattr* a) {
      if (mnl_attr_get_payload_len(a) != want) return;
      if (mnl_attr_get_type(a) == IFA_LOCAL) local = mnl_attr_get_payload(a);
      if (mnl_attr_get_type(a) == IFA_ADDRESS) address = mnl_attr_get_payload(a);
    });
    // On IPv4 point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
    const void* ours = local != nullptr ? local : address;
    if (ours == nullptr) return;
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(am->ifa_family, ours, text, sizeof text);
    auto it = links.find(static_cast<int>(am->ifa_index));
    if (it == links.end()) return;
    it->second.addresses.push_back({text, am->ifa_prefixlen});
  });
  if (err != 0) return errnoError("listing addresses failed", err);

  std::vector<InterfaceInfo> out;
  out.reserve(links.size());
  for (auto& [_, info] : links) out.push_back(std::move(info));
  return out;
}

Result<InterfaceInfo> findInterfaceByMac(const std::string& mac) {
  auto all = listInterfaces();
  if (!all) return all.error();
  std::string want = mac;
  std::transform(want.begin(), want.end(), want.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (auto& i : *all) {
    if (i.mac == want) return i;
  }
  return makeError(ErrorCode::kNotFound, "no interface with this MAC address", mac);
}

Result<InterfaceInfo> findInterfaceByAddress(const std::string& ip) {
  auto want = parseIpAddress(ip);
  if (!want) return want.error();
  auto all = listInterfaces();
  if (!all) return all.error();
  for (auto& i : *all) {
    for (const auto& a : i.addresses) {
      auto have = parseIpAddress(a.address);
      if (have && *have == *want) return i;
    }
  }
  return makeError(ErrorCode::kNotFound, "no interface holds this address", ip);
}

Result<void> setLinkUp(const std::string& ifname) {
  return changeLink(ifname, IFF_UP, IFF_UP, 0, "");
}
Result<void> setLinkDown(const std::string& ifname) { return changeLink(ifname, 0, IFF_UP, 0, ""); }

Result<void> setLinkMtu(const std::string& ifname, int mtu) {
  if (mtu < 68 || mtu > 65535)
    return makeError(ErrorCode::kInvalidArgument, "MTU out of range", ifname);
  return changeLink(ifname, 0, 0, mtu, "");
}

Result<void> renameLink(const std::string& ifname, const std::string& new_name) {
  if (new_name.empty() || new_name.size() >= IFNAMSIZ || new_name.find('/') != std::string::npos) {
    return makeError(ErrorCode::kInvalidArgument, "bad interface name", new_name);
  }
  if (ifname == new_name) return {};
  auto down = setLinkDown(ifname);
  if (!down) return down;
  return changeLink(ifname, 0, 0, 0, new_name);
}

Result<void> addAddress(const std::string& ifname, const std::string& cidr, bool skip_dad) {
  return addressRequest(ifname, cidr, true, skip_dad);
}

Result<void> removeAddress(const std::string& ifname, const std::string& cidr) {
  return addressRequest(ifname, cidr, false, false);
}

Result<void> addRoute(const Route& route) { return routeRequest(route, true); }
Result<void> removeRoute(const Route& route) { return routeRequest(route, false); }
Result<void> addRule(const Rule& rule) { return ruleRequest(rule, true); }
Result<void> removeRule(const Rule& rule) { return ruleRequest(rule, false); }

Result<void> applyVipNetwork(const VipNetwork& spec) {
  auto vip = parseIpAddress(spec.vip);
  if (!vip) return vip.error();
  auto subnet = parseIpPrefix(spec.subnet_cidr);
  if (!subnet) return subnet.error();
  if (!subnet->contains(*vip)) {
    return makeError(ErrorCode::kInvalidArgument, "VIP is not inside its subnet",
                     spec.vip + " " + spec.subnet_cidr);
  }
  const std::string host_len = vip->family == AF_INET ? "/32" : "/128";
  if (spec.add_vip_address) {
    auto r = addAddress(spec.interface, spec.vip + host_len, /*skip_dad=*/true);
    if (!r) return r;
  }
  auto r = setLinkUp(spec.interface);
  if (!r) return r;
  const std::string subnet_text = subnet->toString();
  // The subnet is on-link in both tables; table `spec.table` prefers the VIP as source.
  r = addRoute({subnet_text, "", spec.interface, "", kMainTable, false, 0});
  if (!r) return r;
  r = addRoute({subnet_text, "", spec.interface, spec.add_vip_address ? spec.vip : "", spec.table,
                false, 0});
  if (!r) return r;
  if (!spec.gateway.empty()) {
    for (uint32_t table : {kMainTable, spec.table}) {
      r = addRoute({"default", spec.gateway, spec.interface, "", table, /*onlink=*/true, 0});
      if (!r) return r;
    }
  }
  for (const auto& hr : spec.host_routes) {
    for (uint32_t table : {kMainTable, spec.table}) {
      r = addRoute({hr.destination, hr.nexthop, spec.interface, "", table, /*onlink=*/false, 0});
      if (!r) return r;
    }
  }
  r = addRule({spec.vip + host_len, spec.table, spec.rule_priority});
  if (!r) return r;
  LB_INFO("VIP network applied interface=%s vip=%s table=%u", spec.interface.c_str(),
          spec.vip.c_str(), spec.table);
  return {};
}

}  // namespace banyan::agent::system
