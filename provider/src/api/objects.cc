// Plumbing shared by every resource: transactions, object load/save, locking, quotas,
// providers, rendering and list responses.
#include <algorithm>

#include "api/api_impl.h"
#include "banyan/common/logging.h"
#include "controller/settle.h"
#include "render/render.h"

namespace banyan::provider::api {
namespace {

[[noreturn]] void storeFailed(const common::Error& e) {
  if (e.code == common::ErrorCode::kUnavailable) throwApi(503, "The database is unavailable: " + e.message);
  throwApi(500, "Database error: " + e.message);
}

// Quota item name (API spelling) for a stored kind, and the resource name Octavia's
// QuotaException reports.
struct QuotaKind {
  const char* kind;
  const char* item;
  const char* resource;
};
const QuotaKind kQuotaKinds[] = {
    {kLb, "load_balancer", "LoadBalancer"}, {kListener, "listener", "Listener"},
    {kPool, "pool", "Pool"},                {kMember, "member", "Member"},
    {kHm, "health_monitor", "HealthMonitor"}, {kL7Policy, "l7policy", "L7Policy"},
    {kL7Rule, "l7rule", "L7Rule"},
};

}  // namespace

void Api::authorize(const Call& c, const std::string& action, const std::string& project_id) const {
  if (!allowed(c, action, project_id)) throwForbidden();
}

bool Api::allowed(const Call& c, const std::string& action, const std::string& project_id) const {
  auth::Target target{project_id};
  return policy_.allowed("os_load-balancer_api:" + action, c.creds, target);
}

void Api::read(const std::function<void(Txn&)>& fn) {
  std::optional<ApiError> err;
  auto r = store_.read([&](Txn& t) -> common::Result<void> {
    err.reset();
    try {
      fn(t);
    } catch (const ApiError& e) {
      err = e;
      return common::makeError(common::ErrorCode::kInvalidArgument, e.message());
    }
    return {};
  });
  if (err) throw *err;
  if (!r.ok()) storeFailed(r.error());
}

void Api::write(const std::function<void(Txn&)>& fn) {
  std::optional<ApiError> err;
  auto r = store_.write([&](Txn& t) -> common::Result<void> {
    err.reset();
    try {
      fn(t);
    } catch (const ApiError& e) {
      err = e;
      return common::makeError(common::ErrorCode::kInvalidArgument, e.message());
    }
    return {};
  });
  if (err) throw *err;
  if (!r.ok()) storeFailed(r.error());
}

std::optional<Obj> Api::load(Txn& t, std::string_view kind, std::string_view id) {
  auto r = t.get(kind, id);
  if (!r.ok()) storeFailed(r.error());
  if (!r.value()) return std::nullopt;
  Obj o;
  o.rec = std::move(*r.value());
  auto doc = parseJson(o.rec.body);
  if (!doc || !doc->IsObject()) throwApi(500, "Stored object is not valid JSON: " + o.rec.kind + " " + o.rec.id);
  o.doc = std::move(*doc);
  return o;
}

Obj Api::mustLoad(Txn& t, std::string_view kind, const std::string& id, const std::string& resource) {
  auto o = load(t, kind, id);
  // DELETED objects wait for housekeeping but are invisible to the API.
  if (!o || o->str("provisioning_status") == "DELETED") throwNotFound(resource, id);
  return std::move(*o);
}

std::vector<Obj> Api::loadAll(Txn& t, const store::Query& q) {
  auto r = t.list(q);
  if (!r.ok()) storeFailed(r.error());
  std::vector<Obj> out;
  for (auto& rec : r.value()) {
    Obj o;
    o.rec = std::move(rec);
    auto doc = parseJson(o.rec.body);
    if (!doc || !doc->IsObject()) continue;
    o.doc = std::move(*doc);
    if (o.str("provisioning_status") == "DELETED") continue;
    out.push_back(std::move(o));
  }
  return out;
}

void Api::insert(Txn& t, Obj& o) {
  o.rec.body = toJson(o.doc);
  auto r = t.insert(o.rec);
  if (!r.ok()) {
    if (r.error().code == common::ErrorCode::kConflict) throwApi(409, "Record already exists.");
    storeFailed(r.error());
  }
}

void Api::save(Txn& t, Obj& o) {
  // Octavia's columns have onupdate=now: every row update moves updated_at. Quotas and
  // the catalog objects have no timestamps.
  if (jhas(o.doc, "updated_at")) touch(o);
  o.rec.body = toJson(o.doc);
  auto r = t.update(o.rec);
  if (!r.ok()) storeFailed(r.error());
}

void Api::erase(Txn& t, std::string_view kind, std::string_view id) {
  auto r = t.remove(kind, id);
  if (!r.ok() && r.error().code != common::ErrorCode::kNotFound) storeFailed(r.error());
}

Obj Api::newObj(std::string kind, std::string id, std::string project_id, std::string parent_id,
                std::string lb_id) {
  Obj o;
  o.rec.kind = std::move(kind);
  o.rec.id = std::move(id);
  o.rec.project_id = std::move(project_id);
  o.rec.parent_id = std::move(parent_id);
  o.rec.load_balancer_id = std::move(lb_id);
  o.doc.SetObject();
  return o;
}

void Api::setStatus(Obj& o, std::string_view provisioning) {
  jsetStr(o.doc, "provisioning_status", provisioning, o.alloc());
}

void Api::setOperating(Obj& o, std::string_view operating) {
  jsetStr(o.doc, "operating_status", operating, o.alloc());
}

void Api::touch(Obj& o) { jsetStr(o.doc, "updated_at", nowTimestamp(), o.alloc()); }

void fillCommon(Obj& o, const JsonValue& body, bool has_description) {
  auto& a = o.alloc();
  jsetStr(o.doc, "id", o.rec.id, a);
  const JsonValue* name = jgetNonNull(body, "name");
  jset(o.doc, "name", name ? JsonValue(*name, a) : JsonValue(), a);
  if (has_description) {
    const JsonValue* d = jgetNonNull(body, "description");
    jset(o.doc, "description", d ? JsonValue(*d, a) : JsonValue(), a);
  }
  const JsonValue* up = jgetNonNull(body, "admin_state_up");
  jset(o.doc, "admin_state_up", JsonValue(up ? up->GetBool() : true), a);
  if (!o.rec.project_id.empty()) jsetStr(o.doc, "project_id", o.rec.project_id, a);
  jsetStr(o.doc, "provisioning_status", "PENDING_CREATE", a);
  jsetStr(o.doc, "operating_status", "OFFLINE", a);
  jsetStr(o.doc, "created_at", nowTimestamp(), a);
  jsetNull(o.doc, "updated_at", a);
  const JsonValue* tags = jgetNonNull(body, "tags");
  jset(o.doc, "tags", tags ? JsonValue(*tags, a) : JsonValue(rapidjson::kArrayType), a);
}

Obj Api::lockLbForChild(Txn& t, const std::string& lb_id) {
  auto r = t.lockKey("loadbalancer:" + lb_id);
  if (!r.ok()) storeFailed(r.error());
  Obj lb = mustLoad(t, kLb, lb_id, "Load Balancer");
  if (lb.str("provisioning_status") != "ACTIVE") throwImmutable("Load Balancer", lb_id);
  setStatus(lb, "PENDING_UPDATE");
  save(t, lb);
  return lb;
}

std::vector<std::string> Api::listenersUsingPool(Txn& t, const std::string& pool_id) {
  auto pool = load(t, kPool, pool_id);
  std::vector<std::string> ids;
  if (!pool) return ids;
  store::Query q;
  q.kind = kListener;
  q.parent_id = pool->rec.parent_id;
  for (auto& l : loadAll(t, q))
    if (l.str("default_pool_id") == pool_id) ids.push_back(l.id());
  q.kind = kL7Policy;
  q.parent_id.reset();
  q.load_balancer_id = pool->rec.parent_id;
  for (auto& p : loadAll(t, q))
    if (p.str("redirect_pool_id") == pool_id && std::find(ids.begin(), ids.end(), p.rec.parent_id) == ids.end())
      ids.push_back(p.rec.parent_id);
  return ids;
}

void Api::markListenersPendingUpdate(Txn& t, const std::vector<std::string>& listener_ids) {
  for (const auto& id : listener_ids) {
    auto l = load(t, kListener, id);
    if (!l) continue;
    setStatus(*l, "PENDING_UPDATE");
    save(t, *l);
  }
}

int64_t Api::quotaLimit(Txn& t, const std::string& project_id, const std::string& kind) {
  const QuotaKind* qk = nullptr;
  for (const auto& k : kQuotaKinds)
    if (kind == k.kind) qk = &k;
  if (!qk) return -1;
  auto q = load(t, kQuota, project_id);
  if (q) {
    const JsonValue* v = jgetNonNull(q->doc, qk->item);
    if (v && v->IsInt64()) return v->GetInt64();
  }
  const QuotaDefaults& d = opts_.quotas;
  std::string item = qk->item;
  if (item == "load_balancer") return d.load_balancer;
  if (item == "listener") return d.listener;
  if (item == "pool") return d.pool;
  if (item == "member") return d.member;
  if (item == "health_monitor") return d.health_monitor;
  if (item == "l7policy") return d.l7policy;
  return d.l7rule;
}

void Api::checkQuota(Txn& t, const std::string& project_id, const std::string& kind, int64_t adding) {
  if (adding <= 0) return;
  auto lr = t.lockKey("quota:" + project_id);
  if (!lr.ok()) storeFailed(lr.error());
  int64_t limit = quotaLimit(t, project_id, kind);
  if (limit < 0) return;
  store::Query q;
  q.kind = kind;
  q.project_id = project_id;
  auto counted = t.count(q);
  if (!counted.ok()) storeFailed(counted.error());
  int64_t used = counted.value();
  if (used + adding > limit) {
    std::string resource = kind;
    for (const auto& k : kQuotaKinds)
      if (kind == k.kind) resource = k.resource;
    throwApi(403, "Quota has been met for resources: " + resource);
  }
}

std::string Api::resolveProvider(const std::string& requested) const {
  std::string name = requested.empty() ? opts_.default_provider_driver : requested;
  bool enabled = false;
  for (const auto& p : opts_.enabled_provider_drivers) enabled = enabled || p.first == name;
  if (!enabled) throwApi(400, "Provider '" + name + "' is not enabled.");
  driverFor(name);
  return name;
}

Driver Api::driverFor(const std::string& provider) const {
  if (provider == "noop_driver") return Driver::kNoop;
  if (provider == "amphora" || provider == "octavia" || provider == "banyan") return Driver::kBanyan;
  throwApi(501, "Provider '" + provider + "' was not found.");
}

void Api::dispatch(Call& c, Txn& t, const Obj& lb, const std::string& job_kind,
                   const std::string& object_id, const JsonValue* changes, bool cascade) {
  Driver d = driverFor(lb.str("provider"));
  if (d == Driver::kNoop) {
    if (std::find(c.settle_lbs.begin(), c.settle_lbs.end(), lb.id()) == c.settle_lbs.end())
      c.settle_lbs.push_back(lb.id());
    return;
  }
  checkProviderSupports(t, lb, job_kind);
  JsonDoc p(rapidjson::kObjectType);
  auto& a = p.GetAllocator();
  p.AddMember("request_id", jstr(c.request_id, a), a);
  p.AddMember("load_balancer_id", jstr(lb.id(), a), a);
  p.AddMember("project_id", jstr(lb.rec.project_id, a), a);
  p.AddMember("object_id", jstr(object_id, a), a);
  p.AddMember("cascade", cascade, a);
  p.AddMember("changes", changes ? JsonValue(*changes, a) : JsonValue(rapidjson::kObjectType), a);
  store::JobSpec job;
  job.kind = job_kind;
  job.payload = toJson(p);
  job.serial_key = lb.id();
  auto r = t.enqueueJob(job);
  if (!r.ok()) storeFailed(r.error());
}

void Api::checkProviderSupports(Txn& t, const Obj& lb, const std::string& job_kind) {
  // Removing things never adds what the amphorae cannot run; failovers change nothing.
  if (job_kind.find(".delete") != std::string::npos || job_kind.rfind("amphora.", 0) == 0 ||
      job_kind == "loadbalancer.failover")
    return;
  auto graph = render::loadGraph(t, lb.id());
  if (!graph.ok()) storeFailed(graph.error());
  render::RenderContext ctx;
  ctx.vip_address = lb.str("vip_address");
  auto rendered = render::renderProxyConfig(graph.value(), ctx);
  if (rendered.ok()) return;
  const auto& e = rendered.error();
  throwApi(501, "Provider '" + lb.str("provider") + "' does not support a requested option: " + e.message +
                    (e.context.empty() ? "" : " (" + e.context + ")"));
}

void Api::settleLoadBalancer(const std::string& lb_id) {
  // The noop_driver "finishes" at once: the statuses the controller writes after a
  // successful job.
  auto r = store_.write([&](Txn& t) { return controller::settleSucceeded(t, lb_id); });
  if (!r.ok()) {
    LB_ERROR("noop provider could not mark the load balancer ACTIVE lb=%s error=%s", lb_id.c_str(),
             r.error().message.c_str());
  }
}

JsonDoc Api::render(Txn& t, const Obj& o) {
  JsonDoc out;
  out.CopyFrom(o.doc, out.GetAllocator());
  auto& a = out.GetAllocator();
  const std::string& kind = o.rec.kind;
  for (const char* key : {"name", "description"}) {
    JsonValue* v = nullptr;
    auto it = out.FindMember(key);
    if (it != out.MemberEnd()) v = &it->value;
    if (v && v->IsNull()) v->SetString("", a);
  }
  if (jhas(out, "project_id")) jset(out, "tenant_id", JsonValue(*jget(out, "project_id"), a), a);

  auto ids = [&](const char* child_kind, bool by_parent, const std::string& key) {
    store::Query q;
    q.kind = child_kind;
    if (by_parent) q.parent_id = key;
    else q.load_balancer_id = key;
    std::vector<std::string> out_ids;
    for (auto& c : loadAll(t, q)) out_ids.push_back(c.id());
    return out_ids;
  };
  if (kind == kLb) {
    jset(out, "listeners", jidArray(ids(kListener, true, o.id()), a), a);
    jset(out, "pools", jidArray(ids(kPool, true, o.id()), a), a);
  } else if (kind == kListener) {
    jset(out, "loadbalancers", jidArray({o.rec.parent_id}, a), a);
    jset(out, "l7policies", jidArray(ids(kL7Policy, true, o.id()), a), a);
  } else if (kind == kPool) {
    jset(out, "loadbalancers", jidArray({o.rec.parent_id}, a), a);
    jset(out, "listeners", jidArray(listenersUsingPool(t, o.id()), a), a);
    jset(out, "members", jidArray(ids(kMember, true, o.id()), a), a);
    auto hms = ids(kHm, true, o.id());
    jset(out, "healthmonitor_id", hms.empty() ? JsonValue() : jstr(hms.front(), a), a);
  } else if (kind == kHm) {
    jset(out, "pools", jidArray({o.rec.parent_id}, a), a);
  } else if (kind == kL7Policy) {
    jset(out, "rules", jidArray(ids(kL7Rule, true, o.id()), a), a);
  }
  return out;
}

common::HttpResponse Api::json(int status, const std::string& root, JsonDoc body) {
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember(jstr(root, a), JsonValue(body, a), a);
  return jsonValue(status, d);
}

common::HttpResponse Api::jsonValue(int status, const JsonValue& whole) {
  common::HttpResponse r;
  r.status = status;
  r.body = toJson(whole);
  return r;
}

common::HttpResponse Api::noContent(int status) {
  common::HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  return r;
}

std::optional<std::string> Api::listScope(Call& c, const std::string& object) {
  // Octavia's _auth_get_all: a global reader sees every project (the project_id query
  // parameter then filters like any attribute); anyone else sees one project only.
  std::string queried;
  for (const auto& [k, v] : c.http.query_params)
    if (k == "project_id") queried = v;
  if (allowed(c, object + ":get_all-global", queried)) return std::nullopt;
  std::string project = queried.empty() ? c.creds.project_id : queried;
  if (project.empty()) throwForbidden();
  authorize(c, object + ":get_all", project);
  return project;
}

common::HttpResponse Api::listResponse(Call& c, const std::string& collection_key,
                                       const std::string& links_key, std::vector<JsonDoc> items,
                                       const std::vector<FilterAlias>& aliases,
                                       const std::set<std::string>& ignored) {
  ListParams p = parseListParams(c.http.query_params, opts_.pagination_max_limit, ignored);
  ListPage page = applyListParams(std::move(items), p, c.path_url, aliases, {"project_id", "id", "name"});
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  JsonValue arr(rapidjson::kArrayType);
  for (auto& item : page.items) arr.PushBack(JsonValue(item, a), a);
  d.AddMember(jstr(collection_key, a), std::move(arr), a);
  d.AddMember(jstr(links_key, a), JsonValue(page.links, a), a);
  return jsonValue(200, d);
}

JsonDoc applyFields(const Call& c, JsonDoc obj) {
  ListParams p = parseListParams(c.http.query_params, 0);
  if (p.fields.empty()) return obj;
  std::vector<JsonDoc> one;
  one.push_back(std::move(obj));
  ListParams only_fields;
  only_fields.fields = p.fields;
  auto page = applyListParams(std::move(one), only_fields, "", {}, {});
  return std::move(page.items.front());
}

void applyUpdate(Obj& o, const JsonValue& body, const JsonValue& defaults_on_null) {
  auto& a = o.alloc();
  for (auto& m : body.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    if (m.value.IsNull()) {
      const JsonValue* d = jget(defaults_on_null, key);
      jset(o.doc, key, d ? JsonValue(*d, a) : JsonValue(), a);
    } else {
      jset(o.doc, key, JsonValue(m.value, a), a);
    }
  }
}

}  // namespace banyan::provider::api
