// The ClientHello reader of passthrough listeners: real ClientHellos OpenSSL
// writes (through a memory BIO, no network), fed whole, byte by byte and cut
// into records; then one described row per hand-made vector (not TLS,
// truncated, oversized, multi-record, malformed).
#include "tls/client_hello.h"

#include <openssl/ssl.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tls_client.h"

namespace banyan::dp::tls {
namespace {

// ---- real ClientHellos -----------------------------------------------------------

using HelloOptions = test::ClientHelloSpec;

HelloOptions withSni(std::string sni, int max_version = 0) {
  HelloOptions o;
  o.sni = std::move(sni);
  o.max_version = max_version;
  return o;
}

// The bytes an OpenSSL client sends first: its ClientHello record(s).
std::string opensslClientHello(const HelloOptions& o) {
  std::string bytes = test::clientHelloBytes(o);
  EXPECT_TRUE(!bytes.empty() && bytes[0] == 0x16) << "a handshake record";
  return bytes;
}

size_t recordCount(std::string_view bytes) {
  size_t count = 0;
  for (size_t at = 0; at + 5 <= bytes.size(); ++count)
    at += 5 + ((static_cast<uint8_t>(bytes[at + 3]) << 8) | static_cast<uint8_t>(bytes[at + 4]));
  return count;
}

std::vector<std::string> manyAlpn() {
  std::vector<std::string> alpn;
  for (int i = 0; i < 40; ++i) alpn.push_back("protocol-name-number-" + std::to_string(i));
  return alpn;
}

TEST(ClientHello, ReadsTheSniOfRealOpenSslClientHellos) {
  struct Row {
    const char* what;
    HelloOptions options;
    std::string sni;
  };
  HelloOptions alpn = withSni("api.example.test");
  alpn.alpn = {"h2", "http/1.1"};
  const Row rows[] = {
      {"TLS 1.3 with SNI", withSni("a.example"), "a.example"},
      {"TLS 1.2 only, mixed case", withSni("Mixed.Case.EXAMPLE", TLS1_2_VERSION),
       "mixed.case.example"},
      {"with ALPN", alpn, "api.example.test"},
      {"no SNI", withSni(""), ""},
      {"no SNI, TLS 1.2", withSni("", TLS1_2_VERSION), ""},
      {"longest label", withSni(std::string(63, 'x') + ".example"),
       std::string(63, 'x') + ".example"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    std::string bytes = opensslClientHello(row.options);
    ClientHelloParse r = parseClientHello(bytes);
    EXPECT_EQ(r.status, ClientHelloStatus::kDone) << clientHelloErrorName(r.error);
    EXPECT_EQ(r.has_sni, !row.sni.empty());
    EXPECT_EQ(r.sni, row.sni);
    EXPECT_EQ(r.consumed, bytes.size());
  }
}

TEST(ClientHello, EveryStrictPrefixOfARealClientHelloNeedsMore) {
  std::string bytes = opensslClientHello(withSni("a.example"));
  for (size_t n = 0; n < bytes.size(); ++n) {
    ClientHelloParse r = parseClientHello(std::string_view(bytes).substr(0, n));
    ASSERT_EQ(r.status, ClientHelloStatus::kNeedMore) << "prefix of " << n << " bytes";
    EXPECT_FALSE(r.has_sni);
  }
}

TEST(ClientHello, AClientHelloOpenSslSplitIntoSeveralRecordsIsReassembled) {
  HelloOptions o = withSni("b.example");
  o.max_fragment = 512;
  o.alpn = manyAlpn();
  std::string bytes = opensslClientHello(o);
  ASSERT_GT(recordCount(bytes), 2u) << "OpenSSL did not fragment the ClientHello";
  ClientHelloParse r = parseClientHello(bytes);
  ASSERT_EQ(r.status, ClientHelloStatus::kDone) << clientHelloErrorName(r.error);
  EXPECT_EQ(r.sni, "b.example");
  EXPECT_EQ(r.consumed, bytes.size());
  // Arriving in 100-byte TCP segments: more needed until the last one.
  for (size_t n = 100; n < bytes.size(); n += 100)
    EXPECT_EQ(parseClientHello(std::string_view(bytes).substr(0, n)).status,
              ClientHelloStatus::kNeedMore);
}

TEST(ClientHello, BytesAfterTheClientHelloAreNotLookedAt) {
  std::string bytes = opensslClientHello(withSni("a.example"));
  size_t hello = bytes.size();
  bytes += std::string("\x17\x03\x03\x00\x05hello", 10);  // application data after it
  ClientHelloParse r = parseClientHello(bytes);
  ASSERT_EQ(r.status, ClientHelloStatus::kDone);
  EXPECT_EQ(r.sni, "a.example");
  EXPECT_EQ(r.consumed, hello);
}

// ---- hand-made vectors -------------------------------------------------------------

std::string u16(size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string u24(size_t v) {
  return {static_cast<char>(v >> 16), static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

std::string extension(uint16_t type, const std::string& data) { return u16(type) + u16(data.size()) + data; }
// server_name with the given (type, name) entries.
std::string serverName(const std::vector<std::pair<uint8_t, std::string>>& names) {
  std::string list;
  for (const auto& [type, name] : names) list += static_cast<char>(type) + u16(name.size()) + name;
  return extension(0, u16(list.size()) + list);
}
std::string sniExtension(const std::string& name) { return serverName({{0, name}}); }
std::string padding(size_t n) { return extension(21, std::string(n, '\0')); }

struct Body {
  std::string version = "\x03\x03";
  std::string session_id;
  std::string suites = std::string("\x13\x01", 2);
  std::string compressions = std::string(1, '\0');
  std::optional<std::string> extensions = std::string();  // nullopt: no extensions block
  std::string trailing;

  std::string bytes() const {
    std::string b = version + std::string(32, 'r');
    b += static_cast<char>(session_id.size()) + session_id;
    b += u16(suites.size()) + suites;
    b += static_cast<char>(compressions.size()) + compressions;
    if (extensions) b += u16(extensions->size()) + *extensions;
    return b + trailing;
  }
};

std::string handshake(const std::string& body, uint8_t type = 1) {
  return static_cast<char>(type) + u24(body.size()) + body;
}
// The handshake bytes cut into handshake records of at most `fragment` bytes.
std::string records(const std::string& hs, size_t fragment = 16384, std::string version = "\x03\x01") {
  std::string out;
  for (size_t at = 0; at < hs.size(); at += fragment) {
    std::string part = hs.substr(at, fragment);
    out += "\x16" + version + u16(part.size()) + part;
  }
  return out;
}
std::string helloWith(const std::string& extensions) {
  Body b;
  b.extensions = extensions;
  return records(handshake(b.bytes()));
}

TEST(ClientHello, HandMadeVectors) {
  using S = ClientHelloStatus;
  using E = ClientHelloError;
  struct Row {
    const char* what;
    std::string bytes;
    S status;
    E error;
    std::string sni;
  };
  Body no_ext;
  no_ext.extensions.reset();
  Body long_session;
  long_session.session_id = std::string(33, 's');
  Body odd_suites;
  odd_suites.suites = std::string("\x13\x01\x13", 3);
  Body no_compression;
  no_compression.compressions.clear();
  Body sslv2_version;
  sslv2_version.version = std::string("\x02\x00", 2);
  Body trailing;
  trailing.extensions = sniExtension("a.example");
  trailing.trailing = "x";
  Body huge;
  huge.extensions = padding(16000) + sniExtension("big.example");
  std::string alert_mid = records(handshake(Body{}.bytes()), 20);
  alert_mid.replace(alert_mid.find('\x16', 1), 1, "\x15");
  std::string hello = helloWith(sniExtension("a.example"));
  const Row rows[] = {
      {"empty input", "", S::kNeedMore, E::kNone, ""},
      {"one handshake byte", "\x16", S::kNeedMore, E::kNone, ""},
      {"HTTP request", "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", S::kNotTls, E::kNotHandshake, ""},
      {"first byte of an SSH banner", "S", S::kNotTls, E::kNotHandshake, ""},
      {"SSLv2 ClientHello", std::string("\x80\x2e\x01\x00\x02", 5), S::kNotTls, E::kNotHandshake, ""},
      {"record version 2.0", std::string("\x16\x02\x00\x00\x10", 5), S::kNotTls, E::kBadRecordVersion, ""},
      {"record version 3.5", std::string("\x16\x03\x05", 3), S::kNotTls, E::kBadRecordVersion, ""},
      {"empty record", std::string("\x16\x03\x01\x00\x00", 5), S::kNotTls, E::kBadRecordLength, ""},
      {"record over 2^14", std::string("\x16\x03\x01\x40\x01", 5), S::kNotTls, E::kBadRecordLength, ""},
      {"ServerHello", records(handshake(Body{}.bytes(), 2)), S::kNotTls, E::kNotClientHello, ""},
      {"first payload byte not ClientHello", std::string("\x16\x03\x01\x00\x30\x0b", 6), S::kNotTls,
       E::kNotClientHello, ""},
      {"ClientHello longer than 16 KiB", std::string("\x16\x03\x01\x00\x04\x01\x00\x40\x01", 9),
       S::kNotTls, E::kTooLarge, ""},
      {"header only, body not yet here", std::string("\x16\x03\x01\x00\x04\x01\x00\x00\x50", 9),
       S::kNeedMore, E::kNone, ""},
      {"alert record inside the ClientHello", alert_mid, S::kNotTls, E::kRecordTypeChange, ""},
      {"no extensions", records(handshake(no_ext.bytes())), S::kDone, E::kNone, ""},
      {"empty extensions", helloWith(""), S::kDone, E::kNone, ""},
      {"SNI", hello, S::kDone, E::kNone, "a.example"},
      {"SNI after other extensions", helloWith(padding(10) + extension(16, "\x00\x03\x02h2") +
                                               sniExtension("c.example")),
       S::kDone, E::kNone, "c.example"},
      {"SNI with an unknown name type first", helloWith(serverName({{7, "x"}, {0, "d.example"}})),
       S::kDone, E::kNone, "d.example"},
      {"ClientHello in 1-byte records", records(handshake([] {
                                                  Body b;
                                                  b.extensions = sniExtension("tiny.example");
                                                  return b.bytes();
                                                }()),
                                                1),
       S::kDone, E::kNone, "tiny.example"},
      {"16 KiB ClientHello in one record", records(handshake(huge.bytes())), S::kDone, E::kNone,
       "big.example"},
      {"16 KiB ClientHello in 512-byte records", records(handshake(huge.bytes()), 512), S::kDone,
       E::kNone, "big.example"},
      {"16 KiB ClientHello in 100-byte records (record headers pass the bound)",
       records(handshake(huge.bytes()), 100), S::kNotTls, E::kTooLarge, ""},
      {"session id of 33 bytes", records(handshake(long_session.bytes())), S::kNotTls, E::kMalformed,
       ""},
      {"odd cipher suites length", records(handshake(odd_suites.bytes())), S::kNotTls, E::kMalformed,
       ""},
      {"no compression method", records(handshake(no_compression.bytes())), S::kNotTls,
       E::kMalformed, ""},
      {"legacy version 2.0", records(handshake(sslv2_version.bytes())), S::kNotTls, E::kMalformed,
       ""},
      {"byte after the extensions", records(handshake(trailing.bytes())), S::kNotTls, E::kMalformed,
       ""},
      {"extension longer than its block", helloWith(u16(0) + u16(50) + "short"), S::kNotTls,
       E::kMalformed, ""},
      {"truncated extension header", helloWith(std::string(1, '\0')), S::kNotTls, E::kMalformed, ""},
      {"body shorter than its fixed fields", records(handshake("\x03\x03" + std::string(10, 'r'))),
       S::kNotTls, E::kMalformed, ""},
      {"two server_name extensions",
       helloWith(sniExtension("a.example") + sniExtension("b.example")), S::kNotTls,
       E::kDuplicateExtension, ""},
      {"two host names", helloWith(serverName({{0, "a.example"}, {0, "b.example"}})), S::kNotTls,
       E::kBadServerName, ""},
      {"empty host name", helloWith(sniExtension("")), S::kNotTls, E::kBadServerName, ""},
      {"host name with a NUL", helloWith(sniExtension(std::string("a\0.example", 10))), S::kNotTls,
       E::kBadServerName, ""},
      {"host name with a space", helloWith(sniExtension("a .example")), S::kNotTls,
       E::kBadServerName, ""},
      {"host name with a trailing dot", helloWith(sniExtension("a.example.")), S::kNotTls,
       E::kBadServerName, ""},
      {"host name of 256 bytes", helloWith(sniExtension(std::string(256, 'a'))), S::kNotTls,
       E::kBadServerName, ""},
      {"server_name list length off by one", helloWith(extension(0, u16(13) + '\0' + u16(9) + "a.example")),
       S::kNotTls, E::kBadServerName, ""},
      {"empty server_name extension", helloWith(extension(0, "")), S::kNotTls, E::kBadServerName,
       ""},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    ClientHelloParse r = parseClientHello(row.bytes);
    EXPECT_EQ(r.status, row.status);
    EXPECT_EQ(clientHelloErrorName(r.error), clientHelloErrorName(row.error));
    EXPECT_EQ(r.sni, row.sni);
    EXPECT_EQ(r.has_sni, !row.sni.empty());
    if (r.status == S::kDone) {
      EXPECT_LE(r.consumed, row.bytes.size());
    }
  }
}

TEST(ClientHello, NeedingMoreNeverHappensAtTheInputBound) {
  // A stream of small handshake records that never completes a ClientHello
  // announcing 16 KiB: the reader gives up before the caller's buffer is full.
  std::string hs = handshake(std::string(kMaxClientHelloLength, 'x'));
  std::string bytes = records(hs, 64);
  ClientHelloParse r = parseClientHello(std::string_view(bytes).substr(0, kMaxClientHelloInput));
  EXPECT_EQ(r.status, ClientHelloStatus::kNotTls);
  EXPECT_EQ(r.error, ClientHelloError::kTooLarge);
}

}  // namespace
}  // namespace banyan::dp::tls
