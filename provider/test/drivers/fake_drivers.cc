#include "fake_drivers.h"

namespace banyan::provider::drivers {

using common::Error;
using common::Result;

void FakeScript::failNext(const std::string& method, Error error) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_[method].push_back(std::move(error));
}

int FakeScript::calls(const std::string& method) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

bool FakeScript::take(const std::string& method, Error& error) {
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_[method];
  auto it = failures_.find(method);
  if (it == failures_.end() || it->second.empty()) return false;
  error = std::move(it->second.front());
  it->second.pop_front();
  return true;
}

// Each method: count, fail if scripted, else behave like the noop driver.
#define BANYAN_FAKE_STEP(method)                                     \
  do {                                                               \
    Error scripted_error;                                            \
    if (script_.take(method, scripted_error)) return scripted_error; \
  } while (0)

void FakeComputeDriver::setStatus(const std::string& compute_id, ComputeStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  statuses_[compute_id] = status;
}

Instance FakeComputeDriver::overridden(Instance instance) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = statuses_.find(instance.compute_id);
  if (it != statuses_.end()) instance.status = it->second;
  return instance;
}

Result<Instance> FakeComputeDriver::build(const AmphoraSpec& spec) {
  BANYAN_FAKE_STEP("build");
  return inner_.build(spec);
}

Result<void> FakeComputeDriver::remove(const std::string& compute_id) {
  BANYAN_FAKE_STEP("remove");
  {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_.erase(compute_id);
  }
  return inner_.remove(compute_id);
}

Result<ComputeStatus> FakeComputeDriver::status(const std::string& compute_id) {
  BANYAN_FAKE_STEP("status");
  auto instance = inner_.get(compute_id);
  if (!instance) return ComputeStatus::kDeleted;
  return overridden(instance.value()).status;
}

Result<Instance> FakeComputeDriver::get(const std::string& compute_id) {
  BANYAN_FAKE_STEP("get");
  auto instance = inner_.get(compute_id);
  if (!instance) return instance.error();
  return overridden(instance.value());
}

Result<std::vector<Instance>> FakeComputeDriver::list() {
  BANYAN_FAKE_STEP("list");
  auto all = inner_.list();
  if (!all) return all.error();
  std::vector<Instance> out;
  for (auto& i : all.value()) out.push_back(overridden(i));
  return out;
}

Result<Network> FakeNetworkDriver::network(const std::string& network_id) {
  BANYAN_FAKE_STEP("network");
  return inner_.network(network_id);
}

Result<Subnet> FakeNetworkDriver::subnet(const std::string& subnet_id) {
  BANYAN_FAKE_STEP("subnet");
  return inner_.subnet(subnet_id);
}

Result<std::vector<Subnet>> FakeNetworkDriver::subnets() {
  BANYAN_FAKE_STEP("subnets");
  return inner_.subnets();
}

Result<Vip> FakeNetworkDriver::allocateVip(const std::string& lb_id, const std::string& subnet_id,
                                           const std::string& requested_address) {
  BANYAN_FAKE_STEP("allocateVip");
  return inner_.allocateVip(lb_id, subnet_id, requested_address);
}

Result<void> FakeNetworkDriver::deallocateVip(const Vip& vip) {
  BANYAN_FAKE_STEP("deallocateVip");
  return inner_.deallocateVip(vip);
}

Result<PluggedInterface> FakeNetworkDriver::plugVip(const std::string& compute_id, const Vip& vip) {
  BANYAN_FAKE_STEP("plugVip");
  return inner_.plugVip(compute_id, vip);
}

Result<void> FakeNetworkDriver::unplugVip(const std::string& compute_id, const Vip& vip) {
  BANYAN_FAKE_STEP("unplugVip");
  return inner_.unplugVip(compute_id, vip);
}

Result<PluggedInterface> FakeNetworkDriver::plugNetwork(const std::string& compute_id,
                                                        const std::string& subnet_id) {
  BANYAN_FAKE_STEP("plugNetwork");
  return inner_.plugNetwork(compute_id, subnet_id);
}

Result<void> FakeNetworkDriver::unplugNetwork(const std::string& compute_id,
                                              const std::string& subnet_id) {
  BANYAN_FAKE_STEP("unplugNetwork");
  return inner_.unplugNetwork(compute_id, subnet_id);
}

Result<void> FakeNetworkDriver::unplugAll(const std::string& compute_id) {
  BANYAN_FAKE_STEP("unplugAll");
  return inner_.unplugAll(compute_id);
}

Result<std::vector<PluggedInterface>> FakeNetworkDriver::pluggedInterfaces(
    const std::string& compute_id) {
  BANYAN_FAKE_STEP("pluggedInterfaces");
  return inner_.pluggedInterfaces(compute_id);
}

Result<std::vector<Port>> FakeNetworkDriver::listPorts() {
  BANYAN_FAKE_STEP("listPorts");
  return inner_.listPorts();
}

}  // namespace banyan::provider::drivers
