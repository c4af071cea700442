// Persistence tables outlive snapshots: kept while a pool keeps its persistence
// settings, fresh when they change, dropped with the pool; and the member
// usability check a persisted member must pass.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "snapshot_fixture.h"
#include "config/parse.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"

namespace banyan::dp::proxy {
namespace {

struct Fixture : testing::SnapshotFixture {
  Fixture() : SnapshotFixture(1) {}
};

std::string document(const std::string& pool_id, const std::string& persistence,
                     const std::string& members = R"([{"id": "m1", "address": "127.0.0.11",
                                                       "protocol_port": 81}])") {
  return R"({"pools": [{"id": ")" + pool_id + R"(", "session_persistence": )" + persistence +
         R"(, "members": )" + members + "}]}";
}

const auto kNow = std::chrono::steady_clock::now();

TEST(PersistenceRegistry, ATableIsKeptWhileThePoolKeepsItsSettings) {
  Fixture f;
  auto a = f.build(document("p", R"({"type": "SOURCE_IP"})"));
  ASSERT_TRUE(a && a->pools[0].persistence && a->pools[0].persistence->table);
  a->pools[0].persistence->table->store("client", "m1", kNow);
  auto b = f.build(document("p", R"({"type": "SOURCE_IP"})"));
  ASSERT_TRUE(b && b->pools[0].persistence);
  EXPECT_EQ(b->pools[0].persistence->table, a->pools[0].persistence->table);
  EXPECT_EQ(b->pools[0].persistence->table->lookup("client", kNow).value_or(""), "m1");
}

TEST(PersistenceRegistry, ChangedSettingsOrAnotherPoolStartEmpty) {
  Fixture f;
  auto a = f.build(document("p", R"({"type": "SOURCE_IP"})"));
  a->pools[0].persistence->table->store("client", "m1", kNow);
  auto b = f.build(document("p", R"({"type": "SOURCE_IP", "persistence_granularity": "255.255.255.0"})"));
  EXPECT_FALSE(b->pools[0].persistence->table->lookup("client", kNow).has_value());
  auto c = f.build(document("q", R"({"type": "SOURCE_IP", "persistence_granularity": "255.255.255.0"})"));
  EXPECT_FALSE(c->pools[0].persistence->table->lookup("client", kNow).has_value());
}

TEST(PersistenceRegistry, ATableDroppedByOneApplyDoesNotComeBack) {
  Fixture f;
  auto a = f.build(document("p", R"({"type": "APP_COOKIE", "cookie_name": "SID"})"));
  a->pools[0].persistence->table->store("s1", "m1", kNow);
  f.build(document("p", "null"));
  auto c = f.build(document("p", R"({"type": "APP_COOKIE", "cookie_name": "SID"})"));
  EXPECT_FALSE(c->pools[0].persistence->table->lookup("s1", kNow).has_value());
}

TEST(PersistenceRegistry, HttpCookieTokensStayValidAcrossApplies) {
  Fixture f;
  auto a = f.build(document("p", R"({"type": "HTTP_COOKIE"})"));
  ASSERT_TRUE(a->pools[0].persistence->codec);
  std::string token = a->pools[0].persistence->codec->encode("m1");
  auto b = f.build(document("p", R"({"type": "HTTP_COOKIE"})"));
  EXPECT_EQ(b->pools[0].persistence->codec->decode(token).value_or(""), "m1");
}

TEST(PersistenceRegistry, AConfiguredSecretMakesTheSameTokensInAnotherProcess) {
  const std::string doc = R"({"settings": {"session_cookie_secret": "pair-secret"},)" +
                          document("p", R"({"type": "HTTP_COOKIE"})").substr(1);
  Fixture one, two;
  auto a = one.build(doc);
  auto b = two.build(doc);
  EXPECT_EQ(a->pools[0].persistence->codec->encode("m1"),
            b->pools[0].persistence->codec->encode("m1"));
}

TEST(PersistenceRegistry, OnlyEnabledUndrainedMembersAreUsable) {
  Fixture f;
  auto s = f.build(document("p", R"({"type": "SOURCE_IP"})", R"([
      {"id": "up", "address": "127.0.0.11", "protocol_port": 81},
      {"id": "off", "address": "127.0.0.12", "protocol_port": 81, "admin_state_up": false},
      {"id": "drained", "address": "127.0.0.13", "protocol_port": 81, "weight": 0}])"));
  const PoolRt& p = s->pools[0];
  EXPECT_NE(p.usableMember("up"), nullptr);
  EXPECT_EQ(p.usableMember("off"), nullptr);
  EXPECT_EQ(p.usableMember("drained"), nullptr);
  EXPECT_EQ(p.usableMember("gone"), nullptr);
}

}  // namespace
}  // namespace banyan::dp::proxy
