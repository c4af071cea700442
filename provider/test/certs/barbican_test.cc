// BarbicanCertManager against a real, unauthenticated Barbican (Debian's barbican-api,
// started by tests/support/barbican/barbican-server.sh in a temp dir, on 127.0.0.1).
// One Barbican for the whole binary: registered as a single ctest.
#include "certs/barbican.h"

#include <gtest/gtest.h>

#include <string>

#include "banyan/common/http_client.h"
#include "barbican_process.h"
#include "certs/api_checks.h"
#include "test_pki.h"

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;
using common::HttpHeaders;

test::BarbicanProcess g_barbican;

class BarbicanServer : public ::testing::Environment {
 public:
  void SetUp() override { g_barbican.start(); }
  void TearDown() override { g_barbican.stop(); }
};

const auto* const kServer = ::testing::AddGlobalTestEnvironment(new BarbicanServer);

class BarbicanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(g_barbican.url().empty());
    auto http = common::makeHttpClient();
    ASSERT_TRUE(http.ok());
    http_ = std::move(http).value();
    auto m = makeBarbicanCertManager(test::at(g_barbican.url(), std::chrono::seconds(10)),
                                     makeUnauthenticatedBarbicanAuth(),
                                     std::move(common::makeHttpClient().value()));
    ASSERT_TRUE(m.ok()) << m.error().message;
    manager_ = std::move(m).value();
  }

  // Stores a secret the way a user does (openstack secret store); returns its href.
  std::string storeSecret(const std::string& project, const std::string& payload, bool binary) {
    std::string body = std::string("{\"name\":\"t\",\"payload\":\"") +
                       (binary ? test::base64(payload) : jsonEscape(payload)) +
                       "\",\"payload_content_type\":\"" +
                       (binary ? "application/octet-stream" : "text/plain") + "\"" +
                       (binary ? ",\"payload_content_encoding\":\"base64\"" : "") + "}";
    return created(project, "/v1/secrets", body, "secret_ref");
  }
  std::string storeContainer(const std::string& project,
                             const std::vector<std::pair<std::string, std::string>>& refs) {
    std::string body = "{\"type\":\"certificate\",\"name\":\"c\",\"secret_refs\":[";
    for (size_t i = 0; i < refs.size(); ++i)
      body += (i ? "," : "") + std::string("{\"name\":\"") + refs[i].first +
              "\",\"secret_ref\":\"" + refs[i].second + "\"}";
    body += "]}";
    return created(project, "/v1/containers", body, "container_ref");
  }

  static std::string jsonEscape(const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '\n')
        out += "\\n";
      else if (c == '"')
        out += "\\\"";
      else
        out += c;
    }
    return out;
  }
  std::string created(const std::string& project, const std::string& path, const std::string& body,
                      const char* key) {
    HttpHeaders h{
        {"X-Project-Id", project}, {"X-Roles", "admin"}, {"Content-Type", "application/json"}};
    auto r = http_->request("POST", g_barbican.url() + path, h, body, std::chrono::seconds(10));
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 201) << r->body;
    std::string marker = std::string("\"") + key + "\": \"";
    size_t at = r->body.find(marker);
    if (at == std::string::npos) return "";
    at += marker.size();
    return r->body.substr(at, r->body.find('"', at) - at);
  }

  test::TestPki& pki_ = test::sharedPki();
  std::unique_ptr<common::HttpClient> http_;
  std::unique_ptr<CertManager> manager_;
  RequestContext ctx_{"project-a", ""};
};

TEST_F(BarbicanTest, APkcs12SecretIsReadByHrefAndByUuid) {
  std::string href = storeSecret("project-a", pki_.read("leaf.p12"), true);
  ASSERT_FALSE(href.empty());
  EXPECT_TRUE(manager_->grantAccess(ctx_, href).ok());
  auto c = manager_->getCertificate(ctx_, href);
  ASSERT_TRUE(c.ok()) << c.error().message << " " << c.error().context;
  EXPECT_EQ(c->certificate, pki_.read("leaf.pem"));
  EXPECT_EQ(c->intermediates.size(), 1u);
  auto by_uuid = manager_->getCertificate(ctx_, href.substr(href.rfind('/') + 1));
  ASSERT_TRUE(by_uuid.ok());
  EXPECT_EQ(by_uuid->certificate, c->certificate);
}

TEST_F(BarbicanTest, AnHrefOnAnotherHostIsReadFromTheConfiguredBarbican) {
  std::string href = storeSecret("project-a", pki_.read("leaf.p12"), true);
  std::string uuid = href.substr(href.rfind('/') + 1);
  auto c = manager_->getCertificate(ctx_, "http://198.51.100.99:9311/v1/secrets/" + uuid);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->certificate, pki_.read("leaf.pem"));
}

TEST_F(BarbicanTest, ALegacyCertificateContainerIsReadFromItsPemSecrets) {
  std::string cert = storeSecret("project-a", pki_.read("leaf.pem"), false);
  std::string key = storeSecret("project-a", pki_.read("leaf-enc.key"), false);
  std::string chain = storeSecret("project-a", pki_.read("int.pem"), false);
  std::string pass = storeSecret("project-a", "hunter2", false);
  std::string container = storeContainer("project-a", {{"certificate", cert},
                                                       {"private_key", key},
                                                       {"intermediates", chain},
                                                       {"private_key_passphrase", pass}});
  ASSERT_FALSE(container.empty());
  EXPECT_TRUE(manager_->grantAccess(ctx_, container).ok());
  auto c = manager_->getCertificate(ctx_, container);
  ASSERT_TRUE(c.ok()) << c.error().message << " " << c.error().context;
  EXPECT_EQ(c->certificate, pki_.read("leaf.pem"));
  ASSERT_EQ(c->intermediates.size(), 1u);
  // Octavia's fallback: a container given where a secret is expected still works.
  auto fallback = manager_->getCertificate(ctx_, container.substr(container.rfind('/') + 1));
  EXPECT_TRUE(fallback.ok());
}

TEST_F(BarbicanTest, ACaSecretIsReadAsPem) {
  std::string href = storeSecret("project-a", pki_.read("ca.pem"), false);
  auto pem = manager_->getSecret(ctx_, href);
  ASSERT_TRUE(pem.ok()) << pem.error().message;
  std::string want = pki_.read("ca.pem");
  want.pop_back();  // Barbican stores text/plain payloads without the trailing newline
  EXPECT_EQ(*pem, want);
  EXPECT_TRUE(checkClientCaAndCrl(*pem, "").ok());
}

TEST_F(BarbicanTest, ASecretThatIsNotPkcs12GetsOctaviasMessage) {
  std::string href = storeSecret("project-a", "just some text", false);
  auto c = manager_->getCertificate(ctx_, href);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.error().message.rfind("The PKCS12 bundle is unreadable.", 0), 0u)
      << c.error().message;
}

TEST_F(BarbicanTest, TheApiCheckPassesOctaviasPkcs12MessageOnAsIs) {
  std::string text = storeSecret("project-a", "just some text", false);
  auto r = checkTlsRefs(*manager_, ctx_, {text});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("The PKCS12 bundle is unreadable.", 0), 0u)
      << r.error().message;
  std::string good = storeSecret("project-a", pki_.read("leaf.p12"), true);
  EXPECT_TRUE(checkTlsRefs(*manager_, ctx_, {good}).ok());
}

TEST_F(BarbicanTest, MissingForeignAndMalformedReferencesAreNotFound) {
  std::string theirs = storeSecret("project-b", pki_.read("leaf.p12"), true);
  for (const std::string& ref :
       {theirs, std::string("00000000-0000-4000-8000-000000000000"), std::string("not-a-ref"),
        g_barbican.url() + "/v1/orders/00000000-0000-4000-8000-000000000000"}) {
    auto c = manager_->getCertificate(ctx_, ref);
    ASSERT_FALSE(c.ok()) << ref;
    EXPECT_EQ(c.error().code, ErrorCode::kNotFound) << ref << ": " << c.error().message;
    EXPECT_FALSE(manager_->getSecret(ctx_, ref).ok()) << ref;
  }
}

TEST_F(BarbicanTest, AnUnreachableBarbicanIsUnavailableNotNotFound) {
  auto m = makeBarbicanCertManager(test::at("http://127.0.0.1:1", std::chrono::seconds(2)),
                                   makeUnauthenticatedBarbicanAuth(),
                                   std::move(common::makeHttpClient().value()));
  ASSERT_TRUE(m.ok());
  auto c = (*m)->getCertificate(ctx_, "00000000-0000-4000-8000-000000000000");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kUnavailable);
}

TEST(BarbicanOptions, AnEndpointOrALookupIsNeeded) {
  auto none = makeBarbicanCertManager({}, makeUnauthenticatedBarbicanAuth(),
                                      std::move(common::makeHttpClient().value()));
  ASSERT_FALSE(none.ok());
  BarbicanOptions failing;
  failing.endpoint_lookup = [] {
    return common::Result<std::string>(common::makeError(ErrorCode::kNotFound, "no catalog entry"));
  };
  auto lazy = makeBarbicanCertManager(failing, makeUnauthenticatedBarbicanAuth(),
                                      std::move(common::makeHttpClient().value()));
  ASSERT_TRUE(lazy.ok()) << "the lookup happens on first use";
  auto c = (*lazy)->getCertificate({"p", ""}, "00000000-0000-4000-8000-000000000000");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kUnavailable);
}

TEST(BarbicanOptions, TheEndpointMustBeAnHttpUrl) {
  EXPECT_FALSE(makeBarbicanCertManager(test::at("barbican:9311"), makeUnauthenticatedBarbicanAuth(),
                                       std::move(common::makeHttpClient().value()))
                   .ok());
}

}  // namespace
}  // namespace banyan::provider::certs
