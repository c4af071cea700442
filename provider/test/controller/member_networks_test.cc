// Member subnets plugged into and unplugged from the amphorae as members come and go
// (Octavia's CalculateDelta / HandleNetworkDeltas), through the real API, store and
// flows with the drivers and agent faked (controller_fixture.h).
#include <algorithm>

#include "controller_fixture.h"

namespace banyan::provider::controller::testing {
namespace {

constexpr const char* kSubnetA = "0a0a0a0a-0000-4000-8000-00000000000a";
constexpr const char* kSubnetB = "0b0b0b0b-0000-4000-8000-00000000000b";

class MemberNetworks : public ControllerFixture {
 protected:
  void SetUp() override {
    ControllerFixture::SetUp();
    if (HasFatalFailure()) return;
    lb_ = activeLoadBalancer();
    std::string listener = create("/v2/lbaas/listeners", "listener",
                                  "\"loadbalancer_id\":\"" + lb_ + "\",\"protocol\":\"HTTP\",\"protocol_port\":80");
    drain();
    pool_ = create("/v2/lbaas/pools", "pool",
                   "\"listener_id\":\"" + listener + "\",\"protocol\":\"HTTP\",\"lb_algorithm\":\"ROUND_ROBIN\"");
    drain();
    auto ids = computeIds(lb_);
    ASSERT_EQ(ids.size(), 1u);
    compute_id_ = ids[0];
  }

  std::string member(const std::string& pool, const std::string& address, const char* subnet) {
    std::string id = create("/v2/lbaas/pools/" + pool + "/members", "member",
                            "\"address\":\"" + address + "\",\"protocol_port\":80,\"subnet_id\":\"" + subnet + "\"");
    drain();
    EXPECT_EQ(status("member", id), "ACTIVE");
    return id;
  }
  void deleteMember(const std::string& pool, const std::string& id) {
    call("DELETE", "/v2/lbaas/pools/" + pool + "/members/" + id, "", 204);
    drain();
    EXPECT_FALSE(exists("member", id));
  }

  // The member subnets the network driver has plugged into the amphora.
  std::vector<std::string> pluggedMemberSubnets() {
    std::vector<std::string> out;
    auto ports = network_.listPorts();
    EXPECT_TRUE(ports.ok());
    if (!ports.ok()) return out;
    for (const auto& p : *ports) {
      if (p.device_id == compute_id_ && p.device_owner == "member") out.push_back(p.subnet_id);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::string> recordedSubnets() {
    std::vector<std::string> out;
    auto r = store_->read([&](store::Transaction& tx) -> Result<void> {
      store::Query q;
      q.kind = "amphora";
      q.load_balancer_id = lb_;
      auto amps = tx.list(q);
      if (!amps.ok()) return amps.error();
      for (const auto& a : *amps) {
        rapidjson::Document d;
        d.Parse(a.body.c_str());
        if (!d.IsObject() || !d.HasMember("plugged_subnets") || !d["plugged_subnets"].IsArray()) continue;
        for (const auto& s : d["plugged_subnets"].GetArray()) out.push_back(s.GetString());
      }
      return {};
    });
    EXPECT_TRUE(r.ok());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string lb_, pool_, compute_id_;
};

TEST_F(MemberNetworks, TheLastMemberOfASubnetLeavingUnplugsItAndOnlyIt) {
  std::string a1 = member(pool_, "203.0.113.21", kSubnetA);
  std::string a2 = member(pool_, "203.0.113.22", kSubnetA);
  member(pool_, "203.0.113.31", kSubnetB);
  EXPECT_EQ(pluggedMemberSubnets(), (std::vector<std::string>{kSubnetA, kSubnetB}));
  deleteMember(pool_, a1);
  // a2 still lives there.
  EXPECT_EQ(pluggedMemberSubnets(), (std::vector<std::string>{kSubnetA, kSubnetB}));
  EXPECT_EQ(network_.script().calls("unplugNetwork"), 0);
  deleteMember(pool_, a2);
  EXPECT_EQ(pluggedMemberSubnets(), std::vector<std::string>{kSubnetB});
  EXPECT_EQ(recordedSubnets(), std::vector<std::string>{kSubnetB});
  EXPECT_EQ(network_.script().calls("unplugNetwork"), 1);
  EXPECT_EQ(status("loadbalancer", lb_), "ACTIVE");
  // A new member there plugs it again.
  member(pool_, "203.0.113.23", kSubnetA);
  EXPECT_EQ(pluggedMemberSubnets(), (std::vector<std::string>{kSubnetA, kSubnetB}));
}

TEST_F(MemberNetworks, ABatchUpdateThatDropsASubnetsMembersUnplugsIt) {
  member(pool_, "203.0.113.21", kSubnetA);
  member(pool_, "203.0.113.31", kSubnetB);
  call("PUT", "/v2/lbaas/pools/" + pool_ + "/members",
       std::string("{\"members\":[{\"address\":\"203.0.113.31\",\"protocol_port\":80,\"subnet_id\":\"") + kSubnetB +
           "\"}]}",
       202);
  drain();
  EXPECT_EQ(pluggedMemberSubnets(), std::vector<std::string>{kSubnetB});
  EXPECT_EQ(status("pool", pool_), "ACTIVE");
}

TEST_F(MemberNetworks, DeletingAPoolUnplugsTheSubnetsOnlyItsMembersUsed) {
  member(pool_, "203.0.113.21", kSubnetA);
  std::string other =
      create("/v2/lbaas/pools", "pool",
             "\"loadbalancer_id\":\"" + lb_ + "\",\"protocol\":\"HTTP\",\"lb_algorithm\":\"ROUND_ROBIN\"");
  drain();
  member(other, "203.0.113.31", kSubnetB);
  member(other, "203.0.113.22", kSubnetA);
  call("DELETE", "/v2/lbaas/pools/" + other, "", 204);
  drain();
  EXPECT_FALSE(exists("pool", other));
  EXPECT_EQ(pluggedMemberSubnets(), std::vector<std::string>{kSubnetA});
  EXPECT_EQ(status("loadbalancer", lb_), "ACTIVE");
}

TEST_F(MemberNetworks, AFailedUnplugLeavesTheMemberDeletedAndIsRetriedByTheNextMemberJob) {
  std::string a = member(pool_, "203.0.113.21", kSubnetA);
  network_.script().failNext("unplugNetwork", makeError(ErrorCode::kInternal, "port busy"));
  deleteMember(pool_, a);
  EXPECT_EQ(status("loadbalancer", lb_), "ACTIVE");
  EXPECT_EQ(pluggedMemberSubnets(), std::vector<std::string>{kSubnetA});
  EXPECT_EQ(recordedSubnets(), std::vector<std::string>{kSubnetA});
  member(pool_, "203.0.113.31", kSubnetB);
  EXPECT_EQ(pluggedMemberSubnets(), std::vector<std::string>{kSubnetB});
  EXPECT_EQ(recordedSubnets(), std::vector<std::string>{kSubnetB});
}

TEST_F(MemberNetworks, MembersOnTheVipSubnetPlugNothing) {
  std::string m = member(pool_, "203.0.113.21", kVipSubnet);
  EXPECT_TRUE(pluggedMemberSubnets().empty());
  deleteMember(pool_, m);
  EXPECT_EQ(network_.script().calls("unplugNetwork"), 0);
  EXPECT_EQ(network_.script().calls("plugNetwork"), 0);
}

TEST_F(MemberNetworks, ACascadeDeleteFreesEveryPortOfTheAmphora) {
  member(pool_, "203.0.113.21", kSubnetA);
  call("DELETE", "/v2/lbaas/loadbalancers/" + lb_ + "?cascade=true", "", 204);
  drain();
  EXPECT_FALSE(exists("loadbalancer", lb_));
  EXPECT_TRUE(pluggedMemberSubnets().empty());
}

}  // namespace
}  // namespace banyan::provider::controller::testing
