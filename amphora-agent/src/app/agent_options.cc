#include "app/agent_options.h"

#include <arpa/inet.h>

#include <cctype>

namespace banyan::agent::app {

using common::ErrorCode;
using common::makeError;
using common::OptionDecl;
using common::OptionType;
using common::Result;

namespace {

// "192.0.2.0/24", "2001:db8::/64" or a bare address. The firewall checks again (host
// bits and all); this is so a typo fails at start, naming the option.
bool isPrefixOrAddress(const std::string& text) {
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  unsigned char buf[16];
  int max_len;
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    max_len = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    max_len = 128;
  } else {
    return false;
  }
  if (slash == std::string::npos) return true;
  std::string len = text.substr(slash + 1);
  if (len.empty() || len.size() > 3) return false;
  for (char c : len) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return std::stoi(len) <= max_len;
}

}  // namespace

void declareAgentOptions(common::OptionSet& o) {
  o.declare(OptionDecl{"DEFAULT", "log_level", OptionType::kString, "info",
                       "Lowest level written to stderr.", {}, {}, {"debug", "info", "warning", "error"}});

  const std::string g = "amphora_agent";
  // Octavia's default, "::", serves IPv4 controllers too (a dual-stack socket; see
  // common/src/http_server.cc), so the agent answers on an IPv4 or an IPv6 management
  // network alike.
  o.declare(OptionDecl{g, "bind_host", OptionType::kString, "::",
                       "Address the agent's REST API listens on: an IPv4 or IPv6 address (\"::\" = every\n"
                       "address, IPv4 included; \"0.0.0.0\" = every IPv4 address) or a host name."});
  o.declare(OptionDecl{g, "bind_port", OptionType::kInt, "9443", "TCP port of the agent's REST API; 0 picks a free one (written to state_dir/api.port).", 0,
                       65535});
  o.declare(OptionDecl{g, "agent_server_cert", OptionType::kString, "/etc/banyan/certs/server.pem",
                       "PEM certificate (chain may follow) the agent presents; its CN is the amphora id.\n"
                       "Rewritten by PUT /1.0/certificate (rotation without restart)."});
  o.declare(OptionDecl{g, "agent_server_key", OptionType::kString, "/etc/banyan/certs/server.key",
                       "PEM private key of agent_server_cert. May name the same file when it holds both."});
  o.declare(OptionDecl{g, "agent_server_ca", OptionType::kString, "/etc/banyan/certs/client_ca.pem",
                       "CA bundle that signs the controllers' client certificates. Mutual TLS is always\n"
                       "required: a client without a certificate signed by it fails the handshake."});
  o.declare(OptionDecl{g, "agent_request_read_timeout", OptionType::kInt, "180",
                       "Accepted for Octavia's agent.conf; not enforced: cpprestsdk's listener has no read\n"
                       "timeout. management_cidrs limits who can hold a connection open.",
                       1, 3600});
  o.declare(OptionDecl{g, "max_body_bytes", OptionType::kInt, "16777216",
                       "Largest request body accepted; larger ones get 413.", 1024, 67108864});
  o.declare(OptionDecl{g, "state_dir", OptionType::kString, "/var/lib/banyan",
                       "Where the agent keeps what the controller pushed: the proxy config (proxy.json),\n"
                       "certificates (certs/), heartbeat settings (agent-config.json) and VRRP settings."});
  o.declare(OptionDecl{g, "proxy_binary", OptionType::kString, "/usr/bin/banyan-proxy",
                       "The banyan-proxy executable the agent starts and supervises."});
  o.declare(OptionDecl{g, "proxy_control_socket", OptionType::kString, "/run/banyan/proxy.sock",
                       "Unix socket of banyan-proxy's control API. A proxy already answering there is\n"
                       "attached to instead of started."});
  o.declare(OptionDecl{g, "amphora_id", OptionType::kString, "",
                       "This amphora's id, sent in every heartbeat. Required."});
  o.declare(OptionDecl{g, "system_driver", OptionType::kString, "kernel",
                       "How plug and VRRP requests are carried out: \"kernel\" configures interfaces with\n"
                       "rtnetlink and runs keepalived; \"noop\" accepts and records them without touching\n"
                       "the host (dry runs, tests).",
                       {}, {}, {"kernel", "noop"}});
  o.declare(OptionDecl{g, "keepalived_binary", OptionType::kString, "/usr/sbin/keepalived",
                       "The keepalived executable for ACTIVE_STANDBY (VRRP)."});
  o.declare(OptionDecl{g, "management_cidrs", OptionType::kList, "",
                       "Networks the controller reaches this amphora from (CIDRs or addresses, comma\n"
                       "separated). The agent's firewall (nftables table inet banyan, kernel driver) accepts\n"
                       "the API port only from these, and VRRP only from these and the VRRP peers. Empty:\n"
                       "the API port and VRRP are open to every source (mutual TLS still guards the API),\n"
                       "so an amphora whose agent.conf predates the option is never locked out."});

  const std::string h = "health_manager";
  o.declare(OptionDecl{h, "controller_ip_port_list", OptionType::kList, "",
                       "Health managers that receive heartbeats, as IP:port (IPv6 in brackets), comma\n"
                       "separated. Every heartbeat goes to each of them. Replaceable at run time with\n"
                       "PUT /1.0/agent-config."});
  o.declare(OptionDecl{h, "heartbeat_interval", OptionType::kFloat, "10", "Seconds between heartbeats.", 0.01,
                       3600});
  OptionDecl key{h, "heartbeat_key", OptionType::kString, "",
                 "Key of the heartbeats' HMAC-SHA256; the health manager must use the same one. No\n"
                 "heartbeat is sent while it is empty."};
  key.secret = true;
  o.declare(std::move(key));
}

Result<AgentSettings> readAgentSettings(const common::OptionSet& o) {
  AgentSettings s;
  const std::string g = "amphora_agent";
  s.log_level = o.getString("DEFAULT", "log_level");
  s.bind_host = o.getString(g, "bind_host");
  s.bind_port = static_cast<uint16_t>(o.getInt(g, "bind_port"));
  s.agent_server_cert = o.getString(g, "agent_server_cert");
  s.agent_server_key = o.getString(g, "agent_server_key");
  s.agent_server_ca = o.getString(g, "agent_server_ca");
  s.agent_request_read_timeout = static_cast<int>(o.getInt(g, "agent_request_read_timeout"));
  s.max_body_bytes = static_cast<size_t>(o.getInt(g, "max_body_bytes"));
  s.state_dir = o.getString(g, "state_dir");
  s.proxy_binary = o.getString(g, "proxy_binary");
  s.proxy_control_socket = o.getString(g, "proxy_control_socket");
  s.amphora_id = o.getString(g, "amphora_id");
  s.system_driver = o.getString(g, "system_driver");
  s.keepalived_binary = o.getString(g, "keepalived_binary");
  if (s.amphora_id.empty()) return makeError(ErrorCode::kInvalidArgument, "must be set", "[amphora_agent] amphora_id");
  if (s.state_dir.empty() || s.state_dir.front() != '/') {
    return makeError(ErrorCode::kInvalidArgument, "must be an absolute path", "[amphora_agent] state_dir");
  }
  for (const char* key : {"agent_server_cert", "agent_server_key", "agent_server_ca", "proxy_binary",
                          "proxy_control_socket"}) {
    if (o.getString(g, key).empty()) {
      return makeError(ErrorCode::kInvalidArgument, "must be set", "[amphora_agent] " + std::string(key));
    }
  }
  s.management_cidrs = o.getList(g, "management_cidrs");
  for (const auto& c : s.management_cidrs) {
    if (!isPrefixOrAddress(c)) {
      return makeError(ErrorCode::kInvalidArgument, "\"" + c + "\" is not a CIDR or an IP address",
                       "[amphora_agent] management_cidrs");
    }
  }
  s.heartbeat.targets = o.getList("health_manager", "controller_ip_port_list");
  for (const auto& t : s.heartbeat.targets) {
    auto r = heartbeat::parseTarget(t);
    if (!r) return makeError(ErrorCode::kInvalidArgument, "\"" + t + "\" is not IP:port",
                             "[health_manager] controller_ip_port_list");
  }
  s.heartbeat.interval_s = o.getFloat("health_manager", "heartbeat_interval");
  s.heartbeat.key = o.getString("health_manager", "heartbeat_key");
  return s;
}

}  // namespace banyan::agent::app
