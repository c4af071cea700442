#include <gtest/gtest.h>

#include "app/agent_options.h"
#include "support/test_pki.h"

namespace banyan::agent::app {
namespace {

TEST(AgentOptions, CommittedSampleMatchesTheDeclarations) {
  common::OptionSet o;
  declareAgentOptions(o);
  std::string committed = testing::readTestFile(BANYAN_SOURCE_DIR "/etc/banyan/agent.conf.sample");
  EXPECT_EQ(o.sampleConfig(), committed)
      << "regenerate: banyan-agent --generate-sample-config > etc/banyan/agent.conf.sample";
}

TEST(AgentOptions, ReadsTypedSettings) {
  common::OptionSet o;
  declareAgentOptions(o);
  ASSERT_TRUE(o.loadText("[amphora_agent]\namphora_id = amp-1\nbind_port = 9444\n"
                         "[health_manager]\ncontroller_ip_port_list = 127.0.0.1:5555, [::1]:5556\n"
                         "heartbeat_interval = 0.5\nheartbeat_key = k\n",
                         "test.conf")
                  .ok());
  auto s = readAgentSettings(o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->amphora_id, "amp-1");
  EXPECT_EQ(s->bind_port, 9444);
  EXPECT_EQ(s->state_dir, "/var/lib/banyan");
  ASSERT_EQ(s->heartbeat.targets.size(), 2u);
  EXPECT_EQ(s->heartbeat.targets[1], "[::1]:5556");
  EXPECT_DOUBLE_EQ(s->heartbeat.interval_s, 0.5);
  EXPECT_EQ(s->heartbeat.key, "k");
  EXPECT_EQ(o.dump().find("= k\n"), std::string::npos) << "the heartbeat key is a secret";
}

TEST(AgentOptions, MissingAmphoraIdAndBadTargetsAreRefusedWithTheirKey) {
  common::OptionSet o;
  declareAgentOptions(o);
  auto s = readAgentSettings(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().context, "[amphora_agent] amphora_id");

  common::OptionSet o2;
  declareAgentOptions(o2);
  ASSERT_TRUE(o2.loadText("[amphora_agent]\namphora_id = a\n[health_manager]\ncontroller_ip_port_list = example.org:5555\n",
                          "t.conf")
                  .ok());
  auto s2 = readAgentSettings(o2);
  ASSERT_FALSE(s2.ok());
  EXPECT_EQ(s2.error().context, "[health_manager] controller_ip_port_list");
}

TEST(AgentOptions, ManagementCidrsAreReadAndATypoIsRefusedWithItsKey) {
  common::OptionSet o;
  declareAgentOptions(o);
  ASSERT_TRUE(o.loadText("[amphora_agent]\namphora_id = a\nmanagement_cidrs = 203.0.113.192/26, 2001:db8::/64, "
                         "192.0.2.7\n",
                         "t.conf")
                  .ok());
  auto s = readAgentSettings(o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->management_cidrs, (std::vector<std::string>{"203.0.113.192/26", "2001:db8::/64", "192.0.2.7"}));

  for (const char* bad : {"203.0.113.192/33", "mgmt-net", "2001:db8::/129", "192.0.2.0/"}) {
    common::OptionSet o2;
    declareAgentOptions(o2);
    ASSERT_TRUE(o2.loadText(std::string("[amphora_agent]\namphora_id = a\nmanagement_cidrs = ") + bad + "\n", "t.conf")
                    .ok());
    auto s2 = readAgentSettings(o2);
    ASSERT_FALSE(s2.ok()) << bad;
    EXPECT_EQ(s2.error().context, "[amphora_agent] management_cidrs") << bad;
  }
}

TEST(AgentOptions, ManagementCidrsDefaultToEmpty) {
  common::OptionSet o;
  declareAgentOptions(o);
  ASSERT_TRUE(o.loadText("[amphora_agent]\namphora_id = a\n", "t.conf").ok());
  auto s = readAgentSettings(o);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->management_cidrs.empty());
}

}  // namespace
}  // namespace banyan::agent::app
