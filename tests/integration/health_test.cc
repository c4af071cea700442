// Health monitors through the control API's /health and through traffic:
// members go ERROR when their test member stops, back ONLINE when it returns,
// and backup members only serve while every primary is down.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

class Health : public ::testing::Test {
 protected:
  ConfigSpec config(std::optional<MonitorSpec> monitor = MonitorSpec{}) const {
    ConfigSpec c = simpleConfig(port_, {memberOf(a_), memberOf(b_)});
    c.pool("p1").health_monitor = monitor;
    return c;
  }
  void startProxy(const ConfigSpec& c) { proxy_ = std::make_unique<ProxyProcess>(c.toJson()); }
  std::map<std::string, int> distribution(int requests) {
    std::map<std::string, int> counts;
    for (int i = 0; i < requests; ++i) {
      HttpResponse resp = fetchOnce("127.0.0.1", port_, "/");
      counts[resp.status == 200 ? resp.header("X-Backend")
                                : "status " + std::to_string(resp.status)]++;
    }
    return counts;
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend a_{"a", "127.0.0.81"};
  TestHttpBackend b_{"b", "127.0.0.82"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(Health, MembersWithoutAMonitorReportNoMonitor) {
  startProxy(config(std::nullopt));
  EXPECT_EQ(healthStatus(*proxy_, "a"), "NO_MONITOR");
  EXPECT_EQ(healthStatus(*proxy_, "b"), "NO_MONITOR");
}

TEST_F(Health, MonitoredMembersBecomeOnline) {
  startProxy(config());
  EXPECT_TRUE(waitHealth(*proxy_, "a", "ONLINE", 3000)) << proxy_->get("/health").body;
  EXPECT_TRUE(waitHealth(*proxy_, "b", "ONLINE", 3000)) << proxy_->get("/health").body;
}

TEST_F(Health, MemberGoesErrorWhenItsBackendStopsAndTrafficAvoidsIt) {
  startProxy(config());
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ONLINE", 3000));
  b_.stop();
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ERROR", 3000)) << proxy_->get("/health").body;
  EXPECT_EQ(healthStatus(*proxy_, "a"), "ONLINE");
  auto counts = distribution(20);
  EXPECT_EQ(counts["a"], 20) << "requests went elsewhere than the healthy member";
}

TEST_F(Health, HealthRecordsTheTransitionToError) {
  startProxy(config());
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ONLINE", 3000));
  b_.stop();
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ERROR", 3000));
  rapidjson::Document doc = proxy_->get("/health").json();
  bool found = false;
  for (const auto& m : doc["members"].GetArray()) {
    if (std::string(m["member_id"].GetString()) != "b") continue;
    ASSERT_TRUE(m.HasMember("transitions") && m["transitions"].IsArray());
    for (const auto& t : m["transitions"].GetArray())
      if (t.HasMember("to") && std::string(t["to"].GetString()) == "ERROR") found = true;
    EXPECT_GE(m["consecutive_failures"].GetInt64(), 2);
  }
  EXPECT_TRUE(found) << "no transition to ERROR recorded";
}

TEST_F(Health, MemberComesBackOnlineWhenItsBackendRestarts) {
  startProxy(config());
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ONLINE", 3000));
  b_.stop();
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ERROR", 3000));
  b_.start();
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ONLINE", 3000)) << proxy_->get("/health").body;
  auto counts = distribution(20);
  EXPECT_GT(counts["b"], 0) << "recovered member gets no traffic";
  EXPECT_EQ(counts["a"] + counts["b"], 20);
}

TEST_F(Health, HttpMonitorMarksAMemberWithAnUnexpectedStatusError) {
  b_.configure([](HttpBackendOptions& o) { o.status = 500; });
  MonitorSpec hm;
  hm.type = "HTTP";
  hm.url_path = "/healthz";
  hm.expected_codes = "200-204";
  startProxy(config(hm));
  ASSERT_TRUE(waitHealth(*proxy_, "a", "ONLINE", 3000)) << proxy_->get("/health").body;
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ERROR", 3000)) << proxy_->get("/health").body;
  ASSERT_GT(a_.requestCount(), 0u);
  RecordedRequest probe = a_.requests()[0];
  EXPECT_EQ(probe.method, "GET");
  EXPECT_EQ(probe.target, "/healthz");
}

TEST_F(Health, AllMembersDownAnswers503) {
  startProxy(config());
  ASSERT_TRUE(waitHealth(*proxy_, "a", "ONLINE", 3000));
  a_.stop();
  b_.stop();
  ASSERT_TRUE(waitHealth(*proxy_, "a", "ERROR", 3000));
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ERROR", 3000));
  EXPECT_EQ(fetchOnce("127.0.0.1", port_).status, 503);
}

TEST_F(Health, BackupMemberServesOnlyWhileThePrimaryIsDown) {
  ConfigSpec c = config();
  c.pool("p1").members[1].backup = true;  // b
  startProxy(c);
  ASSERT_TRUE(waitHealth(*proxy_, "a", "ONLINE", 3000));
  ASSERT_TRUE(waitHealth(*proxy_, "b", "ONLINE", 3000));
  EXPECT_EQ(distribution(10)["a"], 10) << "backup served while the primary was up";
  EXPECT_EQ(b_.requestCount(), 0u);

  a_.stop();
  ASSERT_TRUE(waitHealth(*proxy_, "a", "ERROR", 3000));
  EXPECT_EQ(distribution(10)["b"], 10) << "backup did not take over";

  a_.start();
  ASSERT_TRUE(waitHealth(*proxy_, "a", "ONLINE", 3000));
  EXPECT_EQ(distribution(10)["a"], 10) << "primary did not take back the traffic";
}

}  // namespace
}  // namespace banyan::test
