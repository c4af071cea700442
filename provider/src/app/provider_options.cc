#include "app/provider_options.h"

#include "drivers/netns_options.h"

namespace banyan::provider::app {
namespace {

using common::OptionDecl;
using common::OptionType;

void add(common::OptionSet& o, std::string group, std::string name, OptionType type, std::string def,
         std::string help, std::optional<double> min = {}, std::optional<double> max = {},
         std::vector<std::string> choices = {}, bool secret = false) {
  OptionDecl d;
  d.group = std::move(group);
  d.name = std::move(name);
  d.type = type;
  d.default_value = std::move(def);
  d.help = std::move(help);
  d.min = min;
  d.max = max;
  d.choices = std::move(choices);
  d.secret = secret;
  o.declare(std::move(d));
}

constexpr auto S = OptionType::kString;
constexpr auto I = OptionType::kInt;
constexpr auto B = OptionType::kBool;
constexpr auto L = OptionType::kList;

}  // namespace

void declareProviderOptions(common::OptionSet& o) {
  // [DEFAULT]
  add(o, "DEFAULT", "debug", B, "false", "Log at debug level (overrides log_level).");
  add(o, "DEFAULT", "log_level", S, "info", "Lowest level of messages that are logged.", {}, {},
      {"debug", "info", "warning", "error"});
  add(o, "DEFAULT", "state_dir", S, "/var/lib/banyan",
      "Directory for the provider's local state (the embedded SQLite database).\n"
      "The --state-dir command-line option overrides it.");
  add(o, "DEFAULT", "http_io_threads", I, "0",
      "Banyan extension: threads the HTTP library reads and writes every socket of the\n"
      "process on (the API's connections, and the calls to amphora agents, Keystone and\n"
      "Barbican); 0 is the number of CPUs, at least 2. Nothing blocks on them (requests run\n"
      "on handler_threads), and each thread beyond the cores adds thread switches: the\n"
      "library's own default of 40 made every API request cost about 15 of them.",
      0, 256);

  // [api_settings] (octavia/common/config.py api_opts)
  const char* g = "api_settings";
  add(o, g, "bind_host", S, "127.0.0.1",
      "The host IP to bind the API to: an IPv4 or IPv6 address (\"::\" = every address,\n"
      "IPv4 clients included; \"0.0.0.0\" = every IPv4 address) or a host name.");
  add(o, g, "bind_port", I, "9876", "The port to bind the API to (0 picks a free port).", 0, 65535);
  add(o, g, "handler_threads", I, "0",
      "Banyan extension: threads that run API requests, first come first served; 0 is\n"
      "twice the number of CPUs, at least 4. Requests beyond them wait in arrival order,\n"
      "so a burst of clients does not put every request on the cores at once (the HTTP\n"
      "library reads and writes on its own threads either way: http_io_threads).",
      0, 256);
  add(o, g, "write_handler_threads", I, "0",
      "Banyan extension: threads that run the API requests that may change something (every\n"
      "method but GET and HEAD), apart from handler_threads, which then run only reads: a\n"
      "show or list never waits behind writes that wait for the database's commit. 0 is as\n"
      "many as handler_threads.",
      0, 256);
  add(o, g, "auth_strategy", S, "noauth",
      "The auth strategy for the API requests. noauth trusts the X-Project-Id and X-Roles\n"
      "headers and makes every caller an admin (a single-user or trusted network setup);\n"
      "keystone validates X-Auth-Token against Keystone ([keystone_authtoken]).",
      {}, {}, {"noauth", "keystone"});
  add(o, g, "noauth_project_id", S, "",
      "Banyan extension: with auth_strategy = noauth, the project of requests that carry\n"
      "no X-Project-Id header. Empty keeps Octavia's behaviour (such creates are refused\n"
      "with \"Missing project ID in request where one is required.\").");
  add(o, g, "api_base_uri", S, "",
      "Base URI for the API for use in pagination links. Empty: built from the request's\n"
      "Host header.");
  add(o, g, "pagination_max_limit", S, "1000",
      "The maximum number of items returned in a single response. The string 'infinite'\n"
      "or a negative integer value means 'no limit'.");
  add(o, g, "page_in_store", B, "true",
      "Banyan extension: lists whose filters and sort keys are all indexed columns\n"
      "(project_id, loadbalancer_id; sort by id, project_id) are paged by the database\n"
      "(keyset pagination) instead of reading every matching object. false reads them all\n"
      "and pages in memory (the same answers, slower): for comparisons.");
  add(o, g, "healthcheck_enabled", B, "false",
      "When True, the oslo middleware healthcheck endpoint is enabled in the Octavia API.");
  add(o, g, "enabled_provider_drivers", L,
      "amphora:The Octavia Amphora driver.,octavia:Deprecated alias of the Octavia Amphora driver.",
      "A comma separated list of dictionaries of the enabled provider driver names and\n"
      "descriptions (name:description). Banyan implements amphora, octavia and banyan (its\n"
      "own controller) and noop_driver (objects go ACTIVE at once; nothing is built).");
  add(o, g, "default_provider_driver", S, "amphora",
      "Default provider driver for load balancers created without a provider or flavor.");
  add(o, g, "allow_tls_terminated_listeners", B, "true", "Allow users to create TLS Terminated listeners?");
  add(o, g, "allow_ping_health_monitors", B, "true", "Allow users to create PING type Health Monitors?");
  add(o, g, "allow_prometheus_listeners", B, "true", "Allow users to create PROMETHEUS type listeners?");
  add(o, g, "default_listener_ciphers", S, api::kOwaspSuiteBCiphers,
      "Default OpenSSL cipher string (colon-separated) for new TLS-enabled listeners.");
  add(o, g, "default_pool_ciphers", S, api::kOwaspSuiteBCiphers,
      "Default OpenSSL cipher string (colon-separated) for new TLS-enabled pools.");
  add(o, g, "tls_cipher_prohibit_list", S, "",
      "Colon separated list of OpenSSL ciphers. Usage of these ciphers will be blocked.");
  add(o, g, "default_listener_tls_versions", L, "TLSv1.2,TLSv1.3",
      "List of TLS versions to use for new TLS-enabled listeners.", {}, {},
      {"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"});
  add(o, g, "default_pool_tls_versions", L, "TLSv1.2,TLSv1.3",
      "List of TLS versions to use for new TLS-enabled pools.", {}, {},
      {"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"});
  add(o, g, "minimum_tls_version", S, "",
      "Minimum allowed TLS version for listeners and pools (empty: no minimum).", {}, {},
      {"", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"});
  add(o, g, "default_listener_alpn_protocols", L, "h2,http/1.1,http/1.0",
      "List of ALPN protocols to use for new TLS-enabled listeners.", {}, {}, {"h2", "http/1.1", "http/1.0"});
  add(o, g, "default_pool_alpn_protocols", L, "h2,http/1.1,http/1.0",
      "List of ALPN protocols to use for new TLS-enabled pools.", {}, {}, {"h2", "http/1.1", "http/1.0"});
  add(o, g, "udp_connect_min_interval_health_monitor", I, "3",
      "The minimum health monitor delay interval for UDP-CONNECT Health Monitor type. A\n"
      "negative integer value means 'no limit'.");

  add(o, "database", "connection", S, "",
      "The database URL: sqlite:////abs/path.sqlite or postgresql://user:password@host/db.\n"
      "Empty: a SQLite file banyan.sqlite in the state directory. A PostgreSQL URL may end\n"
      "in ?pool_size=N, the connections a process keeps (opened as needed); without it, one\n"
      "for every API handler thread (handler_threads plus write_handler_threads), and 8\n"
      "for the controller roles.",
      {}, {}, {}, true);

  const char* k = "keystone_authtoken";
  add(o, k, "www_authenticate_uri", S, "", "Complete public Identity API endpoint, sent to clients in WWW-Authenticate.");
  add(o, k, "auth_url", S, "", "Keystone endpoint the service user authenticates against (v3).");
  add(o, k, "auth_type", S, "password", "Authentication type of the service user.", {}, {}, {"password"});
  add(o, k, "username", S, "octavia", "The service user's name.");
  add(o, k, "password", S, "", "The service user's password.", {}, {}, {}, true);
  add(o, k, "project_name", S, "service", "The service user's project.");
  add(o, k, "user_domain_name", S, "Default", "The service user's domain.");
  add(o, k, "project_domain_name", S, "Default", "The service project's domain.");
  add(o, k, "cafile", S, "", "PEM CA bundle to verify Keystone's HTTPS certificate.");
  add(o, k, "insecure", B, "false", "Do not verify Keystone's HTTPS certificate.");
  add(o, k, "token_cache_time", I, "300", "Seconds a validated token is cached.", 0);

  add(o, "oslo_policy", "policy_file", S, "",
      "The policy file (YAML or JSON) overriding Octavia's default policy rules. Empty:\n"
      "the defaults only.");
  add(o, "oslo_policy", "enforce_new_defaults", B, "false",
      "Use the new (secure RBAC) defaults without the deprecated alternatives.");
  add(o, "oslo_policy", "enforce_scope", B, "false",
      "oslo.policy's scope check. Accepted for Octavia's configuration files; it changes\n"
      "no answer, as in Octavia (Zed): none of its API rules declares scope_types (only the\n"
      "base rules they refer to do, and oslo.policy checks the scope of the rule enforced).");

  const char* q = "quotas";
  for (const char* item : {"load_balancer", "listener", "member", "pool", "health_monitor", "l7policy", "l7rule"})
    add(o, q, std::string("default_") + item + "_quota", I, "-1",
        std::string("Default per project ") + item + " quota (-1: unlimited).", -1, 2000000000);

  const char* cw = "controller_worker";
  add(o, cw, "workers", I, "1", "Number of controller worker threads.", 1);
  add(o, cw, "loadbalancer_topology", S, "SINGLE", "Load balancer topology configuration.", {}, {},
      {"SINGLE", "ACTIVE_STANDBY"});
  add(o, cw, "compute_driver", S, "netns",
      "What runs amphorae: netns (a network namespace on this host per amphora) or noop\n"
      "(nothing is started).",
      {}, {}, {"netns", "noop"});
  add(o, cw, "network_driver", S, "netns",
      "What plugs amphorae into networks: netns (local bridges) or noop.", {}, {}, {"netns", "noop"});
  add(o, cw, "amp_active_retries", I, "30", "Retry attempts to wait for an amphora's agent to answer.", 1);
  add(o, cw, "amp_active_wait_sec", I, "10", "Seconds to wait between those attempts.", 1);
  add(o, cw, "job_poll_interval", I, "50",
      "Milliseconds between an idle worker's looks for jobs when nothing announces them:\n"
      "SQLite with the API in another process (an API in the same process wakes its\n"
      "worker at once), or PostgreSQL while the job notification connection is down.",
      10, 600000);
  add(o, cw, "job_notifications", B, "true",
      "On PostgreSQL, workers LISTEN for the NOTIFY sent with every queued job (one\n"
      "extra connection per worker process) and take it at once. Turn off behind a\n"
      "connection pooler that cannot LISTEN (PgBouncer in transaction mode): workers\n"
      "then poll every job_poll_interval.");
  add(o, cw, "job_notify_poll_interval", I, "2000",
      "Milliseconds between an idle worker's looks for jobs while notifications work: a\n"
      "safety net for an announcement lost in a connection drop.",
      100, 600000);
  add(o, cw, "session_cookie_secret", S, "",
      "Key of the cookies that HTTP_COOKIE session persistence issues, shared by every\n"
      "amphora. Empty: generated once and kept in the state directory.",
      {}, {}, {}, true);

  const char* hm = "health_manager";
  add(o, hm, "bind_ip", S, "",
      "IP address the health manager listens on for heartbeats. Empty: the host's address\n"
      "on the netns management network with the netns compute driver, else 127.0.0.1.");
  add(o, hm, "controller_ip_port_list", L, "",
      "Where amphorae send heartbeats (IP:port, ...). Empty: bind_ip:bind_port.");
  add(o, hm, "bind_port", I, "5555", "Port the health manager listens on for heartbeats.", 0, 65535);
  add(o, hm, "heartbeat_interval", I, "10", "Seconds between amphora heartbeats.", 1);
  add(o, hm, "heartbeat_timeout", I, "60", "Seconds without a heartbeat before an amphora is failed over.", 1);
  add(o, hm, "heartbeat_key", S, "",
      "Key used to sign amphora heartbeats (HMAC). Empty: generated once and kept in the\n"
      "state directory.",
      {}, {}, {}, true);
  add(o, hm, "health_check_interval", I, "3", "Seconds between checks for stale amphorae.", 1);

  const char* hk = "house_keeping";
  add(o, hk, "spare_amphora_pool_size", I, "0",
      "Number of booted amphorae kept ready for new load balancers (no boot time on create).", 0, 1000);
  add(o, hk, "spare_check_interval", I, "30", "Seconds between spare pool checks.", 1);
  add(o, hk, "cert_interval", I, "3600", "Seconds between checks for amphora certificates to rotate.", 1);
  add(o, hk, "cert_expiry_buffer", I, "1209600",
      "Seconds before expiry at which an amphora's certificate is rotated.", 0);

  const char* ce = "certificates";
  add(o, ce, "ca_certificate", S, "",
      "CA certificate (PEM) that signs amphora server certificates and the controller's\n"
      "client certificate. Empty: a deployment CA generated at first start under\n"
      "<state_dir>/pki.");
  add(o, ce, "ca_private_key", S, "", "The CA's private key (PEM, unencrypted). Set both or neither.");
  add(o, ce, "cert_validity_time", I, "2592000", "Seconds an amphora server certificate is valid.", 86400);
  add(o, ce, "cert_manager", S, "barbican_cert_manager",
      "Where listener and pool certificate references are read (docs/certificates.md):\n"
      "barbican_cert_manager (Barbican secrets and containers) or local_cert_manager\n"
      "(files <ref>.crt, .key, .int, .pass in storage_path; one controller host only).",
      {}, {}, {"barbican_cert_manager", "local_cert_manager"});
  add(o, ce, "barbican_auth", S, "barbican_acl_auth",
      "How Barbican is accessed: with auth_strategy = keystone, Banyan's service user,\n"
      "added to each referenced secret's read ACL with the user's token; with noauth, an\n"
      "unauthenticated Barbican in the owning project.",
      {}, {}, {"barbican_acl_auth"});
  add(o, ce, "endpoint", S, "", "Barbican's URL. Empty: the key-manager endpoint of Keystone's catalog.");
  add(o, ce, "region_name", S, "", "Region of the key-manager catalog entry. Empty: any.");
  add(o, ce, "endpoint_type", S, "publicURL", "Interface of the key-manager catalog entry.", {}, {},
      {"publicURL", "internalURL", "adminURL", "public", "internal", "admin"});
  add(o, ce, "storage_path", S, "",
      "Directory of local_cert_manager. Empty: <state_dir>/certificates.");
  add(o, ce, "cache_ttl", I, "0",
      "Seconds the controller keeps certificates it read for a project, so pushes that\n"
      "change no certificate reference do not read them again. A secret replaced in\n"
      "place is noticed once its entry expires. 0: read on every push (as Octavia).",
      0);

  const char* ha = "haproxy_amphora";
  add(o, ha, "bind_port", I, "9443", "Port of the amphora agents' REST API.", 1, 65535);
  add(o, ha, "rest_request_read_timeout", I, "60", "Seconds to wait for an amphora agent's answer.", 1);
  add(o, ha, "lb_network_interface", S, "o-hm0",
      "Network interface through which to reach amphora, only required if using IPv6\n"
      "link local addresses: an amphora whose lb_network_ip is in fe80::/10 is reached at\n"
      "https://[<lb_network_ip>%<this interface>]:<bind_port>, unless its address names an\n"
      "interface of its own (fe80::5%eth2).");
  add(o, ha, "timeout_client_data", I, "50000", "Frontend client inactivity timeout (ms), the listener default.", 0,
      2073600000);
  add(o, ha, "timeout_member_connect", I, "5000", "Backend member connection timeout (ms), the listener default.",
      0, 2073600000);
  add(o, ha, "timeout_member_data", I, "50000", "Backend member inactivity timeout (ms), the listener default.", 0,
      2073600000);
  add(o, ha, "timeout_tcp_inspect", I, "0",
      "Time to wait for TCP packets for content inspection (ms), the listener default.", 0, 2073600000);

  // [netns]: the embedded network and compute drivers (declared by the drivers module).
  provider::drivers::declareNetnsOptions(o);

  add(o, "networking", "reserved_ips", L, "169.254.169.254", "List of IP addresses reserved from being used for member addresses.");
}

common::Result<api::ApiOptions> apiOptionsFrom(const common::OptionSet& o) {
  api::ApiOptions a;
  const char* g = "api_settings";
  a.noauth = o.getString(g, "auth_strategy") == "noauth";
  a.noauth_project_id = o.getString(g, "noauth_project_id");
  a.api_base_uri = o.getString(g, "api_base_uri");
  std::string limit = o.getString(g, "pagination_max_limit");
  if (limit == "infinite") {
    a.pagination_max_limit = -1;
  } else {
    try {
      size_t used = 0;
      a.pagination_max_limit = std::stoll(limit, &used);
      if (used != limit.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      return common::makeError(common::ErrorCode::kInvalidArgument,
                               "must be an integer or 'infinite': " + limit, "[api_settings] pagination_max_limit");
    }
  }
  a.page_in_store = o.getBool(g, "page_in_store");
  a.healthcheck_enabled = o.getBool(g, "healthcheck_enabled");
  a.enabled_provider_drivers.clear();
  for (const auto& item : o.getList(g, "enabled_provider_drivers")) {
    size_t colon = item.find(':');
    std::string name = item.substr(0, colon);
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    std::string description = colon == std::string::npos ? "" : item.substr(colon + 1);
    if (name != "amphora" && name != "octavia" && name != "banyan" && name != "noop_driver")
      return common::makeError(common::ErrorCode::kInvalidArgument,
                               "unknown provider driver '" + name + "' (known: amphora, octavia, banyan, noop_driver)",
                               "[api_settings] enabled_provider_drivers");
    a.enabled_provider_drivers.emplace_back(name, description);
  }
  a.default_provider_driver = o.getString(g, "default_provider_driver");
  bool default_enabled = false;
  for (const auto& p : a.enabled_provider_drivers) default_enabled = default_enabled || p.first == a.default_provider_driver;
  if (!default_enabled)
    return common::makeError(common::ErrorCode::kInvalidArgument,
                             "'" + a.default_provider_driver + "' is not in enabled_provider_drivers",
                             "[api_settings] default_provider_driver");
  a.allow_tls_terminated_listeners = o.getBool(g, "allow_tls_terminated_listeners");
  a.allow_ping_health_monitors = o.getBool(g, "allow_ping_health_monitors");
  a.allow_prometheus_listeners = o.getBool(g, "allow_prometheus_listeners");
  a.default_listener_ciphers = o.getString(g, "default_listener_ciphers");
  a.default_pool_ciphers = o.getString(g, "default_pool_ciphers");
  std::string prohibit = o.getString(g, "tls_cipher_prohibit_list");
  size_t start = 0;
  while (start < prohibit.size()) {
    size_t end = prohibit.find(':', start);
    if (end == std::string::npos) end = prohibit.size();
    if (end > start) a.tls_cipher_prohibit_list.push_back(prohibit.substr(start, end - start));
    start = end + 1;
  }
  a.default_listener_tls_versions = o.getList(g, "default_listener_tls_versions");
  a.default_pool_tls_versions = o.getList(g, "default_pool_tls_versions");
  a.default_listener_alpn_protocols = o.getList(g, "default_listener_alpn_protocols");
  a.default_pool_alpn_protocols = o.getList(g, "default_pool_alpn_protocols");
  a.minimum_tls_version = o.getString(g, "minimum_tls_version");
  a.udp_connect_min_interval_health_monitor = o.getInt(g, "udp_connect_min_interval_health_monitor");
  a.reserved_ips = o.getList("networking", "reserved_ips");
  a.timeout_client_data = o.getInt("haproxy_amphora", "timeout_client_data");
  a.timeout_member_connect = o.getInt("haproxy_amphora", "timeout_member_connect");
  a.timeout_member_data = o.getInt("haproxy_amphora", "timeout_member_data");
  a.timeout_tcp_inspect = o.getInt("haproxy_amphora", "timeout_tcp_inspect");
  auto netns = provider::drivers::netnsOptionsFrom(o);
  if (!netns.ok()) return netns.error();
  auto config = provider::drivers::validateNetnsOptions(netns.value());
  if (!config.ok()) return config.error();
  int n = 0;
  for (const auto* list : {&config->vip_networks, &config->member_networks}) {
    const char* kind = list == &config->vip_networks ? "vip-network-" : "member-network-";
    for (const auto& net : *list) {
      api::NetworkView v;
      v.id = net.id;
      v.name = kind + std::to_string(n++);
      v.cidr = net.cidr.toString();
      v.ip_version = net.cidr.network.isV6() ? 6 : 4;
      v.gateway_ip = net.cidr.gateway().toString();
      a.networks.push_back(std::move(v));
    }
    n = 0;
  }
  a.quotas.load_balancer = o.getInt("quotas", "default_load_balancer_quota");
  a.quotas.listener = o.getInt("quotas", "default_listener_quota");
  a.quotas.member = o.getInt("quotas", "default_member_quota");
  a.quotas.pool = o.getInt("quotas", "default_pool_quota");
  a.quotas.health_monitor = o.getInt("quotas", "default_health_monitor_quota");
  a.quotas.l7policy = o.getInt("quotas", "default_l7policy_quota");
  a.quotas.l7rule = o.getInt("quotas", "default_l7rule_quota");
  return a;
}

std::string databaseUrl(const common::OptionSet& o) {
  std::string url = o.getString("database", "connection");
  if (!url.empty()) return url;
  std::string dir = o.getString("DEFAULT", "state_dir");
  // sqlite:/// + absolute path gives four slashes, as Octavia's URLs do.
  return "sqlite:///" + dir + "/banyan.sqlite";
}

}  // namespace banyan::provider::app
