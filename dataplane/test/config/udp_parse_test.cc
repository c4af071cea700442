// UDP listeners and pools, the monitor types beyond TCP/HTTP/HTTPS, and what
// the parser refuses on them (Octavia's API rules), with the JSON pointer of
// the offending value.
#include <gtest/gtest.h>

#include <string>

#include "config/parse.h"

namespace banyan::dp::config {
namespace {

std::string udpListener(const std::string& extra, const std::string& id = "u1", int port = 53,
                        const std::string& address = "127.0.0.1") {
  return R"({"id": ")" + id + R"(", "protocol": "UDP", "address": ")" + address +
         R"(", "protocol_port": )" + std::to_string(port) + extra + "}";
}
std::string udpPool(const std::string& extra, const std::string& id = "up") {
  return R"({"id": ")" + id + R"(", "protocol": "UDP", "members": [{"id": "m1",
            "address": "127.0.0.11", "protocol_port": 5353}])" +
         extra + "}";
}
std::string doc(const std::string& listeners, const std::string& pools = "") {
  return R"({"listeners": [)" + listeners + R"(], "pools": [)" + pools + "]}";
}

void expectRejected(const std::string& document, const std::string& context,
                    const std::string& message) {
  auto result = parseConfig(document);
  ASSERT_FALSE(result.ok()) << "accepted: " << document;
  EXPECT_EQ(result.error().context, context);
  EXPECT_EQ(result.error().message, message);
}

TEST(UdpConfig, UdpListenerWithUdpPoolParsesIntoTheModel) {
  auto result = parseConfig(doc(udpListener(R"(, "default_pool_id": "up", "connection_limit": 10,
                                               "timeout_client_data": 1500)"),
                                udpPool(R"(, "lb_algorithm": "SOURCE_IP",
                                  "session_persistence": {"type": "SOURCE_IP",
                                  "persistence_timeout": 30, "persistence_granularity": "255.255.255.0"},
                                  "health_monitor": {"id": "hm", "type": "UDP-CONNECT", "delay": 1,
                                                     "timeout": 1, "max_retries_down": 2})")));
  ASSERT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
  const Config& c = *result;
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].protocol, ListenerProtocol::kUdp);
  EXPECT_EQ(c.listeners[0].connection_limit, 10);
  EXPECT_EQ(c.listeners[0].timeout_client_data_ms, 1500u);
  ASSERT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.pools[0].protocol, PoolProtocol::kUdp);
  EXPECT_EQ(c.pools[0].lb_algorithm, LbAlgorithm::kSourceIp);
  ASSERT_TRUE(c.pools[0].session_persistence.has_value());
  EXPECT_EQ(c.pools[0].session_persistence->persistence_timeout_s, 30u);
  EXPECT_EQ(c.pools[0].session_persistence->persistence_granularity, "255.255.255.0");
  ASSERT_TRUE(c.pools[0].health_monitor.has_value());
  EXPECT_EQ(c.pools[0].health_monitor->type, MonitorType::kUdpConnect);
  EXPECT_EQ(c.pools[0].health_monitor->max_retries_down, 2u);
}

TEST(UdpConfig, ATcpAndAUdpListenerMayShareAnAddressAndPort) {
  std::string tcp =
      R"({"id": "t1", "protocol": "TCP", "address": "127.0.0.1", "protocol_port": 53})";
  auto result = parseConfig(doc(tcp + "," + udpListener("")));
  EXPECT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
}

TEST(UdpConfig, TwoUdpListenersOnOnePortAreRefused) {
  expectRejected(doc(udpListener("") + "," + udpListener("", "u2", 53, "0.0.0.0")),
                 "/listeners/1/address",
                 "0.0.0.0:53 is already bound by listener \"u1\" (/listeners/0/address)");
}

TEST(UdpConfig, UdpListenerRefusesAStreamPool) {
  expectRejected(
      doc(udpListener(R"(, "default_pool_id": "p1")"), R"({"id": "p1", "protocol": "TCP"})"),
      "/listeners/0/default_pool_id",
      "UDP listener cannot use TCP pool \"p1\" (allowed pool protocols: UDP)");
}

TEST(UdpConfig, TcpListenerRefusesAUdpPool) {
  expectRejected(
      doc(R"({"id": "t1", "protocol": "TCP", "address": "127.0.0.1", "protocol_port": 80,
              "default_pool_id": "up"})",
          udpPool("")),
      "/listeners/0/default_pool_id",
      "TCP listener cannot use UDP pool \"up\" (allowed pool protocols: TCP, HTTP, HTTPS, PROXY, "
      "PROXYV2)");
}

// Octavia's API accepts them and its keepalived amphora ignores them: carried,
// checked, never consulted by the UDP relay.
TEST(UdpConfig, UdpListenerCarriesL7PoliciesWithoutEffect) {
  auto c = parseConfig(doc(udpListener(R"(, "l7policies": [{"id": "x", "action": "REJECT",
      "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "a.example"}]}])")));
  ASSERT_TRUE(c.ok()) << c.error().context << ": " << c.error().message;
  EXPECT_EQ(c->listeners[0].l7policies.size(), 1u);
}

TEST(UdpConfig, UdpListenerPolicyMustRedirectToAUdpPool) {
  expectRejected(
      doc(udpListener(R"(, "l7policies": [{"id": "x", "action": "REDIRECT_TO_POOL",
          "redirect_pool_id": "tp", "rules": []}])"),
          R"({"id": "tp", "protocol": "TCP", "members": []})"),
      "/listeners/0/l7policies/0/redirect_pool_id", "UDP listener cannot use TCP pool \"tp\"");
}

TEST(UdpConfig, UdpListenerRefusesTlsSettings) {
  expectRejected(doc(udpListener(R"(, "default_tls_certificate": "/etc/banyan/c.pem")")),
                 "/listeners/0/default_tls_certificate",
                 "default_tls_certificate needs a TERMINATED_HTTPS listener, not UDP");
}

TEST(UdpConfig, UdpListenerRefusesInsertHeaders) {
  expectRejected(doc(udpListener(R"(, "insert_headers": {"X-Forwarded-For": "true"})")),
                 "/listeners/0/insert_headers/X-Forwarded-For",
                 "inserting X-Forwarded-For needs an HTTP listener, not UDP");
}

TEST(UdpConfig, UdpListenerRefusesProxyProtocol) {
  expectRejected(doc(udpListener(R"(, "accept_proxy_protocol": "v1")")),
                 "/listeners/0/accept_proxy_protocol",
                 "accepting PROXY headers needs a TCP-family listener, not UDP");
}

TEST(UdpConfig, UdpPoolRefusesCookiePersistence) {
  expectRejected(doc("", udpPool(R"(, "session_persistence": {"type": "HTTP_COOKIE"})")),
                 "/pools/0/session_persistence/type",
                 "session persistence \"HTTP_COOKIE\" needs an HTTP pool; UDP pools take "
                 "SOURCE_IP only");
}

TEST(UdpConfig, UdpPoolRefusesTls) {
  expectRejected(doc("", udpPool(R"(, "tls_enabled": true)")), "/pools/0/tls_enabled",
                 "tls_enabled on a UDP pool is not supported yet (HTTP pools only)");
}

TEST(UdpConfig, UdpPoolRefusesPingAndTlsHelloMonitors) {
  for (const char* type : {"PING", "TLS-HELLO", "HTTPS"}) {
    expectRejected(doc("", udpPool(std::string(R"(, "health_monitor": {"id": "hm", "type": ")") +
                                   type + "\"}")),
                   "/pools/0/health_monitor/type",
                   "a UDP pool takes UDP-CONNECT, TCP or HTTP health monitors only");
  }
}

TEST(UdpConfig, UdpPoolAcceptsTcpAndHttpMonitors) {
  for (const char* type : {"TCP", "HTTP", "UDP-CONNECT"}) {
    auto result = parseConfig(doc(
        "", udpPool(std::string(R"(, "health_monitor": {"id": "hm", "type": ")") + type + "\"}")));
    EXPECT_TRUE(result.ok()) << type << ": " << result.error().message;
  }
}

TEST(UdpConfig, UdpConnectMonitorOnAStreamPoolIsRefused) {
  expectRejected(
      doc("",
          R"({"id": "p1", "protocol": "TCP", "health_monitor": {"id": "hm", "type": "UDP-CONNECT"}})"),
      "/pools/0/health_monitor/type", "a UDP-CONNECT health monitor needs a UDP pool, not TCP");
}

TEST(UdpConfig, PingAndTlsHelloMonitorsParseOnStreamPools) {
  auto result = parseConfig(
      doc("", R"({"id": "p1", "protocol": "TCP", "health_monitor": {"id": "hm1", "type": "PING"}},
             {"id": "p2", "protocol": "HTTPS", "health_monitor": {"id": "hm2", "type": "TLS-HELLO"}})"));
  ASSERT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
  EXPECT_EQ(result->pools[0].health_monitor->type, MonitorType::kPing);
  EXPECT_EQ(result->pools[1].health_monitor->type, MonitorType::kTlsHello);
}

}  // namespace
}  // namespace banyan::dp::config
