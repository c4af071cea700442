// Octavia objects -> banyan-proxy config document. The rules (what is left out, how
// defaults and limits are mapped) are Octavia's HAProxy templates' (jinja_cfg.py and
// combined_listeners/templates/macros.j2); docs/provider-render.md lists them.
#include "render/render.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

namespace banyan::provider::render {
namespace {

using common::Error;
using common::ErrorCode;
using common::makeError;
using common::Result;
using Json = rapidjson::Value;
using JsonDoc = rapidjson::Document;

// Limits of dataplane/src/config/schema/proxy-config.schema.json where the Octavia
// API allows more.
constexpr int64_t kMaxTimeoutMs = 86400000;        // the API allows 24 days, the proxy one
constexpr int64_t kMaxConnectionLimit = 1000000;   // also Octavia's HAPROXY_MAX_MAXCONN
constexpr int64_t kMaxMonitorSeconds = 2147483;

// Thrown inside this file only; renderProxyConfig turns it into a Result.
struct RenderFailure {
  Error error;
};

// One stored record with its body parsed.
struct Obj {
  const store::Record* rec = nullptr;
  JsonDoc doc;
  const std::string& id() const { return rec->id; }
  std::string context() const { return rec->kind + " " + rec->id; }
};

[[noreturn]] void fail(ErrorCode code, const Obj& o, std::string message) {
  throw RenderFailure{makeError(code, std::move(message), o.context())};
}

Obj parseRecord(const store::Record& r) {
  Obj o;
  o.rec = &r;
  o.doc.Parse(r.body.data(), r.body.size());
  if (o.doc.HasParseError() || !o.doc.IsObject()) fail(ErrorCode::kInvalidArgument, o, "stored body is not a JSON object");
  return o;
}

// The value of key, or nullptr when absent or null (the API stores unset fields as null).
const Json* field(const Json& o, const char* key) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

std::string getString(const Obj& o, const char* key, std::string def = {}) {
  const Json* v = field(o.doc, key);
  if (!v) return def;
  if (!v->IsString()) fail(ErrorCode::kInvalidArgument, o, std::string(key) + " is not a string");
  return std::string(v->GetString(), v->GetStringLength());
}

bool getBool(const Obj& o, const char* key, bool def) {
  const Json* v = field(o.doc, key);
  if (!v) return def;
  if (!v->IsBool()) fail(ErrorCode::kInvalidArgument, o, std::string(key) + " is not a boolean");
  return v->GetBool();
}

std::optional<int64_t> getInt(const Obj& o, const char* key) {
  const Json* v = field(o.doc, key);
  if (!v) return std::nullopt;
  if (!v->IsInt64()) fail(ErrorCode::kInvalidArgument, o, std::string(key) + " is not an integer");
  return v->GetInt64();
}

std::vector<std::string> getStrings(const Obj& o, const char* key) {
  std::vector<std::string> out;
  const Json* v = field(o.doc, key);
  if (!v) return out;
  if (!v->IsArray()) fail(ErrorCode::kInvalidArgument, o, std::string(key) + " is not a list");
  for (const auto& item : v->GetArray()) {
    if (!item.IsString()) fail(ErrorCode::kInvalidArgument, o, std::string(key) + " holds a non-string");
    out.emplace_back(item.GetString(), item.GetStringLength());
  }
  return out;
}

bool ciEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 6265 cookie-name (an RFC 9110 token), which banyan-proxy requires; the Octavia
// API accepts anything without whitespace, ',', ';' or '\'.
bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    bool ok = std::isalnum(u) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

class Renderer {
 public:
  Renderer(const LoadBalancerGraph& graph, const RenderContext& ctx, CertificateNeeds* collect = nullptr)
      : graph_(graph), ctx_(ctx), collect_(collect) {}

  std::string run() {
    out_.SetObject();
    lb_ = parseRecord(graph_.loadbalancer);
    if (ctx_.generation < 0) fail(ErrorCode::kInvalidArgument, lb_, "generation must not be negative");
    out_.AddMember("generation", Json(ctx_.generation), alloc());
    if (!ctx_.session_cookie_secret.empty()) {
      Json settings(rapidjson::kObjectType);
      settings.AddMember("session_cookie_secret", str(ctx_.session_cookie_secret), alloc());
      out_.AddMember("settings", settings, alloc());
    }
    Json listeners(rapidjson::kArrayType);
    Json pools(rapidjson::kArrayType);
    // Octavia renders no proxy at all for a disabled load balancer (haproxy.cfg.j2:
    // `if loadbalancer.enabled`), nor for one being deleted.
    if (!leftOut(lb_) && getBool(lb_, "admin_state_up", true)) {
      index();
      for (const Obj& l : listeners_)
        if (!leftOut(l)) listeners.PushBack(listener(l), alloc());
      for (const Obj& p : pools_)
        if (used_pools_.count(p.id())) pools.PushBack(pool(p), alloc());
    }
    out_.AddMember("listeners", listeners, alloc());
    out_.AddMember("pools", pools, alloc());
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    out_.Accept(writer);
    return std::string(buffer.GetString(), buffer.GetSize());
  }

 private:
  JsonDoc::AllocatorType& alloc() { return out_.GetAllocator(); }
  Json str(std::string_view s) { return Json(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc()); }

  // PENDING_DELETE objects are being deleted (Octavia's templates skip them);
  // DELETED ones are gone.
  bool leftOut(const Obj& o) const {
    std::string status = getString(o, "provisioning_status");
    return status == "DELETED" || (status == "PENDING_DELETE" && !ctx_.include_pending_delete);
  }

  void index() {
    auto parseAll = [](const std::vector<store::Record>& records, std::vector<Obj>& out) {
      out.reserve(records.size());
      for (const auto& r : records) out.push_back(parseRecord(r));
    };
    parseAll(graph_.listeners, listeners_);
    parseAll(graph_.pools, pools_);
    parseAll(graph_.members, members_);
    parseAll(graph_.healthmonitors, monitors_);
    parseAll(graph_.l7policies, policies_);
    parseAll(graph_.l7rules, rules_);
    // The vectors are complete: pointers into them stay valid from here on.
    for (const Obj& p : pools_)
      if (!leftOut(p)) pool_by_id_[p.id()] = &p;
    for (const Obj& m : members_)
      if (!leftOut(m)) members_by_pool_[m.rec->parent_id].push_back(&m);
    for (const Obj& h : monitors_)
      if (!leftOut(h) && !monitor_by_pool_.count(h.rec->parent_id)) monitor_by_pool_[h.rec->parent_id] = &h;
    for (const Obj& p : policies_)
      if (!leftOut(p)) policies_by_listener_[p.rec->parent_id].push_back(&p);
    for (const Obj& r : rules_)
      if (!leftOut(r)) rules_by_policy_[r.rec->parent_id].push_back(&r);
  }

  std::string vipAddress() {
    std::string vip = ctx_.vip_address.empty() ? getString(lb_, "vip_address") : ctx_.vip_address;
    if (vip.empty()) fail(ErrorCode::kInvalidArgument, lb_, "the load balancer has no VIP address to bind");
    return vip;
  }

  std::vector<std::string> additionalAddresses() {
    if (!ctx_.additional_vip_addresses.empty()) return ctx_.additional_vip_addresses;
    std::vector<std::string> out;
    const Json* av = field(lb_.doc, "additional_vips");
    if (!av || !av->IsArray()) return out;
    for (const auto& item : av->GetArray()) {
      if (!item.IsObject()) continue;
      const Json* ip = field(item, "ip_address");
      if (ip && ip->IsString()) out.emplace_back(ip->GetString(), ip->GetStringLength());
    }
    return out;
  }

  // Listener timeouts: null keeps the proxy's default (Octavia's [haproxy_amphora]
  // defaults, the same numbers); 0 means the default to both.
  void timeout(const Obj& l, const char* key, Json& out) {
    auto v = getInt(l, key);
    if (!v) return;
    int64_t ms = std::clamp<int64_t>(*v, 0, kMaxTimeoutMs);
    out.AddMember(rapidjson::StringRef(key), Json(ms), alloc());
  }

  // A certificate reference -> the PEM file the controller placed on the amphora.
  std::string certificatePath(const Obj& owner, const std::string& ref, const char* field_name) {
    if (collect_) {
      // Certificates with their keys, or PEM secrets (CA, CRL) as stored.
      std::string_view f = field_name;
      bool bundle = f == "default_tls_container_ref" || f == "sni_container_refs" || f == "tls_container_ref";
      (bundle ? collect_->tls_bundles : collect_->pem_secrets).insert(ref);
      return "/collected";
    }
    auto it = ctx_.certificate_paths.find(ref);
    if (it != ctx_.certificate_paths.end()) return it->second;
    if (ctx_.certificate_paths.empty())
      fail(ErrorCode::kUnavailable, owner,
           owner.rec->kind == "listener" ? "TERMINATED_HTTPS needs a certificate manager; none is configured"
                                         : "pool TLS certificates need a certificate manager; none is configured");
    fail(ErrorCode::kUnavailable, owner,
         std::string(field_name) + " " + ref + " has not been placed on the amphora (no certificate path for it)");
  }

  Json listener(const Obj& l) {
    std::string protocol = getString(l, "protocol");
    if (protocol == "SCTP")
      fail(ErrorCode::kInvalidArgument, l,
           protocol + " listeners are not supported by banyan-proxy yet (it serves HTTP, TCP, HTTPS, "
                      "TERMINATED_HTTPS, UDP and PROMETHEUS)");
    if (protocol != "HTTP" && protocol != "TCP" && protocol != "HTTPS" && protocol != "TERMINATED_HTTPS" &&
        protocol != "UDP" && protocol != "PROMETHEUS")
      fail(ErrorCode::kInvalidArgument, l, "unknown listener protocol \"" + protocol + "\"");
    bool http = protocol == "HTTP" || protocol == "TERMINATED_HTTPS";
    // PROMETHEUS: banyan-proxy answers with its metrics itself (no pools, no L7
    // policies); with certificate refs it terminates TLS like TERMINATED_HTTPS
    // (Octavia's template binds it with `ssl crt` then).
    bool prometheus = protocol == "PROMETHEUS";
    bool terminated = protocol == "TERMINATED_HTTPS" ||
                      (prometheus && (!getString(l, "default_tls_container_ref").empty() ||
                                      !getStrings(l, "sni_container_refs").empty()));

    Json out(rapidjson::kObjectType);
    out.AddMember("id", str(l.id()), alloc());
    if (const Json* name = field(l.doc, "name"); name && name->IsString() && name->GetStringLength() <= 255)
      out.AddMember("name", Json(*name, alloc()), alloc());
    out.AddMember("protocol", str(protocol), alloc());
    out.AddMember("address", str(vipAddress()), alloc());
    if (auto extra = additionalAddresses(); !extra.empty()) {
      Json a(rapidjson::kArrayType);
      for (const auto& addr : extra) a.PushBack(str(addr), alloc());
      out.AddMember("additional_addresses", a, alloc());
    }
    auto port = getInt(l, "protocol_port");
    if (!port || *port < 1 || *port > 65535) fail(ErrorCode::kInvalidArgument, l, "protocol_port is not 1-65535");
    out.AddMember("protocol_port", Json(*port), alloc());
    out.AddMember("admin_state_up", getBool(l, "admin_state_up", true), alloc());
    // Octavia: `if connection_limit and connection_limit > -1`, so 0 is the default
    // too (the proxy would take 0 literally and accept nothing); its global maxconn
    // caps at 1000000.
    int64_t limit = getInt(l, "connection_limit").value_or(-1);
    if (limit <= 0) limit = -1;
    out.AddMember("connection_limit", Json(std::min(limit, kMaxConnectionLimit)), alloc());
    timeout(l, "timeout_client_data", out);
    timeout(l, "timeout_member_connect", out);
    timeout(l, "timeout_member_data", out);
    timeout(l, "timeout_tcp_inspect", out);
    if (auto cidrs = getStrings(l, "allowed_cidrs"); !cidrs.empty()) {
      // The API stored them normalised (host bits cleared), as the proxy wants.
      Json list(rapidjson::kArrayType);
      for (const auto& c : cidrs) list.PushBack(str(c), alloc());
      out.AddMember("allowed_cidrs", list, alloc());
    }
    if (http) insertHeaders(l, terminated, out);

    if (std::string dp = getString(l, "default_pool_id"); !dp.empty() && !prometheus) {
      // A default pool being deleted is no default pool (jinja_cfg.py keeps
      // default_pool only when it is among the listener's rendered pools).
      if (pool_by_id_.count(dp)) {
        out.AddMember("default_pool_id", str(dp), alloc());
        used_pools_.insert(dp);
      }
    }
    if (terminated) listenerTls(l, out);

    auto policies = policies_by_listener_.find(l.id());
    if (policies != policies_by_listener_.end() && !policies->second.empty()) {
      if (prometheus)
        fail(ErrorCode::kInvalidArgument, *policies->second.front(),
             "a PROMETHEUS listener has no L7 policies; listener " + l.id() + " is PROMETHEUS");
      // TCP and HTTPS listeners: banyan-proxy matches the policies on the TLS
      // ClientHello's SNI (the stock amphora renders them too, where HAProxy's
      // HTTP fetches never match in `mode tcp`). UDP listeners: Octavia's
      // keepalived amphora renders neither the policies nor their redirect
      // pools, so they are left out here (the proxy would ignore them anyway).
      if (protocol == "UDP") return out;
      std::vector<const Obj*> sorted = policies->second;
      std::stable_sort(sorted.begin(), sorted.end(), [](const Obj* x, const Obj* y) {
        return getInt(*x, "position").value_or(0) < getInt(*y, "position").value_or(0);
      });
      Json list(rapidjson::kArrayType);
      for (const Obj* p : sorted)
        if (auto rendered = policy(*p)) list.PushBack(*rendered, alloc());
      out.AddMember("l7policies", list, alloc());
    }
    return out;
  }

  void insertHeaders(const Obj& l, bool terminated, Json& out) {
    static const std::set<std::string> kForwarded = {"X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto"};
    static const std::set<std::string> kClientCert = {
        "X-SSL-Client-Verify", "X-SSL-Client-Has-Cert", "X-SSL-Client-DN",         "X-SSL-Client-CN",
        "X-SSL-Issuer",        "X-SSL-Client-SHA1",     "X-SSL-Client-Not-Before", "X-SSL-Client-Not-After"};
    const Json* h = field(l.doc, "insert_headers");
    if (!h) return;
    if (!h->IsObject()) fail(ErrorCode::kInvalidArgument, l, "insert_headers is not an object");
    Json headers(rapidjson::kObjectType);
    for (const auto& m : h->GetObject()) {
      std::string key(m.name.GetString(), m.name.GetStringLength());
      bool known = kForwarded.count(key) || kClientCert.count(key);
      if (!known) fail(ErrorCode::kInvalidArgument, l, "insert_headers key " + key + " is not supported");
      // Octavia: `insert_headers.get(key, 'False').lower() == 'true'`.
      bool on = m.value.IsBool() ? m.value.GetBool()
                                 : m.value.IsString() && ciEquals(m.value.GetString(), "true");
      // The template writes the X-SSL-* headers on TERMINATED_HTTPS listeners only.
      if (!on || (kClientCert.count(key) && !terminated)) continue;
      headers.AddMember(str(key), Json(true), alloc());
    }
    if (headers.MemberCount() > 0) out.AddMember("insert_headers", headers, alloc());
  }

  void listenerTls(const Obj& l, Json& out) {
    std::string def = getString(l, "default_tls_container_ref");
    std::vector<std::string> sni = getStrings(l, "sni_container_refs");
    // With SNI certificates only, the first one is the default, as the first line
    // of HAProxy's crt-list is.
    if (def.empty()) {
      if (sni.empty())
        fail(ErrorCode::kInvalidArgument, l, "a TERMINATED_HTTPS listener needs default_tls_container_ref or "
                                             "sni_container_refs");
      def = sni.front();
      sni.erase(sni.begin());
    }
    out.AddMember("default_tls_certificate", str(certificatePath(l, def, "default_tls_container_ref")), alloc());
    if (!sni.empty()) {
      Json list(rapidjson::kArrayType);
      for (const auto& ref : sni)
        if (ref != def) list.PushBack(str(certificatePath(l, ref, "sni_container_refs")), alloc());
      out.AddMember("sni_certificates", list, alloc());
    }
    // macros.j2 renders client verification only with a CA, and a CRL only with both.
    if (std::string ca = getString(l, "client_ca_tls_container_ref"); !ca.empty()) {
      out.AddMember("client_ca_certificate", str(certificatePath(l, ca, "client_ca_tls_container_ref")), alloc());
      out.AddMember("client_authentication", str(getString(l, "client_authentication", "NONE")), alloc());
      if (std::string crl = getString(l, "client_crl_container_ref"); !crl.empty())
        out.AddMember("client_crl", str(certificatePath(l, crl, "client_crl_container_ref")), alloc());
    }
    tlsOptions(l, out, /*pool=*/false);
  }

  // tls_versions, tls_ciphers, alpn_protocols: the same on listeners and pools.
  void tlsOptions(const Obj& o, Json& out, bool /*pool*/) {
    if (auto versions = getStrings(o, "tls_versions"); !versions.empty()) {
      Json list(rapidjson::kArrayType);
      for (const auto& v : versions) list.PushBack(str(v), alloc());
      out.AddMember("tls_versions", list, alloc());
    }
    if (std::string ciphers = getString(o, "tls_ciphers"); !ciphers.empty())
      out.AddMember("tls_ciphers", str(ciphers), alloc());
    // Pools keep "h2": banyan-proxy speaks HTTP/2 to members whose TLS
    // handshake selects it (tls_enabled pools only; unused otherwise).
    std::vector<std::string> alpn = getStrings(o, "alpn_protocols");
    if (!alpn.empty()) {
      Json list(rapidjson::kArrayType);
      for (const auto& v : alpn) list.PushBack(str(v), alloc());
      out.AddMember("alpn_protocols", list, alloc());
    }
  }

  std::optional<Json> policy(const Obj& p) {
    std::string action = getString(p, "action");
    Json out(rapidjson::kObjectType);
    out.AddMember("id", str(p.id()), alloc());
    if (const Json* name = field(p.doc, "name"); name && name->IsString() && name->GetStringLength() <= 255)
      out.AddMember("name", Json(*name, alloc()), alloc());
    if (auto position = getInt(p, "position"); position && *position >= 1)
      out.AddMember("position", Json(*position), alloc());
    out.AddMember("action", str(action), alloc());
    if (action == "REDIRECT_TO_POOL") {
      std::string pool_id = getString(p, "redirect_pool_id");
      // jinja_cfg.py drops the redirect pool when it is being deleted, and the
      // template then writes no use_backend: the policy does nothing.
      if (!pool_by_id_.count(pool_id)) return std::nullopt;
      out.AddMember("redirect_pool_id", str(pool_id), alloc());
      used_pools_.insert(pool_id);
    } else if (action == "REDIRECT_TO_URL" || action == "REDIRECT_PREFIX") {
      const char* key = action == "REDIRECT_TO_URL" ? "redirect_url" : "redirect_prefix";
      out.AddMember(rapidjson::StringRef(key), str(getString(p, key)), alloc());
      if (auto code = getInt(p, "redirect_http_code")) out.AddMember("redirect_http_code", Json(*code), alloc());
    } else if (action != "REJECT") {
      fail(ErrorCode::kInvalidArgument, p, "unknown L7 policy action \"" + action + "\"");
    }
    // A disabled policy or rule stays in the document (validated, never matching),
    // as Octavia keeps the object but renders no rule for it.
    out.AddMember("admin_state_up", getBool(p, "admin_state_up", true), alloc());
    Json rules(rapidjson::kArrayType);
    if (auto it = rules_by_policy_.find(p.id()); it != rules_by_policy_.end())
      for (const Obj* r : it->second) rules.PushBack(rule(*r), alloc());
    out.AddMember("rules", rules, alloc());
    return out;
  }

  Json rule(const Obj& r) {
    std::string type = getString(r, "type");
    Json out(rapidjson::kObjectType);
    out.AddMember("id", str(r.id()), alloc());
    out.AddMember("type", str(type), alloc());
    out.AddMember("compare_type", str(getString(r, "compare_type")), alloc());
    // The key means something only to these types (macros.j2 uses it nowhere else).
    if (type == "HEADER" || type == "COOKIE" || type == "SSL_DN_FIELD")
      out.AddMember("key", str(getString(r, "key")), alloc());
    out.AddMember("value", str(getString(r, "value")), alloc());
    out.AddMember("invert", getBool(r, "invert", false), alloc());
    out.AddMember("admin_state_up", getBool(r, "admin_state_up", true), alloc());
    return out;
  }

  Json pool(const Obj& p) {
    std::string protocol = getString(p, "protocol");
    if (protocol == "SCTP")
      fail(ErrorCode::kInvalidArgument, p, protocol + " pools are not supported by banyan-proxy yet");
    Json out(rapidjson::kObjectType);
    out.AddMember("id", str(p.id()), alloc());
    if (const Json* name = field(p.doc, "name"); name && name->IsString() && name->GetStringLength() <= 255)
      out.AddMember("name", Json(*name, alloc()), alloc());
    out.AddMember("protocol", str(protocol), alloc());
    out.AddMember("lb_algorithm", str(getString(p, "lb_algorithm", "ROUND_ROBIN")), alloc());
    out.AddMember("admin_state_up", getBool(p, "admin_state_up", true), alloc());
    Json members(rapidjson::kArrayType);
    if (auto it = members_by_pool_.find(p.id()); it != members_by_pool_.end())
      for (const Obj* m : it->second) members.PushBack(member(*m), alloc());
    out.AddMember("members", members, alloc());
    if (auto it = monitor_by_pool_.find(p.id()); it != monitor_by_pool_.end())
      if (auto hm = monitor(*it->second, protocol)) out.AddMember("health_monitor", *hm, alloc());
    if (const Json* sp = field(p.doc, "session_persistence")) out.AddMember("session_persistence", persistence(p, *sp), alloc());
    if (getBool(p, "tls_enabled", false)) poolTls(p, protocol, out);
    return out;
  }

  Json member(const Obj& m) {
    Json out(rapidjson::kObjectType);
    out.AddMember("id", str(m.id()), alloc());
    if (const Json* name = field(m.doc, "name"); name && name->IsString() && name->GetStringLength() <= 255)
      out.AddMember("name", Json(*name, alloc()), alloc());
    out.AddMember("address", str(getString(m, "address")), alloc());
    out.AddMember("protocol_port", Json(getInt(m, "protocol_port").value_or(0)), alloc());
    out.AddMember("weight", Json(getInt(m, "weight").value_or(1)), alloc());
    out.AddMember("backup", getBool(m, "backup", false), alloc());
    out.AddMember("admin_state_up", getBool(m, "admin_state_up", true), alloc());
    if (std::string addr = getString(m, "monitor_address"); !addr.empty())
      out.AddMember("monitor_address", str(addr), alloc());
    if (auto port = getInt(m, "monitor_port"); port && *port > 0) out.AddMember("monitor_port", Json(*port), alloc());
    return out;
  }

  // Nothing when Octavia renders no check: an HTTP monitor of a UDP pool
  // other than GET (keepalived's HTTP_GET only gets).
  std::optional<Json> monitor(const Obj& h, const std::string& pool_protocol) {
    std::string type = getString(h, "type");
    bool udp_pool = pool_protocol == "UDP";
    if (type == "SCTP")
      fail(ErrorCode::kInvalidArgument, h,
           type + " health monitors are not supported by banyan-proxy yet (it runs TCP, HTTP, HTTPS, TLS-HELLO, "
                  "PING and UDP-CONNECT)");
    if (type != "TCP" && type != "HTTP" && type != "HTTPS" && type != "TLS-HELLO" && type != "PING" &&
        type != "UDP-CONNECT")
      fail(ErrorCode::kInvalidArgument, h, "unknown health monitor type \"" + type + "\"");
    // Octavia's API pairs UDP pools with UDP-CONNECT, TCP and HTTP only.
    bool fits = udp_pool ? type == "UDP-CONNECT" || type == "TCP" || type == "HTTP" : type != "UDP-CONNECT";
    if (!fits)
      fail(ErrorCode::kInvalidArgument, h,
           type + " health monitors cannot check a " + pool_protocol + " pool (UDP pools take UDP-CONNECT, TCP "
                  "and HTTP; UDP-CONNECT needs a UDP pool)");
    if (udp_pool && type == "HTTP" && getString(h, "http_method", "GET") != "GET") return std::nullopt;
    Json out(rapidjson::kObjectType);
    out.AddMember("id", str(h.id()), alloc());
    if (const Json* name = field(h.doc, "name"); name && name->IsString() && name->GetStringLength() <= 255)
      out.AddMember("name", Json(*name, alloc()), alloc());
    out.AddMember("type", str(type), alloc());
    // delay and timeout are whole seconds in the API (minimum 0); the proxy wants
    // 0.01 s at least, so 0 keeps its default (5 s).
    for (const char* key : {"delay", "timeout"})
      if (auto s = getInt(h, key); s && *s > 0)
        out.AddMember(rapidjson::StringRef(key), Json(std::min(*s, kMaxMonitorSeconds)), alloc());
    if (auto rise = getInt(h, "max_retries")) out.AddMember("max_retries", Json(*rise), alloc());
    if (auto fall = getInt(h, "max_retries_down")) out.AddMember("max_retries_down", Json(*fall), alloc());
    if (type == "HTTP" || type == "HTTPS") {
      if (std::string m = getString(h, "http_method"); !m.empty()) out.AddMember("http_method", str(m), alloc());
      if (std::string u = getString(h, "url_path"); !u.empty()) out.AddMember("url_path", str(u), alloc());
      if (std::string c = getString(h, "expected_codes"); !c.empty()) out.AddMember("expected_codes", str(c), alloc());
      if (const Json* v = field(h.doc, "http_version")) {
        // Stored as the API's float (1.0 or 1.1).
        if (!v->IsNumber()) fail(ErrorCode::kInvalidArgument, h, "http_version is not a number");
        double d = v->GetDouble();
        if (std::fabs(d - 1.1) < 1e-9) out.AddMember("http_version", "1.1", alloc());
        else if (std::fabs(d - 1.0) < 1e-9) out.AddMember("http_version", "1.0", alloc());
        else fail(ErrorCode::kInvalidArgument, h, "http_version is neither 1.0 nor 1.1");
      }
      if (std::string d = getString(h, "domain_name"); !d.empty()) out.AddMember("domain_name", str(d), alloc());
    }
    out.AddMember("admin_state_up", getBool(h, "admin_state_up", true), alloc());
    return out;
  }

  Json persistence(const Obj& p, const Json& sp) {
    if (!sp.IsObject()) fail(ErrorCode::kInvalidArgument, p, "session_persistence is not an object");
    const Json* type = field(sp, "type");
    if (!type || !type->IsString()) fail(ErrorCode::kInvalidArgument, p, "session_persistence has no type");
    std::string t(type->GetString(), type->GetStringLength());
    Json out(rapidjson::kObjectType);
    out.AddMember("type", str(t), alloc());
    // cookie_name only means something to APP_COOKIE (macros.j2).
    if (t == "APP_COOKIE") {
      const Json* cookie = field(sp, "cookie_name");
      std::string name = cookie && cookie->IsString() ? cookie->GetString() : "";
      if (!isToken(name))
        fail(ErrorCode::kInvalidArgument, p,
             "APP_COOKIE cookie_name \"" + name + "\" is not an RFC 6265 token, which banyan-proxy needs");
      out.AddMember("cookie_name", str(name), alloc());
    }
    // UDP/SCTP only in Octavia (the API refuses them elsewhere); carried if stored.
    if (const Json* v = field(sp, "persistence_timeout"); v && v->IsInt64() && v->GetInt64() >= 0)
      out.AddMember("persistence_timeout", Json(v->GetInt64()), alloc());
    if (const Json* v = field(sp, "persistence_granularity"); v && v->IsString())
      out.AddMember("persistence_granularity", Json(*v, alloc()), alloc());
    return out;
  }

  void poolTls(const Obj& p, const std::string& protocol, Json& out) {
    if (protocol != "HTTP")
      fail(ErrorCode::kInvalidArgument, p,
           "tls_enabled on a " + protocol + " pool is not supported by banyan-proxy yet (HTTP pools only)");
    out.AddMember("tls_enabled", true, alloc());
    if (std::string ref = getString(p, "tls_container_ref"); !ref.empty())
      out.AddMember("tls_certificate", str(certificatePath(p, ref, "tls_container_ref")), alloc());
    // macros.j2: a CRL is used only with a CA.
    if (std::string ca = getString(p, "ca_tls_container_ref"); !ca.empty()) {
      out.AddMember("ca_certificate", str(certificatePath(p, ca, "ca_tls_container_ref")), alloc());
      if (std::string crl = getString(p, "crl_container_ref"); !crl.empty())
        out.AddMember("crl", str(certificatePath(p, crl, "crl_container_ref")), alloc());
    }
    tlsOptions(p, out, /*pool=*/true);
  }

  const LoadBalancerGraph& graph_;
  const RenderContext& ctx_;
  CertificateNeeds* collect_;  // non-null: record certificate references instead of paths
  JsonDoc out_;
  Obj lb_;
  std::vector<Obj> listeners_, pools_, members_, monitors_, policies_, rules_;
  std::unordered_map<std::string, const Obj*> pool_by_id_;
  std::unordered_map<std::string, std::vector<const Obj*>> members_by_pool_;
  std::unordered_map<std::string, const Obj*> monitor_by_pool_;
  std::unordered_map<std::string, std::vector<const Obj*>> policies_by_listener_;
  std::unordered_map<std::string, std::vector<const Obj*>> rules_by_policy_;
  std::set<std::string> used_pools_;  // pools a rendered listener or policy refers to
};

}  // namespace

Result<LoadBalancerGraph> loadGraph(store::Transaction& tx, std::string_view lb_id) {
  auto lb = tx.get("loadbalancer", lb_id);
  if (!lb.ok()) return lb.error();
  if (!lb->has_value()) return makeError(ErrorCode::kNotFound, "load balancer not found", "loadbalancer " + std::string(lb_id));
  LoadBalancerGraph g;
  g.loadbalancer = std::move(**lb);
  const std::pair<const char*, std::vector<store::Record>*> kinds[] = {
      {"listener", &g.listeners},    {"pool", &g.pools},         {"member", &g.members},
      {"healthmonitor", &g.healthmonitors}, {"l7policy", &g.l7policies}, {"l7rule", &g.l7rules},
  };
  for (const auto& [kind, out] : kinds) {
    store::Query q;
    q.kind = kind;
    q.load_balancer_id = std::string(lb_id);
    auto records = tx.list(q);
    if (!records.ok()) return records.error();
    *out = std::move(records.value());
  }
  return g;
}

Result<CertificateNeeds> neededCertificates(const LoadBalancerGraph& graph, const RenderContext& ctx) {
  CertificateNeeds needs;
  try {
    Renderer r(graph, ctx, &needs);
    (void)r.run();
  } catch (const RenderFailure& f) {
    return f.error;
  }
  return needs;
}

Result<std::string> renderProxyConfig(const LoadBalancerGraph& graph, const RenderContext& ctx) {
  try {
    Renderer r(graph, ctx);
    return r.run();
  } catch (const RenderFailure& f) {
    return f.error;
  }
}

}  // namespace banyan::provider::render
