#include "api/agent_api.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <filesystem>
#include <map>

#include "api/host_info.h"
#include "api/json_body.h"
#include "banyan/common/digest.h"
#include "banyan/common/logging.h"
#include "storage/storage.h"

namespace banyan::agent::api {

using common::ErrorCode;
using common::HttpRequest;
using common::HttpResponse;
using common::makeError;
using common::Result;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

namespace {

void writeString(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

template <typename Fn>
HttpResponse json(int status, Fn&& fill) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  fill(w);
  w.EndObject();
  return HttpResponse{status, {}, "application/json", std::string(sb.GetString(), sb.GetSize())};
}

HttpResponse errorReply(int status, std::string_view message, std::string_view path, std::string_view details) {
  return json(status, [&](Writer& w) {
    w.Key("message");
    writeString(w, message);
    w.Key("path");
    writeString(w, path);
    w.Key("details");
    writeString(w, details);
  });
}

HttpResponse badRequest(const common::Error& e) { return errorReply(400, "Invalid request", e.context, e.message); }

// Maps an error from another part of the agent to an answer.
HttpResponse fromError(const common::Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
      return badRequest(e);
    case ErrorCode::kNotFound:
      return errorReply(404, "Not Found", e.context, e.message);
    case ErrorCode::kConflict:
      return errorReply(409, "Conflict", e.context, e.message);
    case ErrorCode::kUnavailable:
      return errorReply(503, "Service Unavailable", e.context, e.message);
    case ErrorCode::kInternal:
      break;
  }
  return errorReply(500, "Internal Server Error", e.context, e.message);
}

// Where banyan-proxy finds a stored file (absolute: the controller renders it into the
// document as is).
std::string storedPath(const certs::CertStore& store, const std::string& name) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(store.pathOf(name), ec);
  return ec ? store.pathOf(name) : abs.lexically_normal().string();
}

// GET /1.0/certificates: what is stored, so the controller can remove what no
// listener or pool uses any more.
HttpResponse listCertificates(const certs::CertStore& store) {
  auto names = store.list();
  if (!names) return fromError(names.error());
  return json(200, [&](Writer& w) {
    w.Key("certificates");
    w.StartArray();
    for (const auto& n : names.value()) {
      auto pem = store.get(n);
      if (!pem) continue;  // removed meanwhile
      w.StartObject();
      w.Key("name");
      writeString(w, n);
      w.Key("sha256");
      writeString(w, common::sha256Hex(pem.value()));
      w.Key("path");
      writeString(w, storedPath(store, n));
      w.EndObject();
    }
    w.EndArray();
  });
}

HttpResponse ok(int status = 200) {
  return json(status, [](Writer& w) {
    w.Key("message");
    w.String("OK");
  });
}

HttpResponse methodNotAllowed(const HttpRequest& req, const char* allow) {
  auto r = errorReply(405, "Method Not Allowed", req.path, req.method + " is not allowed here; allowed: " + allow);
  r.headers.emplace_back("Allow", allow);
  return r;
}

std::optional<std::string> proxyVersion(const proxy_control::ProxyControl& control) {
  auto r = control.get("/version");
  if (!r || r->status != 200) return std::nullopt;
  rapidjson::Document d;
  d.Parse(r->body.data(), r->body.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("version") || !d["version"].IsString()) return std::nullopt;
  return std::string(d["version"].GetString());
}

std::vector<HostRoute> readRoutes(BodyReader& rd, const rapidjson::Value& obj, const std::string& at) {
  std::vector<HostRoute> out;
  const auto* routes = rd.array(obj, "host_routes", at, false, 256);
  if (!routes) return out;
  for (rapidjson::SizeType i = 0; i < routes->Size(); ++i) {
    std::string rat = at + "/host_routes/" + std::to_string(i);
    const auto& r = (*routes)[i];
    if (!r.IsObject()) {
      rd.fail("must be an object", rat);
      return out;
    }
    rd.closed(r, rat, {"destination", "nexthop"});
    HostRoute hr;
    hr.destination = rd.string(r, "destination", rat, true, BodyReader::Kind::kCidr);
    hr.nexthop = rd.string(r, "nexthop", rat, true, BodyReader::Kind::kIp);
    out.push_back(std::move(hr));
  }
  return out;
}

// Reads the array `key` of {ip_address, subnet_cidr, gateway, host_routes} objects
// (additional_vips, fixed_ips); errors point into it.
std::vector<SubnetAddress> readSubnetAddresses(BodyReader& rd, const rapidjson::Value& obj, const std::string& key) {
  std::vector<SubnetAddress> out;
  const auto* items = rd.array(obj, key.c_str(), "", false, 64);
  if (!items) return out;
  for (rapidjson::SizeType i = 0; i < items->Size() && rd.ok(); ++i) {
    std::string at = "/" + key + "/" + std::to_string(i);
    const auto& v = (*items)[i];
    if (!v.IsObject()) {
      rd.fail("must be an object", at);
      break;
    }
    rd.closed(v, at, {"ip_address", "subnet_cidr", "gateway", "host_routes"});
    SubnetAddress a;
    a.ip_address = rd.string(v, "ip_address", at, true, BodyReader::Kind::kIp);
    a.subnet_cidr = rd.string(v, "subnet_cidr", at, true, BodyReader::Kind::kCidr);
    a.gateway = rd.string(v, "gateway", at, false, BodyReader::Kind::kIp);
    a.host_routes = readRoutes(rd, v, at);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

Result<AgentConfig> mergeAgentConfig(const AgentConfig& base, std::string_view text) {
  rapidjson::Document doc;
  if (auto p = parseObject(doc, text); !p) return p.error();
  BodyReader rd;
  rd.closed(doc, "", {"controller_ip_port_list", "heartbeat_interval", "heartbeat_key", "management_cidrs"});
  AgentConfig out = base;
  if (const auto* list = rd.array(doc, "controller_ip_port_list", "", false, 64)) {
    out.heartbeat.targets.clear();
    for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
      std::string at = "/controller_ip_port_list/" + std::to_string(i);
      const auto& v = (*list)[i];
      if (!v.IsString()) {
        rd.fail("must be a string", at);
        break;
      }
      std::string t(v.GetString(), v.GetStringLength());
      if (!heartbeat::parseTarget(t)) {
        rd.fail("\"" + t + "\" is not IP:port (IPv6 in brackets)", at);
        break;
      }
      out.heartbeat.targets.push_back(std::move(t));
    }
  }
  out.heartbeat.interval_s = rd.number(doc, "heartbeat_interval", "", false, base.heartbeat.interval_s, 0.01, 3600);
  if (rd.has(doc, "heartbeat_key")) {
    out.heartbeat.key = rd.string(doc, "heartbeat_key", "", true, BodyReader::Kind::kAny, 4096);
    if (rd.ok() && out.heartbeat.key.empty()) rd.fail("must not be empty", "/heartbeat_key");
  }
  // The same rule as [amphora_agent] management_cidrs: a CIDR or a bare address, IPv4
  // or IPv6 (host bits are allowed, as the firewall allows them).
  if (const auto* list = rd.array(doc, "management_cidrs", "", false, 64)) {
    std::vector<std::string> cidrs;
    for (rapidjson::SizeType i = 0; i < list->Size() && rd.ok(); ++i) {
      std::string at = "/management_cidrs/" + std::to_string(i);
      const auto& v = (*list)[i];
      if (!v.IsString()) {
        rd.fail("must be a string", at);
        break;
      }
      std::string c(v.GetString(), v.GetStringLength());
      if (!isIpLiteral(c) && !isCidr(c)) {
        rd.fail("\"" + c.substr(0, 64) + "\" is not a CIDR or an IP address", at);
        break;
      }
      cidrs.push_back(std::move(c));
    }
    out.management_cidrs = std::move(cidrs);
  }
  if (!rd.ok()) return rd.error();
  return out;
}

Result<heartbeat::HeartbeatSettings> mergeAgentConfig(const heartbeat::HeartbeatSettings& base,
                                                      std::string_view text) {
  auto merged = mergeAgentConfig(AgentConfig{base, std::nullopt}, text);
  if (!merged) return merged.error();
  return std::move(merged->heartbeat);
}

std::string agentConfigJson(const AgentConfig& c, bool include_key) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("controller_ip_port_list");
  w.StartArray();
  for (const auto& t : c.heartbeat.targets) writeString(w, t);
  w.EndArray();
  w.Key("heartbeat_interval");
  w.Double(c.heartbeat.interval_s);
  if (include_key) {
    w.Key("heartbeat_key");
    writeString(w, c.heartbeat.key);
  }
  if (c.management_cidrs) {
    w.Key("management_cidrs");
    w.StartArray();
    for (const auto& m : *c.management_cidrs) writeString(w, m);
    w.EndArray();
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string agentConfigJson(const heartbeat::HeartbeatSettings& s, bool include_key) {
  return agentConfigJson(AgentConfig{s, std::nullopt}, include_key);
}

AgentApi::AgentApi(ApiOptions options, ApiDeps deps) : options_(std::move(options)), deps_(deps) {
  management_cidrs_ = options_.management_cidrs;
  // Management CIDRs pushed with PUT /1.0/agent-config win over agent.conf's, across
  // restarts (the heartbeat part of the same file is read by the agent's start).
  if (auto stored = storage::readFile(agentConfigPath())) {
    auto merged = mergeAgentConfig(AgentConfig{}, stored.value());
    if (!merged) {
      LB_ERROR("Ignoring the stored agent config's management_cidrs. amp=%s path=%s error=%s",
               options_.amphora_id.c_str(), merged.error().context.c_str(), merged.error().message.c_str());
    } else if (merged->management_cidrs) {
      management_cidrs_ = std::move(*merged->management_cidrs);
      management_cidrs_pushed_ = true;
    }
  }
  // The VRRP settings in force survive a restart in vrrp.json (without the password).
  if (auto stored = storage::readFile(vrrpPath())) {
    rapidjson::Document d;
    d.Parse(stored->data(), stored->size());
    vrrp_active_ = true;
    if (!d.HasParseError() && d.IsObject() && d.HasMember("peer_addresses") && d["peer_addresses"].IsArray()) {
      for (const auto& p : d["peer_addresses"].GetArray()) {
        if (p.IsString()) vrrp_peers_.emplace_back(p.GetString(), p.GetStringLength());
      }
    }
  }
}

FirewallInputs AgentApi::firewallInputs() const {
  FirewallInputs in;
  in.agent_port = options_.agent_port;
  in.management_cidrs = management_cidrs_;
  in.vrrp = vrrp_active_;
  in.vrrp_peers = vrrp_peers_;
  return in;
}

Result<FirewallPlan> AgentApi::storedPlan(const FirewallInputs& inputs) {
  auto stored = deps_.applier.stored();
  if (stored) {
    auto plan = firewallPlanFor(stored.value(), inputs);
    if (plan) return plan;
    LB_ERROR("The stored proxy config gives no firewall; guarding the agent port only. amp=%s path=%s error=%s",
             options_.amphora_id.c_str(), plan.error().context.c_str(), plan.error().message.c_str());
  } else if (stored.error().code != ErrorCode::kNotFound) {
    return stored.error();
  }
  return firewallPlanFor("{}", inputs);
}

void AgentApi::setFirewall(std::optional<FirewallPlan> plan) {
  std::lock_guard<std::mutex> lock(firewall_view_mu_);
  firewall_ = std::move(plan);
}

Result<void> AgentApi::applyFirewallPlan(const FirewallPlan& plan) {
  if (firewall_ && *firewall_ == plan) return {};
  auto r = deps_.system.applyFirewall(plan);
  if (!r) {
    // The kernel keeps the previous table (one transaction); firewall_ still says which.
    LB_ERROR("Firewall not applied. amp=%s path=%s error=%s", options_.amphora_id.c_str(),
             r.error().context.c_str(), r.error().message.c_str());
    return r;
  }
  setFirewall(plan);
  return {};
}

void AgentApi::restoreFirewallPlan(const std::optional<FirewallPlan>& previous, const char* why) {
  if (!previous) return;
  if (auto r = applyFirewallPlan(*previous); !r) {
    setFirewall(std::nullopt);  // unknown now: the next change re-applies in full
    LB_ERROR("Cannot restore the previous firewall after %s. amp=%s error=%s", why, options_.amphora_id.c_str(),
             r.error().message.c_str());
    return;
  }
  LB_WARN("Previous firewall restored after %s. amp=%s", why, options_.amphora_id.c_str());
}

Result<void> AgentApi::restoreFirewall(uint16_t agent_port) {
  std::lock_guard<std::mutex> lock(firewall_mu_);
  options_.agent_port = agent_port;
  auto plan = storedPlan(firewallInputs());
  if (!plan) return plan.error();
  setFirewall(std::nullopt);  // whatever the kernel holds (a previous agent's table), replace it
  return applyFirewallPlan(plan.value());
}

void AgentApi::setTlsReloader(std::function<Result<void>()> reload) {
  std::lock_guard<std::mutex> lock(mu_);
  reload_tls_ = std::move(reload);
}

HttpResponse AgentApi::handle(const HttpRequest& req) {
  const std::string& path = req.path;
  const std::string& m = req.method;
  if (path == "/" || path == "/1.0/info") {
    return m == "GET" ? info() : methodNotAllowed(req, "GET");
  }
  if (path == "/1.0/details") return m == "GET" ? details() : methodNotAllowed(req, "GET");
  if (path == "/1.0/config") {
    if (m == "GET") return getConfig();
    if (m == "PUT") return putConfig(req);
    return methodNotAllowed(req, "GET, PUT");
  }
  if (path == "/1.0/agent-config") {
    if (m == "GET") return getAgentConfig();
    if (m == "PUT") return putAgentConfig(req);
    return methodNotAllowed(req, "GET, PUT");
  }
  if (path == "/1.0/certificate") return m == "PUT" ? rotateServerCertificate(req) : methodNotAllowed(req, "PUT");
  if (path == "/1.0/vrrp") {
    if (m == "GET") return getVrrp();
    if (m == "PUT") return putVrrp(req);
    return methodNotAllowed(req, "GET, PUT");
  }
  if (path == "/1.0/plug/network") {
    return m == "PUT" || m == "POST" ? plugNetwork(req) : methodNotAllowed(req, "PUT, POST");
  }
  constexpr std::string_view kVip = "/1.0/plug/vip/";
  if (path.compare(0, kVip.size(), kVip) == 0 && path.size() > kVip.size()) {
    if (m != "PUT" && m != "POST") return methodNotAllowed(req, "PUT, POST");
    return plugVip(req, path.substr(kVip.size()));
  }
  // The name is everything after the prefix, percent-decoded: "a%2F..%2Fb" arrives as
  // "a/../b" and is refused by the name rule rather than routed somewhere else.
  if (path == "/1.0/certificates") return m == "GET" ? listCertificates(deps_.certs) : methodNotAllowed(req, "GET");
  constexpr std::string_view kCerts = "/1.0/certificates/";
  if (path.compare(0, kCerts.size(), kCerts) == 0 && path.size() > kCerts.size()) {
    if (m != "GET" && m != "PUT" && m != "DELETE") return methodNotAllowed(req, "GET, PUT, DELETE");
    return certificate(req, path.substr(kCerts.size()));
  }
  return errorReply(404, "Not Found", path, "no such resource");
}

HttpResponse AgentApi::info() {
  auto proxy = proxyVersion(deps_.control);
  std::string keepalived = deps_.system.keepalivedVersion();
  return json(200, [&](Writer& w) {
    w.Key("hostname");
    writeString(w, hostName());
    w.Key("api_version");
    w.String(kApiVersion);
    w.Key("amphora_id");
    writeString(w, options_.amphora_id);
    w.Key("agent_version");
    writeString(w, options_.agent_version);
    w.Key("proxy_version");
    if (proxy) writeString(w, *proxy);
    else w.Null();
    w.Key("keepalived_version");
    if (!keepalived.empty()) writeString(w, keepalived);
    else w.Null();
  });
}

HttpResponse AgentApi::details() {
  HostInfo host = collectHostInfo(options_.state_dir);
  auto proxy = proxyVersion(deps_.control);
  // The listener summary joins the running document with its counters.
  rapidjson::Document config, stats;
  bool proxy_up = false;
  if (auto c = deps_.control.get("/config"); c && c->status == 200) {
    config.Parse(c->body.data(), c->body.size());
    proxy_up = !config.HasParseError() && config.IsObject();
  }
  if (auto s = deps_.control.get("/stats"); s && s->status == 200) stats.Parse(s->body.data(), s->body.size());
  std::map<std::string, const rapidjson::Value*> counters;
  if (!stats.HasParseError() && stats.IsObject() && stats.HasMember("listeners") && stats["listeners"].IsArray()) {
    for (const auto& l : stats["listeners"].GetArray()) {
      if (l.IsObject() && l.HasMember("id") && l["id"].IsString()) counters[l["id"].GetString()] = &l;
    }
  }
  VrrpState vrrp = deps_.system.vrrpState();
  bool has_vrrp = storage::readFile(vrrpPath()).ok();
  std::optional<FirewallPlan> firewall;
  {
    std::lock_guard<std::mutex> lock(firewall_view_mu_);
    firewall = firewall_;
  }
  return json(200, [&](Writer& w) {
    w.Key("hostname");
    writeString(w, host.hostname);
    w.Key("api_version");
    w.String(kApiVersion);
    w.Key("amphora_id");
    writeString(w, options_.amphora_id);
    w.Key("agent_version");
    writeString(w, options_.agent_version);
    w.Key("proxy_version");
    if (proxy) writeString(w, *proxy);
    else w.Null();
    w.Key("proxy_running");
    w.Bool(proxy_up);
    w.Key("interfaces");
    w.StartArray();
    for (const auto& i : host.interfaces) {
      w.StartObject();
      w.Key("name");
      writeString(w, i.name);
      w.Key("addresses");
      w.StartArray();
      for (const auto& a : i.addresses) writeString(w, a);
      w.EndArray();
      w.Key("rx_bytes");
      w.Uint64(i.rx_bytes);
      w.Key("tx_bytes");
      w.Uint64(i.tx_bytes);
      w.EndObject();
    }
    w.EndArray();
    w.Key("load");
    w.StartArray();
    for (double l : host.load) w.Double(l);
    w.EndArray();
    w.Key("memory");
    w.StartObject();
    for (const auto& [k, v] : host.memory_kb) {
      w.Key(k.c_str());
      w.Uint64(v);
    }
    w.EndObject();
    w.Key("disk");
    w.StartObject();
    w.Key("path");
    writeString(w, options_.state_dir);
    w.Key("total");
    w.Uint64(host.disk_total);
    w.Key("used");
    w.Uint64(host.disk_used);
    w.Key("available");
    w.Uint64(host.disk_available);
    w.EndObject();
    w.Key("listeners");
    w.StartArray();
    if (proxy_up && config.HasMember("listeners") && config["listeners"].IsArray()) {
      for (const auto& l : config["listeners"].GetArray()) {
        if (!l.IsObject() || !l.HasMember("id") || !l["id"].IsString()) continue;
        w.StartObject();
        for (const char* key : {"id", "protocol", "address", "protocol_port", "admin_state_up"}) {
          if (!l.HasMember(key)) continue;
          w.Key(key);
          l[key].Accept(w);
        }
        auto c = counters.find(l["id"].GetString());
        if (c != counters.end()) {
          for (const char* key : {"active_connections", "total_connections", "bytes_in", "bytes_out"}) {
            if (!c->second->HasMember(key)) continue;
            w.Key(key);
            (*c->second)[key].Accept(w);
          }
        }
        w.EndObject();
      }
    }
    w.EndArray();
    w.Key("topology");
    w.String(has_vrrp ? "ACTIVE_STANDBY" : "SINGLE");
    w.Key("role");
    w.String(has_vrrp ? vrrpStateName(vrrp) : "STANDALONE");
    // What the agent's nftables table holds (null: not applied yet, or unknown after
    // a failed restore).
    w.Key("firewall");
    if (!firewall) {
      w.Null();
      return;
    }
    auto strings = [&](const char* key, const std::vector<std::string>& values) {
      w.Key(key);
      w.StartArray();
      for (const auto& v : values) writeString(w, v);
      w.EndArray();
    };
    w.StartObject();
    strings("vips", firewall->vips);
    w.Key("listeners");
    w.StartArray();
    for (const auto& l : firewall->listeners) {
      w.StartObject();
      w.Key("vip");
      writeString(w, l.vip);
      w.Key("port");
      w.Uint(l.port);
      w.Key("protocol");
      writeString(w, l.protocol);
      strings("allowed_cidrs", l.allowed_cidrs);
      w.EndObject();
    }
    w.EndArray();
    strings("management_cidrs", firewall->management_cidrs);
    w.Key("agent_port");
    w.Uint(firewall->agent_port);
    w.Key("vrrp");
    w.Bool(firewall->allow_vrrp);
    strings("vrrp_peers", firewall->vrrp_peers);
    w.EndObject();
  });
}

HttpResponse AgentApi::getConfig() {
  auto doc = deps_.applier.stored();
  if (!doc) return fromError(doc.error());
  HttpResponse r{200, {}, "application/json", std::move(doc.value())};
  r.headers.emplace_back("ETag", "\"" + common::sha256Hex(r.body) + "\"");
  return r;
}

HttpResponse AgentApi::putConfig(const HttpRequest& req) {
  // Syntax is checked here so a malformed body is a 400 even when no proxy runs; the
  // schema and semantics are the proxy's own (--check or its control API).
  rapidjson::Document doc;
  if (auto p = parseObject(doc, req.body); !p) return badRequest(p.error());
  // Order: the document's firewall plan (refusals touch nothing), then the firewall
  // (one kernel transaction), then the proxy. Firewall first because it is the step
  // that can be undone exactly: when the proxy refuses or fails, the previous
  // firewall is put back, so the amphora never runs one document's listeners behind
  // another document's rules for longer than the apply takes.
  std::lock_guard<std::mutex> lock(firewall_mu_);
  const FirewallInputs inputs = firewallInputs();
  auto plan = firewallPlanFor(req.body, inputs);
  if (!plan) {
    deps_.applier.keepRejected(req.body, plan.error());
    return errorReply(400, "Invalid configuration", plan.error().context, plan.error().message);
  }
  std::optional<FirewallPlan> previous = firewall_;
  if (!previous) {
    if (auto stored = storedPlan(inputs)) previous = std::move(stored.value());
  }
  const bool firewall_changed = !firewall_ || *firewall_ != plan.value();
  if (auto fw = applyFirewallPlan(plan.value()); !fw) {
    if (fw.error().code == ErrorCode::kInvalidArgument) {
      return errorReply(400, "Invalid configuration", "", "firewall: " + fw.error().message + " (" +
                                                              fw.error().context + ")");
    }
    return fromError(fw.error());
  }
  auto applied = deps_.applier.apply(req.body);
  if (!applied) {
    if (firewall_changed) restoreFirewallPlan(previous, "a refused config");
    if (applied.error().code == ErrorCode::kInvalidArgument) {
      return errorReply(400, "Invalid configuration", applied.error().context, applied.error().message);
    }
    return fromError(applied.error());
  }
  return json(200, [&](Writer& w) {
    w.Key("message");
    w.String("OK");
    w.Key("generation");
    w.Uint64(applied->generation);
    w.Key("sha256");
    writeString(w, applied->sha256);
    w.Key("delta");
    w.Bool(applied->delta);
    w.Key("unchanged");
    w.Bool(applied->unchanged);
  });
}

HttpResponse AgentApi::certificate(const HttpRequest& req, const std::string& name) {
  if (!certs::isValidName(name)) {
    return errorReply(400, "Invalid request", "", "certificate name must match ^[A-Za-z0-9_.-]{1,128}$ and not be . or ..");
  }
  if (req.method == "DELETE") {
    auto r = deps_.certs.remove(name);
    return r ? ok() : fromError(r.error());
  }
  if (req.method == "GET") {
    auto pem = deps_.certs.get(name);
    if (!pem) {
      if (pem.error().code == ErrorCode::kNotFound) return errorReply(404, "Certificate Not Found", "", name);
      return fromError(pem.error());
    }
    // The key never leaves the amphora: the controller compares digests.
    auto bundle = certs::parseCertificateFile(pem.value());
    return json(200, [&](Writer& w) {
      w.Key("name");
      writeString(w, name);
      w.Key("sha256");
      writeString(w, common::sha256Hex(pem.value()));
      w.Key("path");
      writeString(w, storedPath(deps_.certs, name));
      if (bundle) {
        w.Key("subject");
        writeString(w, bundle->subject);
        w.Key("not_after");
        writeString(w, bundle->not_after);
        w.Key("certificates");
        w.Int(bundle->certificate_count);
        w.Key("crls");
        w.Int(bundle->crl_count);
        w.Key("has_key");
        w.Bool(bundle->has_key);
      }
    });
  }
  auto stored = deps_.certs.put(name, req.body);
  if (!stored) {
    if (stored.error().code == ErrorCode::kInvalidArgument) {
      return errorReply(400, "Invalid certificate bundle", "", stored.error().message);
    }
    return fromError(stored.error());
  }
  LB_INFO("Certificate stored. amp=%s name=%s", options_.amphora_id.c_str(), name.c_str());
  return json(200, [&](Writer& w) {
    w.Key("message");
    w.String("OK");
    w.Key("name");
    writeString(w, name);
    w.Key("sha256");
    writeString(w, common::sha256Hex(req.body));
    // Where banyan-proxy finds it: the controller renders this path into the document.
    w.Key("path");
    writeString(w, storedPath(deps_.certs, name));
  });
}

HttpResponse AgentApi::getAgentConfig() {
  AgentConfig c;
  c.heartbeat = deps_.heartbeat.settings();
  {
    std::lock_guard<std::mutex> lock(firewall_view_mu_);
    c.management_cidrs = management_cidrs_;  // in force, pushed or from agent.conf
  }
  return HttpResponse{200, {}, "application/json", agentConfigJson(c, false)};
}

HttpResponse AgentApi::putAgentConfig(const HttpRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> fw_lock(firewall_mu_);
  AgentConfig base;
  base.heartbeat = deps_.heartbeat.settings();
  if (management_cidrs_pushed_) base.management_cidrs = management_cidrs_;
  auto merged = mergeAgentConfig(base, req.body);
  if (!merged) return badRequest(merged.error());
  auto valid = heartbeat::validateSettings(merged->heartbeat);
  if (!valid) return badRequest(makeError(ErrorCode::kInvalidArgument, valid.error().message, "/" + valid.error().context));
  // New management CIDRs reach the firewall first, rebuilt as on any other change;
  // when that fails nothing is persisted, and when persisting fails the previous
  // firewall goes back, so the file, the kernel and GET agree.
  const bool cidrs_change = merged->management_cidrs && *merged->management_cidrs != management_cidrs_;
  std::optional<FirewallPlan> previous = firewall_;
  if (cidrs_change) {
    FirewallInputs inputs = firewallInputs();
    inputs.management_cidrs = *merged->management_cidrs;
    auto plan = storedPlan(inputs);
    if (!plan) return fromError(plan.error());
    if (!previous) {
      if (auto stored = storedPlan(firewallInputs())) previous = std::move(stored.value());
    }
    if (auto fw = applyFirewallPlan(plan.value()); !fw) {
      if (fw.error().code == ErrorCode::kInvalidArgument) {
        return errorReply(400, "Invalid request", "/management_cidrs",
                          "firewall: " + fw.error().message + " (" + fw.error().context + ")");
      }
      return fromError(fw.error());
    }
  }
  // Persist first: settings that would not survive a restart are not accepted.
  auto w = storage::writeFileAtomic(agentConfigPath(), agentConfigJson(merged.value(), true), 0600);
  if (!w) {
    if (cidrs_change) restoreFirewallPlan(previous, "an agent config that could not be saved");
    return fromError(w.error());
  }
  if (merged->management_cidrs) {
    std::lock_guard<std::mutex> view_lock(firewall_view_mu_);
    management_cidrs_ = *merged->management_cidrs;
    management_cidrs_pushed_ = true;
  }
  auto u = deps_.heartbeat.update(merged->heartbeat);
  if (!u) return fromError(u.error());
  LB_INFO("Agent config updated. amp=%s targets=%zu interval_s=%g management_cidrs=%zu", options_.amphora_id.c_str(),
          merged->heartbeat.targets.size(), merged->heartbeat.interval_s, management_cidrs_.size());
  AgentConfig answer = merged.value();
  answer.management_cidrs = management_cidrs_;
  return HttpResponse{200, {}, "application/json", agentConfigJson(answer, false)};
}

HttpResponse AgentApi::rotateServerCertificate(const HttpRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  auto bundle = certs::parseBundle(req.body);
  if (!bundle) return errorReply(400, "Invalid certificate bundle", "", bundle.error().message);
  if (!reload_tls_) return errorReply(503, "Service Unavailable", "", "TLS reload is not available");
  const bool one_file = options_.agent_server_cert == options_.agent_server_key;
  auto old_cert = storage::readFile(options_.agent_server_cert);
  auto old_key = one_file ? old_cert : storage::readFile(options_.agent_server_key);
  auto restore = [&] {
    if (old_cert) (void)storage::writeFileAtomic(options_.agent_server_cert, old_cert.value(), 0600);
    if (!one_file && old_key) (void)storage::writeFileAtomic(options_.agent_server_key, old_key.value(), 0600);
  };
  Result<void> w = one_file ? storage::writeFileAtomic(options_.agent_server_cert,
                                                        bundle->cert_chain_pem + bundle->key_pem, 0600)
                            : storage::writeFileAtomic(options_.agent_server_key, bundle->key_pem, 0600);
  if (w && !one_file) w = storage::writeFileAtomic(options_.agent_server_cert, bundle->cert_chain_pem, 0600);
  if (!w) {
    restore();
    return fromError(w.error());
  }
  auto reloaded = reload_tls_();
  if (!reloaded) {
    restore();
    (void)reload_tls_();
    return errorReply(400, "Invalid certificate bundle", "", reloaded.error().message);
  }
  LB_INFO("Agent server certificate rotated. amp=%s subject=%s not_after=%s", options_.amphora_id.c_str(),
          bundle->subject.c_str(), bundle->not_after.c_str());
  return ok();
}

HttpResponse AgentApi::putVrrp(const HttpRequest& req) {
  rapidjson::Document doc;
  if (auto p = parseObject(doc, req.body); !p) return badRequest(p.error());
  BodyReader rd;
  rd.closed(doc, "", {"interface", "vip", "vip_prefix", "virtual_router_id", "priority", "advert_interval",
                      "local_address", "peer_addresses", "auth_pass", "nopreempt"});
  VrrpSpec spec;
  spec.interface = rd.string(doc, "interface", "", true, BodyReader::Kind::kAny, 15);
  if (rd.ok() && spec.interface.empty()) rd.fail("must not be empty", "/interface");
  spec.vip = rd.string(doc, "vip", "", true, BodyReader::Kind::kIp);
  bool v6 = spec.vip.find(':') != std::string::npos;
  spec.vip_prefix = static_cast<int>(rd.integer(doc, "vip_prefix", "", false, v6 ? 128 : 32, 1, v6 ? 128 : 32));
  spec.virtual_router_id = static_cast<int>(rd.integer(doc, "virtual_router_id", "", false, 1, 1, 255));
  spec.priority = static_cast<int>(rd.integer(doc, "priority", "", true, 100, 1, 254));
  spec.advert_interval_s = static_cast<int>(rd.integer(doc, "advert_interval", "", false, 1, 1, 255));
  spec.local_address = rd.string(doc, "local_address", "", true, BodyReader::Kind::kIp);
  if (const auto* peers = rd.array(doc, "peer_addresses", "", true, 16)) {
    for (rapidjson::SizeType i = 0; i < peers->Size(); ++i) {
      const auto& p = (*peers)[i];
      std::string at = "/peer_addresses/" + std::to_string(i);
      if (!p.IsString() || !isIpLiteral(p.GetString())) {
        rd.fail("must be an IP address", at);
        break;
      }
      spec.peer_addresses.emplace_back(p.GetString());
    }
  }
  spec.auth_pass = rd.string(doc, "auth_pass", "", false, BodyReader::Kind::kAny, 8);
  spec.nopreempt = rd.boolean(doc, "nopreempt", "", false, true);
  if (!rd.ok()) return badRequest(rd.error());
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> fw_lock(firewall_mu_);
  // The firewall first: the peers' adverts must pass before keepalived starts
  // listening for them, or both amphorae would claim the VIP for a while.
  std::optional<FirewallPlan> previous = firewall_;
  FirewallInputs inputs = firewallInputs();
  inputs.vrrp = true;
  inputs.vrrp_peers = spec.peer_addresses;
  auto plan = storedPlan(inputs);
  if (!plan) return fromError(plan.error());
  if (auto fw = applyFirewallPlan(plan.value()); !fw) return fromError(fw.error());
  auto applied = deps_.system.applyVrrp(spec);
  if (!applied) {
    restoreFirewallPlan(previous, "a refused VRRP config");
    return fromError(applied.error());
  }
  vrrp_active_ = true;
  vrrp_peers_ = spec.peer_addresses;
  // Kept so GET /1.0/vrrp and /details can say what was asked, without the password.
  rapidjson::Document stored;
  stored.CopyFrom(doc, stored.GetAllocator());
  stored.RemoveMember("auth_pass");
  rapidjson::StringBuffer sb;
  Writer w(sb);
  stored.Accept(w);
  auto saved = storage::writeFileAtomic(vrrpPath(), std::string(sb.GetString(), sb.GetSize()), 0600);
  if (!saved) return fromError(saved.error());
  LB_INFO("VRRP configured. amp=%s vip=%s priority=%d", options_.amphora_id.c_str(), spec.vip.c_str(), spec.priority);
  return ok();
}

HttpResponse AgentApi::getVrrp() {
  auto stored = storage::readFile(vrrpPath());
  if (!stored) {
    if (stored.error().code == ErrorCode::kNotFound) return errorReply(404, "Not Found", "", "VRRP is not configured");
    return fromError(stored.error());
  }
  VrrpState state = deps_.system.vrrpState();
  rapidjson::Document doc;
  doc.Parse(stored->data(), stored->size());
  return json(200, [&](Writer& w) {
    w.Key("state");
    w.String(vrrpStateName(state));
    w.Key("config");
    if (!doc.HasParseError()) doc.Accept(w);
    else w.Null();
  });
}

HttpResponse AgentApi::plugVip(const HttpRequest& req, const std::string& ip) {
  if (!isIpLiteral(ip)) return errorReply(400, "Invalid VIP", "", "\"" + ip + "\" is not an IP address");
  rapidjson::Document doc;
  if (auto p = parseObject(doc, req.body); !p) return badRequest(p.error());
  BodyReader rd;
  rd.closed(doc, "", {"subnet_cidr", "gateway", "mac_address", "vrrp_ip", "mtu", "host_routes", "additional_vips"});
  VipPlug plug;
  plug.vip = ip;
  plug.subnet_cidr = rd.string(doc, "subnet_cidr", "", true, BodyReader::Kind::kCidr);
  plug.gateway = rd.string(doc, "gateway", "", false, BodyReader::Kind::kIp);
  plug.mac_address = rd.string(doc, "mac_address", "", true, BodyReader::Kind::kMac);
  plug.vrrp_ip = rd.string(doc, "vrrp_ip", "", false, BodyReader::Kind::kIp);
  plug.mtu = static_cast<int>(rd.integer(doc, "mtu", "", false, 0, 68, 65535));
  plug.host_routes = readRoutes(rd, doc, "");
  plug.additional_vips = readSubnetAddresses(rd, doc, "additional_vips");
  if (!rd.ok()) return badRequest(rd.error());
  auto r = deps_.system.plugVip(plug);
  if (!r) return fromError(r.error());
  LB_INFO("VIP plugged. amp=%s vip=%s interface=%s", options_.amphora_id.c_str(), ip.c_str(), r->c_str());
  return json(202, [&](Writer& w) {
    w.Key("message");
    w.String("OK");
    w.Key("details");
    writeString(w, "VIPs plugged on interface " + r.value() + ": " + ip);
    w.Key("interface");
    writeString(w, r.value());
  });
}

HttpResponse AgentApi::plugNetwork(const HttpRequest& req) {
  rapidjson::Document doc;
  if (auto p = parseObject(doc, req.body); !p) return badRequest(p.error());
  BodyReader rd;
  rd.closed(doc, "", {"mac_address", "fixed_ips", "mtu"});
  NetworkPlug plug;
  plug.mac_address = rd.string(doc, "mac_address", "", true, BodyReader::Kind::kMac);
  plug.mtu = static_cast<int>(rd.integer(doc, "mtu", "", false, 0, 68, 65535));
  plug.fixed_ips = readSubnetAddresses(rd, doc, "fixed_ips");
  if (!rd.ok()) return badRequest(rd.error());
  auto r = deps_.system.plugNetwork(plug);
  if (!r) return fromError(r.error());
  LB_INFO("Network plugged. amp=%s mac=%s interface=%s", options_.amphora_id.c_str(), plug.mac_address.c_str(),
          r->c_str());
  return json(202, [&](Writer& w) {
    w.Key("message");
    w.String("OK");
    w.Key("details");
    writeString(w, "Plugged on interface " + r.value());
    w.Key("interface");
    writeString(w, r.value());
  });
}

}  // namespace banyan::agent::api
