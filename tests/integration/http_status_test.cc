// HTTP listeners: the status codes the proxy itself answers (503, 502, 504,
// 408), idle keep-alive timeout and connection_limit.
#include <gtest/gtest.h>

#include <memory>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

class HttpStatus : public ::testing::Test {
 protected:
  void startProxy(const ConfigSpec& config) {
    proxy_ = std::make_unique<ProxyProcess>(config.toJson());
  }
  HttpClient client(int timeout_ms = 3000) const {
    ConnectOptions o;
    o.timeout_ms = timeout_ms;
    return HttpClient("127.0.0.1", port_, o);
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend member_{"m1", "127.0.0.21"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(HttpStatus, PoolWithoutMembersAnswers503) {
  startProxy(simpleConfig(port_, {}));
  HttpResponse resp = client().get("/");
  EXPECT_EQ(resp.status, 503);
}

TEST_F(HttpStatus, ListenerWithoutDefaultPoolAnswers503) {
  ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
  c.listener("l1").default_pool_id.clear();
  startProxy(c);
  EXPECT_EQ(client().get("/").status, 503);
  EXPECT_EQ(member_.connectionCount(), 0u);
}

TEST_F(HttpStatus, AllMembersAdminDownAnswers503) {
  ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
  c.pool("p1").members[0].admin_state_up = false;
  startProxy(c);
  EXPECT_EQ(client().get("/").status, 503);
  EXPECT_EQ(member_.connectionCount(), 0u);
}

TEST_F(HttpStatus, MemberWithAClosedPortAnswers502) {
  MemberSpec closed;
  closed.id = "closed";
  closed.address = "127.0.0.22";
  closed.protocol_port = pickFreePort("127.0.0.22");  // nothing listens there
  startProxy(simpleConfig(port_, {closed}));
  auto start = Clock::now();
  HttpResponse resp = client().get("/");
  EXPECT_EQ(resp.status, 502);
  EXPECT_LT(Clock::now() - start, Millis(2500)) << "refused connects should fail fast";
}

// A member whose accept queue is full never completes a handshake: the kernel
// drops further SYNs. On loopback that stands in for an address that does not
// answer, which is what timeout_member_connect is for.
TEST_F(HttpStatus, MemberThatNeverCompletesTheHandshakeGives502AfterConnectTimeouts) {
  uint16_t hole_port = pickFreePort("127.0.0.23");
  Fd hole = listenOn("127.0.0.23", hole_port, 0);
  std::vector<Fd> fillers;  // backlog 0 queues one connection; the next SYN is dropped
  for (int i = 0; i < 2; ++i) {
    ConnectOptions o;
    o.timeout_ms = 200;
    fillers.push_back(tryConnect("127.0.0.23", hole_port, o));
  }
  MemberSpec m;
  m.id = "hole";
  m.address = "127.0.0.23";
  m.protocol_port = hole_port;
  ConfigSpec c = simpleConfig(port_, {m});
  c.listener("l1").timeout_member_connect = 200;
  c.member_connect_retries = 1;
  startProxy(c);
  auto start = Clock::now();
  HttpResponse resp = client(5000).get("/");
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(resp.status, 502);
  EXPECT_GE(elapsed, Millis(350)) << "two connect attempts of 200 ms each";
  EXPECT_LT(elapsed, Millis(2000));
}

TEST_F(HttpStatus, SlowMemberAnswers504AfterTimeoutMemberData) {
  member_.configure([](HttpBackendOptions& o) { o.delay_ms = 3000; });
  ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
  c.listener("l1").timeout_member_data = 300;
  startProxy(c);
  auto start = Clock::now();
  HttpResponse resp = client(5000).get("/slow");
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(resp.status, 504);
  EXPECT_GE(elapsed, Millis(250));
  EXPECT_LT(elapsed, Millis(2000))
      << "504 must come after ~timeout_member_data, not the member's delay";
}

TEST_F(HttpStatus, MemberThatNeverAnswersGives504) {
  member_.configure([](HttpBackendOptions& o) { o.never_answer = true; });
  ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
  c.listener("l1").timeout_member_data = 300;
  startProxy(c);
  EXPECT_EQ(client(5000).get("/").status, 504);
}

TEST_F(HttpStatus, SlowClientHeadGets408ThenTheConnectionCloses) {
  ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
  c.listener("l1").timeout_client_data = 300;
  startProxy(c);
  HttpClient cl = client(5000);
  auto start = Clock::now();
  cl.sendRaw("GET /partial HTTP/1.1\r\nHost: x\r\n");  // the head never ends
  HttpResponse resp = cl.readResponse(3000, false);
  EXPECT_EQ(resp.status, 408);
  EXPECT_LT(Clock::now() - start, Millis(2000));
  EXPECT_TRUE(cl.waitClosed(2000)) << "connection stays open after 408";
  EXPECT_EQ(member_.requestCount(), 0u);
}

TEST_F(HttpStatus, IdleKeepAliveClientConnectionIsClosedSilently) {
  ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
  c.listener("l1").timeout_client_data = 300;
  startProxy(c);
  HttpClient cl = client(5000);
  ASSERT_EQ(cl.get("/").status, 200);
  std::string extra;
  auto start = Clock::now();
  EXPECT_TRUE(cl.waitClosed(3000, &extra)) << "idle keep-alive connection was not closed";
  EXPECT_GE(Clock::now() - start, Millis(200));
  EXPECT_EQ(extra, "") << "an idle close must not send a response (no 408 between requests)";
}

TEST_F(HttpStatus, MemberClosingAfterEachResponseStillServesAKeepAliveClient) {
  member_.configure([](HttpBackendOptions& o) { o.close_after_response = true; });
  startProxy(simpleConfig(port_, {memberOf(member_)}));
  HttpClient cl = client();
  for (int i = 0; i < 5; ++i) {
    HttpResponse resp = cl.get("/c" + std::to_string(i));
    ASSERT_EQ(resp.status, 200) << "request " << i;
    EXPECT_EQ(resp.header("X-Request-Path"), "/c" + std::to_string(i));
  }
  EXPECT_EQ(member_.connectionCount(), 5u);
}

TEST_F(HttpStatus, ConnectionLimitHoldsTheThirdConnectionUntilOneCloses) {
  ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
  c.listener("l1").connection_limit = 2;
  startProxy(c);
  HttpClient c1 = client(), c2 = client(), c3 = client();
  ASSERT_EQ(c1.get("/1").status, 200);
  ASSERT_EQ(c2.get("/2").status, 200);
  // The kernel completes the handshake (backlog); the proxy must not serve it yet.
  c3.sendRaw(HttpClient::buildRequest("GET", "/3", {}, ""));
  std::string early = c3.readRaw(600);
  EXPECT_EQ(early, "") << "third connection was served while two were open";
  EXPECT_EQ(member_.requestCount(), 2u);
  c1.close();
  HttpResponse resp = c3.readResponse(3000, false);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.header("X-Request-Path"), "/3");
  // Still at most two: the second one keeps serving.
  EXPECT_EQ(c2.get("/2b").status, 200);
}

}  // namespace
}  // namespace banyan::test
