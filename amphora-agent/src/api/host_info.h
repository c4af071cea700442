// Facts about the amphora for GET /1.0/details: interfaces and their addresses,
// load, memory, disk. Read from getifaddrs, /proc and statvfs; read-only.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace banyan::agent::api {

struct InterfaceInfo {
  std::string name;
  std::vector<std::string> addresses;  // "192.0.2.5/24", "2001:db8::5/64"
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
};

struct HostInfo {
  std::string hostname;
  std::vector<InterfaceInfo> interfaces;
  double load[3] = {0, 0, 0};
  std::vector<std::pair<std::string, uint64_t>> memory_kb;  // total, free, available, buffers, cached
  uint64_t disk_total = 0, disk_used = 0, disk_available = 0;  // bytes, of the state_dir file system
};

std::string hostName();
HostInfo collectHostInfo(const std::string& disk_path);

}  // namespace banyan::agent::api
