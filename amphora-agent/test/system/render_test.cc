// Pure parts of the system module, no kernel and no processes: address
// parsing, keepalived.conf rendering and validation, and the nftables
// transaction as libnftnl describes it.
#include <gtest/gtest.h>

#include "system/firewall.h"
#include "system/ip_prefix.h"
#include "system/keepalived.h"

namespace banyan::agent::system {
namespace {

TEST(IpPrefix, ParsesAddressesAndPrefixesAndClearsHostBits) {
  auto p = parseIpPrefix("198.51.100.77/24");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->toString(), "198.51.100.0/24");
  EXPECT_TRUE(p->contains(parseIpAddress("198.51.100.1").value()));
  EXPECT_FALSE(p->contains(parseIpAddress("198.51.101.1").value()));
  auto h = parseIpPrefix("2001:db8::1");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->prefix_len, 128);
  auto odd = parseIpPrefix("2001:db8:ffff::/33");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->toString(), "2001:db8:8000::/33");
  EXPECT_EQ(parseIpPrefix("0.0.0.0/0")->toString(), "0.0.0.0/0");
}

TEST(IpPrefix, RejectsMalformedInput) {
  struct Row {
    const char* text;
    const char* why;
  };
  for (const Row& row :
       {Row{"", "empty"}, Row{"198.51.100.300", "octet too big"},
        Row{"198.51.100.1/33", "prefix too long for IPv4"},
        Row{"2001:db8::/129", "prefix too long for IPv6"}, Row{"198.51.100.1/", "empty prefix"},
        Row{"198.51.100.1/2x", "junk after prefix"}, Row{"198.51.100.1/-1", "negative prefix"},
        Row{" 198.51.100.1", "leading space"}, Row{"fe80::1%eth0", "scope id"},
        Row{"198.51.100.1/0024", "over-long prefix text"}}) {
    auto r = parseIpPrefix(row.text);
    EXPECT_FALSE(r.ok()) << row.why << ": " << row.text;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
    }
  }
}

VrrpConfig sampleVrrp() {
  VrrpConfig c;
  c.instance_name = "lb0a1b2c";
  c.interface = "eth1";
  c.vip = "203.0.113.10";
  c.vip_prefix = 32;
  c.virtual_router_id = 7;
  c.priority = 100;
  c.local_address = "203.0.113.11";
  c.peer_addresses = {"203.0.113.12"};
  c.auth_pass = "s3cr3t";
  c.check_command = "/usr/lib/banyan/proxy-check /run/banyan/proxy.sock";
  c.notify_command = "/run/banyan/vrrp/notify.sh";
  return c;
}

bool hasLine(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(KeepalivedConfig, RendersUnicastPeersVipCheckNotifyAndGarp) {
  auto c = sampleVrrp();
  ASSERT_TRUE(validateVrrpConfig(c).ok());
  std::string t = renderKeepalivedConfig(c);
  EXPECT_TRUE(hasLine(t, "vrrp_instance lb0a1b2c {")) << t;
  EXPECT_TRUE(hasLine(t, "    state BACKUP")) << t;
  EXPECT_TRUE(hasLine(t, "    interface eth1")) << t;
  EXPECT_TRUE(hasLine(t, "    virtual_router_id 7")) << t;
  EXPECT_TRUE(hasLine(t, "    priority 100")) << t;
  EXPECT_TRUE(hasLine(t, "    nopreempt")) << t;
  EXPECT_TRUE(hasLine(t, "    unicast_src_ip 203.0.113.11")) << t;
  EXPECT_TRUE(t.find("    unicast_peer {\n        203.0.113.12\n    }\n") != std::string::npos)
      << t;
  EXPECT_TRUE(t.find("    virtual_ipaddress {\n        203.0.113.10/32 dev eth1\n    }\n") !=
              std::string::npos)
      << t;
  EXPECT_TRUE(hasLine(t, "    script \"/usr/lib/banyan/proxy-check /run/banyan/proxy.sock\"")) << t;
  EXPECT_TRUE(hasLine(t, "    fall 2")) << t;
  EXPECT_TRUE(t.find("    track_script {\n        banyan_check\n    }\n") != std::string::npos)
      << t;
  EXPECT_TRUE(hasLine(t, "    notify \"/run/banyan/vrrp/notify.sh\"")) << t;
  EXPECT_TRUE(hasLine(t, "    garp_master_delay 1")) << t;
  EXPECT_TRUE(hasLine(t, "    garp_master_refresh 5")) << t;
  EXPECT_TRUE(hasLine(t, "        auth_pass s3cr3t")) << t;
  EXPECT_EQ(t.find("virtual_routes"), std::string::npos);
}

TEST(KeepalivedConfig, WithoutCheckOrPasswordThoseBlocksAreLeftOut) {
  auto c = sampleVrrp();
  c.check_command.clear();
  c.auth_pass.clear();
  c.nopreempt = false;
  ASSERT_TRUE(validateVrrpConfig(c).ok());
  std::string t = renderKeepalivedConfig(c);
  EXPECT_EQ(t.find("vrrp_script"), std::string::npos);
  EXPECT_EQ(t.find("track_script"), std::string::npos);
  EXPECT_EQ(t.find("authentication"), std::string::npos);
  EXPECT_EQ(t.find("nopreempt"), std::string::npos);
}

TEST(KeepalivedConfig, VipSourceRoutingFollowsTheMaster) {
  auto c = sampleVrrp();
  c.vip_table = 1;
  c.vip_subnet_cidr = "203.0.113.0/24";
  c.gateway = "203.0.113.1";
  ASSERT_TRUE(validateVrrpConfig(c).ok());
  std::string t = renderKeepalivedConfig(c);
  EXPECT_TRUE(hasLine(t, "        203.0.113.0/24 dev eth1 src 203.0.113.10 scope link table 1"))
      << t;
  EXPECT_TRUE(hasLine(t, "        default via 203.0.113.1 dev eth1 onlink table 1")) << t;
  EXPECT_TRUE(hasLine(t, "        from 203.0.113.10/32 table 1 priority 100")) << t;
}

TEST(KeepalivedConfig, AVipOfTheOtherFamilyIsExcludedFromAdverts) {
  auto c = sampleVrrp();
  c.vip = "2001:db8::10";
  c.vip_prefix = 128;
  ASSERT_TRUE(validateVrrpConfig(c).ok());
  std::string t = renderKeepalivedConfig(c);
  EXPECT_TRUE(t.find("    virtual_ipaddress_excluded {\n        2001:db8::10/128 dev eth1\n") !=
              std::string::npos)
      << t;
}

TEST(KeepalivedConfig, ValidationRejectsWhatWouldBreakOrInjectConfig) {
  struct Row {
    const char* why;
    void (*mutate)(VrrpConfig&);
    const char* field;
  };
  const Row rows[] = {
      {"newline in interface", [](VrrpConfig& c) { c.interface = "eth1\n}"; }, "interface"},
      {"interface too long", [](VrrpConfig& c) { c.interface = "a234567890123456"; }, "interface"},
      {"space in instance", [](VrrpConfig& c) { c.instance_name = "a b"; }, "instance_name"},
      {"bad VIP", [](VrrpConfig& c) { c.vip = "203.0.113.300"; }, "vip"},
      {"VIP prefix too long", [](VrrpConfig& c) { c.vip_prefix = 33; }, "vip_prefix"},
      {"router id 0", [](VrrpConfig& c) { c.virtual_router_id = 0; }, "virtual_router_id"},
      {"router id 256", [](VrrpConfig& c) { c.virtual_router_id = 256; }, "virtual_router_id"},
      {"priority 255 (owner)", [](VrrpConfig& c) { c.priority = 255; }, "priority"},
      {"no local address", [](VrrpConfig& c) { c.local_address.clear(); }, "local_address"},
      {"peer of other family", [](VrrpConfig& c) { c.peer_addresses = {"2001:db8::12"}; },
       "peer_addresses/0"},
      {"password too long", [](VrrpConfig& c) { c.auth_pass = "123456789"; }, "auth_pass"},
      {"quote in password", [](VrrpConfig& c) { c.auth_pass = "a\"b"; }, "auth_pass"},
      {"quote in check", [](VrrpConfig& c) { c.check_command = "/bin/true\" }"; }, "check_command"},
      {"newline in check", [](VrrpConfig& c) { c.check_command = "/bin/true\nvrrp_instance x {"; },
       "check_command"},
      {"relative check", [](VrrpConfig& c) { c.check_command = "true"; }, "check_command"},
      {"zero check interval", [](VrrpConfig& c) { c.check_interval_s = 0; }, "check_interval_s"},
      {"VIP outside subnet",
       [](VrrpConfig& c) {
         c.vip_table = 1;
         c.vip_subnet_cidr = "192.0.2.0/24";
       },
       "vip_subnet_cidr"},
      {"main table as VIP table",
       [](VrrpConfig& c) {
         c.vip_table = 254;
         c.vip_subnet_cidr = "203.0.113.0/24";
       },
       "vip_table"},
  };
  for (const Row& row : rows) {
    auto c = sampleVrrp();
    row.mutate(c);
    auto r = validateVrrpConfig(c);
    ASSERT_FALSE(r.ok()) << row.why;
    EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument) << row.why;
    EXPECT_EQ(r.error().context, row.field) << row.why;
  }
}

FirewallSpec sampleFirewall() {
  FirewallSpec s;
  s.vips = {"203.0.113.5"};
  s.listeners = {{"203.0.113.5", 443, "tcp", {"198.51.100.0/24"}}};
  s.management_cidrs = {"192.0.2.0/24"};
  return s;
}

TEST(FirewallTransaction, StartsByReplacingTheTableAndMatchesListenerSourcesWithAMask) {
  auto d = describeFirewall(sampleFirewall());
  ASSERT_TRUE(d.ok()) << d.error().message;
  const std::string& t = d.value();
  // add + delete + add: "delete if present" inside the one transaction.
  EXPECT_EQ(t.rfind("add table inet banyan\ndelete table inet banyan\nadd table inet banyan\n", 0),
            0u)
      << t;
  // The listener rule: daddr 203.0.113.5 (0x057100cb as libnftnl dumps it), dport 443, saddr & /24.
  EXPECT_NE(t.find("[ payload load 4b @ network header + 16 => reg 1 ]"), std::string::npos) << t;
  EXPECT_NE(t.find("[ cmp eq reg 1 0x057100cb ]"), std::string::npos) << t;
  EXPECT_NE(t.find("[ cmp eq reg 1 0x0000bb01 ]"), std::string::npos) << t;
  EXPECT_NE(t.find("[ bitwise reg 1 = ( reg 1 & 0x00ffffff ) ^ 0x00000000 ]"), std::string::npos)
      << t;
  EXPECT_NE(t.find("[ cmp eq reg 1 0x006433c6 ]"), std::string::npos) << t;
}

TEST(FirewallTransaction, VrrpIsCheckedBeforeConntrackCanAcceptItAsAReply) {
  auto d = describeFirewall(sampleFirewall());
  ASSERT_TRUE(d.ok());
  size_t vrrp = d->find("[ cmp eq reg 1 0x00000070 ]");  // meta l4proto 112
  size_t ct = d->find("[ ct load state => reg 1 ]");
  ASSERT_NE(vrrp, std::string::npos);
  ASSERT_NE(ct, std::string::npos);
  EXPECT_LT(vrrp, ct);
}

TEST(FirewallTransaction, L4NatHashesSourceAddressAndPortIntoTheSlotMap) {
  FirewallSpec s = sampleFirewall();
  L4NatSpec n;
  n.vip = "203.0.113.5";
  n.port = 5000;
  n.protocol = "udp";
  n.members = {{"192.0.2.21", 53}, {"192.0.2.22", 53}};
  n.hash_seed = 7;
  n.snat_address = "203.0.113.5";
  s.l4_nat = {n};
  auto d = describeFirewall(s);
  ASSERT_TRUE(d.ok()) << d.error().message;
  const std::string& t = d.value();
  EXPECT_NE(t.find("[ hash reg 8 = jhash(reg 8, 8, 0x7) % mod 2 ]"), std::string::npos) << t;
  EXPECT_NE(t.find("[ lookup reg 8 set l4nat0 dreg 8 ]"), std::string::npos) << t;
  EXPECT_NE(t.find("[ nat dnat ip addr_min reg 8 proto_min reg 9 ]"), std::string::npos) << t;
  EXPECT_NE(t.find("[ nat snat ip addr_min reg 1 ]"), std::string::npos) << t;
}

TEST(FirewallTransaction, InvalidSpecsNameTheField) {
  struct Row {
    const char* why;
    void (*mutate)(FirewallSpec&);
    const char* field;
  };
  const Row rows[] = {
      {"bad VIP", [](FirewallSpec& s) { s.vips = {"203.0.113"}; }, "/vips/0"},
      {"listener on unknown VIP", [](FirewallSpec& s) { s.listeners[0].vip = "203.0.113.6"; },
       "/listeners/0/vip"},
      {"port 0", [](FirewallSpec& s) { s.listeners[0].port = 0; }, "/listeners/0/port"},
      {"protocol", [](FirewallSpec& s) { s.listeners[0].protocol = "icmp"; },
       "/listeners/0/protocol"},
      {"bad CIDR", [](FirewallSpec& s) { s.listeners[0].allowed_cidrs = {"198.51.100.0/40"}; },
       "/listeners/0/allowed_cidrs/0"},
      {"bad management CIDR", [](FirewallSpec& s) { s.management_cidrs = {"x"}; },
       "/management_cidrs/0"},
      {"NAT without members",
       [](FirewallSpec& s) {
         s.l4_nat = {L4NatSpec{"203.0.113.5", 80, "tcp", {}, {}, 0, true, ""}};
       },
       "/l4_nat/0/members"},
      {"NAT slot out of range",
       [](FirewallSpec& s) {
         s.l4_nat = {L4NatSpec{"203.0.113.5", 80, "tcp", {{"192.0.2.1", 80}}, {0, 1}, 0, true, ""}};
       },
       "/l4_nat/0/slots/1"},
      {"NAT member family",
       [](FirewallSpec& s) {
         s.l4_nat = {L4NatSpec{"203.0.113.5", 80, "tcp", {{"2001:db8::1", 80}}, {}, 0, true, ""}};
       },
       "/l4_nat/0/members/0/address"},
  };
  for (const Row& row : rows) {
    FirewallSpec s = sampleFirewall();
    row.mutate(s);
    auto r = describeFirewall(s);
    ASSERT_FALSE(r.ok()) << row.why;
    EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument) << row.why;
    EXPECT_EQ(r.error().context, row.field) << row.why;
  }
}

}  // namespace
}  // namespace banyan::agent::system
