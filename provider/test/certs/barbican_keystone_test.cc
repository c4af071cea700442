// BarbicanCertManager as Octavia's barbican_acl_auth uses it: a real Keystone and a
// real Barbican behind it (tests/support/keystone, tests/support/barbican). A user
// stores a PKCS12 secret; Banyan cannot read it until the user's token adds Banyan's
// service user to the secret's read ACL. Barbican's endpoint comes from the catalog.
#include <gtest/gtest.h>

#include "auth/keystone.h"
#include "barbican_process.h"
#include "certs/barbican.h"
#include "keystone_server.h"
#include "test_pki.h"

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;
using common::HttpHeaders;

class BarbicanKeystone : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ks = testing::KeystoneServer::start();
    ASSERT_TRUE(ks.ok()) << ks.error().message;
    keystone_ = std::move(ks).value().release();
    barbican_ = new test::BarbicanProcess();
    barbican_->start(keystone_->url(), keystone_->password());
    if (::testing::Test::HasFatalFailure()) return;
    barbican_url_ = barbican_->url();
    registerKeyManager();
  }
  static void TearDownTestSuite() {
    delete barbican_;
    barbican_ = nullptr;
    delete keystone_;
    keystone_ = nullptr;
  }

  // The catalog entry Barbican's endpoint is found by (public, internal, admin).
  static void registerKeyManager() {
    auto admin = keystone_->issueToken("admin");
    ASSERT_TRUE(admin.ok()) << admin.error().message;
    auto http = std::move(common::makeHttpClient().value());
    HttpHeaders h{{"X-Auth-Token", *admin}, {"Content-Type", "application/json"}};
    auto svc =
        http->request("POST", keystone_->url() + "/v3/services", h,
                      R"({"service":{"type":"key-manager","name":"barbican","enabled":true}})",
                      std::chrono::seconds(30));
    ASSERT_TRUE(svc.ok());
    ASSERT_EQ(svc->status, 201) << svc->body;
    std::string marker = "\"id\": \"";
    size_t at = svc->body.rfind(marker);
    ASSERT_NE(at, std::string::npos) << svc->body;
    at += marker.size();
    std::string service_id = svc->body.substr(at, svc->body.find('"', at) - at);
    for (const char* iface : {"public", "internal", "admin"}) {
      auto ep = http->request("POST", keystone_->url() + "/v3/endpoints", h,
                              std::string(R"({"endpoint":{"service_id":")") + service_id +
                                  R"(","interface":")" + iface + R"(","url":")" + barbican_url_ +
                                  R"(","region_id":"RegionOne"}})",
                              std::chrono::seconds(30));
      ASSERT_TRUE(ep.ok());
      ASSERT_EQ(ep->status, 201) << ep->body;
    }
  }

  void SetUp() override {
    auth::KeystoneOptions o;
    o.auth_url = keystone_->url();
    o.username = "banyan";
    o.password = keystone_->password();
    o.project_name = "service";
    auto session = auth::makeKeystoneSession(o);
    ASSERT_TRUE(session.ok()) << session.error().message;
    session_ = std::move(session).value();
  }

  std::unique_ptr<CertManager> manager(const std::string& endpoint) {
    auto m = makeBarbicanCertManager(test::at(endpoint, std::chrono::seconds(30)),
                                     makeKeystoneBarbicanAuth(session_),
                                     std::move(common::makeHttpClient().value()));
    EXPECT_TRUE(m.ok());
    return m.ok() ? std::move(m).value() : nullptr;
  }

  // A PKCS12 secret stored by `user` (openstack secret store does the same POST).
  std::string storeAs(const std::string& user, const std::string& der) {
    auto token = keystone_->issueToken(user);
    EXPECT_TRUE(token.ok());
    std::string b64 = test::base64(der);
    auto http = std::move(common::makeHttpClient().value());
    auto r = http->request("POST", barbican_url_ + "/v1/secrets",
                           {{"X-Auth-Token", *token}, {"Content-Type", "application/json"}},
                           R"({"name":"tls","payload_content_type":"application/octet-stream",)"
                           R"("payload_content_encoding":"base64","payload":")" +
                               b64 + "\"}",
                           std::chrono::seconds(30));
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 201) << r->body;
    std::string marker = "\"secret_ref\": \"";
    size_t at = r->body.find(marker);
    if (at == std::string::npos) return "";
    at += marker.size();
    return r->body.substr(at, r->body.find('"', at) - at);
  }

  static testing::KeystoneServer* keystone_;
  static test::BarbicanProcess* barbican_;
  static std::string barbican_url_;
  std::shared_ptr<auth::KeystoneSession> session_;
  test::TestPki& pki_ = test::sharedPki();
};

testing::KeystoneServer* BarbicanKeystone::keystone_ = nullptr;
test::BarbicanProcess* BarbicanKeystone::barbican_ = nullptr;
std::string BarbicanKeystone::barbican_url_;

TEST_F(BarbicanKeystone, TheEndpointComesFromTheCatalogInOctaviasSpelling) {
  auto url = session_->endpoint("key-manager", "publicURL", "RegionOne");
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_EQ(*url, barbican_url_);
  EXPECT_EQ(session_->endpoint("key-manager", "public", "ElsewhereOne").error().code,
            ErrorCode::kNotFound);
  auto me = session_->userId();
  ASSERT_TRUE(me.ok());
  EXPECT_EQ(*me, keystone_->userId("banyan"));
}

TEST_F(BarbicanKeystone, BanyanReadsAUsersSecretOnlyAfterTheUsersTokenGrantsIt) {
  std::string ref = storeAs("p1-creator", pki_.read("leaf.p12"));
  ASSERT_FALSE(ref.empty());
  BarbicanOptions from_catalog;
  from_catalog.endpoint_lookup = [session = session_] {
    return session->endpoint("key-manager", "internalURL", "");
  };
  auto made = makeBarbicanCertManager(from_catalog, makeKeystoneBarbicanAuth(session_),
                                      std::move(common::makeHttpClient().value()));
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto& m = *made;
  RequestContext service_ctx{keystone_->projectId("banyan-p1"), ""};
  auto before = m->getCertificate(service_ctx, ref);
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.error().code, ErrorCode::kNotFound) << before.error().message;

  auto user_token = keystone_->issueToken("p1-creator");
  ASSERT_TRUE(user_token.ok());
  RequestContext user_ctx{keystone_->projectId("banyan-p1"), *user_token};
  auto granted = m->grantAccess(user_ctx, ref);
  ASSERT_TRUE(granted.ok()) << granted.error().message;
  ASSERT_TRUE(m->grantAccess(user_ctx, ref).ok()) << "granting twice changes nothing";
  auto after = m->getCertificate(service_ctx, ref);
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->certificate, pki_.read("leaf.pem"));
}

TEST_F(BarbicanKeystone, AnotherProjectsTokenCannotGrantAccess) {
  std::string ref = storeAs("p1-creator", pki_.read("leaf.p12"));
  auto m = manager(barbican_url_);
  auto other = keystone_->issueToken("p2-creator");
  ASSERT_TRUE(other.ok());
  auto r = m->grantAccess({keystone_->projectId("banyan-p2"), *other}, ref);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(m->getCertificate({keystone_->projectId("banyan-p1"), ""}, ref).ok());
}

}  // namespace
}  // namespace banyan::provider::certs
