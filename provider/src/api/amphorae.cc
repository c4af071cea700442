// /v2/octavia/amphorae (octavia/api/v2/controllers/amphora.py). Amphora rows are written
// by the controller (kind "amphora", body = Octavia's amphora fields, load_balancer_id
// column set); the API only reads them and queues admin actions.
#include "api/api_impl.h"

namespace banyan::provider::api {
namespace {

const char* const kAmphoraFields[] = {
    "id", "loadbalancer_id", "compute_id", "lb_network_ip", "vrrp_ip", "ha_ip", "vrrp_port_id",
    "ha_port_id", "cert_expiration", "cert_busy", "role", "status", "vrrp_interface", "vrrp_id",
    "vrrp_priority", "cached_zone", "created_at", "updated_at", "image_id", "compute_flavor"};

JsonDoc renderAmphora(const Obj& o) {
  JsonDoc d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  for (const char* key : kAmphoraFields) {
    const JsonValue* v = jget(o.doc, key);
    d.AddMember(rapidjson::StringRef(key), v ? JsonValue(*v, a) : JsonValue(), a);
  }
  jsetStr(d, "id", o.id(), a);
  if (!jgetNonNull(d, "loadbalancer_id") && !o.rec.load_balancer_id.empty())
    jsetStr(d, "loadbalancer_id", o.rec.load_balancer_id, a);
  return d;
}

}  // namespace

common::HttpResponse Api::ampList(Call& c) {
  authorize(c, "amphora:get_all", c.creds.project_id);
  std::vector<JsonDoc> items;
  read([&](Txn& t) {
    store::Query q;
    q.kind = kAmphora;
    for (auto& o : loadAll(t, q)) {
      if (o.str("status") == "DELETED") continue;
      JsonDoc d = renderAmphora(o);
      // The project_id filter matches the owning load balancer's project.
      jsetStr(d, "project_id", o.rec.project_id, d.GetAllocator());
      items.push_back(std::move(d));
    }
  });
  bool asked_project = false;
  for (const auto& [k, v] : c.http.query_params) asked_project = asked_project || k == "project_id";
  auto resp = listResponse(c, "amphorae", "amphorae_links", std::move(items), {});
  auto doc = parseJson(resp.body);
  if (doc && !asked_project) {
    for (auto& a : (*doc)["amphorae"].GetArray()) a.RemoveMember("project_id");
    resp.body = toJson(*doc);
  } else if (doc) {
    for (auto& a : (*doc)["amphorae"].GetArray()) a.RemoveMember("project_id");
    resp.body = toJson(*doc);
  }
  return resp;
}

common::HttpResponse Api::ampShow(Call& c) {
  authorize(c, "amphora:get_one", c.creds.project_id);
  JsonDoc out;
  read([&](Txn& t) {
    auto o = load(t, kAmphora, c.args[0]);
    if (!o || o->str("status") == "DELETED") throwNotFound("Amphora", c.args[0]);
    out = renderAmphora(*o);
  });
  return json(200, "amphora", applyFields(c, std::move(out)));
}

common::HttpResponse Api::ampDelete(Call& c) {
  authorize(c, "amphora:delete", c.creds.project_id);
  write([&](Txn& t) {
    auto o = load(t, kAmphora, c.args[0]);
    if (!o || o->str("status") == "DELETED") throwNotFound("Amphora", c.args[0]);
    std::string st = o->str("status");
    if (st != "READY" && st != "ERROR") throwImmutable("Amphora", o->id());
    jsetStr(o->doc, "status", "PENDING_DELETE", o->alloc());
    save(t, *o);
    store::JobSpec job;
    job.kind = "amphora.delete";
    job.payload = std::string(R"({"request_id":")") + c.request_id + R"(","object_id":")" + o->id() + R"("})";
    job.serial_key = o->rec.load_balancer_id;
    auto r = t.enqueueJob(job);
    if (!r.ok()) throwApi(500, "Could not queue the amphora delete: " + r.error().message);
  });
  return noContent();
}

common::HttpResponse Api::ampFailover(Call& c) {
  authorize(c, "amphora:put_failover", c.creds.project_id);
  write([&](Txn& t) {
    auto o = load(t, kAmphora, c.args[0]);
    if (!o || o->str("status") == "DELETED") throwNotFound("Amphora", c.args[0]);
    std::string lb_id = o->str("loadbalancer_id");
    if (lb_id.empty()) lb_id = o->rec.load_balancer_id;
    if (lb_id.empty()) throwImmutable("Amphora", o->id());
    Obj lb = lockLbForChild(t, lb_id);
    dispatch(c, t, lb, "amphora.failover", o->id());
  });
  return noContent(202);
}

common::HttpResponse Api::ampConfig(Call& c) {
  authorize(c, "amphora:put_config", c.creds.project_id);
  write([&](Txn& t) {
    auto o = load(t, kAmphora, c.args[0]);
    if (!o || o->str("status") == "DELETED") throwNotFound("Amphora", c.args[0]);
    store::JobSpec job;
    job.kind = "amphora.config";
    job.payload = std::string(R"({"request_id":")") + c.request_id + R"(","object_id":")" + o->id() + R"("})";
    job.serial_key = o->rec.load_balancer_id;
    auto r = t.enqueueJob(job);
    if (!r.ok()) throwApi(500, "Could not queue the amphora configuration: " + r.error().message);
  });
  return noContent(202);
}

common::HttpResponse Api::ampStats(Call& c) {
  authorize(c, "amphora:get_stats", c.creds.project_id);
  JsonDoc out(rapidjson::kObjectType);
  read([&](Txn& t) {
    auto o = load(t, kAmphora, c.args[0]);
    if (!o || o->str("status") == "DELETED") throwNotFound("Amphora", c.args[0]);
    auto s = load(t, kAmphoraStats, c.args[0]);
    const JsonValue* rows = s ? jgetNonNull(s->doc, "amphora_stats") : nullptr;
    if (!rows || !rows->IsArray() || rows->Empty()) throwApi(404, "Amphora stats for " + c.args[0] + " not found.");
    out.AddMember("amphora_stats", JsonValue(*rows, out.GetAllocator()), out.GetAllocator());
  });
  return jsonValue(200, out);
}

}  // namespace banyan::provider::api
