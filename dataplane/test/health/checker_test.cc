// HealthChecker against real member sockets on loopback. Probe delays are tens of
// milliseconds; every wait polls with a bounded deadline.
#include "health/checker.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace banyan::dp::health {
namespace {

using namespace std::chrono_literals;
using config::Config;
using config::HealthMonitor;
using config::Member;
using config::MonitorType;
using config::Pool;

constexpr auto kDeadline = 5s;

bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds deadline = kDeadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

// A member on loopback, served from its own thread.
class TestMember {
 public:
  enum class Mode { AcceptAndClose, HttpReply, AcceptAndHold };

  explicit TestMember(Mode mode, std::string address = "127.0.0.1") : mode_(mode), address_(address) {}
  ~TestMember() { close(); }

  // port 0: any free port; otherwise reopen on that port (SO_REUSEADDR).
  void open(uint16_t port = 0) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listen_fd_, 0);
    int one = 1;
    ASSERT_EQ(setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ASSERT_EQ(inet_pton(AF_INET, address_.c_str(), &a.sin_addr), 1);
    ASSERT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
    ASSERT_EQ(::listen(listen_fd_, 128), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    stop_ = false;
    thread_ = std::thread([this] { serve(); });
  }

  void close() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
    listen_fd_ = -1;
  }

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  void setStatus(int code) { status_ = code; }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    std::vector<int> held;
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 5) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      if (mode_ == Mode::AcceptAndClose) {
        ::close(fd);
      } else if (mode_ == Mode::AcceptAndHold) {
        held.push_back(fd);
      } else {
        answer(fd);
        ::close(fd);
      }
    }
    for (int fd : held) ::close(fd);
  }

  void answer(int fd) {
    std::string req;
    char buf[1024];
    while (req.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) break;
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
    }
    std::string resp = "HTTP/1.1 " + std::to_string(status_.load()) +
                       " Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    ssize_t n = ::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
    (void)n;
  }

  Mode mode_;
  std::string address_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> status_{200};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
};

// A port nothing listens on: bound, then closed.
uint16_t closedPort() {
  TestMember m(TestMember::Mode::AcceptAndClose);
  m.open();
  uint16_t port = m.port();
  m.close();
  return port;
}

HealthMonitor tcpMonitor(uint32_t rise = 2, uint32_t fall = 3) {
  HealthMonitor hm;
  hm.id = "hm";
  hm.type = MonitorType::kTcp;
  hm.delay_ms = 20;
  hm.timeout_ms = 200;
  hm.max_retries = rise;
  hm.max_retries_down = fall;
  return hm;
}

HealthMonitor httpMonitor(std::vector<uint16_t> codes = {200}) {
  HealthMonitor hm = tcpMonitor();
  hm.type = MonitorType::kHttp;
  hm.expected_codes = std::move(codes);
  return hm;
}

Member member(std::string id, uint16_t port, std::string address = "127.0.0.1") {
  Member m;
  m.id = std::move(id);
  m.address = std::move(address);
  m.protocol_port = port;
  return m;
}

Pool pool(std::string id, std::vector<Member> members, std::optional<HealthMonitor> hm) {
  Pool p;
  p.id = std::move(id);
  p.members = std::move(members);
  p.health_monitor = std::move(hm);
  return p;
}

std::shared_ptr<const Config> configOf(std::vector<Pool> pools) {
  auto c = std::make_shared<Config>();
  c->pools = std::move(pools);
  return c;
}

// One member's entry of statusJson(), parsed with RapidJSON.
struct MemberView {
  bool found = false;
  std::string pool_id, address, monitor, status, last_detail;
  int protocol_port = 0;
  bool has_last_check = false, last_ok = false;
  int64_t last_at_ms = 0;
  unsigned successes = 0, failures = 0;
  struct T {
    std::string from, to, reason;
    int64_t at_ms;
  };
  std::vector<T> transitions;
};

MemberView view(const HealthChecker& checker, const std::string& id) {
  MemberView v;
  std::string json = checker.statusJson();
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  EXPECT_FALSE(doc.HasParseError()) << json;
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("members")) return v;
  for (const auto& m : doc["members"].GetArray()) {
    if (m["member_id"].GetString() != id) continue;
    v.found = true;
    v.pool_id = m["pool_id"].GetString();
    v.address = m["address"].GetString();
    v.protocol_port = m["protocol_port"].GetInt();
    v.monitor = m["monitor"].GetString();
    v.status = m["status"].GetString();
    v.successes = m["consecutive_successes"].GetUint();
    v.failures = m["consecutive_failures"].GetUint();
    if (m["last_check"].IsObject()) {
      v.has_last_check = true;
      v.last_ok = m["last_check"]["ok"].GetBool();
      v.last_detail = m["last_check"]["detail"].GetString();
      v.last_at_ms = m["last_check"]["at_ms"].GetInt64();
    }
    for (const auto& t : m["transitions"].GetArray())
      v.transitions.push_back({t["from"].GetString(), t["to"].GetString(), t["reason"].GetString(),
                               t["at_ms"].GetInt64()});
  }
  return v;
}

TEST(StatusLine, ParsesTheCodeOfHttp1StatusLinesAndRejectsAnythingElse) {
  struct Row {
    const char* what;
    std::string bytes;
    ParseStatus status;
    uint16_t code;
  };
  const Row rows[] = {
      {"HTTP/1.1 with reason", "HTTP/1.1 200 OK\r\n", ParseStatus::Done, 200},
      {"HTTP/1.0 error", "HTTP/1.0 503 Service Unavailable\r\n", ParseStatus::Done, 503},
      {"empty reason, CRLF right after the code", "HTTP/1.1 204\r\n", ParseStatus::Done, 204},
      {"bare LF after the code", "HTTP/1.1 302\n", ParseStatus::Done, 302},
      {"nothing yet", "", ParseStatus::NeedMore, 0},
      {"partial version", "HTTP/1", ParseStatus::NeedMore, 0},
      {"code not terminated yet", "HTTP/1.1 200", ParseStatus::NeedMore, 0},
      {"two code digits", "HTTP/1.1 20", ParseStatus::NeedMore, 0},
      {"lowercase protocol", "http/1.1 200 OK\r\n", ParseStatus::Invalid, 0},
      {"HTTP/2 is not HTTP/1.x", "HTTP/2 200\r\n", ParseStatus::Invalid, 0},
      {"non-digit minor version", "HTTP/1.x 200 OK\r\n", ParseStatus::Invalid, 0},
      {"two spaces", "HTTP/1.1  200 OK\r\n", ParseStatus::Invalid, 0},
      {"four-digit code", "HTTP/1.1 2000 OK\r\n", ParseStatus::Invalid, 0},
      {"letter in code", "HTTP/1.1 2x0 OK\r\n", ParseStatus::Invalid, 0},
      {"not HTTP at all", "SSH-2.0-OpenSSH\r\n", ParseStatus::Invalid, 0},
      {"garbage first byte", "\x16\x03\x01", ParseStatus::Invalid, 0},
  };
  for (const Row& row : rows) {
    StatusLineParse p = parseStatusLine(row.bytes);
    EXPECT_EQ(p.status, row.status) << row.what;
    if (row.status == ParseStatus::Done) {
      EXPECT_EQ(p.code, row.code) << row.what;
    }
  }
}

TEST(HealthChecker, TcpMemberFallsAfterMaxRetriesDownFailuresAndRisesAfterMaxRetriesSuccesses) {
  TestMember srv(TestMember::Mode::AcceptAndClose);
  srv.open();
  const uint16_t port = srv.port();
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({pool("p1", {member("m1", port)}, tcpMonitor(/*rise=*/2, /*fall=*/3))}));
  checker.start();
  auto health = registry.get("m1");

  ASSERT_TRUE(waitFor([&] { return view(checker, "m1").successes >= 2; }));
  MemberView up = view(checker, "m1");
  EXPECT_EQ(up.status, "ONLINE");
  EXPECT_EQ(up.monitor, "TCP");
  EXPECT_TRUE(up.last_ok);
  EXPECT_EQ(up.last_detail, "connected");
  EXPECT_EQ(health->status.load(), MemberStatus::Up);
  EXPECT_TRUE(waitFor([&] { return srv.accepted() >= 2; }));

  // Counted before the change: a probe may start between the change and the read.
  const uint64_t probes_at_close = checker.probesStarted();
  srv.close();
  ASSERT_TRUE(waitFor([&] {
    MemberView v = view(checker, "m1");
    // Every snapshot is consistent: ONLINE until the third consecutive failure.
    if (v.status == "ONLINE") {
      EXPECT_LT(v.failures, 3u);
    }
    return v.status == "ERROR";
  }));
  EXPECT_GE(checker.probesStarted() - probes_at_close, 3u);
  EXPECT_EQ(health->status.load(), MemberStatus::Down);
  MemberView down = view(checker, "m1");
  EXPECT_GE(down.failures, 3u);
  EXPECT_EQ(down.last_detail, "connect refused");
  ASSERT_FALSE(down.transitions.empty());
  EXPECT_EQ(down.transitions.back().from, "ONLINE");
  EXPECT_EQ(down.transitions.back().to, "ERROR");
  EXPECT_EQ(down.transitions.back().reason, "connect refused");

  const uint64_t probes_at_reopen = checker.probesStarted();
  srv.open(port);
  ASSERT_EQ(srv.port(), port);
  ASSERT_TRUE(waitFor([&] {
    MemberView v = view(checker, "m1");
    if (v.status == "ERROR") {
      EXPECT_LT(v.successes, 2u);
    }
    return v.status == "ONLINE";
  }));
  EXPECT_GE(checker.probesStarted() - probes_at_reopen, 2u);
  EXPECT_EQ(health->status.load(), MemberStatus::Up);
  MemberView again = view(checker, "m1");
  ASSERT_GE(again.transitions.size(), 3u);  // NO_MONITOR->ONLINE, ONLINE->ERROR, ERROR->ONLINE
  EXPECT_EQ(again.transitions.front().from, "NO_MONITOR");
  EXPECT_EQ(again.transitions.front().to, "ONLINE");
  EXPECT_EQ(again.transitions.back().from, "ERROR");
  EXPECT_EQ(again.transitions.back().to, "ONLINE");
  EXPECT_EQ(again.transitions.back().reason, "connected");
}

TEST(HealthChecker, HttpMemberIsHealthyOnlyWhenItsStatusIsAnExpectedCode) {
  struct Case {
    const char* id;
    std::vector<uint16_t> expected;
    int served;
    bool healthy;
  };
  const std::vector<Case> cases = {
      {"ok-200", {200}, 200, true},
      {"down-500", {200}, 500, false},
      {"range-204", {200, 201, 202, 203, 204}, 204, true},  // "200-204" expanded by the parser
      {"range-205", {200, 201, 202, 203, 204}, 205, false},
      {"list-202", {200, 202}, 202, true},
      {"list-201", {200, 202}, 201, false},
  };
  std::vector<std::unique_ptr<TestMember>> servers;
  std::vector<Pool> pools;
  for (const Case& c : cases) {
    servers.push_back(std::make_unique<TestMember>(TestMember::Mode::HttpReply));
    servers.back()->setStatus(c.served);
    servers.back()->open();
    pools.push_back(pool(std::string("pool-") + c.id, {member(c.id, servers.back()->port())},
                         httpMonitor(c.expected)));
  }
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf(pools));
  checker.start();

  for (const Case& c : cases) {
    // Healthy members must survive more probes than it takes to fall (3).
    ASSERT_TRUE(waitFor([&] {
      MemberView v = view(checker, c.id);
      return c.healthy ? v.successes >= 4 : v.status == "ERROR";
    })) << c.id;
    MemberView v = view(checker, c.id);
    EXPECT_EQ(v.monitor, "HTTP") << c.id;
    EXPECT_EQ(v.status, c.healthy ? "ONLINE" : "ERROR") << c.id;
    EXPECT_EQ(v.last_detail, "status " + std::to_string(c.served)) << c.id;
    EXPECT_EQ(v.last_ok, c.healthy) << c.id;
    EXPECT_EQ(registry.get(c.id)->up(), c.healthy) << c.id;
  }
}

TEST(HealthChecker, HttpProbeSendsTheConfiguredRequestLineAndHost) {
  struct Case {
    const char* id;
    const char* method;
    const char* path;
    const char* version;
    const char* domain;
    std::string expected_head;  // {port} unused: Host carries no port
  };
  const std::vector<Case> cases = {
      {"v11-domain", "POST", "/healthz?deep=1", "1.1", "health.example.org",
       "POST /healthz?deep=1 HTTP/1.1\r\nHost: health.example.org\r\n"},
      {"v11-no-domain", "GET", "/", "1.1", "", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"},
      {"v10-plain", "HEAD", "/status", "1.0", "", "HEAD /status HTTP/1.0\r\n"},
  };
  std::vector<std::unique_ptr<TestMember>> servers;
  std::vector<Pool> pools;
  for (const Case& c : cases) {
    servers.push_back(std::make_unique<TestMember>(TestMember::Mode::HttpReply));
    servers.back()->open();
    HealthMonitor hm = httpMonitor();
    hm.http_method = c.method;
    hm.url_path = c.path;
    hm.http_version = c.version;
    hm.domain_name = c.domain;
    pools.push_back(pool(std::string("pool-") + c.id, {member(c.id, servers.back()->port())}, hm));
  }
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf(pools));
  checker.start();

  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(waitFor([&] { return !servers[i]->requests().empty(); })) << cases[i].id;
    EXPECT_EQ(servers[i]->requests().front(),
              cases[i].expected_head +
                  "Connection: close\r\nUser-Agent: banyan-health-check\r\n\r\n")
        << cases[i].id;
  }
}

TEST(HealthChecker, MemberThatAcceptsButNeverAnswersTimesOutAndGoesDown) {
  TestMember srv(TestMember::Mode::AcceptAndHold);
  srv.open();
  HealthMonitor hm = httpMonitor();
  hm.delay_ms = 30;
  hm.timeout_ms = 80;
  hm.max_retries_down = 2;
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({pool("p1", {member("m1", srv.port())}, hm)}));
  checker.start();

  ASSERT_TRUE(waitFor([&] { return view(checker, "m1").status == "ERROR"; }));
  MemberView v = view(checker, "m1");
  EXPECT_EQ(v.last_detail, "response timeout");
  EXPECT_GE(v.failures, 2u);
  EXPECT_TRUE(waitFor([&] { return srv.accepted() >= 2; }));
  EXPECT_FALSE(registry.get("m1")->up());
}

TEST(HealthChecker, ProbesGoToMonitorAddressAndPortInsteadOfTheTrafficPort) {
  TestMember traffic(TestMember::Mode::HttpReply);
  traffic.setStatus(500);  // would fail the check if probed
  traffic.open();
  TestMember monitor(TestMember::Mode::HttpReply, "127.0.0.2");
  monitor.open();
  Member m = member("m1", traffic.port());
  m.monitor_address = "127.0.0.2";
  m.monitor_port = monitor.port();
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({pool("p1", {m}, httpMonitor())}));
  checker.start();

  ASSERT_TRUE(waitFor([&] { return view(checker, "m1").successes >= 4; }));
  EXPECT_EQ(view(checker, "m1").status, "ONLINE");
  EXPECT_GE(monitor.requests().size(), 4u);
  EXPECT_EQ(traffic.accepted(), 0);
  // The report still names the traffic address.
  EXPECT_EQ(view(checker, "m1").address, "127.0.0.1");
  EXPECT_EQ(view(checker, "m1").protocol_port, traffic.port());
}

TEST(HealthChecker, DisabledMemberIsReportedOfflineAndNeverProbed) {
  TestMember enabled_srv(TestMember::Mode::AcceptAndClose);
  enabled_srv.open();
  TestMember disabled_srv(TestMember::Mode::AcceptAndClose);
  disabled_srv.open();
  Member off = member("off", disabled_srv.port());
  off.admin_state_up = false;
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({pool("p1", {member("on", enabled_srv.port()), off}, tcpMonitor())}));
  checker.start();

  ASSERT_TRUE(waitFor([&] { return view(checker, "on").successes >= 5; }));
  MemberView v = view(checker, "off");
  ASSERT_TRUE(v.found);
  EXPECT_EQ(v.status, "OFFLINE");
  EXPECT_EQ(v.monitor, "TCP");
  EXPECT_FALSE(v.has_last_check);
  EXPECT_EQ(disabled_srv.accepted(), 0);
  // Its shared health is left alone (the proxy skips disabled members anyway).
  EXPECT_EQ(registry.get("off")->status.load(), MemberStatus::NoMonitor);
}

TEST(HealthChecker, PoolWithoutEnabledMonitorReportsNoMonitorAndIsNotProbed) {
  TestMember srv(TestMember::Mode::AcceptAndClose);
  srv.open();
  HealthMonitor disabled = tcpMonitor();
  disabled.admin_state_up = false;
  TestMember live(TestMember::Mode::AcceptAndClose);
  live.open();
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({pool("none", {member("a", srv.port())}, std::nullopt),
                          pool("off", {member("b", srv.port())}, disabled),
                          pool("live", {member("c", live.port())}, tcpMonitor())}));
  checker.start();

  ASSERT_TRUE(waitFor([&] { return view(checker, "c").successes >= 5; }));
  for (const char* id : {"a", "b"}) {
    MemberView v = view(checker, id);
    EXPECT_EQ(v.status, "NO_MONITOR") << id;
    EXPECT_EQ(v.monitor, "none") << id;
    EXPECT_TRUE(registry.get(id)->up()) << id;
  }
  EXPECT_EQ(srv.accepted(), 0);
}

TEST(HealthChecker, ReapplyKeepsStatusAndCountersAndAChangedTargetRestartsProbesKeepingStatus) {
  const uint16_t dead = closedPort();
  TestMember live(TestMember::Mode::AcceptAndClose);
  live.open();
  HealthMonitor hm = tcpMonitor(/*rise=*/5, /*fall=*/2);
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({pool("p1", {member("m1", dead)}, hm)}));
  checker.start();
  ASSERT_TRUE(waitFor([&] { return view(checker, "m1").failures >= 4; }));
  MemberView before = view(checker, "m1");
  ASSERT_EQ(before.status, "ERROR");

  // Same member plus a marker member that tells when the apply has landed.
  checker.apply(configOf({pool("p1", {member("m1", dead), member("marker", dead)}, hm)}));
  ASSERT_TRUE(waitFor([&] { return view(checker, "marker").found; }));
  MemberView kept = view(checker, "m1");
  EXPECT_EQ(kept.status, "ERROR");
  EXPECT_GE(kept.failures, before.failures);
  EXPECT_EQ(kept.transitions.size(), before.transitions.size());
  EXPECT_EQ(kept.transitions.back().at_ms, before.transitions.back().at_ms);

  // The monitor now targets a live port: probes restart, the status stays ERROR
  // until max_retries (5) successes.
  Member redirected = member("m1", dead);
  redirected.monitor_port = live.port();
  checker.apply(configOf({pool("p1", {redirected}, hm)}));
  ASSERT_TRUE(waitFor([&] { return !view(checker, "marker").found; }));
  MemberView restarted = view(checker, "m1");
  EXPECT_EQ(restarted.status, "ERROR");
  EXPECT_LT(restarted.failures, before.failures);  // counts restarted
  ASSERT_TRUE(waitFor([&] {
    MemberView v = view(checker, "m1");
    if (v.status == "ERROR") {
      EXPECT_LT(v.successes, 5u);
    }
    return v.status == "ONLINE";
  }));
  EXPECT_TRUE(waitFor([&] { return live.accepted() >= 5; }));

  // Removing the monitor: NO_MONITOR, and the shared health counts as up.
  checker.apply(configOf({pool("p1", {redirected}, std::nullopt)}));
  ASSERT_TRUE(waitFor([&] { return view(checker, "m1").status == "NO_MONITOR"; }));
  EXPECT_EQ(registry.get("m1")->status.load(), MemberStatus::NoMonitor);
  const uint64_t probes = checker.probesStarted();
  std::this_thread::sleep_for(100ms);  // 5 delays: no probe may start
  EXPECT_EQ(checker.probesStarted(), probes);
}

TEST(HealthChecker, MemberMovedToAnotherPoolStartsAfresh) {
  const uint16_t dead = closedPort();
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({pool("p1", {member("m1", dead)}, tcpMonitor(2, 2))}));
  checker.start();
  ASSERT_TRUE(waitFor([&] { return view(checker, "m1").status == "ERROR"; }));
  HealthMonitor slow = tcpMonitor(2, 2);
  slow.delay_ms = 10000;  // at most one probe during the rest of the test
  checker.apply(configOf({pool("p2", {member("m1", dead)}, slow)}));
  ASSERT_TRUE(waitFor([&] { return view(checker, "m1").pool_id == "p2"; }));
  MemberView v = view(checker, "m1");
  EXPECT_EQ(v.status, "ONLINE");
  EXPECT_LE(v.failures, 1u);  // at most the first probe, after its jitter, and fall is 2
  ASSERT_GE(v.transitions.size(), 1u);
  EXPECT_EQ(v.transitions[0].from, "ERROR");
  EXPECT_EQ(v.transitions[0].to, "ONLINE");
}

TEST(HealthChecker, FirstProbesOfAManyMemberPoolAreSpreadOverTheFirstDelay) {
  const uint16_t dead = closedPort();
  std::vector<Member> members;
  for (int i = 0; i < 200; ++i) members.push_back(member("member-" + std::to_string(i), dead));
  HealthMonitor hm = tcpMonitor();
  hm.delay_ms = 1000;
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({pool("big", members, hm)}));
  const auto t0 = std::chrono::steady_clock::now();
  checker.start();
  std::this_thread::sleep_until(t0 + 250ms);
  const uint64_t early = checker.probesStarted();
  // About a quarter have started; all 200 in one burst would be a failure.
  EXPECT_GT(early, 0u);
  EXPECT_LT(early, 120u);
  ASSERT_TRUE(waitFor([&] { return checker.probesStarted() >= 200; }, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
}

TEST(HealthChecker, StopAndDestroyWithProbesInFlightAreClean) {
  TestMember srv(TestMember::Mode::AcceptAndHold);
  srv.open();
  HealthMonitor hm = httpMonitor();
  hm.timeout_ms = 5000;
  HealthRegistry registry;
  {
    HealthChecker checker(registry);
    checker.apply(configOf({pool("p1", {member("m1", srv.port())}, hm)}));
    checker.start();
    ASSERT_TRUE(waitFor([&] { return srv.accepted() >= 1; }));
    checker.stop();
    checker.stop();  // idempotent
  }
  HealthChecker never_started(registry);
  never_started.apply(configOf({}));
}


// ---------------------------------------------------------------------------
// UDP-CONNECT and PING.

namespace udp_ping {

// A UDP socket bound on loopback that never answers: open for UDP-CONNECT.
class UdpSink {
 public:
  explicit UdpSink(uint16_t port = 0) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~UdpSink() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

HealthMonitor monitorOf(MonitorType type, uint32_t rise = 3, uint32_t fall = 2) {
  HealthMonitor hm = tcpMonitor(rise, fall);
  hm.type = type;
  hm.timeout_ms = 100;
  return hm;
}

Pool udpPool(std::string id, std::vector<Member> members, HealthMonitor hm) {
  Pool p = pool(std::move(id), std::move(members), std::move(hm));
  p.protocol = config::PoolProtocol::kUdp;
  return p;
}

}  // namespace udp_ping

TEST(HealthChecker, UdpConnectPassesAnOpenPortAndFailsOnIcmpPortUnreachable) {
  using namespace udp_ping;
  auto open_port = std::make_unique<UdpSink>();
  const uint16_t port = open_port->port();
  const uint16_t closed = [] {
    UdpSink s;
    return s.port();
  }();
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({udpPool("p1", {member("open", port), member("closed", closed)},
                                  monitorOf(MonitorType::kUdpConnect, /*rise=*/3, /*fall=*/2))}));
  checker.start();
  ASSERT_TRUE(waitFor([&] { return view(checker, "closed").status == "ERROR"; }));
  EXPECT_EQ(view(checker, "closed").last_detail, "ICMP port unreachable");
  EXPECT_EQ(view(checker, "closed").monitor, "UDP-CONNECT");
  ASSERT_TRUE(waitFor([&] { return view(checker, "open").successes >= 2; }));
  EXPECT_EQ(view(checker, "open").status, "ONLINE");
  EXPECT_EQ(view(checker, "open").last_detail, "no ICMP port unreachable");

  // Closed, the open member falls; reopened, one success brings it back on a
  // UDP pool (keepalived ignores max_retries, here 3).
  open_port.reset();
  ASSERT_TRUE(waitFor([&] { return view(checker, "open").status == "ERROR"; }));
  open_port = std::make_unique<UdpSink>(port);
  ASSERT_TRUE(waitFor([&] { return view(checker, "open").status == "ONLINE"; }));
  MemberView back = view(checker, "open");
  EXPECT_EQ(back.transitions.back().from, "ERROR");
  EXPECT_LE(back.successes, 2u);
}

TEST(HealthChecker, PingOfLoopbackAddressesGetsEchoReplies) {
  using namespace udp_ping;
  HealthRegistry registry;
  HealthChecker checker(registry);
  checker.apply(configOf({pool("p1", {member("v4", 80, "127.0.0.9"), member("v6", 80, "::1")},
                               monitorOf(MonitorType::kPing))}));
  checker.start();
  ASSERT_TRUE(waitFor([&] { return view(checker, "v4").successes >= 2; })) << checker.statusJson();
  EXPECT_EQ(view(checker, "v4").last_detail, "echo reply");
  EXPECT_EQ(view(checker, "v4").monitor, "PING");
  EXPECT_EQ(view(checker, "v4").status, "ONLINE");
  ASSERT_TRUE(waitFor([&] { return view(checker, "v6").successes >= 2; })) << checker.statusJson();
  EXPECT_EQ(view(checker, "v6").last_detail, "echo reply");
}

// Members that stop answering echo requests fall, and come back once they
// answer again. The silence comes from a network namespace of the test's own,
// whose kernel is told to ignore echo requests (icmp_echo_ignore_all, per
// namespace, and /proc/sys/net shows the namespace of the thread that opens
// it); the checker's threads are made inside it, so they share it.
TEST(HealthChecker, PingWithoutEchoRepliesFailsTheMemberAndRepliesBringItBack) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  using namespace udp_ping;
  auto ignoreEchoes = [](bool on) {
    for (const char* path : {"/proc/sys/net/ipv4/icmp_echo_ignore_all",
                             "/proc/sys/net/ipv6/icmp/echo_ignore_all"}) {
      std::ofstream f(path);
      f << (on ? "1" : "0");
      f.close();
      EXPECT_TRUE(f) << path;
    }
  };
  std::thread inside([&] {
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    ASSERT_EQ(::ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ASSERT_EQ(::ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    ::close(s);
    ignoreEchoes(true);

    HealthRegistry registry;
    HealthChecker checker(registry);
    checker.apply(configOf({pool("p1", {member("v4", 80, "127.0.0.9"), member("v6", 80, "::1")},
                                 monitorOf(MonitorType::kPing, /*rise=*/2, /*fall=*/2))}));
    checker.start();
    for (const char* m : {"v4", "v6"}) {
      ASSERT_TRUE(waitFor([&] { return view(checker, m).status == "ERROR"; })) << checker.statusJson();
      EXPECT_EQ(view(checker, m).last_detail, "no echo reply");
      EXPECT_EQ(view(checker, m).successes, 0u);
    }
    ignoreEchoes(false);
    for (const char* m : {"v4", "v6"}) {
      ASSERT_TRUE(waitFor([&] { return view(checker, m).status == "ONLINE"; })) << checker.statusJson();
      EXPECT_EQ(view(checker, m).last_detail, "echo reply");
      EXPECT_EQ(view(checker, m).transitions.back().from, "ERROR");
    }
  });
  inside.join();
}

}  // namespace
}  // namespace banyan::dp::health
