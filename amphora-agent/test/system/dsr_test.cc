// The L4 direct-server-return building block (FirewallSpec::l4_dsr) against
// the real kernel. Topology, all in namespaces this test creates, one L2
// segment (bridge br0 in the "switch" namespace):
//
//   client     eth0 192.0.2.10 / 2001:db8::10 ─┐
//   client-bad eth0 192.0.2.11 / 2001:db8::11 ─┤
//   amphora    eth1 192.0.2.1, VIP 192.0.2.100 ─┼─ br0
//                   2001:db8::1, VIP 2001:db8::100
//   member 1   eth0 192.0.2.21 / 2001:db8::21 ─┤   VIPs on lo, arp_ignore=1, arp_announce=2
//   member 2   eth0 192.0.2.22 / 2001:db8::22 ─┘
//
// The amphora has no socket on VIP:80 and does not forward (ip_forward=0):
// a connection to VIP:80 works only through the ingress fwd rule, and the
// member's answer reaches the client only straight over the segment.
#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "netns.h"
#include "sockets.h"
#include "system/firewall.h"
#include "system/nft_batch.h"
// After sockets.h: glibc's <netinet/in.h> must precede the kernel's <linux/in.h>.
// clang-format off
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
// clang-format on

namespace banyan::agent::system {
namespace {

using testing::ConnectOutcome;
using testing::Netns;

constexpr const char* kVip4 = "192.0.2.100";
constexpr const char* kVip6 = "2001:db8::100";
constexpr uint16_t kPort = 80;
constexpr int kAnswerWaitMs = 3000;
constexpr int kDropWaitMs = 800;

// A member's TCP service: answers every connection with its name, and
// records which local address the client reached (the VIP, if the packet
// arrived unchanged at layer 3).
class NameServer {
 public:
  NameServer(const Netns& ns, const std::string& ip, uint16_t port, std::string name)
      : name_(std::move(name)) {
    fd_ = ns.run([&] { return testing::listenTcp(ip, port); });
    if (fd_ < 0) throw std::runtime_error("listen " + ip + " failed in " + ns.name());
    thread_ = std::thread([this] { loop(); });
  }
  ~NameServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  NameServer(const NameServer&) = delete;
  NameServer& operator=(const NameServer&) = delete;

  std::set<std::string> localAddresses() {
    std::lock_guard<std::mutex> lock(mu_);
    return local_addresses_;
  }

 private:
  void loop() {
    // Bounded: no test runs this long; a stuck test cannot keep the thread.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
    while (!stop_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      sockaddr_storage local{};
      socklen_t len = sizeof local;
      char text[INET6_ADDRSTRLEN] = "?";
      if (getsockname(c, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
        if (local.ss_family == AF_INET)
          inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&local)->sin_addr, text, sizeof text);
        else
          inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr, text,
                    sizeof text);
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        local_addresses_.insert(text);
      }
      (void)send(c, name_.data(), name_.size(), MSG_NOSIGNAL);
      shutdown(c, SHUT_WR);
      // Let the client close first (it resets), so no TIME_WAIT here blocks
      // the next connection from the same source port.
      pollfd q{c, POLLIN, 0};
      char buf[64];
      for (int i = 0; i < 20 && poll(&q, 1, 100) > 0; ++i) {
        if (recv(c, buf, sizeof buf, 0) <= 0) break;
      }
      close(c);
    }
  }

  std::string name_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::set<std::string> local_addresses_;
};

// A member's UDP service: answers every datagram with its name, from the
// address it is bound to (the VIP).
class UdpNameServer {
 public:
  UdpNameServer(const Netns& ns, const std::string& ip, uint16_t port, std::string name)
      : name_(std::move(name)) {
    fd_ = ns.run([&] {
      sockaddr_storage ss;
      socklen_t len;
      if (!testing::fillSockaddr(ip, port, ss, len)) return -1;
      int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        close(fd);
        fd = -1;
      }
      return fd;
    });
    if (fd_ < 0) throw std::runtime_error("udp bind " + ip + " failed in " + ns.name());
    thread_ = std::thread([this] {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
      while (!stop_ && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[512];
        sockaddr_storage from{};
        socklen_t flen = sizeof from;
        if (recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen) < 0)
          continue;
        (void)sendto(fd_, name_.data(), name_.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
      }
    });
  }
  ~UdpNameServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  UdpNameServer(const UdpNameServer&) = delete;
  UdpNameServer& operator=(const UdpNameServer&) = delete;

 private:
  std::string name_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One datagram to ip:port (from source_port, if not 0) and the answer, which
// only ip:port can give (the socket is connected); "!timeout" without one.
std::string askUdp(const std::string& ip, uint16_t port, int timeout_ms, uint16_t source_port = 0) {
  sockaddr_storage ss;
  socklen_t len;
  if (!testing::fillSockaddr(ip, port, ss, len)) return "!error";
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "!error";
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (source_port != 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage local;
    socklen_t llen;
    testing::fillSockaddr(ss.ss_family == AF_INET6 ? "::" : "0.0.0.0", source_port, local, llen);
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), llen) != 0) return "!error";
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return "!error";
  if (send(fd, "?", 1, 0) != 1) return "!error";
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return "!timeout";
  char buf[64];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "!error";
}

// Connects (from source_port, if not 0) and reads the answer to EOF. Returns
// the answer, or "!timeout", "!refused", "!error".
std::string fetch(const std::string& ip, uint16_t port, int timeout_ms, uint16_t source_port = 0) {
  sockaddr_storage ss;
  socklen_t len;
  if (!testing::fillSockaddr(ip, port, ss, len)) return "!error";
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return "!error";
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  linger lg{1, 0};  // close with RST: the same 4-tuple can be used again at once
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  if (source_port != 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage local;
    socklen_t llen;
    testing::fillSockaddr(ss.ss_family == AF_INET6 ? "::" : "0.0.0.0", source_port, local, llen);
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), llen) != 0) return "!error";
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)
    return errno == ECONNREFUSED ? "!refused" : "!error";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now())
               .count()));
  };
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, left()) <= 0) return "!timeout";
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err != 0) return err == ECONNREFUSED ? "!refused" : "!error";
  std::string answer;
  while (true) {
    pollfd r{fd, POLLIN, 0};
    if (poll(&r, 1, left()) <= 0) return answer.empty() ? "!timeout" : answer;
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return answer.empty() ? "!error" : answer;
    answer.append(buf, static_cast<size_t>(n));
  }
}

class DsrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::sweepStaleNamespaces();
    sw_ = std::make_unique<Netns>("dsw");
    amp_ = std::make_unique<Netns>("damp");
    client_ = std::make_unique<Netns>("dcl");
    bad_ = std::make_unique<Netns>("dcb");
    m1_ = std::make_unique<Netns>("dm1");
    m2_ = std::make_unique<Netns>("dm2");
    auto r = sw_->exec("ip link add br0 type bridge && ip link set br0 up");
    ASSERT_EQ(r.rc, 0) << r.out;
    testing::veth(*sw_, "pamp", *amp_, "eth1");
    testing::veth(*sw_, "pcl", *client_, "eth0");
    testing::veth(*sw_, "pcb", *bad_, "eth0");
    testing::veth(*sw_, "pm1", *m1_, "eth0");
    testing::veth(*sw_, "pm2", *m2_, "eth0");
    r = sw_->exec("for p in pamp pcl pcb pm1 pm2; do ip link set $p master br0 || exit 1; done");
    ASSERT_EQ(r.rc, 0) << r.out;
    // The amphora's own address comes first (primary): its ARP requests for
    // members must not come from the VIP, which the members hold.
    r = amp_->exec(
        "sysctl -qw net.ipv4.ip_forward=0 && sysctl -qw net.ipv6.conf.all.forwarding=0 && "
        "ip addr add 192.0.2.1/24 dev eth1 && ip addr add 192.0.2.100/24 dev eth1 && "
        "ip addr add 2001:db8::1/64 dev eth1 nodad && ip addr add 2001:db8::100/64 dev eth1 nodad");
    ASSERT_EQ(r.rc, 0) << r.out;
    for (auto [ns, last] : {std::pair{client_.get(), "10"}, std::pair{bad_.get(), "11"}}) {
      r = ns->exec(std::string("ip addr add 192.0.2.") + last +
                   "/24 dev eth0 && ip addr add 2001:db8::" + last + "/64 dev eth0 nodad");
      ASSERT_EQ(r.rc, 0) << r.out;
    }
    for (auto [ns, last] : {std::pair{m1_.get(), "21"}, std::pair{m2_.get(), "22"}}) {
      r = ns->exec(
          std::string(
              "sysctl -qw net.ipv4.conf.all.arp_ignore=1 && "
              "sysctl -qw net.ipv4.conf.all.arp_announce=2 && "
              "ip addr add 192.0.2.100/32 dev lo && ip addr add 2001:db8::100/128 dev lo && "
              "ip addr add 192.0.2.") +
          last + "/24 dev eth0 && ip addr add 2001:db8::" + last + "/64 dev eth0 nodad");
      ASSERT_EQ(r.rc, 0) << r.out;
    }
    servers_.push_back(std::make_unique<NameServer>(*m1_, kVip4, kPort, "m1"));
    servers_.push_back(std::make_unique<NameServer>(*m2_, kVip4, kPort, "m2"));
    servers_.push_back(std::make_unique<NameServer>(*m1_, kVip6, kPort, "m1"));
    servers_.push_back(std::make_unique<NameServer>(*m2_, kVip6, kPort, "m2"));
    // The amphora's own service on another VIP port: DSR must leave it alone.
    amp_listener_ = amp_->run([] { return testing::listenTcp(kVip4, 8081); });
    ASSERT_GE(amp_listener_, 0);
  }

  void TearDown() override {
    servers_.clear();
    if (amp_listener_ >= 0) close(amp_listener_);
    m2_.reset();
    m1_.reset();
    bad_.reset();
    client_.reset();
    amp_.reset();
    sw_.reset();
  }

  static L4DsrSpec dsr4() {
    L4DsrSpec d;
    d.vip = kVip4;
    d.port = kPort;
    d.device = "eth1";
    d.members = {"192.0.2.21", "192.0.2.22"};
    d.slots = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0};
    d.hash_seed = 0x5eed;
    return d;
  }

  static L4DsrSpec dsr6() {
    L4DsrSpec d = dsr4();
    d.vip = kVip6;
    d.members = {"2001:db8::21", "2001:db8::22"};
    return d;
  }

  // The inet table too: VIP traffic that DSR does not take still meets the
  // listener filter (8081 is a listener of the amphora itself).
  static FirewallSpec spec(std::vector<L4DsrSpec> dsr) {
    FirewallSpec s;
    s.vips = {kVip4, kVip6};
    s.listeners = {{kVip4, 8081, "tcp", {}}};
    s.management_cidrs = {"192.0.2.0/24"};
    s.l4_dsr = std::move(dsr);
    return s;
  }

  common::Result<void> apply(const FirewallSpec& s) {
    return amp_->run([&] { return applyFirewall(s); });
  }

  std::string fetchFrom(const Netns& ns, const std::string& ip, uint16_t port, int wait_ms,
                        uint16_t sport = 0) {
    return ns.run([&] { return fetch(ip, port, wait_ms, sport); });
  }

  // Counts, at the amphora's ingress, packets coming FROM vip:80: the
  // members' replies, if they ever passed through the amphora.
  void watchReplies() {
    auto r = amp_->exec(
        "nft add table netdev watch && nft add chain netdev watch in '{ type filter hook ingress "
        "device eth1 priority -500; }' && "
        "nft add rule netdev watch in ip saddr 192.0.2.100 tcp sport 80 counter && "
        "nft add rule netdev watch in ip6 saddr 2001:db8::100 tcp sport 80 counter");
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  std::string watchedReplies() { return amp_->exec("nft list chain netdev watch in").out; }

  // Spread and stickiness over VIP:80 from the client. Returns answers per member.
  void expectSpreadAndSticky(const std::string& vip) {
    std::map<std::string, int> answers;
    for (int i = 0; i < 40; ++i) ++answers[fetchFrom(*client_, vip, kPort, kAnswerWaitMs)];
    EXPECT_EQ(answers["m1"] + answers["m2"], 40) << [&] {
      std::string s;
      for (auto& [k, v] : answers) s += k + "=" + std::to_string(v) + " ";
      return s;
    }();
    EXPECT_GT(answers["m1"], 0) << "no flow reached member 1";
    EXPECT_GT(answers["m2"], 0) << "no flow reached member 2";
    // One source address and port hash to one slot, every time.
    std::set<std::string> seen;
    for (uint16_t sport : {41001, 41002, 41003, 41004, 41005}) {
      std::string first;
      for (int i = 0; i < 4; ++i) {
        std::string got = fetchFrom(*client_, vip, kPort, kAnswerWaitMs, sport);
        ASSERT_TRUE(got == "m1" || got == "m2") << "source port " << sport << ": " << got;
        if (first.empty()) first = got;
        EXPECT_EQ(got, first) << "source port " << sport << " moved between members";
      }
      seen.insert(first);
    }
    // The members saw the VIP as their local address: layer 3 unchanged.
    for (auto& s : servers_) {
      for (const auto& a : s->localAddresses()) {
        EXPECT_TRUE(a == kVip4 || a == kVip6) << a;
      }
    }
  }

  std::unique_ptr<Netns> sw_, amp_, client_, bad_, m1_, m2_;
  std::vector<std::unique_ptr<NameServer>> servers_;
  int amp_listener_ = -1;
};

TEST_F(DsrTest, WithoutTheRuleTheVipPortIsTheAmphorasAndRefused) {
  // The control for every test below: nothing on the amphora serves VIP:80.
  EXPECT_EQ(fetchFrom(*client_, kVip4, kPort, kAnswerWaitMs), "!refused");
  EXPECT_EQ(fetchFrom(*client_, kVip6, kPort, kAnswerWaitMs), "!refused");
}

TEST_F(DsrTest, TheNetdevTableDumpsAsAnIngressChainWithHashedFwdToTheMemberMap) {
  L4DsrSpec d = dsr4();
  d.slots = {0, 1, 1, 0, 1};
  d.hash_seed = 42;
  auto r = apply(spec({d, dsr6()}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string text = amp_->exec("nft list table netdev banyan_dsr").out;
  EXPECT_NE(text.find("type filter hook ingress device \"eth1\" priority filter; policy accept;"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ip daddr 192.0.2.100 tcp dport 80 counter packets 0 bytes 0 fwd ip to "
                      "jhash ip saddr . tcp sport mod 5 seed 0x2a map @dsr0 device \"eth1\""),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fwd ip6 to jhash ip6 saddr . tcp sport mod 13 seed 0x5eed map @dsr1 "
                      "device \"eth1\""),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("4 : 192.0.2.22"), std::string::npos) << text;
  EXPECT_NE(text.find("3 : 192.0.2.21"), std::string::npos) << text;
  EXPECT_NE(text.find("12 : 2001:db8::21"), std::string::npos) << text;

  auto out = amp_->exec("nft -j list ruleset");
  ASSERT_EQ(out.rc, 0) << out.out;
  rapidjson::Document doc;
  doc.Parse(out.out.c_str());
  ASSERT_FALSE(doc.HasParseError()) << out.out;
  bool chain = false, fwd = false;
  for (auto& item : doc["nftables"].GetArray()) {
    if (item.HasMember("chain")) {
      auto& c = item["chain"];
      // nft 1.0.6's JSON leaves the hook's device out (the text above has it).
      chain |= std::string(c["family"].GetString()) == "netdev" &&
               std::string(c["table"].GetString()) == "banyan_dsr" &&
               std::string(c["name"].GetString()) == "in_eth1" && c.HasMember("hook") &&
               std::string(c["hook"].GetString()) == "ingress";
    }
    if (item.HasMember("rule")) {
      for (auto& e : item["rule"]["expr"].GetArray()) {
        if (!e.HasMember("fwd")) continue;
        auto& f = e["fwd"];
        if (std::string(f["dev"].GetString()) != "eth1" ||
            std::string(f["family"].GetString()) != "ip")
          continue;
        auto& key = f["addr"]["map"]["key"]["jhash"];
        fwd |= key["mod"].GetInt() == 5 && key["seed"].GetInt() == 42 &&
               key["expr"]["concat"].GetArray().Size() == 2 &&
               std::string(f["addr"]["map"]["data"].GetString()) == "@dsr0";
      }
    }
  }
  EXPECT_TRUE(chain) << out.out;
  EXPECT_TRUE(fwd) << out.out;
  // Both tables, one transaction's worth: nothing else.
  EXPECT_EQ(amp_->exec("nft list tables").out, "table inet banyan\ntable netdev banyan_dsr\n");
}

TEST_F(DsrTest, Ipv4FlowsAreSpreadOneSourceStaysOnOneMemberAndRepliesBypassTheAmphora) {
  watchReplies();
  auto r = apply(spec({dsr4()}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  expectSpreadAndSticky(kVip4);
  // The fwd rule counted the client's packets...
  std::string table = amp_->exec("nft list table netdev banyan_dsr").out;
  EXPECT_EQ(table.find("counter packets 0 "), std::string::npos) << table;
  // ...and not one reply came back through the amphora.
  std::string watched = watchedReplies();
  EXPECT_NE(watched.find("ip saddr 192.0.2.100 tcp sport 80 counter packets 0 bytes 0"),
            std::string::npos)
      << watched;
  // Other VIP ports (and ARP, which every connection above needed) are
  // untouched: the amphora's own 8081 still answers through its inet filter.
  EXPECT_EQ(client_->run([] { return testing::tcpConnect(kVip4, 8081, kAnswerWaitMs); }),
            ConnectOutcome::kConnected);
}

TEST_F(DsrTest, TheWatchCounterSeesRepliesThatDoPassTheAmphora) {
  // The control for the "replies bypass the amphora" check: it does count
  // replies that pass the amphora. Member 1 is told to route to the client
  // through the amphora (which does not forward them: these fetches fail).
  watchReplies();
  ASSERT_TRUE(apply(spec({dsr4()})).ok());
  auto r = m1_->exec("ip route add 192.0.2.10/32 via 192.0.2.1 dev eth0");
  ASSERT_EQ(r.rc, 0) << r.out;
  for (int i = 0; i < 10; ++i) (void)fetchFrom(*client_, kVip4, kPort, kDropWaitMs);
  std::string watched = watchedReplies();
  EXPECT_EQ(watched.find("ip saddr 192.0.2.100 tcp sport 80 counter packets 0 "), std::string::npos)
      << watched;
}

TEST_F(DsrTest, AnAmphoraWithOnlyTheVipOnTheSegmentCannotReachMembers) {
  // What the docs ask of the deployment, shown: when the VIP is the
  // amphora's only address on the segment, its ARP requests for a member come
  // from the VIP; the member holds the VIP itself and drops them as martian,
  // so the fwd never finds a MAC address to send to.
  auto r = amp_->exec(
      "sysctl -qw net.ipv4.conf.eth1.promote_secondaries=1 && ip addr del 192.0.2.1/24 dev eth1 "
      "&& ip neigh flush dev eth1");
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(apply(spec({dsr4()})).ok());
  EXPECT_EQ(fetchFrom(*client_, kVip4, kPort, kDropWaitMs), "!timeout");
  // The same rules work again once the amphora has an address of its own
  // (first: the primary address of the subnet is the ARP source).
  r = amp_->exec(
      "ip addr del 192.0.2.100/24 dev eth1 && ip addr add 192.0.2.1/24 dev eth1 && "
      "ip addr add 192.0.2.100/24 dev eth1 && ip neigh flush dev eth1");
  ASSERT_EQ(r.rc, 0) << r.out;
  std::string got;
  got = fetchFrom(*client_, kVip4, kPort, kAnswerWaitMs);
  EXPECT_TRUE(got == "m1" || got == "m2") << got;
}

TEST_F(DsrTest, Ipv6FlowsAreSpreadAndOneSourceStaysOnOneMember) {
  watchReplies();
  auto r = apply(spec({dsr6()}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  expectSpreadAndSticky(kVip6);
  std::string watched = watchedReplies();
  EXPECT_NE(watched.find("ip6 saddr 2001:db8::100 tcp sport 80 counter packets 0 bytes 0"),
            std::string::npos)
      << watched;
}

TEST_F(DsrTest, UdpDatagramsAreSpreadAndOneSourceStaysOnOneMember) {
  UdpNameServer u1(*m1_, kVip4, kPort, "m1"), u2(*m2_, kVip4, kPort, "m2");
  L4DsrSpec d = dsr4();
  d.protocol = "udp";
  ASSERT_TRUE(apply(spec({d})).ok());
  std::map<std::string, int> answers;
  for (int i = 0; i < 30; ++i)
    ++answers[client_->run([] { return askUdp(kVip4, kPort, kAnswerWaitMs); })];
  EXPECT_EQ(answers["m1"] + answers["m2"], 30);
  EXPECT_GT(answers["m1"], 0);
  EXPECT_GT(answers["m2"], 0);
  for (uint16_t sport : {42001, 42002, 42003}) {
    std::string first = client_->run([&] { return askUdp(kVip4, kPort, kAnswerWaitMs, sport); });
    ASSERT_TRUE(first == "m1" || first == "m2") << first;
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(client_->run([&] { return askUdp(kVip4, kPort, kAnswerWaitMs, sport); }), first)
          << "source port " << sport;
    }
  }
  // TCP to the same port is not DSR's: it reaches the amphora, whose inet
  // filter drops it (not a listener).
  EXPECT_EQ(fetchFrom(*client_, kVip4, kPort, kDropWaitMs), "!timeout");
}

TEST_F(DsrTest, SourcesOutsideAllowedCidrsAreDroppedAtIngress) {
  L4DsrSpec d4 = dsr4();
  d4.allowed_cidrs = {"198.51.100.0/24", "192.0.2.10/32", "2001:db8::10/128"};
  L4DsrSpec d6 = dsr6();
  d6.allowed_cidrs = {"192.0.2.10/32", "2001:db8::10/128"};
  auto r = apply(spec({d4, d6}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string got = fetchFrom(*client_, kVip4, kPort, kAnswerWaitMs);
  EXPECT_TRUE(got == "m1" || got == "m2") << got;
  EXPECT_EQ(fetchFrom(*bad_, kVip4, kPort, kDropWaitMs), "!timeout");
  got = fetchFrom(*client_, kVip6, kPort, kAnswerWaitMs);
  EXPECT_TRUE(got == "m1" || got == "m2") << got;
  EXPECT_EQ(fetchFrom(*bad_, kVip6, kPort, kDropWaitMs), "!timeout");
  // The refused client's other traffic to the VIP is not DSR's business.
  EXPECT_EQ(bad_->run([] { return testing::tcpConnect(kVip4, 8081, kAnswerWaitMs); }),
            ConnectOutcome::kConnected);
  // The drop was counted in the DSR chain.
  std::string table = amp_->exec("nft list table netdev banyan_dsr").out;
  EXPECT_NE(table.find("ip daddr 192.0.2.100 tcp dport 80 counter packets"), std::string::npos)
      << table;
  EXPECT_EQ(table.find("tcp dport 80 counter packets 0 bytes 0 drop"), std::string::npos) << table;
}

TEST_F(DsrTest, ApplyingWithoutDsrLeavesNoNetdevTableAndRemoveIsIdempotent) {
  ASSERT_TRUE(apply(spec({dsr4(), dsr6()})).ok());
  std::string got = fetchFrom(*client_, kVip4, kPort, kAnswerWaitMs);
  ASSERT_TRUE(got == "m1" || got == "m2") << got;

  auto r = apply(spec({}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(amp_->exec("nft list tables").out, "table inet banyan\n");
  // VIP:80 is the amphora's again: its inet filter drops it (not a listener).
  EXPECT_EQ(fetchFrom(*client_, kVip4, kPort, kDropWaitMs), "!timeout");

  ASSERT_TRUE(apply(spec({dsr4()})).ok());
  for (int i = 0; i < 2; ++i) {
    auto rm = amp_->run([] { return removeFirewall(); });
    ASSERT_TRUE(rm.ok()) << rm.error().message;
  }
  EXPECT_EQ(amp_->exec("nft list tables").out, "");
  EXPECT_EQ(fetchFrom(*client_, kVip4, kPort, kAnswerWaitMs), "!refused");
}

TEST_F(DsrTest, AFullSizeSlotTableGoesInOneTransaction) {
  // 65536 slots, the largest allowed (a Maglev table): 64 element messages.
  L4DsrSpec d = dsr4();
  d.slots.resize(65536);
  for (size_t i = 0; i < d.slots.size(); ++i) d.slots[i] = static_cast<uint32_t>((i * 7 / 3) % 2);
  auto start = std::chrono::steady_clock::now();
  auto r = apply(spec({d}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  printf("applied 65536 DSR slots in %lld ms\n",
         static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start)
                                    .count()));
  auto elems = amp_->exec("nft -j list map netdev banyan_dsr dsr0");
  ASSERT_EQ(elems.rc, 0) << elems.out.substr(0, 500);
  rapidjson::Document doc;
  doc.Parse(elems.out.c_str());
  ASSERT_FALSE(doc.HasParseError());
  size_t n = 0;
  for (auto& item : doc["nftables"].GetArray()) {
    if (item.HasMember("map")) n = item["map"]["elem"].GetArray().Size();
  }
  EXPECT_EQ(n, 65536u);
  std::string got = fetchFrom(*client_, kVip4, kPort, kAnswerWaitMs);
  EXPECT_TRUE(got == "m1" || got == "m2") << got;
}

TEST_F(DsrTest, AMissingDeviceIsNamedAndChangesNothing) {
  ASSERT_TRUE(apply(spec({dsr4()})).ok());
  std::string before = amp_->exec("nft list ruleset").out;
  L4DsrSpec d6 = dsr6();
  d6.device = "eth9";
  auto r = apply(spec({dsr4(), d6}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kNotFound);
  EXPECT_EQ(r.error().context, "/l4_dsr/1/device");
  EXPECT_EQ(amp_->exec("nft list ruleset").out, before);
}

TEST_F(DsrTest, AKernelRefusalInTheDsrTableKeepsBothPreviousTables) {
  ASSERT_TRUE(apply(spec({dsr4()})).ok());
  std::string before = amp_->exec("nft list ruleset").out;
  // The same shape of transaction as applyFirewall's, with its last message
  // (in the netdev table) broken: a jump to a chain that does not exist. The
  // deletes of both old tables came earlier in the batch.
  auto r = amp_->run([] {
    nft::Batch b(NFPROTO_INET, kFirewallTable);
    b.addTable();
    b.deleteTable();
    b.addTable();
    b.addChain("input", NF_INET_LOCAL_IN, 0, "filter", NF_ACCEPT);
    b.useTable(NFPROTO_NETDEV, kDsrTable);
    b.addTable();
    b.deleteTable();
    b.addTable();
    b.addChain("in_eth1", NF_NETDEV_INGRESS, 0, "filter", NF_ACCEPT, "eth1");
    b.addRule(nft::RuleBuilder(NFPROTO_NETDEV, kDsrTable, "in_eth1").jump("nosuch").release());
    return b.commit();
  });
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("add rule in netdev banyan_dsr (message 9)"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(amp_->exec("nft list ruleset").out, before);
  std::string got = fetchFrom(*client_, kVip4, kPort, kAnswerWaitMs);
  EXPECT_TRUE(got == "m1" || got == "m2") << got;
}

// Validation: no kernel needed ("lo" exists in every namespace).
FirewallSpec validSpec() {
  FirewallSpec s;
  s.management_cidrs = {"192.0.2.0/24"};
  L4DsrSpec d;
  d.vip = kVip4;
  d.port = kPort;
  d.device = "lo";
  d.members = {"192.0.2.21", "192.0.2.22"};
  d.slots = {0, 1, 1};
  s.l4_dsr = {d};
  return s;
}

void expectRefused(const FirewallSpec& s, const std::string& where,
                   common::ErrorCode code = common::ErrorCode::kInvalidArgument) {
  auto r = describeFirewall(s);
  ASSERT_FALSE(r.ok()) << "accepted, expected a complaint about " << where;
  EXPECT_EQ(r.error().context, where) << r.error().message;
  EXPECT_EQ(r.error().code, code) << r.error().message;
}

TEST(DsrValidation, AValidSpecDescribesBothTables) {
  auto r = describeFirewall(validSpec());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->find("add table netdev banyan_dsr"), std::string::npos) << *r;
  EXPECT_NE(r->find("[ fwd sreg_dev 1 sreg_addr 2 nfproto 2 ]"), std::string::npos) << *r;
  EXPECT_NE(r->find("[ hash reg 2 = jhash(reg 3, 8, 0x0) % mod 3 ]"), std::string::npos) << *r;
  // Without DSR entries the netdev table is only deleted (if present).
  FirewallSpec none = validSpec();
  none.l4_dsr.clear();
  auto n = describeFirewall(none);
  ASSERT_TRUE(n.ok());
  EXPECT_NE(n->find("add table netdev banyan_dsr\ndelete table netdev banyan_dsr\n"),
            std::string::npos)
      << *n;
  EXPECT_EQ(n->find("fwd"), std::string::npos) << *n;
}

TEST(DsrValidation, EachBadFieldIsNamed) {
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].vip = "192.0.2.300";
    expectRefused(s, "/l4_dsr/0/vip");
  }
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].port = 0;
    expectRefused(s, "/l4_dsr/0/port");
  }
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].members[1] = "2001:db8::22";
    expectRefused(s, "/l4_dsr/0/members/1");
  }
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].members[0] = "member";
    expectRefused(s, "/l4_dsr/0/members/0");
  }
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].members[1] = kVip4;
    expectRefused(s, "/l4_dsr/0/members/1");
  }
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].members.clear();
    s.l4_dsr[0].slots.clear();
    expectRefused(s, "/l4_dsr/0/members");
  }
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].slots = {0, 1, 2};
    expectRefused(s, "/l4_dsr/0/slots/2");
  }
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].slots.assign(65537, 0);
    expectRefused(s, "/l4_dsr/0/slots");
  }
  for (const char* dev : {"", "a-name-of-16-chr", "eth/1", "eth:1", "eth 1", "eth\"1", ".", ".."}) {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].device = dev;
    SCOPED_TRACE(std::string("device '") + dev + "'");
    expectRefused(s, "/l4_dsr/0/device");
  }
  for (const char* proto : {"sctp", "TCP", "icmp", ""}) {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].protocol = proto;
    SCOPED_TRACE(std::string("protocol '") + proto + "'");
    expectRefused(s, "/l4_dsr/0/protocol");
  }
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].allowed_cidrs = {"192.0.2.0/24", "192.0.2.0/33"};
    expectRefused(s, "/l4_dsr/0/allowed_cidrs/1");
  }
  {
    // The same VIP, protocol and port twice (another device makes no difference).
    FirewallSpec s = validSpec();
    s.l4_dsr.push_back(s.l4_dsr[0]);
    s.l4_dsr[1].device = "eth0";
    expectRefused(s, "/l4_dsr/1/port");
  }
  {
    // A DSR port would shadow the NAT of the same VIP:port.
    FirewallSpec s = validSpec();
    L4NatSpec n;
    n.vip = kVip4;
    n.port = kPort;
    n.members = {{"192.0.2.21", 80}};
    s.l4_nat = {n};
    expectRefused(s, "/l4_dsr/0/port");
  }
  {
    FirewallSpec s = validSpec();
    s.l4_dsr[0].device = "nosuchdev0";
    expectRefused(s, "/l4_dsr/0/device", common::ErrorCode::kNotFound);
  }
}

TEST(DsrValidation, TheSameVipPortOverTheOtherProtocolIsFine) {
  FirewallSpec s = validSpec();
  s.l4_dsr.push_back(s.l4_dsr[0]);
  s.l4_dsr[1].protocol = "udp";
  auto r = describeFirewall(s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // One chain for the one device.
  size_t first = r->find("add chain netdev banyan_dsr");
  ASSERT_NE(first, std::string::npos) << *r;
  EXPECT_EQ(r->find("add chain netdev", first + 1), std::string::npos) << *r;
}

}  // namespace
}  // namespace banyan::agent::system
