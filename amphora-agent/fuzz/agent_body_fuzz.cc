// The agent's parsers of controller-sent request bodies on hostile bytes. The first
// byte (mod 6) picks the parser, the rest is the body:
//   0 PUT /1.0/agent-config (mergeAgentConfig)   3 PUT /1.0/vrrp
//   1 the firewall plan of a proxy document      4 PUT /1.0/plug/vip/203.0.113.5
//   2 a certificate bundle / CA-CRL file         5 PUT /1.0/plug/network
// 3-5 go through AgentApi::handle with the noop system driver and no proxy: the only
// answers allowed are success and 400; anything else (or a crash) is a finding.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "api/agent_api.h"
#include "api/firewall_plan.h"
#include "certs/certs.h"

namespace {

using namespace banyan::agent;

struct Agent {
  Agent() {
    char tmpl[] = "/tmp/agent-body-fuzz-XXXXXX";
    dir = ::mkdtemp(tmpl);
    control = std::make_unique<proxy_control::ProxyControl>(dir + "/none.sock", 100);
    applier = std::make_unique<apply::ConfigApplier>(dir + "/proxy.json", "/nonexistent", *control);
    certs = std::make_unique<certs::CertStore>(dir + "/certs");
    heartbeat = std::make_unique<heartbeat::HeartbeatSender>(
        "fuzz", *control, [] { return uint64_t{0}; }, heartbeat::HeartbeatSettings{});
    api::ApiOptions o;
    o.amphora_id = "fuzz";
    o.state_dir = dir;
    api = std::make_unique<api::AgentApi>(
        o, api::ApiDeps{*applier, *certs, *control, *heartbeat, system});
  }
  std::string dir;
  std::unique_ptr<proxy_control::ProxyControl> control;
  std::unique_ptr<apply::ConfigApplier> applier;
  std::unique_ptr<certs::CertStore> certs;
  std::unique_ptr<heartbeat::HeartbeatSender> heartbeat;
  api::NoopSystemOps system;
  std::unique_ptr<api::AgentApi> api;
};

void put(const char* path, const std::string& body) {
  static Agent* agent = new Agent();  // one per process; the temp dir is left for the OS
  banyan::common::HttpRequest r;
  r.method = "PUT";
  r.path = path;
  r.raw_path = path;
  r.body = body;
  r.peer_address = "127.0.0.1";
  auto answer = agent->api->handle(r);
  if (answer.status != 200 && answer.status != 202 && answer.status != 400) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: {
      (void)api::mergeAgentConfig(heartbeat::HeartbeatSettings{}, body);
      break;
    }
    case 1: {
      api::FirewallInputs in;
      in.management_cidrs = {"198.51.100.0/24"};
      auto plan = api::firewallPlanFor(body, in);
      if (plan.ok()) {
        // Every listener's VIP is one of the VIPs, and a plan derives the same twice.
        for (const auto& l : plan->listeners) {
          bool found = false;
          for (const auto& v : plan->vips) found |= v == l.vip;
          if (!found || l.port == 0) __builtin_trap();
        }
        auto again = api::firewallPlanFor(body, in);
        if (!again.ok() || !(again.value() == plan.value())) __builtin_trap();
      }
      break;
    }
    case 2: {
      // A TLS bundle is always a valid certificate file as well.
      bool tls = certs::parseBundle(body).ok();
      auto file = certs::parseCertificateFile(body);
      if (tls && !file.ok()) __builtin_trap();
      break;
    }
    case 3:
      put("/1.0/vrrp", body);
      break;
    case 4:
      put("/1.0/plug/vip/203.0.113.5", body);
      break;
    case 5:
      put("/1.0/plug/network", body);
      break;
  }
  return 0;
}
