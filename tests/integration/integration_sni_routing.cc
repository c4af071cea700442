// SNI routing on passthrough listeners: L7 policies on HTTPS and TCP listeners
// match the TLS ClientHello's server name. The proxy holds the client's first
// bytes until the ClientHello is complete (or the bytes are not TLS, or the
// inspect time is over), picks a pool, and forwards the held bytes unchanged.
// Every test runs with io_uring batched I/O and with --no-io-batching.
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tls_helpers.h"

namespace banyan::test {
namespace {

// ---- clients --------------------------------------------------------------------

// The bytes an OpenSSL client sends first, for `sni`: optionally cut into records of
// `max_fragment` bytes and made large with `alpn_count` offered protocols.
std::string clientHelloBytes(const std::string& sni, unsigned max_fragment = 0,
                             size_t alpn_count = 0) {
  ClientHelloSpec spec;
  spec.sni = sni;
  spec.max_fragment = max_fragment;
  for (size_t i = 0; i < alpn_count; ++i) spec.alpn.push_back("protocol-number-" + std::to_string(i));
  return test::clientHelloBytes(spec);
}

// One HTTPS request over a real handshake whose ClientHello OpenSSL cuts into
// records of `max_fragment` bytes; returns the member's X-Backend ("" on failure).
std::string backendOverFragmentedHello(uint16_t port, const std::string& sni,
                                       unsigned max_fragment) {
  Fd fd = connectTo("127.0.0.1", port);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL* ssl = SSL_new(ctx);
  SSL_set_tlsext_host_name(ssl, sni.c_str());
  SSL_set_max_send_fragment(ssl, max_fragment);
  std::string alpn;
  for (int i = 0; i < 60; ++i) {  // a ClientHello of some 1.5 KiB: several records
    std::string p = "protocol-number-" + std::to_string(i);
    alpn += static_cast<char>(p.size()) + p;
  }
  SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(alpn.data()),
                      static_cast<unsigned>(alpn.size()));
  SSL_set_fd(ssl, fd.get());
  std::string response;
  if (SSL_connect(ssl) == 1) {
    std::string req = "GET / HTTP/1.1\r\nHost: " + sni + "\r\nConnection: close\r\n\r\n";
    if (SSL_write(ssl, req.data(), static_cast<int>(req.size())) > 0) {
      char buf[4096];
      int n;
      while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  size_t at = response.find("X-Backend: ");
  if (at == std::string::npos) return "";
  return response.substr(at + 11, response.find("\r\n", at) - at - 11);
}

std::string backendOf(TlsTestClient& c) {
  HttpResponse r = c.get("/");
  return r.status == 200 ? r.header("X-Backend") : "status " + std::to_string(r.status);
}

PoolSpec poolOf(const std::string& id, const std::string& protocol, std::vector<MemberSpec> members) {
  PoolSpec p;
  p.id = id;
  p.protocol = protocol;
  p.members = std::move(members);
  return p;
}

ListenerSpec listenerOf(const std::string& id, const std::string& protocol, uint16_t port,
                        const std::string& default_pool) {
  ListenerSpec l;
  l.id = id;
  l.protocol = protocol;
  l.protocol_port = port;
  l.default_pool_id = default_pool;
  return l;
}

TlsMemberOptions memberOptions() {
  TlsMemberOptions o;
  o.bundle = testPki().www_bundle;
  return o;
}

// ---- the fixture ----------------------------------------------------------------

// Listener "https" (HTTPS passthrough) over three pools of TLS members:
//   bad.example -> REJECT; a.example -> pool "pa"; *.b.example -> pool "pb";
//   a PATH policy (no sample on passthrough: never matches); else "pd".
// Listener "tcp" (TCP, inspect 300 ms) over members that speak first:
//   a.example -> "ta" (PROXY v1 pool); else "td".
// Listener "tcp-path" (TCP, inspect 3 s) with a PATH policy only: no inspection.
class SniRouting : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ConfigSpec c;
    c.workers = 2;
    c.pools.push_back(poolOf("pa", "HTTPS", {memberOf(a_)}));
    c.pools.push_back(poolOf("pb", "HTTPS", {memberOf(b_)}));
    c.pools.push_back(poolOf("pd", "TCP", {memberOf(d_)}));
    c.pools.push_back(poolOf("ta", "PROXY", {memberOf(ta_)}));
    c.pools.push_back(poolOf("td", "TCP", {memberOf(td_)}));
    ListenerSpec https = listenerOf("https", "HTTPS", https_port_, "pd");
    https.extra["l7policies"] = R"([
      {"id": "path", "position": 1, "action": "REJECT",
       "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/"}]},
      {"id": "reject", "position": 2, "action": "REJECT",
       "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "bad.example"}]},
      {"id": "to-a", "position": 3, "action": "REDIRECT_TO_POOL", "redirect_pool_id": "pa",
       "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "a.example"}]},
      {"id": "to-b", "position": 4, "action": "REDIRECT_TO_POOL", "redirect_pool_id": "pb",
       "rules": [{"type": "HOST_NAME", "compare_type": "ENDS_WITH", "value": ".b.example"}]},
      {"id": "url", "position": 5, "action": "REDIRECT_TO_URL",
       "redirect_url": "https://elsewhere.example/",
       "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "d.example"}]}])";
    c.listeners.push_back(https);
    ListenerSpec tcp = listenerOf("tcp", "TCP", tcp_port_, "td");
    tcp.timeout_tcp_inspect = 300;
    tcp.extra["l7policies"] = R"([
      {"id": "to-ta", "action": "REDIRECT_TO_POOL", "redirect_pool_id": "ta",
       "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "a.example"}]}])";
    c.listeners.push_back(tcp);
    ListenerSpec tcp_path = listenerOf("tcp-path", "TCP", tcp_path_port_, "td");
    tcp_path.timeout_tcp_inspect = 3000;
    tcp_path.extra["l7policies"] = R"([
      {"id": "p", "action": "REDIRECT_TO_POOL", "redirect_pool_id": "ta",
       "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/"}]}])";
    c.listeners.push_back(tcp_path);
    ProxyRunOptions run;
    if (!GetParam()) run.extra_args = {"--no-io-batching"};
    proxy_ = std::make_unique<ProxyProcess>(c.toJson(), run);
  }

  uint16_t https_port_ = pickFreePort();
  uint16_t tcp_port_ = pickFreePort();
  uint16_t tcp_path_port_ = pickFreePort();
  TestTlsMember a_{"a1", "127.0.0.151", memberOptions()};
  TestTlsMember b_{"b1", "127.0.0.152", memberOptions()};
  TestTlsMember d_{"d1", "127.0.0.153", memberOptions()};
  TestTcpBackend ta_{"ta", "127.0.0.154"};
  TestTcpBackend td_{"td", "127.0.0.155"};
  std::unique_ptr<ProxyProcess> proxy_;

  // What the PROXY pool's member "ta" sent back: its greeting checked and
  // removed, then the PROXY header line and `size` echoed bytes after it.
  static std::string readEcho(Fd& fd, size_t size, int timeout_ms = 3000) {
    std::string got;
    if (!readAtLeast(fd.get(), got, 3 + 16, timeout_ms)) ADD_FAILURE() << "no greeting";
    EXPECT_EQ(got.substr(0, 3), "ta\n");
    size_t header_end = std::string::npos;
    waitUntil([&] {
      header_end = got.find("\r\n");
      return header_end != std::string::npos || readSome(fd.get(), got, 50) == ReadOutcome::Eof;
    }, Millis(timeout_ms));
    if (header_end == std::string::npos) {
      ADD_FAILURE() << "no PROXY header";
      return got;
    }
    if (!readAtLeast(fd.get(), got, header_end + 2 + size, timeout_ms))
      ADD_FAILURE() << "got " << got.size() << " of " << header_end + 2 + size << " bytes";
    return got.substr(3);
  }
};

TEST_P(SniRouting, AnExactHostNameRoutesToItsPoolAndTheMemberSeesTheSameSni) {
  TlsTestClient c("127.0.0.1", https_port_, sniOptions("a.example"));
  ASSERT_TRUE(c.handshakeOk()) << c.error();
  EXPECT_EQ(backendOf(c), "a1");
  auto hs = a_.handshakes();
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_EQ(hs[0].sni, "a.example");
}

TEST_P(SniRouting, AnEndsWithRuleRoutesEveryNameUnderTheDomainIgnoringCase) {
  for (const char* name : {"x.b.example", "API.B.Example"}) {
    TlsTestClient c("127.0.0.1", https_port_, sniOptions(name));
    ASSERT_TRUE(c.handshakeOk()) << name << ": " << c.error();
    EXPECT_EQ(backendOf(c), "b1") << name;
  }
}

TEST_P(SniRouting, OtherNamesAndClientsWithoutSniGoToTheDefaultPool) {
  // d.example matches only a REDIRECT_TO_URL policy: redirects never match
  // passthrough traffic. The PATH policy has no sample either.
  for (const char* name : {"c.example", "b.example", "d.example", ""}) {
    TlsTestClient c("127.0.0.1", https_port_, sniOptions(name));
    ASSERT_TRUE(c.handshakeOk()) << name << ": " << c.error();
    EXPECT_EQ(backendOf(c), "d1") << name;
  }
  EXPECT_EQ(d_.handshakeCount(), 4u);
  EXPECT_EQ(a_.handshakeCount() + b_.handshakeCount(), 0u);
}

TEST_P(SniRouting, ARejectedNameIsClosedWithoutConnectingAMemberAndCounted) {
  TlsTestClient c("127.0.0.1", https_port_, sniOptions("bad.example"));
  EXPECT_FALSE(c.handshakeOk());
  EXPECT_EQ(a_.handshakeCount() + b_.handshakeCount() + d_.handshakeCount(), 0u);
  EXPECT_TRUE(waitUntil(
      [&] { return statValue(*proxy_, "listeners", "https", "request_errors").value_or(0) == 1; },
      Millis(3000)));
  EXPECT_EQ(d_.backend().requestCount(), 0u);
}

TEST_P(SniRouting, AClientHelloCutIntoSmallTcpSegmentsIsReassembled) {
  TlsClientOptions o = sniOptions("a.example");
  o.segment = 7;
  o.segment_delay_ms = 2;
  TlsTestClient c("127.0.0.1", https_port_, o);
  ASSERT_TRUE(c.handshakeOk()) << c.error();
  EXPECT_EQ(backendOf(c), "a1");
}

TEST_P(SniRouting, AClientHelloSpanningSeveralTlsRecordsIsReassembled) {
  EXPECT_EQ(backendOverFragmentedHello(https_port_, "x.b.example", 512), "b1");
}

TEST_P(SniRouting, ManyConnectionsEachFollowTheirOwnName) {
  std::vector<std::unique_ptr<TlsTestClient>> clients;
  const char* names[] = {"a.example", "z.b.example", "other.example"};
  const char* expected[] = {"a1", "b1", "d1"};
  for (int i = 0; i < 12; ++i)
    clients.push_back(std::make_unique<TlsTestClient>("127.0.0.1", https_port_, sniOptions(names[i % 3])));
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(clients[i]->handshakeOk()) << i;
    EXPECT_EQ(backendOf(*clients[i]), expected[i % 3]) << i;
  }
}

// A TCP listener with SNI policies: the held ClientHello goes to the member
// unchanged and first, right after the PROXY header of a PROXY pool.
TEST_P(SniRouting, HeldBytesReachTheMemberUnchangedAfterThePoolsProxyHeader) {
  std::string hello = clientHelloBytes("a.example", 512, 40);
  ASSERT_GT(hello.size(), 1024u);
  Fd fd = connectTo("127.0.0.1", tcp_port_);
  sendAll(fd.get(), hello);
  sendAll(fd.get(), "and then some");
  // The member greets ("ta\n") and echoes everything it received.
  std::string tail = hello + "and then some";
  std::string echoed = readEcho(fd, tail.size());
  ASSERT_EQ(echoed.rfind("PROXY TCP4 127.0.0.1 127.0.0.1 ", 0), 0u) << echoed.substr(0, 60);
  EXPECT_TRUE(echoed.substr(echoed.find("\r\n") + 2) == tail) << "the held bytes changed on the way";
  EXPECT_EQ(td_.connectionCount(), 0u);
}

TEST_P(SniRouting, BulkDataAfterTheHeldClientHelloArrivesIntact) {
  // Large reads switch the tunnel to splice(2), which may only start once the
  // held bytes went out.
  std::string hello = clientHelloBytes("a.example");
  std::string payload = hello + patternBody(1 << 20);
  Fd fd = connectTo("127.0.0.1", tcp_port_);
  std::thread writer([&] { sendAll(fd.get(), payload); });
  std::string echoed = readEcho(fd, payload.size(), 10000);
  writer.join();
  EXPECT_TRUE(echoed.substr(echoed.find("\r\n") + 2) == payload) << "bytes differ";
}

TEST_P(SniRouting, PlainBytesOnATcpListenerGoToTheDefaultPoolAtOnce) {
  Fd fd = connectTo("127.0.0.1", tcp_port_);
  auto start = Clock::now();
  sendAll(fd.get(), "hello\n");
  std::string got;
  ASSERT_TRUE(readAtLeast(fd.get(), got, 9, 3000));
  EXPECT_EQ(got, "td\nhello\n");
  // Not TLS from the first byte: no need to wait for the inspect time.
  EXPECT_LT(Clock::now() - start, Millis(280));
}

TEST_P(SniRouting, AServerFirstClientReachesTheDefaultPoolAfterTheInspectTime) {
  Fd fd = connectTo("127.0.0.1", tcp_port_);
  auto start = Clock::now();
  std::string got;
  ASSERT_TRUE(readAtLeast(fd.get(), got, 3, 3000)) << "no greeting";
  auto waited = Clock::now() - start;
  EXPECT_EQ(got, "td\n");
  EXPECT_GE(waited, Millis(250)) << "the proxy did not wait for a ClientHello";
  sendAll(fd.get(), "ping");
  got.clear();
  ASSERT_TRUE(readAtLeast(fd.get(), got, 4, 3000));
  EXPECT_EQ(got, "ping");
}

TEST_P(SniRouting, PoliciesThatCannotLookAtTheSniAddNoDelay) {
  // The PATH policy never matches passthrough traffic: nothing to inspect, the
  // member's greeting comes at once although the inspect time is 3 s.
  Fd fd = connectTo("127.0.0.1", tcp_path_port_);
  std::string got;
  ASSERT_TRUE(readAtLeast(fd.get(), got, 3, 1000)) << "the connection waited";
  EXPECT_EQ(got, "td\n");
}

TEST_P(SniRouting, AClientThatClosesDuringInspectionStillReachesTheMemberWithItsBytes) {
  std::string hello = clientHelloBytes("a.example");
  Fd fd = connectTo("127.0.0.1", tcp_port_);
  sendAll(fd.get(), hello.substr(0, 20));  // a prefix: more is needed...
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);  // ...but the client is done
  std::string got;
  EXPECT_TRUE(readUntilEof(fd.get(), got, 3000));
  EXPECT_EQ(got, "td\n" + hello.substr(0, 20) + "bye\n");
}

INSTANTIATE_TEST_SUITE_P(IoModes, SniRouting, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Batched") : std::string("Direct");
                         });

}  // namespace
}  // namespace banyan::test
