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
      // Just outside fe80::/10: a global-looking address gets no zone.
      {"fec0::5", 9443, "https://[fec0::5]:9443/1.0/info"},
      {"fe7f::5", 9443, "https://[fe7f::5]:9443/1.0/info"},
  };
  for (const auto& row : rows) {
    auto url = agentUrl(AgentEndpoint{row.address, row.port}, "/1.0/info", "o-hm0");
    ASSERT_TRUE(url.ok()) << row.address << ": " << url.error().message;
    EXPECT_EQ(*url, row.want);
  }
}

TEST(AgentUrl, GivesALinkLocalAddressTheConfiguredInterfaceAsItsZone) {
  // As Octavia's _base_url with [haproxy_amphora] lb_network_interface, in RFC 6874's
  // spelling ("%25" for the '%').
  struct Row {
    const char* address;
    const char* interface;
    const char* want;
  } rows[] = {
      {"fe80::f816:3eff:fe12:3456", "o-hm0", "https://[fe80::f816:3eff:fe12:3456%25o-hm0]:9443/1.0/info"},
      {"fe80::5", "br-mgmt.100", "https://[fe80::5%25br-mgmt.100]:9443/1.0/info"},
      {"febf::1", "eth0", "https://[febf::1%25eth0]:9443/1.0/info"},  // the top of fe80::/10
      {"FE80::A", "eth0", "https://[FE80::A%25eth0]:9443/1.0/info"},
      // An address with its own zone keeps it, whatever is configured.
      {"fe80::5%eth2", "o-hm0", "https://[fe80::5%25eth2]:9443/1.0/info"},
      {"fe80::5%eth2", "", "https://[fe80::5%25eth2]:9443/1.0/info"},
      // The interface matters to link-local addresses only.
      {"192.0.2.5", "", "https://192.0.2.5:9443/1.0/info"},
      {"2001:db8::5", "", "https://[2001:db8::5]:9443/1.0/info"},
  };
  for (const auto& row : rows) {
    auto url = agentUrl(AgentEndpoint{row.address, 9443}, "/1.0/info", row.interface);
    ASSERT_TRUE(url.ok()) << row.address << ": " << url.error().message;
    EXPECT_EQ(*url, row.want);
  }
}

TEST(AgentUrl, RefusesWhatIsNotAnAddressLiteralOrPortZero) {
  struct Row {
    const char* address;
    uint16_t port;
    const char* interface;
  } rows[] = {
      {"amphora.example", 9443, "o-hm0"},
      {"[2001:db8::5]", 9443, "o-hm0"},
      {"192.0.2.5:9443", 9443, "o-hm0"},
      {"", 9443, "o-hm0"},
      {"192.0.2.5", 0, "o-hm0"},
      {" 192.0.2.5", 9443, "o-hm0"},
      {"fe80::5", 0, "o-hm0"},
      // Zones only select a link: not on IPv4 or a global address, never empty or odd.
      {"192.0.2.5%eth0", 9443, "o-hm0"},
      {"2001:db8::5%eth0", 9443, "o-hm0"},
      {"::1%lo", 9443, "o-hm0"},
      {"fe80::5%", 9443, "o-hm0"},
      {"fe80::5%eth0/x", 9443, "o-hm0"},
      {"fe80::5%eth0%eth1", 9443, "o-hm0"},
      {"fe80::5%abcdefghijklmnop", 9443, "o-hm0"},  // longer than IFNAMSIZ - 1
      {"%eth0", 9443, "o-hm0"},
      // A link-local address with no zone and none configured, or a bad one configured.
      {"fe80::5", 9443, ""},
      {"fe80::5", 9443, "o hm0"},
      {"fe80::5", 9443, "o-hm0]"},
      {"fe80::5", 9443, "abcdefghijklmnop"},
  };
  for (const auto& row : rows) {
    auto url = agentUrl(AgentEndpoint{row.address, row.port}, "/1.0/info", row.interface);
    ASSERT_FALSE(url.ok()) << row.address << " -> " << *url;
    EXPECT_EQ(url.error().code, common::ErrorCode::kInvalidArgument) << row.address;
  }
}

}  // namespace
}  // namespace banyan::provider::amphora
