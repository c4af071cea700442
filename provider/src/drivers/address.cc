#include "drivers/address.h"

#include <arpa/inet.h>

#include <cstring>

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

// Mask of the top `prefix` bits of a 64-bit word (prefix may be <= 0 or >= 64).
uint64_t topBits(int prefix) {
  if (prefix <= 0) return 0;
  if (prefix >= 64) return ~uint64_t{0};
  return ~uint64_t{0} << (64 - prefix);
}

// Host-part masks for a prefix, as (hi, lo) words of the 128-bit value.
void hostMask(bool v6, int prefix_length, uint64_t& hi, uint64_t& lo) {
  if (!v6) {
    hi = 0;
    lo = prefix_length >= 32 ? 0 : (uint64_t{0xffffffff} >> prefix_length);
    return;
  }
  hi = ~topBits(prefix_length);
  lo = ~topBits(prefix_length - 64);
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  if (text.find('\0') != std::string_view::npos) return std::nullopt;  // inet_pton would stop there
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    return IpAddress(false, 0, ntohl(v4.s_addr));
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; ++i) hi = (hi << 8) | v6.s6_addr[i];
    for (int i = 8; i < 16; ++i) lo = (lo << 8) | v6.s6_addr[i];
    return IpAddress(true, hi, lo);
  }
  return std::nullopt;
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN];
  if (!v6_) {
    in_addr v4{};
    v4.s_addr = htonl(static_cast<uint32_t>(lo_));
    inet_ntop(AF_INET, &v4, buf, sizeof(buf));
    return buf;
  }
  in6_addr v6{};
  for (int i = 0; i < 8; ++i) v6.s6_addr[i] = static_cast<uint8_t>(hi_ >> (56 - 8 * i));
  for (int i = 0; i < 8; ++i) v6.s6_addr[8 + i] = static_cast<uint8_t>(lo_ >> (56 - 8 * i));
  inet_ntop(AF_INET6, &v6, buf, sizeof(buf));
  return buf;
}

IpAddress IpAddress::plus(uint64_t n) const {
  uint64_t lo = lo_ + n;
  uint64_t hi = hi_ + (lo < lo_ ? 1 : 0);
  if (!v6_) return IpAddress(false, 0, lo & 0xffffffff);
  return IpAddress(true, hi, lo);
}

uint64_t IpAddress::distanceFrom(const IpAddress& from) const { return lo_ - from.lo_; }

Result<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return makeError(ErrorCode::kInvalidArgument, "a CIDR needs a prefix length (a.b.c.d/n)",
                     std::string(text));
  }
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) {
    return makeError(ErrorCode::kInvalidArgument, "not an IP address", std::string(text));
  }
  std::string_view len_text = text.substr(slash + 1);
  if (len_text.empty() || len_text.size() > 3) {
    return makeError(ErrorCode::kInvalidArgument, "bad prefix length", std::string(text));
  }
  int len = 0;
  for (char c : len_text) {
    if (c < '0' || c > '9') {
      return makeError(ErrorCode::kInvalidArgument, "bad prefix length", std::string(text));
    }
    len = len * 10 + (c - '0');
  }
  if (len > address->bits()) {
    return makeError(ErrorCode::kInvalidArgument, "prefix length too long", std::string(text));
  }
  Cidr cidr{*address, len};
  uint64_t mhi = 0, mlo = 0;
  hostMask(address->isV6(), len, mhi, mlo);
  if ((address->hi() & mhi) != 0 || (address->lo() & mlo) != 0) {
    return makeError(ErrorCode::kInvalidArgument, "host bits set in CIDR", std::string(text));
  }
  return cidr;
}

std::string Cidr::toString() const {
  return network.toString() + "/" + std::to_string(prefix_length);
}

bool Cidr::contains(const IpAddress& address) const {
  if (address.isV6() != network.isV6()) return false;
  uint64_t mhi = 0, mlo = 0;
  hostMask(network.isV6(), prefix_length, mhi, mlo);
  return (address.hi() & ~mhi) == network.hi() && (address.lo() & ~mlo) == network.lo();
}

bool Cidr::overlaps(const Cidr& other) const {
  if (network.isV6() != other.network.isV6()) return false;
  // Two prefixes overlap exactly when the shorter one contains the other's network.
  return prefix_length <= other.prefix_length ? contains(other.network) : other.contains(network);
}

IpAddress Cidr::last() const {
  uint64_t mhi = 0, mlo = 0;
  hostMask(network.isV6(), prefix_length, mhi, mlo);
  return IpAddress::fromParts(network.isV6(), network.hi() | mhi, network.lo() | mlo);
}

Result<AllocationPool> AllocationPool::forCidr(const Cidr& cidr) {
  // IPv4 needs network, gateway, one address and broadcast: at most /30.
  int max_len = cidr.network.isV6() ? 126 : 30;
  if (cidr.prefix_length > max_len) {
    return makeError(ErrorCode::kInvalidArgument, "subnet too small to allocate from",
                     cidr.toString());
  }
  AllocationPool pool;
  pool.start = cidr.network.plus(2);
  IpAddress last = cidr.last();
  if (!cidr.network.isV6()) {
    pool.end = IpAddress::fromParts(false, 0, last.lo() - 1);  // skip the broadcast address
  } else {
    uint64_t host_bits = 128 - static_cast<uint64_t>(cidr.prefix_length);
    uint64_t span = host_bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << host_bits) - 1;
    pool.end = span - 1 >= kMaxPoolSize ? pool.start.plus(kMaxPoolSize - 1) : last;
  }
  return pool;
}

}  // namespace banyan::provider::drivers
