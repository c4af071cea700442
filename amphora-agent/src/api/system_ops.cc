#include "api/system_ops.h"

namespace banyan::agent::api {

const char* vrrpStateName(VrrpState state) {
  switch (state) {
    case VrrpState::kMaster:
      return "MASTER";
    case VrrpState::kBackup:
      return "BACKUP";
    case VrrpState::kFault:
      return "FAULT";
    case VrrpState::kUnknown:
      break;
  }
  return "UNKNOWN";
}

common::Result<std::string> NoopSystemOps::plugVip(const VipPlug& plug) {
  std::lock_guard<std::mutex> lock(mu_);
  vip_ = plug;
  return std::string("eth1");
}

common::Result<std::string> NoopSystemOps::plugNetwork(const NetworkPlug& plug) {
  std::lock_guard<std::mutex> lock(mu_);
  network_ = plug;
  return std::string("eth2");
}

common::Result<void> NoopSystemOps::applyVrrp(const VrrpSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  vrrp_ = spec;
  return {};
}

common::Result<void> NoopSystemOps::applyFirewall(const FirewallPlan& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  firewall_.push_back(plan);
  // A long dry run must not grow without bound; tests look at the last few.
  if (firewall_.size() > 64) firewall_.erase(firewall_.begin());
  return {};
}

std::vector<FirewallPlan> NoopSystemOps::firewallHistory() const {
  std::lock_guard<std::mutex> lock(mu_);
  return firewall_;
}

VrrpState NoopSystemOps::vrrpState() { return VrrpState::kUnknown; }

std::optional<VipPlug> NoopSystemOps::lastVip() const {
  std::lock_guard<std::mutex> lock(mu_);
  return vip_;
}
std::optional<NetworkPlug> NoopSystemOps::lastNetwork() const {
  std::lock_guard<std::mutex> lock(mu_);
  return network_;
}
std::optional<VrrpSpec> NoopSystemOps::lastVrrp() const {
  std::lock_guard<std::mutex> lock(mu_);
  return vrrp_;
}

}  // namespace banyan::agent::api
