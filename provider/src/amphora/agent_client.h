// The controller's client for banyan-agent's REST API (docs/agent-api.md), over mutual
// TLS: the agent's server certificate must chain to ca_file and name the address we dial
// (an IP SAN), and we present client_cert_file/client_key_file. Every call is one HTTPS
// request; the controller's flows retry kUnavailable with backoff and give up on
// anything else, so errors are mapped for that:
//   transport failure (refused, timeout, TLS handshake), 5xx, and 404 "No suitable
//   network interface found" (the NIC is not visible yet)  -> kUnavailable
//   400 -> kInvalidArgument: the agent's message, path and details; context = the path
//   409 -> kConflict;  anything else -> kInternal
// One AgentClient may be used from many threads; connections are pooled per amphora.
// Nothing here logs a secret (heartbeat key, keys, auth_pass).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "amphora/pki.h"
#include "banyan/common/result.h"

namespace banyan::common {
class HttpClient;
}

namespace banyan::provider::amphora {

struct AgentEndpoint {
  // The amphora's management IP literal (lb_network_ip); IPv6 -> https://[addr]:port. A
  // link-local IPv6 address may carry its own zone, "fe80::5%eth2".
  std::string address;
  uint16_t port = 9443;
};

// Octavia's [haproxy_amphora] lb_network_interface default.
inline constexpr std::string_view kDefaultLbNetworkInterface = "o-hm0";

// The URL of PATH on AMP's agent: "https://192.0.2.5:9443/1.0/info",
// "https://[2001:db8::5]:9443/1.0/info" (RFC 3986 brackets an IPv6 literal). A
// link-local IPv6 address (fe80::/10) is only reachable through a named interface, so
// it gets a zone as Octavia's driver does: its own ("fe80::5%eth2" ->
// "https://[fe80::5%25eth2]:9443/...", RFC 6874 escapes the '%'), else
// LB_NETWORK_INTERFACE ("https://[fe80::5%25o-hm0]:9443/..."). kInvalidArgument when
// the address is not an IPv4 or IPv6 literal (a host name, brackets already there), a
// zone is on a non-link-local address or is not an interface name, a link-local address
// has no zone and LB_NETWORK_INTERFACE is "", or the port is 0.
common::Result<std::string> agentUrl(const AgentEndpoint& amp, std::string_view path,
                                     std::string_view lb_network_interface);

struct AgentClientOptions {
  std::string ca_file, client_cert_file, client_key_file;
  std::chrono::milliseconds request_timeout{10000};
  // [haproxy_amphora] lb_network_interface: the controller's interface on the management
  // network, the zone of link-local amphora addresses that have none (see agentUrl).
  std::string lb_network_interface{kDefaultLbNetworkInterface};
};

struct PutConfigResult {
  int64_t generation = 0;
  std::string sha256;
  bool delta = false;
  bool unchanged = false;
};

class AgentClient {
 public:
  // Checks the three files up front (kInvalidArgument when one is missing, unreadable
  // or the key does not match).
  static common::Result<std::unique_ptr<AgentClient>> make(const AgentClientOptions& options);
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // GET /1.0/info and GET /1.0/details: the JSON body as the agent sent it.
  common::Result<std::string> info(const AgentEndpoint& amp);
  common::Result<std::string> details(const AgentEndpoint& amp);

  // PUT /1.0/config. The agent's sha256 is checked against our own hash of DOCUMENT
  // (kInternal when they differ: what landed is not what we sent).
  common::Result<PutConfigResult> putConfig(const AgentEndpoint& amp, const std::string& document);

  // PUT /1.0/agent-config: heartbeat targets, interval and HMAC key, and the networks
  // the agent's firewall opens its port to (empty: left out, the amphora keeps what its
  // agent.conf or an earlier push says).
  common::Result<void> putAgentConfig(const AgentEndpoint& amp, const std::vector<std::string>& controller_ip_port_list,
                                      double heartbeat_interval_s, const std::string& heartbeat_key,
                                      const std::vector<std::string>& management_cidrs = {});

  // PUT /1.0/certificates/{name}: a PEM bundle (certificates, then one unencrypted key)
  // for TLS listeners, or a key-less CA/CRL file. NAME must match
  // ^[A-Za-z0-9_.-]{1,128}$ (kInvalidArgument before anything is sent); the agent's
  // sha256 is checked. Returns the absolute path the agent stored it at (what the
  // proxy document must name).
  common::Result<std::string> putCertificate(const AgentEndpoint& amp, std::string_view name,
                                             const std::string& pem_bundle);

  struct StoredCertificate {
    std::string sha256;  // of the file as stored
    std::string path;    // absolute, on the amphora
  };
  // GET /1.0/certificates: every stored file by name.
  common::Result<std::map<std::string, StoredCertificate>> listCertificates(const AgentEndpoint& amp);
  // DELETE /1.0/certificates/{name}; also fine when absent.
  common::Result<void> deleteCertificate(const AgentEndpoint& amp, std::string_view name);

  // PUT /1.0/certificate: the agent serves BUNDLE from its next TLS handshake. Connections
  // this client pooled stay on the old certificate until they close.
  common::Result<void> rotateServerCertificate(const AgentEndpoint& amp, const CertBundle& bundle);

  struct HostRoute {
    std::string destination, nexthop;
  };
  struct PlugVip {
    std::string vip;
    std::string subnet_cidr, gateway, mac_address, vrrp_ip;  // gateway, vrrp_ip: "" = none
    int mtu = 1500;
    std::vector<HostRoute> host_routes;
  };
  // PUT /1.0/plug/vip/{vip}; returns the interface the agent configured.
  common::Result<std::string> plugVip(const AgentEndpoint& amp, const PlugVip& plug);

  struct FixedIp {
    std::string ip_address, subnet_cidr, gateway;  // gateway: "" = none
  };
  struct PlugNetwork {
    std::string mac_address;
    std::vector<FixedIp> fixed_ips;
    int mtu = 1500;
  };
  // PUT /1.0/plug/network; returns the interface the agent configured.
  common::Result<std::string> plugNetwork(const AgentEndpoint& amp, const PlugNetwork& plug);

  struct Vrrp {
    std::string interface, vip;
    int vip_prefix = 32;
    int virtual_router_id = 1;
    int priority = 100;
    int advert_interval = 1;
    std::string local_address;
    std::vector<std::string> peer_addresses;
    std::string auth_pass;  // "" = none; at most 8 characters (keepalived's limit)
    bool nopreempt = false;
  };
  common::Result<void> putVrrp(const AgentEndpoint& amp, const Vrrp& vrrp);
  // GET /1.0/vrrp: "MASTER", "BACKUP", "FAULT" or "UNKNOWN"; kNotFound before the first putVrrp.
  common::Result<std::string> vrrpState(const AgentEndpoint& amp);

 private:
  AgentClient(std::unique_ptr<common::HttpClient> http, std::chrono::milliseconds timeout,
              std::string lb_network_interface);

  struct Reply;
  // One request; transport failures only (an HTTP error status is a Reply).
  common::Result<Reply> send(const AgentEndpoint& amp, std::string_view method, const std::string& path,
                             const std::string* body, const char* content_type, std::string* what);
  // send() plus checkAgentStatus(): non-2xx answers become errors.
  common::Result<Reply> call(const AgentEndpoint& amp, std::string_view method, const std::string& path,
                             const std::string* body, const char* content_type);

  std::unique_ptr<common::HttpClient> http_;
  std::chrono::milliseconds timeout_;
  std::string lb_network_interface_;
};

}  // namespace banyan::provider::amphora
