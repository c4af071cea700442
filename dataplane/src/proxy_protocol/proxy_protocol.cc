// PROXY protocol v1/v2 parser and encoders. Section numbers refer to HAProxy's
// "The PROXY protocol, Versions 1 & 2" (doc/proxy-protocol.txt).
#include "proxy_protocol/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

namespace banyan::dp::proxy_protocol {
namespace {

// Section 2.2: "\r\n\r\n\0\r\nQUIT\n". It starts with CR, which no v1 header
// (starting with 'P') does, so the first byte picks the version.
constexpr std::array<uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Signature = "PROXY ";
constexpr size_t kV2FixedLength = 16;  // signature, ver/cmd, family, length

constexpr uint8_t kV2CommandLocal = 0x0;
constexpr uint8_t kV2CommandProxy = 0x1;
constexpr uint8_t kV2FamilyUnspec = 0x00;
constexpr uint8_t kV2FamilyTcp4 = 0x11;
constexpr uint8_t kV2FamilyTcp6 = 0x21;
constexpr size_t kV2AddressLengthInet = 12;   // 2 x 4 bytes address + 2 x 2 bytes port
constexpr size_t kV2AddressLengthInet6 = 36;  // 2 x 16 bytes address + 2 x 2 bytes port
constexpr size_t kV2AddressLengthUnix = 216;  // 2 x 108 bytes path
constexpr uint8_t kV2TlvCrc32c = 0x03;

// Longest textual IPv6 address ("ffff:...:ffff:255.255.255.255"),
// INET6_ADDRSTRLEN without its NUL.
constexpr size_t kMaxIpv6TextLength = 45;

ParseResult needMore() { return ParseResult{}; }

ParseResult invalid(ParseError error) {
  ParseResult r;
  r.status = ParseStatus::Invalid;
  r.error = error;
  return r;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool isHexDigit(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// --- v1 tokens -------------------------------------------------------------

// A decimal port 0..65535 without leading zeros. With `partial`, `t` may be a
// strict prefix of such a port (including empty).
bool checkPort(std::string_view t, bool partial, uint16_t* out) {
  if (t.empty()) return partial;
  if (t.size() > 5) return false;
  if (t.size() > 1 && t[0] == '0') return false;
  uint32_t value = 0;
  for (char c : t) {
    if (!isDigit(c)) return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return false;
  if (out != nullptr) *out = static_cast<uint16_t>(value);
  return true;
}

// Dotted quad, each octet 0..255 in decimal without leading zeros (section
// 2.1 forbids them; "010" would be read as octal by some stacks). With
// `partial`, `t` may be a strict prefix of such an address.
bool checkIpv4(std::string_view t, bool partial, uint8_t out[4]) {
  std::array<uint8_t, 4> octets{};
  size_t index = 0;
  size_t digits = 0;
  uint32_t value = 0;
  for (char c : t) {
    if (c == '.') {
      if (digits == 0 || index == 3) return false;
      octets[index++] = static_cast<uint8_t>(value);
      digits = 0;
      value = 0;
      continue;
    }
    if (!isDigit(c)) return false;
    if (digits == 1 && value == 0) return false;  // leading zero
    value = value * 10 + static_cast<uint32_t>(c - '0');
    if (++digits > 3 || value > 255) return false;
  }
  if (partial) return true;
  if (index != 3 || digits == 0) return false;
  octets[3] = static_cast<uint8_t>(value);
  if (out != nullptr) std::memcpy(out, octets.data(), 4);
  return true;
}

bool parseIpv6Text(std::string_view t, uint8_t out[16]) {
  if (t.empty() || t.size() > kMaxIpv6TextLength) return false;
  for (char c : t) {
    if (!isHexDigit(c) && c != ':' && c != '.') return false;
  }
  char buf[kMaxIpv6TextLength + 1];
  std::memcpy(buf, t.data(), t.size());
  buf[t.size()] = '\0';
  in6_addr addr;
  // inet_pton is strict enough here: at most 4 hex digits a group, one "::",
  // an embedded IPv4 only as the last 32 bits and without leading zeros.
  if (inet_pton(AF_INET6, buf, &addr) != 1) return false;
  if (out != nullptr) std::memcpy(out, &addr, 16);
  return true;
}

// True if some completion of `t` is a valid IPv6 address. Each way a prefix
// can end has a shortest completion in this list: inside a hex group ("" or
// "::"), after one colon ("0" or ":"), inside or after an embedded IPv4 octet
// (".0.0.0" ... "0"). The fixtures in the test check every prefix of many
// addresses against it.
bool isIpv6Prefix(std::string_view t) {
  if (t.empty()) return true;
  static constexpr std::string_view kCompletions[] = {
      "", "0", ":", "::", ".0", ".0.0", ".0.0.0", "0.0", "0.0.0",
  };
  char buf[kMaxIpv6TextLength + 1];
  for (std::string_view completion : kCompletions) {
    if (t.size() + completion.size() > kMaxIpv6TextLength) continue;
    std::memcpy(buf, t.data(), t.size());
    std::memcpy(buf + t.size(), completion.data(), completion.size());
    if (parseIpv6Text(std::string_view(buf, t.size() + completion.size()), nullptr)) {
      return true;
    }
  }
  return false;
}

void setInet(sockaddr_storage* ss, const uint8_t addr[4], uint16_t port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  std::memcpy(&sin.sin_addr, addr, 4);
  *ss = sockaddr_storage{};
  std::memcpy(ss, &sin, sizeof sin);
}

void setInet6(sockaddr_storage* ss, const uint8_t addr[16], uint16_t port) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  std::memcpy(&sin6.sin6_addr, addr, 16);
  *ss = sockaddr_storage{};
  std::memcpy(ss, &sin6, sizeof sin6);
}

enum class V1Family { Tcp4, Tcp6 };

bool checkAddress(std::string_view t, V1Family family, bool partial, uint8_t out[16]) {
  if (family == V1Family::Tcp4) return checkIpv4(t, partial, out);
  if (partial) return isIpv6Prefix(t);
  return parseIpv6Text(t, out);
}

// Checks the TCP4/TCP6 form of a v1 line body (what follows "PROXY ", without
// CRLF): exactly "PROTO SRC DST SPORT DPORT" with single spaces. With
// `partial`, the body may stop anywhere, including inside the last token.
bool checkV1Tcp(std::string_view body, bool partial, ProxyHeader* header) {
  std::array<std::string_view, 5> tokens;
  size_t count = 0;
  size_t start = 0;
  for (;;) {
    if (count == tokens.size()) return false;  // a sixth token or a trailing space
    size_t space = body.find(' ', start);
    tokens[count++] = body.substr(start, space == std::string_view::npos ? space : space - start);
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  if (!partial && count != tokens.size()) return false;

  // With `partial`, only the last token seen may be incomplete.
  auto is_last_partial = [&](size_t i) { return partial && i == count - 1; };

  V1Family family;
  if (tokens[0] == "TCP4") {
    family = V1Family::Tcp4;
  } else if (tokens[0] == "TCP6") {
    family = V1Family::Tcp6;
  } else {
    if (!is_last_partial(0)) return false;
    return std::string_view("TCP4").starts_with(tokens[0]) ||
           std::string_view("TCP6").starts_with(tokens[0]) ||
           std::string_view("UNKNOWN").starts_with(tokens[0]);
  }

  std::array<uint8_t, 16> src{};
  std::array<uint8_t, 16> dst{};
  uint16_t sport = 0;
  uint16_t dport = 0;
  for (size_t i = 1; i < count; ++i) {
    bool ok = false;
    switch (i) {
      case 1: ok = checkAddress(tokens[i], family, is_last_partial(i), src.data()); break;
      case 2: ok = checkAddress(tokens[i], family, is_last_partial(i), dst.data()); break;
      case 3: ok = checkPort(tokens[i], is_last_partial(i), &sport); break;
      case 4: ok = checkPort(tokens[i], is_last_partial(i), &dport); break;
    }
    if (!ok) return false;
  }
  if (partial || header == nullptr) return true;

  header->has_addresses = true;
  if (family == V1Family::Tcp4) {
    setInet(&header->source, src.data(), sport);
    setInet(&header->destination, dst.data(), dport);
  } else {
    setInet6(&header->source, src.data(), sport);
    setInet6(&header->destination, dst.data(), dport);
  }
  return true;
}

// Section 2.1: after "UNKNOWN" the receiver ignores everything up to CRLF. We
// still require a separator so that "UNKNOWNX" is not taken for UNKNOWN.
bool isUnknownBody(std::string_view body) {
  return body.starts_with("UNKNOWN") && (body.size() == 7 || body[7] == ' ');
}

ParseResult parseV1(std::span<const uint8_t> input) {
  std::string_view text(reinterpret_cast<const char*>(input.data()),
                        std::min(input.size(), kMaxV1Length));
  size_t sig = std::min(text.size(), kV1Signature.size());
  if (text.substr(0, sig) != kV1Signature.substr(0, sig)) {
    return invalid(ParseError::NotProxyProtocol);
  }
  if (text.size() == sig) return needMore();

  size_t lf = text.find('\n');
  if (lf == std::string_view::npos) {
    // Still a valid prefix? The body may end in the CR of the final CRLF.
    std::string_view body = text.substr(kV1Signature.size());
    bool prefix_ok;
    if (body.size() > 7 && body.starts_with("UNKNOWN")) {
      prefix_ok = body[7] == ' ' || (body[7] == '\r' && body.size() == 8);
    } else if (size_t cr = body.find('\r'); cr != std::string_view::npos) {
      prefix_ok = cr == body.size() - 1 &&
                  (isUnknownBody(body.substr(0, cr)) ||
                   checkV1Tcp(body.substr(0, cr), /*partial=*/false, nullptr));
    } else {
      prefix_ok = checkV1Tcp(body, /*partial=*/true, nullptr);
    }
    if (!prefix_ok) return invalid(ParseError::BadV1Line);
    if (input.size() >= kMaxV1Length) return invalid(ParseError::V1LineTooLong);
    return needMore();
  }

  if (text[lf - 1] != '\r') return invalid(ParseError::BadV1Line);
  std::string_view body = text.substr(kV1Signature.size(), lf - 1 - kV1Signature.size());
  ParseResult r;
  r.header.version = Version::V1;
  if (isUnknownBody(body)) {
    r.header.has_addresses = false;
  } else if (!checkV1Tcp(body, /*partial=*/false, &r.header)) {
    return invalid(ParseError::BadV1Line);
  }
  r.status = ParseStatus::Done;
  r.consumed = lf + 1;
  return r;
}

// --- v2 ---------------------------------------------------------------------

uint16_t readBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as PP2_TYPE_CRC32C
// requires (section 2.2.5). Bitwise: the TLV is rare and the header small.
uint32_t crc32c(std::span<const uint8_t> data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// Section 2.2.5: the checksum covers the whole header with the checksum field
// itself zeroed.
bool crc32cMatches(std::span<const uint8_t> header, size_t value_offset) {
  std::array<uint8_t, kV2FixedLength + kMaxV2Length> copy;
  std::memcpy(copy.data(), header.data(), header.size());
  std::memset(copy.data() + value_offset, 0, 4);
  uint32_t expected = (uint32_t{header[value_offset]} << 24) |
                      (uint32_t{header[value_offset + 1]} << 16) |
                      (uint32_t{header[value_offset + 2]} << 8) | header[value_offset + 3];
  return crc32c(std::span<const uint8_t>(copy.data(), header.size())) == expected;
}

ParseResult parseV2(std::span<const uint8_t> input) {
  size_t sig = std::min(input.size(), kV2Signature.size());
  if (std::memcmp(input.data(), kV2Signature.data(), sig) != 0) {
    return invalid(ParseError::NotProxyProtocol);
  }
  if (input.size() <= kV2Signature.size()) return needMore();

  uint8_t ver_cmd = input[12];
  if ((ver_cmd >> 4) != 0x2) return invalid(ParseError::BadV2Version);
  uint8_t command = ver_cmd & 0x0F;
  if (command != kV2CommandLocal && command != kV2CommandProxy) {
    return invalid(ParseError::BadV2Command);
  }
  if (input.size() < 14) return needMore();

  // Section 2.2: the 7 listed family/transport bytes are the only valid
  // ones; "other values ... must be rejected as invalid by receivers". We
  // check this even for LOCAL, so that the address block length (and hence
  // where TLVs start) is always known.
  uint8_t family = input[13];
  size_t address_length;
  switch (family) {
    case 0x00: address_length = 0; break;
    case 0x11: case 0x12: address_length = kV2AddressLengthInet; break;
    case 0x21: case 0x22: address_length = kV2AddressLengthInet6; break;
    case 0x31: case 0x32: address_length = kV2AddressLengthUnix; break;
    default: return invalid(ParseError::BadV2Family);
  }
  if (input.size() < kV2FixedLength) return needMore();

  size_t length = readBe16(&input[14]);
  if (length > kMaxV2Length) return invalid(ParseError::V2TooLong);
  if (length < address_length) return invalid(ParseError::BadV2Family);
  size_t total = kV2FixedLength + length;

  // TLVs (section 2.2.7) must tile the rest exactly. Walk them as far as the
  // bytes go, so an overrun is reported before the whole header has arrived.
  size_t crc_offset = 0;
  for (size_t pos = kV2FixedLength + address_length; pos < total;) {
    if (total - pos < 3) return invalid(ParseError::BadV2Tlv);
    if (input.size() < pos + 3) return needMore();
    size_t tlv_length = readBe16(&input[pos + 1]);
    if (tlv_length > total - pos - 3) return invalid(ParseError::BadV2Tlv);
    if (input[pos] == kV2TlvCrc32c) {
      // A checksum of the wrong size, or two of them, is as bad as a wrong one.
      if (tlv_length != 4 || crc_offset != 0) return invalid(ParseError::BadV2Tlv);
      crc_offset = pos + 3;
    }
    pos += 3 + tlv_length;
  }
  if (input.size() < total) return needMore();
  if (crc_offset != 0 && !crc32cMatches(input.first(total), crc_offset)) {
    return invalid(ParseError::BadV2Tlv);
  }

  ParseResult r;
  r.status = ParseStatus::Done;
  r.consumed = total;
  r.header.version = Version::V2;
  // LOCAL: health checks from the upstream itself; addresses are ignored
  // (section 2.2). PROXY over UNSPEC, DGRAM or UNIX: nothing a TCP listener
  // can use, so the connection's own addresses stand, as in HAProxy.
  if (command == kV2CommandProxy && family == kV2FamilyTcp4) {
    const uint8_t* a = &input[kV2FixedLength];
    r.header.has_addresses = true;
    setInet(&r.header.source, a, readBe16(a + 8));
    setInet(&r.header.destination, a + 4, readBe16(a + 10));
  } else if (command == kV2CommandProxy && family == kV2FamilyTcp6) {
    const uint8_t* a = &input[kV2FixedLength];
    r.header.has_addresses = true;
    setInet6(&r.header.source, a, readBe16(a + 32));
    setInet6(&r.header.destination, a + 16, readBe16(a + 34));
  }
  return r;
}

// --- encoding ---------------------------------------------------------------

// An address as the encoders need it: IPv4-mapped IPv6 addresses are also
// available as IPv4 so that a dual-stack socket's peers are written as TCP4.
struct Endpoint {
  int family = AF_UNSPEC;  // AF_INET, AF_INET6, or AF_UNSPEC for anything else
  bool has_ipv4 = false;
  std::array<uint8_t, 4> ipv4{};
  std::array<uint8_t, 16> ipv6{};
  uint16_t port = 0;  // host order
};

Endpoint toEndpoint(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &ss, sizeof sin);
    e.family = AF_INET;
    e.has_ipv4 = true;
    std::memcpy(e.ipv4.data(), &sin.sin_addr, 4);
    // Mapped form, for the v2 mixed-family case.
    e.ipv6[10] = 0xFF;
    e.ipv6[11] = 0xFF;
    std::memcpy(e.ipv6.data() + 12, e.ipv4.data(), 4);
    e.port = ntohs(sin.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &ss, sizeof sin6);
    e.family = AF_INET6;
    std::memcpy(e.ipv6.data(), &sin6.sin6_addr, 16);
    e.has_ipv4 = IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr);
    if (e.has_ipv4) std::memcpy(e.ipv4.data(), e.ipv6.data() + 12, 4);
    e.port = ntohs(sin6.sin6_port);
  }
  return e;
}

enum class EncodeAs { Ipv4, Ipv6, Unspec };

EncodeAs chooseEncoding(const Endpoint& src, const Endpoint& dst) {
  if (src.family == AF_UNSPEC || dst.family == AF_UNSPEC) return EncodeAs::Unspec;
  if (src.has_ipv4 && dst.has_ipv4) return EncodeAs::Ipv4;
  return EncodeAs::Ipv6;
}

void appendBe16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xFF));
}

void appendBytes(std::string* out, const uint8_t* p, size_t n) {
  out->append(reinterpret_cast<const char*>(p), n);
}

}  // namespace

const char* parseErrorName(ParseError e) {
  switch (e) {
    case ParseError::None: return "none";
    case ParseError::NotProxyProtocol: return "not_proxy_protocol";
    case ParseError::BadV1Line: return "bad_v1_line";
    case ParseError::V1LineTooLong: return "v1_line_too_long";
    case ParseError::BadV2Version: return "bad_v2_version";
    case ParseError::BadV2Command: return "bad_v2_command";
    case ParseError::BadV2Family: return "bad_v2_family";
    case ParseError::V2TooLong: return "v2_too_long";
    case ParseError::BadV2Tlv: return "bad_v2_tlv";
  }
  return "unknown";
}

ParseResult parse(std::span<const uint8_t> input, Accept accept) {
  if (input.empty()) return needMore();
  if (accept != Accept::V2 && input[0] == static_cast<uint8_t>(kV1Signature[0])) {
    return parseV1(input);
  }
  if (accept != Accept::V1 && input[0] == kV2Signature[0]) return parseV2(input);
  return invalid(ParseError::NotProxyProtocol);
}

std::string encodeV1(const sockaddr_storage& source, const sockaddr_storage& destination) {
  Endpoint src = toEndpoint(source);
  Endpoint dst = toEndpoint(destination);
  EncodeAs as = chooseEncoding(src, dst);
  // v1 has no way to mix families; section 2.1 says to send UNKNOWN then.
  if (as == EncodeAs::Unspec || (as == EncodeAs::Ipv6 && src.family != dst.family)) {
    return "PROXY UNKNOWN\r\n";
  }
  char src_text[INET6_ADDRSTRLEN];
  char dst_text[INET6_ADDRSTRLEN];
  if (as == EncodeAs::Ipv4) {
    inet_ntop(AF_INET, src.ipv4.data(), src_text, sizeof src_text);
    inet_ntop(AF_INET, dst.ipv4.data(), dst_text, sizeof dst_text);
  } else {
    inet_ntop(AF_INET6, src.ipv6.data(), src_text, sizeof src_text);
    inet_ntop(AF_INET6, dst.ipv6.data(), dst_text, sizeof dst_text);
  }
  std::string out = as == EncodeAs::Ipv4 ? "PROXY TCP4 " : "PROXY TCP6 ";
  out += src_text;
  out += ' ';
  out += dst_text;
  out += ' ';
  out += std::to_string(src.port);
  out += ' ';
  out += std::to_string(dst.port);
  out += "\r\n";
  return out;
}

std::string encodeV2(const sockaddr_storage& source, const sockaddr_storage& destination) {
  Endpoint src = toEndpoint(source);
  Endpoint dst = toEndpoint(destination);
  EncodeAs as = chooseEncoding(src, dst);
  std::string out;
  out.reserve(kV2FixedLength + kV2AddressLengthInet6);
  appendBytes(&out, kV2Signature.data(), kV2Signature.size());
  out.push_back(static_cast<char>(0x20 | kV2CommandProxy));
  switch (as) {
    case EncodeAs::Ipv4:
      out.push_back(static_cast<char>(kV2FamilyTcp4));
      appendBe16(&out, kV2AddressLengthInet);
      appendBytes(&out, src.ipv4.data(), 4);
      appendBytes(&out, dst.ipv4.data(), 4);
      break;
    case EncodeAs::Ipv6:
      out.push_back(static_cast<char>(kV2FamilyTcp6));
      appendBe16(&out, kV2AddressLengthInet6);
      appendBytes(&out, src.ipv6.data(), 16);
      appendBytes(&out, dst.ipv6.data(), 16);
      break;
    case EncodeAs::Unspec:
      // PROXY over UNSPEC is v2's "PROXY UNKNOWN": relayed, addresses unknown
      // (section 2.2). Not LOCAL, which would claim the proxy itself connected.
      out.push_back(static_cast<char>(kV2FamilyUnspec));
      appendBe16(&out, 0);
      return out;
  }
  appendBe16(&out, src.port);
  appendBe16(&out, dst.port);
  return out;
}

}  // namespace banyan::dp::proxy_protocol
