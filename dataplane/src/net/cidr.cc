#include "net/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

namespace banyan::dp::net {
namespace {

bool prefixMatches(const uint8_t* a, const uint8_t* b, unsigned bits) {
  unsigned whole = bits / 8;
  if (memcmp(a, b, whole) != 0) return false;
  unsigned rest = bits % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

bool parseCidr(std::string_view text, Cidr& out) {
  out = Cidr{};
  std::string_view addr = text;
  int prefix = -1;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return false;
    prefix = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      prefix = prefix * 10 + (c - '0');
    }
    if (digits.size() > 1 && digits[0] == '0') return false;
  }
  char buf[INET6_ADDRSTRLEN + 1];
  if (addr.empty() || addr.size() >= sizeof buf) return false;
  memcpy(buf, addr.data(), addr.size());
  buf[addr.size()] = '\0';
  if (inet_pton(AF_INET, buf, out.address) == 1) {
    out.family = AF_INET;
    if (prefix < 0) prefix = 32;
    if (prefix > 32) return false;
  } else if (inet_pton(AF_INET6, buf, out.address) == 1) {
    out.family = AF_INET6;
    if (prefix < 0) prefix = 128;
    if (prefix > 128) return false;
  } else {
    return false;
  }
  out.prefix = static_cast<uint8_t>(prefix);
  // Host bits set past the prefix usually mean a typo in the length.
  size_t bytes = out.family == AF_INET ? 4 : 16;
  for (size_t bit = out.prefix; bit < bytes * 8; ++bit)
    if (out.address[bit / 8] & (0x80 >> (bit % 8))) return false;
  return true;
}

bool cidrContains(const Cidr& cidr, const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    if (cidr.family != AF_INET) return false;
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(addr);
    return prefixMatches(reinterpret_cast<const uint8_t*>(&v4.sin_addr), cidr.address, cidr.prefix);
  }
  if (addr.ss_family != AF_INET6) return false;
  const auto& v6 = reinterpret_cast<const sockaddr_in6&>(addr);
  const uint8_t* bytes = v6.sin6_addr.s6_addr;
  if (cidr.family == AF_INET6) return prefixMatches(bytes, cidr.address, cidr.prefix);
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(bytes, kMapped, 12) == 0 && prefixMatches(bytes + 12, cidr.address, cidr.prefix);
}

}  // namespace banyan::dp::net
