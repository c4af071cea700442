// How the controller names an amphora's agent: the URL every AgentClient call dials.
#include <gtest/gtest.h>

#include "amphora/agent_client.h"

namespace banyan::provider::amphora {
namespace {

TEST(AgentUrl, BracketsAnIpv6ManagementAddressAndLeavesIpv4Bare) {
  struct Row {
    const char* address;
    uint16_t port;
    const char* want;
  } rows[] = {
      {"192.0.2.5", 9443, "https://192.0.2.5:9443/1.0/info"},
      {"2001:db8::5", 9443, "https://[2001:db8::5]:9443/1.0/info"},
      {"::1", 40001, "https://[::1]:40001/1.0/info"},
      {"2001:db8:0:0:1:0:0:1", 9443, "https://[2001:db8:0:0:1:0:0:1]:9443/1.0/info"},
      {"::ffff:192.0.2.5", 9443, "https://[::ffff:192.0.2.5]:9443/1.0/info"},
  };
  for (const auto& row : rows) {
    auto url = agentUrl(AgentEndpoint{row.address, row.port}, "/1.0/info");
    ASSERT_TRUE(url.ok()) << row.address << ": " << url.error().message;
    EXPECT_EQ(*url, row.want);
  }
}

TEST(AgentUrl, RefusesWhatIsNotAnAddressLiteralOrPortZero) {
  struct Row {
    const char* address;
    uint16_t port;
  } rows[] = {
      {"amphora.example", 9443}, {"[2001:db8::5]", 9443}, {"fe80::1%eth0", 9443}, {"192.0.2.5:9443", 9443},
      {"", 9443},                {"192.0.2.5", 0},        {" 192.0.2.5", 9443},
  };
  for (const auto& row : rows) {
    auto url = agentUrl(AgentEndpoint{row.address, row.port}, "/1.0/info");
    ASSERT_FALSE(url.ok()) << row.address << " -> " << *url;
    EXPECT_EQ(url.error().code, common::ErrorCode::kInvalidArgument) << row.address;
  }
}

}  // namespace
}  // namespace banyan::provider::amphora
