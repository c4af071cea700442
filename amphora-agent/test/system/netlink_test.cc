// rtnetlink against the real kernel, inside a namespace the test creates; the
// results are read back with iproute2's JSON output, not with our own code.
#include "system/netlink.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <memory>

#include "netns.h"
#include "system/announce.h"

namespace banyan::agent::system {
namespace {

using testing::Netns;
using testing::sh;

rapidjson::Document json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

class NetlinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::sweepStaleNamespaces();
    ns_ = std::make_unique<Netns>("nl");
    // Both ends stay in the namespace: v0 is ours, v1 only gives v0 a carrier.
    auto r = ns_->exec("ip link add v0 type veth peer name v1 && ip link set v1 up");
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  void TearDown() override { ns_.reset(); }

  // (address, prefixlen) pairs of `ip -j addr show dev <ifname>`.
  std::vector<std::pair<std::string, int>> ipAddrs(const std::string& ifname) {
    auto r = ns_->exec("ip -j addr show dev " + ifname);
    EXPECT_EQ(r.rc, 0) << r.out;
    std::vector<std::pair<std::string, int>> out;
    auto d = json(r.out);
    if (!d.IsArray()) return out;
    for (auto& link : d.GetArray()) {
      if (!link.HasMember("addr_info")) continue;
      for (auto& a : link["addr_info"].GetArray()) {
        out.emplace_back(a["local"].GetString(), a["prefixlen"].GetInt());
      }
    }
    return out;
  }

  std::string routes(const std::string& args) {
    auto r = ns_->exec("ip -j " + args);
    EXPECT_EQ(r.rc, 0) << r.out;
    return r.out;
  }

  std::unique_ptr<Netns> ns_;
};

bool has(const std::vector<std::pair<std::string, int>>& v, const std::string& a, int len) {
  return std::find(v.begin(), v.end(), std::make_pair(a, len)) != v.end();
}

TEST_F(NetlinkTest, AddedIpv4AddressAppearsInIpAddrAndAddingItAgainIsHarmless) {
  auto r = ns_->run([] { return addAddress("v0", "192.0.2.5/24"); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  r = ns_->run([] { return addAddress("v0", "192.0.2.5/24"); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto addrs = ipAddrs("v0");
  EXPECT_TRUE(has(addrs, "192.0.2.5", 24));
  EXPECT_EQ(
      std::count_if(addrs.begin(), addrs.end(), [](auto& a) { return a.first == "192.0.2.5"; }), 1);
}

TEST_F(NetlinkTest, AddedIpv6AddressAppearsInIpAddr) {
  auto r = ns_->run([] { return addAddress("v0", "2001:db8:5::5/64", /*skip_dad=*/true); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  r = ns_->run([] { return addAddress("v0", "2001:db8:5::5/64", true); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(has(ipAddrs("v0"), "2001:db8:5::5", 64));
}

TEST_F(NetlinkTest, RemovingAnAddressTwiceSucceedsAndItIsGone) {
  ASSERT_TRUE(ns_->run([] { return addAddress("v0", "192.0.2.6/24"); }).ok());
  ASSERT_TRUE(ns_->run([] { return addAddress("v0", "2001:db8:5::6/64", true); }).ok());
  for (int i = 0; i < 2; ++i) {
    auto r = ns_->run([] { return removeAddress("v0", "192.0.2.6/24"); });
    ASSERT_TRUE(r.ok()) << r.error().message;
    r = ns_->run([] { return removeAddress("v0", "2001:db8:5::6/64"); });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  auto addrs = ipAddrs("v0");
  EXPECT_FALSE(has(addrs, "192.0.2.6", 24));
  EXPECT_FALSE(has(addrs, "2001:db8:5::6", 64));
}

TEST_F(NetlinkTest, BadInputIsRejectedPrecisely) {
  auto r = ns_->run([] { return addAddress("v0", "192.0.2.300/24"); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
  r = ns_->run([] { return addAddress("v0", "192.0.2.5/33"); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
  r = ns_->run([] { return addAddress("nosuch0", "192.0.2.5/24"); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kNotFound);
}

TEST_F(NetlinkTest, SetLinkUpAndListInterfacesShowStateMacMtuAndAddresses) {
  ASSERT_TRUE(ns_->run([] { return setLinkUp("v0"); }).ok());
  ASSERT_TRUE(ns_->run([] { return setLinkMtu("v0", 1400); }).ok());
  ASSERT_TRUE(ns_->run([] { return addAddress("v0", "192.0.2.7/24"); }).ok());
  auto list = ns_->run([] { return listInterfaces(); });
  ASSERT_TRUE(list.ok()) << list.error().message;
  auto it = std::find_if(list->begin(), list->end(), [](auto& i) { return i.name == "v0"; });
  ASSERT_NE(it, list->end());
  EXPECT_TRUE(it->up);
  EXPECT_EQ(it->mtu, 1400);
  EXPECT_TRUE(std::find(it->addresses.begin(), it->addresses.end(),
                        InterfaceAddress{"192.0.2.7", 24}) != it->addresses.end());
  auto d = json(ns_->exec("ip -j link show dev v0").out);
  ASSERT_TRUE(d.IsArray() && d.Size() == 1);
  EXPECT_EQ(it->mac, d[0]["address"].GetString());
  auto found = ns_->run([&] { return findInterfaceByMac(it->mac); });
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->name, "v0");
  auto by_ip = ns_->run([] { return findInterfaceByAddress("192.0.2.7"); });
  ASSERT_TRUE(by_ip.ok());
  EXPECT_EQ(by_ip->name, "v0");
  auto missing = ns_->run([] { return findInterfaceByAddress("192.0.2.8"); });
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, common::ErrorCode::kNotFound);
  auto lo = std::find_if(list->begin(), list->end(), [](auto& i) { return i.name == "lo"; });
  ASSERT_NE(lo, list->end());
  EXPECT_TRUE(std::find(lo->addresses.begin(), lo->addresses.end(),
                        InterfaceAddress{"127.0.0.1", 8}) != lo->addresses.end());
}

TEST_F(NetlinkTest, RenamingALinkKeepsItsIndex) {
  auto list = ns_->run([] { return listInterfaces(); });
  ASSERT_TRUE(list.ok());
  auto it = std::find_if(list->begin(), list->end(), [](auto& i) { return i.name == "v0"; });
  ASSERT_NE(it, list->end());
  ASSERT_TRUE(ns_->run([] { return renameLink("v0", "eth1"); }).ok());
  EXPECT_EQ(ns_->exec("ip link show dev eth1").rc, 0);
  EXPECT_NE(ns_->exec("ip link show dev v0").rc, 0);
  auto after = ns_->run([] { return listInterfaces(); });
  ASSERT_TRUE(after.ok());
  auto renamed =
      std::find_if(after->begin(), after->end(), [](auto& i) { return i.name == "eth1"; });
  ASSERT_NE(renamed, after->end());
  EXPECT_EQ(renamed->index, it->index);
}

TEST_F(NetlinkTest, RoutesInMainAndSeparateTableAppearInIpRouteAndAreIdempotent) {
  ASSERT_TRUE(ns_->run([] { return setLinkUp("v0"); }).ok());
  ASSERT_TRUE(ns_->run([] { return addAddress("v0", "192.0.2.5/24"); }).ok());
  for (int i = 0; i < 2; ++i) {
    auto r = ns_->run([] {
      return addRoute({"198.51.100.0/24", "192.0.2.1", "v0", "", kMainTable, false, 0});
    });
    ASSERT_TRUE(r.ok()) << r.error().message;
    r = ns_->run([] { return addRoute({"default", "192.0.2.1", "v0", "", kMainTable, true, 0}); });
    ASSERT_TRUE(r.ok()) << r.error().message;
    r = ns_->run([] {
      return addRoute({"192.0.2.0/24", "", "v0", "192.0.2.5", kVipTable, false, 0});
    });
    ASSERT_TRUE(r.ok()) << r.error().message;
    r = ns_->run([] { return addRoute({"default", "192.0.2.1", "v0", "", kVipTable, true, 0}); });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  auto main = json(routes("route show table main"));
  int host_route = 0, default_route = 0;
  for (auto& r : main.GetArray()) {
    std::string dst = r["dst"].GetString();
    if (dst == "198.51.100.0/24") {
      ++host_route;
      EXPECT_STREQ(r["gateway"].GetString(), "192.0.2.1");
    }
    if (dst == "default") {
      ++default_route;
      EXPECT_STREQ(r["dev"].GetString(), "v0");
    }
  }
  EXPECT_EQ(host_route, 1);
  EXPECT_EQ(default_route, 1);
  auto t1 = json(routes("route show table 1"));
  ASSERT_TRUE(t1.IsArray());
  int subnet = 0, deflt = 0;
  for (auto& r : t1.GetArray()) {
    std::string dst = r["dst"].GetString();
    if (dst == "192.0.2.0/24") {
      ++subnet;
      EXPECT_STREQ(r["prefsrc"].GetString(), "192.0.2.5");
    }
    if (dst == "default") ++deflt;
  }
  EXPECT_EQ(subnet, 1);
  EXPECT_EQ(deflt, 1);

  for (int i = 0; i < 2; ++i) {
    auto r = ns_->run([] {
      return removeRoute({"default", "192.0.2.1", "v0", "", kVipTable, true, 0});
    });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  EXPECT_EQ(routes("route show table 1").find("default"), std::string::npos);
}

TEST_F(NetlinkTest, Ipv6RoutesAppearInIpRoute) {
  ASSERT_TRUE(ns_->run([] { return setLinkUp("v0"); }).ok());
  ASSERT_TRUE(ns_->run([] { return addAddress("v0", "2001:db8:5::5/64", true); }).ok());
  auto r = ns_->run([] {
    return addRoute({"2001:db8:77::/48", "2001:db8:5::1", "v0", "", kMainTable, false, 0});
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  r = ns_->run([] { return addRoute({"default", "2001:db8:5::1", "v0", "", kVipTable, true, 0}); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  r = ns_->run([] { return addRoute({"default", "2001:db8:5::1", "v0", "", kVipTable, true, 0}); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto main = json(routes("-6 route show table main"));
  bool found = false;
  for (auto& x : main.GetArray()) {
    if (std::string(x["dst"].GetString()) == "2001:db8:77::/48") {
      found = true;
      EXPECT_STREQ(x["gateway"].GetString(), "2001:db8:5::1");
    }
  }
  EXPECT_TRUE(found);
  auto t1 = json(routes("-6 route show table 1"));
  int defaults = 0;
  for (auto& x : t1.GetArray()) defaults += std::string(x["dst"].GetString()) == "default";
  EXPECT_EQ(defaults, 1);
}

TEST_F(NetlinkTest, SourceRulesAreAddedOnceAndRemovedIdempotently) {
  for (int i = 0; i < 3; ++i) {
    auto r = ns_->run([] { return addRule({"203.0.113.5", kVipTable, 100}); });
    ASSERT_TRUE(r.ok()) << r.error().message;
    r = ns_->run([] { return addRule({"2001:db8:9::5", kVipTable, 100}); });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  auto rules = json(ns_->exec("ip -j rule show").out);
  int v4 = 0;
  for (auto& x : rules.GetArray()) {
    if (x.HasMember("src") && std::string(x["src"].GetString()) == "203.0.113.5") {
      ++v4;
      EXPECT_EQ(x["priority"].GetInt(), 100);
      EXPECT_STREQ(x["table"].GetString(), "1");
    }
  }
  EXPECT_EQ(v4, 1);
  auto rules6 = json(ns_->exec("ip -j -6 rule show").out);
  int v6 = 0;
  for (auto& x : rules6.GetArray()) {
    v6 += x.HasMember("src") && std::string(x["src"].GetString()) == "2001:db8:9::5";
  }
  EXPECT_EQ(v6, 1);
  for (int i = 0; i < 2; ++i) {
    auto r = ns_->run([] { return removeRule({"203.0.113.5", kVipTable, 100}); });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  EXPECT_EQ(ns_->exec("ip rule show").out.find("203.0.113.5"), std::string::npos);
}

TEST_F(NetlinkTest, VipNetworkGivesRepliesFromTheVipTheirOwnTable) {
  VipNetwork spec;
  spec.interface = "v0";
  spec.vip = "203.0.113.5";
  spec.subnet_cidr = "203.0.113.0/24";
  spec.gateway = "203.0.113.1";
  spec.host_routes = {{"198.51.100.0/24", "203.0.113.254"}};
  for (int i = 0; i < 2; ++i) {
    auto r = ns_->run([&] { return applyVipNetwork(spec); });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  EXPECT_TRUE(has(ipAddrs("v0"), "203.0.113.5", 32));
  // The kernel picks table 1 for traffic from the VIP: the route lookup says so.
  auto get = ns_->exec("ip -j route get 192.0.2.99 from 203.0.113.5");
  ASSERT_EQ(get.rc, 0) << get.out;
  auto g = json(get.out);
  EXPECT_STREQ(g[0]["gateway"].GetString(), "203.0.113.1");
  EXPECT_STREQ(g[0]["table"].GetString(), "1");
  auto t1 = routes("route show table 1");
  EXPECT_NE(t1.find("198.51.100.0/24"), std::string::npos) << t1;
  EXPECT_NE(t1.find("\"prefsrc\":\"203.0.113.5\""), std::string::npos) << t1;
  VipNetwork bad = spec;
  bad.vip = "192.0.2.5";
  auto r = ns_->run([&] { return applyVipNetwork(bad); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
}

// Announcements change what a neighbour has cached for the address: the peer
// starts with a wrong MAC for the amphora's addresses and must learn the real one.
class AnnounceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::sweepStaleNamespaces();
    amp_ = std::make_unique<Netns>("ann");
    peer_ = std::make_unique<Netns>("peer");
    testing::veth(*amp_, "eth1", *peer_, "eth0");
    ASSERT_EQ(
        amp_->exec(
                "ip addr add 192.0.2.5/24 dev eth1 && ip addr add 2001:db8:5::5/64 dev eth1 nodad")
            .rc,
        0);
    ASSERT_EQ(
        peer_
            ->exec(
                "ip addr add 192.0.2.9/24 dev eth0 && ip addr add 2001:db8:5::9/64 dev eth0 nodad")
            .rc,
        0);
    auto d = json(amp_->exec("ip -j link show dev eth1").out);
    ASSERT_TRUE(d.IsArray() && d.Size() == 1);
    mac_ = d[0]["address"].GetString();
  }
  void TearDown() override {
    peer_.reset();
    amp_.reset();
  }

  std::string peerMacFor(const std::string& ip) {
    auto d = json(peer_->exec("ip -j neigh show " + ip + " dev eth0").out);
    if (!d.IsArray() || d.Size() == 0 || !d[0].HasMember("lladdr")) return "";
    return d[0]["lladdr"].GetString();
  }

  void expectLearned(const std::string& ip) {
    auto r = peer_->exec("ip neigh replace " + ip + " lladdr 02:00:00:00:00:01 dev eth0 nud stale");
    ASSERT_EQ(r.rc, 0) << r.out;
    ASSERT_EQ(peerMacFor(ip), "02:00:00:00:00:01");
    auto a = amp_->run([&] { return announceAddress("eth1", ip); });
    ASSERT_TRUE(a.ok()) << a.error().message;
    std::string seen;
    for (int i = 0; i < 40 && (seen = peerMacFor(ip)) != mac_; ++i) usleep(50 * 1000);
    EXPECT_EQ(seen, mac_) << ip;
  }

  std::unique_ptr<Netns> amp_, peer_;
  std::string mac_;
};

TEST_F(AnnounceTest, GratuitousArpUpdatesTheNeighboursCachedMac) { expectLearned("192.0.2.5"); }

TEST_F(AnnounceTest, UnsolicitedNeighbourAdvertisementUpdatesTheNeighboursCachedMac) {
  expectLearned("2001:db8:5::5");
}

TEST_F(AnnounceTest, BadArgumentsAreRejected) {
  auto r = amp_->run([] { return announceAddress("nosuch0", "192.0.2.5"); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kNotFound);
  r = amp_->run([] { return announceAddress("eth1", "192.0.2"); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace banyan::agent::system
