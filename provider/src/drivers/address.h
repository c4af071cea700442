// IP addresses, prefixes and allocation pools for the netns network and compute drivers.
// Pure value code: no I/O, no clock, no globals. IPv4 and IPv6 share one 128-bit
// representation so pool arithmetic is written once.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "banyan/common/result.h"

namespace banyan::provider::drivers {

// An IPv4 or IPv6 address. IPv4 keeps its 32 bits in the low word so that "next
// address" and "n-th address of a prefix" are the same arithmetic for both families.
class IpAddress {
 public:
  IpAddress() = default;
  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress fromParts(bool v6, uint64_t hi, uint64_t lo) { return IpAddress(v6, hi, lo); }

  bool isV6() const { return v6_; }
  int bits() const { return v6_ ? 128 : 32; }
  uint64_t hi() const { return hi_; }
  uint64_t lo() const { return lo_; }
  std::string toString() const;
  // this + n (wraps are the caller's problem; pools never get near the top).
  IpAddress plus(uint64_t n) const;
  // Number of addresses from `from` to this (this >= from, same family, < 2^64 apart).
  uint64_t distanceFrom(const IpAddress& from) const;

  auto operator<=>(const IpAddress&) const = default;

 private:
  IpAddress(bool v6, uint64_t hi, uint64_t lo) : v6_(v6), hi_(hi), lo_(lo) {}
  bool v6_ = false;
  uint64_t hi_ = 0;
  uint64_t lo_ = 0;
};

// A prefix such as 203.0.113.0/24 or 2001:db8:0:1::/64. Host bits must be zero.
struct Cidr {
  IpAddress network;
  int prefix_length = 0;

  static common::Result<Cidr> parse(std::string_view text);
  std::string toString() const;
  bool contains(const IpAddress& address) const;
  bool overlaps(const Cidr& other) const;
  // The last address of the prefix (the IPv4 broadcast address).
  IpAddress last() const;
  // The first usable address: the host side of the bridge (".1"), which the netns
  // drivers use as the subnet's gateway.
  IpAddress gateway() const { return network.plus(1); }
};

// The addresses a subnet hands out: gateway+1 up to the last address before the IPv4
// broadcast (for IPv6 the pool is capped at kMaxPoolSize addresses: a /64 is not a
// list anyone wants to scan).
struct AllocationPool {
  IpAddress start;
  IpAddress end;  // inclusive

  static constexpr uint64_t kMaxPoolSize = 65536;
  static common::Result<AllocationPool> forCidr(const Cidr& cidr);
  bool contains(const IpAddress& address) const { return start <= address && address <= end; }
  uint64_t size() const { return end.distanceFrom(start) + 1; }
};

}  // namespace banyan::provider::drivers
