// HTTP listeners: plain proxying, keep-alive on both sides, HTTP/1.0, chunked
// bodies, Expect: 100-continue, Upgrade tunnels and pipelining, through the
// real banyan-proxy on loopback.
#include <gtest/gtest.h>

#include <memory>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

class HttpProxying : public ::testing::Test {
 protected:
  void startProxy(const ConfigSpec& config) {
    proxy_ = std::make_unique<ProxyProcess>(config.toJson());
  }
  void startProxy() { startProxy(simpleConfig(port_, {memberOf(member_)})); }
  HttpClient client() const { return HttpClient("127.0.0.1", port_); }

  uint16_t port_ = pickFreePort();
  TestHttpBackend member_{"m1", "127.0.0.11"};
  std::unique_ptr<ProxyProcess> proxy_;  // declared last: stops before the member
};

TEST_F(HttpProxying, ForwardsAGetRequestAndReturnsTheMembersResponse) {
  startProxy();
  HttpResponse resp = fetchOnce("127.0.0.1", port_, "/hello?x=1");
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.header("X-Backend"), "m1");
  EXPECT_EQ(resp.body, "m1\n");
  ASSERT_EQ(member_.requestCount(), 1u);
  RecordedRequest req = member_.requests()[0];
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/hello?x=1");
  EXPECT_EQ(req.header("Host"), "test.invalid");
}

TEST_F(HttpProxying, KeepAliveClientReusesOneConnectionAndTheMemberSeesFewerConnections) {
  startProxy();
  HttpClient c = client();
  c.connect();
  int fd = c.fd();
  for (int i = 0; i < 10; ++i) {
    HttpResponse resp = c.get("/k" + std::to_string(i));
    ASSERT_EQ(resp.status, 200) << "request " << i;
    ASSERT_FALSE(resp.closed_after) << "proxy closed a keep-alive connection after request " << i;
    ASSERT_EQ(c.fd(), fd);
  }
  EXPECT_EQ(member_.requestCount(), 10u);
  EXPECT_LT(member_.connectionCount(), 10u) << "no upstream keep-alive";
  EXPECT_LE(member_.connectionCount(), 2u);
}

TEST_F(HttpProxying, MemberConnectionsAreReusedAcrossSequentialClientConnections) {
  startProxy();
  for (int i = 0; i < 10; ++i) {
    HttpClient c = client();
    HttpResponse resp = c.get("/s" + std::to_string(i));  // keep-alive, then closed by us
    ASSERT_EQ(resp.status, 200);
  }
  EXPECT_EQ(member_.requestCount(), 10u);
  EXPECT_LT(member_.connectionCount(), 10u)
      << "each client connection opened its own member connection";
}

TEST_F(HttpProxying, AnswersAnHttp10RequestAndClosesTheConnection) {
  startProxy();
  HttpClient c = client();
  c.sendRaw("GET /old HTTP/1.0\r\n\r\n");
  HttpResponse resp = c.readResponse();
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.header("X-Backend"), "m1");
  EXPECT_EQ(resp.body, "m1\n");
  EXPECT_TRUE(c.waitClosed(2000))
      << "HTTP/1.0 without keep-alive must be closed after the response";
  ASSERT_EQ(member_.requestCount(), 1u);
  EXPECT_EQ(member_.requests()[0].target, "/old");
}

TEST_F(HttpProxying, ForwardsAChunkedRequestBodyIntact) {
  startProxy();
  std::string body;
  for (int i = 0; i < 3000; ++i) body += static_cast<char>('A' + i % 26);
  HttpClient c = client();
  c.sendRaw("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
            encodeChunked(body, 700));
  HttpResponse resp = c.readResponse();
  EXPECT_EQ(resp.status, 200);
  ASSERT_EQ(member_.requestCount(), 1u);
  EXPECT_EQ(member_.requests()[0].body, body);
}

TEST_F(HttpProxying, ForwardsAChunkedResponseBodyIntact) {
  member_.configure([](HttpBackendOptions& o) {
    o.chunked = true;
    o.body_size = 20000;
  });
  startProxy();
  HttpClient c = client();
  HttpResponse resp = c.get("/chunked");
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body.size(), 20000u);
  EXPECT_TRUE(resp.body == patternBody(20000)) << "body bytes differ";
  // The connection stays usable after a chunked response.
  EXPECT_EQ(c.get("/again").status, 200);
}

TEST_F(HttpProxying, ForwardsALargeResponseBodyIntact) {
  member_.configure([](HttpBackendOptions& o) { o.body_size = 3 << 20; });
  startProxy();
  HttpResponse resp = fetchOnce("127.0.0.1", port_, "/big");
  EXPECT_EQ(resp.status, 200);
  ASSERT_EQ(resp.body.size(), size_t{3} << 20);
  EXPECT_TRUE(resp.body == patternBody(3 << 20)) << "body bytes differ";
}

TEST_F(HttpProxying, HeadResponseHasNoBodyAndTheConnectionStaysUsable) {
  member_.configure([](HttpBackendOptions& o) { o.body_size = 500; });
  startProxy();
  HttpClient c = client();
  HttpResponse head = c.request("HEAD", "/h");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  HttpResponse get = c.get("/g");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body.size(), 500u);
}

TEST_F(HttpProxying, RelaysExpect100ContinueBeforeTheBodyIsSent) {
  startProxy();
  HttpClient c = client();
  c.sendRaw("PUT /data HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n");
  HttpResponse interim = c.readResponse(2000, false);
  ASSERT_EQ(interim.status, 100) << "no 100 Continue before the body";
  c.sendRaw("hello world");
  HttpResponse resp = c.readResponse();
  EXPECT_EQ(resp.status, 200);
  ASSERT_EQ(member_.requestCount(), 1u);
  EXPECT_EQ(member_.requests()[0].body, "hello world");
}

TEST_F(HttpProxying, TunnelsAWebSocketUpgradeBothWays) {
  startProxy();
  HttpClient c = client();
  c.sendRaw(
      "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  HttpResponse resp = c.readResponse();
  ASSERT_EQ(resp.status, 101);
  EXPECT_TRUE(equalsIgnoreCase(resp.header("Upgrade"), "websocket"));
  std::string frames = "\x81\x05hello-not-http\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  for (int round = 0; round < 3; ++round) {
    c.sendRaw(frames);
    std::string echoed = c.readRaw(0);
    ASSERT_TRUE(readAtLeast(c.fd(), echoed, frames.size(), 3000))
        << "round " << round << ": got " << echoed.size();
    EXPECT_EQ(echoed, frames);
  }
  EXPECT_EQ(member_.requestCount(), 1u) << "tunnelled bytes were parsed as HTTP";
}

TEST_F(HttpProxying, AnswersPipelinedRequestsInOrder) {
  member_.configure([](HttpBackendOptions& o) {
    o.delay_ms = 300;
    o.delay_path_prefix = "/slow";
  });
  startProxy();
  HttpClient c = client();
  std::string batch;
  std::vector<std::string> paths = {"/slow0", "/p1", "/p2", "/slow3", "/p4"};
  for (const auto& p : paths) batch += "GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n";
  c.sendRaw(batch);
  for (const auto& p : paths) {
    HttpResponse resp = c.readResponse();
    EXPECT_EQ(resp.status, 200);
    EXPECT_EQ(resp.header("X-Request-Path"), p);
  }
  EXPECT_EQ(member_.requestCount(), paths.size());
}

TEST_F(HttpProxying, ServesOnEveryAdditionalAddressOfTheListener) {
  ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
  c.listener("l1").additional_addresses = {"127.0.0.2", "127.0.0.3"};
  startProxy(c);
  for (const char* address : {"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
    HttpResponse resp = fetchOnce(address, port_, "/");
    EXPECT_EQ(resp.status, 200) << address;
    EXPECT_EQ(resp.header("X-Backend"), "m1") << address;
  }
  EXPECT_FALSE(tryConnect("127.0.0.4", port_).valid()) << "bound more than the listed addresses";
}

}  // namespace
}  // namespace banyan::test
