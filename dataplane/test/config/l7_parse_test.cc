// L7 policies and session persistence in the proxy's config document: what the
// parser keeps, the compiled policy set, and the refusals with their pointers.
#include <gtest/gtest.h>

#include <string>

#include "config/parse.h"

namespace banyan::dp::config {
namespace {

// One HTTP listener with `policies` (raw JSON array) and pools p1, p2;
// `persistence` is p1's session_persistence (raw JSON).
std::string document(const std::string& policies, const std::string& persistence = "null",
                     const std::string& listener_protocol = "HTTP") {
  return R"({"listeners": [{"id": "l1", "protocol": ")" + listener_protocol +
         R"(", "address": "127.0.0.1", "protocol_port": 8080, "default_pool_id": "p1",
              "l7policies": )" +
         policies + R"(}],
           "pools": [{"id": "p1", "protocol": ")" +
         std::string(listener_protocol == "TCP" ? "TCP" : "HTTP") +
         R"(", "session_persistence": )" + persistence + R"(,
                      "members": [{"id": "m1", "address": "127.0.0.11", "protocol_port": 81}]},
                     {"id": "p2", "admin_state_up": false, "members": []}]})";
}

TEST(L7Parse, PoliciesKeepOctaviasFieldsAndCompileIntoTheListener) {
  auto c = parseConfig(document(R"([
    {"id": "b", "position": 2, "action": "REDIRECT_PREFIX", "redirect_prefix": "https://x.example",
     "redirect_http_code": 308,
     "rules": [{"id": "r1", "type": "HEADER", "compare_type": "CONTAINS", "key": "X-A",
                "value": "v", "invert": true}]},
    {"id": "a", "position": 1, "action": "REJECT",
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/admin"}]}])"));
  ASSERT_TRUE(c.ok()) << c.error().context << ": " << c.error().message;
  const Listener& l = c->listeners[0];
  ASSERT_EQ(l.l7policies.size(), 2u);
  const l7::Policy& b = l.l7policies[0];
  EXPECT_EQ(b.id, "b");
  EXPECT_EQ(b.position, 2);
  EXPECT_EQ(b.action, l7::PolicyAction::kRedirectPrefix);
  EXPECT_EQ(b.redirect_prefix, "https://x.example");
  EXPECT_EQ(b.redirect_http_code, 308);
  ASSERT_EQ(b.rules.size(), 1u);
  EXPECT_EQ(b.rules[0].type, l7::RuleType::kHeader);
  EXPECT_EQ(b.rules[0].compare_type, l7::CompareType::kContains);
  EXPECT_EQ(b.rules[0].key, "X-A");
  EXPECT_TRUE(b.rules[0].invert);
  ASSERT_NE(l.policy_set, nullptr);
  ASSERT_EQ(l.policy_set->policies().size(), 2u);
  EXPECT_EQ(l.policy_set->policies()[0].id, "a");  // position order
}

TEST(L7Parse, ARedirectToAnAdminDownPoolIsAcceptedButNotCompiled) {
  auto c = parseConfig(document(R"([{"id": "x", "action": "REDIRECT_TO_POOL",
    "redirect_pool_id": "p2", "rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}]}])"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->listeners[0].l7policies[0].redirect_pool_admin_state_up);
  EXPECT_EQ(c->listeners[0].policy_set, nullptr);
}

TEST(L7Parse, ABadRegexIsRefusedAtItsRule) {
  auto c = parseConfig(document(R"([{"id": "x", "action": "REJECT", "rules": [
    {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"},
    {"type": "HOST_NAME", "compare_type": "REGEX", "value": "([a-z"}]}])"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/listeners/0/l7policies/0/rules/1");
  EXPECT_NE(c.error().message.find("regex"), std::string::npos) << c.error().message;
}

TEST(L7Parse, AnAdminDownPolicyIsStillChecked) {
  auto c = parseConfig(document(R"([{"id": "x", "action": "REJECT", "admin_state_up": false,
    "rules": [{"type": "HEADER", "compare_type": "EQUAL_TO", "value": "v"}]}])"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/listeners/0/l7policies/0/rules/0");
}

TEST(L7Parse, RedirectPoolMustExist) {
  auto c = parseConfig(document(R"([{"id": "x", "action": "REDIRECT_TO_POOL",
    "redirect_pool_id": "nope", "rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}]}])"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/listeners/0/l7policies/0/redirect_pool_id");
}

TEST(L7Parse, RedirectUrlIsRequiredForRedirectToUrl) {
  auto c = parseConfig(document(R"([{"id": "x", "action": "REDIRECT_TO_URL",
    "rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}]}])"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/listeners/0/l7policies/0");
}

TEST(L7Parse, DuplicatePolicyIdsAreRefused) {
  const std::string p = R"({"id": "x", "action": "REJECT", "rules": []})";
  auto c = parseConfig(document("[" + p + ", " + p + "]"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/listeners/0/l7policies/1/id");
}

TEST(L7Parse, UnknownActionsAndRuleTypesFailTheSchema) {
  auto c = parseConfig(document(R"([{"id": "x", "action": "DROP", "rules": []}])"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/listeners/0/l7policies/0/action");
  c = parseConfig(document(R"([{"id": "x", "action": "REJECT",
    "rules": [{"type": "QUERY", "compare_type": "EQUAL_TO", "value": "/"}]}])"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/listeners/0/l7policies/0/rules/0/type");
}

TEST(L7Parse, PoliciesOnATcpListenerAreAcceptedAndCompiled) {
  auto c = parseConfig(document(R"([
    {"id": "sni", "action": "REDIRECT_TO_POOL", "redirect_pool_id": "p1",
     "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "a.example"}]},
    {"id": "path", "action": "REJECT",
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/admin"}]}])",
                                "null", "TCP"));
  ASSERT_TRUE(c.ok()) << c.error().context << ": " << c.error().message;
  const Listener& l = c->listeners[0];
  ASSERT_EQ(l.l7policies.size(), 2u);
  ASSERT_NE(l.policy_set, nullptr);
  EXPECT_EQ(l.policy_set->policies().size(), 2u);
  // Only the HOST_NAME policy can match passed-through bytes.
  EXPECT_EQ(l.policy_set->passthroughCount(), 1u);
  EXPECT_TRUE(l.policy_set->passthroughNeedsHost());
}

TEST(L7Parse, PoliciesOnAnHttpsListenerAreAcceptedButTheirPoolMustFitIt) {
  const std::string https = R"({"listeners": [{"id": "l1", "protocol": "HTTPS",
      "address": "127.0.0.1", "protocol_port": 8443, "default_pool_id": "tls",
      "l7policies": [{"id": "x", "action": "REDIRECT_TO_POOL", "redirect_pool_id": "@POOL@",
        "rules": [{"type": "HOST_NAME", "compare_type": "ENDS_WITH", "value": ".example"}]}]}],
    "pools": [{"id": "tls", "protocol": "TCP", "members": []},
              {"id": "web", "protocol": "HTTP", "members": []},
              {"id": "pp", "protocol": "PROXYV2", "members": []}]})";
  auto with = [&](const std::string& pool) {
    std::string d = https;
    d.replace(d.find("@POOL@"), 6, pool);
    return d;
  };
  auto ok = parseConfig(with("pp"));
  ASSERT_TRUE(ok.ok()) << ok.error().context << ": " << ok.error().message;
  ASSERT_NE(ok->listeners[0].policy_set, nullptr);
  EXPECT_EQ(ok->listeners[0].policy_set->passthroughCount(), 1u);
  auto bad = parseConfig(with("web"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().context, "/listeners/0/l7policies/0/redirect_pool_id");
  EXPECT_EQ(bad.error().message, "HTTPS listener cannot use HTTP pool \"web\"");
}

TEST(L7Parse, TcpListenerPoliciesAreValidatedLikeHttpOnes) {
  auto c = parseConfig(document(R"([{"id": "x", "action": "REJECT",
    "rules": [{"id": "r", "type": "HOST_NAME", "compare_type": "REGEX", "value": "(a"}]}])",
                                "null", "TCP"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/listeners/0/l7policies/0/rules/0");
}

TEST(PersistenceParse, SessionPersistenceFieldsAreKept) {
  auto c = parseConfig(document("[]", R"({"type": "SOURCE_IP", "persistence_timeout": 120,
    "persistence_granularity": "255.255.255.0"})"));
  ASSERT_TRUE(c.ok()) << c.error().context << ": " << c.error().message;
  ASSERT_TRUE(c->pools[0].session_persistence.has_value());
  EXPECT_EQ(c->pools[0].session_persistence->type, PersistenceType::kSourceIp);
  EXPECT_EQ(c->pools[0].session_persistence->persistence_timeout_s, 120u);
  EXPECT_EQ(c->pools[0].session_persistence->persistence_granularity, "255.255.255.0");
  EXPECT_FALSE(c->pools[1].session_persistence.has_value());

  c = parseConfig(document("[]", R"({"type": "APP_COOKIE", "cookie_name": "JSESSIONID"})"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->pools[0].session_persistence->type, PersistenceType::kAppCookie);
  EXPECT_EQ(c->pools[0].session_persistence->cookie_name, "JSESSIONID");
}

TEST(PersistenceParse, CookieNamesFollowOctaviasRules) {
  auto c = parseConfig(document("[]", R"({"type": "APP_COOKIE"})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/pools/0/session_persistence/cookie_name");
  c = parseConfig(document("[]", R"({"type": "APP_COOKIE", "cookie_name": "a;b"})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/pools/0/session_persistence/cookie_name");
  c = parseConfig(document("[]", R"({"type": "HTTP_COOKIE", "cookie_name": "x"})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/pools/0/session_persistence/cookie_name");
}

TEST(PersistenceParse, ABadGranularityIsRefused) {
  auto c = parseConfig(document("[]", R"({"type": "SOURCE_IP", "persistence_granularity": "255.0.255.0"})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().context, "/pools/0/session_persistence/persistence_granularity");
}

}  // namespace
}  // namespace banyan::dp::config
