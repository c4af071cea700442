// SystemOps on the real kernel and keepalived, through the system module
// (amphora-agent/src/system/): plugging finds the NIC by MAC and configures it with
// rtnetlink as Octavia's agent does (VIP in policy-routing table 1), VRRP runs
// keepalived, the firewall is the agent's nftables table. Thread-safe: calls are serialized.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "api/system_ops.h"

namespace banyan::agent::system {
class Keepalived;
}

namespace banyan::agent::system_link {

struct KernelSystemOptions {
  std::string runtime_dir{};       // keepalived's files (state_dir/vrrp)
  std::string keepalived_binary = "/usr/sbin/keepalived";
  std::string check_command{};     // keepalived's track script; failure moves the VIP
};

class KernelSystemOps final : public api::SystemOps {
 public:
  explicit KernelSystemOps(KernelSystemOptions options);
  ~KernelSystemOps() override;

  common::Result<std::string> plugVip(const api::VipPlug& plug) override;
  common::Result<std::string> plugNetwork(const api::NetworkPlug& plug) override;
  common::Result<void> applyVrrp(const api::VrrpSpec& spec) override;
  api::VrrpState vrrpState() override;
  std::string keepalivedVersion() override;
  common::Result<void> applyFirewall(const api::FirewallPlan& plan) override;

 private:
  KernelSystemOptions options_;
  std::mutex mu_;
  std::unique_ptr<system::Keepalived> keepalived_;
  std::string keepalived_version_;
  bool version_read_ = false;
};

}  // namespace banyan::agent::system_link
