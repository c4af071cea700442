// The statuses a finished job leaves, on a real SQLite store.
#include "controller/settle.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "controller/records.h"
#include "store/store.h"

namespace banyan::provider::controller {
namespace {

class SettleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/banyan-settle-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = store::openStore("sqlite:///" + dir_ + "/db.sqlite");
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s.value());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void put(const std::string& kind, const std::string& id, const std::string& parent, const std::string& status,
           bool admin_up = true) {
    auto ok = store_->write([&](store::Transaction& tx) -> common::Result<void> {
      Obj o = newObj(kind, id);
      o.rec.project_id = "p";
      o.rec.parent_id = parent;
      o.rec.load_balancer_id = kind == "loadbalancer" ? "" : "lb";
      o.set("id", id);
      o.set("provisioning_status", status);
      o.set("operating_status", "OFFLINE");
      o.setBool("admin_state_up", admin_up);
      return insertObj(tx, o);
    });
    ASSERT_TRUE(ok.ok()) << ok.error().message;
  }

  // provisioning_status, or "gone".
  std::string status(const std::string& kind, const std::string& id, const char* field = "provisioning_status") {
    std::string out = "gone";
    auto ok = store_->read([&](store::Transaction& tx) -> common::Result<void> {
      auto o = loadObj(tx, kind, id);
      if (!o) return o.error();
      if (o->has_value()) out = (*o)->str(field);
      return {};
    });
    EXPECT_TRUE(ok.ok());
    return out;
  }

  void succeed() {
    auto ok = store_->write([&](store::Transaction& tx) { return settleSucceeded(tx, "lb"); });
    ASSERT_TRUE(ok.ok()) << ok.error().message;
  }
  void fail(const std::string& kind, const std::string& object) {
    auto ok = store_->write([&](store::Transaction& tx) { return settleFailed(tx, "lb", kind, object); });
    ASSERT_TRUE(ok.ok()) << ok.error().message;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(SettleTest, SuccessMakesPendingObjectsActiveAndRemovesPendingDeletes) {
  put("loadbalancer", "lb", "", "PENDING_UPDATE");
  put("listener", "l1", "lb", "PENDING_UPDATE");
  put("pool", "p1", "lb", "PENDING_CREATE");
  put("member", "m1", "p1", "PENDING_DELETE");
  put("member", "m2", "p1", "ACTIVE");
  put("healthmonitor", "h1", "p1", "PENDING_CREATE", false);
  succeed();
  EXPECT_EQ(status("loadbalancer", "lb"), "ACTIVE");
  EXPECT_EQ(status("listener", "l1"), "ACTIVE");
  EXPECT_EQ(status("pool", "p1"), "ACTIVE");
  EXPECT_EQ(status("member", "m1"), "gone");
  EXPECT_EQ(status("member", "m2"), "ACTIVE");
  EXPECT_EQ(status("healthmonitor", "h1"), "ACTIVE");
  // Octavia sets these when they go ACTIVE; a disabled monitor is OFFLINE.
  EXPECT_EQ(status("healthmonitor", "h1", "operating_status"), "OFFLINE");
}

TEST_F(SettleTest, SuccessOfADeleteRemovesTheLoadBalancerWithEverythingUnderIt) {
  put("loadbalancer", "lb", "", "PENDING_DELETE");
  put("listener", "l1", "lb", "PENDING_DELETE");
  put("amphora", "a1", "", "ALLOCATED");
  succeed();
  EXPECT_EQ(status("loadbalancer", "lb"), "gone");
  EXPECT_EQ(status("listener", "l1"), "gone");
  EXPECT_EQ(status("amphora", "a1"), "gone");
}

TEST_F(SettleTest, FailureSetsTheObjectErrorAndItsParentsBackToActive) {
  put("loadbalancer", "lb", "", "PENDING_UPDATE");
  put("listener", "l1", "lb", "PENDING_UPDATE");
  put("pool", "p1", "lb", "PENDING_UPDATE");
  put("member", "m1", "p1", "PENDING_CREATE");
  fail("member.create", "m1");
  EXPECT_EQ(status("member", "m1"), "ERROR");
  EXPECT_EQ(status("pool", "p1"), "ACTIVE");
  EXPECT_EQ(status("listener", "l1"), "ACTIVE");
  EXPECT_EQ(status("loadbalancer", "lb"), "ACTIVE");
}

TEST_F(SettleTest, AFailedUpdateStillMarksItsObjectError) {
  put("loadbalancer", "lb", "", "PENDING_UPDATE");
  put("listener", "l1", "lb", "PENDING_UPDATE");
  fail("listener.update", "l1");
  EXPECT_EQ(status("listener", "l1"), "ERROR");
  EXPECT_EQ(status("loadbalancer", "lb"), "ACTIVE");
}

TEST_F(SettleTest, AFailedLoadBalancerCreateLeavesItAndItsNewChildrenError) {
  put("loadbalancer", "lb", "", "PENDING_CREATE");
  put("listener", "l1", "lb", "PENDING_CREATE");
  fail("loadbalancer.create", "lb");
  EXPECT_EQ(status("loadbalancer", "lb"), "ERROR");
  EXPECT_EQ(status("listener", "l1"), "ERROR");
}

TEST_F(SettleTest, AFailedBatchUpdateMarksTheTouchedMembersError) {
  put("loadbalancer", "lb", "", "PENDING_UPDATE");
  put("pool", "p1", "lb", "PENDING_UPDATE");
  put("member", "m1", "p1", "PENDING_CREATE");
  put("member", "m2", "p1", "PENDING_UPDATE");
  put("member", "m3", "p1", "ACTIVE");
  fail("member.batch_update", "p1");
  EXPECT_EQ(status("member", "m1"), "ERROR");
  EXPECT_EQ(status("member", "m2"), "ERROR");
  EXPECT_EQ(status("member", "m3"), "ACTIVE");
  EXPECT_EQ(status("pool", "p1"), "ACTIVE");
  EXPECT_EQ(status("loadbalancer", "lb"), "ACTIVE");
}

TEST_F(SettleTest, AFailedFailoverLeavesTheLoadBalancerError) {
  put("loadbalancer", "lb", "", "PENDING_UPDATE");
  fail("amphora.failover", "a1");
  EXPECT_EQ(status("loadbalancer", "lb"), "ERROR");
}

TEST_F(SettleTest, NothingIsLeftPendingAfterEitherOutcome) {
  for (bool ok : {true, false}) {
    TearDown();
    SetUp();
    put("loadbalancer", "lb", "", "PENDING_UPDATE");
    for (const char* kind : kChildKinds) put(kind, std::string(kind) + "1", "lb", "PENDING_UPDATE");
    if (ok) {
      succeed();
    } else {
      fail("pool.update", "pool1");
    }
    for (const char* kind : kChildKinds) {
      std::string st = status(kind, std::string(kind) + "1");
      EXPECT_EQ(st.rfind("PENDING_", 0), std::string::npos) << kind << " " << st;
    }
  }
}

}  // namespace
}  // namespace banyan::provider::controller
