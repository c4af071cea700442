// Unit tests of the drivers' pure parts (addresses, options, state files) and of the
// noop drivers. No namespaces here; netns_drivers_test.cc builds real ones.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "drivers/address.h"
#include "drivers/netns_options.h"
#include "drivers/netns_state.h"
#include "drivers/noop_compute.h"
#include "drivers/noop_network.h"
#include "fake_drivers.h"

namespace banyan::provider::drivers {
namespace {

using common::ErrorCode;

TEST(Cidr, ParsesIpv4AndIpv6PrefixesAndRejectsHostBits) {
  auto v4 = Cidr::parse("203.0.113.0/24");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->toString(), "203.0.113.0/24");
  EXPECT_EQ(v4->gateway().toString(), "203.0.113.1");
  EXPECT_EQ(v4->last().toString(), "203.0.113.255");
  auto v6 = Cidr::parse("2001:db8:1::/64");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->gateway().toString(), "2001:db8:1::1");
  EXPECT_EQ(v6->last().toString(), "2001:db8:1:0:ffff:ffff:ffff:ffff");
  EXPECT_FALSE(Cidr::parse("203.0.113.1/24").ok());
  EXPECT_FALSE(Cidr::parse("203.0.113.0").ok());
  EXPECT_FALSE(Cidr::parse("203.0.113.0/33").ok());
  EXPECT_FALSE(Cidr::parse("203.0.113.0/2x").ok());
  EXPECT_FALSE(Cidr::parse("banyan/24").ok());
  EXPECT_FALSE(Cidr::parse("2001:db8::1/64").ok());
}

TEST(Cidr, ContainsAndOverlapsFollowThePrefix) {
  auto net = Cidr::parse("198.51.100.0/25").value();
  EXPECT_TRUE(net.contains(*IpAddress::parse("198.51.100.127")));
  EXPECT_FALSE(net.contains(*IpAddress::parse("198.51.100.128")));
  EXPECT_FALSE(net.contains(*IpAddress::parse("2001:db8::1")));
  EXPECT_TRUE(net.overlaps(Cidr::parse("198.51.100.64/26").value()));
  EXPECT_TRUE(net.overlaps(Cidr::parse("198.51.0.0/16").value()));
  EXPECT_FALSE(net.overlaps(Cidr::parse("198.51.100.128/25").value()));
}

TEST(AllocationPool, SkipsNetworkGatewayAndBroadcast) {
  auto pool = AllocationPool::forCidr(Cidr::parse("203.0.113.248/29").value());
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ(pool->start.toString(), "203.0.113.250");
  EXPECT_EQ(pool->end.toString(), "203.0.113.254");
  EXPECT_EQ(pool->size(), 5u);
  EXPECT_FALSE(AllocationPool::forCidr(Cidr::parse("203.0.113.252/31").value()).ok());
}

TEST(AllocationPool, CapsHugeIpv6Subnets) {
  auto pool = AllocationPool::forCidr(Cidr::parse("2001:db8::/64").value());
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ(pool->start.toString(), "2001:db8::2");
  EXPECT_EQ(pool->size(), AllocationPool::kMaxPoolSize);
  auto small = AllocationPool::forCidr(Cidr::parse("2001:db8::/126").value());
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->end.toString(), "2001:db8::3");
}

TEST(NetnsOptions, NetworkSpecTakesIdBridgeAndCidrWithColonsInIpv6) {
  auto v6 = parseNetworkSpec("11111111-2222-4333-8444-555555555555:br-v6:2001:db8:5::/64", "x");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->bridge, "br-v6");
  EXPECT_EQ(v6->cidr.toString(), "2001:db8:5::/64");
  auto defaulted = parseNetworkSpec("abc::203.0.113.0/24", "bny-vip0");
  ASSERT_TRUE(defaulted.ok());
  EXPECT_EQ(defaulted->bridge, "bny-vip0");
  EXPECT_FALSE(parseNetworkSpec("abc:203.0.113.0/24", "x").ok());
  EXPECT_FALSE(parseNetworkSpec("abc:a-bridge-name-too-long:203.0.113.0/24", "x").ok());
  EXPECT_FALSE(parseNetworkSpec("a b:br:203.0.113.0/24", "x").ok());
}

TEST(NetnsOptions, DefaultsAreValidAndNameTheDocumentationRanges) {
  auto config = validateNetnsOptions(NetnsOptions{});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->management.bridge, "bny-mgmt");
  EXPECT_EQ(config->management.cidr.toString(), "198.51.100.128/25");
  ASSERT_EQ(config->vip_networks.size(), 1u);
  EXPECT_EQ(config->vip_networks[0].bridge, "bny-vip0");
  EXPECT_EQ(config->vip_networks[0].cidr.toString(), "203.0.113.0/24");
  ASSERT_EQ(config->member_networks.size(), 1u);
  EXPECT_EQ(config->member_networks[0].bridge, "bny-mem0");
  EXPECT_EQ(config->member_networks[0].id, kDefaultMemberNetworkId);
}

TEST(NetnsOptions, OverlappingSubnetsAndBadPrefixesAreRefused) {
  NetnsOptions o;
  o.member_networks = {"m1::203.0.113.128/25"};  // inside the default VIP network
  auto overlap = validateNetnsOptions(o);
  ASSERT_FALSE(overlap.ok());
  EXPECT_NE(overlap.error().message.find("overlap"), std::string::npos);
  NetnsOptions p;
  p.name_prefix = "much-too-long-prefix";
  EXPECT_FALSE(validateNetnsOptions(p).ok());
  NetnsOptions q;
  q.state_dir = "relative/dir";
  EXPECT_FALSE(validateNetnsOptions(q).ok());
  NetnsOptions r;
  r.vip_networks = {"same::203.0.113.0/25", "same::203.0.113.128/25"};
  EXPECT_FALSE(validateNetnsOptions(r).ok());
}

TEST(NetnsOptions, DeclaredOptionsReadBackFromAnIniFile) {
  common::OptionSet set;
  declareNetnsOptions(set);
  ASSERT_TRUE(set.loadText("[netns]\nname_prefix = lab\nmanagement_cidr = 198.51.100.0/26\n"
                           "vip_networks = v1::203.0.113.0/26,v2:vipb:203.0.113.64/26\n"
                           "member_networks = m1::198.51.100.128/25\nhealth_port = 9443\n",
                           "provider.conf")
                  .ok());
  auto options = netnsOptionsFrom(set);
  ASSERT_TRUE(options.ok()) << options.error().message;
  EXPECT_EQ(options->name_prefix, "lab");
  ASSERT_EQ(options->vip_networks.size(), 2u);
  EXPECT_EQ(options->vip_networks[1], "v2:vipb:203.0.113.64/26");
  EXPECT_EQ(options->health_port, 9443);
  EXPECT_EQ(options->agent_args, (std::vector<std::string>{"--config-file", "{config}"}));
  EXPECT_NE(set.sampleConfig().find("vip_networks"), std::string::npos);
}

TEST(NetnsState, ComputeAndNetworkStateRoundTripThroughJson) {
  ComputeState c;
  c.amphorae.push_back(
      {"bny-amp-0011aabb", "amp-1", "lb-1", "192.0.2.2", "bny0011aabbe0", "/d", 4242, 987654321});
  c.bridges = {"bny-mgmt"};
  auto c2 = computeStateFromJson(toJson(c));
  ASSERT_TRUE(c2.ok());
  ASSERT_EQ(c2->amphorae.size(), 1u);
  EXPECT_EQ(c2->amphorae[0].pid, 4242);
  EXPECT_EQ(c2->amphorae[0].pid_start_time, 987654321u);
  EXPECT_EQ(c2->amphorae[0].host_veth, "bny0011aabbe0");
  EXPECT_EQ(c2->bridges, c.bridges);

  NetworkState n;
  PortRecord r;
  r.port = {"p1", "net", "net", "203.0.113.5", "vrrp", "bny-amp-0011aabb", "vipport", "eth1"};
  r.host_veth = "bny0011aabbe1";
  r.mac_address = "02:00:00:00:00:01";
  n.ports.push_back(r);
  auto n2 = networkStateFromJson(toJson(n));
  ASSERT_TRUE(n2.ok());
  ASSERT_EQ(n2->ports.size(), 1u);
  EXPECT_EQ(n2->ports[0].port.vip_port_id, "vipport");
  EXPECT_EQ(n2->ports[0].mac_address, "02:00:00:00:00:01");
}

TEST(NetnsState, DamagedFilesAreErrorsNotCrashes) {
  EXPECT_FALSE(computeStateFromJson("{").ok());
  EXPECT_FALSE(computeStateFromJson("[]").ok());
  EXPECT_FALSE(computeStateFromJson(R"({"amphorae":{}})").ok());
  EXPECT_FALSE(computeStateFromJson(R"({"amphorae":[{"compute_id":1}]})").ok());
  EXPECT_FALSE(computeStateFromJson(R"({"amphorae":[{"compute_id":"x","pid":"1"}]})").ok());
  EXPECT_FALSE(networkStateFromJson(R"({"ports":[{"address":"1.2.3.4"}]})").ok());
  EXPECT_TRUE(networkStateFromJson("").ok());  // no file yet
}

TEST(NetnsState, StateFileWritesAtomicallyAndReadsBack) {
  char tmpl[] = "/tmp/banyan-state-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  {
    StateFile file(dir + "/s.json", true);
    auto guard = file.lock();
    ASSERT_TRUE(guard.ok());
    auto empty = file.read(*guard);
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(*empty, "");
    ASSERT_TRUE(file.write(*guard, "{\"a\":1}").ok());
    EXPECT_EQ(file.read(*guard).value(), "{\"a\":1}");
    EXPECT_FALSE(std::filesystem::exists(dir + "/s.json.tmp"));
    EXPECT_EQ(std::filesystem::status(dir + "/s.json").permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  std::filesystem::remove_all(dir);
}

TEST(NoopNetworkDriver, AllocatesDistinctVipsAndHonoursRequests) {
  auto net = parseNetworkSpec("v1::203.0.113.248/29", "x");
  ASSERT_TRUE(net.ok());
  NoopNetworkDriver driver({*net});
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    auto vip = driver.allocateVip("lb" + std::to_string(i), "v1", "");
    ASSERT_TRUE(vip.ok());
    EXPECT_TRUE(seen.insert(vip->address).second);
    // A flow that runs again asks again: the load balancer keeps its VIP.
    auto again = driver.allocateVip("lb" + std::to_string(i), "v1", "");
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->address, vip->address);
    EXPECT_EQ(again->port_id, vip->port_id);
  }
  auto requested = driver.allocateVip("lb-r", "v1", "203.0.113.254");
  ASSERT_TRUE(requested.ok());
  EXPECT_EQ(requested->address, "203.0.113.254");
  auto taken = driver.allocateVip("lb-t", "v1", "203.0.113.254");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, ErrorCode::kConflict);
  auto full = driver.allocateVip("lb-f", "v1", "");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE(driver.deallocateVip(*requested).ok());
  EXPECT_TRUE(driver.allocateVip("lb", "v1", "").ok());
  // Unknown subnets get a made-up one, as Octavia's noop driver answers anything.
  auto other = driver.subnet("00000000-0000-4000-8000-000000000001");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->cidr, "203.0.113.0/24");
}

TEST(NoopNetworkDriver, PlugsGiveEachAmphoraItsOwnInterfaces) {
  NoopNetworkDriver driver;
  auto vip = driver.allocateVip("lb", "s1", "");
  ASSERT_TRUE(vip.ok());
  auto a = driver.plugVip("amp-a", *vip);
  auto b = driver.plugVip("amp-b", *vip);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->address, b->address);
  EXPECT_EQ(a->interface, "eth1");
  auto m = driver.plugNetwork("amp-a", "s2");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->interface, "eth2");
  EXPECT_EQ(driver.pluggedInterfaces("amp-a")->size(), 2u);
  ASSERT_TRUE(driver.deallocateVip(*vip).ok());
  EXPECT_EQ(driver.pluggedInterfaces("amp-a")->size(), 1u);  // the VRRP port went with the VIP
  ASSERT_TRUE(driver.unplugAll("amp-a").ok());
  EXPECT_TRUE(driver.listPorts()->empty());
}

TEST(NoopComputeDriver, BuildsActiveAmphoraeWithDistinctAddressesAndForgetsRemovedOnes) {
  NoopComputeDriver driver("192.0.2.0/29");
  std::set<std::string> addresses;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto instance = driver.build({"amp-" + std::to_string(i), "lb", "", {}, {}});
    ASSERT_TRUE(instance.ok());
    EXPECT_EQ(instance->status, ComputeStatus::kActive);
    EXPECT_TRUE(addresses.insert(instance->lb_network_ip).second);
    ids.push_back(instance->compute_id);
  }
  EXPECT_FALSE(driver.build({"amp-6", "lb", "", {}, {}}).ok());  // a /29 holds five
  ASSERT_TRUE(driver.remove(ids[0]).ok());
  ASSERT_TRUE(driver.remove(ids[0]).ok());  // idempotent
  EXPECT_EQ(driver.status(ids[0]).value(), ComputeStatus::kDeleted);
  EXPECT_EQ(driver.list()->size(), 4u);
  // The pool is full but for the freed address: the search wraps around to it.
  auto again = driver.build({"amp-6", "lb", "", {}, {}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->lb_network_ip, "192.0.2.2");  // .1 is the subnet's gateway
}

TEST(NoopComputeDriver, ADeletedAmphorasAddressIsNotTheNextOnes) {
  NoopComputeDriver driver("192.0.2.0/28");
  auto a = driver.build({"amp-a", "lb", "", {}, {}});
  auto b = driver.build({"amp-b", "lb", "", {}, {}});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(driver.remove(a->compute_id).ok());
  auto c = driver.build({"amp-c", "lb", "", {}, {}});
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->lb_network_ip, a->lb_network_ip);
  EXPECT_NE(c->lb_network_ip, b->lb_network_ip);
  EXPECT_EQ(c->lb_network_ip, "192.0.2.4");  // after .2 and .3 (.1 is the gateway)
}

}  // namespace
}  // namespace banyan::provider::drivers

namespace banyan::provider::drivers {
namespace {

// The fakes other modules' unit tests use: scripted failures must reach the caller once.

TEST(FakeComputeDriver, AScriptedFailureHitsTheNextBuildOnlyAndCallsAreCounted) {
  FakeComputeDriver compute;
  compute.script().failNext("build", common::makeError(ErrorCode::kUnavailable, "quota exceeded"));
  auto refused = compute.build({"amp-1", "lb", "", {}, {}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "quota exceeded");
  auto built = compute.build({"amp-1", "lb", "", {}, {}});
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(compute.script().calls("build"), 2);
  compute.setStatus(built->compute_id, ComputeStatus::kError);
  EXPECT_EQ(compute.status(built->compute_id).value(), ComputeStatus::kError);
  ASSERT_TRUE(compute.remove(built->compute_id).ok());
  EXPECT_EQ(compute.status(built->compute_id).value(), ComputeStatus::kDeleted);
}

TEST(FakeNetworkDriver, AScriptedPlugFailureLeavesTheVipAllocated) {
  FakeNetworkDriver network;
  auto vip = network.allocateVip("lb", "s", "");
  ASSERT_TRUE(vip.ok());
  network.script().failNext("plugVip",
                            common::makeError(ErrorCode::kUnavailable, "port create timed out"));
  EXPECT_FALSE(network.plugVip("amp", *vip).ok());
  EXPECT_TRUE(network.plugVip("amp", *vip).ok());
  EXPECT_EQ(network.listPorts()->size(), 2u);
  EXPECT_EQ(network.script().calls("plugVip"), 2);
}

}  // namespace
}  // namespace banyan::provider::drivers

namespace banyan::provider::drivers {
namespace {

TEST(NetnsOptions, RelativeProgramPathsAreRefused) {
  NetnsOptions options;
  options.agent_binary = "build/amphora-agent/src/app/banyan-agent";
  auto config = validateNetnsOptions(options);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().context, "[netns] agent_binary");
  options = NetnsOptions{};
  options.proxy_binary = "banyan-proxy";
  config = validateNetnsOptions(options);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().context, "[netns] proxy_binary");
}

}  // namespace
}  // namespace banyan::provider::drivers
