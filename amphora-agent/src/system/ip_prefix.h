// IP addresses and CIDR prefixes as bytes, parsed strictly. Every address that
// reaches the kernel (netlink, nftables, keepalived.conf) goes through here first,
// so a malformed API body is rejected before any system state is touched.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "banyan/common/result.h"

namespace banyan::agent::system {

struct IpAddress {
  int family = 0;                   // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4
  size_t size() const { return family == 2 /* AF_INET */ ? 4 : 16; }
  int maxPrefix() const { return static_cast<int>(size() * 8); }
  std::string toString() const;
  bool operator==(const IpAddress&) const = default;
};

struct IpPrefix {
  IpAddress address;  // as written (host bits may be set, e.g. "192.0.2.5/24")
  int prefix_len = 0;
  // The network address: host bits cleared.
  IpAddress network() const;
  std::string toString() const;  // "network/len"
  bool contains(const IpAddress& a) const;
};

// "192.0.2.1", "2001:db8::1". No scope ids, no brackets, no surrounding spaces.
common::Result<IpAddress> parseIpAddress(std::string_view text);
// "192.0.2.0/24", "2001:db8::/32"; a bare address is a host prefix (/32, /128).
common::Result<IpPrefix> parseIpPrefix(std::string_view text);

}  // namespace banyan::agent::system
