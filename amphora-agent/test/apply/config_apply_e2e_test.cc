// PUT /1.0/config end to end: a real banyan-agent over mutual TLS, its real
// banyan-proxy child, real HTTP members on 127.0.0.1. Traffic follows the config.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "storage/storage.h"
#include "support/agent_fixture.h"
#include "banyan/common/digest.h"

namespace banyan::agent {
namespace {

using testing::HttpMember;
using testing::httpGet;

std::string doc(uint64_t generation, uint16_t port, const std::vector<const HttpMember*>& members,
                const std::string& listener_extra = "") {
  std::string m;
  int i = 0;
  for (const auto* member : members) {
    if (!m.empty()) m += ", ";
    m += R"({"id": "member-)" + std::to_string(member->port()) + R"(", "address": "127.0.0.1", "protocol_port": )" +
         std::to_string(member->port()) + "}";
    ++i;
  }
  return R"({"generation": )" + std::to_string(generation) +
         R"(, "settings": {"workers": 1}, "listeners": [{"id": "listener-1", "protocol": "HTTP", "address": "127.0.0.1", "protocol_port": )" +
         std::to_string(port) + listener_extra + R"(, "default_pool_id": "pool-1"}], "pools": [{"id": "pool-1", "protocol": "HTTP", "members": [)" + m +
         "]}]}";
}

// Polls until GET through the listener answers WANT (bounded: 5 s).
bool servesWithin(uint16_t port, const std::string& want) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    auto body = httpGet(port);
    if (body && *body == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class ConfigApply : public testing::AgentFixture {};

TEST_F(ConfigApply, TrafficFollowsTheConfigAndMemberOnlyChangesKeepTheListener) {
  HttpMember a("member-a"), b("member-b");
  uint16_t port = testing::freeTcpPort();

  std::string doc1 = doc(1, port, {&a});
  auto r1 = call("PUT", "/1.0/config", doc1);
  ASSERT_EQ(r1.status, 200) << r1.body;
  EXPECT_NE(r1.body.find("\"generation\":1"), std::string::npos) << r1.body;
  EXPECT_NE(r1.body.find(common::sha256Hex(doc1)), std::string::npos) << r1.body;
  EXPECT_NE(r1.body.find("\"delta\":false"), std::string::npos) << r1.body;
  ASSERT_TRUE(servesWithin(port, "member-a"));

  // A client connection opened before a member-only change keeps working after it:
  // the listening socket and its connections were not touched.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);

  std::string doc2 = doc(2, port, {&b});
  auto r2 = call("PUT", "/1.0/config", doc2);
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_NE(r2.body.find("\"delta\":true"), std::string::npos) << r2.body;
  EXPECT_NE(r2.body.find("\"generation\":2"), std::string::npos) << r2.body;

  std::string req = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string in;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) in.append(buf, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_NE(in.find("member-b"), std::string::npos) << in;
  EXPECT_TRUE(servesWithin(port, "member-b"));

  // The same document again is harmless and says so.
  auto r3 = call("PUT", "/1.0/config", doc2);
  ASSERT_EQ(r3.status, 200) << r3.body;
  EXPECT_NE(r3.body.find("\"unchanged\":true"), std::string::npos) << r3.body;
  EXPECT_NE(r3.body.find(common::sha256Hex(doc2)), std::string::npos);

  auto got = call("GET", "/1.0/config");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, doc2);
}

TEST_F(ConfigApply, RefusedDocumentsLeaveTheRunningConfig) {
  HttpMember a("member-a");
  uint16_t port = testing::freeTcpPort();
  std::string good = doc(1, port, {&a});
  ASSERT_EQ(call("PUT", "/1.0/config", good).status, 200);
  ASSERT_TRUE(servesWithin(port, "member-a"));

  // Schema violation: the proxy's own validator names the field.
  std::string bad = R"({"generation": 2, "listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 70000}]})";
  auto r = call("PUT", "/1.0/config", bad);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("/listeners/0/protocol_port"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"message\""), std::string::npos);
  EXPECT_NE(r.body.find("\"details\""), std::string::npos);
  EXPECT_EQ(testing::readTestFile(state_dir_ + "/proxy.json.rejected"), bad);

  // Semantic violation: a pool that does not exist.
  std::string unknown_pool = doc(3, port, {&a});
  unknown_pool.replace(unknown_pool.find("\"default_pool_id\": \"pool-1\""), 27, "\"default_pool_id\": \"nope\"");
  auto r2 = call("PUT", "/1.0/config", unknown_pool);
  EXPECT_EQ(r2.status, 400) << r2.body;

  for (const char* malformed : {"{", "[]", "{\"generation\": 1,}", "\xff\xfe"}) {
    auto m = call("PUT", "/1.0/config", malformed);
    EXPECT_EQ(m.status, 400) << malformed << " -> " << m.body;
  }
  EXPECT_EQ(call("GET", "/1.0/config").body, good);
  EXPECT_TRUE(servesWithin(port, "member-a"));
}

TEST_F(ConfigApply, ADeadProxyIsRestartedWithTheStoredConfig) {
  HttpMember a("member-a");
  uint16_t port = testing::freeTcpPort();
  ASSERT_EQ(call("PUT", "/1.0/config", doc(1, port, {&a})).status, 200);
  ASSERT_TRUE(servesWithin(port, "member-a"));
  pid_t first = agent_.proxyPid();
  ASSERT_GT(first, 0);
  // The proxy is the agent's child, started by this test through the agent.
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline &&
         (agent_.proxyPid() == first || !httpGet(port).has_value())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(agent_.proxyPid(), first);
  EXPECT_TRUE(servesWithin(port, "member-a"));
}

}  // namespace
}  // namespace banyan::agent
