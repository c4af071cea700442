#include "proxy/snapshot.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "snapshot_fixture.h"
#include "config/parse.h"
#include "proxy/stats.h"

namespace banyan::dp::proxy {
namespace {

using Fixture = testing::SnapshotFixture;

const PoolRt* poolById(const Snapshot& s, const std::string& id) {
  for (const auto& p : s.pools)
    if (p.cfg->id == id) return &p;
  return nullptr;
}

constexpr const char* kTwoListeners = R"({
  "settings": {"default_connection_limit": 1234, "max_request_line": 4000,
               "max_header_bytes": 20000, "max_headers": 40},
  "listeners": [
    {"id": "off", "protocol": "HTTP", "address": "127.0.0.5", "protocol_port": 8000,
     "admin_state_up": false, "default_pool_id": "web"},
    {"id": "web", "protocol": "HTTP", "address": "127.0.0.1", "protocol_port": 8080,
     "additional_addresses": ["::1", "127.0.0.2"], "default_pool_id": "web"},
    {"id": "db", "protocol": "TCP", "address": "127.0.0.1", "protocol_port": 5432,
     "connection_limit": 10, "default_pool_id": "db"},
    {"id": "nopool", "protocol": "TCP", "address": "127.0.0.1", "protocol_port": 6000,
     "connection_limit": 0}
  ],
  "pools": [
    {"id": "web", "protocol": "HTTP", "lb_algorithm": "LEAST_CONNECTIONS",
     "members": [{"id": "m1", "address": "127.0.0.11", "protocol_port": 9001},
                 {"id": "m2", "address": "::1", "protocol_port": 9002}]},
    {"id": "db", "protocol": "TCP", "lb_algorithm": "SOURCE_IP",
     "members": [{"id": "m3", "address": "127.0.0.13", "protocol_port": 9003}]}
  ]
})";

TEST(Snapshot, KeepsTheDocumentAndSerial) {
  Fixture f;
  auto s = f.build(kTwoListeners);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->document, kTwoListeners);
  EXPECT_EQ(s->serial, 1u);
  EXPECT_EQ(f.build(kTwoListeners)->serial, 2u);
}

TEST(Snapshot, DisabledListenersAreSkipped) {
  Fixture f;
  auto s = f.build(kTwoListeners);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->listeners.size(), 3u);
  EXPECT_EQ(s->findListener("off"), nullptr);
  EXPECT_EQ(s->by_bind.count("127.0.0.5:8000"), 0u);
  // Indexes are positions in the snapshot, not in the document.
  for (size_t i = 0; i < s->listeners.size(); ++i) EXPECT_EQ(s->listeners[i].index, i);
  EXPECT_EQ(s->findListener("web"), &s->listeners[0]);
}

TEST(Snapshot, ListenersPointAtTheirDefaultPool) {
  Fixture f;
  auto s = f.build(kTwoListeners);
  ASSERT_TRUE(s);
  const ListenerRt* web = s->findListener("web");
  const ListenerRt* db = s->findListener("db");
  const ListenerRt* nopool = s->findListener("nopool");
  ASSERT_TRUE(web && db && nopool);
  ASSERT_NE(web->pool, nullptr);
  ASSERT_NE(db->pool, nullptr);
  EXPECT_EQ(web->pool->cfg->id, "web");
  EXPECT_EQ(db->pool->cfg->id, "db");
  EXPECT_EQ(web->pool, &s->pools[web->pool->index]);  // points into this snapshot
  EXPECT_EQ(nopool->pool, nullptr);
  EXPECT_EQ(web->pool->algorithm, balancer::Algorithm::LeastConnections);
  EXPECT_EQ(db->pool->algorithm, balancer::Algorithm::SourceIp);
}

TEST(Snapshot, DisabledPoolLeavesTheListenerWithoutPool) {
  Fixture f;
  auto s = f.build(R"({
    "listeners": [{"id": "l", "protocol": "HTTP", "address": "127.0.0.1", "protocol_port": 80,
                   "default_pool_id": "p"}],
    "pools": [{"id": "p", "protocol": "HTTP", "admin_state_up": false,
               "members": [{"id": "m", "address": "127.0.0.11", "protocol_port": 81}]}]})");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->listeners.size(), 1u);
  EXPECT_EQ(s->listeners[0].pool, nullptr);
  ASSERT_EQ(s->pools.size(), 1u);  // still built: members keep their health and counters
  EXPECT_EQ(s->pools[0].members.size(), 1u);
}

TEST(Snapshot, BindKeysCoverEveryAddressOfEveryEnabledListener) {
  Fixture f;
  auto s = f.build(kTwoListeners);
  ASSERT_TRUE(s);
  const size_t web = s->findListener("web")->index;
  const size_t db = s->findListener("db")->index;
  const size_t nopool = s->findListener("nopool")->index;
  const std::unordered_map<std::string, size_t> expected = {
      {"127.0.0.1:8080", web}, {"[::1]:8080", web},     {"127.0.0.2:8080", web},
      {"127.0.0.1:5432", db},  {"127.0.0.1:6000", nopool}};
  EXPECT_EQ(s->by_bind, expected);
  const ListenerRt* l = s->findListener("web");
  ASSERT_EQ(l->binds.size(), 3u);
  EXPECT_EQ(bindKey(l->binds[0]), "127.0.0.1:8080");
  EXPECT_EQ(bindKey(l->binds[1]), "[::1]:8080");
  EXPECT_EQ(bindKey(l->binds[2]), "127.0.0.2:8080");
}

TEST(Snapshot, ConnectionLimitMinusOneTakesTheDefault) {
  Fixture f;
  auto s = f.build(kTwoListeners);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->findListener("web")->connection_limit, 1234);  // -1 (absent) in the document
  EXPECT_EQ(s->findListener("db")->connection_limit, 10);
  EXPECT_EQ(s->findListener("nopool")->connection_limit, 0);
}

TEST(Snapshot, ExplicitMinusOneConnectionLimitTakesTheDefault) {
  Fixture f;
  auto s = f.build(R"({"settings": {"default_connection_limit": 77},
    "listeners": [{"id": "l", "protocol": "TCP", "address": "127.0.0.1", "protocol_port": 80,
                   "connection_limit": -1}]})");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->listeners[0].connection_limit, 77);
}

TEST(Snapshot, HttpLimitsComeFromSettings) {
  Fixture f;
  auto s = f.build(kTwoListeners);
  ASSERT_TRUE(s);
  const auto& limits = s->findListener("web")->limits;
  EXPECT_EQ(limits.max_request_line, 4000u);
  EXPECT_EQ(limits.max_head, 20000u);
  EXPECT_EQ(limits.max_headers, 40u);
}

TEST(Snapshot, MembersCarryTheirParsedAddress) {
  Fixture f;
  auto s = f.build(kTwoListeners);
  ASSERT_TRUE(s);
  const PoolRt* web = poolById(*s, "web");
  ASSERT_TRUE(web);
  ASSERT_EQ(web->members.size(), 2u);
  EXPECT_EQ(web->members[0].cfg->id, "m1");
  EXPECT_EQ(bindKey(web->members[0].address), "127.0.0.11:9001");
  EXPECT_EQ(bindKey(web->members[1].address), "[::1]:9002");
  EXPECT_NE(web->members[0].address_key, web->members[1].address_key);
  EXPECT_NE(web->members[0].id_hash, web->members[1].id_hash);
}

TEST(Snapshot, HealthAndCountersAreSharedAcrossSnapshotsByMemberId) {
  Fixture f;
  auto first = f.build(kTwoListeners);
  auto second = f.build(kTwoListeners);
  ASSERT_TRUE(first && second);
  const auto& m1a = poolById(*first, "web")->members[0];
  const auto& m1b = poolById(*second, "web")->members[0];
  EXPECT_EQ(m1a.health, m1b.health);
  EXPECT_EQ(m1a.counters, m1b.counters);
  EXPECT_NE(m1a.health, poolById(*first, "web")->members[1].health);
  EXPECT_NE(m1a.counters, poolById(*first, "web")->members[1].counters);
  EXPECT_EQ(first->findListener("web")->counters, second->findListener("web")->counters);
  EXPECT_NE(first->findListener("web")->counters, first->findListener("db")->counters);
  // A health change seen through the old snapshot is seen through the new one.
  m1a.health->status = health::MemberStatus::Down;
  EXPECT_FALSE(m1b.health->up());
}

TEST(Snapshot, MemberMovedToAnotherPoolKeepsItsHealthAndCounters) {
  Fixture f;
  auto before = f.build(R"({"pools": [
    {"id": "a", "protocol": "TCP", "members": [{"id": "m", "address": "127.0.0.11", "protocol_port": 81}]},
    {"id": "b", "protocol": "TCP"}]})");
  auto after = f.build(R"({"pools": [
    {"id": "a", "protocol": "TCP"},
    {"id": "b", "protocol": "TCP", "members": [{"id": "m", "address": "127.0.0.12", "protocol_port": 82}]}]})");
  ASSERT_TRUE(before && after);
  EXPECT_EQ(poolById(*before, "a")->members[0].health, poolById(*after, "b")->members[0].health);
  EXPECT_EQ(poolById(*before, "a")->members[0].counters, poolById(*after, "b")->members[0].counters);
}

TEST(Snapshot, CountersOfARemovedMemberAreForgottenOnceNoSnapshotHoldsThem) {
  Fixture f;
  auto first = f.build(kTwoListeners);
  ASSERT_TRUE(first);
  std::weak_ptr<Counters> m3 = poolById(*first, "db")->members[0].counters;
  std::weak_ptr<health::MemberHealth> m3_health = poolById(*first, "db")->members[0].health;
  auto second = f.build(R"({"pools": [{"id": "db", "protocol": "TCP"}]})");
  ASSERT_TRUE(second);
  f.member_counters.collect();
  f.health.collect();
  EXPECT_FALSE(m3.expired());  // the first snapshot still serves connections
  first.reset();
  f.member_counters.collect();
  f.health.collect();
  EXPECT_TRUE(m3.expired());
  EXPECT_TRUE(m3_health.expired());
}

TEST(Snapshot, ProxyProtocolFlagsFollowThePoolProtocol) {
  Fixture f;
  auto s = f.build(R"({
    "listeners": [
      {"id": "l1", "protocol": "HTTP", "address": "127.0.0.1", "protocol_port": 81, "default_pool_id": "v1"},
      {"id": "l2", "protocol": "HTTP", "address": "127.0.0.1", "protocol_port": 82, "default_pool_id": "v2"},
      {"id": "l3", "protocol": "HTTP", "address": "127.0.0.1", "protocol_port": 83, "default_pool_id": "plain"}],
    "pools": [{"id": "v1", "protocol": "PROXY"}, {"id": "v2", "protocol": "PROXYV2"},
              {"id": "plain", "protocol": "HTTP"}]})");
  ASSERT_TRUE(s);
  const PoolRt* v1 = poolById(*s, "v1");
  const PoolRt* v2 = poolById(*s, "v2");
  const PoolRt* plain = poolById(*s, "plain");
  EXPECT_TRUE(v1->send_proxy_v1);
  EXPECT_FALSE(v1->send_proxy_v2);
  EXPECT_FALSE(v2->send_proxy_v1);
  EXPECT_TRUE(v2->send_proxy_v2);
  EXPECT_FALSE(plain->send_proxy_v1);
  EXPECT_FALSE(plain->send_proxy_v2);
}

TEST(Counters, SumAddsEveryWorkersSlot) {
  Counters c(3);
  bump(c.slot(0).bytes_in, 5);
  bump(c.slot(2).bytes_in, 7);
  bump(c.slot(1).bytes_out, 11);
  bump(c.slot(0).total_connections);
  bump(c.slot(1).total_connections);
  bump(c.slot(0).active_connections, 2);
  bump(c.slot(1).active_connections, -1);  // opened on one worker's count, closed on another's
  bump(c.slot(2).errors, 4);
  CounterTotals t = c.sum();
  EXPECT_EQ(t.bytes_in, 12u);
  EXPECT_EQ(t.bytes_out, 11u);
  EXPECT_EQ(t.total_connections, 2u);
  EXPECT_EQ(t.active_connections, 1);
  EXPECT_EQ(t.errors, 4u);
}

TEST(Counters, SlotsLiveOnSeparateCacheLines) {
  Counters c(2);
  const auto distance = reinterpret_cast<const char*>(&c.slot(1)) -
                        reinterpret_cast<const char*>(&c.slot(0));
  EXPECT_GE(distance, 64);
}

TEST(Counters, WorkersWritingTheirOwnSlotsLoseNoUpdates) {
  constexpr size_t kThreads = 4;
  constexpr uint64_t kBumps = 100000;
  Counters c(kThreads);
  std::vector<std::thread> workers;
  for (size_t w = 0; w < kThreads; ++w)
    workers.emplace_back([&c, w] {
      for (uint64_t i = 0; i < kBumps; ++i) bump(c.slot(w).bytes_in, 2);
    });
  for (auto& t : workers) t.join();
  EXPECT_EQ(c.sum().bytes_in, 2 * kThreads * kBumps);
}

TEST(CounterRegistry, SameIdGivesTheSameCounters) {
  CounterRegistry r(2);
  auto a = r.get("a");
  EXPECT_EQ(r.get("a"), a);
  EXPECT_NE(r.get("b"), a);
}

TEST(CounterRegistry, CollectDropsOnlyUnreferencedEntries) {
  CounterRegistry r(2);
  auto kept = r.get("kept");
  bump(kept->slot(1).bytes_in, 3);
  std::weak_ptr<Counters> dropped = r.get("dropped");
  bump(dropped.lock()->slot(0).bytes_in, 9);
  EXPECT_FALSE(dropped.expired());  // the registry itself holds it until collect
  r.collect();
  EXPECT_TRUE(dropped.expired());
  EXPECT_EQ(r.get("kept"), kept);
  EXPECT_EQ(r.get("kept")->sum().bytes_in, 3u);
  EXPECT_EQ(r.get("dropped")->sum().bytes_in, 0u);  // a fresh entry
}

}  // namespace
}  // namespace banyan::dp::proxy
