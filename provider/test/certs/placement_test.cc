#include "certs/placement.h"

#include <gtest/gtest.h>

#include <map>

#include "test_pki.h"

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;

class PlacementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = pki_.path("placement-" +
                     std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(dir_);
    for (const auto& [file, from] : std::map<std::string, std::string>{{"cert.crt", "leaf.pem"},
                                                                       {"cert.key", "leaf.key"},
                                                                       {"cert.int", "int.pem"},
                                                                       {"ca.crt", "ca.pem"}})
      std::ofstream(dir_ + "/" + file) << pki_.read(from);
    manager_ = makeLocalCertManager(dir_);
  }
  test::TestPki& pki_ = test::sharedPki();
  std::string dir_;
  std::unique_ptr<CertManager> manager_;
  RequestContext ctx_{"p", ""};
};

TEST_F(PlacementTest, EachReferenceBecomesOneNamedFile) {
  auto p = fetchForPlacement(*manager_, ctx_, {"cert"}, {"ca"});
  ASSERT_TRUE(p.ok()) << p.error().message << " " << p.error().context;
  ASSERT_EQ(p->by_ref.size(), 2u);
  const PlacedFile& cert = p->by_ref.at("cert");
  EXPECT_EQ(cert.name, placedName("cert", true));
  EXPECT_EQ(cert.name.rfind("tls-", 0), 0u);
  EXPECT_EQ(cert.pem.find(pki_.read("leaf.pem")), 0u) << "the certificate first";
  EXPECT_NE(cert.pem.find(pki_.read("int.pem")), std::string::npos);
  EXPECT_NE(cert.pem.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(p->by_ref.at("ca").pem, pki_.read("ca.pem"));
  EXPECT_NE(placedName("ca", false), placedName("cert", false));
  EXPECT_EQ(placedName("ca", false), placedName("ca", false));
}

TEST_F(PlacementTest, AMissingReferenceIsNamedInTheError) {
  auto p = fetchForPlacement(*manager_, ctx_, {"cert", "nope"}, {});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(p.error().context, "nope");
}

TEST_F(PlacementTest, AReferenceCannotBeBothACertificateAndACa) {
  auto p = fetchForPlacement(*manager_, ctx_, {"cert"}, {"cert"});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace banyan::provider::certs
