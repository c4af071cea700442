#include "banyan/common/options.h"

#include <gtest/gtest.h>

namespace banyan::common {
namespace {

OptionSet declared() {
  OptionSet o;
  o.declare({.group = "api_settings", .name = "bind_port", .type = OptionType::kInt, .default_value = "9876",
             .help = "Port to listen on.", .min = 1, .max = 65535});
  o.declare({.group = "api_settings", .name = "bind_host", .default_value = "127.0.0.1",
             .help = "Address to listen on."});
  o.declare({.group = "api_settings", .name = "auth_strategy", .default_value = "noauth",
             .help = "How to authenticate.", .choices = {"noauth", "keystone"}});
  o.declare({.group = "api_settings", .name = "allow_tls_terminated_listeners", .type = OptionType::kBool,
             .default_value = "true", .help = "Allow TLS."});
  o.declare({.group = "health_manager", .name = "heartbeat_key", .help = "HMAC key.", .secret = true});
  o.declare({.group = "health_manager", .name = "heartbeat_timeout", .type = OptionType::kFloat,
             .default_value = "60", .help = "Seconds.", .min = 0.5});
  o.declare({.group = "health_manager", .name = "controller_ip_port_list", .type = OptionType::kList,
             .help = "Targets."});
  return o;
}

TEST(OptionSet, DefaultsApplyUntilAFileSetsAValue) {
  auto o = declared();
  EXPECT_EQ(o.getInt("api_settings", "bind_port"), 9876);
  EXPECT_FALSE(o.isSet("api_settings", "bind_port"));
  ASSERT_TRUE(o.loadText("[api_settings]\nbind_port = 8080\n", "t.conf"));
  EXPECT_EQ(o.getInt("api_settings", "bind_port"), 8080);
  EXPECT_TRUE(o.isSet("api_settings", "bind_port"));
  EXPECT_EQ(o.getString("api_settings", "bind_host"), "127.0.0.1");
}

TEST(OptionSet, ParsesCommentsBooleansFloatsListsAndContinuations) {
  auto o = declared();
  ASSERT_TRUE(o.loadText("# comment\n[api_settings]\n; other comment\nallow_tls_terminated_listeners = No\n"
                         "[health_manager]\nheartbeat_timeout=2.5\ncontroller_ip_port_list = 127.0.0.1:5555,\n"
                         "  127.0.0.2:5555\n",
                         "t.conf"));
  EXPECT_FALSE(o.getBool("api_settings", "allow_tls_terminated_listeners"));
  EXPECT_DOUBLE_EQ(o.getFloat("health_manager", "heartbeat_timeout"), 2.5);
  EXPECT_EQ(o.getList("health_manager", "controller_ip_port_list"),
            (std::vector<std::string>{"127.0.0.1:5555", "127.0.0.2:5555"}));
}

TEST(OptionSet, ABadValueNamesFileLineSectionAndKeyAndChangesNothing) {
  auto o = declared();
  auto r = o.loadText("[api_settings]\nbind_host = 0.0.0.0\nbind_port = 70000\n", "provider.conf");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().context, "provider.conf:3: [api_settings] bind_port");
  EXPECT_NE(r.error().message.find("at most 65535"), std::string::npos);
  EXPECT_EQ(o.getString("api_settings", "bind_host"), "127.0.0.1");
}

TEST(OptionSet, RefusesValuesOutsideTheirChoicesOrType) {
  auto o = declared();
  EXPECT_FALSE(o.loadText("[api_settings]\nauth_strategy = ldap\n", "t"));
  EXPECT_FALSE(o.loadText("[api_settings]\nbind_port = eighty\n", "t"));
  EXPECT_FALSE(o.loadText("[api_settings]\nallow_tls_terminated_listeners = maybe\n", "t"));
  EXPECT_FALSE(o.loadText("[health_manager]\nheartbeat_timeout = 0.1\n", "t"));
  EXPECT_FALSE(o.loadText("bind_port = 1\n", "t"));
  EXPECT_FALSE(o.loadText("[api_settings\n", "t"));
  EXPECT_FALSE(o.set("api_settings", "auth_strategy", "x"));
  EXPECT_TRUE(o.set("api_settings", "auth_strategy", "keystone"));
  EXPECT_EQ(o.getString("api_settings", "auth_strategy"), "keystone");
}

TEST(OptionSet, UnknownKeysAreWarningsNotErrors) {
  auto o = declared();
  ASSERT_TRUE(o.loadText("[api_settings]\nnot_an_option = 1\n[nowhere]\nx = y\n", "t.conf"));
  ASSERT_EQ(o.warnings().size(), 2u);
  EXPECT_NE(o.warnings()[0].find("t.conf:2: unknown option [api_settings] not_an_option"), std::string::npos);
}

TEST(OptionSet, SampleListsEveryOptionCommentedOutWithItsDefault) {
  auto o = declared();
  std::string sample = o.sampleConfig();
  EXPECT_NE(sample.find("[api_settings]\n"), std::string::npos);
  EXPECT_NE(sample.find("# Port to listen on.\n# (integer, minimum 1, maximum 65535)\n#bind_port = 9876\n"),
            std::string::npos);
  EXPECT_NE(sample.find("one of: noauth keystone"), std::string::npos);
  // The sample is itself a valid file that changes nothing.
  auto again = declared();
  ASSERT_TRUE(again.loadText(sample, "sample"));
  EXPECT_TRUE(again.warnings().empty());
}

TEST(OptionSet, DumpRedactsSecrets) {
  auto o = declared();
  ASSERT_TRUE(o.loadText("[health_manager]\nheartbeat_key = hunter2\n", "t"));
  std::string dump = o.dump();
  EXPECT_EQ(dump.find("hunter2"), std::string::npos);
  EXPECT_NE(dump.find("[health_manager] heartbeat_key = ****"), std::string::npos);
  EXPECT_EQ(o.getString("health_manager", "heartbeat_key"), "hunter2");
}

}  // namespace
}  // namespace banyan::common
