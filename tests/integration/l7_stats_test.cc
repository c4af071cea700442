// Counters per L7 policy and for SNI routing, through the real banyan-proxy:
// traffic is sent over real sockets (HTTP/1.1, HTTP/2 streams on one
// connection, raw TLS ClientHellos on a TCP listener) and every counter of
// GET /stats and of a PROMETHEUS listener's exposition (parsed, HELP/TYPE
// checked) must move by exactly what was sent.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fixtures.h"
#include "h2_client.h"
#include "http_client.h"
#include "prometheus_text.h"
#include "tls_client.h"
#include "tls_helpers.h"

namespace banyan::test {
namespace {

// ---- /stats --------------------------------------------------------------------

struct PolicyStat {
  std::string listener_id;
  std::string action;
  int64_t matched = 0, rejected = 0, redirected = 0, routed = 0;
};

// The `l7policies` object of /stats, policy id -> counters.
std::map<std::string, PolicyStat> policyStats(const ProxyProcess& proxy) {
  std::map<std::string, PolicyStat> out;
  ControlResponse resp = proxy.get("/stats");
  EXPECT_EQ(resp.status, 200);
  rapidjson::Document doc = resp.json();
  EXPECT_TRUE(doc.IsObject() && doc.HasMember("l7policies") && doc["l7policies"].IsObject())
      << resp.body;
  if (!doc.IsObject() || !doc.HasMember("l7policies") || !doc["l7policies"].IsObject()) return out;
  for (const auto& m : doc["l7policies"].GetObject()) {
    const auto& v = m.value;
    PolicyStat s;
    s.listener_id = v["listener_id"].GetString();
    s.action = v["action"].GetString();
    s.matched = v["matched"].GetInt64();
    s.rejected = v["rejected"].GetInt64();
    s.redirected = v["redirected"].GetInt64();
    s.routed = v["routed"].GetInt64();
    EXPECT_TRUE(out.emplace(m.name.GetString(), s).second) << "policy twice: " << m.name.GetString();
  }
  return out;
}

int64_t listenerStat(const ProxyProcess& proxy, const std::string& listener, const std::string& field) {
  auto v = statValue(proxy, "listeners", listener, field);
  EXPECT_TRUE(v.has_value()) << listener << "." << field << " missing from /stats";
  return v.value_or(-1);
}

// Counters are bumped before the answer leaves, but /stats is read by another
// thread: wait (bounded) for the expected value, then insist on it.
void expectListenerStat(const ProxyProcess& proxy, const std::string& listener,
                        const std::string& field, int64_t expected) {
  waitUntil([&] { return listenerStat(proxy, listener, field) == expected; }, Millis(3000));
  EXPECT_EQ(listenerStat(proxy, listener, field), expected) << listener << "." << field;
}

// ---- the exposition ----------------------------------------------------------------

class Metrics {
 public:
  explicit Metrics(uint16_t port) {
    HttpResponse r = fetchOnce("127.0.0.1", port, "/metrics");
    EXPECT_EQ(r.status, 200);
    samples_ = checkExposition(r.body, &types_);
  }
  std::string type(const std::string& family) const {
    auto it = types_.find(family);
    return it == types_.end() ? "<absent>" : it->second;
  }
  // The value of the one sample with exactly these labels; "<absent>" if none.
  std::string value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    std::string found = "<absent>";
    for (const auto& [key, value] : samples_) {
      std::string sample_name;
      if (labelsOf(key, &sample_name) != labels || sample_name != name) continue;
      EXPECT_EQ(found, "<absent>") << "duplicate sample " << name;
      found = value;
    }
    return found;
  }
  size_t count(const std::string& name) const {
    size_t n = 0;
    for (const auto& [key, value] : samples_) n += key.substr(0, key.find('{')) == name;
    return n;
  }

 private:
  Samples samples_;
  std::map<std::string, std::string> types_;
};

// ---- HTTP listener ---------------------------------------------------------------

std::string policiesJson(bool with_deny, bool with_new) {
  std::string list = R"([
    {"id": "api", "position": 1, "action": "REDIRECT_TO_POOL", "redirect_pool_id": "p2",
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}]},
    {"id": "old", "position": 3, "action": "REDIRECT_PREFIX",
     "redirect_prefix": "https://new.example.test",
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/old"}]},
    {"id": "off", "position": 4, "action": "REJECT", "admin_state_up": false,
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/"}]})";
  if (with_deny) {
    list += R"(,
    {"id": "deny", "position": 2, "action": "REJECT",
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/deny"}]})";
  }
  if (with_new) {
    list += R"(,
    {"id": "new", "position": 5, "action": "REDIRECT_TO_URL", "redirect_url": "http://x.example/",
     "rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/new"}]})";
  }
  return list + "]";
}

// Listener "web" (HTTP) -> p1 (m1), policies to p2 (m2); "prom" (PROMETHEUS).
class L7Stats : public ::testing::Test {
 protected:
  ConfigSpec config(bool with_deny = true, bool with_new = false, uint64_t generation = 1) {
    ConfigSpec c = simpleConfig(port_, {memberOf(m1_)});
    c.generation = generation;
    c.listener("l1").id = "web";
    PoolSpec p2;
    p2.id = "p2";
    p2.members = {memberOf(m2_)};
    c.pools.push_back(p2);
    c.listener("web").extra["l7policies"] = policiesJson(with_deny, with_new);
    ListenerSpec prom;
    prom.id = "prom";
    prom.protocol = "PROMETHEUS";
    prom.protocol_port = prom_port_;
    c.listeners.push_back(prom);
    return c;
  }
  // `n` requests for `target` on one kept-alive connection; each answered `status`.
  void send(int n, const std::string& target, int status) {
    HttpClient c("127.0.0.1", port_);
    for (int i = 0; i < n; ++i) {
      HttpResponse r = c.get(target);
      ASSERT_EQ(r.status, status) << target;
      // The proxy closes after its own error answers (403).
      if (r.closed_after || r.status >= 400 || r.header("Connection") == "close") c.close();
    }
  }

  uint16_t port_ = pickFreePort();
  uint16_t prom_port_ = pickFreePort();
  TestHttpBackend m1_{"m1", "127.0.0.161"};
  TestHttpBackend m2_{"m2", "127.0.0.162"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(L7Stats, EachPolicyCountsExactlyTheRequestsItTookAndTheRestAreDefault) {
  proxy_ = std::make_unique<ProxyProcess>(config().toJson());
  const int kApi = 5, kDefault = 3, kDenied = 2, kOld = 4;
  send(kApi, "/api/v1", 200);
  send(kDefault, "/", 200);
  send(kDenied, "/deny", 403);
  send(kOld, "/old/page", 302);
  EXPECT_EQ(m2_.requestCount(), static_cast<size_t>(kApi));
  EXPECT_EQ(m1_.requestCount(), static_cast<size_t>(kDefault));

  expectListenerStat(*proxy_, "web", "l7_default", kDefault);
  auto stats = policyStats(*proxy_);
  ASSERT_EQ(stats.size(), 4u);  // the disabled one is listed too
  EXPECT_EQ(stats["api"].listener_id, "web");
  EXPECT_EQ(stats["api"].action, "REDIRECT_TO_POOL");
  EXPECT_EQ(stats["api"].matched, kApi);
  EXPECT_EQ(stats["api"].routed, kApi);
  EXPECT_EQ(stats["api"].rejected + stats["api"].redirected, 0);
  EXPECT_EQ(stats["deny"].matched, kDenied);
  EXPECT_EQ(stats["deny"].rejected, kDenied);
  EXPECT_EQ(stats["deny"].routed + stats["deny"].redirected, 0);
  EXPECT_EQ(stats["old"].matched, kOld);
  EXPECT_EQ(stats["old"].redirected, kOld);
  EXPECT_EQ(stats["off"].matched, 0);
  EXPECT_EQ(stats["off"].action, "REJECT");
  // Passthrough counters stay at zero on an HTTP listener.
  EXPECT_EQ(listenerStat(*proxy_, "web", "sni_routed"), 0);
  EXPECT_EQ(listenerStat(*proxy_, "web", "sni_default"), 0);
  EXPECT_EQ(listenerStat(*proxy_, "web", "sni_inspect_failed"), 0);
  // Rejects are request errors, as before.
  EXPECT_EQ(listenerStat(*proxy_, "web", "request_errors"), kDenied);
}

TEST_F(L7Stats, ThePrometheusListenerExportsThePolicyAndListenerCounters) {
  proxy_ = std::make_unique<ProxyProcess>(config().toJson());
  send(3, "/api", 200);
  send(2, "/elsewhere", 200);
  send(1, "/deny/x", 403);
  send(6, "/old", 302);
  expectListenerStat(*proxy_, "web", "l7_default", 2);

  Metrics m(prom_port_);
  EXPECT_EQ(m.type("banyan_l7policy_matched_total"), "counter");
  EXPECT_EQ(m.type("banyan_l7policy_outcomes_total"), "counter");
  EXPECT_EQ(m.type("banyan_listener_l7_default_total"), "counter");
  auto pl = [](const std::string& policy) {
    return std::map<std::string, std::string>{{"listener", "web"}, {"l7policy", policy}};
  };
  auto outcome = [](const std::string& policy, const std::string& o) {
    return std::map<std::string, std::string>{
        {"listener", "web"}, {"l7policy", policy}, {"outcome", o}};
  };
  EXPECT_EQ(m.value("banyan_l7policy_matched_total", pl("api")), "3");
  EXPECT_EQ(m.value("banyan_l7policy_matched_total", pl("deny")), "1");
  EXPECT_EQ(m.value("banyan_l7policy_matched_total", pl("old")), "6");
  EXPECT_EQ(m.value("banyan_l7policy_matched_total", pl("off")), "0");
  EXPECT_EQ(m.count("banyan_l7policy_matched_total"), 4u);
  EXPECT_EQ(m.value("banyan_l7policy_outcomes_total", outcome("api", "routed")), "3");
  EXPECT_EQ(m.value("banyan_l7policy_outcomes_total", outcome("api", "rejected")), "0");
  EXPECT_EQ(m.value("banyan_l7policy_outcomes_total", outcome("deny", "rejected")), "1");
  EXPECT_EQ(m.value("banyan_l7policy_outcomes_total", outcome("old", "redirected")), "6");
  EXPECT_EQ(m.count("banyan_l7policy_outcomes_total"), 12u);  // 4 policies x 3 outcomes
  EXPECT_EQ(m.value("banyan_listener_l7_default_total", {{"listener", "web"}}), "2");
  // The PROMETHEUS listener has no policies and no listener samples.
  EXPECT_EQ(m.count("banyan_listener_l7_default_total"), 1u);
  // No passthrough listener with policies: no SNI families.
  EXPECT_EQ(m.type("banyan_listener_sni_routed_total"), "<absent>");
}

TEST_F(L7Stats, AnApplyKeepsTheTotalsOfKeptPoliciesAndDropsRemovedOnes) {
  proxy_ = std::make_unique<ProxyProcess>(config().toJson());
  send(4, "/api", 200);
  send(2, "/deny", 403);
  send(1, "/", 200);
  expectListenerStat(*proxy_, "web", "l7_default", 1);
  ASSERT_EQ(policyStats(*proxy_)["deny"].matched, 2);

  ControlResponse r = proxy_->applyConfig(config(false, true, 2).toJson());
  ASSERT_EQ(r.status, 200) << r.body;
  send(1, "/api", 200);
  send(3, "/new", 302);
  send(2, "/deny", 200);  // no policy rejects it any more: the default pool

  expectListenerStat(*proxy_, "web", "l7_default", 3);
  auto stats = policyStats(*proxy_);
  EXPECT_EQ(stats.count("deny"), 0u);
  ASSERT_EQ(stats.count("new"), 1u);
  EXPECT_EQ(stats["api"].matched, 5);
  EXPECT_EQ(stats["api"].routed, 5);
  EXPECT_EQ(stats["new"].matched, 3);
  EXPECT_EQ(stats["new"].redirected, 3);
  Metrics m(prom_port_);
  EXPECT_EQ(m.value("banyan_l7policy_matched_total", {{"listener", "web"}, {"l7policy", "api"}}), "5");
  EXPECT_EQ(m.value("banyan_l7policy_matched_total", {{"listener", "web"}, {"l7policy", "deny"}}),
            "<absent>");
}

// ---- HTTP/2 ----------------------------------------------------------------------

TEST(L7StatsH2, EveryStreamIsCountedOnceOnItsPolicy) {
  uint16_t port = pickFreePort();
  TestHttpBackend m1{"m1", "127.0.0.163"};
  TestHttpBackend m2{"m2", "127.0.0.164"};
  ConfigSpec c = tlsConfig(port, {memberOf(m1)});
  PoolSpec p2;
  p2.id = "p2";
  p2.members = {memberOf(m2)};
  c.pools.push_back(p2);
  c.listener("l1").extra["l7policies"] = R"([
    {"id": "api", "position": 1, "action": "REDIRECT_TO_POOL", "redirect_pool_id": "p2",
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}]},
    {"id": "deny", "position": 2, "action": "REJECT",
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/deny"}]}])";
  ProxyProcess proxy(c.toJson());
  H2TestClient cl(port);
  ASSERT_TRUE(cl.connected()) << cl.error();
  // Streams in flight together on one connection, then one after another.
  std::vector<int32_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(cl.submit("GET", "/api/" + std::to_string(i)));
  for (int i = 0; i < 2; ++i) ids.push_back(cl.submit("GET", "/deny"));
  ASSERT_TRUE(cl.run([&] {
    for (int32_t id : ids)
      if (!cl.stream(id).closed) return false;
    return true;
  }, 5000));
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(cl.stream(ids[i]).status, i < 6 ? 200 : 403);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cl.get("/other").status, 200);

  expectListenerStat(proxy, "l1", "l7_default", 3);
  auto stats = policyStats(proxy);
  EXPECT_EQ(stats["api"].matched, 6);
  EXPECT_EQ(stats["api"].routed, 6);
  EXPECT_EQ(stats["deny"].matched, 2);
  EXPECT_EQ(stats["deny"].rejected, 2);
  EXPECT_EQ(m2.requestCount(), 6u);
  EXPECT_EQ(listenerStat(proxy, "l1", "total_connections"), 1);
}

// ---- SNI routing (TCP and HTTPS listeners, passthrough) -----------------------------

std::string hello(const std::string& sni) {
  ClientHelloSpec spec;
  spec.sni = sni;
  return clientHelloBytes(spec);
}

// Listener "tcp" (inspect 300 ms; protocol TCP or HTTPS, the parameter, and its
// pools too): a.example -> pool "ta", bad.example rejected, else "td". Members
// greet with their name ("ta\n", "td\n").
class L7StatsSni : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ConfigSpec c;
    PoolSpec ta;
    ta.id = "ta";
    ta.protocol = GetParam();
    ta.members = {memberOf(ta_)};
    PoolSpec td;
    td.id = "td";
    td.protocol = GetParam();
    td.members = {memberOf(td_)};
    c.pools = {ta, td};
    ListenerSpec l;
    l.id = "tcp";
    l.protocol = GetParam();
    l.protocol_port = port_;
    l.default_pool_id = "td";
    l.timeout_tcp_inspect = 300;
    l.extra["l7policies"] = R"([
      {"id": "to-a", "position": 1, "action": "REDIRECT_TO_POOL", "redirect_pool_id": "ta",
       "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "a.example"}]},
      {"id": "bad", "position": 2, "action": "REJECT",
       "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "bad.example"}]}])";
    c.listeners.push_back(l);
    ListenerSpec prom;
    prom.id = "prom";
    prom.protocol = "PROMETHEUS";
    prom.protocol_port = prom_port_;
    c.listeners.push_back(prom);
    proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  }
  // Connects, sends `bytes` (none: a client waiting for the server), and
  // returns the greeting of the member it reached ("" when closed).
  std::string reach(const std::string& bytes) {
    Fd fd = connectTo("127.0.0.1", port_);
    if (!bytes.empty()) sendAll(fd.get(), bytes);
    std::string got;
    readAtLeast(fd.get(), got, 3, 3000);
    return got.substr(0, 3);
  }

  uint16_t port_ = pickFreePort();
  uint16_t prom_port_ = pickFreePort();
  TestTcpBackend ta_{"ta", "127.0.0.165"};
  TestTcpBackend td_{"td", "127.0.0.166"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_P(L7StatsSni, ConnectionsAreCountedByHowTheirServerNameRoutedThem) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(reach(hello("a.example")), "ta\n");
  for (int i = 0; i < 2; ++i) EXPECT_EQ(reach(hello("other.example")), "td\n");
  EXPECT_EQ(reach(hello("")), "td\n");  // a whole ClientHello without SNI: read, not failed
  EXPECT_EQ(reach(hello("bad.example")), "");
  EXPECT_EQ(reach("plain text\n"), "td\n");  // not TLS: inspection failed
  EXPECT_EQ(reach(""), "td\n");              // server-first client: inspect timeout

  expectListenerStat(*proxy_, "tcp", "sni_routed", 3);
  expectListenerStat(*proxy_, "tcp", "sni_default", 5);
  expectListenerStat(*proxy_, "tcp", "sni_inspect_failed", 2);
  expectListenerStat(*proxy_, "tcp", "request_errors", 1);
  EXPECT_EQ(listenerStat(*proxy_, "tcp", "l7_default"), 0);
  auto stats = policyStats(*proxy_);
  EXPECT_EQ(stats["to-a"].listener_id, "tcp");
  EXPECT_EQ(stats["to-a"].matched, 3);
  EXPECT_EQ(stats["to-a"].routed, 3);
  EXPECT_EQ(stats["bad"].matched, 1);
  EXPECT_EQ(stats["bad"].rejected, 1);

  Metrics m(prom_port_);
  const std::map<std::string, std::string> tcp{{"listener", "tcp"}};
  EXPECT_EQ(m.type("banyan_listener_sni_routed_total"), "counter");
  EXPECT_EQ(m.value("banyan_listener_sni_routed_total", tcp), "3");
  EXPECT_EQ(m.value("banyan_listener_sni_default_total", tcp), "5");
  EXPECT_EQ(m.value("banyan_listener_sni_inspect_failed_total", tcp), "2");
  EXPECT_EQ(m.value("banyan_l7policy_matched_total", {{"listener", "tcp"}, {"l7policy", "to-a"}}), "3");
  EXPECT_EQ(m.value("banyan_l7policy_outcomes_total",
                    {{"listener", "tcp"}, {"l7policy", "bad"}, {"outcome", "rejected"}}),
            "1");
  // An HTTP-only family is left out when no HTTP listener has policies.
  EXPECT_EQ(m.type("banyan_listener_l7_default_total"), "<absent>");
}

INSTANTIATE_TEST_SUITE_P(Passthrough, L7StatsSni, ::testing::Values("TCP", "HTTPS"));

}  // namespace
}  // namespace banyan::test
