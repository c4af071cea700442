// L7 policy counters at snapshot build time (resolved per compiled policy,
// kept across builds that keep the policy) and in the Prometheus exposition.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "snapshot_fixture.h"
#include "config/parse.h"
#include "l7/policy.h"
#include "proxy/metrics.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"

namespace banyan::dp::proxy {
namespace {

constexpr size_t kWorkers = 2;

using Fixture = testing::SnapshotFixture;

// Listener "web": "api" (position 2) routes /api to pool "p2", "deny" (position
// 1) rejects /deny, "off" is disabled, "empty" has no rule. Listener "tls"
// (HTTPS passthrough) routes a.example to "t2".
std::string document(bool with_deny = true) {
  std::string deny = R"(
       {"id": "deny", "position": 1, "action": "REJECT",
        "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/deny"}]},)";
  return std::string(R"({
  "listeners": [
    {"id": "web", "protocol": "HTTP", "address": "127.0.0.1", "protocol_port": 8080,
     "default_pool_id": "p1",
     "l7policies": [
       {"id": "api", "position": 2, "action": "REDIRECT_TO_POOL", "redirect_pool_id": "p2",
        "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}]},)") +
         (with_deny ? deny : "") + R"(
       {"id": "off", "position": 3, "action": "REJECT", "admin_state_up": false,
        "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/"}]},
       {"id": "empty", "position": 4, "action": "REJECT", "rules": []}]},
    {"id": "tls", "protocol": "HTTPS", "address": "127.0.0.1", "protocol_port": 8443,
     "default_pool_id": "t1",
     "l7policies": [
       {"id": "to-a", "action": "REDIRECT_TO_POOL", "redirect_pool_id": "t2",
        "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "a.example"}]}]},
    {"id": "plain", "protocol": "HTTP", "address": "127.0.0.1", "protocol_port": 8081,
     "default_pool_id": "p1"}
  ],
  "pools": [
    {"id": "p1", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": []},
    {"id": "p2", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": []},
    {"id": "t1", "protocol": "HTTPS", "lb_algorithm": "ROUND_ROBIN", "members": []},
    {"id": "t2", "protocol": "HTTPS", "lb_algorithm": "ROUND_ROBIN", "members": []}
  ]
})";
}

const ListenerRt::PolicyStats* statsOf(const ListenerRt& l, const std::string& id) {
  for (const auto& ps : l.policy_stats)
    if (ps.cfg->id == id) return &ps;
  return nullptr;
}

TEST(L7PolicyCounters, EveryPolicyOfTheDocumentHasCountersAndEveryCompiledOneIsResolved) {
  Fixture f;
  auto s = f.build(document());
  ASSERT_TRUE(s);
  const ListenerRt* web = s->findListener("web");
  ASSERT_NE(web, nullptr);
  ASSERT_EQ(web->policy_stats.size(), 4u);  // disabled and rule-less ones too
  ASSERT_NE(web->policies, nullptr);
  ASSERT_EQ(web->policies->policies().size(), 2u);
  ASSERT_EQ(web->match_counters.size(), 2u);
  // The compiled set is ordered by position; each entry counts on its own policy.
  for (const auto& compiled : web->policies->policies())
    EXPECT_EQ(&web->countersOf(compiled), statsOf(*web, compiled.id)->counters.get()) << compiled.id;
  EXPECT_NE(statsOf(*web, "api")->counters, statsOf(*web, "deny")->counters);
  EXPECT_TRUE(s->findListener("plain")->policy_stats.empty());
  EXPECT_TRUE(s->findListener("plain")->match_counters.empty());
}

TEST(L7PolicyCounters, TheCountersOfWhatMatchGetsAreThePolicysOwn) {
  Fixture f;
  auto s = f.build(document());
  ASSERT_TRUE(s);
  const ListenerRt& web = *s->findListener("web");
  l7::MatchInput in;
  in.path = "/deny/x";
  const l7::Policy* p = web.policies->match(in);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->id, "deny");
  bump(web.countersOf(*p).slot(1).matched);
  EXPECT_EQ(statsOf(web, "deny")->counters->sum().matched, 1u);
  EXPECT_EQ(statsOf(web, "api")->counters->sum().matched, 0u);
}

TEST(L7PolicyCounters, ABuildThatKeepsAPolicyKeepsItsTotalsAndARemovedOneIsCollected) {
  Fixture f;
  auto first = f.build(document());
  ASSERT_TRUE(first);
  const ListenerRt& web1 = *first->findListener("web");
  bump(statsOf(web1, "api")->counters->slot(0).matched, 5);
  bump(statsOf(web1, "api")->counters->slot(1).routed, 5);
  bump(statsOf(web1, "deny")->counters->slot(0).rejected, 2);
  std::weak_ptr<PolicyCounters> deny = statsOf(web1, "deny")->counters;

  auto second = f.build(document(false));
  ASSERT_TRUE(second);
  const ListenerRt& web2 = *second->findListener("web");
  EXPECT_EQ(statsOf(web2, "deny"), nullptr);
  PolicyCounterTotals api = statsOf(web2, "api")->counters->sum();
  EXPECT_EQ(api.matched, 5u);
  EXPECT_EQ(api.routed, 5u);
  first.reset();
  f.policy_counters.collect();
  EXPECT_TRUE(deny.expired());
  // web: api, off, empty; tls: to-a.
  EXPECT_EQ(f.policy_counters.size(), 4u);
}

TEST(L7PolicyCounters, PoliciesWithTheSameIdOnTwoListenersCountApart) {
  EXPECT_NE(policyCounterKey("a", "bc"), policyCounterKey("ab", "c"));
  PolicyCounterRegistry r(kWorkers);
  EXPECT_NE(r.get(policyCounterKey("l1", "p")), r.get(policyCounterKey("l2", "p")));
}

// "name{labels}" -> value, of every sample line; families in order of TYPE lines.
struct Exposition {
  std::map<std::string, std::string> samples;
  std::map<std::string, std::string> types;
};

Exposition parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      e.types[rest.substr(0, sp)] = rest.substr(sp + 1);
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    e.samples[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return e;
}

TEST(L7PolicyCounters, MetricsCarryPolicyAndListenerCountersWithTheirLabels) {
  Fixture f;
  auto s = f.build(document());
  ASSERT_TRUE(s);
  const ListenerRt& web = *s->findListener("web");
  const ListenerRt& tls = *s->findListener("tls");
  bump(statsOf(web, "api")->counters->slot(0).matched, 7);
  bump(statsOf(web, "api")->counters->slot(1).routed, 7);
  bump(statsOf(web, "deny")->counters->slot(1).matched, 3);
  bump(statsOf(web, "deny")->counters->slot(1).rejected, 3);
  bump(web.counters->slot(0).l7_default, 11);
  bump(tls.counters->slot(0).sni_routed, 2);
  bump(tls.counters->slot(1).sni_default, 4);
  bump(tls.counters->slot(1).sni_inspect_failed, 1);

  Exposition e = parse(renderMetrics(*s, HostUsage{}));
  EXPECT_EQ(e.types["banyan_l7policy_matched_total"], "counter");
  EXPECT_EQ(e.types["banyan_l7policy_outcomes_total"], "counter");
  EXPECT_EQ(e.samples["banyan_l7policy_matched_total{listener=\"web\",l7policy=\"api\"}"], "7");
  EXPECT_EQ(e.samples["banyan_l7policy_matched_total{listener=\"web\",l7policy=\"deny\"}"], "3");
  EXPECT_EQ(e.samples["banyan_l7policy_matched_total{listener=\"web\",l7policy=\"off\"}"], "0");
  EXPECT_EQ(e.samples["banyan_l7policy_matched_total{listener=\"tls\",l7policy=\"to-a\"}"], "0");
  EXPECT_EQ(
      e.samples["banyan_l7policy_outcomes_total{listener=\"web\",l7policy=\"api\",outcome=\"routed\"}"],
      "7");
  EXPECT_EQ(e.samples["banyan_l7policy_outcomes_total{listener=\"web\",l7policy=\"deny\","
                      "outcome=\"rejected\"}"],
            "3");
  EXPECT_EQ(e.samples["banyan_l7policy_outcomes_total{listener=\"web\",l7policy=\"deny\","
                      "outcome=\"redirected\"}"],
            "0");
  EXPECT_EQ(e.samples["banyan_listener_l7_default_total{listener=\"web\"}"], "11");
  EXPECT_EQ(e.samples["banyan_listener_sni_routed_total{listener=\"tls\"}"], "2");
  EXPECT_EQ(e.samples["banyan_listener_sni_default_total{listener=\"tls\"}"], "4");
  EXPECT_EQ(e.samples["banyan_listener_sni_inspect_failed_total{listener=\"tls\"}"], "1");
  // Only listeners with policies, and each family on the side it belongs to.
  EXPECT_EQ(e.samples.count("banyan_listener_l7_default_total{listener=\"plain\"}"), 0u);
  EXPECT_EQ(e.samples.count("banyan_listener_l7_default_total{listener=\"tls\"}"), 0u);
  EXPECT_EQ(e.samples.count("banyan_listener_sni_default_total{listener=\"web\"}"), 0u);
}

TEST(L7PolicyCounters, MetricsLeaveThePolicyFamiliesOutWhenNoListenerHasPolicies) {
  Fixture f;
  auto s = f.build(R"({
    "listeners": [{"id": "plain", "protocol": "HTTP", "address": "127.0.0.1",
                   "protocol_port": 8081, "default_pool_id": "p1"}],
    "pools": [{"id": "p1", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": []}]})");
  ASSERT_TRUE(s);
  Exposition e = parse(renderMetrics(*s, HostUsage{}));
  EXPECT_EQ(e.types.count("banyan_l7policy_matched_total"), 0u);
  EXPECT_EQ(e.types.count("banyan_l7policy_outcomes_total"), 0u);
  EXPECT_EQ(e.types.count("banyan_listener_l7_default_total"), 0u);
  EXPECT_EQ(e.types.count("banyan_listener_sni_routed_total"), 0u);
}

}  // namespace
}  // namespace banyan::dp::proxy
