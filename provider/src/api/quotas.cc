// /v2/lbaas/quotas (octavia/api/v2/controllers/quotas.py, types/quotas.py).
#include "api/api_impl.h"

namespace banyan::provider::api {
namespace {

struct Item {
  const char* name;      // stored and GET-one spelling (the old one)
  const char* new_name;  // spelling quota unset and list use
};
const Item kItems[] = {{"load_balancer", "loadbalancer"}, {"listener", "listener"}, {"member", "member"},
                       {"pool", "pool"}, {"health_monitor", "healthmonitor"}, {"l7policy", "l7policy"},
                       {"l7rule", "l7rule"}};

int64_t defaultFor(const QuotaDefaults& d, const std::string& name) {
  if (name == "load_balancer") return d.load_balancer;
  if (name == "listener") return d.listener;
  if (name == "member") return d.member;
  if (name == "pool") return d.pool;
  if (name == "health_monitor") return d.health_monitor;
  if (name == "l7policy") return d.l7policy;
  return d.l7rule;
}

const std::vector<FieldSpec>& quotaFields() {
  static const std::vector<FieldSpec> f = [] {
    std::vector<FieldSpec> v;
    for (const auto& item : kItems) {
      v.push_back({.name = item.name, .type = FieldType::kInt, .min = -1, .max = 2000000000});
      if (std::string(item.name) != item.new_name)
        v.push_back({.name = item.new_name, .type = FieldType::kInt, .min = -1, .max = 2000000000});
    }
    return v;
  }();
  return f;
}

}  // namespace

common::HttpResponse Api::quotaList(Call& c) {
  auto scope = listScope(c, "quota");
  std::vector<JsonDoc> items;
  read([&](Txn& t) {
    store::Query q;
    q.kind = kQuota;
    if (scope) q.project_id = *scope;
    for (auto& o : loadAll(t, q)) {
      JsonDoc d(rapidjson::kObjectType);
      auto& a = d.GetAllocator();
      d.AddMember("project_id", jstr(o.id(), a), a);
      if (scope && o.id() != *scope) continue;
      for (const auto& item : kItems) {
        const JsonValue* v = jgetNonNull(o.doc, item.name);
        d.AddMember(rapidjson::StringRef(item.new_name), v ? JsonValue(*v, a) : JsonValue(), a);
        if (std::string(item.name) != item.new_name)
          d.AddMember(rapidjson::StringRef(item.name), v ? JsonValue(*v, a) : JsonValue(), a);
      }
      items.push_back(std::move(d));
    }
  });
  // Quotas have no id: the marker and links use project_id.
  for (auto& d : items) d.AddMember("id", JsonValue(*jget(d, "project_id"), d.GetAllocator()), d.GetAllocator());
  auto resp = listResponse(c, "quotas", "quotas_links", std::move(items), {});
  auto doc = parseJson(resp.body);
  if (doc) {
    for (auto& q : (*doc)["quotas"].GetArray()) q.RemoveMember("id");
    resp.body = toJson(*doc);
  }
  return resp;
}

common::HttpResponse Api::quotaShow(Call& c) {
  const std::string& project = c.args[0];
  authorize(c, "quota:get_one", project);
  JsonDoc d(rapidjson::kObjectType);
  read([&](Txn& t) {
    auto q = load(t, kQuota, project);
    auto& a = d.GetAllocator();
    for (const auto& item : kItems) {
      const JsonValue* v = q ? jgetNonNull(q->doc, item.name) : nullptr;
      d.AddMember(rapidjson::StringRef(item.name),
                  v ? JsonValue(*v, a) : JsonValue(defaultFor(opts_.quotas, item.name)), a);
    }
  });
  return json(200, "quota", std::move(d));
}

common::HttpResponse Api::quotaDefaults(Call& c) {
  authorize(c, "quota:get_defaults", c.args[0]);
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  for (const auto& item : kItems)
    d.AddMember(rapidjson::StringRef(item.name), JsonValue(defaultFor(opts_.quotas, item.name)), a);
  return json(200, "quota", std::move(d));
}

common::HttpResponse Api::quotaUpdate(Call& c) {
  const std::string& project = c.args[0];
  JsonDoc body = parseRootBody(c.http.body, "quota");
  validateBody(body, quotaFields(), BodyMode::kPut, "quota", body.GetAllocator());
  authorize(c, "quota:put", project);
  JsonDoc out(rapidjson::kObjectType);
  write([&](Txn& t) {
    auto existing = load(t, kQuota, project);
    Obj q = existing ? std::move(*existing) : newObj(kQuota, project, project, "", "");
    auto& a = q.alloc();
    for (const auto& item : kItems) {
      // The old and the new spelling are both accepted; the old one wins, as in Octavia.
      const JsonValue* v = jget(body, item.name);
      if (!v) v = jget(body, item.new_name);
      if (!v) continue;
      jset(q.doc, item.name, JsonValue(*v, a), a);
    }
    if (existing) save(t, q);
    else insert(t, q);
    auto& oa = out.GetAllocator();
    for (const auto& item : kItems) {
      const JsonValue* v = jgetNonNull(q.doc, item.name);
      out.AddMember(rapidjson::StringRef(item.name),
                    v ? JsonValue(*v, oa) : JsonValue(defaultFor(opts_.quotas, item.name)), oa);
    }
  });
  return json(202, "quota", std::move(out));
}

common::HttpResponse Api::quotaDelete(Call& c) {
  const std::string& project = c.args[0];
  authorize(c, "quota:delete", project);
  write([&](Txn& t) {
    if (!load(t, kQuota, project)) throwNotFound("Quotas", project);
    erase(t, kQuota, project);
  });
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  for (const auto& item : kItems)
    d.AddMember(rapidjson::StringRef(item.name), JsonValue(defaultFor(opts_.quotas, item.name)), a);
  return json(202, "quota", std::move(d));
}

}  // namespace banyan::provider::api
