// Load-balancing algorithms as seen from outside: request distribution over
// members by ROUND_ROBIN weights, LEAST_CONNECTIONS, SOURCE_IP and
// SOURCE_IP_PORT (Maglev) affinity and disruption, weight 0, admin down.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

class Balancing : public ::testing::Test {
 protected:
  Balancing() {
    for (int i = 0; i < 5; ++i)
      members_.push_back(std::make_unique<TestHttpBackend>("m" + std::to_string(i + 1),
                                                           "127.0.0." + std::to_string(71 + i)));
  }
  ConfigSpec config(const std::string& algorithm, size_t count,
                    std::vector<int> weights = {}) const {
    std::vector<MemberSpec> specs;
    for (size_t i = 0; i < count; ++i)
      specs.push_back(memberOf(*members_[i], i < weights.size() ? weights[i] : 1));
    ConfigSpec c = simpleConfig(port_, specs);
    c.pool("p1").lb_algorithm = algorithm;
    return c;
  }
  void startProxy(const ConfigSpec& c) { proxy_ = std::make_unique<ProxyProcess>(c.toJson()); }
  // One request on a fresh connection; the X-Backend that answered.
  std::string memberFor(const ConnectOptions& options = {}) {
    HttpResponse resp = fetchOnce("127.0.0.1", port_, "/", options);
    EXPECT_EQ(resp.status, 200);
    return resp.header("X-Backend");
  }
  static ConnectOptions from(const std::string& source, uint16_t port = 0) {
    ConnectOptions o;
    o.source_address = source;
    o.source_port = port;
    return o;
  }

  uint16_t port_ = pickFreePort();
  std::vector<std::unique_ptr<TestHttpBackend>> members_;
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(Balancing, RoundRobinWeightsOneTwoThreeSplitSixHundredRequestsWithinFivePercent) {
  startProxy(config("ROUND_ROBIN", 3, {1, 2, 3}));
  std::map<std::string, int> counts;
  for (int i = 0; i < 600; ++i) counts[memberFor()]++;
  EXPECT_NEAR(counts["m1"], 100, 30);
  EXPECT_NEAR(counts["m2"], 200, 30);
  EXPECT_NEAR(counts["m3"], 300, 30);
  EXPECT_EQ(counts["m1"] + counts["m2"] + counts["m3"], 600);
}

TEST_F(Balancing, RoundRobinAlternatesEqualMembersOnOneKeepAliveConnection) {
  startProxy(config("ROUND_ROBIN", 2));
  HttpClient c("127.0.0.1", port_);
  std::map<std::string, int> counts;
  for (int i = 0; i < 20; ++i) counts[c.get("/").header("X-Backend")]++;
  EXPECT_NEAR(counts["m1"], 10, 2);
  EXPECT_NEAR(counts["m2"], 10, 2);
}

TEST_F(Balancing, LeastConnectionsPrefersTheMemberWithFewerOpenConnections) {
  members_[0]->configure(
      [](HttpBackendOptions& o) { o.delay_ms = 3000; });  // m1 holds every request
  startProxy(config("LEAST_CONNECTIONS", 2));
  std::vector<std::unique_ptr<HttpClient>> held;
  for (int i = 0; i < 10; ++i) {
    auto c = std::make_unique<HttpClient>("127.0.0.1", port_);
    c->sendRaw(HttpClient::buildRequest("GET", "/lc" + std::to_string(i), {}, ""));
    try {
      HttpResponse resp = c->readResponse(300, false);
      EXPECT_EQ(resp.header("X-Backend"), "m2");
    } catch (const std::exception&) {
      held.push_back(std::move(c));  // still waiting on slow m1
    }
  }
  // Only ties (both idle, at most once per worker) may pick m1; then m1 is busy and m2 is free.
  EXPECT_LE(members_[0]->requestCount(), 2u);
  EXPECT_GE(members_[1]->requestCount(), 8u);
}

TEST_F(Balancing, SourceIpSticksEachClientAddressToOneMember) {
  startProxy(config("SOURCE_IP", 3));
  std::set<std::string> used;
  for (int client = 1; client <= 20; ++client) {
    std::string source = "127.1.0." + std::to_string(client);
    std::string first = memberFor(from(source));
    used.insert(first);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(memberFor(from(source)), first) << "client " << source;
  }
  EXPECT_GE(used.size(), 2u) << "20 client addresses all hashed to one member";
}

TEST_F(Balancing, SourceIpPortSticksOneAddressAndPortToOneMember) {
  startProxy(config("SOURCE_IP_PORT", 3));
  for (int client = 1; client <= 10; ++client) {
    std::string source = "127.1.1." + std::to_string(client);
    uint16_t port = static_cast<uint16_t>(41000 + client);
    std::string first, second;
    for (std::string* out : {&first, &second}) {
      // An abortive close leaves no TIME_WAIT, so the same source port can connect again.
      HttpClient c("127.0.0.1", port_, from(source, port));
      HttpResponse resp = c.get("/");
      EXPECT_EQ(resp.status, 200);
      *out = resp.header("X-Backend");
      c.closeAbortively();
    }
    EXPECT_EQ(first, second) << source << ":" << port;
  }
}

TEST_F(Balancing, SourceIpPortSpreadsOneAddressOverMembersByPort) {
  startProxy(config("SOURCE_IP_PORT", 3));
  std::set<std::string> used;
  for (int i = 0; i < 30; ++i) used.insert(memberFor(from("127.1.2.1")));
  EXPECT_GE(used.size(), 2u) << "the source port does not take part in the hash";
}

TEST_F(Balancing, RemovingOneOfFiveMembersRemapsAboutAFifthOfSourceIpClients) {
  startProxy(config("SOURCE_IP", 5));
  auto source = [](int i) {
    return "127.2." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
  };
  const int kClients = 200;
  std::vector<std::string> before(kClients), after(kClients);
  for (int i = 0; i < kClients; ++i) before[i] = memberFor(from(source(i)));
  ConfigSpec smaller = config("SOURCE_IP", 4);
  smaller.generation = 2;
  ControlResponse resp = proxy_->applyConfig(smaller.toJson());
  ASSERT_EQ(resp.status, 200) << resp.body;
  for (int i = 0; i < kClients; ++i) after[i] = memberFor(from(source(i)));
  int moved = 0, were_on_removed = 0;
  for (int i = 0; i < kClients; ++i) {
    if (before[i] == "m5") ++were_on_removed;
    if (before[i] != after[i]) ++moved;
    EXPECT_NE(after[i], "m5");
  }
  EXPECT_GT(were_on_removed, 0);
  EXPECT_GE(moved, were_on_removed);
  EXPECT_LE(moved, static_cast<int>(1.6 * kClients / 5))
      << "Maglev should remap only about 1/N of clients";
}

TEST_F(Balancing, WeightZeroMemberGetsNoRequests) {
  startProxy(config("ROUND_ROBIN", 2, {1, 0}));
  for (int i = 0; i < 30; ++i) EXPECT_EQ(memberFor(), "m1");
  EXPECT_EQ(members_[1]->requestCount(), 0u);
}

TEST_F(Balancing, WeightZeroMemberGetsNoRequestsWithSourceIp) {
  startProxy(config("SOURCE_IP", 2, {1, 0}));
  for (int i = 1; i <= 30; ++i) EXPECT_EQ(memberFor(from("127.1.3." + std::to_string(i))), "m1");
  EXPECT_EQ(members_[1]->requestCount(), 0u);
}

TEST_F(Balancing, AdminDownMemberGetsNoRequests) {
  ConfigSpec c = config("ROUND_ROBIN", 3);
  c.pool("p1").members[1].admin_state_up = false;
  startProxy(c);
  std::map<std::string, int> counts;
  for (int i = 0; i < 30; ++i) counts[memberFor()]++;
  EXPECT_EQ(counts["m2"], 0);
  EXPECT_EQ(members_[1]->requestCount(), 0u);
  EXPECT_GT(counts["m1"], 0);
  EXPECT_GT(counts["m3"], 0);
}

}  // namespace
}  // namespace banyan::test
