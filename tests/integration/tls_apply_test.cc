// Apply-time checks of TLS material: a document whose certificate does not
// load, does not match its key, has expired (or is not valid yet), or whose
// CA/CRL files are wrong is refused with the JSON pointer of the field, and
// the running config keeps serving. A good new certificate is served to new
// connections at once.
#include <gtest/gtest.h>

#include <memory>

#include "tls_helpers.h"

namespace banyan::test {
namespace {

class TlsApply : public ::testing::Test {
 protected:
  void SetUp() override {
    ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
    proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  }
  ConfigSpec next() {
    ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
    c.generation = 2;
    return c;
  }
  // PUTs `c`, expects a refusal at `path` and the old config still serving.
  void expectRefused(const ConfigSpec& c, const std::string& path, const std::string& words) {
    ControlResponse r = proxy_->put("/config", c.toJson());
    ASSERT_EQ(r.status, 400) << r.body;
    rapidjson::Document doc = r.json();
    EXPECT_FALSE(doc["applied"].GetBool());
    EXPECT_EQ(std::string(doc["path"].GetString()), path) << r.body;
    EXPECT_TRUE(contains(doc["reason"].GetString(), words)) << r.body;
    TlsTestClient t("127.0.0.1", port_, {});
    ASSERT_TRUE(t.handshakeOk()) << t.error();
    EXPECT_EQ(t.peerCommonName(), "default.example.test");
    EXPECT_EQ(t.get("/").status, 200);
    EXPECT_EQ(proxy_->get("/config").json()["generation"].GetUint64(), 1u);
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend member_{"m1", "127.0.0.35"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(TlsApply, AnExpiredCertificateIsRefused) {
  ConfigSpec c = next();
  c.listener("l1").extra["default_tls_certificate"] = jsonString(testPki().expired_bundle);
  expectRefused(c, "/listeners/0/default_tls_certificate", "expired");
}

TEST_F(TlsApply, ACertificateNotValidYetIsRefused) {
  ConfigSpec c = next();
  c.listener("l1").extra["default_tls_certificate"] = jsonString(testPki().future_bundle);
  expectRefused(c, "/listeners/0/default_tls_certificate", "not valid before");
}

TEST_F(TlsApply, ACertificateWithAnotherKeyIsRefused) {
  ConfigSpec c = next();
  c.listener("l1").extra["sni_certificates"] =
      jsonList({testPki().www_bundle, testPki().mismatch_bundle});
  expectRefused(c, "/listeners/0/sni_certificates/1", "does not match");
}

TEST_F(TlsApply, ABundleWithoutKeyIsRefused) {
  ConfigSpec c = next();
  c.listener("l1").extra["default_tls_certificate"] = jsonString(testPki().nokey_bundle);
  expectRefused(c, "/listeners/0/default_tls_certificate", "private key");
}

TEST_F(TlsApply, AMissingFileIsRefused) {
  ConfigSpec c = next();
  c.listener("l1").extra["default_tls_certificate"] = jsonString(testPki().dir + "/nope.pem");
  expectRefused(c, "/listeners/0/default_tls_certificate", "cannot read");
}

TEST_F(TlsApply, AFileWithoutPemIsRefused) {
  ConfigSpec c = next();
  c.listener("l1").extra["default_tls_certificate"] = jsonString(testPki().garbage_file);
  expectRefused(c, "/listeners/0/default_tls_certificate", "no PEM certificate");
}

TEST_F(TlsApply, ABadClientCaOrCrlIsRefused) {
  ConfigSpec c = next();
  c.listener("l1").extra["client_ca_certificate"] = jsonString(testPki().garbage_file);
  c.listener("l1").extra["client_authentication"] = jsonString("OPTIONAL");
  expectRefused(c, "/listeners/0/client_ca_certificate", "no PEM certificate");
  ConfigSpec d = next();
  d.listener("l1").extra["client_ca_certificate"] = jsonString(testPki().client_ca);
  d.listener("l1").extra["client_crl"] = jsonString(testPki().client_ca);
  expectRefused(d, "/listeners/0/client_crl", "revocation list");
}

TEST_F(TlsApply, ClientAuthenticationNeedsAClientCa) {
  ConfigSpec c = next();
  c.listener("l1").extra["client_authentication"] = jsonString("MANDATORY");
  expectRefused(c, "/listeners/0/client_authentication", "client_ca_certificate");
}

TEST_F(TlsApply, UnknownCiphersAreRefused) {
  ConfigSpec c = next();
  c.listener("l1").extra["tls_ciphers"] = jsonString("NOT-A-CIPHER:ALSO-NOT");
  expectRefused(c, "/listeners/0/tls_ciphers", "known to OpenSSL");
  ConfigSpec d = next();
  d.listener("l1").extra["tls_ciphers"] = jsonString("TLS_NOT_A_SUITE");
  expectRefused(d, "/listeners/0/tls_ciphers", "TLS 1.3");
}

TEST_F(TlsApply, H2InAPoolsAlpnIsAcceptedAndAnHttp11MemberKeepsHttp11) {
  // A pool without tls_enabled keeps the list unused (no h2c); members that
  // pick h2 over TLS are covered by integration_h2_upstream.
  ConfigSpec c = next();
  c.pool("p1").extra["alpn_protocols"] = jsonList({"h2", "http/1.1"});
  ControlResponse r = proxy_->put("/config", c.toJson());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(proxy_->get("/config").json()["generation"].GetUint64(), 2u);
  TlsTestClient t("127.0.0.1", port_, {});
  ASSERT_TRUE(t.handshakeOk()) << t.error();
  EXPECT_EQ(t.get("/").status, 200);
}

TEST_F(TlsApply, TlsFieldsOnAPlainListenerAreRefused) {
  ConfigSpec c = next();
  c.listener("l1").protocol = "HTTP";
  expectRefused(c, "/listeners/0/default_tls_certificate", "TERMINATED_HTTPS");
}

TEST_F(TlsApply, XSslHeadersOnAPlainListenerAreRefused) {
  ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
  c.generation = 2;
  c.listener("l1").insert_headers = {{"X-SSL-Client-CN", "true"}};
  expectRefused(c, "/listeners/0/insert_headers/X-SSL-Client-CN", "TERMINATED_HTTPS");
}

TEST_F(TlsApply, APoolCaThatDoesNotLoadIsRefused) {
  ConfigSpec c = next();
  c.pool("p1").extra["tls_enabled"] = "true";
  c.pool("p1").extra["ca_certificate"] = jsonString(testPki().dir + "/missing-ca.pem");
  expectRefused(c, "/pools/0/ca_certificate", "cannot read");
  ConfigSpec d = next();
  d.pool("p1").extra["tls_enabled"] = "true";
  d.pool("p1").extra["tls_certificate"] = jsonString(testPki().expired_bundle);
  expectRefused(d, "/pools/0/tls_certificate", "expired");
}

TEST_F(TlsApply, PoolTlsFieldsAreIgnoredWhileTlsIsOff) {
  ConfigSpec c = next();
  c.pool("p1").extra["ca_certificate"] = jsonString(testPki().dir + "/missing-ca.pem");
  ASSERT_EQ(proxy_->applyConfig(c.toJson()).status, 200);
  TlsTestClient t("127.0.0.1", port_, {});
  ASSERT_TRUE(t.handshakeOk());
  EXPECT_EQ(t.get("/").status, 200);
}

TEST_F(TlsApply, ANewDefaultCertificateIsServedToNewConnections) {
  TlsTestClient before("127.0.0.1", port_, {});
  ASSERT_TRUE(before.handshakeOk());
  EXPECT_EQ(before.peerCommonName(), "default.example.test");
  ConfigSpec c = next();
  c.listener("l1").extra["default_tls_certificate"] = jsonString(testPki().api_bundle);
  ASSERT_EQ(proxy_->applyConfig(c.toJson()).status, 200);
  TlsTestClient after("127.0.0.1", port_, {});
  ASSERT_TRUE(after.handshakeOk());
  EXPECT_EQ(after.peerCommonName(), "api.example.test");
  // The connection made before keeps working on the new config.
  EXPECT_EQ(before.get("/").status, 200);
}

TEST_F(TlsApply, AStartupConfigWithAnExpiredCertificateIsRefused) {
  ConfigSpec c = tlsConfig(pickFreePort(), {memberOf(member_)});
  c.listener("l1").extra["default_tls_certificate"] = jsonString(testPki().expired_bundle);
  TempDir dir;
  writeFile(dir.file("c.json"), c.toJson());
  CommandResult r = runProxyCommand({"--check", "--config", dir.file("c.json")});
  EXPECT_NE(r.exit_status, 0);
}

}  // namespace
}  // namespace banyan::test
