// KernelSystemOps in a network namespace this test creates (and always deletes): the
// plug requests configure a dummy NIC found by its MAC, as on an amphora.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "support/test_env.h"
#include "system_link/kernel_system_ops.h"

namespace banyan::agent::system_link {
namespace {

using testing::runCommand;

constexpr char kMac[] = "fa:16:3e:00:12:34";

class KernelSystemOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = "bnyagt-" + std::to_string(::getpid());
    runCommand({"/usr/sbin/ip", "netns", "del", ns_});
    auto add = runCommand({"/usr/sbin/ip", "netns", "add", ns_});
    ASSERT_EQ(add.exit_code, 0) << add.err;
    // A veth pair stands in for the hot-plugged NIC (this kernel has no dummy links).
    auto link = ip({"link", "add", "eth9", "address", kMac, "type", "veth", "peer", "name", "eth8"});
    ASSERT_EQ(link.exit_code, 0) << link.err;
  }
  void TearDown() override { runCommand({"/usr/sbin/ip", "netns", "del", ns_}); }

  testing::ProcResult ip(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/sbin/ip", "-n", ns_};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  }

  // Runs FN on a thread that entered the namespace, as the agent runs inside the
  // amphora's namespace.
  void inNamespace(const std::function<void()>& fn) {
    std::thread t([&] {
      int fd = ::open(("/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::setns(fd, CLONE_NEWNET), 0);
      ::close(fd);
      fn();
    });
    t.join();
  }

  std::string ns_;
  testing::TempDir tmp_;
};

TEST_F(KernelSystemOpsTest, PlugVipConfiguresTheNicWithTheVipAndItsPolicyRoute) {
  KernelSystemOps ops({.runtime_dir = tmp_.path()});
  api::VipPlug plug;
  plug.vip = "203.0.113.10";
  plug.subnet_cidr = "203.0.113.0/24";
  plug.gateway = "203.0.113.1";
  plug.mac_address = kMac;
  plug.mtu = 1450;
  inNamespace([&] {
    auto r = ops.plugVip(plug);
    ASSERT_TRUE(r.ok()) << r.error().message << " " << r.error().context;
    EXPECT_EQ(r.value(), "eth9");
    // Repeating the request is harmless (the controller retries).
    auto again = ops.plugVip(plug);
    EXPECT_TRUE(again.ok()) << again.error().message;
  });
  auto addr = ip({"-j", "addr", "show", "dev", "eth9"});
  EXPECT_NE(addr.out.find("\"203.0.113.10\""), std::string::npos) << addr.out;
  EXPECT_NE(addr.out.find("\"mtu\":1450"), std::string::npos) << addr.out;
  auto rules = ip({"rule", "show"});
  EXPECT_NE(rules.out.find("from 203.0.113.10 lookup 1"), std::string::npos) << rules.out;
  auto routes = ip({"route", "show", "table", "1"});
  EXPECT_NE(routes.out.find("default via 203.0.113.1"), std::string::npos) << routes.out;
}

TEST_F(KernelSystemOpsTest, PlugWithAnUnknownMacIsNotFoundInOctaviasWords) {
  KernelSystemOps ops({.runtime_dir = tmp_.path()});
  api::NetworkPlug plug;
  plug.mac_address = "fa:16:3e:99:99:99";
  inNamespace([&] {
    auto r = ops.plugNetwork(plug);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, common::ErrorCode::kNotFound);
    EXPECT_EQ(r.error().message, "No suitable network interface found");
  });
}

TEST_F(KernelSystemOpsTest, PlugNetworkAddsTheFixedIps) {
  KernelSystemOps ops({.runtime_dir = tmp_.path()});
  api::NetworkPlug plug;
  plug.mac_address = kMac;
  plug.fixed_ips.push_back({"198.51.100.7", "198.51.100.0/24", "", {}});
  plug.fixed_ips.push_back({"2001:db8::7", "2001:db8::/64", "", {}});
  inNamespace([&] {
    auto r = ops.plugNetwork(plug);
    ASSERT_TRUE(r.ok()) << r.error().message << " " << r.error().context;
  });
  auto addr = ip({"-j", "addr", "show", "dev", "eth9"});
  EXPECT_NE(addr.out.find("\"198.51.100.7\""), std::string::npos) << addr.out;
  EXPECT_NE(addr.out.find("\"2001:db8::7\""), std::string::npos) << addr.out;
}

TEST_F(KernelSystemOpsTest, ReportsTheInstalledKeepalivedVersion) {
  KernelSystemOps ops({.runtime_dir = tmp_.path()});
  std::string v = ops.keepalivedVersion();
  EXPECT_FALSE(v.empty());
  EXPECT_NE(v.find('.'), std::string::npos) << v;
}

}  // namespace
}  // namespace banyan::agent::system_link
