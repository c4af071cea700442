// Plumbing shared by every resource: transactions, object load/save, locking, quotas,
// providers, rendering and list responses.
#include <algorithm>
#include <array>
#include <deque>
#include <span>
#include <unordered_map>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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

// Every write takes a load balancer's lock (lockKey "loadbalancer:<id>") before it locks
// any row under that load balancer, whatever the handler loads first. The controller's
// settle step locks in that order; a member change that locked its pool row first and
// then the load balancer deadlocked with it, and under churn from two API processes
// PostgreSQL chose the same request as the victim eight times in a row (a 503).
// Advisory locks are reentrant, so handlers that lock the load balancer themselves are
// unaffected.
class LoadBalancerFirstTransaction final : public store::Transaction {
 public:
  explicit LoadBalancerFirstTransaction(store::Transaction& inner) : inner_(inner) {}

  common::Result<std::optional<store::Record>> get(std::string_view kind, std::string_view id) override {
    std::string lb;
    if (kind == kLb) {
      lb = std::string(id);
    } else {
      store::Query q;
      q.kind = std::string(kind);
      q.ids = {std::string(id)};
      auto peek = inner_.list(q);  // no row lock
      if (!peek.ok()) return peek.error();
      if (!peek.value().empty()) lb = peek.value().front().load_balancer_id;
    }
    if (!lb.empty() && !locked_.count(lb)) {
      if (auto r = lockKey("loadbalancer:" + lb); !r.ok()) return r.error();
    }
    return inner_.get(kind, id);
  }
  common::Result<std::vector<store::Record>> list(const store::Query& query) override { return inner_.list(query); }
  common::Result<int64_t> count(const store::Query& query) override { return inner_.count(query); }
  common::Result<std::vector<store::Record>> listPage(const store::Query& query,
                                                      const store::PageSpec& page) override {
    return inner_.listPage(query, page);
  }
  common::Result<std::vector<store::Record>> listByParents(std::string_view kind,
                                                           const std::vector<std::string>& parent_ids) override {
    return inner_.listByParents(kind, parent_ids);
  }
  common::Result<std::vector<store::Record>> listLiveChildIds(const std::vector<std::string>& kinds,
                                                              const std::vector<std::string>& parent_ids) override {
    return inner_.listLiveChildIds(kinds, parent_ids);
  }
  common::Result<void> insert(store::Record& record) override { return inner_.insert(record); }
  common::Result<void> update(store::Record& record) override { return inner_.update(record); }
  common::Result<void> remove(std::string_view kind, std::string_view id) override {
    return inner_.remove(kind, id);
  }
  common::Result<void> lockKey(std::string_view key) override {
    constexpr std::string_view kPrefix = "loadbalancer:";
    bool lb_key = key.substr(0, kPrefix.size()) == kPrefix;
    // Held until the transaction ends: taking it again would only cost a round trip.
    if (lb_key && locked_.count(std::string(key.substr(kPrefix.size())))) return {};
    auto r = inner_.lockKey(key);
    if (r.ok() && lb_key) locked_.insert(std::string(key.substr(kPrefix.size())));
    return r;
  }
  common::Result<int64_t> enqueueJob(const store::JobSpec& job) override { return inner_.enqueueJob(job); }

 private:
  store::Transaction& inner_;
  std::set<std::string> locked_;
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
  auto r = store_.write([&](Txn& raw) -> common::Result<void> {
    err.reset();
    LoadBalancerFirstTransaction t(raw);
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

namespace {

// The kinds of the children whose ids an object of `kind` lists (renderRelations).
std::vector<std::string> liveChildKinds(std::string_view kind) {
  if (kind == kLb) return {kListener, kPool};
  if (kind == kListener) return {kL7Policy};
  if (kind == kPool) return {kMember, kHm};
  if (kind == kL7Policy) return {kL7Rule};
  return {};
}

}  // namespace

Obj Api::mustLoad(Txn& t, std::string_view kind, const std::string& id, const std::string& resource) {
  auto o = load(t, kind, id);
  // DELETED objects wait for housekeeping but are invisible to the API.
  if (!o || o->str("provisioning_status") == "DELETED") throwNotFound(resource, id);
  return std::move(*o);
}

Obj Api::loadToShow(Txn& t, std::string_view kind, const std::string& id, const std::string& resource) {
  const auto kinds = liveChildKinds(kind);
  if (!kinds.empty()) t.prefetchLiveChildIds(kinds, {id});
  return mustLoad(t, kind, id, resource);
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
  // Certificates are checked against the cert manager when they are named and placed
  // on the amphorae by the controller; here a stand-in path per reference lets the
  // rest of the document be judged.
  if (auto needs = render::neededCertificates(graph.value(), ctx); needs.ok()) {
    for (const auto* refs : {&needs->tls_bundles, &needs->pem_secrets})
      for (const auto& ref : *refs) ctx.certificate_paths[ref] = "/var/lib/banyan/certs/unplaced.pem";
  }
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

namespace {

// Kinds whose every stored body has a "name" (null when not given), rendered as a
// string: for them the store's name column (store.h) equals the API's `name` exactly, so
// a page filtered or sorted by name can be cut by the database.
bool namedInStore(const std::string& kind) {
  return kind == kLb || kind == kListener || kind == kPool || kind == kMember || kind == kHm || kind == kL7Policy;
}

}  // namespace

JsonDoc Api::render(Txn& t, const Obj& o) {
  JsonDoc out;
  out.CopyFrom(o.doc, out.GetAllocator());
  renderBase(out);
  renderRelations(t, {&o.rec}, {&out});
  return out;
}

void Api::renderBase(JsonDoc& out) {
  auto& a = out.GetAllocator();
  for (const char* key : {"name", "description"}) {
    auto it = out.FindMember(key);
    if (it != out.MemberEnd() && it->value.IsNull()) it->value.SetString("", a);
  }
  if (jhas(out, "project_id")) jset(out, "tenant_id", JsonValue(*jget(out, "project_id"), a), a);
}

void Api::renderRelations(Txn& t, const std::vector<const store::Record*>& recs,
                          const std::vector<JsonDoc*>& docs) {
  LB_CHECK(recs.size() == docs.size(), "one document per record");
  if (recs.empty()) return;
  const std::string kind = recs.front()->kind;
  std::vector<std::string> ids;
  ids.reserve(recs.size());
  for (const auto* r : recs) ids.push_back(r->id);
  // The page's ids, sorted and unique: a child belongs to the group of its parent's
  // place here (a binary search, no map node per child).
  std::vector<std::string_view> groups(ids.begin(), ids.end());
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  auto group = [&](std::string_view id) {
    return static_cast<size_t>(std::lower_bound(groups.begin(), groups.end(), id) - groups.begin());
  };
  // The children's records stay here until the documents are rendered: the lists below
  // only point into them.
  std::deque<std::vector<store::Record>> child_records;
  // Every child id, grouped by parent in the store's order within a parent:
  // group g is ids[start[g], start[g + 1]).
  struct Children {
    std::vector<std::string_view> ids;
    std::vector<size_t> start;
  };
  // The children of the given kinds, one Children per kind, in one store call.
  auto children = [&](const std::vector<std::string>& kinds) {
    auto r = t.listLiveChildIds(kinds, ids);
    if (!r.ok()) storeFailed(r.error());
    const auto& listed = child_records.emplace_back(std::move(r.value()));
    std::vector<size_t> owner(listed.size());
    for (size_t k = 0; k < listed.size(); ++k) {
      owner[k] = group(listed[k].parent_id);
      LB_CHECK(owner[k] < groups.size() && groups[owner[k]] == listed[k].parent_id, "a child of a listed parent");
    }
    std::vector<Children> out(kinds.size());
    for (size_t j = 0; j < kinds.size(); ++j) {
      Children& c = out[j];
      c.start.assign(groups.size() + 1, 0);
      for (size_t k = 0; k < listed.size(); ++k)
        if (listed[k].kind == kinds[j]) ++c.start[owner[k] + 1];
      for (size_t g = 0; g < groups.size(); ++g) c.start[g + 1] += c.start[g];
      std::vector<size_t> next(c.start.begin(), c.start.end() - 1);
      c.ids.resize(c.start.back());
      for (size_t k = 0; k < listed.size(); ++k)
        if (listed[k].kind == kinds[j]) c.ids[next[owner[k]]++] = listed[k].id;
    }
    return out;
  };
  auto of = [&](const Children& c, std::string_view id) {
    size_t g = group(id);
    return std::span<const std::string_view>(c.ids.data() + c.start[g], c.start[g + 1] - c.start[g]);
  };
  auto set = [](JsonDoc& d, const char* key, std::span<const std::string_view> v) {
    jset(d, key, jidArray(v, d.GetAllocator()), d.GetAllocator());
  };
  auto setOne = [&](JsonDoc& d, const char* key, std::string_view id) { set(d, key, std::array{id}); };

  if (kind == kLb) {
    auto lb_children = children(liveChildKinds(kind));
    const Children &listeners = lb_children[0], &pools = lb_children[1];
    for (size_t i = 0; i < recs.size(); ++i) {
      set(*docs[i], "listeners", of(listeners, ids[i]));
      set(*docs[i], "pools", of(pools, ids[i]));
    }
  } else if (kind == kListener) {
    const Children policies = std::move(children(liveChildKinds(kind))[0]);
    for (size_t i = 0; i < recs.size(); ++i) {
      setOne(*docs[i], "loadbalancers", recs[i]->parent_id);
      set(*docs[i], "l7policies", of(policies, ids[i]));
    }
  } else if (kind == kPool) {
    auto pool_children = children(liveChildKinds(kind));
    const Children &members = pool_children[0], &hms = pool_children[1];
    // The listeners using each pool (listenersUsingPool, for the whole page): the load
    // balancer's listeners whose default pool it is, then the listeners of L7 policies
    // that redirect to it, in creation order.
    std::vector<std::string> lb_ids;
    for (const auto* r : recs)
      if (std::find(lb_ids.begin(), lb_ids.end(), r->parent_id) == lb_ids.end()) lb_ids.push_back(r->parent_id);
    auto listeners = t.listByParents(kListener, lb_ids);
    if (!listeners.ok()) storeFailed(listeners.error());
    std::unordered_map<std::string, std::vector<std::pair<std::string, std::string>>> by_lb;  // (listener, pool)
    std::vector<std::string> listener_ids;
    for (const auto& rec : listeners.value()) {
      listener_ids.push_back(rec.id);
      auto doc = parseJson(rec.body);
      if (!doc || !doc->IsObject() || jstring(*doc, "provisioning_status") == "DELETED") continue;
      by_lb[rec.parent_id].emplace_back(rec.id, jstring(*doc, "default_pool_id"));
    }
    auto policies = t.listByParents(kL7Policy, listener_ids);
    if (!policies.ok()) storeFailed(policies.error());
    std::unordered_map<std::string, std::vector<std::pair<std::string, std::string>>> redirects;  // by LB
    for (const auto& rec : policies.value()) {
      if (rec.body.find("redirect_pool_id") == std::string::npos) continue;
      auto doc = parseJson(rec.body);
      if (!doc || !doc->IsObject() || jstring(*doc, "provisioning_status") == "DELETED") continue;
      std::string target = jstring(*doc, "redirect_pool_id");
      if (!target.empty()) redirects[rec.load_balancer_id].emplace_back(rec.parent_id, target);
    }
    for (size_t i = 0; i < recs.size(); ++i) {
      const std::string& lb = recs[i]->parent_id;
      std::vector<std::string_view> using_pool;
      for (const auto& [listener, pool] : by_lb[lb])
        if (pool == ids[i]) using_pool.push_back(listener);
      for (const auto& [listener, pool] : redirects[lb])
        if (pool == ids[i] && std::find(using_pool.begin(), using_pool.end(), listener) == using_pool.end())
          using_pool.push_back(listener);
      JsonDoc& d = *docs[i];
      setOne(d, "loadbalancers", lb);
      set(d, "listeners", using_pool);
      set(d, "members", of(members, ids[i]));
      const auto& hm = of(hms, ids[i]);
      jset(d, "healthmonitor_id", hm.empty() ? JsonValue() : jstr(hm.front(), d.GetAllocator()), d.GetAllocator());
    }
  } else if (kind == kHm) {
    for (size_t i = 0; i < recs.size(); ++i) setOne(*docs[i], "pools", recs[i]->parent_id);
  } else if (kind == kL7Policy) {
    const Children rules = std::move(children(liveChildKinds(kind))[0]);
    for (size_t i = 0; i < recs.size(); ++i) set(*docs[i], "rules", of(rules, ids[i]));
  }
}

std::optional<store::PageSpec> Api::storePage(const store::Query& q, const ListParams& p,
                                               const std::vector<FilterAlias>& aliases) const {
  if (!opts_.page_in_store) return std::nullopt;
  // Without a limit or a marker the whole list is the answer: nothing to cut.
  if (!p.limit && p.marker.empty()) return std::nullopt;
  if (!q.ids.empty()) return std::nullopt;
  // Tags live only in the bodies.
  if (!p.tags.empty() || !p.tags_any.empty() || !p.not_tags.empty() || !p.not_tags_any.empty())
    return std::nullopt;
  // Only filters the query already applies exactly through an indexed column.
  for (const auto& [key, value] : p.filters) {
    if (key == "project_id" && q.project_id && *q.project_id == value) continue;
    if (key == "name" && q.name && *q.name == value && namedInStore(q.kind)) continue;
    bool lb_alias = false;
    for (const auto& a : aliases) lb_alias = lb_alias || a.param == key;
    if (key == "loadbalancer_id" && lb_alias && (q.kind == kListener || q.kind == kPool) && q.load_balancer_id &&
        *q.load_balancer_id == value)
      continue;
    return std::nullopt;
  }
  // Sort keys that are columns (store::SortColumn), each once; the rest are body fields.
  store::PageSpec page;
  for (const auto& s : p.sort) {
    store::SortColumn column;
    if (s.key == "id") {
      column = store::SortColumn::kId;
    } else if (s.key == "project_id") {
      column = store::SortColumn::kProjectId;
    } else if (s.key == "name" && namedInStore(q.kind)) {
      column = store::SortColumn::kName;
    } else {
      return std::nullopt;
    }
    for (const auto& o : page.order)
      if (o.column == column) return std::nullopt;
    page.order.push_back({column, s.ascending});
  }
  // list_query's page_reverse: the `limit` items before the marker, in the forward
  // order; without a marker it changes nothing.
  page.backward = p.page_reverse && !p.marker.empty();
  if (!p.marker.empty()) page.after_id = p.marker;
  page.limit = p.limit.value_or(0);
  return page;
}

common::HttpResponse Api::listObjects(Call& c, store::Query q, const std::string& collection_key,
                                      const std::string& links_key, const std::vector<FilterAlias>& aliases,
                                      const std::function<void(Txn&)>& check) {
  ListParams p = parseListParams(c.http.query_params, opts_.pagination_max_limit);
  // Exact filters on indexed columns narrow the query itself; list_query still applies
  // them, so the answer is the same, only cheaper (a global reader asking for one
  // project no longer loads every project).
  bool narrowed = false;
  for (const auto& [key, value] : p.filters) {
    if (key == "project_id" && !q.project_id) {
      q.project_id = value;
      narrowed = true;
    }
    if (key == "loadbalancer_id" && (q.kind == kListener || q.kind == kPool) && !q.load_balancer_id) {
      q.load_balancer_id = value;
      narrowed = true;
    }
    // The store's name is the rendered name (null and missing read as ""), so this is
    // the filter itself for a named kind and a superset (re-filtered below) for others.
    if (key == "name" && !q.name) {
      q.name = value;
      narrowed = true;
    }
  }
  // When every filter and sort key is a column, the store cuts the page (keyset
  // pagination) and only the page is read and parsed; anything else takes the general
  // path below, which reads every matching object. Both give the same answer
  // (api_paging_test compares them).
  const std::optional<store::PageSpec> in_store = storePage(q, p, aliases);
  // Relations are rendered before filtering only when a filter or sort needs them.
  static const std::set<std::string> kRelationKeys = {"listeners", "pools", "members", "l7policies",
                                                      "rules", "healthmonitor_id", "loadbalancers"};
  bool relations_first = false;
  for (const auto& [key, value] : p.filters) {
    relations_first = relations_first || kRelationKeys.count(key) > 0;
    for (const auto& al : aliases) relations_first = relations_first || al.param == key;
  }
  for (const auto& s : p.sort) relations_first = relations_first || kRelationKeys.count(s.key) > 0;
  static const std::set<std::string> kKnown = {"project_id", "id", "name"};

  std::string body;
  read([&](Txn& t) {
    // The first list statement travels with the statement before it (the parent's check,
    // or the marker's lookup): one round trip fewer on PostgreSQL.
    if (in_store && (check || !p.marker.empty())) t.prefetchListPage(q, *in_store);
    if (!in_store && check) t.prefetchList(q);
    if (check) check(t);
    // One memory pool for every item of the list, released at once: a document per
    // item with its own 64 KiB pool made a thousand-item list mostly malloc and free.
    rapidjson::MemoryPoolAllocator<> pool;
    std::vector<store::Record> recs;
    std::vector<JsonDoc> items;
    // The bodies the items were parsed in place from: their strings point into these
    // buffers (a deque never moves its elements), so a string is neither copied nor
    // allocated by the parse.
    std::deque<std::string> texts;
    size_t bytes = 0;
    // Parses a listed record and keeps it unless it is DELETED (invisible to the API).
    auto keep = [&](store::Record& rec) {
      bytes += rec.body.size();
      std::string& text = texts.emplace_back(std::move(rec.body));
      rec.body.clear();
      JsonDoc doc(&pool);
      doc.ParseInsitu(text.data());
      if (doc.HasParseError() || !doc.IsObject() || jstring(doc, "provisioning_status") == "DELETED") {
        bytes -= text.size();
        texts.pop_back();
        return;
      }
      renderBase(doc);
      recs.push_back(std::move(rec));
      items.push_back(std::move(doc));
    };
    // Relations for everything kept so far (recs and items in step).
    auto renderKept = [&] {
      std::vector<const store::Record*> rp;
      std::vector<JsonDoc*> dp;
      for (size_t i = 0; i < items.size(); ++i) {
        rp.push_back(&recs[i]);
        dp.push_back(&items[i]);
      }
      renderRelations(t, rp, dp);
    };
    ListPage page;
    if (in_store) {
      // The marker must be an object this list shows, as in list_query.
      if (!p.marker.empty()) {
        auto m = t.get(q.kind, p.marker);
        if (!m.ok()) storeFailed(m.error());
        const auto& rec = m.value();
        bool listed = rec && (!q.project_id || rec->project_id == *q.project_id) &&
                      (!q.parent_id || rec->parent_id == *q.parent_id) &&
                      (!q.load_balancer_id || rec->load_balancer_id == *q.load_balancer_id);
        if (listed) {
          auto doc = parseJson(rec->body);
          listed = doc && doc->IsObject() && jstring(*doc, "provisioning_status") != "DELETED" &&
                   (!q.name || jstring(*doc, "name") == *q.name);
        }
        if (!listed) throwApi(400, "Supplied pagination marker '" + p.marker + "' is not valid.");
      }
      // DELETED rows take places in the database's page: read on after the last row
      // until the page is full or the list ends (rare; usually one statement).
      store::PageSpec spec = *in_store;
      while (true) {
        auto r = t.listPage(q, spec);
        if (!r.ok()) storeFailed(r.error());
        auto& rows = r.value();
        if (rows.empty()) break;
        std::string last_id = rows.back().id;
        size_t got = rows.size();
        for (auto& rec : rows) keep(rec);
        if (spec.limit == 0 || got < spec.limit || items.size() >= in_store->limit) break;
        spec.after_id = std::move(last_id);
        spec.limit = in_store->limit - items.size();
      }
      if (spec.backward) {
        std::reverse(recs.begin(), recs.end());
        std::reverse(items.begin(), items.end());
      }
      std::string first_id = items.empty() ? "" : jstring(items.front(), "id");
      std::string last_id = items.empty() ? "" : jstring(items.back(), "id");
      page.links = pageLinks(p, c.path_url, items.size(), first_id, last_id);
      renderKept();
      for (auto& item : items) page.items.push_back(selectFields(std::move(item), p.fields));
    } else {
      auto r = t.list(q);
      if (!r.ok()) storeFailed(r.error());
      recs.reserve(r.value().size());
      items.reserve(r.value().size());
      for (auto& rec : r.value()) keep(rec);
      if (items.empty() && narrowed) {
        // Whether a filter or sort key is an attribute is judged from a listed object
        // (list_query.h): ask the unnarrowed collection so that an empty project does not
        // turn a valid filter into a 400. Rare (an empty result), so its cost is fine.
        store::Query wide = q;
        wide.project_id.reset();
        wide.load_balancer_id.reset();
        wide.name.reset();
        auto all = t.list(wide);
        if (!all.ok()) storeFailed(all.error());
        for (auto& rec : all.value()) {
          auto doc = parseJson(rec.body);
          if (!doc || !doc->IsObject()) continue;
          renderBase(*doc);
          renderRelations(t, {&rec}, {&*doc});
          std::vector<JsonDoc> probe;
          probe.push_back(std::move(*doc));
          ListParams checks = p;
          checks.marker.clear();
          checks.fields.clear();
          (void)applyListParams(std::move(probe), checks, c.path_url, aliases, kKnown);
          break;
        }
      }
      if (relations_first) {
        renderKept();
        page = applyListParams(std::move(items), p, c.path_url, aliases, kKnown);
      } else {
        ListParams no_fields = p;
        no_fields.fields.clear();
        std::unordered_map<std::string, const store::Record*> by_id;
        for (const auto& rec : recs) by_id.emplace(rec.id, &rec);
        page = applyListParams(std::move(items), no_fields, c.path_url, aliases, kKnown);
        std::vector<const store::Record*> rp;
        std::vector<JsonDoc*> dp;
        for (auto& item : page.items) {
          auto it = by_id.find(jstring(item, "id"));
          LB_CHECK(it != by_id.end(), "a listed object has the id it was stored with");
          rp.push_back(it->second);
          dp.push_back(&item);
        }
        renderRelations(t, rp, dp);
        for (auto& item : page.items) item = selectFields(std::move(item), p.fields);
      }
    }
    // Serialised straight from the page: no copy of the items into one document.
    // Sized for the whole page plus relations, so the buffer is not regrown and copied.
    size_t listed = std::max<size_t>(1, recs.size());
    JsonOutBuffer buf(nullptr, bytes / listed * page.items.size() * 5 / 4 + 1024);
    JsonOutWriter w(buf);
    w.StartObject();
    w.Key(collection_key.data(), static_cast<rapidjson::SizeType>(collection_key.size()));
    w.StartArray();
    for (const auto& item : page.items) item.Accept(w);
    w.EndArray();
    w.Key(links_key.data(), static_cast<rapidjson::SizeType>(links_key.size()));
    page.links.Accept(w);
    w.EndObject();
    body.assign(buf.GetString(), buf.GetSize());
  });
  common::HttpResponse resp;
  resp.status = 200;
  resp.body = std::move(body);
  return resp;
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
