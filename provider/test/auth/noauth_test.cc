#include "auth/noauth.h"

#include <gtest/gtest.h>

#include <map>

#include "auth/policy.h"

namespace banyan::provider::auth {
namespace {

HeaderLookup lookup(std::map<std::string, std::string> headers) {
  return [headers = std::move(headers)](std::string_view name) -> std::optional<std::string> {
    for (const auto& [k, v] : headers) {
      if (k.size() == name.size() &&
          std::equal(k.begin(), k.end(), name.begin(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
        return v;
      }
    }
    return std::nullopt;
  };
}

TEST(NoauthAuthenticator, AcceptsARequestWithoutHeadersAsAnAdminWithNoProject) {
  auto auth = makeNoauthAuthenticator();
  AuthOutcome out = auth->authenticate(lookup({}));
  EXPECT_EQ(out.status, AuthOutcome::Status::kOk);
  EXPECT_TRUE(out.credentials.is_admin);
  EXPECT_EQ(out.credentials.project_id, "");
  EXPECT_TRUE(out.credentials.roles.empty());
  EXPECT_FALSE(out.credentials.system_scope);
}

TEST(NoauthAuthenticator, TakesIdentityFromTheOsloContextHeaders) {
  auto auth = makeNoauthAuthenticator();
  AuthOutcome out =
      auth->authenticate(lookup({{"x-user-id", "u1"},
                                 {"X-PROJECT-ID", "p1"},
                                 {"X-User-Name", "alice"},
                                 {"X-Project-Name", "demo"},
                                 {"X-User-Domain-Id", "default"},
                                 {"X-Project-Domain-Id", "d2"},
                                 {"X-Roles", " Member, load-balancer_Member ,,reader"}}));
  ASSERT_EQ(out.status, AuthOutcome::Status::kOk);
  const Credentials& c = out.credentials;
  EXPECT_EQ(c.user_id, "u1");
  EXPECT_EQ(c.project_id, "p1");
  EXPECT_EQ(c.user_name, "alice");
  EXPECT_EQ(c.project_name, "demo");
  EXPECT_EQ(c.user_domain_id, "default");
  EXPECT_EQ(c.project_domain_id, "d2");
  EXPECT_EQ(c.roles, (std::vector<std::string>{"member", "load-balancer_member", "reader"}));
  EXPECT_TRUE(c.is_admin);
}

TEST(NoauthAuthenticator, FallsBackToTheLegacyTenantAndUserHeaders) {
  auto auth = makeNoauthAuthenticator();
  AuthOutcome out = auth->authenticate(lookup(
      {{"X-Tenant-Id", "t1"}, {"X-User", "u2"}, {"X-Tenant-Name", "tn"}, {"X-Role", "admin"}}));
  EXPECT_EQ(out.credentials.project_id, "t1");
  EXPECT_EQ(out.credentials.user_id, "u2");
  EXPECT_EQ(out.credentials.project_name, "tn");
  EXPECT_EQ(out.credentials.roles, std::vector<std::string>{"admin"});
  out = auth->authenticate(lookup({{"X-Tenant", "t2"}, {"X-Project-Id", "p9"}}));
  EXPECT_EQ(out.credentials.project_id, "p9") << "X-Project-Id wins over the legacy names";
}

TEST(NoauthAuthenticator, ReadsTheSystemScopeHeader) {
  auto auth = makeNoauthAuthenticator();
  EXPECT_TRUE(
      auth->authenticate(lookup({{"OpenStack-System-Scope", "all"}})).credentials.system_scope);
  EXPECT_FALSE(
      auth->authenticate(lookup({{"OpenStack-System-Scope", "x"}})).credentials.system_scope);
}

TEST(NoauthAuthenticator, IgnoresATokenAndNeverAsksForOne) {
  auto auth = makeNoauthAuthenticator();
  AuthOutcome out = auth->authenticate(lookup({{"X-Auth-Token", "garbage"}}));
  EXPECT_EQ(out.status, AuthOutcome::Status::kOk);
  EXPECT_TRUE(out.www_authenticate.empty());
}

TEST(NoauthAuthenticator, ItsCallersMayDoEveryRegisteredActionUnderTheNoauthPolicy) {
  auto auth = makeNoauthAuthenticator();
  auto policy = makeOctaviaPolicy("", /*noauth=*/true);
  ASSERT_TRUE(policy.ok()) << policy.error().message;
  Credentials who = auth->authenticate(lookup({{"X-Project-Id", "p1"}})).credentials;
  for (const auto& action : knownActions()) {
    EXPECT_TRUE((*policy)->allowed(action, who, Target{"someone-else"})) << action;
  }
}

TEST(NoauthPolicy, MakesEvenACallerWithoutTheAdminFlagAnAdmin) {
  // Octavia: Context.is_admin is true whenever auth_strategy = noauth.
  auto policy = makeOctaviaPolicy("", /*noauth=*/true);
  ASSERT_TRUE(policy.ok());
  Credentials nobody;
  EXPECT_TRUE((*policy)->allowed("os_load-balancer_api:amphora:get_all", nobody, Target{}));
  EXPECT_TRUE(isAdminContext(**policy, nobody));
}

}  // namespace
}  // namespace banyan::provider::auth
