#include "controller/amphora_client.h"

namespace banyan::provider::controller {

namespace {

class AgentAmphoraClient final : public AmphoraClient {
 public:
  explicit AgentAmphoraClient(amphora::AgentClient& client) : client_(client) {}

  common::Result<std::string> info(const Endpoint& amp) override { return client_.info(amp); }
  common::Result<amphora::PutConfigResult> putConfig(const Endpoint& amp, const std::string& document) override {
    return client_.putConfig(amp, document);
  }
  common::Result<void> putAgentConfig(const Endpoint& amp, const std::vector<std::string>& controller_ip_port_list,
                                      double heartbeat_interval_s, const std::string& heartbeat_key,
                                      const std::vector<std::string>& management_cidrs) override {
    return client_.putAgentConfig(amp, controller_ip_port_list, heartbeat_interval_s, heartbeat_key,
                                  management_cidrs);
  }
  common::Result<std::string> putCertificate(const Endpoint& amp, std::string_view name,
                                             const std::string& pem_bundle) override {
    return client_.putCertificate(amp, name, pem_bundle);
  }
  common::Result<std::map<std::string, StoredCertificate>> listCertificates(const Endpoint& amp) override {
    return client_.listCertificates(amp);
  }
  common::Result<void> deleteCertificate(const Endpoint& amp, std::string_view name) override {
    return client_.deleteCertificate(amp, name);
  }
  common::Result<void> rotateServerCertificate(const Endpoint& amp, const amphora::CertBundle& bundle) override {
    return client_.rotateServerCertificate(amp, bundle);
  }
  common::Result<std::string> plugVip(const Endpoint& amp, const amphora::AgentClient::PlugVip& plug) override {
    return client_.plugVip(amp, plug);
  }
  common::Result<std::string> plugNetwork(const Endpoint& amp, const amphora::AgentClient::PlugNetwork& plug) override {
    return client_.plugNetwork(amp, plug);
  }
  common::Result<void> putVrrp(const Endpoint& amp, const amphora::AgentClient::Vrrp& vrrp) override {
    return client_.putVrrp(amp, vrrp);
  }

 private:
  amphora::AgentClient& client_;
};

}  // namespace

std::unique_ptr<AmphoraClient> makeAgentAmphoraClient(amphora::AgentClient& client) {
  return std::make_unique<AgentAmphoraClient>(client);
}

}  // namespace banyan::provider::controller
