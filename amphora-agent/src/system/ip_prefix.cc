#include "system/ip_prefix.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>

namespace banyan::agent::system {

using common::ErrorCode;
using common::makeError;
using common::Result;

static_assert(AF_INET == 2, "IpAddress::size() relies on AF_INET == 2");

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family != AF_INET && family != AF_INET6) return "";
  inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

IpAddress IpPrefix::network() const {
  IpAddress n = address;
  for (size_t i = 0; i < n.size(); ++i) {
    int bits_here = prefix_len - static_cast<int>(i * 8);
    if (bits_here >= 8) continue;
    uint8_t mask = bits_here <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits_here));
    n.bytes[i] &= mask;
  }
  return n;
}

std::string IpPrefix::toString() const {
  return network().toString() + "/" + std::to_string(prefix_len);
}

bool IpPrefix::contains(const IpAddress& a) const {
  if (a.family != address.family) return false;
  IpPrefix other{a, prefix_len};
  return other.network() == network();
}

Result<IpAddress> parseIpAddress(std::string_view text) {
  // inet_pton needs a NUL-terminated string; bound the copy so hostile input
  // cannot make us allocate much.
  if (text.empty() || text.size() > 45) {
    return makeError(ErrorCode::kInvalidArgument, "not an IP address",
                     std::string(text.substr(0, 64)));
  }
  std::string s(text);
  IpAddress a;
  if (s.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) {
      return makeError(ErrorCode::kInvalidArgument, "not an IPv6 address", s);
    }
    a.family = AF_INET6;
  } else {
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) {
      return makeError(ErrorCode::kInvalidArgument, "not an IPv4 address", s);
    }
    a.family = AF_INET;
  }
  return a;
}

Result<IpPrefix> parseIpPrefix(std::string_view text) {
  size_t slash = text.find('/');
  auto addr = parseIpAddress(text.substr(0, slash));
  if (!addr) return addr.error();
  IpPrefix p{addr.value(), addr->maxPrefix()};
  if (slash == std::string_view::npos) return p;
  std::string_view len_text = text.substr(slash + 1);
  int len = -1;
  auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (len_text.empty() || len_text.size() > 3 || ec != std::errc() ||
      end != len_text.data() + len_text.size() || len < 0 || len > p.address.maxPrefix()) {
    return makeError(ErrorCode::kInvalidArgument, "bad prefix length",
                     std::string(text.substr(0, 64)));
  }
  p.prefix_len = len;
  return p;
}

}  // namespace banyan::agent::system
