// PROMETHEUS listeners: the proxy's counters in the Prometheus text format at
// /metrics, under Octavia's metric names, scraped with curl next to an HTTP
// listener carrying real traffic. Every scrape is checked line by line (HELP,
// TYPE, sample syntax, label escaping) and parsed with Debian's
// prometheus_client parser.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <thread>

#include "fixtures.h"
#include "http_client.h"
#include "prometheus_text.h"
#include "test_pki.h"
#include "tls_client.h"

namespace banyan::test {
namespace {

// A listener id that needs escaping in a label value.
const char* const kWebId = "web \"edge\"\\1";
const char* const kWebLabel = "listener=\"web \\\"edge\\\"\\\\1\"";

// Parses with prometheus_client (python3-prometheus-client); the number of samples it saw.
size_t pythonSampleCount(const std::string& text) {
  static const char* kScript =
      "import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "n = 0\n"
      "for f in text_string_to_metric_families(sys.stdin.read()):\n"
      "    for s in f.samples:\n"
      "        n += 1\n"
      "        if s.name.startswith('octavia_listener_') and s.labels['listener'] not in "
      "('web \"edge\"\\\\1',):\n"
      "            raise SystemExit('unexpected listener label %r' % s.labels['listener'])\n"
      "print(n)\n";
  ToolResult r = runTool({"/usr/bin/python3", "-c", kScript}, text);
  EXPECT_EQ(r.exit_status, 0) << r.err;
  return r.exit_status == 0 ? std::stoul(r.out) : 0;
}

class Prometheus : public ::testing::Test {
 protected:
  ConfigSpec config(bool with_prometheus = true) {
    ConfigSpec c;
    c.listeners.push_back(ListenerSpec{});
    ListenerSpec& web = c.listeners.back();
    web.id = kWebId;
    web.protocol_port = web_port_;
    web.default_pool_id = "p1";
    web.allowed_cidrs = {"127.0.0.1/32"};
    PoolSpec pool;
    pool.id = "p1";
    pool.members = {memberOf(m1_), memberOf(m2_)};
    c.pools.push_back(pool);
    if (with_prometheus) {
      ListenerSpec prom;
      prom.id = "prom";
      prom.protocol = "PROMETHEUS";
      prom.protocol_port = prom_port_;
      c.listeners.push_back(prom);
    }
    return c;
  }

  std::string scrapeBody(uint16_t port) {
    ToolResult r = runTool({"curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}",
                            "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
    EXPECT_EQ(r.exit_status, 0) << r.err;
    size_t nl = r.out.rfind('\n');
    EXPECT_EQ(r.out.substr(nl + 1), "200");
    return r.out.substr(0, nl);
  }
  Samples scrape() {
    std::string text = scrapeBody(prom_port_);
    Samples s = checkExposition(text);
    EXPECT_EQ(pythonSampleCount(text), s.size()) << text;
    return s;
  }
  static std::string value(const Samples& s, const std::string& key) {
    auto it = s.find(key);
    return it == s.end() ? "<absent>" : it->second;
  }

  uint16_t web_port_ = pickFreePort();
  uint16_t prom_port_ = pickFreePort();
  TestHttpBackend m1_{"m1", "127.0.0.51"};
  TestHttpBackend m2_{"m2", "127.0.0.52"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(Prometheus, CountersMatchTheTrafficSentThroughTheHttpListener) {
  proxy_ = std::make_unique<ProxyProcess>(config().toJson());
  const std::string web = std::string("{") + kWebLabel + "}";

  // Three connections: two requests on one, one on another, a bad request on the third.
  uint64_t sent = 0;
  const std::string get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string get_close = "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  {
    HttpClient c("127.0.0.1", web_port_);
    c.sendRaw(get);
    EXPECT_EQ(c.readResponse().status, 200);
    c.sendRaw(get_close);
    EXPECT_EQ(c.readResponse().status, 200);
    EXPECT_TRUE(c.waitClosed(3000));
    sent += get.size() + get_close.size();
  }
  {
    HttpClient c("127.0.0.1", web_port_);
    c.sendRaw(get_close);
    EXPECT_EQ(c.readResponse().status, 200);
    EXPECT_TRUE(c.waitClosed(3000));
    sent += get_close.size();
  }
  {
    const std::string bad = "GET /c HTTP/1.1\r\nHost: x\r\nContent-Length: z\r\n\r\n";
    HttpClient c("127.0.0.1", web_port_);
    c.sendRaw(bad);
    EXPECT_EQ(c.readResponse().status, 400);
    EXPECT_TRUE(c.waitClosed(3000));
    sent += bad.size();
  }
  {
    // Outside allowed_cidrs: closed unread, counted as denied.
    ConnectOptions o;
    o.source_address = "127.0.0.70";
    HttpClient c("127.0.0.1", web_port_, o);
    c.sendRaw(get);
    EXPECT_TRUE(c.waitClosed(3000));
  }

  Samples s;
  for (int i = 0; i < 50; ++i) {  // closes are counted just after the client saw them
    s = scrape();
    if (value(s, "octavia_listener_current_sessions" + web) == "0") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(value(s, "octavia_listener_current_sessions" + web), "0");
  EXPECT_EQ(value(s, "octavia_listener_sessions_total" + web), "3");
  EXPECT_EQ(value(s, "octavia_listener_connections_total" + web), "4");
  EXPECT_EQ(value(s, "octavia_listener_denied_connections_total" + web), "1");
  EXPECT_EQ(value(s, "octavia_listener_bytes_in_total" + web), std::to_string(sent));
  EXPECT_EQ(value(s, "octavia_listener_http_requests_total" + web), "3");
  EXPECT_EQ(value(s, "octavia_listener_request_errors_total" + web), "1");
  EXPECT_EQ(value(s, "octavia_listener_http_responses_total{" + std::string(kWebLabel) + ",code=\"2xx\"}"), "3");
  EXPECT_EQ(value(s, "octavia_listener_http_responses_total{" + std::string(kWebLabel) + ",code=\"4xx\"}"), "1");
  EXPECT_EQ(value(s, "octavia_listener_http_responses_total{" + std::string(kWebLabel) + ",code=\"5xx\"}"), "0");
  EXPECT_EQ(value(s, "octavia_listener_status" + web), "1");
  EXPECT_EQ(value(s, "octavia_listener_limit_sessions" + web), "50000");
  EXPECT_NE(value(s, "octavia_listener_bytes_out_total" + web), "0");
  // The PROMETHEUS listener's own traffic is in no listener or load balancer total.
  EXPECT_EQ(value(s, "octavia_listener_sessions_total{listener=\"prom\"}"), "<absent>");
  EXPECT_EQ(value(s, "octavia_loadbalancer_connections_total"), "3");
  EXPECT_EQ(value(s, "octavia_loadbalancer_requests_total"), "3");
  EXPECT_EQ(value(s, "octavia_loadbalancer_current_connections"), "0");
  EXPECT_EQ(value(s, "octavia_loadbalancer_max_connections"), "100000");
  EXPECT_NE(value(s, "octavia_loadbalancer_memory"), "<absent>");

  // Members: the pool's requests, split between them, and the pool sums.
  const std::string p1 = "{pool=\"p1\"}";
  auto member = [](const char* id) { return std::string("{pool=\"p1\",member=\"") + id + "\"}"; };
  uint64_t m1 = std::stoull(value(s, "octavia_member_sessions_total" + member("m1")));
  uint64_t m2 = std::stoull(value(s, "octavia_member_sessions_total" + member("m2")));
  EXPECT_GE(m1 + m2, 1u);  // keep-alive member connections may carry several requests
  EXPECT_EQ(value(s, "octavia_pool_sessions_total" + p1), std::to_string(m1 + m2));
  uint64_t r1 = std::stoull(value(s, "octavia_member_http_responses_total{pool=\"p1\",member=\"m1\",code=\"2xx\"}"));
  uint64_t r2 = std::stoull(value(s, "octavia_member_http_responses_total{pool=\"p1\",member=\"m2\",code=\"2xx\"}"));
  EXPECT_EQ(r1 + r2, 3u);
  EXPECT_EQ(r1, m1_.requestCount());
  EXPECT_EQ(r2, m2_.requestCount());
  EXPECT_EQ(value(s, "octavia_pool_http_responses_total{pool=\"p1\",code=\"2xx\"}"), "3");
  EXPECT_EQ(value(s, "octavia_member_status" + member("m1")), "1");
  EXPECT_EQ(value(s, "octavia_member_weight" + member("m1")), "1");
  EXPECT_EQ(value(s, "octavia_pool_status" + p1), "1");
  EXPECT_EQ(value(s, "octavia_pool_active_members" + p1), "2");
  EXPECT_EQ(value(s, "octavia_pool_backup_members" + p1), "0");

  // A second scrape reports the same traffic: scraping counts nowhere.
  Samples again = scrape();
  EXPECT_EQ(value(again, "octavia_loadbalancer_connections_total"), "3");
  EXPECT_EQ(value(again, "octavia_listener_bytes_in_total" + web), std::to_string(sent));
}

TEST_F(Prometheus, MemberStatusFollowsHealthAdminStateAndWeight) {
  TestHttpBackend m3{"m3", "127.0.0.53"};
  TestHttpBackend m4{"m4", "127.0.0.54"};
  ConfigSpec c = config();
  PoolSpec& pool = c.pool("p1");
  pool.health_monitor = MonitorSpec{};
  pool.members.push_back(memberOf(m3, 0));  // drained
  MemberSpec off = memberOf(m4);
  off.admin_state_up = false;
  pool.members.push_back(off);
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  ASSERT_TRUE(waitHealth(*proxy_, "m2", "ONLINE", 5000));
  auto member = [](const char* id) { return std::string("{pool=\"p1\",member=\"") + id + "\"}"; };
  Samples s = scrape();
  EXPECT_EQ(value(s, "octavia_member_status" + member("m1")), "1");
  EXPECT_EQ(value(s, "octavia_member_status" + member("m3")), "3");
  EXPECT_EQ(value(s, "octavia_member_weight" + member("m3")), "0");
  EXPECT_EQ(value(s, "octavia_member_status" + member("m4")), "2");
  EXPECT_EQ(value(s, "octavia_pool_active_members{pool=\"p1\"}"), "2");

  m2_.stop();
  ASSERT_TRUE(waitHealth(*proxy_, "m2", "ERROR", 5000));
  s = scrape();
  EXPECT_EQ(value(s, "octavia_member_status" + member("m2")), "0");
  EXPECT_EQ(value(s, "octavia_pool_active_members{pool=\"p1\"}"), "1");
  EXPECT_EQ(value(s, "octavia_pool_status{pool=\"p1\"}"), "1");

  m1_.stop();
  ASSERT_TRUE(waitHealth(*proxy_, "m1", "ERROR", 5000));
  s = scrape();
  EXPECT_EQ(value(s, "octavia_pool_status{pool=\"p1\"}"), "0");
}

TEST_F(Prometheus, GetAndHeadOfAnyPathAreAnsweredOnAKeptAliveConnection) {
  proxy_ = std::make_unique<ProxyProcess>(config().toJson());
  HttpClient c("127.0.0.1", prom_port_);
  HttpResponse r = c.get("/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("# TYPE octavia_listener_bytes_in_total counter\n"), std::string::npos);
  EXPECT_FALSE(r.closed_after);

  r = c.request("HEAD", "/metrics");
  // (HttpClient reads HEAD answers without a body.)
  EXPECT_EQ(r.status, 200);
  r = c.get("/");
  EXPECT_EQ(r.status, 200) << "every path is answered, as Octavia's prometheus-proxy does";
  r = c.get("/metrics/other");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("# TYPE octavia_listener_bytes_in_total counter\n"), std::string::npos);
  r = c.get("/metrics?name[]=x");
  EXPECT_EQ(r.status, 200) << "the query string is ignored";
  r = c.request("DELETE", "/metrics");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD");
  EXPECT_FALSE(r.closed_after);
  r = c.request("POST", "/metrics", {}, "x=1");
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(c.waitClosed(3000)) << "a request body is not read: the connection closes";
  EXPECT_EQ(m1_.requestCount() + m2_.requestCount(), 0u) << "nothing reaches a member";
}

TEST_F(Prometheus, AllowedCidrsAndConnectionLimitApplyToThePrometheusListener) {
  ConfigSpec c = config();
  c.listener("prom").allowed_cidrs = {"127.0.0.64/30"};
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  ConnectOptions allowed;
  allowed.source_address = "127.0.0.65";
  HttpClient ok("127.0.0.1", prom_port_, allowed);
  EXPECT_EQ(ok.get("/metrics").status, 200);

  ConnectOptions refused;
  refused.source_address = "127.0.0.70";
  HttpClient no("127.0.0.1", prom_port_, refused);
  no.sendRaw("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string seen;
  EXPECT_TRUE(no.waitClosed(3000, &seen));
  EXPECT_EQ(seen, "");
}

TEST_F(Prometheus, ATlsPrometheusListenerServesMetricsOverHttp1AndHttp2) {
  ConfigSpec c = config();
  c.listener("prom").extra["default_tls_certificate"] = jsonString(testPki().www_bundle);
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  const std::string port = std::to_string(prom_port_);
  for (const char* version : {"--http1.1", "--http2"}) {
    SCOPED_TRACE(version);
    ToolResult r = runTool({"curl", "-sS", "--max-time", "5", version, "--cacert", testPki().root_ca,
                            "--resolve", "www.example.test:" + port + ":127.0.0.1", "-o", "-", "-w",
                            "\n%{http_code} %{http_version}",
                            "https://www.example.test:" + port + "/metrics"});
    ASSERT_EQ(r.exit_status, 0) << r.err;
    size_t nl = r.out.rfind('\n');
    EXPECT_EQ(r.out.substr(nl + 1), std::string("200 ") + (version[6] == '2' ? "2" : "1.1"));
    Samples s = checkExposition(r.out.substr(0, nl));
    EXPECT_EQ(value(s, "octavia_pool_status{pool=\"p1\"}"), "1");
  }
  // Plain HTTP to the TLS listener gets no metrics.
  ToolResult plain = runTool({"curl", "-sS", "--max-time", "3", "http://127.0.0.1:" + port + "/metrics"});
  EXPECT_EQ(plain.out.find("octavia_"), std::string::npos);
}

TEST_F(Prometheus, TlsHandshakesAndTheShareResumedAreCountedForTheLoadBalancer) {
  ConfigSpec c = config();
  Samples plain_only;
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  plain_only = scrape();
  EXPECT_EQ(value(plain_only, "octavia_loadbalancer_ssl_connections_total"), "<absent>");
  c.listener(kWebId).protocol = "TERMINATED_HTTPS";
  c.listener(kWebId).extra["default_tls_certificate"] = jsonString(testPki().www_bundle);
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  TlsTestClient first("127.0.0.1", web_port_, {});
  ASSERT_TRUE(first.handshakeOk()) << first.error();
  EXPECT_EQ(first.get("/").status, 200);  // TLS 1.3 tickets arrive with the first response
  std::string session = first.sessionDer();
  ASSERT_FALSE(session.empty());
  for (int i = 0; i < 3; ++i) {
    TlsClientOptions o;
    o.session = session;
    TlsTestClient again("127.0.0.1", web_port_, o);
    ASSERT_TRUE(again.handshakeOk()) << again.error();
    EXPECT_TRUE(again.resumed());
  }
  Samples s = scrape();
  EXPECT_EQ(value(s, "octavia_loadbalancer_ssl_connections_total"), "4");
  EXPECT_EQ(std::stod(value(s, "octavia_loadbalancer_frontent_ssl_reuse")), 75.0);
}

TEST_F(Prometheus, AddingAndRemovingThePrometheusListenerKeepsOtherTrafficFlowing) {
  proxy_ = std::make_unique<ProxyProcess>(config(false).toJson());
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread traffic([&] {
    HttpClient keep("127.0.0.1", web_port_);
    while (!stop) {
      try {
        if (keep.get("/k").status == 200) ++ok; else ++failed;
        if (fetchOnce("127.0.0.1", web_port_, "/n").status == 200) ++ok; else ++failed;
      } catch (const std::exception&) {
        ++failed;
        keep.close();
      }
    }
  });
  EXPECT_FALSE(tryConnect("127.0.0.1", prom_port_).valid());
  ConfigSpec with = config();
  with.generation = 2;
  ASSERT_EQ(proxy_->applyConfig(with.toJson()).status, 200);
  Samples s = scrape();
  EXPECT_EQ(value(s, "banyan_config_generation"), "2");
  ConfigSpec without = config(false);
  without.generation = 3;
  ASSERT_EQ(proxy_->applyConfig(without.toJson()).status, 200);
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    closed = !tryConnect("127.0.0.1", prom_port_).valid();
    if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(closed) << "the removed PROMETHEUS listener's port still accepts";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  traffic.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(failed.load(), 0);
}

}  // namespace
}  // namespace banyan::test
