// /v2/lbaas/l7policies and their rules (octavia/api/v2/controllers/l7policy.py, l7rule.py).
#include <algorithm>
#include <regex>

#include "api/api_impl.h"

namespace banyan::provider::api {
namespace {

constexpr int64_t kMaxPosition = 2147483647;
constexpr size_t kMaxRulesPerPolicy = 50;

// validate.sanitize_l7policy_api_args: a redirect target implies its action and clears
// the others; an action needs its target.
void sanitizePolicy(JsonValue& p, JsonAlloc& a, bool create) {
  const JsonValue* pool = jgetNonNull(p, "redirect_pool_id");
  const JsonValue* url = jgetNonNull(p, "redirect_url");
  const JsonValue* prefix = jgetNonNull(p, "redirect_prefix");
  std::string action = jstring(p, "action");
  if (action == "REJECT") {
    jsetNull(p, "redirect_pool_id", a);
    jsetNull(p, "redirect_url", a);
    jsetNull(p, "redirect_prefix", a);
    jsetNull(p, "redirect_http_code", a);
  } else if (url) {
    if (pool) throwValidation("Cannot specify redirect_url and redirect_pool_id at the same time.");
    jsetStr(p, "action", "REDIRECT_TO_URL", a);
    jsetNull(p, "redirect_pool_id", a);
    jsetNull(p, "redirect_prefix", a);
  } else if (pool) {
    jsetStr(p, "action", "REDIRECT_TO_POOL", a);
    jsetNull(p, "redirect_url", a);
    jsetNull(p, "redirect_prefix", a);
    jsetNull(p, "redirect_http_code", a);
  } else if (prefix) {
    jsetStr(p, "action", "REDIRECT_PREFIX", a);
    jsetNull(p, "redirect_pool_id", a);
    jsetNull(p, "redirect_url", a);
  } else if (action == "REDIRECT_TO_POOL") {
    throwValidation("redirect_pool_id must not be None");
  } else if (action == "REDIRECT_TO_URL") {
    throwValidation("redirect_url must not be None");
  } else if (action == "REDIRECT_PREFIX") {
    throwValidation("redirect_prefix must not be None");
  } else if (create) {
    throwInvalidField("action", "None", "Mandatory field missing.");
  }
  for (const char* key : {"redirect_url", "redirect_prefix"})
    if (const JsonValue* u = jgetNonNull(p, key))
      if (!isValidUrl(std::string_view(u->GetString(), u->GetStringLength())))
        throwApi(400, "Invalid input for field/attribute " + std::string(key) + ". Value: '" +
                          std::string(u->GetString()) + "'. Value must be a valid URL.");
}

bool headerToken(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
      return false;
  return true;
}

bool noControlChars(const std::string& s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

// validate.l7rule_data: "Error parsing L7Rule: ..." on the merged rule.
void checkRule(const JsonValue& r) {
  auto fail = [](const std::string& why) -> void { throwApi(400, "Error parsing L7Rule: " + why); };
  std::string type = jstring(r, "type"), compare = jstring(r, "compare_type");
  std::string value = jstring(r, "value");
  const JsonValue* keyv = jgetNonNull(r, "key");
  std::string key = keyv ? std::string(keyv->GetString()) : "";
  if (value.find('\r') != std::string::npos || value.find('\n') != std::string::npos ||
      key.find('\r') != std::string::npos || key.find('\n') != std::string::npos)
    fail("Invalid characters in key or value.");
  if (compare == "REGEX") {
    if (!noControlChars(value)) fail("Invalid characters in regex.");
    try {
      std::regex re(value);
    } catch (const std::regex_error&) {
      fail("Invalid regex.");
    }
  }
  if (type == "HEADER" || type == "COOKIE") {
    if (!keyv) fail("key must not be None for " + type + " rules.");
    if (!headerToken(key)) fail("Invalid characters in key.");
    if (compare != "REGEX") {
      bool quoted = value.size() >= 2 && value.front() == '"' && value.back() == '"';
      for (char c : value) {
        auto u = static_cast<unsigned char>(c);
        bool bad = type == "HEADER" ? (u < 0x20 && c != '\t') || u == 0x7f
                                    : u < 0x21 || u == 0x7f || c == ',' || c == ';' || c == '\\' ||
                                          (c == '"' && !quoted);
        if (bad) fail("Invalid characters in value.");
      }
    }
  } else if (type == "FILE_TYPE") {
    if (compare != "REGEX" && compare != "EQUAL_TO")
      fail("Invalid compare_type for FILE_TYPE rule; only EQUAL_TO or REGEX allowed.");
  } else if (type == "SSL_CONN_HAS_CERT") {
    if (keyv) fail("key is not a valid option for SSL_CONN_HAS_CERT rules.");
    if (compare != "EQUAL_TO") fail("Invalid compare_type for SSL_CONN_HAS_CERT rule.");
    std::string lower = value;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower != "true") fail("L7rule type SSL_CONN_HAS_CERT requires a value of 'True'.");
  } else if (type == "SSL_VERIFY_RESULT") {
    if (keyv) fail("key is not a valid option for SSL_VERIFY_RESULT rules.");
    if (compare != "EQUAL_TO") fail("Invalid compare_type for SSL_VERIFY_RESULT rule.");
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos)
      fail("L7rule type SSL_VERIFY_RESULT requires a non-negative integer value.");
  } else if (type == "SSL_DN_FIELD") {
    static const std::regex dn_key("^([a-zA-Z][A-Za-z0-9-]*)$");
    if (!keyv || !std::regex_match(key, dn_key)) fail("Invalid key for SSL_DN_FIELD rule.");
  }
}

}  // namespace

const std::vector<FieldSpec>& l7PolicyFields() {
  static const std::vector<FieldSpec> f = {
      {.name = "name"},
      {.name = "description"},
      {.name = "admin_state_up", .type = FieldType::kBool},
      {.name = "listener_id", .type = FieldType::kUuid, .on_put = false},
      {.name = "action", .type = FieldType::kEnum,
       .choices = {"REJECT", "REDIRECT_TO_URL", "REDIRECT_TO_POOL", "REDIRECT_PREFIX"}},
      {.name = "redirect_pool_id", .type = FieldType::kUuid},
      {.name = "redirect_url"},
      {.name = "redirect_prefix"},
      {.name = "redirect_http_code", .type = FieldType::kInt, .min = 301, .max = 308},
      {.name = "position", .type = FieldType::kInt, .min = 1, .max = kMaxPosition},
      {.name = "rules", .type = FieldType::kList, .on_put = false},
      {.name = "project_id", .on_put = false, .max_len = 36},
      {.name = "tenant_id", .on_put = false, .max_len = 36},
      {.name = "tags", .type = FieldType::kStringList},
  };
  return f;
}

const std::vector<FieldSpec>& l7RuleFields() {
  static const std::vector<FieldSpec> f = {
      {.name = "type", .type = FieldType::kEnum, .required = true,
       .choices = {"HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE", "SSL_CONN_HAS_CERT",
                   "SSL_VERIFY_RESULT", "SSL_DN_FIELD"}},
      {.name = "compare_type", .type = FieldType::kEnum, .required = true,
       .choices = {"REGEX", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO"}},
      {.name = "key"},
      {.name = "value", .required = true},
      {.name = "invert", .type = FieldType::kBool},
      {.name = "admin_state_up", .type = FieldType::kBool},
      {.name = "project_id", .on_put = false, .max_len = 36},
      {.name = "tenant_id", .on_put = false, .max_len = 36},
      {.name = "tags", .type = FieldType::kStringList},
  };
  return f;
}

void Api::renumberL7Policies(Txn& t, const std::string& listener_id, const std::string& moved_id,
                             std::optional<int64_t> position) {
  store::Query q{kL7Policy, {}, listener_id, {}, {}};
  auto all = loadAll(t, q);
  std::stable_sort(all.begin(), all.end(), [](const Obj& x, const Obj& y) {
    return jint(x.doc, "position") < jint(y.doc, "position");
  });
  std::optional<Obj> moved;
  std::vector<Obj> rest;
  for (auto& o : all) {
    if (o.id() == moved_id) moved = std::move(o);
    else if (o.str("provisioning_status") != "PENDING_DELETE") rest.push_back(std::move(o));
  }
  if (moved) {
    size_t at = position ? static_cast<size_t>(std::min<int64_t>(*position, rest.size() + 1) - 1) : rest.size();
    rest.insert(rest.begin() + static_cast<std::ptrdiff_t>(at), std::move(*moved));
  }
  for (size_t i = 0; i < rest.size(); ++i) {
    if (jint(rest[i].doc, "position") == static_cast<int64_t>(i + 1)) continue;
    jset(rest[i].doc, "position", JsonValue(static_cast<int64_t>(i + 1)), rest[i].alloc());
    save(t, rest[i]);
  }
}

Obj Api::createL7PolicyObj(Call& c, Txn& t, Obj& listener, JsonValue& body) {
  JsonDoc scratch;
  auto& sa = scratch.GetAllocator();
  validateBody(body, l7PolicyFields(), BodyMode::kPost, "l7policy", sa);
  if (listener.str("protocol") == "PROMETHEUS")
    throwApi(400, "Protocol PROMETHEUS listeners cannot have child objects.");
  JsonValue work(body, sa);
  sanitizePolicy(work, sa, true);
  if (const JsonValue* pid = jgetNonNull(work, "redirect_pool_id")) {
    auto pool = load(t, kPool, pid->GetString());
    if (!pool || pool->rec.parent_id != listener.rec.parent_id || pool->str("provisioning_status") == "DELETED")
      throwNotFound("Pool", pid->GetString());
    checkPoolListenerProtocols(pool->str("protocol"), listener.str("protocol"));
  }
  checkQuota(t, listener.rec.project_id, kL7Policy);
  Obj p = newObj(kL7Policy, newUuid(), listener.rec.project_id, listener.id(), listener.rec.load_balancer_id);
  fillCommon(p, body, true);
  auto& a = p.alloc();
  std::string action = jstring(work, "action");
  jsetStr(p.doc, "action", action, a);
  jsetStr(p.doc, "listener_id", listener.id(), a);
  for (const char* key : {"redirect_pool_id", "redirect_url", "redirect_prefix"}) {
    const JsonValue* v = jgetNonNull(work, key);
    jset(p.doc, key, v ? JsonValue(*v, a) : JsonValue(), a);
  }
  bool redirect = action == "REDIRECT_TO_URL" || action == "REDIRECT_PREFIX";
  const JsonValue* code = jgetNonNull(work, "redirect_http_code");
  if (code && code->GetInt64() != 301 && code->GetInt64() != 302 && code->GetInt64() != 303 &&
      code->GetInt64() != 307 && code->GetInt64() != 308)
    throwInvalidField("redirect_http_code", std::to_string(code->GetInt64()),
                      "Value should be one of: 301, 302, 303, 307, 308");
  jset(p.doc, "redirect_http_code", redirect ? JsonValue(code ? code->GetInt64() : int64_t{302}) : JsonValue(), a);
  jset(p.doc, "position", JsonValue(kMaxPosition), a);
  insert(t, p);
  std::optional<int64_t> pos;
  if (const JsonValue* v = jgetNonNull(body, "position")) pos = v->GetInt64();
  renumberL7Policies(t, listener.id(), p.id(), pos);
  if (const JsonValue* rules = jgetNonNull(body, "rules")) {
    for (const auto& r : rules->GetArray()) {
      JsonValue copy(r, sa);
      createL7RuleObj(c, t, p, copy);
    }
  }
  return *load(t, kL7Policy, p.id());
}

Obj Api::createL7RuleObj(Call&, Txn& t, Obj& policy, JsonValue& body) {
  JsonDoc scratch;
  validateBody(body, l7RuleFields(), BodyMode::kPost, "rule", scratch.GetAllocator());
  checkRule(body);
  store::Query q{kL7Rule, {}, policy.id(), {}, {}};
  if (loadAll(t, q).size() >= kMaxRulesPerPolicy) throwApi(409, "Too many rules on L7 policy " + policy.id());
  checkQuota(t, policy.rec.project_id, kL7Rule);
  Obj r = newObj(kL7Rule, newUuid(), policy.rec.project_id, policy.id(), policy.rec.load_balancer_id);
  fillCommon(r, body, false);
  jremove(r.doc, "name");
  auto& a = r.alloc();
  for (const char* key : {"type", "compare_type", "value"}) jsetStr(r.doc, key, jstring(body, key), a);
  const JsonValue* key = jgetNonNull(body, "key");
  jset(r.doc, "key", key ? JsonValue(*key, a) : JsonValue(), a);
  jset(r.doc, "invert", JsonValue(jbool(body, "invert", false)), a);
  insert(t, r);
  return r;
}

common::HttpResponse Api::l7pList(Call& c) {
  auto scope = listScope(c, "l7policy");
  store::Query q;
  q.kind = kL7Policy;
  if (scope) q.project_id = *scope;
  return listObjects(c, std::move(q), "l7policies", "l7policies_links", {});
}

common::HttpResponse Api::l7pShow(Call& c) {
  JsonDoc out;
  read([&](Txn& t) {
    Obj p = loadToShow(t, kL7Policy, c.args[0], "L7 Policy");
    authorize(c, "l7policy:get_one", p.rec.project_id);
    out = render(t, p);
  });
  return json(200, "l7policy", applyFields(c, std::move(out)));
}

common::HttpResponse Api::l7pCreate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "l7policy");
  validateBody(body, l7PolicyFields(), BodyMode::kPost, "l7policy", body.GetAllocator());
  if (!jgetNonNull(body, "listener_id")) throwInvalidField("listener_id", "None", "Mandatory field missing.");
  if (!jgetNonNull(body, "action")) throwInvalidField("action", "None", "Mandatory field missing.");
  JsonDoc out;
  write([&](Txn& t) {
    Obj l = mustLoad(t, kListener, jstring(body, "listener_id"), "Listener");
    authorize(c, "l7policy:post", l.rec.project_id);
    Obj lb = lockLbForChild(t, l.rec.parent_id);
    Obj p = createL7PolicyObj(c, t, l, body);
    l = *load(t, kListener, l.id());
    setStatus(l, "PENDING_UPDATE");
    save(t, l);
    dispatch(c, t, lb, "l7policy.create", p.id());
    out = render(t, p);
  });
  return json(201, "l7policy", std::move(out));
}

common::HttpResponse Api::l7pUpdate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "l7policy");
  validateBody(body, l7PolicyFields(), BodyMode::kPut, "l7policy", body.GetAllocator());
  JsonDoc out;
  write([&](Txn& t) {
    Obj p = mustLoad(t, kL7Policy, c.args[0], "L7 Policy");
    authorize(c, "l7policy:put", p.rec.project_id);
    Obj l = mustLoad(t, kListener, p.rec.parent_id, "Listener");
    Obj lb = lockLbForChild(t, l.rec.parent_id);
    if (p.str("provisioning_status") != "ACTIVE") throwImmutable("L7 Policy", p.id());
    auto& ba = body.GetAllocator();
    // Sanitise the merged policy: a new target replaces the old one.
    JsonValue merged(p.doc, ba);
    bool new_target = false;
    for (const char* key : {"redirect_pool_id", "redirect_url", "redirect_prefix"})
      new_target = new_target || jgetNonNull(body, key);
    if (new_target || jgetNonNull(body, "action")) {
      if (new_target)
        for (const char* key : {"redirect_pool_id", "redirect_url", "redirect_prefix"}) jsetNull(merged, key, ba);
    }
    for (auto& m : body.GetObject()) jset(merged, std::string(m.name.GetString()), JsonValue(m.value, ba), ba);
    if (jgetNonNull(body, "action") && !new_target && jstring(body, "action") != jstring(p.doc, "action"))
      for (const char* key : {"redirect_pool_id", "redirect_url", "redirect_prefix"})
        if (!jhas(body, key)) jsetNull(merged, key, ba);
    // As Octavia sanitises only the fields given: a new target without an action picks
    // the action, whatever the stored one was.
    if (new_target && !jgetNonNull(body, "action")) jremove(merged, "action");
    sanitizePolicy(merged, ba, false);
    if (const JsonValue* pid = jgetNonNull(merged, "redirect_pool_id")) {
      auto pool = load(t, kPool, pid->GetString());
      if (!pool || pool->rec.parent_id != l.rec.parent_id) throwNotFound("Pool", pid->GetString());
      checkPoolListenerProtocols(pool->str("protocol"), l.str("protocol"));
    }
    auto& a = p.alloc();
    for (const char* key : {"name", "description", "admin_state_up", "tags"}) {
      if (!jhas(body, key)) continue;
      const JsonValue& v = body[key];
      if (v.IsNull() && std::string(key) == "admin_state_up") jset(p.doc, key, JsonValue(false), a);
      else if (v.IsNull() && std::string(key) == "tags") jset(p.doc, key, JsonValue(rapidjson::kArrayType), a);
      else jset(p.doc, key, JsonValue(v, a), a);
    }
    std::string action = jstring(merged, "action");
    jsetStr(p.doc, "action", action, a);
    for (const char* key : {"redirect_pool_id", "redirect_url", "redirect_prefix"}) {
      const JsonValue* v = jgetNonNull(merged, key);
      jset(p.doc, key, v ? JsonValue(*v, a) : JsonValue(), a);
    }
    bool redirect = action == "REDIRECT_TO_URL" || action == "REDIRECT_PREFIX";
    const JsonValue* code = jgetNonNull(merged, "redirect_http_code");
    jset(p.doc, "redirect_http_code", redirect ? JsonValue(code ? code->GetInt64() : int64_t{302}) : JsonValue(), a);
    setStatus(p, "PENDING_UPDATE");
    touch(p);
    save(t, p);
    if (jhas(body, "position")) {
      std::optional<int64_t> pos;
      if (const JsonValue* v = jgetNonNull(body, "position")) pos = v->GetInt64();
      renumberL7Policies(t, l.id(), p.id(), pos);
    }
    setStatus(l, "PENDING_UPDATE");
    save(t, l);
    dispatch(c, t, lb, "l7policy.update", p.id(), &body);
    out = render(t, *load(t, kL7Policy, p.id()));
  });
  return json(200, "l7policy", std::move(out));
}

common::HttpResponse Api::l7pDelete(Call& c) {
  write([&](Txn& t) {
    Obj p = mustLoad(t, kL7Policy, c.args[0], "L7 Policy");
    authorize(c, "l7policy:delete", p.rec.project_id);
    Obj l = mustLoad(t, kListener, p.rec.parent_id, "Listener");
    Obj lb = lockLbForChild(t, l.rec.parent_id);
    if (p.str("provisioning_status") == "PENDING_DELETE") throwImmutable("L7 Policy", p.id());
    deleteTree(t, p, true);
    renumberL7Policies(t, l.id(), "", std::nullopt);
    setStatus(l, "PENDING_UPDATE");
    save(t, l);
    dispatch(c, t, lb, "l7policy.delete", p.id());
  });
  return noContent();
}

namespace {
// Rule writes: load balancer ACTIVE (-> PENDING_UPDATE), policy ACTIVE (-> PENDING_UPDATE),
// listener -> PENDING_UPDATE.
Obj lockPolicy(Api& api, Txn& t, Obj& policy) {
  Obj l = api.mustLoad(t, kListener, policy.rec.parent_id, "Listener");
  Obj lb = api.lockLbForChild(t, l.rec.parent_id);
  if (policy.str("provisioning_status") != "ACTIVE") throwImmutable("L7 Policy", policy.id());
  Api::setStatus(policy, "PENDING_UPDATE");
  api.save(t, policy);
  Api::setStatus(l, "PENDING_UPDATE");
  api.save(t, l);
  return lb;
}
}  // namespace

common::HttpResponse Api::l7rList(Call& c) {
  store::Query q{kL7Rule, {}, c.args[0], {}, {}};
  return listObjects(c, std::move(q), "rules", "rules_links", {}, [&](Txn& t) {
    Obj p = mustLoad(t, kL7Policy, c.args[0], "L7 Policy");
    authorize(c, "l7rule:get_all", p.rec.project_id);
  });
}

common::HttpResponse Api::l7rShow(Call& c) {
  JsonDoc out;
  read([&](Txn& t) {
    t.prefetchGet(kL7Rule, c.args[1]);  // one round trip for both
    Obj p = mustLoad(t, kL7Policy, c.args[0], "L7 Policy");
    auto r = load(t, kL7Rule, c.args[1]);
    if (!r || r->rec.parent_id != p.id() || r->str("provisioning_status") == "DELETED")
      throwNotFound("L7 Rule", c.args[1]);
    authorize(c, "l7rule:get_one", r->rec.project_id);
    out = render(t, *r);
  });
  return json(200, "rule", applyFields(c, std::move(out)));
}

common::HttpResponse Api::l7rCreate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "rule");
  validateBody(body, l7RuleFields(), BodyMode::kPost, "rule", body.GetAllocator());
  JsonDoc out;
  write([&](Txn& t) {
    Obj p = mustLoad(t, kL7Policy, c.args[0], "L7 Policy");
    authorize(c, "l7rule:post", p.rec.project_id);
    Obj lb = lockPolicy(*this, t, p);
    Obj r = createL7RuleObj(c, t, p, body);
    dispatch(c, t, lb, "l7rule.create", r.id());
    out = render(t, r);
  });
  return json(201, "rule", std::move(out));
}

common::HttpResponse Api::l7rUpdate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "rule");
  validateBody(body, l7RuleFields(), BodyMode::kPut, "rule", body.GetAllocator());
  for (const char* not_null : {"type", "compare_type", "value"})
    if (jhas(body, not_null) && body[not_null].IsNull())
      throwInvalidField(not_null, "None", "Mandatory field missing.");
  JsonDoc out;
  write([&](Txn& t) {
    Obj p = mustLoad(t, kL7Policy, c.args[0], "L7 Policy");
    auto r = load(t, kL7Rule, c.args[1]);
    if (!r || r->rec.parent_id != p.id() || r->str("provisioning_status") == "DELETED")
      throwNotFound("L7 Rule", c.args[1]);
    authorize(c, "l7rule:put", r->rec.project_id);
    Obj lb = lockPolicy(*this, t, p);
    if (r->str("provisioning_status") != "ACTIVE") throwImmutable("L7 Rule", r->id());
    JsonDoc defaults(rapidjson::kObjectType);
    defaults.AddMember("invert", false, defaults.GetAllocator());
    defaults.AddMember("admin_state_up", false, defaults.GetAllocator());
    defaults.AddMember("tags", JsonValue(rapidjson::kArrayType), defaults.GetAllocator());
    applyUpdate(*r, body, defaults);
    checkRule(r->doc);  // PUT validates the merged rule
    setStatus(*r, "PENDING_UPDATE");
    touch(*r);
    save(t, *r);
    dispatch(c, t, lb, "l7rule.update", r->id(), &body);
    out = render(t, *r);
  });
  return json(200, "rule", std::move(out));
}

common::HttpResponse Api::l7rDelete(Call& c) {
  write([&](Txn& t) {
    Obj p = mustLoad(t, kL7Policy, c.args[0], "L7 Policy");
    auto r = load(t, kL7Rule, c.args[1]);
    if (!r || r->rec.parent_id != p.id() || r->str("provisioning_status") == "DELETED")
      throwNotFound("L7 Rule", c.args[1]);
    authorize(c, "l7rule:delete", r->rec.project_id);
    Obj lb = lockPolicy(*this, t, p);
    setStatus(*r, "PENDING_DELETE");
    save(t, *r);
    dispatch(c, t, lb, "l7rule.delete", r->id());
  });
  return noContent();
}

}  // namespace banyan::provider::api
