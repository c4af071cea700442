// The amphora configure job (PUT /v2/octavia/amphorae/{id}/config, Octavia's
// `openstack loadbalancer amphora configure`) pushes the agent settings to an existing
// amphora: heartbeat targets and key, and the management CIDRs its agent.conf may lack.
#include "controller_fixture.h"

namespace banyan::provider::controller::testing {
namespace {

class AgentConfigPush : public ControllerFixture {
 protected:
  void SetUp() override {
    options_.controller_ip_port_list = {"203.0.113.193:5555", "[2001:db8::c1]:5555"};
    options_.heartbeat_interval = 7;
    options_.heartbeat_key = "hb-key";
    ControllerFixture::SetUp();
  }
};

TEST_F(AgentConfigPush, ConfiguringAnAmphoraPushesTheManagementCidrsItsAgentConfLacks) {
  // Built while the driver knew no management network: its agent.conf has no option.
  std::string lb = activeLoadBalancer();
  auto ids = amphoraField(lb, "id");
  auto addresses = amphoraAddresses(lb);
  ASSERT_EQ(ids.size(), 1u);
  ASSERT_EQ(addresses.size(), 1u);
  EXPECT_TRUE(agent_.amphora(addresses[0]).agent_configs.empty());

  compute_.setManagementCidrs({"203.0.113.192/26", "2001:db8:1::/64"});
  call("PUT", "/v2/octavia/amphorae/" + ids[0] + "/config", "", 202);
  drain();
  auto pushes = agent_.amphora(addresses[0]).agent_configs;
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].management_cidrs, (std::vector<std::string>{"203.0.113.192/26", "2001:db8:1::/64"}));
  EXPECT_EQ(pushes[0].controller_ip_port_list, options_.controller_ip_port_list);
  EXPECT_EQ(pushes[0].heartbeat_interval, 7);
  EXPECT_EQ(pushes[0].heartbeat_key, "hb-key");
}

TEST_F(AgentConfigPush, ADriverWithoutAManagementNetworkPushesNone) {
  std::string lb = activeLoadBalancer();
  auto ids = amphoraField(lb, "id");
  ASSERT_EQ(ids.size(), 1u);
  call("PUT", "/v2/octavia/amphorae/" + ids[0] + "/config", "", 202);
  drain();
  auto pushes = agent_.amphora(amphoraAddresses(lb)[0]).agent_configs;
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_TRUE(pushes[0].management_cidrs.empty()) << "the amphora keeps what its agent.conf says";
}

}  // namespace
}  // namespace banyan::provider::controller::testing
