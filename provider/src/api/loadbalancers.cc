// /v2/lbaas/loadbalancers (octavia/api/v2/controllers/load_balancer.py).
#include <arpa/inet.h>

#include <functional>
#include <map>

#include "api/api_impl.h"
#include "api/cert_checks.h"
#include "banyan/common/logging.h"

namespace banyan::provider::api {
namespace {

const std::vector<FieldSpec>& lbFields() {
  static const std::vector<FieldSpec> f = [] {
    std::vector<FieldSpec> v;
    v.push_back({.name = "name"});
    v.push_back({.name = "description"});
    v.push_back({.name = "admin_state_up", .type = FieldType::kBool});
    v.push_back({.name = "vip_address", .type = FieldType::kIpAddress, .on_put = false});
    v.push_back({.name = "vip_port_id", .type = FieldType::kUuid, .on_put = false});
    v.push_back({.name = "vip_subnet_id", .type = FieldType::kUuid, .on_put = false});
    v.push_back({.name = "vip_network_id", .type = FieldType::kUuid, .on_put = false});
    v.push_back({.name = "vip_qos_policy_id", .type = FieldType::kUuid});
    v.push_back({.name = "additional_vips", .type = FieldType::kList, .on_put = false});
    v.push_back({.name = "project_id", .on_put = false, .max_len = 36});
    v.push_back({.name = "tenant_id", .on_put = false, .max_len = 36});
    v.push_back({.name = "provider", .on_put = false, .max_len = 64});
    v.push_back({.name = "flavor_id", .type = FieldType::kUuid, .on_put = false});
    v.push_back({.name = "availability_zone", .on_put = false});
    v.push_back({.name = "tags", .type = FieldType::kStringList});
    v.push_back({.name = "listeners", .type = FieldType::kList, .on_put = false});
    v.push_back({.name = "pools", .type = FieldType::kList, .on_put = false});
    return v;
  }();
  return f;
}

// A stand-in address until the provider allocates the real one (noop_driver keeps it,
// as Octavia's no-op network driver does): a host of the subnet picked from the load
// balancer id, else one of TEST-NET-2 (198.51.100.0/24).
std::string placeholderVip(const std::string& lb_id, const std::string& cidr) {
  unsigned h = 0;
  for (char c : lb_id) h = h * 31 + static_cast<unsigned char>(c);
  size_t slash = cidr.find('/');
  if (slash != std::string::npos && !isIpv6(cidr.substr(0, slash))) {
    unsigned char b[4];
    int prefix = std::stoi(cidr.substr(slash + 1));
    std::string base = cidr.substr(0, slash);
    if (prefix <= 29 && inet_pton(AF_INET, base.c_str(), b) == 1) {
      uint32_t net = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
      uint32_t size = prefix == 0 ? 0xFFFFFFFFu : (1u << (32 - prefix));
      // Skip the network, the gateway (.1) and the broadcast addresses.
      uint32_t addr = net + 2 + h % (size - 3);
      return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 255) + "." +
             std::to_string((addr >> 8) & 255) + "." + std::to_string(addr & 255);
    }
  }
  if (slash != std::string::npos && isIpv6(cidr.substr(0, slash))) {
    std::string base = cidr.substr(0, slash);
    if (base.size() >= 2 && base.compare(base.size() - 2, 2, "::") == 0)
      return base + std::to_string(2 + h % 9000);
  }
  return "198.51.100." + std::to_string(2 + h % 250);
}

}  // namespace

common::HttpResponse Api::lbList(Call& c) {
  auto scope = listScope(c, "loadbalancer");
  store::Query q;
  q.kind = kLb;
  if (scope) q.project_id = *scope;
  return listObjects(c, std::move(q), "loadbalancers", "loadbalancers_links", {});
}

common::HttpResponse Api::lbShow(Call& c) {
  JsonDoc out;
  read([&](Txn& t) {
    Obj lb = loadToShow(t, kLb, c.args[0], "Load Balancer");
    authorize(c, "loadbalancer:get_one", lb.rec.project_id);
    out = render(t, lb);
  });
  return json(200, "loadbalancer", applyFields(c, std::move(out)));
}

common::HttpResponse Api::lbCreate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "loadbalancer");
  auto& ba = body.GetAllocator();
  validateBody(body, lbFields(), BodyMode::kPost, "loadbalancer", ba);

  std::string project = jstring(body, "project_id");
  if (project.empty()) project = jstring(body, "tenant_id");
  if (project.empty()) project = c.creds.project_id;
  if (project.empty()) throwApi(400, "Missing project ID in request where one is required.");
  authorize(c, "loadbalancer:post", project);

  if (!jgetNonNull(body, "vip_port_id") && !jgetNonNull(body, "vip_network_id") &&
      !jgetNonNull(body, "vip_subnet_id"))
    throwApi(400, "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.");
  if (const JsonValue* av = jgetNonNull(body, "additional_vips")) {
    static const std::vector<FieldSpec> av_fields = {
        {.name = "subnet_id", .type = FieldType::kUuid, .required = true},
        {.name = "ip_address", .type = FieldType::kIpAddress}};
    for (auto& item : const_cast<JsonValue*>(av)->GetArray())
      validateBody(item, av_fields, BodyMode::kPost, "additional_vips", ba);
  }

  std::string provider_req = jstring(body, "provider");
  std::string id = newUuid();
  JsonDoc response;
  auto transaction = [&](Txn& t) {
    std::string provider = provider_req;
    std::string flavor_id = jstring(body, "flavor_id");
    if (!flavor_id.empty()) {
      auto flavor = load(t, kFlavor, flavor_id);
      if (!flavor) throwValidation("Invalid flavor_id.");
      if (!jbool(flavor->doc, "enabled", true))
        throwApi(400, "The selected flavor is not allowed in this deployment: " + flavor_id);
      auto profile = load(t, kFlavorProfile, flavor->str("flavor_profile_id"));
      std::string fp_provider = profile ? profile->str("provider_name") : "";
      if (provider.empty()) provider = fp_provider;
      else if (!fp_provider.empty() && fp_provider != provider)
        throwApi(400, "Flavor '" + flavor_id + "' is not compatible with provider '" + provider + "'");
    }
    std::string az = jstring(body, "availability_zone");
    if (!az.empty()) {
      auto zone = load(t, kAz, az);
      if (!zone) throwValidation("Invalid availability zone name.");
      if (!jbool(zone->doc, "enabled", true))
        throwApi(400, "The selected availability_zone is not allowed in this deployment: " + az);
    }
    provider = resolveProvider(provider);
    checkQuota(t, project, kLb);

    Obj lb = newObj(kLb, id, project, "", id);
    fillCommon(lb, body, true);
    auto& a = lb.alloc();
    // VIP resolution (Octavia: port, then network, then subnet). With configured
    // networks the subnet/network must be one of them; the provider allocates the
    // address, until then a stand-in from the subnet is shown.
    // noop_driver builds nothing, so like Octavia's no-op network driver it takes any id.
    bool check_networks = driverFor(provider) == Driver::kBanyan;
    std::string subnet_id = jstring(body, "vip_subnet_id");
    std::string network_id = jstring(body, "vip_network_id");
    const NetworkView* net = nullptr;
    if (!subnet_id.empty()) net = checkSubnet(subnet_id, check_networks);
    if (!network_id.empty()) {
      const NetworkView* by_network = checkNetwork(network_id, check_networks);
      if (net && by_network && net != by_network)
        throwValidation("Subnet " + subnet_id + " is not on network " + network_id + ".");
      if (!net) net = by_network;
    }
    if (net) {
      if (subnet_id.empty()) subnet_id = net->id;
      if (network_id.empty()) network_id = net->id;
    }
    std::string vip_address = jstring(body, "vip_address");
    if (vip_address.empty()) vip_address = placeholderVip(id, net ? net->cidr : "");
    jsetStr(lb.doc, "vip_address", vip_address, a);
    jsetStr(lb.doc, "vip_port_id", jstring(body, "vip_port_id", newUuid()), a);
    jsetStr(lb.doc, "vip_subnet_id", subnet_id.empty() ? newUuid() : subnet_id, a);
    jsetStr(lb.doc, "vip_network_id", network_id.empty() ? newUuid() : network_id, a);
    const JsonValue* qos = jgetNonNull(body, "vip_qos_policy_id");
    jset(lb.doc, "vip_qos_policy_id", qos ? JsonValue(*qos, a) : JsonValue(), a);
    const JsonValue* av = jgetNonNull(body, "additional_vips");
    jset(lb.doc, "additional_vips", av ? JsonValue(*av, a) : JsonValue(rapidjson::kArrayType), a);
    jsetStr(lb.doc, "provider", provider, a);
    jset(lb.doc, "flavor_id", flavor_id.empty() ? JsonValue() : jstr(flavor_id, a), a);
    jset(lb.doc, "availability_zone", az.empty() ? JsonValue() : jstr(az, a), a);
    insert(t, lb);

    // Full-graph create: named pools first, so listeners and L7 policies can refer to them.
    std::map<std::string, std::string> pool_by_name;
    std::vector<std::string> pool_ids, listener_ids;
    auto definePool = [&](JsonValue& p, const Obj* listener) -> std::string {
      std::string name = jstring(p, "name");
      if (name.empty())
        throwValidation("Pools must be named when creating a fully populated loadbalancer.");
      bool reference = p.MemberCount() == 1;
      if (reference) {
        auto it = pool_by_name.find(name);
        if (it == pool_by_name.end())
          throwValidation("Pool '" + name + "' was referenced but no definition was found.");
        if (listener) {
          Obj pool = mustLoad(t, kPool, it->second, "Pool");
          checkPoolListenerProtocols(pool.str("protocol"), listener->str("protocol"));
        }
        return it->second;
      }
      if (pool_by_name.count(name)) throwValidation("Pool names must be unique: " + name);
      JsonValue copy(p, ba);
      Obj pool = createPoolObj(c, t, lb, copy, listener);
      pool_by_name[name] = pool.id();
      pool_ids.push_back(pool.id());
      return pool.id();
    };
    if (const JsonValue* pools = jgetNonNull(body, "pools"))
      for (auto& p : const_cast<JsonValue*>(pools)->GetArray()) {
        if (p.MemberCount() == 1 && jhas(p, "name"))
          throwValidation("Pool '" + jstring(p, "name") + "' was referenced but no definition was found.");
        definePool(p, nullptr);
      }
    if (const JsonValue* listeners = jgetNonNull(body, "listeners")) {
      for (auto& lv : const_cast<JsonValue*>(listeners)->GetArray()) {
        JsonValue l(lv, ba);
        JsonValue default_pool, l7policies;
        if (JsonValue* dp = l.HasMember("default_pool") ? &l["default_pool"] : nullptr) {
          default_pool = JsonValue(*dp, ba);
          l.RemoveMember("default_pool");
        }
        if (l.HasMember("l7policies")) {
          l7policies = JsonValue(l["l7policies"], ba);
          l.RemoveMember("l7policies");
        }
        Obj listener = createListenerObj(c, t, lb, l);
        listener_ids.push_back(listener.id());
        if (default_pool.IsObject()) {
          std::string pid = definePool(default_pool, &listener);
          jsetStr(listener.doc, "default_pool_id", pid, listener.alloc());
          save(t, listener);
        }
        if (l7policies.IsArray()) {
          for (auto& pv : l7policies.GetArray()) {
            if (!pv.IsObject()) throwInvalidField("l7policies", toJson(pv), "Wrong type.");
            JsonValue pol(pv, ba);
            if (pol.HasMember("redirect_pool") && pol["redirect_pool"].IsObject()) {
              std::string pid = definePool(pol["redirect_pool"], &listener);
              pol.RemoveMember("redirect_pool");
              jsetStr(pol, "redirect_pool_id", pid, ba);
            }
            createL7PolicyObj(c, t, listener, pol);
          }
        }
      }
    }
    dispatch(c, t, lb, "loadbalancer.create", id, &body);

    // Octavia answers a create with the full graph expanded.
    response = render(t, lb);
    auto& ra = response.GetAllocator();
    auto full = [&](const char* kind, const std::string& oid) {
      Obj o = mustLoad(t, kind, oid, kind);
      JsonDoc d = render(t, o);
      return JsonValue(d, ra);
    };
    JsonValue ls(rapidjson::kArrayType), ps(rapidjson::kArrayType);
    for (const auto& lid : listener_ids) {
      JsonValue l = full(kListener, lid);
      JsonValue pols(rapidjson::kArrayType);
      store::Query q{kL7Policy, {}, lid, {}, {}};
      for (auto& pol : loadAll(t, q)) {
        JsonDoc pd = render(t, pol);
        JsonValue pj(pd, ra);
        JsonValue rules(rapidjson::kArrayType);
        store::Query rq{kL7Rule, {}, pol.id(), {}, {}};
        for (auto& r : loadAll(t, rq)) {
          JsonDoc rd = render(t, r);
          rules.PushBack(JsonValue(rd, ra), ra);
        }
        jset(pj, "rules", std::move(rules), ra);
        pols.PushBack(std::move(pj), ra);
      }
      jset(l, "l7policies", std::move(pols), ra);
      ls.PushBack(std::move(l), ra);
    }
    for (const auto& pid : pool_ids) {
      JsonValue p = full(kPool, pid);
      JsonValue members(rapidjson::kArrayType);
      store::Query mq{kMember, {}, pid, {}, {}};
      for (auto& m : loadAll(t, mq)) {
        JsonDoc md = render(t, m);
        members.PushBack(JsonValue(md, ra), ra);
      }
      jset(p, "members", std::move(members), ra);
      store::Query hq{kHm, {}, pid, {}, {}};
      auto hms = loadAll(t, hq);
      if (!hms.empty()) {
        JsonDoc hd = render(t, hms.front());
        jset(p, "healthmonitor", JsonValue(hd, ra), ra);
      } else {
        jset(p, "healthmonitor", JsonValue(), ra);
      }
      ps.PushBack(std::move(p), ra);
    }
    jset(response, "listeners", std::move(ls), ra);
    jset(response, "pools", std::move(ps), ra);
  };
  // Certificate references of the graph's listeners and pools are read with no
  // transaction open (cert_checks.h): the write may run more than once, so everything
  // it builds lives inside it (the load balancer's id is fixed above).
  runWithCertChecksOutside([&] { write(transaction); });
  LB_INFO("load balancer accepted lb=%s project=%s req=%s", id.c_str(), project.c_str(), c.request_id.c_str());
  return json(201, "loadbalancer", std::move(response));
}

common::HttpResponse Api::lbUpdate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "loadbalancer");
  validateBody(body, lbFields(), BodyMode::kPut, "loadbalancer", body.GetAllocator());
  JsonDoc out;
  write([&](Txn& t) {
    auto lr = t.lockKey("loadbalancer:" + c.args[0]);
    if (!lr.ok()) throwApi(503, "database busy");
    Obj lb = mustLoad(t, kLb, c.args[0], "Load Balancer");
    authorize(c, "loadbalancer:put", lb.rec.project_id);
    std::string st = lb.str("provisioning_status");
    if (st != "ACTIVE") throwApi(409, "Invalid state " + st + " of loadbalancer resource " + lb.id());
    auto& a = lb.alloc();
    for (auto& m : body.GetObject()) {
      std::string key(m.name.GetString(), m.name.GetStringLength());
      if (key == "admin_state_up") {
        // WSME coerces null to false here, as Octavia does.
        jset(lb.doc, key, JsonValue(m.value.IsBool() && m.value.GetBool()), a);
      } else if (key == "tags") {
        jset(lb.doc, key, m.value.IsNull() ? JsonValue(rapidjson::kArrayType) : JsonValue(m.value, a), a);
      } else {
        jset(lb.doc, key, JsonValue(m.value, a), a);
      }
    }
    setStatus(lb, "PENDING_UPDATE");
    touch(lb);
    save(t, lb);
    dispatch(c, t, lb, "loadbalancer.update", lb.id(), &body);
    out = render(t, lb);
  });
  return json(200, "loadbalancer", std::move(out));
}

void Api::deleteTree(Txn& t, Obj& o, bool mark_only) {
  static const std::map<std::string, std::vector<const char*>> children = {
      {kLb, {kListener, kPool}}, {kListener, {kL7Policy}}, {kPool, {kMember, kHm}},
      {kL7Policy, {kL7Rule}}};
  auto it = children.find(o.rec.kind);
  if (it != children.end()) {
    for (const char* kind : it->second) {
      store::Query q{kind, {}, o.id(), {}, {}};
      for (auto& child : loadAll(t, q)) deleteTree(t, child, mark_only);
    }
  }
  if (mark_only) {
    setStatus(o, "PENDING_DELETE");
    save(t, o);
  } else {
    erase(t, o.rec.kind, o.id());
  }
}

common::HttpResponse Api::lbDelete(Call& c) {
  bool cascade = false;
  for (const auto& [k, v] : c.http.query_params)
    if (k == "cascade") cascade = boolFromString(v);
  write([&](Txn& t) {
    auto lr = t.lockKey("loadbalancer:" + c.args[0]);
    if (!lr.ok()) throwApi(503, "database busy");
    Obj lb = mustLoad(t, kLb, c.args[0], "Load Balancer");
    authorize(c, "loadbalancer:delete", lb.rec.project_id);
    std::string st = lb.str("provisioning_status");
    if (st != "ACTIVE" && st != "ERROR")
      throwApi(409, "Invalid state " + st + " of loadbalancer resource " + lb.id());
    store::Query lq{kListener, {}, lb.id(), {}, {}};
    store::Query pq{kPool, {}, lb.id(), {}, {}};
    bool has_children = !loadAll(t, lq).empty() || !loadAll(t, pq).empty();
    if (has_children && !cascade)
      throwApi(400, "Cannot delete Load Balancer " + lb.id() + " - it has children");
    // Everything is marked first; noop_driver removes the rows right after commit, the
    // banyan controller when the amphorae are gone.
    deleteTree(t, lb, true);
    dispatch(c, t, lb, "loadbalancer.delete", lb.id(), nullptr, cascade);
  });
  return noContent();
}

JsonDoc Api::statusTree(Txn& t, const Obj& lb) {
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto base = [&](const Obj& o) {
    JsonValue v(rapidjson::kObjectType);
    v.AddMember("id", jstr(o.id(), a), a);
    v.AddMember("name", jstr(o.str("name"), a), a);
    v.AddMember("operating_status", jstr(o.str("operating_status"), a), a);
    v.AddMember("provisioning_status", jstr(o.str("provisioning_status"), a), a);
    return v;
  };
  JsonValue lbv = base(lb);
  JsonValue listeners(rapidjson::kArrayType);
  store::Query lq{kListener, {}, lb.id(), {}, {}};
  for (auto& l : loadAll(t, lq)) {
    JsonValue lv = base(l);
    JsonValue pools(rapidjson::kArrayType);
    std::vector<std::string> pool_ids;
    if (!l.str("default_pool_id").empty()) pool_ids.push_back(l.str("default_pool_id"));
    store::Query polq{kL7Policy, {}, l.id(), {}, {}};
    for (auto& pol : loadAll(t, polq)) {
      std::string rp = pol.str("redirect_pool_id");
      if (!rp.empty() && std::find(pool_ids.begin(), pool_ids.end(), rp) == pool_ids.end())
        pool_ids.push_back(rp);
    }
    for (const auto& pid : pool_ids) {
      auto pool = load(t, kPool, pid);
      if (!pool) continue;
      JsonValue pv = base(*pool);
      store::Query hq{kHm, {}, pid, {}, {}};
      auto hms = loadAll(t, hq);
      if (!hms.empty()) {
        JsonValue hv = base(hms.front());
        hv.AddMember("type", jstr(hms.front().str("type"), a), a);
        pv.AddMember("health_monitor", std::move(hv), a);
      }
      JsonValue members(rapidjson::kArrayType);
      store::Query mq{kMember, {}, pid, {}, {}};
      for (auto& m : loadAll(t, mq)) {
        JsonValue mv = base(m);
        mv.AddMember("address", jstr(m.str("address"), a), a);
        mv.AddMember("protocol_port", JsonValue(jint(m.doc, "protocol_port")), a);
        members.PushBack(std::move(mv), a);
      }
      pv.AddMember("members", std::move(members), a);
      pools.PushBack(std::move(pv), a);
    }
    lv.AddMember("pools", std::move(pools), a);
    listeners.PushBack(std::move(lv), a);
  }
  lbv.AddMember("listeners", std::move(listeners), a);
  JsonValue statuses(rapidjson::kObjectType);
  statuses.AddMember("loadbalancer", std::move(lbv), a);
  d.AddMember("statuses", std::move(statuses), a);
  return d;
}

common::HttpResponse Api::lbStatus(Call& c) {
  JsonDoc out;
  read([&](Txn& t) {
    Obj lb = mustLoad(t, kLb, c.args[0], "Load Balancer");
    authorize(c, "loadbalancer:get_status", lb.rec.project_id);
    out = statusTree(t, lb);
  });
  return jsonValue(200, out);
}

namespace {
const char* const kStatKeys[] = {"bytes_in", "bytes_out", "active_connections", "total_connections",
                                 "request_errors"};
}

common::HttpResponse Api::lbStats(Call& c) {
  int64_t sums[5] = {0, 0, 0, 0, 0};
  read([&](Txn& t) {
    Obj lb = mustLoad(t, kLb, c.args[0], "Load Balancer");
    authorize(c, "loadbalancer:get_stats", lb.rec.project_id);
    store::Query lq{kListener, {}, lb.id(), {}, {}};
    for (auto& l : loadAll(t, lq)) {
      auto s = load(t, kListenerStats, l.id());
      if (!s) continue;
      for (int i = 0; i < 5; ++i) sums[i] += jint(s->doc, kStatKeys[i]);
    }
  });
  JsonDoc d(rapidjson::kObjectType);
  for (int i = 0; i < 5; ++i) d.AddMember(rapidjson::StringRef(kStatKeys[i]), JsonValue(sums[i]), d.GetAllocator());
  return json(200, "stats", std::move(d));
}

common::HttpResponse Api::listenerStats(Call& c) {
  int64_t sums[5] = {0, 0, 0, 0, 0};
  read([&](Txn& t) {
    Obj l = mustLoad(t, kListener, c.args[0], "Listener");
    authorize(c, "listener:get_stats", l.rec.project_id);
    auto s = load(t, kListenerStats, l.id());
    if (s)
      for (int i = 0; i < 5; ++i) sums[i] = jint(s->doc, kStatKeys[i]);
  });
  JsonDoc d(rapidjson::kObjectType);
  for (int i = 0; i < 5; ++i) d.AddMember(rapidjson::StringRef(kStatKeys[i]), JsonValue(sums[i]), d.GetAllocator());
  return json(200, "stats", std::move(d));
}

common::HttpResponse Api::lbFailover(Call& c) {
  write([&](Txn& t) {
    auto lr = t.lockKey("loadbalancer:" + c.args[0]);
    if (!lr.ok()) throwApi(503, "database busy");
    Obj lb = mustLoad(t, kLb, c.args[0], "Load Balancer");
    authorize(c, "loadbalancer:put_failover", lb.rec.project_id);
    std::string st = lb.str("provisioning_status");
    if (st != "ACTIVE" && st != "ERROR")
      throwApi(409, "Invalid state " + st + " of loadbalancer resource " + lb.id());
    setStatus(lb, "PENDING_UPDATE");
    touch(lb);
    save(t, lb);
    dispatch(c, t, lb, "loadbalancer.failover", lb.id());
  });
  LB_INFO("load balancer failover requested lb=%s req=%s", c.args[0].c_str(), c.request_id.c_str());
  return noContent(202);
}

}  // namespace banyan::provider::api
