// The calls the controller makes to an amphora's agent: the seam between the flows and
// the agent's REST API (STYLE.md §3, `AmphoraClient`). The real implementation forwards
// to amphora::AgentClient (mutual TLS, docs/agent-api.md); unit tests of the controller
// give a fake that keeps an amphora's certificates and documents in memory, so the
// placement logic (which files go, which stay, which are deleted) is tested without
// processes. Errors are AgentClient's mapping (kUnavailable is retried by the flows).
// Implementations must be usable from several worker threads at once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "amphora/agent_client.h"
#include "banyan/common/result.h"

namespace banyan::provider::controller {

class AmphoraClient {
 public:
  using Endpoint = amphora::AgentEndpoint;
  using StoredCertificate = amphora::AgentClient::StoredCertificate;

  virtual ~AmphoraClient() = default;

  virtual common::Result<std::string> info(const Endpoint& amp) = 0;
  virtual common::Result<amphora::PutConfigResult> putConfig(const Endpoint& amp, const std::string& document) = 0;
  // MANAGEMENT_CIDRS empty: not sent (the amphora keeps its own).
  virtual common::Result<void> putAgentConfig(const Endpoint& amp,
                                              const std::vector<std::string>& controller_ip_port_list,
                                              double heartbeat_interval_s, const std::string& heartbeat_key,
                                              const std::vector<std::string>& management_cidrs) = 0;
  // Returns the absolute path the agent stored the file at.
  virtual common::Result<std::string> putCertificate(const Endpoint& amp, std::string_view name,
                                                     const std::string& pem_bundle) = 0;
  virtual common::Result<std::map<std::string, StoredCertificate>> listCertificates(const Endpoint& amp) = 0;
  virtual common::Result<void> deleteCertificate(const Endpoint& amp, std::string_view name) = 0;
  virtual common::Result<void> rotateServerCertificate(const Endpoint& amp, const amphora::CertBundle& bundle) = 0;
  // Return the interface the agent configured.
  virtual common::Result<std::string> plugVip(const Endpoint& amp, const amphora::AgentClient::PlugVip& plug) = 0;
  virtual common::Result<std::string> plugNetwork(const Endpoint& amp,
                                                  const amphora::AgentClient::PlugNetwork& plug) = 0;
  virtual common::Result<void> putVrrp(const Endpoint& amp, const amphora::AgentClient::Vrrp& vrrp) = 0;
};

// The real one: every call goes to CLIENT, which must outlive the result.
std::unique_ptr<AmphoraClient> makeAgentAmphoraClient(amphora::AgentClient& client);

}  // namespace banyan::provider::controller
