// Listener insert_headers: X-Forwarded-For/Port/Proto and RFC 7239 Forwarded,
// as the member receives them, over IPv4 and IPv6.
#include <gtest/gtest.h>

#include <memory>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

const std::map<std::string, std::string> kAllHeaders = {{"X-Forwarded-For", "true"},
                                                        {"X-Forwarded-Port", "true"},
                                                        {"X-Forwarded-Proto", "true"},
                                                        {"Forwarded", "true"}};

class InsertHeaders : public ::testing::Test {
 protected:
  void startProxy(std::map<std::string, std::string> headers = kAllHeaders) {
    ConfigSpec c = simpleConfig(port_, {memberOf(member_)});
    c.listener("l1").insert_headers = std::move(headers);
    proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  }
  // One request from client source 127.0.0.77; returns what the member received.
  RecordedRequest send(const HeaderList& headers = {}) {
    ConnectOptions o;
    o.source_address = "127.0.0.77";
    HttpClient c("127.0.0.1", port_, o);
    HttpResponse resp = c.get("/h", headers);
    EXPECT_EQ(resp.status, 200);
    EXPECT_TRUE(member_.waitForRequests(1, 2000));
    auto reqs = member_.requests();
    if (reqs.empty()) throw std::runtime_error("member received no request");
    return reqs.back();
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend member_{"m1", "127.0.0.31"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(InsertHeaders, XForwardedForCarriesTheClientAddress) {
  startProxy();
  RecordedRequest req = send();
  EXPECT_EQ(joinedHeaderValues(req.headers, "X-Forwarded-For"), "127.0.0.77");
}

TEST_F(InsertHeaders, XForwardedForIsAppendedToAnExistingValue) {
  startProxy();
  RecordedRequest req = send({{"X-Forwarded-For", "198.51.100.1"}});
  EXPECT_EQ(joinedHeaderValues(req.headers, "X-Forwarded-For"), "198.51.100.1, 127.0.0.77");
}

TEST_F(InsertHeaders, XForwardedPortIsTheListenerPort) {
  startProxy();
  RecordedRequest req = send();
  EXPECT_EQ(req.header("X-Forwarded-Port"), std::to_string(port_));
  EXPECT_EQ(headerCount(req.headers, "X-Forwarded-Port"), 1u);
}

TEST_F(InsertHeaders, XForwardedProtoIsHttp) {
  startProxy();
  RecordedRequest req = send();
  EXPECT_EQ(req.header("X-Forwarded-Proto"), "http");
  EXPECT_EQ(headerCount(req.headers, "X-Forwarded-Proto"), 1u);
}

TEST_F(InsertHeaders, ForwardedCarriesForProtoAndBy) {
  startProxy();
  RecordedRequest req = send();
  EXPECT_EQ(joinedHeaderValues(req.headers, "Forwarded"), "for=127.0.0.77;proto=http;by=127.0.0.1");
}

TEST_F(InsertHeaders, ForwardedIsAppendedToAnExistingValue) {
  startProxy();
  RecordedRequest req = send({{"Forwarded", "for=192.0.2.60;proto=https"}});
  EXPECT_EQ(joinedHeaderValues(req.headers, "Forwarded"),
            "for=192.0.2.60;proto=https, for=127.0.0.77;proto=http;by=127.0.0.1");
}

TEST_F(InsertHeaders, NothingIsInsertedWhenNotConfigured) {
  startProxy({});
  RecordedRequest req = send();
  EXPECT_EQ(headerCount(req.headers, "X-Forwarded-For"), 0u);
  EXPECT_EQ(headerCount(req.headers, "X-Forwarded-Port"), 0u);
  EXPECT_EQ(headerCount(req.headers, "X-Forwarded-Proto"), 0u);
  EXPECT_EQ(headerCount(req.headers, "Forwarded"), 0u);
}

TEST_F(InsertHeaders, OnlyTheConfiguredHeadersAreInserted) {
  startProxy({{"X-Forwarded-For", "true"}, {"Forwarded", "false"}});
  RecordedRequest req = send();
  EXPECT_EQ(joinedHeaderValues(req.headers, "X-Forwarded-For"), "127.0.0.77");
  EXPECT_EQ(headerCount(req.headers, "Forwarded"), 0u);
  EXPECT_EQ(headerCount(req.headers, "X-Forwarded-Port"), 0u);
}

TEST_F(InsertHeaders, HeadersAreInsertedIntoEveryRequestOfAKeepAliveConnection) {
  startProxy();
  ConnectOptions o;
  o.source_address = "127.0.0.77";
  HttpClient c("127.0.0.1", port_, o);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.get("/k").status, 200);
  ASSERT_EQ(member_.requestCount(), 3u);
  for (const auto& req : member_.requests())
    EXPECT_EQ(joinedHeaderValues(req.headers, "X-Forwarded-For"), "127.0.0.77");
}

TEST(InsertHeadersIpv6, ForwardedQuotesAnIpv6ClientAndListener) {
  uint16_t port = 0;
  try {
    port = pickFreePort("::1");
  } catch (const std::exception& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  TestHttpBackend member("m6", "127.0.0.32");
  ConfigSpec c = simpleConfig(port, {memberOf(member)}, "HTTP", "HTTP", "::1");
  c.listener("l1").insert_headers = kAllHeaders;
  ProxyProcess proxy(c.toJson());
  HttpClient client("::1", port);
  ASSERT_EQ(client.get("/v6").status, 200);
  ASSERT_EQ(member.requestCount(), 1u);
  RecordedRequest req = member.requests()[0];
  EXPECT_EQ(joinedHeaderValues(req.headers, "X-Forwarded-For"), "::1");
  std::string forwarded = joinedHeaderValues(req.headers, "Forwarded");
  EXPECT_NE(forwarded.find("for=\"[::1]\""), std::string::npos) << forwarded;
  EXPECT_EQ(forwarded, "for=\"[::1]\";proto=http;by=\"[::1]\"");
}

}  // namespace
}  // namespace banyan::test
