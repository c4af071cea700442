#include "drivers/host_net.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <mutex>
#include <random>

#include "drivers/netlink.h"
#include "drivers/process.h"

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::Result;

bool linkExists(const std::string& name) { return if_nametoindex(name.c_str()) != 0; }

bool namespaceExists(const std::string& name) {
  struct stat st {};
  return stat(("/run/netns/" + name).c_str(), &st) == 0;
}

bool validNamespaceName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<void> checkNoOverlap(const Cidr& cidr, const std::string& bridge) {
  ifaddrs* addrs = nullptr;
  if (getifaddrs(&addrs) != 0) return makeError(ErrorCode::kUnavailable, "getifaddrs failed");
  std::string conflict;
  for (ifaddrs* a = addrs; a != nullptr && conflict.empty(); a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_netmask == nullptr || bridge == a->ifa_name) continue;
    int family = a->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    IpAddress addr, mask;
    char text[INET6_ADDRSTRLEN];
    if (family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text,
                sizeof(text));
      addr = *IpAddress::parse(text);
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_netmask)->sin_addr, text,
                sizeof(text));
      mask = *IpAddress::parse(text);
    } else {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, text,
                sizeof(text));
      addr = *IpAddress::parse(text);
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ifa_netmask)->sin6_addr, text,
                sizeof(text));
      mask = *IpAddress::parse(text);
    }
    int len = __builtin_popcountll(mask.hi()) + __builtin_popcountll(mask.lo());
    Cidr theirs{IpAddress::fromParts(addr.isV6(), addr.hi() & mask.hi(), addr.lo() & mask.lo()),
                len};
    if (theirs.overlaps(cidr)) {
      conflict = std::string(a->ifa_name) + " has " + addr.toString() + "/" + std::to_string(len);
    }
  }
  freeifaddrs(addrs);
  if (!conflict.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "subnet " + cidr.toString() + " overlaps a host network (" + conflict +
                         "); choose another range for bridge " + bridge);
  }
  return {};
}

Result<void> ensureBridge(const std::string& bridge, const Cidr& cidr, int mtu, bool& created) {
  created = false;
  if (auto ok = checkNoOverlap(cidr, bridge); !ok) return ok;
  std::string gw = cidr.gateway().toString() + "/" + std::to_string(cidr.prefix_length);
  std::string batch;
  if (!linkExists(bridge)) {
    batch += "link add name " + bridge + " mtu " + std::to_string(mtu) +
             " type bridge forward_delay 0 stp_state 0\n";
    created = true;
  }
  // replace: idempotent when the address is already there (a restarted provider).
  batch +=
      "address replace " + gw + " dev " + bridge + (cidr.network.isV6() ? " nodad" : "") + "\n";
  batch += "link set " + bridge + " up\n";
  auto r = runChecked({"ip", "-batch", "-"}, batch);
  if (!r) {
    // Another thread or process may have created the same bridge an instant earlier.
    if (created && linkExists(bridge)) {
      created = false;
      auto again = runChecked({"ip", "-batch", "-"}, "address replace " + gw + " dev " + bridge +
                                                         (cidr.network.isV6() ? " nodad" : "") +
                                                         "\nlink set " + bridge + " up\n");
      if (again) return {};
    }
    return r.error();
  }
  return {};
}

Result<void> deleteLink(const std::string& name) {
  if (!linkExists(name)) return {};
  auto nl = RtNetlink::open();
  if (!nl) return nl.error();
  auto r = (*nl)->deleteLink(name);
  // Someone else (the namespace going away) may have removed it meanwhile.
  if (!r && r.error().code != ErrorCode::kNotFound && linkExists(name)) return r;
  return {};
}

Result<void> addNamespace(const std::string& name) { return createNamedNamespace(name); }

Result<void> deleteNamespace(const std::string& name) { return deleteNamedNamespace(name); }

Result<void> deleteNamespaceLinks(const std::string& name) {
  return inNamespace(name, [&]() -> Result<void> {
    auto nl = RtNetlink::open();
    if (!nl) return nl.error();
    struct if_nameindex* links = if_nameindex();
    if (links == nullptr) return makeError(ErrorCode::kUnavailable, "if_nameindex failed", name);
    std::vector<std::string> names;
    for (struct if_nameindex* l = links; l->if_index != 0; ++l) {
      if (std::string(l->if_name) != "lo") names.emplace_back(l->if_name);
    }
    if_freenameindex(links);
    Result<void> first;
    for (const auto& n : names) {
      auto r = (*nl)->deleteLink(n);
      if (!r && r.error().code != ErrorCode::kNotFound && first.ok()) first = r;
    }
    return first;
  });
}

namespace {
std::mutex g_rng_mu;
std::mt19937_64& rng() {
  // Seeded once from the kernel; names only need to be unlikely to collide, and every
  // user retries on a collision.
  static std::mt19937_64 engine = [] {
    std::random_device rd;
    std::seed_seq seed{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seed);
  }();
  return engine;
}
}  // namespace

std::string randomHex(int n) {
  static const char kHex[] = "0123456789abcdef";
  std::lock_guard<std::mutex> lock(g_rng_mu);
  std::string out;
  for (int i = 0; i < n; ++i) out += kHex[rng()() & 0xf];
  return out;
}

std::string randomUuid() {
  std::string h = randomHex(32);
  h[12] = '4';                        // version 4
  h[16] = "89ab"[(h[16] - '0') & 3];  // RFC 4122 variant
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

std::string randomMac() {
  std::string hex = randomHex(10);
  std::string mac = "02";
  for (int i = 0; i < 10; i += 2) mac += ":" + hex.substr(static_cast<size_t>(i), 2);
  return mac;
}

void deleteLinks(const std::vector<std::string>& names, std::vector<std::string>& left, common::Result<void>& first) {
  for (const auto& name : names) {
    if (auto ok = deleteLink(name); !ok) {
      if (first.ok()) first = ok;
      left.push_back(name);
    }
  }
}

}  // namespace banyan::provider::drivers
