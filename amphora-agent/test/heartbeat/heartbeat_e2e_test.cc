// Heartbeats end to end: a real agent and proxy, a UDP receiver on 127.0.0.1 as the
// health manager, a member that stops and the heartbeat that says so.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <functional>

#include "banyan/common/heartbeat.h"
#include "support/agent_fixture.h"

namespace banyan::agent {
namespace {

using testing::HttpMember;

class Heartbeats : public testing::AgentFixture {
 protected:
  // Receives heartbeats until PRED holds for one (bounded by TIMEOUT_MS).
  std::optional<common::Heartbeat> waitFor(testing::UdpReceiver& rx, const std::string& key,
                                           const std::function<bool(const common::Heartbeat&)>& pred,
                                           int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      auto bytes = rx.receive(200);
      if (!bytes) continue;
      auto hb = common::decodeHeartbeat(*bytes, key);
      if (hb && pred(hb.value())) return hb.value();
    }
    return std::nullopt;
  }

  static std::string memberStatus(const common::Heartbeat& hb, const std::string& id) {
    for (const auto& p : hb.pools) {
      for (const auto& m : p.members) {
        if (m.id == id) return m.status;
      }
    }
    return "";
  }
};

TEST_F(Heartbeats, SignedHeartbeatsCarryMemberStatusChanges) {
  HttpMember a("a"), b("b");
  uint16_t port = testing::freeTcpPort();
  std::string doc = R"({"generation": 5, "settings": {"workers": 1}, "listeners": [{"id": "listener-1", "address": "127.0.0.1", "protocol_port": )" +
                    std::to_string(port) + R"(, "default_pool_id": "pool-1"}], "pools": [{"id": "pool-1", "members": [
      {"id": "member-a", "address": "127.0.0.1", "protocol_port": )" + std::to_string(a.port()) + R"(},
      {"id": "member-b", "address": "127.0.0.1", "protocol_port": )" + std::to_string(b.port()) + R"(}],
      "health_monitor": {"id": "hm-1", "type": "HTTP", "delay": 0.05, "timeout": 0.5, "max_retries": 1, "max_retries_down": 1}}]})";
  auto applied = call("PUT", "/1.0/config", doc);
  ASSERT_EQ(applied.status, 200) << applied.body;

  testing::UdpReceiver rx;
  auto r = call("PUT", "/1.0/agent-config",
                R"({"controller_ip_port_list": ["127.0.0.1:)" + std::to_string(rx.port()) +
                    R"("], "heartbeat_interval": 0.1, "heartbeat_key": "test-key"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("test-key"), std::string::npos) << "the key is never echoed";
  struct stat st;
  ASSERT_EQ(::stat((state_dir_ + "/agent-config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto first = rx.receive(5000);
  ASSERT_TRUE(first.has_value()) << "no heartbeat arrived";
  auto wrong = common::decodeHeartbeat(*first, "another-key");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("signature"), std::string::npos);
  auto decoded = common::decodeHeartbeat(*first, "test-key");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->amphora_id, amphora_id_);
  EXPECT_EQ(decoded->generation, 5u);
  ASSERT_EQ(decoded->listeners.size(), 1u);
  EXPECT_EQ(decoded->listeners[0].id, "listener-1");

  auto up = waitFor(rx, "test-key", [](const common::Heartbeat& hb) {
    return memberStatus(hb, "member-a") == "ONLINE" && memberStatus(hb, "member-b") == "ONLINE";
  }, 5000);
  ASSERT_TRUE(up.has_value()) << "members never reported ONLINE";
  EXPECT_EQ(up->pools[0].status, "ONLINE");
  EXPECT_GT(up->sequence, decoded->sequence);

  a.stop();
  auto down = waitFor(rx, "test-key", [](const common::Heartbeat& hb) {
    return memberStatus(hb, "member-a") == "ERROR";
  }, 10000);
  ASSERT_TRUE(down.has_value()) << "the stopped member never reported ERROR";
  EXPECT_EQ(memberStatus(*down, "member-b"), "ONLINE");
  EXPECT_EQ(down->pools[0].status, "DEGRADED");
}

TEST_F(Heartbeats, RefusedAgentConfigLeavesTheSettings) {
  testing::UdpReceiver rx;
  std::string good = R"({"controller_ip_port_list": ["127.0.0.1:)" + std::to_string(rx.port()) +
                     R"("], "heartbeat_interval": 5, "heartbeat_key": "k1"})";
  ASSERT_EQ(call("PUT", "/1.0/agent-config", good).status, 200);
  auto before = call("GET", "/1.0/agent-config");
  ASSERT_EQ(before.status, 200);
  EXPECT_EQ(before.body.find("k1"), std::string::npos);
  std::string stored = testing::readTestFile(state_dir_ + "/agent-config.json");

  struct Row {
    const char* body;
    const char* path;
  };
  const Row rows[] = {
      {R"({"heartbeat_interval": "fast"})", "/heartbeat_interval"},
      {R"({"heartbeat_interval": 0})", "/heartbeat_interval"},
      {R"({"controller_ip_port_list": ["controller:5555"]})", "/controller_ip_port_list/0"},
      {R"({"controller_ip_port_list": "127.0.0.1:1"})", "/controller_ip_port_list"},
      {R"({"heartbeat_key": ""})", "/heartbeat_key"},
      {R"({"heartbeat_key": 7})", "/heartbeat_key"},
      {R"({"heartbeat_intervall": 1})", "/heartbeat_intervall"},
      {R"([1])", ""},
      {R"({"heartbeat_interval": 1)", ""},
  };
  for (const auto& row : rows) {
    auto r = call("PUT", "/1.0/agent-config", row.body);
    EXPECT_EQ(r.status, 400) << row.body << " -> " << r.body;
    EXPECT_NE(r.body.find(std::string("\"path\":\"") + row.path + "\""), std::string::npos)
        << row.body << " -> " << r.body;
  }
  EXPECT_EQ(call("GET", "/1.0/agent-config").body, before.body);
  EXPECT_EQ(testing::readTestFile(state_dir_ + "/agent-config.json"), stored);
}

}  // namespace
}  // namespace banyan::agent
