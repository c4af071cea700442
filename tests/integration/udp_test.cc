// UDP listeners with the real binary on loopback: flows balanced over UDP echo
// members, per-client affinity, SOURCE_IP persistence, idle timeout, flow
// limits, member removal and health, counters, and a bounded load.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "fixtures.h"
#include "test_udp_backend.h"

namespace banyan::test {
namespace {

MemberSpec udpMemberOf(const TestUdpBackend& b, int weight = 1) {
  MemberSpec m;
  m.id = b.name();
  m.address = b.address();
  m.protocol_port = b.port();
  m.weight = weight;
  return m;
}

// "m1:payload" -> "m1".
std::string memberName(const std::string& reply) { return reply.substr(0, reply.find(':')); }

class Udp : public ::testing::Test {
 protected:
  Udp() {
    for (int i = 0; i < 3; ++i)
      members_.push_back(std::make_unique<TestUdpBackend>("m" + std::to_string(i + 1),
                                                          "127.0.0." + std::to_string(81 + i)));
  }
  ConfigSpec config(size_t count, const std::string& algorithm = "ROUND_ROBIN") const {
    std::vector<MemberSpec> specs;
    for (size_t i = 0; i < count; ++i) specs.push_back(udpMemberOf(*members_[i]));
    ConfigSpec c = simpleConfig(port_, specs, "UDP", "UDP");
    c.pool("p1").lb_algorithm = algorithm;
    return c;
  }
  void startProxy(const ConfigSpec& c) { proxy_ = std::make_unique<ProxyProcess>(c.toJson()); }
  // One exchange from a fresh client socket (a new flow); the member that answered.
  std::string memberFor(const std::string& source = "127.0.0.1") {
    Fd c = udpClient("127.0.0.1", port_, source);
    std::string reply = udpExchange(c.get(), "ping");
    return reply.empty() ? "" : memberName(reply);
  }
  int64_t stat(const std::string& section, const std::string& id, const std::string& field) {
    return statValue(*proxy_, section, id, field).value_or(-1);
  }

  uint16_t port_ = pickFreeUdpPort();
  std::vector<std::unique_ptr<TestUdpBackend>> members_;
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(Udp, AnswersComeBackFromTheListenerAddressWithTheMembersPayload) {
  startProxy(config(1));
  Fd c = udpClient("127.0.0.1", port_);  // connected: only datagrams from the VIP get through
  EXPECT_EQ(udpExchange(c.get(), "hello"), "m1:hello");
  EXPECT_EQ(udpExchange(c.get(), "again"), "m1:again");
}

TEST_F(Udp, WildcardListenerAnswersFromTheAddressTheClientSentTo) {
  ConfigSpec c = config(1);
  c.listener("l1").address = "0.0.0.0";
  startProxy(c);
  // A connected client drops datagrams from any other source address.
  for (const char* vip : {"127.0.0.1", "127.0.0.77"}) {
    Fd client = udpClient(vip, port_);
    EXPECT_EQ(udpExchange(client.get(), "w"), "m1:w") << vip;
  }
}

TEST_F(Udp, Ipv6ListenerRelaysToAnIpv6Member) {
  TestUdpBackend v6("v6", "::1");
  MemberSpec m;
  m.id = "v6";
  m.address = "::1";
  m.protocol_port = v6.port();
  uint16_t port = pickFreeUdpPort("::1");
  ConfigSpec c = simpleConfig(port, {m}, "UDP", "UDP", "::1");
  startProxy(c);
  Fd client = udpClient("::1", port, "::1");
  EXPECT_EQ(udpExchange(client.get(), "six"), "v6:six");
}

TEST_F(Udp, RoundRobinSpreadsNewFlowsEvenlyOverMembers) {
  ConfigSpec c = config(2);
  c.workers = 1;  // one selector: an exact alternation
  startProxy(c);
  std::map<std::string, int> counts;
  for (int i = 0; i < 40; ++i) counts[memberFor()]++;
  EXPECT_EQ(counts["m1"], 20);
  EXPECT_EQ(counts["m2"], 20);
}

TEST_F(Udp, WeightsShareFlowsOneToThree) {
  ConfigSpec c = config(2);
  c.workers = 1;
  c.pool("p1").members[1].weight = 3;
  startProxy(c);
  std::map<std::string, int> counts;
  for (int i = 0; i < 80; ++i) counts[memberFor()]++;
  EXPECT_EQ(counts["m1"], 20);
  EXPECT_EQ(counts["m2"], 60);
}

TEST_F(Udp, AllDatagramsOfOneClientGoToOneMemberThroughOneFlow) {
  startProxy(config(3));
  Fd c = udpClient("127.0.0.1", port_);
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i)
    seen.insert(memberName(udpExchange(c.get(), "d" + std::to_string(i))));
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(stat("listeners", "l1", "total_connections"), 1);
  EXPECT_EQ(stat("listeners", "l1", "active_connections"), 1);
  size_t sources = 0;
  for (auto& m : members_) sources += m->sourceCount();
  EXPECT_EQ(sources, 1u);
}

TEST_F(Udp, SourceIpPersistenceKeepsEveryFlowOfAnAddressOnOneMember) {
  ConfigSpec c = config(3);
  c.pool("p1").extra["session_persistence"] = R"({"type": "SOURCE_IP", "persistence_timeout": 60})";
  startProxy(c);
  std::set<std::string> all;
  for (int a = 0; a < 6; ++a) {
    std::string source = "127.0.1." + std::to_string(10 + a);
    std::set<std::string> seen;
    for (int i = 0; i < 8; ++i) seen.insert(memberFor(source));
    EXPECT_EQ(seen.size(), 1u) << source;
    all.insert(seen.begin(), seen.end());
  }
  EXPECT_GE(all.size(), 2u) << "six addresses all on one member: persistence pinned everything";
}

TEST_F(Udp, SourceIpAlgorithmMapsAnAddressToOneMember) {
  startProxy(config(3, "SOURCE_IP"));
  std::set<std::string> seen;
  for (int i = 0; i < 10; ++i) seen.insert(memberFor("127.0.2.7"));
  EXPECT_EQ(seen.size(), 1u);
}

TEST_F(Udp, IdleTimeoutEndsTheFlowAndTheNextDatagramOpensANewOne) {
  ConfigSpec c = config(1);
  c.listener("l1").timeout_client_data = 300;
  startProxy(c);
  Fd client = udpClient("127.0.0.1", port_);
  ASSERT_EQ(udpExchange(client.get(), "a"), "m1:a");
  EXPECT_EQ(stat("listeners", "l1", "active_connections"), 1);
  // Traffic keeps it alive past the timeout.
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ASSERT_EQ(udpExchange(client.get(), "k"), "m1:k");
  }
  EXPECT_EQ(stat("listeners", "l1", "total_connections"), 1);
  EXPECT_TRUE(
      waitUntil([&] { return stat("listeners", "l1", "active_connections") == 0; }, Millis(2000)));
  EXPECT_EQ(stat("members", "m1", "active_connections"), 0);
  ASSERT_EQ(udpExchange(client.get(), "b"), "m1:b");
  EXPECT_EQ(stat("listeners", "l1", "total_connections"), 2);
  EXPECT_EQ(members_[0]->sourceCount(), 2u);  // a new flow socket toward the member
}

TEST_F(Udp, ConnectionLimitCountsFlows) {
  ConfigSpec c = config(1);
  c.listener("l1").connection_limit = 2;
  startProxy(c);
  Fd a = udpClient("127.0.0.1", port_);
  Fd b = udpClient("127.0.0.1", port_);
  Fd third = udpClient("127.0.0.1", port_);
  EXPECT_EQ(udpExchange(a.get(), "a"), "m1:a");
  EXPECT_EQ(udpExchange(b.get(), "b"), "m1:b");
  EXPECT_EQ(udpExchange(third.get(), "c", 300), "");
  EXPECT_GE(stat("listeners", "l1", "request_errors"), 1);
  EXPECT_EQ(udpExchange(a.get(), "a2"), "m1:a2");  // existing flows keep working
}

TEST_F(Udp, CountersReportBytesAndFlows) {
  startProxy(config(1));
  Fd c = udpClient("127.0.0.1", port_);
  ASSERT_EQ(udpExchange(c.get(), "12345"), "m1:12345");
  ASSERT_EQ(udpExchange(c.get(), "123"), "m1:123");
  EXPECT_EQ(stat("listeners", "l1", "bytes_in"), 8);
  EXPECT_EQ(stat("listeners", "l1", "bytes_out"), 14);
  EXPECT_EQ(stat("members", "m1", "bytes_out"), 8);
  EXPECT_EQ(stat("members", "m1", "bytes_in"), 14);
  EXPECT_EQ(stat("members", "m1", "total_connections"), 1);
}

TEST_F(Udp, HotApplyRemovingAMemberMovesItsClientsToTheOthers) {
  startProxy(config(2));
  Fd c = udpClient("127.0.0.1", port_);
  std::string first = memberName(udpExchange(c.get(), "x"));
  ASSERT_FALSE(first.empty());
  ConfigSpec next = config(2);
  next.generation = 2;
  auto& ms = next.pool("p1").members;
  ms.erase(std::remove_if(ms.begin(), ms.end(), [&](const MemberSpec& m) { return m.id == first; }),
           ms.end());
  ASSERT_EQ(proxy_->applyConfig(next.toJson()).status, 200);
  std::string after = memberName(udpExchange(c.get(), "y"));
  EXPECT_FALSE(after.empty());
  EXPECT_NE(after, first);
  EXPECT_EQ(stat("listeners", "l1", "total_connections"), 2);  // the old flow closed, a new one
  EXPECT_EQ(stat("listeners", "l1", "active_connections"), 1);
}

TEST_F(Udp, HotApplyKeepingTheMemberKeepsTheFlow) {
  startProxy(config(2));
  Fd c = udpClient("127.0.0.1", port_);
  std::string first = memberName(udpExchange(c.get(), "x"));
  ConfigSpec next = config(2);
  next.generation = 2;
  ASSERT_EQ(proxy_->applyConfig(next.toJson()).status, 200);
  EXPECT_EQ(memberName(udpExchange(c.get(), "y")), first);
  EXPECT_EQ(stat("listeners", "l1", "total_connections"), 1);
}

TEST_F(Udp, MemberThatFailsUdpConnectChecksLosesItsTraffic) {
  ConfigSpec c = config(2);
  MonitorSpec hm;
  hm.type = "UDP-CONNECT";
  hm.delay = 0.1;
  hm.timeout = 0.2;
  hm.max_retries_down = 2;
  c.pool("p1").health_monitor = hm;
  startProxy(c);
  ASSERT_TRUE(waitHealth(*proxy_, "m2", "ONLINE", 3000));
  std::string held_member;
  // Find a client flow on m2, so the down member has a live flow to lose.
  std::vector<Fd> clients;
  for (int i = 0; i < 10 && held_member != "m2"; ++i) {
    clients.push_back(udpClient("127.0.0.1", port_));
    held_member = memberName(udpExchange(clients.back().get(), "x"));
  }
  ASSERT_EQ(held_member, "m2");
  members_[1]->stop();  // ICMP port unreachable from now on
  ASSERT_TRUE(waitHealth(*proxy_, "m2", "ERROR", 3000)) << proxy_->get("/health").body;
  // The flow on m2 is balanced again; new flows avoid m2.
  EXPECT_EQ(memberName(udpExchange(clients.back().get(), "y")), "m1");
  for (int i = 0; i < 10; ++i) EXPECT_EQ(memberFor(), "m1");
  members_[1]->start();
  EXPECT_TRUE(waitHealth(*proxy_, "m2", "ONLINE", 3000)) << proxy_->get("/health").body;
}

TEST_F(Udp, TcpAndUdpListenersShareAPort) {
  TestTcpBackend tcp("t1", "127.0.0.91");
  uint16_t port = pickFreePort();
  ConfigSpec c = config(1);
  c.listener("l1").protocol_port = port;
  ListenerSpec t;
  t.id = "t1";
  t.protocol = "TCP";
  t.protocol_port = port;
  t.default_pool_id = "tp";
  c.listeners.push_back(t);
  PoolSpec tp;
  tp.id = "tp";
  tp.protocol = "TCP";
  tp.members.push_back(memberOf(tcp));
  c.pools.push_back(tp);
  startProxy(c);
  Fd u = udpClient("127.0.0.1", port);
  EXPECT_EQ(udpExchange(u.get(), "u"), "m1:u");
  Fd s = connectTo("127.0.0.1", port);
  std::string greeting;
  ASSERT_TRUE(readAtLeast(s.get(), greeting, 3, 2000));
  EXPECT_EQ(greeting, "t1\n");
}

// Datagrams sent back to back arrive in batches (recvmmsg/sendmmsg): every one
// is relayed whole and in order, both ways, also when the batches mix clients.
TEST_F(Udp, BurstsFromInterleavedClientsAreRelayedWholeAndInOrder) {
  startProxy(config(3));
  constexpr int kClients = 4;
  constexpr int kEach = 40;
  std::vector<Fd> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(udpClient("127.0.0.1", port_, "127.0.4." + std::to_string(c + 1)));
    int big = 1 << 20;
    setsockopt(clients.back().get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  }
  for (int i = 0; i < kEach; ++i)
    for (int c = 0; c < kClients; ++c) {
      std::string payload = std::to_string(c) + "/" + std::to_string(i);
      ASSERT_EQ(::send(clients[c].get(), payload.data(), payload.size(), 0),
                static_cast<ssize_t>(payload.size()));
    }
  for (int c = 0; c < kClients; ++c) {
    std::string member;
    for (int i = 0; i < kEach; ++i) {
      std::string reply = udpReceive(clients[c].get(), 2000);
      ASSERT_FALSE(reply.empty()) << "client " << c << " datagram " << i;
      EXPECT_EQ(reply.substr(reply.find(':') + 1), std::to_string(c) + "/" + std::to_string(i));
      if (member.empty()) member = memberName(reply);
      EXPECT_EQ(memberName(reply), member) << "one flow, one member";
    }
  }
  // Which members the four flows get depends on the worker each lands on (every
  // worker balances its own flows), so only their count is certain.
  EXPECT_EQ(stat("listeners", "l1", "total_connections"), kClients);
}

TEST_F(Udp, DatagramsNearTheSizeLimitCrossBetweenSmallOnes) {
  startProxy(config(1));
  Fd c = udpClient("127.0.0.1", port_);
  int big = 1 << 20;
  setsockopt(c.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  std::vector<std::string> sent = {"a", std::string(65000, 'x'), "b", std::string(40000, 'y'), "c"};
  for (const std::string& p : sent)
    ASSERT_EQ(::send(c.get(), p.data(), p.size(), 0), static_cast<ssize_t>(p.size()));
  for (const std::string& p : sent) {
    std::string reply = udpReceive(c.get(), 2000);
    ASSERT_EQ(reply.size(), p.size() + 3);
    EXPECT_EQ(reply, "m1:" + p);
  }
  EXPECT_EQ(stat("listeners", "l1", "bytes_in"), 65000 + 40000 + 3);
  EXPECT_EQ(stat("listeners", "l1", "bytes_out"), 65000 + 40000 + 3 + 5 * 3);
}

TEST_F(Udp, BoundedLoadOfEightClientsIsAnsweredInFull) {
  startProxy(config(3, "LEAST_CONNECTIONS"));
  constexpr int kClients = 8;
  constexpr int kExchanges = 500;
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      Fd c = udpClient("127.0.0.1", port_, "127.0.3." + std::to_string(t + 1));
      for (int i = 0; i < kExchanges; ++i) {
        std::string payload = std::to_string(t) + "/" + std::to_string(i);
        std::string reply = udpExchange(c.get(), payload, 1000);
        if (reply.empty()) continue;  // lost: counted below
        if (reply.substr(reply.find(':') + 1) == payload)
          answered++;
        else
          wrong++;
      }
    });
  }
  for (auto& th : threads) th.join();
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(wrong.load(), 0);
  // Loopback does not lose lock-step datagrams; allow a handful for a loaded host.
  EXPECT_GE(answered.load(), kClients * kExchanges - 5);
  EXPECT_LT(elapsed, std::chrono::seconds(20));
  EXPECT_EQ(stat("listeners", "l1", "total_connections"), kClients);
  int64_t spread = 0;
  for (const char* m : {"m1", "m2", "m3"}) spread += stat("members", m, "total_connections") > 0;
  EXPECT_EQ(spread, 3);
}

}  // namespace
}  // namespace banyan::test
