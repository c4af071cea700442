// The agent.conf the controller writes for a new amphora.
#include <gtest/gtest.h>

#include "controller/controller.h"

namespace banyan::provider::controller {
namespace {

ControllerOptions options() {
  ControllerOptions o;
  o.agent_port = 9443;
  o.controller_ip_port_list = {"203.0.113.193:5555"};
  o.heartbeat_key = "k";
  return o;
}

TEST(AgentConfigText, CarriesTheManagementNetworkForTheAgentsFirewall) {
  std::string text = agentConfigText(options(), "amp-1", {"203.0.113.192/26", "2001:db8:1::/64"});
  auto section = text.find("[amphora_agent]\n");
  auto line = text.find("\nmanagement_cidrs = 203.0.113.192/26, 2001:db8:1::/64\n");
  auto next = text.find("[health_manager]");
  ASSERT_NE(section, std::string::npos) << text;
  ASSERT_NE(line, std::string::npos) << text;
  EXPECT_LT(section, line) << text;
  EXPECT_LT(line, next) << "management_cidrs belongs to [amphora_agent]:\n" << text;
  EXPECT_NE(text.find("bind_port = 9443\n"), std::string::npos) << text;
}

TEST(AgentConfigText, LeavesManagementCidrsOutWhenTheDriverDoesNotKnowThem) {
  // The agent then keeps its port open to every source rather than lock us out.
  std::string text = agentConfigText(options(), "amp-1", {});
  EXPECT_EQ(text.find("management_cidrs"), std::string::npos) << text;
  EXPECT_NE(text.find("system_driver = kernel\n\n[health_manager]"), std::string::npos) << text;
}

}  // namespace
}  // namespace banyan::provider::controller
