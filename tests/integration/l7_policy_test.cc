// L7 policies through the real banyan-proxy: every action, every rule type a
// plain HTTP client can exercise, invert, position order, admin-down policies,
// redirect Locations, per-request matching on keep-alive connections, and the
// refusal of bad policies with the JSON pointer at fault.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

// A rule as raw JSON.
std::string rule(const std::string& type, const std::string& compare, const std::string& value,
                 const std::string& key = "", bool invert = false) {
  std::string r = "{\"type\": " + jsonString(type) + ", \"compare_type\": " + jsonString(compare) +
                  ", \"value\": " + jsonString(value);
  if (!key.empty()) r += ", \"key\": " + jsonString(key);
  if (invert) r += ", \"invert\": true";
  return r + "}";
}

// A policy as raw JSON; `fields` are extra raw members ("\"redirect_pool_id\": \"p2\"").
std::string policy(const std::string& id, int position, const std::string& action,
                   const std::string& fields, const std::vector<std::string>& rules,
                   bool admin_state_up = true) {
  std::string p = "{\"id\": " + jsonString(id) + ", \"position\": " + std::to_string(position) +
                  ", \"action\": " + jsonString(action);
  if (!fields.empty()) p += ", " + fields;
  if (!admin_state_up) p += ", \"admin_state_up\": false";
  p += ", \"rules\": [";
  for (size_t i = 0; i < rules.size(); ++i) p += (i ? ", " : "") + rules[i];
  return p + "]}";
}

std::string toPool(const std::string& pool) { return "\"redirect_pool_id\": " + jsonString(pool); }

class L7Policies : public ::testing::Test {
 protected:
  // Listener l1 -> default pool p1 (m1); pools p2 (m2) and p3 (m3) for policies.
  ConfigSpec config(const std::vector<std::string>& policies, uint64_t generation = 1) const {
    ConfigSpec c = simpleConfig(port_, {memberOf(m1_)});
    c.generation = generation;
    PoolSpec p2;
    p2.id = "p2";
    p2.members = {memberOf(m2_)};
    PoolSpec p3;
    p3.id = "p3";
    p3.members = {memberOf(m3_)};
    c.pools.push_back(p2);
    c.pools.push_back(p3);
    std::string list = "[";
    for (size_t i = 0; i < policies.size(); ++i) list += (i ? ", " : "") + policies[i];
    c.listener("l1").extra["l7policies"] = list + "]";
    return c;
  }
  void startProxy(const std::vector<std::string>& policies) {
    proxy_ = std::make_unique<ProxyProcess>(config(policies).toJson());
  }
  HttpResponse fetch(const std::string& target, const HeaderList& headers = {}) {
    return fetchOnce("127.0.0.1", port_, target, {}, headers);
  }
  std::string servedBy(const std::string& target, const HeaderList& headers = {}) {
    HttpResponse r = fetch(target, headers);
    EXPECT_EQ(r.status, 200) << target;
    return r.header("X-Backend");
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend m1_{"m1", "127.0.0.111"};
  TestHttpBackend m2_{"m2", "127.0.0.112"};
  TestHttpBackend m3_{"m3", "127.0.0.113"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(L7Policies, HostNameRuleSendsMatchingHostsToThePolicyPoolIgnoringCaseAndPort) {
  startProxy({policy("api", 1, "REDIRECT_TO_POOL", toPool("p2"),
                     {rule("HOST_NAME", "EQUAL_TO", "api.example.com")})});
  EXPECT_EQ(servedBy("/", {{"Host", "API.Example.com:8080"}}), "m2");
  EXPECT_EQ(servedBy("/", {{"Host", "www.example.com"}}), "m1");
}

TEST_F(L7Policies, PathRuleMatchesThePathWithoutTheQueryString) {
  startProxy({policy("p", 1, "REDIRECT_TO_POOL", toPool("p2"),
                     {rule("PATH", "STARTS_WITH", "/api/")})});
  EXPECT_EQ(servedBy("/api/v1?x=/other"), "m2");
  EXPECT_EQ(servedBy("/web/api/"), "m1");
  EXPECT_EQ(servedBy("/web?q=/api/"), "m1");
}

TEST_F(L7Policies, FileTypeRuleMatchesThePathExtension) {
  startProxy({policy("img", 1, "REDIRECT_TO_POOL", toPool("p2"),
                     {rule("FILE_TYPE", "EQUAL_TO", "jpg")}),
              policy("css", 2, "REDIRECT_TO_POOL", toPool("p3"),
                     {rule("FILE_TYPE", "REGEX", "\\.(css|js)$")})});
  EXPECT_EQ(servedBy("/img/cat.jpg?size=big"), "m2");
  EXPECT_EQ(servedBy("/static/site.css"), "m3");
  EXPECT_EQ(servedBy("/static/site.js"), "m3");
  EXPECT_EQ(servedBy("/cat.jpgx"), "m1");
}

TEST_F(L7Policies, HeaderRuleMatchesAnyValueOfTheNamedHeader) {
  startProxy({policy("gold", 1, "REDIRECT_TO_POOL", toPool("p2"),
                     {rule("HEADER", "EQUAL_TO", "gold", "X-Tenant")})});
  EXPECT_EQ(servedBy("/", {{"x-tenant", "gold"}}), "m2");
  EXPECT_EQ(servedBy("/", {{"X-Tenant", "silver"}}), "m1");
  EXPECT_EQ(servedBy("/"), "m1");
}

TEST_F(L7Policies, CookieRuleMatchesTheNamedCookie) {
  startProxy({policy("vip", 1, "REDIRECT_TO_POOL", toPool("p2"),
                     {rule("COOKIE", "CONTAINS", "vip", "tier")})});
  EXPECT_EQ(servedBy("/", {{"Cookie", "a=1; tier=super-vip; b=2"}}), "m2");
  EXPECT_EQ(servedBy("/", {{"Cookie", "vip=tier; tier=basic"}}), "m1");
  EXPECT_EQ(servedBy("/"), "m1");
}

TEST_F(L7Policies, AllRulesOfAPolicyMustMatch) {
  startProxy({policy("both", 1, "REDIRECT_TO_POOL", toPool("p2"),
                     {rule("PATH", "STARTS_WITH", "/api"),
                      rule("HEADER", "EQUAL_TO", "yes", "X-Beta")})});
  EXPECT_EQ(servedBy("/api", {{"X-Beta", "yes"}}), "m2");
  EXPECT_EQ(servedBy("/api"), "m1");
  EXPECT_EQ(servedBy("/", {{"X-Beta", "yes"}}), "m1");
}

TEST_F(L7Policies, InvertedRuleMatchesWhatTheRuleDoesNot) {
  startProxy({policy("only-public", 1, "REJECT", "",
                     {rule("PATH", "STARTS_WITH", "/public", "", true)})});
  EXPECT_EQ(fetch("/private").status, 403);
  EXPECT_EQ(servedBy("/public/index.html"), "m1");
}

TEST_F(L7Policies, TheLowestPositionWinsWhateverTheDocumentOrder) {
  startProxy({policy("second", 2, "REDIRECT_TO_POOL", toPool("p2"),
                     {rule("PATH", "STARTS_WITH", "/")}),
              policy("first", 1, "REDIRECT_TO_POOL", toPool("p3"),
                     {rule("PATH", "STARTS_WITH", "/a")})});
  EXPECT_EQ(servedBy("/abc"), "m3");
  EXPECT_EQ(servedBy("/xyz"), "m2");
}

TEST_F(L7Policies, AnAdminDownPolicyIsIgnored) {
  startProxy({policy("off", 1, "REJECT", "", {rule("PATH", "STARTS_WITH", "/")}, false)});
  EXPECT_EQ(servedBy("/anything"), "m1");
}

TEST_F(L7Policies, RejectAnswers403WithoutReachingAnyMember) {
  startProxy({policy("deny", 1, "REJECT", "", {rule("PATH", "EQUAL_TO", "/admin")})});
  HttpResponse r = fetch("/admin");
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("403 Forbidden"), std::string::npos) << r.body;
  EXPECT_EQ(m1_.requestCount(), 0u);
  EXPECT_EQ(servedBy("/admin/x"), "m1");
}

TEST_F(L7Policies, RedirectToUrlAnswersTheCodeWithTheUrlAsLocation) {
  startProxy({policy("moved", 1, "REDIRECT_TO_URL",
                     "\"redirect_url\": \"https://www.example.com/new\", \"redirect_http_code\": 301",
                     {rule("PATH", "STARTS_WITH", "/old")})});
  HttpResponse r = fetch("/old/page?x=1");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.header("Location"), "https://www.example.com/new");
  EXPECT_EQ(m1_.requestCount(), 0u);
}

TEST_F(L7Policies, RedirectPrefixKeepsThePathAndQueryAndDefaultsTo302) {
  startProxy({policy("https", 1, "REDIRECT_PREFIX",
                     "\"redirect_prefix\": \"https://secure.example.com\"",
                     {rule("HOST_NAME", "ENDS_WITH", "example.com")})});
  HttpResponse r = fetch("/cart/items?id=7", {{"Host", "shop.example.com"}});
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("Location"), "https://secure.example.com/cart/items?id=7");
  EXPECT_EQ(servedBy("/cart", {{"Host", "other.org"}}), "m1");
}

TEST_F(L7Policies, PoliciesAreMatchedPerRequestOnAKeepAliveConnection) {
  startProxy({policy("api", 1, "REDIRECT_TO_POOL", toPool("p2"),
                     {rule("PATH", "STARTS_WITH", "/api")})});
  HttpClient c("127.0.0.1", port_);
  EXPECT_EQ(c.get("/").header("X-Backend"), "m1");
  EXPECT_EQ(c.get("/api/x").header("X-Backend"), "m2");
  EXPECT_EQ(c.get("/y").header("X-Backend"), "m1");
  EXPECT_EQ(c.get("/api").header("X-Backend"), "m2");
}

TEST_F(L7Policies, ARedirectToAnAdminDownPoolIsSkipped) {
  ConfigSpec c = config({policy("api", 1, "REDIRECT_TO_POOL", toPool("p2"),
                                {rule("PATH", "STARTS_WITH", "/api")})});
  c.pool("p2").admin_state_up = false;
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  EXPECT_EQ(servedBy("/api"), "m1");
}

TEST_F(L7Policies, PoliciesChangeWithAPutConfig) {
  startProxy({});
  EXPECT_EQ(servedBy("/api"), "m1");
  ControlResponse resp = proxy_->applyConfig(
      config({policy("api", 1, "REDIRECT_TO_POOL", toPool("p2"),
                     {rule("PATH", "STARTS_WITH", "/api")})},
             2)
          .toJson());
  ASSERT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(servedBy("/api"), "m2");
}

TEST_F(L7Policies, ABadRegexIsRefusedWithThePointerOfItsRule) {
  startProxy({});
  ControlResponse resp = proxy_->put(
      "/config", config({policy("re", 1, "REJECT", "",
                                {rule("PATH", "STARTS_WITH", "/"), rule("PATH", "REGEX", "(a")})},
                        2)
                     .toJson());
  ASSERT_EQ(resp.status, 400) << resp.body;
  EXPECT_STREQ(resp.json()["path"].GetString(), "/listeners/0/l7policies/0/rules/1");
  EXPECT_EQ(servedBy("/"), "m1");
}

TEST_F(L7Policies, ARedirectToAnUnknownPoolIsRefused) {
  startProxy({});
  ControlResponse resp = proxy_->put(
      "/config", config({policy("x", 1, "REDIRECT_TO_POOL", toPool("nope"),
                                {rule("PATH", "STARTS_WITH", "/")})},
                        2)
                     .toJson());
  ASSERT_EQ(resp.status, 400) << resp.body;
  EXPECT_STREQ(resp.json()["path"].GetString(), "/listeners/0/l7policies/0/redirect_pool_id");
}

}  // namespace
}  // namespace banyan::test
