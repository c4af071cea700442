#include "drivers/netlink.h"

// clang-format off
// net/if.h before the linux headers: the two declare the IFF_* flags differently.
#include <net/if.h>
// clang-format on

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

constexpr size_t kBufferSize = 8192;  // MNL_SOCKET_BUFFER_SIZE for our small requests

bool parseMac(const std::string& text, uint8_t out[6]) {
  unsigned v[6];
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4],
                  &v[5]) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}

// The kernel's extended-ack text (NLMSGERR_ATTR_MSG), when it sent one.
std::string extAckMessage(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  size_t offset = sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  std::string text;
  // mnl_attr_for_each, spelled out: its void* assignment is not C++.
  for (auto* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, offset));
       mnl_attr_ok(attr,
                   static_cast<int>(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                                    reinterpret_cast<const char*>(attr)));
       attr = mnl_attr_next(attr)) {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
        mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
      text = mnl_attr_get_str(attr);
    }
  }
  return text;
}

}  // namespace

Result<std::unique_ptr<RtNetlink>> RtNetlink::open() {
  mnl_socket* sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (sock == nullptr)
    return makeError(ErrorCode::kUnavailable,
                     std::string("netlink socket: ") + std::strerror(errno));
  if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(sock);
    return makeError(ErrorCode::kUnavailable, std::string("netlink bind: ") + std::strerror(err));
  }
  int one = 1;
  // Best effort: older kernels have no extended ACKs; errors then carry errno only.
  (void)mnl_socket_setsockopt(sock, NETLINK_EXT_ACK, &one, sizeof(one));
  (void)mnl_socket_setsockopt(sock, NETLINK_CAP_ACK, &one, sizeof(one));
  return std::unique_ptr<RtNetlink>(new RtNetlink(sock, mnl_socket_get_portid(sock)));
}

RtNetlink::~RtNetlink() { mnl_socket_close(socket_); }

Result<void> RtNetlink::transact(void* message, const std::string& what) {
  auto* nlh = static_cast<nlmsghdr*>(message);
  nlh->nlmsg_seq = seq_++;
  nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) {
    return makeError(ErrorCode::kUnavailable, what + ": netlink send: " + std::strerror(errno));
  }
  char buf[kBufferSize];
  while (true) {
    ssize_t n = mnl_socket_recvfrom(socket_, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return makeError(ErrorCode::kUnavailable,
                       what + ": netlink receive: " + std::strerror(errno));
    }
    auto* reply = reinterpret_cast<nlmsghdr*>(buf);
    int len = static_cast<int>(n);
    for (; mnl_nlmsg_ok(reply, len); reply = mnl_nlmsg_next(reply, &len)) {
      if (reply->nlmsg_seq != nlh->nlmsg_seq || reply->nlmsg_type != NLMSG_ERROR) continue;
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(reply));
      if (err->error == 0) return {};
      std::string text = what + ": " + std::strerror(-err->error);
      std::string ack = extAckMessage(reply);
      if (!ack.empty()) text += " (" + ack + ")";
      ErrorCode code = -err->error == EEXIST   ? ErrorCode::kConflict
                       : -err->error == ENODEV ? ErrorCode::kNotFound
                                               : ErrorCode::kUnavailable;
      return makeError(code, text);
    }
  }
}

Result<int> RtNetlink::ifindex(const std::string& ifname) {
  // if_nametoindex asks the kernel through a socket of this thread's namespace.
  unsigned index = if_nametoindex(ifname.c_str());
  if (index == 0) return makeError(ErrorCode::kNotFound, "no such interface", ifname);
  return static_cast<int>(index);
}

Result<void> RtNetlink::addVeth(const VethSpec& spec) {
  char buf[kBufferSize];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, spec.name.c_str());
  mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(spec.mtu));
  if (spec.master_ifindex > 0)
    mnl_attr_put_u32(nlh, IFLA_MASTER, static_cast<uint32_t>(spec.master_ifindex));
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  // The peer's attributes follow an ifinfomsg of its own (veth_newlink parses them so).
  auto* peer_ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  peer_ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, spec.peer_name.c_str());
  mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(spec.mtu));
  if (!spec.peer_mac.empty()) {
    uint8_t mac[6];
    if (!parseMac(spec.peer_mac, mac))
      return makeError(ErrorCode::kInvalidArgument, "bad MAC address", spec.peer_mac);
    mnl_attr_put(nlh, IFLA_ADDRESS, sizeof(mac), mac);
  }
  if (spec.peer_netns_fd >= 0)
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(spec.peer_netns_fd));
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  return transact(nlh, "create veth " + spec.name + " (peer " + spec.peer_name + ")");
}

Result<void> RtNetlink::setUp(const std::string& ifname) {
  auto index = ifindex(ifname);
  if (!index) return index.error();
  char buf[kBufferSize];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = *index;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  return transact(nlh, "set " + ifname + " up");
}

Result<void> RtNetlink::addAddress(const std::string& ifname, const IpAddress& address,
                                   int prefix_length) {
  auto index = ifindex(ifname);
  if (!index) return index.error();
  char buf[kBufferSize];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWADDR;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = address.isV6() ? AF_INET6 : AF_INET;
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix_length);
  ifa->ifa_flags = address.isV6() ? IFA_F_NODAD : 0;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(*index);
  uint8_t bytes[16];
  size_t len = address.isV6() ? 16 : 4;
  if (address.isV6()) {
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(address.hi() >> (56 - 8 * i));
    for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<uint8_t>(address.lo() >> (56 - 8 * i));
  } else {
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<uint8_t>(address.lo() >> (24 - 8 * i));
  }
  mnl_attr_put(nlh, IFA_LOCAL, len, bytes);
  mnl_attr_put(nlh, IFA_ADDRESS, len, bytes);
  return transact(
      nlh, "add " + address.toString() + "/" + std::to_string(prefix_length) + " to " + ifname);
}

Result<void> RtNetlink::deleteLink(const std::string& ifname) {
  auto index = ifindex(ifname);
  if (!index) return index.error();
  char buf[kBufferSize];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_DELLINK;
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = *index;
  return transact(nlh, "delete " + ifname);
}

Result<void> inNamespace(const std::string& netns, const std::function<Result<void>()>& fn) {
  std::string path = "/run/netns/" + netns;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return makeError(ErrorCode::kNotFound, std::string("open: ") + std::strerror(errno), path);
  Result<void> result;
  // A thread of its own: setns() changes only the calling thread, and this one ends
  // right after, so no thread of the provider is ever left in an amphora's namespace.
  std::thread worker([&] {
    if (setns(fd, CLONE_NEWNET) != 0) {
      result =
          makeError(ErrorCode::kUnavailable, std::string("setns: ") + std::strerror(errno), path);
      return;
    }
    result = fn();
  });
  worker.join();
  close(fd);
  return result;
}

namespace {

std::mutex g_namespace_mu;
bool g_run_netns_ready = false;

// /run/netns must be a shared mount point so namespaces bound there are visible in
// every mount namespace (ip-netns(8) sets it up the same way).
Result<void> prepareRunNetns() {
  if (g_run_netns_ready) return {};
  if (mkdir("/run/netns", 0755) != 0 && errno != EEXIST) {
    return makeError(ErrorCode::kUnavailable,
                     std::string("mkdir /run/netns: ") + std::strerror(errno));
  }
  if (mount("", "/run/netns", "none", MS_SHARED | MS_REC, nullptr) != 0) {
    if (errno != EINVAL) {
      return makeError(ErrorCode::kUnavailable,
                       std::string("mount --make-shared /run/netns: ") + std::strerror(errno));
    }
    // Not a mount point yet: bind it onto itself, then make it shared.
    if (mount("/run/netns", "/run/netns", "none", MS_BIND | MS_REC, nullptr) != 0 ||
        mount("", "/run/netns", "none", MS_SHARED | MS_REC, nullptr) != 0) {
      return makeError(ErrorCode::kUnavailable,
                       std::string("mount /run/netns: ") + std::strerror(errno));
    }
  }
  g_run_netns_ready = true;
  return {};
}

}  // namespace

Result<void> createNamedNamespace(const std::string& name) {
  {
    // Only the one-time mount setup needs serializing; namespaces are made in parallel.
    std::lock_guard<std::mutex> lock(g_namespace_mu);
    if (auto ok = prepareRunNetns(); !ok) return ok;
  }
  std::string path = "/run/netns/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == EEXIST) return makeError(ErrorCode::kConflict, "namespace exists", name);
    return makeError(ErrorCode::kUnavailable,
                     std::string("create ") + path + ": " + std::strerror(errno));
  }
  close(fd);
  Result<void> result;
  std::thread worker([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      result = makeError(ErrorCode::kUnavailable,
                         std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno));
      return;
    }
    std::string self = "/proc/self/task/" + std::to_string(syscall(SYS_gettid)) + "/ns/net";
    if (mount(self.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) {
      result = makeError(ErrorCode::kUnavailable,
                         std::string("bind ") + self + " to " + path + ": " + std::strerror(errno));
    }
  });
  worker.join();
  if (!result) unlink(path.c_str());
  return result;
}

Result<void> deleteNamedNamespace(const std::string& name) {
  std::string path = "/run/netns/" + name;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {};
  if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
    return makeError(ErrorCode::kUnavailable,
                     std::string("umount ") + path + ": " + std::strerror(errno));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return makeError(ErrorCode::kUnavailable,
                     std::string("unlink ") + path + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace banyan::provider::drivers
