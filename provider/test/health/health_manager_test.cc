// The health manager against a real store: SQLite in a temp dir and a real PostgreSQL
// started by this binary (a fresh database per test). Time is a manual clock.
#include "health/health_manager.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "banyan/common/logging.h"
#include "health/heartbeat_receiver.h"
#include "store/store.h"
#include "support/postgres_server.h"

namespace banyan::provider::health {
namespace {

using namespace std::chrono_literals;
using common::Heartbeat;
using common::HeartbeatListener;
using common::HeartbeatPool;
using common::Result;
using store::Record;
using store::Store;
using store::Transaction;
using testing::PostgresEnvironment;

const auto* const kPostgresEnv = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

enum class Backend { kSqlite, kPostgres };

std::string backendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

// 2023-11-14T22:13:20Z: a fixed start, so expected timestamps are exact.
const std::chrono::system_clock::time_point kT0{std::chrono::milliseconds(1700000000000)};

int64_t ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

struct ManualClock {
  std::atomic<int64_t> now_ms{ms(kT0)};
  HealthManager::Clock fn() {
    return [this] { return std::chrono::system_clock::time_point(std::chrono::milliseconds(now_ms.load())); };
  }
  void advance(std::chrono::milliseconds d) { now_ms += d.count(); }
};

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

std::string apiBody(const std::string& id, const std::string& prov, const std::string& op, bool up = true) {
  return R"({"id":")" + id + R"(","name":"web-)" + id + R"(","admin_state_up":)" + (up ? "true" : "false") +
         R"(,"provisioning_status":")" + prov + R"(","operating_status":")" + op +
         R"(","created_at":"2023-01-01T00:00:00","updated_at":null,"tags":["a"]})";
}

Record rec(std::string kind, std::string id, std::string body, std::string lb = "", std::string parent = "",
           std::string project = "proj") {
  Record r;
  r.kind = std::move(kind);
  r.id = std::move(id);
  r.project_id = std::move(project);
  r.parent_id = std::move(parent);
  r.load_balancer_id = std::move(lb);
  r.body = std::move(body);
  return r;
}

std::string ampBody(const std::string& id, const std::string& lb, const std::string& status) {
  return R"({"id":")" + id + R"(","loadbalancer_id":)" + (lb.empty() ? "null" : "\"" + lb + "\"") +
         R"(,"status":")" + status + R"(","role":"STANDALONE","lb_network_ip":"192.0.2.10"})";
}

HeartbeatListener listenerBeat(const std::string& id, uint64_t bytes_in = 0, uint64_t bytes_out = 0,
                               uint64_t active = 0, uint64_t total = 0, uint64_t errors = 0) {
  HeartbeatListener l;
  l.id = id;
  l.status = "ONLINE";
  l.bytes_in = bytes_in;
  l.bytes_out = bytes_out;
  l.active_connections = active;
  l.total_connections = total;
  l.request_errors = errors;
  return l;
}

class HealthManagerTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kSqlite) {
      char templ[] = "/tmp/banyan-health-test-XXXXXX";
      ASSERT_NE(::mkdtemp(templ), nullptr);
      dir_ = templ;
      url_ = "sqlite:///" + dir_ + "/banyan.sqlite";
    } else {
      auto created = PostgresEnvironment::freshDatabase("health_test");
      ASSERT_TRUE(created.ok()) << created.error().message;
      url_ = *created;
    }
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Store> open() {
    auto opened = store::openStore(url_);
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    return opened.ok() ? std::move(*opened) : nullptr;
  }

  std::unique_ptr<HealthManager> manager(Store* store = nullptr) {
    HealthManagerOptions o;
    o.heartbeat_timeout = 60s;
    return std::make_unique<HealthManager>(store ? *store : *store_, o, clock_.fn());
  }

  void insert(std::vector<Record> records) {
    auto w = store_->write([&](Transaction& t) -> Result<void> {
      for (auto& r : records)
        if (auto i = t.insert(r); !i.ok()) return i;
      return {};
    });
    ASSERT_TRUE(w.ok()) << w.error().message;
  }

  void update(const std::string& kind, const std::string& id, const std::string& key, const std::string& value) {
    auto w = store_->write([&](Transaction& t) -> Result<void> {
      auto g = t.get(kind, id);
      if (!g.ok()) return g.error();
      auto d = parse((*g)->body);
      d[key.c_str()].SetString(value.c_str(), d.GetAllocator());
      Record r = **g;
      r.body = toJson(d);
      return t.update(r);
    });
    ASSERT_TRUE(w.ok()) << w.error().message;
  }

  static std::string toJson(const rapidjson::Value& v);

  std::optional<Record> get(const std::string& kind, const std::string& id) {
    std::optional<Record> out;
    auto r = store_->read([&](Transaction& t) -> Result<void> {
      auto g = t.get(kind, id);
      if (!g.ok()) return g.error();
      out = *g;
      return {};
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return out;
  }

  std::string field(const std::string& kind, const std::string& id, const char* key) {
    auto r = get(kind, id);
    if (!r) return "<missing>";
    auto d = parse(r->body);
    if (!d.HasMember(key)) return "<absent>";
    if (d[key].IsString()) return d[key].GetString();
    if (d[key].IsBool()) return d[key].GetBool() ? "true" : "false";
    if (d[key].IsInt64()) return std::to_string(d[key].GetInt64());
    if (d[key].IsNull()) return "null";
    return "<other>";
  }

  int64_t count(const std::string& kind) {
    int64_t n = -1;
    auto r = store_->read([&](Transaction& t) -> Result<void> {
      auto c = t.count(store::Query{kind, {}, {}, {}, {}});
      if (!c.ok()) return c.error();
      n = *c;
      return {};
    });
    EXPECT_TRUE(r.ok());
    return n;
  }

  // LB "lb1" (ACTIVE/ONLINE), listener l1, pool p1 with members m1 and m2, amphora a1.
  void seedWebLb(const std::string& lb_prov = "ACTIVE") {
    insert({rec("loadbalancer", "lb1", apiBody("lb1", lb_prov, "ONLINE")),
            rec("listener", "l1", apiBody("l1", "ACTIVE", "ONLINE"), "lb1", "lb1"),
            rec("pool", "p1", apiBody("p1", "ACTIVE", "ONLINE"), "lb1", "lb1"),
            rec("member", "m1", apiBody("m1", "ACTIVE", "ONLINE"), "lb1", "p1"),
            rec("member", "m2", apiBody("m2", "ACTIVE", "ONLINE"), "lb1", "p1"),
            rec("amphora", "a1", ampBody("a1", "lb1", "ALLOCATED"), "lb1")});
  }

  static Heartbeat healthyBeat(const std::string& amp = "a1", uint64_t seq = 1) {
    Heartbeat hb;
    hb.amphora_id = amp;
    hb.sequence = seq;
    hb.proxy_epoch = 1000;
    hb.generation = 1;
    hb.listeners = {listenerBeat("l1")};
    hb.pools = {HeartbeatPool{"p1", "ONLINE", {{"m1", "ONLINE"}, {"m2", "ONLINE"}}}};
    return hb;
  }

  size_t flushOk(HealthManager& hm) {
    auto r = hm.flush();
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : 0;
  }

  std::map<std::string, uint64_t> listenerStats(const std::string& id) {
    std::map<std::string, uint64_t> out;
    auto r = get("listener_stats", id);
    if (!r) return out;
    auto d = parse(r->body);
    for (const char* k : {"bytes_in", "bytes_out", "active_connections", "total_connections", "request_errors"})
      out[k] = d.HasMember(k) ? d[k].GetUint64() : 999999;
    return out;
  }

  ManualClock clock_;
  std::string dir_, url_;
  std::unique_ptr<Store> store_;
};

std::string HealthManagerTest::toJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return b.GetString();
}

using Stats = std::map<std::string, uint64_t>;
Stats stats(uint64_t in, uint64_t out, uint64_t active, uint64_t total, uint64_t errors) {
  return {{"bytes_in", in}, {"bytes_out", out}, {"active_connections", active}, {"total_connections", total},
          {"request_errors", errors}};
}

// ---------------------------------------------------------------- statuses and health

TEST_P(HealthManagerTest, ADownMemberIsRolledUpAndWrittenAndTheAmphoraHealthCreated) {
  seedWebLb();
  auto hm = manager();
  auto hb = healthyBeat();
  hb.pools[0].members[1].status = "ERROR";
  hm->onHeartbeat(hb, "192.0.2.10");
  EXPECT_EQ(flushOk(*hm), 1u);

  EXPECT_EQ(field("member", "m2", "operating_status"), "ERROR");
  EXPECT_EQ(field("member", "m1", "operating_status"), "ONLINE");
  EXPECT_EQ(field("pool", "p1", "operating_status"), "DEGRADED");
  EXPECT_EQ(field("loadbalancer", "lb1", "operating_status"), "DEGRADED");
  EXPECT_EQ(field("listener", "l1", "operating_status"), "ONLINE");
  // The rest of the body is the API's, untouched; updated_at moves as Octavia's onupdate.
  EXPECT_EQ(field("member", "m2", "name"), "web-m2");
  EXPECT_EQ(field("member", "m2", "provisioning_status"), "ACTIVE");
  EXPECT_EQ(field("member", "m2", "updated_at"), "2023-11-14T22:13:20");
  EXPECT_EQ(field("member", "m1", "updated_at"), "null");
  EXPECT_EQ(field("loadbalancer", "lb1", "provisioning_status"), "ACTIVE");

  auto health = get("amphora_health", "a1");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->load_balancer_id, "lb1");
  EXPECT_EQ(health->project_id, "proj");
  EXPECT_EQ(field("amphora_health", "a1", "last_update"), std::to_string(ms(kT0)));
  EXPECT_EQ(field("amphora_health", "a1", "busy"), "false");
  auto c = hm->counters();
  EXPECT_EQ(c.heartbeats, 1u);
  EXPECT_EQ(c.status_changes, 3u);
  EXPECT_EQ(c.unknown_amphora, 0u);
  EXPECT_EQ(c.write_errors, 0u);
}

TEST_P(HealthManagerTest, AnUnchangedStatusIsNotWrittenAgain) {
  seedWebLb();
  auto hm = manager();
  hm->onHeartbeat(healthyBeat(), "");
  flushOk(*hm);
  auto before = get("member", "m1");
  clock_.advance(10s);
  hm->onHeartbeat(healthyBeat("a1", 2), "");
  flushOk(*hm);
  EXPECT_EQ(get("member", "m1")->revision, before->revision);
  EXPECT_EQ(hm->counters().status_changes, 0u);
  EXPECT_EQ(field("amphora_health", "a1", "last_update"), std::to_string(ms(kT0) + 10000));
}

TEST_P(HealthManagerTest, AHeartbeatOfAnUnknownAmphoraIsCountedAndIgnored) {
  seedWebLb();
  auto hm = manager();
  auto hb = healthyBeat("ghost");
  hb.pools[0].members[0].status = "ERROR";
  hm->onHeartbeat(hb, "192.0.2.99");
  EXPECT_EQ(flushOk(*hm), 1u);
  EXPECT_EQ(hm->counters().unknown_amphora, 1u);
  EXPECT_EQ(count("amphora_health"), 0);
  EXPECT_EQ(count("amphora_stats"), 0);
  EXPECT_EQ(field("member", "m1", "operating_status"), "ONLINE");
}

TEST_P(HealthManagerTest, ADeletedAmphoraCountsAsUnknown) {
  seedWebLb();
  insert({rec("amphora", "old", ampBody("old", "lb1", "DELETED"), "lb1")});
  auto hm = manager();
  hm->onHeartbeat(healthyBeat("old"), "");
  flushOk(*hm);
  EXPECT_EQ(hm->counters().unknown_amphora, 1u);
  EXPECT_FALSE(get("amphora_health", "old"));
}

TEST_P(HealthManagerTest, AListenerCountMismatchWritesStatusesButDoesNotRefreshHealth) {
  seedWebLb();
  insert({rec("listener", "l2", apiBody("l2", "ACTIVE", "ONLINE"), "lb1", "lb1")});
  auto hm = manager();
  hm->onHeartbeat(healthyBeat(), "");  // lists l1 only
  flushOk(*hm);
  EXPECT_FALSE(get("amphora_health", "a1")) << "a config still landing must not count as alive";
  EXPECT_EQ(field("listener", "l2", "operating_status"), "ERROR");

  // Once the amphora reports both, it is alive; a later mismatch leaves the time alone.
  auto both = healthyBeat("a1", 2);
  both.listeners.push_back(listenerBeat("l2"));
  hm->onHeartbeat(both, "");
  flushOk(*hm);
  EXPECT_EQ(field("amphora_health", "a1", "last_update"), std::to_string(ms(kT0)));
  clock_.advance(30s);
  hm->onHeartbeat(healthyBeat("a1", 3), "");
  flushOk(*hm);
  EXPECT_EQ(field("amphora_health", "a1", "last_update"), std::to_string(ms(kT0)));
}

TEST_P(HealthManagerTest, APendingLoadBalancerStillGetsStatusesAndHealth) {
  // Octavia's update_health ignores the listener count while PENDING_*, and still
  // writes operating statuses.
  seedWebLb("PENDING_UPDATE");
  insert({rec("listener", "l2", apiBody("l2", "PENDING_CREATE", "OFFLINE"), "lb1", "lb1")});
  auto hm = manager();
  auto hb = healthyBeat();
  hb.pools[0].members[0].status = "ERROR";
  hm->onHeartbeat(hb, "");
  flushOk(*hm);
  EXPECT_TRUE(get("amphora_health", "a1"));
  EXPECT_EQ(field("member", "m1", "operating_status"), "ERROR");
  EXPECT_EQ(field("loadbalancer", "lb1", "provisioning_status"), "PENDING_UPDATE");
}

TEST_P(HealthManagerTest, ASpareOnlyGetsItsHealthRefreshed) {
  insert({rec("amphora", "spare", ampBody("spare", "", "READY"), "", "", "")});
  auto hm = manager();
  Heartbeat hb;
  hb.amphora_id = "spare";
  hb.proxy_epoch = 5;
  hm->onHeartbeat(hb, "");
  EXPECT_EQ(flushOk(*hm), 1u);
  EXPECT_EQ(field("amphora_health", "spare", "last_update"), std::to_string(ms(kT0)));
  EXPECT_EQ(count("amphora_stats"), 0);
  EXPECT_EQ(hm->counters().status_changes, 0u);
}

TEST_P(HealthManagerTest, TheQueueKeepsOneHeartbeatPerAmphoraAndIsBounded) {
  seedWebLb();
  HealthManagerOptions o;
  o.max_queued_amphorae = 2;
  HealthManager hm(*store_, o, clock_.fn());
  for (uint64_t seq = 1; seq <= 5; ++seq) hm.onHeartbeat(healthyBeat("a1", seq), "");
  hm.onHeartbeat(healthyBeat("a2"), "");
  hm.onHeartbeat(healthyBeat("a3"), "");  // a third amphora does not fit
  EXPECT_EQ(hm.queued(), 2u);
  auto c = hm.counters();
  EXPECT_EQ(c.heartbeats, 7u);
  EXPECT_EQ(c.superseded, 4u);
  EXPECT_EQ(c.dropped, 1u);
  EXPECT_EQ(flushOk(hm), 2u);
  EXPECT_EQ(hm.queued(), 0u);
  EXPECT_EQ(hm.counters().unknown_amphora, 1u);  // a2 has no amphora record
}

// ---------------------------------------------------------------- statistics

TEST_P(HealthManagerTest, StatsAreDeltasOfAbsoluteCountersAcrossHeartbeats) {
  seedWebLb();
  auto hm = manager();
  auto hb = healthyBeat();
  hb.listeners[0] = listenerBeat("l1", 100, 2000, 3, 40, 5);
  hm->onHeartbeat(hb, "");
  flushOk(*hm);
  EXPECT_EQ(listenerStats("l1"), stats(100, 2000, 3, 40, 5));

  hb.sequence = 2;
  hb.listeners[0] = listenerBeat("l1", 150, 2600, 1, 45, 5);
  hm->onHeartbeat(hb, "");
  flushOk(*hm);
  EXPECT_EQ(listenerStats("l1"), stats(150, 2600, 1, 45, 5));

  // What /v2/octavia/amphorae/a1/stats serves.
  auto amp = get("amphora_stats", "a1");
  ASSERT_TRUE(amp);
  EXPECT_EQ(amp->load_balancer_id, "lb1");
  auto d = parse(amp->body);
  ASSERT_TRUE(d["amphora_stats"].IsArray());
  ASSERT_EQ(d["amphora_stats"].Size(), 1u);
  const auto& row = d["amphora_stats"][0];
  EXPECT_STREQ(row["id"].GetString(), "a1");
  EXPECT_STREQ(row["listener_id"].GetString(), "l1");
  EXPECT_STREQ(row["loadbalancer_id"].GetString(), "lb1");
  EXPECT_EQ(row["active_connections"].GetUint64(), 1u);
  EXPECT_EQ(row["bytes_in"].GetUint64(), 150u);
  EXPECT_EQ(row["bytes_out"].GetUint64(), 2600u);
  EXPECT_EQ(row["request_errors"].GetUint64(), 5u);
  EXPECT_EQ(row["total_connections"].GetUint64(), 45u);

  auto ls = get("listener_stats", "l1");
  EXPECT_EQ(ls->load_balancer_id, "lb1");
  EXPECT_EQ(ls->project_id, "proj");
}

TEST_P(HealthManagerTest, ANewEpochStartsDeltasFromZeroAndALateOldEpochIsIgnored) {
  seedWebLb();
  auto hm = manager();
  auto hb = healthyBeat();
  hb.listeners[0] = listenerBeat("l1", 100, 1000, 2, 10, 1);
  hm->onHeartbeat(hb, "");
  flushOk(*hm);

  auto restarted = healthyBeat("a1", 2);
  restarted.proxy_epoch = 2000;
  restarted.listeners[0] = listenerBeat("l1", 30, 300, 1, 3, 0);
  hm->onHeartbeat(restarted, "");
  flushOk(*hm);
  EXPECT_EQ(listenerStats("l1"), stats(130, 1300, 1, 13, 1));

  auto late = healthyBeat("a1", 3);  // epoch 1000 again, larger counters
  late.listeners[0] = listenerBeat("l1", 500, 5000, 9, 50, 9);
  hm->onHeartbeat(late, "");
  flushOk(*hm);
  EXPECT_EQ(listenerStats("l1"), stats(130, 1300, 1, 13, 1));
}

TEST_P(HealthManagerTest, AnEpochChangeBetweenFlushesLosesNoDelta) {
  seedWebLb();
  auto hm = manager();
  auto hb = healthyBeat();
  hb.listeners[0] = listenerBeat("l1", 100, 0, 0, 10, 0);
  hm->onHeartbeat(hb, "");
  flushOk(*hm);
  // Three heartbeats queue before the next flush: two of the old epoch, one of a new one.
  hb.sequence = 2;
  hb.listeners[0] = listenerBeat("l1", 120, 0, 0, 12, 0);
  hm->onHeartbeat(hb, "");
  hb.sequence = 3;
  hb.listeners[0] = listenerBeat("l1", 170, 0, 0, 17, 0);
  hm->onHeartbeat(hb, "");
  auto restarted = healthyBeat("a1", 4);
  restarted.proxy_epoch = 3000;
  restarted.listeners[0] = listenerBeat("l1", 20, 0, 4, 2, 0);
  hm->onHeartbeat(restarted, "");
  EXPECT_EQ(hm->queued(), 1u);
  EXPECT_EQ(hm->counters().superseded, 1u);
  flushOk(*hm);
  EXPECT_EQ(listenerStats("l1"), stats(190, 0, 4, 19, 0));
}

TEST_P(HealthManagerTest, TwoAmphoraeOfOneLoadBalancerAreSummed) {
  seedWebLb();
  insert({rec("amphora", "a2", ampBody("a2", "lb1", "ALLOCATED"), "lb1")});
  auto hm = manager();
  auto a = healthyBeat("a1");
  a.listeners[0] = listenerBeat("l1", 100, 1000, 3, 10, 1);
  auto b = healthyBeat("a2");
  b.listeners[0] = listenerBeat("l1", 50, 500, 4, 5, 0);
  hm->onHeartbeat(a, "");
  hm->onHeartbeat(b, "");
  flushOk(*hm);
  EXPECT_EQ(listenerStats("l1"), stats(150, 1500, 7, 15, 1));

  // Only a1 reports next: its active count moves, a2's stays in the sum.
  a.sequence = 2;
  a.listeners[0] = listenerBeat("l1", 110, 1100, 1, 11, 1);
  hm->onHeartbeat(a, "");
  flushOk(*hm);
  EXPECT_EQ(listenerStats("l1"), stats(160, 1600, 5, 16, 1));

  // A deleted amphora's last report no longer counts.
  update("amphora", "a2", "status", "DELETED");
  a.sequence = 3;
  a.listeners[0] = listenerBeat("l1", 111, 1100, 1, 11, 1);
  hm->onHeartbeat(a, "");
  flushOk(*hm);
  EXPECT_EQ(listenerStats("l1"), stats(161, 1600, 1, 16, 1));
}

TEST_P(HealthManagerTest, TwoHealthManagersReceivingTheSameHeartbeatsCountThemOnce) {
  seedWebLb();
  auto second_store = open();
  ASSERT_NE(second_store, nullptr);
  auto one = manager();
  auto two = manager(second_store.get());
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    auto hb = healthyBeat("a1", seq);
    hb.listeners[0] = listenerBeat("l1", 100 * seq, 10 * seq, seq, seq, 0);
    one->onHeartbeat(hb, "");
    two->onHeartbeat(hb, "");
    // Both write at once, in either order.
    std::thread t([&] { EXPECT_TRUE(two->flush().ok()); });
    EXPECT_TRUE(one->flush().ok());
    t.join();
  }
  EXPECT_EQ(listenerStats("l1"), stats(300, 30, 3, 3, 0));
  EXPECT_EQ(one->counters().write_errors + two->counters().write_errors, 0u);
}

// Load balancers lb-<i> (ACTIVE/ONLINE) with listener l-<i>, pool p-<i>, members ma-<i>
// and mb-<i>, and `amphorae` amphorae each: amp-<i> (and amp-<i>-<k> for k >= 1).
std::vector<Record> manyLbs(int lbs, int amphorae = 1) {
  std::vector<Record> records;
  for (int i = 0; i < lbs; ++i) {
    std::string n = std::to_string(i);
    std::string lb = "lb-" + n, l = "l-" + n, p = "p-" + n;
    records.push_back(rec("loadbalancer", lb, apiBody(lb, "ACTIVE", "ONLINE")));
    records.push_back(rec("listener", l, apiBody(l, "ACTIVE", "ONLINE"), lb, lb));
    records.push_back(rec("pool", p, apiBody(p, "ACTIVE", "ONLINE"), lb, lb));
    records.push_back(rec("member", "ma-" + n, apiBody("ma-" + n, "ACTIVE", "ONLINE"), lb, p));
    records.push_back(rec("member", "mb-" + n, apiBody("mb-" + n, "ACTIVE", "ONLINE"), lb, p));
    for (int k = 0; k < amphorae; ++k) {
      std::string amp = "amp-" + n + (k ? "-" + std::to_string(k) : "");
      records.push_back(rec("amphora", amp, ampBody(amp, lb, "ALLOCATED"), lb));
    }
  }
  return records;
}

// The heartbeat of amphora `amp` of lb-<i>: mb-<i> as mb_status, counters growing with seq.
Heartbeat manyBeat(int i, const std::string& amp, uint64_t seq, const std::string& mb_status = "ONLINE") {
  std::string n = std::to_string(i);
  Heartbeat hb;
  hb.amphora_id = amp;
  hb.sequence = seq;
  hb.proxy_epoch = 1;
  hb.listeners = {listenerBeat("l-" + n, 100 * seq, 1000 * seq, 1, 10 * seq, 0)};
  hb.pools = {HeartbeatPool{"p-" + n, "ONLINE", {{"ma-" + n, "ONLINE"}, {"mb-" + n, mb_status}}}};
  return hb;
}

// Two health managers on their own connections receive every heartbeat of 150 load
// balancers with two amphorae each and flush at the same moment, five rounds: every
// delta is counted once, every status change written once (by whichever got there
// first), and neither batch fails (no deadlock left over after the store's retries).
TEST_P(HealthManagerTest, TwoHealthManagersFlushingTheSameBatchesAtOnceWriteEverythingOnce) {
  constexpr int kLbs = 150;
  constexpr uint64_t kRounds = 5;
  insert(manyLbs(kLbs, 2));
  auto second_store = open();
  ASSERT_NE(second_store, nullptr);
  auto one = manager();
  auto two = manager(second_store.get());
  for (uint64_t seq = 1; seq <= kRounds; ++seq) {
    for (int i = 0; i < kLbs; ++i) {
      std::string n = std::to_string(i);
      for (const std::string& amp : {"amp-" + n, "amp-" + n + "-1"}) {
        auto hb = manyBeat(i, amp, seq, seq == 2 ? "ERROR" : "ONLINE");
        one->onHeartbeat(hb, "");
        two->onHeartbeat(hb, "");
      }
    }
    std::atomic<bool> go{false};
    std::thread t([&] {
      while (!go) std::this_thread::yield();
      EXPECT_TRUE(two->flush().ok());
    });
    go = true;
    EXPECT_TRUE(one->flush().ok());
    t.join();
    clock_.advance(10s);
  }
  auto c1 = one->counters(), c2 = two->counters();
  EXPECT_EQ(c1.write_errors + c2.write_errors, 0u);
  // mb, p and the load balancer: down in round 2, up in round 3.
  EXPECT_EQ(c1.status_changes + c2.status_changes, static_cast<uint64_t>(kLbs) * 6);
  EXPECT_EQ(count("amphora_health"), kLbs * 2);
  EXPECT_EQ(count("amphora_stats"), kLbs * 2);
  for (int i : {0, 17, kLbs - 1}) {
    std::string n = std::to_string(i);
    // Two amphorae, each up to 500 bytes in, 5,000 out, 50 connections.
    EXPECT_EQ(listenerStats("l-" + n), stats(1000, 10000, 2, 100, 0)) << n;
    EXPECT_EQ(field("member", "mb-" + n, "operating_status"), "ONLINE");
    EXPECT_EQ(field("amphora_health", "amp-" + n + "-1", "last_update"),
              std::to_string(ms(kT0) + 40000));
  }
}

// The API and the controller write the same records while heartbeats are flushed: a
// writer on its own connection (taking the load balancer's lock first, as the API
// does) renames load balancers, flips their provisioning status, reweights members and
// adds and removes members, while a health manager flips mb-<i> between ERROR and
// ONLINE. Nothing the writer wrote is lost, no removed member comes back, and the last
// heartbeat's statuses are what is stored.
TEST_P(HealthManagerTest, ApiWritesDuringFlushesAreNeitherLostNorUndone) {
  constexpr int kLbs = 20;
  constexpr int kRounds = 25;
  constexpr int kWrites = 80;
  insert(manyLbs(kLbs));
  auto api_store = open();
  ASSERT_NE(api_store, nullptr);
  auto hm = manager();

  std::atomic<int> api_failures{0};
  std::map<std::string, std::string> last_name;  // by load balancer, written by the writer thread only
  std::map<std::string, int> last_weight;         // by member
  std::set<std::string> extra_members;
  std::thread api([&] {
    for (int k = 1; k <= kWrites; ++k) {
      const int i = k % kLbs;
      const std::string n = std::to_string(i), lb = "lb-" + n;
      const std::string extra = "extra-" + std::to_string(k), gone = "extra-" + std::to_string(k - kLbs);
      auto w = api_store->write([&](Transaction& t) -> Result<void> {
        if (auto l = t.lockKey("loadbalancer:" + lb); !l.ok()) return l;
        auto edit = [&](const char* kind, const std::string& id, auto&& change) -> Result<void> {
          auto g = t.get(kind, id);
          if (!g.ok()) return g.error();
          if (!g->has_value()) return common::makeError(common::ErrorCode::kNotFound, id);
          auto d = parse((*g)->body);
          change(d);
          Record r = **g;
          r.body = toJson(d);
          return t.update(r);
        };
        if (auto r = edit("loadbalancer", lb, [&](rapidjson::Document& d) {
              d["name"].SetString(("name-" + std::to_string(k)).c_str(), d.GetAllocator());
              d["provisioning_status"].SetString(k % 2 ? "PENDING_UPDATE" : "ACTIVE", d.GetAllocator());
            });
            !r.ok())
          return r;
        if (auto r = edit("member", "ma-" + n, [&](rapidjson::Document& d) {
              d.RemoveMember("weight");
              d.AddMember("weight", k, d.GetAllocator());
            });
            !r.ok())
          return r;
        Record m = rec("member", extra, apiBody(extra, "ACTIVE", "NO_MONITOR"), lb, "p-" + n);
        if (auto r = t.insert(m); !r.ok()) return r;
        if (k > kLbs)
          if (auto r = t.remove("member", gone); !r.ok()) return r;
        return {};
      });
      if (!w.ok()) {
        ++api_failures;
        ADD_FAILURE() << w.error().message;
        continue;
      }
      last_name[lb] = "name-" + std::to_string(k);
      last_weight["ma-" + n] = k;
      extra_members.insert(extra);
      if (k > kLbs) extra_members.erase(gone);
      std::this_thread::sleep_for(2ms);
    }
  });
  for (int round = 1; round <= kRounds; ++round) {
    for (int i = 0; i < kLbs; ++i)
      hm->onHeartbeat(manyBeat(i, "amp-" + std::to_string(i), round, round % 2 ? "ERROR" : "ONLINE"), "");
    EXPECT_TRUE(hm->flush().ok());
    clock_.advance(1s);
  }
  api.join();
  // A last round after the writer stopped: what it says is what stays.
  for (int i = 0; i < kLbs; ++i) hm->onHeartbeat(manyBeat(i, "amp-" + std::to_string(i), kRounds + 1, "ERROR"), "");
  EXPECT_TRUE(hm->flush().ok());

  EXPECT_EQ(api_failures.load(), 0);
  EXPECT_EQ(hm->counters().write_errors, 0u);
  for (const auto& [lb, name] : last_name) {
    EXPECT_EQ(field("loadbalancer", lb, "name"), name) << lb;
    EXPECT_EQ(field("loadbalancer", lb, "provisioning_status"), std::stoi(name.substr(5)) % 2 ? "PENDING_UPDATE" : "ACTIVE");
  }
  for (const auto& [member, weight] : last_weight) {
    auto d = parse(get("member", member)->body);
    EXPECT_EQ(d["weight"].GetInt(), weight) << member;
  }
  for (int k = 1; k <= kWrites; ++k) {
    std::string extra = "extra-" + std::to_string(k);
    EXPECT_EQ(get("member", extra).has_value(), extra_members.count(extra) == 1) << extra;
  }
  for (int i = 0; i < kLbs; ++i) {
    std::string n = std::to_string(i);
    EXPECT_EQ(field("member", "mb-" + n, "operating_status"), "ERROR") << n;
    EXPECT_EQ(field("pool", "p-" + n, "operating_status"), "DEGRADED") << n;
  }
}

// The controller deletes whole load balancers (its settle step: the load balancer's
// lock, every record under it, amphorae with their health and stats, the load balancer)
// while their amphorae keep reporting: no batch fails, and nothing the health manager
// writes outlives the load balancer.
TEST_P(HealthManagerTest, LoadBalancersDeletedDuringFlushesLeaveNoRecordBehind) {
  constexpr int kLbs = 30;
  insert(manyLbs(kLbs, 2));
  auto controller_store = open();
  ASSERT_NE(controller_store, nullptr);
  auto hm = manager();
  std::atomic<int> deleted{0}, failures{0};
  std::thread controller([&] {
    // Every other load balancer, one per transaction, while the flushes run.
    for (int i = 0; i < kLbs; i += 2) {
      const std::string lb = "lb-" + std::to_string(i);
      auto w = controller_store->write([&](Transaction& t) -> Result<void> {
        if (auto l = t.lockKey("loadbalancer:" + lb); !l.ok()) return l;
        for (const char* kind : {"listener", "pool", "member", "amphora", "amphora_health", "amphora_stats",
                                 "listener_stats"}) {
          auto recs = t.list(store::Query{kind, {}, {}, lb, {}});
          if (!recs.ok()) return recs.error();
          for (const auto& r : *recs)
            if (auto d = t.remove(kind, r.id); !d.ok()) return d;
        }
        return t.remove("loadbalancer", lb);
      });
      if (w.ok()) {
        ++deleted;
      } else {
        ++failures;
        ADD_FAILURE() << w.error().message;
      }
      std::this_thread::sleep_for(3ms);
    }
  });
  for (uint64_t seq = 1; seq <= 40; ++seq) {
    for (int i = 0; i < kLbs; ++i) {
      std::string n = std::to_string(i);
      hm->onHeartbeat(manyBeat(i, "amp-" + n, seq, seq % 2 ? "ERROR" : "ONLINE"), "");
      hm->onHeartbeat(manyBeat(i, "amp-" + n + "-1", seq, seq % 2 ? "ERROR" : "ONLINE"), "");
    }
    EXPECT_TRUE(hm->flush().ok());
    clock_.advance(1s);
    if (deleted.load() + failures.load() == (kLbs + 1) / 2 && seq > 2) break;
  }
  controller.join();
  // One more round after the last delete.
  for (int i = 0; i < kLbs; ++i) hm->onHeartbeat(manyBeat(i, "amp-" + std::to_string(i), 100), "");
  EXPECT_TRUE(hm->flush().ok());

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(hm->counters().write_errors, 0u);
  for (const char* kind : {"amphora_health", "amphora_stats"}) EXPECT_EQ(count(kind), kLbs) << kind;  // 15 x 2
  EXPECT_EQ(count("listener_stats"), kLbs / 2);
  for (int i = 0; i < kLbs; ++i) {
    std::string n = std::to_string(i);
    bool gone = i % 2 == 0;
    EXPECT_EQ(get("amphora_health", "amp-" + n).has_value(), !gone) << n;
    EXPECT_EQ(get("listener_stats", "l-" + n).has_value(), !gone) << n;
    EXPECT_EQ(get("member", "mb-" + n).has_value(), !gone) << n;
  }
}

// A Store that counts the Transaction calls made through it (each is one statement on
// PostgreSQL), forwarding every call, the batch ones included, to the real store.
class CountingStore final : public Store {
 public:
  explicit CountingStore(Store& inner) : inner_(inner) {}
  int calls() const { return calls_; }

  Result<void> migrate() override { return inner_.migrate(); }
  Result<int> schemaVersion() override { return inner_.schemaVersion(); }
  Result<void> read(const std::function<Result<void>(Transaction&)>& fn) override { return inner_.read(fn); }
  Result<void> write(const std::function<Result<void>(Transaction&)>& fn) override {
    return inner_.write([&](Transaction& tx) {
      Counting counting(tx, calls_);
      return fn(counting);
    });
  }
  Result<std::optional<store::Job>> claimJob(std::string_view w, std::chrono::milliseconds l) override {
    return inner_.claimJob(w, l);
  }
  Result<void> renewJob(int64_t id, std::string_view w, std::chrono::milliseconds l) override {
    return inner_.renewJob(id, w, l);
  }
  Result<void> finishJob(int64_t id, std::string_view w) override { return inner_.finishJob(id, w); }
  Result<void> retryJob(int64_t id, std::string_view w, std::chrono::milliseconds d, std::string_view e) override {
    return inner_.retryJob(id, w, d, e);
  }
  Result<int64_t> pendingJobs() override { return inner_.pendingJobs(); }

 private:
  class Counting final : public Transaction {
   public:
    Counting(Transaction& inner, int& calls) : inner_(inner), calls_(calls) {}
    Result<std::optional<Record>> get(std::string_view k, std::string_view id) override {
      ++calls_;
      return inner_.get(k, id);
    }
    Result<std::vector<Record>> list(const store::Query& q) override {
      ++calls_;
      return inner_.list(q);
    }
    Result<int64_t> count(const store::Query& q) override {
      ++calls_;
      return inner_.count(q);
    }
    Result<std::vector<Record>> listByParents(std::string_view k, const std::vector<std::string>& p) override {
      ++calls_;
      return inner_.listByParents(k, p);
    }
    Result<void> insert(Record& r) override {
      ++calls_;
      return inner_.insert(r);
    }
    Result<void> update(Record& r) override {
      ++calls_;
      return inner_.update(r);
    }
    Result<void> remove(std::string_view k, std::string_view id) override {
      ++calls_;
      return inner_.remove(k, id);
    }
    Result<void> lockKey(std::string_view key) override {
      ++calls_;
      return inner_.lockKey(key);
    }
    Result<int64_t> enqueueJob(const store::JobSpec& j) override {
      ++calls_;
      return inner_.enqueueJob(j);
    }
    Result<std::vector<Record>> getMany(std::string_view k, const std::vector<std::string>& ids) override {
      ++calls_;
      return inner_.getMany(k, ids);
    }
    Result<std::vector<Record>> listByLoadBalancers(std::string_view k, const std::vector<std::string>& l) override {
      ++calls_;
      return inner_.listByLoadBalancers(k, l);
    }
    Result<void> insertMany(std::vector<Record>& r) override {
      ++calls_;
      return inner_.insertMany(r);
    }
    Result<void> updateMany(std::vector<Record>& r) override {
      ++calls_;
      return inner_.updateMany(r);
    }
    Result<void> lockKeys(const std::vector<std::string>& k) override {
      ++calls_;
      return inner_.lockKeys(k);
    }

   private:
    Transaction& inner_;
    int& calls_;
  };

  Store& inner_;
  int calls_ = 0;
};

// What made PostgreSQL slow was a statement (a round trip) per heartbeat. A flush of 5
// amphorae and one of 300 (first heartbeats: everything inserted; then a status change
// everywhere) cost the same number of store calls.
TEST_P(HealthManagerTest, AFlushCostsTheSameStatementsForFiveOrThreeHundredAmphorae) {
  insert(manyLbs(305));
  auto callsFor = [&](int from, int to, uint64_t seq, const std::string& mb) {
    CountingStore counting(*store_);
    auto hm = manager(&counting);
    for (int i = from; i < to; ++i) hm->onHeartbeat(manyBeat(i, "amp-" + std::to_string(i), seq, mb), "");
    EXPECT_EQ(flushOk(*hm), static_cast<size_t>(to - from));
    EXPECT_EQ(hm->counters().write_errors, 0u);
    return counting.calls();
  };
  int small_first = callsFor(0, 5, 1, "ONLINE"), large_first = callsFor(5, 305, 1, "ONLINE");
  int small_down = callsFor(0, 5, 2, "ERROR"), large_down = callsFor(5, 305, 2, "ERROR");
  std::printf("[ statements ] %s: first heartbeats %d, status changes %d store calls per flush\n",
              GetParam() == Backend::kSqlite ? "sqlite" : "postgres", large_first, large_down);
  EXPECT_EQ(small_first, large_first);
  EXPECT_EQ(small_down, large_down);
  EXPECT_LE(large_down, 25);
  EXPECT_EQ(field("member", "mb-304", "operating_status"), "ERROR");
  EXPECT_EQ(listenerStats("l-304"), stats(200, 2000, 1, 20, 0));
}

TEST_P(HealthManagerTest, StatsOfAListenerNotInTheDatabaseAreNotStored) {
  seedWebLb();
  auto hm = manager();
  auto hb = healthyBeat();
  hb.listeners.push_back(listenerBeat("gone", 1, 1, 1, 1, 1));
  hm->onHeartbeat(hb, "");
  flushOk(*hm);
  EXPECT_FALSE(get("listener_stats", "gone"));
  EXPECT_EQ(parse(get("amphora_stats", "a1")->body)["amphora_stats"].Size(), 1u);
}

// ---------------------------------------------------------------- stale amphorae

TEST_P(HealthManagerTest, AStaleAmphoraGetsOneFailoverJobItsLoadBalancerPendingAndBusy) {
  seedWebLb();
  auto hm = manager();
  hm->onHeartbeat(healthyBeat(), "");
  flushOk(*hm);
  clock_.advance(59s);
  auto none = hm->failoverStale();
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);

  clock_.advance(2s);
  auto one = hm->failoverStale();
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(*one, 1);
  EXPECT_EQ(field("loadbalancer", "lb1", "provisioning_status"), "PENDING_UPDATE");
  EXPECT_EQ(field("loadbalancer", "lb1", "updated_at"), "2023-11-14T22:14:21");
  EXPECT_EQ(field("amphora_health", "a1", "busy"), "true");

  auto job = store_->claimJob("test-worker", 60s);
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(job->has_value());
  EXPECT_EQ((*job)->kind, "amphora.failover");
  EXPECT_EQ((*job)->serial_key, "lb1");
  auto p = parse((*job)->payload);
  EXPECT_STREQ(p["object_id"].GetString(), "a1");
  EXPECT_STREQ(p["load_balancer_id"].GetString(), "lb1");
  EXPECT_STREQ(p["project_id"].GetString(), "proj");
  EXPECT_STREQ(p["reason"].GetString(), "heartbeat timeout");
  std::string req = p["request_id"].GetString();
  EXPECT_EQ(req.size(), 40u) << req;
  EXPECT_EQ(req.rfind("req-", 0), 0u) << req;

  auto again = hm->failoverStale();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  auto pending = store_->pendingJobs();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(*pending, 1);
  EXPECT_EQ(hm->counters().failovers_enqueued, 1u);
}

TEST_P(HealthManagerTest, AStaleAmphoraOfAPendingLoadBalancerIsSkippedUntilItSettles) {
  seedWebLb();
  auto hm = manager();
  hm->onHeartbeat(healthyBeat(), "");
  flushOk(*hm);
  update("loadbalancer", "lb1", "provisioning_status", "PENDING_UPDATE");
  clock_.advance(61s);
  auto r = hm->failoverStale();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(field("amphora_health", "a1", "busy"), "false");
  EXPECT_EQ(*store_->pendingJobs(), 0);

  update("loadbalancer", "lb1", "provisioning_status", "ERROR");  // Octavia fails over from ERROR too
  r = hm->failoverStale();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1);
  EXPECT_EQ(field("loadbalancer", "lb1", "provisioning_status"), "PENDING_UPDATE");
}

TEST_P(HealthManagerTest, AnAmphoraThatKeepsReportingIsNeverStale) {
  seedWebLb();
  auto hm = manager();
  for (int i = 1; i <= 5; ++i) {
    hm->onHeartbeat(healthyBeat("a1", i), "");
    flushOk(*hm);
    clock_.advance(40s);
    auto r = hm->failoverStale();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 0);
  }
}

TEST_P(HealthManagerTest, OnlyAllocatedOrSpareAmphoraeAreFailedOver) {
  seedWebLb();
  insert({rec("amphora", "booting", ampBody("booting", "lb1", "PENDING_CREATE"), "lb1")});
  auto hm = manager();
  hm->onHeartbeat(healthyBeat("booting"), "");
  flushOk(*hm);
  clock_.advance(61s);
  auto r = hm->failoverStale();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(field("amphora_health", "booting", "busy"), "false");
}

TEST_P(HealthManagerTest, AStaleSpareIsFailedOverWithoutALoadBalancer) {
  insert({rec("amphora", "spare", ampBody("spare", "", "READY"), "", "", "")});
  auto hm = manager();
  Heartbeat hb;
  hb.amphora_id = "spare";
  hm->onHeartbeat(hb, "");
  flushOk(*hm);
  clock_.advance(61s);
  auto r = hm->failoverStale();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1);
  auto job = store_->claimJob("w", 60s);
  ASSERT_TRUE(job.ok() && job->has_value());
  EXPECT_EQ((*job)->kind, "amphora.failover");
  EXPECT_EQ((*job)->serial_key, "");
  auto p = parse((*job)->payload);
  EXPECT_STREQ(p["object_id"].GetString(), "spare");
  EXPECT_STREQ(p["load_balancer_id"].GetString(), "");
}

TEST_P(HealthManagerTest, SeveralHealthManagersScanningAtOnceQueueOneFailover) {
  seedWebLb();
  auto hm = manager();
  hm->onHeartbeat(healthyBeat(), "");
  flushOk(*hm);
  clock_.advance(61s);
  std::vector<std::unique_ptr<Store>> stores;
  std::vector<std::unique_ptr<HealthManager>> managers;
  for (int i = 0; i < 4; ++i) {
    stores.push_back(open());
    ASSERT_NE(stores.back(), nullptr);
    managers.push_back(manager(stores.back().get()));
  }
  std::atomic<int> total{0};
  std::vector<std::thread> threads;
  for (auto& m : managers) {
    threads.emplace_back([&, m = m.get()] {
      auto r = m->failoverStale();
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (r.ok()) total += *r;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(total.load(), 1);
  EXPECT_EQ(*store_->pendingJobs(), 1);
}

TEST_P(HealthManagerTest, FailoversWaitOneTimeoutAfterStart) {
  seedWebLb();
  auto hm = manager();
  hm->onHeartbeat(healthyBeat(), "");
  flushOk(*hm);
  clock_.advance(120s);  // the health manager was down: nobody recorded heartbeats
  hm->start();
  auto r = hm->failoverStale();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0) << "amphorae get one heartbeat_timeout to check in after a restart";
  hm->stop();
  clock_.advance(61s);
  r = hm->failoverStale();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, HealthManagerTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backendName);

// ---------------------------------------------------------------- end to end over UDP

class UdpSender {
 public:
  explicit UdpSender(uint16_t port) : fd_(::socket(AF_INET, SOCK_DGRAM, 0)) {
    to_.sin_family = AF_INET;
    to_.sin_port = htons(port);
    to_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  ~UdpSender() { ::close(fd_); }
  bool send(const std::vector<uint8_t>& bytes) {
    return ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to_), sizeof(to_)) ==
           static_cast<ssize_t>(bytes.size());
  }

 private:
  int fd_;
  sockaddr_in to_{};
};

using HealthManagerEndToEnd = HealthManagerTest;

TEST_P(HealthManagerEndToEnd, SignedHeartbeatsOverUdpReachTheDatabase) {
  seedWebLb();
  HealthManagerOptions o;
  o.flush_interval = 20ms;
  o.health_check_interval = 100ms;
  o.heartbeat_timeout = 60s;
  HealthManager hm(*store_, o);  // the real clock
  const std::string key = "insecure-test-key";
  auto receiver = HeartbeatReceiver::start({"127.0.0.1", 0, key, 30000ms},
                                           [&](const Heartbeat& hb, const std::string& src) { hm.onHeartbeat(hb, src); });
  ASSERT_TRUE(receiver.ok()) << receiver.error().message;
  hm.start();
  UdpSender sender((*receiver)->port());

  auto hb = healthyBeat("a1", 1);
  hb.pools[0].members[1].status = "ERROR";
  hb.listeners[0] = listenerBeat("l1", 10, 20, 1, 2, 0);
  ASSERT_TRUE(sender.send(common::encodeHeartbeat(hb, key)));
  ASSERT_TRUE(sender.send(common::encodeHeartbeat(hb, "wrong-key")));  // refused by the receiver
  hb.sequence = 2;
  hb.listeners[0] = listenerBeat("l1", 15, 30, 1, 3, 0);
  ASSERT_TRUE(sender.send(common::encodeHeartbeat(hb, key)));

  // Bounded wait for the background thread to write both.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline &&
         (listenerStats("l1")["bytes_in"] != 15 || field("member", "m2", "operating_status") != "ERROR"))
    std::this_thread::sleep_for(20ms);
  (*receiver)->stop();
  hm.stop();

  EXPECT_EQ(field("member", "m2", "operating_status"), "ERROR");
  EXPECT_EQ(field("loadbalancer", "lb1", "operating_status"), "DEGRADED");
  EXPECT_TRUE(get("amphora_health", "a1"));
  EXPECT_EQ(listenerStats("l1"), stats(15, 30, 1, 3, 0));
  EXPECT_EQ((*receiver)->counters().refused, 1u);
  EXPECT_EQ(hm.counters().heartbeats, 2u);
  EXPECT_EQ(hm.counters().write_errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, HealthManagerEndToEnd, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backendName);

// ---------------------------------------------------------------- throughput

using HealthManagerThroughput = HealthManagerTest;

// 10,000 amphorae, each the single amphora of a load balancer with one listener, one
// pool and two members, on both backends. Prints heartbeats/s; asserts only that
// everything was written (docs/benchmarks.md has the numbers).
TEST_P(HealthManagerThroughput, TenThousandAmphoraeReportThreeTimes) {
  const int amphorae = 10000;
  constexpr int kRounds = 3;
  insert(manyLbs(amphorae));

  // 60,000 status changes would be 60,000 INFO lines.
  auto level = common::logLevel();
  common::setLogLevel(common::LogLevel::kWarning);
  struct Restore {
    common::LogLevel level;
    ~Restore() { common::setLogLevel(level); }
  } restore{level};

  auto hm = manager();
  double best = 0;
  for (int round = 1; round <= kRounds; ++round) {
    // Round 2 takes a member down everywhere: the status write path under load.
    for (int i = 0; i < amphorae; ++i)
      hm->onHeartbeat(manyBeat(i, "amp-" + std::to_string(i), round, round == 2 ? "ERROR" : "ONLINE"), "");
    auto start = std::chrono::steady_clock::now();
    auto r = hm->flush();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, static_cast<size_t>(amphorae));
    double rate = amphorae / secs;
    best = std::max(best, rate);
    std::printf("[ throughput ] %s round %d: %d heartbeats in %.2f s = %.0f heartbeats/s\n",
                GetParam() == Backend::kSqlite ? "sqlite" : "postgres", round, amphorae, secs, rate);
    clock_.advance(10s);
  }
  EXPECT_GT(best, 0);
  EXPECT_EQ(count("amphora_health"), amphorae);
  EXPECT_EQ(listenerStats("l-42"), stats(300, 3000, 1, 30, 0));
  EXPECT_EQ(field("member", "mb-42", "operating_status"), "ONLINE");
  // member, pool and load balancer went down in round 2 and came back in round 3
  EXPECT_EQ(hm->counters().status_changes, static_cast<uint64_t>(amphorae) * 6);
}

INSTANTIATE_TEST_SUITE_P(Backends, HealthManagerThroughput, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backendName);

}  // namespace
}  // namespace banyan::provider::health
