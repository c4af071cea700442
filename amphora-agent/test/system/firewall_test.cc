// The agent's nftables table against the real kernel. Topology, all in
// namespaces this test creates:
//
//   client-ok  eth0 198.51.100.10 / 2001:db8:1::10 ─┐
//                                                    ├─ br0 in amp: 198.51.100.1, 2001:db8:1::1,
//   client-bad eth0 198.51.100.20 / 2001:db8:1::20 ─┘           VIPs 203.0.113.5, 2001:db8:5::5
//
// Listening sockets of the test process sit in amp. A drop shows as a connect
// timeout (nothing answers), which is distinct from a refusal (RST).
#include "system/firewall.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <memory>

#include "netns.h"
#include "sockets.h"
#include "system/nft_batch.h"
// After sockets.h: glibc's <netinet/in.h> must precede the kernel's <linux/in.h>.
// clang-format off
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
// clang-format on

namespace banyan::agent::system {
namespace {

using testing::ConnectOutcome;
using testing::Netns;
using testing::tcpConnect;

constexpr int kDropWaitMs = 800;
constexpr int kConnectWaitMs = 3000;

class FirewallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::sweepStaleNamespaces();
    amp_ = std::make_unique<Netns>("amp");
    ok_ = std::make_unique<Netns>("cok");
    bad_ = std::make_unique<Netns>("cbad");
    auto nft = amp_->exec("nft list ruleset");
    ASSERT_EQ(nft.rc, 0) << "nftables does not work in a network namespace on this machine "
                            "(kernel without nf_tables?): "
                         << nft.out;
    auto r = amp_->exec(
        "ip link add br0 type bridge && ip link set br0 up && "
        "ip addr add 198.51.100.1/24 dev br0 && ip addr add 2001:db8:1::1/64 dev br0 nodad && "
        "ip addr add 203.0.113.5/32 dev br0 && ip addr add 2001:db8:5::5/128 dev br0 nodad");
    ASSERT_EQ(r.rc, 0) << r.out;
    testing::veth(*amp_, "vok", *ok_, "eth0");
    testing::veth(*amp_, "vbad", *bad_, "eth0");
    r = amp_->exec("ip link set vok master br0 && ip link set vbad master br0");
    ASSERT_EQ(r.rc, 0) << r.out;
    for (auto& [ns, last] : {std::pair{ok_.get(), "10"}, std::pair{bad_.get(), "20"}}) {
      r = ns->exec(std::string("ip addr add 198.51.100.") + last +
                   "/24 dev eth0 && ip addr add 2001:db8:1::" + last +
                   "/64 dev eth0 nodad && ip route add default via 198.51.100.1 && "
                   "ip -6 route add default via 2001:db8:1::1");
      ASSERT_EQ(r.rc, 0) << r.out;
    }
    for (auto [ip, port] : {std::pair{"203.0.113.5", 8080}, std::pair{"203.0.113.5", 8081},
                            std::pair{"2001:db8:5::5", 8080}, std::pair{"198.51.100.1", 9443}}) {
      int fd = amp_->run([&] { return testing::listenTcp(ip, static_cast<uint16_t>(port)); });
      ASSERT_GE(fd, 0) << ip << ":" << port;
      fds_.push_back(fd);
    }
  }

  void TearDown() override {
    for (int fd : fds_) close(fd);
    bad_.reset();
    ok_.reset();
    amp_.reset();
  }

  ConnectOutcome connectFrom(const Netns& ns, const std::string& ip, uint16_t port, int wait_ms) {
    return ns.run([&] { return tcpConnect(ip, port, wait_ms); });
  }

  common::Result<void> apply(const FirewallSpec& spec) {
    return amp_->run([&] { return applyFirewall(spec); });
  }

  std::string listTable() { return amp_->exec("nft list table inet banyan").out; }

  static FirewallSpec okOnly8080() {
    FirewallSpec s;
    s.vips = {"203.0.113.5", "2001:db8:5::5"};
    s.listeners = {{"203.0.113.5", 8080, "tcp", {"198.51.100.10/32"}},
                   {"2001:db8:5::5", 8080, "tcp", {"2001:db8:1::10/128"}}};
    s.management_cidrs = {"198.51.100.10/32"};
    return s;
  }

  std::unique_ptr<Netns> amp_, ok_, bad_;
  std::vector<int> fds_;
};

#define EXPECT_OUTCOME(actual, expected)                                     \
  EXPECT_EQ(actual, expected) << testing::toString(actual) << " instead of " \
                              << testing::toString(expected)

TEST_F(FirewallTest, TheBanyanTableShowsInNftJsonRuleset) {
  auto r = apply(okOnly8080());
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto out = amp_->exec("nft -j list ruleset");
  ASSERT_EQ(out.rc, 0) << out.out;
  rapidjson::Document d;
  d.Parse(out.out.c_str());
  ASSERT_FALSE(d.HasParseError());
  bool table = false, input_hook = false;
  for (auto& item : d["nftables"].GetArray()) {
    if (item.HasMember("table")) {
      auto& t = item["table"];
      table |= std::string(t["name"].GetString()) == "banyan" &&
               std::string(t["family"].GetString()) == "inet";
    }
    if (item.HasMember("chain")) {
      auto& c = item["chain"];
      if (std::string(c["name"].GetString()) == "input" && c.HasMember("hook")) {
        input_hook = std::string(c["hook"].GetString()) == "input" &&
                     std::string(c["policy"].GetString()) == "accept";
      }
    }
  }
  EXPECT_TRUE(table) << out.out;
  EXPECT_TRUE(input_hook) << out.out;
}

TEST_F(FirewallTest, OnlyTheAllowedClientReachesTheListenerPort) {
  // Without the table everyone gets in: the drops below are the firewall's doing.
  EXPECT_OUTCOME(connectFrom(*bad_, "203.0.113.5", 8080, kConnectWaitMs),
                 ConnectOutcome::kConnected);
  EXPECT_OUTCOME(connectFrom(*ok_, "203.0.113.5", 8081, kConnectWaitMs),
                 ConnectOutcome::kConnected);

  auto r = apply(okOnly8080());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_OUTCOME(connectFrom(*ok_, "203.0.113.5", 8080, kConnectWaitMs),
                 ConnectOutcome::kConnected);
  EXPECT_OUTCOME(connectFrom(*bad_, "203.0.113.5", 8080, kDropWaitMs), ConnectOutcome::kTimedOut);
  // 8081 is not a listener port: dropped even for the allowed client.
  EXPECT_OUTCOME(connectFrom(*ok_, "203.0.113.5", 8081, kDropWaitMs), ConnectOutcome::kTimedOut);
  // The same for the IPv6 VIP.
  EXPECT_OUTCOME(connectFrom(*ok_, "2001:db8:5::5", 8080, kConnectWaitMs),
                 ConnectOutcome::kConnected);
  EXPECT_OUTCOME(connectFrom(*bad_, "2001:db8:5::5", 8080, kDropWaitMs), ConnectOutcome::kTimedOut);
}

TEST_F(FirewallTest, AnEmptyAllowListLetsEveryoneReachTheListener) {
  FirewallSpec s = okOnly8080();
  s.listeners[0].allowed_cidrs.clear();
  ASSERT_TRUE(apply(s).ok());
  EXPECT_OUTCOME(connectFrom(*bad_, "203.0.113.5", 8080, kConnectWaitMs),
                 ConnectOutcome::kConnected);
  EXPECT_OUTCOME(connectFrom(*bad_, "203.0.113.5", 8081, kDropWaitMs), ConnectOutcome::kTimedOut);
}

TEST_F(FirewallTest, TheAgentPortIsOpenToManagementCidrsOnly) {
  ASSERT_TRUE(apply(okOnly8080()).ok());
  EXPECT_OUTCOME(connectFrom(*ok_, "198.51.100.1", 9443, kConnectWaitMs),
                 ConnectOutcome::kConnected);
  EXPECT_OUTCOME(connectFrom(*bad_, "198.51.100.1", 9443, kDropWaitMs), ConnectOutcome::kTimedOut);
  // The drop was counted in mgmt_only.
  auto chain = amp_->exec("nft list chain inet banyan mgmt_only").out;
  EXPECT_NE(chain.find("counter packets"), std::string::npos) << chain;
  EXPECT_EQ(chain.find("counter packets 0 "), std::string::npos) << chain;
}

// VRRP (IP protocol 112) through raw sockets: a raw socket sees a packet only
// after the input hook accepted it.
int vrrpReceiver() {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 112);
  if (fd >= 0) {
    timeval tv{0, 400 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  return fd;
}

bool sendVrrp(const std::string& to) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 112);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, to.c_str(), &sa.sin_addr);
  const char advert[8] = {0x31, 1, 100, 1, 0, 1, 0, 0};  // v3 advert, vrid 1: shape only
  bool ok = sendto(fd, advert, sizeof advert, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) ==
            static_cast<ssize_t>(sizeof advert);
  close(fd);
  return ok;
}

// Whether a VRRP packet from NS to the amphora's 198.51.100.1 arrives (a few
// tries: the first packet may wait for neighbour resolution).
bool vrrpArrives(Netns& amp, const Netns& from) {
  int fd = amp.run([] { return vrrpReceiver(); });
  if (fd < 0) return false;
  bool seen = false;
  for (int i = 0; i < 3 && !seen; ++i) {
    if (!from.run([] { return sendVrrp("198.51.100.1"); })) break;
    char buf[256];
    seen = recv(fd, buf, sizeof buf, 0) > 0;
  }
  close(fd);
  return seen;
}

TEST_F(FirewallTest, VrrpPassesFromThePeersAndManagementOnly) {
  // Without the table both namespaces get VRRP through: the drops are the firewall's.
  ASSERT_TRUE(vrrpArrives(*amp_, *bad_));
  FirewallSpec s = okOnly8080();
  s.allow_vrrp = true;
  s.vrrp_peers = {};
  ASSERT_TRUE(apply(s).ok());
  EXPECT_TRUE(vrrpArrives(*amp_, *ok_)) << "management source";
  EXPECT_FALSE(vrrpArrives(*amp_, *bad_)) << "neither peer nor management";
  // The peer sits on the VIP network, outside management_cidrs: keepalived's
  // unicast adverts come from there.
  s.vrrp_peers = {"198.51.100.20"};
  ASSERT_TRUE(apply(s).ok());
  EXPECT_TRUE(vrrpArrives(*amp_, *bad_)) << "peer";
  // The peer is a VRRP source only: the agent port stays closed to it.
  EXPECT_OUTCOME(connectFrom(*bad_, "198.51.100.1", 9443, kDropWaitMs), ConnectOutcome::kTimedOut);
  // SINGLE topology: no VRRP from anyone.
  s.allow_vrrp = false;
  ASSERT_TRUE(apply(s).ok());
  EXPECT_FALSE(vrrpArrives(*amp_, *bad_));
  EXPECT_FALSE(vrrpArrives(*amp_, *ok_));
}

TEST_F(FirewallTest, AnInvalidVrrpPeerIsNamed) {
  FirewallSpec s = okOnly8080();
  s.vrrp_peers = {"198.51.100.20", "peer"};
  auto r = describeFirewall(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().context, "/vrrp_peers/1");
}

TEST_F(FirewallTest, ReplacingTheSpecLeavesNoRuleOfTheOldOne) {
  ASSERT_TRUE(apply(okOnly8080()).ok());
  FirewallSpec s2;
  s2.vips = {"203.0.113.5"};
  s2.listeners = {{"203.0.113.5", 8081, "tcp", {"198.51.100.20/32"}}};
  s2.management_cidrs = {"198.51.100.20/32"};
  auto r = apply(s2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_OUTCOME(connectFrom(*bad_, "203.0.113.5", 8081, kConnectWaitMs),
                 ConnectOutcome::kConnected);
  EXPECT_OUTCOME(connectFrom(*ok_, "203.0.113.5", 8080, kDropWaitMs), ConnectOutcome::kTimedOut);
  std::string table = listTable();
  EXPECT_EQ(table.find("8080"), std::string::npos) << table;
  EXPECT_EQ(table.find("198.51.100.10"), std::string::npos) << table;
  EXPECT_EQ(table.find("2001:db8:5::5"), std::string::npos) << table;
  EXPECT_NE(table.find("8081"), std::string::npos) << table;
  // Exactly one banyan table, not one per apply.
  auto all = amp_->exec("nft list tables").out;
  EXPECT_EQ(all, "table inet banyan\n");
}

TEST_F(FirewallTest, AnInvalidSpecLeavesThePreviousRulesetInPlace) {
  ASSERT_TRUE(apply(okOnly8080()).ok());
  std::string before = amp_->exec("nft list ruleset").out;
  FirewallSpec bad = okOnly8080();
  bad.listeners[0].port = 9090;
  bad.listeners[0].allowed_cidrs = {"198.51.100.10/32", "198.51.100.300/32"};
  auto r = apply(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().context, "/listeners/0/allowed_cidrs/1");
  EXPECT_EQ(amp_->exec("nft list ruleset").out, before);
  EXPECT_OUTCOME(connectFrom(*ok_, "203.0.113.5", 8080, kConnectWaitMs),
                 ConnectOutcome::kConnected);
  EXPECT_OUTCOME(connectFrom(*bad_, "203.0.113.5", 8080, kDropWaitMs), ConnectOutcome::kTimedOut);
}

TEST_F(FirewallTest, ATransactionTheKernelRejectsLeavesThePreviousRulesetInPlace) {
  ASSERT_TRUE(apply(okOnly8080()).ok());
  std::string before = amp_->exec("nft list ruleset").out;
  // No spec our validator accepts makes the kernel refuse, so build the same
  // kind of transaction by hand and break its last message: a jump to a chain
  // that does not exist. The delete of the old table came earlier in the batch.
  auto r = amp_->run([] {
    nft::Batch b(NFPROTO_INET, kFirewallTable);
    b.addTable();
    b.deleteTable();
    b.addTable();
    b.addChain("input", NF_INET_LOCAL_IN, 0, "filter", NF_ACCEPT);
    b.addRule(nft::RuleBuilder(NFPROTO_INET, kFirewallTable, "input").counter().drop().release());
    b.addRule(nft::RuleBuilder(NFPROTO_INET, kFirewallTable, "input").jump("nosuch").release());
    return b.commit();
  });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("add rule (message 6)"), std::string::npos) << r.error().message;
  EXPECT_EQ(amp_->exec("nft list ruleset").out, before);
  EXPECT_OUTCOME(connectFrom(*ok_, "203.0.113.5", 8080, kConnectWaitMs),
                 ConnectOutcome::kConnected);
}

TEST_F(FirewallTest, ALargeSpecGoesInOneTransaction) {
  // 3000 listener rules: the batch is far larger than a netlink socket's
  // default buffers, and every message is acknowledged.
  FirewallSpec s = okOnly8080();
  for (int port = 10000; port < 10100; ++port) {
    FirewallSpec::Listener l{"203.0.113.5", static_cast<uint16_t>(port), "tcp", {}};
    for (int i = 0; i < 30; ++i) l.allowed_cidrs.push_back("192.0.2." + std::to_string(i) + "/32");
    s.listeners.push_back(l);
  }
  auto start = std::chrono::steady_clock::now();
  auto r = apply(s);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  ASSERT_TRUE(r.ok()) << r.error().message;
  printf("applied %zu listeners in %lld ms\n", s.listeners.size(), static_cast<long long>(ms));
  auto rules = amp_->exec("nft -a list chain inet banyan vip_in | grep -c 'dport 10'");
  EXPECT_EQ(rules.out, "3000\n");
  EXPECT_OUTCOME(connectFrom(*ok_, "203.0.113.5", 8080, kConnectWaitMs),
                 ConnectOutcome::kConnected);
}

TEST_F(FirewallTest, RemovingTheFirewallReopensTheVipAndIsIdempotent) {
  ASSERT_TRUE(apply(okOnly8080()).ok());
  for (int i = 0; i < 2; ++i) {
    auto r = amp_->run([] { return removeFirewall(); });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  EXPECT_EQ(amp_->exec("nft list tables").out, "");
  EXPECT_OUTCOME(connectFrom(*bad_, "203.0.113.5", 8081, kConnectWaitMs),
                 ConnectOutcome::kConnected);
}

TEST_F(FirewallTest, OtherTablesOnTheHostAreLeftAlone) {
  auto r = amp_->exec(
      "nft add table inet other && nft add chain inet other keep && nft add table ip banyan");
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(apply(okOnly8080()).ok());
  ASSERT_TRUE(amp_->run([] { return removeFirewall(); }).ok());
  auto tables = amp_->exec("nft list tables").out;
  EXPECT_NE(tables.find("table inet other"), std::string::npos) << tables;
  EXPECT_NE(tables.find("table ip banyan"), std::string::npos) << tables;
  EXPECT_EQ(amp_->exec("nft list chain inet other keep").rc, 0);
}

TEST_F(FirewallTest, L4NatChainsDumpAsHashedDnatToTheMemberMapAndMasquerade) {
  FirewallSpec s = okOnly8080();
  L4NatSpec nat;
  nat.vip = "203.0.113.5";
  nat.port = 7000;
  nat.members = {{"192.0.2.11", 80}, {"192.0.2.12", 8080}, {"192.0.2.13", 80}};
  nat.slots = {0, 1, 2, 0, 1, 2, 2};
  nat.hash_seed = 42;
  s.l4_nat = {nat};
  auto r = apply(s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string table = listTable();
  EXPECT_NE(table.find("type nat hook prerouting priority dstnat"), std::string::npos) << table;
  EXPECT_NE(table.find("type nat hook postrouting priority srcnat"), std::string::npos) << table;
  EXPECT_NE(table.find("dnat ip to jhash ip saddr . tcp sport mod 7 seed 0x2a map @l4nat0"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("ct status dnat ct original ip daddr 203.0.113.5"), std::string::npos)
      << table;
  EXPECT_NE(table.find("masquerade"), std::string::npos) << table;
  EXPECT_NE(table.find("6 : 192.0.2.13 . 80"), std::string::npos) << table;
  EXPECT_NE(table.find("1 : 192.0.2.12 . 8080"), std::string::npos) << table;
}

}  // namespace
}  // namespace banyan::agent::system

namespace banyan::agent::system {
namespace {

// The L4 NAT building block moving real traffic:
//   client 198.51.100.10 ── amp (VIP 203.0.113.5, forwarding) ── brm 192.0.2.1 ─┬─ m1 192.0.2.11:80
//                                                                               └─ m2
//                                                                               192.0.2.12:8080
class L4NatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::sweepStaleNamespaces();
    amp_ = std::make_unique<Netns>("nat");
    client_ = std::make_unique<Netns>("ncl");
    m1_ = std::make_unique<Netns>("m1");
    m2_ = std::make_unique<Netns>("m2");
    testing::veth(*amp_, "vc", *client_, "eth0");
    testing::veth(*amp_, "vm1", *m1_, "eth0");
    testing::veth(*amp_, "vm2", *m2_, "eth0");
    auto r = amp_->exec(
        "sysctl -qw net.ipv4.ip_forward=1 && ip addr add 198.51.100.1/24 dev vc && "
        "ip addr add 203.0.113.5/32 dev vc && ip link add brm type bridge && ip link set brm up && "
        "ip link set vm1 master brm && ip link set vm2 master brm && ip addr add 192.0.2.1/24 dev "
        "brm");
    ASSERT_EQ(r.rc, 0) << r.out;
    ASSERT_EQ(
        client_
            ->exec("ip addr add 198.51.100.10/24 dev eth0 && ip route add default via 198.51.100.1")
            .rc,
        0);
    // Members have no route back to the client: only the SNAT makes replies return.
    ASSERT_EQ(m1_->exec("ip addr add 192.0.2.11/24 dev eth0").rc, 0);
    ASSERT_EQ(m2_->exec("ip addr add 192.0.2.12/24 dev eth0").rc, 0);
    l1_ = m1_->run([] { return testing::listenTcp("0.0.0.0", 80); });
    l2_ = m2_->run([] { return testing::listenTcp("0.0.0.0", 8080); });
    ASSERT_GE(l1_, 0);
    ASSERT_GE(l2_, 0);
  }
  void TearDown() override {
    if (l1_ >= 0) close(l1_);
    if (l2_ >= 0) close(l2_);
    m2_.reset();
    m1_.reset();
    client_.reset();
    amp_.reset();
  }

  static FirewallSpec spec() {
    FirewallSpec s;
    s.vips = {"203.0.113.5"};
    s.management_cidrs = {"192.0.2.0/24"};
    L4NatSpec n;
    n.vip = "203.0.113.5";
    n.port = 7000;
    n.members = {{"192.0.2.11", 80}, {"192.0.2.12", 8080}};
    n.slots = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0};
    n.hash_seed = 0x5eed;
    s.l4_nat = {n};
    return s;
  }

  std::unique_ptr<Netns> amp_, client_, m1_, m2_;
  int l1_ = -1, l2_ = -1;
};

TEST_F(L4NatTest, FlowsToTheVipPortAreSpreadOverMembersAndOneSourceStaysOnOneMember) {
  auto r = amp_->run([] { return applyFirewall(spec()); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  int connected = 0;
  for (int i = 0; i < 40; ++i) {
    auto out = client_->run([] { return tcpConnect("203.0.113.5", 7000, 2000); });
    connected += out == ConnectOutcome::kConnected;
  }
  EXPECT_EQ(connected, 40);
  int at1 = testing::drainAccepts(l1_);
  int at2 = testing::drainAccepts(l2_);
  EXPECT_EQ(at1 + at2, 40);
  EXPECT_GT(at1, 0) << "no flow reached member 1";
  EXPECT_GT(at2, 0) << "no flow reached member 2";

  // The same source address and port hash to the same slot every time.
  for (uint16_t sport : {41001, 41002, 41003}) {
    int first_member = 0;
    for (int i = 0; i < 4; ++i) {
      auto out = client_->run([&] { return tcpConnect("203.0.113.5", 7000, 2000, sport); });
      ASSERT_EQ(out, ConnectOutcome::kConnected) << testing::toString(out);
      int a = testing::drainAccepts(l1_), b = testing::drainAccepts(l2_);
      ASSERT_EQ(a + b, 1);
      int member = a == 1 ? 1 : 2;
      if (first_member == 0) first_member = member;
      EXPECT_EQ(member, first_member) << "source port " << sport << " moved between members";
    }
  }
}

TEST_F(L4NatTest, RemovingTheNatLeavesTheVipPortClosed) {
  ASSERT_TRUE(amp_->run([] { return applyFirewall(spec()); }).ok());
  FirewallSpec no_nat = spec();
  no_nat.l4_nat.clear();
  ASSERT_TRUE(amp_->run([&] { return applyFirewall(no_nat); }).ok());
  auto out = client_->run([] { return tcpConnect("203.0.113.5", 7000, kDropWaitMs); });
  EXPECT_EQ(out, ConnectOutcome::kTimedOut) << testing::toString(out);
  EXPECT_EQ(amp_->exec("nft list table inet banyan").out.find("l4nat"), std::string::npos);
}

}  // namespace
}  // namespace banyan::agent::system
