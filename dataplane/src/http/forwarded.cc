// Client-address header values; see forwarded.h.
#include "http/forwarded.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace banyan::dp::http {

namespace {

enum class Family { V4, V6, Other };

// Writes the textual address into `buf` and says which family it ended up as
// (an IPv4-mapped IPv6 address is reported, and printed, as IPv4: clients on a
// dual-stack listener are IPv4 clients).
Family formatAddress(const sockaddr_storage& addr, char (&buf)[INET6_ADDRSTRLEN]) {
  if (addr.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    if (inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf) != nullptr) return Family::V4;
  } else if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      in_addr v4;
      std::memcpy(&v4, in6.sin6_addr.s6_addr + 12, sizeof v4);
      if (inet_ntop(AF_INET, &v4, buf, sizeof buf) != nullptr) return Family::V4;
    } else if (inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf) != nullptr) {
      return Family::V6;
    }
  }
  return Family::Other;
}

}  // namespace

std::string addressText(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN];
  // RFC 7239 section 6.3's "unknown" is also what X-Forwarded-For consumers
  // expect when there is no IP address (e.g. a UNIX socket).
  if (formatAddress(addr, buf) == Family::Other) return "unknown";
  return buf;
}

std::string forwardedNode(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN];
  switch (formatAddress(addr, buf)) {
    case Family::V4:
      return buf;
    case Family::V6: {
      // RFC 7239 section 6: "[" and ":" are not token characters, so the
      // bracketed IPv6 address must be a quoted-string.
      std::string out;
      out.reserve(std::strlen(buf) + 4);
      out += "\"[";
      out += buf;
      out += "]\"";
      return out;
    }
    case Family::Other:
      break;
  }
  return "unknown";
}

std::string forwardedElement(const sockaddr_storage& client, const sockaddr_storage& local,
                             std::string_view proto) {
  std::string out;
  out.reserve(96);
  out += "for=";
  out += forwardedNode(client);
  out += ";proto=";
  out += proto;
  out += ";by=";
  out += forwardedNode(local);
  return out;
}

}  // namespace banyan::dp::http
