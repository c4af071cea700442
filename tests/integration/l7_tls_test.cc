// L7 policies and persistence on a TERMINATED_HTTPS listener: SSL_* rules see
// the client certificate the TLS code verified, and the member cookie is
// marked Secure.
#include <gtest/gtest.h>

#include <memory>

#include "tls_helpers.h"

namespace banyan::test {
namespace {

class L7Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    const TestPki& pki = testPki();
    ConfigSpec c = tlsConfig(port_, {memberOf(m1_)});
    ListenerSpec& l = c.listener("l1");
    l.extra["client_ca_certificate"] = jsonString(pki.client_ca);
    l.extra["client_authentication"] = jsonString("OPTIONAL");
    PoolSpec p2;
    p2.id = "p2";
    p2.members = {memberOf(m2_)};
    p2.extra["session_persistence"] = R"({"type": "HTTP_COOKIE"})";
    c.pools.push_back(p2);
    // The client's CN goes to p2; a client without a certificate is refused
    // unless it asks for /public.
    l.extra["l7policies"] = R"([
      {"id": "cn", "position": 1, "action": "REDIRECT_TO_POOL", "redirect_pool_id": "p2",
       "rules": [{"type": "SSL_DN_FIELD", "compare_type": "EQUAL_TO", "key": "CN",
                  "value": "client.example.test"},
                 {"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "0"}]},
      {"id": "nocert", "position": 2, "action": "REJECT",
       "rules": [{"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "True",
                  "invert": true},
                 {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/public",
                  "invert": true}]}])";
    proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  }
  static TlsClientOptions withClientCert() {
    TlsClientOptions o;
    o.cert = testPki().client_cert;
    o.key = testPki().client_key;
    return o;
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend m1_{"m1", "127.0.0.131"};
  TestHttpBackend m2_{"m2", "127.0.0.132"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(L7Tls, ClientCertificateFieldsRouteTheRequest) {
  TlsTestClient c("127.0.0.1", port_, withClientCert());
  ASSERT_TRUE(c.handshakeOk());
  HttpResponse r = c.get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("X-Backend"), "m2");
}

TEST_F(L7Tls, AClientWithoutCertificateMatchesTheInvertedHasCertRule) {
  TlsTestClient c("127.0.0.1", port_, TlsClientOptions{});
  ASSERT_TRUE(c.handshakeOk());
  EXPECT_EQ(c.get("/private").status, 403);
  TlsTestClient d("127.0.0.1", port_, TlsClientOptions{});
  ASSERT_TRUE(d.handshakeOk());
  HttpResponse r = d.get("/public/x");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("X-Backend"), "m1");
}

TEST_F(L7Tls, TheMemberCookieIsSecureOnTls) {
  TlsTestClient c("127.0.0.1", port_, withClientCert());
  ASSERT_TRUE(c.handshakeOk());
  HttpResponse r = c.get("/");
  ASSERT_EQ(r.status, 200);
  std::string cookie = r.header("Set-Cookie");
  EXPECT_EQ(cookie.rfind("SRV=", 0), 0u) << cookie;
  EXPECT_NE(cookie.find("; Secure"), std::string::npos) << cookie;
}

}  // namespace
}  // namespace banyan::test
