// UDP-CONNECT, PING and TLS-HELLO health monitors through the real binary,
// against members on loopback, read back from the control API's /health.
#include <gtest/gtest.h>

#include <memory>

#include "fixtures.h"
#include "test_pki.h"
#include "test_udp_backend.h"
#include "tls_member.h"

namespace banyan::test {
namespace {

struct Check {
  std::string status;
  int64_t successes = 0;
  std::string detail;  // of the last check
};

Check checkOf(const ProxyProcess& proxy, const std::string& member_id) {
  Check c;
  ControlResponse resp = proxy.get("/health");
  if (resp.status != 200) return c;
  rapidjson::Document doc = resp.json();
  for (const auto& m : doc["members"].GetArray()) {
    if (member_id != m["member_id"].GetString()) continue;
    c.status = m["status"].GetString();
    c.successes = m["consecutive_successes"].GetInt64();
    if (m["last_check"].IsObject()) c.detail = m["last_check"]["detail"].GetString();
  }
  return c;
}

// Waits until the member passed `n` probes in a row.
bool waitSuccesses(const ProxyProcess& proxy, const std::string& id, int64_t n) {
  return waitUntil([&] { return checkOf(proxy, id).successes >= n; }, Millis(3000), Millis(50));
}

MonitorSpec monitor(const std::string& type) {
  MonitorSpec hm;
  hm.type = type;
  hm.delay = 0.1;
  hm.timeout = 0.2;
  hm.max_retries = 1;
  hm.max_retries_down = 2;
  return hm;
}

MemberSpec spec(const std::string& id, const std::string& address, uint16_t port) {
  MemberSpec m;
  m.id = id;
  m.address = address;
  m.protocol_port = port;
  return m;
}

TEST(UdpMonitors, UdpConnectKeepsAnOpenPortOnlineAndTakesAClosedPortDown) {
  TestUdpBackend open("open", "127.0.0.101");
  uint16_t closed_port;
  {
    TestUdpBackend gone("gone", "127.0.0.102");
    closed_port = gone.port();
  }
  ConfigSpec c = simpleConfig(
      pickFreeUdpPort(),
      {spec("open", open.address(), open.port()), spec("closed", "127.0.0.102", closed_port)},
      "UDP", "UDP");
  c.pool("p1").health_monitor = monitor("UDP-CONNECT");
  ProxyProcess proxy(c.toJson());
  ASSERT_TRUE(waitHealth(proxy, "closed", "ERROR", 3000)) << proxy.get("/health").body;
  EXPECT_EQ(checkOf(proxy, "closed").detail, "ICMP port unreachable");
  ASSERT_TRUE(waitSuccesses(proxy, "open", 3)) << proxy.get("/health").body;
  EXPECT_EQ(checkOf(proxy, "open").status, "ONLINE");
}

TEST(UdpMonitors, PingOfLoopbackMembersIsAnswered) {
  // No process listens there: PING looks at the address only.
  ConfigSpec c = simpleConfig(pickFreePort(), {spec("a", "127.0.0.103", 80), spec("b", "::1", 80)},
                              "TCP", "TCP");
  c.pool("p1").health_monitor = monitor("PING");
  ProxyProcess proxy(c.toJson());
  ASSERT_TRUE(waitSuccesses(proxy, "a", 3)) << proxy.get("/health").body;
  EXPECT_EQ(checkOf(proxy, "a").detail, "echo reply");
  ASSERT_TRUE(waitSuccesses(proxy, "b", 3)) << proxy.get("/health").body;
  EXPECT_EQ(checkOf(proxy, "b").status, "ONLINE");
}

TEST(UdpMonitors, TlsHelloPassesATlsMemberAndFailsAPlainTcpListener) {
  TestTlsMember tls("tls", "127.0.0.104", {testPki().member_bundle, "", 0, {}});
  TestTcpBackend plain("plain", "127.0.0.105");
  ConfigSpec c = simpleConfig(
      pickFreePort(), {spec("tls", tls.address(), tls.port()), memberOf(plain)}, "HTTPS", "HTTPS");
  c.pool("p1").health_monitor = monitor("TLS-HELLO");
  ProxyProcess proxy(c.toJson());
  ASSERT_TRUE(waitHealth(proxy, "plain", "ERROR", 3000)) << proxy.get("/health").body;
  ASSERT_TRUE(waitSuccesses(proxy, "tls", 3)) << proxy.get("/health").body;
  EXPECT_EQ(checkOf(proxy, "tls").detail, "ServerHello received");
  EXPECT_EQ(checkOf(proxy, "tls").status, "ONLINE");
}

TEST(UdpMonitors, TcpMonitorOnAUdpPoolChecksTheMonitorPort) {
  TestUdpBackend udp("u", "127.0.0.106");
  TestTcpBackend tcp("t", "127.0.0.106");
  MemberSpec m = spec("u", udp.address(), udp.port());
  m.monitor_port = tcp.port();
  ConfigSpec c = simpleConfig(pickFreeUdpPort(), {m}, "UDP", "UDP");
  c.pool("p1").health_monitor = monitor("TCP");
  ProxyProcess proxy(c.toJson());
  ASSERT_TRUE(waitSuccesses(proxy, "u", 2)) << proxy.get("/health").body;
  tcp.stop();
  EXPECT_TRUE(waitHealth(proxy, "u", "ERROR", 3000)) << proxy.get("/health").body;
}

}  // namespace
}  // namespace banyan::test
