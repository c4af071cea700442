// Values for the client-address headers the proxy inserts (listener
// `insert_headers`): X-Forwarded-For and RFC 7239 Forwarded. Pure.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace banyan::dp::http {

// Address only, no port: "192.0.2.1" or "2001:db8::1" (no brackets), as
// X-Forwarded-For carries it. IPv4-mapped IPv6 addresses are printed as IPv4.
// A family without an IP address (AF_UNIX, AF_UNSPEC) gives "unknown".
std::string addressText(const sockaddr_storage& addr);

// RFC 7239 node for `for=`/`by=`: `192.0.2.1` bare, IPv6 quoted and bracketed
// (`"[2001:db8::1]"`), as section 6 of the RFC requires; "unknown" without an IP.
std::string forwardedNode(const sockaddr_storage& addr);

// One forwarded-element: `for=<client>;proto=<http|https>;by=<listener address>`.
std::string forwardedElement(const sockaddr_storage& client, const sockaddr_storage& local,
                             std::string_view proto);

}  // namespace banyan::dp::http
