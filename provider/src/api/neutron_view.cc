// A read-only, Neutron-shaped view of the networks this deployment offers
// (ApiOptions::networks), and the VIP/member subnet checks Octavia does against Neutron.
// Without Neutron (the netns drivers) this is what lets `openstack loadbalancer create
// --vip-subnet-id` resolve its argument; the CLI calls GET /v2.0/subnets?id=... on the
// endpoint it was given.
#include "api/api_impl.h"

namespace banyan::provider::api {
namespace {

JsonDoc networkJson(const NetworkView& n, const std::string& project) {
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("id", jstr(n.id, a), a);
  d.AddMember("name", jstr(n.name, a), a);
  d.AddMember("status", "ACTIVE", a);
  d.AddMember("admin_state_up", true, a);
  d.AddMember("shared", true, a);
  d.AddMember("subnets", jstringArray({n.id}, a), a);
  d.AddMember("project_id", jstr(project, a), a);
  d.AddMember("tenant_id", jstr(project, a), a);
  d.AddMember("mtu", 1500, a);
  return d;
}

JsonDoc subnetJson(const NetworkView& n, const std::string& project) {
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("id", jstr(n.id, a), a);
  d.AddMember("name", jstr(n.name, a), a);
  d.AddMember("network_id", jstr(n.id, a), a);
  d.AddMember("cidr", jstr(n.cidr, a), a);
  d.AddMember("ip_version", n.ip_version, a);
  d.AddMember("gateway_ip", jstr(n.gateway_ip, a), a);
  d.AddMember("enable_dhcp", false, a);
  d.AddMember("project_id", jstr(project, a), a);
  d.AddMember("tenant_id", jstr(project, a), a);
  return d;
}

common::HttpResponse neutronList(Api& api, Call& c, const char* key, bool subnets) {
  std::vector<JsonDoc> items;
  for (const auto& n : api.options().networks)
    items.push_back(subnets ? subnetJson(n, c.creds.project_id) : networkJson(n, c.creds.project_id));
  // Neutron ignores filters it does not know; keep only exact id/name/network_id/cidr ones.
  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [k, v] : c.http.query_params)
    if (k == "id" || k == "name" || k == "network_id" || k == "cidr" || k == "fields") query.emplace_back(k, v);
  ListParams p = parseListParams(query, 0);
  ListPage page = applyListParams(std::move(items), p, c.path_url, {}, {"id", "name", "network_id", "cidr"});
  JsonDoc out(rapidjson::kObjectType);
  auto& a = out.GetAllocator();
  JsonValue arr(rapidjson::kArrayType);
  for (auto& i : page.items) arr.PushBack(JsonValue(i, a), a);
  out.AddMember(rapidjson::StringRef(key), std::move(arr), a);
  return api.jsonValue(200, out);
}

}  // namespace

const NetworkView* Api::checkSubnet(const std::string& subnet_id, bool required) const {
  if (opts_.networks.empty()) return nullptr;
  for (const auto& n : opts_.networks)
    if (n.id == subnet_id) return &n;
  if (!required) return nullptr;
  throwApi(400, "Subnet " + subnet_id + " not found.");
}

const NetworkView* Api::checkNetwork(const std::string& network_id, bool required) const {
  if (opts_.networks.empty()) return nullptr;
  for (const auto& n : opts_.networks)
    if (n.id == network_id) return &n;
  if (!required) return nullptr;
  throwApi(400, "Network " + network_id + " not found.");
}

common::HttpResponse Api::neutronNetworks(Call& c) {
  if (opts_.networks.empty()) throwApi(404, "The resource could not be found.");
  return neutronList(*this, c, "networks", false);
}

common::HttpResponse Api::neutronSubnets(Call& c) {
  if (opts_.networks.empty()) throwApi(404, "The resource could not be found.");
  return neutronList(*this, c, "subnets", true);
}

common::HttpResponse Api::neutronNetwork(Call& c) {
  for (const auto& n : opts_.networks)
    if (n.id == c.args[0]) return json(200, "network", networkJson(n, c.creds.project_id));
  throwApi(404, "Network " + c.args[0] + " could not be found.");
}

common::HttpResponse Api::neutronSubnet(Call& c) {
  for (const auto& n : opts_.networks)
    if (n.id == c.args[0]) return json(200, "subnet", subnetJson(n, c.creds.project_id));
  throwApi(404, "Subnet " + c.args[0] + " could not be found.");
}

}  // namespace banyan::provider::api
