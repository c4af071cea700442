// The agent API's firewall duty, in process: AgentApi with a scripted SystemOps (what
// would be applied, in which order, and failures on demand), the real ConfigApplier
// validating with the real banyan-proxy (--check: no proxy is running), and the pure
// derivation firewallPlanFor.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <vector>

#include "api/agent_api.h"
#include "api/firewall_plan.h"
#include "storage/storage.h"
#include "support/test_env.h"

namespace banyan::agent::api {
namespace {

using common::ErrorCode;
using common::HttpRequest;
using common::HttpResponse;
using common::makeError;
using common::Result;

// Records every call in order; a failure can be queued for the next firewall or VRRP
// apply.
class FakeSystemOps final : public SystemOps {
 public:
  Result<std::string> plugVip(const VipPlug&) override { return std::string("eth1"); }
  Result<std::string> plugNetwork(const NetworkPlug&) override { return std::string("eth2"); }
  Result<void> applyVrrp(const VrrpSpec& spec) override {
    calls.push_back("vrrp");
    if (fail_vrrp)
      return makeError(ErrorCode::kInvalidArgument, "keepalived --config-test failed",
                       "/interface");
    vrrp = spec;
    return {};
  }
  VrrpState vrrpState() override { return VrrpState::kUnknown; }
  std::string keepalivedVersion() override { return ""; }
  Result<void> applyFirewall(const FirewallPlan& plan) override {
    calls.push_back("firewall");
    if (fail_firewall) {
      fail_firewall = false;
      return makeError(ErrorCode::kUnavailable, "netlink: Operation not permitted");
    }
    applied.push_back(plan);
    return {};
  }

  std::vector<std::string> calls;
  std::vector<FirewallPlan> applied;  // successful applies, oldest first
  std::optional<VrrpSpec> vrrp;
  bool fail_firewall = false;
  bool fail_vrrp = false;
};

std::string listenerDoc(uint64_t generation, const std::string& allowed_cidrs_json,
                        const std::string& extra = "") {
  return "{\"generation\": " + std::to_string(generation) +
         ", \"listeners\": [{\"id\": \"l1\", \"protocol\": \"HTTP\", \"address\": \"203.0.113.5\", "
         "\"additional_addresses\": [\"2001:db8::5\"], \"protocol_port\": 80, \"allowed_cidrs\": " +
         allowed_cidrs_json + extra + "}], \"pools\": []}";
}

class FirewallApi : public ::testing::Test {
 protected:
  void SetUp() override { makeApi({"198.51.100.128/25"}); }

  void makeApi(std::vector<std::string> management) {
    api_.reset();
    ApiOptions o;
    o.amphora_id = "amp-fw";
    o.state_dir = dir_.path();
    o.agent_version = "test";
    o.agent_port = 9443;
    o.management_cidrs = std::move(management);
    api_ = std::make_unique<AgentApi>(o, ApiDeps{applier_, certs_, control_, heartbeat_, system_});
  }

  HttpResponse call(const std::string& method, const std::string& path,
                    const std::string& body = "") {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.raw_path = path;
    r.body = body;
    r.peer_address = "127.0.0.1";
    return api_->handle(r);
  }

  std::string stored() {
    auto s = applier_.stored();
    return s ? s.value() : "";
  }

  testing::TempDir dir_;
  proxy_control::ProxyControl control_{dir_.path() + "/no-proxy.sock", 1000};
  apply::ConfigApplier applier_{dir_.path() + "/proxy.json", testing::proxyBinary(), control_};
  certs::CertStore certs_{dir_.path() + "/certs"};
  // With a key, as agent.conf gives one: PUT /1.0/agent-config refuses to leave none.
  heartbeat::HeartbeatSender heartbeat_{"amp-fw", control_, [] { return uint64_t{0}; },
                                        heartbeat::HeartbeatSettings{{}, 10, "agent-conf-key"}};
  FakeSystemOps system_;
  std::unique_ptr<AgentApi> api_;
};

TEST_F(FirewallApi, AConfigPutAppliesItsListenersAllowedCidrsToTheFirewall) {
  auto r = call("PUT", "/1.0/config", listenerDoc(1, "[\"198.51.100.0/24\"]"));
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(system_.applied.size(), 1u);
  const FirewallPlan& p = system_.applied.back();
  EXPECT_EQ(p.vips, (std::vector<std::string>{"203.0.113.5", "2001:db8::5"}));
  ASSERT_EQ(p.listeners.size(), 2u);
  EXPECT_EQ(p.listeners[0], (FirewallListener{"203.0.113.5", 80, "tcp", {"198.51.100.0/24"}}));
  EXPECT_EQ(p.listeners[1], (FirewallListener{"2001:db8::5", 80, "tcp", {"198.51.100.0/24"}}));
  EXPECT_EQ(p.management_cidrs, (std::vector<std::string>{"198.51.100.128/25"}));
  EXPECT_EQ(p.agent_port, 9443);
  EXPECT_FALSE(p.allow_vrrp);
  EXPECT_EQ(system_.calls, (std::vector<std::string>{"firewall"}));
}

TEST_F(FirewallApi, AConfigTheProxyRefusesPutsThePreviousFirewallBack) {
  std::string first = listenerDoc(1, "[\"198.51.100.0/24\"]");
  ASSERT_EQ(call("PUT", "/1.0/config", first).status, 200);
  FirewallPlan before = system_.applied.back();
  // A firewall-valid document the proxy refuses: its pool does not exist.
  auto r = call("PUT", "/1.0/config",
                listenerDoc(2, "[\"192.0.2.0/24\"]", ", \"default_pool_id\": \"nosuch\""));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("nosuch"), std::string::npos) << r.body;
  // New rules went in first, then the previous ones came back.
  ASSERT_EQ(system_.applied.size(), 3u);
  EXPECT_EQ(system_.applied[1].listeners[0].allowed_cidrs,
            (std::vector<std::string>{"192.0.2.0/24"}));
  EXPECT_EQ(system_.applied[2], before);
  EXPECT_EQ(stored(), first);
}

TEST_F(FirewallApi, AFirewallFailureLeavesTheProxyConfigUntouched) {
  std::string first = listenerDoc(1, "[]");
  ASSERT_EQ(call("PUT", "/1.0/config", first).status, 200);
  system_.fail_firewall = true;
  auto r = call("PUT", "/1.0/config", listenerDoc(2, "[\"192.0.2.0/24\"]"));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(stored(), first);
  EXPECT_EQ(system_.applied.size(), 1u);
  // The next PUT of the same document tries again (the kernel kept the old table).
  r = call("PUT", "/1.0/config", listenerDoc(2, "[\"192.0.2.0/24\"]"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(system_.applied.back().listeners[0].allowed_cidrs,
            (std::vector<std::string>{"192.0.2.0/24"}));
}

TEST_F(FirewallApi, AnAllowedCidrWithHostBitsIsRefusedBeforeAnythingIsTouched) {
  std::string first = listenerDoc(1, "[]");
  ASSERT_EQ(call("PUT", "/1.0/config", first).status, 200);
  auto r = call("PUT", "/1.0/config", listenerDoc(2, "[\"192.0.2.0/24\", \"198.51.100.1/24\"]"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("\"path\":\"/listeners/0/allowed_cidrs/1\""), std::string::npos) << r.body;
  EXPECT_EQ(system_.calls.size(), 1u);
  EXPECT_EQ(stored(), first);
}

TEST_F(FirewallApi, AnUnchangedPlanIsNotAppliedAgain) {
  ASSERT_EQ(call("PUT", "/1.0/config", listenerDoc(1, "[]")).status, 200);
  // Another generation, same listeners: nothing for the firewall to do.
  ASSERT_EQ(call("PUT", "/1.0/config", listenerDoc(2, "[]")).status, 200);
  EXPECT_EQ(system_.calls.size(), 1u);
}

TEST_F(FirewallApi, VrrpOpensTheFirewallToThePeersBeforeKeepalivedStarts) {
  ASSERT_EQ(call("PUT", "/1.0/config", listenerDoc(1, "[]")).status, 200);
  auto r = call(
      "PUT", "/1.0/vrrp",
      "{\"interface\": \"eth1\", \"vip\": \"203.0.113.5\", \"priority\": 100, \"local_address\": "
      "\"203.0.113.11\", \"peer_addresses\": [\"203.0.113.12\"], \"auth_pass\": \"pw\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(system_.calls, (std::vector<std::string>{"firewall", "firewall", "vrrp"}));
  const FirewallPlan& p = system_.applied.back();
  EXPECT_TRUE(p.allow_vrrp);
  EXPECT_EQ(p.vrrp_peers, (std::vector<std::string>{"203.0.113.12"}));
  // The listeners of the running config are kept.
  EXPECT_EQ(p.listeners.size(), 2u);
  // Later config PUTs keep VRRP open to the peers.
  ASSERT_EQ(call("PUT", "/1.0/config", listenerDoc(2, "[\"192.0.2.0/24\"]")).status, 200);
  EXPECT_TRUE(system_.applied.back().allow_vrrp);
  EXPECT_EQ(system_.applied.back().vrrp_peers, (std::vector<std::string>{"203.0.113.12"}));
}

TEST_F(FirewallApi, ARefusedVrrpConfigPutsThePreviousFirewallBack) {
  ASSERT_EQ(call("PUT", "/1.0/config", listenerDoc(1, "[]")).status, 200);
  FirewallPlan before = system_.applied.back();
  system_.fail_vrrp = true;
  auto r = call(
      "PUT", "/1.0/vrrp",
      "{\"interface\": \"eth1\", \"vip\": \"203.0.113.5\", \"priority\": 100, \"local_address\": "
      "\"203.0.113.11\", \"peer_addresses\": [\"203.0.113.12\"]}");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(system_.applied.back(), before);
  EXPECT_FALSE(system_.applied.back().allow_vrrp);
  EXPECT_FALSE(storage::readFile(api_->vrrpPath()).ok());
}

TEST_F(FirewallApi, AtStartTheStoredConfigAndVrrpSettingsAreApplied) {
  ASSERT_EQ(call("PUT", "/1.0/config", listenerDoc(1, "[\"192.0.2.0/24\"]")).status, 200);
  ASSERT_EQ(call("PUT", "/1.0/vrrp",
                 "{\"interface\": \"eth1\", \"vip\": \"203.0.113.5\", \"priority\": 90, "
                 "\"local_address\": "
                 "\"203.0.113.12\", \"peer_addresses\": [\"203.0.113.11\"]}")
                .status,
            200);
  // A restarted agent: a new AgentApi over the same state directory.
  makeApi({"198.51.100.128/25"});
  system_.applied.clear();
  auto r = api_->restoreFirewall(40001);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(system_.applied.size(), 1u);
  const FirewallPlan& p = system_.applied.back();
  EXPECT_EQ(p.agent_port, 40001);
  EXPECT_TRUE(p.allow_vrrp);
  EXPECT_EQ(p.vrrp_peers, (std::vector<std::string>{"203.0.113.11"}));
  EXPECT_EQ(p.listeners[0].allowed_cidrs, (std::vector<std::string>{"192.0.2.0/24"}));
  // /details says what is in force.
  auto d = call("GET", "/1.0/details");
  ASSERT_EQ(d.status, 200);
  rapidjson::Document doc;
  doc.Parse(d.body.c_str());
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("firewall") && doc["firewall"].IsObject()) << d.body;
  EXPECT_EQ(doc["firewall"]["agent_port"].GetInt(), 40001);
  EXPECT_TRUE(doc["firewall"]["vrrp"].GetBool());
  EXPECT_EQ(doc["firewall"]["listeners"].Size(), 2u);
}

TEST_F(FirewallApi, WithoutManagementCidrsTheAgentPortStaysOpenToEveryone) {
  makeApi({});
  ASSERT_TRUE(api_->restoreFirewall(9443).ok());
  EXPECT_EQ(system_.applied.back().management_cidrs,
            (std::vector<std::string>{"0.0.0.0/0", "::/0"}));
  EXPECT_TRUE(system_.applied.back().listeners.empty());
}

TEST_F(FirewallApi, DetailsSayNullBeforeAnyFirewall) {
  auto d = call("GET", "/1.0/details");
  ASSERT_EQ(d.status, 200);
  EXPECT_NE(d.body.find("\"firewall\":null"), std::string::npos) << d.body;
}

// ---- management_cidrs pushed with PUT /1.0/agent-config ----

std::vector<std::string> stringsAt(const rapidjson::Value& v) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  for (const auto& s : v.GetArray()) out.emplace_back(s.IsString() ? s.GetString() : "<not a string>");
  return out;
}

TEST_F(FirewallApi, PushedManagementCidrsCloseTheAgentPortOfAnAmphoraWhoseAgentConfPredatesThem) {
  makeApi({});  // an agent.conf without the option: the port is open to everyone
  ASSERT_TRUE(api_->restoreFirewall(9443).ok());
  ASSERT_EQ(system_.applied.back().management_cidrs, (std::vector<std::string>{"0.0.0.0/0", "::/0"}));
  auto r = call("PUT", "/1.0/agent-config",
                R"({"management_cidrs": ["198.51.100.0/24", "2001:db8:1::/64", "192.0.2.7"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::vector<std::string> want{"198.51.100.0/24", "2001:db8:1::/64", "192.0.2.7"};
  ASSERT_EQ(system_.applied.size(), 2u);
  EXPECT_EQ(system_.applied.back().management_cidrs, want);
  EXPECT_EQ(system_.applied.back().agent_port, 9443);
  // Read back from GET /1.0/agent-config and /details.
  rapidjson::Document got;
  auto g = call("GET", "/1.0/agent-config");
  got.Parse(g.body.c_str());
  ASSERT_TRUE(got.IsObject() && got.HasMember("management_cidrs")) << g.body;
  EXPECT_EQ(stringsAt(got["management_cidrs"]), want);
  auto d = call("GET", "/1.0/details");
  rapidjson::Document details;
  details.Parse(d.body.c_str());
  ASSERT_TRUE(details.IsObject() && details["firewall"].IsObject()) << d.body;
  EXPECT_EQ(stringsAt(details["firewall"]["management_cidrs"]), want);
}

TEST_F(FirewallApi, PushedManagementCidrsSurviveARestartAndLaterPushesThatOmitThem) {
  makeApi({});
  ASSERT_EQ(call("PUT", "/1.0/agent-config", R"({"management_cidrs": ["2001:db8:1::/64"]})").status, 200);
  // A later push of heartbeat settings alone keeps them.
  ASSERT_EQ(call("PUT", "/1.0/agent-config", R"({"heartbeat_interval": 3, "heartbeat_key": "k"})").status, 200);
  auto file = storage::readFile(api_->agentConfigPath());
  ASSERT_TRUE(file.ok());
  EXPECT_NE(file->find("\"management_cidrs\":[\"2001:db8:1::/64\"]"), std::string::npos) << *file;
  // The agent's start reads the same file for the heartbeat: still accepted.
  auto hb = mergeAgentConfig(heartbeat::HeartbeatSettings{}, file.value());
  ASSERT_TRUE(hb.ok()) << hb.error().message;
  EXPECT_EQ(hb->interval_s, 3);
  // Restarted with the old agent.conf: the pushed CIDRs win.
  makeApi({"203.0.113.0/24"});
  system_.applied.clear();
  ASSERT_TRUE(api_->restoreFirewall(9443).ok());
  ASSERT_EQ(system_.applied.size(), 1u);
  EXPECT_EQ(system_.applied.back().management_cidrs, (std::vector<std::string>{"2001:db8:1::/64"}));
}

TEST_F(FirewallApi, WithoutAPushAgentConfsManagementCidrsStand) {
  ASSERT_EQ(call("PUT", "/1.0/agent-config", R"({"heartbeat_interval": 3})").status, 200);
  auto file = storage::readFile(api_->agentConfigPath());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->find("management_cidrs"), std::string::npos) << *file;
  EXPECT_TRUE(system_.applied.empty()) << "nothing for the firewall to do";
  makeApi({"203.0.113.0/24"});
  ASSERT_TRUE(api_->restoreFirewall(9443).ok());
  EXPECT_EQ(system_.applied.back().management_cidrs, (std::vector<std::string>{"203.0.113.0/24"}));
  auto g = call("GET", "/1.0/agent-config");
  EXPECT_NE(g.body.find("\"management_cidrs\":[\"203.0.113.0/24\"]"), std::string::npos) << g.body;
}

TEST_F(FirewallApi, BadManagementCidrsAreRefusedWithTheirPathAndChangeNothing) {
  ASSERT_TRUE(api_->restoreFirewall(9443).ok());
  ASSERT_EQ(call("PUT", "/1.0/agent-config", R"({"management_cidrs": ["198.51.100.0/24"], "heartbeat_interval": 4})")
                .status,
            200);
  const auto applies = system_.applied.size();
  const std::string file = storage::readFile(api_->agentConfigPath()).value();
  const std::string before = call("GET", "/1.0/agent-config").body;
  struct Row {
    const char* body;
    const char* path;
  } rows[] = {
      {R"({"management_cidrs": ["198.51.100.0/33"]})", "/management_cidrs/0"},
      {R"({"management_cidrs": ["192.0.2.0/24", "2001:db8::/129"]})", "/management_cidrs/1"},
      {R"({"management_cidrs": ["controller.example"]})", "/management_cidrs/0"},
      {R"({"management_cidrs": ["192.0.2.0/"]})", "/management_cidrs/0"},
      {R"({"management_cidrs": [" 192.0.2.1"]})", "/management_cidrs/0"},
      {R"({"management_cidrs": [7]})", "/management_cidrs/0"},
      {R"({"management_cidrs": "192.0.2.0/24"})", "/management_cidrs"},
      {R"({"management_cidrs": ["192.0.2.0/24"], "heartbeat_interval": 0})", "/heartbeat_interval"},
  };
  for (const auto& row : rows) {
    auto r = call("PUT", "/1.0/agent-config", row.body);
    EXPECT_EQ(r.status, 400) << row.body << " -> " << r.body;
    EXPECT_NE(r.body.find(std::string("\"path\":\"") + row.path + "\""), std::string::npos)
        << row.body << " -> " << r.body;
  }
  EXPECT_EQ(system_.applied.size(), applies);
  EXPECT_EQ(storage::readFile(api_->agentConfigPath()).value(), file);
  EXPECT_EQ(call("GET", "/1.0/agent-config").body, before);
}

TEST_F(FirewallApi, AFirewallThatCannotTakeTheCidrsLeavesTheAgentConfigUnsaved) {
  ASSERT_TRUE(api_->restoreFirewall(9443).ok());
  const std::string before = call("GET", "/1.0/agent-config").body;
  system_.fail_firewall = true;
  auto r = call("PUT", "/1.0/agent-config", R"({"management_cidrs": ["192.0.2.0/24"], "heartbeat_interval": 4})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_FALSE(storage::readFile(api_->agentConfigPath()).ok());
  EXPECT_EQ(call("GET", "/1.0/agent-config").body, before);
  EXPECT_EQ(system_.applied.back().management_cidrs, (std::vector<std::string>{"198.51.100.128/25"}));
  // Asked again, it goes through.
  ASSERT_EQ(call("PUT", "/1.0/agent-config", R"({"management_cidrs": ["192.0.2.0/24"]})").status, 200);
  EXPECT_EQ(system_.applied.back().management_cidrs, (std::vector<std::string>{"192.0.2.0/24"}));
}

TEST_F(FirewallApi, PushedManagementCidrsKeepTheListenersAndVrrpOfTheRunningConfig) {
  ASSERT_EQ(call("PUT", "/1.0/config", listenerDoc(1, "[\"192.0.2.0/24\"]")).status, 200);
  ASSERT_EQ(call("PUT", "/1.0/vrrp",
                 "{\"interface\": \"eth1\", \"vip\": \"203.0.113.5\", \"priority\": 90, "
                 "\"local_address\": \"203.0.113.12\", \"peer_addresses\": [\"203.0.113.11\"]}")
                .status,
            200);
  ASSERT_EQ(call("PUT", "/1.0/agent-config", R"({"management_cidrs": ["2001:db8:1::/64"]})").status, 200);
  const FirewallPlan& p = system_.applied.back();
  EXPECT_EQ(p.management_cidrs, (std::vector<std::string>{"2001:db8:1::/64"}));
  EXPECT_EQ(p.listeners.size(), 2u);
  EXPECT_TRUE(p.allow_vrrp);
  EXPECT_EQ(p.vrrp_peers, (std::vector<std::string>{"203.0.113.11"}));
  // And later config PUTs keep them.
  ASSERT_EQ(call("PUT", "/1.0/config", listenerDoc(2, "[]")).status, 200);
  EXPECT_EQ(system_.applied.back().management_cidrs, (std::vector<std::string>{"2001:db8:1::/64"}));
}

// ---- firewallPlanFor, pure ----

FirewallInputs inputs() {
  FirewallInputs in;
  in.management_cidrs = {"198.51.100.128/25"};
  return in;
}

TEST(FirewallPlanFor, MapsEachProtocolToItsTransport) {
  auto p = firewallPlanFor(
      R"({"listeners": [{"id": "a", "protocol": "UDP", "address": "203.0.113.5", "protocol_port": 53},
                        {"id": "b", "protocol": "SCTP", "address": "203.0.113.5", "protocol_port": 9},
                        {"id": "c", "protocol": "TERMINATED_HTTPS", "address": "203.0.113.5", "protocol_port": 443},
                        {"id": "d", "address": "203.0.113.5", "protocol_port": 80},
                        {"id": "e", "protocol": "PROMETHEUS", "address": "203.0.113.5", "protocol_port": 9100}]})",
      inputs());
  ASSERT_TRUE(p.ok()) << p.error().message;
  std::vector<std::string> got;
  for (const auto& l : p->listeners) got.push_back(l.protocol + "/" + std::to_string(l.port));
  EXPECT_EQ(got, (std::vector<std::string>{"udp/53", "sctp/9", "tcp/443", "tcp/80", "tcp/9100"}));
  EXPECT_EQ(p->vips, (std::vector<std::string>{"203.0.113.5"}));
}

TEST(FirewallPlanFor, WildcardAddressesAddNoVipAndDuplicatesMerge) {
  auto p = firewallPlanFor(
      R"({"listeners": [{"id": "a", "address": "0.0.0.0", "protocol_port": 80},
                        {"id": "b", "address": "::", "protocol_port": 80},
                        {"id": "c", "address": "2001:DB8:0::5", "additional_addresses": ["2001:db8::5"],
                         "protocol_port": 81, "allowed_cidrs": ["192.0.2.7", "192.0.2.7/32"]}]})",
      inputs());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->vips, (std::vector<std::string>{"2001:db8::5"}));
  ASSERT_EQ(p->listeners.size(), 1u);
  EXPECT_EQ(p->listeners[0].allowed_cidrs, (std::vector<std::string>{"192.0.2.7/32"}));
}

TEST(FirewallPlanFor, ErrorsPointIntoTheDocument) {
  struct Case {
    const char* doc;
    const char* path;
  } cases[] = {
      {R"({"listeners": [{"id": "a", "address": "203.0.113.300", "protocol_port": 80}]})",
       "/listeners/0/address"},
      {R"({"listeners": [{"id": "a", "address": "203.0.113.5", "protocol_port": 80,
           "additional_addresses": ["x"]}]})",
       "/listeners/0/additional_addresses/0"},
      {R"({"listeners": [{"id": "a", "address": "203.0.113.5", "protocol_port": 0}]})",
       "/listeners/0/protocol_port"},
      {R"({"listeners": [{"id": "a", "address": "203.0.113.5", "protocol_port": 80, "protocol": "QUIC"}]})",
       "/listeners/0/protocol"},
      {R"({"listeners": [{"id": "a", "address": "203.0.113.5", "protocol_port": 80,
           "allowed_cidrs": ["192.0.2.0/33"]}]})",
       "/listeners/0/allowed_cidrs/0"},
      {R"({"listeners": [{"id": "a", "address": "203.0.113.5", "protocol_port": 80,
           "allowed_cidrs": ["2001:db8::1/64"]}]})",
       "/listeners/0/allowed_cidrs/0"},
      {R"({"listeners": {}})", "/listeners"},
  };
  for (const auto& c : cases) {
    auto p = firewallPlanFor(c.doc, inputs());
    ASSERT_FALSE(p.ok()) << c.doc;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(p.error().context, c.path) << c.doc << ": " << p.error().message;
  }
}

TEST(FirewallPlanFor, VrrpPeersCountOnlyWhileVrrpIsActive) {
  FirewallInputs in = inputs();
  in.vrrp_peers = {"203.0.113.12"};
  auto p = firewallPlanFor("{}", in);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->allow_vrrp);
  EXPECT_TRUE(p->vrrp_peers.empty());
  in.vrrp = true;
  p = firewallPlanFor("{}", in);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->allow_vrrp);
  EXPECT_EQ(p->vrrp_peers, in.vrrp_peers);
}

}  // namespace
}  // namespace banyan::agent::api
