// IPv4/IPv6 prefixes ("192.0.2.0/24", "2001:db8::/32", or a bare address for
// one host), matched against socket addresses. IPv4-mapped IPv6 addresses
// match IPv4 prefixes. Pure.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string_view>

namespace banyan::dp::net {

struct Cidr {
  int family = 0;  // AF_INET or AF_INET6
  uint8_t address[16] = {};
  uint8_t prefix = 0;  // bits
};

// False for anything but a valid address with an optional /N in range; host
// bits past the prefix must be zero ("192.0.2.1/24" is refused as ambiguous).
bool parseCidr(std::string_view text, Cidr& out);
bool cidrContains(const Cidr& cidr, const sockaddr_storage& addr);

}  // namespace banyan::dp::net
