// The agent.conf the controller writes for a new amphora.
#include <gtest/gtest.h>

#include "app/agent_options.h"
#include "banyan/common/options.h"
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

TEST(AgentConfigText, BindsTheAgentToEveryAddressIpv6Included) {
  // "0.0.0.0" would leave an amphora on an IPv6 management network unreachable.
  std::string text = agentConfigText(options(), "amp-1", {});
  EXPECT_NE(text.find("\nbind_host = ::\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("0.0.0.0"), std::string::npos) << text;
}

TEST(AgentConfigText, IsReadByTheAgentsOwnOptionsAsWritten) {
  std::string text = agentConfigText(options(), "amp-1", {"203.0.113.192/26", "2001:db8:1::/64"});
  // The compute driver replaces {amphora_dir}; any absolute directory will do here.
  for (auto at = text.find("{amphora_dir}"); at != std::string::npos; at = text.find("{amphora_dir}")) {
    text.replace(at, 13, "/var/lib/amphora");
  }
  common::OptionSet o;
  agent::app::declareAgentOptions(o);
  auto loaded = o.loadText(text, "agent.conf");
  ASSERT_TRUE(loaded.ok()) << loaded.error().context << ": " << loaded.error().message << "\n" << text;
  EXPECT_TRUE(o.warnings().empty()) << o.warnings().front();
  auto settings = agent::app::readAgentSettings(o);
  ASSERT_TRUE(settings.ok()) << settings.error().context << ": " << settings.error().message;
  EXPECT_EQ(settings->bind_host, "::");
  EXPECT_EQ(settings->bind_port, 9443);
  EXPECT_EQ(settings->amphora_id, "amp-1");
  EXPECT_EQ(settings->management_cidrs, (std::vector<std::string>{"203.0.113.192/26", "2001:db8:1::/64"}));
  EXPECT_EQ(settings->heartbeat.targets, (std::vector<std::string>{"203.0.113.193:5555"}));
  EXPECT_EQ(settings->heartbeat.key, "k");
}

}  // namespace
}  // namespace banyan::provider::controller
