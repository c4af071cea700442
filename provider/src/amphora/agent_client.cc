#include "amphora/agent_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "amphora/agent_reply.h"
#include "banyan/common/digest.h"
#include "banyan/common/http_client.h"
#include "banyan/common/logging.h"

namespace banyan::provider::amphora {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr const char* kJson = "application/json";
constexpr const char* kPem = "application/x-pem-file";

void writeString(Writer& w, const std::string& s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void keyString(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  writeString(w, value);
}

// An optional string field: "" means the caller has none, so it is left out.
void keyOptional(Writer& w, const char* key, const std::string& value) {
  if (!value.empty()) keyString(w, key, value);
}

template <typename Fn>
std::string jsonObject(Fn&& fill) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  fill(w);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool validCertName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<void> checkSha(const std::string& what, const std::string& body, const std::string& sent) {
  auto sha = stringField(body, "sha256");
  if (!sha) return sha.error();
  if (*sha != common::sha256Hex(sent)) {
    return makeError(ErrorCode::kInternal, what + ": the agent stored a document with another SHA-256 than we sent");
  }
  return {};
}

}  // namespace

namespace {

// "192.0.2.5:9443", "[2001:db8::5]:9443", "[fe80::5%25o-hm0]:9443" (see agentUrl).
Result<std::string> agentAuthority(const AgentEndpoint& amp, std::string_view lb_network_interface) {
  std::string address = amp.address;
  std::string zone;
  bool zoned = false;
  if (auto pct = address.find('%'); pct != std::string::npos) {
    zoned = true;
    zone = address.substr(pct + 1);
    address.resize(pct);
  }
  in6_addr a6{};
  unsigned char buf[4];
  bool v6 = ::inet_pton(AF_INET6, address.c_str(), &a6) == 1;
  if (!v6 && (zoned || ::inet_pton(AF_INET, address.c_str(), buf) != 1)) {
    return makeError(ErrorCode::kInvalidArgument, "an amphora address must be an IPv4 or IPv6 literal", amp.address);
  }
  if (amp.port == 0) return makeError(ErrorCode::kInvalidArgument, "an amphora port must not be 0", amp.address);
  const std::string port = ":" + std::to_string(amp.port);
  if (!v6) return address + port;
  if (!IN6_IS_ADDR_LINKLOCAL(&a6)) {
    if (zoned) {
      return makeError(ErrorCode::kInvalidArgument,
                       "only a link-local amphora address (fe80::/10) may name an interface", amp.address);
    }
    return "[" + address + "]" + port;
  }
  // A link-local address means nothing without the link: as Octavia, the controller's
  // management interface unless the address names its own.
  if (!zoned) {
    if (lb_network_interface.empty()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "a link-local amphora address needs [haproxy_amphora] lb_network_interface", amp.address);
    }
    zone = std::string(lb_network_interface);
  }
  if (!common::isValidIpv6Zone(zone)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the interface of a link-local amphora address must be a name of at most 15 of "
                     "[A-Za-z0-9._~-]",
                     zoned ? amp.address : zone);
  }
  return "[" + address + "%25" + zone + "]" + port;
}

}  // namespace

Result<std::string> agentUrl(const AgentEndpoint& amp, std::string_view path, std::string_view lb_network_interface) {
  auto authority = agentAuthority(amp, lb_network_interface);
  if (!authority) return authority.error();
  return "https://" + *authority + std::string(path);
}

struct AgentClient::Reply {
  int status = 0;
  std::string body;
};

AgentClient::AgentClient(std::unique_ptr<common::HttpClient> http, std::chrono::milliseconds timeout,
                         std::string lb_network_interface)
    : http_(std::move(http)), timeout_(timeout), lb_network_interface_(std::move(lb_network_interface)) {}
AgentClient::~AgentClient() = default;

Result<std::unique_ptr<AgentClient>> AgentClient::make(const AgentClientOptions& options) {
  // Without all three, the client would either trust the system CAs or present no
  // certificate; neither can ever talk to an agent.
  for (auto [value, name] : {std::pair{&options.ca_file, "ca_file"}, std::pair{&options.client_cert_file, "client_cert_file"},
                             std::pair{&options.client_key_file, "client_key_file"}}) {
    if (value->empty()) return makeError(ErrorCode::kInvalidArgument, std::string(name) + " is required", name);
  }
  if (options.request_timeout.count() <= 0) {
    return makeError(ErrorCode::kInvalidArgument, "request_timeout must be positive", "request_timeout");
  }
  // "" is allowed: IPv4 and global IPv6 deployments need no interface, and a link-local
  // address without its own zone is then refused per call (agentUrl).
  if (!options.lb_network_interface.empty() && !common::isValidIpv6Zone(options.lb_network_interface)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "lb_network_interface must be an interface name of at most 15 of [A-Za-z0-9._~-]",
                     options.lb_network_interface);
  }
  common::HttpClientOptions http;
  http.ca_file = options.ca_file;
  http.client_cert_file = options.client_cert_file;
  http.client_key_file = options.client_key_file;
  auto client = common::makeHttpClient(http);
  if (!client) return client.error();
  return std::unique_ptr<AgentClient>(
      new AgentClient(std::move(*client), options.request_timeout, options.lb_network_interface));
}

Result<AgentClient::Reply> AgentClient::send(const AgentEndpoint& amp, std::string_view method, const std::string& path,
                                             const std::string* body, const char* content_type, std::string* what_out) {
  auto authority = agentAuthority(amp, lb_network_interface_);
  if (!authority) return authority.error();
  const std::string url = "https://" + *authority + path;
  std::string what = std::string(method) + " " + path + " on amphora " + *authority;
  if (what_out != nullptr) *what_out = what;
  common::HttpHeaders headers = {{"Accept", kJson}};
  if (body != nullptr) headers.emplace_back("Content-Type", content_type);
  static const std::string kEmpty;
  auto resp = http_->request(method, url, headers, body ? *body : kEmpty, timeout_);
  if (!resp) {
    common::Error e = resp.error();
    // A URL we built is never malformed; any other failure is the network or the peer.
    if (e.code != ErrorCode::kInvalidArgument) e.code = ErrorCode::kUnavailable;
    LB_DEBUG("Amphora agent request failed. request=\"%s\" error=\"%s\"", what.c_str(), e.message.c_str());
    return e;
  }
  return Reply{resp->status, std::move(resp->body)};
}

Result<AgentClient::Reply> AgentClient::call(const AgentEndpoint& amp, std::string_view method, const std::string& path,
                                             const std::string* body, const char* content_type) {
  std::string what;
  auto r = send(amp, method, path, body, content_type, &what);
  if (!r) return r.error();
  if (auto ok = checkAgentStatus(what, r->status, r->body); !ok) {
    LB_DEBUG("Amphora agent refused a request. %s", ok.error().message.c_str());
    return ok.error();
  }
  return r;
}

Result<std::string> AgentClient::info(const AgentEndpoint& amp) {
  auto r = call(amp, "GET", "/1.0/info", nullptr, nullptr);
  if (!r) return r.error();
  return std::move(r->body);
}

Result<std::string> AgentClient::details(const AgentEndpoint& amp) {
  auto r = call(amp, "GET", "/1.0/details", nullptr, nullptr);
  if (!r) return r.error();
  return std::move(r->body);
}

Result<PutConfigResult> AgentClient::putConfig(const AgentEndpoint& amp, const std::string& document) {
  auto r = call(amp, "PUT", "/1.0/config", &document, kJson);
  if (!r) return r.error();
  auto parsed = parsePutConfigReply(r->body);
  if (!parsed) return parsed.error();
  if (parsed->sha256 != common::sha256Hex(document)) {
    return makeError(ErrorCode::kInternal, "PUT /1.0/config on amphora " + amp.address +
                                               ": the agent stored a document with another SHA-256 than we sent");
  }
  return parsed;
}

Result<void> AgentClient::putAgentConfig(const AgentEndpoint& amp, const std::vector<std::string>& controller_ip_port_list,
                                         double heartbeat_interval_s, const std::string& heartbeat_key,
                                         const std::vector<std::string>& management_cidrs) {
  std::string body = jsonObject([&](Writer& w) {
    w.Key("controller_ip_port_list");
    w.StartArray();
    for (const auto& target : controller_ip_port_list) writeString(w, target);
    w.EndArray();
    w.Key("heartbeat_interval");
    w.Double(heartbeat_interval_s);
    keyString(w, "heartbeat_key", heartbeat_key);
    if (!management_cidrs.empty()) {
      w.Key("management_cidrs");
      w.StartArray();
      for (const auto& c : management_cidrs) writeString(w, c);
      w.EndArray();
    }
  });
  auto r = call(amp, "PUT", "/1.0/agent-config", &body, kJson);
  if (!r) return r.error();
  return {};
}

Result<std::string> AgentClient::putCertificate(const AgentEndpoint& amp, std::string_view name,
                                                const std::string& pem_bundle) {
  if (!validCertName(name)) {
    return makeError(ErrorCode::kInvalidArgument, "a certificate name must match ^[A-Za-z0-9_.-]{1,128}$",
                     std::string(name));
  }
  std::string path = "/1.0/certificates/" + std::string(name);
  auto r = call(amp, "PUT", path, &pem_bundle, kPem);
  if (!r) return r.error();
  if (auto ok = checkSha("PUT " + path + " on amphora " + amp.address, r->body, pem_bundle); !ok) return ok.error();
  return stringField(r->body, "path");
}

Result<std::map<std::string, AgentClient::StoredCertificate>> AgentClient::listCertificates(const AgentEndpoint& amp) {
  auto r = call(amp, "GET", "/1.0/certificates", nullptr, nullptr);
  if (!r) return r.error();
  rapidjson::Document doc;
  doc.Parse(r->body.data(), r->body.size());
  auto malformed = [&] {
    return makeError(ErrorCode::kInternal, "GET /1.0/certificates on amphora " + amp.address +
                                               ": the answer is not {\"certificates\": [{name, sha256, path}...]}");
  };
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("certificates") || !doc["certificates"].IsArray())
    return malformed();
  std::map<std::string, StoredCertificate> out;
  for (const auto& c : doc["certificates"].GetArray()) {
    auto str = [&](const char* key) -> const rapidjson::Value* {
      auto it = c.IsObject() ? c.FindMember(key) : c.MemberEnd();
      return c.IsObject() && it != c.MemberEnd() && it->value.IsString() ? &it->value : nullptr;
    };
    const auto* name = str("name");
    const auto* sha = str("sha256");
    const auto* path = str("path");
    if (!name || !sha || !path) return malformed();
    out[name->GetString()] = StoredCertificate{sha->GetString(), path->GetString()};
  }
  return out;
}

Result<void> AgentClient::deleteCertificate(const AgentEndpoint& amp, std::string_view name) {
  if (!validCertName(name)) {
    return makeError(ErrorCode::kInvalidArgument, "a certificate name must match ^[A-Za-z0-9_.-]{1,128}$",
                     std::string(name));
  }
  auto r = call(amp, "DELETE", "/1.0/certificates/" + std::string(name), nullptr, nullptr);
  if (!r) return r.error();
  return {};
}

Result<void> AgentClient::rotateServerCertificate(const AgentEndpoint& amp, const CertBundle& bundle) {
  std::string pem = bundle.cert_pem;
  if (!pem.empty() && pem.back() != '\n') pem.push_back('\n');
  pem += bundle.key_pem;
  auto r = call(amp, "PUT", "/1.0/certificate", &pem, kPem);
  if (!r) return r.error();
  return {};
}

Result<std::string> AgentClient::plugVip(const AgentEndpoint& amp, const PlugVip& plug) {
  unsigned char buf[16];
  if (::inet_pton(AF_INET, plug.vip.c_str(), buf) != 1 && ::inet_pton(AF_INET6, plug.vip.c_str(), buf) != 1) {
    // The VIP becomes part of the URL path: never let it carry '/', '?' or '%'.
    return makeError(ErrorCode::kInvalidArgument, "a VIP must be an IPv4 or IPv6 literal", plug.vip);
  }
  std::string body = jsonObject([&](Writer& w) {
    keyString(w, "subnet_cidr", plug.subnet_cidr);
    keyOptional(w, "gateway", plug.gateway);
    keyString(w, "mac_address", plug.mac_address);
    keyOptional(w, "vrrp_ip", plug.vrrp_ip);
    w.Key("mtu");
    w.Int(plug.mtu);
    w.Key("host_routes");
    w.StartArray();
    for (const auto& route : plug.host_routes) {
      w.StartObject();
      keyString(w, "destination", route.destination);
      keyString(w, "nexthop", route.nexthop);
      w.EndObject();
    }
    w.EndArray();
  });
  // PUT rather than Octavia's POST: the agent treats both alike, and PUT says a retry is safe.
  auto r = call(amp, "PUT", "/1.0/plug/vip/" + plug.vip, &body, kJson);
  if (!r) return r.error();
  return stringField(r->body, "interface");
}

Result<std::string> AgentClient::plugNetwork(const AgentEndpoint& amp, const PlugNetwork& plug) {
  std::string body = jsonObject([&](Writer& w) {
    keyString(w, "mac_address", plug.mac_address);
    w.Key("fixed_ips");
    w.StartArray();
    for (const auto& ip : plug.fixed_ips) {
      w.StartObject();
      keyString(w, "ip_address", ip.ip_address);
      keyString(w, "subnet_cidr", ip.subnet_cidr);
      keyOptional(w, "gateway", ip.gateway);
      w.EndObject();
    }
    w.EndArray();
    w.Key("mtu");
    w.Int(plug.mtu);
  });
  auto r = call(amp, "PUT", "/1.0/plug/network", &body, kJson);
  if (!r) return r.error();
  return stringField(r->body, "interface");
}

Result<void> AgentClient::putVrrp(const AgentEndpoint& amp, const Vrrp& vrrp) {
  std::string body = jsonObject([&](Writer& w) {
    keyString(w, "interface", vrrp.interface);
    keyString(w, "vip", vrrp.vip);
    w.Key("vip_prefix");
    w.Int(vrrp.vip_prefix);
    w.Key("virtual_router_id");
    w.Int(vrrp.virtual_router_id);
    w.Key("priority");
    w.Int(vrrp.priority);
    w.Key("advert_interval");
    w.Int(vrrp.advert_interval);
    keyString(w, "local_address", vrrp.local_address);
    w.Key("peer_addresses");
    w.StartArray();
    for (const auto& peer : vrrp.peer_addresses) writeString(w, peer);
    w.EndArray();
    keyOptional(w, "auth_pass", vrrp.auth_pass);
    w.Key("nopreempt");
    w.Bool(vrrp.nopreempt);
  });
  auto r = call(amp, "PUT", "/1.0/vrrp", &body, kJson);
  if (!r) return r.error();
  return {};
}

Result<std::string> AgentClient::vrrpState(const AgentEndpoint& amp) {
  std::string what;
  auto r = send(amp, "GET", "/1.0/vrrp", nullptr, nullptr, &what);
  if (!r) return r.error();
  if (auto ok = checkAgentStatus(what, r->status, r->body); !ok) {
    common::Error e = ok.error();
    // GET /1.0/vrrp answers 404 until VRRP is configured: that is an answer, not a failure.
    if (r->status == 404) e.code = ErrorCode::kNotFound;
    return e;
  }
  return stringField(r->body, "state");
}

}  // namespace banyan::provider::amphora
