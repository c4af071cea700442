// ProxySupervisor with the real banyan-proxy: start, restart after a crash, attach
// to a proxy someone else started, take over when that one goes away.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "supervisor/supervisor.h"
#include "support/test_env.h"
#include "support/test_pki.h"

namespace banyan::agent::supervisor {
namespace {

constexpr char kEmpty[] = R"({"generation": 0, "settings": {"workers": 1}, "listeners": [], "pools": []})";

template <typename Pred>
bool within(int ms, Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

class Supervisor : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = tmp_.path() + "/proxy.json";
    socket_ = tmp_.path() + "/proxy.sock";
    testing::writeTestFile(config_, kEmpty);
  }
  void TearDown() override {
    if (own_proxy_ > 0) {
      ::kill(own_proxy_, SIGKILL);
      ::waitpid(own_proxy_, nullptr, 0);
    }
  }
  SupervisorOptions options() const {
    return SupervisorOptions{.proxy_binary = testing::proxyBinary(),
                             .config_path = config_,
                             .control_socket = socket_,
                             .pid_file = tmp_.path() + "/proxy.pid",
                             .check_interval_ms = 50,
                             .restart_backoff_min_ms = 20};
  }
  // A proxy this test starts itself, as if it had outlived a previous agent.
  void startOwnProxy() {
    own_proxy_ = ::fork();
    if (own_proxy_ == 0) {
      std::string bin = testing::proxyBinary();
      ::execl(bin.c_str(), bin.c_str(), "--config", config_.c_str(), "--control", socket_.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ASSERT_TRUE(within(10000, [&] { return control_.alive(); }));
  }
  bool alive(pid_t pid) const {
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    return ::kill(pid, 0) == 0;
  }

  testing::TempDir tmp_;
  std::string config_, socket_;
  proxy_control::ProxyControl control_{tmp_.path() + "/proxy.sock", 2000};
  pid_t own_proxy_ = 0;
};

TEST_F(Supervisor, StartsTheProxyAndRestartsItWhenItDies) {
  ProxySupervisor sup(options(), control_);
  ASSERT_TRUE(sup.start().ok());
  EXPECT_FALSE(sup.attached());
  pid_t first = sup.childPid();
  ASSERT_GT(first, 0);
  EXPECT_TRUE(control_.alive());
  EXPECT_EQ(testing::readTestFile(tmp_.path() + "/proxy.pid"), std::to_string(first) + "\n");
  uint64_t epoch = sup.epoch();

  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(within(10000, [&] { return sup.childPid() > 0 && sup.childPid() != first && control_.alive(); }));
  EXPECT_EQ(sup.restarts(), 1);
  EXPECT_NE(sup.epoch(), epoch);

  pid_t second = sup.childPid();
  sup.stop(true);
  EXPECT_EQ(sup.childPid(), 0);
  EXPECT_NE(::kill(second, 0), 0) << "the proxy was stopped and reaped";
}

TEST_F(Supervisor, AttachesToARunningProxyAndLeavesItRunning) {
  startOwnProxy();
  {
    ProxySupervisor sup(options(), control_);
    ASSERT_TRUE(sup.start().ok());
    EXPECT_TRUE(sup.attached());
    EXPECT_EQ(sup.childPid(), 0);
    sup.stop(true);
  }
  EXPECT_TRUE(alive(own_proxy_)) << "an attached proxy is never signalled";
  EXPECT_TRUE(control_.alive());
}

TEST_F(Supervisor, StartsItsOwnWhenTheAttachedProxyGoesAway) {
  startOwnProxy();
  ProxySupervisor sup(options(), control_);
  ASSERT_TRUE(sup.start().ok());
  ASSERT_TRUE(sup.attached());
  ::kill(own_proxy_, SIGKILL);
  ::waitpid(own_proxy_, nullptr, 0);
  own_proxy_ = 0;
  ASSERT_TRUE(within(10000, [&] { return sup.childPid() > 0 && control_.alive(); }));
  EXPECT_FALSE(sup.attached());
  sup.stop(true);
}

// keepalived's track script on an ACTIVE_STANDBY amphora: it must fail once the
// proxy stops answering, so that the VIP moves.
TEST_F(Supervisor, TheAgentsProxyCheckFollowsTheProxy) {
  ProxySupervisor sup(options(), control_);
  ASSERT_TRUE(sup.start().ok());
  EXPECT_EQ(testing::runCommand({testing::agentBinary(), "--check-proxy", socket_}).exit_code, 0);
  sup.stop(true);
  EXPECT_EQ(testing::runCommand({testing::agentBinary(), "--check-proxy", socket_}).exit_code, 1);
}

TEST_F(Supervisor, AProxyThatCannotStartIsReported) {
  testing::writeTestFile(config_, "{\"listeners\": 5}");
  auto opts = options();
  opts.ready_timeout_ms = 2000;
  ProxySupervisor sup(opts, control_);
  auto r = sup.start();
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(control_.alive());
  sup.stop(true);
}

}  // namespace
}  // namespace banyan::agent::supervisor
