// TERMINATED_HTTPS listeners: certificates and SNI, versions, ciphers, ALPN,
// HSTS, X-Forwarded-Proto, session resumption, partial TLS records, PROXY
// headers before TLS, and HTTPS passthrough. Real clients: openssl s_client,
// curl, and an in-process OpenSSL client.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tls_helpers.h"

namespace banyan::test {
namespace {

class TlsTermination : public ::testing::Test {
 protected:
  void start(ConfigSpec c) { proxy_ = std::make_unique<ProxyProcess>(c.toJson()); }
  void start() { start(tlsConfig(port_, {memberOf(member_)})); }

  uint16_t port_ = pickFreePort();
  TestHttpBackend member_{"m1", "127.0.0.31"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(TlsTermination, ServesTheDefaultCertificateWithoutSni) {
  start();
  TlsTestClient c("127.0.0.1", port_, {});
  ASSERT_TRUE(c.handshakeOk()) << c.error();
  EXPECT_EQ(c.peerCommonName(), "default.example.test");
  HttpResponse r = c.get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "m1\n");
}

TEST_F(TlsTermination, SniPicksTheCertificateNamedInItsSubjectAltNames) {
  start();
  TlsTestClient www("127.0.0.1", port_, sniOptions("www.example.test"));
  ASSERT_TRUE(www.handshakeOk()) << www.error();
  EXPECT_EQ(www.peerCommonName(), "www.example.test");
  TlsTestClient api("127.0.0.1", port_, sniOptions("api.example.test"));
  ASSERT_TRUE(api.handshakeOk()) << api.error();
  EXPECT_EQ(api.peerCommonName(), "api.example.test");
  EXPECT_EQ(api.get("/").status, 200);
}

TEST_F(TlsTermination, OpensslClientSeesTheCertificateItsServerNameSelects) {
  start();
  ToolResult api = sClient(port_, {"-servername", "api.example.test"});
  EXPECT_TRUE(contains(api.out, "CN = api.example.test")) << api.out;
  EXPECT_TRUE(contains(api.out, "HTTP/1.1 200")) << api.out;
  ToolResult none = sClient(port_, {"-noservername"});
  EXPECT_TRUE(contains(none.out, "CN = default.example.test")) << none.out;
  // The chain goes with the certificate: s_client verifies it against the root.
  ToolResult verified =
      sClient(port_, {"-servername", "www.example.test", "-CAfile", testPki().root_ca,
                      "-verify_return_error"});
  EXPECT_TRUE(contains(verified.out, "Verify return code: 0 (ok)")) << verified.out;
}

TEST_F(TlsTermination, SniMatchesAWildcardNameForOneLabelOnly) {
  start();
  TlsTestClient one("127.0.0.1", port_, sniOptions("a.wild.example.test"));
  ASSERT_TRUE(one.handshakeOk()) << one.error();
  EXPECT_EQ(one.peerCommonName(), "www.example.test");
  TlsTestClient two("127.0.0.1", port_, sniOptions("a.b.wild.example.test"));
  ASSERT_TRUE(two.handshakeOk()) << two.error();
  EXPECT_EQ(two.peerCommonName(), "default.example.test");
  TlsTestClient bare("127.0.0.1", port_, sniOptions("wild.example.test"));
  ASSERT_TRUE(bare.handshakeOk()) << bare.error();
  EXPECT_EQ(bare.peerCommonName(), "default.example.test");
}

TEST_F(TlsTermination, SniIsMatchedWithoutRegardToCase) {
  start();
  TlsTestClient c("127.0.0.1", port_, sniOptions("WWW.Example.TEST"));
  ASSERT_TRUE(c.handshakeOk()) << c.error();
  EXPECT_EQ(c.peerCommonName(), "www.example.test");
}

TEST_F(TlsTermination, AnUnknownSniGetsTheDefaultCertificate) {
  start();
  TlsTestClient c("127.0.0.1", port_, sniOptions("nobody.example.org"));
  ASSERT_TRUE(c.handshakeOk()) << c.error();
  EXPECT_EQ(c.peerCommonName(), "default.example.test");
}

TEST_F(TlsTermination, CurlVerifiesTheServedChainUpToTheRoot) {
  start();
  std::string host = "www.example.test:" + std::to_string(port_);
  ToolResult r = runTool({"curl", "-sS", "--cacert", testPki().root_ca, "--resolve",
                          host + ":127.0.0.1", "https://" + host + "/curl", "-o", "/dev/null",
                          "-w", "%{http_code} %{ssl_verify_result}"});
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "200 0");
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  EXPECT_EQ(member_.requests().back().target, "/curl");
}

TEST_F(TlsTermination, CurlRefusesANameNoCertificateCovers) {
  start();
  // Unknown SNI gets the default certificate, which does not name it.
  std::string host = "nobody.example.test:" + std::to_string(port_);
  ToolResult r = runTool({"curl", "-sS", "--cacert", testPki().root_ca, "--resolve",
                          host + ":127.0.0.1", "https://" + host + "/"});
  EXPECT_NE(r.exit_status, 0);
  EXPECT_EQ(member_.requestCount(), 0u);
}

TEST_F(TlsTermination, XForwardedProtoAndForwardedSayHttps) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").insert_headers = {{"X-Forwarded-Proto", "true"}, {"Forwarded", "true"},
                                     {"X-Forwarded-Port", "true"}};
  start(c);
  TlsTestClient t("127.0.0.1", port_, {});
  ASSERT_TRUE(t.handshakeOk()) << t.error();
  EXPECT_EQ(t.get("/", {{"X-Forwarded-Proto", "http"}}).status, 200);
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  RecordedRequest req = member_.requests().back();
  EXPECT_EQ(joinedHeaderValues(req.headers, "X-Forwarded-Proto"), "https");
  EXPECT_EQ(req.header("X-Forwarded-Port"), std::to_string(port_));
  EXPECT_EQ(req.header("Forwarded"), "for=127.0.0.1;proto=https;by=127.0.0.1");
}

TEST_F(TlsTermination, HstsHeaderReplacesTheMembersOwn) {
  member_.configure([](HttpBackendOptions& o) { (void)o; });
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").extra["hsts_max_age"] = "31536000";
  c.listener("l1").extra["hsts_include_subdomains"] = "true";
  c.listener("l1").extra["hsts_preload"] = "true";
  start(c);
  TlsTestClient t("127.0.0.1", port_, {});
  ASSERT_TRUE(t.handshakeOk()) << t.error();
  HttpResponse r = t.get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Strict-Transport-Security"), "max-age=31536000; includeSubDomains; preload;");
  EXPECT_EQ(headerCount(r.headers, "Strict-Transport-Security"), 1u);
}

TEST_F(TlsTermination, NoHstsHeaderWithoutMaxAge) {
  start();
  TlsTestClient t("127.0.0.1", port_, {});
  ASSERT_TRUE(t.handshakeOk()) << t.error();
  HttpResponse r = t.get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.hasHeader("Strict-Transport-Security"));
}

TEST_F(TlsTermination, DefaultVersionsAreTls12AndTls13) {
  start();
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    TlsClientOptions o;
    o.min_version = o.max_version = v;
    TlsTestClient c("127.0.0.1", port_, o);
    EXPECT_TRUE(c.handshakeOk()) << v << " " << c.error();
  }
  ToolResult r = sClient(port_, {"-tls1_1"});
  EXPECT_NE(r.exit_status, 0) << r.out;
  EXPECT_FALSE(contains(r.out, "HTTP/1.1 200"));
}

TEST_F(TlsTermination, TlsVersionsDisableEveryVersionNotListed) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").extra["tls_versions"] = jsonList({"TLSv1.3"});
  start(c);
  ToolResult old = sClient(port_, {"-tls1_2"});
  EXPECT_FALSE(contains(old.out, "HTTP/1.1 200")) << old.out;
  ToolResult ok = sClient(port_, {"-tls1_3"});
  EXPECT_TRUE(contains(ok.out, "HTTP/1.1 200")) << ok.out << ok.err;
  EXPECT_TRUE(contains(ok.out, "TLSv1.3")) << ok.out;
}

TEST_F(TlsTermination, TlsCiphersLimitTls12Ciphers) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").extra["tls_versions"] = jsonList({"TLSv1.2"});
  c.listener("l1").extra["tls_ciphers"] = jsonString("ECDHE-RSA-AES128-GCM-SHA256");
  start(c);
  TlsClientOptions refused;
  refused.cipher_list = "ECDHE-RSA-AES256-GCM-SHA384";
  TlsTestClient a("127.0.0.1", port_, refused);
  EXPECT_FALSE(a.handshakeOk());
  TlsClientOptions allowed;
  allowed.cipher_list = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256";
  TlsTestClient b("127.0.0.1", port_, allowed);
  ASSERT_TRUE(b.handshakeOk()) << b.error();
  EXPECT_EQ(b.cipher(), "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(b.version(), "TLSv1.2");
}

TEST_F(TlsTermination, TlsCiphersLimitTls13Suites) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").extra["tls_ciphers"] =
      jsonString("TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-AES128-GCM-SHA256");
  start(c);
  TlsClientOptions refused;
  refused.min_version = TLS1_3_VERSION;
  refused.ciphersuites = "TLS_AES_256_GCM_SHA384";
  TlsTestClient a("127.0.0.1", port_, refused);
  EXPECT_FALSE(a.handshakeOk());
  TlsClientOptions any;
  any.min_version = TLS1_3_VERSION;
  TlsTestClient b("127.0.0.1", port_, any);
  ASSERT_TRUE(b.handshakeOk()) << b.error();
  EXPECT_EQ(b.cipher(), "TLS_CHACHA20_POLY1305_SHA256");
}

TEST_F(TlsTermination, OctaviasDefaultCiphersRefuseCbcAndNonForwardSecretTls12) {
  start();
  TlsClientOptions o;
  o.max_version = TLS1_2_VERSION;
  o.cipher_list = "AES128-SHA:AES256-GCM-SHA384";
  TlsTestClient a("127.0.0.1", port_, o);
  EXPECT_FALSE(a.handshakeOk());
}

TEST_F(TlsTermination, AlpnPrefersH2ByDefaultAsOctaviaDoes) {
  start();
  TlsClientOptions o;
  o.alpn = {"http/1.1", "h2"};
  TlsTestClient a("127.0.0.1", port_, o);
  ASSERT_TRUE(a.handshakeOk()) << a.error();
  EXPECT_EQ(a.alpn(), "h2");
  TlsClientOptions h11;
  h11.alpn = {"http/1.1"};
  TlsTestClient b("127.0.0.1", port_, h11);
  ASSERT_TRUE(b.handshakeOk()) << b.error();
  EXPECT_EQ(b.alpn(), "http/1.1");
  EXPECT_EQ(b.get("/").status, 200);
}

TEST_F(TlsTermination, AlpnWithoutH2NeverSelectsIt) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").extra["alpn_protocols"] = jsonList({"http/1.1", "http/1.0"});
  start(c);
  TlsClientOptions h2only;
  h2only.alpn = {"h2"};
  TlsTestClient b("127.0.0.1", port_, h2only);
  ASSERT_TRUE(b.handshakeOk()) << b.error();
  EXPECT_EQ(b.alpn(), "");
  EXPECT_EQ(b.get("/").status, 200);
}

TEST_F(TlsTermination, AlpnProtocolsAreAdvertisedAsConfigured) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").extra["alpn_protocols"] = jsonList({"http/1.0"});
  start(c);
  ToolResult r = sClient(port_, {"-alpn", "http/1.1,http/1.0"});
  EXPECT_TRUE(contains(r.out, "ALPN protocol: http/1.0")) << r.out;
  ToolResult none = sClient(port_, {"-alpn", "http/1.1"});
  EXPECT_TRUE(contains(none.out, "No ALPN negotiated")) << none.out;
}

TEST_F(TlsTermination, SessionsResumeWithOpensslSessionFiles) {
  start();
  TempDir dir;
  std::string sess = dir.file("session.pem");
  ToolResult first = sClient(port_, {"-sess_out", sess});
  ASSERT_TRUE(contains(first.out, "HTTP/1.1 200")) << first.out << first.err;
  EXPECT_TRUE(contains(first.out, "New, TLSv1.3")) << first.out;
  ToolResult second = sClient(port_, {"-sess_in", sess});
  EXPECT_TRUE(contains(second.out, "Reused, TLSv1.3")) << second.out;
  EXPECT_TRUE(contains(second.out, "HTTP/1.1 200")) << second.out;
}

TEST_F(TlsTermination, Tls12SessionsResumeWithTickets) {
  start();
  TempDir dir;
  std::string sess = dir.file("session.pem");
  ToolResult first = sClient(port_, {"-tls1_2", "-sess_out", sess});
  ASSERT_TRUE(contains(first.out, "HTTP/1.1 200")) << first.out << first.err;
  ToolResult second = sClient(port_, {"-tls1_2", "-sess_in", sess});
  EXPECT_TRUE(contains(second.out, "Reused, TLSv1.2")) << second.out;
}

TEST_F(TlsTermination, ResumptionWorksOnEveryWorker) {
  start(tlsConfig(port_, {memberOf(member_)}, 4));
  TlsTestClient first("127.0.0.1", port_, {});
  ASSERT_TRUE(first.handshakeOk());
  first.get("/");  // TLS 1.3 tickets arrive with the first response
  std::string session = first.sessionDer();
  ASSERT_FALSE(session.empty());
  // Connections spread over the four workers' SO_REUSEPORT sockets by source
  // port: a ticket sealed by one worker must open on every other one.
  for (int i = 0; i < 12; ++i) {
    TlsClientOptions o;
    o.session = session;
    TlsTestClient again("127.0.0.1", port_, o);
    ASSERT_TRUE(again.handshakeOk()) << again.error();
    EXPECT_TRUE(again.resumed()) << "connection " << i;
    EXPECT_EQ(again.get("/").status, 200);
  }
}

// wrk's TLS client (the bench's tls-resume scenario): one SSL per connection
// slot, reset with SSL_shutdown + SSL_clear between connections, and a client
// session cache. Such an OpenSSL client marks a TLS 1.3 session it resumed as
// not resumable, so it resumes the next connection only with a ticket that the
// resumed connection sent. Issue 3: without that ticket every other
// connection was a full handshake.
TEST_F(TlsTermination, AClientReusingItsSslObjectResumesEveryConnectionOnEveryWorker) {
  start(tlsConfig(port_, {memberOf(member_)}, 2));
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_AUTO_RETRY);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  // Connections spread over both workers' SO_REUSEPORT sockets by source port.
  constexpr int kConnections = 16;
  int resumed = 0;
  for (int i = 0; i < kConnections; ++i) {
    Fd fd = connectTo("127.0.0.1", port_);
    SSL_set_fd(ssl.get(), fd.get());
    SSL_set_tlsext_host_name(ssl.get(), "127.0.0.1");  // what wrk sends
    ASSERT_EQ(SSL_connect(ssl.get()), 1) << "connection " << i;
    const std::string request = "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    ASSERT_GT(SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())), 0);
    // Like wrk, stop reading once the response is complete (the tickets came first).
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\nm1\n") == std::string::npos) {
      int n = SSL_read(ssl.get(), buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_TRUE(contains(got, "HTTP/1.1 200")) << "connection " << i << ": " << got;
    bool reused = SSL_session_reused(ssl.get()) == 1;
    if (i > 0) {
      EXPECT_TRUE(reused) << "connection " << i;
    }
    resumed += reused ? 1 : 0;
    SSL_shutdown(ssl.get());
    SSL_clear(ssl.get());
  }
  EXPECT_EQ(resumed, kConnections - 1);
}

TEST_F(TlsTermination, ResumptionCanBeTurnedOff) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").extra["tls_session_resumption"] = "false";
  start(c);
  ToolResult r = sClient(port_, {});
  ASSERT_TRUE(contains(r.out, "HTTP/1.1 200")) << r.out << r.err;
  EXPECT_FALSE(contains(r.out, "New Session Ticket")) << r.out;
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    TlsClientOptions o;
    o.max_version = v;
    TlsTestClient first("127.0.0.1", port_, o);
    ASSERT_TRUE(first.handshakeOk());
    first.get("/");
    o.session = first.sessionDer();
    TlsTestClient second("127.0.0.1", port_, o);
    ASSERT_TRUE(second.handshakeOk());
    EXPECT_FALSE(second.resumed()) << v;
  }
}

TEST_F(TlsTermination, TicketsOutliveOneKeyRotationButNotThree) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.settings_extra["tls_ticket_key_rotation_s"] = "1";
  start(c);
  TlsTestClient first("127.0.0.1", port_, {});
  ASSERT_TRUE(first.handshakeOk());
  first.get("/");
  std::string session = first.sessionDer();
  ASSERT_FALSE(session.empty());
  TlsClientOptions o;
  o.session = session;
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));  // one rotation
  {
    TlsTestClient again("127.0.0.1", port_, o);
    ASSERT_TRUE(again.handshakeOk());
    EXPECT_TRUE(again.resumed());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));  // the key left the ring
  {
    TlsTestClient late("127.0.0.1", port_, o);
    ASSERT_TRUE(late.handshakeOk());
    EXPECT_FALSE(late.resumed());
    EXPECT_EQ(late.get("/").status, 200);
  }
}

TEST_F(TlsTermination, RecordsSplitIntoTinySegmentsAreReassembled) {
  start();
  TlsClientOptions o;
  o.sni = "www.example.test";
  o.segment = 7;
  o.segment_delay_ms = 1;
  TlsTestClient c("127.0.0.1", port_, o);
  ASSERT_TRUE(c.handshakeOk()) << c.error();
  HttpResponse r = c.get("/partial", {{"X-Pad", std::string(300, 'p')}});
  EXPECT_EQ(r.status, 200);
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  EXPECT_EQ(member_.requests().back().header("X-Pad"), std::string(300, 'p'));
}

TEST_F(TlsTermination, KeepAliveRequestsShareOneTlsConnection) {
  start();
  TlsTestClient c("127.0.0.1", port_, {});
  ASSERT_TRUE(c.handshakeOk());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.get("/k" + std::to_string(i)).status, 200);
  ASSERT_TRUE(member_.waitForRequests(5, 2000));
  EXPECT_EQ(statValue(*proxy_, "listeners", "l1", "total_connections").value_or(-1), 1);
}

TEST_F(TlsTermination, LargeBodiesCrossInBothDirections) {
  member_.configure([](HttpBackendOptions& o) { o.body_size = 3 << 20; });
  start();
  TlsTestClient c("127.0.0.1", port_, {});
  ASSERT_TRUE(c.handshakeOk());
  std::string body = patternBody(1 << 20);
  c.send(HttpClient::buildRequest("POST", "/upload", {{"Host", "test"}}, body));
  HttpResponse r = c.readResponse();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 3u << 20);
  EXPECT_EQ(r.body, patternBody(3 << 20));
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  EXPECT_EQ(member_.requests().back().body, body);
}

TEST_F(TlsTermination, ConcurrentClientsAllGetTheirAnswers) {
  start();
  constexpr int kClients = 16, kRequests = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      try {
        TlsClientOptions o;
        if (t % 2) o.sni = "www.example.test";
        TlsTestClient c("127.0.0.1", port_, o);
        if (!c.handshakeOk()) return;
        for (int i = 0; i < kRequests; ++i)
          if (c.get("/c" + std::to_string(t)).status == 200) ++ok;
      } catch (const std::exception&) {
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
}

TEST_F(TlsTermination, PlainHttpOnATlsListenerIsClosedAndCounted) {
  start();
  HttpClient plain("127.0.0.1", port_);
  plain.sendRaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(plain.waitClosed(3000));
  EXPECT_EQ(member_.requestCount(), 0u);
  EXPECT_TRUE(waitUntil(
      [&] { return statValue(*proxy_, "listeners", "l1", "request_errors").value_or(0) >= 1; },
      Millis(2000)));
  // The listener still serves.
  TlsTestClient c("127.0.0.1", port_, {});
  ASSERT_TRUE(c.handshakeOk());
  EXPECT_EQ(c.get("/").status, 200);
}

TEST_F(TlsTermination, AClientThatStallsInTheHandshakeTimesOut) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").timeout_client_data = 300;
  start(c);
  HttpClient raw("127.0.0.1", port_);
  raw.sendRaw(std::string("\x16\x03\x01\x02\x00", 5));  // a record header, no body
  EXPECT_TRUE(raw.waitClosed(3000));
}

TEST_F(TlsTermination, AProxyHeaderMayPrecedeTheHandshake) {
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  c.listener("l1").accept_proxy_protocol = "v1";
  c.listener("l1").insert_headers = {{"X-Forwarded-For", "true"}};
  start(c);
  // An upstream balancer's PROXY line, then TLS on the same connection.
  TlsClientOptions o;
  o.preamble = "PROXY TCP4 198.51.100.9 192.0.2.1 40001 443\r\n";
  TlsTestClient t("127.0.0.1", port_, o);
  ASSERT_TRUE(t.handshakeOk()) << t.error();
  EXPECT_EQ(t.get("/").status, 200);
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  EXPECT_EQ(member_.requests().back().header("X-Forwarded-For"), "198.51.100.9");
}

TEST_F(TlsTermination, AnUpgradedConnectionTunnelsThroughTls) {
  start();
  TlsTestClient c("127.0.0.1", port_, {});
  ASSERT_TRUE(c.handshakeOk());
  c.send("GET /ws HTTP/1.1\r\nHost: test\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n");
  HttpResponse r = c.readResponse();
  ASSERT_EQ(r.status, 101);
  // Enough bytes for the tunnel to see large reads (no splice under TLS).
  std::string payload = patternBody(200000);
  c.send(payload);
  EXPECT_EQ(c.readBytes(payload.size()), payload);
}

TEST_F(TlsTermination, HttpsListenersPassTlsThroughToTheMember) {
  TestTlsMember tls_member("tm", "127.0.0.32", {testPki().www_bundle, "", 0, {}});
  ConfigSpec c = simpleConfig(port_, {memberOf(tls_member)}, "HTTPS", "HTTPS");
  start(c);
  TlsTestClient t("127.0.0.1", port_, sniOptions("passthrough.example.test"));
  ASSERT_TRUE(t.handshakeOk()) << t.error();
  EXPECT_EQ(t.peerCommonName(), "www.example.test");
  EXPECT_EQ(t.get("/").status, 200);
  ASSERT_EQ(tls_member.handshakeCount(), 1u);
  EXPECT_EQ(tls_member.handshakes()[0].sni, "passthrough.example.test");
}

}  // namespace
}  // namespace banyan::test
