// Pools with tls_enabled: banyan-proxy opens TLS to its members, verifies them
// against the pool CA (and CRL) without checking host names, shows a client
// certificate when configured, sends the client's SNI on, honours the pool's
// versions and ALPN, and reuses idle TLS member connections.
#include <gtest/gtest.h>

#include <memory>

#include "tls_helpers.h"

namespace banyan::test {
namespace {

class TlsReencrypt : public ::testing::Test {
 protected:
  // HTTP listener (or TERMINATED_HTTPS) -> pool p1 with tls_enabled -> member_.
  ConfigSpec config(bool terminate = false) {
    MemberSpec m = memberOf(*member_);
    ConfigSpec c = terminate ? tlsConfig(port_, {m}, 1) : simpleConfig(port_, {m});
    c.workers = 1;  // one idle pool: reuse is deterministic
    c.pool("p1").extra["tls_enabled"] = "true";
    return c;
  }
  void makeMember(TlsMemberOptions o) {
    member_ = std::make_unique<TestTlsMember>("tm", "127.0.0.34", std::move(o));
  }
  void start(const ConfigSpec& c) { proxy_ = std::make_unique<ProxyProcess>(c.toJson()); }
  int fetch(const std::string& target = "/") {
    auto r = tryFetchOnce("127.0.0.1", port_, target);
    return r ? r->status : 0;
  }

  uint16_t port_ = pickFreePort();
  std::unique_ptr<TestTlsMember> member_;
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(TlsReencrypt, RequestsReachATlsMemberWithoutVerificationByDefault) {
  makeMember({testPki().member_bundle, "", 0, {}});
  start(config());
  EXPECT_EQ(fetch("/enc"), 200);
  ASSERT_TRUE(member_->backend().waitForRequests(1, 2000));
  EXPECT_EQ(member_->backend().requests().back().target, "/enc");
  ASSERT_GE(member_->handshakeCount(), 1u);
  EXPECT_TRUE(member_->handshakes()[0].ok);
}

TEST_F(TlsReencrypt, TheMemberIsVerifiedAgainstThePoolCaButNotByName) {
  makeMember({testPki().member_bundle, "", 0, {}});
  ConfigSpec c = config();
  // The member's certificate names member.example.test, not 127.0.0.34.
  c.pool("p1").extra["ca_certificate"] = jsonString(testPki().member_ca);
  start(c);
  EXPECT_EQ(fetch(), 200);
}

TEST_F(TlsReencrypt, AMemberCertificateFromAnotherCaGets502) {
  makeMember({testPki().member_bundle, "", 0, {}});
  ConfigSpec c = config();
  c.pool("p1").extra["ca_certificate"] = jsonString(testPki().root_ca);
  c.member_connect_retries = 0;
  start(c);
  EXPECT_EQ(fetch(), 502);
  EXPECT_EQ(member_->backend().requestCount(), 0u);
}

TEST_F(TlsReencrypt, TheCrlRefusesARevokedMember) {
  makeMember({testPki().member_revoked_bundle, "", 0, {}});
  ConfigSpec c = config();
  c.pool("p1").extra["ca_certificate"] = jsonString(testPki().member_ca);
  c.pool("p1").extra["crl"] = jsonString(testPki().member_crl);
  start(c);
  EXPECT_EQ(fetch(), 502);
  EXPECT_EQ(member_->backend().requestCount(), 0u);
}

TEST_F(TlsReencrypt, TheCrlLetsAValidMemberThrough) {
  makeMember({testPki().member_bundle, "", 0, {}});
  ConfigSpec c = config();
  c.pool("p1").extra["ca_certificate"] = jsonString(testPki().member_ca);
  c.pool("p1").extra["crl"] = jsonString(testPki().member_crl);
  start(c);
  EXPECT_EQ(fetch(), 200);
}

TEST_F(TlsReencrypt, TheClientCertificateIsShownToTheMember) {
  makeMember({testPki().member_bundle, testPki().client_ca, 0, {}});
  ConfigSpec c = config();
  c.pool("p1").extra["tls_certificate"] = jsonString(testPki().proxy_client_bundle);
  start(c);
  EXPECT_EQ(fetch(), 200);
  ASSERT_GE(member_->handshakeCount(), 1u);
  EXPECT_EQ(member_->handshakes()[0].client_cn, "banyan-proxy.example.test");
}

TEST_F(TlsReencrypt, AMemberRequiringACertificateRefusesAPoolWithout) {
  makeMember({testPki().member_bundle, testPki().client_ca, 0, {}});
  start(config());
  EXPECT_EQ(fetch(), 502);
  EXPECT_EQ(member_->backend().requestCount(), 0u);
}

TEST_F(TlsReencrypt, TheClientsSniIsSentToTheMember) {
  makeMember({testPki().member_bundle, "", 0, {}});
  start(config(true));
  TlsTestClient c("127.0.0.1", port_, sniOptions("api.example.test"));
  ASSERT_TRUE(c.handshakeOk()) << c.error();
  EXPECT_EQ(c.get("/").status, 200);
  ASSERT_GE(member_->handshakeCount(), 1u);
  EXPECT_EQ(member_->handshakes().back().sni, "api.example.test");
}

TEST_F(TlsReencrypt, NoSniIsSentWhenTheListenerIsNotTls) {
  makeMember({testPki().member_bundle, "", 0, {}});
  start(config());
  EXPECT_EQ(fetch(), 200);
  ASSERT_GE(member_->handshakeCount(), 1u);
  EXPECT_EQ(member_->handshakes().back().sni, "");
}

TEST_F(TlsReencrypt, IdleTlsMemberConnectionsAreReused) {
  makeMember({testPki().member_bundle, "", 0, {}});
  start(config());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fetch("/r" + std::to_string(i)), 200);
  ASSERT_TRUE(member_->backend().waitForRequests(5, 2000));
  EXPECT_EQ(member_->handshakeCount(), 1u);
  EXPECT_EQ(member_->backend().connectionCount(), 1u);
}

TEST_F(TlsReencrypt, ConnectionsOpenedForDifferentSnisAreNotShared) {
  makeMember({testPki().member_bundle, "", 0, {}});
  start(config(true));
  for (const char* sni : {"www.example.test", "api.example.test", "www.example.test"}) {
    TlsTestClient c("127.0.0.1", port_, sniOptions(sni));
    ASSERT_TRUE(c.handshakeOk());
    EXPECT_EQ(c.get("/").status, 200);
  }
  ASSERT_TRUE(member_->backend().waitForRequests(3, 2000));
  EXPECT_EQ(member_->handshakeCount(), 2u);
}

TEST_F(TlsReencrypt, PoolTlsVersionsAreEnforced) {
  makeMember({testPki().member_bundle, "", TLS1_2_VERSION, {}});
  ConfigSpec c = config();
  c.pool("p1").extra["tls_versions"] = jsonList({"TLSv1.3"});
  c.member_connect_retries = 0;
  start(c);
  EXPECT_EQ(fetch(), 502);
  ConfigSpec ok = config();
  ok.generation = 2;
  ok.pool("p1").extra["tls_versions"] = jsonList({"TLSv1.2"});
  // Octavia's default TLS 1.2 list is RSA-only; the member key is EC.
  ok.pool("p1").extra["tls_ciphers"] = jsonString("ECDHE-ECDSA-AES128-GCM-SHA256");
  ASSERT_EQ(proxy_->applyConfig(ok.toJson()).status, 200);
  EXPECT_EQ(fetch(), 200);
  EXPECT_EQ(member_->handshakes().back().version, "TLSv1.2");
}

TEST_F(TlsReencrypt, PoolAlpnIsOfferedToTheMember) {
  makeMember({testPki().member_bundle, "", 0, {"http/1.1", "http/1.0"}});
  ConfigSpec c = config();
  c.pool("p1").extra["alpn_protocols"] = jsonList({"http/1.0"});
  start(c);
  EXPECT_EQ(fetch(), 200);
  ASSERT_GE(member_->handshakeCount(), 1u);
  EXPECT_EQ(member_->handshakes().back().alpn, "http/1.0");
}

TEST_F(TlsReencrypt, LargeResponsesComeBackThroughBothTlsHops) {
  makeMember({testPki().member_bundle, "", 0, {}});
  member_->backend().configure([](HttpBackendOptions& o) { o.body_size = 2 << 20; });
  start(config(true));
  TlsTestClient c("127.0.0.1", port_, {});
  ASSERT_TRUE(c.handshakeOk());
  HttpResponse r = c.get("/big");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, patternBody(2 << 20));
}

TEST_F(TlsReencrypt, HttpChecksOfATlsPoolRunOverTls) {
  makeMember({testPki().member_bundle, "", 0, {}});
  ConfigSpec c = config();
  MonitorSpec hm;
  hm.type = "HTTP";
  hm.url_path = "/health";
  c.pool("p1").health_monitor = hm;
  start(c);
  // Two successful checks after a failure would bring it back; staying ONLINE
  // while checks run means they pass over TLS.
  ASSERT_TRUE(member_->backend().waitForRequests(3, 3000));
  EXPECT_EQ(healthStatus(*proxy_, "tm"), "ONLINE");
  bool saw_check = false;
  for (const auto& r : member_->backend().requests()) saw_check |= r.target == "/health";
  EXPECT_TRUE(saw_check);
}

TEST_F(TlsReencrypt, HttpsChecksMarkAPlainMemberDown) {
  TestHttpBackend plain("plain", "127.0.0.36");
  ConfigSpec c = simpleConfig(port_, {memberOf(plain)});
  MonitorSpec hm;
  hm.type = "HTTPS";
  c.pool("p1").health_monitor = hm;
  start(c);
  EXPECT_TRUE(waitHealth(*proxy_, "plain", "ERROR", 3000));
}

TEST_F(TlsReencrypt, HttpsChecksKeepATlsMemberOnline) {
  makeMember({testPki().member_bundle, "", 0, {}});
  ConfigSpec c = simpleConfig(port_, {memberOf(*member_)}, "HTTPS", "HTTPS");
  MonitorSpec hm;
  hm.type = "HTTPS";
  hm.url_path = "/tls-check";
  c.pool("p1").health_monitor = hm;
  start(c);
  ASSERT_TRUE(member_->backend().waitForRequests(3, 3000));
  EXPECT_EQ(member_->backend().requests().back().target, "/tls-check");
  EXPECT_EQ(healthStatus(*proxy_, "tm"), "ONLINE");
}

}  // namespace
}  // namespace banyan::test
