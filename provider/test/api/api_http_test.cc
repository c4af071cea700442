// The Octavia v2 API over real HTTP: a SQLite store, the noauth authenticator, Octavia's
// policy, and the noop_driver (objects go ACTIVE right after the write) unless a test
// picks the amphora provider (a job is queued and the status stays PENDING_*).
#include <gtest/gtest.h>

#include "api_server_fixture.h"

namespace banyan::provider::api {
namespace {

using testing::ApiServer;
using testing::noopOptions;
using testing::Reply;

constexpr const char* kSubnet = "5f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b";

std::string str(const JsonValue& v, const char* key) { return jstring(v, key); }

#ifdef BANYAN_API_TEST_POSTGRES
const auto* const kPostgresEnv =
    ::testing::AddGlobalTestEnvironment(new provider::testing::PostgresEnvironment);
#endif

class ApiTest : public ::testing::Test {
 protected:
  ApiServer api{noopOptions()};

  std::string createLb(const std::string& extra = "") {
    Reply r = api.call("POST", "/v2.0/lbaas/loadbalancers",
                       std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + "\"" + extra + "}}");
    EXPECT_EQ(r.status, 201) << r.body;
    return str(r.json["loadbalancer"], "id");
  }
  std::string createListener(const std::string& lb, const std::string& protocol, int port,
                             const std::string& extra = "") {
    Reply r = api.call("POST", "/v2.0/lbaas/listeners",
                       R"({"listener":{"loadbalancer_id":")" + lb + R"(","protocol":")" + protocol +
                           R"(","protocol_port":)" + std::to_string(port) + extra + "}}");
    EXPECT_EQ(r.status, 201) << r.body;
    return str(r.json["listener"], "id");
  }
  std::string createPool(const std::string& owner_field, const std::string& owner, const std::string& protocol,
                         const std::string& extra = "") {
    Reply r = api.call("POST", "/v2.0/lbaas/pools",
                       R"({"pool":{")" + owner_field + R"(":")" + owner + R"(","protocol":")" + protocol +
                           R"(","lb_algorithm":"ROUND_ROBIN")" + extra + "}}");
    EXPECT_EQ(r.status, 201) << r.body;
    return str(r.json["pool"], "id");
  }
  std::string status(const std::string& path, const char* root, const char* field = "provisioning_status") {
    Reply r = api.call("GET", path);
    return str(r.json[root], field);
  }
};

TEST_F(ApiTest, VersionDiscoveryListsEveryVersionWithV226Current) {
  Reply r = api.call("GET", "/");
  ASSERT_EQ(r.status, 200);
  const auto& versions = r.json["versions"];
  ASSERT_EQ(versions.Size(), 27u);
  EXPECT_EQ(str(versions[0], "id"), "v2.0");
  EXPECT_EQ(str(versions[0], "status"), "SUPPORTED");
  EXPECT_EQ(str(versions[7], "updated"), "2018-01-25T12:00:00Z");
  EXPECT_EQ(str(versions[26], "id"), "v2.26");
  EXPECT_EQ(str(versions[26], "status"), "CURRENT");
  EXPECT_EQ(str(versions[26]["links"][0], "href"), api.base() + "/v2");
  EXPECT_EQ(api.call("GET", "/v2").body, "\"v2\"");
  EXPECT_EQ(api.call("GET", "/v2.0/lbaas/").body, "\"v2\"");
}

TEST_F(ApiTest, ErrorsAreWsmeFaultsAndEveryResponseHasARequestId) {
  Reply r = api.call("GET", "/v2.0/lbaas/loadbalancers/8b1f1e1c-0000-4000-8000-000000000001");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(str(r.json, "faultcode"), "Client");
  EXPECT_EQ(str(r.json, "faultstring"), "Load Balancer 8b1f1e1c-0000-4000-8000-000000000001 not found.");
  EXPECT_TRUE(r.json["debuginfo"].IsNull());
  EXPECT_EQ(r.request_id.rfind("req-", 0), 0u);
  EXPECT_EQ(r.request_id.size(), 40u);
  EXPECT_EQ(api.call("GET", "/").request_id.size(), 40u);
}

TEST_F(ApiTest, UnknownPathsAre404AndWrongMethods405) {
  EXPECT_EQ(api.call("GET", "/v2/lbaas/nothing").status, 404);
  EXPECT_EQ(api.call("GET", "/v3").status, 404);
  EXPECT_EQ(api.call("PATCH", "/v2/lbaas/loadbalancers").status, 405);
  EXPECT_EQ(api.call("DELETE", "/v2/lbaas/loadbalancers").status, 405);
  EXPECT_EQ(api.call("GET", "/healthcheck").status, 404);  // healthcheck_enabled = false
}

TEST_F(ApiTest, BothPrefixesTrailingSlashAndJsonSuffixReachTheSameCollection) {
  std::string lb = createLb();
  for (const char* path : {"/v2/lbaas/loadbalancers", "/v2.0/lbaas/loadbalancers/", "/v2/lbaas/loadbalancers.json"}) {
    Reply r = api.call("GET", path);
    ASSERT_EQ(r.status, 200) << path;
    ASSERT_EQ(r.json["loadbalancers"].Size(), 1u) << path;
    EXPECT_EQ(str(r.json["loadbalancers"][0], "id"), lb);
  }
}

TEST_F(ApiTest, LoadBalancerIsCreatedPendingThenNoopMakesItActive) {
  Reply r = api.call("POST", "/v2.0/lbaas/loadbalancers",
                     std::string(R"({"loadbalancer":{"name":"web","vip_subnet_id":")") + kSubnet +
                         R"(","vip_address":"203.0.113.10","tags":["a","b"]}})");
  ASSERT_EQ(r.status, 201) << r.body;
  const auto& lb = r.json["loadbalancer"];
  EXPECT_EQ(str(lb, "provisioning_status"), "PENDING_CREATE");
  EXPECT_EQ(str(lb, "operating_status"), "OFFLINE");
  EXPECT_EQ(str(lb, "vip_address"), "203.0.113.10");
  EXPECT_EQ(str(lb, "vip_subnet_id"), kSubnet);
  EXPECT_FALSE(str(lb, "vip_port_id").empty());
  EXPECT_FALSE(str(lb, "vip_network_id").empty());
  EXPECT_EQ(str(lb, "project_id"), "project-a");
  EXPECT_EQ(str(lb, "tenant_id"), "project-a");
  EXPECT_EQ(str(lb, "provider"), "noop_driver");
  EXPECT_EQ(str(lb, "description"), "");
  EXPECT_TRUE(lb["updated_at"].IsNull());
  EXPECT_TRUE(lb["listeners"].IsArray());
  std::string id = str(lb, "id");
  EXPECT_EQ(status("/v2.0/lbaas/loadbalancers/" + id, "loadbalancer"), "ACTIVE");
}

TEST_F(ApiTest, InvalidLoadBalancerBodiesAre400AndWriteNothing) {
  struct Row {
    std::string body;
    std::string faultstring;
  } rows[] = {
      {R"({"loadbalancer":{"name":"x"}})",
       "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id."},
      {std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","color":"red"}})",
       "Unknown attribute for argument loadbalancer: color"},
      {R"({"loadbalancer":{"vip_subnet_id":"not-a-uuid"}})",
       "Invalid input for field/attribute vip_subnet_id. Value: 'not-a-uuid'. Value should be UUID format"},
      {std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","admin_state_up":"maybe"}})", ""},
      {R"({"loadbalancer":)", ""},
      {R"([1,2])", ""},
      {std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","provider":"f5"}})",
       "Provider 'f5' is not enabled."},
  };
  for (const auto& row : rows) {
    Reply r = api.call("POST", "/v2/lbaas/loadbalancers", row.body);
    EXPECT_EQ(r.status, 400) << row.body << " -> " << r.body;
    EXPECT_EQ(str(r.json, "faultcode"), "Client");
    if (!row.faultstring.empty()) {
      EXPECT_EQ(str(r.json, "faultstring"), row.faultstring);
    }
  }
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers").json["loadbalancers"].Size(), 0u);
}

TEST_F(ApiTest, ListenerGetsOctaviaDefaultsAndNumericStringsAreCoerced) {
  std::string lb = createLb();
  Reply r = api.call("POST", "/v2/lbaas/listeners",
                     R"({"listener":{"loadbalancer_id":")" + lb +
                         R"(","protocol":"HTTP","protocol_port":80,"connection_limit":"200",)"
                         R"("insert_headers":{"X-Forwarded-For":"true"},"allowed_cidrs":["198.51.100.77/25"]}})");
  ASSERT_EQ(r.status, 201) << r.body;
  const auto& l = r.json["listener"];
  EXPECT_EQ(jint(l, "connection_limit"), 200);
  EXPECT_EQ(jint(l, "timeout_client_data"), 50000);
  EXPECT_EQ(jint(l, "timeout_member_connect"), 5000);
  EXPECT_EQ(jint(l, "timeout_member_data"), 50000);
  EXPECT_EQ(jint(l, "timeout_tcp_inspect"), 0);
  EXPECT_EQ(str(l, "client_authentication"), "NONE");
  EXPECT_EQ(str(l["insert_headers"], "X-Forwarded-For"), "true");
  EXPECT_EQ(std::string(l["allowed_cidrs"][0].GetString()), "198.51.100.0/25");
  EXPECT_TRUE(l["tls_ciphers"].IsNull());
  EXPECT_EQ(str(l["loadbalancers"][0], "id"), lb);
  EXPECT_EQ(str(r.json["listener"], "provisioning_status"), "PENDING_CREATE");
  EXPECT_EQ(status("/v2/lbaas/loadbalancers/" + lb, "loadbalancer"), "ACTIVE");
}

TEST_F(ApiTest, ListenerPortsAreUniquePerL4Protocol) {
  std::string lb = createLb();
  createListener(lb, "HTTP", 80);
  createListener(lb, "UDP", 80);
  Reply r = api.call("POST", "/v2/lbaas/listeners",
                     R"({"listener":{"loadbalancer_id":")" + lb + R"(","protocol":"TCP","protocol_port":80}})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(str(r.json, "faultstring"),
            "Another Listener on this Load Balancer is already using protocol TCP and protocol_port 80");
}

TEST_F(ApiTest, ListenerProtocolRulesAre400) {
  std::string lb = createLb();
  for (std::string extra : {R"(,"protocol":"UDP","protocol_port":53,"insert_headers":{"X-Forwarded-For":"true"})",
                            R"(,"protocol":"TERMINATED_HTTPS","protocol_port":443)",
                            R"(,"protocol":"HTTP","protocol_port":81,"tls_versions":[])",
                            R"(,"protocol":"HTTP","protocol_port":82,"allowed_cidrs":["2001:db8::/32"])",
                            R"(,"protocol":"HTTP","protocol_port":83,"insert_headers":{"X-Bogus":"true"})",
                            R"(,"protocol":"FTP","protocol_port":21)"}) {
    Reply r = api.call("POST", "/v2/lbaas/listeners", R"({"listener":{"loadbalancer_id":")" + lb + "\"" + extra + "}}");
    EXPECT_EQ(r.status, 400) << extra << " -> " << r.body;
  }
}

TEST_F(ApiTest, TerminatedHttpsListenerGetsTlsDefaults) {
  std::string lb = createLb();
  Reply r = api.call("POST", "/v2/lbaas/listeners",
                     R"({"listener":{"loadbalancer_id":")" + lb +
                         R"(","protocol":"TERMINATED_HTTPS","protocol_port":443,"default_tls_container_ref":"ref"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(str(r.json["listener"], "tls_ciphers"), kOwaspSuiteBCiphers);
  EXPECT_EQ(r.json["listener"]["tls_versions"].Size(), 2u);
  EXPECT_EQ(r.json["listener"]["alpn_protocols"].Size(), 3u);
}

TEST_F(ApiTest, PoolProtocolMustMatchItsListener) {
  std::string lb = createLb();
  std::string listener = createListener(lb, "HTTP", 80);
  Reply r = api.call("POST", "/v2/lbaas/pools",
                     R"({"pool":{"listener_id":")" + listener + R"(","protocol":"TCP","lb_algorithm":"ROUND_ROBIN"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(str(r.json, "faultstring"),
            "Validation failure: The pool protocol 'TCP' is invalid while the listener protocol is 'HTTP'.");
  std::string pool = createPool("listener_id", listener, "HTTP");
  EXPECT_EQ(status("/v2/lbaas/listeners/" + listener, "listener", "default_pool_id"), pool);
  Reply again = api.call("POST", "/v2/lbaas/pools",
                         R"({"pool":{"listener_id":")" + listener + R"(","protocol":"HTTP","lb_algorithm":"ROUND_ROBIN"}})");
  EXPECT_EQ(again.status, 409);
  Reply shown = api.call("GET", "/v2/lbaas/pools/" + pool);
  EXPECT_EQ(str(shown.json["pool"]["listeners"][0], "id"), listener);
  EXPECT_EQ(str(shown.json["pool"]["loadbalancers"][0], "id"), lb);
  EXPECT_EQ(api.call("POST", "/v2/lbaas/pools", R"({"pool":{"protocol":"HTTP","lb_algorithm":"ROUND_ROBIN"}})").status, 400);
}

TEST_F(ApiTest, SessionPersistenceRules) {
  std::string lb = createLb();
  auto post = [&](const std::string& protocol, const std::string& sp) {
    return api.call("POST", "/v2/lbaas/pools",
                    R"({"pool":{"loadbalancer_id":")" + lb + R"(","protocol":")" + protocol +
                        R"(","lb_algorithm":"SOURCE_IP","session_persistence":)" + sp + "}}");
  };
  EXPECT_EQ(post("HTTP", R"({"type":"APP_COOKIE"})").status, 400);
  EXPECT_EQ(post("HTTP", R"({"type":"HTTP_COOKIE","cookie_name":"x"})").status, 400);
  EXPECT_EQ(post("UDP", R"({"type":"HTTP_COOKIE"})").status, 400);
  EXPECT_EQ(post("HTTP", R"({"type":"SOURCE_IP","persistence_timeout":3})").status, 400);
  Reply ok = post("HTTP", R"({"type":"APP_COOKIE","cookie_name":"JSESSIONID"})");
  ASSERT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(str(ok.json["pool"]["session_persistence"], "cookie_name"), "JSESSIONID");
  Reply udp = post("UDP", R"({"type":"SOURCE_IP","persistence_timeout":60,"persistence_granularity":"255.255.255.0"})");
  ASSERT_EQ(udp.status, 201) << udp.body;
  EXPECT_EQ(jint(udp.json["pool"]["session_persistence"], "persistence_timeout"), 60);
}

TEST_F(ApiTest, MembersCreateShowAndReportNoMonitorWithoutAHealthMonitor) {
  std::string lb = createLb();
  std::string pool = createPool("loadbalancer_id", lb, "TCP");
  Reply r = api.call("POST", "/v2/lbaas/pools/" + pool + "/members",
                     R"({"member":{"address":"192.0.2.10","protocol_port":8080}})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(str(r.json["member"], "operating_status"), "NO_MONITOR");
  EXPECT_EQ(jint(r.json["member"], "weight"), 1);
  EXPECT_FALSE(jbool(r.json["member"], "backup", true));
  std::string member = str(r.json["member"], "id");
  EXPECT_EQ(status("/v2/lbaas/pools/" + pool + "/members/" + member, "member"), "ACTIVE");
  Reply dup = api.call("POST", "/v2/lbaas/pools/" + pool + "/members",
                       R"({"member":{"address":"192.0.2.10","protocol_port":8080}})");
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(api.call("POST", "/v2/lbaas/pools/" + pool + "/members",
                     R"({"member":{"address":"169.254.169.254","protocol_port":80}})").status, 400);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/pools/8b1f1e1c-0000-4000-8000-000000000001/members/" + member).status, 404);
  Reply upd = api.call("PUT", "/v2/lbaas/pools/" + pool + "/members/" + member, R"({"member":{"weight":null,"name":"m"}})");
  ASSERT_EQ(upd.status, 200) << upd.body;
  EXPECT_EQ(str(upd.json["member"], "provisioning_status"), "PENDING_UPDATE");
  EXPECT_EQ(jint(upd.json["member"], "weight"), 1);
}

TEST_F(ApiTest, MemberBatchUpdateCreatesUpdatesAndDeletes) {
  std::string lb = createLb();
  std::string pool = createPool("loadbalancer_id", lb, "HTTP");
  std::string path = "/v2/lbaas/pools/" + pool + "/members";
  std::string m1 = str(api.call("POST", path, R"({"member":{"address":"192.0.2.1","protocol_port":80}})").json["member"], "id");
  std::string m2 = str(api.call("POST", path, R"({"member":{"address":"192.0.2.2","protocol_port":80}})").json["member"], "id");
  Reply r = api.call("PUT", path,
                     R"({"members":[{"address":"192.0.2.2","protocol_port":80,"name":"renamed"},)"
                     R"({"address":"192.0.2.3","protocol_port":80}]})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_TRUE(r.body.empty());
  Reply list = api.call("GET", path);
  ASSERT_EQ(list.json["members"].Size(), 2u);
  bool saw_m2 = false;
  for (const auto& m : list.json["members"].GetArray()) {
    EXPECT_NE(str(m, "id"), m1);
    EXPECT_EQ(str(m, "provisioning_status"), "ACTIVE");
    if (str(m, "id") == m2) {
      saw_m2 = true;
      EXPECT_EQ(str(m, "name"), "renamed");
    }
  }
  EXPECT_TRUE(saw_m2);
  Reply additive = api.call("PUT", path + "?additive_only=true", R"({"members":[{"address":"192.0.2.9","protocol_port":80}]})");
  EXPECT_EQ(additive.status, 202);
  EXPECT_EQ(api.call("GET", path).json["members"].Size(), 3u);
}

TEST_F(ApiTest, HealthMonitorDefaultsTypeChecksAndOnlineAfterActivation) {
  std::string lb = createLb();
  std::string pool = createPool("loadbalancer_id", lb, "HTTP");
  Reply bad = api.call("POST", "/v2/lbaas/healthmonitors",
                       R"({"healthmonitor":{"pool_id":")" + pool +
                           R"(","type":"TCP","delay":2,"timeout":3,"max_retries":4,"url_path":"/x"}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(str(bad.json, "faultstring"), "url_path is not a valid option for health monitors of type TCP");
  EXPECT_EQ(api.call("POST", "/v2/lbaas/healthmonitors",
                     R"({"healthmonitor":{"pool_id":")" + pool +
                         R"(","type":"UDP-CONNECT","delay":2,"timeout":3,"max_retries":4}})").status, 400);
  Reply r = api.call("POST", "/v2/lbaas/healthmonitors",
                     R"({"healthmonitor":{"pool_id":")" + pool + R"(","type":"HTTP","delay":2,"timeout":3,"max_retries":4}})");
  ASSERT_EQ(r.status, 201) << r.body;
  const auto& hm = r.json["healthmonitor"];
  EXPECT_EQ(str(hm, "http_method"), "GET");
  EXPECT_EQ(str(hm, "url_path"), "/");
  EXPECT_EQ(str(hm, "expected_codes"), "200");
  EXPECT_EQ(jint(hm, "max_retries_down"), 3);
  EXPECT_EQ(str(hm["pools"][0], "id"), pool);
  std::string id = str(hm, "id");
  EXPECT_EQ(status("/v2/lbaas/healthmonitors/" + id, "healthmonitor", "operating_status"), "ONLINE");
  EXPECT_EQ(status("/v2/lbaas/pools/" + pool, "pool", "healthmonitor_id"), id);
  EXPECT_EQ(api.call("POST", "/v2/lbaas/healthmonitors",
                     R"({"healthmonitor":{"pool_id":")" + pool + R"(","type":"PING","delay":2,"timeout":3,"max_retries":4}})")
                .status,
            409);
}

TEST_F(ApiTest, L7PoliciesInsertedAtOnePushTheOthersDown) {
  std::string lb = createLb();
  std::string listener = createListener(lb, "HTTP", 80);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    Reply r = api.call("POST", "/v2/lbaas/l7policies",
                       R"({"l7policy":{"listener_id":")" + listener + R"(","action":"REJECT","position":1}})");
    ASSERT_EQ(r.status, 201) << r.body;
    ids.push_back(str(r.json["l7policy"], "id"));
  }
  // Listed in creation order (Octavia's default sort), positions renumbered newest first.
  Reply list = api.call("GET", "/v2/lbaas/l7policies?listener_id=" + listener);
  ASSERT_EQ(list.json["l7policies"].Size(), 3u);
  EXPECT_EQ(str(list.json["l7policies"][0], "id"), ids[0]);
  EXPECT_EQ(jint(list.json["l7policies"][0], "position"), 3);
  EXPECT_EQ(str(list.json["l7policies"][2], "id"), ids[2]);
  EXPECT_EQ(jint(list.json["l7policies"][2], "position"), 1);
  Reply by_position = api.call("GET", "/v2/lbaas/l7policies?sort=position:asc");
  EXPECT_EQ(str(by_position.json["l7policies"][0], "id"), ids[2]);
  Reply url = api.call("PUT", "/v2/lbaas/l7policies/" + ids[0], R"({"l7policy":{"redirect_url":"http://example.com/"}})");
  ASSERT_EQ(url.status, 200) << url.body;
  EXPECT_EQ(str(url.json["l7policy"], "action"), "REDIRECT_TO_URL");
  EXPECT_EQ(jint(url.json["l7policy"], "redirect_http_code"), 302);
  Reply rule = api.call("POST", "/v2/lbaas/l7policies/" + ids[1] + "/rules",
                        R"({"rule":{"type":"HEADER","compare_type":"EQUAL_TO","key":"mykey","value":"v"}})");
  ASSERT_EQ(rule.status, 201) << rule.body;
  EXPECT_FALSE(jbool(rule.json["rule"], "invert", true));
  EXPECT_EQ(api.call("POST", "/v2/lbaas/l7policies/" + ids[1] + "/rules",
                     R"({"rule":{"type":"HEADER","compare_type":"EQUAL_TO","value":"v"}})").status, 400);
  Reply rules = api.call("GET", "/v2/lbaas/l7policies/" + ids[1] + "/rules");
  EXPECT_EQ(rules.json["rules"].Size(), 1u);
  EXPECT_TRUE(rules.json["rules_links"].IsArray());
}

TEST_F(ApiTest, QuotaIsEnforcedWith403AndBothSpellingsAreAccepted) {
  Reply set = api.call("PUT", "/v2/lbaas/quotas/project-a", R"({"quota":{"load_balancer":1,"healthmonitor":5}})");
  ASSERT_EQ(set.status, 202) << set.body;
  EXPECT_EQ(jint(set.json["quota"], "load_balancer"), 1);
  EXPECT_EQ(jint(set.json["quota"], "health_monitor"), 5);
  EXPECT_EQ(jint(set.json["quota"], "listener"), -1);
  createLb();
  Reply over = api.call("POST", "/v2/lbaas/loadbalancers",
                        std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + "\"}}");
  EXPECT_EQ(over.status, 403);
  EXPECT_EQ(str(over.json, "faultstring"), "Quota has been met for resources: LoadBalancer");
  Reply list = api.call("GET", "/v2/lbaas/quotas");
  ASSERT_EQ(list.json["quotas"].Size(), 1u);
  EXPECT_EQ(jint(list.json["quotas"][0], "loadbalancer"), 1);
  EXPECT_TRUE(list.json["quotas"][0]["member"].IsNull());
  Reply unset = api.call("PUT", "/v2/lbaas/quotas/project-a", R"({"quota":{"loadbalancer":null}})");
  EXPECT_EQ(jint(unset.json["quota"], "load_balancer"), -1);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/quotas/defaults").status, 200);
  EXPECT_EQ(api.call("DELETE", "/v2/lbaas/quotas/project-a").status, 202);
  EXPECT_EQ(api.call("DELETE", "/v2/lbaas/quotas/project-a").status, 404);
  EXPECT_EQ(api.call("PUT", "/v2/lbaas/quotas/p", R"({"quota":{"pool":-2}})").status, 400);
}

TEST_F(ApiTest, LoadBalancerWithChildrenNeedsCascadeToDelete) {
  std::string lb = createLb();
  std::string listener = createListener(lb, "HTTP", 80);
  createPool("listener_id", listener, "HTTP");
  Reply r = api.call("DELETE", "/v2/lbaas/loadbalancers/" + lb);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(str(r.json, "faultstring"), "Cannot delete Load Balancer " + lb + " - it has children");
  EXPECT_EQ(api.call("DELETE", "/v2/lbaas/loadbalancers/" + lb + "?cascade=true").status, 204);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers/" + lb).status, 404);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/listeners/" + listener).status, 404);
}

TEST_F(ApiTest, StatusTreeAndStatsHaveOctaviasShape) {
  std::string lb = createLb();
  Reply empty = api.call("GET", "/v2/lbaas/loadbalancers/" + lb + "/status");
  ASSERT_EQ(empty.status, 200);
  EXPECT_EQ(empty.json["statuses"]["loadbalancer"].MemberCount(), 5u);
  std::string listener = createListener(lb, "HTTP", 80);
  std::string pool = createPool("listener_id", listener, "HTTP");
  api.call("POST", "/v2/lbaas/pools/" + pool + "/members", R"({"member":{"address":"192.0.2.1","protocol_port":80}})");
  Reply r = api.call("GET", "/v2/lbaas/loadbalancers/" + lb + "/statuses");
  const auto& tree = r.json["statuses"]["loadbalancer"];
  EXPECT_EQ(str(tree["listeners"][0], "id"), listener);
  EXPECT_EQ(str(tree["listeners"][0]["pools"][0], "id"), pool);
  EXPECT_EQ(str(tree["listeners"][0]["pools"][0]["members"][0], "address"), "192.0.2.1");
  Reply stats = api.call("GET", "/v2/lbaas/loadbalancers/" + lb + "/stats");
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(stats.json["stats"].MemberCount(), 5u);
  EXPECT_EQ(jint(stats.json["stats"], "bytes_in", -1), 0);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/listeners/" + listener + "/stats").json["stats"].MemberCount(), 5u);
}

TEST_F(ApiTest, ListsPaginateSortFilterAndSelectFields) {
  for (const char* name : {"b", "c", "a"}) createLb(std::string(R"(,"name":")") + name + R"(","tags":["t-)" + name + "\"]");
  Reply page = api.call("GET", "/v2/lbaas/loadbalancers?limit=2&sort=name:desc");
  ASSERT_EQ(page.json["loadbalancers"].Size(), 2u);
  EXPECT_EQ(str(page.json["loadbalancers"][0], "name"), "c");
  ASSERT_EQ(page.json["loadbalancers_links"].Size(), 1u);
  std::string next = str(page.json["loadbalancers_links"][0], "href");
  ASSERT_EQ(next.rfind(api.base(), 0), 0u) << next;
  Reply second = api.call("GET", next.substr(api.base().size()));
  ASSERT_EQ(second.json["loadbalancers"].Size(), 1u);
  EXPECT_EQ(str(second.json["loadbalancers"][0], "name"), "a");
  EXPECT_EQ(second.json["loadbalancers_links"][0]["rel"], "previous");
  Reply named = api.call("GET", "/v2/lbaas/loadbalancers?name=c&fields=id&fields=name");
  ASSERT_EQ(named.json["loadbalancers"].Size(), 1u);
  EXPECT_EQ(named.json["loadbalancers"][0].MemberCount(), 2u);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers?not-tags=t-a").json["loadbalancers"].Size(), 2u);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers?bogus=1").status, 400);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers?sort=name:up").status, 400);
  Reply one = api.call("GET", "/v2/lbaas/loadbalancers/" + str(named.json["loadbalancers"][0], "id") + "?fields=name");
  EXPECT_EQ(one.json["loadbalancer"].MemberCount(), 1u);
}

TEST_F(ApiTest, CatalogObjectsFlavorsProfilesAndZones) {
  EXPECT_EQ(api.call("GET", "/v2/lbaas/providers").json["providers"].Size(), 2u);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/providers?fields=name").json["providers"][0].MemberCount(), 1u);
  Reply caps = api.call("GET", "/v2/lbaas/providers/amphora/flavor_capabilities");
  ASSERT_EQ(caps.status, 200);
  EXPECT_EQ(str(caps.json["flavor_capabilities"][0], "name"), "loadbalancer_topology");
  EXPECT_EQ(api.call("GET", "/v2/lbaas/providers/nope/flavor_capabilities").status, 400);
  Reply fp = api.call("POST", "/v2/lbaas/flavorprofiles",
                      R"({"flavorprofile":{"name":"fp","provider_name":"amphora","flavor_data":"{\"loadbalancer_topology\": \"SINGLE\"}"}})");
  ASSERT_EQ(fp.status, 201) << fp.body;
  std::string fp_id = str(fp.json["flavorprofile"], "id");
  EXPECT_EQ(api.call("POST", "/v2/lbaas/flavorprofiles",
                     R"({"flavorprofile":{"name":"x","provider_name":"amphora","flavor_data":"not json"}})").status, 400);
  Reply flavor = api.call("POST", "/v2/lbaas/flavors", R"({"flavor":{"name":"small","flavor_profile_id":")" + fp_id + "\"}}");
  ASSERT_EQ(flavor.status, 201) << flavor.body;
  EXPECT_TRUE(jbool(flavor.json["flavor"], "enabled", false));
  EXPECT_EQ(api.call("POST", "/v2/lbaas/flavors", R"({"flavor":{"name":"small","flavor_profile_id":")" + fp_id + "\"}}").status, 409);
  EXPECT_EQ(api.call("DELETE", "/v2/lbaas/flavorprofiles/" + fp_id).status, 409);
  std::string flavor_id = str(flavor.json["flavor"], "id");
  Reply lb = api.call("POST", "/v2/lbaas/loadbalancers",
                      std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","flavor_id":")" + flavor_id + "\"}}");
  ASSERT_EQ(lb.status, 201) << lb.body;
  EXPECT_EQ(str(lb.json["loadbalancer"], "provider"), "amphora");
  EXPECT_EQ(api.call("GET", "/v2/lbaas/flavors/00000000-0000-0000-0000-000000000000").status, 404);
  Reply azp = api.call("POST", "/v2/lbaas/availabilityzoneprofiles",
                       R"({"availability_zone_profile":{"name":"azp","provider_name":"amphora","availability_zone_data":"{\"compute_zone\": \"nova\"}"}})");
  ASSERT_EQ(azp.status, 201) << azp.body;
  Reply az = api.call("POST", "/v2/lbaas/availabilityzones",
                      R"({"availability_zone":{"name":"zone1","availability_zone_profile_id":")" +
                          str(azp.json["availability_zone_profile"], "id") + "\"}}");
  ASSERT_EQ(az.status, 201) << az.body;
  EXPECT_EQ(api.call("GET", "/v2/lbaas/availabilityzones/zone1").status, 200);
  Reply azs = api.call("GET", "/v2/lbaas/availabilityzones");
  EXPECT_EQ(azs.json["availability_zones"].Size(), 1u);
  EXPECT_TRUE(azs.json["availability_zones_links"].IsArray());
  EXPECT_TRUE(api.call("GET", "/v2/lbaas/availabilityzoneprofiles").json["availability_zone_profile_links"].IsArray());
  EXPECT_EQ(api.call("DELETE", "/v2/lbaas/availabilityzones/zone1").status, 204);
}

TEST_F(ApiTest, FullGraphCreateBuildsEverythingAndAnswersExpanded) {
  Reply r = api.call("POST", "/v2/lbaas/loadbalancers",
                     std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","listeners":[)"
                     R"({"protocol":"HTTP","protocol_port":80,"default_pool":{"name":"web"},)"
                     R"("l7policies":[{"action":"REDIRECT_TO_POOL","redirect_pool":{"name":"api"},"rules":[)"
                     R"({"type":"PATH","compare_type":"STARTS_WITH","value":"/api"}]}]}],)"
                     R"("pools":[{"name":"web","protocol":"HTTP","lb_algorithm":"ROUND_ROBIN",)"
                     R"("healthmonitor":{"type":"HTTP","delay":3,"timeout":2,"max_retries":2},)"
                     R"("members":[{"address":"192.0.2.5","protocol_port":80}]},)"
                     R"({"name":"api","protocol":"HTTP","lb_algorithm":"LEAST_CONNECTIONS"}]}})");
  ASSERT_EQ(r.status, 201) << r.body;
  const auto& lb = r.json["loadbalancer"];
  ASSERT_EQ(lb["listeners"].Size(), 1u);
  ASSERT_EQ(lb["pools"].Size(), 2u);
  EXPECT_EQ(lb["listeners"][0]["l7policies"][0]["rules"].Size(), 1u);
  EXPECT_EQ(lb["pools"][0]["members"].Size(), 1u);
  EXPECT_TRUE(lb["pools"][0]["healthmonitor"].IsObject());
  EXPECT_EQ(str(lb["listeners"][0], "default_pool_id"), str(lb["pools"][0], "id"));
  Reply missing = api.call("POST", "/v2/lbaas/loadbalancers",
                           std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","listeners":[)"
                           R"({"protocol":"HTTP","protocol_port":80,"default_pool":{"name":"ghost"}}]}})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers").json["loadbalancers"].Size(), 1u);
}

// The amphora (banyan) provider leaves status to the controller and queues a job.
TEST(ApiBanyanProvider, ChangesQueueJobsAndPendingLoadBalancersAreImmutable) {
  ApiOptions options = noopOptions();
  options.default_provider_driver = "amphora";
  ApiServer api(options);
  Reply r = api.call("POST", "/v2/lbaas/loadbalancers",
                     std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + "\"}}");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string lb = str(r.json["loadbalancer"], "id");
  EXPECT_EQ(str(api.call("GET", "/v2/lbaas/loadbalancers/" + lb).json["loadbalancer"], "provisioning_status"),
            "PENDING_CREATE");
  auto job = api.store().claimJob("test-worker", std::chrono::milliseconds(60000));
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(job.value().has_value());
  EXPECT_EQ(job.value()->kind, "loadbalancer.create");
  EXPECT_EQ(job.value()->serial_key, lb);
  auto payload = parseJson(job.value()->payload);
  ASSERT_TRUE(payload);
  EXPECT_EQ(jstring(*payload, "load_balancer_id"), lb);
  Reply listener = api.call("POST", "/v2/lbaas/listeners",
                            R"({"listener":{"loadbalancer_id":")" + lb + R"(","protocol":"HTTP","protocol_port":80}})");
  EXPECT_EQ(listener.status, 409);
  EXPECT_EQ(str(listener.json, "faultstring"), "Load Balancer " + lb + " is immutable and cannot be updated.");
  Reply put = api.call("PUT", "/v2/lbaas/loadbalancers/" + lb, R"({"loadbalancer":{"name":"x"}})");
  EXPECT_EQ(put.status, 409);
  EXPECT_EQ(str(put.json, "faultstring"), "Invalid state PENDING_CREATE of loadbalancer resource " + lb);
  EXPECT_EQ(api.call("DELETE", "/v2/lbaas/loadbalancers/" + lb).status, 409);
}

TEST(ApiBanyanProvider, WhatTheAmphoraeCannotRunIsRefusedWith501AndNothingIsStored) {
  ApiOptions options = noopOptions();
  options.default_provider_driver = "amphora";
  ApiServer api(options);
  const std::string lb_head = std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","listeners":[)";
  Reply sctp = api.call("POST", "/v2/lbaas/loadbalancers",
                        lb_head + R"({"protocol":"SCTP","protocol_port":53}]}})");
  EXPECT_EQ(sctp.status, 501) << sctp.body;
  EXPECT_EQ(str(sctp.json, "faultstring").rfind("Provider 'amphora' does not support a requested option: ", 0), 0u)
      << sctp.body;
  // Refused in the request's transaction: nothing was stored, no job was queued.
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers").json["loadbalancers"].Size(), 0u);
  auto pending = api.store().pendingJobs();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending.value(), 0);
  Reply http = api.call("POST", "/v2/lbaas/loadbalancers",
                        lb_head + R"({"protocol":"HTTP","protocol_port":80,"default_pool":{"name":"p","protocol":"HTTP",)"
                                  R"("lb_algorithm":"ROUND_ROBIN","healthmonitor":{"type":"HTTP","delay":5,)"
                                  R"("timeout":3,"max_retries":3}}}]}})");
  EXPECT_EQ(http.status, 201) << http.body;
  Reply prometheus = api.call("POST", "/v2/lbaas/loadbalancers",
                              lb_head + R"({"protocol":"PROMETHEUS","protocol_port":9100}]}})");
  EXPECT_EQ(prometheus.status, 201) << "banyan-proxy serves PROMETHEUS listeners: " << prometheus.body;
}

TEST(ApiRbac, OtherProjectsGet403OnObjectsAndEmptyLists) {
  ApiServer api(noopOptions(), /*rbac=*/true);
  common::HttpHeaders owner = {{"X-Project-Id", "p1"}, {"X-Roles", "load-balancer_member,member"}};
  common::HttpHeaders other = {{"X-Project-Id", "p2"}, {"X-Roles", "load-balancer_member,member"}};
  common::HttpHeaders nobody = {{"X-Project-Id", "p1"}, {"X-Roles", "reader"}};
  common::HttpHeaders admin = {{"X-Project-Id", "p3"}, {"X-Roles", "admin"}};
  Reply r = api.call("POST", "/v2/lbaas/loadbalancers",
                     std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + "\"}}", owner);
  ASSERT_EQ(r.status, 201) << r.body;
  std::string lb = str(r.json["loadbalancer"], "id");
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers/" + lb, "", owner).status, 200);
  Reply forbidden = api.call("GET", "/v2/lbaas/loadbalancers/" + lb, "", other);
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(str(forbidden.json, "faultstring"), "Policy does not allow this request to be performed.");
  Reply other_list = api.call("GET", "/v2/lbaas/loadbalancers", "", other);
  EXPECT_EQ(other_list.status, 200);
  EXPECT_EQ(other_list.json["loadbalancers"].Size(), 0u);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers", "", nobody).status, 403);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers", "", admin).json["loadbalancers"].Size(), 1u);
  EXPECT_EQ(api.call("PUT", "/v2/lbaas/loadbalancers/" + lb + "/failover", "", owner).status, 403);
  EXPECT_EQ(api.call("POST", "/v2/lbaas/flavorprofiles",
                     R"({"flavorprofile":{"name":"fp","provider_name":"amphora","flavor_data":"{}"}})", owner).status, 403);
}

}  // namespace
}  // namespace banyan::provider::api
