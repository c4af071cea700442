#include "config/parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/schema.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "banyan/common/logging.h"
#include "config/schema_error.h"
#include "net/cidr.h"
#include "persistence/source_ip.h"

namespace banyan::dp::config {
namespace detail {
// Defined in the source that CMake generates from schema/proxy-config.schema.json.
extern const char kProxyConfigSchema[];
extern const std::size_t kProxyConfigSchemaSize;
}  // namespace detail

namespace {

using common::Error;
using common::ErrorCode;
using common::Result;
using detail::findMember;
using detail::quote;
using detail::render;
using rapidjson::Value;

// Iterative parsing keeps hostile nesting ("[[[[...") off the C stack; UTF-8 is
// validated because ids end up in logs, stats and health reports.
constexpr unsigned kParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

// Octavia renders a listener timeout of 0 as the configured default
// ([haproxy_amphora] timeout_client_data etc.); these are Octavia's defaults.
constexpr uint32_t kDefaultTimeoutClientDataMs = 50000;
constexpr uint32_t kDefaultTimeoutMemberConnectMs = 5000;
constexpr uint32_t kDefaultTimeoutMemberDataMs = 50000;

Error invalid(std::string context, std::string message) {
  return common::makeError(ErrorCode::kInvalidArgument, std::move(message), std::move(context));
}

// SCTP needs the kernel's SCTP module, which amphorae do not load by default;
// banyan-proxy has no SCTP relay yet, so these documents are refused whole.
constexpr const char* kSctpRefusal =
    "SCTP is not supported by banyan-proxy (no SCTP listeners, pools or health monitors); "
    "use TCP or UDP";

// Compiled on first use; a function-local static is initialised exactly once even
// when several threads get here together. It is a real static object, not a leaked
// pointer: RapidJSON packs flags into the top bits of its string pointers, so
// LeakSanitizer cannot see through a leaked schema and would report it.
struct CompiledSchema {
  CompiledSchema() {
    const std::string& text = schemaText();
    doc.Parse(text.data(), text.size());
    LB_CHECK(!doc.HasParseError(),
             "the embedded proxy-config schema is valid JSON (checked by tests)");
    schema = std::make_unique<rapidjson::SchemaDocument>(doc);
  }

  rapidjson::Document doc;  // kept: error messages quote its enums and bounds
  std::unique_ptr<rapidjson::SchemaDocument> schema;
};

const CompiledSchema& compiledSchema() {
  static const CompiledSchema compiled;
  return compiled;
}

// JSON pointer token escaping (RFC 6901 section 3).
std::string escapeToken(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Typed reads. The schema has already fixed each value's type and range, so these
// only pick the representation; a mismatch here is a schema/code disagreement.

bool present(const Value* v) { return v != nullptr && !v->IsNull(); }

std::string readString(const Value& obj, const char* name, std::string fallback = {}) {
  const Value* v = findMember(obj, name);
  if (!present(v)) return fallback;
  LB_CHECK(v->IsString(), "schema guarantees a string");
  return std::string(v->GetString(), v->GetStringLength());
}

bool readBool(const Value& obj, const char* name, bool fallback) {
  const Value* v = findMember(obj, name);
  if (!present(v)) return fallback;
  LB_CHECK(v->IsBool(), "schema guarantees a boolean");
  return v->GetBool();
}

int64_t readInt(const Value& obj, const char* name, int64_t fallback) {
  const Value* v = findMember(obj, name);
  if (!present(v)) return fallback;
  LB_CHECK(v->IsInt64(), "schema guarantees a bounded integer");
  return v->GetInt64();
}

uint32_t readU32(const Value& obj, const char* name, uint32_t fallback) {
  const Value* v = findMember(obj, name);
  if (!present(v)) return fallback;
  LB_CHECK(v->IsUint(), "schema guarantees a bounded non-negative integer");
  return v->GetUint();
}

// Listener timeouts: 0 means "the default", as Octavia renders it.
uint32_t readTimeoutMs(const Value& obj, const char* name, uint32_t fallback) {
  uint32_t ms = readU32(obj, name, 0);
  return ms == 0 ? fallback : ms;
}

// Health monitor delay/timeout: seconds as a JSON number (fractions allowed so
// tests can run fast), stored in milliseconds.
uint32_t readSecondsAsMs(const Value& obj, const char* name, uint32_t fallback) {
  const Value* v = findMember(obj, name);
  if (!present(v)) return fallback;
  LB_CHECK(v->IsNumber(), "schema guarantees a number");
  return static_cast<uint32_t>(std::llround(v->GetDouble() * 1000.0));
}

std::string indexPath(const std::string& base, size_t i) { return base + "/" + std::to_string(i); }

// ---------------------------------------------------------------------------
// Semantic checks.

struct IpAddress {
  int family = 0;
  unsigned char bytes[16] = {};

  bool isWildcard() const {
    size_t n = family == AF_INET ? 4 : 16;
    return std::all_of(bytes, bytes + n, [](unsigned char b) { return b == 0; });
  }
  auto key() const {
    return std::make_tuple(family, std::string(reinterpret_cast<const char*>(bytes), 16));
  }
};

std::optional<IpAddress> parseIp(const std::string& text) {
  IpAddress ip;
  if (inet_pton(AF_INET, text.c_str(), ip.bytes) == 1) {
    ip.family = AF_INET;
    return ip;
  }
  if (inet_pton(AF_INET6, text.c_str(), ip.bytes) == 1) {
    ip.family = AF_INET6;
    return ip;
  }
  return std::nullopt;
}

Result<IpAddress> checkIp(const std::string& text, const std::string& path) {
  // inet_pton stops at a NUL; an embedded one would make the checked and the used
  // address differ.
  std::optional<IpAddress> ip;
  if (text.find('\0') == std::string::npos) ip = parseIp(text);
  if (!ip) return invalid(path, quote(text) + " is not an IPv4 or IPv6 address literal");
  return *ip;
}

std::string endpoint(const std::string& address, const IpAddress& ip, uint16_t port) {
  return (ip.family == AF_INET6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// Detects two listener sockets that would collide: the same address and port, or
// a wildcard (0.0.0.0 / ::) and any address of its family on the same port.
class BindTable {
 public:
  struct Owner {
    std::string listener_id;
    std::string path;
  };

  // Returns the owner already holding a conflicting bind, or nullptr after
  // recording this one.
  const Owner* claim(const IpAddress& ip, uint16_t port, Owner owner) {
    auto group_key = std::make_pair(ip.family, port);
    auto exact_key = std::make_tuple(ip.family, port, std::get<1>(ip.key()));
    if (auto it = exact_.find(exact_key); it != exact_.end()) return &it->second;
    if (auto it = wildcard_.find(group_key); it != wildcard_.end()) return &it->second;
    if (ip.isWildcard()) {
      if (auto it = any_.find(group_key); it != any_.end()) return &it->second;
      wildcard_.emplace(group_key, owner);
    }
    any_.emplace(group_key, owner);
    exact_.emplace(exact_key, std::move(owner));
    return nullptr;
  }

 private:
  std::map<std::tuple<int, uint16_t, std::string>, Owner> exact_;
  std::map<std::pair<int, uint16_t>, Owner> wildcard_;
  std::map<std::pair<int, uint16_t>, Owner> any_;
};

// Rejects an object that names the same property twice: RapidJSON keeps both and
// lookups see the first, so the schema may have validated a value we then ignore.
Result<void> checkDuplicateKeys(const Value& v, const std::string& path) {
  if (v.IsObject()) {
    std::set<std::string_view> seen;
    for (const auto& m : v.GetObject()) {
      std::string_view name(m.name.GetString(), m.name.GetStringLength());
      if (!seen.insert(name).second) return invalid(path, "duplicate property " + quote(name));
      auto r = checkDuplicateKeys(m.value, path + "/" + escapeToken(name));
      if (!r) return r;
    }
  } else if (v.IsArray()) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      auto r = checkDuplicateKeys(v[i], indexPath(path, i));
      if (!r) return r;
    }
  }
  return {};
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// insert_headers values: Octavia stores strings "true"/"false" (any case);
// booleans are accepted too.
Result<bool> readHeaderFlag(const Value& headers, const char* name, const std::string& path) {
  const Value* v = findMember(headers, name);
  if (!present(v)) return false;
  if (v->IsBool()) return v->GetBool();
  std::string_view s(v->GetString(), v->GetStringLength());
  if (equalsIgnoreCase(s, "true")) return true;
  if (equalsIgnoreCase(s, "false")) return false;
  return invalid(path + "/" + name, quote(s) + " is not \"true\" or \"false\"");
}

const char* listenerProtocolName(ListenerProtocol p) {
  switch (p) {
    case ListenerProtocol::kHttp:
      return "HTTP";
    case ListenerProtocol::kTcp:
      return "TCP";
    case ListenerProtocol::kHttps:
      return "HTTPS";
    case ListenerProtocol::kTerminatedHttps:
      return "TERMINATED_HTTPS";
    case ListenerProtocol::kUdp:
      return "UDP";
    case ListenerProtocol::kPrometheus:
      return "PROMETHEUS";
  }
  return "?";
}

bool parsesHttp(ListenerProtocol p) {
  return p == ListenerProtocol::kHttp || p == ListenerProtocol::kTerminatedHttps;
}

const char* poolProtocolName(PoolProtocol p) {
  switch (p) {
    case PoolProtocol::kHttp:
      return "HTTP";
    case PoolProtocol::kTcp:
      return "TCP";
    case PoolProtocol::kHttps:
      return "HTTPS";
    case PoolProtocol::kProxy:
      return "PROXY";
    case PoolProtocol::kProxyV2:
      return "PROXYV2";
    case PoolProtocol::kUdp:
      return "UDP";
  }
  return "?";
}

// Octavia's listener/pool protocol matrix (octavia/common/constants.py
// VALID_LISTENER_POOL_PROTOCOL_MAP), restricted to the protocols supported here.
bool compatible(ListenerProtocol listener, PoolProtocol pool) {
  // Datagrams and streams do not mix: UDP listeners take UDP pools only.
  if (listener == ListenerProtocol::kUdp) return pool == PoolProtocol::kUdp;
  if (pool == PoolProtocol::kUdp) return false;
  if (parsesHttp(listener)) {
    return pool == PoolProtocol::kHttp || pool == PoolProtocol::kProxy ||
           pool == PoolProtocol::kProxyV2;
  }
  if (listener == ListenerProtocol::kHttps) return pool != PoolProtocol::kHttp;
  return true;  // a TCP listener forwards bytes: any pool protocol this proxy supports fits
}

const char* allowedPoolProtocols(ListenerProtocol listener) {
  if (listener == ListenerProtocol::kUdp) return "UDP";
  if (parsesHttp(listener)) return "HTTP, PROXY, PROXYV2";
  if (listener == ListenerProtocol::kHttps) return "HTTPS, PROXY, PROXYV2, TCP";
  return "TCP, HTTP, HTTPS, PROXY, PROXYV2";
}

// tls_versions: Octavia's names to a bit set.
uint32_t readTlsVersions(const Value& obj, const char* name) {
  const Value* v = findMember(obj, name);
  if (!present(v)) return kDefaultTlsVersions;
  uint32_t bits = 0;
  for (const auto& e : v->GetArray()) {
    std::string_view n(e.GetString(), e.GetStringLength());
    bits |= n == "SSLv3" ? kSslV3 : n == "TLSv1" ? kTlsV1 : n == "TLSv1.1" ? kTlsV11
          : n == "TLSv1.2" ? kTlsV12 : kTlsV13;
  }
  return bits;
}

// tls_ciphers: Octavia's API allows only these characters (an OpenSSL cipher
// string); whether OpenSSL knows the names is checked when contexts are built.
Result<std::string> readTlsCiphers(const Value& obj, const std::string& path) {
  std::string c = readString(obj, "tls_ciphers", kDefaultTlsCiphers);
  for (char ch : c) {
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || std::strchr("-+!:@=_.", ch) != nullptr) ||
        ch == '\0') {
      return invalid(path + "/tls_ciphers",
                     quote(c) + " contains a character outside [A-Za-z0-9-+!:@=_.]");
    }
  }
  return c;
}

// alpn_protocols. Listeners speak HTTP/2 to clients that pick "h2"; pools
// with tls_enabled speak HTTP/2 to members whose handshake picks "h2". A pool
// without tls_enabled has no handshake: its list is kept but unused (no h2c).
Result<std::vector<std::string>> readAlpn(const Value& obj, const std::string& /*path*/, bool listener) {
  const Value* v = findMember(obj, "alpn_protocols");
  if (!present(v)) {
    if (listener) return std::vector<std::string>{"h2", "http/1.1", "http/1.0"};
    return std::vector<std::string>{"http/1.1", "http/1.0"};
  }
  std::vector<std::string> out;
  for (const auto& e : v->GetArray()) {
    std::string n(e.GetString(), e.GetStringLength());
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(std::move(n));
  }
  return out;
}

// A certificate or CRL reference: an absolute path (the agent writes the files).
Result<std::string> readPemPath(const Value& obj, const char* name, const std::string& path) {
  std::string p = readString(obj, name);
  if (!p.empty() && (p.front() != '/' || p.find('\0') != std::string::npos))
    return invalid(path + "/" + name, quote(p) + " is not an absolute file path");
  return p;
}

Result<void> readListenerTls(const Value& v, const std::string& path, Listener& l) {
  static constexpr const char* kTlsFields[] = {
      "default_tls_certificate", "sni_certificates", "client_ca_certificate", "client_crl",
      "client_authentication",   "tls_versions",     "tls_ciphers",           "alpn_protocols",
      "hsts_max_age",            "hsts_include_subdomains", "hsts_preload",
      "tls_session_resumption"};
  // A PROMETHEUS listener terminates TLS when it has a certificate (Octavia:
  // certificate refs on a PROMETHEUS listener make its bind `ssl crt`).
  const bool prometheus_tls =
      l.protocol == ListenerProtocol::kPrometheus && present(findMember(v, "default_tls_certificate"));
  if (l.protocol != ListenerProtocol::kTerminatedHttps && !prometheus_tls) {
    // Octavia refuses certificate references and TLS options on other protocols.
    for (const char* f : kTlsFields) {
      const Value* x = findMember(v, f);
      if (present(x) && !(x->IsBool() && !x->GetBool())) {
        if (l.protocol == ListenerProtocol::kPrometheus)
          return invalid(path + "/" + f, std::string(f) + " needs default_tls_certificate on a " +
                                             "PROMETHEUS listener");
        return invalid(path + "/" + f, std::string(f) + " needs a TERMINATED_HTTPS listener, not " +
                                           listenerProtocolName(l.protocol));
      }
    }
    return {};
  }
  ListenerTls& t = l.tls;
  auto def = readPemPath(v, "default_tls_certificate", path);
  if (!def) return def.error();
  t.default_certificate = std::move(def).value();
  if (t.default_certificate.empty())
    return invalid(path, "a TERMINATED_HTTPS listener needs default_tls_certificate");
  if (const Value* sni = findMember(v, "sni_certificates"); present(sni)) {
    rapidjson::SizeType i = 0;
    for (const auto& e : sni->GetArray()) {
      std::string p(e.GetString(), e.GetStringLength());
      if (p.front() != '/' || p.find('\0') != std::string::npos)
        return invalid(indexPath(path + "/sni_certificates", i),
                       quote(p) + " is not an absolute file path");
      t.sni_certificates.push_back(std::move(p));
      ++i;
    }
  }
  auto ca = readPemPath(v, "client_ca_certificate", path);
  if (!ca) return ca.error();
  t.client_ca_certificate = std::move(ca).value();
  auto crl = readPemPath(v, "client_crl", path);
  if (!crl) return crl.error();
  t.client_crl = std::move(crl).value();
  std::string auth = readString(v, "client_authentication", "NONE");
  t.client_authentication = auth == "OPTIONAL"    ? ClientAuth::kOptional
                            : auth == "MANDATORY" ? ClientAuth::kMandatory
                                                  : ClientAuth::kNone;
  if (t.client_authentication != ClientAuth::kNone && t.client_ca_certificate.empty()) {
    return invalid(path + "/client_authentication",
                   "client_authentication " + auth + " needs client_ca_certificate");
  }
  if (!t.client_crl.empty() && t.client_ca_certificate.empty())
    return invalid(path + "/client_crl", "client_crl needs client_ca_certificate");
  t.versions = readTlsVersions(v, "tls_versions");
  auto ciphers = readTlsCiphers(v, path);
  if (!ciphers) return ciphers.error();
  t.ciphers = std::move(ciphers).value();
  auto alpn = readAlpn(v, path, true);
  if (!alpn) return alpn.error();
  t.alpn_protocols = std::move(alpn).value();
  if (const Value* age = findMember(v, "hsts_max_age"); present(age))
    t.hsts_max_age = age->GetUint();
  t.hsts_include_subdomains = readBool(v, "hsts_include_subdomains", false);
  t.hsts_preload = readBool(v, "hsts_preload", false);
  // Octavia: the HSTS flags only mean something with a max-age.
  if ((t.hsts_include_subdomains || t.hsts_preload) && !t.hsts_max_age) {
    return invalid(path + (t.hsts_preload ? "/hsts_preload" : "/hsts_include_subdomains"),
                   "hsts_include_subdomains and hsts_preload need hsts_max_age");
  }
  t.session_resumption = readBool(v, "tls_session_resumption", true);
  return {};
}

// An array of IP prefixes at obj[key]; absent or null leaves `out` empty.
Result<void> readCidrs(const Value& obj, const char* key, const std::string& path,
                       std::vector<std::string>& out) {
  const Value* cidrs = findMember(obj, key);
  if (!present(cidrs)) return {};
  size_t i = 0;
  for (const auto& c : cidrs->GetArray()) {
    std::string text(c.GetString(), c.GetStringLength());
    net::Cidr parsed;
    if (!net::parseCidr(text, parsed)) {
      return invalid(indexPath(path + "/" + key, i),
                     quote(text) + " is not an IP prefix like 192.0.2.0/24 or 2001:db8::/32" +
                         " (host bits after the prefix must be zero)");
    }
    out.push_back(std::move(text));
    ++i;
  }
  return {};
}

Result<Settings> readSettings(const Value* v) {
  Settings s;
  if (!present(v)) return s;
  s.workers = readU32(*v, "workers", s.workers);
  s.default_connection_limit = readU32(*v, "default_connection_limit", s.default_connection_limit);
  s.max_request_line = readU32(*v, "max_request_line", s.max_request_line);
  s.max_header_bytes = readU32(*v, "max_header_bytes", s.max_header_bytes);
  s.max_headers = readU32(*v, "max_headers", s.max_headers);
  s.drain_timeout_ms = readU32(*v, "drain_timeout_ms", s.drain_timeout_ms);
  s.member_connect_retries = readU32(*v, "member_connect_retries", s.member_connect_retries);
  s.access_log = readString(*v, "access_log", s.access_log);
  s.tls_ticket_key_rotation_s =
      readU32(*v, "tls_ticket_key_rotation_s", s.tls_ticket_key_rotation_s);
  s.session_cookie_secret = readString(*v, "session_cookie_secret");
  if (!(s.access_log.empty() || s.access_log == "stderr" || s.access_log == "stdout" ||
        s.access_log.front() == '/') ||
      s.access_log.find('\0') != std::string::npos) {
    return invalid(
        "/settings/access_log",
        quote(s.access_log) + " is not \"\", \"stderr\", \"stdout\" or an absolute file path");
  }
  return s;
}

l7::RuleType ruleTypeOf(const std::string& text) {
  if (text == "HOST_NAME") return l7::RuleType::kHostName;
  if (text == "FILE_TYPE") return l7::RuleType::kFileType;
  if (text == "HEADER") return l7::RuleType::kHeader;
  if (text == "COOKIE") return l7::RuleType::kCookie;
  if (text == "SSL_CONN_HAS_CERT") return l7::RuleType::kSslConnHasCert;
  if (text == "SSL_VERIFY_RESULT") return l7::RuleType::kSslVerifyResult;
  if (text == "SSL_DN_FIELD") return l7::RuleType::kSslDnField;
  return l7::RuleType::kPath;  // the schema allows nothing else
}

l7::CompareType compareTypeOf(const std::string& text) {
  if (text == "STARTS_WITH") return l7::CompareType::kStartsWith;
  if (text == "ENDS_WITH") return l7::CompareType::kEndsWith;
  if (text == "CONTAINS") return l7::CompareType::kContains;
  if (text == "REGEX") return l7::CompareType::kRegex;
  return l7::CompareType::kEqualTo;
}

// Structure only; the policies are checked and compiled in checkDocument, once
// every pool is known.
l7::Policy readPolicy(const Value& v, size_t index) {
  l7::Policy p;
  p.id = readString(v, "id");
  // Octavia numbers positions 1..n; without one, the document order counts.
  p.position = readInt(v, "position", static_cast<int64_t>(index) + 1);
  std::string action = readString(v, "action", "REJECT");
  p.action = action == "REDIRECT_TO_URL"    ? l7::PolicyAction::kRedirectToUrl
             : action == "REDIRECT_PREFIX"  ? l7::PolicyAction::kRedirectPrefix
             : action == "REDIRECT_TO_POOL" ? l7::PolicyAction::kRedirectToPool
                                            : l7::PolicyAction::kReject;
  p.redirect_pool_id = readString(v, "redirect_pool_id");
  p.redirect_url = readString(v, "redirect_url");
  p.redirect_prefix = readString(v, "redirect_prefix");
  p.redirect_http_code = static_cast<int>(readInt(v, "redirect_http_code", 302));
  p.admin_state_up = readBool(v, "admin_state_up", true);
  if (const Value* rules = findMember(v, "rules"); present(rules)) {
    for (const auto& rv : rules->GetArray()) {
      l7::Rule r;
      r.id = readString(rv, "id");
      r.type = ruleTypeOf(readString(rv, "type"));
      r.compare_type = compareTypeOf(readString(rv, "compare_type"));
      r.key = readString(rv, "key");
      r.value = readString(rv, "value");
      r.invert = readBool(rv, "invert", false);
      r.admin_state_up = readBool(rv, "admin_state_up", true);
      p.rules.push_back(std::move(r));
    }
  }
  return p;
}

Result<Listener> readListener(const Value& v, const std::string& path) {
  Listener l;
  l.id = readString(v, "id");
  std::string protocol = readString(v, "protocol", "HTTP");
  if (protocol == "HTTP") {
    l.protocol = ListenerProtocol::kHttp;
  } else if (protocol == "TCP") {
    l.protocol = ListenerProtocol::kTcp;
  } else if (protocol == "HTTPS") {
    l.protocol = ListenerProtocol::kHttps;
  } else if (protocol == "TERMINATED_HTTPS") {
    l.protocol = ListenerProtocol::kTerminatedHttps;
  } else if (protocol == "UDP") {
    l.protocol = ListenerProtocol::kUdp;
  } else if (protocol == "PROMETHEUS") {
    l.protocol = ListenerProtocol::kPrometheus;
  } else if (protocol == "SCTP") {
    return invalid(path + "/protocol", kSctpRefusal);
  } else {
    return invalid(path + "/protocol", "listener protocol " + quote(protocol) +
                                           " is not supported yet (supported: HTTP, TCP, HTTPS, "
                                           "TERMINATED_HTTPS, UDP, PROMETHEUS)");
  }
  l.address = readString(v, "address");
  if (const Value* extra = findMember(v, "additional_addresses"); present(extra)) {
    for (const auto& a : extra->GetArray())
      l.additional_addresses.emplace_back(a.GetString(), a.GetStringLength());
  }
  l.protocol_port = static_cast<uint16_t>(readU32(v, "protocol_port", 0));
  l.admin_state_up = readBool(v, "admin_state_up", l.admin_state_up);
  l.connection_limit = readInt(v, "connection_limit", l.connection_limit);
  l.timeout_client_data_ms = readTimeoutMs(v, "timeout_client_data", kDefaultTimeoutClientDataMs);
  l.timeout_member_connect_ms =
      readTimeoutMs(v, "timeout_member_connect", kDefaultTimeoutMemberConnectMs);
  l.timeout_member_data_ms = readTimeoutMs(v, "timeout_member_data", kDefaultTimeoutMemberDataMs);
  l.timeout_tcp_inspect_ms = readU32(v, "timeout_tcp_inspect", 0);

  if (const Value* headers = findMember(v, "insert_headers"); present(headers)) {
    const std::string hpath = path + "/insert_headers";
    struct Flag {
      const char* name;
      bool InsertHeaders::*field;
    };
    static constexpr Flag kFlags[] = {
        {"X-Forwarded-For", &InsertHeaders::x_forwarded_for},
        {"X-Forwarded-Port", &InsertHeaders::x_forwarded_port},
        {"X-Forwarded-Proto", &InsertHeaders::x_forwarded_proto},
        {"Forwarded", &InsertHeaders::forwarded},
        {"X-SSL-Client-Verify", &InsertHeaders::ssl_client_verify},
        {"X-SSL-Client-Has-Cert", &InsertHeaders::ssl_client_has_cert},
        {"X-SSL-Client-DN", &InsertHeaders::ssl_client_dn},
        {"X-SSL-Client-CN", &InsertHeaders::ssl_client_cn},
        {"X-SSL-Issuer", &InsertHeaders::ssl_issuer},
        {"X-SSL-Client-SHA1", &InsertHeaders::ssl_client_sha1},
        {"X-SSL-Client-Not-Before", &InsertHeaders::ssl_client_not_before},
        {"X-SSL-Client-Not-After", &InsertHeaders::ssl_client_not_after},
    };
    for (const Flag& f : kFlags) {
      auto on = readHeaderFlag(*headers, f.name, hpath);
      if (!on) return on.error();
      // The X-SSL-* headers describe a TLS client: Octavia allows them on
      // TERMINATED_HTTPS only.
      if (*on && std::string_view(f.name).substr(0, 6) == "X-SSL-" &&
          l.protocol != ListenerProtocol::kTerminatedHttps) {
        return invalid(hpath + "/" + f.name, std::string("inserting ") + f.name +
                                                 " needs a TERMINATED_HTTPS listener, not " +
                                                 listenerProtocolName(l.protocol));
      }
      // Octavia refuses insert_headers on listeners that do not parse HTTP.
      if (*on && !parsesHttp(l.protocol)) {
        return invalid(hpath + "/" + f.name, std::string("inserting ") + f.name +
                                                 " needs an HTTP listener, not " +
                                                 listenerProtocolName(l.protocol));
      }
      l.insert_headers.*f.field = *on;
    }
  }

  std::string accept = readString(v, "accept_proxy_protocol", "none");
  l.accept_proxy = accept == "v1"    ? AcceptProxy::kV1
                   : accept == "v2"  ? AcceptProxy::kV2
                   : accept == "any" ? AcceptProxy::kAny
                                     : AcceptProxy::kNone;
  if (auto r = readCidrs(v, "proxy_protocol_trusted_cidrs", path, l.proxy_protocol_trusted_cidrs); !r)
    return r.error();
  if (auto r = readCidrs(v, "allowed_cidrs", path, l.allowed_cidrs); !r) return r.error();
  if (l.protocol == ListenerProtocol::kUdp && l.accept_proxy != AcceptProxy::kNone) {
    // A PROXY header is a stream preamble; datagrams have no place for it.
    return invalid(path + "/accept_proxy_protocol",
                   "accepting PROXY headers needs a TCP-family listener, not UDP");
  }
  l.default_pool_id = readString(v, "default_pool_id");
  if (l.protocol == ListenerProtocol::kPrometheus && !l.default_pool_id.empty()) {
    // Octavia: a PROMETHEUS listener has no pools; it answers with metrics itself.
    return invalid(path + "/default_pool_id", "a PROMETHEUS listener has no pools (it serves the "
                                              "proxy's metrics itself)");
  }
  if (auto r = readListenerTls(v, path, l); !r) return r.error();
  if (const Value* policies = findMember(v, "l7policies"); present(policies)) {
    // Octavia's API takes L7 policies on every listener protocol but PROMETHEUS.
    // TCP and HTTPS listeners match them on the ClientHello's SNI (passthrough
    // semantics, l7/policy.h); UDP listeners carry them without effect, as the
    // stock amphora's keepalived does.
    if (l.protocol == ListenerProtocol::kPrometheus && !policies->Empty()) {
      return invalid(path + "/l7policies",
                     "a PROMETHEUS listener has no L7 policies (it serves the proxy's metrics "
                     "itself)");
    }
    for (rapidjson::SizeType i = 0; i < policies->Size(); ++i)
      l.l7policies.push_back(readPolicy((*policies)[i], i));
  }
  return l;
}

Result<HealthMonitor> readHealthMonitor(const Value& v, const std::string& path) {
  HealthMonitor hm;
  hm.id = readString(v, "id");
  std::string type = readString(v, "type", "TCP");
  if (type == "TCP") {
    hm.type = MonitorType::kTcp;
  } else if (type == "HTTP") {
    hm.type = MonitorType::kHttp;
  } else if (type == "HTTPS") {
    hm.type = MonitorType::kHttps;
  } else if (type == "TLS-HELLO") {
    hm.type = MonitorType::kTlsHello;
  } else if (type == "PING") {
    hm.type = MonitorType::kPing;
  } else if (type == "UDP-CONNECT") {
    hm.type = MonitorType::kUdpConnect;
  } else if (type == "SCTP") {
    return invalid(path + "/type", kSctpRefusal);
  } else {
    return invalid(path + "/type",
                   "health monitor type " + quote(type) +
                       " is not supported yet (supported: TCP, HTTP, HTTPS, TLS-HELLO, PING, "
                       "UDP-CONNECT)");
  }
  hm.delay_ms = readSecondsAsMs(v, "delay", hm.delay_ms);
  hm.timeout_ms = readSecondsAsMs(v, "timeout", hm.timeout_ms);
  hm.max_retries = readU32(v, "max_retries", hm.max_retries);
  hm.max_retries_down = readU32(v, "max_retries_down", hm.max_retries_down);
  hm.http_method = readString(v, "http_method", hm.http_method);
  hm.url_path = readString(v, "url_path", hm.url_path);
  // The path goes verbatim into the check's request line.
  if (hm.url_path.front() != '/')
    return invalid(path + "/url_path", quote(hm.url_path) + " does not start with \"/\"");
  for (char c : hm.url_path) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7F) {
      return invalid(path + "/url_path",
                     quote(hm.url_path) + " contains a space, control or non-ASCII character");
    }
  }
  if (const Value* codes = findMember(v, "expected_codes"); present(codes)) {
    auto parsed =
        parseExpectedCodes(std::string_view(codes->GetString(), codes->GetStringLength()));
    if (!parsed) return invalid(path + "/expected_codes", parsed.error().message);
    hm.expected_codes = std::move(parsed).value();
  }
  hm.http_version = readString(v, "http_version", hm.http_version);
  hm.domain_name = readString(v, "domain_name");
  if (!hm.domain_name.empty()) {
    // The name goes verbatim into the check's Host header.
    bool ok = std::all_of(hm.domain_name.begin(), hm.domain_name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    });
    if (!ok)
      return invalid(path + "/domain_name", quote(hm.domain_name) + " is not a valid domain name");
    if (hm.http_version != "1.1") {
      return invalid(path + "/domain_name",
                     "domain_name needs http_version \"1.1\" (the Host header is HTTP/1.1)");
    }
  }
  hm.admin_state_up = readBool(v, "admin_state_up", hm.admin_state_up);
  return hm;
}

Result<Member> readMember(const Value& v, const std::string& path) {
  Member m;
  m.id = readString(v, "id");
  m.address = readString(v, "address");
  if (auto ip = checkIp(m.address, path + "/address"); !ip) return ip.error();
  m.protocol_port = static_cast<uint16_t>(readU32(v, "protocol_port", 0));
  m.weight = readU32(v, "weight", m.weight);
  m.backup = readBool(v, "backup", m.backup);
  m.admin_state_up = readBool(v, "admin_state_up", m.admin_state_up);
  m.monitor_address = readString(v, "monitor_address");
  if (!m.monitor_address.empty()) {
    if (auto ip = checkIp(m.monitor_address, path + "/monitor_address"); !ip) return ip.error();
  }
  m.monitor_port = static_cast<uint16_t>(readU32(v, "monitor_port", 0));
  return m;
}

// Octavia's API pairing of monitor types and pool protocols: UDP pools are
// checked by UDP-CONNECT, TCP or HTTP (keepalived MISC_CHECK, TCP_CHECK,
// HTTP_GET); UDP-CONNECT makes no sense for a stream pool.
Result<void> checkMonitorFitsPool(const Pool& p, const std::string& type_path) {
  MonitorType t = p.health_monitor->type;
  if (p.protocol == PoolProtocol::kUdp) {
    if (t != MonitorType::kUdpConnect && t != MonitorType::kTcp && t != MonitorType::kHttp) {
      return invalid(type_path,
                     "a UDP pool takes UDP-CONNECT, TCP or HTTP health monitors only");
    }
  } else if (t == MonitorType::kUdpConnect) {
    return invalid(type_path, std::string("a UDP-CONNECT health monitor needs a UDP pool, not ") +
                                  poolProtocolName(p.protocol));
  }
  return {};
}

Result<Pool> readPool(const Value& v, const std::string& path) {
  Pool p;
  p.id = readString(v, "id");
  std::string protocol = readString(v, "protocol", "HTTP");
  if (protocol == "HTTP") {
    p.protocol = PoolProtocol::kHttp;
  } else if (protocol == "TCP") {
    p.protocol = PoolProtocol::kTcp;
  } else if (protocol == "HTTPS") {
    p.protocol = PoolProtocol::kHttps;
  } else if (protocol == "PROXY") {
    p.protocol = PoolProtocol::kProxy;
  } else if (protocol == "PROXYV2") {
    p.protocol = PoolProtocol::kProxyV2;
  } else if (protocol == "UDP") {
    p.protocol = PoolProtocol::kUdp;
  } else if (protocol == "SCTP") {
    return invalid(path + "/protocol", kSctpRefusal);
  } else {
    return invalid(path + "/protocol",
                   "pool protocol " + quote(protocol) +
                       " is not supported yet (supported: HTTP, TCP, HTTPS, PROXY, PROXYV2, UDP)");
  }
  std::string algorithm = readString(v, "lb_algorithm", "ROUND_ROBIN");
  p.lb_algorithm = algorithm == "LEAST_CONNECTIONS" ? LbAlgorithm::kLeastConnections
                   : algorithm == "SOURCE_IP"       ? LbAlgorithm::kSourceIp
                   : algorithm == "SOURCE_IP_PORT"  ? LbAlgorithm::kSourceIpPort
                                                    : LbAlgorithm::kRoundRobin;
  p.admin_state_up = readBool(v, "admin_state_up", p.admin_state_up);
  if (const Value* members = findMember(v, "members"); present(members)) {
    // Octavia refuses a second member with the same address and port in a pool.
    std::map<std::tuple<int, std::string, uint16_t>, size_t> endpoints;
    for (rapidjson::SizeType i = 0; i < members->Size(); ++i) {
      const std::string mpath = indexPath(path + "/members", i);
      auto m = readMember((*members)[i], mpath);
      if (!m) return m.error();
      IpAddress ip = *parseIp(m->address);
      auto [it, inserted] =
          endpoints.emplace(std::make_tuple(ip.family, std::get<1>(ip.key()), m->protocol_port), i);
      if (!inserted) {
        return invalid(mpath, "another member of pool " + quote(p.id) + " already uses " +
                                  endpoint(m->address, ip, m->protocol_port) + " (" +
                                  indexPath(path + "/members", it->second) + ")");
      }
      p.members.push_back(std::move(m).value());
    }
  }
  if (const Value* hm = findMember(v, "health_monitor"); present(hm)) {
    auto parsed = readHealthMonitor(*hm, path + "/health_monitor");
    if (!parsed) return parsed.error();
    p.health_monitor = std::move(parsed).value();
    if (auto r = checkMonitorFitsPool(p, path + "/health_monitor/type"); !r) return r.error();
  }
  p.tls_enabled = readBool(v, "tls_enabled", false);
  auto ca = readPemPath(v, "ca_certificate", path);
  if (!ca) return ca.error();
  p.ca_certificate = std::move(ca).value();
  auto crl = readPemPath(v, "crl", path);
  if (!crl) return crl.error();
  p.crl = std::move(crl).value();
  auto cert = readPemPath(v, "tls_certificate", path);
  if (!cert) return cert.error();
  p.tls_certificate = std::move(cert).value();
  p.tls_versions = readTlsVersions(v, "tls_versions");
  auto ciphers = readTlsCiphers(v, path);
  if (!ciphers) return ciphers.error();
  p.tls_ciphers = std::move(ciphers).value();
  auto alpn = readAlpn(v, path, false);
  if (!alpn) return alpn.error();
  p.alpn_protocols = std::move(alpn).value();
  if (p.tls_enabled) {
    // Re-encryption is done for HTTP pools; a PROXY header would have to go
    // out in clear before the handshake, and raw pools carry the client's own
    // TLS already.
    if (p.protocol != PoolProtocol::kHttp) {
      return invalid(path + "/tls_enabled", std::string("tls_enabled on a ") +
                                                poolProtocolName(p.protocol) +
                                                " pool is not supported yet (HTTP pools only)");
    }
    if (!p.crl.empty() && p.ca_certificate.empty())
      return invalid(path + "/crl", "crl needs ca_certificate");
  }
  if (const Value* sp = findMember(v, "session_persistence"); present(sp)) {
    const std::string spath = path + "/session_persistence";
    SessionPersistence persistence;
    std::string type = readString(*sp, "type");
    persistence.type = type == "HTTP_COOKIE"  ? PersistenceType::kHttpCookie
                       : type == "APP_COOKIE" ? PersistenceType::kAppCookie
                                              : PersistenceType::kSourceIp;
    persistence.cookie_name = readString(*sp, "cookie_name");
    persistence.persistence_timeout_s = readU32(*sp, "persistence_timeout", 0);
    persistence.persistence_granularity = readString(*sp, "persistence_granularity");
    // Octavia's API: APP_COOKIE needs a cookie name, the others take none.
    if (persistence.type == PersistenceType::kAppCookie) {
      if (persistence.cookie_name.empty())
        return invalid(spath + "/cookie_name", "APP_COOKIE session persistence needs cookie_name");
      for (char c : persistence.cookie_name) {
        // RFC 6265 cookie-name: a token (no separators, controls or spaces).
        if (c <= 0x20 || c >= 0x7f || std::strchr("()<>@,;:\\\"/[]?={}", c) != nullptr)
          return invalid(spath + "/cookie_name",
                         quote(persistence.cookie_name) + " is not a valid cookie name");
      }
    } else if (!persistence.cookie_name.empty()) {
      return invalid(spath + "/cookie_name", "cookie_name is only allowed with APP_COOKIE");
    }
    // Octavia: UDP pools persist by source address only (LVS persistence).
    if (p.protocol == PoolProtocol::kUdp && persistence.type != PersistenceType::kSourceIp) {
      return invalid(spath + "/type", "session persistence " + quote(type) +
                                          " needs an HTTP pool; UDP pools take SOURCE_IP only");
    }
    if (!persistence.persistence_granularity.empty()) {
      auto g = persistence::parseGranularity(persistence.persistence_granularity);
      if (!g) {
        return invalid(spath + "/persistence_granularity",
                       quote(persistence.persistence_granularity) + ": " + g.error().message);
      }
    }
    p.session_persistence = std::move(persistence);
  }
  return p;
}

// Rules that span objects: unique ids, references, protocol compatibility and
// bind conflicts. Pointers are rebuilt from indices: `config` keeps document order.
Result<void> checkDocument(const Config& config) {
  std::unordered_map<std::string_view, size_t> listener_ids;
  // Octavia's rule: a port carries one TCP-family listener and one UDP
  // listener; they are different sockets, so each transport has its own table.
  BindTable binds;
  BindTable udp_binds;
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const Listener& l = config.listeners[i];
    const std::string path = indexPath("/listeners", i);
    if (auto [it, inserted] = listener_ids.emplace(l.id, i); !inserted) {
      return invalid(path + "/id", "duplicate listener id " + quote(l.id) + " (first at " +
                                       indexPath("/listeners", it->second) + ")");
    }
    for (size_t a = 0; a <= l.additional_addresses.size(); ++a) {
      const std::string& address = a == 0 ? l.address : l.additional_addresses[a - 1];
      const std::string apath =
          a == 0 ? path + "/address" : indexPath(path + "/additional_addresses", a - 1);
      auto ip = checkIp(address, apath);
      if (!ip) return ip.error();
      BindTable& table = l.protocol == ListenerProtocol::kUdp ? udp_binds : binds;
      if (const auto* owner = table.claim(*ip, l.protocol_port, {l.id, apath})) {
        return invalid(apath, endpoint(address, *ip, l.protocol_port) +
                                  " is already bound by listener " + quote(owner->listener_id) +
                                  " (" + owner->path + ")");
      }
    }
  }

  std::unordered_map<std::string_view, size_t> pool_ids;
  std::unordered_map<std::string_view, std::string> member_ids;
  std::unordered_map<std::string_view, std::string> monitor_ids;
  for (size_t i = 0; i < config.pools.size(); ++i) {
    const Pool& p = config.pools[i];
    const std::string path = indexPath("/pools", i);
    if (auto [it, inserted] = pool_ids.emplace(p.id, i); !inserted) {
      return invalid(path + "/id", "duplicate pool id " + quote(p.id) + " (first at " +
                                       indexPath("/pools", it->second) + ")");
    }
    for (size_t j = 0; j < p.members.size(); ++j) {
      const std::string mpath = indexPath(path + "/members", j);
      // Member ids key health state and stats across reloads, so they are unique
      // in the whole document, not just in their pool.
      if (auto [it, inserted] = member_ids.emplace(p.members[j].id, mpath); !inserted) {
        return invalid(mpath + "/id", "duplicate member id " + quote(p.members[j].id) +
                                          " (first at " + it->second + ")");
      }
    }
    if (p.health_monitor) {
      const std::string hpath = path + "/health_monitor";
      if (auto [it, inserted] = monitor_ids.emplace(p.health_monitor->id, hpath); !inserted) {
        return invalid(hpath + "/id", "duplicate health monitor id " + quote(p.health_monitor->id) +
                                          " (first at " + it->second + ")");
      }
    }
  }

  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const Listener& l = config.listeners[i];
    if (l.default_pool_id.empty()) continue;
    const std::string path = indexPath("/listeners", i) + "/default_pool_id";
    const Pool* pool = config.findPool(l.default_pool_id);
    if (pool == nullptr)
      return invalid(path, "pool " + quote(l.default_pool_id) + " does not exist");
    if (!compatible(l.protocol, pool->protocol)) {
      return invalid(path, std::string(listenerProtocolName(l.protocol)) + " listener cannot use " +
                               poolProtocolName(pool->protocol) + " pool " + quote(pool->id) +
                               " (allowed pool protocols: " + allowedPoolProtocols(l.protocol) +
                               ")");
    }
  }
  return {};
}

// The JSON pointer of the policy or rule an l7 error context
// ("l7policy=<id> l7rule=<id>|rules[i]") names.
std::string policyErrorPath(const std::string& policy_path, const l7::Policy& policy,
                            const std::string& context) {
  size_t at = context.find(" l7rule=");
  if (at == std::string::npos) return policy_path;
  std::string rule = context.substr(at + 8);
  for (size_t i = 0; i < policy.rules.size(); ++i) {
    if ((!policy.rules[i].id.empty() && policy.rules[i].id == rule) ||
        rule == "rules[" + std::to_string(i) + "]")
      return indexPath(policy_path + "/rules", i);
  }
  return policy_path + "/rules";
}

// Checks every listener's policies (also the disabled ones, so a document does
// not turn invalid when a policy is switched on) and compiles the enabled ones.
Result<void> compileListenerPolicies(Config& config) {
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    Listener& l = config.listeners[i];
    if (l.l7policies.empty()) continue;
    const std::string lpath = indexPath("/listeners", i) + "/l7policies";
    std::unordered_map<std::string_view, size_t> ids;
    for (size_t j = 0; j < l.l7policies.size(); ++j) {
      l7::Policy& p = l.l7policies[j];
      const std::string ppath = indexPath(lpath, j);
      if (auto [it, inserted] = ids.emplace(p.id, j); !inserted) {
        return invalid(ppath + "/id", "duplicate l7policy id " + quote(p.id) + " (first at " +
                                          indexPath(lpath, it->second) + ")");
      }
      if (p.action == l7::PolicyAction::kRedirectToPool) {
        if (p.redirect_pool_id.empty())
          return invalid(ppath + "/redirect_pool_id", "REDIRECT_TO_POOL needs redirect_pool_id");
        const Pool* pool = config.findPool(p.redirect_pool_id);
        if (pool == nullptr) {
          return invalid(ppath + "/redirect_pool_id",
                         "pool " + quote(p.redirect_pool_id) + " does not exist");
        }
        if (!compatible(l.protocol, pool->protocol)) {
          return invalid(ppath + "/redirect_pool_id",
                         std::string(listenerProtocolName(l.protocol)) + " listener cannot use " +
                             poolProtocolName(pool->protocol) + " pool " + quote(pool->id));
        }
        p.redirect_pool_admin_state_up = pool->admin_state_up;
      }
      // Compiled alone with everything switched on, so the error can be pinned
      // on this policy or rule.
      l7::Policy probe = p;
      probe.admin_state_up = true;
      probe.redirect_pool_admin_state_up = true;
      for (auto& r : probe.rules) r.admin_state_up = true;
      if (probe.rules.empty()) {
        // A rule-less policy never matches; Octavia keeps it without rendering it.
        continue;
      }
      auto checked = l7::compilePolicies({std::move(probe)});
      if (!checked) {
        return invalid(policyErrorPath(ppath, p, checked.error().context),
                       checked.error().message);
      }
    }
    auto set = l7::compilePolicies(l.l7policies);
    if (!set) return invalid(lpath, set.error().message + " (" + set.error().context + ")");
    if (!(*set)->policies().empty()) l.policy_set = std::move(set).value();
  }
  return {};
}

Result<Config> buildConfig(const rapidjson::Document& doc) {
  if (auto r = checkDuplicateKeys(doc, ""); !r) return r.error();
  Config config;
  if (const Value* g = findMember(doc, "generation"); present(g)) {
    LB_CHECK(g->IsUint64(), "schema guarantees a non-negative integer");
    config.generation = g->GetUint64();
  }
  auto settings = readSettings(findMember(doc, "settings"));
  if (!settings) return settings.error();
  config.settings = std::move(settings).value();
  if (const Value* listeners = findMember(doc, "listeners"); present(listeners)) {
    for (rapidjson::SizeType i = 0; i < listeners->Size(); ++i) {
      auto l = readListener((*listeners)[i], indexPath("/listeners", i));
      if (!l) return l.error();
      config.listeners.push_back(std::move(l).value());
    }
  }
  if (const Value* pools = findMember(doc, "pools"); present(pools)) {
    for (rapidjson::SizeType i = 0; i < pools->Size(); ++i) {
      auto p = readPool((*pools)[i], indexPath("/pools", i));
      if (!p) return p.error();
      config.pools.push_back(std::move(p).value());
    }
  }
  if (auto r = checkDocument(config); !r) return r.error();
  if (auto r = compileListenerPolicies(config); !r) return r.error();
  return config;
}

// "line L, column C" of a byte offset, for syntax errors.
std::string position(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
  size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  size_t column =
      line_start == std::string_view::npos || offset == 0 ? offset + 1 : offset - line_start;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace

const std::string& schemaText() {
  static const std::string* const text =
      new std::string(detail::kProxyConfigSchema, detail::kProxyConfigSchemaSize);
  return *text;
}

Result<Config> parseConfig(std::string_view json) {
  if (json.size() > kMaxDocumentBytes) {
    return invalid("", "the document is " + std::to_string(json.size()) +
                           " bytes, more than the limit of " + std::to_string(kMaxDocumentBytes));
  }
  // RFC 8259 section 8.1 lets a parser ignore a UTF-8 byte order mark. Strip an exact
  // one here and parse both passes from plain memory streams: RapidJSON's own BOM
  // skipping drops any of the three bytes alone, so "\xEF{}" would be accepted.
  if (json.substr(0, 3) == "\xEF\xBB\xBF") json.remove_prefix(3);
  rapidjson::Document doc;
  {
    rapidjson::MemoryStream stream(json.data(), json.size());
    doc.ParseStream<kParseFlags>(stream);
  }
  if (doc.HasParseError()) {
    return invalid("", std::string("invalid JSON at ") + position(json, doc.GetErrorOffset()) +
                           ": " + rapidjson::GetParseError_En(doc.GetParseError()));
  }

  // Validate by replaying the text through the validator as SAX events: iterative,
  // so even a deeply nested document cannot exhaust the stack, unlike
  // Document::Accept. Once valid, the document's depth is bounded by the schema.
  rapidjson::SchemaValidator validator(*compiledSchema().schema);
  rapidjson::MemoryStream stream(json.data(), json.size());
  rapidjson::Reader reader;
  reader.Parse<kParseFlags>(stream, validator);
  if (!validator.IsValid()) return detail::schemaError(validator, doc, compiledSchema().doc);
  LB_CHECK(!reader.HasParseError(), "the text parsed once already, and the validator accepted it");

  return buildConfig(doc);
}

Result<Config> loadConfigFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    int err = errno;
    return common::makeError(
        err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
        std::string("cannot open the configuration document: ") + std::strerror(err), path);
  }
  std::string text;
  char chunk[65536];
  size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) {
    text.append(chunk, n);
    if (text.size() > kMaxDocumentBytes) break;  // parseConfig names the limit
  }
  bool read_failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (read_failed) {
    return common::makeError(
        ErrorCode::kUnavailable,
        std::string("cannot read the configuration document: ") + std::strerror(err), path);
  }
  return parseConfig(text);
}

}  // namespace banyan::dp::config
