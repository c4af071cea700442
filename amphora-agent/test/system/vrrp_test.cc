// Two amphorae with real keepalived, in namespaces this test creates:
//
//   amp1 eth1 203.0.113.11 ─┐
//   amp2 eth1 203.0.113.12 ─┼─ br0 (namespace "br")      VIP 203.0.113.10
//   client eth0 203.0.113.100 ┘
//
// Both amphorae have a listening socket on VIP:8080 (IP_FREEBIND), so a TCP
// connect to the VIP succeeds exactly when some amphora holds the VIP.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "netns.h"
#include "sockets.h"
#include "system/firewall.h"
#include "system/keepalived.h"

namespace banyan::agent::system {
namespace {

using Clock = std::chrono::steady_clock;
using testing::ConnectOutcome;
using testing::Netns;

constexpr const char* kVip = "203.0.113.10";
constexpr uint16_t kPort = 8080;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class VrrpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::sweepStaleNamespaces();
    auto v = testing::sh("keepalived --version");
    ASSERT_EQ(v.rc, 0) << "keepalived is not installed: " << v.out;
    char tmpl[] = "/tmp/bnysys-vrrp-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    br_ = std::make_unique<Netns>("br");
    amp1_ = std::make_unique<Netns>("a1");
    amp2_ = std::make_unique<Netns>("a2");
    client_ = std::make_unique<Netns>("cl");
    ASSERT_EQ(br_->exec("ip link add br0 type bridge && ip link set br0 up").rc, 0);
    testing::veth(*br_, "p1", *amp1_, "eth1");
    testing::veth(*br_, "p2", *amp2_, "eth1");
    testing::veth(*br_, "pc", *client_, "eth0");
    ASSERT_EQ(br_->exec("ip link set p1 master br0 && ip link set p2 master br0 && ip link set pc "
                        "master br0")
                  .rc,
              0);
    ASSERT_EQ(amp1_->exec("ip addr add 203.0.113.11/24 dev eth1").rc, 0);
    ASSERT_EQ(amp2_->exec("ip addr add 203.0.113.12/24 dev eth1").rc, 0);
    ASSERT_EQ(client_->exec("ip addr add 203.0.113.100/24 dev eth0").rc, 0);
    listen1_ = amp1_->run([] { return testing::listenTcp(kVip, kPort); });
    listen2_ = amp2_->run([] { return testing::listenTcp(kVip, kPort); });
    ASSERT_GE(listen1_, 0);
    ASSERT_GE(listen2_, 0);
    ka1_ = std::make_unique<Keepalived>(tmp_ + "/amp1");
    ka2_ = std::make_unique<Keepalived>(tmp_ + "/amp2");
    // The check passes while its file exists: removing it simulates the proxy stopping.
    healthy1_ = tmp_ + "/amp1-healthy";
    healthy2_ = tmp_ + "/amp2-healthy";
    ASSERT_EQ(testing::sh("touch " + healthy1_ + " " + healthy2_).rc, 0);
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const char* amp : {"amp1", "amp2"}) {
        std::string log = slurp(tmp_ + "/" + amp + "/keepalived.log");
        if (log.size() > 6000) log = log.substr(log.size() - 6000);
        printf("---- %s keepalived.log (tail) ----\n%s\n", amp, log.c_str());
      }
    }
    // stop() signals only the PID this test's Keepalived objects started.
    for (auto* ka : {ka1_.get(), ka2_.get()}) {
      if (ka != nullptr) {
        EXPECT_TRUE(ka->stop().ok());
      }
    }
    if (listen1_ >= 0) close(listen1_);
    if (listen2_ >= 0) close(listen2_);
    client_.reset();
    amp2_.reset();
    amp1_.reset();
    br_.reset();
    if (!tmp_.empty()) testing::sh("rm -rf " + tmp_);
  }

  VrrpConfig config(int amp) {
    VrrpConfig c;
    c.instance_name = "bnytest";
    c.interface = "eth1";
    c.vip = kVip;
    c.vip_prefix = 32;
    c.virtual_router_id = 51;
    c.priority = amp == 1 ? 100 : 90;
    c.advert_interval_s = 1;
    c.local_address = amp == 1 ? "203.0.113.11" : "203.0.113.12";
    c.peer_addresses = {amp == 1 ? "203.0.113.12" : "203.0.113.11"};
    c.auth_pass = "bny7e5t";
    c.check_command = "/usr/bin/test -e " + (amp == 1 ? healthy1_ : healthy2_);
    c.check_interval_s = 1;
    c.check_fall = 1;
    c.check_rise = 1;
    c.garp_master_delay_s = 0;
    return c;
  }

  // Polls (bounded) until the predicate holds; false on timeout.
  template <typename F>
  static bool waitFor(F pred, std::chrono::milliseconds limit) {
    auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pred();
  }

  bool holdsVip(const Netns& ns) {
    auto r = ns.exec("ip -j addr show dev eth1");
    rapidjson::Document d;
    d.Parse(r.out.c_str());
    if (d.HasParseError() || !d.IsArray()) return false;
    for (auto& link : d.GetArray()) {
      for (auto& a : link["addr_info"].GetArray()) {
        if (std::string(a["local"].GetString()) == kVip) return true;
      }
    }
    return false;
  }

  void startPair() {
    auto r = amp1_->run([&] { return ka1_->apply(config(1)); });
    ASSERT_TRUE(r.ok()) << r.error().message;
    // amp1 becomes MASTER before amp2 starts: with nopreempt, whoever is MASTER first stays.
    ASSERT_TRUE(
        waitFor([&] { return ka1_->state() == VrrpState::kMaster; }, std::chrono::seconds(15)))
        << "amp1 state " << toString(ka1_->state());
    r = amp2_->run([&] { return ka2_->apply(config(2)); });
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE(
        waitFor([&] { return ka2_->state() == VrrpState::kBackup; }, std::chrono::seconds(15)))
        << "amp2 state " << toString(ka2_->state());
  }

  std::string tmp_, healthy1_, healthy2_;
  std::unique_ptr<Netns> br_, amp1_, amp2_, client_;
  std::unique_ptr<Keepalived> ka1_, ka2_;
  int listen1_ = -1, listen2_ = -1;
};

TEST_F(VrrpTest, TheMasterHoldsTheVipAndTheClientReachesIt) {
  startPair();
  if (HasFatalFailure()) return;
  EXPECT_EQ(slurp(ka1_->statePath()), "MASTER\n");
  EXPECT_TRUE(holdsVip(*amp1_));
  EXPECT_FALSE(holdsVip(*amp2_));
  auto out = client_->run([] { return testing::tcpConnect(kVip, kPort, 3000); });
  EXPECT_EQ(out, ConnectOutcome::kConnected) << testing::toString(out);
  EXPECT_EQ(testing::drainAccepts(listen1_), 1);
  EXPECT_EQ(testing::drainAccepts(listen2_), 0);
}

TEST_F(VrrpTest, AFailingCheckOnTheMasterMovesTheVipAndClientsKeepConnecting) {
  startPair();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(holdsVip(*amp1_));

  // A bounded client loop: one connect every 20 ms with a 100 ms timeout, for
  // at most 30 s or until told to stop.
  struct Attempt {
    Clock::time_point at;
    bool ok;
  };
  std::vector<Attempt> attempts;
  std::atomic<bool> stop{false};
  std::thread loop([&] {
    client_->run([&] {
      auto end = Clock::now() + std::chrono::seconds(30);
      for (int i = 0; i < 5000 && !stop && Clock::now() < end; ++i) {
        auto t = Clock::now();
        bool ok = testing::tcpConnect(kVip, kPort, 100) == ConnectOutcome::kConnected;
        attempts.push_back({t, ok});
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(unlink(healthy1_.c_str()), 0);  // amp1's proxy "stops"
  bool moved =
      waitFor([&] { return ka2_->state() == VrrpState::kMaster; }, std::chrono::seconds(15));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop = true;
  loop.join();

  ASSERT_TRUE(moved) << "amp2 state " << toString(ka2_->state());
  EXPECT_EQ(ka1_->state(), VrrpState::kFault);
  EXPECT_EQ(slurp(ka2_->statePath()), "MASTER\n");
  EXPECT_TRUE(holdsVip(*amp2_));
  EXPECT_FALSE(holdsVip(*amp1_));
  EXPECT_GT(testing::drainAccepts(listen2_), 0) << "no connection reached amp2";

  ASSERT_GE(attempts.size(), 10u);
  EXPECT_TRUE(attempts.front().ok);
  // The last second of attempts all succeed: clients are served by amp2.
  size_t tail_ok = 0;
  for (auto it = attempts.rbegin(); it != attempts.rend() && it->ok; ++it) ++tail_ok;
  EXPECT_GE(tail_ok, 20u);
  // The gap: the longest time between two successful connects.
  int64_t gap_ms = 0;
  Clock::time_point last_ok = attempts.front().at;
  size_t failures = 0;
  for (const auto& a : attempts) {
    if (!a.ok) {
      ++failures;
      continue;
    }
    gap_ms = std::max<int64_t>(
        gap_ms, std::chrono::duration_cast<std::chrono::milliseconds>(a.at - last_ok).count());
    last_ok = a.at;
  }
  printf("VRRP failover: %zu connect attempts, %zu failed, longest gap between successes %lld ms\n",
         attempts.size(), failures, static_cast<long long>(gap_ms));
  RecordProperty("failover_gap_ms", std::to_string(gap_ms));
  EXPECT_LT(gap_ms, 8000);
}

TEST_F(VrrpTest, ReapplyingTheSameConfigIsANoOpAndAChangeReloadsTheSameProcess) {
  startPair();
  if (HasFatalFailure()) return;
  pid_t pid = ka1_->pid();
  ASSERT_GT(pid, 0);
  std::string before = slurp(ka1_->configPath());
  ASSERT_TRUE(amp1_->run([&] { return ka1_->apply(config(1)); }).ok());
  EXPECT_EQ(ka1_->pid(), pid);
  EXPECT_EQ(slurp(ka1_->configPath()), before);

  VrrpConfig c = config(1);
  c.priority = 110;
  auto r = amp1_->run([&] { return ka1_->apply(c); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ka1_->pid(), pid);
  EXPECT_NE(slurp(ka1_->configPath()).find("priority 110"), std::string::npos);
  // Still the MASTER after the reload (SIGHUP), and still holding the VIP.
  EXPECT_TRUE(waitFor([&] { return ka1_->state() == VrrpState::kMaster && holdsVip(*amp1_); },
                      std::chrono::seconds(10)));
  EXPECT_NE(slurp(tmp_ + "/amp1/keepalived.log").find("Reloading"), std::string::npos);
}

TEST_F(VrrpTest, AConfigKeepalivedRejectsIsKeptAsideAndTheRunningOneStays) {
  startPair();
  if (HasFatalFailure()) return;
  std::string before = slurp(ka1_->configPath());
  VrrpConfig c = config(1);
  c.interface = "nosuch0";  // valid syntax, but no such interface in this namespace
  auto r = amp1_->run([&] { return ka1_->apply(c); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("nosuch0"), std::string::npos) << r.error().message;
  EXPECT_EQ(slurp(ka1_->configPath()), before);
  EXPECT_NE(slurp(ka1_->configPath() + ".rejected").find("nosuch0"), std::string::npos);
  EXPECT_EQ(ka1_->state(), VrrpState::kMaster);
}

TEST_F(VrrpTest, StopReleasesTheVipAndTheBackupTakesOver) {
  startPair();
  if (HasFatalFailure()) return;
  pid_t pid = ka1_->pid();
  ASSERT_TRUE(ka1_->stop().ok());
  EXPECT_FALSE(ka1_->running());
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_EQ(ka1_->state(), VrrpState::kUnknown);
  EXPECT_FALSE(holdsVip(*amp1_));
  EXPECT_TRUE(waitFor([&] { return ka2_->state() == VrrpState::kMaster && holdsVip(*amp2_); },
                      std::chrono::seconds(10)));
  ASSERT_TRUE(ka1_->stop().ok());  // idempotent
}

TEST_F(VrrpTest, ANewManagerOnTheSameDirectoryAdoptsTheRunningKeepalived) {
  startPair();
  if (HasFatalFailure()) return;
  pid_t pid = ka1_->pid();
  Keepalived again(tmp_ + "/amp1");
  auto r = amp1_->run([&] { return again.apply(config(1)); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(again.pid(), pid);
  EXPECT_EQ(again.state(), VrrpState::kMaster);
}

// The firewall and keepalived in the same namespace, as on an amphora: VRRP
// passes from the peers (their addresses on the VIP network, as the agent passes
// PUT /1.0/vrrp's peer_addresses) and the management network, which is elsewhere.
FirewallSpec amphoraFirewall(const std::string& peer) {
  FirewallSpec s;
  s.vips = {kVip};
  s.listeners = {{kVip, kPort, "tcp", {"203.0.113.100/32"}}};
  s.management_cidrs = {"192.0.2.0/24"};
  s.vrrp_peers = {peer};
  return s;
}

TEST_F(VrrpTest, WithTheFirewallVrrpFromThePeerPassesAndTheClientIsServed) {
  ASSERT_TRUE(amp1_->run([] { return applyFirewall(amphoraFirewall("203.0.113.12")); }).ok());
  ASSERT_TRUE(amp2_->run([] { return applyFirewall(amphoraFirewall("203.0.113.11")); }).ok());
  startPair();
  if (HasFatalFailure()) return;
  // amp2 hears amp1's adverts through its firewall, so it stays BACKUP.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  EXPECT_EQ(ka2_->state(), VrrpState::kBackup);
  EXPECT_FALSE(holdsVip(*amp2_));
  auto out = client_->run([] { return testing::tcpConnect(kVip, kPort, 3000); });
  EXPECT_EQ(out, ConnectOutcome::kConnected) << testing::toString(out);
}

TEST_F(VrrpTest, AFirewallThatDropsThePeersAdvertsMakesTheBackupTakeOver) {
  startPair();
  if (HasFatalFailure()) return;
  // amp2 no longer accepts VRRP from amp1: after the master-down interval it
  // believes the master is gone. This shows the VRRP rule filters real adverts.
  ASSERT_TRUE(amp2_->run([] { return applyFirewall(amphoraFirewall("198.51.100.99")); }).ok());
  EXPECT_TRUE(
      waitFor([&] { return ka2_->state() == VrrpState::kMaster; }, std::chrono::seconds(10)))
      << "amp2 state " << toString(ka2_->state());
  auto drops = amp2_->exec("nft list chain inet banyan mgmt_only").out;
  EXPECT_EQ(drops.find("counter packets 0 "), std::string::npos) << drops;
}

}  // namespace
}  // namespace banyan::agent::system
