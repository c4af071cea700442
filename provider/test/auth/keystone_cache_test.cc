// KeystoneAuthenticator's protocol and cache against a scripted fake Keystone
// (a fake HttpClient: unit tests only) and a manual clock.
#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <mutex>

#include "auth/keystone.h"

namespace banyan::provider::auth {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

std::string iso(Clock::time_point t) {
  time_t secs = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
  return buf;
}

struct FakeToken {
  std::string user_id;
  std::string project_id;
  std::vector<std::string> roles;
  Clock::time_point expires_at;
  bool system = false;
};

// Keystone's token API, scripted: known tokens validate, others are 404.
class FakeKeystone : public common::HttpClient {
 public:
  explicit FakeKeystone(Clock::time_point* now) : now_(now) {}

  Result<common::HttpClientResponse> request(std::string_view method, const std::string& url,
                                             const common::HttpHeaders& headers,
                                             const std::string& body,
                                             std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_url = url;
    if (down) return common::makeError(common::ErrorCode::kUnavailable, "connection refused");
    auto header = [&](std::string_view name) -> std::string {
      for (const auto& [k, v] : headers) {
        if (k == name) return v;
      }
      return {};
    };
    common::HttpClientResponse resp;
    if (method == "POST") {
      ++service_logins;
      last_login_body = body;
      if (refuse_service_login) {
        resp.status = 401;
        return resp;
      }
      std::string token = "service-" + std::to_string(service_logins);
      service_tokens[token] = true;
      resp.status = 201;
      resp.headers.emplace_back("X-Subject-Token", token);
      resp.body = tokenBody({"svc", "svcproj", {"service"}, *now_ + service_lifetime, false});
      return resp;
    }
    ++validations;
    if (!service_tokens.count(header("X-Auth-Token")) || !service_tokens[header("X-Auth-Token")]) {
      resp.status = 401;
      return resp;
    }
    if (status_override != 0) {
      resp.status = status_override;
      return resp;
    }
    auto it = user_tokens.find(header("X-Subject-Token"));
    if (it == user_tokens.end() || (!ignore_expiry && it->second.expires_at <= *now_)) {
      resp.status = 404;
      return resp;
    }
    resp.status = 200;
    resp.body = tokenBody(it->second);
    return resp;
  }

  static std::string tokenBody(const FakeToken& t) {
    std::string roles;
    for (const auto& r : t.roles)
      roles += std::string(roles.empty() ? "" : ",") + R"({"id":"x","name":")" + r + "\"}";
    std::string scope = t.system
                            ? R"("system":{"all":true},)"
                            : R"("project":{"id":")" + t.project_id +
                                  R"(","name":"pn","domain":{"id":"default","name":"Default"}},)";
    return R"({"token":{"methods":["password"],"expires_at":")" + iso(t.expires_at) +
           R"(","user":{"id":")" + t.user_id +
           R"(","name":"un","domain":{"id":"default","name":"Default"}},)" + scope +
           R"("roles":[)" + roles + "]}}";
  }

  std::mutex mu_;
  Clock::time_point* now_;
  bool down = false;
  bool ignore_expiry = false;
  bool refuse_service_login = false;
  int status_override = 0;
  int service_logins = 0;
  int validations = 0;
  Clock::duration service_lifetime = 1h;
  std::string last_url;
  std::string last_login_body;
  std::map<std::string, bool> service_tokens;  // token → still accepted
  std::map<std::string, FakeToken> user_tokens;
};

class KeystoneAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ = Clock::from_time_t(1'800'000'000);
    auto fake = std::make_unique<FakeKeystone>(&now_);
    keystone_ = fake.get();
    options_.www_authenticate_uri = "http://keystone.example:5000";
    options_.auth_url = "http://127.0.0.1:5000/v3/";
    options_.username = "banyan";
    options_.password = "pw\"quoted";
    options_.project_name = "service";
    auto made = makeKeystoneAuthenticator(options_, std::move(fake), [this] { return now_; });
    ASSERT_TRUE(made.ok()) << made.error().message;
    auth_ = std::move(made.value());
    keystone_->user_tokens["good"] = {"u1", "p1", {"Member", "load-balancer_member"}, now_ + 2h};
  }

  AuthOutcome auth(const std::string& token) {
    return auth_->authenticate([&](std::string_view name) -> std::optional<std::string> {
      if (name == "X-Auth-Token" && !token.empty()) return token;
      return std::nullopt;
    });
  }

  Clock::time_point now_;
  FakeKeystone* keystone_ = nullptr;
  KeystoneOptions options_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(KeystoneAuth, AValidTokenGivesItsCredentialsWithLowerCaseRoles) {
  AuthOutcome out = auth("good");
  ASSERT_EQ(out.status, AuthOutcome::Status::kOk) << out.reason;
  EXPECT_EQ(out.credentials.user_id, "u1");
  EXPECT_EQ(out.credentials.user_name, "un");
  EXPECT_EQ(out.credentials.project_id, "p1");
  EXPECT_EQ(out.credentials.project_name, "pn");
  EXPECT_EQ(out.credentials.user_domain_id, "default");
  EXPECT_EQ(out.credentials.project_domain_id, "default");
  EXPECT_EQ(out.credentials.roles, (std::vector<std::string>{"member", "load-balancer_member"}));
  EXPECT_FALSE(out.credentials.system_scope);
  EXPECT_FALSE(out.credentials.is_admin) << "the policy decides who is an admin";
  EXPECT_EQ(keystone_->last_url, "http://127.0.0.1:5000/v3/auth/tokens?nocatalog");
}

TEST_F(KeystoneAuth, LogsInAsTheServiceUserWithAProjectScopedPasswordRequest) {
  ASSERT_EQ(auth("good").status, AuthOutcome::Status::kOk);
  EXPECT_EQ(keystone_->service_logins, 1);
  const std::string& body = keystone_->last_login_body;
  EXPECT_NE(body.find(R"("methods":["password"])"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("name":"banyan")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("password":"pw\"quoted")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("scope":{"project":{"name":"service","domain":{"name":"Default"}}})"),
            std::string::npos)
      << body;
}

TEST_F(KeystoneAuth, ASystemScopedTokenIsMarkedSo) {
  keystone_->user_tokens["sys"] = {"admin", "", {"admin"}, now_ + 1h, true};
  AuthOutcome out = auth("sys");
  ASSERT_EQ(out.status, AuthOutcome::Status::kOk);
  EXPECT_TRUE(out.credentials.system_scope);
  EXPECT_EQ(out.credentials.project_id, "");
}

TEST_F(KeystoneAuth, MissingOrUnknownTokensAreUnauthorizedWithTheKeystoneUri) {
  for (const std::string token : {"", "garbage"}) {
    AuthOutcome out = auth(token);
    EXPECT_EQ(out.status, AuthOutcome::Status::kUnauthorized) << token;
    EXPECT_EQ(out.www_authenticate, "Keystone uri=\"http://keystone.example:5000\"");
    EXPECT_EQ(out.reason.find("garbage"), std::string::npos) << "reasons never carry the token";
  }
  EXPECT_EQ(keystone_->validations, 1) << "no token: Keystone is not asked";
}

TEST_F(KeystoneAuth, AValidTokenIsCachedForTheCacheTime) {
  ASSERT_EQ(auth("good").status, AuthOutcome::Status::kOk);
  now_ += 299s;
  ASSERT_EQ(auth("good").status, AuthOutcome::Status::kOk);
  EXPECT_EQ(keystone_->validations, 1);
  now_ += 2s;  // past token_cache_time (300 s)
  ASSERT_EQ(auth("good").status, AuthOutcome::Status::kOk);
  EXPECT_EQ(keystone_->validations, 2);
}

TEST_F(KeystoneAuth, ACachedTokenIsNotTrustedPastItsExpiry) {
  keystone_->user_tokens["short"] = {"u2", "p1", {"member"}, now_ + 30s};
  ASSERT_EQ(auth("short").status, AuthOutcome::Status::kOk);
  now_ += 29s;
  ASSERT_EQ(auth("short").status, AuthOutcome::Status::kOk);
  EXPECT_EQ(keystone_->validations, 1);
  now_ += 2s;
  EXPECT_EQ(auth("short").status, AuthOutcome::Status::kUnauthorized);
  EXPECT_EQ(keystone_->validations, 2);
}

TEST_F(KeystoneAuth, AnInvalidTokenIsRefusedFromTheCacheBriefly) {
  EXPECT_EQ(auth("garbage").status, AuthOutcome::Status::kUnauthorized);
  EXPECT_EQ(auth("garbage").status, AuthOutcome::Status::kUnauthorized);
  EXPECT_EQ(keystone_->validations, 1);
  // It becomes valid (e.g. Keystone was restored); after the short negative cache we ask again.
  keystone_->user_tokens["garbage"] = {"u3", "p1", {}, now_ + 1h};
  now_ += 11s;
  EXPECT_EQ(auth("garbage").status, AuthOutcome::Status::kOk);
  EXPECT_EQ(keystone_->validations, 2);
}

TEST_F(KeystoneAuth, AnExpiredTokenThatKeystoneStillReturnsIsUnauthorized) {
  // Clocks disagree: Keystone validates a token whose expires_at is already past for us.
  keystone_->ignore_expiry = true;
  keystone_->user_tokens["stale"] = {"u4", "p1", {}, now_ - 1s};
  EXPECT_EQ(auth("stale").status, AuthOutcome::Status::kUnauthorized);
}

TEST_F(KeystoneAuth, KeystoneDownIsUnavailableAndNotCached) {
  keystone_->down = true;
  AuthOutcome out = auth("good");
  EXPECT_EQ(out.status, AuthOutcome::Status::kUnavailable);
  EXPECT_NE(out.reason.find("connection refused"), std::string::npos) << out.reason;
  keystone_->down = false;
  EXPECT_EQ(auth("good").status, AuthOutcome::Status::kOk);
}

TEST_F(KeystoneAuth, KeystoneErrorsAreUnavailable) {
  ASSERT_EQ(auth("good").status, AuthOutcome::Status::kOk);  // service token in hand
  keystone_->status_override = 500;
  EXPECT_EQ(auth("other").status, AuthOutcome::Status::kUnavailable);
  keystone_->status_override = 403;
  AuthOutcome out = auth("other");
  EXPECT_EQ(out.status, AuthOutcome::Status::kUnavailable);
  EXPECT_NE(out.reason.find("403"), std::string::npos);
}

TEST_F(KeystoneAuth, RefusedServiceCredentialsAreUnavailable) {
  keystone_->refuse_service_login = true;
  AuthOutcome out = auth("good");
  EXPECT_EQ(out.status, AuthOutcome::Status::kUnavailable);
  EXPECT_NE(out.reason.find("service credentials"), std::string::npos) << out.reason;
}

TEST_F(KeystoneAuth, TheServiceTokenIsReusedThenRenewedBeforeItExpires) {
  ASSERT_EQ(auth("good").status, AuthOutcome::Status::kOk);
  keystone_->user_tokens["b"] = {"u", "p1", {}, now_ + 3h};
  ASSERT_EQ(auth("b").status, AuthOutcome::Status::kOk);
  EXPECT_EQ(keystone_->service_logins, 1);
  now_ += 59min + 1s;  // inside the last minute of the service token's hour
  keystone_->user_tokens["c"] = {"u", "p1", {}, now_ + 3h};
  ASSERT_EQ(auth("c").status, AuthOutcome::Status::kOk);
  EXPECT_EQ(keystone_->service_logins, 2);
}

TEST_F(KeystoneAuth, ARevokedServiceTokenIsReplacedOnceAndTheRequestRetried) {
  ASSERT_EQ(auth("good").status, AuthOutcome::Status::kOk);
  keystone_->service_tokens["service-1"] = false;  // revoked behind our back
  keystone_->user_tokens["d"] = {"u", "p1", {}, now_ + 1h};
  EXPECT_EQ(auth("d").status, AuthOutcome::Status::kOk);
  EXPECT_EQ(keystone_->service_logins, 2);
}

TEST(KeystoneOptionsCheck, RefusesOptionsItCannotWorkWith) {
  KeystoneOptions o;
  EXPECT_FALSE(makeKeystoneAuthenticator(o).ok());
  o.auth_url = "http://127.0.0.1:5000";
  o.username = "banyan";
  o.project_name = "service";
  EXPECT_TRUE(makeKeystoneAuthenticator(o).ok()) << "no request is made at construction";
  o.cafile = "/nonexistent/ca.pem";
  auto bad = makeKeystoneAuthenticator(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().context, "/nonexistent/ca.pem");
}

}  // namespace
}  // namespace banyan::provider::auth
