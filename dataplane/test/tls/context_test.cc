#include "tls/context.h"

#include <gtest/gtest.h>

#include "test_pki.h"

namespace banyan::dp::tls {
namespace {

using test::testPki;

config::Listener listenerWith(const std::string& def, std::vector<std::string> sni = {}) {
  config::Listener l;
  l.id = "l1";
  l.protocol = config::ListenerProtocol::kTerminatedHttps;
  l.tls.default_certificate = def;
  l.tls.sni_certificates = std::move(sni);
  return l;
}

std::string commonName(SSL_CTX* ctx) {
  X509* x = SSL_CTX_get0_certificate(ctx);
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
  return buf;
}

TEST(ServerContext, SniPicksExactThenWildcardThenDefault) {
  TlsContextProvider p;
  auto ctx = p.serverContext(listenerWith(testPki().default_bundle,
                                          {testPki().www_bundle, testPki().api_bundle}),
                             "/listeners/0");
  ASSERT_TRUE(ctx.ok()) << ctx.error().message;
  const ServerContext& s = **ctx;
  EXPECT_EQ(commonName(s.pick("www.example.test")), "www.example.test");
  EXPECT_EQ(commonName(s.pick("API.EXAMPLE.TEST")), "api.example.test");
  EXPECT_EQ(commonName(s.pick("x.wild.example.test")), "www.example.test");
  EXPECT_EQ(commonName(s.pick("x.y.wild.example.test")), "default.example.test");
  EXPECT_EQ(commonName(s.pick("wild.example.test")), "default.example.test");
  EXPECT_EQ(commonName(s.pick("")), "default.example.test");
  EXPECT_EQ(commonName(s.pick("default.example.test")), "default.example.test");
}

TEST(ServerContext, NamesComeFromSansOrElseTheCommonName) {
  TlsContextProvider p;
  auto ctx = p.serverContext(listenerWith(testPki().default_bundle, {testPki().www_bundle}),
                             "/listeners/0");
  ASSERT_TRUE(ctx.ok()) << ctx.error().message;
  EXPECT_EQ((*ctx)->names(), (std::vector<std::string>{"*.wild.example.test",
                                                       "default.example.test", "www.example.test"}));
}

TEST(ServerContext, TheFirstCertificateToClaimANameKeepsIt) {
  TlsContextProvider p;
  auto ctx = p.serverContext(listenerWith(testPki().default_bundle,
                                          {testPki().api_bundle, testPki().www_bundle,
                                           testPki().www_bundle}),
                             "/listeners/0");
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(commonName((*ctx)->pick("www.example.test")), "www.example.test");
}

struct BundleRow {
  const char* name;
  std::string file;
  const char* words;
};

class BadBundle : public testing::TestWithParam<BundleRow> {};

TEST_P(BadBundle, IsRefusedWithTheFieldPointer) {
  TlsContextProvider p;
  auto ctx = p.serverContext(listenerWith(testPki().default_bundle, {GetParam().file}),
                             "/listeners/3");
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().context, "/listeners/3/sni_certificates/0");
  EXPECT_NE(ctx.error().message.find(GetParam().words), std::string::npos) << ctx.error().message;
  EXPECT_NE(ctx.error().message.find(GetParam().file), std::string::npos) << ctx.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Rows, BadBundle,
    testing::Values(BundleRow{"Expired", testPki().expired_bundle, "expired on"},
                    BundleRow{"NotYetValid", testPki().future_bundle, "not valid before"},
                    BundleRow{"KeyMismatch", testPki().mismatch_bundle, "does not match"},
                    BundleRow{"NoKey", testPki().nokey_bundle, "no usable private key"},
                    BundleRow{"NotPem", testPki().garbage_file, "no PEM certificate"},
                    BundleRow{"Missing", testPki().dir + "/missing.pem", "cannot read"}),
    [](const testing::TestParamInfo<BundleRow>& info) { return std::string(info.param.name); });

TEST(ServerContext, ACrlFileWithoutCrlIsRefused) {
  TlsContextProvider p;
  config::Listener l = listenerWith(testPki().default_bundle);
  l.tls.client_ca_certificate = testPki().client_ca;
  l.tls.client_crl = testPki().root_ca;
  auto ctx = p.serverContext(l, "/listeners/0");
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().context, "/listeners/0/client_crl");
}

TEST(ServerContext, OnlySslv3IsRefused) {
  TlsContextProvider p;
  config::Listener l = listenerWith(testPki().default_bundle);
  l.tls.versions = config::kSslV3;
  auto ctx = p.serverContext(l, "/listeners/0");
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().context, "/listeners/0/tls_versions");
}

TEST(ClientContext, BuildsWithCaCrlAndCertificate) {
  TlsContextProvider p;
  config::Pool pool;
  pool.id = "p1";
  pool.tls_enabled = true;
  pool.ca_certificate = testPki().member_ca;
  pool.crl = testPki().member_crl;
  pool.tls_certificate = testPki().proxy_client_bundle;
  auto ctx = p.clientContext(pool, "/pools/0");
  ASSERT_TRUE(ctx.ok()) << ctx.error().message;
  auto other = p.clientContext(pool, "/pools/0");
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*ctx)->serial(), (*other)->serial());
}

TEST(ClientContext, AnExpiredClientCertificateIsRefused) {
  TlsContextProvider p;
  config::Pool pool;
  pool.tls_enabled = true;
  pool.tls_certificate = testPki().expired_bundle;
  auto ctx = p.clientContext(pool, "/pools/2");
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.error().context, "/pools/2/tls_certificate");
}

TEST(CheckCertificateBundle, AcceptsAGoodBundle) {
  EXPECT_TRUE(checkCertificateBundle(testPki().www_bundle).ok());
  EXPECT_FALSE(checkCertificateBundle(testPki().expired_bundle).ok());
}

}  // namespace
}  // namespace banyan::dp::tls
