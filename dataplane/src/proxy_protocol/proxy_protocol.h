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
  V2TooLong,          // v2: length field beyond kMaxV2Length
  BadV2Tlv,           // v2: TLVs do not tile the header exactly, or a bad CRC32C TLV
};

// snake_case, stable: usable as a counter label ("bad_v1_line").
const char* parseErrorName(ParseError e);

// v1 header bytes, CRLF included (spec section 2.1: the TCP6 worst case).
inline constexpr size_t kMaxV1Length = 107;
// Cap on the v2 length field (address block + TLVs). The spec sets none; a
// UNIX address block (216) plus generous TLVs (SSL, authority, unique ID,
// AWS/Azure IDs) stays well under it, and it bounds what a peer can make us
// buffer before the first payload byte.
inline constexpr size_t kMaxV2Length = 2048;

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

// v1: "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" (TCP6 for IPv6). IPv4-mapped
// IPv6 addresses (::ffff:a.b.c.d) count as IPv4: when both ends are IPv4 or
// mapped, the line is TCP4. Mixed families (IPv4 with a real IPv6) and
// families other than AF_INET/AF_INET6 fall back to "PROXY UNKNOWN\r\n".
std::string encodeV1(const sockaddr_storage& source, const sockaddr_storage& destination);

// v2: signature, version 2 / command PROXY, AF_INET or AF_INET6 over STREAM,
// the address block; no TLVs. IPv4-mapped addresses count as IPv4 as in
// encodeV1; mixed families are written as IPv6 with the IPv4 address mapped.
// Families other than AF_INET/AF_INET6: PROXY over UNSPEC with no address
// block (v2's equivalent of UNKNOWN).
std::string encodeV2(const sockaddr_storage& source, const sockaddr_storage& destination);

}  // namespace banyan::dp::proxy_protocol
