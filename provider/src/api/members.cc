// /v2/lbaas/pools/{pool_id}/members (octavia/api/v2/controllers/member.py).
#include <algorithm>
#include <map>

#include "api/api_impl.h"

namespace banyan::provider::api {
namespace {

std::string memberKey(const std::string& address, int64_t port) {
  return address + "|" + std::to_string(port);
}

// Member writes: the load balancer and the pool must be ACTIVE; both go PENDING_UPDATE,
// as do the listeners that use the pool.
Obj lockPool(Api& api, Txn& t, const std::string& pool_id, Obj& lb_out) {
  Obj pool = api.mustLoad(t, kPool, pool_id, "Pool");
  lb_out = api.lockLbForChild(t, pool.rec.parent_id);
  if (pool.str("provisioning_status") != "ACTIVE") throwImmutable("Pool", pool.id());
  Api::setStatus(pool, "PENDING_UPDATE");
  api.save(t, pool);
  api.markListenersPendingUpdate(t, api.listenersUsingPool(t, pool.id()));
  return pool;
}

}  // namespace

const std::vector<FieldSpec>& memberFields() {
  static const std::vector<FieldSpec> f = {
      {.name = "name"},
      {.name = "admin_state_up", .type = FieldType::kBool},
      {.name = "address", .type = FieldType::kIpAddress, .on_put = false, .required = true},
      {.name = "protocol_port", .type = FieldType::kInt, .on_put = false, .required = true, .min = 1, .max = 65535},
      {.name = "weight", .type = FieldType::kInt, .min = 0, .max = 256},
      {.name = "backup", .type = FieldType::kBool},
      {.name = "subnet_id", .type = FieldType::kUuid, .on_put = false},
      {.name = "monitor_address", .type = FieldType::kIpAddress},
      {.name = "monitor_port", .type = FieldType::kInt, .min = 1, .max = 65535},
      {.name = "project_id", .on_put = false, .max_len = 36},
      {.name = "tenant_id", .on_put = false, .max_len = 36},
      {.name = "tags", .type = FieldType::kStringList},
  };
  return f;
}

Obj Api::createMemberObj(Call&, Txn& t, Obj& pool, JsonValue& body, bool pool_has_hm, bool batch_checked) {
  JsonDoc scratch;
  validateBody(body, memberFields(), BodyMode::kPost, "member", scratch.GetAllocator());
  std::string address = jstring(body, "address");
  int64_t port = jint(body, "protocol_port");
  for (const auto& reserved : opts_.reserved_ips)
    if (reserved == address) throwApi(400, address + " is not a valid option for member address");
  // A batch update checks duplicates and the quota once for all its members: scanning
  // the pool per member would make a 1,000-member batch quadratic.
  if (!batch_checked) {
    store::Query q{kMember, {}, pool.id(), {}, {}};
    for (auto& m : loadAll(t, q))
      if (m.str("address") == address && jint(m.doc, "protocol_port") == port)
        throwApi(409, "Another member on this pool is already using ip " + address + " on protocol_port " +
                          std::to_string(port));
  }
  if (const JsonValue* subnet = jgetNonNull(body, "subnet_id")) {
    auto lb = load(t, kLb, pool.rec.load_balancer_id);
    if (lb && driverFor(lb->str("provider")) == Driver::kBanyan) checkSubnet(subnet->GetString());
  }
  if (!batch_checked) checkQuota(t, pool.rec.project_id, kMember);

  Obj m = newObj(kMember, newUuid(), pool.rec.project_id, pool.id(), pool.rec.load_balancer_id);
  fillCommon(m, body, false);
  auto& a = m.alloc();
  setOperating(m, pool_has_hm ? "OFFLINE" : "NO_MONITOR");
  jsetStr(m.doc, "address", address, a);
  jset(m.doc, "protocol_port", JsonValue(port), a);
  auto copy = [&](const char* key, JsonValue def) {
    const JsonValue* v = jgetNonNull(body, key);
    jset(m.doc, key, v ? JsonValue(*v, a) : std::move(def), a);
  };
  copy("weight", JsonValue(int64_t{1}));
  copy("backup", JsonValue(false));
  copy("subnet_id", JsonValue());
  copy("monitor_address", JsonValue());
  copy("monitor_port", JsonValue());
  insert(t, m);
  return m;
}

common::HttpResponse Api::memberList(Call& c) {
  store::Query q{kMember, {}, c.args[0], {}, {}};
  return listObjects(c, std::move(q), "members", "members_links", {}, [&](Txn& t) {
    Obj pool = mustLoad(t, kPool, c.args[0], "Pool");
    authorize(c, "member:get_all", pool.rec.project_id);
  });
}

common::HttpResponse Api::memberShow(Call& c) {
  JsonDoc out;
  read([&](Txn& t) {
    t.prefetchGet(kMember, c.args[1]);  // one round trip for both
    Obj pool = mustLoad(t, kPool, c.args[0], "Pool");
    auto m = load(t, kMember, c.args[1]);
    if (!m || m->rec.parent_id != pool.id() || m->str("provisioning_status") == "DELETED")
      throwNotFound("Member", c.args[1]);
    authorize(c, "member:get_one", m->rec.project_id);
    out = render(t, *m);
  });
  return json(200, "member", applyFields(c, std::move(out)));
}

common::HttpResponse Api::memberCreate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "member");
  validateBody(body, memberFields(), BodyMode::kPost, "member", body.GetAllocator());
  JsonDoc out;
  write([&](Txn& t) {
    {
      Obj pool = mustLoad(t, kPool, c.args[0], "Pool");
      authorize(c, "member:post", pool.rec.project_id);
    }
    Obj lb;
    Obj pool = lockPool(*this, t, c.args[0], lb);
    store::Query hq{kHm, {}, pool.id(), {}, {}};
    bool has_hm = !loadAll(t, hq).empty();
    Obj m = createMemberObj(c, t, pool, body, has_hm);
    dispatch(c, t, lb, "member.create", m.id());
    out = render(t, m);
  });
  return json(201, "member", std::move(out));
}

common::HttpResponse Api::memberUpdate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "member");
  validateBody(body, memberFields(), BodyMode::kPut, "member", body.GetAllocator());
  JsonDoc out;
  write([&](Txn& t) {
    Obj pool0 = mustLoad(t, kPool, c.args[0], "Pool");
    auto m = load(t, kMember, c.args[1]);
    if (!m || m->rec.parent_id != pool0.id() || m->str("provisioning_status") == "DELETED")
      throwNotFound("Member", c.args[1]);
    authorize(c, "member:put", m->rec.project_id);
    Obj lb;
    lockPool(*this, t, c.args[0], lb);
    if (m->str("provisioning_status") != "ACTIVE") throwImmutable("Member", m->id());
    JsonDoc defaults(rapidjson::kObjectType);
    auto& da = defaults.GetAllocator();
    defaults.AddMember("weight", int64_t{1}, da);
    defaults.AddMember("backup", false, da);
    defaults.AddMember("admin_state_up", false, da);
    defaults.AddMember("tags", JsonValue(rapidjson::kArrayType), da);
    applyUpdate(*m, body, defaults);
    setStatus(*m, "PENDING_UPDATE");
    touch(*m);
    save(t, *m);
    dispatch(c, t, lb, "member.update", m->id(), &body);
    out = render(t, *m);
  });
  return json(200, "member", std::move(out));
}

common::HttpResponse Api::memberDelete(Call& c) {
  write([&](Txn& t) {
    Obj pool0 = mustLoad(t, kPool, c.args[0], "Pool");
    auto m = load(t, kMember, c.args[1]);
    if (!m || m->rec.parent_id != pool0.id() || m->str("provisioning_status") == "DELETED")
      throwNotFound("Member", c.args[1]);
    authorize(c, "member:delete", m->rec.project_id);
    Obj lb;
    lockPool(*this, t, c.args[0], lb);
    if (m->str("provisioning_status") == "PENDING_DELETE") throwImmutable("Member", m->id());
    setStatus(*m, "PENDING_DELETE");
    save(t, *m);
    dispatch(c, t, lb, "member.delete", m->id());
  });
  return noContent();
}

common::HttpResponse Api::memberBatch(Call& c) {
  bool additive = false;
  for (const auto& [k, v] : c.http.query_params)
    if (k == "additive_only") additive = boolFromString(v);
  auto doc = parseJson(c.http.body);
  if (!doc || !doc->IsObject()) throwApi(400, "Invalid input for field/attribute members. Value: 'None'. "
                                              "The request body is not valid JSON");
  for (auto& m : doc->GetObject())
    if (std::string(m.name.GetString()) != "members")
      throwApi(400, "Unknown attribute for argument members: " + std::string(m.name.GetString()));
  const JsonValue* list = jget(*doc, "members");
  if (!list || !list->IsArray()) throwInvalidField("members", "None", "Mandatory field missing.");
  for (auto& item : const_cast<JsonValue*>(list)->GetArray())
    validateBody(item, memberFields(), BodyMode::kPost, "member", doc->GetAllocator());

  write([&](Txn& t) {
    Obj pool0 = mustLoad(t, kPool, c.args[0], "Pool");
    authorize(c, "member:post", pool0.rec.project_id);
    authorize(c, "member:put", pool0.rec.project_id);
    if (!additive) authorize(c, "member:delete", pool0.rec.project_id);
    store::Query q{kMember, {}, pool0.id(), {}, {}};
    std::map<std::string, Obj> existing;
    for (auto& m : loadAll(t, q)) existing.emplace(memberKey(m.str("address"), jint(m.doc, "protocol_port")), std::move(m));
    std::set<std::string> listed;
    for (const auto& item : list->GetArray()) {
      std::string key = memberKey(jstring(item, "address"), jint(item, "protocol_port"));
      if (!listed.insert(key).second)
        throwApi(409, "Another member on this pool is already using ip " + jstring(item, "address") +
                          " on protocol_port " + std::to_string(jint(item, "protocol_port")));
    }
    Obj lb;
    Obj pool = lockPool(*this, t, c.args[0], lb);
    store::Query hq{kHm, {}, pool.id(), {}, {}};
    bool has_hm = !loadAll(t, hq).empty();
    for (auto& [key, m] : existing)
      if (m.str("provisioning_status").rfind("PENDING_", 0) == 0) throwImmutable("Member", m.id());

    JsonDoc changes(rapidjson::kObjectType);
    auto& ca = changes.GetAllocator();
    JsonValue created(rapidjson::kArrayType), updated(rapidjson::kArrayType), deleted(rapidjson::kArrayType);
    int64_t new_count = 0;
    for (const auto& item : list->GetArray())
      if (!existing.count(memberKey(jstring(item, "address"), jint(item, "protocol_port")))) ++new_count;
    checkQuota(t, pool.rec.project_id, kMember, new_count);
    for (const auto& item : list->GetArray()) {
      std::string key = memberKey(jstring(item, "address"), jint(item, "protocol_port"));
      auto it = existing.find(key);
      if (it == existing.end()) {
        JsonValue copy(item, ca);
        Obj made = createMemberObj(c, t, pool, copy, has_hm, true);
        created.PushBack(jstr(made.id(), ca), ca);
        continue;
      }
      Obj& m = it->second;
      JsonDoc upd(rapidjson::kObjectType);
      for (auto& f : item.GetObject()) {
        std::string name(f.name.GetString(), f.name.GetStringLength());
        if (name == "address" || name == "protocol_port" || name == "subnet_id" || name == "project_id" ||
            name == "tenant_id")
          continue;
        upd.AddMember(jstr(name, upd.GetAllocator()), JsonValue(f.value, upd.GetAllocator()), upd.GetAllocator());
      }
      applyUpdate(m, upd, JsonDoc(rapidjson::kObjectType));
      setStatus(m, "PENDING_UPDATE");
      touch(m);
      save(t, m);
      updated.PushBack(jstr(m.id(), ca), ca);
    }
    if (!additive) {
      for (auto& [key, m] : existing) {
        if (listed.count(key)) continue;
        setStatus(m, "PENDING_DELETE");
        save(t, m);
        deleted.PushBack(jstr(m.id(), ca), ca);
      }
    }
    changes.AddMember("created", std::move(created), ca);
    changes.AddMember("updated", std::move(updated), ca);
    changes.AddMember("deleted", std::move(deleted), ca);
    changes.AddMember("additive_only", additive, ca);
    dispatch(c, t, lb, "member.batch_update", pool.id(), &changes);
  });
  return noContent(202);
}

}  // namespace banyan::provider::api
