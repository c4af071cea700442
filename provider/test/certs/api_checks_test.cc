#include "certs/api_checks.h"

#include <gtest/gtest.h>

#include <map>

#include "test_pki.h"

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;

class ApiChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = pki_.path("checks-" +
                     std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(dir_);
    for (const auto& [file, from] :
         std::map<std::string, std::string>{{"cert.crt", "leaf.pem"},
                                            {"cert.key", "leaf.key"},
                                            {"ca.crt", "ca.pem"},
                                            {"crl.crt", "ca.crl"},
                                            {"other-crl.crt", "int.crl"}})
      std::ofstream(dir_ + "/" + file) << pki_.read(from);
    std::ofstream(dir_ + "/junk.crt") << "not pem";
    manager_ = makeLocalCertManager(dir_);
  }
  test::TestPki& pki_ = test::sharedPki();
  std::string dir_;
  std::unique_ptr<CertManager> manager_;
  RequestContext ctx_{"p", ""};
};

TEST_F(ApiChecksTest, ReadableReferencesPass) {
  EXPECT_TRUE(checkTlsRefs(*manager_, ctx_, {"cert"}).ok());
  EXPECT_TRUE(checkTlsRefs(*manager_, ctx_, {}).ok());
  EXPECT_TRUE(checkCaAndCrlRefs(*manager_, ctx_, "ca", "").ok());
  EXPECT_TRUE(checkCaAndCrlRefs(*manager_, ctx_, "ca", "crl").ok());
}

TEST_F(ApiChecksTest, EveryUnreadableCertificateIsListedLikeOctavia) {
  auto r = checkTlsRefs(*manager_, ctx_, {"sni-gone", "cert", "default-gone"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message, "Could not retrieve certificate: ['sni-gone', 'default-gone']");
}

TEST_F(ApiChecksTest, UnreadableCaOrCrlAreListedToo) {
  auto r = checkCaAndCrlRefs(*manager_, ctx_, "ca-gone", "crl-gone");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "Could not retrieve certificate: ['ca-gone', 'crl-gone']");
}

TEST_F(ApiChecksTest, ACaThatIsNotACertificateOrAForeignCrlIsAValidationFailure) {
  auto junk = checkCaAndCrlRefs(*manager_, ctx_, "junk", "");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.error().message.rfind(
                "Validation failure: The client authentication CA certificate is invalid.", 0),
            0u)
      << junk.error().message;
  auto foreign = checkCaAndCrlRefs(*manager_, ctx_, "ca", "other-crl");
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().message,
            "Validation failure: The CRL specified is not valid for client certificate authority "
            "reference supplied.");
}

}  // namespace
}  // namespace banyan::provider::certs
