#include "drivers/noop_compute.h"

#include <set>

#include "banyan/common/logging.h"
#include "drivers/host_net.h"

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::Result;

NoopComputeDriver::NoopComputeDriver(const std::string& management_cidr) {
  auto cidr = Cidr::parse(management_cidr);
  LB_CHECK(cidr.ok(), "the noop compute driver needs a valid management CIDR");
  auto pool = AllocationPool::forCidr(*cidr);
  LB_CHECK(pool.ok(), "the noop compute driver needs a management subnet it can allocate from");
  pool_ = *pool;
  next_ = pool_.start;
}

Result<Instance> NoopComputeDriver::build(const AmphoraSpec& spec) {
  if (spec.amphora_id.empty())
    return makeError(ErrorCode::kInvalidArgument, "amphora_id is required");
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> used;
  for (const auto& [id, instance] : instances_) used.insert(instance.lb_network_ip);
  Instance instance;
  // Round the pool from where the last allocation stopped, as Neutron's IPAM
  // hands out addresses: a deleted amphora's address is not the next one's,
  // so late heartbeats or stale agent connections of the old amphora cannot
  // pass for the new one's.
  if (!pool_.contains(next_)) next_ = pool_.start;  // the last one ended the pool
  IpAddress a = next_;
  for (uint64_t tried = 0; tried < pool_.size(); ++tried) {
    if (!used.count(a.toString())) {
      instance.lb_network_ip = a.toString();
      next_ = a.plus(1);
      break;
    }
    a = pool_.contains(a.plus(1)) ? a.plus(1) : pool_.start;
  }
  if (instance.lb_network_ip.empty())
    return makeError(ErrorCode::kUnavailable, "no free management address");
  instance.compute_id = randomUuid();
  instance.amphora_id = spec.amphora_id;
  instance.lb_id = spec.lb_id;
  instance.status = ComputeStatus::kActive;
  instances_[instance.compute_id] = instance;
  LB_DEBUG("noop amphora built amp=%s compute=%s", spec.amphora_id.c_str(),
           instance.compute_id.c_str());
  return instance;
}

Result<void> NoopComputeDriver::remove(const std::string& compute_id) {
  std::lock_guard<std::mutex> lock(mu_);
  instances_.erase(compute_id);
  return {};
}

Result<ComputeStatus> NoopComputeDriver::status(const std::string& compute_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = instances_.find(compute_id);
  return it == instances_.end() ? ComputeStatus::kDeleted : it->second.status;
}

Result<Instance> NoopComputeDriver::get(const std::string& compute_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = instances_.find(compute_id);
  if (it == instances_.end()) return makeError(ErrorCode::kNotFound, "no such amphora", compute_id);
  return it->second;
}

Result<std::vector<Instance>> NoopComputeDriver::list() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Instance> out;
  for (const auto& [id, instance] : instances_) out.push_back(instance);
  return out;
}

}  // namespace banyan::provider::drivers
