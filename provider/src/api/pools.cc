// /v2/lbaas/pools (octavia/api/v2/controllers/pool.py, types/pool.py).
#include <algorithm>

#include "api/api_impl.h"
#include "api/cert_checks.h"

namespace banyan::provider::api {
namespace {

const std::vector<std::string> kTlsVersions = {"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
const std::vector<std::string> kAlpn = {"h2", "http/1.1", "http/1.0"};

// session_persistence rules of pool.py (_validate_pool_request_for_udp_sctp and the
// SessionPersistence type).
void checkSessionPersistence(JsonValue& sp, const std::string& protocol, bool put, JsonAlloc& a) {
  static const std::vector<FieldSpec> fields = {
      {.name = "type", .type = FieldType::kEnum, .choices = {"SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"}},
      {.name = "cookie_name"},
      {.name = "persistence_timeout", .type = FieldType::kInt, .min = 0},
      {.name = "persistence_granularity", .type = FieldType::kIpAddress},
  };
  validateBody(sp, fields, put ? BodyMode::kPut : BodyMode::kPost, "session_persistence", a);
  std::string type = jstring(sp, "type");
  if (!put && type.empty()) throwInvalidField("type", "None", "Mandatory field missing.");
  bool l4 = protocol == "UDP" || protocol == "SCTP";
  const JsonValue* cookie = jgetNonNull(sp, "cookie_name");
  if (l4) {
    if (!type.empty() && type != "SOURCE_IP")
      throwValidation("Session persistence of type " + type + " is not supported for " + protocol +
                      " protocol pools.");
    if (cookie) throwValidation("Cookie names are not supported for " + protocol + " pools.");
  } else {
    if (jgetNonNull(sp, "persistence_timeout") || jgetNonNull(sp, "persistence_granularity"))
      throwValidation("persistence_timeout and persistence_granularity is only for UDP and SCTP "
                      "protocol pools.");
  }
  if (type == "APP_COOKIE" && !cookie)
    throwValidation("A cookie_name must be specified for APP_COOKIE session persistence.");
  if (cookie && type != "APP_COOKIE" && !type.empty())
    throwValidation("Cookie names are not supported for " + type + " session persistence.");
  if (cookie && !isValidCookieName(std::string_view(cookie->GetString(), cookie->GetStringLength())))
    throwApi(400, "Invalid input for field/attribute cookie_name. Value: '" + std::string(cookie->GetString()) +
                      "'. Value should match the pattern ^[^\\s,;\\\\]+$");
  if (!jhas(sp, "persistence_timeout")) jset(sp, "persistence_timeout", JsonValue(), a);
  if (!jhas(sp, "persistence_granularity")) jset(sp, "persistence_granularity", JsonValue(), a);
  if (!jhas(sp, "cookie_name")) jset(sp, "cookie_name", JsonValue(), a);
}

void checkPoolTls(const ApiOptions& opts, const JsonValue& p) {
  if (jgetNonNull(p, "crl_container_ref") && !jgetNonNull(p, "ca_tls_container_ref"))
    throwValidation("A CA reference is required to specify a certificate revocation list.");
  if (const JsonValue* v = jgetNonNull(p, "tls_versions"))
    if (v->Empty()) throwValidation("The pool tls_versions must not be empty.");
  if (const JsonValue* v = jgetNonNull(p, "alpn_protocols"))
    if (v->Empty()) throwValidation("The pool alpn_protocols must not be empty.");
  if (const JsonValue* c = jgetNonNull(p, "tls_ciphers")) {
    std::string ciphers(c->GetString(), c->GetStringLength());
    if (!isValidCipherString(ciphers)) throwValidation("The TLS cipher string contains invalid characters.");
    for (const auto& banned : opts.tls_cipher_prohibit_list)
      if (!banned.empty() && (":" + ciphers + ":").find(":" + banned + ":") != std::string::npos)
        throwValidation("The following ciphers have been prohibited by an administrator: " + banned);
  }
}

}  // namespace

const std::vector<FieldSpec>& poolFields() {
  static const std::vector<FieldSpec> f = [] {
    std::vector<FieldSpec> v;
    v.push_back({.name = "name"});
    v.push_back({.name = "description"});
    v.push_back({.name = "admin_state_up", .type = FieldType::kBool});
    v.push_back({.name = "listener_id", .type = FieldType::kUuid, .on_put = false});
    v.push_back({.name = "loadbalancer_id", .type = FieldType::kUuid, .on_put = false});
    v.push_back({.name = "protocol", .type = FieldType::kEnum, .on_put = false, .required = true,
                 .choices = {"TCP", "HTTP", "HTTPS", "PROXY", "PROXYV2", "UDP", "SCTP"}});
    v.push_back({.name = "lb_algorithm", .type = FieldType::kEnum, .required = true,
                 .choices = {"ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT"}});
    v.push_back({.name = "session_persistence", .type = FieldType::kObject});
    v.push_back({.name = "project_id", .on_put = false, .max_len = 36});
    v.push_back({.name = "tenant_id", .on_put = false, .max_len = 36});
    v.push_back({.name = "healthmonitor", .type = FieldType::kObject, .on_put = false});
    v.push_back({.name = "members", .type = FieldType::kList, .on_put = false});
    v.push_back({.name = "tls_enabled", .type = FieldType::kBool});
    v.push_back({.name = "tls_container_ref"});
    v.push_back({.name = "ca_tls_container_ref"});
    v.push_back({.name = "crl_container_ref"});
    v.push_back({.name = "tls_ciphers", .max_len = 2048});
    v.push_back({.name = "tls_versions", .type = FieldType::kStringList, .max_len = 32, .choices = kTlsVersions});
    v.push_back({.name = "alpn_protocols", .type = FieldType::kStringList, .choices = kAlpn});
    v.push_back({.name = "tags", .type = FieldType::kStringList});
    return v;
  }();
  return f;
}

Obj Api::createPoolObj(Call& c, Txn& t, Obj& lb, JsonValue& body, const Obj* listener) {
  JsonDoc scratch;
  auto& sa = scratch.GetAllocator();
  validateBody(body, poolFields(), BodyMode::kPost, "pool", sa);
  std::string protocol = jstring(body, "protocol");
  if (listener) checkPoolListenerProtocols(protocol, listener->str("protocol"));
  checkPoolTls(opts_, body);
  if (const JsonValue* ref = jgetNonNull(body, "tls_container_ref"))
    checkTlsRefs(c, {std::string(ref->GetString(), ref->GetStringLength())});
  checkCaAndCrlRefs(c, jstring(body, "ca_tls_container_ref"), jstring(body, "crl_container_ref"));
  checkQuota(t, lb.rec.project_id, kPool);

  Obj p = newObj(kPool, newUuid(), lb.rec.project_id, lb.id(), lb.id());
  fillCommon(p, body, true);
  auto& a = p.alloc();
  jsetStr(p.doc, "protocol", protocol, a);
  jsetStr(p.doc, "lb_algorithm", jstring(body, "lb_algorithm"), a);
  if (const JsonValue* sp = jgetNonNull(body, "session_persistence")) {
    JsonValue copy(*sp, a);
    checkSessionPersistence(copy, protocol, false, a);
    jset(p.doc, "session_persistence", std::move(copy), a);
  } else {
    jset(p.doc, "session_persistence", JsonValue(), a);
  }
  bool tls = jbool(body, "tls_enabled", false);
  jset(p.doc, "tls_enabled", JsonValue(tls), a);
  for (const char* ref : {"tls_container_ref", "ca_tls_container_ref", "crl_container_ref"}) {
    const JsonValue* v = jgetNonNull(body, ref);
    jset(p.doc, ref, v ? JsonValue(*v, a) : JsonValue(), a);
  }
  auto tlsDefault = [&](const char* key, JsonValue def) {
    const JsonValue* v = jgetNonNull(body, key);
    jset(p.doc, key, v ? JsonValue(*v, a) : (tls ? std::move(def) : JsonValue()), a);
  };
  tlsDefault("tls_ciphers", jstr(opts_.default_pool_ciphers, a));
  tlsDefault("tls_versions", jstringArray(opts_.default_pool_tls_versions, a));
  tlsDefault("alpn_protocols", jstringArray(opts_.default_pool_alpn_protocols, a));
  insert(t, p);

  if (const JsonValue* hm = jgetNonNull(body, "healthmonitor")) {
    JsonValue copy(*hm, sa);
    createHmObj(c, t, p, copy);
  }
  if (const JsonValue* members = jgetNonNull(body, "members")) {
    bool has_hm = jgetNonNull(body, "healthmonitor") != nullptr;
    for (const auto& m : members->GetArray()) {
      JsonValue copy(m, sa);
      createMemberObj(c, t, p, copy, has_hm);
    }
  }
  return p;
}

common::HttpResponse Api::poolList(Call& c) {
  auto scope = listScope(c, "pool");
  store::Query q;
  q.kind = kPool;
  if (scope) q.project_id = *scope;
  return listObjects(c, std::move(q), "pools", "pools_links",
                     {{"loadbalancer_id", "loadbalancers"}, {"listener_id", "listeners"}});
}

common::HttpResponse Api::poolShow(Call& c) {
  JsonDoc out;
  read([&](Txn& t) {
    Obj p = loadToShow(t, kPool, c.args[0], "Pool");
    authorize(c, "pool:get_one", p.rec.project_id);
    out = render(t, p);
  });
  return json(200, "pool", applyFields(c, std::move(out)));
}

common::HttpResponse Api::poolCreate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "pool");
  for (const char* graph_only : {"healthmonitor", "members"})
    if (jhas(body, graph_only)) throwApi(400, std::string("Unknown attribute for argument pool: ") + graph_only);
  validateBody(body, poolFields(), BodyMode::kPost, "pool", body.GetAllocator());
  std::string lb_id = jstring(body, "loadbalancer_id");
  std::string listener_id = jstring(body, "listener_id");
  if (lb_id.empty() && listener_id.empty())
    throwValidation("Must provide at least one of: loadbalancer_id, listener_id");
  JsonDoc out;
  auto transaction = [&](Txn& t) {
    std::optional<Obj> listener;
    if (!listener_id.empty()) {
      listener = mustLoad(t, kListener, listener_id, "Listener");
      if (!lb_id.empty() && listener->rec.parent_id != lb_id)
        throwValidation("Listener " + listener_id + " is not on Load Balancer " + lb_id + ".");
      lb_id = listener->rec.parent_id;
    }
    {
      auto lb = load(t, kLb, lb_id);
      if (!lb || lb->str("provisioning_status") == "DELETED") throwNotFound("Load Balancer", lb_id);
      authorize(c, "pool:post", lb->rec.project_id);
    }
    if (listener && listener->str("protocol") == "PROMETHEUS")
      throwApi(400, "Protocol PROMETHEUS listeners cannot have child objects.");
    if (listener) checkPoolListenerProtocols(jstring(body, "protocol"), listener->str("protocol"));
    if (listener && jgetNonNull(listener->doc, "default_pool_id"))
      throwApi(409, "This listener already has a default pool");
    Obj lb = lockLbForChild(t, lb_id);
    Obj p = createPoolObj(c, t, lb, body, listener ? &*listener : nullptr);
    if (listener) {
      jsetStr(listener->doc, "default_pool_id", p.id(), listener->alloc());
      setStatus(*listener, "PENDING_UPDATE");
      save(t, *listener);
    }
    dispatch(c, t, lb, "pool.create", p.id());
    out = render(t, p);
  };
  // Certificate references are read with no transaction open (cert_checks.h).
  runWithCertChecksOutside([&] { write(transaction); });
  return json(201, "pool", std::move(out));
}

common::HttpResponse Api::poolUpdate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "pool");
  validateBody(body, poolFields(), BodyMode::kPut, "pool", body.GetAllocator());
  JsonDoc out;
  auto transaction = [&](Txn& t) {
    Obj p = mustLoad(t, kPool, c.args[0], "Pool");
    authorize(c, "pool:put", p.rec.project_id);
    Obj lb = lockLbForChild(t, p.rec.parent_id);
    if (p.str("provisioning_status") != "ACTIVE") throwImmutable("Pool", p.id());
    auto& a = p.alloc();
    std::string protocol = p.str("protocol");
    if (jhas(body, "session_persistence")) {
      JsonValue& sp = body["session_persistence"];
      if (!sp.IsNull()) {
        // On PUT the type may be left out: it keeps the current one.
        if (!jgetNonNull(sp, "type")) {
          const JsonValue* cur = jgetNonNull(p.doc, "session_persistence");
          std::string type = cur ? jstring(*cur, "type") : "";
          if (type.empty()) throwInvalidField("type", "None", "Mandatory field missing.");
          jsetStr(sp, "type", type, body.GetAllocator());
        }
        checkSessionPersistence(sp, protocol, false, body.GetAllocator());
      }
    }
    bool tls = jhas(body, "tls_enabled") ? jbool(body, "tls_enabled", false) : jbool(p.doc, "tls_enabled", false);
    JsonDoc defaults(rapidjson::kObjectType);
    auto& da = defaults.GetAllocator();
    defaults.AddMember("admin_state_up", false, da);
    defaults.AddMember("tls_enabled", false, da);
    defaults.AddMember("tags", JsonValue(rapidjson::kArrayType), da);
    if (tls) {
      defaults.AddMember("tls_ciphers", jstr(opts_.default_pool_ciphers, da), da);
      defaults.AddMember("tls_versions", jstringArray(opts_.default_pool_tls_versions, da), da);
      defaults.AddMember("alpn_protocols", jstringArray(opts_.default_pool_alpn_protocols, da), da);
    }
    if (jhas(body, "ca_tls_container_ref") && body["ca_tls_container_ref"].IsNull() &&
        jgetNonNull(p.doc, "crl_container_ref") &&
        !(jhas(body, "crl_container_ref") && body["crl_container_ref"].IsNull()))
      throwValidation("A CA reference cannot be removed when a certificate revocation list is present.");
    applyUpdate(p, body, defaults);
    checkPoolTls(opts_, p.doc);
    // Octavia's PUT: the client certificate when the body names one; the CA (and CRL)
    // the pool ends up with, whether new or kept.
    if (const JsonValue* ref = jgetNonNull(body, "tls_container_ref"))
      checkTlsRefs(c, {std::string(ref->GetString(), ref->GetStringLength())});
    checkCaAndCrlRefs(c, p.str("ca_tls_container_ref"), p.str("crl_container_ref"));
    (void)a;
    setStatus(p, "PENDING_UPDATE");
    touch(p);
    save(t, p);
    markListenersPendingUpdate(t, listenersUsingPool(t, p.id()));
    dispatch(c, t, lb, "pool.update", p.id(), &body);
    out = render(t, p);
  };
  // Certificate references are read with no transaction open (cert_checks.h).
  runWithCertChecksOutside([&] { write(transaction); });
  return json(200, "pool", std::move(out));
}

common::HttpResponse Api::poolDelete(Call& c) {
  write([&](Txn& t) {
    Obj p = mustLoad(t, kPool, c.args[0], "Pool");
    authorize(c, "pool:delete", p.rec.project_id);
    Obj lb = lockLbForChild(t, p.rec.parent_id);
    if (p.str("provisioning_status") == "PENDING_DELETE") throwImmutable("Pool", p.id());
    store::Query pq{kL7Policy, {}, {}, lb.id(), {}};
    for (auto& pol : loadAll(t, pq))
      if (pol.str("redirect_pool_id") == p.id())
        throwApi(409, "Pool " + p.id() + " is in use by L7 policy " + pol.id());
    store::Query lq{kListener, {}, lb.id(), {}, {}};
    for (auto& l : loadAll(t, lq)) {
      if (l.str("default_pool_id") != p.id()) continue;
      jsetNull(l.doc, "default_pool_id", l.alloc());
      setStatus(l, "PENDING_UPDATE");
      save(t, l);
    }
    deleteTree(t, p, true);
    dispatch(c, t, lb, "pool.delete", p.id());
  });
  return noContent();
}

}  // namespace banyan::provider::api
