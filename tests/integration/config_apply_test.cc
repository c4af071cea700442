// Control API (/version, /config, /stats), --check, SIGHUP reload and SIGTERM
// drain of the real banyan-proxy process.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <future>
#include <memory>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

class ControlApi : public ::testing::Test {
 protected:
  ConfigSpec config(const TestHttpBackend& member, uint64_t generation = 1) const {
    ConfigSpec c = simpleConfig(port_, {memberOf(member)});
    c.generation = generation;
    return c;
  }
  void startProxy(const ConfigSpec& c) { proxy_ = std::make_unique<ProxyProcess>(c.toJson()); }
  std::string servedBy() { return fetchOnce("127.0.0.1", port_).header("X-Backend"); }
  int64_t stat(const std::string& section, const std::string& id, const std::string& field) {
    auto v = statValue(*proxy_, section, id, field);
    EXPECT_TRUE(v.has_value()) << "no " << section << "/" << id << "/" << field << " in "
                               << proxy_->get("/stats").body;
    return v.value_or(-1);
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend a_{"a", "127.0.0.91"};
  TestHttpBackend b_{"b", "127.0.0.92"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(ControlApi, VersionReportsTheProxyVersion) {
  startProxy(config(a_));
  ControlResponse resp = proxy_->get("/version");
  ASSERT_EQ(resp.status, 200);
  EXPECT_STREQ(resp.json()["version"].GetString(), "0.1.0");
}

TEST_F(ControlApi, GetConfigReturnsTheRunningDocument) {
  startProxy(config(a_, 7));
  ControlResponse resp = proxy_->get("/config");
  ASSERT_EQ(resp.status, 200);
  rapidjson::Document doc = resp.json();
  EXPECT_EQ(doc["generation"].GetUint64(), 7u);
  EXPECT_STREQ(doc["listeners"][0]["id"].GetString(), "l1");
  EXPECT_EQ(doc["listeners"][0]["protocol_port"].GetInt(), port_);
  EXPECT_STREQ(doc["pools"][0]["members"][0]["id"].GetString(), "a");
}

TEST_F(ControlApi, ValidPutConfigIsAppliedAndReportsItsGeneration) {
  startProxy(config(a_));
  ASSERT_EQ(servedBy(), "a");
  ControlResponse resp = proxy_->put("/config", config(b_, 2).toJson());
  ASSERT_EQ(resp.status, 200) << resp.body;
  rapidjson::Document doc = resp.json();
  EXPECT_TRUE(doc["applied"].GetBool());
  EXPECT_EQ(doc["generation"].GetUint64(), 2u);
  EXPECT_EQ(servedBy(), "b");
  EXPECT_EQ(proxy_->get("/stats").json()["generation"].GetUint64(), 2u);
}

TEST_F(ControlApi, InvalidPutConfigIsRejectedWithThePathAndTheOldConfigKeepsServing) {
  startProxy(config(a_));
  ConfigSpec bad = config(b_, 2);
  bad.pool("p1").lb_algorithm = "FASTEST";
  ControlResponse resp = proxy_->put("/config", bad.toJson());
  ASSERT_EQ(resp.status, 400) << resp.body;
  rapidjson::Document doc = resp.json();
  EXPECT_FALSE(doc["applied"].GetBool());
  EXPECT_STREQ(doc["path"].GetString(), "/pools/0/lb_algorithm");
  EXPECT_GT(std::string(doc["reason"].GetString()).size(), 0u);
  EXPECT_EQ(servedBy(), "a");
  EXPECT_EQ(proxy_->get("/config").json()["generation"].GetUint64(), 1u);
}

TEST_F(ControlApi, PutConfigWithAMemberReferenceToAMissingPoolIsRejected) {
  startProxy(config(a_));
  ConfigSpec bad = config(b_, 2);
  bad.listener("l1").default_pool_id = "nope";
  ControlResponse resp = proxy_->put("/config", bad.toJson());
  ASSERT_EQ(resp.status, 400) << resp.body;
  EXPECT_STREQ(resp.json()["path"].GetString(), "/listeners/0/default_pool_id");
  EXPECT_EQ(servedBy(), "a");
}

TEST_F(ControlApi, NonJsonPutConfigIsRejectedAndTheOldConfigKeepsServing) {
  startProxy(config(a_));
  ControlResponse resp = proxy_->put("/config", "{\"generation\": 2, \"listeners\": [");
  ASSERT_EQ(resp.status, 400) << resp.body;
  EXPECT_FALSE(resp.json()["applied"].GetBool());
  EXPECT_EQ(servedBy(), "a");
}

TEST_F(ControlApi, StatsCountListenerAndMemberTraffic) {
  startProxy(config(a_));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(fetchOnce("127.0.0.1", port_, "/s").status, 200);
  EXPECT_TRUE(
      waitUntil([&] { return stat("listeners", "l1", "active_connections") == 0; }, Millis(2000)));
  EXPECT_EQ(stat("listeners", "l1", "total_connections"), 5);
  EXPECT_GT(stat("listeners", "l1", "bytes_in"), 5 * 30);   // five request heads
  EXPECT_GT(stat("listeners", "l1", "bytes_out"), 5 * 30);  // five responses
  EXPECT_EQ(stat("listeners", "l1", "request_errors"), 0);
  EXPECT_GE(stat("members", "a", "total_connections"), 1);
  EXPECT_LE(stat("members", "a", "total_connections"), 5);
  EXPECT_GT(stat("members", "a", "bytes_in"), 0);
  EXPECT_GT(stat("members", "a", "bytes_out"), 0);
}

TEST_F(ControlApi, StatsCountOpenClientConnectionsAsActive) {
  startProxy(config(a_));
  std::vector<std::unique_ptr<HttpClient>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<HttpClient>("127.0.0.1", port_));
    ASSERT_EQ(open.back()->get("/").status, 200);
  }
  EXPECT_EQ(stat("listeners", "l1", "active_connections"), 3);
  open.clear();
  EXPECT_TRUE(
      waitUntil([&] { return stat("listeners", "l1", "active_connections") == 0; }, Millis(2000)));
}

TEST_F(ControlApi, StatsCountRejectedRequestsAsRequestErrors) {
  startProxy(config(a_));
  HttpClient c("127.0.0.1", port_);
  c.sendRaw("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(c.readResponse().status, 400);
  EXPECT_TRUE(
      waitUntil([&] { return stat("listeners", "l1", "request_errors") >= 1; }, Millis(2000)));
}

TEST_F(ControlApi, AccessLogWritesOneLinePerHttpRequest) {
  TempDir logs;
  ConfigSpec c = config(a_);
  c.access_log = logs.file("access.log");
  startProxy(c);
  HttpClient client("127.0.0.1", port_);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client.get("/logged-" + std::to_string(i)).status, 200);
  auto lines = [&] {
    std::string text = readFile(c.access_log);
    return std::count(text.begin(), text.end(), '\n');
  };
  EXPECT_TRUE(waitUntil([&] { return lines() >= 3; }, Millis(3000))) << readFile(c.access_log);
  EXPECT_EQ(lines(), 3);
  // Fields as docs/access-log.md describes them.
  std::string text = readFile(c.access_log);
  size_t at = text.find("target=/logged-2 ");
  ASSERT_NE(at, std::string::npos) << text;
  std::string line =
      text.substr(text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1);
  line = line.substr(0, line.find('\n'));
  EXPECT_NE(line.find("listener=l1 "), std::string::npos) << line;
  EXPECT_NE(line.find("method=GET "), std::string::npos) << line;
  EXPECT_NE(line.find("status=200 "), std::string::npos) << line;
  EXPECT_NE(line.find("member=a "), std::string::npos) << line;
  EXPECT_NE(line.find("client=127.0.0.1:" + std::to_string(client.localPort())), std::string::npos)
      << line;
}

class ProxyCommandLine : public ::testing::Test {
 protected:
  TempDir dir_;
  TestHttpBackend a_{"a", "127.0.0.93"};
};

TEST_F(ProxyCommandLine, CheckAcceptsAValidFile) {
  std::string path = dir_.file("good.json");
  writeFile(path, simpleConfig(pickFreePort(), {memberOf(a_)}).toJson());
  CommandResult r = runProxyCommand({"--config", path, "--check"});
  EXPECT_EQ(r.exit_status, 0) << r.stderr_text;
}

TEST_F(ProxyCommandLine, CheckRejectsAnInvalidFileNamingTheJsonPointer) {
  std::string path = dir_.file("bad.json");
  ConfigSpec bad = simpleConfig(pickFreePort(), {memberOf(a_)});
  bad.pool("p1").members[0].weight = 300;
  writeFile(path, bad.toJson());
  CommandResult r = runProxyCommand({"--config", path, "--check"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_NE(r.stderr_text.find(path + ": /pools/0/members/0/weight: "), std::string::npos)
      << r.stderr_text;
}

TEST_F(ProxyCommandLine, CheckRejectsAFileThatIsNotJson) {
  std::string path = dir_.file("garbage.json");
  writeFile(path, "listeners: []\n");
  CommandResult r = runProxyCommand({"--config", path, "--check"});
  EXPECT_EQ(r.exit_status, 1);
  EXPECT_NE(r.stderr_text.find(path + ": "), std::string::npos) << r.stderr_text;
}

TEST_F(ProxyCommandLine, VersionPrintsTheVersion) {
  CommandResult r = runProxyCommand({"--version"});
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_NE((r.stdout_text + r.stderr_text).find("0.1.0"), std::string::npos);
}

TEST_F(ControlApi, SighupReloadsTheChangedConfigFile) {
  startProxy(config(a_));
  ASSERT_EQ(servedBy(), "a");
  proxy_->writeConfig(config(b_, 2).toJson());
  proxy_->sendSignal(SIGHUP);
  EXPECT_TRUE(waitUntil([&] { return servedBy() == "b"; }, Millis(3000)))
      << "SIGHUP did not apply the new file";
  EXPECT_EQ(proxy_->get("/config").json()["generation"].GetUint64(), 2u);
  EXPECT_TRUE(proxy_->running());
}

TEST_F(ControlApi, SighupWithAnInvalidFileKeepsTheOldConfig) {
  startProxy(config(a_));
  ConfigSpec bad = config(b_, 2);
  bad.listener("l1").protocol = "QUIC";
  proxy_->writeConfig(bad.toJson());
  size_t logged = proxy_->stderrText().size();
  proxy_->sendSignal(SIGHUP);
  // The refusal is logged: once it is, the bad file has been looked at.
  EXPECT_TRUE(waitUntil([&] { return proxy_->stderrText().size() > logged; }, Millis(3000)))
      << "no error logged for an invalid file on SIGHUP";
  EXPECT_TRUE(proxy_->running());
  EXPECT_EQ(servedBy(), "a");
  EXPECT_EQ(proxy_->get("/config").json()["generation"].GetUint64(), 1u);
}

TEST_F(ControlApi, SigtermLetsAnInFlightSlowRequestFinishThenExitsZero) {
  a_.configure([](HttpBackendOptions& o) { o.delay_ms = 1000; });
  startProxy(config(a_));
  auto slow = std::async(std::launch::async, [&] {
    ConnectOptions o;
    o.timeout_ms = 5000;
    return fetchOnce("127.0.0.1", port_, "/slow", o);
  });
  ASSERT_TRUE(a_.waitForRequests(1, 2000));
  proxy_->sendSignal(SIGTERM);
  // Stops accepting: a new connection is refused or never answered.
  EXPECT_TRUE(waitUntil(
      [&] {
        ConnectOptions o;
        o.timeout_ms = 200;
        auto r = tryFetchOnce("127.0.0.1", port_, "/new", o);
        return !r || r->status != 200;
      },
      Millis(800)))
      << "new connections still served after SIGTERM";
  HttpResponse resp = slow.get();
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.header("X-Backend"), "a");
  std::optional<int> status = proxy_->waitExit(3000);
  ASSERT_TRUE(status.has_value()) << "did not exit after draining";
  EXPECT_EQ(*status, 0);
}

TEST_F(ControlApi, SigtermWithNothingInFlightExitsPromptly) {
  startProxy(config(a_));
  ASSERT_EQ(servedBy(), "a");
  auto start = Clock::now();
  proxy_->sendSignal(SIGTERM);
  std::optional<int> status = proxy_->waitExit(3000);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0);
  EXPECT_LT(Clock::now() - start, Millis(1000));
}

}  // namespace
}  // namespace banyan::test
