// PROXY protocol: the exact v1/v2 bytes a member receives from PROXY/PROXYV2
// pools (HTTP and TCP listeners), and listeners that accept a PROXY header
// from their client and use the carried source address.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

const std::string kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);

std::string be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string ipv4Bytes(const std::string& text) {
  in_addr a{};
  inet_pton(AF_INET, text.c_str(), &a);
  return std::string(reinterpret_cast<const char*>(&a), 4);
}

// PROXY v2, command PROXY, TCP over IPv4 (spec section 2.2).
std::string proxyV2(const std::string& src, const std::string& dst, uint16_t sport,
                    uint16_t dport) {
  return kV2Signature + "\x21\x11" + be16(12) + ipv4Bytes(src) + ipv4Bytes(dst) + be16(sport) +
         be16(dport);
}

// Checks a v2 header the proxy wrote: PROXY command, TCP4, the given addresses.
void expectV2(const std::string& header, const std::string& src, const std::string& dst,
              uint16_t sport, uint16_t dport) {
  ASSERT_GE(header.size(), 28u) << "v2 header too short";
  EXPECT_EQ(header.substr(0, 12), kV2Signature);
  EXPECT_EQ(static_cast<uint8_t>(header[12]), 0x21) << "version 2, command PROXY";
  EXPECT_EQ(static_cast<uint8_t>(header[13]), 0x11) << "AF_INET, STREAM";
  size_t len = (static_cast<uint8_t>(header[14]) << 8) | static_cast<uint8_t>(header[15]);
  EXPECT_GE(len, 12u);
  EXPECT_EQ(header.size(), 16 + len);
  EXPECT_EQ(header.substr(16, 4), ipv4Bytes(src));
  EXPECT_EQ(header.substr(20, 4), ipv4Bytes(dst));
  EXPECT_EQ(header.substr(24, 2), be16(sport));
  EXPECT_EQ(header.substr(26, 2), be16(dport));
}

class ProxyProtocol : public ::testing::Test {
 protected:
  ConnectOptions fromClient() const {
    ConnectOptions o;
    o.source_address = "127.0.0.78";
    return o;
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend http_member_{"h1", "127.0.0.41"};
  TestTcpBackend tcp_member_{"t1", "127.0.0.42"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(ProxyProtocol, HttpPoolProxySendsAV1HeaderBeforeTheRequest) {
  proxy_ = std::make_unique<ProxyProcess>(
      simpleConfig(port_, {memberOf(http_member_)}, "HTTP", "PROXY").toJson());
  HttpClient c("127.0.0.1", port_, fromClient());
  ASSERT_EQ(c.get("/v1").status, 200);
  uint16_t client_port = c.localPort();
  auto conns = http_member_.connections();
  ASSERT_EQ(conns.size(), 1u);
  std::string expected = "PROXY TCP4 127.0.0.78 127.0.0.1 " + std::to_string(client_port) + " " +
                         std::to_string(port_) + "\r\n";
  EXPECT_EQ(conns[0].proxy_header, expected);
  EXPECT_EQ(conns[0].first_bytes.substr(0, expected.size() + 4), expected + "GET ");
}

TEST_F(ProxyProtocol, HttpPoolProxyV2SendsABinaryHeaderBeforeTheRequest) {
  proxy_ = std::make_unique<ProxyProcess>(
      simpleConfig(port_, {memberOf(http_member_)}, "HTTP", "PROXYV2").toJson());
  HttpClient c("127.0.0.1", port_, fromClient());
  ASSERT_EQ(c.get("/v2").status, 200);
  auto conns = http_member_.connections();
  ASSERT_EQ(conns.size(), 1u);
  expectV2(conns[0].proxy_header, "127.0.0.78", "127.0.0.1", c.localPort(), port_);
  std::string after = conns[0].first_bytes.substr(conns[0].proxy_header.size(), 4);
  EXPECT_EQ(after, "GET ");
}

TEST_F(ProxyProtocol, HttpPoolProxyNeverSharesAMemberConnectionBetweenClients) {
  proxy_ = std::make_unique<ProxyProcess>(
      simpleConfig(port_, {memberOf(http_member_)}, "HTTP", "PROXY").toJson());
  const std::vector<std::string> sources = {"127.0.0.78", "127.0.0.79", "127.0.0.78"};
  std::vector<uint16_t> client_ports;
  // All three client connections stay open together, so a pooling proxy could
  // be tempted to hand one member connection to several of them.
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (const auto& src : sources) {
    ConnectOptions o;
    o.source_address = src;
    clients.push_back(std::make_unique<HttpClient>("127.0.0.1", port_, o));
    clients.back()->connect();
    client_ports.push_back(clients.back()->localPort());
  }
  for (int round = 0; round < 2; ++round)
    for (size_t i = 0; i < clients.size(); ++i)
      ASSERT_EQ(clients[i]->get("/c" + std::to_string(i)).status, 200);
  auto conns = http_member_.connections();
  std::map<size_t, std::set<std::string>> clients_per_member_connection;
  for (const auto& req : http_member_.requests())
    clients_per_member_connection[req.connection].insert(req.target);
  for (const auto& [conn, targets] : clients_per_member_connection) {
    ASSERT_EQ(targets.size(), 1u) << "member connection " << conn
                                  << " carried requests of several clients";
    size_t client = std::stoul(targets.begin()->substr(2));
    EXPECT_EQ(conns[conn].proxy_header, "PROXY TCP4 " + sources[client] + " 127.0.0.1 " +
                                            std::to_string(client_ports[client]) + " " +
                                            std::to_string(port_) + "\r\n")
        << "member connection " << conn << " has the PROXY header of another client";
  }
}

TEST_F(ProxyProtocol, HttpPoolProxyKeepsOneMemberConnectionPerKeepAliveClient) {
  proxy_ = std::make_unique<ProxyProcess>(
      simpleConfig(port_, {memberOf(http_member_)}, "HTTP", "PROXYV2").toJson());
  HttpClient c("127.0.0.1", port_, fromClient());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.get("/k" + std::to_string(i)).status, 200);
  auto conns = http_member_.connections();
  ASSERT_EQ(conns.size(), 1u) << "each request of one client opened its own member connection";
  expectV2(conns[0].proxy_header, "127.0.0.78", "127.0.0.1", c.localPort(), port_);
  EXPECT_EQ(http_member_.requestCount(), 3u);
  // The header went out once, at the start of the connection.
  std::string first = conns[0].first_bytes;
  EXPECT_EQ(first.find("\r\n\r\n\x0d\x0a\x0d\x0a"), std::string::npos);
}

TEST_F(ProxyProtocol, TcpPoolProxySendsAV1HeaderFirst) {
  proxy_ = std::make_unique<ProxyProcess>(
      simpleConfig(port_, {memberOf(tcp_member_)}, "TCP", "PROXY").toJson());
  Fd fd = connectTo("127.0.0.1", port_, fromClient());
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len);
  sendAll(fd.get(), "payload");
  std::string expected = "PROXY TCP4 127.0.0.78 127.0.0.1 " + std::to_string(addressPort(local)) +
                         " " + std::to_string(port_) + "\r\n";
  ASSERT_TRUE(tcp_member_.waitForBytes(0, expected.size() + 7, 3000));
  EXPECT_EQ(tcp_member_.connections()[0].first_bytes, expected + "payload");
}

TEST_F(ProxyProtocol, TcpPoolProxyV2SendsABinaryHeaderFirst) {
  proxy_ = std::make_unique<ProxyProcess>(
      simpleConfig(port_, {memberOf(tcp_member_)}, "TCP", "PROXYV2").toJson());
  Fd fd = connectTo("127.0.0.1", port_, fromClient());
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len);
  sendAll(fd.get(), "payload");
  ASSERT_TRUE(tcp_member_.waitForBytes(0, 28 + 7, 3000));
  std::string first = tcp_member_.connections()[0].first_bytes;
  ASSERT_GE(first.size(), 16u);
  size_t header_len =
      16 + ((static_cast<uint8_t>(first[14]) << 8) | static_cast<uint8_t>(first[15]));
  ASSERT_TRUE(tcp_member_.waitForBytes(0, header_len + 7, 3000));
  first = tcp_member_.connections()[0].first_bytes;
  expectV2(first.substr(0, header_len), "127.0.0.78", "127.0.0.1", addressPort(local), port_);
  EXPECT_EQ(first.substr(header_len), "payload");
}

class AcceptProxyProtocol : public ProxyProtocol {
 protected:
  void startWith(const std::string& accept, std::vector<std::string> trusted = {}) {
    ConfigSpec c = simpleConfig(port_, {memberOf(http_member_)});
    c.listener("l1").accept_proxy_protocol = accept;
    c.listener("l1").proxy_protocol_trusted_cidrs = std::move(trusted);
    c.listener("l1").insert_headers = {{"X-Forwarded-For", "true"}};
    proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  }
  // Sends preamble + one request from `source`; returns the XFF the member saw.
  std::string xffAfter(const std::string& preamble, const std::string& source = "") {
    ConnectOptions o;
    o.source_address = source;
    HttpClient c("127.0.0.1", port_, o);
    c.sendRaw(preamble + "GET /pp HTTP/1.1\r\nHost: x\r\n\r\n");
    HttpResponse resp = c.readResponse();
    EXPECT_EQ(resp.status, 200);
    if (!http_member_.waitForRequests(1, 2000)) return "<no request>";
    return joinedHeaderValues(http_member_.requests().back().headers, "X-Forwarded-For");
  }
  std::string v1() const {
    return "PROXY TCP4 203.0.113.7 127.0.0.1 40000 " + std::to_string(port_) + "\r\n";
  }
  std::string v2() const { return proxyV2("203.0.113.7", "127.0.0.1", 40000, port_); }
};

TEST_F(AcceptProxyProtocol, V1ListenerUsesTheCarriedSourceForXForwardedFor) {
  startWith("v1");
  EXPECT_EQ(xffAfter(v1()), "203.0.113.7");
}

TEST_F(AcceptProxyProtocol, V2ListenerUsesTheCarriedSourceForXForwardedFor) {
  startWith("v2");
  EXPECT_EQ(xffAfter(v2()), "203.0.113.7");
}

TEST_F(AcceptProxyProtocol, AnyListenerAcceptsBothVersions) {
  startWith("any");
  EXPECT_EQ(xffAfter(v1()), "203.0.113.7");
  http_member_.clearRecords();
  EXPECT_EQ(xffAfter(proxyV2("203.0.113.8", "127.0.0.1", 40001, port_)), "203.0.113.8");
}

TEST_F(AcceptProxyProtocol, ConnectionWithoutTheHeaderIsRefusedAndNothingIsForwarded) {
  startWith("v1");
  HttpClient c("127.0.0.1", port_);
  c.sendRaw("GET /nopp HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string seen;
  EXPECT_TRUE(c.waitClosed(3000, &seen)) << "connection without a PROXY header stayed open";
  EXPECT_EQ(seen.find(" 200 "), std::string::npos) << seen;
  EXPECT_EQ(http_member_.requestCount(), 0u);
}

TEST_F(AcceptProxyProtocol, TrustedSourceMayNameTheClient) {
  startWith("v1", {"127.0.0.64/30"});
  EXPECT_EQ(xffAfter(v1(), "127.0.0.65"), "203.0.113.7");
}

TEST_F(AcceptProxyProtocol, UntrustedSourceIsServedAsItselfAndCannotNameAnotherClient) {
  startWith("v1", {"127.0.0.64/30"});
  // Without a header it is an ordinary client: its own address goes to the member.
  EXPECT_EQ(xffAfter("", "127.0.0.70"), "127.0.0.70");
  // A header from it is not a PROXY header but a malformed request: 400, nothing forwarded.
  http_member_.clearRecords();
  ConnectOptions o;
  o.source_address = "127.0.0.70";
  HttpClient c("127.0.0.1", port_, o);
  c.sendRaw(v1() + "GET /pp HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.readResponse().status, 400);
  EXPECT_EQ(http_member_.requestCount(), 0u);
}

TEST_F(AcceptProxyProtocol, TcpListenerPassesTheCarriedSourceOnToAProxyPool) {
  ConfigSpec c = simpleConfig(port_, {memberOf(tcp_member_)}, "TCP", "PROXY");
  c.listener("l1").accept_proxy_protocol = "v2";
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  Fd fd = connectTo("127.0.0.1", port_);
  sendAll(fd.get(), v2() + "data");
  ASSERT_TRUE(tcp_member_.waitForBytes(0, 30, 3000));
  ASSERT_TRUE(waitUntil(
      [&] { return tcp_member_.connections()[0].first_bytes.find("data") != std::string::npos; },
      Millis(2000)));
  std::string first = tcp_member_.connections()[0].first_bytes;
  EXPECT_EQ(first.rfind("PROXY TCP4 203.0.113.7 ", 0), 0u) << first;
  EXPECT_NE(first.find(" 40000 "), std::string::npos) << first;
  EXPECT_EQ(first.substr(first.size() - 6), "\r\ndata");
}

}  // namespace
}  // namespace banyan::test
