// PROXY protocol v1 (text) and v2 (binary), as specified in HAProxy's
// "The PROXY protocol" (versions 1 and 2). Encoding for pools of protocol
// PROXY / PROXYV2; parsing for listeners that accept it from a trusted upstream
// load balancer. Pure: no I/O.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace banyan::dp::proxy_protocol {

enum class ParseStatus { Done, NeedMore, Invalid };

enum class ParseError {
  None,
  NotProxyProtocol,   // the first bytes match neither signature
  BadV1Line,          // v1: malformed line, bad token, bad address or port
  V1LineTooLong,      // v1: no CRLF within 107 bytes
  BadV2Version,       // v2: version nibble not 2
  BadV2Command,       // v2: command not LOCAL or PROXY
  BadV2Family,        // v2: unknown family/transport or address block too short
  V2TooLong,          // v2: length beyond the limit (default 1024 + 16)
  BadV2Tlv,           // v2: a TLV runs past the end of the header
};

const char* parseErrorName(ParseError e);

enum class Version { V1, V2 };

struct ProxyHeader {
  Version version = Version::V1;
  // false for v1 "UNKNOWN" and v2 LOCAL (health checks from the upstream):
  // the connection's own addresses stand.
  bool has_addresses = false;
  sockaddr_storage source{};       // AF_INET or AF_INET6, port set
  sockaddr_storage destination{};
};

struct ParseResult {
  ParseStatus status = ParseStatus::NeedMore;
  ParseError error = ParseError::None;
  size_t consumed = 0;  // Done: the header's whole length, TLVs included
  ProxyHeader header;
};

// Which versions a listener accepts.
enum class Accept { V1, V2, Any };

// Parses a PROXY header at the start of `input`. NeedMore only while the
// bytes seen are a valid prefix of an accepted header.
ParseResult parse(std::span<const uint8_t> input, Accept accept);

// v1: "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" (TCP6 for IPv6; an IPv4-mapped
// IPv6 source with an IPv4 destination is written as TCP4).
// Mixed families fall back to "PROXY UNKNOWN\r\n".
std::string encodeV1(const sockaddr_storage& source, const sockaddr_storage& destination);

// v2: signature, version 2 / command PROXY, AF_INET or AF_INET6 over STREAM,
// the address block; no TLVs. Mixed families are written as IPv6 with the
// IPv4 address mapped.
std::string encodeV2(const sockaddr_storage& source, const sockaddr_storage& destination);

}  // namespace banyan::dp::proxy_protocol
