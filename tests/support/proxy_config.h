// Builds banyan-proxy config documents (see the proxy spec) from plain structs,
// with test-friendly defaults: short timeouts, two workers, no health monitor.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace banyan::test {

struct MemberSpec {
  std::string id;
  std::string address;
  uint16_t protocol_port = 0;
  int weight = 1;
  bool backup = false;
  bool admin_state_up = true;
  std::string monitor_address;  // empty: not written
  uint16_t monitor_port = 0;    // 0: not written
};

struct MonitorSpec {
  std::string id = "hm";
  std::string type = "TCP";
  double delay = 0.2;    // seconds
  double timeout = 0.2;  // seconds
  int max_retries = 1;
  int max_retries_down = 2;
  std::string http_method = "GET";
  std::string url_path = "/";
  std::string expected_codes = "200";
  std::string http_version = "1.0";
};

struct PoolSpec {
  std::string id;
  std::string protocol = "HTTP";
  std::string lb_algorithm = "ROUND_ROBIN";
  bool admin_state_up = true;
  std::vector<MemberSpec> members;
  std::optional<MonitorSpec> health_monitor;
  // More properties, written as given: property -> raw JSON value
  // ({"tls_enabled", "true"}, {"ca_certificate", "\"/path\""}).
  std::map<std::string, std::string> extra;
};

struct ListenerSpec {
  std::string id;
  std::string protocol = "HTTP";
  std::string address = "127.0.0.1";
  std::vector<std::string> additional_addresses;
  uint16_t protocol_port = 0;
  bool admin_state_up = true;
  int64_t connection_limit = -1;
  int timeout_client_data = 10000;  // ms
  int timeout_member_connect = 1000;
  int timeout_member_data = 10000;
  int timeout_tcp_inspect = 0;
  std::map<std::string, std::string> insert_headers;  // {"X-Forwarded-For": "true"}
  std::string accept_proxy_protocol = "none";
  std::vector<std::string> proxy_protocol_trusted_cidrs;  // omitted when empty
  std::vector<std::string> allowed_cidrs;                 // omitted when empty
  std::string default_pool_id;
  // More properties, written as given: property -> raw JSON value
  // ({"default_tls_certificate", "\"/path\""}, {"tls_versions", "[\"TLSv1.3\"]"}).
  std::map<std::string, std::string> extra;
};

struct ConfigSpec {
  uint64_t generation = 1;
  int workers = 2;
  int default_connection_limit = 50000;
  int drain_timeout_ms = 2000;  // bounds teardown when a connection lingers
  int member_connect_retries = 3;
  std::string access_log;
  std::vector<ListenerSpec> listeners;
  std::vector<PoolSpec> pools;
  std::map<std::string, std::string> settings_extra;  // raw JSON values

  std::string toJson() const;
  ListenerSpec& listener(const std::string& id);
  PoolSpec& pool(const std::string& id);
};

// A one-listener, one-pool config: listener "l1" on address:port -> pool "p1".
ConfigSpec simpleConfig(uint16_t port, std::vector<MemberSpec> members,
                        const std::string& listener_protocol = "HTTP",
                        const std::string& pool_protocol = "HTTP",
                        const std::string& address = "127.0.0.1");

// A JSON string literal for `extra` maps.
std::string jsonString(const std::string& s);

}  // namespace banyan::test
