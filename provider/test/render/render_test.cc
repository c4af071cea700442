// The renderer against the real API's records and the real proxy validator: objects
// are created through ApiService (noop_driver, SQLite in a per-test temp dir), read
// back with loadGraph, rendered, and every document is parsed by banyan-proxy's own
// config parser (dataplane/src/config/parse.h), whose model is then checked too.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "api/api_service.h"
#include "auth/noauth.h"
#include "auth/policy.h"
#include "config/parse.h"
#include "render/render.h"
#include "store/store.h"

namespace banyan::provider::render {
namespace {

using common::ErrorCode;
namespace dpc = banyan::dp::config;

constexpr const char* kSubnet = "5f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b";
constexpr const char* kVip = "203.0.113.10";

std::string jsonOf(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return b.GetString();
}

const rapidjson::Value* member(const rapidjson::Value& o, const char* key) {
  auto it = o.FindMember(key);
  return it == o.MemberEnd() ? nullptr : &it->value;
}

class RenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/banyan-render-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = store::openStore("sqlite:///" + dir_ + "/banyan.sqlite");
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(store.value());
    authenticator_ = auth::makeNoauthAuthenticator();
    auto policy = auth::makeOctaviaPolicy("", true);
    ASSERT_TRUE(policy.ok()) << policy.error().message;
    policy_ = std::move(policy.value());
    api::ApiOptions o;
    o.enabled_provider_drivers = {{"noop_driver", "The no-op driver."}};
    o.default_provider_driver = "noop_driver";
    o.noauth_project_id = "project-a";
    o.default_listener_ciphers = api::kOwaspSuiteBCiphers;
    o.default_pool_ciphers = api::kOwaspSuiteBCiphers;
    service_ = std::make_unique<api::ApiService>(*store_, *authenticator_, *policy_, o);
  }

  void TearDown() override {
    service_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Calls the API in process; fails the test unless the status is `expect`.
  rapidjson::Document call(const std::string& method, const std::string& path, const std::string& body,
                           int expect) {
    common::HttpRequest r;
    r.method = method;
    r.path = path;
    r.raw_path = path;
    r.body = body;
    r.peer_address = "127.0.0.1";
    r.headers = {{"Accept", "application/json"}, {"Content-Type", "application/json"}, {"Host", "localhost"}};
    common::HttpResponse resp = service_->handle(r);
    EXPECT_EQ(resp.status, expect) << method << " " << path << " " << body << " -> " << resp.body;
    rapidjson::Document d;
    d.Parse(resp.body.c_str());
    return d;
  }

  // POSTs {"<root>": {<fields>}} and returns the new object's id.
  std::string create(const std::string& path, const std::string& root, const std::string& fields) {
    auto d = call("POST", path, "{\"" + root + "\":{" + fields + "}}", 201);
    if (!d.IsObject() || !d.HasMember(root.c_str())) {
      ADD_FAILURE() << "no " << root << " in answer";
      return "";
    }
    return d[root.c_str()]["id"].GetString();
  }

  std::string lb(const std::string& extra = "") {
    return create("/v2/lbaas/loadbalancers", "loadbalancer",
                  std::string("\"vip_subnet_id\":\"") + kSubnet + "\",\"vip_address\":\"" + kVip + "\"" + extra);
  }
  std::string listener(const std::string& lb_id, const std::string& protocol, int port, const std::string& extra = "") {
    return create("/v2/lbaas/listeners", "listener",
                  "\"loadbalancer_id\":\"" + lb_id + "\",\"protocol\":\"" + protocol +
                      "\",\"protocol_port\":" + std::to_string(port) + extra);
  }
  // A pool that is the listener's default pool.
  std::string pool(const std::string& listener_id, const std::string& protocol, const std::string& extra = "",
                   const std::string& algorithm = "ROUND_ROBIN") {
    return create("/v2/lbaas/pools", "pool",
                  "\"listener_id\":\"" + listener_id + "\",\"protocol\":\"" + protocol + "\",\"lb_algorithm\":\"" +
                      algorithm + "\"" + extra);
  }
  // A pool on the load balancer only (for L7 policies, or unreferenced).
  std::string lbPool(const std::string& lb_id, const std::string& protocol, const std::string& extra = "") {
    return create("/v2/lbaas/pools", "pool",
                  "\"loadbalancer_id\":\"" + lb_id + "\",\"protocol\":\"" + protocol +
                      "\",\"lb_algorithm\":\"ROUND_ROBIN\"" + extra);
  }
  std::string addMember(const std::string& pool_id, const std::string& address, int port, const std::string& extra = "") {
    return create("/v2/lbaas/pools/" + pool_id + "/members", "member",
                  "\"address\":\"" + address + "\",\"protocol_port\":" + std::to_string(port) + extra);
  }
  std::string monitor(const std::string& pool_id, const std::string& type, const std::string& extra = "") {
    return create("/v2/lbaas/healthmonitors", "healthmonitor",
                  "\"pool_id\":\"" + pool_id + "\",\"type\":\"" + type +
                      "\",\"delay\":7,\"timeout\":3,\"max_retries\":2,\"max_retries_down\":4" + extra);
  }
  std::string policy(const std::string& listener_id, const std::string& fields) {
    return create("/v2/lbaas/l7policies", "l7policy", "\"listener_id\":\"" + listener_id + "\"," + fields);
  }
  std::string rule(const std::string& policy_id, const std::string& fields) {
    return create("/v2/lbaas/l7policies/" + policy_id + "/rules", "rule", fields);
  }

  // Rewrites one stored body field (statuses the noop driver never leaves behind).
  void setField(const std::string& kind, const std::string& id, const char* key, const std::string& json_value) {
    auto r = store_->write([&](store::Transaction& tx) -> common::Result<void> {
      auto rec = tx.get(kind, id);
      if (!rec.ok()) return rec.error();
      if (!rec->has_value()) return common::makeError(ErrorCode::kNotFound, kind + " " + id);
      store::Record record = **rec;
      rapidjson::Document d;
      d.Parse(record.body.c_str());
      rapidjson::Document v(&d.GetAllocator());
      v.Parse(json_value.c_str());
      if (d.HasMember(key)) d[key] = rapidjson::Value(v, d.GetAllocator());
      else d.AddMember(rapidjson::Value(key, d.GetAllocator()), rapidjson::Value(v, d.GetAllocator()), d.GetAllocator());
      record.body = jsonOf(d);
      return tx.update(record);
    });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  LoadBalancerGraph graph(const std::string& lb_id) {
    LoadBalancerGraph g;
    auto r = store_->read([&](store::Transaction& tx) -> common::Result<void> {
      auto loaded = loadGraph(tx, lb_id);
      if (!loaded.ok()) return loaded.error();
      g = std::move(loaded.value());
      return {};
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return g;
  }

  RenderContext context() {
    RenderContext ctx;
    ctx.generation = 3;
    ctx.vip_address = kVip;
    return ctx;
  }

  // Renders, checks banyan-proxy accepts the document, and returns both forms.
  struct Rendered {
    std::string text;
    rapidjson::Document json;
    dpc::Config config;
  };
  Rendered render(const std::string& lb_id, const RenderContext& ctx) {
    Rendered out;
    auto doc = renderProxyConfig(graph(lb_id), ctx);
    if (!doc.ok()) {
      ADD_FAILURE() << "render failed: " << doc.error().context << ": " << doc.error().message;
      return out;
    }
    out.text = doc.value();
    out.json.Parse(out.text.c_str());
    EXPECT_FALSE(out.json.HasParseError());
    auto parsed = dpc::parseConfig(out.text);
    if (!parsed.ok()) {
      ADD_FAILURE() << "banyan-proxy refuses the document at " << parsed.error().context << ": "
                    << parsed.error().message << "\n" << out.text;
      return out;
    }
    out.config = std::move(parsed.value());
    return out;
  }
  Rendered render(const std::string& lb_id) { return render(lb_id, context()); }

  common::Error renderError(const std::string& lb_id, const RenderContext& ctx) {
    auto doc = renderProxyConfig(graph(lb_id), ctx);
    if (doc.ok()) {
      ADD_FAILURE() << "rendered although it should not: " << doc.value();
      return {};
    }
    return doc.error();
  }
  common::Error renderError(const std::string& lb_id) { return renderError(lb_id, context()); }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<auth::Policy> policy_;
  std::unique_ptr<api::ApiService> service_;
};

// ---------------------------------------------------------------------------------
// The graph and the document around it.

TEST_F(RenderTest, LoadBalancerWithoutListenersIsAValidEmptyDocument) {
  std::string id = lb();
  auto r = render(id);
  EXPECT_EQ(r.text, R"({"generation":3,"listeners":[],"pools":[]})");
  EXPECT_EQ(r.config.generation, 3u);
  EXPECT_TRUE(r.config.listeners.empty());
}

TEST_F(RenderTest, LoadGraphSaysNotFoundForAnUnknownLoadBalancer) {
  auto r = store_->read([&](store::Transaction& tx) -> common::Result<void> {
    auto g = loadGraph(tx, "8d8f1d4e-0000-4000-8000-000000000000");
    EXPECT_FALSE(g.ok());
    if (!g.ok()) {
      EXPECT_EQ(g.error().code, ErrorCode::kNotFound);
    }
    return {};
  });
  ASSERT_TRUE(r.ok());
}

TEST_F(RenderTest, LoadGraphReadsOnlyTheRecordsOfThatLoadBalancer) {
  std::string a = lb(), b = lb();
  std::string la = listener(a, "HTTP", 80);
  std::string pa = pool(la, "HTTP");
  addMember(pa, "192.0.2.11", 8080);
  monitor(pa, "TCP");
  std::string pol = policy(la, R"("action":"REJECT")");
  rule(pol, R"("type":"PATH","compare_type":"STARTS_WITH","value":"/admin")");
  listener(b, "TCP", 81);
  auto g = graph(a);
  EXPECT_EQ(g.loadbalancer.id, a);
  ASSERT_EQ(g.listeners.size(), 1u);
  EXPECT_EQ(g.listeners[0].id, la);
  EXPECT_EQ(g.pools.size(), 1u);
  EXPECT_EQ(g.members.size(), 1u);
  EXPECT_EQ(g.healthmonitors.size(), 1u);
  EXPECT_EQ(g.l7policies.size(), 1u);
  EXPECT_EQ(g.l7rules.size(), 1u);
}

TEST_F(RenderTest, GenerationAndSessionCookieSecretGoToTheDocument) {
  std::string id = lb();
  RenderContext ctx = context();
  ctx.generation = 42;
  ctx.session_cookie_secret = "s3cret-shared-by-the-pair";
  auto r = render(id, ctx);
  EXPECT_EQ(r.json["generation"].GetInt64(), 42);
  EXPECT_EQ(r.config.settings.session_cookie_secret, "s3cret-shared-by-the-pair");
}

TEST_F(RenderTest, TheSameObjectsRenderTheSameBytes) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80);
  std::string p = pool(l, "HTTP");
  for (int i = 0; i < 5; ++i) addMember(p, "192.0.2." + std::to_string(20 + i), 8080);
  auto first = renderProxyConfig(graph(id), context());
  auto second = renderProxyConfig(graph(id), context());
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first.value(), second.value());
}

TEST_F(RenderTest, AStoredBodyThatIsNotJsonIsAnErrorNamingTheObject) {
  std::string id = lb();
  std::string l = listener(id, "TCP", 80);
  auto g = graph(id);
  g.listeners[0].body = "{not json";
  auto r = renderProxyConfig(g, context());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().context, "listener " + l);
}

// ---------------------------------------------------------------------------------
// Listeners.

TEST_F(RenderTest, HttpListenerCarriesItsFieldsAndBindsTheVips) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 8080,
                           R"(,"name":"web","connection_limit":2000,"timeout_client_data":1000,)"
                           R"("timeout_member_connect":2000,"timeout_member_data":3000,"timeout_tcp_inspect":400)");
  std::string p = pool(l, "HTTP");
  RenderContext ctx = context();
  ctx.additional_vip_addresses = {"2001:db8::10"};
  auto r = render(id, ctx);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const auto& cl = r.config.listeners[0];
  EXPECT_EQ(cl.id, l);
  EXPECT_EQ(cl.protocol, dpc::ListenerProtocol::kHttp);
  EXPECT_EQ(cl.address, kVip);
  EXPECT_EQ(cl.additional_addresses, std::vector<std::string>{"2001:db8::10"});
  EXPECT_EQ(cl.protocol_port, 8080);
  EXPECT_TRUE(cl.admin_state_up);
  EXPECT_EQ(cl.connection_limit, 2000);
  EXPECT_EQ(cl.timeout_client_data_ms, 1000u);
  EXPECT_EQ(cl.timeout_member_connect_ms, 2000u);
  EXPECT_EQ(cl.timeout_member_data_ms, 3000u);
  EXPECT_EQ(cl.timeout_tcp_inspect_ms, 400u);
  EXPECT_EQ(cl.default_pool_id, p);
  EXPECT_EQ(std::string(r.json["listeners"][0]["name"].GetString()), "web");
}

TEST_F(RenderTest, TheVipFallsBackToTheLoadBalancerBody) {
  std::string id = lb();
  listener(id, "TCP", 80);
  RenderContext ctx = context();
  ctx.vip_address.clear();
  auto r = render(id, ctx);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  EXPECT_EQ(r.config.listeners[0].address, kVip);
  EXPECT_TRUE(r.config.listeners[0].additional_addresses.empty());
}

TEST_F(RenderTest, AdditionalVipsFallBackToTheLoadBalancerBody) {
  std::string id = lb(std::string(R"(,"additional_vips":[{"subnet_id":")") + kSubnet +
                      R"(","ip_address":"203.0.113.20"},{"subnet_id":")" + kSubnet + R"("}])");
  listener(id, "TCP", 80);
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  EXPECT_EQ(r.config.listeners[0].additional_addresses, std::vector<std::string>{"203.0.113.20"});
}

TEST_F(RenderTest, ListenerAndPoolProtocolPairsAreAcceptedByTheProxy) {
  struct Row {
    const char* listener;
    const char* pool;
    dpc::ListenerProtocol want_listener;
    dpc::PoolProtocol want_pool;
  };
  const Row rows[] = {
      {"HTTP", "HTTP", dpc::ListenerProtocol::kHttp, dpc::PoolProtocol::kHttp},
      {"HTTP", "PROXY", dpc::ListenerProtocol::kHttp, dpc::PoolProtocol::kProxy},
      {"HTTP", "PROXYV2", dpc::ListenerProtocol::kHttp, dpc::PoolProtocol::kProxyV2},
      {"TCP", "TCP", dpc::ListenerProtocol::kTcp, dpc::PoolProtocol::kTcp},
      {"TCP", "HTTP", dpc::ListenerProtocol::kTcp, dpc::PoolProtocol::kHttp},
      {"TCP", "PROXY", dpc::ListenerProtocol::kTcp, dpc::PoolProtocol::kProxy},
      {"TCP", "PROXYV2", dpc::ListenerProtocol::kTcp, dpc::PoolProtocol::kProxyV2},
      // HTTPS is TLS passthrough: bytes to the members, as on Octavia (TCP mode).
      {"HTTPS", "HTTPS", dpc::ListenerProtocol::kHttps, dpc::PoolProtocol::kHttps},
      {"HTTPS", "TCP", dpc::ListenerProtocol::kHttps, dpc::PoolProtocol::kTcp},
      {"HTTPS", "PROXY", dpc::ListenerProtocol::kHttps, dpc::PoolProtocol::kProxy},
      {"HTTPS", "PROXYV2", dpc::ListenerProtocol::kHttps, dpc::PoolProtocol::kProxyV2},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(std::string(row.listener) + " listener, " + row.pool + " pool");
    std::string id = lb();
    std::string l = listener(id, row.listener, 443);
    std::string p = pool(l, row.pool);
    addMember(p, "192.0.2.30", 443);
    auto r = render(id);
    ASSERT_EQ(r.config.listeners.size(), 1u);
    ASSERT_EQ(r.config.pools.size(), 1u);
    EXPECT_EQ(r.config.listeners[0].protocol, row.want_listener);
    EXPECT_EQ(r.config.pools[0].protocol, row.want_pool);
    EXPECT_EQ(r.config.listeners[0].default_pool_id, p);
  }
}

TEST_F(RenderTest, ConnectionLimitFollowsOctavia) {
  struct Row {
    const char* stored;
    int64_t want;
  };
  // Octavia: `if connection_limit and connection_limit > -1`, so 0 is the default
  // too; its global maxconn stops at 1000000.
  const Row rows[] = {{"-1", -1}, {"0", -1}, {"1", 1}, {"50000", 50000}, {"5000000", 1000000}};
  for (const Row& row : rows) {
    SCOPED_TRACE(row.stored);
    std::string id = lb();
    listener(id, "TCP", 80, std::string(",\"connection_limit\":") + row.stored);
    auto r = render(id);
    ASSERT_EQ(r.config.listeners.size(), 1u);
    EXPECT_EQ(r.config.listeners[0].connection_limit, row.want);
  }
}

TEST_F(RenderTest, TimeoutsOfZeroMeanTheDefaultAndLongOnesStopAtTheProxyMaximum) {
  std::string id = lb();
  // 24 days is the API's maximum; banyan-proxy allows one day.
  listener(id, "HTTP", 80,
           R"(,"timeout_client_data":0,"timeout_member_connect":0,"timeout_member_data":2073600000,)"
           R"("timeout_tcp_inspect":0)");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const auto& cl = r.config.listeners[0];
  EXPECT_EQ(cl.timeout_client_data_ms, 50000u);
  EXPECT_EQ(cl.timeout_member_connect_ms, 5000u);
  EXPECT_EQ(cl.timeout_member_data_ms, 86400000u);
  EXPECT_EQ(cl.timeout_tcp_inspect_ms, 0u);
}

TEST_F(RenderTest, ApiDefaultTimeoutsReachTheProxy) {
  std::string id = lb();
  listener(id, "HTTP", 80);
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const auto& l = r.json["listeners"][0];
  EXPECT_EQ(l["timeout_client_data"].GetInt64(), 50000);
  EXPECT_EQ(l["timeout_member_connect"].GetInt64(), 5000);
  EXPECT_EQ(l["timeout_member_data"].GetInt64(), 50000);
  EXPECT_EQ(l["timeout_tcp_inspect"].GetInt64(), 0);
  EXPECT_EQ(l["connection_limit"].GetInt64(), -1);
}

TEST_F(RenderTest, InsertHeadersTrueInAnyCaseAreOnAndFalseOnesAreLeftOut) {
  std::string id = lb();
  listener(id, "HTTP", 80,
           R"(,"insert_headers":{"X-Forwarded-For":"true","X-Forwarded-Port":"TRUE","X-Forwarded-Proto":"False"})");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const auto& h = r.config.listeners[0].insert_headers;
  EXPECT_TRUE(h.x_forwarded_for);
  EXPECT_TRUE(h.x_forwarded_port);
  EXPECT_FALSE(h.x_forwarded_proto);
  EXPECT_EQ(jsonOf(r.json["listeners"][0]["insert_headers"]), R"({"X-Forwarded-For":true,"X-Forwarded-Port":true})");
}

TEST_F(RenderTest, XForwardedProtoIsRendered) {
  std::string id = lb();
  listener(id, "HTTP", 80, R"(,"insert_headers":{"X-Forwarded-Proto":"true"})");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  EXPECT_TRUE(r.config.listeners[0].insert_headers.x_forwarded_proto);
  EXPECT_FALSE(r.config.listeners[0].insert_headers.x_forwarded_for);
}

TEST_F(RenderTest, AllowedCidrsAreCarriedAndNullMeansEveryone) {
  std::string id = lb();
  std::string restricted = listener(id, "TCP", 80, R"(,"allowed_cidrs":["192.0.2.0/24","198.51.100.7/24"])");
  listener(id, "HTTP", 81, R"(,"allowed_cidrs":null)");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 2u);
  for (const auto& l : r.config.listeners) {
    if (l.id == restricted)
      EXPECT_EQ(l.allowed_cidrs, (std::vector<std::string>{"192.0.2.0/24", "198.51.100.0/24"}));
    else
      EXPECT_TRUE(l.allowed_cidrs.empty());
  }
}

TEST_F(RenderTest, DisabledListenerIsRenderedDisabled) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80, R"(,"admin_state_up":false)");
  std::string p = pool(l, "HTTP");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  EXPECT_FALSE(r.config.listeners[0].admin_state_up);
  EXPECT_EQ(r.config.pools.size(), 1u);
}

TEST_F(RenderTest, DisabledLoadBalancerRendersNothing) {
  std::string id = lb(R"(,"admin_state_up":false)");
  std::string l = listener(id, "HTTP", 80);
  pool(l, "HTTP");
  auto r = render(id);
  EXPECT_EQ(r.text, R"({"generation":3,"listeners":[],"pools":[]})");
}

TEST_F(RenderTest, LoadBalancerBeingDeletedRendersNothing) {
  std::string id = lb();
  listener(id, "TCP", 80);
  setField("loadbalancer", id, "provisioning_status", R"("PENDING_DELETE")");
  auto r = render(id);
  EXPECT_TRUE(r.config.listeners.empty());
}

TEST_F(RenderTest, ListenerBeingDeletedIsLeftOutUnlessAsked) {
  std::string id = lb();
  std::string gone = listener(id, "TCP", 80);
  std::string kept = listener(id, "TCP", 81);
  setField("listener", gone, "provisioning_status", R"("PENDING_DELETE")");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  EXPECT_EQ(r.config.listeners[0].id, kept);
  RenderContext ctx = context();
  ctx.include_pending_delete = true;
  EXPECT_EQ(render(id, ctx).config.listeners.size(), 2u);
}

TEST_F(RenderTest, UnsupportedListenerProtocolsAreErrorsNamingTheListener) {
  std::string id = lb();
  std::string l = listener(id, "SCTP", 9100);
  auto e = renderError(id);
  EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.context, "listener " + l);
  EXPECT_EQ(e.message,
            "SCTP listeners are not supported by banyan-proxy yet (it serves HTTP, TCP, HTTPS, "
            "TERMINATED_HTTPS, UDP and PROMETHEUS)");
}

TEST_F(RenderTest, APrometheusListenerIsRenderedWithoutPoolsOrTls) {
  std::string id = lb();
  std::string l = listener(id, "PROMETHEUS", 9100, R"(,"allowed_cidrs":["192.0.2.0/24"],"connection_limit":10)");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const auto& cl = r.config.listeners[0];
  EXPECT_EQ(cl.id, l);
  EXPECT_EQ(cl.protocol, dpc::ListenerProtocol::kPrometheus);
  EXPECT_EQ(cl.protocol_port, 9100);
  EXPECT_TRUE(cl.default_pool_id.empty());
  EXPECT_FALSE(cl.terminatesTls());
  EXPECT_EQ(cl.allowed_cidrs, std::vector<std::string>{"192.0.2.0/24"});
  EXPECT_EQ(cl.connection_limit, 10);
  EXPECT_TRUE(r.config.pools.empty());
}

TEST_F(RenderTest, APrometheusListenerWithACertificateTerminatesTlsWithThePlacedFile) {
  std::string id = lb();
  listener(id, "PROMETHEUS", 9443,
           R"(,"default_tls_container_ref":"ref-default","tls_versions":["TLSv1.3"])");
  RenderContext ctx = context();
  ctx.certificate_paths = {{"ref-default", "/var/lib/banyan/certs/default.pem"}};
  auto r = render(id, ctx);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const auto& cl = r.config.listeners[0];
  EXPECT_EQ(cl.protocol, dpc::ListenerProtocol::kPrometheus);
  EXPECT_TRUE(cl.terminatesTls());
  EXPECT_EQ(cl.tls.default_certificate, "/var/lib/banyan/certs/default.pem");
  EXPECT_EQ(cl.tls.versions, dpc::kTlsV13);
}

// ---------------------------------------------------------------------------------
// Pools, members, health monitors, persistence.

TEST_F(RenderTest, EveryLbAlgorithmIsCarried) {
  struct Row {
    const char* algorithm;
    dpc::LbAlgorithm want;
  };
  const Row rows[] = {{"ROUND_ROBIN", dpc::LbAlgorithm::kRoundRobin},
                      {"LEAST_CONNECTIONS", dpc::LbAlgorithm::kLeastConnections},
                      {"SOURCE_IP", dpc::LbAlgorithm::kSourceIp},
                      {"SOURCE_IP_PORT", dpc::LbAlgorithm::kSourceIpPort}};
  for (const Row& row : rows) {
    SCOPED_TRACE(row.algorithm);
    std::string id = lb();
    std::string l = listener(id, "TCP", 80);
    pool(l, "TCP", "", row.algorithm);
    auto r = render(id);
    ASSERT_EQ(r.config.pools.size(), 1u);
    EXPECT_EQ(r.config.pools[0].lb_algorithm, row.want);
  }
}

TEST_F(RenderTest, MembersCarryWeightBackupAdminStateAndMonitorTarget) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80);
  std::string p = pool(l, "HTTP");
  monitor(p, "HTTP");
  std::string plain = addMember(p, "192.0.2.11", 8080);
  std::string heavy = addMember(p, "192.0.2.12", 8080, R"(,"weight":256,"name":"big")");
  std::string drained = addMember(p, "192.0.2.13", 8080, R"(,"weight":0)");
  std::string spare = addMember(p, "192.0.2.14", 8080, R"(,"backup":true)");
  std::string down = addMember(p, "192.0.2.15", 8080, R"(,"admin_state_up":false)");
  std::string probed =
      addMember(p, "2001:db8::16", 8080, R"(,"monitor_address":"2001:db8::99","monitor_port":9000)");
  std::string going = addMember(p, "192.0.2.17", 8080);
  setField("member", going, "provisioning_status", R"("PENDING_DELETE")");

  auto r = render(id);
  ASSERT_EQ(r.config.pools.size(), 1u);
  const auto& members = r.config.pools[0].members;
  ASSERT_EQ(members.size(), 6u);  // the one being deleted is left out
  EXPECT_EQ(members[0].id, plain);
  EXPECT_EQ(members[0].address, "192.0.2.11");
  EXPECT_EQ(members[0].protocol_port, 8080);
  EXPECT_EQ(members[0].weight, 1u);
  EXPECT_FALSE(members[0].backup);
  EXPECT_TRUE(members[0].admin_state_up);
  EXPECT_EQ(members[0].monitor_address, "");
  EXPECT_EQ(members[0].monitor_port, 0);
  EXPECT_EQ(members[1].id, heavy);
  EXPECT_EQ(members[1].weight, 256u);
  EXPECT_EQ(members[2].id, drained);
  EXPECT_EQ(members[2].weight, 0u);
  EXPECT_EQ(members[3].id, spare);
  EXPECT_TRUE(members[3].backup);
  EXPECT_EQ(members[4].id, down);
  EXPECT_FALSE(members[4].admin_state_up);
  EXPECT_EQ(members[5].id, probed);
  EXPECT_EQ(members[5].address, "2001:db8::16");
  EXPECT_EQ(members[5].monitor_address, "2001:db8::99");
  EXPECT_EQ(members[5].monitor_port, 9000);

  RenderContext ctx = context();
  ctx.include_pending_delete = true;
  EXPECT_EQ(render(id, ctx).config.pools[0].members.size(), 7u);
}

TEST_F(RenderTest, HealthMonitorsOfEachSupportedType) {
  std::string id = lb();
  std::string l1 = listener(id, "TCP", 81), l2 = listener(id, "HTTP", 82), l3 = listener(id, "HTTPS", 83);
  std::string p1 = pool(l1, "TCP"), p2 = pool(l2, "HTTP"), p3 = pool(l3, "HTTPS");
  std::string h1 = monitor(p1, "TCP");
  std::string h2 = monitor(p2, "HTTP",
                           R"(,"http_method":"HEAD","url_path":"/healthz","expected_codes":"200-204",)"
                           R"("http_version":1.1,"domain_name":"app.example.com")");
  std::string h3 = monitor(p3, "HTTPS", R"(,"expected_codes":"200,202","http_version":1.0,"admin_state_up":false)");
  auto r = render(id);
  ASSERT_EQ(r.config.pools.size(), 3u);
  ASSERT_TRUE(r.config.pools[0].health_monitor && r.config.pools[1].health_monitor &&
              r.config.pools[2].health_monitor);
  const auto& tcp = *r.config.pools[0].health_monitor;
  EXPECT_EQ(tcp.id, h1);
  EXPECT_EQ(tcp.type, dpc::MonitorType::kTcp);
  EXPECT_EQ(tcp.delay_ms, 7000u);
  EXPECT_EQ(tcp.timeout_ms, 3000u);
  EXPECT_EQ(tcp.max_retries, 2u);
  EXPECT_EQ(tcp.max_retries_down, 4u);
  EXPECT_TRUE(tcp.admin_state_up);
  const auto& http = *r.config.pools[1].health_monitor;
  EXPECT_EQ(http.id, h2);
  EXPECT_EQ(http.type, dpc::MonitorType::kHttp);
  EXPECT_EQ(http.http_method, "HEAD");
  EXPECT_EQ(http.url_path, "/healthz");
  EXPECT_EQ(http.expected_codes, (std::vector<uint16_t>{200, 201, 202, 203, 204}));
  EXPECT_EQ(http.http_version, "1.1");
  EXPECT_EQ(http.domain_name, "app.example.com");
  const auto& https = *r.config.pools[2].health_monitor;
  EXPECT_EQ(https.id, h3);
  EXPECT_EQ(https.type, dpc::MonitorType::kHttps);
  EXPECT_EQ(https.http_method, "GET");  // the API's default
  EXPECT_EQ(https.url_path, "/");
  EXPECT_EQ(https.expected_codes, (std::vector<uint16_t>{200, 202}));
  EXPECT_EQ(https.http_version, "1.0");
  EXPECT_FALSE(https.admin_state_up);
}

TEST_F(RenderTest, MonitorDelayOfZeroKeepsTheProxyDefault) {
  std::string id = lb();
  std::string p = pool(listener(id, "TCP", 80), "TCP");
  create("/v2/lbaas/healthmonitors", "healthmonitor",
         "\"pool_id\":\"" + p + R"(","type":"TCP","delay":0,"timeout":0,"max_retries":1)");
  auto r = render(id);
  ASSERT_EQ(r.config.pools.size(), 1u);
  ASSERT_TRUE(r.config.pools[0].health_monitor);
  EXPECT_EQ(r.config.pools[0].health_monitor->delay_ms, 5000u);
  EXPECT_EQ(r.config.pools[0].health_monitor->timeout_ms, 5000u);
  EXPECT_EQ(r.config.pools[0].health_monitor->max_retries_down, 3u);  // the API's default
}

TEST_F(RenderTest, MonitorBeingDeletedIsLeftOut) {
  std::string id = lb();
  std::string p = pool(listener(id, "TCP", 80), "TCP");
  std::string h = monitor(p, "TCP");
  setField("healthmonitor", h, "provisioning_status", R"("PENDING_DELETE")");
  auto r = render(id);
  ASSERT_EQ(r.config.pools.size(), 1u);
  EXPECT_FALSE(r.config.pools[0].health_monitor);
}

TEST_F(RenderTest, PingAndTlsHelloMonitorsAreRenderedWithoutHttpFields) {
  struct Row {
    const char* type;
    dpc::MonitorType want;
  };
  for (const Row& row : {Row{"PING", dpc::MonitorType::kPing}, Row{"TLS-HELLO", dpc::MonitorType::kTlsHello}}) {
    SCOPED_TRACE(row.type);
    std::string id = lb();
    std::string p = pool(listener(id, "HTTPS", 443), "HTTPS");
    monitor(p, row.type);
    auto r = render(id);
    ASSERT_EQ(r.config.pools.size(), 1u);
    ASSERT_TRUE(r.config.pools[0].health_monitor);
    EXPECT_EQ(r.config.pools[0].health_monitor->type, row.want);
    EXPECT_EQ(r.config.pools[0].health_monitor->delay_ms, 7000u);
    EXPECT_EQ(r.config.pools[0].health_monitor->timeout_ms, 3000u);
    EXPECT_EQ(r.config.pools[0].health_monitor->max_retries_down, 4u);
    const auto& hm = r.json["pools"][0]["health_monitor"];
    EXPECT_FALSE(hm.HasMember("url_path"));
    EXPECT_FALSE(hm.HasMember("expected_codes"));
  }
}

TEST_F(RenderTest, SctpMonitorIsAnErrorNamingTheMonitor) {
  std::string id = lb();
  std::string p = pool(listener(id, "TCP", 80), "TCP");
  std::string h = monitor(p, "TCP");
  setField("healthmonitor", h, "type", R"("SCTP")");
  auto e = renderError(id);
  EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.context, "healthmonitor " + h);
  EXPECT_EQ(e.message,
            "SCTP health monitors are not supported by banyan-proxy yet (it runs TCP, HTTP, HTTPS, TLS-HELLO, PING "
            "and UDP-CONNECT)");
}

// ---------------------------------------------------------------------------------
// UDP listeners and pools (Octavia's keepalived-LVS semantics, section 9).

TEST_F(RenderTest, UdpListenerAndPoolAreRenderedForTheProxy) {
  std::string id = lb();
  std::string l = listener(id, "UDP", 53, R"(,"connection_limit":100,"timeout_client_data":20000)");
  std::string p = pool(l, "UDP",
                       R"(,"session_persistence":{"type":"SOURCE_IP","persistence_timeout":120,)"
                       R"("persistence_granularity":"255.255.255.0"})",
                       "SOURCE_IP");
  addMember(p, "192.0.2.50", 5353, R"(,"weight":3)");
  monitor(p, "UDP-CONNECT");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const auto& lc = r.config.listeners[0];
  EXPECT_EQ(lc.protocol, dpc::ListenerProtocol::kUdp);
  EXPECT_EQ(lc.protocol_port, 53);
  EXPECT_EQ(lc.connection_limit, 100);
  EXPECT_EQ(lc.timeout_client_data_ms, 20000u);
  EXPECT_EQ(lc.default_pool_id, p);
  ASSERT_EQ(r.config.pools.size(), 1u);
  const auto& pc = r.config.pools[0];
  EXPECT_EQ(pc.protocol, dpc::PoolProtocol::kUdp);
  EXPECT_EQ(pc.lb_algorithm, dpc::LbAlgorithm::kSourceIp);
  ASSERT_EQ(pc.members.size(), 1u);
  EXPECT_EQ(pc.members[0].weight, 3u);
  ASSERT_TRUE(pc.session_persistence);
  EXPECT_EQ(pc.session_persistence->type, dpc::PersistenceType::kSourceIp);
  EXPECT_EQ(pc.session_persistence->persistence_timeout_s, 120u);
  EXPECT_EQ(pc.session_persistence->persistence_granularity, "255.255.255.0");
  ASSERT_TRUE(pc.health_monitor);
  EXPECT_EQ(pc.health_monitor->type, dpc::MonitorType::kUdpConnect);
  EXPECT_EQ(pc.health_monitor->timeout_ms, 3000u);
}

TEST_F(RenderTest, UdpAndTcpListenersShareAPort) {
  std::string id = lb();
  pool(listener(id, "UDP", 53), "UDP");
  pool(listener(id, "TCP", 53), "TCP");
  auto r = render(id);
  EXPECT_EQ(r.config.listeners.size(), 2u);
  EXPECT_EQ(r.config.pools.size(), 2u);
}

TEST_F(RenderTest, TcpAndHttpGetMonitorsOfUdpPoolsAreRendered) {
  std::string id = lb();
  std::string p1 = pool(listener(id, "UDP", 53), "UDP");
  monitor(p1, "TCP");
  std::string p2 = pool(listener(id, "UDP", 54), "UDP");
  monitor(p2, "HTTP", R"(,"url_path":"/ready","expected_codes":"200-202")");
  auto r = render(id);
  ASSERT_EQ(r.config.pools.size(), 2u);
  for (const auto& p : r.config.pools) {
    ASSERT_TRUE(p.health_monitor) << p.id;
    if (p.id == p1) {
      EXPECT_EQ(p.health_monitor->type, dpc::MonitorType::kTcp);
    }
    if (p.id == p2) {
      EXPECT_EQ(p.health_monitor->type, dpc::MonitorType::kHttp);
      EXPECT_EQ(p.health_monitor->url_path, "/ready");
      EXPECT_EQ(p.health_monitor->expected_codes, (std::vector<uint16_t>{200, 201, 202}));
    }
  }
}

TEST_F(RenderTest, HttpMonitorOfAUdpPoolWithAnotherMethodRendersNoCheck) {
  std::string id = lb();
  std::string p = pool(listener(id, "UDP", 53), "UDP");
  std::string h = monitor(p, "HTTP");
  setField("healthmonitor", h, "http_method", R"("HEAD")");
  auto r = render(id);
  ASSERT_EQ(r.config.pools.size(), 1u);
  EXPECT_FALSE(r.config.pools[0].health_monitor);
}

TEST_F(RenderTest, MonitorTypeThatDoesNotFitThePoolIsAnErrorNamingTheMonitor) {
  std::string id = lb();
  std::string p = pool(listener(id, "UDP", 53), "UDP");
  std::string h = monitor(p, "UDP-CONNECT");
  setField("healthmonitor", h, "type", R"("PING")");
  auto e = renderError(id);
  EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.context, "healthmonitor " + h);
  EXPECT_EQ(e.message,
            "PING health monitors cannot check a UDP pool (UDP pools take UDP-CONNECT, TCP and HTTP; UDP-CONNECT "
            "needs a UDP pool)");
}

TEST_F(RenderTest, SctpPoolIsAnErrorNamingThePool) {
  std::string id = lb();
  std::string p = pool(listener(id, "TCP", 80), "TCP");
  setField("pool", p, "protocol", R"("SCTP")");
  auto e = renderError(id);
  EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.context, "pool " + p);
  EXPECT_EQ(e.message, "SCTP pools are not supported by banyan-proxy yet");
}

TEST_F(RenderTest, SessionPersistenceOfEachType) {
  struct Row {
    const char* json;
    dpc::PersistenceType want;
    const char* cookie;
  };
  const Row rows[] = {
      {R"({"type":"SOURCE_IP"})", dpc::PersistenceType::kSourceIp, ""},
      {R"({"type":"HTTP_COOKIE"})", dpc::PersistenceType::kHttpCookie, ""},
      {R"({"type":"APP_COOKIE","cookie_name":"JSESSIONID"})", dpc::PersistenceType::kAppCookie, "JSESSIONID"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.json);
    std::string id = lb();
    pool(listener(id, "HTTP", 80), "HTTP", std::string(",\"session_persistence\":") + row.json);
    auto r = render(id);
    ASSERT_EQ(r.config.pools.size(), 1u);
    ASSERT_TRUE(r.config.pools[0].session_persistence);
    EXPECT_EQ(r.config.pools[0].session_persistence->type, row.want);
    EXPECT_EQ(r.config.pools[0].session_persistence->cookie_name, row.cookie);
  }
}

TEST_F(RenderTest, AppCookieNameTheProxyCannotUseIsAnErrorNamingThePool) {
  std::string id = lb();
  // The API refuses separators and control characters but lets non-ASCII bytes through.
  std::string p = pool(listener(id, "HTTP", 80), "HTTP",
                       R"(,"session_persistence":{"type":"APP_COOKIE","cookie_name":"sess\u00e9"})");
  auto e = renderError(id);
  EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.context, "pool " + p);
}

TEST_F(RenderTest, DisabledPoolIsRenderedDisabledAndStaysTheDefault) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80);
  std::string p = pool(l, "HTTP", R"(,"admin_state_up":false)");
  auto r = render(id);
  ASSERT_EQ(r.config.pools.size(), 1u);
  EXPECT_FALSE(r.config.pools[0].admin_state_up);
  EXPECT_EQ(r.config.listeners[0].default_pool_id, p);
}

TEST_F(RenderTest, PoolsNoListenerOrPolicyUsesAreLeftOut) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80);
  std::string used = pool(l, "HTTP");
  std::string unused = lbPool(id, "HTTP");
  addMember(unused, "192.0.2.40", 80);
  std::string sctp = lbPool(id, "UDP");
  setField("pool", sctp, "protocol", R"("SCTP")");  // would be an error if it were rendered
  auto r = render(id);
  ASSERT_EQ(r.config.pools.size(), 1u);
  EXPECT_EQ(r.config.pools[0].id, used);
}

TEST_F(RenderTest, DefaultPoolBeingDeletedIsNoDefaultPool) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80);
  std::string p = pool(l, "HTTP");
  setField("pool", p, "provisioning_status", R"("PENDING_DELETE")");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  EXPECT_EQ(r.config.listeners[0].default_pool_id, "");
  EXPECT_TRUE(r.config.pools.empty());
}

// ---------------------------------------------------------------------------------
// L7 policies and rules.

TEST_F(RenderTest, L7PoliciesOfEveryActionWithRulesOfEveryType) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80);
  std::string def = pool(l, "HTTP");
  std::string api_pool = lbPool(id, "HTTP");
  addMember(api_pool, "192.0.2.50", 8080);
  // Created out of order: position decides.
  std::string to_pool = policy(l, "\"action\":\"REDIRECT_TO_POOL\",\"redirect_pool_id\":\"" + api_pool + "\"");
  std::string reject = policy(l, R"("action":"REJECT","position":1)");
  std::string to_url =
      policy(l, R"("action":"REDIRECT_TO_URL","redirect_url":"https://www.example.com/moved","redirect_http_code":301)");
  std::string prefix = policy(l, R"("action":"REDIRECT_PREFIX","redirect_prefix":"https://example.org")");

  rule(to_pool, R"("type":"PATH","compare_type":"STARTS_WITH","value":"/api")");
  rule(to_pool, R"("type":"HOST_NAME","compare_type":"EQUAL_TO","value":"Api.Example.com")");
  rule(reject, R"("type":"HEADER","compare_type":"CONTAINS","key":"User-Agent","value":"badbot")");
  rule(reject, R"("type":"COOKIE","compare_type":"EQUAL_TO","key":"banned","value":"yes","invert":true)");
  rule(to_url, R"("type":"FILE_TYPE","compare_type":"EQUAL_TO","value":"php")");
  rule(to_url, R"("type":"FILE_TYPE","compare_type":"REGEX","value":"^(jpg|png)$")");
  rule(prefix, R"("type":"SSL_CONN_HAS_CERT","compare_type":"EQUAL_TO","value":"True")");
  rule(prefix, R"("type":"SSL_VERIFY_RESULT","compare_type":"EQUAL_TO","value":"0")");
  rule(prefix, R"("type":"SSL_DN_FIELD","compare_type":"ENDS_WITH","key":"CN","value":".example.com")");
  rule(prefix, R"("type":"PATH","compare_type":"REGEX","value":"^/old/.*")");

  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const auto& pols = r.config.listeners[0].l7policies;
  ASSERT_EQ(pols.size(), 4u);
  EXPECT_EQ(pols[0].id, reject);
  EXPECT_EQ(pols[0].action, dp::l7::PolicyAction::kReject);
  EXPECT_EQ(pols[0].position, 1);
  EXPECT_EQ(pols[1].id, to_pool);
  EXPECT_EQ(pols[1].action, dp::l7::PolicyAction::kRedirectToPool);
  EXPECT_EQ(pols[1].redirect_pool_id, api_pool);
  EXPECT_EQ(pols[2].id, to_url);
  EXPECT_EQ(pols[2].action, dp::l7::PolicyAction::kRedirectToUrl);
  EXPECT_EQ(pols[2].redirect_url, "https://www.example.com/moved");
  EXPECT_EQ(pols[2].redirect_http_code, 301);
  EXPECT_EQ(pols[3].id, prefix);
  EXPECT_EQ(pols[3].action, dp::l7::PolicyAction::kRedirectPrefix);
  EXPECT_EQ(pols[3].redirect_prefix, "https://example.org");
  EXPECT_EQ(pols[3].redirect_http_code, 302);  // the API's default

  ASSERT_EQ(pols[0].rules.size(), 2u);
  EXPECT_EQ(pols[0].rules[0].type, dp::l7::RuleType::kHeader);
  EXPECT_EQ(pols[0].rules[0].compare_type, dp::l7::CompareType::kContains);
  EXPECT_EQ(pols[0].rules[0].key, "User-Agent");
  EXPECT_EQ(pols[0].rules[1].type, dp::l7::RuleType::kCookie);
  EXPECT_TRUE(pols[0].rules[1].invert);
  ASSERT_EQ(pols[1].rules.size(), 2u);
  EXPECT_EQ(pols[1].rules[0].type, dp::l7::RuleType::kPath);
  EXPECT_EQ(pols[1].rules[1].type, dp::l7::RuleType::kHostName);
  EXPECT_EQ(pols[1].rules[1].value, "Api.Example.com");
  ASSERT_EQ(pols[2].rules.size(), 2u);
  EXPECT_EQ(pols[2].rules[0].type, dp::l7::RuleType::kFileType);
  EXPECT_EQ(pols[2].rules[1].compare_type, dp::l7::CompareType::kRegex);
  ASSERT_EQ(pols[3].rules.size(), 4u);
  EXPECT_EQ(pols[3].rules[0].type, dp::l7::RuleType::kSslConnHasCert);
  EXPECT_EQ(pols[3].rules[1].type, dp::l7::RuleType::kSslVerifyResult);
  EXPECT_EQ(pols[3].rules[2].type, dp::l7::RuleType::kSslDnField);
  EXPECT_EQ(pols[3].rules[2].key, "CN");
  EXPECT_EQ(pols[3].rules[3].compare_type, dp::l7::CompareType::kRegex);
  // The key is only carried where it means something.
  EXPECT_EQ(member(r.json["listeners"][0]["l7policies"][1]["rules"][0], "key"), nullptr);

  // The redirect pool is rendered though no listener has it as default pool.
  ASSERT_EQ(r.config.pools.size(), 2u);
  EXPECT_EQ(r.config.pools[0].id, def);
  EXPECT_EQ(r.config.pools[1].id, api_pool);
}

TEST_F(RenderTest, DisabledPoliciesAndRulesAreKeptDisabled) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80);
  std::string off = policy(l, R"("action":"REJECT","admin_state_up":false)");
  rule(off, R"("type":"PATH","compare_type":"EQUAL_TO","value":"/x")");
  std::string on = policy(l, R"("action":"REJECT")");
  rule(on, R"("type":"PATH","compare_type":"EQUAL_TO","value":"/y")");
  rule(on, R"("type":"PATH","compare_type":"EQUAL_TO","value":"/z","admin_state_up":false)");
  auto r = render(id);
  const auto& pols = r.config.listeners.at(0).l7policies;
  ASSERT_EQ(pols.size(), 2u);
  EXPECT_FALSE(pols[0].admin_state_up);
  EXPECT_TRUE(pols[1].admin_state_up);
  ASSERT_EQ(pols[1].rules.size(), 2u);
  EXPECT_TRUE(pols[1].rules[0].admin_state_up);
  EXPECT_FALSE(pols[1].rules[1].admin_state_up);
}

TEST_F(RenderTest, PoliciesAndRulesBeingDeletedAreLeftOut) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80);
  std::string gone = policy(l, R"("action":"REJECT")");
  std::string kept = policy(l, R"("action":"REJECT")");
  rule(kept, R"("type":"PATH","compare_type":"EQUAL_TO","value":"/a")");
  std::string gone_rule = rule(kept, R"("type":"PATH","compare_type":"EQUAL_TO","value":"/b")");
  setField("l7policy", gone, "provisioning_status", R"("PENDING_DELETE")");
  setField("l7rule", gone_rule, "provisioning_status", R"("PENDING_DELETE")");
  auto r = render(id);
  const auto& pols = r.config.listeners.at(0).l7policies;
  ASSERT_EQ(pols.size(), 1u);
  EXPECT_EQ(pols[0].id, kept);
  ASSERT_EQ(pols[0].rules.size(), 1u);
  EXPECT_EQ(pols[0].rules[0].value, "/a");
}

TEST_F(RenderTest, RedirectToAPoolBeingDeletedIsDropped) {
  std::string id = lb();
  std::string l = listener(id, "HTTP", 80);
  std::string target = lbPool(id, "HTTP");
  std::string p = policy(l, "\"action\":\"REDIRECT_TO_POOL\",\"redirect_pool_id\":\"" + target + "\"");
  rule(p, R"("type":"PATH","compare_type":"STARTS_WITH","value":"/")");
  setField("pool", target, "provisioning_status", R"("PENDING_DELETE")");
  auto r = render(id);
  EXPECT_TRUE(r.config.listeners.at(0).l7policies.empty());
  EXPECT_TRUE(r.config.pools.empty());
}

// The Octavia API takes L7 policies on TCP and HTTPS listeners; banyan-proxy
// routes those connections on the TLS ClientHello's SNI.
TEST_F(RenderTest, L7PoliciesOnTcpAndHttpsListenersAreRenderedWithTheirPools) {
  std::string id = lb();
  std::string tcp = listener(id, "TCP", 80);
  pool(tcp, "TCP");
  std::string sni_pool = lbPool(id, "TCP");
  addMember(sni_pool, "192.0.2.60", 8443);
  std::string to_pool = policy(tcp, "\"action\":\"REDIRECT_TO_POOL\",\"redirect_pool_id\":\"" + sni_pool + "\"");
  rule(to_pool, R"("type":"HOST_NAME","compare_type":"ENDS_WITH","value":".a.example")");
  std::string https = listener(id, "HTTPS", 443);
  std::string https_pool = pool(https, "PROXYV2");
  std::string reject = policy(https, R"("action":"REJECT","position":1)");
  rule(reject, R"("type":"HOST_NAME","compare_type":"EQUAL_TO","value":"bad.example")");

  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 2u);
  const auto& tcp_pols = r.config.listeners[0].l7policies;
  ASSERT_EQ(tcp_pols.size(), 1u);
  EXPECT_EQ(tcp_pols[0].id, to_pool);
  EXPECT_EQ(tcp_pols[0].redirect_pool_id, sni_pool);
  ASSERT_EQ(tcp_pols[0].rules.size(), 1u);
  EXPECT_EQ(tcp_pols[0].rules[0].type, dp::l7::RuleType::kHostName);
  ASSERT_NE(r.config.listeners[0].policy_set, nullptr);
  EXPECT_TRUE(r.config.listeners[0].policy_set->passthroughNeedsHost());
  const auto& https_pols = r.config.listeners[1].l7policies;
  ASSERT_EQ(https_pols.size(), 1u);
  EXPECT_EQ(https_pols[0].action, dp::l7::PolicyAction::kReject);
  // The redirect pool is rendered though no listener has it as default pool.
  std::set<std::string> pools;
  for (const auto& p : r.config.pools) pools.insert(p.id);
  EXPECT_TRUE(pools.count(sni_pool));
  EXPECT_TRUE(pools.count(https_pool));
}

// Octavia's keepalived amphora renders neither the policies of a UDP listener
// nor the pools only they name.
TEST_F(RenderTest, L7PoliciesOfAUdpListenerAreLeftOutWithThePoolsOnlyTheyName) {
  std::string id = lb();
  std::string l = listener(id, "UDP", 53);
  std::string def = pool(l, "UDP");
  std::string other = lbPool(id, "UDP");
  std::string p = policy(l, "\"action\":\"REDIRECT_TO_POOL\",\"redirect_pool_id\":\"" + other + "\"");
  rule(p, R"("type":"HOST_NAME","compare_type":"EQUAL_TO","value":"a.example")");
  auto r = render(id);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  EXPECT_TRUE(r.config.listeners[0].l7policies.empty());
  EXPECT_EQ(member(r.json["listeners"][0], "l7policies"), nullptr);
  ASSERT_EQ(r.config.pools.size(), 1u);
  EXPECT_EQ(r.config.pools[0].id, def);
}

// ---------------------------------------------------------------------------------
// TLS.

TEST_F(RenderTest, TerminatedHttpsWithoutCertificatePathsNeedsACertificateManager) {
  std::string id = lb();
  std::string l = listener(id, "TERMINATED_HTTPS", 443, R"(,"default_tls_container_ref":"https://barbican/v1/containers/a")");
  auto e = renderError(id);
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_EQ(e.context, "listener " + l);
  EXPECT_EQ(e.message, "TERMINATED_HTTPS needs a certificate manager; none is configured");
}

TEST_F(RenderTest, TerminatedHttpsUsesThePlacedCertificateFiles) {
  std::string id = lb();
  std::string l = listener(
      id, "TERMINATED_HTTPS", 443,
      R"(,"default_tls_container_ref":"ref-default","sni_container_refs":["ref-sni-1","ref-sni-2"],)"
      R"("client_authentication":"OPTIONAL","client_ca_tls_container_ref":"ref-ca","client_crl_container_ref":"ref-crl",)"
      R"("tls_versions":["TLSv1.2"],"insert_headers":{"X-Forwarded-Proto":"true","X-SSL-Client-CN":"true",)"
      R"("X-SSL-Client-Verify":"false"})");
  std::string p = pool(l, "HTTP");
  RenderContext ctx = context();
  ctx.certificate_paths = {{"ref-default", "/var/lib/banyan/certs/default.pem"},
                           {"ref-sni-1", "/var/lib/banyan/certs/sni1.pem"},
                           {"ref-sni-2", "/var/lib/banyan/certs/sni2.pem"},
                           {"ref-ca", "/var/lib/banyan/certs/ca.pem"},
                           {"ref-crl", "/var/lib/banyan/certs/crl.pem"}};
  auto r = render(id, ctx);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  const auto& cl = r.config.listeners[0];
  EXPECT_EQ(cl.protocol, dpc::ListenerProtocol::kTerminatedHttps);
  EXPECT_EQ(cl.tls.default_certificate, "/var/lib/banyan/certs/default.pem");
  EXPECT_EQ(cl.tls.sni_certificates,
            (std::vector<std::string>{"/var/lib/banyan/certs/sni1.pem", "/var/lib/banyan/certs/sni2.pem"}));
  EXPECT_EQ(cl.tls.client_ca_certificate, "/var/lib/banyan/certs/ca.pem");
  EXPECT_EQ(cl.tls.client_crl, "/var/lib/banyan/certs/crl.pem");
  EXPECT_EQ(cl.tls.client_authentication, dpc::ClientAuth::kOptional);
  EXPECT_EQ(cl.tls.versions, static_cast<uint32_t>(dpc::kTlsV12));
  EXPECT_EQ(cl.tls.ciphers, api::kOwaspSuiteBCiphers);  // the API's default
  // Octavia's default ALPN, in its order: banyan-proxy speaks HTTP/2 to clients.
  EXPECT_EQ(cl.tls.alpn_protocols, (std::vector<std::string>{"h2", "http/1.1", "http/1.0"}));
  EXPECT_TRUE(cl.insert_headers.x_forwarded_proto);
  EXPECT_TRUE(cl.insert_headers.ssl_client_cn);
  EXPECT_FALSE(cl.insert_headers.ssl_client_verify);
  EXPECT_EQ(cl.default_pool_id, p);
}

TEST_F(RenderTest, TerminatedHttpsWithSniOnlyServesTheFirstAsDefault) {
  std::string id = lb();
  listener(id, "TERMINATED_HTTPS", 443, R"(,"sni_container_refs":["ref-a","ref-b"])");
  RenderContext ctx = context();
  ctx.certificate_paths = {{"ref-a", "/certs/a.pem"}, {"ref-b", "/certs/b.pem"}};
  auto r = render(id, ctx);
  ASSERT_EQ(r.config.listeners.size(), 1u);
  EXPECT_EQ(r.config.listeners[0].tls.default_certificate, "/certs/a.pem");
  EXPECT_EQ(r.config.listeners[0].tls.sni_certificates, std::vector<std::string>{"/certs/b.pem"});
  EXPECT_EQ(r.config.listeners[0].tls.client_authentication, dpc::ClientAuth::kNone);
}

TEST_F(RenderTest, ACertificateNotPlacedIsAnErrorNamingTheReference) {
  std::string id = lb();
  std::string l = listener(id, "TERMINATED_HTTPS", 443,
                           R"(,"default_tls_container_ref":"ref-default","sni_container_refs":["ref-missing"])");
  RenderContext ctx = context();
  ctx.certificate_paths = {{"ref-default", "/certs/default.pem"}};
  auto e = renderError(id, ctx);
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_EQ(e.context, "listener " + l);
  EXPECT_EQ(e.message, "sni_container_refs ref-missing has not been placed on the amphora (no certificate path for it)");
}

TEST_F(RenderTest, PoolReencryptionUsesThePlacedCertificateFiles) {
  std::string id = lb();
  std::string p = pool(listener(id, "HTTP", 80), "HTTP",
                       R"(,"tls_enabled":true,"tls_container_ref":"ref-client","ca_tls_container_ref":"ref-ca",)"
                       R"("crl_container_ref":"ref-crl")");
  RenderContext ctx = context();
  ctx.certificate_paths = {{"ref-client", "/certs/client.pem"}, {"ref-ca", "/certs/ca.pem"}, {"ref-crl", "/certs/crl.pem"}};
  auto r = render(id, ctx);
  ASSERT_EQ(r.config.pools.size(), 1u);
  const auto& cp = r.config.pools[0];
  EXPECT_TRUE(cp.tls_enabled);
  EXPECT_EQ(cp.tls_certificate, "/certs/client.pem");
  EXPECT_EQ(cp.ca_certificate, "/certs/ca.pem");
  EXPECT_EQ(cp.crl, "/certs/crl.pem");
  // Octavia's pool default starts with h2: members that pick it get HTTP/2.
  EXPECT_EQ(cp.alpn_protocols, (std::vector<std::string>{"h2", "http/1.1", "http/1.0"}));

  auto e = renderError(id);  // no certificate paths at all
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_EQ(e.context, "pool " + p);
}

TEST_F(RenderTest, PoolReencryptionWithoutCertificatesNeedsNoPaths) {
  std::string id = lb();
  pool(listener(id, "HTTP", 80), "HTTP", R"(,"tls_enabled":true)");
  auto r = render(id);
  ASSERT_EQ(r.config.pools.size(), 1u);
  EXPECT_TRUE(r.config.pools[0].tls_enabled);
  EXPECT_EQ(r.config.pools[0].ca_certificate, "");
}

TEST_F(RenderTest, ReencryptionOnANonHttpPoolIsAnErrorNamingThePool) {
  std::string id = lb();
  std::string p = pool(listener(id, "TCP", 80), "TCP", R"(,"tls_enabled":true)");
  auto e = renderError(id);
  EXPECT_EQ(e.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.context, "pool " + p);
  EXPECT_EQ(e.message, "tls_enabled on a TCP pool is not supported by banyan-proxy yet (HTTP pools only)");
}

TEST_F(RenderTest, PoolTlsFieldsAreIgnoredWhileTlsIsOff) {
  std::string id = lb();
  pool(listener(id, "HTTP", 80), "HTTP", R"(,"ca_tls_container_ref":"ref-ca")");
  auto r = render(id);  // no certificate paths, and none needed
  ASSERT_EQ(r.config.pools.size(), 1u);
  EXPECT_FALSE(r.config.pools[0].tls_enabled);
  EXPECT_EQ(member(r.json["pools"][0], "ca_certificate"), nullptr);
}

TEST_F(RenderTest, NeededCertificatesAreWhatTheDocumentWouldCarry) {
  std::string id = lb();
  std::string l = listener(
      id, "TERMINATED_HTTPS", 443,
      R"(,"default_tls_container_ref":"ref-default","sni_container_refs":["ref-sni"],)"
      R"("client_authentication":"MANDATORY","client_ca_tls_container_ref":"ref-ca","client_crl_container_ref":"ref-crl")");
  pool(l, "HTTP", R"(,"tls_enabled":true,"tls_container_ref":"ref-client","ca_tls_container_ref":"ref-pool-ca")");
  std::string gone = listener(id, "TERMINATED_HTTPS", 8443, R"(,"default_tls_container_ref":"ref-gone")");
  setField("listener", gone, "provisioning_status", R"("PENDING_DELETE")");

  auto needs = neededCertificates(graph(id), context());
  ASSERT_TRUE(needs.ok()) << needs.error().message;
  EXPECT_EQ(needs->tls_bundles, (std::set<std::string>{"ref-default", "ref-sni", "ref-client"}));
  EXPECT_EQ(needs->pem_secrets, (std::set<std::string>{"ref-ca", "ref-crl", "ref-pool-ca"}));

  RenderContext with_deleted = context();
  with_deleted.include_pending_delete = true;
  EXPECT_EQ(neededCertificates(graph(id), with_deleted)->tls_bundles.count("ref-gone"), 1u);

  setField("loadbalancer", id, "admin_state_up", "false");
  auto disabled = neededCertificates(graph(id), context());
  ASSERT_TRUE(disabled.ok());
  EXPECT_TRUE(disabled->tls_bundles.empty() && disabled->pem_secrets.empty());
}

}  // namespace
}  // namespace banyan::provider::render
