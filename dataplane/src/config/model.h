// The proxy's runtime model: one immutable document describing listeners, pools,
// members and health monitors, in Octavia's vocabulary. Built by config/parse.h
// from JSON validated against config/schema/proxy-config.schema.json; never
// mutated after it is built (the proxy swaps whole snapshots).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace banyan::dp::config {

enum class ListenerProtocol { kHttp, kTcp };
enum class PoolProtocol { kHttp, kTcp, kHttps, kProxy, kProxyV2 };
enum class LbAlgorithm { kRoundRobin, kLeastConnections, kSourceIp, kSourceIpPort };
enum class MonitorType { kTcp, kHttp };
// PROXY protocol accepted from a trusted upstream load balancer on a listener.
enum class AcceptProxy { kNone, kV1, kV2, kAny };

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

struct Pool {
  std::string id;
  PoolProtocol protocol = PoolProtocol::kHttp;
  LbAlgorithm lb_algorithm = LbAlgorithm::kRoundRobin;
  bool admin_state_up = true;
  std::vector<Member> members;
  std::optional<HealthMonitor> health_monitor;
};

struct InsertHeaders {
  bool x_forwarded_for = false;
  bool x_forwarded_port = false;
  bool x_forwarded_proto = false;
  bool forwarded = false;  // RFC 7239 `Forwarded: for=...;proto=...;by=...`
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
  std::string default_pool_id;  // empty: no pool, every request gets 503 / connection closed
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
