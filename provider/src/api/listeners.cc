// /v2/lbaas/listeners (octavia/api/v2/controllers/listener.py, types/listener.py).
#include <algorithm>

#include "api/api_impl.h"
#include "api/cert_checks.h"

namespace banyan::provider::api {
namespace {

constexpr int64_t kMaxTimeout = 2073600000;  // 24 days in ms (constants.MAX_TIMEOUT)
const std::vector<std::string> kTlsVersions = {"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
const std::vector<std::string> kAlpn = {"h2", "http/1.1", "http/1.0"};
const std::vector<std::string> kHttpHeaders = {"X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto"};
const std::vector<std::string> kClientCertHeaders = {
    "X-SSL-Client-Verify", "X-SSL-Client-Has-Cert", "X-SSL-Client-DN",       "X-SSL-Client-CN",
    "X-SSL-Issuer",        "X-SSL-Client-SHA1",     "X-SSL-Client-Not-Before", "X-SSL-Client-Not-After"};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// TCP-family protocols share one port space on a load balancer; UDP and SCTP have their own.
std::string l4Of(const std::string& protocol) {
  if (protocol == "UDP" || protocol == "SCTP") return protocol;
  return "TCP";
}

int tlsRank(const std::string& v) {
  for (size_t i = 0; i < kTlsVersions.size(); ++i)
    if (kTlsVersions[i] == v) return static_cast<int>(i);
  return -1;
}

}  // namespace

const std::vector<FieldSpec>& listenerFields() {
  static const std::vector<FieldSpec> f = [] {
    std::vector<FieldSpec> v;
    auto timeout = [](const char* name) {
      return FieldSpec{.name = name, .type = FieldType::kInt, .min = 0, .max = kMaxTimeout};
    };
    v.push_back({.name = "name"});
    v.push_back({.name = "description"});
    v.push_back({.name = "admin_state_up", .type = FieldType::kBool});
    v.push_back({.name = "loadbalancer_id", .type = FieldType::kUuid, .on_put = false});
    v.push_back({.name = "protocol", .type = FieldType::kEnum, .on_put = false, .required = true,
                 .choices = {"TCP", "HTTP", "HTTPS", "TERMINATED_HTTPS", "UDP", "SCTP", "PROMETHEUS"}});
    v.push_back({.name = "protocol_port", .type = FieldType::kInt, .on_put = false, .required = true,
                 .min = 1, .max = 65535});
    v.push_back({.name = "connection_limit", .type = FieldType::kInt, .min = -1});
    v.push_back({.name = "default_pool_id", .type = FieldType::kUuid});
    v.push_back({.name = "default_tls_container_ref"});
    v.push_back({.name = "sni_container_refs", .type = FieldType::kStringList});
    v.push_back({.name = "insert_headers", .type = FieldType::kDict});
    v.push_back(timeout("timeout_client_data"));
    v.push_back(timeout("timeout_member_connect"));
    v.push_back(timeout("timeout_member_data"));
    v.push_back(timeout("timeout_tcp_inspect"));
    v.push_back({.name = "client_authentication", .type = FieldType::kEnum,
                 .choices = {"NONE", "OPTIONAL", "MANDATORY"}});
    v.push_back({.name = "client_ca_tls_container_ref"});
    v.push_back({.name = "client_crl_container_ref"});
    v.push_back({.name = "allowed_cidrs", .type = FieldType::kStringList});
    v.push_back({.name = "tls_ciphers", .max_len = 2048});
    v.push_back({.name = "tls_versions", .type = FieldType::kStringList, .max_len = 32, .choices = kTlsVersions});
    v.push_back({.name = "alpn_protocols", .type = FieldType::kStringList, .choices = kAlpn});
    v.push_back({.name = "tags", .type = FieldType::kStringList});
    v.push_back({.name = "project_id", .on_put = false, .max_len = 36});
    v.push_back({.name = "tenant_id", .on_put = false, .max_len = 36});
    v.push_back({.name = "default_pool", .type = FieldType::kObject, .on_put = false});
    v.push_back({.name = "l7policies", .type = FieldType::kList, .on_put = false});
    return v;
  }();
  return f;
}

namespace {

// The checks of listener.py that look at the whole (merged) listener.
void checkListener(const ApiOptions& opts, JsonDoc& l, const std::string& vip_address) {
  auto& a = l.GetAllocator();
  std::string protocol = jstring(l, "protocol");
  bool terminated = protocol == "TERMINATED_HTTPS";
  bool has_default = jgetNonNull(l, "default_tls_container_ref") != nullptr;
  bool has_sni = !jstrings(l, "sni_container_refs").empty();
  if (terminated && !opts.allow_tls_terminated_listeners)
    throwApi(400, "The selected protocol is not allowed in this deployment: TERMINATED_HTTPS");
  if (protocol == "PROMETHEUS" && !opts.allow_prometheus_listeners)
    throwApi(400, "The selected protocol is not allowed in this deployment: PROMETHEUS");
  if (terminated && !has_default && !has_sni)
    throwValidation("An SNI or default certificate container reference must be provided for "
                    "TERMINATED_HTTPS listeners.");
  bool tls_capable = terminated || protocol == "PROMETHEUS";
  if (!tls_capable && (has_default || has_sni || jgetNonNull(l, "client_ca_tls_container_ref") ||
                       jgetNonNull(l, "client_crl_container_ref")))
    throwValidation("Certificate container references are only allowed on TERMINATED_HTTPS or "
                    "PROMETHEUS protocol listeners.");
  std::string client_auth = jstring(l, "client_authentication", "NONE");
  bool has_ca = jgetNonNull(l, "client_ca_tls_container_ref") != nullptr;
  if (client_auth != "NONE" && !has_ca)
    throwValidation("Client authentication setting " + client_auth +
                    " requires a client CA container reference.");
  if (has_ca && !has_default && !has_sni)
    throwValidation("An SNI or default certificate container reference must be provided with "
                    "Client Authentication.");
  if (jgetNonNull(l, "client_crl_container_ref") && !has_ca)
    throwValidation("A client authentication CA reference is required to specify a client "
                    "authentication revocation list.");

  if (const JsonValue* h = jgetNonNull(l, "insert_headers")) {
    if (h->MemberCount() > 0) {
      if (protocol != "HTTP" && !terminated)
        throwValidation("The following headers are only valid on HTTP or TERMINATED_HTTPS listeners: " +
                        toJson(*h));
      for (auto& m : h->GetObject()) {
        std::string key(m.name.GetString(), m.name.GetStringLength());
        if (contains(kHttpHeaders, key)) continue;
        if (contains(kClientCertHeaders, key)) {
          if (!terminated)
            throwApi(400, "Invalid input for field/attribute insert_headers. Value: '" + toJson(*h) +
                              "'. " + key + " is not a valid option for HTTP listeners");
          continue;
        }
        throwApi(400, "Invalid input for field/attribute insert_headers. Value: '" + toJson(*h) +
                          "'. " + key + " is not a valid option for insert_headers");
      }
    }
  }

  if (const JsonValue* c = jgetNonNull(l, "tls_ciphers")) {
    std::string ciphers(c->GetString(), c->GetStringLength());
    if (!isValidCipherString(ciphers)) throwValidation("The TLS cipher string contains invalid characters.");
    std::vector<std::string> prohibited;
    size_t start = 0;
    while (start <= ciphers.size()) {
      size_t end = ciphers.find(':', start);
      if (end == std::string::npos) end = ciphers.size();
      std::string one = ciphers.substr(start, end - start);
      for (const auto& p : opts.tls_cipher_prohibit_list)
        if (p == one) prohibited.push_back(one);
      start = end + 1;
    }
    if (!prohibited.empty()) {
      std::string list;
      for (const auto& p : prohibited) list += (list.empty() ? "" : ", ") + p;
      throwValidation("The following ciphers have been prohibited by an administrator: " + list);
    }
  }
  if (const JsonValue* v = jgetNonNull(l, "tls_versions")) {
    if (v->Empty()) throwValidation("The listener tls_versions must not be empty.");
    if (!opts.minimum_tls_version.empty())
      for (const auto& ver : jstrings(l, "tls_versions"))
        if (tlsRank(ver) < tlsRank(opts.minimum_tls_version))
          throwValidation("TLS version " + ver + " is below the minimum version " +
                          opts.minimum_tls_version + " allowed by an administrator.");
  }
  if (const JsonValue* v = jgetNonNull(l, "alpn_protocols"))
    if (v->Empty()) throwValidation("The listener alpn_protocols must not be empty.");

  if (const JsonValue* cidrs = jgetNonNull(l, "allowed_cidrs")) {
    JsonValue normalized(rapidjson::kArrayType);
    bool vip6 = isIpv6(vip_address);
    for (const auto& item : cidrs->GetArray()) {
      std::string text = item.GetString();
      auto n = normalizeCidr(text);
      if (!n) throwApi(400, "Invalid input for field/attribute allowed_cidrs. Value: '" + text +
                                "'. Value should be IPv4 or IPv6 CIDR format");
      if (isIpv6(n->substr(0, n->find('/'))) != vip6)
        throwValidation("CIDR " + text + " IP version incompatible with VIP " + vip_address + " IP version.");
      bool dup = false;
      for (const auto& e : normalized.GetArray()) dup = dup || e.GetString() == *n;
      if (!dup) normalized.PushBack(jstr(*n, a), a);
    }
    jset(l, "allowed_cidrs", normalized.Empty() ? JsonValue() : std::move(normalized), a);
  }
  if ((protocol == "UDP" || protocol == "SCTP") &&
      (has_default || has_sni || has_ca))
    throwValidation(protocol + " protocol listener does not support TLS.");
}

}  // namespace

void Api::checkPoolListenerProtocols(const std::string& pool_protocol, const std::string& listener_protocol) {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> valid = {
      {"TCP", {"TCP", "HTTP", "HTTPS", "PROXY", "PROXYV2"}},
      {"HTTP", {"HTTP", "PROXY", "PROXYV2"}},
      {"HTTPS", {"TCP", "HTTPS", "PROXY", "PROXYV2"}},
      {"TERMINATED_HTTPS", {"HTTP", "PROXY", "PROXYV2"}},
      {"UDP", {"UDP"}},
      {"SCTP", {"SCTP"}},
  };
  if (listener_protocol == "PROMETHEUS")
    throwApi(400, "Protocol PROMETHEUS listeners cannot have child objects.");
  for (const auto& [l, pools] : valid)
    if (l == listener_protocol && contains(pools, pool_protocol)) return;
  throwValidation("The pool protocol '" + pool_protocol + "' is invalid while the listener protocol is '" +
                  listener_protocol + "'.");
}

Obj Api::createListenerObj(Call& c, Txn& t, Obj& lb, JsonValue& body) {
  JsonDoc scratch;
  validateBody(body, listenerFields(), BodyMode::kPost, "listener", scratch.GetAllocator());
  std::string protocol = jstring(body, "protocol");
  int64_t port = jint(body, "protocol_port");
  checkQuota(t, lb.rec.project_id, kListener);

  Obj l = newObj(kListener, newUuid(), lb.rec.project_id, lb.id(), lb.id());
  fillCommon(l, body, true);
  auto& a = l.alloc();
  bool terminated = protocol == "TERMINATED_HTTPS";
  auto setDefault = [&](const char* key, JsonValue def) {
    const JsonValue* v = jgetNonNull(body, key);
    jset(l.doc, key, v ? JsonValue(*v, a) : std::move(def), a);
  };
  jsetStr(l.doc, "protocol", protocol, a);
  jset(l.doc, "protocol_port", JsonValue(port), a);
  setDefault("connection_limit", JsonValue(int64_t{-1}));
  setDefault("default_pool_id", JsonValue());
  setDefault("default_tls_container_ref", JsonValue());
  setDefault("sni_container_refs", JsonValue(rapidjson::kArrayType));
  setDefault("insert_headers", JsonValue(rapidjson::kObjectType));
  setDefault("timeout_client_data", JsonValue(opts_.timeout_client_data));
  setDefault("timeout_member_connect", JsonValue(opts_.timeout_member_connect));
  setDefault("timeout_member_data", JsonValue(opts_.timeout_member_data));
  setDefault("timeout_tcp_inspect", JsonValue(opts_.timeout_tcp_inspect));
  setDefault("client_authentication", JsonValue("NONE", a));
  setDefault("client_ca_tls_container_ref", JsonValue());
  setDefault("client_crl_container_ref", JsonValue());
  setDefault("allowed_cidrs", JsonValue());
  setDefault("tls_ciphers", terminated ? jstr(opts_.default_listener_ciphers, a) : JsonValue());
  setDefault("tls_versions", terminated ? jstringArray(opts_.default_listener_tls_versions, a) : JsonValue());
  setDefault("alpn_protocols", terminated ? jstringArray(opts_.default_listener_alpn_protocols, a) : JsonValue());
  checkListener(opts_, l.doc, lb.str("vip_address"));
  // Octavia's order: SNI references, then the default one; then the client CA and CRL.
  std::vector<std::string> tls_refs = jstrings(l.doc, "sni_container_refs");
  if (std::string d = l.str("default_tls_container_ref"); !d.empty()) tls_refs.push_back(d);
  checkTlsRefs(c, tls_refs);
  checkCaAndCrlRefs(c, l.str("client_ca_tls_container_ref"), l.str("client_crl_container_ref"));

  store::Query q{kListener, {}, lb.id(), {}, {}};
  for (auto& other : loadAll(t, q))
    if (jint(other.doc, "protocol_port") == port && l4Of(other.str("protocol")) == l4Of(protocol))
      throwApi(409, "Another Listener on this Load Balancer is already using protocol " + protocol +
                        " and protocol_port " + std::to_string(port));
  if (const JsonValue* dp = jgetNonNull(l.doc, "default_pool_id")) {
    auto pool = load(t, kPool, dp->GetString());
    if (!pool || pool->rec.parent_id != lb.id()) throwNotFound("Pool", dp->GetString());
    checkPoolListenerProtocols(pool->str("protocol"), protocol);
  }
  insert(t, l);
  return l;
}

common::HttpResponse Api::listenerList(Call& c) {
  auto scope = listScope(c, "listener");
  store::Query q;
  q.kind = kListener;
  if (scope) q.project_id = *scope;
  return listObjects(c, std::move(q), "listeners", "listeners_links", {{"loadbalancer_id", "loadbalancers"}});
}

common::HttpResponse Api::listenerShow(Call& c) {
  JsonDoc out;
  read([&](Txn& t) {
    Obj l = loadToShow(t, kListener, c.args[0], "Listener");
    authorize(c, "listener:get_one", l.rec.project_id);
    out = render(t, l);
  });
  return json(200, "listener", applyFields(c, std::move(out)));
}

common::HttpResponse Api::listenerCreate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "listener");
  // default_pool and l7policies exist only inside a load balancer's full-graph create.
  for (const char* graph_only : {"default_pool", "l7policies"})
    if (jhas(body, graph_only)) throwApi(400, std::string("Unknown attribute for argument listener: ") + graph_only);
  validateBody(body, listenerFields(), BodyMode::kPost, "listener", body.GetAllocator());
  if (!jgetNonNull(body, "loadbalancer_id")) throwInvalidField("loadbalancer_id", "None", "Mandatory field missing.");
  JsonDoc out;
  auto transaction = [&](Txn& t) {
    std::string lb_id = jstring(body, "loadbalancer_id");
    {
      auto lb = load(t, kLb, lb_id);
      if (!lb || lb->str("provisioning_status") == "DELETED") throwNotFound("Load Balancer", lb_id);
      authorize(c, "listener:post", lb->rec.project_id);
    }
    Obj lb = lockLbForChild(t, lb_id);
    Obj l = createListenerObj(c, t, lb, body);
    dispatch(c, t, lb, "listener.create", l.id());
    out = render(t, l);
  };
  // Certificate references are read with no transaction open (cert_checks.h).
  runWithCertChecksOutside([&] { write(transaction); });
  return json(201, "listener", std::move(out));
}

common::HttpResponse Api::listenerUpdate(Call& c) {
  JsonDoc body = parseRootBody(c.http.body, "listener");
  validateBody(body, listenerFields(), BodyMode::kPut, "listener", body.GetAllocator());
  JsonDoc out;
  auto transaction = [&](Txn& t) {
    Obj l = mustLoad(t, kListener, c.args[0], "Listener");
    authorize(c, "listener:put", l.rec.project_id);
    Obj lb = lockLbForChild(t, l.rec.parent_id);
    if (l.str("provisioning_status") != "ACTIVE") throwImmutable("Listener", l.id());
    bool terminated = l.str("protocol") == "TERMINATED_HTTPS";
    JsonDoc defaults(rapidjson::kObjectType);
    auto& da = defaults.GetAllocator();
    defaults.AddMember("connection_limit", int64_t{-1}, da);
    defaults.AddMember("admin_state_up", false, da);
    defaults.AddMember("tags", JsonValue(rapidjson::kArrayType), da);
    defaults.AddMember("sni_container_refs", JsonValue(rapidjson::kArrayType), da);
    defaults.AddMember("insert_headers", JsonValue(rapidjson::kObjectType), da);
    defaults.AddMember("timeout_client_data", opts_.timeout_client_data, da);
    defaults.AddMember("timeout_member_connect", opts_.timeout_member_connect, da);
    defaults.AddMember("timeout_member_data", opts_.timeout_member_data, da);
    defaults.AddMember("timeout_tcp_inspect", opts_.timeout_tcp_inspect, da);
    defaults.AddMember("client_authentication", "NONE", da);
    if (terminated) {
      defaults.AddMember("tls_ciphers", jstr(opts_.default_listener_ciphers, da), da);
      defaults.AddMember("tls_versions", jstringArray(opts_.default_listener_tls_versions, da), da);
      defaults.AddMember("alpn_protocols", jstringArray(opts_.default_listener_alpn_protocols, da), da);
    }
    // A PUT checks the references it names; the CA and CRL are checked as they will be
    // (a null in the body keeps the stored one for this check, as Octavia's does).
    auto refOr = [&](const char* key) {
      const JsonValue* v = jgetNonNull(body, key);
      return v ? std::string(v->GetString(), v->GetStringLength()) : l.str(key);
    };
    std::string ca_ref = refOr("client_ca_tls_container_ref");
    std::string crl_ref = refOr("client_crl_container_ref");
    applyUpdate(l, body, defaults);
    checkListener(opts_, l.doc, lb.str("vip_address"));
    std::vector<std::string> tls_refs;
    if (jgetNonNull(body, "sni_container_refs")) tls_refs = jstrings(body, "sni_container_refs");
    if (const JsonValue* d = jgetNonNull(body, "default_tls_container_ref"))
      tls_refs.emplace_back(d->GetString(), d->GetStringLength());
    checkTlsRefs(c, tls_refs);
    checkCaAndCrlRefs(c, ca_ref, crl_ref);
    if (const JsonValue* dp = jgetNonNull(body, "default_pool_id")) {
      auto pool = load(t, kPool, dp->GetString());
      if (!pool || pool->rec.parent_id != lb.id()) throwNotFound("Pool", dp->GetString());
      checkPoolListenerProtocols(pool->str("protocol"), l.str("protocol"));
    }
    setStatus(l, "PENDING_UPDATE");
    touch(l);
    save(t, l);
    dispatch(c, t, lb, "listener.update", l.id(), &body);
    out = render(t, l);
  };
  // Certificate references are read with no transaction open (cert_checks.h).
  runWithCertChecksOutside([&] { write(transaction); });
  return json(200, "listener", std::move(out));
}

common::HttpResponse Api::listenerDelete(Call& c) {
  write([&](Txn& t) {
    Obj l = mustLoad(t, kListener, c.args[0], "Listener");
    authorize(c, "listener:delete", l.rec.project_id);
    Obj lb = lockLbForChild(t, l.rec.parent_id);
    if (l.str("provisioning_status") == "PENDING_DELETE") throwImmutable("Listener", l.id());
    deleteTree(t, l, true);
    dispatch(c, t, lb, "listener.delete", l.id());
  });
  return noContent();
}

}  // namespace banyan::provider::api
