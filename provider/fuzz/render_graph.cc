// Fuzz target: the renderer over arbitrary stored bodies (a damaged or hand-edited
// database must give an error, never a crash or a document that is not JSON).
// Input: one record per line, "<kind> <id> <parent_id> <JSON body>"; the first
// "loadbalancer" line is the load balancer, the others its children.
#include <rapidjson/document.h>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "render/render.h"

using banyan::provider::render::LoadBalancerGraph;
using banyan::provider::render::RenderContext;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  LoadBalancerGraph g;
  g.loadbalancer.kind = "loadbalancer";
  g.loadbalancer.id = "lb";
  g.loadbalancer.body = "{}";
  bool have_lb = false;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    banyan::provider::store::Record r;
    if (!(fields >> r.kind >> r.id >> r.parent_id)) continue;
    std::getline(fields, r.body);
    r.load_balancer_id = "lb";
    if (r.kind == "loadbalancer" && !have_lb) {
      g.loadbalancer = r;
      have_lb = true;
    } else if (r.kind == "listener") {
      g.listeners.push_back(r);
    } else if (r.kind == "pool") {
      g.pools.push_back(r);
    } else if (r.kind == "member") {
      g.members.push_back(r);
    } else if (r.kind == "healthmonitor") {
      g.healthmonitors.push_back(r);
    } else if (r.kind == "l7policy") {
      g.l7policies.push_back(r);
    } else if (r.kind == "l7rule") {
      g.l7rules.push_back(r);
    }
  }
  RenderContext plain;
  plain.vip_address = "203.0.113.10";
  RenderContext full = plain;
  full.include_pending_delete = true;
  full.additional_vip_addresses = {"2001:db8::10"};
  full.certificate_paths = {{"ref-a", "/certs/a.pem"}, {"ref-b", "/certs/b.pem"}};
  for (const RenderContext* ctx : {&plain, &full}) {
    auto doc = banyan::provider::render::renderProxyConfig(g, *ctx);
    if (!doc.ok()) continue;
    rapidjson::Document d;
    d.Parse(doc.value().c_str());
    if (d.HasParseError() || !d.IsObject()) abort();
  }
  return 0;
}
