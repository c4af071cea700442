// Listener allowed_cidrs: connections from other sources are closed before a
// byte is read, on HTTP and TCP listeners, and a hot apply changes the list
// for new connections.
#include <gtest/gtest.h>

#include <memory>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

class AllowedCidrs : public ::testing::Test {
 protected:
  ConnectOptions from(const std::string& source) const {
    ConnectOptions o;
    o.source_address = source;
    return o;
  }
  ConfigSpec httpConfig(std::vector<std::string> allowed) {
    ConfigSpec c = simpleConfig(port_, {memberOf(http_member_)});
    c.listener("l1").allowed_cidrs = std::move(allowed);
    return c;
  }
  // True when a request from `source` is answered 200.
  bool servedFrom(const std::string& source) {
    HttpClient c("127.0.0.1", port_, from(source));
    c.sendRaw("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string seen;
    EXPECT_TRUE(c.waitClosed(3000, &seen)) << "the connection from " << source << " stayed open";
    return seen.find(" 200 ") != std::string::npos;
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend http_member_{"h1", "127.0.0.41"};
  TestTcpBackend tcp_member_{"t1", "127.0.0.42"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(AllowedCidrs, HttpListenerServesAllowedSourcesAndClosesOthersUnread) {
  proxy_ = std::make_unique<ProxyProcess>(httpConfig({"127.0.0.64/30", "2001:db8::/32"}).toJson());
  EXPECT_TRUE(servedFrom("127.0.0.65"));
  EXPECT_EQ(http_member_.requestCount(), 1u);

  HttpClient c("127.0.0.1", port_, from("127.0.0.70"));
  c.sendRaw("GET /refused HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string seen;
  EXPECT_TRUE(c.waitClosed(3000, &seen)) << "a connection from outside allowed_cidrs stayed open";
  EXPECT_EQ(seen, "") << "nothing is answered to a refused source";
  EXPECT_EQ(http_member_.requestCount(), 1u);
}

TEST_F(AllowedCidrs, TcpListenerClosesOthersBeforeReachingAMember) {
  ConfigSpec c = simpleConfig(port_, {memberOf(tcp_member_)}, "TCP", "TCP");
  c.listener("l1").allowed_cidrs = {"127.0.0.65"};
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());

  Fd refused = connectTo("127.0.0.1", port_, from("127.0.0.66"));
  sendAll(refused.get(), "not-for-members");
  Fd allowed = connectTo("127.0.0.1", port_, from("127.0.0.65"));
  sendAll(allowed.get(), "hello");
  ASSERT_TRUE(tcp_member_.waitForBytes(0, 5, 3000));
  EXPECT_EQ(tcp_member_.connections().size(), 1u);
  EXPECT_EQ(tcp_member_.connections()[0].first_bytes, "hello");
}

TEST_F(AllowedCidrs, AHotApplyChangesWhoIsServed) {
  proxy_ = std::make_unique<ProxyProcess>(httpConfig({"127.0.0.64/30"}).toJson());
  EXPECT_FALSE(servedFrom("127.0.0.70"));
  ASSERT_EQ(proxy_->applyConfig(httpConfig({}).toJson()).status, 200);
  EXPECT_TRUE(servedFrom("127.0.0.70"));
  ASSERT_EQ(proxy_->applyConfig(httpConfig({"127.0.0.70/32"}).toJson()).status, 200);
  EXPECT_TRUE(servedFrom("127.0.0.70"));
  EXPECT_FALSE(servedFrom("127.0.0.65"));
}

}  // namespace
}  // namespace banyan::test
