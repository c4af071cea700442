#include "certs/tls_certificate.h"

#include <gtest/gtest.h>

#include "test_pki.h"

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;
using test::TestPki;

class TlsCertificateTest : public ::testing::Test {
 protected:
  TestPki* pki_ = &test::sharedPki();
};

TEST_F(TlsCertificateTest, APkcs12BundleGivesItsCertificateKeyAndIntermediates) {
  auto c = fromPkcs12(pki_->read("leaf.p12"));
  ASSERT_TRUE(c.ok()) << c.error().message << " " << c.error().context;
  EXPECT_EQ(c->certificate, pki_->read("leaf.pem"));
  EXPECT_NE(c->private_key.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  ASSERT_EQ(c->intermediates.size(), 1u);
  EXPECT_EQ(c->intermediates[0], pki_->read("int.pem"));
}

TEST_F(TlsCertificateTest, APassphraseProtectedOrBrokenPkcs12IsRefused) {
  auto pass = fromPkcs12(pki_->read("leaf-pass.p12"));
  ASSERT_FALSE(pass.ok());
  EXPECT_EQ(pass.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(pass.error().message.find("passphrase"), std::string::npos) << pass.error().message;
  auto garbage = fromPkcs12("not a bundle");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().message, "the secret is not a PKCS12 bundle");
  std::string der = pki_->read("leaf.p12");
  EXPECT_FALSE(fromPkcs12(der.substr(0, der.size() / 2)).ok());
}

TEST_F(TlsCertificateTest, PemPiecesWithAnEncryptedKeyAndAPkcs7Chain) {
  auto c =
      fromPem(pki_->read("leaf.pem"), pki_->read("leaf-enc.key"), pki_->read("int.p7b"), "hunter2");
  ASSERT_TRUE(c.ok()) << c.error().message << " " << c.error().context;
  EXPECT_NE(c->private_key.find("-----BEGIN PRIVATE KEY-----"), std::string::npos)
      << "stored decrypted";
  ASSERT_EQ(c->intermediates.size(), 1u);
  EXPECT_EQ(c->intermediates[0], pki_->read("int.pem"));

  auto wrong = fromPem(pki_->read("leaf.pem"), pki_->read("leaf-enc.key"), "", "not-it");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().message, "the private key does not decrypt with its passphrase");
  auto none = fromPem(pki_->read("leaf.pem"), pki_->read("leaf-enc.key"), "", "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "the private key is not an unencrypted PEM key");
}

TEST_F(TlsCertificateTest, AKeyOfAnotherCertificateIsRefused) {
  auto c = fromPem(pki_->read("leaf.pem"), pki_->read("other.key"), "", "");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "the private key does not belong to the certificate");
}

TEST_F(TlsCertificateTest, IntermediatesThatAreNotCertificatesAreRefused) {
  auto c = fromPem(pki_->read("leaf.pem"), pki_->read("leaf.key"), "junk\n", "");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "the intermediates hold no PEM certificate");
  auto blank = fromPem(pki_->read("leaf.pem"), pki_->read("leaf.key"), " \n", "");
  ASSERT_TRUE(blank.ok()) << "whitespace is no intermediates";
  EXPECT_TRUE(blank->intermediates.empty());
}

TEST_F(TlsCertificateTest, TheProxyBundleIsCertificateThenChainThenKey) {
  auto c = fromPkcs12(pki_->read("leaf.p12"));
  ASSERT_TRUE(c.ok());
  std::string b = proxyBundle(*c);
  EXPECT_EQ(b, c->certificate + c->intermediates[0] + c->private_key);
}

TEST_F(TlsCertificateTest, HostNamesComeFromTheSubjectAltNames) {
  EXPECT_EQ(hostNames(pki_->read("leaf.pem")),
            (std::vector<std::string>{"www.example.com", "*.example.org"}));
  EXPECT_EQ(hostNames(pki_->read("ca.pem")), (std::vector<std::string>{"test-root"}))
      << "no SAN: the CN";
  EXPECT_TRUE(hostNames("garbage").empty());
}

TEST_F(TlsCertificateTest, AClientCaWithItsOwnCrlPasses) {
  EXPECT_TRUE(checkClientCaAndCrl(pki_->read("ca.pem"), "").ok());
  auto r = checkClientCaAndCrl(pki_->read("ca.pem"), pki_->read("ca.crl"));
  EXPECT_TRUE(r.ok()) << r.error().message;
}

TEST_F(TlsCertificateTest, ClientCaAndCrlProblemsGetOctaviasMessages) {
  auto bad_ca = checkClientCaAndCrl("not pem", "");
  ASSERT_FALSE(bad_ca.ok());
  EXPECT_EQ(bad_ca.error().message.rfind(
                "The client authentication CA certificate is invalid. It must be a valid "
                "x509 PEM format certificate. Error: ",
                0),
            0u)
      << bad_ca.error().message;
  auto bad_crl = checkClientCaAndCrl(pki_->read("ca.pem"), "not a crl");
  ASSERT_FALSE(bad_crl.ok());
  EXPECT_EQ(bad_crl.error().message.rfind(
                "The client authentication certificate revocation list is invalid.", 0),
            0u);
  auto foreign = checkClientCaAndCrl(pki_->read("ca.pem"), pki_->read("int.crl"));
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().message,
            "The CRL specified is not valid for client certificate authority reference supplied.");
}

}  // namespace
}  // namespace banyan::provider::certs
