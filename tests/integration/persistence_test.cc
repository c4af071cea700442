// Session persistence through the real banyan-proxy: SOURCE_IP stickiness per
// client address (HTTP and TCP listeners), the HTTP_COOKIE member token
// (inserted once, honoured, opaque, stripped before the member), APP_COOKIE
// learning from the member's Set-Cookie, fallback when the sticky member goes
// down or is drained, and tables kept across a PUT /config that keeps members.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

// The SRV=<token> pair of a Set-Cookie value, "" when it sets another cookie.
std::string memberToken(const std::string& set_cookie) {
  if (set_cookie.rfind("SRV=", 0) != 0) return "";
  size_t end = set_cookie.find(';');
  return set_cookie.substr(4, end == std::string::npos ? std::string::npos : end - 4);
}

class Persistence : public ::testing::Test {
 protected:
  Persistence() {
    // Names long enough that an opaque cookie token cannot hold one by chance (with
    // "m1", about one random token in a hundred did, and the opacity check failed).
    for (int i = 0; i < 3; ++i)
      members_.push_back(std::make_unique<TestHttpBackend>("member-" + std::to_string(i + 1),
                                                           "127.0.0." + std::to_string(121 + i)));
  }
  // Round robin, so without persistence fresh connections change member.
  ConfigSpec config(const std::string& persistence_json, uint64_t generation = 1,
                    size_t count = 3) const {
    std::vector<MemberSpec> specs;
    for (size_t i = 0; i < count; ++i) specs.push_back(memberOf(*members_[i]));
    ConfigSpec c = simpleConfig(port_, specs);
    c.generation = generation;
    c.pool("p1").extra["session_persistence"] = persistence_json;
    return c;
  }
  void startProxy(const ConfigSpec& c) { proxy_ = std::make_unique<ProxyProcess>(c.toJson()); }
  static ConnectOptions from(const std::string& source) {
    ConnectOptions o;
    o.source_address = source;
    return o;
  }
  HttpResponse fetch(const HeaderList& headers = {}, const std::string& source = "127.0.0.1") {
    return fetchOnce("127.0.0.1", port_, "/", from(source), headers);
  }
  std::string servedBy(const HeaderList& headers = {}, const std::string& source = "127.0.0.1") {
    HttpResponse r = fetch(headers, source);
    EXPECT_EQ(r.status, 200);
    return r.header("X-Backend");
  }
  TestHttpBackend& member(const std::string& name) {
    return *members_[static_cast<size_t>(name.back() - '1')];
  }

  uint16_t port_ = pickFreePort();
  std::vector<std::unique_ptr<TestHttpBackend>> members_;
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(Persistence, WithoutPersistenceRoundRobinSpreadsFreshConnections) {
  // The baseline the stickiness tests below stand out against.
  startProxy(config("null"));
  std::set<std::string> seen;
  for (int i = 0; i < 12; ++i) seen.insert(servedBy());
  EXPECT_GE(seen.size(), 2u);
}

TEST_F(Persistence, SourceIpSticksEachClientAddressOverManyConnections) {
  startProxy(config(R"({"type": "SOURCE_IP"})"));
  for (const std::string source : {"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
    std::string first = servedBy({}, source);
    for (int i = 0; i < 15; ++i) EXPECT_EQ(servedBy({}, source), first) << source;
  }
}

TEST_F(Persistence, SourceIpGranularityGroupsAClientNetwork) {
  startProxy(config(R"({"type": "SOURCE_IP", "persistence_granularity": "255.255.255.0"})"));
  std::string first = servedBy({}, "127.0.9.1");
  for (int i = 2; i < 14; ++i)
    EXPECT_EQ(servedBy({}, "127.0.9." + std::to_string(i)), first) << i;
}

TEST_F(Persistence, SourceIpSticksOnATcpListener) {
  ConfigSpec c = config(R"({"type": "SOURCE_IP"})");
  c.listener("l1").protocol = "TCP";
  c.pool("p1").protocol = "TCP";
  startProxy(c);
  for (const std::string source : {"127.0.0.1", "127.0.0.2"}) {
    std::string first = servedBy({}, source);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(servedBy({}, source), first) << source;
  }
}

TEST_F(Persistence, HttpCookieIsInsertedOnceAndHonouredAfterwards) {
  startProxy(config(R"({"type": "HTTP_COOKIE"})"));
  HttpResponse first = fetch();
  ASSERT_EQ(first.status, 200);
  std::string token = memberToken(first.header("Set-Cookie"));
  ASSERT_FALSE(token.empty()) << first.raw_head;
  EXPECT_NE(first.header("Set-Cookie").find("HttpOnly"), std::string::npos);
  EXPECT_EQ(first.header("Cache-Control"), "private");
  std::string sticky = first.header("X-Backend");
  for (int i = 0; i < 15; ++i) {
    HttpResponse r = fetch({{"Cookie", "theme=dark; SRV=" + token}});
    EXPECT_EQ(r.header("X-Backend"), sticky);
    EXPECT_FALSE(r.hasHeader("Set-Cookie")) << r.raw_head;
  }
}

TEST_F(Persistence, HttpCookieTokenIsOpaqueAndStrippedBeforeTheMember) {
  startProxy(config(R"({"type": "HTTP_COOKIE"})"));
  HttpResponse first = fetch();
  std::string token = memberToken(first.header("Set-Cookie"));
  ASSERT_FALSE(token.empty());
  std::string sticky = first.header("X-Backend");
  EXPECT_EQ(token.find(sticky), std::string::npos) << token;
  EXPECT_EQ(token.find("127.0.0."), std::string::npos) << token;

  member(sticky).clearRecords();
  fetch({{"Cookie", "a=1; SRV=" + token + "; b=2"}});
  fetch({{"Cookie", "SRV=" + token}});
  auto requests = member(sticky).requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].header("Cookie"), "a=1; b=2");
  EXPECT_FALSE(headerCount(requests[1].headers, "Cookie") > 0) << requests[1].head;
}

TEST_F(Persistence, ATamperedHttpCookieGetsAFreshOne) {
  startProxy(config(R"({"type": "HTTP_COOKIE"})"));
  std::string token = memberToken(fetch().header("Set-Cookie"));
  ASSERT_FALSE(token.empty());
  std::string bad = token;
  bad[5] = bad[5] == 'A' ? 'B' : 'A';
  HttpResponse r = fetch({{"Cookie", "SRV=" + bad}});
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(memberToken(r.header("Set-Cookie")).empty()) << r.raw_head;
}

TEST_F(Persistence, AppCookieLearnsTheMembersSessionAndRoutesItBack) {
  for (auto& m : members_) {
    std::string name = m->name();
    m->configure([name](HttpBackendOptions& o) {
      o.extra_headers = {{"Set-Cookie", "JSESSIONID=session-" + name + "; Path=/"}};
    });
  }
  startProxy(config(R"({"type": "APP_COOKIE", "cookie_name": "JSESSIONID"})"));
  HttpResponse first = fetch();
  ASSERT_EQ(first.status, 200);
  std::string sticky = first.header("X-Backend");
  std::string session = "session-" + sticky;
  for (int i = 0; i < 15; ++i)
    EXPECT_EQ(servedBy({{"Cookie", "x=1; JSESSIONID=" + session}}), sticky);
  // The application's own cookie reaches the member untouched.
  EXPECT_EQ(member(sticky).requests().back().header("Cookie"), "x=1; JSESSIONID=" + session);
  // An unknown session value is balanced as usual.
  std::set<std::string> seen;
  for (int i = 0; i < 9; ++i) seen.insert(servedBy({{"Cookie", "JSESSIONID=never-issued"}}));
  EXPECT_GE(seen.size(), 2u);
}

TEST_F(Persistence, AStickyMemberThatGoesDownFallsBackToTheBalancer) {
  ConfigSpec c = config(R"({"type": "HTTP_COOKIE"})");
  c.pool("p1").health_monitor = MonitorSpec{};
  startProxy(c);
  for (auto& m : members_) ASSERT_TRUE(waitHealth(*proxy_, m->name(), "ONLINE", 5000));
  HttpResponse first = fetch();
  std::string token = memberToken(first.header("Set-Cookie"));
  std::string sticky = first.header("X-Backend");
  ASSERT_FALSE(token.empty());
  member(sticky).stop();
  ASSERT_TRUE(waitHealth(*proxy_, sticky, "ERROR", 5000));
  HttpResponse r = fetch({{"Cookie", "SRV=" + token}});
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.header("X-Backend"), sticky);
  std::string fresh = memberToken(r.header("Set-Cookie"));
  EXPECT_FALSE(fresh.empty());
  EXPECT_NE(fresh, token);
  // The new token sticks to the new member.
  std::string now = r.header("X-Backend");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(servedBy({{"Cookie", "SRV=" + fresh}}), now);
}

TEST_F(Persistence, ADrainedStickyMemberGetsNoNewRequests) {
  startProxy(config(R"({"type": "SOURCE_IP"})"));
  std::string sticky = servedBy();
  ConfigSpec c = config(R"({"type": "SOURCE_IP"})", 2);
  for (auto& m : c.pool("p1").members)
    if (m.id == sticky) m.weight = 0;
  ASSERT_EQ(proxy_->applyConfig(c.toJson()).status, 200);
  std::string moved = servedBy();
  EXPECT_NE(moved, sticky);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(servedBy(), moved);
}

TEST_F(Persistence, ARemovedStickyMemberFallsBackToTheOthers) {
  startProxy(config(R"({"type": "SOURCE_IP"})"));
  std::string sticky = servedBy();
  ConfigSpec c = config(R"({"type": "SOURCE_IP"})", 2);
  auto& members = c.pool("p1").members;
  members.erase(std::remove_if(members.begin(), members.end(),
                               [&](const MemberSpec& m) { return m.id == sticky; }),
                members.end());
  ASSERT_EQ(members.size(), 2u);
  ASSERT_EQ(proxy_->applyConfig(c.toJson()).status, 200);
  std::string moved = servedBy();
  EXPECT_NE(moved, sticky);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(servedBy(), moved);
}

TEST_F(Persistence, SourceIpPersistenceSurvivesAPutConfigThatKeepsTheMembers) {
  startProxy(config(R"({"type": "SOURCE_IP"})", 1, 2));
  std::map<std::string, std::string> before;
  for (int i = 1; i <= 8; ++i) {
    std::string source = "127.0.8." + std::to_string(i);
    before[source] = servedBy({}, source);
  }
  std::set<std::string> used;
  for (auto& [source, m] : before) used.insert(m);
  ASSERT_GE(used.size(), 2u);
  // A new member and a new generation; the old members stay.
  ASSERT_EQ(proxy_->applyConfig(config(R"({"type": "SOURCE_IP"})", 2, 3).toJson()).status, 200);
  for (auto& [source, m] : before)
    for (int i = 0; i < 3; ++i) EXPECT_EQ(servedBy({}, source), m) << source;
}

TEST_F(Persistence, AppCookieSessionsSurviveAPutConfigThatKeepsTheMembers) {
  for (auto& m : members_) {
    std::string name = m->name();
    m->configure([name](HttpBackendOptions& o) {
      o.extra_headers = {{"Set-Cookie", "SID=s-" + name}};
    });
  }
  const std::string sp = R"({"type": "APP_COOKIE", "cookie_name": "SID"})";
  startProxy(config(sp, 1, 2));
  std::string sticky = fetch().header("X-Backend");
  ASSERT_EQ(proxy_->applyConfig(config(sp, 2, 3).toJson()).status, 200);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(servedBy({{"Cookie", "SID=s-" + sticky}}), sticky);
}

TEST_F(Persistence, AppCookieWithoutACookieNameIsRefused) {
  startProxy(config("null"));
  ControlResponse resp = proxy_->put("/config", config(R"({"type": "APP_COOKIE"})", 2).toJson());
  ASSERT_EQ(resp.status, 400) << resp.body;
  EXPECT_STREQ(resp.json()["path"].GetString(), "/pools/0/session_persistence/cookie_name");
}

}  // namespace
}  // namespace banyan::test
