// banyan-provider's Octavia v2 REST API (Zed, API version 2.26): the request handler
// behind common::HttpServer. It authenticates and authorises each request, validates
// bodies exactly as Octavia does, writes objects and durable jobs through the Store and
// answers with Octavia-shaped JSON. Thread-safe: the HTTP server calls handle() from
// several threads; all state lives in the store.
//
// Providers: "noop_driver" marks every change ACTIVE right after it is written (Octavia's
// no-op flow); "amphora", "octavia" and "banyan" write the objects and enqueue a job for
// the controller (docs/provider-api.md, "Jobs"), which owns the status from then on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "auth/auth.h"
#include "banyan/common/http_server.h"
#include "certs/cert_manager.h"
#include "store/store.h"

namespace banyan::provider::api {

// [quotas] default_*_quota; -1 is unlimited.
struct QuotaDefaults {
  int64_t load_balancer = -1;
  int64_t listener = -1;
  int64_t member = -1;
  int64_t pool = -1;
  int64_t health_monitor = -1;
  int64_t l7policy = -1;
  int64_t l7rule = -1;
};

// A network the deployment offers (the netns driver's VIP and member networks). Each has
// one subnet with the same id, as the netns driver models them.
struct NetworkView {
  std::string id;
  std::string name;
  std::string cidr;
  int ip_version = 4;
  std::string gateway_ip;
};

// Everything the API reads from the configuration, already validated (see app/).
struct ApiOptions {
  bool noauth = true;                // [api_settings] auth_strategy = noauth
  // Banyan extension: with noauth, the project of callers that send no X-Project-Id.
  // "" keeps Octavia's behaviour (creates fail with "Missing project ID").
  std::string noauth_project_id;
  std::string api_base_uri;          // "" : links are built from the Host header
  int64_t pagination_max_limit = 1000;  // <= 0 : infinite
  // [api_settings] page_in_store (Banyan extension): lists whose filters and sort keys
  // are all indexed columns are paged by the store (keyset pagination in SQL). false
  // makes every list take the general in-memory path (the same answers; tests and the
  // benchmark compare the two).
  bool page_in_store = true;
  std::vector<std::pair<std::string, std::string>> enabled_provider_drivers = {
      {"amphora", "The Octavia Amphora driver."},
      {"octavia", "Deprecated alias of the Octavia Amphora driver."},
  };
  std::string default_provider_driver = "amphora";
  bool healthcheck_enabled = false;
  bool allow_tls_terminated_listeners = true;
  bool allow_ping_health_monitors = true;
  bool allow_prometheus_listeners = true;
  std::string default_listener_ciphers;
  std::string default_pool_ciphers;
  std::vector<std::string> default_listener_tls_versions = {"TLSv1.2", "TLSv1.3"};
  std::vector<std::string> default_pool_tls_versions = {"TLSv1.2", "TLSv1.3"};
  std::vector<std::string> default_listener_alpn_protocols = {"h2", "http/1.1", "http/1.0"};
  std::vector<std::string> default_pool_alpn_protocols = {"h2", "http/1.1", "http/1.0"};
  std::vector<std::string> tls_cipher_prohibit_list;
  std::string minimum_tls_version;   // "" : no minimum
  int64_t udp_connect_min_interval_health_monitor = 3;
  std::vector<std::string> reserved_ips = {"169.254.169.254"};
  // [haproxy_amphora] timeouts used as listener defaults (ms).
  int64_t timeout_client_data = 50000;
  int64_t timeout_member_connect = 5000;
  int64_t timeout_member_data = 50000;
  int64_t timeout_tcp_inspect = 0;
  QuotaDefaults quotas;
  // Non-empty: VIP and member subnets/networks must be one of these (Octavia asks
  // Neutron; "Subnet <id> not found." otherwise), and GET /v2.0/networks and
  // /v2.0/subnets answer a read-only Neutron-shaped view of them so that the
  // openstack CLI can resolve --vip-subnet-id without a Neutron (Banyan extension).
  std::vector<NetworkView> networks;
  // Where listener and pool certificate references are read ([certificates]). Set:
  // every reference a create or update names is checked as Octavia does (400 "Could not
  // retrieve certificate: [...]" and the CA/CRL validation failures). Null: references
  // are stored unchecked (tests of other parts; the binary always sets one).
  std::shared_ptr<certs::CertManager> cert_manager;
};

// Octavia's default cipher string (CIPHERS_OWASP_SUITE_B).
extern const char* const kOwaspSuiteBCiphers;

class Api;

class ApiService {
 public:
  // The store, authenticator and policy must outlive the service.
  ApiService(store::Store& store, auth::Authenticator& authenticator, const auth::Policy& policy,
             ApiOptions options);
  ~ApiService();
  ApiService(const ApiService&) = delete;
  ApiService& operator=(const ApiService&) = delete;

  // Never throws: every failure becomes an Octavia fault body.
  common::HttpResponse handle(const common::HttpRequest& request);

 private:
  std::unique_ptr<Api> impl_;
};

}  // namespace banyan::provider::api
