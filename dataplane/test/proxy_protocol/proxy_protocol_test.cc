#include "proxy_protocol/proxy_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/un.h>

#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace banyan::dp::proxy_protocol {
namespace {

using Bytes = std::string;  // raw header bytes; std::string keeps literals readable

std::span<const uint8_t> asSpan(const Bytes& b) {
  return {reinterpret_cast<const uint8_t*>(b.data()), b.size()};
}

ParseResult parseBytes(const Bytes& b, Accept accept = Accept::Any) {
  return parse(asSpan(b), accept);
}

// "1.2.3.4:80" or "[::1]:80"; "" for anything else.
std::string endpointText(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &ss, sizeof sin);
    inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(sin.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &ss, sizeof sin6);
    inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(sin6.sin6_port));
  }
  return "";
}

sockaddr_storage v4(const char* addr, uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET, addr, &sin.sin_addr), 1) << addr;
  sockaddr_storage ss{};
  std::memcpy(&ss, &sin, sizeof sin);
  return ss;
}

sockaddr_storage v6(const char* addr, uint16_t port) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1) << addr;
  sockaddr_storage ss{};
  std::memcpy(&ss, &sin6, sizeof sin6);
  return ss;
}

sockaddr_storage unixPath(const char* path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
  sockaddr_storage ss{};
  std::memcpy(&ss, &sun, sizeof sun);
  return ss;
}

// --- v2 fixtures ------------------------------------------------------------

const Bytes kSig("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);

Bytes be16(size_t v) { return Bytes{static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }

// Signature, ver/cmd, family, the given length field, then `rest`.
Bytes v2WithLength(uint8_t ver_cmd, uint8_t family, size_t length, const Bytes& rest) {
  return kSig + static_cast<char>(ver_cmd) + static_cast<char>(family) + be16(length) + rest;
}

// As above with the length field matching `rest`.
Bytes v2(uint8_t ver_cmd, uint8_t family, const Bytes& rest) {
  return v2WithLength(ver_cmd, family, rest.size(), rest);
}

Bytes tlv(uint8_t type, const Bytes& value) { return static_cast<char>(type) + be16(value.size()) + value; }

// 192.0.2.1:56324 -> 198.51.100.7:443
const Bytes kV4Block("\xC0\x00\x02\x01" "\xC6\x33\x64\x07" "\xDC\x04" "\x01\xBB", 12);
// [2001:db8::1]:1 -> [2001:db8::2]:65535
const Bytes kV6Block(
    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
    "\x00\x01" "\xFF\xFF",
    36);

// Bitwise CRC-32C, independent of the implementation's, to build fixtures.
uint32_t referenceCrc32c(const Bytes& data) {
  uint32_t crc = 0xFFFFFFFF;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
  }
  return ~crc;
}

// A PROXY TCP4 header whose last TLV is a CRC32C over the whole header.
Bytes v2WithCrc(bool corrupt) {
  Bytes rest = kV4Block + tlv(0x02, "example.com") + tlv(0x03, Bytes(4, '\0'));
  Bytes header = v2(0x21, 0x11, rest);
  uint32_t crc = referenceCrc32c(header) ^ (corrupt ? 1u : 0u);
  size_t at = header.size() - 4;
  header[at] = static_cast<char>(crc >> 24);
  header[at + 1] = static_cast<char>(crc >> 16);
  header[at + 2] = static_cast<char>(crc >> 8);
  header[at + 3] = static_cast<char>(crc);
  return header;
}

// 107 bytes exactly: the longest line the spec allows.
const Bytes kLongestV1 =
    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.25.2 "
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

// --- the table --------------------------------------------------------------

struct Row {
  const char* description;
  Bytes input;
  Accept accept;
  ParseStatus status;
  ParseError error = ParseError::None;
  size_t consumed = 0;
  bool has_addresses = false;
  std::string source = "";
  std::string destination = "";
};

constexpr auto kDone = ParseStatus::Done;
constexpr auto kMore = ParseStatus::NeedMore;
constexpr auto kBad = ParseStatus::Invalid;

std::vector<Row> rows() {
  const Bytes tcp4 = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
  const Bytes tcp4_prefix = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443";
  return {
      // v1, accepted
      {"v1 TCP4", tcp4, Accept::Any, kDone, ParseError::None, tcp4.size(), true,
       "192.0.2.1:56324", "198.51.100.7:443"},
      {"v1 TCP4 when only v1 is accepted", tcp4, Accept::V1, kDone, ParseError::None, tcp4.size(),
       true, "192.0.2.1:56324", "198.51.100.7:443"},
      {"v1 TCP4 followed by payload consumes only the line", tcp4 + "GET / HTTP/1.1\r\n",
       Accept::Any, kDone, ParseError::None, tcp4.size(), true, "192.0.2.1:56324",
       "198.51.100.7:443"},
      {"v1 TCP4 ports 0 and 65535", "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", Accept::Any,
       kDone, ParseError::None, 44, true, "0.0.0.0:0", "255.255.255.255:65535"},
      {"v1 TCP6", "PROXY TCP6 2001:db8::1 ::1 443 8443\r\n", Accept::Any, kDone, ParseError::None,
       37, true, "[2001:db8::1]:443", "[::1]:8443"},
      {"v1 TCP6 uncompressed upper-case groups",
       "PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0001 :: 1 2\r\n", Accept::Any, kDone,
       ParseError::None, 59, true, "[2001:db8::1]:1", "[::]:2"},
      {"v1 TCP6 with IPv4-mapped addresses stays IPv6",
       "PROXY TCP6 ::ffff:10.0.0.1 ::ffff:10.0.0.2 1 2\r\n", Accept::Any, kDone,
       ParseError::None, 48, true, "[::ffff:10.0.0.1]:1", "[::ffff:10.0.0.2]:2"},
      {"v1 TCP6 line of exactly 107 bytes", kLongestV1, Accept::Any, kDone, ParseError::None, 107,
       true, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:1902]:65535",
       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
      {"v1 UNKNOWN", "PROXY UNKNOWN\r\n", Accept::Any, kDone, ParseError::None, 15, false},
      {"v1 UNKNOWN ignores the rest of the line", "PROXY UNKNOWN ffff::1 ::1 1 2\r\nxyz",
       Accept::Any, kDone, ParseError::None, 31, false},

      // v2, accepted
      {"v2 PROXY TCP4", v2(0x21, 0x11, kV4Block), Accept::Any, kDone, ParseError::None, 28, true,
       "192.0.2.1:56324", "198.51.100.7:443"},
      {"v2 PROXY TCP4 when only v2 is accepted", v2(0x21, 0x11, kV4Block), Accept::V2, kDone,
       ParseError::None, 28, true, "192.0.2.1:56324", "198.51.100.7:443"},
      {"v2 PROXY TCP4 followed by payload", v2(0x21, 0x11, kV4Block) + "\x16\x03\x01", Accept::Any,
       kDone, ParseError::None, 28, true, "192.0.2.1:56324", "198.51.100.7:443"},
      {"v2 PROXY TCP6", v2(0x21, 0x21, kV6Block), Accept::Any, kDone, ParseError::None, 52, true,
       "[2001:db8::1]:1", "[2001:db8::2]:65535"},
      {"v2 LOCAL UNSPEC (upstream health check)", v2(0x20, 0x00, ""), Accept::Any, kDone,
       ParseError::None, 16, false},
      {"v2 LOCAL ignores a TCP4 address block", v2(0x20, 0x11, kV4Block), Accept::Any, kDone,
       ParseError::None, 28, false},
      {"v2 PROXY TCP4 with ALPN, authority and NOOP TLVs",
       v2(0x21, 0x11, kV4Block + tlv(0x01, "h2") + tlv(0x02, "example.com") + tlv(0x04, "")),
       Accept::Any, kDone, ParseError::None, 28 + 5 + 14 + 3, true, "192.0.2.1:56324",
       "198.51.100.7:443"},
      {"v2 PROXY TCP4 with a correct CRC32C", v2WithCrc(false), Accept::Any, kDone,
       ParseError::None, 28 + 14 + 7, true, "192.0.2.1:56324", "198.51.100.7:443"},
      {"v2 PROXY with the largest allowed length",
       v2(0x21, 0x11, kV4Block + tlv(0xE0, Bytes(kMaxV2Length - 12 - 3, 'x'))), Accept::Any,
       kDone, ParseError::None, 16 + kMaxV2Length, true, "192.0.2.1:56324", "198.51.100.7:443"},
      {"v2 PROXY UNSPEC carries no addresses", v2(0x21, 0x00, ""), Accept::Any, kDone,
       ParseError::None, 16, false},
      {"v2 PROXY UDP4 carries no usable addresses", v2(0x21, 0x12, kV4Block), Accept::Any, kDone,
       ParseError::None, 28, false},
      {"v2 PROXY UNIX stream carries no addresses", v2(0x21, 0x31, Bytes(216, '\0')), Accept::Any,
       kDone, ParseError::None, 16 + 216, false},

      // Neither signature
      {"HTTP request", "GET / HTTP/1.1\r\n", Accept::Any, kBad, ParseError::NotProxyProtocol},
      {"TLS ClientHello", "\x16\x03\x01\x02\x00\x01", Accept::Any, kBad,
       ParseError::NotProxyProtocol},
      {"v1 signature misspelt", "PROXZ TCP4", Accept::Any, kBad, ParseError::NotProxyProtocol},
      {"v1 signature without its space", "PROXYTCP4 ", Accept::Any, kBad,
       ParseError::NotProxyProtocol},
      {"v1 prefix that diverges early", "POST / HTTP/1.1\r\n", Accept::Any, kBad,
       ParseError::NotProxyProtocol},
      {"v1 header on a v2-only listener", tcp4, Accept::V2, kBad, ParseError::NotProxyProtocol},
      {"v2 header on a v1-only listener", v2(0x21, 0x11, kV4Block), Accept::V1, kBad,
       ParseError::NotProxyProtocol},
      {"v2 signature with one byte wrong", Bytes("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x55", 11),
       Accept::Any, kBad, ParseError::NotProxyProtocol},

      // v1, rejected
      {"v1 double space", "PROXY TCP4  192.0.2.1 198.51.100.7 1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 unknown protocol", "PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 lower-case protocol", "PROXY tcp4 192.0.2.1 198.51.100.7 1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 TCP4 with an IPv6 source", "PROXY TCP4 ::1 198.51.100.7 1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 TCP6 with an IPv4 destination", "PROXY TCP6 ::1 198.51.100.7 1 2\r\n", Accept::Any,
       kBad, ParseError::BadV1Line},
      {"v1 octet above 255", "PROXY TCP4 192.0.2.256 198.51.100.7 1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 octet with a leading zero", "PROXY TCP4 192.0.2.01 198.51.100.7 1 2\r\n", Accept::Any,
       kBad, ParseError::BadV1Line},
      {"v1 IPv4 with three octets", "PROXY TCP4 192.0.2 198.51.100.7 1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 IPv6 with a zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 IPv6 with two double colons", "PROXY TCP6 1::2::3 ::1 1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 port above 65535", "PROXY TCP4 192.0.2.1 198.51.100.7 65536 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 port with a leading zero", "PROXY TCP4 192.0.2.1 198.51.100.7 1 080\r\n", Accept::Any,
       kBad, ParseError::BadV1Line},
      {"v1 port with a sign", "PROXY TCP4 192.0.2.1 198.51.100.7 +1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 missing destination port", "PROXY TCP4 192.0.2.1 198.51.100.7 1\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 extra token", "PROXY TCP4 192.0.2.1 198.51.100.7 1 2 3\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 trailing space", "PROXY TCP4 192.0.2.1 198.51.100.7 1 2 \r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 bare LF", tcp4_prefix + "\n", Accept::Any, kBad, ParseError::BadV1Line},
      {"v1 CR not followed by LF", tcp4_prefix + "\rX", Accept::Any, kBad, ParseError::BadV1Line},
      {"v1 tab separator", "PROXY TCP4\t192.0.2.1 198.51.100.7 1 2\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 UNKNOWN glued to more text", "PROXY UNKNOWNX\r\n", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 bad octet is rejected before the line ends", "PROXY TCP4 192.0.2.999", Accept::Any,
       kBad, ParseError::BadV1Line},
      {"v1 bad protocol is rejected before the line ends", "PROXY TCPX", Accept::Any, kBad,
       ParseError::BadV1Line},
      {"v1 no CRLF within 107 bytes", "PROXY UNKNOWN " + Bytes(93, 'a'), Accept::Any, kBad,
       ParseError::V1LineTooLong},
      {"v1 valid TCP6 line of 108 bytes",
       "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2 "
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
       Accept::Any, kBad, ParseError::V1LineTooLong},

      // v2, rejected
      {"v2 version 1", v2(0x11, 0x11, kV4Block), Accept::Any, kBad, ParseError::BadV2Version},
      {"v2 version 3, seen from its 13th byte", kSig + "\x31", Accept::Any, kBad,
       ParseError::BadV2Version},
      {"v2 command 2", v2(0x22, 0x11, kV4Block), Accept::Any, kBad, ParseError::BadV2Command},
      {"v2 command F with LOCAL-like family", kSig + "\x2F", Accept::Any, kBad,
       ParseError::BadV2Command},
      {"v2 family 4", v2(0x21, 0x41, kV4Block), Accept::Any, kBad, ParseError::BadV2Family},
      {"v2 transport 3", v2(0x21, 0x13, kV4Block), Accept::Any, kBad, ParseError::BadV2Family},
      {"v2 unknown family even with LOCAL", v2(0x20, 0x01, ""), Accept::Any, kBad,
       ParseError::BadV2Family},
      {"v2 TCP4 with an 11-byte block", v2WithLength(0x21, 0x11, 11, kV4Block.substr(0, 11)),
       Accept::Any, kBad, ParseError::BadV2Family},
      {"v2 TCP6 with a TCP4-sized block", v2(0x21, 0x21, kV4Block), Accept::Any, kBad,
       ParseError::BadV2Family},
      {"v2 UNIX with a short block", v2(0x21, 0x31, Bytes(100, '\0')), Accept::Any, kBad,
       ParseError::BadV2Family},
      {"v2 length above the cap, seen from the fixed part", v2WithLength(0x21, 0x11, 2049, ""),
       Accept::Any, kBad, ParseError::V2TooLong},
      {"v2 length 0xFFFF", v2WithLength(0x21, 0x11, 0xFFFF, kV4Block), Accept::Any, kBad,
       ParseError::V2TooLong},
      {"v2 two stray bytes after the address block", v2(0x21, 0x11, kV4Block + "\x01\x00"),
       Accept::Any, kBad, ParseError::BadV2Tlv},
      {"v2 TLV value runs past the header",
       v2WithLength(0x21, 0x11, 12 + 3 + 4, kV4Block + tlv(0x02, "example.com")), Accept::Any,
       kBad, ParseError::BadV2Tlv},
      {"v2 TLV overrun seen before the value arrives",
       v2WithLength(0x21, 0x11, 12 + 3 + 4, kV4Block + Bytes("\x02\x00\x05", 3)), Accept::Any,
       kBad, ParseError::BadV2Tlv},
      {"v2 wrong CRC32C", v2WithCrc(true), Accept::Any, kBad, ParseError::BadV2Tlv},
      {"v2 CRC32C TLV of 2 bytes", v2(0x21, 0x11, kV4Block + tlv(0x03, "\x01\x02")), Accept::Any,
       kBad, ParseError::BadV2Tlv},

      // Valid prefixes
      {"nothing yet", "", Accept::Any, kMore},
      {"nothing yet on a v1 listener", "", Accept::V1, kMore},
      {"nothing yet on a v2 listener", "", Accept::V2, kMore},
      {"v1 first byte", "P", Accept::Any, kMore},
      {"v1 signature without its space", "PROXY", Accept::Any, kMore},
      {"v1 signature", "PROXY ", Accept::Any, kMore},
      {"v1 partial protocol", "PROXY TC", Accept::Any, kMore},
      {"v1 partial UNKNOWN", "PROXY UNKNO", Accept::Any, kMore},
      {"v1 UNKNOWN and CR", "PROXY UNKNOWN\r", Accept::Any, kMore},
      {"v1 partial IPv4 ending in a dot", "PROXY TCP4 192.0.", Accept::Any, kMore},
      {"v1 partial IPv6 with an IPv4 tail", "PROXY TCP6 ::ffff:10.0", Accept::Any, kMore},
      {"v1 partial port", "PROXY TCP4 192.0.2.1 198.51.100.7 563", Accept::Any, kMore},
      {"v1 whole line but the LF", tcp4_prefix + "\r", Accept::Any, kMore},
      {"v2 first byte", "\x0D", Accept::Any, kMore},
      {"v2 signature", kSig, Accept::Any, kMore},
      {"v2 signature and ver/cmd", kSig + "\x21", Accept::Any, kMore},
      {"v2 fixed part but one byte", v2(0x21, 0x11, kV4Block).substr(0, 15), Accept::Any, kMore},
      {"v2 fixed part only", v2(0x21, 0x11, kV4Block).substr(0, 16), Accept::Any, kMore},
      {"v2 all but the last byte", v2(0x21, 0x21, kV6Block).substr(0, 51), Accept::Any, kMore},
      {"v2 inside a TLV header",
       v2(0x21, 0x11, kV4Block + tlv(0x02, "example.com")).substr(0, 29), Accept::Any, kMore},
      {"v2 inside a TLV value",
       v2(0x21, 0x11, kV4Block + tlv(0x02, "example.com")).substr(0, 35), Accept::Any, kMore},
  };
}

TEST(ProxyProtocolParse, EveryTableRowGivesItsStatusErrorAndAddresses) {
  for (const Row& row : rows()) {
    SCOPED_TRACE(row.description);
    ParseResult r = parseBytes(row.input, row.accept);
    EXPECT_EQ(r.status, row.status);
    EXPECT_EQ(r.error, row.error) << parseErrorName(r.error);
    EXPECT_EQ(r.consumed, row.status == kDone ? row.consumed : 0);
    if (row.status != kDone) continue;
    EXPECT_EQ(r.header.has_addresses, row.has_addresses);
    bool is_v1 = row.input[0] == 'P';
    EXPECT_EQ(r.header.version, is_v1 ? Version::V1 : Version::V2);
    if (row.has_addresses) {
      EXPECT_EQ(endpointText(r.header.source), row.source);
      EXPECT_EQ(endpointText(r.header.destination), row.destination);
    }
  }
}

TEST(ProxyProtocolParse, TableCoversEnoughCasesOfEachOutcome) {
  std::set<ParseError> errors;
  int done = 0, more = 0;
  for (const Row& row : rows()) {
    errors.insert(row.error);
    done += row.status == kDone;
    more += row.status == kMore;
  }
  EXPECT_EQ(errors.size(), 9u) << "every ParseError needs a row";
  EXPECT_GE(done, 15);
  EXPECT_GE(more, 15);
}

// Feeding a header one byte at a time, as a slow client does: every strict
// prefix of every accepted header is NeedMore, never Invalid, never Done.
TEST(ProxyProtocolParse, EveryPrefixOfAnAcceptedHeaderNeedsMore) {
  for (const Row& row : rows()) {
    if (row.status != kDone) continue;
    SCOPED_TRACE(row.description);
    for (size_t n = 0; n < row.consumed; ++n) {
      ParseResult r = parseBytes(row.input.substr(0, n), row.accept);
      EXPECT_EQ(r.status, kMore) << "prefix length " << n << ": " << parseErrorName(r.error);
      EXPECT_EQ(r.consumed, 0u);
    }
  }
}

TEST(ProxyProtocolParse, V1LineSplitByteByByteCompletesOnTheLf) {
  const Bytes line = "PROXY TCP6 2001:db8::1 ::ffff:198.51.100.7 56324 443\r\n";
  Bytes received;
  for (size_t i = 0; i < line.size(); ++i) {
    received += line[i];
    ParseResult r = parseBytes(received);
    if (i + 1 < line.size()) {
      ASSERT_EQ(r.status, kMore) << "after byte " << i;
    } else {
      ASSERT_EQ(r.status, kDone);
      EXPECT_EQ(r.consumed, line.size());
      EXPECT_EQ(endpointText(r.header.source), "[2001:db8::1]:56324");
      EXPECT_EQ(endpointText(r.header.destination), "[::ffff:198.51.100.7]:443");
    }
  }
}

// The partial-address check must not reject a prefix that can still become a
// valid IPv6 address, in any of the textual forms (compressed or not, with an
// IPv4 tail, upper case).
TEST(ProxyProtocolParse, EveryPrefixOfAValidIpv6AddressNeedsMore) {
  std::vector<std::string> addresses = {
      "::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
      "1::2:3:4:5:6:7", "1:2::3:4:5:6:7", "fe80::1:2", "ABCD:EF01::", "::ffff:255.255.255.255",
      "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "1::1.2.3.4", "0001:0000:0000:0000:0000:0000:0000:0001",
      "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "1:2:3:4:5::0.0.0.0",
  };
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    in6_addr a;
    for (auto& b : a.s6_addr) b = (rng() % 3 == 0) ? static_cast<uint8_t>(rng()) : 0;
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a, text, sizeof text);
    addresses.push_back(text);
  }
  for (const std::string& address : addresses) {
    const Bytes line = "PROXY TCP6 " + address + " ::1 1 2\r\n";
    ASSERT_EQ(parseBytes(line).status, kDone) << line;
    for (size_t n = 11; n < line.size(); ++n) {
      ASSERT_EQ(parseBytes(line.substr(0, n)).status, kMore) << line.substr(0, n);
    }
  }
}

TEST(ProxyProtocolParse, ImpossibleIpv6PrefixesAreRejectedEarly) {
  for (const char* prefix : {"PROXY TCP6 :::", "PROXY TCP6 12345", "PROXY TCP6 1:2:1.2",
                             "PROXY TCP6 1:2:3:4:5:6:7:8:", "PROXY TCP6 1::2::",
                             "PROXY TCP6 ::1.2.3.4.", "PROXY TCP6 ::01.2", "PROXY TCP6 :1"}) {
    ParseResult r = parseBytes(prefix);
    EXPECT_EQ(r.status, kBad) << prefix;
    EXPECT_EQ(r.error, ParseError::BadV1Line) << prefix;
  }
}

TEST(ProxyProtocolParse, OversizedV2LengthIsRejectedBeforeTheBodyArrives) {
  ParseResult r = parseBytes(v2WithLength(0x21, 0x11, kMaxV2Length + 1, ""));
  EXPECT_EQ(r.status, kBad);
  EXPECT_EQ(r.error, ParseError::V2TooLong);
}

TEST(ProxyProtocolParse, ErrorNamesAreDistinct) {
  std::set<std::string> names;
  for (ParseError e : {ParseError::None, ParseError::NotProxyProtocol, ParseError::BadV1Line,
                       ParseError::V1LineTooLong, ParseError::BadV2Version,
                       ParseError::BadV2Command, ParseError::BadV2Family, ParseError::V2TooLong,
                       ParseError::BadV2Tlv}) {
    names.insert(parseErrorName(e));
  }
  EXPECT_EQ(names.size(), 9u);
  EXPECT_STREQ(parseErrorName(ParseError::BadV2Tlv), "bad_v2_tlv");
}

// --- encoding ---------------------------------------------------------------

TEST(ProxyProtocolEncodeV1, Ipv4IsWrittenAsTcp4) {
  EXPECT_EQ(encodeV1(v4("192.0.2.1", 56324), v4("198.51.100.7", 443)),
            "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
}

TEST(ProxyProtocolEncodeV1, PortsZeroAndMaxAreWrittenInDecimal) {
  EXPECT_EQ(encodeV1(v4("0.0.0.0", 0), v4("255.255.255.255", 65535)),
            "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n");
}

TEST(ProxyProtocolEncodeV1, Ipv6IsWrittenAsTcp6Compressed) {
  EXPECT_EQ(encodeV1(v6("2001:db8::1", 1), v6("2001:db8::2", 65535)),
            "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n");
}

TEST(ProxyProtocolEncodeV1, MappedSourceAndDestinationAreWrittenAsTcp4) {
  EXPECT_EQ(encodeV1(v6("::ffff:192.0.2.1", 56324), v6("::ffff:198.51.100.7", 443)),
            "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
}

TEST(ProxyProtocolEncodeV1, MappedSourceWithIpv4DestinationIsWrittenAsTcp4) {
  EXPECT_EQ(encodeV1(v6("::ffff:192.0.2.1", 56324), v4("198.51.100.7", 443)),
            "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
}

TEST(ProxyProtocolEncodeV1, MappedSourceWithRealIpv6DestinationStaysTcp6) {
  EXPECT_EQ(encodeV1(v6("::ffff:192.0.2.1", 56324), v6("2001:db8::2", 443)),
            "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 56324 443\r\n");
}

TEST(ProxyProtocolEncodeV1, MixedFamiliesFallBackToUnknown) {
  EXPECT_EQ(encodeV1(v4("192.0.2.1", 1), v6("2001:db8::2", 2)), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(encodeV1(v6("2001:db8::1", 1), v4("192.0.2.2", 2)), "PROXY UNKNOWN\r\n");
}

TEST(ProxyProtocolEncodeV1, NonInetFamiliesFallBackToUnknown) {
  EXPECT_EQ(encodeV1(unixPath("/run/x.sock"), v4("192.0.2.2", 2)), "PROXY UNKNOWN\r\n");
  EXPECT_EQ(encodeV1(sockaddr_storage{}, sockaddr_storage{}), "PROXY UNKNOWN\r\n");
}

TEST(ProxyProtocolEncodeV2, Ipv4IsWrittenAsTcp4Block) {
  Bytes expected = Bytes("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12) +
                   Bytes("\x21\x11\x00\x0C", 4) +
                   Bytes("\xC0\x00\x02\x01\xC6\x33\x64\x07\xDC\x04\x01\xBB", 12);
  EXPECT_EQ(encodeV2(v4("192.0.2.1", 56324), v4("198.51.100.7", 443)), expected);
}

TEST(ProxyProtocolEncodeV2, Ipv6IsWrittenAsTcp6Block) {
  Bytes expected = Bytes("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12) +
                   Bytes("\x21\x21\x00\x24", 4) +
                   Bytes("\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16) +
                   Bytes("\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02", 16) +
                   Bytes("\x00\x01\xFF\xFF", 4);
  EXPECT_EQ(encodeV2(v6("2001:db8::1", 1), v6("2001:db8::2", 65535)), expected);
}

TEST(ProxyProtocolEncodeV2, MixedFamiliesMapTheIpv4AddressIntoIpv6) {
  Bytes expected = Bytes("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12) +
                   Bytes("\x21\x21\x00\x24", 4) +
                   Bytes("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xFF\xFF\xC0\x00\x02\x01", 16) +
                   Bytes("\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02", 16) +
                   Bytes("\xDC\x04\x01\xBB", 4);
  EXPECT_EQ(encodeV2(v4("192.0.2.1", 56324), v6("2001:db8::2", 443)), expected);
}

TEST(ProxyProtocolEncodeV2, MappedSourceAndDestinationAreWrittenAsTcp4) {
  EXPECT_EQ(encodeV2(v6("::ffff:192.0.2.1", 56324), v6("::ffff:198.51.100.7", 443)),
            encodeV2(v4("192.0.2.1", 56324), v4("198.51.100.7", 443)));
  EXPECT_EQ(encodeV2(v6("::ffff:192.0.2.1", 56324), v4("198.51.100.7", 443)).substr(12, 4),
            Bytes("\x21\x11\x00\x0C", 4));
}

TEST(ProxyProtocolEncodeV2, NonInetFamiliesAreWrittenAsProxyUnspec) {
  Bytes expected = Bytes("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12) +
                   Bytes("\x21\x00\x00\x00", 4);
  EXPECT_EQ(encodeV2(unixPath("/run/x.sock"), unixPath("/run/y.sock")), expected);
}

// --- round trips ------------------------------------------------------------

struct Pair {
  sockaddr_storage source;
  sockaddr_storage destination;
  std::string source_text;  // what a parser must report
  std::string destination_text;
};

std::vector<Pair> roundTripPairs() {
  return {
      {v4("192.0.2.1", 56324), v4("198.51.100.7", 443), "192.0.2.1:56324", "198.51.100.7:443"},
      {v4("10.0.0.1", 0), v4("10.255.255.255", 65535), "10.0.0.1:0", "10.255.255.255:65535"},
      {v6("2001:db8::1", 1), v6("2001:db8::2", 2), "[2001:db8::1]:1", "[2001:db8::2]:2"},
      {v6("fe80::1:2:3:4", 8080), v6("::", 80), "[fe80::1:2:3:4]:8080", "[::]:80"},
      {v6("::ffff:192.0.2.1", 5), v6("::ffff:192.0.2.2", 6), "192.0.2.1:5", "192.0.2.2:6"},
      {v6("::ffff:192.0.2.1", 5), v6("2001:db8::2", 6), "[::ffff:192.0.2.1]:5",
       "[2001:db8::2]:6"},
  };
}

TEST(ProxyProtocolRoundTrip, V1EncodingParsesBackToTheSameAddresses) {
  for (const Pair& p : roundTripPairs()) {
    std::string encoded = encodeV1(p.source, p.destination);
    SCOPED_TRACE(encoded);
    for (Accept accept : {Accept::Any, Accept::V1}) {
      ParseResult r = parseBytes(encoded + "payload", accept);
      ASSERT_EQ(r.status, kDone) << parseErrorName(r.error);
      EXPECT_EQ(r.header.version, Version::V1);
      EXPECT_EQ(r.consumed, encoded.size());
      ASSERT_TRUE(r.header.has_addresses);
      EXPECT_EQ(endpointText(r.header.source), p.source_text);
      EXPECT_EQ(endpointText(r.header.destination), p.destination_text);
    }
  }
}

TEST(ProxyProtocolRoundTrip, V2EncodingParsesBackToTheSameAddresses) {
  for (const Pair& p : roundTripPairs()) {
    std::string encoded = encodeV2(p.source, p.destination);
    for (Accept accept : {Accept::Any, Accept::V2}) {
      ParseResult r = parseBytes(encoded + "payload", accept);
      ASSERT_EQ(r.status, kDone) << parseErrorName(r.error);
      EXPECT_EQ(r.header.version, Version::V2);
      EXPECT_EQ(r.consumed, encoded.size());
      ASSERT_TRUE(r.header.has_addresses);
      EXPECT_EQ(endpointText(r.header.source), p.source_text);
      EXPECT_EQ(endpointText(r.header.destination), p.destination_text);
    }
  }
}

TEST(ProxyProtocolRoundTrip, MixedFamiliesParseBackAsUnknownInV1AndMappedInV2) {
  sockaddr_storage src = v4("192.0.2.1", 1);
  sockaddr_storage dst = v6("2001:db8::2", 2);
  ParseResult r1 = parseBytes(encodeV1(src, dst));
  ASSERT_EQ(r1.status, kDone);
  EXPECT_FALSE(r1.header.has_addresses);
  ParseResult r2 = parseBytes(encodeV2(src, dst));
  ASSERT_EQ(r2.status, kDone);
  ASSERT_TRUE(r2.header.has_addresses);
  EXPECT_EQ(endpointText(r2.header.source), "[::ffff:192.0.2.1]:1");
  EXPECT_EQ(endpointText(r2.header.destination), "[2001:db8::2]:2");
}

TEST(ProxyProtocolRoundTrip, NonInetFamiliesParseBackWithoutAddresses) {
  for (const std::string& encoded : {encodeV1(unixPath("/a"), unixPath("/b")),
                                     encodeV2(unixPath("/a"), unixPath("/b"))}) {
    ParseResult r = parseBytes(encoded);
    ASSERT_EQ(r.status, kDone);
    EXPECT_EQ(r.consumed, encoded.size());
    EXPECT_FALSE(r.header.has_addresses);
  }
}

}  // namespace
}  // namespace banyan::dp::proxy_protocol
