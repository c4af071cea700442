#include <gtest/gtest.h>
#include <sys/stat.h>

#include "certs/cert_manager.h"
#include "test_pki.h"

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;
using test::TestPki;

class LocalCertManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = pki_.path(
        "store-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(store_);
    manager_ = makeLocalCertManager(store_);
  }
  void put(const std::string& name, const std::string& contents) {
    std::ofstream(store_ + "/" + name, std::ios::binary) << contents;
  }

  TestPki& pki_ = test::sharedPki();
  std::string store_;
  std::unique_ptr<CertManager> manager_;
  RequestContext ctx_{"project", ""};
};

TEST_F(LocalCertManagerTest, AReferenceNamesItsFilesAsOctaviasLocalManagerDoes) {
  put("ref1.crt", pki_.read("leaf.pem"));
  put("ref1.key", pki_.read("leaf-enc.key"));
  put("ref1.pass", "hunter2");
  put("ref1.int", pki_.read("int.pem"));
  ASSERT_TRUE(manager_->grantAccess(ctx_, "ref1").ok());
  auto c = manager_->getCertificate(ctx_, "ref1");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->certificate, pki_.read("leaf.pem"));
  EXPECT_EQ(c->intermediates.size(), 1u);
  auto secret = manager_->getSecret(ctx_, "ref1");
  ASSERT_TRUE(secret.ok());
  EXPECT_EQ(*secret, pki_.read("leaf.pem")) << "get_secret reads <ref>.crt";
}

TEST_F(LocalCertManagerTest, MissingPiecesAreNotFoundAndBadOnesInvalid) {
  auto none = manager_->getCertificate(ctx_, "absent");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  put("nokey.crt", pki_.read("leaf.pem"));
  auto nokey = manager_->getCertificate(ctx_, "nokey");
  ASSERT_FALSE(nokey.ok());
  EXPECT_EQ(nokey.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(nokey.error().message, "no private key stored");
  put("mismatch.crt", pki_.read("leaf.pem"));
  put("mismatch.key", pki_.read("other.key"));
  auto mismatch = manager_->getCertificate(ctx_, "mismatch");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(mismatch.error().context, "mismatch");
}

TEST_F(LocalCertManagerTest, ReferencesCannotLeaveTheStorageDirectory) {
  pki_.write("outside.crt", pki_.read("leaf.pem"));
  pki_.write("outside.key", pki_.read("leaf.key"));
  for (const std::string& ref : std::vector<std::string>{"../outside", "/etc/passwd", ".hidden", "",
                                                         "a/b", std::string(300, 'a')}) {
    auto c = manager_->getCertificate(ctx_, ref);
    ASSERT_FALSE(c.ok()) << ref;
    EXPECT_EQ(c.error().code, ErrorCode::kNotFound) << ref;
    EXPECT_FALSE(manager_->getSecret(ctx_, ref).ok()) << ref;
  }
}

TEST_F(LocalCertManagerTest, AStoredCertificateIsReadBackUnderItsNewReference) {
  auto c = fromPkcs12(pki_.read("leaf.p12"));
  ASSERT_TRUE(c.ok());
  auto ref = storeLocalCertificate(store_ + "/new", *c);
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  EXPECT_EQ(ref->size(), 36u);
  struct stat st {};
  ASSERT_EQ(stat((store_ + "/new/" + *ref + ".key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = makeLocalCertManager(store_ + "/new")->getCertificate(ctx_, *ref);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->certificate, c->certificate);
  EXPECT_EQ(back->intermediates, c->intermediates);
}

TEST_F(LocalCertManagerTest, StoringAMismatchedKeyWritesNothing) {
  TlsCertificate bad{pki_.read("leaf.pem"), pki_.read("other.key"), {}};
  auto ref = storeLocalCertificate(store_ + "/bad", bad);
  ASSERT_FALSE(ref.ok());
  EXPECT_FALSE(std::filesystem::exists(store_ + "/bad"));
}

TEST_F(LocalCertManagerTest, AStoredCaOrCrlIsReadBackAsASecret) {
  const std::string both = pki_.read("ca.pem") + pki_.read("ca.crl");
  auto ref = storeLocalSecret(store_ + "/secrets", both);
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  auto manager = makeLocalCertManager(store_ + "/secrets");
  auto secret = manager->getSecret(ctx_, *ref);
  ASSERT_TRUE(secret.ok()) << secret.error().message;
  EXPECT_EQ(*secret, both);
  EXPECT_TRUE(checkClientCaAndCrl(pki_.read("ca.pem"), pki_.read("ca.crl")).ok());
  const std::string refusals[] = {"not pem", pki_.read("leaf.key"), pki_.read("leaf.pem") + pki_.read("leaf.key")};
  for (const auto& bad : refusals) {
    auto refused = storeLocalSecret(store_ + "/refused", bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(std::filesystem::exists(store_ + "/refused"));
}

}  // namespace
}  // namespace banyan::provider::certs
