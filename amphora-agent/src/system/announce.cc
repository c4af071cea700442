#include "system/announce.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <vector>

#include "system/ip_prefix.h"

namespace banyan::agent::system {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

common::Error sysError(const char* what, const std::string& ctx) {
  return makeError(ErrorCode::kUnavailable, std::string(what) + ": " + strerror(errno), ctx);
}

// RFC 5227 section 3: an ARP request whose sender and target protocol
// addresses are both the announced address, broadcast.
Result<void> gratuitousArp(int ifindex, const std::string& ifname, const IpAddress& ip) {
  Fd s{socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP))};
  if (s.fd < 0) return sysError("packet socket failed", ifname);
  ifreq ifr{};
  memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
  if (ioctl(s.fd, SIOCGIFHWADDR, &ifr) != 0)
    return sysError("reading the MAC address failed", ifname);
  std::array<uint8_t, 6> mac;
  memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, 6);

  std::vector<uint8_t> f;
  auto put = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    f.insert(f.end(), b, b + n);
  };
  const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  const uint16_t ethertype = htons(ETH_P_ARP), htype = htons(1), ptype = htons(ETH_P_IP),
                 op = htons(1);
  const uint8_t hlen = 6, plen = 4;
  put(bcast, 6);
  put(mac.data(), 6);
  put(&ethertype, 2);
  put(&htype, 2);
  put(&ptype, 2);
  put(&hlen, 1);
  put(&plen, 1);
  put(&op, 2);
  put(mac.data(), 6);
  put(ip.bytes.data(), 4);
  put(bcast, 6);
  put(ip.bytes.data(), 4);

  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  memcpy(to.sll_addr, bcast, 6);
  if (sendto(s.fd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
    return sysError("sending gratuitous ARP failed", ifname);
  }
  return {};
}

// RFC 4861 section 7.2.6: an unsolicited neighbour advertisement to all-nodes,
// Override set, carrying the target link-layer address option. The kernel
// fills in the ICMPv6 checksum on raw ICMPv6 sockets.
Result<void> unsolicitedNa(int ifindex, const std::string& ifname, const IpAddress& ip) {
  Fd s{socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6)};
  if (s.fd < 0) return sysError("ICMPv6 socket failed", ifname);
  ifreq ifr{};
  memcpy(ifr.ifr_name, ifname.c_str(), ifname.size());
  if (ioctl(s.fd, SIOCGIFHWADDR, &ifr) != 0)
    return sysError("reading the MAC address failed", ifname);
  int hops = 255;  // receivers drop ND messages with any other hop limit
  int one = 1;
  unsigned idx = static_cast<unsigned>(ifindex);
  if (setsockopt(s.fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) != 0 ||
      setsockopt(s.fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx) != 0 ||
      setsockopt(s.fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one) != 0) {
    return sysError("ICMPv6 socket options failed", ifname);
  }
  sockaddr_in6 from{};
  from.sin6_family = AF_INET6;
  memcpy(&from.sin6_addr, ip.bytes.data(), 16);
  if (bind(s.fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
    return sysError("binding the announced address failed", ip.toString());
  }
  struct {
    nd_neighbor_advert na;
    nd_opt_hdr opt;
    uint8_t mac[6];
  } __attribute__((packed)) msg{};
  msg.na.nd_na_type = ND_NEIGHBOR_ADVERT;
  msg.na.nd_na_code = 0;
  msg.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
  memcpy(&msg.na.nd_na_target, ip.bytes.data(), 16);
  msg.opt.nd_opt_type = ND_OPT_TARGET_LINKADDR;
  msg.opt.nd_opt_len = 1;  // in units of 8 bytes
  memcpy(msg.mac, ifr.ifr_hwaddr.sa_data, 6);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_scope_id = idx;
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  if (sendto(s.fd, &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
    return sysError("sending neighbour advertisement failed", ifname);
  }
  return {};
}

}  // namespace

Result<void> announceAddress(const std::string& ifname, const std::string& ip) {
  auto addr = parseIpAddress(ip);
  if (!addr) return addr.error();
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
    return makeError(ErrorCode::kInvalidArgument, "bad interface name", ifname);
  }
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) return makeError(ErrorCode::kNotFound, "no such interface", ifname);
  if (addr->family == AF_INET) return gratuitousArp(static_cast<int>(idx), ifname, *addr);
  return unsolicitedNa(static_cast<int>(idx), ifname, *addr);
}

}  // namespace banyan::agent::system
