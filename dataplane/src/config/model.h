// The proxy's runtime model: one immutable document describing listeners, pools,
// members and health monitors, in Octavia's vocabulary. Built by config/parse.h
// from JSON validated against config/schema/proxy-config.schema.json; never
// mutated after it is built (the proxy swaps whole snapshots).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "l7/policy.h"

namespace banyan::dp::config {

// kHttps is TLS passthrough (bytes to members, like kTcp); kTerminatedHttps
// terminates TLS and then proxies HTTP like kHttp. kUdp relays datagrams per
// client flow (Octavia's keepalived-LVS UDP listeners, in userspace).
// kPrometheus answers HTTP with the proxy's own metrics (no pools, no L7
// policies); TLS when it has a default certificate, like kTerminatedHttps.
enum class ListenerProtocol { kHttp, kTcp, kHttps, kTerminatedHttps, kUdp, kPrometheus };
enum class PoolProtocol { kHttp, kTcp, kHttps, kProxy, kProxyV2, kUdp };
enum class LbAlgorithm { kRoundRobin, kLeastConnections, kSourceIp, kSourceIpPort };
// kHttps: an HTTP check over TLS without verification (haproxy `check-ssl verify none`).
// kTlsHello: a TLS handshake must get a ServerHello back. kPing: ICMP echo.
// kUdpConnect: a datagram to the member; an ICMP port unreachable means down.
enum class MonitorType { kTcp, kHttp, kHttps, kTlsHello, kPing, kUdpConnect };
// PROXY protocol accepted from a trusted upstream load balancer on a listener.
enum class AcceptProxy { kNone, kV1, kV2, kAny };

// Octavia's client_authentication (haproxy `verify none|optional|required`).
enum class ClientAuth { kNone, kOptional, kMandatory };

// TLS protocol versions as a bit set, in Octavia's names.
enum TlsVersionBit : uint32_t {
  kSslV3 = 1u << 0,   // "SSLv3"
  kTlsV1 = 1u << 1,   // "TLSv1"
  kTlsV11 = 1u << 2,  // "TLSv1.1"
  kTlsV12 = 1u << 3,  // "TLSv1.2"
  kTlsV13 = 1u << 4,  // "TLSv1.3"
};
// Octavia's default for listeners and pools: TLSv1.2 and TLSv1.3.
constexpr uint32_t kDefaultTlsVersions = kTlsV12 | kTlsV13;
// Octavia's [api_settings] default_listener_ciphers / default_pool_ciphers
// (OWASP "Suite B"): TLS 1.3 suites and the TLS 1.2 ciphers in one string.
inline constexpr const char* kDefaultTlsCiphers =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA256:DHE-RSA-AES128-SHA256:"
    "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256";

struct HealthMonitor {
  std::string id;
  MonitorType type = MonitorType::kTcp;
  uint32_t delay_ms = 5000;       // Octavia `delay` is in seconds; the document carries ms
  uint32_t timeout_ms = 5000;
  uint32_t max_retries = 3;       // consecutive successes to go ONLINE (rise)
  uint32_t max_retries_down = 3;  // consecutive failures to go ERROR (fall)
  std::string http_method = "GET";
  std::string url_path = "/";
  std::vector<uint16_t> expected_codes = {200};  // "200", "200,202", "200-204" expanded
  std::string domain_name;                      // sent as Host; needs http_version 1.1
  std::string http_version = "1.0";             // "1.0" or "1.1"
  bool admin_state_up = true;
};

struct Member {
  std::string id;  // unique within the document; keys health and stats across applies
  std::string address;
  uint16_t protocol_port = 0;
  uint32_t weight = 1;  // 0..256; 0 = drain: no new traffic
  bool backup = false;
  bool admin_state_up = true;
  std::string monitor_address;  // empty: use address
  uint16_t monitor_port = 0;    // 0: use protocol_port
};

// Octavia's session_persistence of a pool.
enum class PersistenceType { kSourceIp, kHttpCookie, kAppCookie };
struct SessionPersistence {
  PersistenceType type = PersistenceType::kSourceIp;
  std::string cookie_name;              // APP_COOKIE only
  uint32_t persistence_timeout_s = 0;   // 0: entries leave by LRU only (Octavia's TCP/HTTP)
  std::string persistence_granularity;  // SOURCE_IP: netmask; "" = whole address
};

struct Pool {
  std::string id;
  PoolProtocol protocol = PoolProtocol::kHttp;
  LbAlgorithm lb_algorithm = LbAlgorithm::kRoundRobin;
  bool admin_state_up = true;
  std::vector<Member> members;
  std::optional<HealthMonitor> health_monitor;
  // Re-encryption to members (Octavia's pool TLS fields); all ignored unless
  // tls_enabled. Paths are PEM files the agent wrote.
  bool tls_enabled = false;
  std::string ca_certificate;   // verify members against it; empty: no verification
  std::string crl;              // with ca_certificate
  std::string tls_certificate;  // bundle (cert, chain, key) presented to members
  uint32_t tls_versions = kDefaultTlsVersions;
  std::string tls_ciphers = kDefaultTlsCiphers;
  std::vector<std::string> alpn_protocols = {"http/1.1", "http/1.0"};
  std::optional<SessionPersistence> session_persistence;
};

struct InsertHeaders {
  bool x_forwarded_for = false;
  bool x_forwarded_port = false;
  bool x_forwarded_proto = false;
  bool forwarded = false;  // RFC 7239 `Forwarded: for=...;proto=...;by=...`
  // TERMINATED_HTTPS only: the client certificate, in haproxy's formats.
  bool ssl_client_verify = false;    // X-SSL-Client-Verify
  bool ssl_client_has_cert = false;  // X-SSL-Client-Has-Cert
  bool ssl_client_dn = false;        // X-SSL-Client-DN
  bool ssl_client_cn = false;        // X-SSL-Client-CN
  bool ssl_issuer = false;           // X-SSL-Issuer
  bool ssl_client_sha1 = false;      // X-SSL-Client-SHA1
  bool ssl_client_not_before = false;
  bool ssl_client_not_after = false;
  bool anySsl() const {
    return ssl_client_verify || ssl_client_has_cert || ssl_client_dn || ssl_client_cn ||
           ssl_issuer || ssl_client_sha1 || ssl_client_not_before || ssl_client_not_after;
  }
};

// TERMINATED_HTTPS settings. Certificates are PEM bundles (certificate, then
// its chain, and the private key) referenced by path; the agent writes them 0600.
struct ListenerTls {
  std::string default_certificate;            // served without SNI or when none matches
  std::vector<std::string> sni_certificates;  // picked by SNI against their SAN/CN names
  std::string client_ca_certificate;
  std::string client_crl;
  ClientAuth client_authentication = ClientAuth::kNone;
  uint32_t versions = kDefaultTlsVersions;
  std::string ciphers = kDefaultTlsCiphers;
  // Octavia's listener default; "h2" makes the connection HTTP/2.
  std::vector<std::string> alpn_protocols = {"h2", "http/1.1", "http/1.0"};
  std::optional<uint32_t> hsts_max_age;  // seconds; set: Strict-Transport-Security on responses
  bool hsts_include_subdomains = false;
  bool hsts_preload = false;
  bool session_resumption = true;  // tickets; false: every handshake is a full one
};

struct Listener {
  std::string id;
  ListenerProtocol protocol = ListenerProtocol::kHttp;
  std::string address;                            // bind address (IPv4 or IPv6 literal)
  std::vector<std::string> additional_addresses;  // same port, same options
  uint16_t protocol_port = 0;
  bool admin_state_up = true;
  int64_t connection_limit = -1;  // -1: settings.default_connection_limit
  uint32_t timeout_client_data_ms = 50000;
  uint32_t timeout_member_connect_ms = 5000;
  uint32_t timeout_member_data_ms = 50000;
  uint32_t timeout_tcp_inspect_ms = 0;
  InsertHeaders insert_headers;
  AcceptProxy accept_proxy = AcceptProxy::kNone;
  // Sources allowed to send a PROXY header ("192.0.2.0/24", "2001:db8::/32");
  // empty: every source. Clients from elsewhere are served as direct clients,
  // so they cannot claim another address.
  std::vector<std::string> proxy_protocol_trusted_cidrs;
  // Octavia's allowed_cidrs: the only sources whose connections are served;
  // empty: every source. The amphora agent turns the same list into nftables
  // rules that drop other packets before they reach the proxy; the proxy closes
  // what still arrives (a proxy run without the agent, or a rule race during an
  // apply).
  std::vector<std::string> allowed_cidrs;
  std::string default_pool_id;  // empty: no pool, every request gets 503 / connection closed
  ListenerTls tls;              // TERMINATED_HTTPS, and PROMETHEUS with a certificate
  // L7 policies in Octavia's terms, as the document gives them (REDIRECT_TO_POOL
  // carries whether its pool is up), and compiled once when the document is parsed.
  std::vector<l7::Policy> l7policies;
  std::shared_ptr<const l7::PolicySet> policy_set;  // null: no policy can match

  // The listener terminates TLS with `tls` (Octavia renders a PROMETHEUS
  // listener with certificate refs like a TERMINATED_HTTPS one).
  bool terminatesTls() const {
    return protocol == ListenerProtocol::kTerminatedHttps ||
           (protocol == ListenerProtocol::kPrometheus && !tls.default_certificate.empty());
  }
};

struct Settings {
  uint32_t workers = 0;                     // 0: one per online CPU
  uint32_t default_connection_limit = 50000;
  uint32_t max_request_line = 8192;         // bytes, request line incl. CRLF
  uint32_t max_header_bytes = 65536;        // bytes, whole head incl. request line
  uint32_t max_headers = 100;
  uint32_t drain_timeout_ms = 30000;        // SIGTERM: how long in-flight work may finish
  uint32_t member_connect_retries = 3;      // Octavia `retries 3` + `option redispatch`
  std::string access_log;                   // "" (off), "stderr", "stdout" or a file path
  // TLS session ticket keys: a new key every period; the two previous keys
  // still decrypt, so a ticket lives up to three periods.
  uint32_t tls_ticket_key_rotation_s = 3600;
  // Keys the HTTP_COOKIE member token; both amphorae of a pair need the same
  // one. Empty: a random secret made once per process.
  std::string session_cookie_secret;
};

struct Config {
  uint64_t generation = 0;  // document's own version number, echoed in stats
  Settings settings;
  std::vector<Listener> listeners;
  std::vector<Pool> pools;

  const Pool* findPool(const std::string& id) const {
    for (const auto& p : pools)
      if (p.id == id) return &p;
    return nullptr;
  }
};

}  // namespace banyan::dp::config
