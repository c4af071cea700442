#include "l7/policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "request_fixture.h"

namespace banyan::dp::l7 {
namespace {

using testing::policy;
using testing::Request;
using testing::rule;
using RT = RuleType;
using CT = CompareType;

std::shared_ptr<const PolicySet> compileOk(std::vector<Policy> policies,
                                           const CompileOptions& options = {}) {
  auto set = compilePolicies(std::move(policies), options);
  EXPECT_TRUE(set.ok()) << set.error().message << " " << set.error().context;
  return set.ok() ? set.value() : nullptr;
}

std::string matchedId(const PolicySet& set, const Request& req) {
  const Policy* p = set.match(req.input());
  const Policy* q = set.matchLinear(req.input());
  EXPECT_EQ(p, q) << "index and linear scan disagree";
  return p == nullptr ? "" : p->id;
}

Request hostPath(std::string h, std::string p) {
  Request r;
  r.host = std::move(h);
  r.path = std::move(p);
  return r;
}

TEST(L7Policy, AllRulesOfAPolicyMustMatch) {
  auto set = compileOk({policy("p", 1,
                               {rule(RT::kHostName, CT::kEqualTo, "a.example.com"),
                                rule(RT::kPath, CT::kStartsWith, "/api")})});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(matchedId(*set, hostPath("a.example.com", "/api/x")), "p");
  EXPECT_EQ(matchedId(*set, hostPath("a.example.com", "/web")), "");
  EXPECT_EQ(matchedId(*set, hostPath("b.example.com", "/api/x")), "");
}

TEST(L7Policy, FirstMatchingPolicyByPositionWinsWhateverTheInputOrder) {
  auto set = compileOk({policy("third", 3, {rule(RT::kPath, CT::kStartsWith, "/")}),
                        policy("first", 1, {rule(RT::kPath, CT::kStartsWith, "/api")}),
                        policy("second", 2, {rule(RT::kPath, CT::kStartsWith, "/a")})});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(matchedId(*set, hostPath("h", "/api/v1")), "first");
  EXPECT_EQ(matchedId(*set, hostPath("h", "/abc")), "second");
  EXPECT_EQ(matchedId(*set, hostPath("h", "/zzz")), "third");
  ASSERT_EQ(set->policies().size(), 3u);
  EXPECT_EQ(set->policies()[0].id, "first");
}

TEST(L7Policy, EqualPositionsKeepTheDocumentOrder) {
  auto set = compileOk({policy("x", 5, {rule(RT::kPath, CT::kStartsWith, "/")}),
                        policy("y", 5, {rule(RT::kPath, CT::kStartsWith, "/")})});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(matchedId(*set, hostPath("h", "/")), "x");
}

TEST(L7Policy, ActionClassPrecedenceTriesRejectThenRedirectsThenPools) {
  std::vector<Policy> policies = {
      policy("pool", 1, {rule(RT::kPath, CT::kStartsWith, "/")}, PolicyAction::kRedirectToPool),
      policy("url", 2, {rule(RT::kPath, CT::kStartsWith, "/")}, PolicyAction::kRedirectToUrl),
      policy("reject", 3, {rule(RT::kPath, CT::kStartsWith, "/")}, PolicyAction::kReject),
  };
  auto by_position = compileOk(policies);
  auto by_class = compileOk(policies, CompileOptions{Precedence::kActionClassThenPosition});
  ASSERT_NE(by_position, nullptr);
  ASSERT_NE(by_class, nullptr);
  EXPECT_EQ(matchedId(*by_position, hostPath("h", "/x")), "pool");
  EXPECT_EQ(matchedId(*by_class, hostPath("h", "/x")), "reject");
}

TEST(L7Policy, AdminDownPolicyIsSkipped) {
  Policy down = policy("down", 1, {rule(RT::kPath, CT::kStartsWith, "/")});
  down.admin_state_up = false;
  auto set = compileOk({down, policy("up", 2, {rule(RT::kPath, CT::kStartsWith, "/")})});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(matchedId(*set, hostPath("h", "/")), "up");
}

TEST(L7Policy, AdminDownRuleIsIgnoredSoThePolicyMatchesOnTheOthers) {
  Rule never = rule(RT::kHostName, CT::kEqualTo, "never.example.com");
  never.admin_state_up = false;
  auto set = compileOk({policy("p", 1, {never, rule(RT::kPath, CT::kEqualTo, "/x")})});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(matchedId(*set, hostPath("other.example.com", "/x")), "p");
}

TEST(L7Policy, PolicyWithoutEnabledRulesNeverMatches) {
  Rule disabled = rule(RT::kPath, CT::kStartsWith, "/");
  disabled.admin_state_up = false;
  auto set = compileOk({policy("empty", 1, {}), policy("disabled-rules", 2, {disabled})});
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(set->policies().empty());
  EXPECT_EQ(matchedId(*set, hostPath("h", "/")), "");
}

TEST(L7Policy, RedirectToAnAdminDownPoolIsSkipped) {
  Policy to_down_pool = policy("p", 1, {rule(RT::kPath, CT::kStartsWith, "/")});
  to_down_pool.redirect_pool_admin_state_up = false;
  auto set = compileOk({to_down_pool, policy("q", 2, {rule(RT::kPath, CT::kStartsWith, "/")})});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(matchedId(*set, hostPath("h", "/")), "q");
}

TEST(L7Policy, RuleWithControlCharactersIsDroppedAsOctaviaDoes) {
  auto set = compileOk({policy(
      "p", 1,
      {rule(RT::kHeader, CT::kEqualTo, "a\r\nb", "X-A"), rule(RT::kPath, CT::kEqualTo, "/x")})});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->skippedRuleCount(), 1u);
  EXPECT_EQ(matchedId(*set, hostPath("h", "/x")), "p");
}

TEST(L7Policy, NoPoliciesMeansTheDefaultPool) {
  auto set = compileOk({});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(matchedId(*set, hostPath("h", "/")), "");
}

struct BadPolicy {
  const char* what;
  Policy policy;
  const char* context;  // expected in Error::context
};

TEST(L7Policy, InvalidPoliciesAreRefusedNamingPolicyAndRule) {
  Rule bad_regex = rule(RT::kPath, CT::kRegex, "(unclosed");
  bad_regex.id = "rule-7";
  Policy bad_code =
      policy("code", 1, {rule(RT::kPath, CT::kEqualTo, "/")}, PolicyAction::kRedirectToUrl);
  bad_code.redirect_http_code = 304;
  Policy crlf_url =
      policy("crlf", 1, {rule(RT::kPath, CT::kEqualTo, "/")}, PolicyAction::kRedirectToUrl);
  crlf_url.redirect_url = "https://example.com/\r\nSet-Cookie: x=y";
  Policy no_pool = policy("nopool", 1, {rule(RT::kPath, CT::kEqualTo, "/")});
  no_pool.redirect_pool_id.clear();
  const std::vector<BadPolicy> cases = {
      {"bad regex", policy("re", 1, {bad_regex}), "l7policy=re l7rule=rule-7"},
      {"header without key", policy("hdr", 1, {rule(RT::kHeader, CT::kEqualTo, "v")}),
       "l7policy=hdr l7rule=rules[0]"},
      {"cookie without key", policy("ck", 1, {rule(RT::kCookie, CT::kEqualTo, "v")}),
       "l7policy=ck"},
      {"dn field without key", policy("dn", 1, {rule(RT::kSslDnField, CT::kEqualTo, "v")}),
       "l7policy=dn"},
      {"empty value", policy("empty", 1, {rule(RT::kPath, CT::kEqualTo, "")}), "l7policy=empty"},
      {"verify result not an integer",
       policy("vr", 1, {rule(RT::kSslVerifyResult, CT::kEqualTo, "ok")}), "l7policy=vr"},
      {"verify result negative", policy("vrn", 1, {rule(RT::kSslVerifyResult, CT::kEqualTo, "-1")}),
       "l7policy=vrn"},
      {"has cert not true", policy("hc", 1, {rule(RT::kSslConnHasCert, CT::kEqualTo, "false")}),
       "l7policy=hc"},
      {"has cert with STARTS_WITH",
       policy("hcs", 1, {rule(RT::kSslConnHasCert, CT::kStartsWith, "true")}), "l7policy=hcs"},
      {"file type with CONTAINS", policy("ft", 1, {rule(RT::kFileType, CT::kContains, "jpg")}),
       "l7policy=ft"},
      {"redirect code 304", bad_code, "l7policy=code"},
      {"redirect URL with CRLF", crlf_url, "l7policy=crlf"},
      {"redirect to pool without pool", no_pool, "l7policy=nopool"},
  };
  for (const BadPolicy& c : cases) {
    SCOPED_TRACE(c.what);
    auto set = compilePolicies({c.policy});
    ASSERT_FALSE(set.ok());
    EXPECT_EQ(set.error().code, common::ErrorCode::kInvalidArgument);
    EXPECT_NE(set.error().context.find(c.context), std::string::npos) << set.error().context;
  }
}

TEST(L7Policy, InvalidRegexInAnAdminDownRuleIsNotAnError) {
  Rule bad = rule(RT::kPath, CT::kRegex, "(unclosed");
  bad.admin_state_up = false;
  auto set = compilePolicies({policy("p", 1, {bad, rule(RT::kPath, CT::kEqualTo, "/")})});
  EXPECT_TRUE(set.ok());
}

TEST(L7Policy, CatastrophicRegexStopsAtTheMatchLimitAndDoesNotMatch) {
  auto set = compileOk({policy("evil", 1, {rule(RT::kPath, CT::kRegex, "^(a|a)*(a|a)*(a|a)*b$")})});
  ASSERT_NE(set, nullptr);
  // The 'b' defeats PCRE2's "required character" shortcut, so it must backtrack.
  Request req = hostPath("h", std::string(40, 'a') + "bX");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(set->match(req.input()), nullptr);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(set->regexLimitHits(), 1u);
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST(L7Policy, MatchingDoesNotAllocate) {
  std::vector<Policy> policies;
  for (int i = 0; i < 50; ++i) {
    std::string n = std::to_string(i);
    policies.push_back(
        policy("h" + n, 4 * i + 1, {rule(RT::kHostName, CT::kEqualTo, "h" + n + ".example.com")}));
    policies.push_back(
        policy("p" + n, 4 * i + 2, {rule(RT::kPath, CT::kStartsWith, "/p" + n + "/")}));
    policies.push_back(policy("r" + n, 4 * i + 3, {rule(RT::kPath, CT::kRegex, "^/r" + n + "$")}));
    policies.push_back(policy("c" + n, 4 * i + 4,
                              {rule(RT::kCookie, CT::kEqualTo, n, "tier"),
                               rule(RT::kHeader, CT::kContains, "x", "X-A")}));
  }
  auto set = compileOk(std::move(policies));
  ASSERT_NE(set, nullptr);
  Request req = hostPath("H49.EXAMPLE.COM", "/nowhere");
  req.headers = {{"Cookie", "a=1; tier=49"}, {"X-A", "y, x"}};
  MatchInput in = req.input();
  ASSERT_NE(set->match(in), nullptr);  // warms the thread's regex match data
  long before = testing::allocationCount();
  const Policy* p = nullptr;
  for (int i = 0; i < 100; ++i) p = set->match(in);
  EXPECT_EQ(testing::allocationCount(), before);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->id, "h49");
}

TEST(L7Redirect, ToUrlDropsThePathAndQuery) {
  Policy p = policy("u", 1, {}, PolicyAction::kRedirectToUrl);
  p.redirect_url = "https://www.example.com/maintenance";
  EXPECT_EQ(buildRedirectLocation(p, "http", "a.example.com", "/x?y=1"),
            "https://www.example.com/maintenance");
}

TEST(L7Redirect, PrefixKeepsThePathAndQuery) {
  Policy p = policy("u", 1, {}, PolicyAction::kRedirectPrefix);
  p.redirect_prefix = "https://secure.example.com";
  EXPECT_EQ(buildRedirectLocation(p, "http", "a.example.com", "/cart?item=3&x"),
            "https://secure.example.com/cart?item=3&x");
}

TEST(L7Redirect, SlashPrefixKeepsSchemeAndHost) {
  Policy p = policy("u", 1, {}, PolicyAction::kRedirectPrefix);
  p.redirect_prefix = "/";
  EXPECT_EQ(buildRedirectLocation(p, "https", "a.example.com", "/cart"),
            "https://a.example.com/cart");
}

TEST(L7Redirect, NonRedirectActionsHaveNoLocation) {
  EXPECT_EQ(buildRedirectLocation(policy("r", 1, {}, PolicyAction::kReject), "http", "h", "/"), "");
  EXPECT_EQ(buildRedirectLocation(policy("p", 1, {}), "http", "h", "/"), "");
}

}  // namespace
}  // namespace banyan::dp::l7
