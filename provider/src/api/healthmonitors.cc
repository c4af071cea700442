// /v2/lbaas/healthmonitors (octavia/api/v2/controllers/health_monitor.py).
#include "api/api_impl.h"

namespace banyan::provider::api {
namespace {

bool isHttpType(const std::string& type) { return type == "HTTP" || type == "HTTPS"; }

// The checks that look at the whole (merged) health monitor.
void checkHm(const ApiOptions& opts, const JsonValue& hm, const std::string& pool_protocol) {
  std::string type = jstring(hm, "type");
  if (!isHttpType(type)) {
    for (const char* key : {"http_method", "url_path", "expected_codes"})
      if (jgetNonNull(hm, key))
        throwApi(400, std::string(key) + " is not a valid option for health monitors of type " + type);
  }
  if (type == "PING" && !opts.allow_ping_health_monitors)
    throwApi(400, "The selected type is not allowed in this deployment: PING");
  bool l4 = pool_protocol == "UDP" || pool_protocol == "SCTP";
  if (l4 && type != "UDP-CONNECT" && type != "SCTP" && type != "TCP" && type != "HTTP")
    throwValidation("The associated pool protocol is " + pool_protocol + ", so only a UDP-CONNECT, SCTP, "
                    "TCP or HTTP health monitor type is supported.");
  if (!l4 && (type == "UDP-CONNECT" || type == "SCTP"))
    throwValidation("The " + type + " type is only supported for pools of type UDP or SCTP.");
  if (type == "UDP-CONNECT" && jint(hm, "delay") < opts.udp_connect_min_interval_health_monitor)
    throwValidation("The request delay value " + std::to_string(jint(hm, "delay")) +
                    " should be larger than " + std::to_string(opts.udp_connect_min_interval_health_monitor) +
                    " for UDP-CONNECT health monitor type.");
  if (const JsonValue* p = jgetNonNull(hm, "url_path"))
    if (!isValidUrlPath(std::string_view(p->GetString(), p->GetStringLength())))
      throwApi(400, "Invalid input for field/attribute url_path. Value: '" + std::string(p->GetString()) +
                        "'. Value must be a valid URL path.");
  if (const JsonValue* e = jgetNonNull(hm, "expected_codes"))
    if (!isValidExpectedCodes(std::string_view(e->GetString(), e->GetStringLength())))
      throwApi(400, "Invalid input for field/attribute expected_codes. Value: '" + std::string(e->GetString()) +
                        "'. Value should match the pattern ^(\\d{3}(\\s*,\\s*\\d{3})*)$|^(\\d{3}-\\d{3})$");
  if (const JsonValue* d = jgetNonNull(hm, "domain_name")) {
    std::string name(d->GetString(), d->GetStringLength());
    if (!isValidHostname(name))
      throwApi(400, "Invalid input for field/attribute domain_name. Value: '" + name +
                        "'. Value should match the pattern of a domain name");
    const JsonValue* v = jgetNonNull(hm, "http_version");
    if (!v) throwValidation("http_version 1.1 is required when domain_name is set.");
    if (v->GetDouble() != 1.1)
      throwValidation("http_version " + std::string(v->GetDouble() == 1.0 ? "1.0" : toJson(*v)) +
                      " is not a valid option for health monitors HTTP 1.1 domain name.");
  }
}

}  // namespace

const std::vector<FieldSpec>& hmFields() {
  static const std::vector<FieldSpec> f = {
      {.name = "name"},
      {.name = "admin_state_up", .type = FieldType::kBool},
      {.name = "pool_id", .type = FieldType::kUuid, .on_put = false},
      {.name = "type", .type = FieldType::kEnum, .on_put = false, .required = true,
       .choices = {"HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP"}},
      {.name = "delay", .type = FieldType::kInt, .required = true, .min = 0},
      {.name = "timeout", .type = FieldType::kInt, .required = true, .min = 0},
      {.name = "max_retries", .type = FieldType::kInt, .required = true, .min = 1, .max = 10},
      {.name = "max_retries_down", .type = FieldType::kInt, .min = 1, .max = 10},
      {.name = "http_method", .type = FieldType::kEnum,
       .choices = {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}},
      {.name = "url_path"},
      {.name = "expected_codes"},
      {.name = "http_version", .type = FieldType::kFloat, .choices = {"1.0", "1.1"}},
      {.name = "domain_name"},
      {.name = "project_id", .on_put = false, .max_len = 36},
      {.name = "tenant_id", .on_put = false, .max_len = 36},
      {.name = "tags", .type = FieldType::kStringList},
  };
  return f;
}

Obj Api::createHmObj(Call&, Txn& t, Obj& pool, JsonValue& body) {
  JsonDoc scratch;
  validateBody(body, hmFields(), BodyMode::kPost, "healthmonitor", scratch.GetAllocator());
  store::Query q{kHm, {}, pool.id(), {}, {}};
  if (!loadAll(t, q).empty()) throwApi(409, "This pool already has a health monitor");
  checkQuota(t, pool.rec.project_id, kHm);

  Obj hm = newObj(kHm, newUuid(), pool.rec.project_id, pool.id(), pool.rec.load_balancer_id);
  fillCommon(hm, body, false);
  auto& a = hm.alloc();
  std::string type = jstring(body, "type");
  jsetStr(hm.doc, "type", type, a);
  for (const char* key : {"delay", "timeout", "max_retries"})
    jset(hm.doc, key, JsonValue(jint(body, key)), a);
  jset(hm.doc, "max_retries_down", JsonValue(jint(body, "max_retries_down", 3)), a);
  bool http = isHttpType(type);
  auto copy = [&](const char* key, JsonValue def) {
    const JsonValue* v = jgetNonNull(body, key);
    jset(hm.doc, key, v ? JsonValue(*v, a) : std::move(def), a);
  };
  copy("http_method", http ? JsonValue("GET", a) : JsonValue());
  copy("url_path", http ? JsonValue("/", a) : JsonValue());
  copy("expected_codes", http ? JsonValue("200", a) : JsonValue());
  copy("http_version", JsonValue());
  copy("domain_name", JsonValue());
  checkHm(opts_, hm.doc, pool.str("protocol"));
  // Explicitly given HTTP-only fields on other types were rejected by checkHm above.
  insert(t, hm);
  return hm;
}

common::HttpResponse Api::hmList(Call& c) {
  auto scope = listScope(c, "healthmonitor");
  store::Query q;
  q.kind = kHm;
  if (scope) q.project_id = *scope;
  return listObjects(c, std::move(q), "healthmonitors", "healthmonitors_links", {{"pool_id", "pools"}});
}

common::HttpResponse Api::hmShow(Call& c) {
  JsonDoc out;
  read([&](Txn& t) {
    Obj hm = mustLoad(t, kHm, c.args[0], "Health Monitor");
    authorize(c, "healthmonitor:get_one", hm.rec.project_id);
    out = render(t, hm);
  });
  return json(200, "healthmonitor", applyFields(c, std::move(out)));
}

common::HttpResponse Api::hmCreate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "healthmonitor");
  validateBody(body, hmFields(), BodyMode::kPost, "healthmonitor", body.GetAllocator());
  if (!jgetNonNull(body, "pool_id")) throwInvalidField("pool_id", "None", "Mandatory field missing.");
  JsonDoc out;
  write([&](Txn& t) {
    Obj pool = mustLoad(t, kPool, jstring(body, "pool_id"), "Pool");
    authorize(c, "healthmonitor:post", pool.rec.project_id);
    Obj lb = lockLbForChild(t, pool.rec.parent_id);
    if (pool.str("provisioning_status") != "ACTIVE") throwImmutable("Pool", pool.id());
    Obj hm = createHmObj(c, t, pool, body);
    setStatus(pool, "PENDING_UPDATE");
    save(t, pool);
    markListenersPendingUpdate(t, listenersUsingPool(t, pool.id()));
    dispatch(c, t, lb, "healthmonitor.create", hm.id());
    out = render(t, hm);
  });
  return json(201, "healthmonitor", std::move(out));
}

common::HttpResponse Api::hmUpdate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "healthmonitor");
  validateBody(body, hmFields(), BodyMode::kPut, "healthmonitor", body.GetAllocator());
  for (const char* not_null : {"delay", "timeout", "max_retries"})
    if (jhas(body, not_null) && body[not_null].IsNull())
      throwInvalidField(not_null, "None", "Mandatory field missing.");
  JsonDoc out;
  write([&](Txn& t) {
    Obj hm = mustLoad(t, kHm, c.args[0], "Health Monitor");
    authorize(c, "healthmonitor:put", hm.rec.project_id);
    Obj pool = mustLoad(t, kPool, hm.rec.parent_id, "Pool");
    Obj lb = lockLbForChild(t, pool.rec.parent_id);
    if (pool.str("provisioning_status") != "ACTIVE") throwImmutable("Pool", pool.id());
    if (hm.str("provisioning_status") != "ACTIVE") throwImmutable("Health Monitor", hm.id());
    std::string type = hm.str("type");
    if (!isHttpType(type))
      for (const char* key : {"http_method", "url_path", "expected_codes"})
        if (jgetNonNull(body, key))
          throwApi(400, std::string(key) + " is not a valid option for health monitors of type " + type);
    JsonDoc defaults(rapidjson::kObjectType);
    auto& da = defaults.GetAllocator();
    defaults.AddMember("max_retries_down", int64_t{3}, da);
    defaults.AddMember("admin_state_up", false, da);
    defaults.AddMember("tags", JsonValue(rapidjson::kArrayType), da);
    if (isHttpType(type)) {
      defaults.AddMember("http_method", "GET", da);
      defaults.AddMember("url_path", "/", da);
      defaults.AddMember("expected_codes", "200", da);
    }
    applyUpdate(hm, body, defaults);
    checkHm(opts_, hm.doc, pool.str("protocol"));
    setStatus(hm, "PENDING_UPDATE");
    touch(hm);
    save(t, hm);
    setStatus(pool, "PENDING_UPDATE");
    save(t, pool);
    markListenersPendingUpdate(t, listenersUsingPool(t, pool.id()));
    dispatch(c, t, lb, "healthmonitor.update", hm.id(), &body);
    out = render(t, hm);
  });
  return json(200, "healthmonitor", std::move(out));
}

common::HttpResponse Api::hmDelete(Call& c) {
  write([&](Txn& t) {
    Obj hm = mustLoad(t, kHm, c.args[0], "Health Monitor");
    authorize(c, "healthmonitor:delete", hm.rec.project_id);
    Obj pool = mustLoad(t, kPool, hm.rec.parent_id, "Pool");
    Obj lb = lockLbForChild(t, pool.rec.parent_id);
    if (hm.str("provisioning_status") == "PENDING_DELETE") throwImmutable("Health Monitor", hm.id());
    setStatus(hm, "PENDING_DELETE");
    save(t, hm);
    setStatus(pool, "PENDING_UPDATE");
    save(t, pool);
    dispatch(c, t, lb, "healthmonitor.delete", hm.id());
  });
  return noContent();
}

}  // namespace banyan::provider::api
