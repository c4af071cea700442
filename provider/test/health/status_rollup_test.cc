#include "health/status_rollup.h"

#include <gtest/gtest.h>

namespace banyan::provider::health {
namespace {

using common::Heartbeat;

LoadBalancerView webLb() {
  LoadBalancerView lb;
  lb.id = "lb";
  lb.provisioning_status = "ACTIVE";
  lb.operating_status = "ONLINE";
  lb.listeners = {{"l1", true, "ONLINE"}};
  lb.pools = {{"p1", "ONLINE", {{"m1", "ONLINE"}, {"m2", "ONLINE"}}}};
  return lb;
}

Heartbeat healthy() {
  Heartbeat hb;
  hb.amphora_id = "amp";
  hb.listeners = {{.id = "l1", .status = "ONLINE"}};
  hb.pools = {{"p1", "ONLINE", {{"m1", "ONLINE"}, {"m2", "ONLINE"}}}};
  return hb;
}

TEST(StatusRollUp, AHealthyHeartbeatChangesNothingAndRefreshesTheAmphora) {
  auto r = rollUpHeartbeat(webLb(), healthy());
  EXPECT_TRUE(r.changes.empty());
  EXPECT_TRUE(r.refresh_amphora_health);
}

TEST(StatusRollUp, ADownMemberMakesItErrorAndItsPoolAndLoadBalancerDegraded) {
  auto hb = healthy();
  hb.pools[0].members[1].status = "ERROR";
  auto r = rollUpHeartbeat(webLb(), hb);
  EXPECT_EQ(r.changes, (std::vector<StatusChange>{{"member", "m2", "ONLINE", "ERROR"},
                                                  {"pool", "p1", "ONLINE", "DEGRADED"},
                                                  {"loadbalancer", "lb", "ONLINE", "DEGRADED"}}));
}

TEST(StatusRollUp, ADownPoolMakesTheLoadBalancerError) {
  auto hb = healthy();
  hb.pools[0].status = "ERROR";
  for (auto& m : hb.pools[0].members) m.status = "ERROR";
  auto r = rollUpHeartbeat(webLb(), hb);
  EXPECT_EQ(r.changes.back(), (StatusChange{"loadbalancer", "lb", "ONLINE", "ERROR"}));
  EXPECT_EQ(r.changes[2], (StatusChange{"pool", "p1", "ONLINE", "ERROR"}));
}

TEST(StatusRollUp, AFullListenerIsDegraded) {
  auto hb = healthy();
  hb.listeners[0].status = "DEGRADED";
  auto r = rollUpHeartbeat(webLb(), hb);
  EXPECT_EQ(r.changes, (std::vector<StatusChange>{{"listener", "l1", "ONLINE", "DEGRADED"},
                                                  {"loadbalancer", "lb", "ONLINE", "DEGRADED"}}));
}

TEST(StatusRollUp, AMissingEnabledListenerIsErrorAndTheAmphoraIsNotRefreshed) {
  auto hb = healthy();
  hb.listeners.clear();
  auto r = rollUpHeartbeat(webLb(), hb);
  EXPECT_FALSE(r.refresh_amphora_health);
  EXPECT_EQ(r.changes.front(), (StatusChange{"listener", "l1", "ONLINE", "ERROR"}));
}

TEST(StatusRollUp, WhileThePendingLoadBalancerChangesListenerCountsAreNotHeldAgainstTheAmphora) {
  auto lb = webLb();
  lb.provisioning_status = "PENDING_UPDATE";
  lb.listeners.push_back({"l2", true, "OFFLINE"});
  auto r = rollUpHeartbeat(lb, healthy());
  EXPECT_TRUE(r.refresh_amphora_health);
  EXPECT_TRUE(r.changes.empty());  // l2 missing while pending: OFFLINE, as stored
}

TEST(StatusRollUp, MembersTheAmphoraDoesNotReportGoOfflineUnlessUnmonitored) {
  auto lb = webLb();
  lb.pools[0].members.push_back({"m3", "NO_MONITOR"});
  lb.pools[0].members.push_back({"m4", "ONLINE"});
  auto r = rollUpHeartbeat(lb, healthy());
  EXPECT_EQ(r.changes, (std::vector<StatusChange>{{"member", "m4", "ONLINE", "OFFLINE"}}));
}

TEST(StatusRollUp, APoolNoListenerUsesIsOffline) {
  auto lb = webLb();
  lb.pools.push_back({"p2", "ONLINE", {}});
  auto r = rollUpHeartbeat(lb, healthy());
  EXPECT_EQ(r.changes, (std::vector<StatusChange>{{"pool", "p2", "ONLINE", "OFFLINE"}}));
}

TEST(StatusRollUp, AnAdminDownLoadBalancerIsOfflineAndItsDrainingMembersDraining) {
  auto lb = webLb();
  lb.enabled = false;
  auto hb = healthy();
  hb.pools[0].members[0].status = "DRAINING";
  auto r = rollUpHeartbeat(lb, hb);
  EXPECT_EQ(r.changes, (std::vector<StatusChange>{{"member", "m1", "ONLINE", "DRAINING"},
                                                  {"loadbalancer", "lb", "ONLINE", "OFFLINE"}}));
}

TEST(StatusRollUp, UnknownWordsFromANewerAgentLeaveStoredStatusesAlone) {
  auto hb = healthy();
  hb.listeners[0].status = "WARMING";
  hb.pools[0].members[0].status = "RESTARTING";
  auto r = rollUpHeartbeat(webLb(), hb);
  EXPECT_TRUE(r.changes.empty());
}

}  // namespace
}  // namespace banyan::provider::health
