// KeystoneAuthenticator against a real Keystone (tests/support/keystone), with Octavia's
// policy on top. One Keystone serves the whole binary (it takes a minute to set up), with
// a short token lifetime so that expiry and service-token renewal really happen.
// Registered as a single ctest (not one per case) for the same reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "auth/keystone.h"
#include "auth/policy.h"
#include "keystone_server.h"

namespace banyan::provider::auth {
namespace {

using namespace std::chrono_literals;
using testing::KeystoneServer;

constexpr int kTokenLifetimeSeconds = 20;

KeystoneServer* g_keystone = nullptr;
std::string g_start_error;

class KeystoneEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto started = KeystoneServer::start({.token_expiration_seconds = kTokenLifetimeSeconds});
    if (!started) {
      g_start_error = started.error().message;
      return;
    }
    server_ = std::move(started.value());
    g_keystone = server_.get();
  }
  void TearDown() override {
    g_keystone = nullptr;
    server_.reset();  // stops Keystone by PID and removes its directory
  }

 private:
  std::unique_ptr<KeystoneServer> server_;
};

[[maybe_unused]] auto* const g_env = ::testing::AddGlobalTestEnvironment(new KeystoneEnvironment);

HeaderLookup tokenHeader(const std::string& token) {
  return [token](std::string_view name) -> std::optional<std::string> {
    if (name == "X-Auth-Token") return token;
    return std::nullopt;
  };
}

class RealKeystone : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_keystone, nullptr) << "Keystone did not start: " << g_start_error;
    options_.www_authenticate_uri = g_keystone->url();
    options_.auth_url = g_keystone->url() + "/v3";
    options_.username = "banyan";
    options_.password = g_keystone->password();
    options_.project_name = "service";
    auto made = makeKeystoneAuthenticator(options_);
    ASSERT_TRUE(made.ok()) << made.error().message;
    auth_ = std::move(made.value());
  }

  std::string token(const std::string& user) {
    auto t = g_keystone->issueToken(user);
    EXPECT_TRUE(t.ok()) << t.error().message;
    return t.ok() ? t.value() : std::string();
  }

  // True once uwsgi has logged `count` matching requests; false after ~3 s.
  static bool waitForRequests(const std::string& needle, int count) {
    for (int i = 0; i < 30; ++i) {
      if (g_keystone->countRequests(needle) >= count) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  static bool has(const std::vector<std::string>& roles, const std::string& role) {
    return std::find(roles.begin(), roles.end(), role) != roles.end();
  }

  KeystoneOptions options_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(RealKeystone, AValidTokenGivesTheUsersProjectAndRolesIncludingImpliedOnes) {
  AuthOutcome out = auth_->authenticate(tokenHeader(token("p1-lb-member")));
  ASSERT_EQ(out.status, AuthOutcome::Status::kOk) << out.reason;
  const Credentials& c = out.credentials;
  EXPECT_EQ(c.user_id, g_keystone->userId("p1-lb-member"));
  EXPECT_EQ(c.user_name, "p1-lb-member");
  EXPECT_EQ(c.project_id, g_keystone->projectId("banyan-p1"));
  EXPECT_EQ(c.project_name, "banyan-p1");
  EXPECT_EQ(c.user_domain_id, "default");
  EXPECT_EQ(c.project_domain_id, "default");
  EXPECT_TRUE(has(c.roles, "load-balancer_member"));
  EXPECT_TRUE(has(c.roles, "member"));
  EXPECT_TRUE(has(c.roles, "reader")) << "Keystone's implied role member → reader";
  EXPECT_FALSE(c.system_scope);
}

TEST_F(RealKeystone, PolicyDecisionsFollowTheRealTokens) {
  auto policy = makeOctaviaPolicy("", false);
  ASSERT_TRUE(policy.ok());
  Target p1{g_keystone->projectId("banyan-p1")};
  Target p2{g_keystone->projectId("banyan-p2")};
  Credentials member = auth_->authenticate(tokenHeader(token("p1-lb-member"))).credentials;
  EXPECT_TRUE((*policy)->allowed("os_load-balancer_api:loadbalancer:post", member, p1));
  EXPECT_FALSE((*policy)->allowed("os_load-balancer_api:loadbalancer:post", member, p2));
  Credentials reader = auth_->authenticate(tokenHeader(token("p1-reader"))).credentials;
  EXPECT_FALSE((*policy)->allowed("os_load-balancer_api:loadbalancer:get_one", reader, p1));
  Credentials observer = auth_->authenticate(tokenHeader(token("p1-lb-observer"))).credentials;
  EXPECT_TRUE((*policy)->allowed("os_load-balancer_api:loadbalancer:get_one", observer, p1));
  EXPECT_FALSE((*policy)->allowed("os_load-balancer_api:loadbalancer:put", observer, p1));
  Credentials admin = auth_->authenticate(tokenHeader(token("p1-admin"))).credentials;
  EXPECT_TRUE((*policy)->allowed("os_load-balancer_api:amphora:get_all", admin, p1));
  EXPECT_TRUE(isAdminContext(**policy, admin));
}

TEST_F(RealKeystone, ASystemScopedTokenIsMarkedSystemScoped) {
  auto t = g_keystone->issueSystemToken("admin");
  ASSERT_TRUE(t.ok()) << t.error().message;
  AuthOutcome out = auth_->authenticate(tokenHeader(t.value()));
  ASSERT_EQ(out.status, AuthOutcome::Status::kOk) << out.reason;
  EXPECT_TRUE(out.credentials.system_scope);
  EXPECT_EQ(out.credentials.project_id, "");
  EXPECT_TRUE(has(out.credentials.roles, "admin"));
}

TEST_F(RealKeystone, AGarbageTokenIsUnauthorizedWithTheKeystoneUri) {
  AuthOutcome out = auth_->authenticate(tokenHeader("gAAAAABgarbage-token"));
  EXPECT_EQ(out.status, AuthOutcome::Status::kUnauthorized) << out.reason;
  EXPECT_EQ(out.www_authenticate, "Keystone uri=\"" + g_keystone->url() + "\"");
  AuthOutcome none = auth_->authenticate([](std::string_view) { return std::nullopt; });
  EXPECT_EQ(none.status, AuthOutcome::Status::kUnauthorized);
}

TEST_F(RealKeystone, ARevokedTokenIsUnauthorized) {
  std::string t = token("p1-lb-member");
  ASSERT_TRUE(g_keystone->revokeToken(t).ok());
  AuthOutcome out = auth_->authenticate(tokenHeader(t));
  EXPECT_EQ(out.status, AuthOutcome::Status::kUnauthorized) << out.reason;
}

TEST_F(RealKeystone, ACacheHitDoesNotCallKeystone) {
  std::string t = token("p1-lb-observer");
  const std::string validation = "GET /v3/auth/tokens";
  int before = g_keystone->countRequests(validation);
  ASSERT_EQ(auth_->authenticate(tokenHeader(t)).status, AuthOutcome::Status::kOk);
  // uwsgi writes its log line just after the response: wait for it (bounded).
  EXPECT_TRUE(waitForRequests(validation, before + 1));
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(auth_->authenticate(tokenHeader(t)).status, AuthOutcome::Status::kOk);
  EXPECT_FALSE(waitForRequests(validation, before + 2)) << "a cached token was validated again";
}

TEST_F(RealKeystone, AnExpiredTokenIsUnauthorizedAndTheServiceTokenIsRenewed) {
  std::string t = token("p1-lb-member");
  ASSERT_EQ(auth_->authenticate(tokenHeader(t)).status, AuthOutcome::Status::kOk);
  int logins_before = g_keystone->countRequests("POST /v3/auth/tokens");
  // Bounded wait for the real expiry: the token lives kTokenLifetimeSeconds.
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(kTokenLifetimeSeconds + 10);
  AuthOutcome out;
  do {
    std::this_thread::sleep_for(1s);
    out = auth_->authenticate(tokenHeader(t));
  } while (out.status == AuthOutcome::Status::kOk && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(out.status, AuthOutcome::Status::kUnauthorized) << out.reason;
  // The service token expired as well; a fresh user token still validates.
  AuthOutcome fresh = auth_->authenticate(tokenHeader(token("p1-lb-member")));
  EXPECT_EQ(fresh.status, AuthOutcome::Status::kOk) << fresh.reason;
  EXPECT_GT(g_keystone->countRequests("POST /v3/auth/tokens"), logins_before + 1)
      << "Banyan logged in again for a new service token";
}

TEST_F(RealKeystone, BadServiceCredentialsAreUnavailable) {
  options_.password = "wrong";
  auto made = makeKeystoneAuthenticator(options_);
  ASSERT_TRUE(made.ok());
  AuthOutcome out = (*made)->authenticate(tokenHeader(token("p1-lb-member")));
  EXPECT_EQ(out.status, AuthOutcome::Status::kUnavailable) << out.reason;
}

// Runs last: it stops the shared Keystone.
TEST_F(RealKeystone, ZzWithKeystoneStoppedCachedTokensStillPassAndNewOnesAreUnavailable) {
  std::string cached = token("p1-lb-member");
  std::string uncached = token("p1-lb-observer");
  ASSERT_EQ(auth_->authenticate(tokenHeader(cached)).status, AuthOutcome::Status::kOk);
  g_keystone->stop();
  EXPECT_EQ(auth_->authenticate(tokenHeader(cached)).status, AuthOutcome::Status::kOk)
      << "served from the cache without Keystone";
  AuthOutcome out = auth_->authenticate(tokenHeader(uncached));
  EXPECT_EQ(out.status, AuthOutcome::Status::kUnavailable) << out.reason;
}

}  // namespace
}  // namespace banyan::provider::auth
