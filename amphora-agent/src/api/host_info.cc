#include "api/host_info.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace banyan::agent::api {

namespace {

int prefixLength(const sockaddr* mask) {
  if (!mask) return 0;
  const unsigned char* bytes;
  size_t len;
  if (mask->sa_family == AF_INET) {
    bytes = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    len = 4;
  } else {
    bytes = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    len = 16;
  }
  int bits = 0;
  for (size_t i = 0; i < len; ++i) bits += __builtin_popcount(bytes[i]);
  return bits;
}

uint64_t readCounter(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  in >> v;
  return v;
}

}  // namespace

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

HostInfo collectHostInfo(const std::string& disk_path) {
  HostInfo info;
  info.hostname = hostName();
  std::map<std::string, InterfaceInfo> by_name;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_name) continue;
      auto& entry = by_name[i->ifa_name];
      entry.name = i->ifa_name;
      if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)) continue;
      char text[INET6_ADDRSTRLEN] = {};
      const void* src = i->ifa_addr->sa_family == AF_INET
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr);
      if (!inet_ntop(i->ifa_addr->sa_family, src, text, sizeof text)) continue;
      entry.addresses.push_back(std::string(text) + "/" + std::to_string(prefixLength(i->ifa_netmask)));
    }
    freeifaddrs(list);
  }
  for (auto& [name, entry] : by_name) {
    entry.rx_bytes = readCounter("/sys/class/net/" + name + "/statistics/rx_bytes");
    entry.tx_bytes = readCounter("/sys/class/net/" + name + "/statistics/tx_bytes");
    info.interfaces.push_back(std::move(entry));
  }
  {
    std::ifstream in("/proc/loadavg");
    in >> info.load[0] >> info.load[1] >> info.load[2];
  }
  {
    std::ifstream in("/proc/meminfo");
    std::string line;
    const std::pair<const char*, const char*> wanted[] = {{"MemTotal:", "total"},     {"MemFree:", "free"},
                                                          {"MemAvailable:", "available"}, {"Buffers:", "buffers"},
                                                          {"Cached:", "cached"}};
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string key;
      uint64_t value = 0;
      ls >> key >> value;
      for (const auto& [proc, name] : wanted) {
        if (key == proc) info.memory_kb.emplace_back(name, value);
      }
    }
  }
  struct statvfs vfs;
  if (statvfs(disk_path.c_str(), &vfs) == 0) {
    info.disk_total = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    info.disk_available = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    info.disk_used = info.disk_total - static_cast<uint64_t>(vfs.f_bfree) * vfs.f_frsize;
  }
  return info;
}

}  // namespace banyan::agent::api
